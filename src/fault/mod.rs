//! Fault plug-ins: where a run can be disturbed besides the interleaving.
//!
//! A fault is named in a `faults` block of a policy or scenario with a
//! probability (for random and PCT campaigns) and a per-run bound. The engine
//! asks the scheduler at each point where an enabled fault can fire; the
//! exhaustive search treats every possible firing as a branch.

/// The names a `faults` block may use, in registry order.
pub const NAMES: &[&str] = &["io-error", "trylock-fail", "evict", "emergency-thaw"];

/// The registered faults. The discriminant is the index into [`NAMES`] and
/// into the per-run firing counters of the model state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum FaultKind {
    /// An I/O error on `submit`: the disk is unchanged; `submit else` decides.
    IoError = 0,
    /// `trylock` fails although the lock is free.
    TrylockFail = 1,
    /// Memory reclaim drops a clean, unlocked, unmapped page.
    Evict = 2,
    /// An emergency thaw (SysRq-j) at an arbitrary moment.
    EmergencyThaw = 3,
}

impl FaultKind {
    pub const ALL: [FaultKind; 4] = [
        FaultKind::IoError,
        FaultKind::TrylockFail,
        FaultKind::Evict,
        FaultKind::EmergencyThaw,
    ];

    pub fn name(self) -> &'static str {
        NAMES[self as usize]
    }

    pub fn from_name(name: &str) -> Option<FaultKind> {
        FaultKind::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// A probability as a threshold on a uniform `u64`: fires when `x < threshold`.
pub fn probability_threshold(probability: f64) -> u64 {
    if probability.is_nan() || probability <= 0.0 {
        0
    } else if probability >= 1.0 {
        u64::MAX
    } else {
        (probability * 18_446_744_073_709_551_616.0) as u64
    }
}
