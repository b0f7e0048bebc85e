//! Redis implementation of [`Ephemeral`]: short-lived state shared by every node.
//!
//! Each operation of the contract is one Redis command or one Lua script, so it is atomic
//! across all nodes talking to the same Redis:
//!
//! | contract  | Redis                                            |
//! |-----------|--------------------------------------------------|
//! | `put`     | `SET key stamped-value PX ms`                    |
//! | `take`    | `GETDEL key` (Redis 6.2 or later)                |
//! | `get`     | `GET key`                                        |
//! | `set_nx`  | `EVALSHA` of `set_nx.lua` (absent or expired: `SET`) |
//! | `hit`     | `EVALSHA` of `hit.lua` (the [limiter](crate::limiter) step on a hash) |
//! | `delete`  | `DEL key`                                        |
//! | `ping`    | `PING`                                           |
//!
//! A value is stored behind its logical expiry (20 ASCII digits, milliseconds of the server
//! clock); reads compare it with the caller's `now_ms`. The `PX` time to live is the logical
//! one plus [`GC_GRACE`]: Redis only collects garbage. A limiter key is a hash `s` (window
//! start), `c` (count), `g` (gate opens at), kept until its window ends and its gate opens,
//! plus the grace.
//!
//! Every key is prefixed (default [`DEFAULT_KEY_PREFIX`]) so several deployments, or test
//! runs, can share one Redis. The connection is a [`ConnectionManager`], which reconnects by
//! itself after Redis restarts; every call is bounded by [`REDIS_TIMEOUT`], so a dead Redis
//! answers [`EphemeralError::Unavailable`] quickly (the service turns that into 503
//! `unavailable`) instead of hanging requests.

use std::future::Future;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};
use async_trait::async_trait;

use super::{Ephemeral, EphemeralError, GC_GRACE};
use crate::limiter::{self, Mode, Rule, Verdict, Window};

/// The key prefix used when the configuration names none.
pub const DEFAULT_KEY_PREFIX: &str = "sesame:";

/// The longest any one Redis call (connecting included) may take before it fails with
/// [`EphemeralError::Unavailable`].
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Redis refuses expiry times that overflow its clock; no caller needs more than this
/// (about 35 years) anyway.
const MAX_TTL_MS: u64 = 1 << 40;

/// Lua numbers are doubles: larger limits are sent as this (2^53, "no limit" in practice).
const MAX_EXACT: u64 = 1 << 53;

/// Digits of the expiry stamped before every value.
const STAMP_DIGITS: usize = 20;

/// Reconnection attempts the connection manager makes before giving up until the next call.
const RECONNECT_RETRIES: usize = 3;

/// Short-lived state in Redis, shared by every node pointed at the same server and prefix.
///
/// Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct RedisEphemeral {
    conn: ConnectionManager,
    prefix: String,
    set_nx_script: Script,
    hit_script: Script,
}

impl std::fmt::Debug for RedisEphemeral {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisEphemeral")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisEphemeral {
    /// Connects to the Redis at `url` (`redis://[user:password@]host[:port][/db]`) and
    /// prefixes every key with `key_prefix` (usually [`DEFAULT_KEY_PREFIX`]).
    ///
    /// Fails with [`EphemeralError::Unavailable`] if the URL is malformed, Redis does not
    /// answer within [`REDIS_TIMEOUT`], or it is older than 6.2 (no `GETDEL`, which
    /// single-use login states rely on).
    pub async fn connect(url: &str, key_prefix: &str) -> Result<Self, EphemeralError> {
        let shown = redact(url);
        let client = Client::open(url)
            .map_err(|e| EphemeralError::Unavailable(format!("redis URL {shown}: {e}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(REDIS_TIMEOUT))
            .set_response_timeout(Some(REDIS_TIMEOUT))
            .set_number_of_retries(RECONNECT_RETRIES)
            .set_max_delay(Duration::from_millis(500));
        let conn = bounded(ConnectionManager::new_with_config(client, config))
            .await
            .map_err(|e| with_detail(e, &format!("at {shown}")))?;
        let store = RedisEphemeral {
            conn,
            prefix: key_prefix.to_owned(),
            set_nx_script: Script::new(include_str!("set_nx.lua")),
            hit_script: Script::new(include_str!("hit.lua")),
        };
        // GETDEL on a key no caller uses: proves Redis answers and is recent enough.
        let mut probe = ::redis::cmd("GETDEL");
        probe.arg(store.key("\u{0}getdel-probe"));
        store.query::<Option<Vec<u8>>>(&probe).await.map_err(|e| {
            with_detail(
                e,
                &format!("at {shown}; Redis 6.2 or later is required for GETDEL"),
            )
        })?;
        Ok(store)
    }

    /// The prefix every key gets.
    pub fn key_prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn query<T: ::redis::FromRedisValue>(
        &self,
        cmd: &::redis::Cmd,
    ) -> Result<T, EphemeralError> {
        let mut conn = self.conn.clone();
        bounded(cmd.query_async(&mut conn)).await
    }
}

/// Runs one Redis call, failing with `Unavailable` after [`REDIS_TIMEOUT`].
async fn bounded<T>(
    call: impl Future<Output = Result<T, RedisError>>,
) -> Result<T, EphemeralError> {
    match tokio::time::timeout(REDIS_TIMEOUT, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(EphemeralError::Unavailable(format!("redis: {e}"))),
        Err(_) => Err(EphemeralError::Unavailable(format!(
            "redis: no answer within {REDIS_TIMEOUT:?}"
        ))),
    }
}

/// `e` with `(detail)` appended to its message.
fn with_detail(e: EphemeralError, detail: &str) -> EphemeralError {
    match e {
        EphemeralError::Unavailable(msg) => {
            EphemeralError::Unavailable(format!("{msg} ({detail})"))
        }
    }
}

/// A time to live as Redis milliseconds: at least 1 (Redis refuses `PX 0`; a zero TTL thus
/// lives one millisecond) and at most [`MAX_TTL_MS`].
fn millis(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(MAX_TTL_MS)
        .clamp(1, MAX_TTL_MS)
}

/// The backend time to live of a value that expires after `ttl`: [`GC_GRACE`] longer.
fn gc_millis(ttl: Duration) -> u64 {
    millis(ttl.saturating_add(GC_GRACE))
}

/// `value` behind its expiry (`now_ms + ttl`) as [`STAMP_DIGITS`] ASCII digits.
fn stamp(now_ms: u64, ttl: Duration, value: &[u8]) -> Vec<u8> {
    let expires = now_ms.saturating_add(limiter::millis(ttl));
    let mut out = format!("{expires:0STAMP_DIGITS$}").into_bytes();
    out.extend_from_slice(value);
    out
}

/// The value behind a stamp, if it is still live at `now_ms`; a value without a valid stamp
/// (not written by this store) is treated as absent.
fn unstamp(raw: &[u8], now_ms: u64) -> Option<Vec<u8>> {
    let (head, value) = raw.split_at_checked(STAMP_DIGITS)?;
    let expires: u64 = std::str::from_utf8(head).ok()?.parse().ok()?;
    (expires > now_ms).then(|| value.to_vec())
}

/// `url` with any password replaced by `***`, for messages.
fn redact(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => {
            let userinfo = &rest[..at];
            let user = userinfo.split_once(':').map_or(userinfo, |(user, _)| user);
            let hidden = if userinfo.contains(':') {
                format!("{user}:***")
            } else {
                "***".to_owned()
            };
            format!("{}{hidden}{}", &url[..scheme_end + 3], &rest[at..])
        }
        None => url.to_owned(),
    }
}

#[async_trait]
impl Ephemeral for RedisEphemeral {
    async fn put(
        &self,
        key: &str,
        value: &[u8],
        now_ms: u64,
        ttl: Duration,
    ) -> Result<(), EphemeralError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(stamp(now_ms, ttl, value))
            .arg("PX")
            .arg(gc_millis(ttl));
        self.query::<()>(&cmd).await
    }

    async fn take(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, EphemeralError> {
        let mut cmd = ::redis::cmd("GETDEL");
        cmd.arg(self.key(key));
        let raw: Option<Vec<u8>> = self.query(&cmd).await?;
        Ok(raw.and_then(|r| unstamp(&r, now_ms)))
    }

    async fn get(&self, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, EphemeralError> {
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(self.key(key));
        let raw: Option<Vec<u8>> = self.query(&cmd).await?;
        Ok(raw.and_then(|r| unstamp(&r, now_ms)))
    }

    /// One script: a value whose stamped expiry has passed counts as absent.
    async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        now_ms: u64,
        ttl: Duration,
    ) -> Result<bool, EphemeralError> {
        let mut inv = self.set_nx_script.key(self.key(key));
        inv.arg(stamp(now_ms, ttl, value))
            .arg(now_ms)
            .arg(gc_millis(ttl));
        let mut conn = self.conn.clone();
        let stored: i64 = bounded(inv.invoke_async(&mut conn)).await?;
        Ok(stored == 1)
    }

    /// The limiter step as one Lua script (`EVALSHA`, loaded on first use): atomic across
    /// every node sharing this Redis.
    async fn hit(
        &self,
        key: &str,
        rule: &Rule,
        now_ms: u64,
        mode: Mode,
    ) -> Result<Verdict, EphemeralError> {
        let b = rule.backoff;
        let mut inv = self.hit_script.key(self.key(key));
        inv.arg(now_ms)
            .arg(limiter::millis(rule.window))
            .arg(rule.limit.min(MAX_EXACT))
            .arg(u8::from(rule.kind == Window::Idle))
            .arg(b.map_or(0, |b| b.free))
            .arg(b.map_or(0, |b| limiter::millis(b.first)))
            .arg(u8::from(b.is_some_and(|b| b.doubling)))
            .arg(b.map_or(0, |b| limiter::millis(b.max)))
            .arg(u8::from(mode == Mode::Record))
            .arg(limiter::millis(GC_GRACE));
        let mut conn = self.conn.clone();
        let (allowed, count, wait): (i64, i64, i64) = bounded(inv.invoke_async(&mut conn)).await?;
        Ok(Verdict {
            allowed: allowed == 1,
            count: u64::try_from(count).unwrap_or(0),
            retry_after: Duration::from_millis(u64::try_from(wait).unwrap_or(0)),
        })
    }

    async fn delete(&self, key: &str) -> Result<(), EphemeralError> {
        let mut cmd = ::redis::cmd("DEL");
        cmd.arg(self.key(key));
        self.query::<()>(&cmd).await
    }

    async fn ping(&self) -> Result<(), EphemeralError> {
        self.query::<()>(&::redis::cmd("PING")).await
    }
}

#[cfg(test)]
mod tests;
