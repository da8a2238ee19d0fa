//! Shrinking a failing schedule: delta-debugging passes that remove chunks
//! and single steps, drop fault firings, and move steps and runs of steps
//! so that runs of the same thread merge, while the outcome still holds, to
//! a local minimum of (steps, preemptions, fault firings), compared in that
//! order.
//!
//! A candidate is judged as it replays: moves that stop fitting (a thread
//! that cannot move there) cut it short. If the replayed prefix already
//! shows the outcome (frozen-write, user-error and dirty-at-freeze hold in
//! unfinished runs), the prefix is the candidate. Otherwise, if threads can
//! still move, the run is completed deterministically (see
//! [`complete_fixed`]) and judged at its end, which is what deadlock and
//! lost-write need. Everything here is a pure function of its inputs, so
//! shrinking gives the same result on any machine and for any `--jobs`.

use rayon::prelude::*;

use crate::engine::campaign::CellResult;
use crate::engine::exec::{self, Choice};
use crate::engine::program::Program;
use crate::engine::schedule;
use crate::engine::scheduler::Scheduler;
use crate::model::State;
use crate::oracle::{OracleSet, Outcome, Outcomes, RunEnd};

/// Most candidates one shrink tries before it stops where it is.
pub const CANDIDATES_MAX: u64 = 200_000;

/// The size of a schedule, compared lexicographically: steps first, then
/// preemptions, then fault firings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Measure {
    pub steps: usize,
    /// Switches away from a thread that could still have moved.
    pub preemptions: usize,
    /// Moves that fire a fault.
    pub faults: usize,
}

impl std::fmt::Display for Measure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} steps, {} preemptions, {} fault firings",
            self.steps, self.preemptions, self.faults
        )
    }
}

/// Measures a schedule that fits `program` (moves past a misfit are not counted).
pub fn measure(program: &Program, choices: &[Choice]) -> Measure {
    let mut state = program.initial;
    let mut m = Measure {
        steps: 0,
        preemptions: 0,
        faults: 0,
    };
    let mut last: Option<usize> = None;
    for choice in choices {
        let thread = choice.thread as usize;
        if !fits(program, &state, *choice) {
            break;
        }
        if let Some(prev) = last
            && prev != thread
            && exec::enabled(program, &state, prev)
        {
            m.preemptions += 1;
        }
        exec::step(program, &mut state, thread, choice.fire);
        m.steps += 1;
        m.faults += choice.fire as usize;
        last = Some(thread);
    }
    m
}

fn fits(program: &Program, state: &State, choice: Choice) -> bool {
    let thread = choice.thread as usize;
    thread < program.threads.len()
        && exec::enabled(program, state, thread)
        && (!choice.fire || exec::fault_point(program, state, thread).is_some())
}

/// Replays the moves of `choices` that fit, in order, stopping at the first
/// that does not; returns the state reached and how many moves fit.
pub fn replay_prefix(program: &Program, choices: &[Choice]) -> (State, usize) {
    let mut state = program.initial;
    for (i, choice) in choices.iter().enumerate() {
        if !fits(program, &state, *choice) {
            return (state, i);
        }
        exec::step(program, &mut state, choice.thread as usize, choice.fire);
    }
    (state, choices.len())
}

/// Completes a run from `state` without randomness: the thread that moved
/// last keeps moving while it can, otherwise the lowest-numbered thread
/// that can move does; no fault fires. Stops when no thread can move or
/// `choices` reaches `steps_max` moves.
pub fn complete_fixed(program: &Program, state: &mut State, choices: &mut Vec<Choice>, steps_max: u32) {
    let mut last = choices.last().map(|c| c.thread as usize);
    while choices.len() < steps_max as usize {
        let enabled = exec::enabled_mask(program, state);
        if enabled == 0 {
            break;
        }
        let thread = match last {
            Some(t) if enabled & (1 << t) != 0 => t,
            _ => enabled.trailing_zeros() as usize,
        };
        exec::step(program, state, thread, false);
        choices.push(Choice {
            thread: thread as u8,
            fire: false,
        });
        last = Some(thread);
    }
}

/// Completes a run from the end of `prefix` (which must fit) with a seeded
/// scheduler: `replay --continue-random`. Returns every move, prefix first.
pub fn complete_random(
    program: &Program,
    prefix: &[Choice],
    scheduler: &mut dyn Scheduler,
    seed: u64,
    steps_max: u32,
) -> Vec<Choice> {
    let (mut state, fitting) = replay_prefix(program, prefix);
    let mut choices = prefix[..fitting].to_vec();
    scheduler.begin(program, seed);
    while choices.len() < steps_max as usize {
        let enabled = exec::enabled_mask(program, &state);
        if enabled == 0 {
            break;
        }
        let thread = scheduler.pick(program, &state, enabled, choices.len() as u32);
        let fire = match exec::fault_point(program, &state, thread) {
            Some(kind) => scheduler.fire(program, kind),
            None => false,
        };
        exec::step(program, &mut state, thread, fire);
        choices.push(Choice {
            thread: thread as u8,
            fire,
        });
    }
    choices
}

fn judge(program: &Program, oracles: &OracleSet, state: &State) -> Outcomes {
    let terminated = exec::enabled_mask(program, state) == 0;
    oracles.judge(&RunEnd {
        program,
        state,
        terminated,
        step_limit: false,
    })
}

/// The schedule a candidate stands for, if it reaches `outcome` (see the
/// module docs), with the outcomes of that run.
pub fn evaluate(
    program: &Program,
    oracles: &OracleSet,
    candidate: &[Choice],
    outcome: Outcome,
    steps_max: u32,
) -> Option<(Vec<Choice>, Outcomes)> {
    let (mut state, fitting) = replay_prefix(program, candidate);
    let mut choices = candidate[..fitting].to_vec();
    let outcomes = judge(program, oracles, &state);
    if outcomes.contains(outcome) {
        return Some((choices, outcomes));
    }
    if exec::enabled_mask(program, &state) == 0 {
        return None;
    }
    complete_fixed(program, &mut state, &mut choices, steps_max);
    let outcomes = judge(program, oracles, &state);
    outcomes.contains(outcome).then_some((choices, outcomes))
}

/// The result of a shrink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shrunk {
    pub choices: Vec<Choice>,
    /// Every outcome of the shrunk run.
    pub outcomes: Outcomes,
    pub before: Measure,
    pub after: Measure,
    /// Candidates tried.
    pub candidates: u64,
    /// Stopped by [`CANDIDATES_MAX`] rather than at a local minimum.
    pub limited: bool,
}

/// Why a schedule cannot be shrunk.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShrinkError {
    #[error("the schedule does not reach {outcome} (it reaches: {got})")]
    NotReached { outcome: Outcome, got: String },
    #[error("{0} is not shrunk: its witness is a run past the step budget")]
    NotShrinkable(Outcome),
}

/// Shrinks `choices`, which must reach `outcome`, to a local minimum.
pub fn shrink(
    program: &Program,
    oracles: &OracleSet,
    choices: &[Choice],
    outcome: Outcome,
    steps_max: u32,
) -> Result<Shrunk, ShrinkError> {
    if matches!(outcome, Outcome::StepLimit | Outcome::Safe) {
        return Err(ShrinkError::NotShrinkable(outcome));
    }
    let before = measure(program, choices);
    let Some((start, outcomes)) = evaluate(program, oracles, choices, outcome, steps_max) else {
        let (state, _) = replay_prefix(program, choices);
        let got = judge(program, oracles, &state);
        return Err(ShrinkError::NotReached {
            outcome,
            got: if got.is_empty() {
                "nothing (unfinished)".into()
            } else {
                got.to_string()
            },
        });
    };
    let mut shrinker = Shrinker {
        program,
        oracles,
        outcome,
        steps_max,
        measure: measure(program, &start),
        current: start,
        outcomes,
        candidates: 0,
    };
    loop {
        let mut changed = false;
        changed |= shrinker.remove_chunks();
        changed |= shrinker.drop_faults();
        changed |= shrinker.move_steps();
        if !changed || shrinker.exhausted() {
            break;
        }
    }
    Ok(Shrunk {
        after: shrinker.measure,
        limited: shrinker.exhausted(),
        candidates: shrinker.candidates,
        outcomes: shrinker.outcomes,
        choices: shrinker.current,
        before,
    })
}

struct Shrinker<'a> {
    program: &'a Program,
    oracles: &'a OracleSet,
    outcome: Outcome,
    steps_max: u32,
    current: Vec<Choice>,
    measure: Measure,
    outcomes: Outcomes,
    candidates: u64,
}

impl Shrinker<'_> {
    fn exhausted(&self) -> bool {
        self.candidates >= CANDIDATES_MAX
    }

    /// Tries a candidate; keeps it if it reaches the outcome and is smaller.
    fn try_candidate(&mut self, candidate: &[Choice]) -> bool {
        if self.exhausted() {
            return false;
        }
        self.candidates += 1;
        let Some((choices, outcomes)) = evaluate(
            self.program,
            self.oracles,
            candidate,
            self.outcome,
            self.steps_max,
        ) else {
            return false;
        };
        let m = measure(self.program, &choices);
        if m < self.measure {
            self.current = choices;
            self.measure = m;
            self.outcomes = outcomes;
            true
        } else {
            false
        }
    }

    /// Removes chunks of halving sizes, down to single steps.
    fn remove_chunks(&mut self) -> bool {
        let mut changed = false;
        let mut size = (self.current.len() / 2).max(1);
        loop {
            let mut at = 0;
            while at + size <= self.current.len() {
                let mut candidate = self.current[..at].to_vec();
                candidate.extend_from_slice(&self.current[at + size..]);
                if self.try_candidate(&candidate) {
                    changed = true;
                } else {
                    at += 1;
                }
            }
            if size == 1 {
                return changed;
            }
            size /= 2;
        }
    }

    /// Turns fault firings into plain moves.
    fn drop_faults(&mut self) -> bool {
        let mut changed = false;
        let mut at = 0;
        while at < self.current.len() {
            if self.current[at].fire {
                let mut candidate = self.current.clone();
                candidate[at].fire = false;
                changed |= self.try_candidate(&candidate);
            }
            at += 1;
        }
        changed
    }

    /// Moves single steps, then whole runs of one thread, to every other
    /// place, so that runs of the same thread can merge.
    fn move_steps(&mut self) -> bool {
        let mut changed = false;
        let mut from = 0;
        while from < self.current.len() {
            let mut moved = false;
            for to in 0..self.current.len() {
                if to == from {
                    continue;
                }
                let mut candidate = self.current.clone();
                let step = candidate.remove(from);
                candidate.insert(to, step);
                if self.try_candidate(&candidate) {
                    moved = true;
                    break;
                }
            }
            changed |= moved;
            if !moved {
                from += 1;
            }
        }
        // Whole runs.
        let mut run = 0;
        while run < self.runs().len() {
            let runs = self.runs();
            let (start, end) = runs[run];
            let mut moved = false;
            for &(target, _) in runs.iter().chain(std::iter::once(&(self.current.len(), 0))) {
                if target >= start && target <= end {
                    continue;
                }
                let mut rest = self.current.clone();
                let block: Vec<Choice> = rest.drain(start..end).collect();
                let at = if target > end {
                    target - (end - start)
                } else {
                    target
                };
                let mut candidate = rest[..at].to_vec();
                candidate.extend_from_slice(&block);
                candidate.extend_from_slice(&rest[at..]);
                if self.try_candidate(&candidate) {
                    moved = true;
                    break;
                }
            }
            changed |= moved;
            if !moved {
                run += 1;
            }
        }
        changed
    }

    /// Maximal runs of one thread, as `start..end` ranges.
    fn runs(&self) -> Vec<(usize, usize)> {
        let mut runs = Vec::new();
        let mut start = 0;
        for i in 1..=self.current.len() {
            if i == self.current.len() || self.current[i].thread != self.current[start].thread {
                runs.push((start, i));
                start = i;
            }
        }
        runs
    }
}

/// Shrinks the first witness of every bad outcome of every cell, in place
/// (schedule, steps and outcomes; the run index and seed still name the
/// original run). Cells are shrunk in parallel; the result does not depend
/// on the number of workers.
pub fn shrink_witnesses(programs: &[Program], oracles: &OracleSet, cells: &mut [CellResult], steps_max: u32) {
    cells
        .par_iter_mut()
        .zip(programs.par_iter())
        .for_each(|(cell, program)| {
            for outcome in Outcome::every() {
                let Some(witness) = cell.witnesses[outcome as usize].as_mut() else {
                    continue;
                };
                let Ok(choices) = schedule::resolve(program, &witness.schedule) else {
                    continue;
                };
                if let Ok(shrunk) = shrink(program, oracles, &choices, outcome, steps_max) {
                    witness.schedule = schedule::format(program, &shrunk.choices);
                    witness.steps = shrunk.choices.len() as u32;
                    witness.outcomes = shrunk.outcomes;
                }
            }
        });
}
