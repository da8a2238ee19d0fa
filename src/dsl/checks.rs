//! The lock checks: a small path-sensitive abstract interpretation of one
//! hook (after named bodies are inlined). The abstract state is what this
//! hook's thread holds: `s_umount` (none, read or write), the page lock, and
//! how many times it is inside `sb_start` at each writer level, each with the
//! statement that took it. Both sides of every branch are explored; `skip`
//! and `fail sigbus` jump to the end of the hook. Works on the IR only.

use crate::ir::{Body, Hook, Loc, LockMode, Stmt, StmtKind, WriterLevel};

use super::diag::Code;

/// One problem found in a hook, at the statement involved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub code: Code,
    pub loc: Loc,
    pub message: String,
    pub label: String,
    pub help: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct State {
    umount: Option<(LockMode, Loc)>,
    page: Option<Loc>,
    /// Per writer level: how deep, and the outermost `sb_start`.
    writers: [(u8, Option<Loc>); 3],
}

/// How a path leaves a body.
#[derive(Default)]
struct Exits {
    fallthrough: Vec<State>,
    /// `skip` or `fail sigbus`: the hook ends here (with whether it failed).
    ended: Vec<(State, Option<Loc>)>,
}

fn add(states: &mut Vec<State>, state: State) {
    if !states.contains(&state) {
        states.push(state);
    }
}

struct Checker {
    hook: Hook,
    findings: Vec<Finding>,
}

/// Checks one hook; returns every problem once, in statement order.
pub fn check_hook(hook: Hook, body: &Body) -> Vec<Finding> {
    let mut checker = Checker {
        hook,
        findings: Vec::new(),
    };
    let start = State {
        umount: None,
        page: None,
        writers: [(0, None); 3],
    };
    let exits = checker.body(body, vec![start]);
    let mut ends: Vec<(State, Option<Loc>)> = exits.fallthrough.into_iter().map(|s| (s, None)).collect();
    ends.extend(exits.ended);
    for (state, sigbus) in ends {
        checker.end(state, sigbus);
    }
    let mut findings = checker.findings;
    findings.sort_by_key(|f| (f.loc.file, f.loc.line, f.loc.column));
    findings
}

impl Checker {
    fn report(&mut self, code: Code, loc: Loc, message: String, label: &str, help: Option<&str>) {
        let finding = Finding {
            code,
            loc,
            message,
            label: label.to_owned(),
            help: help.map(str::to_owned),
        };
        if !self
            .findings
            .iter()
            .any(|f| f.code == finding.code && f.loc == finding.loc)
        {
            self.findings.push(finding);
        }
    }

    fn end(&mut self, state: State, sigbus: Option<Loc>) {
        let hook = self.hook.name();
        if let Some((mode, loc)) = state.umount {
            self.report(
                Code::UmountHeldAtEnd,
                loc,
                format!(
                    "`{hook}` can end while still holding s_umount (taken here for {})",
                    mode.name()
                ),
                "taken here, not released on some path",
                Some("add `unlock umount` on every path to the end (including before `skip`)"),
            );
        }
        if let Some(loc) = state.page {
            // page_mkwrite may end with the page locked, by success
            // (VM_FAULT_LOCKED) or by `fail sigbus`: the end of the fault
            // unlocks a page the faulting thread holds either way.
            let allowed = self.hook == Hook::PageMkwrite;
            let _ = sigbus;
            if !allowed {
                let (message, help) = (
                    format!("`{hook}` can end while still holding the page lock taken here"),
                    "add `unlock_page` on every path to the end (including before `skip`); only page_mkwrite may return with the page locked",
                );
                self.report(
                    Code::PageLockHeldAtEnd,
                    loc,
                    message,
                    "page locked here, not unlocked on some path",
                    Some(help),
                );
            }
        }
        for level in WriterLevel::ALL {
            if let (n, Some(loc)) = state.writers[level as usize]
                && n > 0
            {
                self.report(
                    Code::SbStartWithoutEnd,
                    loc,
                    format!("`sb_start {level}` without `sb_end {level}` on some path through `{hook}`"),
                    "started here",
                    Some("add `sb_end` on every path to the end (including before `skip` and `fail sigbus`)"),
                );
            }
        }
    }

    fn body(&mut self, body: &Body, mut states: Vec<State>) -> Exits {
        let mut exits = Exits::default();
        for stmt in body {
            if states.is_empty() {
                break;
            }
            let out = self.stmt(stmt, states);
            exits.ended.extend(out.ended);
            states = out.fallthrough;
        }
        exits.fallthrough = states;
        exits
    }

    fn needs_page(&mut self, stmt: &Stmt, what: &str) {
        if !self.hook.has_page() {
            self.report(Code::PageOutsidePageHook, stmt.loc, format!("{what} in `{}`, which runs on no page", self.hook.name()), "needs a page", Some("page statements and conditions belong in page_mkwrite and writeback (and bodies called only from them)"));
        }
    }

    fn stmt(&mut self, stmt: &Stmt, states: Vec<State>) -> Exits {
        let mut exits = Exits::default();
        let hook = self.hook.name();
        match &stmt.kind {
            StmtKind::If {
                cond,
                then,
                otherwise,
            } => {
                if cond.reads_page() {
                    self.needs_page(stmt, &format!("the condition `{cond}` reads the page"));
                }
                for branch in [then, otherwise] {
                    let out = self.body(branch, states.clone());
                    exits.ended.extend(out.ended);
                    for s in out.fallthrough {
                        add(&mut exits.fallthrough, s);
                    }
                }
                return exits;
            }
            StmtKind::TryLockUmount { mode, otherwise } => {
                for s in &states {
                    if let Some((_, held)) = s.umount {
                        self.report(
                            Code::SelfDeadlock,
                            stmt.loc,
                            format!(
                                "`trylock umount` while `{hook}` already holds s_umount (taken at line {})",
                                held.line
                            ),
                            "already held",
                            Some("release it first with `unlock umount`"),
                        );
                    }
                }
                let out = self.body(otherwise, states.clone());
                exits.ended.extend(out.ended);
                for s in out.fallthrough {
                    add(&mut exits.fallthrough, s);
                }
                for mut s in states {
                    s.umount = Some((*mode, stmt.loc));
                    add(&mut exits.fallthrough, s);
                }
                return exits;
            }
            StmtKind::Submit { otherwise } => {
                self.needs_page(stmt, "`submit`");
                if let Some(otherwise) = otherwise {
                    let out = self.body(otherwise, states.clone());
                    exits.ended.extend(out.ended);
                    for s in out.fallthrough {
                        add(&mut exits.fallthrough, s);
                    }
                }
                for s in states {
                    add(&mut exits.fallthrough, s);
                }
                return exits;
            }
            StmtKind::Sync { otherwise } => {
                if self.hook == Hook::Writeback {
                    self.report(
                        Code::SyncInWriteback,
                        stmt.loc,
                        "`sync` in `writeback`: sync runs writeback, so this would recurse".to_owned(),
                        "recursive",
                        Some("remove it; writeback handles one page"),
                    );
                }
                // `else` runs after the whole sync, with what the hook held before it.
                if let Some(otherwise) = otherwise {
                    let out = self.body(otherwise, states.clone());
                    exits.ended.extend(out.ended);
                    for s in out.fallthrough {
                        add(&mut exits.fallthrough, s);
                    }
                }
                for s in states {
                    add(&mut exits.fallthrough, s);
                }
                return exits;
            }
            StmtKind::Skip => {
                exits.ended.extend(states.into_iter().map(|s| (s, None)));
                return exits;
            }
            StmtKind::FailSigbus => {
                if self.hook != Hook::PageMkwrite {
                    self.report(
                        Code::SigbusOutsidePageMkwrite,
                        stmt.loc,
                        format!("`fail sigbus` in `{hook}`: only a page fault can fail with SIGBUS"),
                        "not in page_mkwrite",
                        Some("use `fail sigbus` only in page_mkwrite (or bodies called only from it)"),
                    );
                    exits.ended.extend(states.into_iter().map(|s| (s, None)));
                } else {
                    exits
                        .ended
                        .extend(states.into_iter().map(|s| (s, Some(stmt.loc))));
                }
                return exits;
            }
            _ => {}
        }
        for mut s in states {
            match &stmt.kind {
                StmtKind::LockUmount(mode) => {
                    if let Some((_, held)) = s.umount {
                        self.report(Code::SelfDeadlock, stmt.loc, format!("`lock umount {}` while `{hook}` already holds s_umount (taken at line {}): it would wait for itself", mode.name(), held.line), "deadlocks on itself", Some("release it first with `unlock umount`"));
                    }
                    s.umount = Some((*mode, stmt.loc));
                }
                StmtKind::UnlockUmount => {
                    if s.umount.is_none() {
                        self.report(Code::UnlockNotHeld, stmt.loc, format!("`unlock umount` in `{hook}` when s_umount is not held on some path"), "not held here on some path", Some("take it first with `lock umount MODE` or `trylock umount MODE else …`; note that the `else` of a trylock runs without the lock"));
                    }
                    s.umount = None;
                }
                StmtKind::LockPage => {
                    self.needs_page(stmt, "`lock_page`");
                    if let Some(held) = s.page {
                        self.report(Code::SelfDeadlock, stmt.loc, format!("`lock_page` in `{hook}` while the page is already locked (at line {}): it would wait for itself", held.line), "deadlocks on itself", Some("remove one of the two `lock_page`s, or `unlock_page` in between"));
                    }
                    s.page = Some(stmt.loc);
                }
                StmtKind::UnlockPage => {
                    self.needs_page(stmt, "`unlock_page`");
                    if s.page.is_none() {
                        self.report(
                            Code::UnlockNotHeld,
                            stmt.loc,
                            format!("`unlock_page` in `{hook}` when the page is not locked on some path"),
                            "not locked here on some path",
                            Some("take the page lock first with `lock_page`"),
                        );
                    }
                    s.page = None;
                }
                StmtKind::SbStart(level) => {
                    let slot = &mut s.writers[*level as usize];
                    slot.0 = slot.0.saturating_add(1).min(4);
                    if slot.1.is_none() {
                        slot.1 = Some(stmt.loc);
                    }
                }
                StmtKind::SbEnd(level) => {
                    let slot = &mut s.writers[*level as usize];
                    if slot.0 == 0 {
                        self.report(Code::UnlockNotHeld, stmt.loc, format!("`sb_end {level}` in `{hook}` without a matching `sb_start {level}` on some path"), "not started here on some path", Some("pair every `sb_end L` with an earlier `sb_start L`"));
                    } else {
                        slot.0 -= 1;
                        if slot.0 == 0 {
                            slot.1 = None;
                        }
                    }
                }
                StmtKind::WaitWriters(level) => {
                    if let (n, Some(started)) = s.writers[*level as usize]
                        && n > 0
                    {
                        self.report(Code::SelfDeadlock, stmt.loc, format!("`wait_writers {level}` in `{hook}` while this hook is itself a {level} writer (sb_start at line {}): it would wait for itself", started.line), "waits for itself", Some("call `sb_end` first"));
                    }
                }
                StmtKind::MarkDirty => self.needs_page(stmt, "`mark_dirty`"),
                StmtKind::Allocate => self.needs_page(stmt, "`allocate`"),
                StmtKind::Reserve => self.needs_page(stmt, "`reserve`"),
                StmtKind::Clean => self.needs_page(stmt, "`clean`"),
                _ => {}
            }
            add(&mut exits.fallthrough, s);
        }
        exits
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::FileId;

    fn stmt(kind: StmtKind, line: u32) -> Stmt {
        Stmt {
            via: None,
            kind,
            loc: Loc {
                file: FileId(0),
                line,
                column: 1,
            },
        }
    }

    #[test]
    fn trylock_else_skip_is_balanced() {
        let body = vec![
            stmt(
                StmtKind::TryLockUmount {
                    mode: LockMode::Read,
                    otherwise: vec![stmt(StmtKind::Skip, 1)],
                },
                1,
            ),
            stmt(StmtKind::Sync { otherwise: None }, 2),
            stmt(StmtKind::UnlockUmount, 3),
        ];
        assert!(check_hook(Hook::Flusher, &body).is_empty());
    }

    #[test]
    fn skip_while_holding_is_reported() {
        let body = vec![stmt(StmtKind::LockPage, 1), stmt(StmtKind::Skip, 2)];
        let findings = check_hook(Hook::Writeback, &body);
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].code, Code::PageLockHeldAtEnd);
        assert!(check_hook(Hook::PageMkwrite, &body).is_empty());
    }
}
