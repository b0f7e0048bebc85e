//! The PostgreSQL [`Store`].
//!
//! A pool of [`ConnectOptions::max_connections`] connections. With
//! [`ConnectOptions::pg_schema`] the schema is created if missing and every connection
//! starts with `search_path` set to it (a startup parameter, so it holds on every pooled
//! connection), which puts the tables and the migration history there: tests use this
//! for isolation, operators who share a database may too.
//!
//! Migrations run under sqlx's advisory lock, so several nodes may start at once.

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions as _, Connection as _, Postgres, QueryBuilder, Row};
use uuid::Uuid;

use super::{
    count_to_u64, decode_methods, decode_status, encode_methods, AccountStatus, AuditQuery,
    AuditRecord, Backend, ConnectOptions, NewAuditEvent, NewSession, NewUser, SessionRecord, Store,
    StoreError, UserRecord,
};

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

/// A [`Store`] on a PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

/// Checks that `schema` is a plain lowercase identifier, safe to splice into SQL and
/// into `search_path` without quoting.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 && !schema.starts_with("pg_") {
        Ok(())
    } else {
        Err(StoreError::InvalidUrl(format!(
            "invalid PostgreSQL schema name {schema:?}: expected [a-z_][a-z0-9_]*, \
             at most 63 bytes, not starting with pg_"
        )))
    }
}

impl PostgresStore {
    /// Connects to `url` (`postgres://…` or `postgresql://…`), creates and selects
    /// [`ConnectOptions::pg_schema`] if given, and applies the embedded migrations.
    pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Self, StoreError> {
        // The parse error never echoes the URL, which may hold a password.
        let mut connect_options: PgConnectOptions = url
            .parse()
            .map_err(|e| StoreError::InvalidUrl(format!("invalid PostgreSQL URL: {e}")))?;

        if let Some(schema) = &options.pg_schema {
            check_schema_name(schema)?;
            let mut conn = connect_options
                .connect()
                .await
                .map_err(StoreError::Database)?;
            let created = sqlx::query(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
                .execute(&mut conn)
                .await;
            // Two nodes creating the schema at once may race on the catalog's unique
            // index; the loser can carry on since the schema now exists.
            match created {
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {}
                other => {
                    other.map_err(StoreError::Database)?;
                }
            }
            conn.close().await.map_err(StoreError::Database)?;
            connect_options = connect_options.options([("search_path", schema.as_str())]);
        }

        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect_options)
            .await
            .map_err(StoreError::Database)?;

        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        tracing::debug!(schema = ?options.pg_schema, "PostgreSQL store ready");
        Ok(PostgresStore { pool })
    }

    /// The underlying pool, for code that needs PostgreSQL-specific access.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

fn user_from_row(row: &PgRow) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: row.try_get("id")?,
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

fn session_from_row(row: &PgRow) -> Result<SessionRecord, StoreError> {
    Ok(SessionRecord {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
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

fn audit_from_row(row: &PgRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: row.try_get("at")?,
        event: row.try_get("event")?,
        user_id: row.try_get("user_id")?,
        reason: row.try_get("reason")?,
        client_addr: row.try_get("client_addr")?,
        user_agent: row.try_get("user_agent")?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
        let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
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
            "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
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
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)"
        ))
        .bind(user.id)
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
            " FROM users WHERE username_index = $1"
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
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(user_from_row).transpose()
    }

    async fn list_users(&self, limit: u32, offset: u32) -> Result<Vec<UserRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2"
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
        let done = sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(now)
            .bind(id)
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
        let done = sqlx::query("UPDATE users SET credential = $1, updated_at = $2 WHERE id = $3")
            .bind(credential)
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn record_login(&self, id: Uuid, now: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
            .bind(now)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM users WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            session_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(s.id)
        .bind(s.user_id)
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
            " FROM sessions WHERE token_hash = $1"
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
            " FROM sessions WHERE id = $1"
        ))
        .bind(id)
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
        let done = sqlx::query(
            "UPDATE sessions SET last_seen_at = $1, idle_expires_at = $2 WHERE id = $3",
        )
        .bind(last_seen_at)
        .bind(idle_expires_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    async fn sessions_for_user(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            session_columns!(),
            " FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(session_from_row).collect()
    }

    async fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
            .bind(session_id)
            .bind(user_id)
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
                sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
                    .bind(user_id)
                    .bind(keep)
                    .execute(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user_id)
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(done.rows_affected())
    }

    async fn delete_expired_sessions(&self, now: i64) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "DELETE FROM sessions WHERE idle_expires_at <= $1 OR absolute_expires_at <= $2",
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
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(e.at)
        .bind(&e.event)
        .bind(e.user_id)
        .bind(&e.reason)
        .bind(&e.client_addr)
        .bind(&e.user_agent)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
        let mut query = QueryBuilder::<Postgres>::new(
            "SELECT id, at, event, user_id, reason, client_addr, user_agent \
             FROM audit_log WHERE 1 = 1",
        );
        if let Some(user_id) = q.user_id {
            query.push(" AND user_id = ").push_bind(user_id);
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
        let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
            .bind(cutoff)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
