//! Short-lived shared state: login states, second-factor steps, throttle counters.
//!
//! Everything here expires by itself. The contract is small and built from operations a
//! shared store provides atomically (Redis: `SET PX`, `GETDEL`, `INCR`+`PEXPIRE`, `SET NX PX`,
//! `PTTL`, `DEL`), so a cluster implementation slots in without touching callers. The
//! in-memory implementation is the single-node default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

pub mod redis;

pub use self::redis::{RedisEphemeral, DEFAULT_KEY_PREFIX, REDIS_TIMEOUT};

/// Why the short-lived store could not answer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EphemeralError {
    /// The backing store is unreachable or failed.
    #[error("short-lived state store unavailable: {0}")]
    Unavailable(String),
}

/// The short-lived state contract. Every method is atomic on its key.
#[async_trait]
pub trait Ephemeral: Send + Sync + 'static {
    /// Stores `value` under `key` for `ttl`, replacing any previous value.
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError>;
    /// Removes and returns the value under `key`: two callers never both get it.
    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Returns the value under `key` without removing it.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError>;
    /// Increments the counter under `key` (created at 0) and returns the new value; the key's
    /// time to live is (re)set to `ttl`.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, EphemeralError>;
    /// Stores `value` only if `key` is absent; `true` if it was stored.
    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError>;
    /// Time left before `key` expires; `None` if absent.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, EphemeralError>;
    /// Removes `key`.
    async fn delete(&self, key: &str) -> Result<(), EphemeralError>;
    /// Checks the store answers (readiness).
    async fn ping(&self) -> Result<(), EphemeralError>;
}

struct Entry {
    value: Vec<u8>,
    expires: Instant,
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

    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> T) -> T {
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Sweep expired entries now and then so abandoned keys do not accumulate.
        let n = self.ops.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if n.is_multiple_of(1024) {
            map.retain(|_, e| e.expires > now);
        }
        f(&mut map, now)
    }

    fn live<'a>(
        map: &'a mut HashMap<String, Entry>,
        key: &str,
        now: Instant,
    ) -> Option<&'a mut Entry> {
        if map.get(key).is_some_and(|e| e.expires <= now) {
            map.remove(key);
        }
        map.get_mut(key)
    }
}

#[async_trait]
impl Ephemeral for MemoryEphemeral {
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        self.with(|map, now| {
            map.insert(
                key.to_owned(),
                Entry {
                    value: value.to_vec(),
                    expires: now + ttl,
                },
            );
        });
        Ok(())
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        Ok(self.with(|map, now| {
            Self::live(map, key, now)?;
            map.remove(key).map(|e| e.value)
        }))
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        Ok(self.with(|map, now| Self::live(map, key, now).map(|e| e.value.clone())))
    }

    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, EphemeralError> {
        Ok(self.with(|map, now| {
            let current = Self::live(map, key, now)
                .and_then(|e| std::str::from_utf8(&e.value).ok()?.parse::<u64>().ok())
                .unwrap_or(0);
            let next = current.saturating_add(1);
            map.insert(
                key.to_owned(),
                Entry {
                    value: next.to_string().into_bytes(),
                    expires: now + ttl,
                },
            );
            next
        }))
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        Ok(self.with(|map, now| {
            if Self::live(map, key, now).is_some() {
                return false;
            }
            map.insert(
                key.to_owned(),
                Entry {
                    value: value.to_vec(),
                    expires: now + ttl,
                },
            );
            true
        }))
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, EphemeralError> {
        Ok(self.with(|map, now| Self::live(map, key, now).map(|e| e.expires - now)))
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        self.with(|map, _| map.remove(key));
        Ok(())
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
