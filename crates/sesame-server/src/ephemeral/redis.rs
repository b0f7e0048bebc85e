//! Redis implementation of [`Ephemeral`]: short-lived state shared by every node.
//!
//! Each operation of the contract is one Redis command, or one `MULTI`/`EXEC` transaction,
//! so it is atomic across all nodes talking to the same Redis:
//!
//! | contract  | Redis                                   |
//! |-----------|-----------------------------------------|
//! | `put`     | `SET key value PX ms`                   |
//! | `take`    | `GETDEL key` (Redis 6.2 or later)       |
//! | `get`     | `GET key`                               |
//! | `incr`    | `MULTI; INCR key; PEXPIRE key ms; EXEC` |
//! | `set_nx`  | `SET key value NX PX ms`                |
//! | `ttl`     | `PTTL key`                              |
//! | `delete`  | `DEL key`                               |
//! | `ping`    | `PING`                                  |
//!
//! Every key is prefixed (default [`DEFAULT_KEY_PREFIX`]) so several deployments, or test
//! runs, can share one Redis. The connection is a [`ConnectionManager`], which reconnects by
//! itself after Redis restarts; every call is bounded by [`REDIS_TIMEOUT`], so a dead Redis
//! answers [`EphemeralError::Unavailable`] quickly (the service turns that into 503
//! `unavailable`) instead of hanging requests.

use std::future::Future;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Value};
use async_trait::async_trait;

use super::{Ephemeral, EphemeralError};

/// The key prefix used when the configuration names none.
pub const DEFAULT_KEY_PREFIX: &str = "sesame:";

/// The longest any one Redis call (connecting included) may take before it fails with
/// [`EphemeralError::Unavailable`].
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Redis refuses expiry times that overflow its clock; no caller needs more than this
/// (about 35 years) anyway.
const MAX_TTL_MS: u64 = 1 << 40;

/// Reconnection attempts the connection manager makes before giving up until the next call.
const RECONNECT_RETRIES: usize = 3;

/// Short-lived state in Redis, shared by every node pointed at the same server and prefix.
///
/// Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct RedisEphemeral {
    conn: ConnectionManager,
    prefix: String,
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
    async fn put(&self, key: &str, value: &[u8], ttl: Duration) -> Result<(), EphemeralError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("PX").arg(millis(ttl));
        self.query::<()>(&cmd).await
    }

    async fn take(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let mut cmd = ::redis::cmd("GETDEL");
        cmd.arg(self.key(key));
        self.query(&cmd).await
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, EphemeralError> {
        let mut cmd = ::redis::cmd("GET");
        cmd.arg(self.key(key));
        self.query(&cmd).await
    }

    /// `INCR` and `PEXPIRE` in one `MULTI`/`EXEC` transaction: no other client's command
    /// runs between them, so counts are never lost and the key never outlives its TTL.
    /// Unlike the in-memory store, a value that is not a counter is an error (Redis refuses
    /// to `INCR` it), reported as `Unavailable`.
    async fn incr(&self, key: &str, ttl: Duration) -> Result<u64, EphemeralError> {
        let key = self.key(key);
        let mut pipe = ::redis::pipe();
        pipe.atomic()
            .cmd("INCR")
            .arg(&key)
            .cmd("PEXPIRE")
            .arg(&key)
            .arg(millis(ttl))
            .ignore();
        let mut conn = self.conn.clone();
        let (n,): (i64,) = bounded(pipe.query_async(&mut conn)).await?;
        u64::try_from(n)
            .map_err(|_| EphemeralError::Unavailable(format!("redis: counter {key} is {n}")))
    }

    async fn set_nx(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, EphemeralError> {
        let mut cmd = ::redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl));
        // `OK` when stored, nil when the key already existed.
        let reply: Value = self.query(&cmd).await?;
        Ok(!matches!(reply, Value::Nil))
    }

    /// `PTTL`: `-2` (absent) is `None`. `-1` (present without expiry) is also `None`: this
    /// store never writes a key without a TTL, so such a key was written by someone else,
    /// and answering `None` (rather than "forever") keeps callers from treating it as a
    /// live, never-ending throttle gate.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, EphemeralError> {
        let mut cmd = ::redis::cmd("PTTL");
        cmd.arg(self.key(key));
        let ms: i64 = self.query(&cmd).await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
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
mod tests {
    use std::time::Duration;

    use super::{millis, redact, MAX_TTL_MS};

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        assert_eq!(
            redact("redis://user:secret@h:1/0"),
            "redis://user:***@h:1/0"
        );
        assert_eq!(redact("redis://:secret@h"), "redis://:***@h");
        assert_eq!(redact("redis://token@h"), "redis://***@h");
        assert_eq!(redact("not a url"), "not a url");
    }

    #[test]
    fn ttls_are_clamped_to_what_redis_accepts() {
        assert_eq!(millis(Duration::ZERO), 1);
        assert_eq!(millis(Duration::from_millis(300)), 300);
        assert_eq!(millis(Duration::MAX), MAX_TTL_MS);
    }
}
