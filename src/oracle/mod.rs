//! Oracles: how a run is judged. Each oracle is one file behind [`Oracle`];
//! [`OracleSet`] is the one place they are registered.
//!
//! An oracle reads the final state of a run (including the oracle records the
//! model keeps as it goes: the frozen window, frozen writes, user errors,
//! dirty-at-freeze, the last value stored per block) and says whether its
//! outcome holds. It must be a pure function of [`RunEnd`]: no IO, no
//! randomness, no clock — verdicts must be identical on every machine.

mod deadlock;
mod dirty_at_freeze;
mod frozen_write;
mod lost_write;
mod step_limit;
mod user_error;

use std::fmt;

use crate::engine::exec;
use crate::engine::program::Program;
use crate::model::State;

pub use deadlock::Deadlock;
pub use dirty_at_freeze::DirtyAtFreeze;
pub use frozen_write::FrozenWrite;
pub use lost_write::LostWrite;
pub use step_limit::StepLimit;
pub use user_error::UserError;

/// What a run can end as. A run can carry several outcomes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Outcome {
    Safe = 0,
    FrozenWrite = 1,
    Deadlock = 2,
    LostWrite = 3,
    UserError = 4,
    DirtyAtFreeze = 5,
    StepLimit = 6,
}

impl Outcome {
    /// In report order.
    pub const ALL: [Outcome; 7] = [
        Outcome::Safe,
        Outcome::FrozenWrite,
        Outcome::Deadlock,
        Outcome::LostWrite,
        Outcome::UserError,
        Outcome::DirtyAtFreeze,
        Outcome::StepLimit,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Safe => "safe",
            Outcome::FrozenWrite => "frozen-write",
            Outcome::Deadlock => "deadlock",
            Outcome::LostWrite => "lost-write",
            Outcome::UserError => "user-error",
            Outcome::DirtyAtFreeze => "dirty-at-freeze",
            Outcome::StepLimit => "step-limit",
        }
    }

    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.name() == name)
    }

    /// Whether this outcome is a finding (everything but `safe`).
    pub fn is_bad(self) -> bool {
        self != Outcome::Safe
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of outcomes, as a bit mask indexed by [`Outcome`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Outcomes(pub u8);

impl Outcomes {
    pub fn insert(&mut self, outcome: Outcome) {
        self.0 |= 1 << outcome as u8;
    }
    pub fn contains(self, outcome: Outcome) -> bool {
        self.0 & (1 << outcome as u8) != 0
    }
    pub fn union(self, other: Outcomes) -> Outcomes {
        Outcomes(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    pub fn iter(self) -> impl Iterator<Item = Outcome> {
        Outcome::ALL.into_iter().filter(move |o| self.contains(*o))
    }
}

impl fmt::Display for Outcomes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Outcome::name).collect();
        f.write_str(&names.join(", "))
    }
}

/// How a run ended, as the oracles see it.
pub struct RunEnd<'a> {
    pub program: &'a Program,
    pub state: &'a State,
    /// No thread could move when the run ended.
    pub terminated: bool,
    /// The run passed its step budget before every thread stopped.
    pub step_limit: bool,
}

impl RunEnd<'_> {
    /// No thread could move when the run ended.
    pub fn terminated(&self) -> bool {
        self.terminated
    }

    /// Some thread other than a sleeping flusher has not finished.
    pub fn any_stuck(&self) -> bool {
        (0..self.program.threads.len()).any(|t| exec::stuck(self.program, self.state, t))
    }

    /// The run finished: it terminated and every thread is done (or is the
    /// flusher, asleep).
    pub fn finished(&self) -> bool {
        self.terminated() && !self.any_stuck()
    }
}

/// A judge of runs. Implementations must be deterministic pure functions of
/// the [`RunEnd`] (see the module docs).
pub trait Oracle: Send + Sync {
    /// The outcome this oracle reports.
    fn outcome(&self) -> Outcome;
    /// Whether a run with this outcome can still be `safe` (true only for
    /// informational oracles such as dirty-at-freeze).
    fn informational(&self) -> bool {
        false
    }
    /// Whether the outcome holds for this run.
    fn judge(&self, end: &RunEnd<'_>) -> bool;
}

/// The oracles a campaign judges with, in report order.
pub struct OracleSet {
    oracles: Vec<Box<dyn Oracle>>,
}

impl OracleSet {
    /// The standard oracles: frozen-write, deadlock, lost-write, user-error, step-limit.
    pub fn standard() -> OracleSet {
        OracleSet {
            oracles: vec![
                Box::new(FrozenWrite),
                Box::new(Deadlock),
                Box::new(LostWrite),
                Box::new(UserError),
                Box::new(StepLimit),
            ],
        }
    }

    /// The standard oracles plus the optional ones named (`dirty-at-freeze`).
    pub fn with_optional(names: &[String]) -> Result<OracleSet, String> {
        let mut set = OracleSet::standard();
        for name in names {
            match name.as_str() {
                "dirty-at-freeze" => set.add(Box::new(DirtyAtFreeze)),
                other => {
                    return Err(format!(
                        "unknown oracle `{other}`; the optional oracles are: dirty-at-freeze"
                    ));
                }
            }
        }
        Ok(set)
    }

    /// Adds a custom oracle (a plug-in).
    pub fn add(&mut self, oracle: Box<dyn Oracle>) {
        if !self.oracles.iter().any(|o| o.outcome() == oracle.outcome()) {
            self.oracles.push(oracle);
        }
    }

    /// Adds a plug-in oracle even when another already reports its outcome:
    /// the outcome then holds when any of them says so. A plug-in reports
    /// one of the [`Outcome`]s (the set is fixed so that reports, JSON and
    /// campaigns stay comparable); see `examples/plugins.rs`.
    pub fn add_plugin(&mut self, oracle: Box<dyn Oracle>) {
        self.oracles.push(oracle);
    }

    /// The optional oracles turned on, by name (for reports).
    pub fn optional_names(&self) -> Vec<&'static str> {
        self.oracles
            .iter()
            .filter(|o| o.informational())
            .map(|o| o.outcome().name())
            .collect()
    }

    /// Judges a run: every outcome that holds, plus `safe` for a finished run
    /// with no non-informational finding.
    pub fn judge(&self, end: &RunEnd<'_>) -> Outcomes {
        let mut outcomes = Outcomes::default();
        let mut unsafe_run = false;
        for oracle in &self.oracles {
            if oracle.judge(end) {
                outcomes.insert(oracle.outcome());
                unsafe_run |= !oracle.informational();
            }
        }
        if !unsafe_run && end.finished() {
            outcomes.insert(Outcome::Safe);
        }
        outcomes
    }
}
