//! user-error: a fault ended with an error (`fail sigbus`), in any run.

use super::{Oracle, Outcome, RunEnd};
use crate::model::record;

pub struct UserError;

impl Oracle for UserError {
    fn outcome(&self) -> Outcome {
        Outcome::UserError
    }

    /// Reads only thread-independent records, or every thread alike.
    fn symmetric(&self) -> bool {
        true
    }

    fn judge(&self, end: &RunEnd<'_>) -> bool {
        end.state.has_record(record::USER_ERROR)
    }
}
