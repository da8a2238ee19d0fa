//! What changed between two matrices, cell by cell, and why: for each bad
//! outcome that appears (or disappears), the side that reaches it gives its
//! shortest schedule, that schedule is replayed under the other side, and
//! the first step where the two runs part is named, with what the other
//! policy did instead.
//!
//! The sides are matrix reports (from JSON files, or computed from two
//! workspaces: two directories, two git revisions, two policies). The
//! programs, when given, make the explanations; without them (JSON files)
//! the diff lists the outcomes and the recorded schedules only.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::engine::program::Program;
use crate::engine::run;
use crate::engine::schedule::{self, FitError};
use crate::oracle::{OracleSet, Outcome};

use super::matrix::{CellReport, MatrixReport};

/// One side of a diff: a label (`base`, `HEAD~1:policies`, `mainline`), its
/// matrix, and the compiled cells in the matrix's cell order, if known.
pub struct Side<'a> {
    pub label: String,
    pub report: &'a MatrixReport,
    pub programs: Option<&'a [Program]>,
}

/// The changed cells of two matrices.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiffReport {
    pub schema: String,
    pub old: String,
    pub new: String,
    /// Cells in both matrices whose outcomes are the same.
    pub unchanged: usize,
    pub changed: Vec<CellChange>,
    /// Cells (`policy × scenario`) in only one of the matrices.
    pub only_old: Vec<String>,
    pub only_new: Vec<String>,
}

pub const DIFF_SCHEMA: &str = "freezefuzz-diff/1";

/// One cell whose set of outcomes changed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellChange {
    pub policy: String,
    pub scenario: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
    /// One per bad outcome added or removed.
    pub explanations: Vec<Explanation>,
}

/// Why a bad outcome appeared or disappeared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub outcome: String,
    /// `added` (the new side reaches it) or `removed` (the old side did).
    pub change: String,
    /// The side whose shortest schedule reaches the outcome (`new` or `old`).
    pub witness_side: String,
    pub schedule: String,
    pub steps: u32,
    /// The same schedule replayed under the other side: its outcomes, or why
    /// it stops fitting there. `None` when the programs are not known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_run: Option<String>,
    /// The first step at which the two runs differ, if they do before the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<Divergence>,
}

/// The first step (1-based) at which the witness's run and the other side's
/// run of the same schedule differ.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Divergence {
    pub step: usize,
    pub thread: String,
    /// What the witness's side runs at that step (`wait_writers pagefault [freeze]`).
    pub witness_runs: String,
    /// What the other side does instead.
    pub other_does: String,
}

fn program_of<'a>(side: &Side<'a>, i: usize) -> Option<&'a Program> {
    side.programs.and_then(|p| p.get(i))
}

fn key(cell: &CellReport) -> String {
    format!("{} × {}", cell.policy, cell.scenario)
}

/// Compares `old` and `new` cell by cell (matched by policy and scenario
/// names), explaining each bad outcome added or removed.
pub fn diff(old: &Side<'_>, new: &Side<'_>, oracles: &OracleSet, steps_max: u32) -> DiffReport {
    let find = |side: &Side<'_>, cell: &CellReport| {
        side.report
            .cells
            .iter()
            .position(|c| c.policy == cell.policy && c.scenario == cell.scenario)
    };
    let mut report = DiffReport {
        schema: DIFF_SCHEMA.into(),
        old: old.label.clone(),
        new: new.label.clone(),
        unchanged: 0,
        changed: Vec::new(),
        only_old: Vec::new(),
        only_new: Vec::new(),
    };
    for (n, cell) in new.report.cells.iter().enumerate() {
        let Some(o) = find(old, cell) else {
            report.only_new.push(key(cell));
            continue;
        };
        let before = &old.report.cells[o];
        let (was, now) = (before.outcomes.names(), cell.outcomes.names());
        if was == now {
            report.unchanged += 1;
            continue;
        }
        let added: Vec<String> = now
            .iter()
            .filter(|x| !was.contains(x))
            .map(|s| s.to_string())
            .collect();
        let removed: Vec<String> = was
            .iter()
            .filter(|x| !now.contains(x))
            .map(|s| s.to_string())
            .collect();
        let mut explanations = Vec::new();
        for name in &added {
            if let Some(w) = cell.witnesses.get(name) {
                explanations.push(explain(
                    name,
                    "added",
                    "new",
                    &w.schedule,
                    w.steps,
                    program_of(new, n).zip(program_of(old, o)),
                    oracles,
                    steps_max,
                ));
            }
        }
        for name in &removed {
            if let Some(w) = before.witnesses.get(name) {
                explanations.push(explain(
                    name,
                    "removed",
                    "old",
                    &w.schedule,
                    w.steps,
                    program_of(old, o).zip(program_of(new, n)),
                    oracles,
                    steps_max,
                ));
            }
        }
        report.changed.push(CellChange {
            policy: cell.policy.clone(),
            scenario: cell.scenario.clone(),
            added,
            removed,
            explanations,
        });
    }
    for cell in &old.report.cells {
        if find(new, cell).is_none() {
            report.only_old.push(key(cell));
        }
    }
    report
}

/// Replays the witness's schedule under the other side and finds where the
/// runs part. `programs` is (the witness's side, the other side).
#[allow(clippy::too_many_arguments)]
fn explain(
    outcome: &str,
    change: &str,
    witness_side: &str,
    schedule_text: &str,
    steps: u32,
    programs: Option<(&Program, &Program)>,
    oracles: &OracleSet,
    steps_max: u32,
) -> Explanation {
    let mut explanation = Explanation {
        outcome: outcome.to_string(),
        change: change.to_string(),
        witness_side: witness_side.to_string(),
        schedule: schedule_text.to_string(),
        steps,
        other_run: None,
        divergence: None,
    };
    let Some((mine, other)) = programs else {
        return explanation;
    };
    let Ok(choices) = schedule::resolve(mine, schedule_text) else {
        return explanation;
    };
    // The witness with the statement of every move, fitted on the other side.
    let labelled = schedule::format_labelled(mine, &choices);
    let other_steps = match schedule::resolve_labelled(other, &labelled) {
        Ok(steps) => steps,
        Err(e) => {
            explanation.other_run = Some(format!("does not apply: {e}"));
            return explanation;
        }
    };
    let fit = schedule::fit(other, &other_steps);
    if let Some(error) = &fit.error {
        let step = error.step();
        let thread = mine.threads[choices[step - 1].thread as usize].name.clone();
        let witness_runs = other_steps[step - 1].label.clone().unwrap_or_default();
        let other_does = match error {
            FitError::Label { actual, context, .. } => format!("runs `{actual}` [{context}]"),
            FitError::Blocked { why, .. } => format!("cannot move: {why}"),
            FitError::NoFault { statement, .. } => format!("has no fault to fire at `{statement}`"),
        };
        explanation.divergence = Some(Divergence {
            step,
            thread,
            witness_runs,
            other_does,
        });
    }
    // The bare schedule (threads only) under the other side.
    let bare: Vec<_> = other_steps.iter().map(|s| s.choice).collect();
    explanation.other_run = Some(match run::replay(other, oracles, &bare, steps_max) {
        Ok((result, _)) => {
            let names: Vec<&str> = result.outcomes.iter().map(Outcome::name).collect();
            let unfinished = if run::can_continue(other, &result) {
                " (unfinished: threads could still move)"
            } else {
                ""
            };
            format!("ends {}{unfinished}", names.join(", "))
        }
        Err(e) => format!("stops: {e}"),
    });
    explanation
}

/// Plain text for the terminal.
pub fn text(report: &DiffReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "diff {} → {}", report.old, report.new);
    if report.changed.is_empty() && report.only_old.is_empty() && report.only_new.is_empty() {
        let _ = writeln!(out, "no cell changed ({} compared)", report.unchanged);
        return out;
    }
    for change in &report.changed {
        let _ = writeln!(out, "\n{} × {}", change.policy, change.scenario);
        for name in &change.added {
            let _ = writeln!(out, "  + {name}{}", bad_mark(name));
        }
        for name in &change.removed {
            let _ = writeln!(out, "  - {name}{}", bad_mark(name));
        }
        for e in &change.explanations {
            let (this, other) = sides(report, e);
            let _ = writeln!(
                out,
                "  {} {} (shortest schedule under {this}, {} steps): {}",
                e.change, e.outcome, e.steps, e.schedule
            );
            if let Some(d) = &e.divergence {
                let _ = writeln!(
                    out,
                    "    diverges at step {}: {} runs `{}` under {this}; under {other} it {}",
                    d.step, d.thread, d.witness_runs, d.other_does
                );
            }
            if let Some(run) = &e.other_run {
                let _ = writeln!(out, "    the same schedule under {other}: {run}");
            }
        }
    }
    footer(&mut out, report, "");
    out
}

fn bad_mark(name: &str) -> &'static str {
    match Outcome::from_name(name) {
        Some(o) if o.is_bad() => " (bad)",
        _ => "",
    }
}

fn sides<'a>(report: &'a DiffReport, e: &Explanation) -> (&'a str, &'a str) {
    if e.witness_side == "new" {
        (&report.new, &report.old)
    } else {
        (&report.old, &report.new)
    }
}

fn footer(out: &mut String, report: &DiffReport, bullet: &str) {
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{bullet}{} cell(s) changed, {} unchanged",
        report.changed.len(),
        report.unchanged
    );
    if !report.only_old.is_empty() {
        let _ = writeln!(
            out,
            "{bullet}only in {}: {}",
            report.old,
            report.only_old.join(", ")
        );
    }
    if !report.only_new.is_empty() {
        let _ = writeln!(
            out,
            "{bullet}only in {}: {}",
            report.new,
            report.only_new.join(", ")
        );
    }
}

/// Markdown for a pull-request comment: a table of the changed cells (bad
/// outcomes marked ❌ when added, ✅ when removed), then each explanation.
pub fn markdown(report: &DiffReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### freezefuzz: `{}` → `{}`\n", report.old, report.new);
    if report.changed.is_empty() && report.only_old.is_empty() && report.only_new.is_empty() {
        let _ = writeln!(out, "✅ No cell changed ({} compared).", report.unchanged);
        return out;
    }
    if !report.changed.is_empty() {
        let _ = writeln!(out, "| cell | added | removed |");
        let _ = writeln!(out, "|---|---|---|");
        for change in &report.changed {
            let mark = |names: &[String], bad: &str| -> String {
                names
                    .iter()
                    .map(|n| match Outcome::from_name(n) {
                        Some(o) if o.is_bad() => format!("{bad} **{n}**"),
                        _ => n.clone(),
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "| {} × {} | {} | {} |",
                change.policy,
                change.scenario,
                mark(&change.added, "❌"),
                mark(&change.removed, "✅")
            );
        }
    }
    let explained: Vec<(&CellChange, &Explanation)> = report
        .changed
        .iter()
        .flat_map(|c| c.explanations.iter().map(move |e| (c, e)))
        .collect();
    if !explained.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>Why: shortest schedules and where the runs part</summary>\n"
        );
        for (change, e) in explained {
            let (this, other) = sides(report, e);
            let _ = writeln!(
                out,
                "- **{}** {} in {} × {}: `{}` ({} steps, shortest under {this})",
                e.outcome, e.change, change.policy, change.scenario, e.schedule, e.steps
            );
            if let Some(d) = &e.divergence {
                let _ = writeln!(
                    out,
                    "  - step {}: {} runs `{}` under {this}; under {other} it {}",
                    d.step, d.thread, d.witness_runs, d.other_does
                );
            }
            if let Some(run) = &e.other_run {
                let _ = writeln!(out, "  - the same schedule under {other}: {run}");
            }
        }
        let _ = writeln!(out, "\n</details>");
    }
    footer(&mut out, report, "");
    out
}

/// Pretty JSON with a trailing newline (schema `freezefuzz-diff/1`).
pub fn json(report: &DiffReport) -> String {
    let mut text = serde_json::to_string_pretty(report).expect("a diff always serializes");
    text.push('\n');
    text
}
