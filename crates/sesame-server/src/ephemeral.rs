//! Short-lived shared state: login states, second-factor steps, throttle counters.
//!
//! Every value carries its expiry as data: a write takes the server's time `now_ms` (from
//! the service [`Clock`](crate::clock::Clock)) and a time to live, a read takes `now_ms` and
//! sees nothing once the expiry has passed. The backend's own time to live (Redis `PX`, the
//! memory store's sweep) is set [`GC_GRACE`] past the logical expiry and only collects
//! garbage, so a manual clock drives every expiry in tests. Limits are one atomic
//! [`Ephemeral::hit`] of the [rate limiter](crate::limiter).
//!
//! The contract is small and atomic on each key, so a cluster implementation (Redis) slots
//! in without touching callers. The in-memory implementation is the single-node default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;

use crate::limiter::{self, Mode, Rule, State, Verdict};

pub mod redis;
mod sealed;

pub use self::redis::{RedisEphemeral, DEFAULT_KEY_PREFIX, REDIS_TIMEOUT};
pub use self::sealed::SealedEphemeral;

/// How long past its logical expiry a value stays in the backend before it is collected.
pub const GC_GRACE: Duration = Duration::from_secs(60);

/// Why the short-lived store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EphemeralError {
    /// The backing store is unreachable or failed.
    #[error("short-lived state store unavailable: {0}")]
    Unavailable(String),
}

/// The short-lived state contract. Every method is atomic on its key; `now_ms` is the
/// server clock's time (milliseconds since the Unix epoch).
#[async_trait]
pub trait Ephemeral: Send + Sync + 'static {
    /// Stores `value` under `key` until `now_ms + ttl`, replacing any previous value.
    async fn put(
        &self,
        key: &str,
        value: &[u8],
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(), EphemeralError>;
    /// Removes the value under `key` and returns it if it is live: two callers never both
    /// get it.
    async fn take(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Returns the live value under `key` without removing it.
    async fn get(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Stores `value` until `now_ms + ttl` only if `key` holds no live value; `true` if it
    /// was stored.
    async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        now_ms: u64,
        ttl: Duration,
    ) -> Result<bool, EphemeralError>;
    /// One hit of the rate limiter `rule` on `key` at `now_ms` ([`limiter::apply`]).
    async fn hit(
        &self,
        key: &str,
        rule: &Rule,
        now_ms: u64,
        mode: Mode,
    ) -> Result<Verdict, EphemeralError>;
    /// Removes `key` (a value or a limiter's state).
    async fn delete(&self, key: &str) -> Result<(), EphemeralError>;
    /// Checks the store answers (readiness).
    async fn ping(&self) -> Result<(), EphemeralError>;
}

enum Data {
    Bytes(Vec<u8>),
    Limit(State),
}

struct Entry {
    data: Data,
    /// Logical expiry (server clock, milliseconds): dead from then on.
    expires: u64,
}

/// In-process implementation: a mutex-guarded map, swept lazily.
///
/// Good for one node. Several nodes behind a load balancer need a shared implementation, or
/// a login started on one node cannot finish on another.
#[derive(Default)]
pub struct MemoryEphemeral {
    map: Mutex<HashMap<String, Entry>>,
    ops: std::sync::atomic::AtomicU64,
}

impl MemoryEphemeral {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, now: u64, f: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Sweep now and then so abandoned keys do not accumulate.
        let n = self.ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(1024) {
            let grace = limiter::millis(GC_GRACE);
            map.retain(|_, e| e.expires.saturating_add(grace) > now);
        }
        f(&mut map)
    }

    fn live<'a>(map: &'a mut HashMap<String, Entry>, key: &str, now: u64) -> Option<&'a [u8]> {
        match map.get(key) {
            Some(Entry {
                data: Data::Bytes(v),
                expires,
            }) if *expires > now => Some(v),
            _ => None,
        }
    }
}

fn expiry(now: u64, ttl: Duration) -> u64 {
    now.saturating_add(limiter::millis(ttl))
}

#[async_trait]
impl Ephemeral for MemoryEphemeral {
    async fn put(
        &self,
        key: &str,
        value: &[u8],
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(), EphemeralError> {
        let entry = Entry {
            data: Data::Bytes(value.to_vec()),
            expires: expiry(now_ms, ttl),
        };
        self.with(now_ms, |map| map.insert(key.to_owned(), entry));
        Ok(())
    }

    async fn take(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, EphemeralError> {
        // Removed even if dead, as Redis `GETDEL` does.
        Ok(self.with(now_ms, |map| match map.remove(key)? {
            Entry {
                data: Data::Bytes(v),
                expires,
            } if expires > now_ms => Some(v),
            _ => None,
        }))
    }

    async fn get(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, EphemeralError> {
        Ok(self.with(now_ms, |map| {
            Self::live(map, key, now_ms).map(<[u8]>::to_vec)
        }))
    }

    async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        now_ms: u64,
        ttl: Duration,
    ) -> Result<bool, EphemeralError> {
        Ok(self.with(now_ms, |map| {
            if Self::live(map, key, now_ms).is_some() {
                return false;
            }
            let entry = Entry {
                data: Data::Bytes(value.to_vec()),
                expires: expiry(now_ms, ttl),
            };
            map.insert(key.to_owned(), entry);
            true
        }))
    }

    async fn hit(
        &self,
        key: &str,
        rule: &Rule,
        now_ms: u64,
        mode: Mode,
    ) -> Result<Verdict, EphemeralError> {
        Ok(self.with(now_ms, |map| {
            let old = match map.get(key) {
                Some(Entry {
                    data: Data::Limit(s),
                    ..
                }) => Some(*s),
                _ => None,
            };
            let (state, verdict) = limiter::apply(old, rule, now_ms, mode);
            let entry = Entry {
                data: Data::Limit(state),
                expires: state.ends(rule),
            };
            map.insert(key.to_owned(), entry);
            verdict
        }))
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
        Ok(())
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
