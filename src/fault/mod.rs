//! Fault plug-ins: where a run can be disturbed besides the interleaving.

/// The names a `faults` block may use, in registry order.
pub const NAMES: &[&str] = &["io-error", "trylock-fail", "evict", "emergency-thaw"];
