//! user-error: a fault ended with an error (`fail sigbus`), in any run.

use super::{Oracle, Outcome, RunEnd};
use crate::model::record;

pub struct UserError;

impl Oracle for UserError {
    fn outcome(&self) -> Outcome {
        Outcome::UserError
    }

    fn judge(&self, end: &RunEnd<'_>) -> bool {
        end.state.has_record(record::USER_ERROR)
    }
}
