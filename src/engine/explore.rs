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
//! The visited set holds exact states (no fingerprints), so there is no
//! collision probability to report.

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};

use hashbrown::HashTable;
use rustc_hash::FxBuildHasher;

use crate::engine::exec::{self, Choice};
use crate::engine::por::Reduction;
use crate::engine::program::Program;
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
    /// longer. Off by default.
    pub reduce: bool,
}

impl Default for ExploreLimits {
    fn default() -> Self {
        ExploreLimits {
            states_max: 20_000_000,
            depth_max: 100_000,
            memory_max: 4 << 30,
            steps_max: 10_000,
            reduce: false,
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
}

impl Exploration {
    pub fn complete(&self) -> bool {
        self.limit.is_none()
    }
}

/// Bytes one stored state costs at the least: the state itself (stored once:
/// the visited set holds indices into the state table), its parent link,
/// depth and edge offset, its visited-set slot (index and control byte), and
/// the cycle check's per-state arrays. The memory guard counts the real
/// capacities of the tables, which can be up to twice this while they grow.
pub const BYTES_PER_STATE: u64 = (std::mem::size_of::<State>() + 8 + 4 + 8 + 5 + CYCLE_CHECK_BYTES) as u64;
/// Per-state arrays of the step-limit (cycle) check after the search.
const CYCLE_CHECK_BYTES: usize = 4 + 4 + 4 + 4 + 1 + 1;

/// Explores `program` completely (or up to `limits`).
pub fn explore(program: &Program, oracles: &OracleSet, limits: &ExploreLimits) -> Exploration {
    explore_until(program, oracles, limits, &AtomicBool::new(false))
}

/// States explored between two looks at the stop flag: a fraction of a
/// millisecond of work.
const STOP_CHECK_STATES: usize = 1024;

/// [`explore`], stopping (with [`LimitHit::Interrupted`]) soon after `stop`
/// becomes true.
pub fn explore_until(
    program: &Program,
    oracles: &OracleSet,
    limits: &ExploreLimits,
    stop: &AtomicBool,
) -> Exploration {
    let mut states: Vec<State> = vec![program.initial];
    let mut parent: Vec<(u32, Choice)> = vec![(
        u32::MAX,
        Choice {
            thread: 0,
            fire: false,
        },
    )];
    let mut depth: Vec<u32> = vec![0];
    // The visited set: indices into `states`, hashed by the state they name,
    // so that each state is stored once.
    let hasher = FxBuildHasher;
    let mut index: HashTable<u32> = HashTable::new();
    index.insert_unique(hasher.hash_one(program.initial), 0, |_| 0);
    // Successor lists in CSR form: edges of state i are edges[offsets[i]..offsets[i+1]].
    let mut offsets: Vec<u64> = vec![0];
    let mut edges: Vec<u32> = Vec::new();

    let reduction = limits.reduce.then(|| Reduction::new(program));
    let mut first: [Option<u32>; OUTCOMES_MAX] = [None; OUTCOMES_MAX];
    let mut limit = None;
    let mut cursor = 0usize;
    let threads = program.threads.len();

    while cursor < states.len() {
        if cursor.is_multiple_of(STOP_CHECK_STATES) && stop.load(Ordering::Relaxed) {
            limit = Some(LimitHit::Interrupted);
            break;
        }
        let state = states[cursor];
        let d = depth[cursor];
        if d > limits.steps_max {
            // Only reachable past the step budget, where a run has already
            // ended as step-limit: neither judged nor expanded (the run that
            // reaches it is found as a path longer than the budget below).
            offsets.push(edges.len() as u64);
            cursor += 1;
            continue;
        }
        // Outcomes that hold however the run continues.
        let prefix = oracles.judge(&RunEnd {
            program,
            state: &state,
            terminated: false,
            step_limit: false,
        });
        for outcome in prefix.iter() {
            first[outcome as usize].get_or_insert(cursor as u32);
        }
        let enabled = exec::enabled_mask(program, &state);
        // Environment gates are branches too, but a state where only gates
        // are open also ends a run: the environment need not act.
        let gates = exec::gate_mask(program, &state);
        if enabled == 0 {
            let end = oracles.judge(&RunEnd {
                program,
                state: &state,
                terminated: true,
                step_limit: false,
            });
            for outcome in end.iter() {
                first[outcome as usize].get_or_insert(cursor as u32);
            }
        }
        let movable = enabled | gates;
        // With reduction, one thread's invisible, independent next step is
        // enough when it leads to a new state (the cycle proviso).
        let mut reduced = false;
        if let Some(reduction) = reduction
            .as_ref()
            .filter(|_| movable != 0 && d < limits.depth_max)
        {
            for thread in reduction.candidates(program, &state, enabled) {
                let mut next = state;
                exec::step(program, &mut next, thread, false);
                let hash = hasher.hash_one(next);
                if index.find(hash, |&i| states[i as usize] == next).is_some() {
                    continue;
                }
                let i = states.len() as u32;
                states.push(next);
                parent.push((
                    cursor as u32,
                    Choice {
                        thread: thread as u8,
                        fire: false,
                    },
                ));
                depth.push(d + 1);
                index.insert_unique(hash, i, |&j| hasher.hash_one(states[j as usize]));
                edges.push(i);
                reduced = true;
                break;
            }
        }
        if reduced {
        } else if movable != 0 && d >= limits.depth_max {
            limit.get_or_insert(LimitHit::Depth(limits.depth_max));
        } else if movable != 0 {
            for thread in 0..threads {
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
                    let hash = hasher.hash_one(next);
                    let target = match index.find(hash, |&i| states[i as usize] == next) {
                        Some(&i) => i,
                        None => {
                            let i = states.len() as u32;
                            states.push(next);
                            parent.push((cursor as u32, choice));
                            depth.push(d + 1);
                            index.insert_unique(hash, i, |&j| hasher.hash_one(states[j as usize]));
                            i
                        }
                    };
                    edges.push(target);
                }
            }
        }
        offsets.push(edges.len() as u64);
        cursor += 1;
        let bytes = (states.capacity() * std::mem::size_of::<State>()
            + parent.capacity() * std::mem::size_of::<(u32, Choice)>()
            + depth.capacity() * 4
            + offsets.capacity() * 8
            + index.capacity() * 5
            + edges.capacity() * 4
            + states.len() * CYCLE_CHECK_BYTES) as u64;
        if states.len() as u64 > limits.states_max {
            limit = Some(LimitHit::States(limits.states_max));
            break;
        }
        if bytes > limits.memory_max {
            limit = Some(LimitHit::Memory(limits.memory_max));
            break;
        }
    }

    let explored = cursor;
    let path = |mut i: u32| {
        let mut choices = Vec::new();
        while parent[i as usize].0 != u32::MAX {
            choices.push(parent[i as usize].1);
            i = parent[i as usize].0;
        }
        choices.reverse();
        choices
    };
    let mut shortest: [Option<Shortest>; OUTCOMES_MAX] = Default::default();
    let mut outcomes = Outcomes::default();
    for outcome in Outcome::every() {
        if let Some(i) = first[outcome as usize] {
            outcomes.insert(outcome);
            shortest[outcome as usize] = Some(Shortest {
                depth: depth[i as usize],
                choices: path(i),
            });
        }
    }

    // Step-limit: only decidable over a complete graph.
    let mut longest_run = None;
    if limit.is_none() {
        let n = explored;
        let succ = |i: usize| &edges[offsets[i] as usize..offsets[i + 1] as usize];
        // Kahn's algorithm; `longest[i]` is the longest path from the initial state.
        let mut indegree = vec![0u32; n];
        for i in 0..n {
            for &t in succ(i) {
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
            for &t in succ(i) {
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
                    if alive[i] && !succ(i).iter().any(|&t| alive[t as usize]) {
                        alive[i] = false;
                        changed = true;
                    }
                }
            }
            if let Some(entry) = (0..n).find(|&i| alive[i]) {
                let mut choices = path(entry as u32);
                let entry_depth = choices.len() as u32;
                let mut at = entry;
                while choices.len() as u64 <= limits.steps_max as u64 {
                    let (from, to) = (offsets[at] as usize, offsets[at + 1] as usize);
                    let k = (from..to)
                        .find(|&k| alive[edges[k] as usize])
                        .expect("alive states have alive successors");
                    let target = edges[k] as usize;
                    choices.push(parent_choice(program, &states[at], &states[target]));
                    at = target;
                }
                outcomes.insert(Outcome::StepLimit);
                shortest[Outcome::StepLimit as usize] = Some(Shortest {
                    depth: entry_depth,
                    choices,
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
                    .map(|w| parent_choice(program, &states[w[0]], &states[w[1]]))
                    .collect();
                outcomes.insert(Outcome::StepLimit);
                shortest[Outcome::StepLimit as usize] = Some(Shortest {
                    depth: limits.steps_max,
                    choices,
                });
            }
        }
    }

    let transitions = edges.len() as u64;
    let max_depth = depth.iter().take(explored.max(1)).copied().max().unwrap_or(0);
    Exploration {
        policy: program.policy.clone(),
        scenario: program.scenario.clone(),
        outcomes,
        shortest,
        states: states.len() as u64,
        transitions,
        depth: max_depth,
        longest_run,
        limit,
    }
}

/// The choice that leads from `from` to `to` (one exists: `to` is a successor).
fn parent_choice(program: &Program, from: &State, to: &State) -> Choice {
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
            if next == *to {
                return Choice {
                    thread: thread as u8,
                    fire,
                };
            }
        }
    }
    unreachable!("`to` is a successor of `from`")
}
