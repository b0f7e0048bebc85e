//! The one clock every expiry is measured by.
//!
//! Login states, second-factor tickets, throttle windows, re-authentication freshness and
//! emailed codes all store their expiry as data and compare it with [`Clock::now_ms`]; the
//! short-lived store's own time to live only collects garbage. Tests hand the server a
//! [`ManualClock`] and move it instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};

/// The current time. A trait so tests can move time.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Seconds since the Unix epoch.
    fn now(&self) -> u64 {
        self.now_ms() / 1000
    }
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the server reads the wall clock.
    #[allow(clippy::disallowed_methods)]
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (tests, simulations).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock standing at `now` (unix seconds).
    pub fn new(now: u64) -> Self {
        ManualClock(AtomicU64::new(now.saturating_mul(1000)))
    }

    /// Moves the clock forward by `secs`.
    pub fn advance(&self, secs: u64) {
        self.advance_ms(secs.saturating_mul(1000));
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// The environment variable a debug build of `sesame serve` reads a clock offset from.
pub const DEBUG_CLOCK_FILE_ENV: &str = "SESAME_DEBUG_CLOCK_FILE";

/// The clock `sesame serve` runs on: the system clock. In debug builds only, when
/// [`DEBUG_CLOCK_FILE_ENV`] names a file, the system clock plus the whole seconds that file
/// holds (re-read at every reading), so end-to-end tests of the binary move time forward by
/// writing a number instead of sleeping. Release builds ignore the variable.
pub fn serve_clock() -> std::sync::Arc<dyn Clock> {
    let offset_file = if cfg!(debug_assertions) {
        std::env::var_os(DEBUG_CLOCK_FILE_ENV)
    } else {
        None
    };
    match offset_file {
        Some(path) => std::sync::Arc::new(OffsetFileClock { path: path.into() }),
        None => std::sync::Arc::new(SystemClock),
    }
}

/// The system clock moved by the seconds a file holds (see [`serve_clock`]).
#[derive(Debug)]
struct OffsetFileClock {
    path: std::path::PathBuf,
}

impl Clock for OffsetFileClock {
    fn now_ms(&self) -> u64 {
        let offset_secs = std::fs::read_to_string(&self.path)
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(0);
        SystemClock
            .now_ms()
            .saturating_add(offset_secs.saturating_mul(1000))
    }
}
