//! Time as a value: the core never reads a clock, callers pass the current time in.

use serde::{Deserialize, Serialize};

/// Seconds since the Unix epoch, as passed in by the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// This instant plus `secs` seconds (saturating).
    pub fn plus(self, secs: u64) -> Timestamp {
        Timestamp(self.0.saturating_add(secs))
    }
}
