//! `evict`: memory reclaim drops a clean, unlocked page that no pte maps
//! and that is not under writeback from the page cache (`shrink_page_list`
//! → `__remove_mapping`; reclaim skips a page under writeback, and
//! `filemap_release_folio` refuses one: [`State::can_evict`]), so a later
//! store takes a major fault and reads the page back in: it turns case 2 or
//! 3 into case 1 in the middle of a run.
//!
//! A page that a thread is faulting on is not evictable either: the fault
//! holds a reference on it (`__remove_mapping` fails when the reference
//! count cannot be frozen).
//!
//! An environment fault: pseudo-thread `reclaim`, whose every step evicts
//! one page — the lowest-numbered page that can be evicted (a fixed order,
//! as an LRU list is; with several pages and `max` ≥ 2 later firings take
//! the next ones). Buffers stay as they are: the blocks stay allocated
//! (mapped or delayed) after the page is dropped.

use super::{EnvBody, Fault, FaultContext, Placement, ProgramView};
use crate::model::State;

pub struct Evict;

impl Evict {
    fn victim(program: &dyn ProgramView, state: &State) -> Option<usize> {
        (0..program.page_count()).find(|&page| state.can_evict(page) && !program.in_fault(state, page))
    }
}

impl Fault for Evict {
    fn name(&self) -> &'static str {
        "evict"
    }

    fn kernel(&self) -> &'static str {
        "shrink_page_list → __remove_mapping (page reclaim)"
    }

    fn placement(&self) -> Placement {
        Placement::Environment {
            thread: "reclaim",
            body: EnvBody::Step,
        }
    }

    fn can_fire(&self, context: &FaultContext<'_>) -> bool {
        Evict::victim(context.program, context.state).is_some()
    }

    fn fire(&self, program: &dyn ProgramView, state: &mut State) {
        if let Some(page) = Evict::victim(program, state) {
            state.evict(page);
        }
    }
}
