//! The lowered IR as text: policies and scenarios written back in the policy
//! language's own syntax, with every statement's `file:line`. Used for the
//! IR snapshots and for showing a user what a policy means after `extends`,
//! defaults and named bodies. Not meant to be parsed back (the locations).

use std::fmt::Write as _;

use crate::ir::{self, ActionKind, Body, Hook, StmtKind, ThreadKind, Workspace};

/// Column at which the `// file:line` comments start.
const LOC_COLUMN: usize = 44;

/// One policy, with its hooks in the order freeze, thaw, page_mkwrite,
/// writeback, flusher.
pub fn policy_text(ws: &Workspace, policy: &ir::Policy) -> String {
    let mut out = String::new();
    let extends = policy
        .extends
        .as_ref()
        .map(|p| format!(" extends {p}"))
        .unwrap_or_default();
    line(
        &mut out,
        ws,
        0,
        &format!("policy {}{extends} {{", policy.name),
        Some(policy.loc),
    );
    for hook in Hook::ALL {
        line(&mut out, ws, 1, &format!("{} {{", hook.name()), None);
        body(&mut out, ws, 2, policy.hooks.get(hook));
        line(&mut out, ws, 1, "}", None);
    }
    if !policy.faults.is_empty() {
        line(&mut out, ws, 1, "faults {", None);
        for f in &policy.faults {
            line(
                &mut out,
                ws,
                2,
                &format!("{} probability {} max {};", f.name, f.probability, f.max),
                Some(f.loc),
            );
        }
        line(&mut out, ws, 1, "}", None);
    }
    line(&mut out, ws, 0, "}", None);
    out
}

/// One scenario: its pages with every attribute explicit, and its threads.
pub fn scenario_text(ws: &Workspace, scenario: &ir::Scenario) -> String {
    let mut out = String::new();
    line(
        &mut out,
        ws,
        0,
        &format!("scenario {} {{", scenario.name),
        Some(scenario.loc),
    );
    for page in &scenario.pages {
        let mut attrs = Vec::new();
        if page.cached {
            attrs.push("cached".to_owned());
        }
        attrs.push(format!("buffers = {}", page.buffers.name()));
        attrs.push(format!("pte = {}", page.pte.name()));
        if page.dirty {
            attrs.push("dirty".to_owned());
        }
        if page.pte_dirty {
            attrs.push("pte_dirty".to_owned());
        }
        attrs.push(format!("mem = {}", page.mem));
        attrs.push(format!("disk = {}", page.disk));
        line(
            &mut out,
            ws,
            1,
            &format!("page {} {{ {}; }}", page.name, attrs.join("; ")),
            Some(page.loc),
        );
    }
    for thread in &scenario.threads {
        match &thread.kind {
            ThreadKind::Flusher => line(&mut out, ws, 1, "flusher;", Some(thread.loc)),
            ThreadKind::Program(actions) => {
                line(
                    &mut out,
                    ws,
                    1,
                    &format!("thread {} {{", thread.name),
                    Some(thread.loc),
                );
                for action in actions {
                    let page = |p: usize| scenario.pages.get(p).map(|pg| pg.name.as_str()).unwrap_or("?");
                    let text = match action.kind {
                        ActionKind::Store { page: p, value } => format!("store {} {value};", page(p)),
                        ActionKind::Munmap { page: p } => format!("munmap {};", page(p)),
                        ActionKind::Msync { page: p } => format!("msync {};", page(p)),
                        ActionKind::AwaitFrozen => "await frozen;".to_owned(),
                        ActionKind::Freeze => "freeze;".to_owned(),
                        ActionKind::Thaw => "thaw;".to_owned(),
                    };
                    line(&mut out, ws, 2, &text, Some(action.loc));
                }
                line(&mut out, ws, 1, "}", None);
            }
        }
    }
    for f in &scenario.faults {
        line(
            &mut out,
            ws,
            1,
            &format!("fault {} probability {} max {};", f.name, f.probability, f.max),
            Some(f.loc),
        );
    }
    line(&mut out, ws, 0, "}", None);
    out
}

fn line(out: &mut String, ws: &Workspace, indent: usize, text: &str, loc: Option<ir::Loc>) {
    let start = out.len();
    for _ in 0..indent {
        out.push_str("    ");
    }
    out.push_str(text);
    if let Some(loc) = loc {
        let width = out.len() - start;
        let pad = LOC_COLUMN.saturating_sub(width).max(1);
        let _ = write!(out, "{:pad$}// {}:{}", "", ws.file_path(loc.file), loc.line);
    }
    out.push('\n');
}

fn body(out: &mut String, ws: &Workspace, indent: usize, stmts: &Body) {
    for stmt in stmts {
        match &stmt.kind {
            StmtKind::TryLockUmount { otherwise, .. }
            | StmtKind::Submit {
                otherwise: Some(otherwise),
            }
            | StmtKind::Sync {
                otherwise: Some(otherwise),
            } => {
                let head = match &stmt.kind {
                    StmtKind::TryLockUmount { .. } => format!("{} else", stmt.kind.head()),
                    _ => stmt.kind.head(),
                };
                line(out, ws, indent, &format!("{head} {{"), Some(stmt.loc));
                body(out, ws, indent + 1, otherwise);
                line(out, ws, indent, "}", None);
            }
            StmtKind::If { then, otherwise, .. } => {
                line(
                    out,
                    ws,
                    indent,
                    &format!("{} {{", stmt.kind.head()),
                    Some(stmt.loc),
                );
                body(out, ws, indent + 1, then);
                if !otherwise.is_empty() {
                    line(out, ws, indent, "} else {", None);
                    body(out, ws, indent + 1, otherwise);
                }
                line(out, ws, indent, "}", None);
            }
            _ => line(out, ws, indent, &format!("{};", stmt.kind.head()), Some(stmt.loc)),
        }
    }
}
