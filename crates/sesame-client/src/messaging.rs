//! End-to-end encrypted messaging: identity keys, the key directory, the relay and the local
//! state (pinned contacts, encrypted history). `docs/messaging.md` describes the design.
//!
//! - [`ensure_identity`] runs after a login: it finds this user's identity keys (on this
//!   device, else in the server-side backup, else it makes new ones), publishes the public
//!   half (`PUT /api/keys`) and uploads the encrypted backup (`PUT /api/keys/backup`). The
//!   private keys are kept in the profile wrapped under the [`WrapKey`] derived from OPAQUE's
//!   export key; the [`WrapKey`] of the current login is kept beside them so that the
//!   messaging commands work without the password until the login ends.
//! - [`Messenger`] seals and opens messages, pinning each contact's keys on first use: a key
//!   that changes afterwards is refused ([`MessagingError::KeyChanged`],
//!   [`Verdict::KeyChanged`]) until the user accepts it ([`Messenger::accept_changed_keys`]).
//! - [`Relay`] is the WebSocket connection that carries the sealed messages.
//!
//! ```no_run
//! # async fn demo(session: sesame_client::profile::StoredSession) -> Result<(), Box<dyn std::error::Error>> {
//! use sesame_client::messaging::{KeyDirectory, MessagingStore, Messenger, Relay};
//! use sesame_client::{profile::Profile, Client, ClientPolicy};
//!
//! let client = Client::new(&session.server, ClientPolicy::default())?;
//! let store = MessagingStore::new(&Profile::open()?);
//! let messenger = Messenger::unlock(store, KeyDirectory::new(&client)?, &session)?;
//! let token = &session.access_token;
//! let (msg, _bob) = messenger.seal_to(token, "bob", "hello").await?;
//! let mut relay = Relay::connect(&client, token).await?;
//! relay.send_and_wait("bob", &msg).await?; // stored by the server
//! messenger.record_outgoing("bob", &msg, "hello")?;
//! # Ok(()) }
//! ```

mod relay;
mod store;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use rand_core::OsRng;
use reqwest::RequestBuilder;
use serde::{Deserialize, Serialize};
use sesame_proto::b64::Bytes;
use sesame_proto::e2e::{self, E2eError, IdentityKeys, PublicIdentity, SealedMessage, WrapKey};
use sesame_proto::policy::Username;
use uuid::Uuid;
use zeroize::Zeroizing;

pub use relay::{Relay, MAX_RELAY_FRAME, RELAY_PATH};
pub use sesame_proto::e2e::{ClientFrame, FrameError, ServerFrame};
pub use store::{
    Contact, ContactTrust, Direction, HistoryEntry, MessagingStore, StoredIdentity, CONTACTS_DIR,
    HISTORY_CONTEXT, HISTORY_DIR, HISTORY_MAX_ENTRIES, IDENTITY_DIR,
};

use crate::client::{error_from_body, retry_after, Client, DEFAULT_TIMEOUT, USER_AGENT};
use crate::profile::{unix_now, StoredSession};

/// Everything that can go wrong with messaging.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessagingError {
    /// Talking to the server failed (HTTP or WebSocket), or the server answered an error.
    #[error(transparent)]
    Client(#[from] crate::Error),
    /// A cryptographic check failed.
    #[error(transparent)]
    Crypto(#[from] E2eError),
    /// A file of the profile could not be read or written.
    #[error("cannot {action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A file of the profile does not parse or decrypt.
    #[error("{} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// This device has no identity keys for the user.
    #[error(
        "no identity keys for {username} on {server} on this device; log in again \
         (`sesame login`) to create or restore them"
    )]
    NoIdentity {
        /// The server.
        server: String,
        /// The user.
        username: String,
    },
    /// The identity keys are here but locked: the login that unlocked them is gone.
    #[error(
        "the identity keys of {username} on {server} are locked; log in again \
         (`sesame login`) to unlock them"
    )]
    Locked {
        /// The server.
        server: String,
        /// The user.
        username: String,
    },
    /// The user has not published identity keys (or does not exist).
    #[error("{username} has no published keys (unknown user, or never logged in with a messaging client)")]
    NoKeys {
        /// The user.
        username: String,
    },
    /// The contact's keys in the directory differ from the keys pinned on first use.
    #[error(
        "WARNING: THE KEYS OF {username} HAVE CHANGED. Pinned: {pinned}; the server now \
         presents: {presented}. They may have reinstalled or lost their keys — or someone \
         (possibly the server) is impersonating them. Nothing was sent. Check with {username} \
         out of band, then accept the new keys with `sesame keys trust {username}`."
    )]
    KeyChanged {
        /// The contact.
        username: String,
        /// Fingerprint of the pinned keys.
        pinned: String,
        /// Fingerprint of the keys the directory presents.
        presented: String,
    },
    /// The relay refused a message.
    #[error("the server refused message {id}: {message} (`{code}`)")]
    Rejected {
        /// The message id.
        id: String,
        /// `unknown_recipient`, `message_too_large`, `mailbox_full`, `rate_limited`,
        /// `invalid_message`, …
        code: String,
        /// The server's message.
        message: String,
    },
    /// The relay closed the connection.
    #[error("the server closed the relay connection")]
    Closed,
    /// An argument is not acceptable (e.g. not a valid username).
    #[error("{0}")]
    InvalidInput(String),
}

impl MessagingError {
    /// The server's error code, for [`MessagingError::Client`] and
    /// [`MessagingError::Rejected`].
    pub fn server_code(&self) -> Option<sesame_api::ErrorCode> {
        match self {
            MessagingError::Client(e) => e.server_code(),
            MessagingError::Rejected { code, .. } => sesame_api::ErrorCode::from_wire(code, None),
            _ => None,
        }
    }

    /// Whether the server refused the token (refresh it and retry).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, MessagingError::Client(e) if e.is_unauthorized())
    }
}

/// The canonical form of a username typed by a person.
pub fn canonical_username(name: &str) -> Result<String, MessagingError> {
    Username::parse(name)
        .map(|u| u.as_str().to_owned())
        .map_err(|e| MessagingError::InvalidInput(format!("`{name}` is not a valid username: {e}")))
}

/// The current time in Unix milliseconds.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------
// Key directory (HTTP)
// ---------------------------------------------------------------------------------------

/// `GET /api/keys/{username}`: a user's published identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyDirectoryEntry {
    /// The canonical username.
    pub username: String,
    /// The account id.
    pub user_id: Uuid,
    /// The public identity.
    #[serde(flatten)]
    pub identity: PublicIdentity,
    /// When the keys were published, as the server reports it.
    #[serde(default)]
    pub updated_at: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct BackupBody {
    blob: Bytes,
}

/// The key routes of the server: the directory and the encrypted backup.
#[derive(Debug, Clone)]
pub struct KeyDirectory {
    client: Client,
    http: reqwest::Client,
}

impl KeyDirectory {
    /// The key routes of `client`'s server.
    pub fn new(client: &Client) -> crate::Result<KeyDirectory> {
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .timeout(DEFAULT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(KeyDirectory {
            client: client.clone(),
            http,
        })
    }

    /// The client this directory talks through.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// `PUT /api/keys`: publishes this user's public identity.
    pub async fn publish(&self, token: &str, identity: &PublicIdentity) -> crate::Result<()> {
        let req = self.http.put(self.client.url("api/keys")?).json(identity);
        send(req.bearer_auth(token)).await.map(drop)
    }

    /// `GET /api/keys/{username}`: `None` when the user has no keys (or does not exist).
    pub async fn lookup(
        &self,
        token: &str,
        username: &str,
    ) -> crate::Result<Option<KeyDirectoryEntry>> {
        let mut url = self.client.url("api/keys/")?;
        url.path_segments_mut()
            .map_err(|()| crate::Error::Internal("the base URL cannot take a path".into()))?
            .pop_if_empty()
            .push(username);
        match send(self.http.get(url).bearer_auth(token)).await {
            Ok(body) => serde_json::from_slice(&body).map(Some).map_err(|e| {
                crate::Error::UnexpectedResponse(format!("malformed key directory entry: {e}"))
            }),
            Err(e) if e.is(sesame_api::InputError::KeysNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `PUT /api/keys/backup`: stores the encrypted backup of the private keys.
    pub async fn upload_backup(&self, token: &str, blob: &[u8]) -> crate::Result<()> {
        let body = BackupBody {
            blob: Bytes(blob.to_vec()),
        };
        let req = self
            .http
            .put(self.client.url("api/keys/backup")?)
            .json(&body);
        send(req.bearer_auth(token)).await.map(drop)
    }

    /// `GET /api/keys/backup`: the encrypted backup, `None` if there is none.
    pub async fn download_backup(&self, token: &str) -> crate::Result<Option<Vec<u8>>> {
        let req = self.http.get(self.client.url("api/keys/backup")?);
        match send(req.bearer_auth(token)).await {
            Ok(body) => serde_json::from_slice::<BackupBody>(&body)
                .map(|b| Some(b.blob.0))
                .map_err(|e| crate::Error::UnexpectedResponse(format!("malformed backup: {e}"))),
            Err(e) if e.is(sesame_api::InputError::BackupNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

async fn send(req: RequestBuilder) -> crate::Result<Vec<u8>> {
    let resp = req.send().await?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp.bytes().await?.to_vec());
    }
    let retry = retry_after(resp.headers());
    let body = resp.bytes().await.unwrap_or_default();
    Err(error_from_body(status, &body, retry))
}

// ---------------------------------------------------------------------------------------
// Identity setup
// ---------------------------------------------------------------------------------------

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
    let wrap = WrapKey::derive(export_key);
    Ok(store
        .save_identity(server, username, &keys, &wrap, unix_now())?
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

    let local = match store.load_identity(server, username)? {
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
    };
    let backup_blob = directory.download_backup(token).await?;
    let backup = match &backup_blob {
        None => None,
        Some(blob) => match wrap.unwrap_identity(blob) {
            Ok(keys) => Some(keys),
            Err(_) => {
                warnings.push(
                    "the key backup on the server does not open with this password; it will \
                     be replaced"
                        .into(),
                );
                None
            }
        },
    };
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

/// After a password change (e.g. `Client::change_password`): finds this user's identity keys
/// (unlocked by the current login on this device, else with `previous_export_key` from this
/// device or the server backup), re-wraps them under `new_export_key`, uploads the new backup
/// and keeps the new [`WrapKey`] for `session` (the session that changed the password; pass
/// the new one if the change issued one). Returns `false` when no identity could be found
/// (the next login makes or restores one).
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
    if let (Some(stored), Some(wrap)) = (
        &stored,
        store.load_unlock(server, username, session.session_id)?,
    ) {
        keys = wrap.unwrap_identity(stored.wrapped.as_slice()).ok();
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
    }
    let Some(keys) = keys else {
        return Ok(false);
    };
    let wrap = WrapKey::derive(new_export_key);
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

// ---------------------------------------------------------------------------------------
// Messenger
// ---------------------------------------------------------------------------------------

/// A contact's keys as [`Messenger::resolve`] settled them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedContact {
    /// The canonical username.
    pub username: String,
    /// The pinned keys and their trust.
    pub contact: Contact,
    /// Whether they were pinned just now (first use).
    pub first_use: bool,
}

/// What became of a delivered message.
#[derive(Debug)]
pub struct Received {
    /// The message id.
    pub id: String,
    /// The sender, as the server reports it (covered by the signature).
    pub from: String,
    /// The sender's timestamp, Unix milliseconds (unverified clock, but signed).
    pub sent_at: u64,
    /// The outcome.
    pub verdict: Verdict,
}

/// The outcome of [`Messenger::receive`]. Only [`Verdict::Valid`] carries text to show as
/// a message; every other verdict must be reported as a warning.
#[derive(Debug)]
pub enum Verdict {
    /// Signed by the pinned keys of the sender and decrypted.
    Valid {
        /// The plaintext.
        text: Zeroizing<String>,
        /// Whether the sender's keys are verified (safety number confirmed).
        trust: ContactTrust,
        /// Whether the sender's keys were pinned by this very message (first use).
        first_use: bool,
        /// Whether this message was already received (a redelivery): do not show it again.
        duplicate: bool,
    },
    /// The signature does not verify under the sender's pinned keys, and the directory
    /// presents other keys: the sender's keys changed. Withheld (not acknowledged) until the
    /// user accepts the new keys.
    KeyChanged {
        /// Fingerprint of the pinned keys.
        pinned: String,
        /// Fingerprint of the keys the directory presents.
        presented: String,
    },
    /// The signature does not verify under the sender's keys: forged or tampered.
    BadSignature,
    /// The signature verifies but the sealed box does not open (not sealed to this user's
    /// current key, or broken by the sender).
    DecryptFailed,
    /// The sender has no published keys: the message cannot be verified (kept).
    UnknownSender,
    /// The message or the sender's keys are malformed.
    Invalid(String),
    /// The sender's keys could not be looked up right now (kept, retried later).
    Unavailable(String),
}

impl Received {
    /// Whether to acknowledge the message (delete it on the server): yes once it was read or
    /// found to be junk that can never verify; no while it may still become readable
    /// ([`Verdict::KeyChanged`], [`Verdict::UnknownSender`], [`Verdict::Unavailable`]).
    pub fn should_ack(&self) -> bool {
        !matches!(
            self.verdict,
            Verdict::KeyChanged { .. } | Verdict::UnknownSender | Verdict::Unavailable(_)
        )
    }
}

/// Seals and opens messages for one user with unlocked identity keys.
pub struct Messenger {
    server: String,
    username: String,
    keys: IdentityKeys,
    wrap: WrapKey,
    store: MessagingStore,
    directory: KeyDirectory,
}

impl std::fmt::Debug for Messenger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Messenger")
            .field("server", &self.server)
            .field("username", &self.username)
            .field("public", &self.keys.public())
            .finish_non_exhaustive()
    }
}

impl Messenger {
    /// A messenger with keys in hand (`wrap` encrypts the history).
    pub fn new(
        store: MessagingStore,
        directory: KeyDirectory,
        username: &str,
        keys: IdentityKeys,
        wrap: WrapKey,
    ) -> Messenger {
        Messenger {
            server: directory.client().server_id().to_owned(),
            username: username.to_owned(),
            keys,
            wrap,
            store,
            directory,
        }
    }

    /// Unlocks the identity stored on this device for the login `session` (see
    /// [`ensure_identity`]).
    pub fn unlock(
        store: MessagingStore,
        directory: KeyDirectory,
        session: &StoredSession,
    ) -> Result<Messenger, MessagingError> {
        let (server, username) = (&session.server, &session.username);
        let stored =
            store
                .load_identity(server, username)?
                .ok_or_else(|| MessagingError::NoIdentity {
                    server: server.clone(),
                    username: username.clone(),
                })?;
        let wrap = store
            .load_unlock(server, username, session.session_id)?
            .ok_or_else(|| MessagingError::Locked {
                server: server.clone(),
                username: username.clone(),
            })?;
        let keys = wrap
            .unwrap_identity(stored.wrapped.as_slice())
            .map_err(|_| MessagingError::Locked {
                server: server.clone(),
                username: username.clone(),
            })?;
        Ok(Messenger::new(store, directory, username, keys, wrap))
    }

    /// This user's canonical username.
    pub fn username(&self) -> &str {
        &self.username
    }

    /// The canonical server URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// This user's public identity.
    pub fn public(&self) -> PublicIdentity {
        self.keys.public()
    }

    /// The profile files.
    pub fn store(&self) -> &MessagingStore {
        &self.store
    }

    /// The key routes.
    pub fn directory(&self) -> &KeyDirectory {
        &self.directory
    }

    /// The contact `peer` as pinned, if it is.
    pub fn pinned(&self, peer: &str) -> Result<Option<Contact>, MessagingError> {
        self.store.contact(&self.server, &canonical_username(peer)?)
    }

    /// Settles the keys of `peer`: pins the directory's keys on first use; refuses keys that
    /// differ from the pinned ones ([`MessagingError::KeyChanged`], recorded in
    /// [`Contact::changed_to`]). When the directory has no keys but some are pinned, the
    /// pinned ones are used.
    pub async fn resolve(
        &self,
        token: &str,
        peer: &str,
    ) -> Result<ResolvedContact, MessagingError> {
        let peer = canonical_username(peer)?;
        let pinned = self.store.contact(&self.server, &peer)?;
        let entry = self.directory.lookup(token, &peer).await?;
        if let Some(entry) = &entry {
            if entry.username != peer {
                return Err(MessagingError::InvalidInput(format!(
                    "the server answered keys of `{}` when asked for `{peer}`",
                    entry.username
                )));
            }
        }
        match (pinned, entry) {
            (None, None) => Err(MessagingError::NoKeys { username: peer }),
            (None, Some(entry)) => self.pin_new(peer, entry.identity),
            (Some(contact), None) => Ok(ResolvedContact {
                username: peer,
                contact,
                first_use: false,
            }),
            (Some(mut contact), Some(entry)) => {
                if contact.identity.same_keys(&entry.identity) {
                    if contact.changed_to.take().is_some() {
                        self.store.save_contact(&self.server, &peer, &contact)?;
                    }
                    return Ok(ResolvedContact {
                        username: peer,
                        contact,
                        first_use: false,
                    });
                }
                let err = MessagingError::KeyChanged {
                    username: peer.clone(),
                    pinned: contact.identity.fingerprint(),
                    presented: entry.identity.fingerprint(),
                };
                if entry.identity.verify().is_ok() {
                    contact.changed_to = Some(entry.identity);
                    self.store.save_contact(&self.server, &peer, &contact)?;
                }
                Err(err)
            }
        }
    }

    /// Accepts the keys `peer` now publishes in place of the pinned ones (after checking with
    /// them out of band). The new keys start [`ContactTrust::Unverified`].
    pub async fn accept_changed_keys(
        &self,
        token: &str,
        peer: &str,
    ) -> Result<ResolvedContact, MessagingError> {
        let peer = canonical_username(peer)?;
        let entry =
            self.directory
                .lookup(token, &peer)
                .await?
                .ok_or_else(|| MessagingError::NoKeys {
                    username: peer.clone(),
                })?;
        self.pin_new(peer, entry.identity)
    }

    /// Checks `identity` and pins it for `peer` as new, unverified keys.
    fn pin_new(
        &self,
        peer: String,
        identity: PublicIdentity,
    ) -> Result<ResolvedContact, MessagingError> {
        identity.verify()?;
        let contact = Contact {
            identity,
            trust: ContactTrust::Unverified,
            pinned_at: unix_now(),
            changed_to: None,
        };
        self.store.save_contact(&self.server, &peer, &contact)?;
        Ok(ResolvedContact {
            username: peer,
            contact,
            first_use: true,
        })
    }

    /// Marks the pinned keys of `peer` as verified (the user compared the safety number).
    pub fn mark_verified(&self, peer: &str) -> Result<Contact, MessagingError> {
        let peer = canonical_username(peer)?;
        let mut contact =
            self.store
                .contact(&self.server, &peer)?
                .ok_or_else(|| MessagingError::NoKeys {
                    username: peer.clone(),
                })?;
        contact.trust = ContactTrust::Verified;
        self.store.save_contact(&self.server, &peer, &contact)?;
        Ok(contact)
    }

    /// The safety number of this user and `peer` with the keys `theirs`.
    pub fn safety_number(&self, peer: &str, theirs: &PublicIdentity) -> String {
        e2e::safety_number(&self.username, &self.keys.public(), peer, theirs)
    }

    /// Seals `text` to a resolved contact (a fresh UUID v4 id, the current time).
    pub fn seal_for(
        &self,
        to: &ResolvedContact,
        text: &str,
    ) -> Result<SealedMessage, MessagingError> {
        let id = e2e::new_message_id(&mut OsRng);
        Ok(e2e::seal(
            &mut OsRng,
            &self.keys,
            &self.username,
            &to.username,
            &to.contact.identity,
            &id,
            unix_now_ms(),
            text.as_bytes(),
        )?)
    }

    /// [`Messenger::resolve`] then [`Messenger::seal_for`].
    pub async fn seal_to(
        &self,
        token: &str,
        peer: &str,
        text: &str,
    ) -> Result<(SealedMessage, ResolvedContact), MessagingError> {
        let contact = self.resolve(token, peer).await?;
        let msg = self.seal_for(&contact, text)?;
        Ok((msg, contact))
    }

    /// Records a message this user sent in the local history.
    pub fn record_outgoing(
        &self,
        peer: &str,
        msg: &SealedMessage,
        text: &str,
    ) -> Result<(), MessagingError> {
        let peer = canonical_username(peer)?;
        self.store.append_history(
            &self.wrap,
            &self.server,
            &self.username,
            &peer,
            HistoryEntry {
                id: msg.id.clone(),
                direction: Direction::Outgoing,
                sent_at: msg.sent_at,
                text: text.to_owned(),
                verified: false,
            },
        )?;
        Ok(())
    }

    /// The local history of the conversation with `peer`, oldest first.
    pub fn history(&self, peer: &str) -> Result<Vec<HistoryEntry>, MessagingError> {
        let peer = canonical_username(peer)?;
        self.store
            .history(&self.wrap, &self.server, &self.username, &peer)
    }

    /// Verifies and opens a delivered message from `from` (the frame's `to` is not trusted:
    /// the signature is checked for this user as recipient). A valid message is added to
    /// the history (once: a redelivery is flagged [`Verdict::Valid::duplicate`]). An error is
    /// returned only for local failures (the profile's files).
    pub async fn receive(
        &self,
        token: &str,
        from: &str,
        msg: &SealedMessage,
    ) -> Result<Received, MessagingError> {
        let received = |verdict| Received {
            id: msg.id.clone(),
            from: from.to_owned(),
            sent_at: msg.sent_at,
            verdict,
        };
        let Ok(peer) = canonical_username(from) else {
            return Ok(received(Verdict::Invalid(format!(
                "the sender `{from}` is not a valid username"
            ))));
        };
        let (contact, first_use) = match self.store.contact(&self.server, &peer)? {
            Some(contact) => (contact, false),
            None => match self.resolve(token, &peer).await {
                Ok(r) => (r.contact, r.first_use),
                Err(MessagingError::NoKeys { .. }) => return Ok(received(Verdict::UnknownSender)),
                Err(MessagingError::Crypto(e)) => {
                    return Ok(received(Verdict::Invalid(format!(
                        "the sender's published keys are invalid: {e}"
                    ))))
                }
                Err(e @ (MessagingError::Io { .. } | MessagingError::Corrupt { .. })) => {
                    return Err(e)
                }
                Err(e) => return Ok(received(Verdict::Unavailable(e.to_string()))),
            },
        };
        let verdict = match e2e::open(&self.keys, &peer, &self.username, msg, &contact.identity) {
            Ok(plain) => match std::str::from_utf8(&plain) {
                Err(_) => Verdict::Invalid("the text is not UTF-8".into()),
                Ok(text) => {
                    let added = self.store.append_history(
                        &self.wrap,
                        &self.server,
                        &self.username,
                        &peer,
                        HistoryEntry {
                            id: msg.id.clone(),
                            direction: Direction::Incoming,
                            sent_at: msg.sent_at,
                            text: text.to_owned(),
                            verified: contact.trust == ContactTrust::Verified,
                        },
                    )?;
                    Verdict::Valid {
                        text: Zeroizing::new(text.to_owned()),
                        trust: contact.trust,
                        first_use,
                        duplicate: !added,
                    }
                }
            },
            Err(E2eError::BadSignature) if !first_use => {
                // Under the pinned keys it does not verify: did the keys change?
                match self.resolve(token, &peer).await {
                    Err(MessagingError::KeyChanged {
                        pinned, presented, ..
                    }) => Verdict::KeyChanged { pinned, presented },
                    Ok(_) | Err(MessagingError::NoKeys { .. }) => Verdict::BadSignature,
                    Err(e @ (MessagingError::Io { .. } | MessagingError::Corrupt { .. })) => {
                        return Err(e)
                    }
                    Err(e) => Verdict::Unavailable(e.to_string()),
                }
            }
            Err(E2eError::BadSignature) => Verdict::BadSignature,
            Err(E2eError::DecryptFailed) => Verdict::DecryptFailed,
            Err(e) => Verdict::Invalid(e.to_string()),
        };
        Ok(received(verdict))
    }
}

#[cfg(test)]
mod tests;
