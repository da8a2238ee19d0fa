//! frozen-write: a submit happened while the frozen window was open (from
//! `set_level complete` to `set_level unfrozen`), in any run, finished or not.

use super::{Oracle, Outcome, RunEnd};
use crate::model::record;

pub struct FrozenWrite;

impl Oracle for FrozenWrite {
    fn outcome(&self) -> Outcome {
        Outcome::FrozenWrite
    }

    /// Reads only thread-independent records, or every thread alike.
    fn symmetric(&self) -> bool {
        true
    }

    fn judge(&self, end: &RunEnd<'_>) -> bool {
        end.state.has_record(record::FROZEN_WRITE)
    }
}
