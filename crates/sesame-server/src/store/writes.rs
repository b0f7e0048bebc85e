//! Operations that change several rows commit them together: [`Store::write_atomically`]
//! runs a list of [`Write`]s in **one transaction** (one commit) on both backends, so a
//! crash or a failed statement half-way leaves nothing of the operation behind.
//!
//! The lists the service layer commits are built here, one function per operation, so the
//! writes of an operation are read in one place:
//!
//! * [`password_reset`]: account recovery — the new credential, every session revoked,
//!   fresh backup codes, the device-key requirement lifted.
//! * [`password_change`]: the new credential and, if asked, the other sessions revoked.
//! * [`status_change`]: a ban (which also revokes every session) or an unban.
//! * [`totp_activation`]: the confirmed TOTP secret becomes active, the pending one goes.
//! * [`second_factor_reset`]: an admin removes the TOTP secret and the device-key
//!   requirement.
//!
//! Account deletion (one `DELETE`, the rest follows through foreign keys), TOTP removal
//! (one `DELETE` of the kind) and backup-code regeneration ([`FactorStore::replace_factors`])
//! are single statements or already one transaction.
//!
//! [`Store::write_atomically`]: super::Store::write_atomically
//! [`FactorStore::replace_factors`]: super::FactorStore::replace_factors

use uuid::Uuid;

use super::{
    AccountStatus, FactorKind, FactorRecord, PostgresStore, Role, Slot, SqliteStore, StoreError,
};

/// One write of a multi-write operation (see [`Store::write_atomically`](super::Store::write_atomically)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Write {
    /// Replaces a user's credential and sets `updated_at`. Counts 1 if the user exists.
    SetCredential {
        /// The user.
        user: Uuid,
        /// The new credential.
        credential: Vec<u8>,
        /// The time of the change.
        now: i64,
    },
    /// Sets a user's status and `updated_at`. Counts 1 if the user exists.
    SetStatus {
        /// The user.
        user: Uuid,
        /// The new status.
        status: AccountStatus,
        /// The time of the change.
        now: i64,
    },
    /// Sets a user's role. Counts 1 if the user exists.
    SetRole {
        /// The user.
        user: Uuid,
        /// The new role.
        role: Role,
    },
    /// Deletes a user's sessions except `except`, if given. Counts the sessions deleted.
    DeleteSessions {
        /// The user.
        user: Uuid,
        /// A session to keep (the caller's own).
        except: Option<Uuid>,
    },
    /// Inserts or replaces one factor. Counts 1.
    PutFactor(FactorRecord),
    /// Deletes one slot (`Some`) or the whole kind (`None`). Counts the rows deleted.
    DeleteFactors {
        /// The user.
        user: Uuid,
        /// The factor kind.
        kind: FactorKind,
        /// One slot, or every slot of the kind.
        slot: Option<Slot>,
    },
    /// Deletes every passkey of a user. Counts the passkeys deleted.
    DeletePasskeys {
        /// The user.
        user: Uuid,
    },
    /// Replaces every factor of `kind` with `new` (their `user_id` and `kind` are set to
    /// these). Counts the factors inserted.
    ReplaceFactors {
        /// The user.
        user: Uuid,
        /// The factor kind.
        kind: FactorKind,
        /// The new set.
        new: Vec<FactorRecord>,
    },
}

/// Account recovery: the new credential, every session revoked (index 1 of the counts),
/// `backup_codes` replacing the old set and the `device_required` factor removed.
pub fn password_reset(
    user: Uuid,
    credential: Vec<u8>,
    backup_codes: Vec<FactorRecord>,
    now: i64,
) -> Vec<Write> {
    vec![
        Write::SetCredential {
            user,
            credential,
            now,
        },
        Write::DeleteSessions { user, except: None },
        Write::ReplaceFactors {
            user,
            kind: FactorKind::BackupCode,
            new: backup_codes,
        },
        Write::DeleteFactors {
            user,
            kind: FactorKind::DeviceRequired,
            slot: None,
        },
        Write::DeleteFactors {
            user,
            kind: FactorKind::ResetCode,
            slot: None,
        },
    ]
}

/// Password change: the new credential and, when `revoke_except` is given, every session but
/// that one revoked (index 1 of the counts).
pub fn password_change(
    user: Uuid,
    credential: Vec<u8>,
    revoke_except: Option<Uuid>,
    now: i64,
) -> Vec<Write> {
    let mut writes = vec![Write::SetCredential {
        user,
        credential,
        now,
    }];
    if let Some(keep) = revoke_except {
        writes.push(Write::DeleteSessions {
            user,
            except: Some(keep),
        });
    }
    writes
}

/// A status change; a ban also revokes every session (index 1 of the counts).
pub fn status_change(user: Uuid, status: AccountStatus, now: i64) -> Vec<Write> {
    let mut writes = vec![Write::SetStatus { user, status, now }];
    if status == AccountStatus::Banned {
        writes.push(Write::DeleteSessions { user, except: None });
    }
    writes
}

/// An admin's reset of a user's second factors: the TOTP secrets (active and pending), the
/// device-key requirement, the passkeys and the passkey requirement removed, so that the
/// password alone logs in. The backup codes and device keys stay (they are only asked for
/// with a second factor or the requirement). Counts the TOTP rows (index 0), the device
/// requirement (1), the passkeys (2) and the passkey requirement (3) removed.
pub fn second_factor_reset(user: Uuid) -> Vec<Write> {
    vec![
        Write::DeleteFactors {
            user,
            kind: FactorKind::Totp,
            slot: None,
        },
        Write::DeleteFactors {
            user,
            kind: FactorKind::DeviceRequired,
            slot: None,
        },
        Write::DeletePasskeys { user },
        Write::DeleteFactors {
            user,
            kind: FactorKind::PhishingResistantRequired,
            slot: None,
        },
    ]
}

/// TOTP confirmation: `active` (slot `active`) stored, the pending secret removed.
pub fn totp_activation(active: FactorRecord) -> Vec<Write> {
    let user = active.user_id;
    let kind = active.kind;
    vec![
        Write::PutFactor(active),
        Write::DeleteFactors {
            user,
            kind,
            slot: Some(Slot::Pending),
        },
    ]
}

/// Generates, for one backend, the inherent `apply_writes` that
/// [`Store::write_atomically`](super::Store::write_atomically) calls: `$id` turns a `Uuid`
/// into its bind value.
macro_rules! atomic_writes {
    ($store:ty, $id:path) => {
        impl $store {
            /// Runs `writes` in order in one transaction; rows counted per write.
            pub(super) async fn apply_writes(
                &self,
                writes: &[Write],
            ) -> Result<Vec<u64>, StoreError> {
                let mut tx = self.begin_write().await?;
                let mut counts = Vec::with_capacity(writes.len());
                for w in writes {
                    let n = match w {
                        Write::SetCredential {
                            user,
                            credential,
                            now,
                        } => sqlx::query(
                            "UPDATE users SET credential = $1, updated_at = $2 WHERE id = $3",
                        )
                        .bind(credential)
                        .bind(now)
                        .bind($id(*user))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                        Write::SetStatus { user, status, now } => sqlx::query(
                            "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3",
                        )
                        .bind(status.as_str())
                        .bind(now)
                        .bind($id(*user))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected(),
                        Write::SetRole { user, role } => {
                            sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                                .bind(role.as_str())
                                .bind($id(*user))
                                .execute(&mut *tx)
                                .await?
                                .rows_affected()
                        }
                        Write::DeleteSessions { user, except } => {
                            // A nil id matches no session, so one statement serves both cases.
                            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND id <> $2")
                                .bind($id(*user))
                                .bind($id(except.unwrap_or(Uuid::nil())))
                                .execute(&mut *tx)
                                .await?
                                .rows_affected()
                        }
                        Write::DeletePasskeys { user } => {
                            sqlx::query("DELETE FROM passkeys WHERE user_id = $1")
                                .bind($id(*user))
                                .execute(&mut *tx)
                                .await?
                                .rows_affected()
                        }
                        Write::PutFactor(f) => {
                            Self::upsert_factor(&mut *tx, f).await?;
                            1
                        }
                        Write::DeleteFactors { user, kind, slot } => {
                            Self::remove_factors(&mut *tx, *user, *kind, slot.as_ref()).await?
                        }
                        Write::ReplaceFactors { user, kind, new } => {
                            Self::remove_factors(&mut *tx, *user, *kind, None).await?;
                            let new: Vec<FactorRecord> = new
                                .iter()
                                .map(|f| FactorRecord {
                                    user_id: *user,
                                    kind: *kind,
                                    ..f.clone()
                                })
                                .collect();
                            Self::insert_factors(&mut *tx, &new).await?;
                            new.len() as u64
                        }
                    };
                    counts.push(n);
                }
                tx.commit().await?;
                Ok(counts)
            }
        }
    };
}

atomic_writes!(SqliteStore, super::sqlite::bind_id);
atomic_writes!(PostgresStore, super::postgres::bind_id);
