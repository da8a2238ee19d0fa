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
use std::sync::RwLock;

use crate::model::State;

pub use deadlock::Deadlock;
pub use dirty_at_freeze::DirtyAtFreeze;
pub use frozen_write::FrozenWrite;
pub use lost_write::LostWrite;
pub use step_limit::StepLimit;
pub use user_error::UserError;

/// What a run can end as. A run can carry several outcomes.
///
/// The seven built-in outcomes, plus up to [`CUSTOM_OUTCOMES_MAX`] custom
/// ones that oracle plug-ins register by name ([`Outcome::custom`]).
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
    Custom0 = 7,
    Custom1 = 8,
    Custom2 = 9,
    Custom3 = 10,
    Custom4 = 11,
    Custom5 = 12,
    Custom6 = 13,
    Custom7 = 14,
}

/// Most custom outcomes a program can register.
pub const CUSTOM_OUTCOMES_MAX: usize = 8;
/// Built-in and custom outcome slots: the size of per-outcome tables.
pub const OUTCOMES_MAX: usize = 7 + CUSTOM_OUTCOMES_MAX;

const CUSTOM_SLOTS: [Outcome; CUSTOM_OUTCOMES_MAX] = [
    Outcome::Custom0,
    Outcome::Custom1,
    Outcome::Custom2,
    Outcome::Custom3,
    Outcome::Custom4,
    Outcome::Custom5,
    Outcome::Custom6,
    Outcome::Custom7,
];

/// The names of the registered custom outcomes, in registration order. It is
/// written only by [`Outcome::custom`]; the order (and so every report's) is
/// the order in which the program registers its plug-ins.
static CUSTOM_NAMES: RwLock<Vec<&'static str>> = RwLock::new(Vec::new());

impl Outcome {
    /// The built-in outcomes, in report order.
    pub const ALL: [Outcome; 7] = [
        Outcome::Safe,
        Outcome::FrozenWrite,
        Outcome::Deadlock,
        Outcome::LostWrite,
        Outcome::UserError,
        Outcome::DirtyAtFreeze,
        Outcome::StepLimit,
    ];

    /// Every outcome in report order: the built-in ones, then the registered
    /// custom ones.
    pub fn every() -> impl Iterator<Item = Outcome> {
        let customs = CUSTOM_NAMES.read().map(|names| names.len()).unwrap_or(0);
        Outcome::ALL
            .into_iter()
            .chain(CUSTOM_SLOTS.into_iter().take(customs))
    }

    /// The custom outcome called `name`, registered on first use (the same
    /// name always gives the same outcome). Names are lowercase words with
    /// `-`, and may not be a built-in outcome's.
    pub fn custom(name: &'static str) -> Result<Outcome, String> {
        let valid = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && name.starts_with(|c: char| c.is_ascii_lowercase());
        if !valid {
            return Err(format!(
                "outcome name `{name}`: use lowercase letters, digits and `-`"
            ));
        }
        if Outcome::ALL.iter().any(|o| o.name() == name) {
            return Err(format!("outcome `{name}` is built in"));
        }
        let mut names = CUSTOM_NAMES
            .write()
            .map_err(|_| "the outcome registry is poisoned".to_string())?;
        if let Some(i) = names.iter().position(|n| *n == name) {
            return Ok(CUSTOM_SLOTS[i]);
        }
        if names.len() >= CUSTOM_OUTCOMES_MAX {
            return Err(format!("at most {CUSTOM_OUTCOMES_MAX} custom outcomes"));
        }
        names.push(name);
        Ok(CUSTOM_SLOTS[names.len() - 1])
    }

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Safe => "safe",
            Outcome::FrozenWrite => "frozen-write",
            Outcome::Deadlock => "deadlock",
            Outcome::LostWrite => "lost-write",
            Outcome::UserError => "user-error",
            Outcome::DirtyAtFreeze => "dirty-at-freeze",
            Outcome::StepLimit => "step-limit",
            custom => {
                let slot = custom as usize - Outcome::ALL.len();
                CUSTOM_NAMES
                    .read()
                    .ok()
                    .and_then(|names| names.get(slot).copied())
                    .unwrap_or("unregistered-outcome")
            }
        }
    }

    pub fn from_name(name: &str) -> Option<Outcome> {
        Outcome::every().find(|o| o.name() == name)
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
pub struct Outcomes(pub u16);

impl Outcomes {
    pub fn insert(&mut self, outcome: Outcome) {
        self.0 |= 1 << outcome as u16;
    }
    pub fn contains(self, outcome: Outcome) -> bool {
        self.0 & (1 << outcome as u16) != 0
    }
    pub fn union(self, other: Outcomes) -> Outcomes {
        Outcomes(self.0 | other.0)
    }
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
    /// The outcomes in the set, in report order (a custom one only if
    /// registered). A set of built-in outcomes alone does not read the
    /// registry's lock: the exhaustive search calls this once per state.
    pub fn iter(self) -> impl Iterator<Item = Outcome> {
        let customs = if self.0 >> Outcome::ALL.len() == 0 {
            0
        } else {
            CUSTOM_NAMES.read().map(|names| names.len()).unwrap_or(0)
        };
        Outcome::ALL
            .into_iter()
            .chain(CUSTOM_SLOTS.into_iter().take(customs))
            .filter(move |o| self.contains(*o))
    }
}

impl fmt::Display for Outcomes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Outcome::name).collect();
        f.write_str(&names.join(", "))
    }
}

/// What an oracle may read of the compiled program. The compiled program
/// (`engine::program::Program`) implements it: oracles depend on the model
/// and this view only, and the engine depends on oracles, never the other
/// way round.
pub trait RunView {
    /// How many threads the program has (threads `0..threads_count()`).
    fn threads_count(&self) -> usize;
    /// How many pages the scenario has (pages `0..page_count()`).
    fn page_count(&self) -> usize;
    /// Whether `thread` has not finished in `state` and is not the flusher
    /// asleep (the deadlock oracle's "stuck").
    fn stuck(&self, state: &State, thread: usize) -> bool;
}

/// How a run ended, as the oracles see it.
pub struct RunEnd<'a> {
    pub program: &'a dyn RunView,
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
        (0..self.program.threads_count()).any(|t| self.program.stuck(self.state, t))
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
    /// Whether the verdict stays the same when interchangeable threads (the
    /// same program up to the values they store) trade places, their stored
    /// values with them (see `engine::symmetry`). The exhaustive search
    /// reduces by symmetry only when every oracle says so; a plug-in that
    /// does not is never assumed symmetric.
    fn symmetric(&self) -> bool {
        false
    }
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
    /// the outcome then holds when any of them says so. A plug-in reports a
    /// built-in outcome or a custom one of its own ([`Outcome::custom`]);
    /// see `examples/plugins.rs`.
    pub fn add_plugin(&mut self, oracle: Box<dyn Oracle>) {
        self.oracles.push(oracle);
    }

    /// Whether every oracle's verdict is symmetric ([`Oracle::symmetric`]).
    pub fn symmetric(&self) -> bool {
        self.oracles.iter().all(|o| o.symmetric())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn custom_outcomes_are_registered_once_by_name() {
        let a = Outcome::custom("unit-test-outcome").unwrap();
        assert_eq!(Outcome::custom("unit-test-outcome").unwrap(), a);
        assert_eq!(a.name(), "unit-test-outcome");
        assert_eq!(Outcome::from_name("unit-test-outcome"), Some(a));
        assert!(Outcome::every().any(|o| o == a));
        assert!(a.is_bad());
        let mut set = Outcomes::default();
        set.insert(a);
        set.insert(Outcome::Deadlock);
        assert_eq!(set.to_string(), "deadlock, unit-test-outcome");
    }

    #[test]
    fn custom_outcome_names_are_checked() {
        assert!(Outcome::custom("deadlock").is_err());
        assert!(Outcome::custom("").is_err());
        assert!(Outcome::custom("Has Space").is_err());
        assert!(Outcome::custom("-leading").is_err());
    }
}
