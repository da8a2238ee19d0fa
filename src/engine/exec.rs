//! The step function: the guard and the effect of each operation on the
//! model state. One call of [`step`] is one atomic step of one thread.
//!
//! No allocation, no IO: this is the hot loop of every scheduler.

use crate::engine::program::{Op, Program};
use crate::fault::{
    self, EmergencyThaw, Evict, Fault, FaultContext, FaultKind, IoError, SecondFreezer, StatementAt,
    TrylockFail,
};
use crate::ir::{Buffers, Cond, EqOp, Pte};
use crate::model::{State, ThreadId, record};

/// One scheduling decision: which thread moves, and whether the fault
/// possible at its current operation fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Choice {
    pub thread: u8,
    pub fire: bool,
}

/// Whether `thread` can take a step now (its guard holds). An environment
/// fault's gate counts when it can fire.
#[inline]
pub fn enabled(program: &Program, state: &State, thread: ThreadId) -> bool {
    guard(program, state, thread, true)
}

#[inline(always)]
fn guard(program: &Program, state: &State, thread: ThreadId, gates: bool) -> bool {
    let code = &program.threads[thread].code;
    let instr = &code[state.pc[thread] as usize];
    match instr.op {
        Op::LockUmount(mode) | Op::LockUmountChecked { mode, .. } => state.can_lock_umount(mode),
        Op::WaitUnfrozen(level) => state.below(level),
        Op::SbStart(level) => state.below(level.level()),
        Op::WaitWriters(level) => state.writers(level) == 0,
        Op::LockPage(page) => state.can_lock_page(page as usize),
        Op::TestDirty(page) => state.writeback_settled(page as usize),
        Op::AwaitFrozen => state.has_record(record::WINDOW_EVER),
        Op::FlusherSleep => state.flusher_may_wake(program.pages.len()),
        Op::Gate(kind) => gates && gate_open(program, state, kind),
        Op::Done | Op::Jump => false,
        Op::TryLockUmount(_)
        | Op::UnlockUmount
        | Op::LevelCheck(_)
        | Op::SbEnd(_)
        | Op::SetLevel(_)
        | Op::UnlockPage(_)
        | Op::MarkDirty(_)
        | Op::Allocate(_)
        | Op::Reserve(_)
        | Op::Clean { .. }
        | Op::Submit { .. }
        | Op::SyncFailed { .. }
        | Op::Branch { .. }
        | Op::FailSigbus(_)
        | Op::StoreEntry { .. }
        | Op::FaultComplete { .. }
        | Op::Munmap(_) => true,
    }
}

/// Whether environment fault `kind`'s gate is open: budget left, and the
/// fault can fire.
#[inline]
pub fn gate_open(program: &Program, state: &State, kind: FaultKind) -> bool {
    let setting = &program.faults[kind as usize];
    setting.enabled && state.faults_fired[kind as usize] < setting.max && gate_can_fire(kind, program, state)
}

/// The threads that can move, as a bit mask — without the environment
/// faults' gates: a run in which only gates are open is over (the
/// environment need not act); see [`gate_mask`].
#[inline]
pub fn enabled_mask(program: &Program, state: &State) -> u32 {
    let mut mask = 0;
    for thread in 0..program.threads.len() {
        if guard(program, state, thread, false) {
            mask |= 1 << thread;
        }
    }
    mask
}

/// The environment threads whose gate is open, as a bit mask (0 at once
/// for a program without environment faults).
#[inline]
pub fn gate_mask(program: &Program, state: &State) -> u32 {
    let mut mask = 0;
    let mut env = program.env_mask;
    while env != 0 {
        let thread = env.trailing_zeros() as usize;
        env &= env - 1;
        if let Op::Gate(kind) = program.threads[thread].code[state.pc[thread] as usize].op
            && gate_open(program, state, kind)
        {
            mask |= 1 << thread;
        }
    }
    mask
}

/// The fault of the gate `thread` is at, if it is at one.
#[inline]
pub fn gate_at(program: &Program, state: &State, thread: ThreadId) -> Option<FaultKind> {
    match program.threads[thread].code[state.pc[thread] as usize].op {
        Op::Gate(kind) => Some(kind),
        _ => None,
    }
}

/// Whether `thread` has finished its program.
pub fn finished(program: &Program, state: &State, thread: ThreadId) -> bool {
    program.threads[thread].code[state.pc[thread] as usize].op == Op::Done
}

/// Whether `thread` is the flusher, asleep between passes, or an
/// environment fault's thread at its gate: a daemon that neither keeps a run
/// alive nor counts as stuck.
pub fn sleeping_flusher(program: &Program, state: &State, thread: ThreadId) -> bool {
    matches!(
        program.threads[thread].code[state.pc[thread] as usize].op,
        Op::FlusherSleep | Op::Gate(_)
    )
}

/// Whether a thread is neither finished nor a sleeping flusher: at the end of
/// a run, such a thread is stuck.
pub fn stuck(program: &Program, state: &State, thread: ThreadId) -> bool {
    !finished(program, state, thread) && !sleeping_flusher(program, state, thread)
}

/// The statement fault that can fire at `thread`'s next step, if one is
/// enabled, has firings left in this run, and its plug-in says it can fire
/// (the registry is consulted only at statements with a failure path).
#[inline]
pub fn fault_point(program: &Program, state: &State, thread: ThreadId) -> Option<FaultKind> {
    let op = program.threads[thread].code[state.pc[thread] as usize].op;
    let kind = fault::at_site(op.site()?);
    let setting = &program.faults[kind as usize];
    (setting.enabled
        && state.faults_fired[kind as usize] < setting.max
        && statement_can_fire(kind, program, state, thread, op))
    .then_some(kind)
}

/// Evaluates an `if` condition on `page`.
pub fn eval(cond: &Cond, state: &State, page: usize) -> bool {
    let p = &state.pages[page];
    match cond {
        Cond::Buffers(op, value) => {
            let holds = match value {
                // The kernel sets BH_Mapped on delalloc buffers too.
                Buffers::Mapped => p.buffers() != Buffers::Unmapped,
                other => p.buffers() == *other,
            };
            holds == (*op == EqOp::Eq)
        }
        Cond::Pte(op, value) => (p.pte() == *value) == (*op == EqOp::Eq),
        Cond::Level(op, level) => op.holds(state.level(), *level),
        Cond::Dirty => p.dirty(),
        Cond::PteDirty => p.pte_dirty(),
        Cond::Cached => p.cached(),
        Cond::Locked => p.locked_by().is_some(),
        Cond::Not(inner) => !eval(inner, state, page),
        Cond::And(a, b) => eval(a, state, page) && eval(b, state, page),
        Cond::Or(a, b) => eval(a, state, page) || eval(b, state, page),
    }
}

/// The record of a refused freeze (EBUSY) or thaw (EINVAL).
fn refusal(require: crate::ir::Level) -> u8 {
    if require == crate::ir::Level::Complete {
        record::THAW_REFUSED
    } else {
        record::FREEZE_REFUSED
    }
}

/// Runs one step of `thread`. The caller has checked [`enabled`]; `fire`
/// may only be true when [`fault_point`] returned a fault.
#[inline]
pub fn step(program: &Program, state: &mut State, thread: ThreadId, fire: bool) {
    let instr = program.threads[thread].code[state.pc[thread] as usize];
    let mut pc = instr.next;
    match instr.op {
        Op::LockUmount(mode) => state.lock_umount(thread, mode),
        Op::LockUmountChecked { mode, require } => {
            if state.level() == require {
                state.lock_umount(thread, mode);
            } else {
                state.record(refusal(require));
                pc = instr.alt;
            }
        }
        Op::LevelCheck(require) => {
            if state.level() != require {
                state.record(refusal(require));
                pc = instr.alt;
            }
        }
        Op::Gate(kind) => {
            state.faults_fired[kind as usize] += 1;
            gate_fire(kind, program, state);
        }
        Op::TryLockUmount(mode) => {
            if fire {
                state.faults_fired[FaultKind::TrylockFail as usize] += 1;
                pc = instr.alt;
            } else if state.can_lock_umount(mode) {
                state.lock_umount(thread, mode);
            } else {
                pc = instr.alt;
            }
        }
        Op::UnlockUmount => state.unlock_umount(thread),
        Op::WaitUnfrozen(_) | Op::WaitWriters(_) | Op::AwaitFrozen | Op::FlusherSleep => {}
        Op::SbStart(level) => state.sb_start(level),
        Op::SbEnd(level) => state.sb_end(level),
        Op::SetLevel(level) => state.set_level(level, program.pages.len()),
        Op::LockPage(page) => state.lock_page(thread, page as usize),
        Op::UnlockPage(page) => state.unlock_page(page as usize),
        Op::MarkDirty(page) => state.mark_dirty(page as usize),
        Op::Allocate(page) => state.allocate(page as usize),
        Op::Reserve(page) => state.reserve(page as usize),
        Op::Clean { page, writeback } => {
            state.clean(page as usize);
            if writeback {
                state.start_writeback(thread, page as usize);
            }
        }
        Op::Submit { page, has_else } => {
            if fire {
                state.faults_fired[FaultKind::IoError as usize] += 1;
                if !has_else {
                    state.redirty(page as usize);
                }
                // The failure edge: the `else`, or (without one) the next
                // statement, in a `sync else`'s error copy if in one.
                pc = instr.alt;
            } else {
                state.submit(page as usize);
            }
        }
        Op::SyncFailed { freeze } => {
            if freeze {
                state.record(record::FREEZE_FAILED);
            }
        }
        Op::TestDirty(page) => {
            if !state.pages[page as usize].dirty() {
                pc = instr.alt;
            }
        }
        Op::Branch { cond, page } => {
            if !eval(&program.conds[cond as usize], state, page as usize) {
                pc = instr.alt;
            }
        }
        Op::FailSigbus(page) => state.fault_fail(thread, page as usize),
        Op::StoreEntry { page, value } => {
            let p = &state.pages[page as usize];
            if p.pte() == Pte::Writable {
                state.store_through_pte(page as usize, value);
                pc = instr.alt;
            } else if !p.cached() {
                state.read_in(page as usize);
            }
        }
        Op::FaultComplete { page, value } => state.fault_complete(thread, page as usize, value),
        Op::Munmap(page) => state.munmap(page as usize),
        Op::Done | Op::Jump => unreachable!("stepped a thread that cannot move"),
    }
    // Leaving a `writeback` body, however the step leaves it, completes the
    // thread's write-out of that page (end_page_writeback).
    let leaves = instr.leaves_to(pc);
    if leaves != 0 {
        state.end_writeback(thread, leaves);
    }
    state.pc[thread] = pc;
}

/// Whether the statement fault `kind` can fire for `thread` at `op`.
/// Shipped faults are dispatched statically (no dynamic call on the step
/// loop's path).
#[inline]
fn statement_can_fire(kind: FaultKind, program: &Program, state: &State, thread: usize, op: Op) -> bool {
    let Some(site) = op.site() else {
        return false;
    };
    let umount_mode = match op {
        Op::TryLockUmount(mode) => Some(mode),
        _ => None,
    };
    let context = FaultContext {
        program,
        state,
        at: Some(StatementAt {
            thread,
            site,
            umount_mode,
        }),
    };
    match kind {
        FaultKind::IoError => IoError.can_fire(&context),
        FaultKind::TrylockFail => TrylockFail.can_fire(&context),
        _ => false,
    }
}

/// Whether the gate of environment fault `kind` is open (budget aside).
#[inline]
fn gate_can_fire(kind: FaultKind, program: &Program, state: &State) -> bool {
    let context = FaultContext {
        program,
        state,
        at: None,
    };
    match kind {
        FaultKind::Evict => Evict.can_fire(&context),
        FaultKind::EmergencyThaw => EmergencyThaw.can_fire(&context),
        FaultKind::SecondFreezer => SecondFreezer.can_fire(&context),
        FaultKind::IoError | FaultKind::TrylockFail => false,
        plugin => program.fault(plugin).is_some_and(|f| f.can_fire(&context)),
    }
}

/// The effect of environment fault `kind`'s gate step.
#[inline]
fn gate_fire(kind: FaultKind, program: &Program, state: &mut State) {
    match kind {
        FaultKind::Evict => Evict.fire(program, state),
        FaultKind::EmergencyThaw => EmergencyThaw.fire(program, state),
        FaultKind::SecondFreezer => SecondFreezer.fire(program, state),
        FaultKind::IoError | FaultKind::TrylockFail => {}
        plugin => {
            if let Some(f) = program.fault(plugin) {
                f.fire(program, state)
            }
        }
    }
}
