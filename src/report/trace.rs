//! The step-by-step trace of a replayed run: step number, thread, the
//! statement with its `file:line`, what it changed, which threads are
//! blocked and on what, and the outcomes at the end.

use std::fmt::Write as _;

use crate::engine::exec::{self, Choice};
use crate::engine::program::{Op, Program};
use crate::engine::run::{RunResult, TraceStep};
use crate::engine::schedule;
use crate::ir::{Workspace, WriterLevel};
use crate::model::{State, record};

/// `file:line` of an instruction's origin, or `built-in`.
pub fn origin_location(workspace: &Workspace, program: &Program, thread: usize, pc: u16) -> String {
    let instr = program.instr(thread, pc);
    match program.origins[instr.origin as usize].loc {
        Some(loc) => format!("{}:{}", workspace.file_path(loc.file), loc.line),
        None => "built-in".into(),
    }
}

/// What a thread is about to do, for traces: `wait_unfrozen fs
/// (no-block.ff:12)`; inside a named body, the hook's call of the body
/// first: `wait_unfrozen fs (no-block.ff:36, in a body at no-block.ff:12)`.
fn describe(workspace: &Workspace, program: &Program, thread: usize, pc: u16) -> String {
    let instr = program.instr(thread, pc);
    let origin = &program.origins[instr.origin as usize];
    let at = origin_location(workspace, program, thread, pc);
    match origin.via {
        Some(via) => format!(
            "{} ({}:{}, in a body at {at})",
            origin.text,
            workspace.file_path(via.file),
            via.line
        ),
        None => format!("{} ({at})", origin.text),
    }
}

/// The changes between two states, as `field: old → new` items.
pub fn state_changes(program: &Program, before: &State, after: &State) -> Vec<String> {
    let mut changes = Vec::new();
    if before.level() != after.level() {
        changes.push(format!("level {} → {}", before.level(), after.level()));
    }
    let umount = |s: &State| -> String {
        if let Some(w) = s.umount_writer() {
            return format!("write by {}", program.threads[w].name);
        }
        let readers: Vec<&str> = (0..program.threads.len())
            .filter(|t| s.umount_readers() & (1 << t) != 0)
            .map(|t| program.threads[t].name.as_str())
            .collect();
        if readers.is_empty() {
            "free".into()
        } else {
            format!("read by {}", readers.join(", "))
        }
    };
    if umount(before) != umount(after) {
        changes.push(format!("s_umount {} → {}", umount(before), umount(after)));
    }
    for level in WriterLevel::ALL {
        if before.writers(level) != after.writers(level) {
            changes.push(format!(
                "writers[{level}] {} → {}",
                before.writers(level),
                after.writers(level)
            ));
        }
    }
    for (i, name) in program.pages.iter().enumerate() {
        let (b, a) = (&before.pages[i], &after.pages[i]);
        let mut flag = |label: &str, old: bool, new: bool| {
            if old != new {
                changes.push(format!("{name}.{label} {} → {}", yes(old), yes(new)));
            }
        };
        flag("cached", b.cached(), a.cached());
        flag("pte_dirty", b.pte_dirty(), a.pte_dirty());
        flag("dirty", b.dirty(), a.dirty());
        if b.buffers() != a.buffers() {
            changes.push(format!(
                "{name}.buffers {} → {}",
                b.buffers().name(),
                a.buffers().name()
            ));
        }
        if b.pte() != a.pte() {
            changes.push(format!("{name}.pte {} → {}", b.pte().name(), a.pte().name()));
        }
        if b.locked_by() != a.locked_by() {
            let who = |o: Option<usize>| {
                o.map(|t| program.threads[t].name.clone())
                    .unwrap_or_else(|| "no".into())
            };
            changes.push(format!(
                "{name}.locked {} → {}",
                who(b.locked_by()),
                who(a.locked_by())
            ));
        }
        if b.writeback_by() != a.writeback_by() {
            changes.push(format!(
                "{name}.writeback {} → {}",
                writeback_owners(program, b.writeback_by()),
                writeback_owners(program, a.writeback_by())
            ));
        }
        if b.mem != a.mem {
            changes.push(format!("{name}.mem {} → {}", b.mem, a.mem));
        }
        if b.disk != a.disk {
            changes.push(format!("{name}.disk {} → {}", b.disk, a.disk));
        }
    }
    let opened = |bit| !before.has_record(bit) && after.has_record(bit);
    if opened(record::WINDOW_OPEN) {
        changes.push("frozen window opens".into());
    }
    if before.has_record(record::WINDOW_OPEN) && !after.has_record(record::WINDOW_OPEN) {
        changes.push("frozen window closes".into());
    }
    if opened(record::FROZEN_WRITE) {
        changes.push("FROZEN WRITE (submit inside the frozen window)".into());
    }
    if opened(record::USER_ERROR) {
        changes.push("USER ERROR (SIGBUS)".into());
    }
    if opened(record::DIRTY_AT_FREEZE) {
        changes.push("dirty-at-freeze".into());
    }
    if opened(record::FREEZE_FAILED) {
        changes.push("the freeze's sync failed (EIO)".into());
    }
    for (kind, (b, a)) in crate::fault::NAMES
        .iter()
        .zip(before.faults_fired.iter().zip(&after.faults_fired))
    {
        if b != a {
            changes.push(format!("fault {kind} fired"));
        }
    }
    changes
}

/// PG_writeback as the trace shows it: `no`, or the threads whose
/// write-out is in flight (`by flusher`).
fn writeback_owners(program: &Program, mask: u8) -> String {
    if mask == 0 {
        return "no".into();
    }
    let names: Vec<&str> = (0..program.threads.len())
        .filter(|t| mask & (1 << t) != 0)
        .map(|t| program.threads[t].name.as_str())
        .collect();
    format!("by {}", names.join(", "))
}

/// Why a blocked thread waits, when its statement does not say it: `sync`'s
/// and `msync`'s per-page step waits for the page's write-out.
fn waits_on(program: &Program, state: &State, thread: usize) -> String {
    match program.instr(thread, state.pc[thread]).op {
        Op::TestDirty(page) if state.pages[page as usize].writeback() => format!(
            " — waits for writeback of {} ({})",
            program.pages[page as usize],
            writeback_owners(program, state.pages[page as usize].writeback_by())
        ),
        _ => String::new(),
    }
}

fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// Threads that cannot move in `state` and are not finished, with what they wait on.
pub fn blocked(workspace: &Workspace, program: &Program, state: &State) -> Vec<String> {
    (0..program.threads.len())
        .filter(|&t| !exec::enabled(program, state, t) && exec::stuck(program, state, t))
        .map(|t| {
            format!(
                "{} at {}{}",
                program.threads[t].name,
                describe(workspace, program, t, state.pc[t]),
                waits_on(program, state, t)
            )
        })
        .collect()
}

/// The whole trace as text.
pub fn render(workspace: &Workspace, program: &Program, steps: &[TraceStep], result: &RunResult) -> String {
    let choices: Vec<_> = steps.iter().map(|s| s.choice).collect();
    let mut out = header(program, &choices);
    for (i, step) in steps.iter().enumerate() {
        out.push_str(&step_text(workspace, program, i, step));
    }
    out.push_str(&ending(program, result));
    out
}

/// The first lines of a trace: the cell and the schedule.
pub fn header(program: &Program, choices: &[Choice]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "policy {} × scenario {}", program.policy, program.scenario);
    let _ = writeln!(out, "schedule: {}", schedule::format(program, choices));
    out
}

/// The lines of step `i` (0-based) of a trace.
pub fn step_text(workspace: &Workspace, program: &Program, i: usize, step: &TraceStep) -> String {
    let mut out = String::new();
    let width = program.threads.iter().map(|t| t.name.len()).max().unwrap_or(4);
    let thread = step.choice.thread as usize;
    let name = &program.threads[thread].name;
    let instr = program.instr(thread, step.pc);
    let origin = &program.origins[instr.origin as usize];
    let mut what = origin.text.clone();
    if !origin.context.is_empty() && origin.context != origin.text {
        what = format!("{what}  [{}]", origin.context);
    }
    // Say which way a test went.
    match instr.op {
        Op::Branch { .. } | Op::TestDirty(_) => {
            let taken = step.after.pc[thread] == instr.next && instr.next != instr.alt;
            what.push_str(if taken { " → true" } else { " → false" });
        }
        Op::TryLockUmount(_) => {
            let taken = step.after.pc[thread] == instr.next && instr.next != instr.alt;
            what.push_str(if taken { " → taken" } else { " → failed" });
        }
        Op::StoreEntry { .. } => {
            if step.after.pc[thread] == instr.alt {
                what.push_str(" → through the writable pte");
            } else if step.before.pages != step.after.pages {
                what.push_str(" → major fault");
            } else {
                what.push_str(" → write fault");
            }
        }
        _ => {}
    }
    if step.choice.fire {
        what.push_str("  !fault");
    }
    let _ = writeln!(
        out,
        "{:>4}  {name:<width$}  {what}  ({})",
        i + 1,
        origin_location(workspace, program, thread, step.pc)
    );
    let changes = state_changes(program, &step.before, &step.after);
    if !changes.is_empty() {
        let _ = writeln!(out, "      {:width$}  = {}", "", changes.join(", "));
    }
    let stuck = blocked(workspace, program, &step.after);
    if !stuck.is_empty() {
        let _ = writeln!(out, "      {:width$}  blocked: {}", "", stuck.join("; "));
    }
    out
}

/// The last lines of a trace: how the run ended and its outcomes.
pub fn ending(program: &Program, result: &RunResult) -> String {
    let mut out = String::new();
    let ending = if result.step_limit {
        "the step budget was reached".to_string()
    } else if exec::enabled_mask(program, &result.state) == 0 {
        "no thread can move".to_string()
    } else {
        "the schedule ended while threads could still move (judged as an unfinished run)".to_string()
    };
    let _ = writeln!(out, "end: {ending}");
    let _ = writeln!(
        out,
        "outcomes: {}",
        if result.outcomes.is_empty() {
            "none (unfinished)".to_string()
        } else {
            result.outcomes.to_string()
        }
    );
    out
}
