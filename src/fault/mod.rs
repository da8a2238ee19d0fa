//! Fault plug-ins: where a run can be disturbed besides the interleaving.
//! One file per fault behind the [`Fault`] trait; [`BUILTIN`] is the one
//! place the shipped faults are registered, and [`FaultRegistry`] adds
//! plug-ins written in Rust.
//!
//! A fault is turned on in a `faults` block of a policy or scenario with a
//! probability (random and PCT campaigns) and a per-run bound (`max`). There
//! are two placements (see [`Placement`]):
//!
//! - **statement faults** fire at a thread's own step at a statement that
//!   has a failure path (`submit`, `trylock`). The fault only decides
//!   *whether* the failure path is taken; what the failure does belongs to
//!   the statement (`submit else`, `trylock … else`). In a schedule the
//!   firing is written `thread!`.
//! - **environment faults** are not tied to any thread's statement. Each
//!   gets a pseudo-thread of its own, present only when the fault is turned
//!   on, whose first step (its *gate*) is the firing. The gate is open while
//!   the run's budget for the fault lasts and [`Fault::can_fire`] holds.
//!   What follows the gate is given by [`EnvBody`]: nothing (`evict`), the
//!   policy's `thaw` (`emergency-thaw`) or `freeze` then `thaw`
//!   (`second-freezer`); then the thread returns to its gate. In a schedule
//!   the firing is the pseudo-thread's name (`reclaim`).
//!
//! How probability maps to scheduling: a statement fault is drawn once each
//! time its statement runs and it could fire. An environment fault is drawn
//! once before every step while its gate is open (gates in registry order,
//! the first that fires takes the step); if none fires, the scheduler picks
//! among the other threads, and when no other thread can move the run ends.
//! After the gate, the pseudo-thread is an ordinary thread for the
//! scheduler. Exhaustive search makes every open gate and every possible
//! statement firing a branch, within the per-run bound, and judges a state
//! in which only gates are open as the end of a run (the environment need
//! not act) while still exploring what the gates lead to.

mod emergency_thaw;
mod evict;
mod io_error;
mod second_freezer;
mod trylock_fail;

use std::fmt;
use std::sync::Arc;

pub use emergency_thaw::EmergencyThaw;
pub use evict::Evict;
pub use io_error::IoError;
pub use second_freezer::SecondFreezer;
pub use trylock_fail::TrylockFail;

use crate::ir::LockMode;
use crate::model::{FAULT_KINDS_MAX, State};

/// The names a `faults` block may use, in registry order (the names of [`BUILTIN`]).
pub const NAMES: &[&str] = &[
    "io-error",
    "trylock-fail",
    "evict",
    "emergency-thaw",
    "second-freezer",
];

/// The shipped faults, in registry order: the one place they are registered.
/// Entry `i` is [`FaultKind`] `i`.
pub static BUILTIN: [&dyn Fault; 5] = [&IoError, &TrylockFail, &Evict, &EmergencyThaw, &SecondFreezer];

/// A fault's slot: the index into the program's fault settings and into the per-run
/// firing counters of the model state. The first five are the shipped
/// faults; `Plugin*` are the slots of faults registered from Rust with a
/// [`FaultRegistry`], in registration order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FaultKind {
    /// An I/O error on `submit`: the disk is unchanged; `submit else` decides.
    IoError = 0,
    /// `trylock` fails although the lock is free.
    TrylockFail = 1,
    /// Memory reclaim drops a clean, unlocked, unmapped page.
    Evict = 2,
    /// An emergency thaw (SysRq-j) at an arbitrary moment.
    EmergencyThaw = 3,
    /// A second `fsfreeze -f` / `fsfreeze -u`, concurrent with the scenario's.
    SecondFreezer = 4,
    Plugin0 = 5,
    Plugin1 = 6,
    Plugin2 = 7,
}

/// Most faults registered from Rust in one program.
pub const PLUGINS_MAX: usize = FAULT_KINDS_MAX - BUILTIN.len();

impl FaultKind {
    /// The shipped faults, in registry order.
    pub const ALL: [FaultKind; 5] = [
        FaultKind::IoError,
        FaultKind::TrylockFail,
        FaultKind::Evict,
        FaultKind::EmergencyThaw,
        FaultKind::SecondFreezer,
    ];

    const SLOTS: [FaultKind; FAULT_KINDS_MAX] = [
        FaultKind::IoError,
        FaultKind::TrylockFail,
        FaultKind::Evict,
        FaultKind::EmergencyThaw,
        FaultKind::SecondFreezer,
        FaultKind::Plugin0,
        FaultKind::Plugin1,
        FaultKind::Plugin2,
    ];

    /// The name of a shipped fault (`plugin` for a plug-in slot: its name is
    /// in the program's registry: `Program::fault_name`).
    pub fn name(self) -> &'static str {
        NAMES.get(self as usize).copied().unwrap_or("plugin")
    }

    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The slot with index `index`, if it exists.
    pub fn from_index(index: usize) -> Option<FaultKind> {
        FaultKind::SLOTS.get(index).copied()
    }

    /// The plug-in index of a plug-in slot.
    pub fn plugin_index(self) -> Option<usize> {
        (self as usize).checked_sub(BUILTIN.len())
    }
}

/// Where a fault fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// At a thread's own step at this kind of statement (`thread!`).
    Statement(Site),
    /// In a pseudo-thread of its own, named `thread`, that runs `body`
    /// after each firing.
    Environment { thread: &'static str, body: EnvBody },
}

/// The statements with a failure path that a statement fault can take.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// `submit` / `submit else S`.
    Submit,
    /// `trylock umount MODE else S`.
    Trylock,
}

/// What an environment fault's pseudo-thread runs after its gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvBody {
    /// Nothing: the gate step is the whole effect ([`Fault::fire`]).
    Step,
    /// The policy's `thaw` hook, with the kernel's check that the
    /// filesystem is frozen (EINVAL otherwise).
    Thaw,
    /// The policy's `freeze` hook (EBUSY unless unfrozen), then its `thaw`.
    FreezeThaw,
}

/// What a fault may read of the compiled program. The compiled program
/// (`engine::program::Program`) implements it: faults depend on the model
/// and this view only, and the engine depends on faults, never the other
/// way round.
pub trait ProgramView {
    /// How many pages the scenario has (pages `0..page_count()`).
    fn page_count(&self) -> usize;
    /// Whether some thread is inside a write fault on `page` in `state`
    /// (holding a reference on it, as `filemap_fault` leaves one).
    fn in_fault(&self, state: &State, page: usize) -> bool;
}

/// The statement a statement fault is asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatementAt {
    /// The thread at the statement.
    pub thread: usize,
    /// The kind of statement.
    pub site: Site,
    /// The lock mode of a `trylock umount MODE` (`None` at other sites).
    pub umount_mode: Option<LockMode>,
}

/// What a fault sees when it is asked whether it can fire.
pub struct FaultContext<'a> {
    pub program: &'a dyn ProgramView,
    pub state: &'a State,
    /// For statement faults: the thread at the statement and the statement.
    pub at: Option<StatementAt>,
}

/// A fault plug-in.
///
/// # Contract
/// - **What it may read**: everything in [`FaultContext`] — the compiled
///   program (threads, pages, settings) and the whole model state (pages,
///   superblock, locks, oracle records, firing counters).
/// - **What it may change**: only an environment fault with
///   [`EnvBody::Step`] changes anything, and only in [`Fault::fire`], and
///   only through the public kernel actions of [`State`] (`evict`,
///   `munmap`, `mark_dirty`, …), keeping [`State::assert_invariants`] true.
///   The engine counts the firing itself (do not touch `faults_fired`).
///   Statement faults change nothing themselves: the statement's own failure
///   path runs. Environment faults with a body change the state only
///   through the policy's hooks, which the engine runs.
/// - **Determinism**: `can_fire` and `fire` must be pure functions of their
///   arguments: no randomness (the engine draws every random choice from the
///   run's seeded generator), no clock, no IO, no interior mutability, no
///   iteration over unordered maps. Exhaustive search calls them on states
///   in any order and any number of times, and replay must reproduce a run
///   from its schedule alone.
/// - **Speed**: they run on the step loop's path (at fault points and open
///   gates): no allocation.
pub trait Fault: Send + Sync {
    /// The name used in `faults` blocks and reports (`io-error`).
    fn name(&self) -> &'static str;
    /// The kernel function or event modelled, for the docs.
    fn kernel(&self) -> &'static str;
    fn placement(&self) -> Placement;
    /// Whether the fault can fire now (its budget is checked by the engine).
    /// Statement faults get `at`; environment faults get `at = None`.
    fn can_fire(&self, context: &FaultContext<'_>) -> bool;
    /// The effect of an environment fault's gate step ([`EnvBody::Step`]).
    fn fire(&self, _program: &dyn ProgramView, _state: &mut State) {}
}

/// The shipped faults plus plug-ins registered from Rust, by name.
#[derive(Clone, Default)]
pub struct FaultRegistry {
    plugins: Vec<Arc<dyn Fault>>,
}

impl FaultRegistry {
    /// Only the shipped faults.
    pub fn builtin() -> FaultRegistry {
        FaultRegistry::default()
    }

    /// Registers a plug-in. Plug-ins must be environment faults (a statement
    /// fault's failure path belongs to the statement, which only the shipped
    /// faults know). Errors on a duplicate name, a statement placement, or
    /// more than [`PLUGINS_MAX`] plug-ins.
    pub fn register(&mut self, fault: Arc<dyn Fault>) -> Result<(), String> {
        let name = fault.name();
        if NAMES.contains(&name) || self.plugins.iter().any(|p| p.name() == name) {
            return Err(format!("fault `{name}` is already registered"));
        }
        if !matches!(fault.placement(), Placement::Environment { .. }) {
            return Err(format!("fault `{name}`: plug-ins must be environment faults"));
        }
        if self.plugins.len() >= PLUGINS_MAX {
            return Err(format!("at most {PLUGINS_MAX} fault plug-ins"));
        }
        self.plugins.push(fault);
        Ok(())
    }

    /// The slot of the fault named `name`.
    pub fn kind(&self, name: &str) -> Option<FaultKind> {
        FaultKind::from_name(name).or_else(|| {
            let i = self.plugins.iter().position(|p| p.name() == name)?;
            FaultKind::from_index(BUILTIN.len() + i)
        })
    }

    /// Every fault name a `faults` block may use: the shipped faults, then
    /// the plug-ins in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        NAMES
            .iter()
            .copied()
            .chain(self.plugins.iter().map(|p| p.name()))
            .collect()
    }

    pub fn plugins(&self) -> Plugins {
        Plugins(self.plugins.clone())
    }
}

/// The plug-in faults a program was compiled with (slots `Plugin0`, …).
#[derive(Clone, Default)]
pub struct Plugins(pub Vec<Arc<dyn Fault>>);

impl fmt::Debug for Plugins {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter().map(|p| p.name())).finish()
    }
}

/// The statement fault that can fire at `op`, by its site: a registry
/// lookup compiled to a match, consulted only at statements with a failure
/// path.
#[inline]
pub fn at_site(site: Site) -> FaultKind {
    match site {
        Site::Submit => FaultKind::IoError,
        Site::Trylock => FaultKind::TrylockFail,
    }
}

/// Parses a fault list as given on the command line:
/// `NAME:PROBABILITY:MAX[,NAME:PROBABILITY:MAX…]` (`io-error:0.1:1,evict:0.05:1`),
/// with the same limits as a `faults` block.
pub fn parse_specs(text: &str) -> Result<Vec<crate::ir::FaultSpec>, String> {
    use crate::ir::{FaultSpec, FileId, Loc, limits::FAULT_FIRINGS_MAX};
    let mut specs: Vec<FaultSpec> = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        let parts: Vec<&str> = item.split(':').collect();
        let [name, probability, max] = parts[..] else {
            return Err(format!(
                "`{item}`: expected NAME:PROBABILITY:MAX, e.g. io-error:0.1:1"
            ));
        };
        if !NAMES.contains(&name) {
            return Err(format!("unknown fault `{name}`; faults are {}", NAMES.join(", ")));
        }
        let Some(probability) = FaultSpec::parse_probability(probability) else {
            return Err(format!(
                "`{item}`: the probability `{probability}` is not a decimal between 0 and 1"
            ));
        };
        let max: u32 = match max.parse() {
            Ok(m) if (1..=FAULT_FIRINGS_MAX).contains(&m) => m,
            _ => {
                return Err(format!(
                    "`{item}`: `max` `{max}` is not a whole number from 1 to {FAULT_FIRINGS_MAX}"
                ));
            }
        };
        if specs.iter().any(|s| s.name == name) {
            return Err(format!("fault `{name}` is listed twice"));
        }
        specs.push(FaultSpec {
            name: name.to_string(),
            probability,
            max,
            loc: Loc {
                file: FileId(0),
                line: 0,
                column: 0,
            },
        });
    }
    Ok(specs)
}

/// `policy` with `specs` turned on (replacing its own setting of the same
/// faults) and renamed `NAME+faults`: the extra row `matrix --faults` shows.
pub fn with_faults(policy: &crate::ir::Policy, specs: &[crate::ir::FaultSpec]) -> crate::ir::Policy {
    let mut policy = policy.clone();
    policy.faults.retain(|f| !specs.iter().any(|s| s.name == f.name));
    policy.faults.extend(specs.iter().cloned());
    policy.name = format!("{}+faults", policy.name);
    policy
}

/// A probability as a threshold on a uniform `u64`: fires when `x < threshold`.
pub fn probability_threshold(probability: f64) -> u64 {
    if probability.is_nan() || probability <= 0.0 {
        0
    } else if probability >= 1.0 {
        u64::MAX
    } else {
        (probability * 18_446_744_073_709_551_616.0) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_registry_is_the_list_of_names() {
        let names: Vec<&str> = BUILTIN.iter().map(|f| f.name()).collect();
        assert_eq!(names, NAMES);
        for kind in FaultKind::ALL {
            assert_eq!(BUILTIN[kind as usize].name(), kind.name());
            assert_eq!(FaultKind::from_name(kind.name()), Some(kind));
        }
    }

    #[test]
    fn statement_sites_match_the_placements() {
        for site in [Site::Submit, Site::Trylock] {
            let kind = at_site(site);
            assert_eq!(BUILTIN[kind as usize].placement(), Placement::Statement(site));
        }
    }

    #[test]
    fn environment_threads_have_distinct_names() {
        let mut names: Vec<&str> = BUILTIN
            .iter()
            .filter_map(|f| match f.placement() {
                Placement::Environment { thread, .. } => Some(thread),
                Placement::Statement(_) => None,
            })
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 3);
    }
}
