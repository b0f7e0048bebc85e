//! Live fan-out: which connections of which user are open on this node, and the
//! [`Doorbell`] that tells them a message was stored.
//!
//! Every relay connection registers with the [`Hub`] under its user and gets a bounded queue
//! ([`CONNECTION_QUEUE`] notices). Ringing never waits: a notice is offered to each queue with
//! `try_send`; a queue that is full belongs to a consumer that cannot keep up, so the hub drops
//! it and *kicks* the connection, which closes. Nothing is lost that way: the message is
//! already committed, and the recipient gets it from the database on its next connection.
//!
//! The database is the source of truth; the doorbell is only the fast path. A lost ring (a
//! node that restarted, a dropped pub/sub message) delays delivery until the connection reads
//! its mailbox again, never loses a message.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use uuid::Uuid;

use super::Delivery;

/// How many notices may wait for one connection before it counts as a slow consumer.
pub const CONNECTION_QUEUE: usize = 256;

/// "A message for user X was stored": how the relay announces a committed message to the
/// recipient's live connections.
///
/// Called after the commit, on the sender's task: an implementation must not block (queue,
/// spawn or drop instead) and may lose a ring. The in-process [`Hub`] is the single-node
/// implementation; a cluster one (Redis pub/sub, PostgreSQL `NOTIFY`) would publish the
/// recipient's id and, on every node, call [`Hub::check`] for it, so that each connection reads
/// the new message from the database.
pub trait Doorbell: Send + Sync + 'static {
    /// Announces `message`, stored for `recipient`.
    fn ring(&self, recipient: Uuid, message: &Arc<Delivery>);
}

/// Which sessions of one user ended (revoked, logged out, the account banned or deleted):
/// their live connections close at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionsEnded {
    /// This one session.
    One(Uuid),
    /// Every session of the user but this one, if any (`AllBut(None)`: all of them).
    AllBut(Option<Uuid>),
}

impl SessionsEnded {
    /// Whether `session` is among the ended ones.
    pub fn covers(&self, session: Uuid) -> bool {
        match self {
            SessionsEnded::One(id) => *id == session,
            SessionsEnded::AllBut(keep) => *keep != Some(session),
        }
    }
}

/// Set (and signalled) when a connection's session ended.
#[derive(Default)]
pub(crate) struct EndSignal {
    ended: AtomicBool,
    notify: Notify,
}

impl EndSignal {
    fn end(&self) {
        self.ended.store(true, Ordering::Release);
        self.notify.notify_one();
    }

    /// Whether the session ended.
    pub(crate) fn is_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Resolves once the session ended. Cancel-safe.
    pub(crate) async fn wait(&self) {
        while !self.is_ended() {
            self.notify.notified().await;
        }
    }
}

/// What a connection's queue carries.
#[derive(Debug, Clone)]
pub(crate) enum Notice {
    /// This message was stored for you (the local fast path: no database read needed).
    Message(Arc<Delivery>),
    /// Something changed in your mailbox: read it again.
    Check,
}

struct Entry {
    id: u64,
    /// The session the connection authenticated with.
    session: Uuid,
    end: Arc<EndSignal>,
    tx: mpsc::Sender<Notice>,
    kick: Arc<Notify>,
    /// When this connection was last told to read its mailbox (its start counts: it reads the
    /// backlog first); see [`Hub::check_idle`].
    checked: Instant,
}

/// The live connections of this node, by user.
#[derive(Default)]
pub struct Hub {
    next_id: AtomicU64,
    users: Mutex<HashMap<Uuid, Vec<Entry>>>,
}

/// One connection's place in the [`Hub`]: its queue and its kick signal. Unregisters itself
/// when dropped.
pub(crate) struct Registration {
    hub: Arc<Hub>,
    user: Uuid,
    id: u64,
    /// Notices for this connection.
    pub(crate) rx: mpsc::Receiver<Notice>,
    /// Signalled when the hub dropped this connection's queue (slow consumer).
    pub(crate) kick: Arc<Notify>,
    /// Set when the connection's session ended.
    pub(crate) end: Arc<EndSignal>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.hub.remove(self.user, self.id);
        crate::metrics::relay_connection_closed();
    }
}

impl Hub {
    /// An empty hub.
    pub fn new() -> Hub {
        Hub::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Vec<Entry>>> {
        self.users.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new connection of `user`, authenticated with `session`.
    pub(crate) fn register(self: &Arc<Self>, user: Uuid, session: Uuid) -> Registration {
        let (tx, rx) = mpsc::channel(CONNECTION_QUEUE);
        let kick = Arc::new(Notify::new());
        let end = Arc::new(EndSignal::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().entry(user).or_default().push(Entry {
            id,
            session,
            end: end.clone(),
            tx,
            kick: kick.clone(),
            checked: Instant::now(),
        });
        crate::metrics::relay_connection_opened();
        Registration {
            hub: self.clone(),
            user,
            id,
            rx,
            kick,
            end,
        }
    }

    /// Closes the live connections of `user` on this node whose session is among `which`;
    /// returns how many were told. (Each unregisters itself as it closes.)
    pub fn end_sessions(&self, user: Uuid, which: SessionsEnded) -> usize {
        let users = self.lock();
        let Some(list) = users.get(&user) else {
            return 0;
        };
        let mut told = 0;
        for e in list.iter().filter(|e| which.covers(e.session)) {
            e.end.end();
            told += 1;
        }
        told
    }

    fn remove(&self, user: Uuid, id: u64) {
        let mut users = self.lock();
        if let Some(list) = users.get_mut(&user) {
            list.retain(|e| e.id != id);
            if list.is_empty() {
                users.remove(&user);
            }
        }
    }

    /// Offers `notice` to every live connection of `user` on this node, without waiting.
    /// A connection whose queue is full is dropped from the hub and kicked.
    pub(crate) fn notify(&self, user: Uuid, notice: &Notice) {
        let mut users = self.lock();
        let Some(list) = users.get_mut(&user) else {
            return;
        };
        let check = matches!(notice, Notice::Check);
        list.retain_mut(|e| match e.tx.try_send(notice.clone()) {
            Ok(()) => {
                if check {
                    e.checked = Instant::now();
                }
                true
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::info!(%user, "relay connection cannot keep up; closing it");
                e.kick.notify_one();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        });
        if list.is_empty() {
            users.remove(&user);
        }
    }

    /// Tells every live connection of `user` on this node to read its mailbox again (what a
    /// cluster [`Doorbell`] calls when another node stored a message).
    pub fn check(&self, user: Uuid) {
        self.notify(user, &Notice::Check);
    }

    /// How many connections of `user` are live on this node.
    pub fn connections(&self, user: Uuid) -> usize {
        self.lock().get(&user).map_or(0, Vec::len)
    }

    /// The users with at least one live connection on this node.
    pub fn users(&self) -> Vec<Uuid> {
        self.lock().keys().copied().collect()
    }

    /// How many users have at least one live connection on this node.
    pub fn user_count(&self) -> usize {
        self.lock().len()
    }

    /// Tells every connection that has not been told to read its mailbox for `max_age` to do
    /// so now; returns how many were told. A cluster doorbell calls it periodically, so that a
    /// lost ring delays a message by about `max_age` at most. A connection whose queue is full
    /// is left alone (it has reading to do anyway).
    pub fn check_idle(&self, max_age: Duration) -> usize {
        let now = Instant::now();
        let mut told = 0;
        let mut users = self.lock();
        users.retain(|_, list| {
            list.retain_mut(|e| {
                if now.saturating_duration_since(e.checked) < max_age {
                    return true;
                }
                match e.tx.try_send(Notice::Check) {
                    Ok(()) => {
                        e.checked = now;
                        told += 1;
                        true
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => true,
                    Err(mpsc::error::TrySendError::Closed(_)) => false,
                }
            });
            !list.is_empty()
        });
        told
    }
}

impl Doorbell for Hub {
    fn ring(&self, recipient: Uuid, message: &Arc<Delivery>) {
        self.notify(recipient, &Notice::Message(message.clone()));
    }
}

#[cfg(test)]
mod tests;
