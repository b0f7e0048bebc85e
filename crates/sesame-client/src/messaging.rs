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
//! Layout: `messaging/identity.rs` ([`ensure_identity`] and the key backup),
//! `messaging/directory.rs` ([`KeyDirectory`], the `/api/keys` routes),
//! `messaging/messenger.rs` ([`Messenger`]), `messaging/relay.rs` ([`Relay`]) and
//! `messaging/store.rs` ([`MessagingStore`]: contacts, identity and history on disk).
//!
//! [`WrapKey`]: sesame_proto::e2e::WrapKey
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

mod directory;
mod identity;
mod messenger;
mod relay;
mod store;

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use sesame_proto::e2e::E2eError;
use sesame_proto::policy::Username;

pub use directory::{KeyDirectory, KeyDirectoryEntry};
pub use identity::{
    create_identity, ensure_identity, keep_identity, keep_through_recovery,
    rewrap_for_new_password, unlockable_identity, IdentityReport, IdentitySource,
};
pub use messenger::{Messenger, Received, ResolvedContact, Verdict};
pub use relay::{Relay, MAX_RELAY_FRAME, RELAY_PATH};
pub use sesame_proto::e2e::{ClientFrame, FrameError, ServerFrame, MAX_ACK_IDS};
pub use store::{
    Contact, ContactTrust, Direction, HistoryEntry, MessagingStore, RekeyReport, SetAside,
    StoredIdentity, CONTACTS_DIR, HISTORY_CONTEXT, HISTORY_DIR, HISTORY_MAX_ENTRIES, IDENTITY_DIR,
};

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

#[cfg(test)]
mod tests;
