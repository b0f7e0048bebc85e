//! The SQLite [`Store`], the embedded default.
//!
//! Every connection is opened with:
//!
//! * `create_if_missing`: a fresh install starts with just a path.
//! * `journal_mode=WAL`: readers never block the writer nor the writer the readers, so
//!   session lookups keep flowing during writes.
//! * `synchronous=FULL`: each commit is fsynced (WAL included) before it is
//!   acknowledged, so no acknowledged write (a new account, a revoked session) is lost
//!   on a process crash nor on power loss. `NORMAL` would be faster but may drop the
//!   last commits on power loss, which is not acceptable for security state.
//! * `foreign_keys=ON`: SQLite leaves foreign keys off by default, and deleting a user
//!   must cascade to the user's sessions.
//! * `busy_timeout` of 5 s: a connection waits for the write lock instead of failing at
//!   once with `SQLITE_BUSY` when another connection is writing.
//!
//! The pool is small (at most 4 connections): SQLite has one writer at a time, so more
//! connections only add lock contention; a few let reads run beside a write. An
//! in-memory database (`sqlite::memory:`) uses exactly one connection that is never
//! recycled, since the database lives only as long as its connections.
//!
//! Ids are stored as hyphenated lowercase UUID text.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{QueryBuilder, Row, Sqlite};
use uuid::Uuid;

use super::{
    count_to_u64, decode_methods, decode_status, encode_methods, AccountStatus, AuditQuery,
    AuditRecord, Backend, ConnectOptions, NewAuditEvent, NewSession, NewUser, SessionRecord, Store,
    StoreError, UserRecord,
};

/// Most connections a SQLite pool opens.
const MAX_SQLITE_CONNECTIONS: u32 = 4;
/// How long a connection waits for another's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

macro_rules! user_columns {
    () => {
        "id, username_index, username_sealed, email_index, email_sealed, credential, \
         status, created_at, updated_at, last_login_at"
    };
}

macro_rules! session_columns {
    () => {
        "id, user_id, token_hash, created_at, last_seen_at, idle_expires_at, \
         absolute_expires_at, client_addr, user_agent, methods"
    };
}

/// A [`Store`] on a SQLite database file (or an in-memory database).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or
    /// `sqlite::memory:`) and applies the embedded migrations.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        let connect_options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::InvalidUrl(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);

        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool_options = if in_memory {
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
        } else {
            SqlitePoolOptions::new()
                .max_connections(options.max_connections.clamp(1, MAX_SQLITE_CONNECTIONS))
        };
        let pool = pool_options
            .connect_with(connect_options)
            .await
            .map_err(StoreError::Database)?;

        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        tracing::debug!(in_memory, "SQLite store ready");
        Ok(SqliteStore { pool })
    }

    /// The underlying pool, for code that needs SQLite-specific access.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

fn parse_id(text: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("bad id {text:?}: {e}")))
}

fn parse_opt_id(text: Option<String>) -> Result<Option<Uuid>, StoreError> {
    text.as_deref().map(parse_id).transpose()
}

fn user_from_row(row: &SqliteRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: parse_id(row.try_get("id")?)?,
        username_index: row.try_get("username_index")?,
        username_sealed: row.try_get("username_sealed")?,
        email_index: row.try_get("email_index")?,
        email_sealed: row.try_get("email_sealed")?,
        credential: row.try_get("credential")?,
        status: decode_status(row.try_get("status")?)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_login_at: row.try_get("last_login_at")?,
    })
}

fn session_from_row(row: &SqliteRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: parse_id(row.try_get("id")?)?,
        user_id: parse_id(row.try_get("user_id")?)?,
        token_hash: row.try_get("token_hash")?,
        created_at: row.try_get("created_at")?,
        last_seen_at: row.try_get("last_seen_at")?,
        idle_expires_at: row.try_get("idle_expires_at")?,
        absolute_expires_at: row.try_get("absolute_expires_at")?,
        client_addr: row.try_get("client_addr")?,
        user_agent: row.try_get("user_agent")?,
        methods: decode_methods(row.try_get("methods")?)?,
    })
}

fn audit_from_row(row: &SqliteRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        event: row.try_get("event")?,
        user_id: parse_opt_id(row.try_get("user_id")?)?,
        reason: row.try_get("reason")?,
        client_addr: row.try_get("client_addr")?,
        user_agent: row.try_get("user_agent")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    async fn secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("value")).transpose()?)
    }

    async fn insert_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, StoreError> {
        // Secrets are never updated nor deleted, so once the insert has happened (here or
        // elsewhere) the row read back is the one every caller sees.
        sqlx::query(
            "INSERT INTO server_secrets (name, value, created_at) VALUES (?, ?, ?) \
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .bind(now)
        .execute(&self.pool)
        .await?;
        self.secret(name)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("secret {name:?} vanished after insert")))
    }

    async fn create_user(&self, user: &NewUser) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)"
        ))
        .bind(user.id.hyphenated())
        .bind(&user.username_index)
        .bind(&user.username_sealed)
        .bind(&user.email_index)
        .bind(&user.email_sealed)
        .bind(&user.credential)
        .bind(user.status.as_str())
        .bind(user.created_at)
        .bind(user.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn user_by_index(&self, username_index: &[u8]) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE username_index = ?"
        ))
        .bind(username_index)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = ?"
        ))
        .bind(id.hyphenated())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self, limit: u32, offset: u32) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, id LIMIT ? OFFSET ?"
        ))
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    async fn count_users(&self) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
            .fetch_one(&self.pool)
            .await?;
        count_to_u64(n)
    }

    async fn set_user_status(
        &self,
        id: Uuid,
        status: AccountStatus,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(now)
            .bind(id.hyphenated())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn set_credential(
        &self,
        id: Uuid,
        credential: &[u8],
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE users SET credential = ?, updated_at = ? WHERE id = ?")
            .bind(credential)
            .bind(now)
            .bind(id.hyphenated())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_login(&self, id: Uuid, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET last_login_at = ? WHERE id = ?")
            .bind(now)
            .bind(id.hyphenated())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = ?")
            .bind(id.hyphenated())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ))
        .bind(s.id.hyphenated())
        .bind(s.user_id.hyphenated())
        .bind(&s.token_hash)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.idle_expires_at)
        .bind(s.absolute_expires_at)
        .bind(&s.client_addr)
        .bind(&s.user_agent)
        .bind(encode_methods(&s.methods))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn session_by_token_hash(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE token_hash = ?"
        ))
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn session_by_id(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE id = ?"
        ))
        .bind(id.hyphenated())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(session_from_row).transpose()
    }

    async fn touch_session(
        &self,
        id: Uuid,
        last_seen_at: i64,
        idle_expires_at: i64,
    ) -> Result<bool, StoreError> {
        let done =
            sqlx::query("UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE id = ?")
                .bind(last_seen_at)
                .bind(idle_expires_at)
                .bind(id.hyphenated())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn sessions_for_user(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = ? ORDER BY created_at DESC, id DESC"
        ))
        .bind(user_id.hyphenated())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = ? AND user_id = ?")
            .bind(session_id.hyphenated())
            .bind(user_id.hyphenated())
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn delete_sessions_for_user(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError> {
        let done = match except {
            Some(keep) => {
                sqlx::query("DELETE FROM sessions WHERE user_id = ? AND id <> ?")
                    .bind(user_id.hyphenated())
                    .bind(keep.hyphenated())
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM sessions WHERE user_id = ?")
                    .bind(user_id.hyphenated())
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }

    async fn delete_expired_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE idle_expires_at <= ? OR absolute_expires_at <= ?",
        )
        .bind(now)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    async fn append_audit(&self, e: &NewAuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_log (at, event, user_id, reason, client_addr, user_agent) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(e.at)
        .bind(&e.event)
        .bind(e.user_id.map(|id| id.hyphenated()))
        .bind(&e.reason)
        .bind(&e.client_addr)
        .bind(&e.user_agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let mut query = QueryBuilder::<Sqlite>::new(
            "SELECT id, at, event, user_id, reason, client_addr, user_agent \
             FROM audit_log WHERE 1 = 1",
        );
        if let Some(user_id) = q.user_id {
            query
                .push(" AND user_id = ")
                .push_bind(user_id.hyphenated());
        }
        if let Some(since) = q.since {
            query.push(" AND at >= ").push_bind(since);
        }
        query
            .push(" ORDER BY at DESC, id DESC LIMIT ")
            .push_bind(i64::from(q.limit));
        let rows = query.build().fetch_all(&self.pool).await?;
        rows.iter().map(audit_from_row).collect()
    }

    async fn delete_audit_before(&self, cutoff: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM audit_log WHERE at < ?")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
