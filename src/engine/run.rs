//! Running one program to the end under a scheduler, recording its choices.

use crate::engine::exec::{self, Choice};
use crate::engine::program::Program;
use crate::engine::schedule::{FitError, check_move};
use crate::engine::scheduler::Scheduler;
use crate::model::State;
use crate::oracle::{OracleSet, Outcomes, RunEnd};

/// How one run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunResult {
    pub outcomes: Outcomes,
    /// Steps taken.
    pub steps: u32,
    /// The run passed its step budget.
    pub step_limit: bool,
    pub state: State,
}

/// Runs `program` from its initial state until no thread can move or
/// `steps_max` steps have been taken. Every choice is pushed to `record`
/// (cleared first) when one is given; the caller reuses its buffer, so the
/// loop does not allocate once the buffer has grown.
pub fn run(
    program: &Program,
    oracles: &OracleSet,
    scheduler: &mut dyn Scheduler,
    seed: u64,
    steps_max: u32,
    mut record: Option<&mut Vec<Choice>>,
) -> RunResult {
    if let Some(record) = record.as_deref_mut() {
        record.clear();
    }
    scheduler.begin(program, seed);
    let mut state = program.initial;
    let mut steps = 0u32;
    let mut step_limit = false;
    loop {
        let enabled = exec::enabled_mask(program, &state);
        // Environment faults: each open gate is drawn with its probability
        // before the pick (see `fault`); no draw at all without them.
        let gate = if program.env_mask != 0 {
            draw_gate(program, &state, scheduler)
        } else {
            None
        };
        if enabled == 0 && gate.is_none() {
            break;
        }
        if steps >= steps_max {
            step_limit = true;
            break;
        }
        let thread = match gate {
            Some(thread) => thread,
            None => scheduler.pick(program, &state, enabled, steps),
        };
        debug_assert!(
            gate.is_some() || enabled & (1 << thread) != 0,
            "scheduler picked a blocked thread"
        );
        let fire = match exec::fault_point(program, &state, thread) {
            Some(kind) => scheduler.fire(program, kind),
            None => false,
        };
        exec::step(program, &mut state, thread, fire);
        if cfg!(debug_assertions) {
            program.assert_invariants(&state);
        }
        if let Some(record) = record.as_deref_mut() {
            record.push(Choice {
                thread: thread as u8,
                fire,
            });
        }
        steps += 1;
    }
    let outcomes = oracles.judge(&RunEnd {
        program,
        state: &state,
        terminated: !step_limit,
        step_limit,
    });
    RunResult {
        outcomes,
        steps,
        step_limit,
        state,
    }
}

/// The first open environment gate (in thread order, which is registry
/// order) whose fault fires in this step's draw.
fn draw_gate(program: &Program, state: &State, scheduler: &mut dyn Scheduler) -> Option<usize> {
    let mut gates = exec::gate_mask(program, state);
    while gates != 0 {
        let thread = gates.trailing_zeros() as usize;
        gates &= gates - 1;
        if let Some(kind) = exec::gate_at(program, state, thread)
            && scheduler.fire(program, kind)
        {
            return Some(thread);
        }
    }
    None
}

/// One step of a replay, for traces.
#[derive(Clone, Debug)]
pub struct TraceStep {
    pub choice: Choice,
    /// The instruction index the thread was at.
    pub pc: u16,
    pub before: State,
    pub after: State,
}

/// Replays `choices` exactly and judges the run where the schedule ends. If
/// threads could still move there, the run is unfinished: only the outcomes
/// that hold for any run (frozen-write, user-error, …) can be reported, and
/// step-limit only if the schedule is at least `steps_max` long. Returns the
/// result and the trace.
pub fn replay(
    program: &Program,
    oracles: &OracleSet,
    choices: &[Choice],
    steps_max: u32,
) -> Result<(RunResult, Vec<TraceStep>), FitError> {
    let mut trace = Vec::with_capacity(choices.len());
    let result = replay_each(program, oracles, choices, steps_max, &mut |step| {
        trace.push(step.clone())
    })?;
    Ok((result, trace))
}

/// [`replay`] that hands each step to `on_step` as it is made instead of
/// keeping the trace: memory does not grow with the length of the run.
pub fn replay_each(
    program: &Program,
    oracles: &OracleSet,
    choices: &[Choice],
    steps_max: u32,
    on_step: &mut dyn FnMut(&TraceStep),
) -> Result<RunResult, FitError> {
    let mut state = program.initial;
    for (i, choice) in choices.iter().enumerate() {
        if let Some(error) = check_move(program, &state, i + 1, *choice, None) {
            return Err(error);
        }
        let thread = choice.thread as usize;
        let before = state;
        let pc = state.pc[thread];
        exec::step(program, &mut state, thread, choice.fire);
        program.assert_invariants(&state);
        on_step(&TraceStep {
            choice: *choice,
            pc,
            before,
            after: state,
        });
    }
    let steps = choices.len() as u32;
    let can_move = exec::enabled_mask(program, &state) != 0;
    let step_limit = can_move && steps >= steps_max;
    let outcomes = oracles.judge(&RunEnd {
        program,
        state: &state,
        terminated: !can_move,
        step_limit,
    });
    Ok(RunResult {
        outcomes,
        steps,
        step_limit,
        state,
    })
}

/// Whether some thread can still move after `result` (the schedule stopped
/// early: the run is unfinished rather than ended).
pub fn can_continue(program: &Program, result: &RunResult) -> bool {
    exec::enabled_mask(program, &result.state) != 0
}
