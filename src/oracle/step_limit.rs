//! step-limit: the run passed its step budget. Never silent: such a run is
//! not safe, and the budget is part of every report.

use super::{Oracle, Outcome, RunEnd};

pub struct StepLimit;

impl Oracle for StepLimit {
    fn outcome(&self) -> Outcome {
        Outcome::StepLimit
    }

    /// Reads only thread-independent records, or every thread alike.
    fn symmetric(&self) -> bool {
        true
    }

    fn judge(&self, end: &RunEnd<'_>) -> bool {
        end.step_limit
    }
}
