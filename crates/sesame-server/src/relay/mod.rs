//! The message relay: stores end-to-end encrypted messages and delivers them, written once
//! for every transport (WebSocket `GET /ws` in `relay/ws.rs`, the TCP `MESSAGE`/`ACK` verbs
//! in `relay/tcp.rs`).
//!
//! The server never sees a plaintext: a message is an opaque ciphertext and signature, with
//! the recipient's username, a sender-chosen id and the sender's timestamp beside it. The
//! server adds `from`, the authenticated sender's username. docs/messaging.md describes what
//! the server can and cannot see.
//!
//! **Sending** ([`Sesame::relay_send`]): checks the id and sizes, the sender's rate, the
//! recipient, then stores the message in the recipient's mailbox (the database); only once
//! that is committed does the client hear `accepted`. A resend with the same id to the same
//! recipient stores nothing and is accepted again (at-least-once delivery plus
//! deduplication). Then the [`Doorbell`] rings for the recipient.
//!
//! **Receiving** ([`Subscription`]): a connection first gets its mailbox (the backlog) in
//! stored order, then live messages as the doorbell announces them, on every live connection
//! of the recipient. A message stays stored until the recipient acknowledges it
//! ([`Sesame::relay_ack`]; one frame may acknowledge up to [`MAX_ACK_IDS`] messages,
//! [`Sesame::relay_ack_queued`]), is older than `message_max_age_days`, or the account is deleted
//! (foreign-key cascade). An acknowledged message is gone: a resend of its id after the ack is
//! a new message (clients deduplicate by id).
//!
//! **Limits**, each with its own error code: `message_too_large` (ciphertext above
//! `message_max_bytes`), `mailbox_full` (`mailbox_max_messages` waiting), `rate_limited`
//! (`send_rate_per_minute` per sender, counted in the short-lived store so every node shares
//! it), `unknown_recipient`, `invalid_message`.

// The recipient cache ages entries in real time (a cache, not an expiry of the service).
#[allow(clippy::disallowed_methods)]
mod hub;
// Reconnection backoff and subscription pings run on real time.
#[allow(clippy::disallowed_methods)]
pub mod redis_doorbell;
mod routes;
// The periodic session re-check is a real-time timer.
#[allow(clippy::disallowed_methods)]
mod subscription;
pub(crate) mod tcp;
// Keep-alive pings and close timeouts measure real elapsed time.
#[allow(clippy::disallowed_methods)]
mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

pub use hub::{Doorbell, Hub, SessionsEnded, CONNECTION_QUEUE};
pub use redis_doorbell::RedisDoorbell;
pub(crate) use routes::routes;
pub use sesame_proto::e2e::MAX_ACK_IDS;
pub use subscription::{Closed, Subscription};

use crate::error::{ApiError, ErrorCode, InputError, LimitError};
use crate::service::{Authenticated, RequestContext, Sesame};
use crate::store::{AccountStatus, MessageAck, MessageInsert, NewMessage};
use crate::tokens::SESSION_TOKEN_PREFIX;

/// The relay's limits (configuration keys of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelaySettings {
    /// Largest ciphertext accepted, bytes.
    pub message_max_bytes: usize,
    /// Most messages waiting in one mailbox.
    pub mailbox_max_messages: u64,
    /// Messages older than this many seconds are deleted (0 keeps them until acknowledged).
    pub message_max_age: u64,
    /// Messages one user may send per minute (0: unlimited).
    pub send_rate_per_minute: u64,
}

impl Default for RelaySettings {
    fn default() -> Self {
        RelaySettings {
            message_max_bytes: 64 * 1024,
            mailbox_max_messages: 10_000,
            message_max_age: 30 * 86_400,
            send_rate_per_minute: 600,
        }
    }
}

impl RelaySettings {
    /// The largest frame or line a transport must accept to carry the largest message:
    /// the base64url ciphertext plus room for the other fields.
    pub fn max_frame_bytes(&self) -> usize {
        self.message_max_bytes.div_ceil(3) * 4 + FRAME_OVERHEAD
    }
}

/// Room for everything in a frame besides the ciphertext (id, names, signature, JSON).
const FRAME_OVERHEAD: usize = 16 * 1024;
/// Largest signature accepted, bytes (Ed25519 needs 64; room for other algorithms).
pub const MAX_SIGNATURE_BYTES: usize = 4096;
/// Longest message id, bytes.
pub const MAX_MESSAGE_ID_BYTES: usize = 64;

/// A message on its way to the recipient's connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Position in the recipient's mailbox.
    pub seq: i64,
    /// The sender-chosen id.
    pub id: String,
    /// The authenticated sender's username.
    pub from: String,
    /// The recipient's username.
    pub to: String,
    /// The sender's timestamp, unix milliseconds.
    pub sent_at: u64,
    /// Opaque ciphertext.
    pub ciphertext: Vec<u8>,
    /// Opaque signature.
    pub signature: Vec<u8>,
}

/// A message as a client sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The recipient's username.
    pub to: String,
    /// Sender-chosen id: 1 to 64 bytes of `[A-Za-z0-9_-]`.
    pub id: String,
    /// The sender's timestamp, unix milliseconds.
    pub sent_at: u64,
    /// Opaque ciphertext.
    pub ciphertext: Vec<u8>,
    /// Opaque signature.
    pub signature: Vec<u8>,
}

/// An authenticated relay client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The user.
    pub user_id: Uuid,
    /// The session the connection authenticated with.
    pub session_id: Uuid,
    /// The canonical username.
    pub username: String,
    /// The sealed username (copied into the messages this peer sends).
    username_sealed: Vec<u8>,
}

/// Process-wide relay state, held by [`Sesame`].
pub struct Relay {
    hub: Arc<Hub>,
    doorbell: Arc<dyn Doorbell>,
    stop: watch::Sender<bool>,
    open: watch::Sender<usize>,
    /// The Redis doorbell (also `doorbell`) when this node is one of a cluster.
    cluster: Option<Arc<RedisDoorbell>>,
}

impl Default for Relay {
    fn default() -> Self {
        Relay::new()
    }
}

impl Relay {
    /// A relay for one node: the local [`Hub`] is the doorbell.
    pub fn new() -> Relay {
        let hub = Arc::new(Hub::new());
        Relay {
            doorbell: hub.clone(),
            hub,
            stop: watch::Sender::new(false),
            open: watch::Sender::new(0),
            cluster: None,
        }
    }

    /// A relay for one node of a cluster: rings go through Redis pub/sub to every node
    /// ([`RedisDoorbell`]), and this node records its users' presence there.
    pub async fn cluster(
        redis_url: &str,
        key_prefix: &str,
    ) -> Result<Relay, crate::ephemeral::EphemeralError> {
        redis_doorbell::relay(redis_url, key_prefix).await
    }

    /// A relay that announces messages through `doorbell` (for several nodes). The doorbell
    /// must end up calling [`Hub::check`] on this relay's [`Relay::hub`] on every node.
    pub fn with_doorbell(doorbell: Arc<dyn Doorbell>) -> Relay {
        Relay {
            doorbell,
            ..Relay::new()
        }
    }

    /// This node's live connections.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// How many users have a live relay connection on this node (when clustered, the users
    /// this node records as present in Redis).
    pub fn presence_count(&self) -> usize {
        self.hub.user_count()
    }

    /// This node's id in the cluster (its presence keys and doorbell notices carry it);
    /// `None` for a single node.
    pub fn node_id(&self) -> Option<Uuid> {
        self.cluster.as_ref().map(|c| c.node_id())
    }

    /// Cross-node notices dropped because the publish queue was full, since start (0 for a
    /// single node). Each only delays a delivery until the recipient's next poll.
    pub fn dropped_rings(&self) -> u64 {
        self.cluster.as_ref().map_or(0, |c| c.dropped_rings())
    }

    /// Closes the live relay connections of `user` whose session is among `which`, on this
    /// node at once and, in a cluster, on every other node through Redis (awaited, at most
    /// about [`crate::ephemeral::REDIS_TIMEOUT`]). A lost notice leaves the other nodes to
    /// their periodic session check ([`subscription::SESSION_CHECK`]).
    pub async fn end_sessions(&self, user: Uuid, which: SessionsEnded) {
        self.hub.end_sessions(user, which);
        if let Some(cluster) = &self.cluster {
            cluster.publish_end(user, which).await;
        }
    }

    /// Closes every relay connection (server shutdown); later ones close at once.
    pub fn shutdown(&self) {
        self.stop.send_replace(true);
    }

    /// Waits until every relay connection has closed, at most `timeout`.
    // A shutdown timeout: real elapsed time.
    #[allow(clippy::disallowed_methods)]
    pub async fn wait_closed(&self, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut open = self.open.subscribe();
        let _ = tokio::time::timeout_at(deadline, open.wait_for(|n| *n == 0)).await;
        if let Some(cluster) = &self.cluster {
            // The doorbell's tasks withdraw this node's presence from Redis.
            let _ = tokio::time::timeout_at(deadline, cluster.stopped()).await;
        }
    }
}

/// Counts an open relay connection for [`Relay::wait_closed`].
struct OpenGuard(watch::Sender<usize>);

impl OpenGuard {
    fn new(relay: &Relay) -> OpenGuard {
        relay.open.send_modify(|n| *n += 1);
        OpenGuard(relay.open.clone())
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// How long a connection trusts a recipient lookup.
pub const RECIPIENT_TTL: Duration = Duration::from_secs(5);
/// Most recipients one connection remembers.
const RECIPIENT_CACHE_MAX: usize = 256;

/// One connection's recent recipient lookups (name as sent → user id and canonical name),
/// so that a stream of messages to the same people reads the users table once per
/// [`RECIPIENT_TTL`] instead of once per message. An entry can outlive its account by at
/// most that long: a message to an account deleted meanwhile is refused by the database's
/// foreign key and answered `unknown_recipient`, as without the cache.
#[derive(Debug, Default)]
pub struct RecipientCache {
    entries: HashMap<String, (Uuid, String, Instant)>,
}

impl RecipientCache {
    fn get(&self, name: &str) -> Option<(Uuid, String)> {
        self.entries
            .get(name)
            .filter(|(_, _, at)| at.elapsed() < RECIPIENT_TTL)
            .map(|(id, canonical, _)| (*id, canonical.clone()))
    }

    // A cache aged in real time, not an expiry of the service.
    #[allow(clippy::disallowed_methods)]
    fn put(&mut self, name: &str, id: Uuid, canonical: &str) {
        if self.entries.len() >= RECIPIENT_CACHE_MAX {
            self.entries
                .retain(|_, (_, _, at)| at.elapsed() < RECIPIENT_TTL);
            if self.entries.len() >= RECIPIENT_CACHE_MAX {
                self.entries.clear();
            }
        }
        self.entries
            .insert(name.to_owned(), (id, canonical.to_owned(), Instant::now()));
    }
}

fn unknown_recipient() -> ApiError {
    ApiError::new(
        InputError::UnknownRecipient,
        "There is no user with that name.",
    )
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::new(InputError::InvalidMessage, message)
}

/// Checks a message id: 1 to [`MAX_MESSAGE_ID_BYTES`] bytes of `[A-Za-z0-9_-]`.
pub fn validate_message_id(id: &str) -> Result<(), ApiError> {
    let ok = !id.is_empty()
        && id.len() <= MAX_MESSAGE_ID_BYTES
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(
            "The message id must be 1 to 64 characters of A-Z, a-z, 0-9, - and _.",
        ))
    }
}

impl Sesame {
    /// Authenticates a relay client by an access token (JWT) or a session token (`sst_…`).
    /// A session token counts as a use of the session (its idle expiry moves on).
    pub async fn relay_peer(&self, token: &str, ctx: &RequestContext) -> Result<Peer, ApiError> {
        let who = if token.starts_with(SESSION_TOKEN_PREFIX) {
            let grant = self.refresh(token, ctx).await.map_err(|e| match e.code {
                ErrorCode::Credentials(_) => ApiError::unauthorized(),
                _ => e,
            })?;
            self.authenticate(&grant.access_token).await?
        } else {
            self.authenticate(token).await?
        };
        self.relay_peer_for(&who).await
    }

    /// The relay identity of an authenticated caller.
    pub async fn relay_peer_for(&self, who: &Authenticated) -> Result<Peer, ApiError> {
        let user = self
            .store()
            .user_by_id(who.user_id)
            .await?
            .filter(|u| u.status != AccountStatus::Banned)
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Peer {
            user_id: user.id,
            session_id: who.session_id,
            username: self.username_of(&user)?,
            username_sealed: user.username_sealed,
        })
    }

    /// Stores `msg` for its recipient and announces it; returns once it is committed (or was
    /// already stored under the same id).
    pub async fn relay_send(&self, from: &Peer, msg: Outgoing) -> Result<(), ApiError> {
        self.relay_send_queued(from, msg, None).await?.await
    }

    /// The first half of [`Sesame::relay_send`]: checks `msg` and hands it to the writer.
    /// The returned future resolves once it is committed and announced. Messages a
    /// connection queues one after the other are stored in that order, so a transport can
    /// read its next frame while earlier messages are being committed. With a `recipients`
    /// cache, recent lookups of the recipient are reused ([`RecipientCache`]).
    pub async fn relay_send_queued(
        &self,
        from: &Peer,
        msg: Outgoing,
        recipients: Option<&mut RecipientCache>,
    ) -> Result<impl Future<Output = Result<(), ApiError>> + Send + 'static, ApiError> {
        let limits = self.settings().relay;
        let sent_at = check_outgoing(&msg, limits.message_max_bytes)?;
        self.relay_rate(from.user_id, limits.send_rate_per_minute)
            .await?;
        let (recipient_id, to) = self.recipient(&msg.to, recipients).await?;
        let new = NewMessage {
            recipient_id,
            sender_id: from.user_id,
            sender_sealed: from.username_sealed.clone(),
            msg_id: msg.id,
            sent_at,
            stored_at: i64::try_from(self.now()).unwrap_or(i64::MAX),
            ciphertext: msg.ciphertext,
            signature: msg.signature,
        };
        let delivery = Delivery {
            seq: 0,
            id: new.msg_id.clone(),
            from: from.username.clone(),
            to,
            sent_at: msg.sent_at,
            ciphertext: new.ciphertext.clone(),
            signature: new.signature.clone(),
        };
        let stored = self.writer().insert(new);
        let doorbell = self.relay().doorbell.clone();
        Ok(async move {
            let stored = stored.await.map_err(|e| {
                if e.is_missing_reference() {
                    unknown_recipient()
                } else {
                    ApiError::from(e)
                }
            })?;
            match stored {
                MessageInsert::Stored(seq) => {
                    doorbell.ring(recipient_id, &Arc::new(Delivery { seq, ..delivery }));
                    crate::metrics::message_accepted(true);
                    Ok(())
                }
                MessageInsert::Duplicate => {
                    crate::metrics::message_accepted(false);
                    Ok(())
                }
                MessageInsert::MailboxFull => Err(ApiError::new(
                    LimitError::MailboxFull,
                    "The recipient's mailbox is full; try again later.",
                )),
            }
        })
    }

    /// The id and canonical name of the user `to`, from `recipients` when it remembers them.
    async fn recipient(
        &self,
        to: &str,
        recipients: Option<&mut RecipientCache>,
    ) -> Result<(Uuid, String), ApiError> {
        if let Some(hit) = recipients.as_ref().and_then(|c| c.get(to)) {
            return Ok(hit);
        }
        let Some((user, name)) = self.user_by_name(to).await? else {
            return Err(unknown_recipient());
        };
        if let Some(cache) = recipients {
            cache.put(to, user.id, name.as_str());
        }
        Ok((user.id, name.as_str().to_owned()))
    }

    /// The recipient acknowledges message `id`: it is deleted. Acknowledging a message that
    /// is already gone (acknowledged on another connection) succeeds.
    pub async fn relay_ack(&self, who: &Peer, id: &str) -> Result<(), ApiError> {
        self.relay_ack_queued(who, vec![id.to_owned()])?.await
    }

    /// The recipient acknowledges the messages `ids` (one relay frame: 1 to [`MAX_ACK_IDS`]
    /// ids) in two halves: checks every id and hands the deletions to the writer now, as one
    /// job (one `DELETE … IN (…)` in the writer's transaction); the returned future resolves
    /// once they are committed. Ids that are not waiting in the caller's mailbox (acknowledged
    /// elsewhere, expired, or never the caller's) delete nothing. A malformed id refuses the
    /// whole frame (`invalid_message`), as do more than [`MAX_ACK_IDS`] ids (`too_many_acks`)
    /// and none at all.
    pub fn relay_ack_queued(
        &self,
        who: &Peer,
        ids: Vec<String>,
    ) -> Result<impl Future<Output = Result<(), ApiError>> + Send + 'static, ApiError> {
        check_ack_ids(&ids)?;
        let acks = ids
            .into_iter()
            .map(|msg_id| MessageAck {
                recipient: who.user_id,
                msg_id,
            })
            .collect();
        let done = self.writer().ack(acks);
        Ok(async move { Ok(done.await?) })
    }

    /// A subscription to `who`'s mailbox: the backlog, then live messages.
    pub fn relay_subscribe(&self, who: Peer) -> Subscription {
        Subscription::new(self.clone(), who)
    }

    /// Deletes messages older than `message_max_age_days` (the cleanup loop calls it).
    pub async fn expire_messages(&self) -> Result<u64, ApiError> {
        let max_age = self.settings().relay.message_max_age;
        if max_age == 0 {
            return Ok(0);
        }
        let now = i64::try_from(self.now()).unwrap_or(i64::MAX);
        let cutoff = now.saturating_sub(i64::try_from(max_age).unwrap_or(i64::MAX));
        Ok(self.store().delete_messages_before(cutoff).await?)
    }

    /// Counts one message from `user` in the current minute; 429 `rate_limited` beyond
    /// `per_minute` (0 disables the limit).
    async fn relay_rate(&self, user: Uuid, per_minute: u64) -> Result<(), ApiError> {
        if per_minute == 0 {
            return Ok(());
        }
        let key = format!("relay:rate:{}", user.simple());
        // Fixed window, as the per-address throttle: the first message of a window starts it.
        let rule = crate::limiter::Rule::fixed(per_minute, Duration::from_secs(60));
        let v = self
            .ephemeral()
            .hit(&key, &rule, self.now_ms(), crate::limiter::Mode::Check)
            .await?;
        let ttl = v.retry_after;
        if !v.allowed {
            return Err(ApiError {
                retry_after: Some(ttl.as_secs() + 1),
                ..ApiError::new(
                    LimitError::RateLimited,
                    format!("At most {per_minute} messages per minute; wait before sending more."),
                )
            });
        }
        Ok(())
    }
}

/// Checks the ids of one acknowledgement: 1 to [`MAX_ACK_IDS`] well-formed message ids.
pub fn check_ack_ids(ids: &[String]) -> Result<(), ApiError> {
    if ids.len() > MAX_ACK_IDS {
        return Err(ApiError::new(
            InputError::TooManyAcks,
            format!("At most {MAX_ACK_IDS} message ids per acknowledgement; split the list."),
        ));
    }
    if ids.is_empty() {
        return Err(invalid("An acknowledgement names at least one message id."));
    }
    ids.iter().try_for_each(|id| validate_message_id(id))
}

/// Checks an outgoing message's id, time, sizes and signature length; returns `sent_at`.
fn check_outgoing(msg: &Outgoing, max_bytes: usize) -> Result<i64, ApiError> {
    validate_message_id(&msg.id)?;
    let sent_at = i64::try_from(msg.sent_at)
        .map_err(|_| invalid("`sent_at` is out of range (unix milliseconds)."))?;
    if msg.ciphertext.is_empty() {
        return Err(invalid("The ciphertext is empty."));
    }
    if msg.signature.is_empty() || msg.signature.len() > MAX_SIGNATURE_BYTES {
        return Err(invalid("The signature is empty or too long."));
    }
    if msg.ciphertext.len() > max_bytes {
        return Err(ApiError::new(
            InputError::MessageTooLarge,
            format!("Messages are limited to {max_bytes} bytes of ciphertext."),
        ));
    }
    Ok(sent_at)
}
