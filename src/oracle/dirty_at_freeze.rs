//! dirty-at-freeze (optional, informational): when `complete` was set, some
//! page was dirty or had a writable pte — the kernel's own invariant for a
//! frozen filesystem. It does not make a run unsafe.

use super::{Oracle, Outcome, RunEnd};
use crate::model::record;

pub struct DirtyAtFreeze;

impl Oracle for DirtyAtFreeze {
    fn outcome(&self) -> Outcome {
        Outcome::DirtyAtFreeze
    }

    fn informational(&self) -> bool {
        true
    }

    /// Reads only thread-independent records, or every thread alike.
    fn symmetric(&self) -> bool {
        true
    }

    fn judge(&self, end: &RunEnd<'_>) -> bool {
        end.state.has_record(record::DIRTY_AT_FREEZE)
    }
}
