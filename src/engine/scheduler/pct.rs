//! PCT, probabilistic concurrency testing (Burckhardt, Kothari, Musuvathi,
//! Nagarakatte, ASPLOS 2010). Each thread gets a random distinct priority of
//! at least `d`; `d − 1` change points are drawn uniformly from the first `k`
//! steps; the highest-priority enabled thread always runs, and at the i-th
//! change point the running thread's priority drops to `d − 1 − i`, below
//! every initial one. A bug of depth `d` is found with probability at least
//! 1 / (n · k^(d−1)) per run.
//!
//! `k` is estimated per program as its total instruction count (a bound on
//! a run's useful length that does not depend on earlier runs, so runs stay
//! independent and parallel campaigns deterministic).

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use super::{Scheduler, below, draw_fault};
use crate::engine::program::Program;
use crate::fault::FaultKind;
use crate::model::{State, THREADS_MAX};

/// Most change points (depth − 1) supported.
pub const DEPTH_MAX: u32 = 16;

pub struct Pct {
    depth: u32,
    rng: ChaCha8Rng,
    priority: [u32; THREADS_MAX],
    change_points: [u32; DEPTH_MAX as usize],
    changes_count: usize,
}

impl Pct {
    pub fn new(depth: u32) -> Pct {
        Pct {
            depth: depth.clamp(1, DEPTH_MAX),
            rng: ChaCha8Rng::seed_from_u64(0),
            priority: [0; THREADS_MAX],
            change_points: [0; DEPTH_MAX as usize],
            changes_count: 0,
        }
    }
}

impl Scheduler for Pct {
    fn begin(&mut self, program: &Program, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
        let n = program.threads.len();
        // A random permutation of d .. d+n-1 (Fisher–Yates).
        for (i, p) in self.priority.iter_mut().enumerate().take(n) {
            *p = self.depth + i as u32;
        }
        for i in (1..n).rev() {
            let j = below(&mut self.rng, i as u32 + 1) as usize;
            self.priority.swap(i, j);
        }
        let k = program.code_len().max(2) as u32;
        self.changes_count = (self.depth - 1) as usize;
        for i in 0..self.changes_count {
            self.change_points[i] = 1 + below(&mut self.rng, k);
        }
    }

    fn pick(&mut self, _program: &Program, _state: &State, enabled: u32, step: u32) -> usize {
        let mut best = enabled.trailing_zeros() as usize;
        let mut mask = enabled & (enabled - 1);
        while mask != 0 {
            let t = mask.trailing_zeros() as usize;
            if self.priority[t] > self.priority[best] {
                best = t;
            }
            mask &= mask - 1;
        }
        for i in 0..self.changes_count {
            if self.change_points[i] == step {
                self.priority[best] = self.depth - 1 - i as u32;
            }
        }
        best
    }

    fn fire(&mut self, program: &Program, kind: FaultKind) -> bool {
        draw_fault(&mut self.rng, program, kind)
    }
}
