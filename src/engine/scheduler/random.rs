//! The uniform random walk: at each step, every enabled thread is equally likely.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;

use super::{Scheduler, below, draw_fault, nth_set_bit};
use crate::engine::program::Program;
use crate::fault::FaultKind;
use crate::model::State;

pub struct RandomWalk {
    rng: ChaCha8Rng,
}

impl Default for RandomWalk {
    fn default() -> Self {
        RandomWalk {
            rng: ChaCha8Rng::seed_from_u64(0),
        }
    }
}

impl Scheduler for RandomWalk {
    fn begin(&mut self, _program: &Program, seed: u64) {
        self.rng = ChaCha8Rng::seed_from_u64(seed);
    }

    #[inline]
    fn pick(&mut self, _program: &Program, _state: &State, enabled: u32, _step: u32) -> usize {
        let count = enabled.count_ones();
        if count == 1 {
            return enabled.trailing_zeros() as usize;
        }
        nth_set_bit(enabled, below(&mut self.rng, count))
    }

    fn fire(&mut self, program: &Program, kind: FaultKind) -> bool {
        draw_fault(&mut self.rng, program, kind)
    }
}
