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
//! `jobs` workers, their successors looked up in the visited set by the
//! workers too, and merged in id order, so the result does not depend on
//! the number of workers. Opt-in hash compaction ([`ExploreLimits::hash_compact`],
//! module `compact`) stores fingerprints instead, and says the result is not
//! exact. docs/exploration.md explains each reduction and representation.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::engine::exec::{self, Choice};
use crate::engine::pack::Packer;
use crate::engine::por::Reduction;
use crate::engine::program::Program;
use crate::engine::symmetry::{Symmetry, canonical_key};
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
    /// Hash compaction: 64-bit fingerprints instead of exact states in the
    /// visited set. NOT exact (a state may be omitted, with the probability
    /// the result reports), step-limit decided only when a run past the
    /// budget is found. Off by default.
    pub hash_compact: bool,
    /// Keep the edge list while it fits under `memory_max` (4 bytes a
    /// transition, 8 a state): the step-limit check after the search then
    /// walks it instead of re-expanding every state. The same result either
    /// way; on by default (partial-order reduction always keeps it).
    pub keep_edges: bool,
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
            hash_compact: false,
            keep_edges: true,
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
    /// Bytes of one stored state's key in the visited set (a fingerprint's 8
    /// with hash compaction).
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
    /// Hash compaction (`--hash-compact`): the result is not exact.
    pub hash_compaction: Option<HashCompaction>,
}

/// What a search with hash compaction reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashCompaction {
    /// States stored (distinct fingerprints).
    pub states: u64,
    /// Whether step-limit was decided: only when a run past the budget was
    /// found (there is no graph to look for cycles and longest paths in).
    pub step_limit_decided: bool,
}

impl HashCompaction {
    /// An upper bound on the probability that some reachable state was
    /// omitted because its fingerprint equalled another's: the union bound
    /// over the pairs of `n` stored states, `n (n − 1) / 2 · 2⁻⁶⁴`, at most 1.
    /// (The states never reached because one was omitted are not counted:
    /// as SPIN's, this is an estimate from the states found.)
    pub fn omission_probability(&self) -> f64 {
        let n = self.states as f64;
        (n * (n - 1.0) / 2f64.powi(65)).min(1.0)
    }
}

/// How the reduction lines of [`Reductions::describe`] begin for the
/// reductions under which a witness is the shortest found, not proven
/// shortest: reports (and JSON read back) tell them by these.
pub const WITNESS_NOT_PROVEN_SHORTEST: [&str; 2] = ["partial-order reduction:", "hash compaction:"];

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
        if let Some(compaction) = &self.hash_compaction {
            lines.push(format!(
                "hash compaction: NOT EXACT: 64-bit fingerprints of {} states stored, not the states; the probability that a state was omitted is at most {:.1e} (n(n-1)/2^65); `safe` and the counts are not proven{}",
                compaction.states,
                compaction.omission_probability(),
                if compaction.step_limit_decided {
                    ""
                } else {
                    "; step-limit (an endless or over-long run) not decided"
                }
            ));
        }
        lines
    }
}

impl Exploration {
    pub fn complete(&self) -> bool {
        self.limit.is_none()
    }

    /// Complete, and over exact states: the outcome set is exact.
    pub fn exact(&self) -> bool {
        self.complete() && self.reductions.hash_compaction.is_none()
    }
}

/// Bytes one stored state costs besides its collapsed key (8 bytes, see
/// [`Visited`]): its visited-set slot's id and control byte, its parent
/// link and choice, and the step-limit check's in-degree. The search also
/// keeps an edge list (4 bytes a transition and 8 a state) while it fits
/// under the memory guard; the tables of distinct parts come on top, and
/// the hash table's capacity is up to twice the states.
pub const BYTES_PER_STATE_BESIDES_KEY: u64 = 4 + 1 + 4 + 1 + 4;

/// Bytes one stored state costs at the least (without an edge list): see
/// [`BYTES_PER_STATE_BESIDES_KEY`]. The same for every program, since
/// states are collapsed to 8 bytes.
pub fn bytes_per_state(_program: &Program) -> u64 {
    8 + BYTES_PER_STATE_BESIDES_KEY
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
    explore_observed(program, oracles, limits, stop, &mut |_| {})
}

/// The phases of the exhaustive search, in the order a batch goes through
/// them (docs/exploration.md, "Parallel search"), then the step-limit
/// check after the search.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Expand,
    Dedup,
    LookUp,
    Merge,
    Flush,
    StepLimitCheck,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Expand,
        Phase::Dedup,
        Phase::LookUp,
        Phase::Merge,
        Phase::Flush,
        Phase::StepLimitCheck,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Expand => "expand",
            Phase::Dedup => "dedup",
            Phase::LookUp => "look-up",
            Phase::Merge => "merge",
            Phase::Flush => "flush",
            Phase::StepLimitCheck => "step-limit check",
        }
    }
}

/// [`explore_until`], calling `observe` each time a phase ends (for
/// `explore --timings`, which times them: the search itself reads no
/// clock, and nothing it reports depends on the observer).
pub fn explore_observed(
    program: &Program,
    oracles: &OracleSet,
    limits: &ExploreLimits,
    stop: &AtomicBool,
    observe: &mut dyn FnMut(Phase),
) -> Exploration {
    let packer = Packer::new(program);
    let symmetry = if limits.symmetry && !limits.reduce {
        Symmetry::new(program, oracles)
    } else {
        None
    };
    let symmetry = symmetry.as_ref();
    macro_rules! go {
        ($w:literal) => {
            if limits.hash_compact {
                compact::search::<$w>(program, oracles, limits, &packer, symmetry, stop, observe)
            } else {
                search::<$w>(program, oracles, limits, &packer, symmetry, stop, observe)
            }
        };
    }
    match packer.words() {
        1 => go!(1),
        2 => go!(2),
        3 => go!(3),
        4 => go!(4),
        5 | 6 => go!(6),
        _ => go!(11),
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

/// States per segment of [`Segmented`] and [`Keys`].
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

    /// `len` copies of `value`.
    fn filled(len: usize, value: T) -> Segmented<T> {
        let mut filled = Segmented::new();
        for _ in 0..len {
            filled.push(value);
        }
        filled
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

    #[inline]
    fn set(&mut self, i: usize, value: T) {
        self.segments[i / SEGMENT][i % SEGMENT] = value;
    }

    fn bytes(&self) -> u64 {
        (self.segments.len() * SEGMENT * std::mem::size_of::<T>()) as u64
    }

    /// Whether the next pushes allocate a segment, and its size.
    fn growth(&self, slack: usize) -> u64 {
        if self.len + slack > self.segments.len() * SEGMENT {
            (SEGMENT * std::mem::size_of::<T>()) as u64
        } else {
            0
        }
    }
}

/// Packed keys indexed by id, each in just the bytes its bits need (a
/// 149-bit state takes 19 bytes, not three words' 24): the words'
/// big-endian bytes, whose tail past the packed bits is always zero.
struct Keys<const W: usize> {
    width: usize,
    segments: Vec<Box<[u8]>>,
    len: usize,
}

impl<const W: usize> Keys<W> {
    fn new(bits: u32) -> Keys<W> {
        Keys {
            width: (bits as usize).div_ceil(8).clamp(1, 8 * W),
            segments: Vec::new(),
            len: 0,
        }
    }

    /// The bytes `key` is stored as (the first `width` of them).
    #[inline]
    fn encode(&self, key: &[u64; W]) -> [u8; 8 * 11] {
        let mut bytes = [0u8; 8 * 11];
        for (w, word) in key.iter().enumerate() {
            bytes[8 * w..8 * w + 8].copy_from_slice(&word.to_be_bytes());
        }
        debug_assert!(bytes[self.width..8 * W].iter().all(|&b| b == 0));
        bytes
    }

    fn push(&mut self, key: &[u64; W]) {
        if self.len == self.segments.len() * SEGMENT {
            self.segments
                .push(vec![0u8; SEGMENT * self.width].into_boxed_slice());
        }
        let bytes = self.encode(key);
        let at = (self.len % SEGMENT) * self.width;
        self.segments[self.len / SEGMENT][at..at + self.width].copy_from_slice(&bytes[..self.width]);
        self.len += 1;
    }

    #[inline]
    fn get(&self, i: usize) -> [u64; W] {
        let at = (i % SEGMENT) * self.width;
        let mut bytes = [0u8; 8 * 11];
        bytes[..self.width].copy_from_slice(&self.segments[i / SEGMENT][at..at + self.width]);
        let mut key = [0u64; W];
        for (w, word) in key.iter_mut().enumerate() {
            *word = u64::from_be_bytes(bytes[8 * w..8 * w + 8].try_into().expect("8 bytes"));
        }
        key
    }

    fn bytes(&self) -> u64 {
        (self.segments.len() * SEGMENT * self.width) as u64
    }

    fn growth(&self, slack: usize) -> u64 {
        if self.len + slack > self.segments.len() * SEGMENT {
            (SEGMENT * self.width) as u64
        } else {
            0
        }
    }
}

/// No id: a successor not in the visited set yet.
const NONE: u32 = u32::MAX;

/// A 64-bit mix of a word (splitmix64's finaliser): the main table's hash
/// of a collapsed state.
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `key`'s first `at` bits (the rest zero), and its bits from `at` on,
/// shifted to the front.
#[inline]
fn split<const W: usize>(key: &[u64; W], at: u32) -> ([u64; W], [u64; W]) {
    let (q, r) = ((at / 64) as usize, at % 64);
    let mut head = *key;
    for (w, word) in head.iter_mut().enumerate() {
        if w > q || (w == q && r == 0) {
            *word = 0;
        } else if w == q {
            *word &= !(u64::MAX >> r);
        }
    }
    let mut tail = [0u64; W];
    for (w, word) in tail.iter_mut().enumerate() {
        let a = w + q;
        if a < W {
            *word = if r == 0 {
                key[a]
            } else {
                key[a] << r | if a + 1 < W { key[a + 1] >> (64 - r) } else { 0 }
            };
        }
    }
    (head, tail)
}

/// The key that [`split`] at `at` split into `head` and `tail`.
#[inline]
fn join<const W: usize>(head: &[u64; W], tail: &[u64; W], at: u32) -> [u64; W] {
    let (q, r) = ((at / 64) as usize, at % 64);
    let mut key = *head;
    for (w, word) in key.iter_mut().enumerate().skip(q) {
        let b = w - q;
        *word |= if r == 0 { tail[b] } else { tail[b] >> r };
        if r != 0 && b >= 1 {
            *word |= tail[b - 1] << (64 - r);
        }
    }
    key
}

#[inline]
fn hash_key<const W: usize>(key: &[u64; W]) -> u64 {
    FxBuildHasher.hash_one(key)
}

/// The distinct values of one part of the states (COLLAPSE's component
/// table), each stored once and numbered. There are few (see
/// [`Visited`]), so they are kept whole, for fast comparison.
struct Parts<const W: usize> {
    values: Vec<[u64; W]>,
    table: HashTable<u32>,
}

impl<const W: usize> Parts<W> {
    fn new() -> Parts<W> {
        Parts {
            values: Vec::new(),
            table: HashTable::new(),
        }
    }

    #[inline]
    fn get(&self, i: u32) -> [u64; W] {
        self.values[i as usize]
    }

    #[inline]
    fn find(&self, part: &[u64; W]) -> u32 {
        self.table
            .find(hash_key(part), |&i| self.values[i as usize] == *part)
            .copied()
            .unwrap_or(NONE)
    }

    fn intern(&mut self, part: &[u64; W]) -> u32 {
        let index = self.values.len() as u32;
        let values = &self.values;
        match self.table.entry(
            hash_key(part),
            |&i| values[i as usize] == *part,
            |&i| hash_key(&values[i as usize]),
        ) {
            hashbrown::hash_table::Entry::Occupied(entry) => *entry.get(),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                entry.insert(index);
                self.values.push(*part);
                index
            }
        }
    }

    /// Bytes now, and what the next values could add (growing, hashbrown's
    /// table and the vector hold their old and new allocations at once).
    fn bytes(&self, slack: usize) -> (u64, u64) {
        let table = self.table.capacity() as u64 * 8 / 7 * 5;
        let values = (self.values.capacity() * 8 * W) as u64;
        let mut growth = 0;
        if self.table.len() + slack > self.table.capacity() {
            growth += 2 * table + 1024 * 5;
        }
        if self.values.len() + slack > self.values.capacity() {
            growth += 2 * values + 1024;
        }
        (table + values, growth)
    }
}

/// The visited set and the parent links. The states not yet expanded are
/// the ids from the cursor on: ids are given in discovery order, which is
/// also the order of expansion.
///
/// Each state is stored collapsed, as SPIN's COLLAPSE mode does, exactly:
/// its packed key is split into the threads' part (positions, freeze level,
/// `s_umount`, writer counts) and the pages' part (pages, records, fault
/// counters); each part is numbered in its own table of distinct values,
/// and the state is the pair of numbers, 8 bytes. Far fewer parts than
/// states are distinct (a state is about any combination of them).
struct Visited<const W: usize> {
    /// Where the pages' part of a packed key starts.
    at: u32,
    heads: Parts<W>,
    tails: Parts<W>,
    /// Each id's state: its threads' part's number, then its pages'.
    states: Segmented<u64>,
    /// The ids, hashed by their collapsed states, in [`SHARDS`] tables
    /// (by bits of the hash that neither the bucket index nor hashbrown's
    /// tag uses), so that the ids a batch adds are inserted by the workers
    /// in parallel, and a table that grows holds its old and new buckets
    /// at once for one shard only.
    tables: Vec<HashTable<u32>>,
    /// New ids merged but not yet in `tables` (see [`Visited::push_new`]),
    /// and how many of them fall in each shard.
    pending: Vec<u32>,
    pending_per_shard: [u32; SHARDS],
    /// Per shard, the bytes it will take when it grows to hold its pending
    /// ids and the next state's successors (0 if it need not), and their
    /// sum: kept up to date as ids are added, for the memory guard.
    growth: [u64; SHARDS],
    growth_total: u64,
    /// Per shard, the bytes its table holds now, and their sum.
    held: [u64; SHARDS],
    held_total: u64,
    parent: Segmented<u32>,
    choice: Segmented<u8>,
    /// The first id of each breadth-first level (ids increase with depth).
    level_starts: Vec<u32>,
}

impl<const W: usize> Visited<W> {
    fn new(packer: &Packer) -> Visited<W> {
        let mut visited = Visited {
            at: packer.head_bits,
            heads: Parts::new(),
            tails: Parts::new(),
            states: Segmented::new(),
            tables: (0..SHARDS).map(|_| HashTable::new()).collect(),
            pending: Vec::new(),
            pending_per_shard: [0; SHARDS],
            growth: [0; SHARDS],
            growth_total: 0,
            held: [0; SHARDS],
            held_total: 0,
            parent: Segmented::new(),
            choice: Segmented::new(),
            level_starts: Vec::new(),
        };
        for s in 0..SHARDS {
            visited.update_growth(s);
        }
        visited
    }

    fn len(&self) -> usize {
        self.states.len
    }

    /// Id `i`'s packed key.
    #[inline]
    fn key(&self, i: usize) -> [u64; W] {
        let collapsed = self.states.get(i);
        join(
            &self.heads.get((collapsed >> 32) as u32),
            &self.tails.get(collapsed as u32),
            self.at,
        )
    }

    /// The id of `key`, or [`NONE`].
    #[inline]
    fn find(&self, key: &[u64; W]) -> u32 {
        self.look(key).id
    }

    /// How `key` stands in the set: its id if it is in it, else [`NONE`]
    /// and the numbers of those of its parts that are (read-only: the
    /// workers look a batch's successors up this way before the merge).
    #[inline]
    fn look(&self, key: &[u64; W]) -> Found {
        let (head, tail) = split(key, self.at);
        let (h, t) = (self.heads.find(&head), self.tails.find(&tail));
        let id = if h == NONE || t == NONE {
            NONE
        } else {
            let collapsed = (h as u64) << 32 | t as u64;
            let hash = mix(collapsed);
            self.tables[shard(hash)]
                .find(hash, |&id| self.states.get(id as usize) == collapsed)
                .copied()
                .unwrap_or(NONE)
        };
        Found {
            fingerprint: 0,
            id,
            head: h,
            tail: t,
        }
    }

    /// The id of `key`, and whether it is new (then queued at `depth`).
    fn insert(&mut self, key: [u64; W], parent: u32, choice: Choice, depth: u32) -> (u32, bool) {
        let (head, tail) = split(&key, self.at);
        let collapsed = (self.heads.intern(&head) as u64) << 32 | self.tails.intern(&tail) as u64;
        self.insert_collapsed(collapsed, parent, choice, depth)
    }

    /// [`Visited::insert`] for a key the workers have [looked](Visited::look)
    /// up before the batch: a part they found numbered is not looked up
    /// again (parts are never removed); only new parts are interned.
    fn insert_found(
        &mut self,
        key: &[u64; W],
        found: Found,
        parent: u32,
        choice: Choice,
        depth: u32,
    ) -> (u32, bool) {
        let collapsed = self.collapse(key, found);
        self.insert_collapsed(collapsed, parent, choice, depth)
    }

    /// `key`'s collapsed form: the numbers of its parts, those the workers
    /// found taken from `found`, the others interned (new parts).
    fn collapse(&mut self, key: &[u64; W], found: Found) -> u64 {
        let (mut h, mut t) = (found.head, found.tail);
        if h == NONE || t == NONE {
            let (head, tail) = split(key, self.at);
            if h == NONE {
                h = self.heads.intern(&head);
            }
            if t == NONE {
                t = self.tails.intern(&tail);
            }
        }
        (h as u64) << 32 | t as u64
    }

    fn insert_collapsed(&mut self, collapsed: u64, parent: u32, choice: Choice, depth: u32) -> (u32, bool) {
        debug_assert!(self.pending.is_empty(), "no look-up while ids are pending");
        let id = self.len() as u32;
        let hash = mix(collapsed);
        let states = &self.states;
        match self.tables[shard(hash)].entry(
            hash,
            |&other| states.get(other as usize) == collapsed,
            |&other| mix(states.get(other as usize)),
        ) {
            hashbrown::hash_table::Entry::Occupied(entry) => return (*entry.get(), false),
            hashbrown::hash_table::Entry::Vacant(entry) => {
                entry.insert(id);
            }
        }
        self.update_growth(shard(hash));
        self.push(collapsed, parent, choice, depth);
        (id, true)
    }

    /// A state the caller knows is new (the workers did not find it before
    /// the batch and it is its first occurrence in it): numbered and
    /// queued now, put in its table by [`Visited::flush`] after the batch.
    fn push_new(&mut self, key: &[u64; W], found: Found, parent: u32, choice: Choice, depth: u32) -> u32 {
        let collapsed = self.collapse(key, found);
        let id = self.len() as u32;
        self.pending.push(id);
        let s = shard(mix(collapsed));
        self.pending_per_shard[s] += 1;
        self.update_growth(s);
        self.push(collapsed, parent, choice, depth);
        id
    }

    /// Puts the pending ids in their tables, each shard's in id order, the
    /// shards on `pool`'s workers.
    fn flush(&mut self, pool: Option<&rayon::ThreadPool>) {
        if self.pending.is_empty() {
            return;
        }
        let mut by_shard: Vec<Vec<u32>> = self
            .pending_per_shard
            .iter()
            .map(|&n| Vec::with_capacity(n as usize))
            .collect();
        for &id in &self.pending {
            by_shard[shard(mix(self.states.get(id as usize)))].push(id);
        }
        let states = &self.states;
        let insert = |(table, ids): (&mut HashTable<u32>, &Vec<u32>)| {
            table.reserve(ids.len(), |&other| mix(states.get(other as usize)));
            for &id in ids {
                table.insert_unique(mix(states.get(id as usize)), id, |&other| {
                    mix(states.get(other as usize))
                });
            }
        };
        match pool {
            Some(pool) => pool.install(|| {
                use rayon::prelude::*;
                self.tables
                    .par_iter_mut()
                    .zip(by_shard.par_iter())
                    .for_each(insert);
            }),
            None => self.tables.iter_mut().zip(by_shard.iter()).for_each(insert),
        }
        self.pending.clear();
        self.pending_per_shard = [0; SHARDS];
        for s in 0..SHARDS {
            self.update_growth(s);
        }
    }

    /// Recomputes shard `s`'s growth for the guard: hashbrown's table
    /// grows to at least twice its capacity, holding the old buckets until
    /// the new ones are filled.
    fn update_growth(&mut self, s: usize) {
        let table = &self.tables[s];
        let wanted = table.len() + self.pending_per_shard[s] as usize + 2 * crate::model::THREADS_MAX;
        let bytes = if wanted > table.capacity() {
            table_bytes((2 * table.capacity()).max(wanted).max(1024))
        } else {
            0
        };
        self.growth_total = self.growth_total - self.growth[s] + bytes;
        self.growth[s] = bytes;
        let held = table_bytes(table.capacity());
        self.held_total = self.held_total - self.held[s] + held;
        self.held[s] = held;
    }

    fn push(&mut self, collapsed: u64, parent: u32, choice: Choice, depth: u32) {
        let id = self.len() as u32;
        self.states.push(collapsed);
        self.parent.push(parent);
        self.choice.push(encode_choice(choice));
        if self.level_starts.len() as u32 == depth {
            self.level_starts.push(id);
        }
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

    /// Bytes of the main table now: hashbrown keeps at most 7/8 of its
    /// buckets full, with 4 bytes and a control byte per bucket.
    fn table_bytes(&self) -> u64 {
        self.held_total
    }

    /// Frees the main table (ids can no longer be found).
    fn free_table(&mut self) {
        self.tables = (0..SHARDS).map(|_| HashTable::new()).collect();
        self.pending_per_shard = [0; SHARDS];
        for s in 0..SHARDS {
            self.update_growth(s);
        }
    }

    /// Bytes held now (capacities, not lengths), and the most that the next
    /// expansion's growth could add on top: the parts' tables, the arrays,
    /// and every shard whose pending ids (and the next state's) pass its
    /// capacity — a shard that grows holds its old and new buckets at once.
    fn bytes(&self) -> (u64, u64) {
        let slack = 2 * crate::model::THREADS_MAX;
        let (heads, heads_growth) = self.heads.bytes(slack);
        let (tails, tails_growth) = self.tails.bytes(slack);
        let table = self.table_bytes();
        let now = table + heads + tails + self.states.bytes() + self.parent.bytes() + self.choice.bytes();
        let mut growth = heads_growth
            + tails_growth
            + self.states.growth(slack)
            + self.parent.growth(slack)
            + self.choice.growth(slack);
        growth += self.growth_total;
        (now, growth)
    }
}

/// The main table's shards (see [`Visited`]).
const SHARDS: usize = 64;

/// The shard of a collapsed state's hash: bits 40..46, which hashbrown uses
/// neither for the bucket index (the low bits) nor for its tag (the top 7).
#[inline]
fn shard(hash: u64) -> usize {
    (hash >> 40) as usize % SHARDS
}

/// Bytes of a hashbrown table of 4-byte ids with room for `capacity`: at
/// most 7/8 of its buckets full, 4 bytes and a control byte per bucket.
fn table_bytes(capacity: usize) -> u64 {
    capacity as u64 * 8 / 7 * 5
}

/// Successor lists in CSR form: the edges of state `i` are
/// `edges[offsets[i]..offsets[i + 1]]`, in expansion order.
struct Graph {
    offsets: Segmented<u64>,
    edges: Segmented<u32>,
}

impl Graph {
    fn new() -> Graph {
        let mut offsets = Segmented::new();
        offsets.push(0);
        Graph {
            offsets,
            edges: Segmented::new(),
        }
    }

    fn succ(&self, i: usize) -> impl Iterator<Item = u32> + '_ {
        (self.offsets.get(i) as usize..self.offsets.get(i + 1) as usize).map(|k| self.edges.get(k))
    }

    fn bytes(&self) -> u64 {
        self.offsets.bytes() + self.edges.bytes()
    }

    fn growth(&self, slack: usize) -> u64 {
        self.offsets.growth(1) + self.edges.growth(slack)
    }
}

/// Per-state bytes of the step-limit check over an edge list (after the
/// hash table is freed): Kahn's in-degrees (then heights) and queue, and
/// on a cyclic graph two flags.
const GRAPH_CHECK_BYTES: u64 = 4 + 4 + 1 + 1;
/// Per-state bytes of the step-limit check that re-expands states (the hash
/// table kept to find successors' ids): one in-degree, counted during the
/// search (then, if a witness past the budget is needed, one height in its
/// place); the two frontiers of its rounds come on top ([`frontier_bytes`]).
const EXPAND_CHECK_BYTES: u64 = 4;

/// Bytes of the in-degrees of `n` states, in whole segments.
fn in_degree_bytes(n: u64) -> u64 {
    n.div_ceil(SEGMENT as u64) * SEGMENT as u64 * EXPAND_CHECK_BYTES
}

/// Bytes of the two frontiers (bit sets over the states) of
/// [`kahn_rounds`] over `n` states.
fn frontier_bytes(n: u64) -> u64 {
    2 * 8 * n.div_ceil(64)
}

/// One more edge into `id`, found by the search: a new state (the next id)
/// gets its first.
#[inline]
fn count_in_edge(indegree: &mut Segmented<u32>, id: u32) {
    if id as usize == indegree.len {
        indegree.push(1);
    } else {
        indegree.set(id as usize, indegree.get(id as usize) + 1);
    }
}

/// The in-degrees of the `n` states of `graph`, which is freed as they are
/// counted: the offsets first, then each segment of edges once counted, so
/// that the in-degrees take at most the offsets' room beside the edges.
fn in_degrees(graph: Graph, n: usize) -> Segmented<u32> {
    let Graph { offsets, edges } = graph;
    drop(offsets);
    let mut indegree = Segmented::filled(n, 0u32);
    for (k, segment) in edges.segments.into_iter().enumerate() {
        let used = (edges.len - k * SEGMENT).min(SEGMENT);
        for &t in &segment[..used] {
            indegree.set(t as usize, indegree.get(t as usize) + 1);
        }
    }
    indegree
}

/// What the search needs besides the visited set: the program and how its
/// states are canonicalised and expanded.
struct Context<'a, const W: usize> {
    program: &'a Program,
    packer: &'a Packer,
    canon: &'a (dyn Fn(&State) -> [u64; W] + Sync),
    symmetry: Option<&'a Symmetry>,
}

impl<const W: usize> Context<'_, W> {
    /// Appends the successors of `state` to `out`, in expansion order
    /// (thread order, then the fault not firing before firing), canonical
    /// and packed, with their choices (the search's batches and the
    /// step-limit check share one vector per chunk: no allocation per
    /// state).
    fn successors_into(&self, state: &State, movable: u32, out: &mut Vec<([u64; W], Choice)>) {
        let (program, packer, symmetry) = (self.program, self.packer, self.symmetry);
        // A representative whose interchangeable threads stand at distinct
        // positions is left one when a thread outside every class steps (their
        // positions stay sorted and distinct, so the identity is the only
        // candidate permutation): its successor then needs packing only.
        let untied = symmetry.is_some_and(|s| s.untied(state));
        let mut movable = movable;
        while movable != 0 {
            let thread = movable.trailing_zeros() as usize;
            movable &= movable - 1;
            let fault = exec::fault_point(program, state, thread).is_some();
            for fire in [false, true] {
                if fire && !fault {
                    continue;
                }
                let mut next = *state;
                exec::step(program, &mut next, thread, fire);
                let choice = Choice {
                    thread: thread as u8,
                    fire,
                };
                let key = if untied && symmetry.is_some_and(|s| !s.in_class(thread)) {
                    packer.pack::<W>(&next)
                } else {
                    (self.canon)(&next)
                };
                out.push((key, choice));
            }
        }
    }

    fn movable(&self, state: &State) -> u32 {
        exec::enabled_mask(self.program, state) | exec::gate_mask(self.program, state)
    }

    /// The step from `from` to the state whose canonical key is `want`.
    fn choice_to(&self, from: &[u64; W], want: &[u64; W]) -> Choice {
        let from = self.packer.unpack::<W>(from, &self.program.initial);
        successor_choice(self.program, &from, |s| (self.canon)(s) == *want)
    }
}

/// What the oracles say of a state a search reaches: the outcomes that hold
/// however the run continues, and, when no thread is enabled (`enabled`
/// is the state's enabled mask), those of a run that ends there.
pub(crate) fn state_outcomes(
    program: &Program,
    oracles: &OracleSet,
    state: &State,
    enabled: u32,
) -> Outcomes {
    let outcomes = oracles.judge(&RunEnd {
        program,
        state,
        terminated: false,
        step_limit: false,
    });
    if enabled != 0 {
        return outcomes;
    }
    outcomes.union(oracles.judge(&RunEnd {
        program,
        state,
        terminated: true,
        step_limit: false,
    }))
}

/// The workers of a search with `jobs` threads (`None`: the caller alone).
fn worker_pool(jobs: usize) -> Option<rayon::ThreadPool> {
    (jobs > 1)
        .then(|| rayon::ThreadPoolBuilder::new().num_threads(jobs).build().ok())
        .flatten()
}

/// Expands `batch`, in chunks spread over `pool`'s workers when there is
/// one; the chunks come back in batch order, their successors hashed but
/// not looked up yet (see [`look_batch`]).
fn expand_batch<const W: usize>(
    pool: Option<&rayon::ThreadPool>,
    batch: &[[u64; W]],
    ctx: &Context<'_, W>,
    oracles: &OracleSet,
    reduction: Option<&Reduction>,
) -> Vec<Expanded<W>> {
    let expand_all = |keys: &[[u64; W]]| -> Expanded<W> {
        let mut out = Expanded::with_capacity(keys.len());
        for key in keys {
            expand(ctx, oracles, reduction, key, &mut out);
        }
        out.hashes
            .extend(out.successors.iter().map(|(key, _)| hash_key(key)));
        out
    };
    let mut chunks: Vec<Expanded<W>> = match pool {
        Some(pool) => pool.install(|| {
            use rayon::prelude::*;
            batch.par_chunks(CHUNK).map(expand_all).collect()
        }),
        None => batch.chunks(CHUNK).map(expand_all).collect(),
    };
    let mut base = 0;
    for chunk in &mut chunks {
        chunk.base = base;
        base += chunk.successors.len();
    }
    chunks
}

/// Looks a batch's successors up with `look` (read-only, on `pool`'s
/// workers): with `firsts` (see [`first_occurrences`]), only each key's
/// first occurrence in the batch; the others are left [`NONE`].
fn look_batch<const W: usize>(
    pool: Option<&rayon::ThreadPool>,
    chunks: &mut [Expanded<W>],
    firsts: Option<&[u32]>,
    look: impl Fn(&[u64; W]) -> Found + Sync,
) {
    let look_chunk = |chunk: &mut Expanded<W>| {
        let base = chunk.base;
        chunk.found = chunk
            .successors
            .iter()
            .enumerate()
            .map(|(i, (key, _))| match firsts {
                Some(firsts) if firsts[base + i] as usize != base + i => Found::DUPLICATE,
                _ => look(key),
            })
            .collect();
    };
    match pool {
        Some(pool) => pool.install(|| {
            use rayon::prelude::*;
            chunks.par_iter_mut().for_each(look_chunk);
        }),
        None => chunks.iter_mut().for_each(look_chunk),
    }
}

/// How the workers found the successor at batch position `position`.
fn found_at<const W: usize>(chunks: &[Expanded<W>], position: usize) -> Found {
    let c = chunks.partition_point(|chunk| chunk.base <= position) - 1;
    chunks[c].found[position - chunks[c].base]
}

/// Duplicates within a batch. Most successors are reached again later in
/// the same batch (a state of the next level is reached from several of
/// this one's, often close in id; 62% of the transitions of mainline ×
/// p2-u3-c2): per batch position, the position of the first successor with
/// the same key (its own for the first), so that only first occurrences are
/// looked up in the visited set and the serial merge maps the others
/// without a look-up. The workers split the work by the keys' hashes, each keeping
/// batch order in its shard: the result depends on the batch alone, not on
/// the number of workers.
fn first_occurrences<const W: usize>(pool: Option<&rayon::ThreadPool>, chunks: &[Expanded<W>]) -> Vec<u32> {
    let total = chunks.last().map_or(0, |c| c.base + c.successors.len());
    let shards = pool.map_or(1, |p| p.current_num_threads().max(1));
    let shard = |s: usize| -> Vec<(u32, u32)> {
        let mut table: HashTable<(u32, u32)> = HashTable::with_capacity(total / shards + 16);
        let key_of = |&(c, i): &(u32, u32)| &chunks[c as usize].successors[i as usize].0;
        let mut duplicates = Vec::new();
        for (c, chunk) in chunks.iter().enumerate() {
            for (i, (&hash, (key, _))) in chunk.hashes.iter().zip(&chunk.successors).enumerate() {
                if (hash >> 32) as usize % shards != s {
                    continue;
                }
                match table.entry(
                    hash,
                    |at| key_of(at) == key,
                    |&(c, i)| chunks[c as usize].hashes[i as usize],
                ) {
                    hashbrown::hash_table::Entry::Occupied(entry) => {
                        let (fc, fi) = *entry.get();
                        duplicates.push((
                            (chunk.base + i) as u32,
                            (chunks[fc as usize].base + fi as usize) as u32,
                        ));
                    }
                    hashbrown::hash_table::Entry::Vacant(entry) => {
                        entry.insert((c as u32, i as u32));
                    }
                }
            }
        }
        duplicates
    };
    let lists: Vec<Vec<(u32, u32)>> = match pool {
        Some(pool) if shards > 1 => pool.install(|| {
            use rayon::prelude::*;
            (0..shards).into_par_iter().map(shard).collect()
        }),
        _ => vec![shard(0)],
    };
    let mut firsts: Vec<u32> = (0..total as u32).collect();
    for (position, first) in lists.into_iter().flatten() {
        firsts[position as usize] = first;
    }
    firsts
}

/// States expanded per batch, and per parallel task within a batch.
const BATCH: usize = 1 << 18;
const CHUNK: usize = 1 << 10;
/// Transient bytes per state of a batch: its key and its expansion
/// (successor keys, choices, hashes and ids, about four per state).
const BATCH_BYTES_PER_STATE: u64 = 512;

/// How the workers found a successor in the visited set as it was before
/// the batch was merged: its id, or [`NONE`] and the numbers of the parts
/// of its collapsed key that were known ([`NONE`] for a new part), so that
/// the serial merge need not look them up again; with hash compaction, its
/// fingerprint and whether it was seen.
#[derive(Clone, Copy)]
struct Found {
    fingerprint: u64,
    id: u32,
    head: u32,
    tail: u32,
}

impl Found {
    /// Not looked up: a later occurrence of a key in its batch.
    const DUPLICATE: Found = Found {
        fingerprint: 0,
        id: NONE,
        head: NONE,
        tail: NONE,
    };
}

/// One state's expansion, as the merge reads it from [`Expanded`].
struct ExpandedState {
    outcomes: Outcomes,
    movable: bool,
    /// Where its candidates, and its successors, end in the chunk's arrays.
    candidates_end: u32,
    successors_end: u32,
}

/// The expansions of a chunk of consecutive states: what the oracles say of
/// each and its successors, canonical and packed. Computed apart from the
/// visited set (in parallel), in flat arrays shared by the chunk's states
/// (no allocation per state).
struct Expanded<const W: usize> {
    /// The batch position of the chunk's first successor.
    base: usize,
    states: Vec<ExpandedState>,
    /// Partial-order reduction: per state, the successors that may be taken
    /// alone, in thread order (the first one new to the visited set is).
    candidates: Vec<([u64; W], Choice)>,
    successors: Vec<([u64; W], Choice)>,
    /// Per successor: its key's hash, and how the workers found it.
    hashes: Vec<u64>,
    found: Vec<Found>,
}

impl<const W: usize> Expanded<W> {
    fn with_capacity(states: usize) -> Expanded<W> {
        Expanded {
            base: 0,
            states: Vec::with_capacity(states),
            candidates: Vec::new(),
            successors: Vec::with_capacity(4 * states),
            hashes: Vec::with_capacity(4 * states),
            found: Vec::new(),
        }
    }

    /// Each state's expansion: it, its candidates and its successors with
    /// how they were found.
    fn iter(&self) -> impl Iterator<Item = ExpandedRef<'_, W>> {
        let (mut candidates, mut successors) = (0, 0);
        self.states.iter().map(move |state| {
            let (c, s) = (candidates, successors);
            candidates = state.candidates_end as usize;
            successors = state.successors_end as usize;
            ExpandedRef {
                position: self.base + s,
                outcomes: state.outcomes,
                movable: state.movable,
                candidates: &self.candidates[c..candidates],
                successors: &self.successors[s..successors],
                found: &self.found[s..successors],
            }
        })
    }
}

/// One state's part of an [`Expanded`].
struct ExpandedRef<'a, const W: usize> {
    /// The batch position of its first successor.
    position: usize,
    outcomes: Outcomes,
    movable: bool,
    candidates: &'a [([u64; W], Choice)],
    successors: &'a [([u64; W], Choice)],
    found: &'a [Found],
}

/// Appends the expansion of the state `key` to `out`.
fn expand<const W: usize>(
    ctx: &Context<'_, W>,
    oracles: &OracleSet,
    reduction: Option<&Reduction>,
    key: &[u64; W],
    out: &mut Expanded<W>,
) {
    let program = ctx.program;
    let state = ctx.packer.unpack::<W>(key, &program.initial);
    // Outcomes that hold however the run continues.
    let enabled = exec::enabled_mask(program, &state);
    let outcomes = state_outcomes(program, oracles, &state, enabled);
    // Environment gates are branches too, but a state where only gates
    // are open also ends a run: the environment need not act.
    let gates = exec::gate_mask(program, &state);
    let movable = enabled | gates;
    if let Some(reduction) = reduction.filter(|_| movable != 0) {
        let untied = ctx.symmetry.is_some_and(|s| s.untied(&state));
        for thread in reduction.candidates(program, &state, enabled) {
            let mut next = state;
            exec::step(program, &mut next, thread, false);
            let choice = Choice {
                thread: thread as u8,
                fire: false,
            };
            let key = if untied && ctx.symmetry.is_some_and(|s| !s.in_class(thread)) {
                ctx.packer.pack::<W>(&next)
            } else {
                (ctx.canon)(&next)
            };
            out.candidates.push((key, choice));
        }
    }
    ctx.successors_into(&state, movable, &mut out.successors);
    out.states.push(ExpandedState {
        outcomes,
        movable: movable != 0,
        candidates_end: out.candidates.len() as u32,
        successors_end: out.successors.len() as u32,
    });
}

fn search<const W: usize>(
    program: &Program,
    oracles: &OracleSet,
    limits: &ExploreLimits,
    packer: &Packer,
    symmetry: Option<&Symmetry>,
    stop: &AtomicBool,
    observe: &mut dyn FnMut(Phase),
) -> Exploration {
    let canon = |state: &State| canonical_key::<W>(symmetry, packer, state);
    let ctx = Context {
        program,
        packer,
        canon: &canon,
        symmetry,
    };
    let mut visited: Visited<W> = Visited::new(packer);
    visited.insert(
        canon(&program.initial),
        u32::MAX,
        Choice {
            thread: 0,
            fire: false,
        },
        0,
    );
    // The edge list makes the step-limit check after the search a walk over
    // memory; it is kept while it fits under the memory guard, and dropped
    // when it no longer does (the check then re-expands states from their
    // keys, in parallel, starting from in-degrees counted during the
    // search: the same verdicts and witnesses, more time). Partial-order
    // reduction needs it: which successor a reduced state took depends on
    // the visited set at the time.
    let mut graph = (limits.keep_edges || limits.reduce).then(Graph::new);
    // Without it, each state's in-degree, counted as the edges are found:
    // the step-limit check's Kahn rounds start from them.
    let mut indegree = graph.is_none().then(|| Segmented::filled(1, 0u32));
    let mut transitions = 0u64;

    let reduction = limits.reduce.then(|| Reduction::new(program));
    let mut first: [Option<u32>; OUTCOMES_MAX] = [None; OUTCOMES_MAX];
    let mut limit = None;
    let mut cursor = 0u32;
    let mut d = 0u32;
    let pool = worker_pool(limits.jobs);

    // Batches of the queue's front are expanded (in parallel with `jobs`)
    // into successor lists, whose ids are looked up in the visited set
    // (read-only, also in parallel), then merged into the visited set one
    // state at a time in id order: the ids, parents, edges and limits are
    // exactly those of a one-state-at-a-time search, whatever the number of
    // workers.
    'search: while (cursor as usize) < visited.len() {
        // A batch never spans two levels, so that each state's depth is known.
        let level_end = visited
            .level_starts
            .get(d as usize + 1)
            .map_or(visited.len(), |&start| start as usize);
        let take = (level_end - cursor as usize).min(BATCH);
        let batch: Vec<[u64; W]> = (0..take).map(|i| visited.key(cursor as usize + i)).collect();
        let mut chunks = expand_batch(pool.as_ref(), &batch, &ctx, oracles, reduction.as_ref());
        drop(batch);
        observe(Phase::Expand);
        let firsts = first_occurrences(pool.as_ref(), &chunks);
        observe(Phase::Dedup);
        look_batch(pool.as_ref(), &mut chunks, Some(&firsts), |key| visited.look(key));
        observe(Phase::LookUp);
        // Per batch position: the id its successor was merged as.
        let mut merged: Vec<u32> = vec![NONE; firsts.len()];
        for expansion in chunks.iter().flat_map(Expanded::iter) {
            if cursor.is_multiple_of(STOP_CHECK_STATES) && stop.load(Ordering::Relaxed) {
                limit = Some(LimitHit::Interrupted);
                break 'search;
            }
            if d > limits.steps_max {
                // Only reachable past the step budget, where a run has already
                // ended as step-limit: neither judged nor expanded (the run that
                // reaches it is found as a path longer than the budget below).
                if let Some(graph) = &mut graph {
                    graph.offsets.push(graph.edges.len as u64);
                }
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
                for &(key, choice) in expansion.candidates {
                    if visited.find(&key) != NONE {
                        continue;
                    }
                    let (id, _) = visited.insert(key, cursor, choice, d + 1);
                    if let Some(graph) = &mut graph {
                        graph.edges.push(id);
                    }
                    transitions += 1;
                    reduced = true;
                    break;
                }
            }
            if reduced {
            } else if expansion.movable && d >= limits.depth_max {
                limit.get_or_insert(LimitHit::Depth(limits.depth_max));
            } else {
                for (j, (&(key, choice), &found)) in
                    expansion.successors.iter().zip(expansion.found).enumerate()
                {
                    // Known before the batch, or merged earlier in it: no need
                    // to look it up again. (A first occurrence whose state was
                    // not expanded, past a limit, left no id: then this one
                    // is inserted.)
                    let position = expansion.position + j;
                    let first = firsts[position] as usize;
                    let id = if merged[first] != NONE {
                        merged[first]
                    } else {
                        let found = if first == position {
                            found
                        } else {
                            found_at(&chunks, first)
                        };
                        // Not in the set before the batch, and not merged
                        // earlier in it: new, unless a reduced step of this
                        // batch (which does look up) put it there.
                        let id = if found.id != NONE {
                            found.id
                        } else if reduction.is_some() {
                            visited.insert_found(&key, found, cursor, choice, d + 1).0
                        } else {
                            visited.push_new(&key, found, cursor, choice, d + 1)
                        };
                        merged[first] = id;
                        id
                    };
                    if let Some(graph) = &mut graph {
                        graph.edges.push(id);
                    } else if let Some(indegree) = &mut indegree {
                        count_in_edge(indegree, id);
                    }
                    transitions += 1;
                }
            }
            if let Some(graph) = &mut graph {
                graph.offsets.push(graph.edges.len as u64);
            }
            cursor += 1;
            if visited.len() as u64 > limits.states_max {
                limit = Some(LimitHit::States(limits.states_max));
                break 'search;
            }
            // Memory is checked before it is taken: stop when the next growth
            // of a table, or the step-limit check after the search, would pass
            // the guard. The edge list goes first.
            let (mut now, mut growth) = visited.bytes();
            let n = visited.len() as u64;
            let slack = 2 * crate::model::THREADS_MAX;
            if let Some(indegree) = &indegree {
                now += indegree.bytes();
                growth += indegree.growth(slack);
            }
            // This batch's expansions, or the next one's (at most the
            // states queued, at most a batch).
            let batch_bytes =
                BATCH_BYTES_PER_STATE * take.max((visited.len() - cursor as usize).min(BATCH)) as u64;
            let base = now + growth + batch_bytes;
            // Dropping the edge list turns it into in-degrees, the offsets
            // freed first (see `in_degrees`); partial-order reduction never
            // drops it.
            let to_in_degrees = |g: &Graph, n: u64| match reduction {
                None => in_degree_bytes(n).saturating_sub(g.offsets.bytes()),
                Some(_) => 0,
            };
            let with_graph = graph.as_ref().map(|g| {
                // Room to drop the edge list at the next check.
                let during = base + g.bytes() + g.growth(slack) + to_in_degrees(g, n + slack as u64);
                // The check over the edge list runs after the table is freed.
                let after = now - visited.table_bytes() + g.bytes() + GRAPH_CHECK_BYTES * n;
                during.max(after)
            });
            // The check without it holds the in-degrees, its two frontiers
            // and the batches it re-expands (not the search's).
            let without_graph = if indegree.is_none() { in_degree_bytes(n) } else { 0 }
                + now
                + growth
                + batch_bytes.max(frontier_bytes(n) + REEXPAND_BATCH_BYTES);
            match (with_graph, &graph) {
                (Some(bytes), _) if bytes <= limits.memory_max => {}
                // The conversion takes no more than what it frees first, or
                // what it takes fits.
                (Some(_), Some(g))
                    if reduction.is_none()
                        && without_graph <= limits.memory_max
                        && (to_in_degrees(g, n) == 0
                            || now + batch_bytes + g.bytes() + to_in_degrees(g, n) <= limits.memory_max) =>
                {
                    let g = graph.take().expect("matched");
                    indegree = Some(in_degrees(g, n as usize));
                    release_freed_memory();
                }
                (None, _) if without_graph <= limits.memory_max => {}
                _ => {
                    limit = Some(LimitHit::Memory(limits.memory_max));
                    break 'search;
                }
            }
        }
        observe(Phase::Merge);
        visited.flush(pool.as_ref());
        observe(Phase::Flush);
        if visited.level_starts.get(d as usize + 1) == Some(&cursor) {
            d += 1;
        }
    }
    // A search stopped by a limit inside a batch left ids pending.
    visited.flush(pool.as_ref());
    let explored = cursor as usize;

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
        let edges = match (graph, indegree) {
            (Some(graph), _) => Edges::List(graph),
            (None, Some(indegree)) => Edges::InDegrees(indegree),
            (None, None) => unreachable!("one or the other is kept"),
        };
        match step_limit(
            &ctx,
            &mut visited,
            edges,
            transitions,
            limits,
            pool.as_ref(),
            stop,
        ) {
            Ok(StepLimit::Acyclic { longest, witness }) => {
                longest_run = Some(longest);
                if let Some(choices) = witness {
                    outcomes.insert(Outcome::StepLimit);
                    shortest[Outcome::StepLimit as usize] = Some(Shortest {
                        depth: limits.steps_max,
                        choices: concrete(choices),
                    });
                }
            }
            Ok(StepLimit::Cyclic { entry_depth, choices }) => {
                outcomes.insert(Outcome::StepLimit);
                shortest[Outcome::StepLimit as usize] = Some(Shortest {
                    depth: entry_depth,
                    choices: concrete(choices),
                });
            }
            Err(hit) => limit = Some(hit),
        }
        observe(Phase::StepLimitCheck);
    }

    let max_depth = visited.depth(explored.max(1) as u32 - 1);
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
        reductions: reductions(program, symmetry, limits, None),
        state_bytes: 8,
    }
}

fn reductions(
    program: &Program,
    symmetry: Option<&Symmetry>,
    limits: &ExploreLimits,
    hash_compaction: Option<HashCompaction>,
) -> Reductions {
    Reductions {
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
        hash_compaction,
    }
}

/// Gives memory just freed back to the system. The allocator keeps freed
/// blocks of the heap for reuse, so the edge list's segments, once dropped,
/// would still count in the process's resident memory, and the step-limit
/// check's arrays would come on top of them: past the memory guard, which
/// counts what the search holds.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of the heap to the
    // system; it touches no memory in use.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What the step-limit check found.
enum StepLimit {
    /// No endless run; the longest run, and a run past the budget along a
    /// longest path if the longest is longer than the budget.
    Acyclic {
        longest: u32,
        witness: Option<Vec<Choice>>,
    },
    /// An endless run: a path into it and around it past the budget.
    Cyclic { entry_depth: u32, choices: Vec<Choice> },
}

/// What the search kept for the step-limit check: the edge list, or
/// (when it did not fit) each state's in-degree.
enum Edges {
    List(Graph),
    InDegrees(Segmented<u32>),
}

/// Decides step-limit over the complete graph: whether it has a cycle, and
/// otherwise its longest path. With the edge list, by Kahn's algorithm over
/// it. Without, by Kahn's algorithm in rounds ([`kahn_rounds`]) from the
/// in-degrees counted during the search, each round's states re-expanded
/// from their keys by `pool`'s workers (their successors' ids found in the
/// visited set), up to the budget; a path past it needs a witness, hence
/// heights, which a depth-first search computes (one 4-byte height a
/// state, in the in-degrees' place; it finds a cycle too, if any). A cycle
/// found without the edge list is analysed over one rebuilt by
/// re-expansion (by the workers, appended in id order), memory permitting
/// (else the search reports the memory limit: step-limit is undecided).
///
/// The witnesses do not depend on the path taken: an acyclic one follows,
/// from the initial state, the first successor (in expansion order) on a
/// longest path; a cyclic one is computed over the edge list either way.
/// Without the edge list the check looks at `stop` between batches.
fn step_limit<const W: usize>(
    ctx: &Context<'_, W>,
    visited: &mut Visited<W>,
    edges: Edges,
    transitions: u64,
    limits: &ExploreLimits,
    pool: Option<&rayon::ThreadPool>,
    stop: &AtomicBool,
) -> Result<StepLimit, LimitHit> {
    let n = visited.len();
    // States past the budget were not expanded: they have no edges.
    let expanded = visited
        .level_starts
        .get(limits.steps_max as usize + 1)
        .map_or(n, |&start| start as usize);
    let successor_ids = |visited: &Visited<W>, i: usize| -> Vec<u32> {
        let mut ids = Vec::new();
        push_successor_ids(ctx, visited, expanded, i, &mut Vec::new(), &mut ids);
        ids
    };
    let walk = |visited: &Visited<W>, height: &dyn Fn(u32) -> u32, succ: &dyn Fn(u32) -> Vec<u32>| {
        // A run along a longest path passes the budget: keep its first
        // `steps_max + 1` steps (the run stops after `steps_max`, still
        // able to move).
        let mut choices = Vec::new();
        let mut at = 0u32;
        while choices.len() as u64 <= limits.steps_max as u64 {
            let target = succ(at)
                .into_iter()
                .find(|&t| height(t) + 1 == height(at))
                .expect("a state on a longest path has a successor on it");
            choices.push(ctx.choice_to(&visited.key(at as usize), &visited.key(target as usize)));
            at = target;
        }
        choices
    };
    let graph = match edges {
        Edges::List(graph) => graph,
        Edges::InDegrees(indegree) => {
            match kahn_rounds(ctx, visited, expanded, indegree, limits.steps_max, pool, stop)? {
                Rounds::Acyclic(longest) => {
                    return Ok(StepLimit::Acyclic {
                        longest,
                        witness: None,
                    });
                }
                Rounds::Cyclic => {}
                Rounds::Longer => {
                    // A run past the budget: its witness needs heights,
                    // depth-first (which also finds a cycle, if any).
                    if let Some(height) = heights(n, stop, |i| successor_ids(visited, i as usize))? {
                        let witness = walk(visited, &|i| height[i as usize], &|i| {
                            successor_ids(visited, i as usize)
                        });
                        return Ok(StepLimit::Acyclic {
                            longest: height[0],
                            witness: Some(witness),
                        });
                    }
                }
            }
            // Rebuild the edge list, if it fits beside the visited set (and
            // a batch's re-expansion), and the check's arrays after the
            // table is freed.
            let (now, _) = visited.bytes();
            let edges = 4 * transitions + 8 * n as u64 + 2 * (SEGMENT as u64 * 8);
            if now + edges + REEXPAND_BATCH_BYTES > limits.memory_max
                || now - visited.table_bytes() + edges + GRAPH_CHECK_BYTES * n as u64 > limits.memory_max
            {
                return Err(LimitHit::Memory(limits.memory_max));
            }
            // Batch by batch, re-expanded by the workers, appended in id order.
            let mut graph = Graph::new();
            let mut batch: Vec<u32> = Vec::with_capacity(REEXPAND_BATCH);
            for start in (0..n).step_by(REEXPAND_BATCH) {
                if stop.load(Ordering::Relaxed) {
                    return Err(LimitHit::Interrupted);
                }
                batch.clear();
                batch.extend(start as u32..(start + REEXPAND_BATCH).min(n) as u32);
                for chunk in reexpand(ctx, visited, expanded, &batch, pool) {
                    let mut from = 0;
                    for &end in &chunk.ends {
                        for &t in &chunk.targets[from..end as usize] {
                            graph.edges.push(t);
                        }
                        graph.offsets.push(graph.edges.len as u64);
                        from = end as usize;
                    }
                }
            }
            graph
        }
    };
    // The hash table is not needed past here: free it for the check.
    visited.free_table();
    release_freed_memory();
    // Kahn's algorithm: a state leaves the queue once all its predecessors have.
    let mut indegree: Segmented<u32> = Segmented::new();
    for _ in 0..n {
        indegree.push(0);
    }
    for i in 0..n {
        for t in graph.succ(i) {
            indegree.set(t as usize, indegree.get(t as usize) + 1);
        }
    }
    let mut queue: Vec<u32> = Vec::with_capacity(n);
    queue.extend((0..n as u32).filter(|&i| indegree.get(i as usize) == 0));
    // The queue in rounds: the states a round frees form the next, so a
    // state's round is the longest path to it from the initial state (the
    // only state no edge enters, in an acyclic graph).
    let (mut head, mut round_end, mut rounds) = (0, queue.len(), 0u32);
    while head < queue.len() {
        if head == round_end {
            rounds += 1;
            round_end = queue.len();
        }
        let i = queue[head] as usize;
        head += 1;
        for t in graph.succ(i) {
            let left = indegree.get(t as usize) - 1;
            indegree.set(t as usize, left);
            if left == 0 {
                queue.push(t);
            }
        }
    }
    if queue.len() == n {
        let longest = rounds;
        // A run past the budget needs heights (the longest path from each
        // state), in reverse topological order, in the in-degrees' place
        // (all zero now), to follow a longest path from the initial state.
        let witness = (longest > limits.steps_max).then(|| {
            let mut height = indegree;
            for &i in queue.iter().rev() {
                let h = graph
                    .succ(i as usize)
                    .map(|t| height.get(t as usize) + 1)
                    .max()
                    .unwrap_or(0);
                height.set(i as usize, h);
            }
            debug_assert_eq!(height.get(0), longest);
            walk(visited, &|i| height.get(i as usize), &|i| {
                graph.succ(i as usize).collect()
            })
        });
        return Ok(StepLimit::Acyclic { longest, witness });
    }
    drop(indegree);
    // Keep only the states from which an endless path leaves: those Kahn's
    // algorithm did not remove (reachable from a cycle), pruned, repeatedly,
    // of states with no successor left in the set.
    let mut alive = vec![true; n];
    for &i in &queue {
        alive[i as usize] = false;
    }
    drop(queue);
    let mut changed = true;
    while changed {
        changed = false;
        for i in 0..n {
            if alive[i] && !graph.succ(i).any(|t| alive[t as usize]) {
                alive[i] = false;
                changed = true;
            }
        }
    }
    let entry = (0..n).find(|&i| alive[i]).expect("a cycle's states stay alive");
    let mut choices = visited.path(entry as u32);
    let entry_depth = choices.len() as u32;
    // Around the endless part: from each state, the first successor edge
    // that stays in it. A state's edges are its successors in expansion
    // order, so the step is the one whose canonical key is the target's.
    let mut at = entry;
    while choices.len() as u64 <= limits.steps_max as u64 {
        let target = graph
            .succ(at)
            .find(|&t| alive[t as usize])
            .expect("alive states have alive successors") as usize;
        choices.push(ctx.choice_to(&visited.key(at), &visited.key(target)));
        at = target;
    }
    Ok(StepLimit::Cyclic { entry_depth, choices })
}

/// Re-expands state `i` (none of the states from `expanded` on) and appends
/// its successors' ids to `ids`, their keys going through `keys`.
#[inline]
fn push_successor_ids<const W: usize>(
    ctx: &Context<'_, W>,
    visited: &Visited<W>,
    expanded: usize,
    i: usize,
    keys: &mut Vec<([u64; W], Choice)>,
    ids: &mut Vec<u32>,
) {
    if i >= expanded {
        return;
    }
    let state = ctx.packer.unpack::<W>(&visited.key(i), &ctx.program.initial);
    keys.clear();
    ctx.successors_into(&state, ctx.movable(&state), keys);
    ids.extend(keys.iter().map(|(key, _)| visited.find(key)));
}

/// States the step-limit check re-expands per batch (spread over the
/// workers in chunks): a batch's transient memory is counted at its worst.
const REEXPAND_BATCH: usize = 16 * CHUNK;
/// Transient bytes of the step-limit check's re-expansion: per state of a
/// batch, its id, where its successors end and their ids (at most two per
/// thread, in a vector that may have doubled and be reallocating); the
/// rounds hold two batches.
const REEXPAND_BATCH_BYTES: u64 =
    2 * REEXPAND_BATCH as u64 * (4 + 4 + 3 * 4 * 2 * crate::model::THREADS_MAX as u64);

/// The re-expansion of a chunk of states: their successors' ids, state
/// after state, and where each state's end.
struct Reexpanded {
    targets: Vec<u32>,
    ends: Vec<u32>,
}

/// Re-expands the states `batch`, in chunks spread over `pool`'s workers
/// when there is one (the states from `expanded` on have no successors);
/// the chunks come back in batch order.
fn reexpand<const W: usize>(
    ctx: &Context<'_, W>,
    visited: &Visited<W>,
    expanded: usize,
    batch: &[u32],
    pool: Option<&rayon::ThreadPool>,
) -> Vec<Reexpanded> {
    let expand_chunk = |ids: &[u32]| -> Reexpanded {
        let mut keys = Vec::new();
        let mut chunk = Reexpanded {
            targets: Vec::with_capacity(4 * ids.len()),
            ends: Vec::with_capacity(ids.len()),
        };
        for &i in ids {
            push_successor_ids(ctx, visited, expanded, i as usize, &mut keys, &mut chunk.targets);
            chunk.ends.push(chunk.targets.len() as u32);
        }
        chunk
    };
    match pool {
        Some(pool) => pool.install(|| {
            use rayon::prelude::*;
            batch.par_chunks(CHUNK).map(expand_chunk).collect()
        }),
        None => batch.chunks(CHUNK).map(expand_chunk).collect(),
    }
}

/// What [`kahn_rounds`] found.
#[derive(Debug, PartialEq, Eq)]
enum Rounds {
    /// No cycle; the longest path, in steps.
    Acyclic(u32),
    Cyclic,
    /// A path longer than the most asked for: stopped there.
    Longer,
}

/// Kahn's algorithm in rounds, without an edge list: whether the graph of
/// the visited states is acyclic, and then its longest path from the
/// initial state, unless a path longer than `longest_max` is found first
/// (each round scans its bit set: the rounds are bounded so that a long,
/// thin graph does not cost a scan per step). `indegree` holds each
/// state's in-degree, counted during the search; the states from
/// `expanded` on (past the budget) have no successors.
///
/// Round 0 is the initial state alone, if no edge enters it (every other
/// state was found from a predecessor). Each round re-expands its states,
/// in batches spread over `pool`'s workers, and takes an edge off each
/// successor's in-degree; the states left with none form the next round (a
/// state joins the round after its last predecessor's, so round `r` holds
/// the states whose longest path from the initial state is `r` steps). The
/// rounds are bit sets over the ids, taken in id order, so the rounds, and
/// the result, do not depend on the number of workers; each round's scan
/// spans only the words its states were set in. The in-degrees are taken
/// off in batch order while the workers expand the next batch. Every state
/// is removed iff the graph is acyclic.
fn kahn_rounds<const W: usize>(
    ctx: &Context<'_, W>,
    visited: &Visited<W>,
    expanded: usize,
    mut indegree: Segmented<u32>,
    longest_max: u32,
    pool: Option<&rayon::ThreadPool>,
    stop: &AtomicBool,
) -> Result<Rounds, LimitHit> {
    let n = visited.len();
    let words = n.div_ceil(64);
    let mut round = vec![0u64; words];
    let mut next = vec![0u64; words];
    // The words of `round` and `next` that may have bits set.
    const EMPTY: (usize, usize) = (usize::MAX, 0);
    let mut span = EMPTY;
    let mut next_span = EMPTY;
    if indegree.get(0) == 0 {
        round[0] = 1;
        span = (0, 1);
    }
    let expand = |batch: &[u32]| reexpand(ctx, visited, expanded, batch, pool);
    let take_off = |indegree: &mut Segmented<u32>,
                    next: &mut [u64],
                    next_span: &mut (usize, usize),
                    targets: Vec<Reexpanded>| {
        for t in targets.into_iter().flat_map(|chunk| chunk.targets) {
            let left = indegree.get(t as usize) - 1;
            indegree.set(t as usize, left);
            if left == 0 {
                let w = t as usize / 64;
                next[w] |= 1 << (t % 64);
                *next_span = (next_span.0.min(w), next_span.1.max(w + 1));
            }
        }
    };
    let (mut removed, mut rounds) = (0usize, 0u32);
    loop {
        let mut batch: Vec<u32> = Vec::with_capacity(REEXPAND_BATCH);
        let mut pending: Vec<Reexpanded> = Vec::new();
        let mut size = 0usize;
        let mut w = span.0;
        loop {
            // The round's next batch of states, in id order.
            batch.clear();
            while w < span.1 && batch.len() < REEXPAND_BATCH {
                let mut bits = std::mem::take(&mut round[w]);
                while bits != 0 {
                    batch.push((w * 64) as u32 + bits.trailing_zeros());
                    bits &= bits - 1;
                }
                w += 1;
            }
            if stop.load(Ordering::Relaxed) {
                return Err(LimitHit::Interrupted);
            }
            // Expand this batch while the last one's edges are taken off.
            let done = std::mem::take(&mut pending);
            let expanded = match pool {
                Some(pool) => {
                    let (indegree, next, next_span) = (&mut indegree, &mut next, &mut next_span);
                    pool.join(
                        || expand(&batch),
                        move || take_off(indegree, next, next_span, done),
                    )
                    .0
                }
                None => {
                    take_off(&mut indegree, &mut next, &mut next_span, done);
                    expand(&batch)
                }
            };
            if batch.is_empty() {
                break;
            }
            size += batch.len();
            pending = expanded;
        }
        if size == 0 {
            break;
        }
        removed += size;
        rounds += 1;
        std::mem::swap(&mut round, &mut next);
        span = std::mem::replace(&mut next_span, EMPTY);
        if span != EMPTY && rounds > longest_max {
            // The next round's states are `rounds` steps in.
            return Ok(Rounds::Longer);
        }
    }
    Ok(if removed == n {
        Rounds::Acyclic(rounds - 1)
    } else {
        Rounds::Cyclic
    })
}

/// The height of each of `n` states (the longest path from it), by a
/// depth-first search from the initial state that re-expands each state
/// with `successors`; `None` if the graph has a cycle.
fn heights(
    n: usize,
    stop: &AtomicBool,
    successors: impl Fn(u32) -> Vec<u32>,
) -> Result<Option<Vec<u32>>, LimitHit> {
    // 0 unvisited, GREY on the stack, else height + 1.
    const GREY: u32 = u32::MAX;
    let mut height = vec![0u32; n];
    height[0] = GREY;
    let mut stack: Vec<(u32, Vec<u32>, usize, u32)> = vec![(0, successors(0), 0, 0)];
    let mut steps = 0u32;
    while let Some(top) = stack.last_mut() {
        steps = steps.wrapping_add(1);
        if steps.is_multiple_of(STOP_CHECK_STATES) && stop.load(Ordering::Relaxed) {
            return Err(LimitHit::Interrupted);
        }
        if top.2 < top.1.len() {
            let t = top.1[top.2];
            top.2 += 1;
            match height[t as usize] {
                0 => {
                    height[t as usize] = GREY;
                    let succ = successors(t);
                    stack.push((t, succ, 0, 0));
                }
                GREY => return Ok(None),
                done => top.3 = top.3.max(done),
            }
        } else {
            let (id, _, _, best) = stack.pop().expect("not empty");
            height[id as usize] = best + 1;
            if let Some(parent) = stack.last_mut() {
                parent.3 = parent.3.max(best + 1);
            }
        }
    }
    for h in &mut height {
        *h -= 1;
    }
    Ok(Some(height))
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

/// Hash compaction (opt-in, `--hash-compact`): the visited set stores a
/// 64-bit fingerprint per state instead of the state, as SPIN's `-DHC`
/// does. Two states with the same fingerprint are taken for one, so a state
/// (and what only it leads to) may be omitted: the result is not exact, and
/// says so with the probability of an omission.
///
/// What is still stored, and why:
/// - the keys of the states still to expand (the current and the next
///   breadth-first level only), since a fingerprint cannot be expanded;
/// - each state's parent link and choice (5 bytes), so that every outcome
///   keeps a witness, a real run that replays (each step was computed from
///   the exact state before it);
/// - no edge list and no keys of expanded states: the step-limit check
///   (cycles, longest path) needs the whole graph, so it is not made; a run
///   longer than the budget is still found when the breadth-first search
///   reaches past it, and step-limit is otherwise reported as undecided.
mod compact {
    use super::*;

    /// The fingerprint of a packed key: a multiply-fold hash over its words
    /// and a final avalanche (splitmix64), never 0 (the table's empty slot).
    #[inline]
    pub(super) fn fingerprint<const W: usize>(key: &[u64; W]) -> u64 {
        let fold = |a: u64, b: u64| {
            let p = a as u128 * b as u128;
            (p as u64) ^ (p >> 64) as u64
        };
        let mut h = 0x243f_6a88_85a3_08d3u64;
        for &word in key {
            h = fold(h ^ word, 0x9e37_79b9_7f4a_7c15);
        }
        h ^= h >> 30;
        h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
        h ^= h >> 27;
        h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
        h ^= h >> 31;
        h.max(1)
    }

    /// An open-addressing set of fingerprints (linear probing, at most 7/8
    /// full; 0 marks an empty slot). Growing by half holds the old and the
    /// new slots at once: the memory guard counts both.
    pub(super) struct Fingerprints {
        slots: Vec<u64>,
        len: usize,
    }

    impl Fingerprints {
        pub(super) fn new() -> Fingerprints {
            Fingerprints {
                slots: vec![0; 1 << 16],
                len: 0,
            }
        }

        #[inline]
        fn home(&self, fp: u64) -> usize {
            ((fp as u128 * self.slots.len() as u128) >> 64) as usize
        }

        #[inline]
        pub(super) fn contains(&self, fp: u64) -> bool {
            let mut i = self.home(fp);
            loop {
                match self.slots[i] {
                    0 => return false,
                    x if x == fp => return true,
                    _ => i = if i + 1 == self.slots.len() { 0 } else { i + 1 },
                }
            }
        }

        /// Whether `fp` is new (then stored).
        pub(super) fn insert(&mut self, fp: u64) -> bool {
            if (self.len + 1) * 8 > self.slots.len() * 7 {
                let grown = vec![0; self.slots.len() / 2 * 3];
                let old = std::mem::replace(&mut self.slots, grown);
                self.len = 0;
                for fp in old.into_iter().filter(|&fp| fp != 0) {
                    self.insert(fp);
                }
            }
            let mut i = self.home(fp);
            loop {
                match self.slots[i] {
                    0 => {
                        self.slots[i] = fp;
                        self.len += 1;
                        return true;
                    }
                    x if x == fp => return false,
                    _ => i = if i + 1 == self.slots.len() { 0 } else { i + 1 },
                }
            }
        }

        pub(super) fn bytes(&self) -> u64 {
            self.slots.len() as u64 * 8
        }

        /// What the next `slack` inserts could add (the new slots; the old
        /// ones are freed after).
        pub(super) fn growth(&self, slack: usize) -> u64 {
            if (self.len + slack) * 8 > self.slots.len() * 7 {
                (self.slots.len() / 2 * 3) as u64 * 8
            } else {
                0
            }
        }
    }

    pub(super) fn search<const W: usize>(
        program: &Program,
        oracles: &OracleSet,
        limits: &ExploreLimits,
        packer: &Packer,
        symmetry: Option<&Symmetry>,
        stop: &AtomicBool,
        observe: &mut dyn FnMut(Phase),
    ) -> Exploration {
        let canon = |state: &State| canonical_key::<W>(symmetry, packer, state);
        let ctx = Context {
            program,
            packer,
            canon: &canon,
            symmetry,
        };
        let reduction = limits.reduce.then(|| Reduction::new(program));
        let mut seen = Fingerprints::new();
        let mut parent: Segmented<u32> = Segmented::new();
        let mut choice: Segmented<u8> = Segmented::new();
        let mut level_starts: Vec<u32> = vec![0];
        let initial = canon(&program.initial);
        seen.insert(fingerprint(&initial));
        parent.push(u32::MAX);
        choice.push(0);
        // The keys of the level being expanded, and of the next one.
        let mut level: Keys<W> = Keys::new(packer.bits);
        level.push(&initial);
        let mut next: Keys<W> = Keys::new(packer.bits);
        let mut states = 1u64;
        let mut transitions = 0u64;
        let mut first: [Option<u32>; OUTCOMES_MAX] = [None; OUTCOMES_MAX];
        let mut limit = None;
        let mut cursor = 0u32;
        let mut d = 0u32;
        let pool = worker_pool(limits.jobs);
        'search: while level.len > 0 {
            if d > limits.steps_max {
                // Past the step budget: not expanded (see the exact search).
                break;
            }
            let mut done = 0;
            while done < level.len {
                let take = (level.len - done).min(BATCH);
                let batch: Vec<[u64; W]> = (done..done + take).map(|i| level.get(i)).collect();
                done += take;
                let mut chunks = expand_batch(pool.as_ref(), &batch, &ctx, oracles, reduction.as_ref());
                observe(Phase::Expand);
                {
                    let seen = &seen;
                    look_batch(pool.as_ref(), &mut chunks, None, |key| {
                        let fingerprint = fingerprint(key);
                        Found {
                            fingerprint,
                            id: if seen.contains(fingerprint) { 0 } else { NONE },
                            head: NONE,
                            tail: NONE,
                        }
                    })
                };
                drop(batch);
                observe(Phase::LookUp);
                for expansion in chunks.iter().flat_map(Expanded::iter) {
                    if cursor.is_multiple_of(STOP_CHECK_STATES) && stop.load(Ordering::Relaxed) {
                        limit = Some(LimitHit::Interrupted);
                        break 'search;
                    }
                    for outcome in expansion.outcomes.iter() {
                        first[outcome as usize].get_or_insert(cursor);
                    }
                    // A successor not seen before the batch: stored if it is
                    // still new (it may have come earlier in the batch).
                    macro_rules! add {
                        ($key:expr, $fp:expr, $step:expr) => {{
                            transitions += 1;
                            let new = seen.insert($fp);
                            if new {
                                if level_starts.len() as u32 == d + 1 {
                                    level_starts.push(states as u32);
                                }
                                next.push($key);
                                parent.push(cursor);
                                choice.push(encode_choice($step));
                                states += 1;
                            }
                            new
                        }};
                    }
                    let mut reduced = false;
                    if d < limits.depth_max {
                        for &(key, step) in expansion.candidates {
                            let fp = fingerprint(&key);
                            if !seen.contains(fp) {
                                reduced = add!(&key, fp, step);
                                break;
                            }
                        }
                    }
                    if reduced {
                    } else if expansion.movable && d >= limits.depth_max {
                        limit.get_or_insert(LimitHit::Depth(limits.depth_max));
                    } else {
                        for (&(key, step), found) in expansion.successors.iter().zip(expansion.found) {
                            if found.id != NONE {
                                transitions += 1;
                            } else {
                                add!(&key, found.fingerprint, step);
                            }
                        }
                    }
                    cursor += 1;
                    if states > limits.states_max {
                        limit = Some(LimitHit::States(limits.states_max));
                        break 'search;
                    }
                    let slack = 2 * crate::model::THREADS_MAX;
                    let bytes = seen.bytes()
                        + seen.growth(slack)
                        + parent.bytes()
                        + parent.growth(slack)
                        + choice.bytes()
                        + choice.growth(slack)
                        + level.bytes()
                        + next.bytes()
                        + next.growth(slack)
                        + BATCH_BYTES_PER_STATE * take.max(next.len.min(BATCH)) as u64;
                    if bytes > limits.memory_max {
                        limit = Some(LimitHit::Memory(limits.memory_max));
                        break 'search;
                    }
                }
                observe(Phase::Merge);
            }
            level = std::mem::replace(&mut next, Keys::new(packer.bits));
            d += 1;
        }
        let path = |mut id: u32| {
            let mut choices = Vec::new();
            while parent.get(id as usize) != u32::MAX {
                choices.push(decode_choice(choice.get(id as usize)));
                id = parent.get(id as usize);
            }
            choices.reverse();
            choices
        };
        let depth = |id: u32| (level_starts.partition_point(|&start| start <= id) - 1) as u32;
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
                    depth: depth(i),
                    choices: concrete(path(i)),
                });
            }
        }
        // A state past the budget: the run to its parent has used the
        // budget and can still move.
        let past = level_starts.get(limits.steps_max as usize + 1).copied();
        if let Some(id) = past {
            outcomes.insert(Outcome::StepLimit);
            shortest[Outcome::StepLimit as usize] = Some(Shortest {
                depth: limits.steps_max,
                choices: concrete(path(parent.get(id as usize))),
            });
        }
        let compaction = HashCompaction {
            states,
            step_limit_decided: past.is_some(),
        };
        Exploration {
            policy: program.policy.clone(),
            scenario: program.scenario.clone(),
            outcomes,
            shortest,
            states,
            transitions,
            depth: (level_starts.len() - 1) as u32,
            longest_run: None,
            limit,
            reductions: reductions(program, symmetry, limits, Some(compaction)),
            state_bytes: 8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splitting a key at any bit and joining the parts gives it back, and
    /// the parts hold exactly the bits before and from the split.
    #[test]
    fn split_and_join_are_inverse_at_every_bit() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..200 {
            let mut key = [0u64; 3];
            for word in &mut key {
                seed = mix(seed.wrapping_add(0x9e37_79b9_7f4a_7c15));
                *word = seed;
            }
            for at in 0..=192 {
                let (head, tail) = split(&key, at);
                assert_eq!(join(&head, &tail, at), key, "at {at}");
                // The head keeps the first `at` bits, the tail starts with bit `at`.
                let bit = |k: &[u64; 3], i: u32| k[(i / 64) as usize] >> (63 - i % 64) & 1;
                for i in 0..192 {
                    assert_eq!(bit(&head, i), if i < at { bit(&key, i) } else { 0 });
                    assert_eq!(bit(&tail, i), if i + at < 192 { bit(&key, i + at) } else { 0 });
                }
            }
        }
    }

    /// The in-degrees counted from an edge list of several segments (the
    /// list freed as it is read) are those counted edge by edge, as the
    /// search counts them without the list.
    #[test]
    fn in_degrees_from_an_edge_list_are_those_counted_edge_by_edge() {
        let n = 3 * SEGMENT / 2;
        let mut graph = Graph::new();
        let mut counted = Segmented::filled(1, 0u32);
        let mut seed = 1u64;
        for i in 0..n {
            // Each state after the first is found from an earlier one, and
            // a few more edges go anywhere already found.
            let targets = [Some(i + 1).filter(|&t| t < n), Some(seed as usize % (i + 1))];
            seed = mix(seed);
            for t in targets.into_iter().flatten() {
                graph.edges.push(t as u32);
                count_in_edge(&mut counted, t as u32);
            }
            graph.offsets.push(graph.edges.len as u64);
        }
        assert!(graph.edges.segments.len() > 2);
        let edges = graph.edges.len as u64;
        let from_graph = in_degrees(graph, n);
        assert_eq!(from_graph.len, n);
        assert_eq!(counted.len, n);
        for i in 0..n {
            assert_eq!(from_graph.get(i), counted.get(i), "state {i}");
        }
        assert_eq!((0..n).map(|i| from_graph.get(i) as u64).sum::<u64>(), edges);
    }

    /// The step-limit check's rounds find the longest run the search over
    /// the edge list finds, with any number of workers, stop at a path
    /// longer than asked for, and stop at the stop flag (Ctrl-C) with the
    /// interrupt.
    #[test]
    fn kahn_rounds_find_the_longest_run_and_stop_when_asked() {
        let text = "policy p {
                freeze { lock umount write; set_level complete; unlock umount; }
                thaw { lock umount write; set_level unfrozen; unlock umount; }
                page_mkwrite { lock_page; }
            }
            scenario s {
                page a { cached; }
                thread user { store a 2; store a 3; }
                thread freezer { freeze; thaw; }
            }";
        let workspace = crate::dsl::load_str("t.ff", text).unwrap_or_else(|e| panic!("loads: {e}"));
        let program =
            crate::engine::program::compile(&workspace.policies[0], &workspace.scenarios[0]).unwrap();
        let packer = Packer::new(&program);
        assert_eq!(packer.words(), 1);
        let canon = |state: &State| canonical_key::<1>(None, &packer, state);
        let ctx = Context {
            program: &program,
            packer: &packer,
            canon: &canon,
            symmetry: None,
        };
        let mut visited: Visited<1> = Visited::new(&packer);
        let choice = Choice {
            thread: 0,
            fire: false,
        };
        visited.insert(canon(&program.initial), u32::MAX, choice, 0);
        // Breadth-first, the in-degrees counted as the search counts them.
        let mut indegree = Segmented::filled(1, 0u32);
        let mut successors = Vec::new();
        let mut i = 0;
        while i < visited.len() {
            let state = packer.unpack::<1>(&visited.key(i), &program.initial);
            successors.clear();
            ctx.successors_into(&state, ctx.movable(&state), &mut successors);
            for &(key, choice) in &successors {
                let (id, _) = visited.insert(key, i as u32, choice, visited.depth(i as u32) + 1);
                count_in_edge(&mut indegree, id);
            }
            i += 1;
        }
        let n = visited.len();
        let searched = explore(&program, &OracleSet::standard(), &ExploreLimits::default());
        assert_eq!(searched.states, n as u64);
        let longest = searched.longest_run.expect("acyclic");
        assert!(longest >= 4, "{longest}");
        let rounds = |stop: bool, jobs: usize, longest_max: u32| {
            let pool = worker_pool(jobs);
            let mut copy = Segmented::filled(n, 0);
            for k in 0..n {
                copy.set(k, indegree.get(k));
            }
            kahn_rounds(
                &ctx,
                &visited,
                n,
                copy,
                longest_max,
                pool.as_ref(),
                &AtomicBool::new(stop),
            )
        };
        for jobs in [1, 2] {
            assert_eq!(rounds(false, jobs, longest), Ok(Rounds::Acyclic(longest)));
            assert_eq!(rounds(false, jobs, longest - 1), Ok(Rounds::Longer));
            assert_eq!(rounds(true, jobs, longest), Err(LimitHit::Interrupted));
        }
    }
}
