//! lost-write: only for runs that finish. After a plain final sync (no
//! freeze checks: fold `pte_dirty`, write every dirty page), some block on
//! disk differs from the last value a user stored in it. A store that failed
//! with SIGBUS stored nothing.

use super::{Oracle, Outcome, RunEnd};

pub struct LostWrite;

impl Oracle for LostWrite {
    fn outcome(&self) -> Outcome {
        Outcome::LostWrite
    }

    /// Reads only thread-independent records, or every thread alike.
    fn symmetric(&self) -> bool {
        true
    }

    fn judge(&self, end: &RunEnd<'_>) -> bool {
        end.finished()
            && (0..end.program.page_count()).any(|page| match end.state.stored(page) {
                Some(value) => end.state.disk_after_final_sync(page) != value,
                None => false,
            })
    }
}
