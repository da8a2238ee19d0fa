//! deadlock: the run ended (no thread can move) with some thread other than
//! a sleeping flusher unfinished.

use super::{Oracle, Outcome, RunEnd};

pub struct Deadlock;

impl Oracle for Deadlock {
    fn outcome(&self) -> Outcome {
        Outcome::Deadlock
    }

    /// Reads only thread-independent records, or every thread alike.
    fn symmetric(&self) -> bool {
        true
    }

    fn judge(&self, end: &RunEnd<'_>) -> bool {
        end.terminated() && end.any_stuck()
    }
}
