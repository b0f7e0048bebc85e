//! The PostgreSQL [`Store`](super::Store).
//!
//! A pool of [`ConnectOptions::max_connections`] connections. With
//! [`ConnectOptions::pg_schema`] the schema is created if missing and every connection
//! starts with `search_path` set to it (a startup parameter, so it holds on every pooled
//! connection), which puts the tables and the migration history there: tests use this
//! for isolation, operators who share a database may too.
//!
//! Migrations run under sqlx's advisory lock, so several nodes may start at once.
//!
//! Ids are stored as `UUID`. The queries themselves are shared with SQLite
//! (`store/common.rs`).

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{ConnectOptions as _, Connection as _, Row};
use uuid::Uuid;

use super::{ConnectOptions, StoreError};

/// A [`Store`](super::Store) on a PostgreSQL database.
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
    /// PostgreSQL reads every session through its pool (see [`SqliteStore`](super::SqliteStore)).
    pub(super) fn inline_reads(&self) -> Option<&super::sqlite_reads::InlineReads> {
        None
    }

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

    /// The pool writes go through: the same pool (PostgreSQL has no single-writer lock to
    /// queue for).
    pub fn writer(&self) -> &PgPool {
        &self.pool
    }

    /// Begins a write transaction.
    pub async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.pool.begin().await
    }

    /// (open connections, idle connections).
    pub(super) fn pool_sizes(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}

/// Binds an id: PostgreSQL stores ids as `UUID`.
pub(super) fn bind_id(id: Uuid) -> Uuid {
    id
}

/// Reads back an id column.
pub(super) fn decode_id(row: &PgRow, column: &str) -> Result<Uuid, StoreError> {
    Ok(row.try_get(column)?)
}

/// Reads back a nullable id column.
pub(super) fn decode_opt_id(row: &PgRow, column: &str) -> Result<Option<Uuid>, StoreError> {
    Ok(row.try_get(column)?)
}
