//! Per-user factors: one table (`user_factors`) for everything a user has several kinds of —
//! the TOTP secret, backup codes, security questions, the profile, device and identity keys.
//!
//! A row is addressed by (user, kind, slot). The layer above seals or hashes `value`; this
//! layer gives the two atomic operations single-use factors need:
//! [`FactorStore::use_factor`] (consume once) and [`FactorStore::advance_counter`] (a
//! strictly increasing counter, for TOTP replay protection).

use async_trait::async_trait;
use sqlx::Row;
use uuid::Uuid;

use super::{PostgresStore, SqliteStore, StoreError};

/// What a stored factor is. Stored as the text of [`FactorKind::as_str`]; an unknown value
/// read back is reported as [`StoreError::Corrupt`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FactorKind {
    /// A TOTP secret (slots `active` and `pending`).
    Totp,
    /// A backup code (slot: a keyed hash of the code).
    BackupCode,
    /// A security question with its hashed answer (slot: its position).
    SecurityQuestion,
    /// The public profile (one slot).
    Profile,
    /// The published messaging identity (one slot).
    Identity,
    /// The encrypted key backup (one slot).
    KeyBackup,
    /// A device key for login signatures (slot: the device id).
    DeviceKey,
    /// Whether logins need a device key (one slot).
    DeviceRequired,
    /// Whether the second factor must be phishing-resistant: a passkey (one slot).
    PhishingResistantRequired,
    /// A one-time password-reset code an operator issued (slot: its keyed hash; value: its
    /// expiry, unix seconds, big-endian).
    ResetCode,
}

impl FactorKind {
    /// Every kind.
    pub const ALL: [FactorKind; 10] = [
        FactorKind::Totp,
        FactorKind::BackupCode,
        FactorKind::SecurityQuestion,
        FactorKind::Profile,
        FactorKind::Identity,
        FactorKind::KeyBackup,
        FactorKind::DeviceKey,
        FactorKind::DeviceRequired,
        FactorKind::PhishingResistantRequired,
        FactorKind::ResetCode,
    ];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::BackupCode => "backup_code",
            FactorKind::SecurityQuestion => "security_question",
            FactorKind::Profile => "profile",
            FactorKind::Identity => "identity",
            FactorKind::KeyBackup => "key_backup",
            FactorKind::DeviceKey => "device_key",
            FactorKind::DeviceRequired => "device_required",
            FactorKind::PhishingResistantRequired => "phishing_resistant_required",
            FactorKind::ResetCode => "reset_code",
        }
    }

    /// The kind stored as `text`.
    pub fn parse(text: &str) -> Result<FactorKind, StoreError> {
        FactorKind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown factor kind {text:?}")))
    }
}

/// Which row of a kind a factor is. Stored as the text of [`Slot::stored`]; read back with
/// [`Slot::parse`], which knows what each kind's slots look like.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Slot {
    /// The kind's only row (profile, identity, key backup, device requirement).
    Only,
    /// The TOTP secret in use.
    Active,
    /// A TOTP secret awaiting its first code.
    Pending,
    /// The n-th item (security questions).
    Position(u32),
    /// An item named by a key: a backup code's keyed hash, a device id.
    Key(String),
}

impl Slot {
    /// The stored text.
    pub fn stored(&self) -> String {
        match self {
            Slot::Only => String::new(),
            Slot::Active => "active".into(),
            Slot::Pending => "pending".into(),
            Slot::Position(n) => n.to_string(),
            Slot::Key(k) => k.clone(),
        }
    }

    /// The slot of a `kind` row stored as `text`.
    pub fn parse(kind: FactorKind, text: &str) -> Result<Slot, StoreError> {
        let corrupt = || StoreError::Corrupt(format!("bad {} slot {text:?}", kind.as_str()));
        match kind {
            FactorKind::Totp => match text {
                "active" => Ok(Slot::Active),
                "pending" => Ok(Slot::Pending),
                _ => Err(corrupt()),
            },
            FactorKind::SecurityQuestion => text.parse().map(Slot::Position).map_err(|_| corrupt()),
            FactorKind::BackupCode | FactorKind::DeviceKey | FactorKind::ResetCode => {
                Ok(Slot::Key(text.to_owned()))
            }
            _ if text.is_empty() => Ok(Slot::Only),
            _ => Err(corrupt()),
        }
    }
}

/// One stored factor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactorRecord {
    /// The owner.
    pub user_id: Uuid,
    /// What it is.
    pub kind: FactorKind,
    /// Which one of that kind (a position, a hash, a key id, or empty).
    pub slot: Slot,
    /// The sealed or hashed value.
    pub value: Vec<u8>,
    /// A monotonic counter (the last TOTP step accepted).
    pub counter: i64,
    /// Created (unix seconds).
    pub created_at: i64,
    /// When it was consumed, for single-use factors.
    pub used_at: Option<i64>,
}

/// The factor part of the storage contract.
#[async_trait]
pub trait FactorStore: Send + Sync {
    /// Inserts or replaces one factor.
    async fn put_factor(&self, f: &FactorRecord) -> Result<(), StoreError>;
    /// One factor.
    async fn factor(
        &self,
        user: Uuid,
        kind: FactorKind,
        slot: &Slot,
    ) -> Result<Option<FactorRecord>, StoreError>;
    /// Every factor of a kind, by slot.
    async fn factors(&self, user: Uuid, kind: FactorKind) -> Result<Vec<FactorRecord>, StoreError>;
    /// Removes one slot (`Some`) or the whole kind (`None`); returns how many rows.
    async fn delete_factors(
        &self,
        user: Uuid,
        kind: FactorKind,
        slot: Option<&Slot>,
    ) -> Result<u64, StoreError>;
    /// Replaces every factor of `kind` with `new`, atomically (a regenerated set of backup
    /// codes never coexists with the old one).
    async fn replace_factors(
        &self,
        user: Uuid,
        kind: FactorKind,
        new: &[FactorRecord],
    ) -> Result<(), StoreError>;
    /// Marks an unused factor used; `false` if it does not exist or was already used. Two
    /// parallel calls never both get `true`.
    async fn use_factor(
        &self,
        user: Uuid,
        kind: FactorKind,
        slot: &Slot,
        now: i64,
    ) -> Result<bool, StoreError>;
    /// Raises the counter to `to` if it is lower; `false` otherwise (a replayed TOTP step).
    async fn advance_counter(
        &self,
        user: Uuid,
        kind: FactorKind,
        slot: &Slot,
        to: i64,
    ) -> Result<bool, StoreError>;
}

const COLUMNS: &str = "user_id, kind, slot, value, counter, created_at, used_at";

/// Generates the implementation for one backend: `$id` turns a `Uuid` into its bind value,
/// `$decode` reads the user id column back.
macro_rules! factor_store {
    ($store:ty, $db:ty, $id:ident, $decode:ident) => {
        impl $store {
            fn factor_from_row(row: &<$db as sqlx::Database>::Row) -> Result<FactorRecord, StoreError> {
                let kind = FactorKind::parse(row.try_get::<&str, _>("kind")?)?;
                Ok(FactorRecord {
                    user_id: $decode(row)?,
                    kind,
                    slot: Slot::parse(kind, row.try_get::<&str, _>("slot")?)?,
                    value: row.try_get("value")?,
                    counter: row.try_get("counter")?,
                    created_at: row.try_get("created_at")?,
                    used_at: row.try_get("used_at")?,
                })
            }

            /// Inserts `factors` (none may exist yet) in one statement.
            pub(super) async fn insert_factors<'e, E>(
                executor: E,
                factors: &[FactorRecord],
            ) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                if factors.is_empty() {
                    return Ok(());
                }
                let mut q = sqlx::QueryBuilder::<$db>::new(format!(
                    "INSERT INTO user_factors ({COLUMNS}) "
                ));
                q.push_values(factors, |mut row, f| {
                    row.push_bind($id(f.user_id))
                        .push_bind(f.kind.as_str())
                        .push_bind(f.slot.stored())
                        .push_bind(f.value.clone())
                        .push_bind(f.counter)
                        .push_bind(f.created_at)
                        .push_bind(f.used_at);
                });
                q.build().execute(executor).await?;
                Ok(())
            }

            /// Inserts or replaces one factor.
            pub(super) async fn upsert_factor<'e, E>(executor: E, f: &FactorRecord) -> Result<(), StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                sqlx::query(&format!(
                    "INSERT INTO user_factors ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
                     ON CONFLICT (user_id, kind, slot) DO UPDATE SET value = excluded.value, \
                     counter = excluded.counter, created_at = excluded.created_at, \
                     used_at = excluded.used_at"
                ))
                .bind($id(f.user_id))
                .bind(f.kind.as_str())
                .bind(f.slot.stored())
                .bind(&f.value)
                .bind(f.counter)
                .bind(f.created_at)
                .bind(f.used_at)
                .execute(executor)
                .await?;
                Ok(())
            }

            /// Deletes one slot (`Some`) or the whole kind (`None`); returns how many rows.
            pub(super) async fn remove_factors<'e, E>(
                executor: E,
                user: Uuid,
                kind: FactorKind,
                slot: Option<&Slot>,
            ) -> Result<u64, StoreError>
            where
                E: sqlx::Executor<'e, Database = $db>,
            {
                let done = match slot {
                    Some(slot) => sqlx::query(
                        "DELETE FROM user_factors WHERE user_id = $1 AND kind = $2 AND slot = $3",
                    )
                    .bind($id(user))
                    .bind(kind.as_str())
                    .bind(slot.stored())
                    .execute(executor)
                    .await?,
                    None => sqlx::query("DELETE FROM user_factors WHERE user_id = $1 AND kind = $2")
                        .bind($id(user))
                        .bind(kind.as_str())
                        .execute(executor)
                        .await?,
                };
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl FactorStore for $store {
            async fn put_factor(&self, f: &FactorRecord) -> Result<(), StoreError> {
                Self::upsert_factor(self.writer(), f).await
            }

            async fn factor(&self, user: Uuid, kind: FactorKind, slot: &Slot) -> Result<Option<FactorRecord>, StoreError> {
                let row = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM user_factors WHERE user_id = $1 AND kind = $2 AND slot = $3"
                ))
                .bind($id(user))
                .bind(kind.as_str())
                .bind(slot.stored())
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(Self::factor_from_row).transpose()
            }

            async fn factors(&self, user: Uuid, kind: FactorKind) -> Result<Vec<FactorRecord>, StoreError> {
                let rows = sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM user_factors WHERE user_id = $1 AND kind = $2 ORDER BY slot"
                ))
                .bind($id(user))
                .bind(kind.as_str())
                .fetch_all(self.pool())
                .await?;
                rows.iter().map(Self::factor_from_row).collect()
            }

            async fn delete_factors(&self, user: Uuid, kind: FactorKind, slot: Option<&Slot>) -> Result<u64, StoreError> {
                Self::remove_factors(self.writer(), user, kind, slot).await
            }

            async fn replace_factors(&self, user: Uuid, kind: FactorKind, new: &[FactorRecord]) -> Result<(), StoreError> {
                let mut tx = self.begin_write().await?;
                Self::remove_factors(&mut *tx, user, kind, None).await?;
                let new: Vec<FactorRecord> = new
                    .iter()
                    .map(|f| FactorRecord {
                        user_id: user,
                        kind,
                        ..f.clone()
                    })
                    .collect();
                Self::insert_factors(&mut *tx, &new).await?;
                tx.commit().await?;
                Ok(())
            }

            async fn use_factor(&self, user: Uuid, kind: FactorKind, slot: &Slot, now: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE user_factors SET used_at = $4 \
                     WHERE user_id = $1 AND kind = $2 AND slot = $3 AND used_at IS NULL",
                )
                .bind($id(user))
                .bind(kind.as_str())
                .bind(slot.stored())
                .bind(now)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn advance_counter(&self, user: Uuid, kind: FactorKind, slot: &Slot, to: i64) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "UPDATE user_factors SET counter = $4 \
                     WHERE user_id = $1 AND kind = $2 AND slot = $3 AND counter < $4",
                )
                .bind($id(user))
                .bind(kind.as_str())
                .bind(slot.stored())
                .bind(to)
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

fn sqlite_user(row: &sqlx::sqlite::SqliteRow) -> Result<Uuid, StoreError> {
    let text: String = row.try_get("user_id")?;
    Uuid::parse_str(&text).map_err(|e| StoreError::Corrupt(format!("user_factors.user_id: {e}")))
}

fn pg_id(id: Uuid) -> Uuid {
    id
}

fn pg_user(row: &sqlx::postgres::PgRow) -> Result<Uuid, StoreError> {
    Ok(row.try_get("user_id")?)
}

factor_store!(SqliteStore, sqlx::Sqlite, sqlite_id, sqlite_user);
factor_store!(PostgresStore, sqlx::Postgres, pg_id, pg_user);
