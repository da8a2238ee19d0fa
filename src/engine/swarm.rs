//! Swarm verification (as SPIN's swarm): for cells too large for the exact
//! search, many diversified, seeded, memory-bounded searches ("members"),
//! each of which covers part of the state graph. It finds outcomes with
//! witnesses that replay; it never proves one unreachable.
//!
//! Each member is a depth-bounded depth-first search with bitstate hashing
//! (supertrace): instead of a visited set of states, a bit array of `bits`
//! bits in which a state (its packed encoding, canonical under the scenario's
//! symmetry as in [`crate::engine::explore`]) sets `hashes` bits; a state
//! whose bits are all set already is taken as visited. Two different states
//! can share all their bits, so a state can be skipped that was never
//! visited (an omission): that is why the search is not exhaustive, besides
//! its depth bound and its state limit. What a member does depends only on
//! its seed: the seeds of its hash functions, its depth bound (drawn from
//! `ceil(depth_max / 2)..=depth_max`) and the order in which it tries the
//! successors of each state (shuffled per state) come from a ChaCha
//! generator seeded from (swarm seed, policy, scenario, member index). The
//! limits are a state count and the bit array's size, never time, so a
//! member's result is the same on every run, for any `--jobs` and any
//! `--shard` split.
//!
//! How each outcome is found, as in the exact search: outcomes whose records
//! never clear (frozen-write, user-error, dirty-at-freeze) at the first
//! state that has them; deadlock, lost-write and safe at terminal states; a
//! step-limit when the search's path reaches the step budget with a thread
//! still able to move, or closes a cycle (a successor on the path itself:
//! an endless run, whose witness goes around the cycle past the budget).
//! A member keeps the shortest path to each outcome that its search meets
//! (the first of them in its order), mapped back from representatives to the real program
//! ([`Symmetry::lift`]) and, unless asked not to, shrunk
//! ([`crate::engine::shrink`]).

use std::sync::atomic::{AtomicBool, Ordering};

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{Rng, SeedableRng};
use rayon::prelude::*;
use rustc_hash::FxHashSet;

use crate::engine::campaign::Shard;
use crate::engine::exec::{self, Choice};
use crate::engine::explore;
use crate::engine::pack::Packer;
use crate::engine::program::Program;
use crate::engine::run;
use crate::engine::seeds::stable_hash;
use crate::engine::shrink;
use crate::engine::symmetry::{Symmetry, canonical_key};
use crate::model::{State, THREADS_MAX};
use crate::oracle::{OUTCOMES_MAX, OracleSet, Outcome, Outcomes};

/// What a swarm does. Every field is a time-free limit or a choice the
/// result depends on; `jobs` is the one it does not depend on.
#[derive(Clone, Debug)]
pub struct SwarmConfig {
    /// The swarm seed: each member's seed derives from it.
    pub seed: u64,
    /// Members of the whole swarm (of every shard).
    pub members: u32,
    /// Most states one member stores (sets bits for).
    pub states_max: u64,
    /// Bits of each member's bit array.
    pub bits: u64,
    /// Hash functions (bits set per state).
    pub hashes: u32,
    /// The greatest depth bound a member draws (from `ceil(depth_max / 2)`
    /// to `depth_max`).
    pub depth_max: u32,
    /// The step budget: a run longer than this is a step-limit.
    pub steps_max: u32,
    /// Symmetry reduction: hash canonical representatives.
    pub symmetry: bool,
    /// Shrink each member's witnesses.
    pub shrink: bool,
    /// The members this run makes: `index % count == shard index`.
    pub shard: Shard,
    /// Members run in parallel.
    pub jobs: usize,
}

/// Most hash functions.
pub const HASHES_MAX: u32 = 16;
/// Deepest member depth bound (the search keeps a stack frame per level).
pub const DEPTH_MAX: u32 = 1_000_000;

/// An upper bound of the bytes one level of a member's search takes (its
/// frame, path entry and on-path key), for the memory check.
pub const STACK_BYTES_PER_LEVEL: u64 = 512;

/// Why a member stopped before its search was over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberLimit {
    /// It stored its `states_max` states.
    States(u64),
    /// The caller's stop flag (Ctrl-C, SIGTERM, SIGHUP).
    Interrupted,
}

impl std::fmt::Display for MemberLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MemberLimit::States(n) => write!(f, "state limit ({n} states, --member-states)"),
            MemberLimit::Interrupted => write!(f, "interrupt (Ctrl-C or a termination signal)"),
        }
    }
}

/// A member's witness of one outcome: a schedule of the real program.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberWitness {
    pub choices: Vec<Choice>,
    /// Every outcome of its run (replayed).
    pub outcomes: Outcomes,
    /// Its length as found, before shrinking.
    pub found_steps: u32,
}

/// One member's search.
#[derive(Clone, Debug)]
pub struct Member {
    pub index: u32,
    pub seed: u64,
    /// Its depth bound (at most the step budget takes effect).
    pub depth_bound: u32,
    /// States stored (each set at least one bit, or found all its bits clear).
    pub states: u64,
    /// Successors computed.
    pub transitions: u64,
    /// Bits set in its array at the end.
    pub bits_set: u64,
    /// States at the depth bound that could still move, not expanded.
    pub depth_cuts: u64,
    /// The deepest state stored.
    pub deepest: u32,
    /// `None`: the search ran out of states to expand under its depth bound.
    pub limit: Option<MemberLimit>,
    /// Its shortest witness of each outcome, indexed by [`Outcome`].
    pub witnesses: [Option<MemberWitness>; OUTCOMES_MAX],
}

impl Member {
    pub fn outcomes(&self) -> Outcomes {
        let mut set = Outcomes::default();
        for outcome in Outcome::every() {
            if self.witnesses[outcome as usize].is_some() {
                set.insert(outcome);
            }
        }
        set
    }
}

/// A swarm's result: the members it ran, in index order.
#[derive(Clone, Debug)]
pub struct Swarm {
    pub policy: String,
    pub scenario: String,
    pub members: Vec<Member>,
    /// Classes of interchangeable threads, by name (empty: no symmetry).
    pub symmetry: Vec<Vec<String>>,
    pub symmetry_order: u64,
    /// Stopped by the stop flag: some members did not run or did not finish.
    pub interrupted: bool,
}

/// The seed of member `index`: the same on every machine and for any split.
pub fn member_seed(seed: u64, policy: &str, scenario: &str, index: u32) -> u64 {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(b"ffz-swm1");
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stable_hash(&[policy, scenario]));
    rng.set_word_pos(index as u128 * 2);
    rng.next_u64()
}

/// The members shard `shard` of a swarm of `members` makes.
pub fn shard_members(members: u32, shard: Shard) -> impl Iterator<Item = u32> {
    (shard.index..members).step_by(shard.count as usize)
}

/// A number in `0..n` (`n > 0`) from the generator.
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    ((rng.next_u64() as u128 * n as u128) >> 64) as u64
}

/// Runs the members of `config.shard`, `config.jobs` at a time, stopping
/// soon after `stop` becomes true.
pub fn swarm(program: &Program, oracles: &OracleSet, config: &SwarmConfig, stop: &AtomicBool) -> Swarm {
    let packer = Packer::new(program);
    let symmetry = if config.symmetry {
        Symmetry::new(program, oracles)
    } else {
        None
    };
    let indices: Vec<u32> = shard_members(config.members, config.shard).collect();
    let run_one = |&index: &u32| -> Option<Member> {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        Some(member(
            program,
            oracles,
            config,
            &packer,
            symmetry.as_ref(),
            index,
            stop,
        ))
    };
    let members: Vec<Option<Member>> = if config.jobs > 1 && indices.len() > 1 {
        match rayon::ThreadPoolBuilder::new().num_threads(config.jobs).build() {
            Ok(pool) => pool.install(|| indices.par_iter().with_max_len(1).map(run_one).collect()),
            Err(_) => indices.iter().map(run_one).collect(),
        }
    } else {
        indices.iter().map(run_one).collect()
    };
    let interrupted = members.iter().any(|m| {
        m.as_ref()
            .is_none_or(|m| m.limit == Some(MemberLimit::Interrupted))
    });
    Swarm {
        policy: program.policy.clone(),
        scenario: program.scenario.clone(),
        members: members.into_iter().flatten().collect(),
        symmetry: symmetry
            .as_ref()
            .map(|s| {
                s.classes()
                    .iter()
                    .map(|class| class.iter().map(|&t| program.threads[t].name.clone()).collect())
                    .collect()
            })
            .unwrap_or_default(),
        symmetry_order: symmetry.as_ref().map_or(1, Symmetry::order),
        interrupted,
    }
}

/// Runs one member (whatever the shard): the unit of work and of sharding.
pub fn member(
    program: &Program,
    oracles: &OracleSet,
    config: &SwarmConfig,
    packer: &Packer,
    symmetry: Option<&Symmetry>,
    index: u32,
    stop: &AtomicBool,
) -> Member {
    match packer.words() {
        1 => member_w::<1>(program, oracles, config, packer, symmetry, index, stop),
        2 => member_w::<2>(program, oracles, config, packer, symmetry, index, stop),
        3 => member_w::<3>(program, oracles, config, packer, symmetry, index, stop),
        4 => member_w::<4>(program, oracles, config, packer, symmetry, index, stop),
        5 | 6 => member_w::<6>(program, oracles, config, packer, symmetry, index, stop),
        _ => member_w::<11>(program, oracles, config, packer, symmetry, index, stop),
    }
}

/// The bit array and its hash functions (double hashing of two seeded
/// 64-bit hashes of the packed state).
struct Bits {
    words: Vec<u64>,
    bits: u64,
    hashes: u32,
    seeds: [u64; 2],
    set: u64,
}

/// A 64-bit finaliser (MurmurHash3's fmix64).
#[inline(always)]
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

impl Bits {
    /// Sets `key`'s bits; returns whether one of them was clear (a new state).
    #[inline]
    fn insert(&mut self, key: &[u64]) -> bool {
        let mut h = [self.seeds[0], self.seeds[1]];
        for &word in key {
            h[0] = mix(h[0] ^ word);
            h[1] = mix(h[1].rotate_left(29) ^ word);
        }
        let step = h[1] | 1;
        let mut fresh = false;
        let mut at = h[0];
        for _ in 0..self.hashes {
            let bit = ((at as u128 * self.bits as u128) >> 64) as u64;
            let (word, mask) = ((bit / 64) as usize, 1u64 << (bit % 64));
            if self.words[word] & mask == 0 {
                self.words[word] |= mask;
                self.set += 1;
                fresh = true;
            }
            at = at.wrapping_add(step);
        }
        fresh
    }
}

/// One level of the depth-first search: a representative state and its
/// successors' choices, in the member's order.
struct Frame<const W: usize> {
    state: State,
    key: [u64; W],
    choices: [Choice; 2 * THREADS_MAX],
    len: u8,
    next: u8,
}

fn member_w<const W: usize>(
    program: &Program,
    oracles: &OracleSet,
    config: &SwarmConfig,
    packer: &Packer,
    symmetry: Option<&Symmetry>,
    index: u32,
    stop: &AtomicBool,
) -> Member {
    let seed = member_seed(config.seed, &program.policy, &program.scenario, index);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let low = config.depth_max.div_ceil(2);
    let depth_bound = low + below(&mut rng, (config.depth_max - low) as u64 + 1) as u32;
    let mut bits = Bits {
        words: vec![0; config.bits.div_ceil(64) as usize],
        bits: config.bits,
        hashes: config.hashes,
        seeds: [rng.next_u64(), rng.next_u64()],
        set: 0,
    };
    let canon = |state: &State| canonical_key::<W>(symmetry, packer, state);
    let mut result = Member {
        index,
        seed,
        depth_bound,
        states: 0,
        transitions: 0,
        bits_set: 0,
        depth_cuts: 0,
        deepest: 0,
        limit: None,
        witnesses: Default::default(),
    };
    // Raw witnesses on representatives (lifted and shrunk at the end).
    let mut found: [Option<Vec<Choice>>; OUTCOMES_MAX] = Default::default();
    let mut stack: Vec<Frame<W>> = Vec::new();
    // The choices from the initial state to the top of the stack.
    let mut path: Vec<Choice> = Vec::new();
    // The keys on the stack, to see a cycle close (a lookup set only).
    let mut on_path: FxHashSet<[u64; W]> = FxHashSet::default();
    let bound = depth_bound.min(config.steps_max);

    // Judges a new state and pushes it when it is to be expanded.
    let visit = |key: [u64; W],
                 path: &[Choice],
                 stack: &mut Vec<Frame<W>>,
                 on_path: &mut FxHashSet<[u64; W]>,
                 found: &mut [Option<Vec<Choice>>; OUTCOMES_MAX],
                 result: &mut Member,
                 rng: &mut ChaCha8Rng| {
        let state = packer.unpack::<W>(&key, &program.initial);
        let depth = path.len() as u32;
        result.states += 1;
        result.deepest = result.deepest.max(depth);
        let enabled = exec::enabled_mask(program, &state);
        let outcomes = explore::state_outcomes(program, oracles, &state, enabled);
        // The shortest path to the outcome this member meets (a depth-first
        // path is often much longer than needed).
        for outcome in outcomes.iter() {
            let slot = &mut found[outcome as usize];
            if slot.as_ref().is_none_or(|w| path.len() < w.len()) {
                *slot = Some(path.to_vec());
            }
        }
        let movable = enabled | exec::gate_mask(program, &state);
        if movable == 0 {
            return;
        }
        if depth >= config.steps_max {
            // A run stops here, past its budget, still able to move.
            if enabled != 0 {
                found[Outcome::StepLimit as usize].get_or_insert_with(|| path.to_vec());
            }
            return;
        }
        if depth >= bound {
            result.depth_cuts += 1;
            return;
        }
        let mut frame = Frame {
            state,
            key,
            choices: [Choice {
                thread: 0,
                fire: false,
            }; 2 * THREADS_MAX],
            len: 0,
            next: 0,
        };
        for thread in 0..program.threads.len() {
            if movable & (1 << thread) == 0 {
                continue;
            }
            let fault = exec::fault_point(program, &state, thread).is_some();
            for fire in [false, true] {
                if fire && !fault {
                    continue;
                }
                frame.choices[frame.len as usize] = Choice {
                    thread: thread as u8,
                    fire,
                };
                frame.len += 1;
            }
        }
        // The member's order: a shuffle (Fisher–Yates) per state.
        for i in (1..frame.len as usize).rev() {
            let j = below(rng, i as u64 + 1) as usize;
            frame.choices.swap(i, j);
        }
        on_path.insert(key);
        stack.push(frame);
    };

    let initial = canon(&program.initial);
    bits.insert(&initial);
    visit(
        initial,
        &path,
        &mut stack,
        &mut on_path,
        &mut found,
        &mut result,
        &mut rng,
    );
    while let Some(top) = stack.last_mut() {
        if top.next == top.len {
            on_path.remove(&top.key);
            stack.pop();
            path.pop();
            continue;
        }
        let choice = top.choices[top.next as usize];
        top.next += 1;
        let mut next = top.state;
        exec::step(program, &mut next, choice.thread as usize, choice.fire);
        result.transitions += 1;
        let key = canon(&next);
        if on_path.contains(&key) {
            // A cycle: an endless run. Its witness runs into the cycle and
            // around it until the budget is passed.
            if found[Outcome::StepLimit as usize].is_none() {
                let entry = stack
                    .iter()
                    .position(|f| f.key == key)
                    .expect("a key on the path is on the stack");
                let mut cycle = path[entry..].to_vec();
                cycle.push(choice);
                let mut choices = path[..entry].to_vec();
                for c in cycle.iter().cycle() {
                    if choices.len() > config.steps_max as usize {
                        break;
                    }
                    choices.push(*c);
                }
                found[Outcome::StepLimit as usize] = Some(choices);
            }
            continue;
        }
        if !bits.insert(&key) {
            continue;
        }
        path.push(choice);
        let depth_before = stack.len();
        visit(
            key,
            &path,
            &mut stack,
            &mut on_path,
            &mut found,
            &mut result,
            &mut rng,
        );
        if stack.len() == depth_before {
            // Not expanded: step back at once.
            path.pop();
        }
        if result.states >= config.states_max {
            result.limit = Some(MemberLimit::States(config.states_max));
            break;
        }
        if result.states.is_multiple_of(1024) && stop.load(Ordering::Relaxed) {
            result.limit = Some(MemberLimit::Interrupted);
            break;
        }
    }
    result.bits_set = bits.set;
    drop(bits);
    drop(on_path);
    drop(stack);

    // Lift each witness to the real program, check that it replays to its
    // outcome, and shrink it.
    for outcome in Outcome::every() {
        let Some(raw) = found[outcome as usize].take() else {
            continue;
        };
        let choices = match symmetry {
            Some(symmetry) => symmetry.lift::<W>(program, packer, &raw),
            None => raw,
        };
        let found_steps = choices.len() as u32;
        // An interrupted member reports its witnesses as found.
        let shrunk = (config.shrink && !stop.load(Ordering::Relaxed))
            .then(|| shrink::shrink(program, oracles, &choices, outcome, config.steps_max).ok())
            .flatten();
        let (choices, outcomes) = match shrunk {
            Some(shrunk) => (shrunk.choices, shrunk.outcomes),
            None => {
                let (run, _) = run::replay(program, oracles, &choices, config.steps_max)
                    .expect("a member's witness fits the program");
                (choices, run.outcomes)
            }
        };
        assert!(
            outcomes.contains(outcome),
            "a member's witness of {outcome} replays to {outcomes} (engine::swarm)"
        );
        result.witnesses[outcome as usize] = Some(MemberWitness {
            choices,
            outcomes,
            found_steps,
        });
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memory check's figure covers a level of the largest search: its
    /// frame, its path entry, and its key in the on-path set (with the
    /// table's control byte, at half load).
    #[test]
    fn a_level_fits_the_memory_checks_figure() {
        let level = std::mem::size_of::<Frame<11>>()
            + std::mem::size_of::<Choice>()
            + 2 * (std::mem::size_of::<[u64; 11]>() + 1);
        assert!(level as u64 <= STACK_BYTES_PER_LEVEL, "{level} bytes");
    }

    #[test]
    fn shards_split_the_members_without_overlap() {
        let mut all: Vec<u32> = (0..3)
            .flat_map(|k| shard_members(10, Shard { index: k, count: 3 }))
            .collect();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }
}
