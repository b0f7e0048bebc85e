//! Passkeys (WebAuthn credentials): one row each in `passkeys`.
//!
//! The layer above seals the credential and its label; this layer keeps the credential id
//! (unique across accounts, the key of a discoverable sign-in) and gives the one atomic
//! operation a use needs: [`PasskeyStore::record_passkey_use`], a compare-and-swap on the
//! signature counter, so two uses of one credential cannot both be recorded from the same
//! starting point.

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, StoreError};

/// One stored passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// The passkey's id in the API.
    pub id: Uuid,
    /// The owner.
    pub user_id: Uuid,
    /// The WebAuthn credential id (unique).
    pub credential_id: Vec<u8>,
    /// The sealed serialized credential.
    pub passkey: Vec<u8>,
    /// The sealed name.
    pub label: Vec<u8>,
    /// The signature counter of the last use.
    pub counter: i64,
    /// Whether the credential may be synced.
    pub backup_eligible: bool,
    /// Whether it was backed up at its last use.
    pub backup_state: bool,
    /// Registered (unix seconds).
    pub created_at: i64,
    /// Last used (unix seconds).
    pub last_used_at: Option<i64>,
}

/// What a verified use changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyUse {
    /// The counter the use was verified against (the compare of the compare-and-swap).
    pub expected_counter: i64,
    /// The new counter.
    pub counter: i64,
    /// The re-sealed credential with the new counter and flags.
    pub passkey: Vec<u8>,
    /// The new backup eligibility.
    pub backup_eligible: bool,
    /// The new backup state.
    pub backup_state: bool,
    /// When (unix seconds).
    pub now: i64,
}

/// The passkey part of the storage contract.
#[async_trait]
pub trait PasskeyStore: Send + Sync {
    /// Inserts a passkey; `false` if its credential id is already registered (to anyone).
    async fn insert_passkey(&self, p: &PasskeyRecord) -> Result<bool, StoreError>;
    /// A user's passkeys, oldest first.
    async fn passkeys_of(&self, user: Uuid) -> Result<Vec<PasskeyRecord>, StoreError>;
    /// The passkey with a credential id, whoever owns it.
    async fn passkey_by_credential(
        &self,
        credential_id: &[u8],
    ) -> Result<Option<PasskeyRecord>, StoreError>;
    /// Replaces a passkey's sealed label; `false` if the user has no such passkey.
    async fn rename_passkey(&self, user: Uuid, id: Uuid, label: &[u8]) -> Result<bool, StoreError>;
    /// Deletes one passkey; `false` if the user has no such passkey.
    async fn delete_passkey(&self, user: Uuid, id: Uuid) -> Result<bool, StoreError>;
    /// Records a verified use if the stored counter is still `expected_counter`; `false`
    /// otherwise (a parallel use won, or the passkey is gone).
    async fn record_passkey_use(&self, id: Uuid, u: &PasskeyUse) -> Result<bool, StoreError>;
}

const COLUMNS: &str = "id, user_id, credential_id, passkey, label, counter, backup_eligible, \
                       backup_state, created_at, last_used_at";

/// Generates the implementation for one backend: `$id` turns a `Uuid` into its bind value,
/// `$decode` reads an id column back.
macro_rules! passkey_store {
    ($store:ty, $db:ty, $id:ident, $decode:ident) => {
        impl $store {
            fn passkey_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> Result<PasskeyRecord, StoreError> {
                Ok(PasskeyRecord {
                    id: $decode(row, "id")?,
                    user_id: $decode(row, "user_id")?,
                    credential_id: row.try_get("credential_id")?,
                    passkey: row.try_get("passkey")?,
                    label: row.try_get("label")?,
                    counter: row.try_get("counter")?,
                    backup_eligible: row.try_get("backup_eligible")?,
                    backup_state: row.try_get("backup_state")?,
                    created_at: row.try_get("created_at")?,
                    last_used_at: row.try_get("last_used_at")?,
                })
            }
        }

        #[async_trait]
        impl PasskeyStore for $store {
            async fn insert_passkey(&self, p: &PasskeyRecord) -> Result<bool, StoreError> {
                let done = sqlx::query(&format!(
                    "INSERT INTO passkeys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, \
                     $9, $10) ON CONFLICT (credential_id) DO NOTHING"
                ))
                .bind($id(p.id))
                .bind($id(p.user_id))
                .bind(&p.credential_id)
                .bind(&p.passkey)
                .bind(&p.label)
                .bind(p.counter)
                .bind(p.backup_eligible)
                .bind(p.backup_state)
                .bind(p.created_at)
                .bind(p.last_used_at)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn passkeys_of(&self, user: Uuid) -> Result<Vec<PasskeyRecord>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM passkeys WHERE user_id = $1 ORDER BY created_at, id"
                ))
                .bind($id(user))
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::passkey_from_row).collect()
            }

            async fn passkey_by_credential(
                &self,
                credential_id: &[u8],
            ) -> Result<Option<PasskeyRecord>, StoreError> {
                let row = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM passkeys WHERE credential_id = $1"
                ))
                .bind(credential_id)
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(Self::passkey_from_row).transpose()
            }

            async fn rename_passkey(
                &self,
                user: Uuid,
                id: Uuid,
                label: &[u8],
            ) -> Result<bool, StoreError> {
                let done =
                    sqlx::query("UPDATE passkeys SET label = $3 WHERE user_id = $1 AND id = $2")
                        .bind($id(user))
                        .bind($id(id))
                        .bind(label)
                        .execute(self.writer())
                        .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn delete_passkey(&self, user: Uuid, id: Uuid) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM passkeys WHERE user_id = $1 AND id = $2")
                    .bind($id(user))
                    .bind($id(id))
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn record_passkey_use(
                &self,
                id: Uuid,
                u: &PasskeyUse,
            ) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE passkeys SET counter = $3, passkey = $4, backup_eligible = $5, \
                     backup_state = $6, last_used_at = $7 WHERE id = $1 AND counter = $2",
                )
                .bind($id(id))
                .bind(u.expected_counter)
                .bind(u.counter)
                .bind(&u.passkey)
                .bind(u.backup_eligible)
                .bind(u.backup_state)
                .bind(u.now)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }
        }
    };
}

fn sqlite_id(id: Uuid) -> String {
    id.hyphenated().to_string()
}

fn sqlite_decode(row: &sqlx::sqlite::SqliteRow, column: &str) -> Result<Uuid, StoreError> {
    let text: String = row.try_get(column)?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("passkeys.{column}: {e}")))
}

fn pg_id(id: Uuid) -> Uuid {
    id
}

fn pg_decode(row: &sqlx::postgres::PgRow, column: &str) -> Result<Uuid, StoreError> {
    Ok(row.try_get(column)?)
}

passkey_store!(SqliteStore, sqlx::Sqlite, sqlite_id, sqlite_decode);
passkey_store!(PostgresStore, sqlx::Postgres, pg_id, pg_decode);
