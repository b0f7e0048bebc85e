//! The key directory and the key backup of end-to-end messaging.
//!
//! * **Identity** (factor kind `identity`, one per user): the public Ed25519 signing key, the
//!   public X25519 encryption key and the signature of the latter by the former. The server
//!   checks the signature (strict Ed25519, no small-order keys) before storing, and publishes
//!   the identity at `GET /api/keys/{username}`. It is stored sealed under the field key with
//!   the user's id as associated data, so someone who can write the database but lacks the
//!   master key cannot substitute another user's keys.
//! * **Backup** (factor kind `key_backup`): the client's private keys encrypted under a key
//!   derived from OPAQUE's export key, which the server never learns; stored and returned as
//!   is, at most [`MAX_BACKUP_BYTES`].
//!
//! Audit events: `keys.updated`, `keys.backup_updated`.

use sesame_proto::b64;
use sesame_proto::e2e::PublicIdentity;
use sesame_proto::policy::Username;
use uuid::Uuid;

use super::stand_in::STAND_IN_ID;
use super::{Authenticated, RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::{FactorKind, Slot};
use crate::store::{FactorRecord, UserRecord};

pub use sesame_api::messaging::IdentityUpload;
pub use sesame_api::messaging::PublishedIdentity;

/// Factor kind of a user's public identity keys.
pub const KIND_IDENTITY: FactorKind = FactorKind::Identity;
/// Factor kind of a user's encrypted key backup.
pub const KIND_KEY_BACKUP: FactorKind = FactorKind::KeyBackup;
/// Largest key backup accepted, bytes (decoded).
pub use sesame_api::messaging::MAX_BACKUP_BYTES;

fn invalid_identity() -> ApiError {
    ApiError::new(
        InputError::InvalidIdentity,
        "The identity keys do not decode, or the signature over the encryption key does not \
         verify.",
    )
}

fn keys_not_found() -> ApiError {
    ApiError::new(InputError::KeysNotFound, "No identity keys for that user.")
}

fn fixed<const N: usize>(text: &str) -> Result<[u8; N], ApiError> {
    b64::decode(text)
        .and_then(|v| <[u8; N]>::try_from(v).ok())
        .ok_or_else(invalid_identity)
}

const IDENTITY_FIELD: &str = "factor:identity";

impl Sesame {
    /// The user called `name` (any spelling that canonicalises to it) with the canonical name;
    /// `None` for an unknown or invalid name.
    pub(crate) async fn user_by_name(
        &self,
        name: &str,
    ) -> Result<Option<(UserRecord, Username)>, ApiError> {
        let Ok(username) = Username::parse(name) else {
            return Ok(None);
        };
        let index = self.username_index(username.as_str());
        Ok(self
            .inner
            .store
            .user_by_index(&index)
            .await?
            .map(|u| (u, username)))
    }

    /// Opens a sealed username (`users.username_sealed`, or its copy in a message).
    pub(crate) fn open_username(&self, user_id: Uuid, sealed: &[u8]) -> Option<String> {
        self.inner
            .secrets
            .fields
            .open("username", user_id.as_bytes(), sealed)
    }

    /// Publishes (or replaces) the caller's identity keys after checking the signature.
    pub async fn put_identity(
        &self,
        who: &Authenticated,
        req: &IdentityUpload,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let identity = checked_identity(req)?;
        self.publish_identity(who.user_id, &identity, ctx).await
    }

    /// Publishes `identity` (already checked) for the account `user_id`.
    pub(crate) async fn publish_identity(
        &self,
        user_id: Uuid,
        identity: &PublicIdentity,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let who = user_id;
        let json = serde_json::to_string(&identity).map_err(ApiError::internal)?;
        let value = self
            .inner
            .secrets
            .fields
            .seal(IDENTITY_FIELD, who.as_bytes(), &json);
        self.inner
            .store
            .put_factor(&FactorRecord {
                user_id: who,
                kind: KIND_IDENTITY,
                slot: Slot::Only,
                value,
                counter: 0,
                created_at: self.now_i64(),
                used_at: None,
            })
            .await?;
        self.audit(
            "keys.updated",
            Some(who),
            Some(format!("fingerprint={}", identity.fingerprint())),
            ctx,
        )
        .await;
        Ok(())
    }

    /// The published identity of `username`; 404 `keys_not_found` for an unknown user and a
    /// user without keys alike.
    /// An unknown name costs the same lookups: the keys of an id no account has.
    pub async fn identity_of(&self, username: &str) -> Result<PublishedIdentity, ApiError> {
        let found = self.user_by_name(username).await?;
        let id = found.as_ref().map_or(STAND_IN_ID, |(u, _)| u.id);
        let factor = self
            .inner
            .store
            .factor(id, KIND_IDENTITY, &Slot::Only)
            .await?;
        let (Some((user, name)), Some(f)) = (found, factor) else {
            return Err(keys_not_found());
        };
        let identity: PublicIdentity = self
            .inner
            .secrets
            .fields
            .open(IDENTITY_FIELD, user.id.as_bytes(), &f.value)
            .and_then(|json| serde_json::from_str(&json).ok())
            .ok_or_else(|| ApiError::internal(format!("identity of {} does not open", user.id)))?;
        Ok(PublishedIdentity {
            username: name.as_str().to_owned(),
            user_id: user.id,
            signing_key: b64::encode(identity.signing_key),
            encryption_key: b64::encode(identity.encryption_key),
            encryption_key_signature: b64::encode(identity.encryption_key_signature),
            updated_at: f.created_at,
        })
    }

    /// Stores (or replaces) the caller's encrypted key backup.
    pub async fn put_key_backup(
        &self,
        who: &Authenticated,
        blob: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let bytes = checked_backup(blob)?;
        self.store_key_backup(who.user_id, bytes, ctx).await
    }

    /// Stores `bytes` (already checked) as the key backup of the account `user_id`.
    pub(crate) async fn store_key_backup(
        &self,
        user_id: Uuid,
        bytes: Vec<u8>,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.inner
            .store
            .put_factor(&FactorRecord {
                user_id,
                kind: KIND_KEY_BACKUP,
                slot: Slot::Only,
                value: bytes,
                counter: 0,
                created_at: self.now_i64(),
                used_at: None,
            })
            .await?;
        self.audit("keys.backup_updated", Some(user_id), None, ctx)
            .await;
        Ok(())
    }

    /// The caller's encrypted key backup (base64url); 404 `backup_not_found`.
    pub async fn key_backup(&self, who: &Authenticated) -> Result<String, ApiError> {
        match self
            .inner
            .store
            .factor(who.user_id, KIND_KEY_BACKUP, &Slot::Only)
            .await?
        {
            Some(f) => Ok(b64::encode(f.value)),
            None => Err(ApiError::new(
                InputError::BackupNotFound,
                "No key backup stored.",
            )),
        }
    }
}

/// A published identity from its upload, with the signature checked (`invalid_identity`).
pub(crate) fn checked_identity(req: &IdentityUpload) -> Result<PublicIdentity, ApiError> {
    let identity = PublicIdentity {
        signing_key: fixed::<32>(&req.signing_key)?,
        encryption_key: fixed::<32>(&req.encryption_key)?,
        encryption_key_signature: fixed::<64>(&req.encryption_key_signature)?,
    };
    identity.verify().map_err(|_| invalid_identity())?;
    Ok(identity)
}

/// A key backup's bytes: non-empty base64url of at most [`MAX_BACKUP_BYTES`].
pub(crate) fn checked_backup(blob: &str) -> Result<Vec<u8>, ApiError> {
    let Some(bytes) = b64::decode(blob).filter(|b| !b.is_empty()) else {
        return Err(ApiError::new(
            InputError::InvalidBackup,
            "The backup must be non-empty base64url.",
        ));
    };
    if bytes.len() > MAX_BACKUP_BYTES {
        return Err(ApiError::new(
            InputError::BackupTooLarge,
            format!("Key backups are limited to {MAX_BACKUP_BYTES} bytes."),
        ));
    }
    Ok(bytes)
}

/// The messaging keys a registration carried, checked before the account is created
/// ([`Sesame::check_registration_keys`]) and published once it exists.
#[derive(Debug, Default)]
pub struct RegistrationKeys {
    identity: Option<PublicIdentity>,
    backup: Option<Vec<u8>>,
}

impl Sesame {
    /// Checks the identity and backup of a registration (`invalid_identity`,
    /// `invalid_backup`, `backup_too_large`) before anything is stored.
    pub fn check_registration_keys(
        identity: Option<&IdentityUpload>,
        backup: Option<&sesame_api::messaging::KeyBackup>,
    ) -> Result<RegistrationKeys, ApiError> {
        Ok(RegistrationKeys {
            identity: identity.map(checked_identity).transpose()?,
            backup: backup.map(|b| checked_backup(&b.blob)).transpose()?,
        })
    }

    /// Publishes the checked keys of a registration for the new account `user_id`. A failure
    /// here does not undo the registration: the client publishes them at its first login.
    pub async fn publish_registration_keys(
        &self,
        user_id: Uuid,
        keys: RegistrationKeys,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        if let Some(identity) = &keys.identity {
            self.publish_identity(user_id, identity, ctx).await?;
        }
        if let Some(backup) = keys.backup {
            self.store_key_backup(user_id, backup, ctx).await?;
        }
        Ok(())
    }
}
