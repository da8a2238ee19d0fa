//! Partial-order reduction for the exhaustive search: persistent sets of one
//! thread's next step, computed from a static footprint of every operation.
//!
//! In a state `s`, thread `t`'s next step `o` alone is a persistent set when
//! no other thread can, from where it stands and whatever it does while `t`
//! waits, run a step that conflicts with `o` (writes what `o` reads or
//! writes, or reads what `o` writes). Then every step other threads take
//! before `o` commutes with it and neither enables nor disables the other,
//! so exploring only `o` from `s` loses no terminal state and no infinite
//! run. Two more conditions keep every verdict:
//! - visibility: `o` sets no oracle record (frozen window, frozen write,
//!   user error, dirty-at-freeze, refusals), and it is not a fault point;
//! - the cycle proviso: the search takes `o` alone only when it leads to a
//!   state not seen before, so no step is postponed forever around a cycle.
//!
//! The reduction keeps the *set* of reachable outcomes; shortest schedules may
//! get longer (the reduced graph is a subgraph) and state counts smaller.
//! Programs with environment faults are never reduced (a gate's guard reads
//! other threads' positions).

use crate::engine::exec;
use crate::engine::program::{Instr, Op, Program};
use crate::ir::Cond;
use crate::model::State;

const LEVEL: u32 = 1 << 0;
const UMOUNT: u32 = 1 << 1;
const WRITERS0: u32 = 1 << 2;
const RECORDS: u32 = 1 << 5;
const FAULTS: u32 = 1 << 6;
const PAGE0: u32 = 1 << 8;
const ALL_PAGES: u32 = 0xff << 8;
const ALL: u32 = u32::MAX;

/// What an operation reads and writes, as bit sets of shared variables.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Footprint {
    read: u32,
    write: u32,
}

impl Footprint {
    fn union(self, other: Footprint) -> Footprint {
        Footprint {
            read: self.read | other.read,
            write: self.write | other.write,
        }
    }

    fn conflicts(self, other: Footprint) -> bool {
        self.write & (other.read | other.write) != 0 || self.read & other.write != 0
    }
}

fn cond_reads(cond: &Cond) -> (bool, bool) {
    match cond {
        Cond::Level(..) => (true, false),
        Cond::Not(inner) => cond_reads(inner),
        Cond::And(a, b) | Cond::Or(a, b) => {
            let (la, pa) = cond_reads(a);
            let (lb, pb) = cond_reads(b);
            (la || lb, pa || pb)
        }
        _ => (false, true),
    }
}

fn footprint(program: &Program, op: Op) -> Footprint {
    let page = |p: u8| PAGE0 << p;
    let rw = |bits: u32| Footprint {
        read: bits,
        write: bits,
    };
    let r = |bits: u32| Footprint { read: bits, write: 0 };
    match op {
        Op::LockUmount(_) | Op::UnlockUmount => rw(UMOUNT),
        Op::LockUmountChecked { .. } => Footprint {
            read: UMOUNT | LEVEL,
            write: UMOUNT | RECORDS,
        },
        Op::LevelCheck(_) => Footprint {
            read: LEVEL,
            write: RECORDS,
        },
        Op::Gate(_) => rw(ALL),
        Op::TryLockUmount(_) => rw(UMOUNT | FAULTS),
        Op::WaitUnfrozen(_) => r(LEVEL),
        Op::SbStart(level) => Footprint {
            read: LEVEL | (WRITERS0 << level as u32),
            write: WRITERS0 << level as u32,
        },
        Op::SbEnd(level) => rw(WRITERS0 << level as u32),
        Op::SetLevel(_) => Footprint {
            read: LEVEL | ALL_PAGES | RECORDS,
            write: LEVEL | RECORDS,
        },
        Op::WaitWriters(level) => r(WRITERS0 << level as u32),
        Op::LockPage(p)
        | Op::UnlockPage(p)
        | Op::MarkDirty(p)
        | Op::Allocate(p)
        | Op::Reserve(p)
        | Op::Clean { page: p, .. }
        | Op::Munmap(p)
        | Op::StoreEntry { page: p, .. }
        | Op::FaultComplete { page: p, .. } => rw(page(p)),
        Op::Submit { page: p, .. } => rw(page(p) | RECORDS | FAULTS),
        Op::TestDirty(p) => r(page(p)),
        // Reads nothing: whether a submit of the sync failed is in the pc.
        Op::SyncFailed { freeze } => Footprint {
            read: 0,
            write: if freeze { RECORDS } else { 0 },
        },
        Op::Branch { cond, page: p } => {
            let (level, reads_page) = cond_reads(&program.conds[cond as usize]);
            r(if level { LEVEL } else { 0 } | if reads_page { page(p) } else { 0 })
        }
        Op::FailSigbus(p) => Footprint {
            read: page(p),
            write: page(p) | RECORDS,
        },
        Op::AwaitFrozen => r(RECORDS),
        Op::FlusherSleep => r(ALL_PAGES | UMOUNT),
        Op::Done | Op::Jump => Footprint::default(),
    }
}

/// An instruction's footprint: its operation's, plus the pages whose
/// `writeback` body it can leave — leaving ends the write-out
/// (PG_writeback), which `sync`'s and `msync`'s wait and reclaim read.
fn instr_footprint(program: &Program, instr: &Instr) -> Footprint {
    let leaves = u32::from(instr.leaves.next | instr.leaves.alt) * PAGE0;
    footprint(program, instr.op).union(Footprint {
        read: leaves,
        write: leaves,
    })
}

/// Per program: each instruction's footprint, and the union of the
/// footprints of everything a thread may still run from each position.
pub struct Reduction {
    /// `None` when the program cannot be reduced (environment faults).
    own: Option<Vec<Vec<Footprint>>>,
    future: Vec<Vec<Footprint>>,
}

impl Reduction {
    pub fn new(program: &Program) -> Reduction {
        if program.env_mask != 0 {
            return Reduction {
                own: None,
                future: Vec::new(),
            };
        }
        let own: Vec<Vec<Footprint>> = program
            .threads
            .iter()
            .map(|t| t.code.iter().map(|i| instr_footprint(program, i)).collect())
            .collect();
        let mut future = own.clone();
        for (thread, code) in program.threads.iter().map(|t| &t.code).enumerate() {
            // Backward fixpoint over the control-flow graph (loops: the flusher).
            let fut = &mut future[thread];
            let mut changed = true;
            while changed {
                changed = false;
                for i in (0..code.len()).rev() {
                    let instr = &code[i];
                    if instr.op == Op::Done {
                        continue;
                    }
                    let mut f = fut[i];
                    for succ in [instr.next, instr.alt] {
                        if let Some(next) = fut.get(succ as usize) {
                            f = f.union(*next);
                        }
                    }
                    if f != fut[i] {
                        fut[i] = f;
                        changed = true;
                    }
                }
            }
        }
        Reduction {
            own: Some(own),
            future,
        }
    }

    /// Threads whose next step alone is a persistent, invisible set in
    /// `state`, in thread order (the caller applies the cycle proviso).
    pub fn candidates(&self, program: &Program, state: &State, enabled: u32) -> impl Iterator<Item = usize> {
        let threads = program.threads.len();
        let own = self.own.as_ref();
        (0..threads).filter(move |&t| {
            let Some(own) = own else { return false };
            if enabled & (1 << t) == 0 || exec::fault_point(program, state, t).is_some() {
                return false;
            }
            let o = own[t][state.pc[t] as usize];
            if o.write & RECORDS != 0 {
                return false;
            }
            (0..threads).all(|u| u == t || !o.conflicts(self.future[u][state.pc[u] as usize]))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conflicts_are_read_write_or_write_write() {
        let a = Footprint {
            read: LEVEL,
            write: 0,
        };
        let b = Footprint {
            read: 0,
            write: LEVEL,
        };
        let c = Footprint {
            read: LEVEL,
            write: 0,
        };
        assert!(a.conflicts(b) && b.conflicts(a));
        assert!(!a.conflicts(c));
        assert!(
            Footprint {
                read: 0,
                write: PAGE0
            }
            .conflicts(Footprint {
                read: 0,
                write: PAGE0
            })
        );
        assert!(
            !Footprint {
                read: 0,
                write: PAGE0
            }
            .conflicts(Footprint {
                read: PAGE0 << 1,
                write: 0
            })
        );
        assert!(Footprint { read: 0, write: ALL }.conflicts(Footprint {
            read: FAULTS,
            write: 0
        }));
    }
}
