//! `second-freezer`: another administrator runs `fsfreeze -f` then
//! `fsfreeze -u` on the same filesystem, concurrently with the scenario's
//! freezer: pseudo-thread `second-freezer` running the policy's `freeze`
//! then `thaw` hooks.
//!
//! The nesting rule is the kernel's, and it holds for every `freeze` and
//! `thaw` (the scenario's too), not only here: `freeze_super` takes
//! `s_umount` for writing and returns `-EBUSY` if `sb->s_writers.frozen !=
//! SB_UNFROZEN`; `thaw_super` returns `-EINVAL` unless it is
//! `SB_FREEZE_COMPLETE`. The model folds each check into the hook's first
//! `lock umount` step (or a check step of its own when the hook takes no
//! lock); a refused freeze or thaw ends its hook at once. A refused freezer
//! still runs its `thaw` — and so may thaw the other freezer's freeze, as
//! `fsfreeze -u` by anyone does.

use super::{EnvBody, Fault, FaultContext, Placement};

pub struct SecondFreezer;

impl Fault for SecondFreezer {
    fn name(&self) -> &'static str {
        "second-freezer"
    }

    fn kernel(&self) -> &'static str {
        "a second ioctl(FIFREEZE) → freeze_super (-EBUSY), then ioctl(FITHAW) → thaw_super (-EINVAL)"
    }

    fn placement(&self) -> Placement {
        Placement::Environment {
            thread: "second-freezer",
            body: EnvBody::FreezeThaw,
        }
    }

    fn can_fire(&self, _context: &FaultContext<'_>) -> bool {
        true
    }
}
