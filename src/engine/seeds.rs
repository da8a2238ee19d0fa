//! Seeds: one campaign seed, and from it each run's seed, derived with
//! ChaCha from (campaign seed, policy, scenario, run index). A run's seed
//! alone reproduces the run.

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};

/// FNV-1a, 64-bit: a stable hash of the cell's names (stable across
/// platforms, versions and runs, unlike `std`'s hashers).
pub fn stable_hash(parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for byte in part.bytes().chain(std::iter::once(0xff)) {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    hash
}

/// The stream of run seeds of one cell of a campaign.
pub struct RunSeeds {
    rng: ChaCha8Rng,
}

impl RunSeeds {
    /// Positioned at run `first_index`.
    pub fn new(campaign_seed: u64, policy: &str, scenario: &str, first_index: u64) -> RunSeeds {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&campaign_seed.to_le_bytes());
        key[8..16].copy_from_slice(b"ffz-run1");
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(stable_hash(&[policy, scenario]));
        // Each run's seed is two 32-bit words of the stream.
        rng.set_word_pos(first_index as u128 * 2);
        RunSeeds { rng }
    }

    /// The next run's seed.
    pub fn next_seed(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// The seed of run `index` of a campaign: the same on every machine, and
/// independent of how the campaign was split between workers or shards.
///
/// ```
/// use freezefuzz::engine::seeds::{RunSeeds, run_seed};
/// let mut stream = RunSeeds::new(1, "no-block", "case3-racing", 0);
/// let first_three: Vec<u64> = (0..3).map(|_| stream.next_seed()).collect();
/// assert_eq!(first_three[2], run_seed(1, "no-block", "case3-racing", 2));
/// ```
pub fn run_seed(campaign_seed: u64, policy: &str, scenario: &str, index: u64) -> u64 {
    RunSeeds::new(campaign_seed, policy, scenario, index).next_seed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_seed_does_not_depend_on_where_the_stream_started() {
        let mut seeds = RunSeeds::new(7, "no-block", "case3-racing", 0);
        let sequential: Vec<u64> = (0..100).map(|_| seeds.next_seed()).collect();
        for (i, seed) in sequential.iter().enumerate() {
            assert_eq!(*seed, run_seed(7, "no-block", "case3-racing", i as u64));
        }
    }

    #[test]
    fn cells_and_campaigns_get_different_seeds() {
        let a = run_seed(1, "no-block", "case1-racing", 0);
        assert_ne!(a, run_seed(2, "no-block", "case1-racing", 0));
        assert_ne!(a, run_seed(1, "no-block", "case2-racing", 0));
        assert_ne!(a, run_seed(1, "sigbus", "case1-racing", 0));
    }
}
