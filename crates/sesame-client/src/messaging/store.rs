//! The messaging files in the profile directory.
//!
//! ```text
//! identity/<host>-<port>/<username>.json         the identity: public keys + private keys
//!                                                 wrapped under the WrapKey
//! identity/<host>-<port>/<username>.unlock.json  the WrapKey of the current login
//! contacts/<host>-<port>.json                    contacts' keys pinned on first use
//! history/<host>-<port>/<username>/<peer>.bin    the conversation, encrypted under the WrapKey
//! ```
//!
//! Directories are `0700`, files `0600` (Unix), and every write is atomic (a temporary file
//! in the same directory, synced, renamed over the old one).

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use rand_core::OsRng;
use serde::{Deserialize, Serialize};
use sesame_proto::b64::Bytes;
use sesame_proto::e2e::{IdentityKeys, PublicIdentity, WrapKey};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::MessagingError;
use crate::profile::write_atomic;
use crate::profile::Profile;

/// The directory of identities, inside the profile directory.
pub const IDENTITY_DIR: &str = "identity";
/// The directory of pinned contact keys, inside the profile directory.
pub const CONTACTS_DIR: &str = "contacts";
/// The directory of conversation histories, inside the profile directory.
pub const HISTORY_DIR: &str = "history";
/// The most messages kept in one conversation's history (older ones are dropped).
pub const HISTORY_MAX_ENTRIES: usize = 2_000;
/// Associated-data prefix of a history file ([`WrapKey::seal`]).
pub const HISTORY_CONTEXT: &[u8] = b"sesame/v1/history";

/// An identity as stored on this device: the public half in clear, the private keys wrapped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredIdentity {
    /// The canonical server URL.
    pub server: String,
    /// The canonical username.
    pub username: String,
    /// The public identity (what `PUT /api/keys` publishes).
    pub public: PublicIdentity,
    /// [`WrapKey::wrap_identity`] of the private keys (the same format as the server backup).
    pub wrapped: Bytes,
    /// When the keys were created or restored here, Unix seconds.
    pub stored_at: u64,
}

/// The [`WrapKey`] kept for the lifetime of one login, so that messaging commands do not ask
/// for the password. Bound to the session id: it is ignored (and removed) once the stored
/// session is another one or gone.
#[derive(Clone, Serialize, Deserialize)]
struct UnlockFile {
    session_id: Uuid,
    key: Bytes,
}

/// How far a contact's pinned keys are trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactTrust {
    /// Pinned on first use; the safety number was not confirmed.
    Unverified,
    /// The user compared the safety number out of band and confirmed it
    /// (`sesame keys verify USER --confirm`).
    Verified,
}

/// A contact's pinned keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    /// The pinned public identity.
    pub identity: PublicIdentity,
    /// Verified or not.
    pub trust: ContactTrust,
    /// When it was pinned, Unix seconds.
    pub pinned_at: u64,
    /// Keys the directory presented that differ from the pinned ones (the last seen), until
    /// the user accepts them (`sesame keys trust USER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_to: Option<PublicIdentity>,
}

/// Who wrote a history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the peer to this user.
    Incoming,
    /// From this user to the peer.
    Outgoing,
}

/// One message of a conversation's local history.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The message id.
    pub id: String,
    /// Who wrote it.
    pub direction: Direction,
    /// The sender's timestamp, Unix milliseconds.
    pub sent_at: u64,
    /// The text.
    pub text: String,
    /// Whether the sender's keys were verified (safety number confirmed) when it was read,
    /// for incoming messages.
    #[serde(default)]
    pub verified: bool,
}

impl std::fmt::Debug for HistoryEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryEntry")
            .field("id", &self.id)
            .field("direction", &self.direction)
            .field("sent_at", &self.sent_at)
            .field("text", &"<redacted>")
            .finish()
    }
}

impl Drop for HistoryEntry {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.text);
    }
}

/// The messaging files of one profile.
#[derive(Debug, Clone)]
pub struct MessagingStore {
    profile: Profile,
    history_limit: usize,
    /// Histories that did not decrypt and were moved aside (see [`MessagingStore::history`]).
    set_aside: std::sync::Arc<std::sync::Mutex<Vec<SetAside>>>,
}

impl MessagingStore {
    /// The messaging files of `profile`.
    pub fn new(profile: &Profile) -> MessagingStore {
        MessagingStore {
            profile: profile.clone(),
            history_limit: HISTORY_MAX_ENTRIES,
            set_aside: Default::default(),
        }
    }

    /// The same store keeping at most `limit` messages per conversation (at least 1).
    pub fn with_history_limit(mut self, limit: usize) -> MessagingStore {
        self.history_limit = limit.max(1);
        self
    }

    /// The profile directory.
    pub fn root(&self) -> &Path {
        self.profile.root()
    }

    /// `<host>-<port>` of `server`, as the profile names session files.
    fn stem(&self, server: &str) -> String {
        self.profile
            .session_path(server)
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "server".into())
    }

    /// `identity/<host>-<port>/<username>.json`.
    pub fn identity_path(&self, server: &str, username: &str) -> PathBuf {
        self.root()
            .join(IDENTITY_DIR)
            .join(self.stem(server))
            .join(format!("{}.json", file_name(username)))
    }

    fn unlock_path(&self, server: &str, username: &str) -> PathBuf {
        self.root()
            .join(IDENTITY_DIR)
            .join(self.stem(server))
            .join(format!("{}.unlock.json", file_name(username)))
    }

    /// `contacts/<host>-<port>.json`.
    pub fn contacts_path(&self, server: &str) -> PathBuf {
        self.root()
            .join(CONTACTS_DIR)
            .join(format!("{}.json", self.stem(server)))
    }

    /// `history/<host>-<port>/<username>/<peer>.bin`.
    pub fn history_path(&self, server: &str, username: &str, peer: &str) -> PathBuf {
        self.root()
            .join(HISTORY_DIR)
            .join(self.stem(server))
            .join(file_name(username))
            .join(format!("{}.bin", file_name(peer)))
    }

    /// The identity stored for `username` on `server`, if any.
    pub fn load_identity(
        &self,
        server: &str,
        username: &str,
    ) -> Result<Option<StoredIdentity>, MessagingError> {
        let stored: Option<StoredIdentity> = read_json(&self.identity_path(server, username))?;
        Ok(stored.filter(|s| s.server == server && s.username == username))
    }

    /// Stores `keys` as the identity of `username` on `server`, wrapped under `key`.
    pub fn save_identity(
        &self,
        server: &str,
        username: &str,
        keys: &IdentityKeys,
        key: &WrapKey,
        now: u64,
    ) -> Result<StoredIdentity, MessagingError> {
        let stored = StoredIdentity {
            server: server.to_owned(),
            username: username.to_owned(),
            public: keys.public(),
            wrapped: Bytes(key.wrap_identity(&mut OsRng, keys)),
            stored_at: now,
        };
        write_json(&self.identity_path(server, username), &stored)?;
        Ok(stored)
    }

    /// Keeps `key` as the unlock key of the login `session_id`.
    pub fn save_unlock(
        &self,
        server: &str,
        username: &str,
        session_id: Uuid,
        key: &WrapKey,
    ) -> Result<(), MessagingError> {
        let file = UnlockFile {
            session_id,
            key: Bytes(key.to_bytes().to_vec()),
        };
        let result = write_json(&self.unlock_path(server, username), &file);
        zeroize::Zeroize::zeroize(&mut { file.key.0 });
        result
    }

    /// The unlock key of the login `session_id`; `None` if there is none or it belongs to
    /// another login (then it is removed).
    pub fn load_unlock(
        &self,
        server: &str,
        username: &str,
        session_id: Uuid,
    ) -> Result<Option<WrapKey>, MessagingError> {
        let path = self.unlock_path(server, username);
        let Some(file) = read_json::<UnlockFile>(&path)? else {
            return Ok(None);
        };
        let key = Zeroizing::new(file.key.0);
        if file.session_id != session_id {
            self.remove_unlock(server, username)?;
            return Ok(None);
        }
        let bytes: [u8; 32] = key
            .as_slice()
            .try_into()
            .map_err(|_| MessagingError::Corrupt {
                path: path.clone(),
                reason: "the unlock key is not 32 bytes".into(),
            })?;
        Ok(Some(WrapKey::from_bytes(bytes)))
    }

    /// Removes the unlock key (the private keys stay, wrapped); `false` if there was none.
    pub fn remove_unlock(&self, server: &str, username: &str) -> Result<bool, MessagingError> {
        remove_file(&self.unlock_path(server, username))
    }

    /// The contacts pinned on `server`, by canonical username.
    pub fn contacts(&self, server: &str) -> Result<BTreeMap<String, Contact>, MessagingError> {
        Ok(read_json(&self.contacts_path(server))?.unwrap_or_default())
    }

    /// The contact `peer` pinned on `server`, if any.
    pub fn contact(&self, server: &str, peer: &str) -> Result<Option<Contact>, MessagingError> {
        Ok(self.contacts(server)?.remove(peer))
    }

    /// Stores (replaces) the contact `peer` on `server`.
    pub fn save_contact(
        &self,
        server: &str,
        peer: &str,
        contact: &Contact,
    ) -> Result<(), MessagingError> {
        let mut all = self.contacts(server)?;
        all.insert(peer.to_owned(), contact.clone());
        write_json(&self.contacts_path(server), &all)
    }

    /// The history of the conversation of `username` with `peer` on `server`, oldest first.
    pub fn history(
        &self,
        key: &WrapKey,
        server: &str,
        username: &str,
        peer: &str,
    ) -> Result<Vec<HistoryEntry>, MessagingError> {
        let path = self.history_path(server, username, peer);
        let blob = match std::fs::read(&path) {
            Ok(blob) => blob,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(MessagingError::Io {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        let opened = key
            .open(&history_aad(server, username, peer), &blob)
            .ok()
            .and_then(|plain| serde_json::from_slice(&plain).ok());
        match opened {
            Some(entries) => Ok(entries),
            // Written under a key this login does not have (an earlier password, after a
            // recovery) or damaged: moved aside, never in the way of sending or receiving.
            None => {
                self.set_aside_history(&path)?;
                Ok(Vec::new())
            }
        }
    }

    /// Appends `entry` to the history unless an entry with the same id and direction is
    /// there already; returns whether it was added. Keeps the last [`HISTORY_MAX_ENTRIES`] (or
    /// the limit set by [`MessagingStore::with_history_limit`]).
    pub fn append_history(
        &self,
        key: &WrapKey,
        server: &str,
        username: &str,
        peer: &str,
        entry: HistoryEntry,
    ) -> Result<bool, MessagingError> {
        let mut all = self.history(key, server, username, peer)?;
        if all
            .iter()
            .any(|e| e.id == entry.id && e.direction == entry.direction)
        {
            return Ok(false);
        }
        all.push(entry);
        if all.len() > self.history_limit {
            let excess = all.len() - self.history_limit;
            all.drain(..excess);
        }
        let plain =
            Zeroizing::new(
                serde_json::to_vec(&all).map_err(|e| MessagingError::Corrupt {
                    path: self.history_path(server, username, peer),
                    reason: e.to_string(),
                })?,
            );
        let blob = key.seal(&mut OsRng, &history_aad(server, username, peer), &plain);
        let path = self.history_path(server, username, peer);
        write_atomic(&path, &blob).map_err(|(action, source)| MessagingError::Io {
            action,
            path,
            source,
        })?;
        Ok(true)
    }

    /// Whether the history holds an incoming message `id` from `peer`.
    pub fn has_incoming(
        &self,
        key: &WrapKey,
        server: &str,
        username: &str,
        peer: &str,
        id: &str,
    ) -> Result<bool, MessagingError> {
        Ok(self
            .history(key, server, username, peer)?
            .iter()
            .any(|e| e.id == id && e.direction == Direction::Incoming))
    }
}

/// The associated data of a history file: binds it to its server, user and peer.
fn history_aad(server: &str, username: &str, peer: &str) -> Vec<u8> {
    let mut aad = HISTORY_CONTEXT.to_vec();
    for field in [server, username, peer] {
        let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
        aad.extend_from_slice(&len.to_be_bytes());
        aad.extend_from_slice(field.as_bytes());
    }
    aad
}

/// A username reduced to `[a-z0-9._-]` (canonical usernames already are), never `.`/`..`.
fn file_name(name: &str) -> String {
    let cleaned: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if cleaned.is_empty() || cleaned.starts_with('.') {
        format!("_{cleaned}")
    } else {
        cleaned
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, MessagingError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => Zeroizing::new(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(MessagingError::Io {
                action: "read",
                path: path.to_owned(),
                source,
            })
        }
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| MessagingError::Corrupt {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), MessagingError> {
    let mut bytes =
        Zeroizing::new(
            serde_json::to_vec_pretty(value).map_err(|e| MessagingError::Corrupt {
                path: path.to_owned(),
                reason: e.to_string(),
            })?,
        );
    bytes.push(b'\n');
    write_atomic(path, &bytes).map_err(|(action, source)| MessagingError::Io {
        action,
        path: path.to_owned(),
        source,
    })
}

fn remove_file(path: &Path) -> Result<bool, MessagingError> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(MessagingError::Io {
            action: "remove",
            path: path.to_owned(),
            source,
        }),
    }
}

mod rekey;

pub use rekey::{RekeyReport, SetAside};

#[cfg(test)]
mod tests;
