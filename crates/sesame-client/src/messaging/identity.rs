//! This user's identity keys: made, restored from the device or the server backup, published
//! and re-wrapped after a password change.

use rand_core::OsRng;
use sesame_proto::e2e::{IdentityKeys, PublicIdentity, WrapKey};

use crate::profile::{unix_now, StoredSession};

use super::{KeyDirectory, MessagingError, MessagingStore};

/// Where [`ensure_identity`] found the identity keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdentitySource {
    /// On this device.
    Device,
    /// In the server-side backup (a new device, or this device's copy was stale).
    Backup,
    /// Nowhere: new keys were made.
    Created,
}

/// What [`ensure_identity`] did.
#[derive(Debug, Clone)]
pub struct IdentityReport {
    /// Where the keys came from.
    pub source: IdentitySource,
    /// The public identity now in use.
    pub public: PublicIdentity,
    /// Whether the public keys were (re)published (`PUT /api/keys`).
    pub published: bool,
    /// Whether the backup was (re)uploaded (`PUT /api/keys/backup`).
    pub backed_up: bool,
    /// Things the user must know (e.g. keys replaced: contacts will see a key change).
    pub warnings: Vec<String>,
}

/// Makes identity keys for a user who just registered and keeps them on this device,
/// wrapped under the [`WrapKey`] of `export_key` (publishing needs a login: the next
/// [`ensure_identity`] does it). Keys already stored for the user are replaced.
pub fn create_identity(
    store: &MessagingStore,
    server: &str,
    username: &str,
    export_key: &[u8; 64],
) -> Result<PublicIdentity, MessagingError> {
    let keys = IdentityKeys::generate(&mut OsRng);
    keep_identity(store, server, username, export_key, &keys)
}

/// Stores `keys` on this device for `username` on `server`, wrapped under `export_key` (after
/// a registration that already published them, `Client::register_with_identity`).
pub fn keep_identity(
    store: &MessagingStore,
    server: &str,
    username: &str,
    export_key: &[u8; 64],
    keys: &IdentityKeys,
) -> Result<PublicIdentity, MessagingError> {
    let wrap = WrapKey::derive(export_key);
    Ok(store
        .save_identity(server, username, keys, &wrap, unix_now())?
        .public)
}

/// Runs after a login: settles which identity keys this user has, publishes them and their
/// backup when the server lacks them, stores them on this device and keeps the [`WrapKey`]
/// of this login (bound to `session.session_id`).
///
/// Order of preference: the keys the server publishes, if this device or the backup has
/// their private half; else this device's keys; else the backup's; else new keys. Replacing
/// keys that were published is reported in [`IdentityReport::warnings`] (contacts will see
/// a key change).
pub async fn ensure_identity(
    store: &MessagingStore,
    directory: &KeyDirectory,
    session: &StoredSession,
    export_key: &[u8; 64],
) -> Result<IdentityReport, MessagingError> {
    let (server, username, token) = (&session.server, &session.username, &session.access_token);
    let wrap = WrapKey::derive(export_key);
    let mut warnings = Vec::new();

    let local = device_identity(store, server, username, &wrap, &mut warnings)?;
    let backup_blob = directory.download_backup(token).await?;
    let backup = backup_blob
        .as_ref()
        .and_then(|blob| backup_identity(blob, &wrap, &mut warnings));
    let published = directory
        .lookup(token, username)
        .await?
        .map(|entry| entry.identity);

    let matches_published =
        |k: &Option<IdentityKeys>| matches!((k, &published), (Some(k), Some(p)) if k.matches(p));
    let (keys, source) = if matches_published(&local) {
        (local.clone().expect("matched"), IdentitySource::Device)
    } else if matches_published(&backup) {
        (backup.clone().expect("matched"), IdentitySource::Backup)
    } else if let Some(keys) = local.clone() {
        (keys, IdentitySource::Device)
    } else if let Some(keys) = backup.clone() {
        (keys, IdentitySource::Backup)
    } else {
        (IdentityKeys::generate(&mut OsRng), IdentitySource::Created)
    };
    let public = keys.public();

    let mut did_publish = false;
    match &published {
        Some(p) if p.same_keys(&public) => {}
        other => {
            if let Some(old) = other {
                warnings.push(format!(
                    "replacing the published keys {} with {}: your contacts will see a key \
                     change and should verify the new safety number",
                    old.fingerprint(),
                    public.fingerprint()
                ));
            }
            directory.publish(token, &public).await?;
            did_publish = true;
        }
    }
    let backup_current = backup.as_ref().is_some_and(|b| b.matches(&public));
    if !backup_current {
        directory
            .upload_backup(token, &wrap.wrap_identity(&mut OsRng, &keys))
            .await?;
    }
    let local_current = local.as_ref().is_some_and(|l| l.matches(&public));
    if !local_current {
        store.save_identity(server, username, &keys, &wrap, unix_now())?;
    }
    store.save_unlock(server, username, session.session_id, &wrap)?;
    Ok(IdentityReport {
        source,
        public,
        published: did_publish,
        backed_up: !backup_current,
        warnings,
    })
}

/// This device's identity keys for `username` on `server`, if they open with `wrap`;
/// a warning otherwise.
fn device_identity(
    store: &MessagingStore,
    server: &str,
    username: &str,
    wrap: &WrapKey,
    warnings: &mut Vec<String>,
) -> Result<Option<IdentityKeys>, MessagingError> {
    Ok(match store.load_identity(server, username)? {
        None => None,
        Some(stored) => match wrap.unwrap_identity(stored.wrapped.as_slice()) {
            Ok(keys) if keys.matches(&stored.public) => Some(keys),
            _ => {
                warnings.push(format!(
                    "the identity keys stored on this device ({}) do not open with this \
                     password; ignoring them",
                    store.identity_path(server, username).display()
                ));
                None
            }
        },
    })
}

/// The identity keys in the server-side backup `blob`, if it opens with `wrap`; a warning
/// otherwise.
fn backup_identity(
    blob: &[u8],
    wrap: &WrapKey,
    warnings: &mut Vec<String>,
) -> Option<IdentityKeys> {
    match wrap.unwrap_identity(blob) {
        Ok(keys) => Some(keys),
        Err(_) => {
            warnings.push(
                "the key backup on the server does not open with this password; it will \
                 be replaced"
                    .into(),
            );
            None
        }
    }
}

/// After a password change (e.g. `Client::change_password`): finds this user's identity keys
/// (unlocked by the current login on this device, else with `previous_export_key` from this
/// device or the server backup), re-wraps them under `new_export_key`, uploads the new backup
/// and keeps the new [`WrapKey`] for `session` (the session that changed the password; pass
/// the new one if the change issued one), and re-encrypts this device's conversation histories
/// under the new key. Returns `false` when no identity could be found (the next login makes or
/// restores one).
pub async fn rewrap_for_new_password(
    store: &MessagingStore,
    directory: &KeyDirectory,
    session: &StoredSession,
    previous_export_key: Option<&[u8; 64]>,
    new_export_key: &[u8; 64],
) -> Result<bool, MessagingError> {
    let (server, username) = (&session.server, &session.username);
    let stored = store.load_identity(server, username)?;
    let mut keys = None;
    // The key the device's files are wrapped under now (the histories are re-keyed from it).
    let mut old_wrap = None;
    if let (Some(stored), Some(wrap)) = (
        &stored,
        store.load_unlock(server, username, session.session_id)?,
    ) {
        keys = wrap.unwrap_identity(stored.wrapped.as_slice()).ok();
        old_wrap = keys.is_some().then_some(wrap);
    }
    if let Some(old) = previous_export_key {
        let old = WrapKey::derive(old);
        if keys.is_none() {
            keys = stored
                .as_ref()
                .and_then(|s| old.unwrap_identity(s.wrapped.as_slice()).ok());
        }
        if keys.is_none() {
            if let Some(blob) = directory.download_backup(&session.access_token).await? {
                keys = old.unwrap_identity(&blob).ok();
            }
        }
        old_wrap = old_wrap.or(Some(old));
    }
    let Some(keys) = keys else {
        return Ok(false);
    };
    let wrap = WrapKey::derive(new_export_key);
    if let Some(old_wrap) = &old_wrap {
        // Histories that do not open under the old key are set aside (`take_set_aside`).
        store.rekey_history(old_wrap, &wrap, server, username)?;
    }
    directory
        .upload_backup(
            &session.access_token,
            &wrap.wrap_identity(&mut OsRng, &keys),
        )
        .await?;
    store.save_identity(server, username, &keys, &wrap, unix_now())?;
    store.save_unlock(server, username, session.session_id, &wrap)?;
    Ok(true)
}

/// The identity keys this device can unlock for `session`'s account without the password:
/// the stored identity, opened with the wrap key the current login keeps (see
/// [`MessagingStore::load_unlock`]). With them, a recovery (which forgets the old password)
/// keeps the identity ([`keep_through_recovery`]). `None` when this device cannot.
pub fn unlockable_identity(
    store: &MessagingStore,
    session: &StoredSession,
) -> Result<Option<(IdentityKeys, WrapKey)>, MessagingError> {
    let (server, username) = (&session.server, &session.username);
    let Some(stored) = store.load_identity(server, username)? else {
        return Ok(None);
    };
    let Some(wrap) = store.load_unlock(server, username, session.session_id)? else {
        return Ok(None);
    };
    Ok(wrap
        .unwrap_identity(stored.wrapped.as_slice())
        .ok()
        .map(|keys| (keys, wrap)))
}

/// After a recovery on a device that could unlock the identity ([`unlockable_identity`]):
/// stores the same keys under the new password's wrap key and re-keys the conversations, so
/// the next login keeps them (and uploads a backup the new password opens).
pub fn keep_through_recovery(
    store: &MessagingStore,
    server: &str,
    username: &str,
    old: &WrapKey,
    keys: &IdentityKeys,
    new_export_key: &[u8; 64],
) -> Result<super::RekeyReport, MessagingError> {
    let new = WrapKey::derive(new_export_key);
    store.save_identity(server, username, keys, &new, unix_now())?;
    store.rekey_history(old, &new, server, username)
}
