//! Persistent storage: one contract ([`Store`]) and two implementations on sqlx,
//! SQLite (the embedded default) and PostgreSQL.
//!
//! This layer holds only bytes the layer above sealed or hashed: usernames and emails as a
//! 32-byte keyed HMAC *index* (unique lookup key) plus an AEAD ciphertext, session tokens as
//! a 32-byte hash, server secrets encrypted under the master key. No cryptography here.
//!
//! Conventions shared by both backends:
//!
//! * Timestamps are `i64` unix seconds (`INTEGER` / `BIGINT`).
//! * Ids are [`Uuid`]s: `TEXT` (hyphenated, lowercase) in SQLite, `UUID` in PostgreSQL.
//! * Blobs are `BLOB` / `BYTEA`.
//! * A session's `methods` are one `TEXT` column holding a JSON array of strings.
//! * [`AccountStatus`] and [`Role`] are stored as the text of their `as_str`, with no
//!   `CHECK` constraint (no table rebuild in SQLite for a later value); an unknown value
//!   read back is reported as [`StoreError::Corrupt`].
//! * The schema lives in `migrations/sqlite` and `migrations/postgres`, embedded in the
//!   binary and applied by [`connect`]. Later features add files numbered after
//!   `0001_init.sql`; an applied migration must never be edited.
//! * The queries are written once, with `$1`-style placeholders (SQLite accepts them),
//!   and generated for both backends by macros (`common.rs`, `factors.rs`, …); each
//!   backend's module keeps only connecting, the pool, and how ids are bound and read.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use uuid::Uuid;

mod common;
mod error;
mod factors;
pub mod group;
mod messages;
pub mod oidc;
mod passkeys;
mod postgres;
mod sqlite;
mod sqlite_reads;
#[cfg(test)]
mod tests;
pub mod writes;

pub use error::{ConflictOn, StoreError};
pub use factors::{FactorKind, FactorRecord, FactorStore, Slot};
pub use group::{GroupWriter, LoginWrite, MAX_BATCH};
pub use messages::{MessageAck, MessageInsert, MessageRecord, MessageStore, NewMessage};
pub use oidc::{GrantRecord, KeyRecord, OidcClientRecord, OidcStore, TokenKind, TokenRecord};
pub use passkeys::{PasskeyRecord, PasskeyStore, PasskeyUse};
pub use postgres::PostgresStore;
/// An account's role, stored as the text of [`Role::as_str`] (the contract's type: the wire
/// and the stored text are the same). An unknown value read back is
/// [`StoreError::Corrupt`].
pub use sesame_api::admin::Role;
pub use sqlite::SqliteStore;
pub use writes::Write;

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// The embedded SQLite database (the default).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

impl Backend {
    /// A short lowercase name: `"sqlite"` or `"postgres"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The state of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccountStatus {
    /// The account may log in.
    Active,
    /// The account exists but awaits a step (for example email confirmation or approval).
    Pending,
    /// The account is barred from logging in.
    Banned,
}

impl AccountStatus {
    /// The wire form of the status.
    pub fn wire(self) -> sesame_api::auth::AccountStatus {
        match self {
            AccountStatus::Active => sesame_api::auth::AccountStatus::Active,
            AccountStatus::Pending => sesame_api::auth::AccountStatus::Pending,
            AccountStatus::Banned => sesame_api::auth::AccountStatus::Banned,
        }
    }

    /// The stored text: `"active"`, `"pending"` or `"banned"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Pending => "pending",
            AccountStatus::Banned => "banned",
        }
    }
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error returned when parsing an unknown [`AccountStatus`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown account status {0:?}")]
pub struct UnknownStatus(pub String);

impl FromStr for AccountStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(AccountStatus::Active),
            "pending" => Ok(AccountStatus::Pending),
            "banned" => Ok(AccountStatus::Banned),
            other => Err(UnknownStatus(other.to_owned())),
        }
    }
}

/// A user to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    /// The user's id.
    pub id: Uuid,
    /// Keyed HMAC of the normalised username; unique.
    pub username_index: Vec<u8>,
    /// The username, sealed (AEAD) by the caller.
    pub username_sealed: Vec<u8>,
    /// Keyed HMAC of the normalised email, if the user gave one; unique when present.
    pub email_index: Option<Vec<u8>>,
    /// The email, sealed (AEAD) by the caller.
    pub email_sealed: Option<Vec<u8>>,
    /// The login credential (for example the serialised OPAQUE registration record).
    pub credential: Vec<u8>,
    /// The account's initial status.
    pub status: AccountStatus,
    /// Creation time; `updated_at` starts equal to it.
    pub created_at: i64,
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user's id.
    pub id: Uuid,
    /// Keyed HMAC of the normalised username.
    pub username_index: Vec<u8>,
    /// The sealed username.
    pub username_sealed: Vec<u8>,
    /// Keyed HMAC of the normalised email, if any.
    pub email_index: Option<Vec<u8>>,
    /// The sealed email, if any.
    pub email_sealed: Option<Vec<u8>>,
    /// The login credential.
    pub credential: Vec<u8>,
    /// The account's status.
    pub status: AccountStatus,
    /// Creation time.
    pub created_at: i64,
    /// Time of the last change of status or credential (creation time before any).
    pub updated_at: i64,
    /// Time of the last successful login, if any.
    pub last_login_at: Option<i64>,
    /// The account's role (new accounts are [`Role::User`]).
    pub role: Role,
}

/// A session to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The session's id (public: shown in session lists, used to revoke one).
    pub id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    /// Hash of the bearer token; unique. The token itself is never stored.
    pub token_hash: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
    /// Last time the session was used.
    pub last_seen_at: i64,
    /// The session ends at this time unless used again before.
    pub idle_expires_at: i64,
    /// The session ends at this time whatever happens.
    pub absolute_expires_at: i64,
    /// The client's address when the session was created, if known.
    pub client_addr: Option<String>,
    /// The client's user agent, if known.
    pub user_agent: Option<String>,
    /// The authentication methods used to open the session (for example `"opaque"`).
    pub methods: Vec<String>,
}

/// A stored session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session's id.
    pub id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    /// Hash of the bearer token.
    pub token_hash: Vec<u8>,
    /// Creation time.
    pub created_at: i64,
    /// Last time the session was used.
    pub last_seen_at: i64,
    /// Idle expiry time.
    pub idle_expires_at: i64,
    /// Absolute expiry time.
    pub absolute_expires_at: i64,
    /// The client's address at creation, if known.
    pub client_addr: Option<String>,
    /// The client's user agent, if known.
    pub user_agent: Option<String>,
    /// The authentication methods used to open the session.
    pub methods: Vec<String>,
}

/// An audit event to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEvent {
    /// When it happened.
    pub at: i64,
    /// What happened (a short machine-readable name such as `"login.ok"`).
    pub event: String,
    /// The user concerned, if any. Kept after the user is deleted (no foreign key).
    pub user_id: Option<Uuid>,
    /// Why (for example the reason a login failed), if any.
    pub reason: Option<String>,
    /// The client's address, if known.
    pub client_addr: Option<String>,
    /// The client's user agent, if known.
    pub user_agent: Option<String>,
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Increasing id assigned by the database.
    pub id: i64,
    /// When it happened.
    pub at: i64,
    /// What happened.
    pub event: String,
    /// The user concerned, if any.
    pub user_id: Option<Uuid>,
    /// Why, if recorded.
    pub reason: Option<String>,
    /// The client's address, if known.
    pub client_addr: Option<String>,
    /// The client's user agent, if known.
    pub user_agent: Option<String>,
}

/// Which audit events [`Store::list_audit`] returns (every filter that is set applies).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events about this user.
    pub user_id: Option<Uuid>,
    /// Only events at or after this time (`at >= since`).
    pub since: Option<i64>,
    /// Only events before this time (`at < until`).
    pub until: Option<i64>,
    /// Only events with exactly this name.
    pub event: Option<String>,
    /// Only events whose name starts with this text.
    pub event_prefix: Option<String>,
    /// No events whose name starts with this text.
    pub exclude_prefix: Option<String>,
    /// At most this many events (`0` returns none).
    pub limit: u32,
}

/// Options for [`connect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Pool size for PostgreSQL. SQLite uses at most 4 connections whatever this says
    /// (one writer at a time anyway), and exactly 1 for an in-memory database.
    pub max_connections: u32,
    /// PostgreSQL only: a schema to create if missing and use (through `search_path`)
    /// on every connection, tables and migration history included. Must be a plain
    /// lowercase identifier (`[a-z_][a-z0-9_]*`, at most 63 bytes). Ignored for SQLite.
    pub pg_schema: Option<String>,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 10,
            pg_schema: None,
        }
    }
}

/// Opens a database, applies the embedded migrations and returns it as a [`Store`].
///
/// Accepted URLs: `sqlite://path/to/file.db` (created if missing; the directory must
/// exist), `sqlite::memory:` (a private in-memory database, for tests), and
/// `postgres://…` or `postgresql://…`.
pub async fn connect(url: &str, options: &ConnectOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PostgresStore::connect(url, options).await?))
    } else {
        let scheme = url.split_once(':').map_or("(none)", |(s, _)| s);
        Err(StoreError::InvalidUrl(format!(
            "unsupported scheme {scheme:?}: expected sqlite:, postgres:// or postgresql://"
        )))
    }
}

/// The storage contract. Object safe: the server holds an `Arc<dyn Store>`.
/// Methods returning `bool` report whether a row was found (and changed); methods
/// returning `u64` report how many rows they removed.
#[async_trait]
pub trait Store: FactorStore + MessageStore + PasskeyStore + Send + Sync + 'static {
    /// The OpenID Connect provider's tables; `None` for a store without them (test doubles).
    fn oidc(&self) -> Option<&dyn OidcStore> {
        None
    }

    /// Which database this is.
    fn backend(&self) -> Backend;

    /// The connection pool's size and idle connections right now (`/metrics`).
    fn pool_stats(&self) -> (u32, usize) {
        (0, 0)
    }

    /// Checks that the database answers (readiness probe).
    async fn ping(&self) -> Result<(), StoreError>;

    /// Closes the pool, waiting for connections in use to be returned (graceful
    /// shutdown). Later calls fail.
    async fn close(&self);

    /// A server secret by name (encrypted under the master key by the caller).
    async fn secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;

    /// Inserts a secret unless one with that name exists; returns what is stored
    /// afterwards (the existing value wins), atomically, so two nodes starting at once
    /// agree on one value.
    async fn insert_secret_if_absent(
        &self,
        name: &str,
        value: &[u8],
        now: i64,
    ) -> Result<Vec<u8>, StoreError>;

    /// Creates a user. A taken username or email index gives
    /// [`StoreError::Conflict`] with [`ConflictOn::Username`] or [`ConflictOn::Email`].
    /// Any number of users may have no email.
    async fn create_user(&self, user: &NewUser) -> Result<(), StoreError>;

    /// The user with this username index.
    async fn user_by_index(&self, username_index: &[u8]) -> Result<Option<UserRecord>, StoreError>;

    /// The user with this id.
    async fn user_by_id(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;

    /// A page of users ordered by `created_at`, then `id`.
    async fn list_users(&self, limit: u32, offset: u32) -> Result<Vec<UserRecord>, StoreError>;

    /// How many users exist.
    async fn count_users(&self) -> Result<u64, StoreError>;

    /// Sets a user's status and `updated_at`; `false` if there is no such user.
    async fn set_user_status(
        &self,
        id: Uuid,
        status: AccountStatus,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Replaces (or with `None` removes) a user's email index and ciphertext; `false` if no
    /// such user, [`ConflictOn::Email`] if another account has it.
    async fn set_user_email(
        &self,
        id: Uuid,
        email: Option<(&[u8], &[u8])>,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Replaces a user's credential and sets `updated_at`; `false` if there is no such
    /// user.
    async fn set_credential(
        &self,
        id: Uuid,
        credential: &[u8],
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Sets a user's `last_login_at` (a missing user is not an error).
    async fn record_login(&self, id: Uuid, now: i64) -> Result<(), StoreError>;

    /// Deletes a user and, through the foreign key, the user's sessions. Audit rows keep
    /// their `user_id`. `false` if there was no such user.
    async fn delete_user(&self, id: Uuid) -> Result<bool, StoreError>;

    /// Creates a session. The user must exist (a foreign-key violation is a
    /// [`StoreError::Database`]).
    async fn create_session(&self, s: &NewSession) -> Result<(), StoreError>;

    /// A new account in **one transaction** (one commit): the user, its first factors (the
    /// backup codes) and the audit event. A taken username or email is a
    /// [`StoreError::Conflict`] and writes nothing.
    async fn create_account(
        &self,
        user: &NewUser,
        factors: &[FactorRecord],
        audit: &NewAuditEvent,
    ) -> Result<(), StoreError>;

    /// Completed logins in **one transaction** (one commit): for each, creates the session,
    /// sets the user's `last_login_at` to the session's `created_at` and appends the audit
    /// event. Nothing is written if any part fails. [`GroupWriter`] batches logins into it.
    async fn create_login_sessions(&self, logins: &[LoginWrite]) -> Result<(), StoreError>;

    /// The session with this token hash, expired or not (the caller checks expiry).
    async fn session_by_token_hash(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<SessionRecord>, StoreError>;

    /// The session with this token hash and its owner's status (`None` if the owner is
    /// gone), in one read: what a refresh needs.
    async fn session_and_owner_by_token_hash(
        &self,
        token_hash: &[u8],
    ) -> Result<Option<(SessionRecord, Option<AccountStatus>)>, StoreError>;

    /// The session with this id, expired or not.
    async fn session_by_id(&self, id: Uuid) -> Result<Option<SessionRecord>, StoreError>;

    /// Records use of a session; `false` if there is no such session.
    async fn touch_session(
        &self,
        id: Uuid,
        last_seen_at: i64,
        idle_expires_at: i64,
    ) -> Result<bool, StoreError>;

    /// A user's sessions, newest (`created_at`) first.
    async fn sessions_for_user(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StoreError>;

    /// Deletes one session, only if it belongs to `user_id`; `false` otherwise.
    async fn delete_session(&self, user_id: Uuid, session_id: Uuid) -> Result<bool, StoreError>;

    /// Deletes all of a user's sessions except `except`, if given.
    async fn delete_sessions_for_user(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
    ) -> Result<u64, StoreError>;

    /// Deletes the sessions with `idle_expires_at <= now` or
    /// `absolute_expires_at <= now`.
    async fn delete_expired_sessions(&self, now: i64) -> Result<u64, StoreError>;

    /// Runs `writes` in order in **one transaction** (one commit): all of them or, if any
    /// fails, none. Returns the rows each write changed, in order. The lists an operation
    /// commits are built in [`writes`].
    async fn write_atomically(&self, writes: &[Write]) -> Result<Vec<u64>, StoreError>;

    /// Appends an audit event.
    async fn append_audit(&self, e: &NewAuditEvent) -> Result<(), StoreError>;

    /// Audit events matching the query, newest (`at`, then `id`) first.
    async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;

    /// Deletes audit events with `at < cutoff`.
    async fn delete_audit_before(&self, cutoff: i64) -> Result<u64, StoreError>;
}

/// Encodes session methods for the `methods` column (a JSON array of strings).
pub(crate) fn encode_methods(methods: &[String]) -> String {
    // Serialising a slice of strings cannot fail.
    serde_json::to_string(methods).unwrap_or_else(|_| "[]".to_owned())
}

/// Decodes the `methods` column.
pub(crate) fn decode_methods(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text)
        .map_err(|e| StoreError::Corrupt(format!("session methods {text:?}: {e}")))
}

/// Decodes the `status` column.
pub(crate) fn decode_status(text: &str) -> Result<AccountStatus, StoreError> {
    text.parse()
        .map_err(|e: UnknownStatus| StoreError::Corrupt(e.to_string()))
}

/// Decodes the `role` column.
pub(crate) fn decode_role(text: &str) -> Result<Role, StoreError> {
    [Role::User, Role::Admin]
        .into_iter()
        .find(|r| r.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt(format!("unknown role {text:?}")))
}

/// Converts a row count from the database.
pub(crate) fn count_to_u64(n: i64) -> Result<u64, StoreError> {
    u64::try_from(n).map_err(|_| StoreError::Corrupt(format!("negative count {n}")))
}
