//! One connection's view of its user's mailbox: the backlog in stored order, then live
//! messages, each at most once per connection.
//!
//! The backlog is read from the database page by page ([`PAGE`] messages at a time, only when
//! the previous page has been sent, so memory stays bounded whatever the mailbox holds). Live
//! messages come from the [`Hub`] queue. The connection remembers which `seq`s it has sent, so
//! a message both read from the database and announced live goes out once. A
//! [`Notice::Check`] (from a cluster doorbell) re-reads the mailbox the same way and also
//! forgets the `seq`s that are no longer stored (acknowledged elsewhere, expired).
//!
//! [`Subscription::next`] is cancel-safe: a transport may `select!` on it together with its
//! socket; state only changes after each await completes.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;
use uuid::Uuid;

use super::hub::{Hub, Notice, Registration};
use super::{Delivery, OpenGuard, Peer};
use crate::service::Sesame;
use crate::store::MessageRecord;

/// Backlog page size.
pub const PAGE: u32 = 100;
/// How often a connection checks in the database that its session is still live: a safety
/// net only. Revocations close connections at once through [`Hub::end_sessions`] (on every
/// node of a cluster through the doorbell); this check catches expiry and a revocation whose
/// notice was lost.
pub const SESSION_CHECK: Duration = Duration::from_secs(30);

/// Why a subscription ended; the transport closes the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The connection's queue overflowed: it did not read fast enough.
    SlowConsumer,
    /// The server is shutting down.
    Shutdown,
    /// The session was revoked or expired.
    SessionEnded,
    /// The mailbox could not be read.
    Failed,
}

impl Closed {
    /// A stable code for the transport's closing message.
    pub fn code(self) -> &'static str {
        match self {
            Closed::SlowConsumer => "slow_consumer",
            Closed::Shutdown => "shutting_down",
            Closed::SessionEnded => "session_ended",
            Closed::Failed => "internal",
        }
    }

    /// A message for people.
    pub fn message(self) -> &'static str {
        match self {
            Closed::SlowConsumer => {
                "Messages arrived faster than this connection read them; reconnect to get them."
            }
            Closed::Shutdown => "The server is shutting down; reconnect later.",
            Closed::SessionEnded => "The session has ended; log in again.",
            Closed::Failed => "The mailbox could not be read; reconnect later.",
        }
    }
}

/// A mailbox read in progress.
#[derive(Default)]
struct Check {
    /// Last `seq` read.
    after: i64,
    /// Every `seq` read in this pass.
    seen: HashSet<i64>,
}

/// The stream of deliveries for one connection. Dropping it unregisters the connection.
pub struct Subscription {
    sesame: Sesame,
    peer: Peer,
    reg: Registration,
    stop: watch::Receiver<bool>,
    pending: VecDeque<Arc<Delivery>>,
    check: Option<Check>,
    sent: HashSet<i64>,
    next_session_check: Instant,
    _open: OpenGuard,
}

impl Subscription {
    pub(super) fn new(sesame: Sesame, peer: Peer) -> Subscription {
        let relay = sesame.relay();
        let hub: &Arc<Hub> = relay.hub();
        Subscription {
            reg: hub.register(peer.user_id, peer.session_id),
            stop: relay.stop.subscribe(),
            _open: OpenGuard::new(relay),
            sesame,
            peer,
            pending: VecDeque::new(),
            // The backlog: read the whole mailbox first.
            check: Some(Check::default()),
            sent: HashSet::new(),
            next_session_check: Instant::now() + SESSION_CHECK,
        }
    }

    /// Who this subscription delivers to.
    pub fn peer(&self) -> &Peer {
        &self.peer
    }

    /// Whether the session of this connection was revoked (the transport then stops taking
    /// requests on it; [`Subscription::next`] ends with [`Closed::SessionEnded`]).
    pub fn session_ended(&self) -> bool {
        self.reg.end.is_ended()
    }

    /// The next message for this connection: the backlog in stored order, then live ones.
    /// Cancel-safe.
    pub async fn next(&mut self) -> Result<Arc<Delivery>, Closed> {
        loop {
            if *self.stop.borrow() {
                return Err(Closed::Shutdown);
            }
            if self.reg.end.is_ended() {
                return Err(Closed::SessionEnded);
            }
            if let Some(d) = self.pending.pop_front() {
                if self.sent.insert(d.seq) {
                    crate::metrics::message_delivered();
                    return Ok(d);
                }
                continue;
            }
            if self.check.is_some() {
                self.read_page().await?;
                continue;
            }
            // Seqs of messages acknowledged on other connections pile up in `sent`; a re-read
            // of the mailbox forgets them.
            let limit = self.sesame.settings().relay.mailbox_max_messages;
            if self.sent.len() as u64 > limit.saturating_mul(2).max(1024) {
                self.check = Some(Check::default());
                continue;
            }
            tokio::select! {
                notice = self.reg.rx.recv() => match notice {
                    Some(Notice::Message(d)) => self.pending.push_back(d),
                    Some(Notice::Check) => self.check = Some(Check::default()),
                    None => return Err(Closed::SlowConsumer),
                },
                () = self.reg.kick.notified() => return Err(Closed::SlowConsumer),
                () = self.reg.end.wait() => return Err(Closed::SessionEnded),
                _ = self.stop.changed() => return Err(Closed::Shutdown),
                () = tokio::time::sleep_until(self.next_session_check) => {
                    self.check_session().await?;
                }
            }
        }
    }

    /// Reads the next page of the mailbox into `pending`.
    async fn read_page(&mut self) -> Result<(), Closed> {
        let after = self.check.as_ref().map_or(0, |c| c.after);
        let rows = self
            .sesame
            .store()
            .messages_after(self.peer.user_id, after, PAGE)
            .await
            .map_err(|e| {
                tracing::error!(%e, user = %self.peer.user_id, "reading a mailbox failed");
                Closed::Failed
            })?;
        let last_page = rows.len() < PAGE as usize;
        let mut check = self.check.take().unwrap_or_default();
        // A backlog is mostly runs of messages from the same sender: its name is opened once
        // per run, not once per message.
        let mut last_sender: Option<(Uuid, Vec<u8>, String)> = None;
        for row in rows {
            check.seen.insert(row.seq);
            check.after = row.seq;
            let from = match &last_sender {
                Some((id, sealed, name))
                    if *id == row.sender_id && *sealed == row.sender_sealed =>
                {
                    name.clone()
                }
                _ => {
                    let Some(name) = self.open_sender(&row) else {
                        continue;
                    };
                    last_sender = Some((row.sender_id, row.sender_sealed.clone(), name.clone()));
                    name
                }
            };
            self.pending.push_back(Arc::new(self.delivery(row, from)));
        }
        if last_page {
            // Anything sent earlier, read over in this pass but no longer stored, is gone for
            // good (seqs are never reused).
            let (seen, last) = (check.seen, check.after);
            self.sent.retain(|s| *s > last || seen.contains(s));
        } else {
            self.check = Some(check);
        }
        Ok(())
    }

    /// The sender's name of a stored message; `None` (logged) if it does not decrypt.
    fn open_sender(&self, row: &MessageRecord) -> Option<String> {
        let from = self.sesame.open_username(row.sender_id, &row.sender_sealed);
        if from.is_none() {
            tracing::error!(
                seq = row.seq,
                "a stored message's sender does not decrypt; skipped"
            );
        }
        from
    }

    fn delivery(&self, row: MessageRecord, from: String) -> Delivery {
        Delivery {
            seq: row.seq,
            id: row.msg_id,
            from,
            to: self.peer.username.clone(),
            sent_at: u64::try_from(row.sent_at).unwrap_or(0),
            ciphertext: row.ciphertext,
            signature: row.signature,
        }
    }

    /// Ends the subscription if its session was revoked or expired. The next check is
    /// scheduled only once this one completed: cancelled halfway (the transport's `select!`
    /// finished on another branch), it runs again at once.
    async fn check_session(&mut self) -> Result<(), Closed> {
        let now = i64::try_from(self.sesame.now()).unwrap_or(i64::MAX);
        match self
            .sesame
            .store()
            .session_by_id(self.peer.session_id)
            .await
        {
            Ok(Some(s))
                if s.user_id == self.peer.user_id
                    && s.idle_expires_at > now
                    && s.absolute_expires_at > now =>
            {
                self.next_session_check = Instant::now() + SESSION_CHECK;
                Ok(())
            }
            Ok(_) => Err(Closed::SessionEnded),
            Err(e) => {
                // A database hiccup is not a reason to drop the client; try again later.
                tracing::warn!(%e, "relay session check failed");
                self.next_session_check = Instant::now() + SESSION_CHECK;
                Ok(())
            }
        }
    }
}
