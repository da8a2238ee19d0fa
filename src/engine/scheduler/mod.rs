//! Schedulers: who moves next, and whether a possible fault fires. One file
//! per strategy behind one [`Scheduler`] trait.

mod pct;
mod random;

pub use pct::{DEPTH_MAX as PCT_DEPTH_MAX, Pct};
pub use random::RandomWalk;

use crate::engine::program::Program;
use crate::fault::FaultKind;
use crate::model::State;
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::Rng;

/// A strategy for choosing the next thread. Implementations must draw every
/// random choice from the run's seeded generator, so that a run is a pure
/// function of (program, seed).
pub trait Scheduler {
    /// Starts a run with its own seed.
    fn begin(&mut self, program: &Program, seed: u64);
    /// Picks one thread from `enabled` (a non-empty bit mask) at `step`.
    fn pick(&mut self, program: &Program, state: &State, enabled: u32, step: u32) -> usize;
    /// Whether fault `kind`, possible at this step, fires.
    fn fire(&mut self, program: &Program, kind: FaultKind) -> bool;
}

/// Which scheduler a campaign uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SchedulerKind {
    /// A uniform random walk over the enabled threads.
    Random,
    /// Probabilistic concurrency testing with bug depth `depth` (≥ 1).
    Pct { depth: u32 },
}

impl SchedulerKind {
    pub fn build(self) -> Box<dyn Scheduler + Send> {
        match self {
            SchedulerKind::Random => Box::new(RandomWalk::default()),
            SchedulerKind::Pct { depth } => Box::new(Pct::new(depth)),
        }
    }

    /// The name used in reports and on the command line (`random`, `pct:3`).
    pub fn label(self) -> String {
        match self {
            SchedulerKind::Random => "random".into(),
            SchedulerKind::Pct { depth } => format!("pct:{depth}"),
        }
    }
}

/// A uniform integer in `0..bound` (bound > 0), without modulo bias (Lemire).
pub fn below(rng: &mut ChaCha8Rng, bound: u32) -> u32 {
    debug_assert!(bound > 0);
    let mut product = rng.next_u32() as u64 * bound as u64;
    let mut low = product as u32;
    if low < bound {
        let threshold = bound.wrapping_neg() % bound;
        while low < threshold {
            product = rng.next_u32() as u64 * bound as u64;
            low = product as u32;
        }
    }
    (product >> 32) as u32
}

/// The `n`-th set bit of `mask` (n < popcount).
#[inline]
pub fn nth_set_bit(mut mask: u32, n: u32) -> usize {
    for _ in 0..n {
        mask &= mask - 1;
    }
    mask.trailing_zeros() as usize
}

/// Whether a fault with this program's threshold fires, drawn from `rng`.
pub fn draw_fault(rng: &mut ChaCha8Rng, program: &Program, kind: FaultKind) -> bool {
    let threshold = program.faults[kind as usize].threshold;
    threshold == u64::MAX || rng.next_u64() < threshold
}
