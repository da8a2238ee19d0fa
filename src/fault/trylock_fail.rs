//! `trylock-fail`: a `trylock umount MODE` fails although the lock is free
//! (`down_read_trylock` losing a race the model does not otherwise show:
//! another superblock operation holding `s_umount` for an instant). The
//! statement's `else` runs — for the flusher, it skips its pass.

use super::{Fault, FaultContext, Placement, Site};

pub struct TrylockFail;

impl Fault for TrylockFail {
    fn name(&self) -> &'static str {
        "trylock-fail"
    }

    fn kernel(&self) -> &'static str {
        "down_read_trylock(&sb->s_umount) returning 0"
    }

    fn placement(&self) -> Placement {
        Placement::Statement(Site::Trylock)
    }

    /// Only a free lock can be made to fail: a trylock on a busy lock fails
    /// anyway, and counting that as a firing would waste the budget.
    fn can_fire(&self, context: &FaultContext<'_>) -> bool {
        match context.at.and_then(|at| at.umount_mode) {
            Some(mode) => context.state.can_lock_umount(mode),
            None => false,
        }
    }
}
