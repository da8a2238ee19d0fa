//! Exhaustive exploration: every interleaving (and every fault firing within
//! its per-run bound) of one program, breadth-first, with a visited set of
//! exact states.
//!
//! Gives the exact set of reachable outcomes, the number of distinct states
//! and transitions, and for each outcome a shortest schedule reaching it
//! (breadth-first order makes the first one found a shortest one).
//!
//! How each outcome is decided:
//! - outcomes an oracle reports for unfinished runs (frozen-write,
//!   user-error, dirty-at-freeze) rest on records that never clear once set,
//!   so they are reachable iff some reachable state has them;
//! - deadlock, lost-write and safe are judged at terminal states (no thread
//!   can move);
//! - step-limit is reachable iff some run can be longer than the step
//!   budget: the graph has a cycle (an endless run), or its longest path is
//!   longer than the budget. The witness is a path that runs into the cycle
//!   and around it until the budget is passed.
//!
//! The visited set holds exact states, packed ([`crate::engine::pack`]; no
//! fingerprints, so there is no collision probability to report), one per
//! orbit of interchangeable threads when symmetry reduction applies
//! ([`crate::engine::symmetry`]). Batches of states are expanded by
//! `jobs` workers and merged in id order, so the result does not depend on
//! the number of workers. docs/exploration.md explains each reduction.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::engine::exec::{self, Choice};
use crate::engine::pack::Packer;
use crate::engine::por::Reduction;
use crate::engine::program::Program;
use crate::engine::symmetry::Symmetry;
use crate::model::State;
use crate::oracle::{OUTCOMES_MAX, OracleSet, Outcome, Outcomes, RunEnd};

/// Limits of one exploration. Hitting any of them makes the result incomplete.
#[derive(Clone, Copy, Debug)]
pub struct ExploreLimits {
    /// Most distinct states.
    pub states_max: u64,
    /// Deepest schedule explored.
    pub depth_max: u32,
    /// Memory guard for the state table, edges and visited set, in bytes.
    pub memory_max: u64,
    /// The step budget of the random campaigns this result is compared with:
    /// a run longer than this is a step-limit.
    pub steps_max: u32,
    /// Partial-order reduction ([`crate::engine::por`]): the same set of
    /// reachable outcomes from fewer states, but shortest schedules may be
    /// longer. Off by default. Turns symmetry reduction off.
    pub reduce: bool,
    /// Worker threads expanding states (1: none besides the caller). The
    /// result is the same for any number.
    pub jobs: usize,
    /// Symmetry reduction ([`crate::engine::symmetry`]): one state per orbit
    /// of interchangeable threads. The same outcomes and the same shortest
    /// schedule lengths, fewer states and transitions (counted up to
    /// symmetry). On by default; it applies only where the group is not
    /// trivial, and the result says so ([`Exploration::reductions`]).
    pub symmetry: bool,
}

impl Default for ExploreLimits {
    fn default() -> Self {
        ExploreLimits {
            states_max: 200_000_000,
            depth_max: 100_000,
            memory_max: 4 << 30,
            steps_max: 10_000,
            reduce: false,
            symmetry: true,
            jobs: 1,
        }
    }
}

/// Which limit stopped an exploration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitHit {
    States(u64),
    Depth(u32),
    Memory(u64),
    /// Stopped by the caller's stop flag (Ctrl-C, SIGTERM, SIGHUP).
    Interrupted,
}

impl std::fmt::Display for LimitHit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LimitHit::States(n) => write!(f, "state limit ({n} states, --max-states)"),
            LimitHit::Depth(n) => write!(f, "depth limit ({n} steps, --max-depth)"),
            LimitHit::Memory(n) => write!(f, "memory limit ({} MiB, --max-memory)", n >> 20),
            LimitHit::Interrupted => write!(f, "interrupt (Ctrl-C or a termination signal)"),
        }
    }
}

/// A shortest schedule reaching an outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shortest {
    /// Its length in steps (for step-limit: the length of the path into the
    /// endless part; the schedule itself runs on past the budget).
    pub depth: u32,
    pub choices: Vec<Choice>,
}

/// The result of exploring one cell.
#[derive(Clone, Debug)]
pub struct Exploration {
    pub policy: String,
    pub scenario: String,
    /// Every outcome some schedule reaches (a lower bound when incomplete).
    pub outcomes: Outcomes,
    /// A shortest witness per outcome, indexed by [`Outcome`].
    pub shortest: [Option<Shortest>; OUTCOMES_MAX],
    pub states: u64,
    pub transitions: u64,
    /// The greatest breadth-first depth seen.
    pub depth: u32,
    /// The longest run, in steps, when the graph has no cycle.
    pub longest_run: Option<u32>,
    /// `None` when the search was complete.
    pub limit: Option<LimitHit>,
    /// The reductions the search used: the state and transition counts are
    /// those of the reduced graph.
    pub reductions: Reductions,
    /// Bytes of one packed state in the visited set.
    pub state_bytes: u64,
}

/// The reductions an exploration used (none: the counts are those of the
/// full state graph).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reductions {
    /// Classes of interchangeable threads, by name: states and transitions
    /// are counted up to permutations of each class (empty: no symmetry
    /// reduction).
    pub symmetry: Vec<Vec<String>>,
    /// The order of the symmetry group (1 without symmetry reduction).
    pub symmetry_order: u64,
    /// Partial-order reduction (`--por`).
    pub partial_order: bool,
}

impl Reductions {
    /// One line per reduction used, for reports.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        if !self.symmetry.is_empty() {
            let classes: Vec<String> = self.symmetry.iter().map(|c| c.join(" ~ ")).collect();
            lines.push(format!(
                "symmetry: {} interchangeable ({} permutations); states and transitions counted up to symmetry (--no-symmetry for the full count)",
                classes.join("; "),
                self.symmetry_order
            ));
        }
        if self.partial_order {
            lines.push(
                "partial-order reduction: states and transitions of the reduced graph; witnesses shortest in it only"
                    .to_string(),
            );
        }
        lines
    }
}

impl Exploration {
    pub fn complete(&self) -> bool {
        self.limit.is_none()
    }
}

/// Per-state arrays of the step-limit (cycle) check after the search.
const CYCLE_CHECK_BYTES: u64 = 4 + 4 + 4 + 4 + 1 + 1;

/// Bytes one stored state costs besides its packed words: its visited-set
/// slot's id and control byte, its parent link and choice, its edge offset,
/// and the cycle check's per-state arrays. Transitions cost 4 bytes each.
/// The memory guard counts the real capacities of the tables, which can be
/// up to twice this while they grow.
pub const BYTES_PER_STATE_BESIDES_KEY: u64 = 4 + 1 + 4 + 1 + 8 + CYCLE_CHECK_BYTES;

/// Bytes one stored state of `program` costs at the least (without its
/// transitions): see [`BYTES_PER_STATE_BESIDES_KEY`].
pub fn bytes_per_state(program: &Program) -> u64 {
    8 * Packer::new(program).words() as u64 + BYTES_PER_STATE_BESIDES_KEY
}

/// Explores `program` completely (or up to `limits`).
pub fn explore(program: &Program, oracles: &OracleSet, limits: &ExploreLimits) -> Exploration {
    explore_until(program, oracles, limits, &AtomicBool::new(false))
}

/// States explored between two looks at the stop flag: a fraction of a
/// millisecond of work.
const STOP_CHECK_STATES: u32 = 1024;

/// [`explore`], stopping (with [`LimitHit::Interrupted`]) soon after `stop`
/// becomes true.
pub fn explore_until(
    program: &Program,
    oracles: &OracleSet,
    limits: &ExploreLimits,
    stop: &AtomicBool,
) -> Exploration {
    let packer = Packer::new(program);
    let symmetry = if limits.symmetry && !limits.reduce {
        Symmetry::new(program, oracles)
    } else {
        None
    };
    let symmetry = symmetry.as_ref();
    match packer.words() {
        1 => search::<1>(program, oracles, limits, &packer, symmetry, stop),
        2 => search::<2>(program, oracles, limits, &packer, symmetry, stop),
        3 => search::<3>(program, oracles, limits, &packer, symmetry, stop),
        4 => search::<4>(program, oracles, limits, &packer, symmetry, stop),
        5 | 6 => search::<6>(program, oracles, limits, &packer, symmetry, stop),
        _ => search::<11>(program, oracles, limits, &packer, symmetry, stop),
    }
}

/// The choice byte stored per state: the thread, and the fault firing in the top bit.
fn encode_choice(choice: Choice) -> u8 {
    choice.thread | (choice.fire as u8) << 7
}

fn decode_choice(byte: u8) -> Choice {
    Choice {
        thread: byte & 0x7f,
        fire: byte & 0x80 != 0,
    }
}

/// States per segment of [`Segmented`].
const SEGMENT: usize = 1 << 16;

/// A growable array in fixed segments: growing never moves what is stored,
/// so it never holds an old and a new copy at once (as a doubling `Vec`
/// would while it reallocates), and it costs at most one segment of slack.
struct Segmented<T: Copy> {
    segments: Vec<Box<[T]>>,
    len: usize,
}

impl<T: Copy> Segmented<T> {
    fn new() -> Segmented<T> {
        Segmented {
            segments: Vec::new(),
            len: 0,
        }
    }

    fn push(&mut self, value: T) {
        if self.len == self.segments.len() * SEGMENT {
            self.segments.push(vec![value; SEGMENT].into_boxed_slice());
        }
        self.segments[self.len / SEGMENT][self.len % SEGMENT] = value;
        self.len += 1;
    }

    #[inline]
    fn get(&self, i: usize) -> T {
        self.segments[i / SEGMENT][i % SEGMENT]
    }

    fn bytes(&self) -> u64 {
        (self.segments.len() * SEGMENT * std::mem::size_of::<T>()) as u64
    }

    /// Whether the next push allocates a segment, and its size.
    fn growth(&self, slack: usize) -> u64 {
        if self.len + slack > self.segments.len() * SEGMENT {
            (SEGMENT * std::mem::size_of::<T>()) as u64
        } else {
            0
        }
    }
}

/// The visited set and the parent links. The states not yet expanded are
/// the ids from the cursor on: ids are given in discovery order, which is
/// also the order of expansion.
struct Visited<const W: usize> {
    /// Each id's packed canonical state.
    keys: Segmented<[u64; W]>,
    /// The ids, hashed by their keys.
    table: HashTable<u32>,
    parent: Segmented<u32>,
    choice: Segmented<u8>,
    /// The first id of each breadth-first level (ids increase with depth).
    level_starts: Vec<u32>,
}

impl<const W: usize> Visited<W> {
    fn len(&self) -> usize {
        self.keys.len
    }

    fn find(&self, key: &[u64; W]) -> Option<u32> {
        let hash = FxBuildHasher.hash_one(key);
        self.table
            .find(hash, |&id| self.keys.get(id as usize) == *key)
            .copied()
    }

    /// The id of `key`, and whether it is new (then queued at `depth`).
    fn insert(&mut self, key: [u64; W], parent: u32, choice: Choice, depth: u32) -> (u32, bool) {
        let hash = FxBuildHasher.hash_one(key);
        let id = self.keys.len as u32;
        let keys = &self.keys;
        match self.table.entry(
            hash,
            |&other| keys.get(other as usize) == key,
            |&other| FxBuildHasher.hash_one(keys.get(other as usize)),
        ) {
            hashbrown::hash_table::Entry::Occupied(entry) => return (*entry.get(), false),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                entry.insert(id);
            }
        }
        self.keys.push(key);
        self.parent.push(parent);
        self.choice.push(encode_choice(choice));
        if self.level_starts.len() as u32 == depth {
            self.level_starts.push(id);
        }
        (id, true)
    }

    fn depth(&self, id: u32) -> u32 {
        (self.level_starts.partition_point(|&start| start <= id) - 1) as u32
    }

    /// The choices from the initial state to `id`.
    fn path(&self, mut id: u32) -> Vec<Choice> {
        let mut choices = Vec::new();
        while self.parent.get(id as usize) != u32::MAX {
            choices.push(decode_choice(self.choice.get(id as usize)));
            id = self.parent.get(id as usize);
        }
        choices.reverse();
        choices
    }

    /// Bytes held now (capacities, not lengths, and the cycle check's
    /// arrays to come), and the most that the next expansion's growth could
    /// add on top (a hash table's old and new allocations coexist while it
    /// grows).
    fn bytes(&self, edges: &Segmented<u32>, offsets: &Segmented<u64>) -> (u64, u64) {
        // hashbrown keeps at most 7/8 of its buckets full: 4 bytes and a
        // control byte per bucket.
        let table = self.table.capacity() as u64 * 8 / 7 * 5;
        let now = table
            + self.keys.bytes()
            + self.parent.bytes()
            + self.choice.bytes()
            + edges.bytes()
            + offsets.bytes()
            + self.len() as u64 * CYCLE_CHECK_BYTES;
        // At most 2 × threads new states and edges per expansion.
        let slack = 2 * crate::model::THREADS_MAX;
        let mut growth = self.keys.growth(slack)
            + self.parent.growth(slack)
            + self.choice.growth(slack)
            + edges.growth(slack)
            + offsets.growth(1);
        if self.table.len() + slack > self.table.capacity() {
            growth += 2 * table;
        }
        (now, growth)
    }
}

fn search<const W: usize>(
    program: &Program,
    oracles: &OracleSet,
    limits: &ExploreLimits,
    packer: &Packer,
    symmetry: Option<&Symmetry>,
    stop: &AtomicBool,
) -> Exploration {
    let canon = |state: &State| -> [u64; W] {
        match symmetry {
            Some(symmetry) => symmetry.canonical::<W>(packer, state).0,
            None => packer.pack::<W>(state),
        }
    };
    let mut visited: Visited<W> = Visited {
        keys: Segmented::new(),
        table: HashTable::new(),
        parent: Segmented::new(),
        choice: Segmented::new(),
        level_starts: Vec::new(),
    };
    visited.insert(
        canon(&program.initial),
        u32::MAX,
        Choice {
            thread: 0,
            fire: false,
        },
        0,
    );
    // Successor lists in CSR form: edges of state i are edges[offsets[i]..offsets[i+1]].
    let mut offsets: Segmented<u64> = Segmented::new();
    offsets.push(0);
    let mut edges: Segmented<u32> = Segmented::new();

    let reduction = limits.reduce.then(|| Reduction::new(program));
    let mut first: [Option<u32>; OUTCOMES_MAX] = [None; OUTCOMES_MAX];
    let mut limit = None;
    let mut cursor = 0u32;
    let mut d = 0u32;
    let pool = (limits.jobs > 1)
        .then(|| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(limits.jobs)
                .build()
                .ok()
        })
        .flatten();

    // Batches of the queue's front are expanded (in parallel with `jobs`)
    // into successor lists, then merged into the visited set one state at a
    // time in id order: the ids, parents, edges and limits are exactly those
    // of a one-state-at-a-time search, whatever the number of workers.
    'search: while (cursor as usize) < visited.len() {
        // A batch never spans two levels, so that each state's depth is known.
        let level_end = visited
            .level_starts
            .get(d as usize + 1)
            .map_or(visited.len(), |&start| start as usize);
        let take = (level_end - cursor as usize).min(BATCH);
        let batch: Vec<[u64; W]> = (0..take).map(|i| visited.keys.get(cursor as usize + i)).collect();
        let expand_all = |keys: &[[u64; W]]| -> Vec<Expansion<W>> {
            keys.iter()
                .map(|key| {
                    expand(
                        program,
                        oracles,
                        packer,
                        &canon,
                        symmetry,
                        reduction.as_ref(),
                        key,
                    )
                })
                .collect()
        };
        let expansions: Vec<Expansion<W>> = match &pool {
            Some(pool) => pool.install(|| {
                use rayon::prelude::*;
                batch
                    .par_chunks(CHUNK)
                    .map(expand_all)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .flatten()
                    .collect()
            }),
            None => expand_all(&batch),
        };
        drop(batch);
        for expansion in expansions {
            if cursor.is_multiple_of(STOP_CHECK_STATES) && stop.load(Ordering::Relaxed) {
                limit = Some(LimitHit::Interrupted);
                break 'search;
            }
            if d > limits.steps_max {
                // Only reachable past the step budget, where a run has already
                // ended as step-limit: neither judged nor expanded (the run that
                // reaches it is found as a path longer than the budget below).
                offsets.push(edges.len as u64);
                cursor += 1;
                continue;
            }
            for outcome in expansion.outcomes.iter() {
                first[outcome as usize].get_or_insert(cursor);
            }
            // With reduction, one thread's invisible, independent next step is
            // enough when it leads to a new state (the cycle proviso).
            let mut reduced = false;
            if d < limits.depth_max {
                for &(key, choice) in &expansion.candidates {
                    if visited.find(&key).is_some() {
                        continue;
                    }
                    let (id, _) = visited.insert(key, cursor, choice, d + 1);
                    edges.push(id);
                    reduced = true;
                    break;
                }
            }
            if reduced {
            } else if expansion.movable && d >= limits.depth_max {
                limit.get_or_insert(LimitHit::Depth(limits.depth_max));
            } else {
                for &(key, choice) in &expansion.successors {
                    let (id, _) = visited.insert(key, cursor, choice, d + 1);
                    edges.push(id);
                }
            }
            offsets.push(edges.len as u64);
            cursor += 1;
            if visited.len() as u64 > limits.states_max {
                limit = Some(LimitHit::States(limits.states_max));
                break 'search;
            }
            // Memory is checked before it is taken: stop when the next growth
            // of a table would pass the guard.
            let (now, growth) = visited.bytes(&edges, &offsets);
            if now + growth + BATCH_BYTES_PER_STATE * BATCH as u64 > limits.memory_max {
                limit = Some(LimitHit::Memory(limits.memory_max));
                break 'search;
            }
        }
        if visited.level_starts.get(d as usize + 1) == Some(&cursor) {
            d += 1;
        }
    }
    let explored = cursor as usize;
    // The hash table is not needed past the search: free it for the cycle check.
    visited.table = HashTable::new();

    // A schedule on representatives, as one that replays on the program.
    let concrete = |choices: Vec<Choice>| match symmetry {
        Some(symmetry) => symmetry.lift::<W>(program, packer, &choices),
        None => choices,
    };
    let mut shortest: [Option<Shortest>; OUTCOMES_MAX] = Default::default();
    let mut outcomes = Outcomes::default();
    for outcome in Outcome::every() {
        if let Some(i) = first[outcome as usize] {
            outcomes.insert(outcome);
            shortest[outcome as usize] = Some(Shortest {
                depth: visited.depth(i),
                choices: concrete(visited.path(i)),
            });
        }
    }

    // Step-limit: only decidable over a complete graph.
    let mut longest_run = None;
    if limit.is_none() {
        let n = explored;
        let succ = |i: usize| (offsets.get(i) as usize..offsets.get(i + 1) as usize).map(|k| edges.get(k));
        // Kahn's algorithm; `longest[i]` is the longest path from the initial state.
        let mut indegree = vec![0u32; n];
        for i in 0..n {
            for t in succ(i) {
                indegree[t as usize] += 1;
            }
        }
        let mut longest = vec![0u32; n];
        // The predecessor of each state on a longest path to it.
        let mut via = vec![u32::MAX; n];
        let mut queue: Vec<u32> = (0..n as u32).filter(|&i| indegree[i as usize] == 0).collect();
        let mut removed = vec![false; n];
        let mut head = 0;
        while head < queue.len() {
            let i = queue[head] as usize;
            head += 1;
            removed[i] = true;
            for t in succ(i) {
                let t = t as usize;
                if longest[i] + 1 > longest[t] {
                    longest[t] = longest[i] + 1;
                    via[t] = i as u32;
                }
                indegree[t] -= 1;
                if indegree[t] == 0 {
                    queue.push(t as u32);
                }
            }
        }
        let cyclic = removed.iter().any(|r| !r);
        if cyclic {
            // Keep only the states from which an endless path leaves: prune,
            // repeatedly, states with no successor left in the set.
            let mut alive: Vec<bool> = removed.iter().map(|r| !r).collect();
            let mut changed = true;
            while changed {
                changed = false;
                for i in 0..n {
                    if alive[i] && !succ(i).any(|t| alive[t as usize]) {
                        alive[i] = false;
                        changed = true;
                    }
                }
            }
            if let Some(entry) = (0..n).find(|&i| alive[i]) {
                let mut choices = visited.path(entry as u32);
                let entry_depth = choices.len() as u32;
                // Around the endless part: from each state, the first
                // successor edge that stays in it. A state's edges are its
                // successors in expansion order (or, reduced, the one taken),
                // so the step is the one whose canonical key is the target's.
                let mut at = entry;
                while choices.len() as u64 <= limits.steps_max as u64 {
                    let target = succ(at)
                        .find(|&t| alive[t as usize])
                        .expect("alive states have alive successors")
                        as usize;
                    let from = packer.unpack::<W>(&visited.keys.get(at), &program.initial);
                    let want = visited.keys.get(target);
                    choices.push(successor_choice(program, &from, |s| canon(s) == want));
                    at = target;
                }
                outcomes.insert(Outcome::StepLimit);
                shortest[Outcome::StepLimit as usize] = Some(Shortest {
                    depth: entry_depth,
                    choices: concrete(choices),
                });
            }
        } else {
            let (deepest, length) = longest
                .iter()
                .enumerate()
                .max_by_key(|(_, l)| **l)
                .map(|(i, l)| (i, *l))
                .unwrap_or((0, 0));
            longest_run = Some(length);
            if length > limits.steps_max {
                // A run along a longest path passes the budget: walk it back
                // and keep the first `steps_max + 1` steps (the run stops
                // after `steps_max`, still able to move).
                let mut on_path = vec![deepest];
                while via[*on_path.last().expect("not empty")] != u32::MAX {
                    on_path.push(via[*on_path.last().expect("not empty")] as usize);
                }
                on_path.reverse();
                let choices: Vec<Choice> = on_path
                    .windows(2)
                    .take(limits.steps_max as usize + 1)
                    .map(|w| {
                        let from = packer.unpack::<W>(&visited.keys.get(w[0]), &program.initial);
                        let want = visited.keys.get(w[1]);
                        successor_choice(program, &from, |s| canon(s) == want)
                    })
                    .collect();
                outcomes.insert(Outcome::StepLimit);
                shortest[Outcome::StepLimit as usize] = Some(Shortest {
                    depth: limits.steps_max,
                    choices: concrete(choices),
                });
            }
        }
    }

    let transitions = edges.len as u64;
    let max_depth = visited.depth(explored.max(1) as u32 - 1);
    let reductions = Reductions {
        symmetry: symmetry
            .map(|s| {
                s.classes()
                    .iter()
                    .map(|class| class.iter().map(|&t| program.threads[t].name.clone()).collect())
                    .collect()
            })
            .unwrap_or_default(),
        symmetry_order: symmetry.map_or(1, Symmetry::order),
        partial_order: limits.reduce,
    };
    Exploration {
        policy: program.policy.clone(),
        scenario: program.scenario.clone(),
        outcomes,
        shortest,
        states: visited.len() as u64,
        transitions,
        depth: max_depth,
        longest_run,
        limit,
        reductions,
        state_bytes: 8 * W as u64,
    }
}

/// States expanded per batch, and per parallel task within a batch.
const BATCH: usize = 1 << 16;
const CHUNK: usize = 1 << 10;
/// Transient bytes per state of a batch: its key and its expansion
/// (successor keys and choices, about four per state).
const BATCH_BYTES_PER_STATE: u64 = 256;

/// One state's expansion: what the oracles say of it and its successors,
/// canonical and packed. Computed apart from the visited set (in parallel).
struct Expansion<const W: usize> {
    outcomes: Outcomes,
    movable: bool,
    /// Partial-order reduction: the successors that may be taken alone, in
    /// thread order (the first one new to the visited set is).
    candidates: Vec<([u64; W], Choice)>,
    successors: Vec<([u64; W], Choice)>,
}

fn expand<const W: usize>(
    program: &Program,
    oracles: &OracleSet,
    packer: &Packer,
    canon: &(impl Fn(&State) -> [u64; W] + Sync),
    symmetry: Option<&Symmetry>,
    reduction: Option<&Reduction>,
    key: &[u64; W],
) -> Expansion<W> {
    let state = packer.unpack::<W>(key, &program.initial);
    // A representative whose interchangeable threads stand at distinct
    // positions is left one when a thread outside every class steps (their
    // positions stay sorted and distinct, so the identity is the only
    // candidate permutation): its successor then needs packing only.
    let untied = symmetry.is_some_and(|s| s.untied(&state));
    let canon_after = |next: &State, thread: usize| {
        if untied && symmetry.is_some_and(|s| !s.in_class(thread)) {
            packer.pack::<W>(next)
        } else {
            canon(next)
        }
    };
    // Outcomes that hold however the run continues.
    let mut outcomes = oracles.judge(&RunEnd {
        program,
        state: &state,
        terminated: false,
        step_limit: false,
    });
    let enabled = exec::enabled_mask(program, &state);
    // Environment gates are branches too, but a state where only gates
    // are open also ends a run: the environment need not act.
    let gates = exec::gate_mask(program, &state);
    if enabled == 0 {
        outcomes = outcomes.union(oracles.judge(&RunEnd {
            program,
            state: &state,
            terminated: true,
            step_limit: false,
        }));
    }
    let movable = enabled | gates;
    let mut candidates = Vec::new();
    if let Some(reduction) = reduction.filter(|_| movable != 0) {
        for thread in reduction.candidates(program, &state, enabled) {
            let mut next = state;
            exec::step(program, &mut next, thread, false);
            let choice = Choice {
                thread: thread as u8,
                fire: false,
            };
            candidates.push((canon_after(&next, thread), choice));
        }
    }
    let mut successors = Vec::with_capacity(movable.count_ones() as usize);
    for thread in 0..program.threads.len() {
        if movable & (1 << thread) == 0 {
            continue;
        }
        let fault = exec::fault_point(program, &state, thread).is_some();
        for fire in [false, true] {
            if fire && !fault {
                continue;
            }
            let mut next = state;
            exec::step(program, &mut next, thread, fire);
            let choice = Choice {
                thread: thread as u8,
                fire,
            };
            successors.push((canon_after(&next, thread), choice));
        }
    }
    Expansion {
        outcomes,
        movable: movable != 0,
        candidates,
        successors,
    }
}

/// The step from `from` to a successor that `wanted` accepts (one exists).
fn successor_choice(program: &Program, from: &State, wanted: impl Fn(&State) -> bool) -> Choice {
    for thread in 0..program.threads.len() {
        if !exec::enabled(program, from, thread) {
            continue;
        }
        for fire in [false, true] {
            if fire && exec::fault_point(program, from, thread).is_none() {
                continue;
            }
            let mut next = *from;
            exec::step(program, &mut next, thread, fire);
            if wanted(&next) {
                return Choice {
                    thread: thread as u8,
                    fire,
                };
            }
        }
    }
    unreachable!("the target is a successor")
}
