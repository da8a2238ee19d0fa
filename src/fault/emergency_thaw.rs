//! `emergency-thaw`: SysRq-j (`emergency_thaw_all`) at an arbitrary moment,
//! in a pseudo-thread of its own, `emergency-thaw`, that runs the policy's
//! `thaw` hook.
//!
//! The kernel's `do_thaw_all_callback` takes `s_umount` for writing and
//! calls `thaw_super_locked`, which returns `-EINVAL` unless the filesystem
//! is fully frozen (`SB_FREEZE_COMPLETE`). The model does the same through
//! the thaw hook: the hook's first `lock umount` also checks, in the same
//! step, that the level is `complete`; otherwise it releases the lock and
//! the thaw ends (EINVAL, recorded as `THAW_REFUSED`). So an emergency thaw
//! in the middle of a freeze that holds `s_umount` waits for it; one that
//! finds the freeze between levels (mainline drops `s_umount` while it
//! waits for writers) does nothing. The gate is always open while the budget
//! lasts: SysRq-j can be pressed at any moment, frozen or not.

use super::{EnvBody, Fault, FaultContext, Placement};

pub struct EmergencyThaw;

impl Fault for EmergencyThaw {
    fn name(&self) -> &'static str {
        "emergency-thaw"
    }

    fn kernel(&self) -> &'static str {
        "emergency_thaw_all → do_thaw_all_callback → thaw_super_locked"
    }

    fn placement(&self) -> Placement {
        Placement::Environment {
            thread: "emergency-thaw",
            body: EnvBody::Thaw,
        }
    }

    fn can_fire(&self, _context: &FaultContext<'_>) -> bool {
        true
    }
}
