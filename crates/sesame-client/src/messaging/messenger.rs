//! [`Messenger`]: sealing and opening messages, pinning each contact's keys on first use, and
//! the local history.

use rand_core::OsRng;
use sesame_proto::e2e::{self, E2eError, IdentityKeys, PublicIdentity, SealedMessage, WrapKey};
use zeroize::Zeroizing;

use crate::profile::{unix_now, StoredSession};

use super::{
    canonical_username, unix_now_ms, Contact, ContactTrust, Direction, HistoryEntry, KeyDirectory,
    MessagingError, MessagingStore,
};

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
    /// [`ensure_identity`](super::ensure_identity)).
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
