//! Symmetry reduction for the exhaustive search: threads that run the same
//! program up to the values they store are interchangeable, so the search
//! stores one state per orbit of the group that permutes them.
//!
//! Two threads are interchangeable when their compiled code is the same
//! instruction for instruction (same operations, pages, jumps and fault
//! spans), except that where one stores its `i`-th value the other stores
//! its own `i`-th value. Permuting such threads, and in the same stroke
//! the values they store (in every page's memory, on its disk, and in the
//! lost-write oracle's "last value stored"), maps every run to a run and
//! every state to one the same oracles judge the same way, as long as:
//!
//! - each of those values is stored by that one thread only, and is no
//!   page's initial value (else the value map would not be a bijection
//!   that fixes the rest of the state);
//! - every oracle says its verdict is symmetric ([`OracleSet::symmetric`]:
//!   true of the built-in ones, never assumed of a plug-in);
//! - no plug-in fault is turned on (its guard may name a thread); the
//!   shipped faults treat threads alike.
//!
//! A thread's identity appears in the state as its position (`pc`), its bit
//! among the `s_umount` readers, the `s_umount` writer, page lock owners
//! and its bit among a page's writeback owners (PG_writeback);
//! [`Symmetry::apply`] permutes all of them.
//!
//! The canonical representative of a state is the least packed encoding
//! among the permuted states whose interchangeable threads' positions are
//! in non-decreasing order (a set that depends only on the orbit): usually
//! a single permutation, more only when two such threads stand at the same
//! position.
//!
//! Breadth-first search over canonical states finds every orbit at the
//! least depth any member has (the initial state is fixed by the group and
//! the step function commutes with it), so shortest schedules keep their
//! length; [`Symmetry::lift`] maps a schedule found on representatives back
//! to one that replays on the real program.

use crate::engine::exec::{self, Choice};
use crate::engine::pack::Packer;
use crate::engine::program::{Op, Program};
use crate::model::{State, THREADS_MAX};
use crate::oracle::OracleSet;

/// A thread permutation: `perm[t]` is the slot thread `t` moves to.
pub type Perm = [u8; THREADS_MAX];

const IDENTITY: Perm = [0, 1, 2, 3, 4, 5, 6, 7];

const IDENTITY_VALUES: [u8; 256] = {
    let mut map = [0u8; 256];
    let mut v = 0;
    while v < 256 {
        map[v] = v as u8;
        v += 1;
    }
    map
};

/// The key a search stores for `state`: its packed canonical representative
/// under `symmetry`, or simply its packing without symmetry reduction.
pub fn canonical_key<const W: usize>(
    symmetry: Option<&Symmetry>,
    packer: &Packer,
    state: &State,
) -> [u64; W] {
    match symmetry {
        Some(symmetry) => symmetry.canonical::<W>(packer, state).0,
        None => packer.pack::<W>(state),
    }
}

/// The symmetry group of one program.
#[derive(Clone, Debug)]
pub struct Symmetry {
    /// Classes of interchangeable threads (each of two or more, ascending).
    classes: Vec<Vec<usize>>,
    /// Per thread: the values it stores, in order of first appearance.
    values: Vec<Vec<u8>>,
    threads: usize,
    pages: usize,
}

/// A thread's code with its stored values replaced by their rank in the
/// thread's own value list (equal for interchangeable threads), and that
/// list.
/// One instruction with its stored value replaced by the value's rank: the
/// op, the rank, `next`, `alt`, the writeback bodies each edge leaves, and
/// the fault span and writeback body marks.
type ShapedInstr = (Op, u8, u16, u16, (u8, u8), u8, u8);

fn shape(program: &Program, thread: usize) -> (Vec<u8>, Vec<ShapedInstr>) {
    let code = &program.threads[thread];
    let mut values: Vec<u8> = Vec::new();
    let mut ops = Vec::with_capacity(code.code.len());
    for (i, instr) in code.code.iter().enumerate() {
        let mut rank = |v: u8| {
            values.iter().position(|&x| x == v).unwrap_or_else(|| {
                values.push(v);
                values.len() - 1
            }) as u8
        };
        let (op, value) = match instr.op {
            Op::StoreEntry { page, value } => (Op::StoreEntry { page, value: 0 }, rank(value)),
            Op::FaultComplete { page, value } => (Op::FaultComplete { page, value: 0 }, rank(value)),
            other => (other, 0),
        };
        ops.push((
            op,
            value,
            instr.next,
            instr.alt,
            (instr.leaves.next, instr.leaves.alt),
            code.faulting[i],
            code.writeback.get(i).copied().unwrap_or(0),
        ));
    }
    (values, ops)
}

fn same_code(program: &Program, a: usize, b: usize) -> bool {
    let (ta, tb) = (&program.threads[a], &program.threads[b]);
    ta.flusher == tb.flusher
        && ta.env.is_none()
        && tb.env.is_none()
        && ta.entry == tb.entry
        && shape(program, a).1 == shape(program, b).1
}

impl Symmetry {
    /// The symmetry group of `program` judged by `oracles`, or `None` when
    /// it is trivial (no two threads interchangeable) or cannot be used.
    pub fn new(program: &Program, oracles: &OracleSet) -> Option<Symmetry> {
        if !oracles.symmetric() {
            return None;
        }
        let plugin = program
            .faults
            .iter()
            .enumerate()
            .any(|(slot, f)| f.enabled && slot >= crate::fault::BUILTIN.len());
        if plugin {
            return None;
        }
        let threads = program.threads.len();
        let values: Vec<Vec<u8>> = (0..threads).map(|t| shape(program, t).0).collect();
        // How many threads store each value; the pages' initial values.
        let mut storers = [0u32; 256];
        for vals in &values {
            for &v in vals {
                storers[v as usize] += 1;
            }
        }
        let mut initial = [false; 256];
        initial[0] = true;
        for page in &program.initial.pages[..program.pages.len()] {
            initial[page.mem as usize] = true;
            initial[page.disk as usize] = true;
        }
        let own_values = |t: usize| {
            values[t]
                .iter()
                .all(|&v| storers[v as usize] == 1 && !initial[v as usize])
        };
        let mut classes: Vec<Vec<usize>> = Vec::new();
        let mut placed = vec![false; threads];
        for a in 0..threads {
            if placed[a] || !own_values(a) {
                continue;
            }
            let mut class = vec![a];
            for (b, placed_b) in placed.iter_mut().enumerate().skip(a + 1) {
                if !*placed_b && own_values(b) && same_code(program, a, b) {
                    class.push(b);
                    *placed_b = true;
                }
            }
            placed[a] = true;
            if class.len() > 1 {
                classes.push(class);
            }
        }
        if classes.is_empty() {
            return None;
        }
        Some(Symmetry {
            classes,
            values,
            threads,
            pages: program.pages.len(),
        })
    }

    /// The classes of interchangeable threads.
    pub fn classes(&self) -> &[Vec<usize>] {
        &self.classes
    }

    /// Whether `thread` belongs to a class of interchangeable threads.
    #[inline]
    pub fn in_class(&self, thread: usize) -> bool {
        self.classes.iter().any(|c| c.contains(&thread))
    }

    /// Whether, in every class, the threads' positions strictly increase in
    /// thread order: then the identity is the only permutation
    /// [`Symmetry::canonical`] considers, and `state`, if a representative,
    /// stays one when a thread outside every class steps.
    #[inline]
    pub fn untied(&self, state: &State) -> bool {
        self.classes
            .iter()
            .all(|c| c.windows(2).all(|w| state.pc[w[0]] < state.pc[w[1]]))
    }

    /// The group's order: the product of the classes' factorials.
    pub fn order(&self) -> u64 {
        self.classes
            .iter()
            .map(|c| (1..=c.len() as u64).product::<u64>())
            .product()
    }

    /// `perm` applied to `state`: each thread `t` of a class takes the place
    /// of `perm[t]`, and its stored values those of `perm[t]`.
    pub fn apply(&self, state: &State, perm: &Perm) -> State {
        let mut out = *state;
        let mut value_map = IDENTITY_VALUES;
        for class in &self.classes {
            for &t in class {
                let to = perm[t] as usize;
                out.pc[to] = state.pc[t];
                for (i, &v) in self.values[t].iter().enumerate() {
                    value_map[v as usize] = self.values[to][i];
                }
            }
        }
        let mut readers = 0u8;
        for (t, &to) in perm.iter().enumerate().take(self.threads) {
            if state.umount_readers & (1 << t) != 0 {
                readers |= 1 << to;
            }
        }
        out.umount_readers = readers;
        if state.umount_writer != 0 {
            out.umount_writer = perm[state.umount_writer as usize - 1] + 1;
        }
        for p in 0..self.pages {
            let page = &mut out.pages[p];
            if page.locked_by != 0 {
                page.locked_by = perm[page.locked_by as usize - 1] + 1;
            }
            let mut writeback = 0u8;
            for (t, &to) in perm.iter().enumerate().take(self.threads) {
                if page.writeback_by & (1 << t) != 0 {
                    writeback |= 1 << to;
                }
            }
            page.writeback_by = writeback;
            page.mem = value_map[page.mem as usize];
            page.disk = value_map[page.disk as usize];
            out.stored[p] = value_map[state.stored[p] as usize];
        }
        out
    }

    /// The canonical representative of `state`'s orbit, packed, and a
    /// permutation that maps `state` to it.
    #[inline]
    pub fn canonical<const W: usize>(&self, packer: &Packer, state: &State) -> ([u64; W], Perm) {
        // Per class, its threads sorted by position: the base assignment
        // sends the i-th of them to the class's i-th slot. Runs of equal
        // positions are permuted in every way (an odometer of
        // next-permutations, one digit per run).
        let mut sorted: [[u8; THREADS_MAX]; THREADS_MAX] = [[0; THREADS_MAX]; THREADS_MAX];
        let mut runs: [(u8, u8, u8); THREADS_MAX] = [(0, 0, 0); THREADS_MAX];
        let mut run_count = 0;
        for (c, class) in self.classes.iter().enumerate() {
            let s = &mut sorted[c][..class.len()];
            for (i, &t) in class.iter().enumerate() {
                s[i] = t as u8;
            }
            s.sort_unstable_by_key(|&t| (state.pc[t as usize], t));
            let mut i = 0;
            while i < class.len() {
                let mut j = i + 1;
                while j < class.len() && state.pc[s[j] as usize] == state.pc[s[i] as usize] {
                    j += 1;
                }
                if j - i > 1 {
                    runs[run_count] = (c as u8, i as u8, j as u8);
                    run_count += 1;
                }
                i = j;
            }
        }
        let perm_of = |sorted: &[[u8; THREADS_MAX]; THREADS_MAX]| {
            let mut perm = IDENTITY;
            for (c, class) in self.classes.iter().enumerate() {
                for (i, &slot) in class.iter().enumerate() {
                    perm[sorted[c][i] as usize] = slot as u8;
                }
            }
            perm
        };
        let mut best_perm = perm_of(&sorted);
        let mut best: [u64; W] = packer.pack(&self.apply(state, &best_perm));
        if run_count == 0 {
            return (best, best_perm);
        }
        loop {
            // Advance the odometer.
            let mut digit = 0;
            loop {
                if digit == run_count {
                    return (best, best_perm);
                }
                let (c, from, to) = runs[digit];
                if next_permutation(&mut sorted[c as usize][from as usize..to as usize]) {
                    break;
                }
                digit += 1;
            }
            let perm = perm_of(&sorted);
            let key: [u64; W] = packer.pack(&self.apply(state, &perm));
            if key < best {
                best = key;
                best_perm = perm;
            }
        }
    }

    /// Maps a schedule found on canonical representatives (each choice made
    /// in the representative of the state reached so far) to the schedule of
    /// the real program that visits the same orbits.
    pub fn lift<const W: usize>(
        &self,
        program: &Program,
        packer: &Packer,
        choices: &[Choice],
    ) -> Vec<Choice> {
        let mut state = program.initial;
        let mut out = Vec::with_capacity(choices.len());
        for choice in choices {
            let (_, perm) = self.canonical::<W>(packer, &state);
            let thread = (0..THREADS_MAX)
                .find(|&t| perm[t] == choice.thread)
                .expect("a permutation is a bijection");
            exec::step(program, &mut state, thread, choice.fire);
            out.push(Choice {
                thread: thread as u8,
                fire: choice.fire,
            });
        }
        out
    }
}

/// Rearranges `s` into its next permutation in lexicographic order; at the
/// last one, back to the first (sorted) and false.
fn next_permutation(s: &mut [u8]) -> bool {
    if s.len() < 2 {
        return false;
    }
    let mut i = s.len() - 1;
    while i > 0 && s[i - 1] >= s[i] {
        i -= 1;
    }
    if i == 0 {
        s.reverse();
        return false;
    }
    let mut j = s.len() - 1;
    while s[j] <= s[i - 1] {
        j -= 1;
    }
    s.swap(i - 1, j);
    s[i..].reverse();
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_permutation_visits_every_order_once() {
        let mut s = [1u8, 2, 3];
        let mut seen = vec![s];
        while next_permutation(&mut s) {
            seen.push(s);
        }
        assert_eq!(seen.len(), 6);
        assert_eq!(s, [1, 2, 3], "back to the first");
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 6);
    }
}
