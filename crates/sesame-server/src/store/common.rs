//! The [`Store`] queries both backends share, written once and generated for each by
//! the `sql_store!` macro.
//!
//! The SQL uses PostgreSQL's `$1`-style placeholders, which SQLite accepts as well, so
//! the statements are the same text on both. What differs stays in the backend's module
//! and is passed in: the store type and its sqlx database, the [`Backend`] it reports,
//! and how an id is bound and read back (hyphenated text in SQLite, `UUID` in
//! PostgreSQL). Connecting, pool setup and migrations are in the backend modules too.
//!
//! Every write (`execute` of an `INSERT`/`UPDATE`/`DELETE`, every transaction) goes through
//! `writer()`, every read through `pool()`. On PostgreSQL they are the same pool; SQLite
//! has a separate single-connection writer pool (`store/sqlite.rs` says why).

use async_trait::async_trait;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::{
    count_to_u64, decode_methods, decode_role, decode_status, encode_methods, AccountStatus,
    AuditQuery, AuditRecord, Backend, FactorRecord, LoginWrite, NewAuditEvent, NewSession, NewUser,
    PostgresStore, SessionRecord, SqliteStore, Store, StoreError, UserRecord, Write,
};

macro_rules! user_columns {
    () => {
        "id, username_index, username_sealed, email_index, email_sealed, credential, \
         status, created_at, updated_at, last_login_at, role"
    };
}

macro_rules! session_columns {
    () => {
        "id, user_id, token_hash, created_at, last_seen_at, idle_expires_at, \
         absolute_expires_at, client_addr, user_agent, methods"
    };
}

/// Generates the [`Store`] implementation for one backend: `$store` is the store type
/// (with a `pool()` method), `$db` its sqlx database, `$backend` what
/// [`Store::backend`] reports, `$id` turns a `Uuid` into its bind value, `$decode` reads
/// an id column back and `$decode_opt` a nullable one.
macro_rules! sql_store {
    ($store:ty, $db:ty, $backend:expr, $id:path, $decode:path, $decode_opt:path) => {
        impl $store {
            async fn insert_user<'e, E>(executor: E, user: &NewUser) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(concat!(
                    "INSERT INTO users (",
                    user_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL, 'user')"
                ))
                .bind($id(user.id))
                .bind(&user.username_index)
                .bind(&user.username_sealed)
                .bind(&user.email_index)
                .bind(&user.email_sealed)
                .bind(&user.credential)
                .bind(user.status.as_str())
                .bind(user.created_at)
                .bind(user.created_at)
                .execute(executor)
                .await?;
                Ok(())
            }

            async fn insert_session<'e, E>(executor: E, s: &NewSession) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(concat!(
                    "INSERT INTO sessions (",
                    session_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ))
                .bind($id(s.id))
                .bind($id(s.user_id))
                .bind(&s.token_hash)
                .bind(s.created_at)
                .bind(s.last_seen_at)
                .bind(s.idle_expires_at)
                .bind(s.absolute_expires_at)
                .bind(&s.client_addr)
                .bind(&s.user_agent)
                .bind(encode_methods(&s.methods))
                .execute(executor)
                .await?;
                Ok(())
            }

            async fn insert_audit<'e, E>(executor: E, e: &NewAuditEvent) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO audit_log (at, event, user_id, reason, client_addr, user_agent) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(e.at)
                .bind(&e.event)
                .bind(e.user_id.map($id))
                .bind(&e.reason)
                .bind(&e.client_addr)
                .bind(&e.user_agent)
                .execute(executor)
                .await?;
                Ok(())
            }

            fn user_from_row(row: &<$db as sqlx::Database>::Row) -> Result<UserRecord, StoreError> {
                Ok(UserRecord {
                    id: $decode(row, "id")?,
                    username_index: row.try_get("username_index")?,
                    username_sealed: row.try_get("username_sealed")?,
                    email_index: row.try_get("email_index")?,
                    email_sealed: row.try_get("email_sealed")?,
                    credential: row.try_get("credential")?,
                    status: decode_status(row.try_get("status")?)?,
                    created_at: row.try_get("created_at")?,
                    updated_at: row.try_get("updated_at")?,
                    last_login_at: row.try_get("last_login_at")?,
                    role: decode_role(row.try_get("role")?)?,
                })
            }

            fn session_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<SessionRecord, StoreError> {
                Ok(SessionRecord {
                    id: $decode(row, "id")?,
                    user_id: $decode(row, "user_id")?,
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

            fn audit_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<AuditRecord, StoreError> {
                Ok(AuditRecord {
                    id: row.try_get("id")?,
                    at: row.try_get("at")?,
                    event: row.try_get("event")?,
                    user_id: $decode_opt(row, "user_id")?,
                    reason: row.try_get("reason")?,
                    client_addr: row.try_get("client_addr")?,
                    user_agent: row.try_get("user_agent")?,
                })
            }
        }

        #[async_trait]
        impl Store for $store {
            fn backend(&self) -> Backend {
                $backend
            }

            fn pool_stats(&self) -> (u32, usize) {
                self.pool_sizes()
            }

            fn oidc(&self) -> Option<&dyn super::OidcStore> {
                Some(self)
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(self.pool()).await?;
                Ok(())
            }

            async fn close(&self) {
                self.writer().close().await;
                self.pool().close().await;
            }

            async fn secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
                let row = sqlx::query("SELECT value FROM server_secrets WHERE name = $1")
                    .bind(name)
                    .fetch_optional(self.pool())
                    .await?;
                Ok(row.map(|r| r.try_get("value")).transpose()?)
            }

            async fn insert_secret_if_absent(
                &self,
                name: &str,
                value: &[u8],
                now: i64,
            ) -> Result<Vec<u8>, StoreError> {
                // Secrets are never updated nor deleted, so once the insert has happened
                // (here or elsewhere) the row read back is the one every caller sees.
                sqlx::query(
                    "INSERT INTO server_secrets (name, value, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(value)
                .bind(now)
                .execute(self.writer())
                .await?;
                self.secret(name).await?.ok_or_else(|| {
                    StoreError::Corrupt(format!("secret {name:?} vanished after insert"))
                })
            }

            async fn create_user(&self, user: &NewUser) -> Result<(), StoreError> {
                Self::insert_user(self.writer(), user).await
            }

            async fn create_account(
                &self,
                user: &NewUser,
                factors: &[FactorRecord],
                audit: &NewAuditEvent,
            ) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::insert_user(&mut *tx, user).await?;
                Self::insert_factors(&mut *tx, factors).await?;
                Self::insert_audit(&mut *tx, audit).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn user_by_index(
                &self,
                username_index: &[u8],
            ) -> Result<Option<UserRecord>, StoreError> {
                // One row either way, read and decoded alike: the account's, or for a name
                // no account has the row of `user_stand_in`, so that a miss costs what a hit
                // costs (timing-safe account lookups, docs/security.md, "Timing").
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    ", 1 AS known FROM users WHERE username_index = $1 UNION ALL SELECT ",
                    user_columns!(),
                    ", 0 AS known FROM user_stand_in \
                     WHERE NOT EXISTS (SELECT 1 FROM users WHERE username_index = $1)"
                ))
                .bind(username_index)
                .fetch_optional(self.pool())
                .await?;
                let Some(row) = row else { return Ok(None) };
                let user = Self::user_from_row(&row)?;
                let known: i32 = row.try_get("known")?;
                Ok((known == 1).then_some(user))
            }

            async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
                let row = sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users WHERE id = $1"
                ))
                .bind($id(id))
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(Self::user_from_row).transpose()
            }

            async fn list_users(
                &self,
                limit: u32,
                offset: u32,
            ) -> Result<Vec<UserRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    user_columns!(),
                    " FROM users ORDER BY created_at, id LIMIT $1 OFFSET $2"
                ))
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::user_from_row).collect()
            }

            async fn count_users(&self) -> Result<u64, StoreError> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users")
                    .fetch_one(self.pool())
                    .await?;
                count_to_u64(n)
            }

            async fn set_user_status(
                &self,
                id: Uuid,
                status: AccountStatus,
                now: i64,
            ) -> Result<bool, StoreError> {
                let done =
                    sqlx::query("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3")
                        .bind(status.as_str())
                        .bind(now)
                        .bind($id(id))
                        .execute(self.writer())
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_user_email(
                &self,
                id: Uuid,
                email: Option<(&[u8], &[u8])>,
                now: i64,
            ) -> Result<bool, StoreError> {
                let (index, sealed) = email.unzip();
                let done = sqlx::query(
                    "UPDATE users SET email_index = $1, email_sealed = $2, updated_at = $3 \
                     WHERE id = $4",
                )
                .bind(index)
                .bind(sealed)
                .bind(now)
                .bind($id(id))
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn set_credential(
                &self,
                id: Uuid,
                credential: &[u8],
                now: i64,
            ) -> Result<bool, StoreError> {
                let done =
                    sqlx::query("UPDATE users SET credential = $1, updated_at = $2 WHERE id = $3")
                        .bind(credential)
                        .bind(now)
                        .bind($id(id))
                        .execute(self.writer())
                        .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn record_login(&self, id: Uuid, now: i64) -> Result<(), StoreError> {
                sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
                    .bind(now)
                    .bind($id(id))
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind($id(id))
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_session(&self, s: &NewSession) -> Result<(), StoreError> {
                Self::insert_session(self.writer(), s).await
            }

            async fn create_login_sessions(&self, logins: &[LoginWrite]) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                for (s, audit) in logins {
                    Self::insert_session(&mut *tx, s).await?;
                    sqlx::query("UPDATE users SET last_login_at = $1 WHERE id = $2")
                        .bind(s.created_at)
                        .bind($id(s.user_id))
                        .execute(&mut *tx)
                        .await?;
                    Self::insert_audit(&mut *tx, audit).await?;
                }
                tx.commit().await?;
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
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(Self::session_from_row).transpose()
            }

            async fn session_and_owner_by_token_hash(
                &self,
                token_hash: &[u8],
            ) -> Result<Option<(SessionRecord, Option<AccountStatus>)>, StoreError> {
                if let Some(inline) = self.inline_reads() {
                    return inline.session_and_owner(token_hash);
                }
                let row = sqlx::query(concat!(
                    "SELECT ",
                    session_columns!(),
                    ", (SELECT status FROM users WHERE users.id = sessions.user_id) AS owner_status \
                     FROM sessions WHERE token_hash = $1"
                ))
                .bind(token_hash)
                .fetch_optional(self.pool())
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                let status: Option<String> = row.try_get("owner_status")?;
                let status = status.as_deref().map(decode_status).transpose()?;
                Ok(Some((Self::session_from_row(&row)?, status)))
            }

            async fn session_by_id(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError> {
                if let Some(inline) = self.inline_reads() {
                    return inline.session_by_id(id);
                }
                let row = sqlx::query(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE id = $1"
                ))
                .bind($id(id))
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(Self::session_from_row).transpose()
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
                .bind($id(id))
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn sessions_for_user(
                &self,
                user_id: Uuid,
            ) -> Result<Vec<SessionRecord>, StoreError> {
                let rows = sqlx::query(concat!(
                    "SELECT ",
                    session_columns!(),
                    " FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
                ))
                .bind($id(user_id))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::session_from_row).collect()
            }

            async fn delete_session(
                &self,
                user_id: Uuid,
                session_id: Uuid,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM sessions WHERE id = $1 AND user_id = $2")
                    .bind($id(session_id))
                    .bind($id(user_id))
                    .execute(self.writer())
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
                            .bind($id(user_id))
                            .bind($id(keep))
                            .execute(self.writer())
                            .await?
                    }
                    None => {
                        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                            .bind($id(user_id))
                            .execute(self.writer())
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
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected())
            }

            async fn write_atomically(&self, writes: &[Write]) -> Result<Vec<u64>, StoreError> {
                self.apply_writes(writes).await
            }

            async fn append_audit(&self, e: &NewAuditEvent) -> Result<(), StoreError> {
                Self::insert_audit(self.writer(), e).await
            }

            async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
                let mut query = QueryBuilder::<$db>::new(
                    "SELECT id, at, event, user_id, reason, client_addr, user_agent \
                     FROM audit_log WHERE 1 = 1",
                );
                if let Some(user_id) = q.user_id {
                    query.push(" AND user_id = ").push_bind($id(user_id));
                }
                if let Some(since) = q.since {
                    query.push(" AND at >= ").push_bind(since);
                }
                if let Some(until) = q.until {
                    query.push(" AND at < ").push_bind(until);
                }
                if let Some(event) = &q.event {
                    query.push(" AND event = ").push_bind(event.clone());
                }
                // `substr` rather than `LIKE`: no wildcard in the text needs escaping.
                if let Some(prefix) = &q.event_prefix {
                    query
                        .push(" AND substr(event, 1, ")
                        .push_bind(prefix_len(prefix))
                        .push(") = ")
                        .push_bind(prefix.clone());
                }
                if let Some(prefix) = &q.exclude_prefix {
                    query
                        .push(" AND substr(event, 1, ")
                        .push_bind(prefix_len(prefix))
                        .push(") <> ")
                        .push_bind(prefix.clone());
                }
                query
                    .push(" ORDER BY at DESC, id DESC LIMIT ")
                    .push_bind(i64::from(q.limit));
                let rows = query.build().fetch_all(self.pool()).await?;
                rows.iter().map(Self::audit_from_row).collect()
            }

            async fn delete_audit_before(&self, cutoff: i64) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM audit_log WHERE at < $1")
                    .bind(cutoff)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }
        }
    };
}

/// The length of an event-name prefix for `substr` (characters; an `INTEGER` bind, which
/// PostgreSQL's `substr(text, int, int)` needs).
fn prefix_len(prefix: &str) -> i32 {
    i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX)
}

sql_store!(
    SqliteStore,
    sqlx::Sqlite,
    Backend::Sqlite,
    super::sqlite::bind_id,
    super::sqlite::decode_id,
    super::sqlite::decode_opt_id
);
sql_store!(
    PostgresStore,
    sqlx::Postgres,
    Backend::Postgres,
    super::postgres::bind_id,
    super::postgres::decode_id,
    super::postgres::decode_opt_id
);
