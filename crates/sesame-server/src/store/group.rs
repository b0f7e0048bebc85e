//! Group commit: one task that commits the hot writes of every request in batches.
//!
//! The writes that come at request rate are a completed login (session, `last_login_at`,
//! audit row), a relay message and a relay acknowledgement. Committed one by one, each
//! waits for its own commit (with SQLite's `synchronous=FULL`, an `fsync`) behind SQLite's
//! single writer, so the server is bounded by the disk's commit rate while its cores sit
//! idle. Here a request hands its write to the [`GroupWriter`] ([`GroupWriter::login`],
//! [`GroupWriter::insert`], [`GroupWriter::ack`]) and waits for the outcome; the writer
//! takes everything queued (up to [`MAX_BATCH`] writes), applies the logins in one
//! transaction ([`Store::create_login_sessions`]) and the messages and acknowledgements in
//! another ([`write_messages`](super::MessageStore::write_messages)), and answers each. While one batch commits,
//! the next one queues, so batches grow with the load and a lone write commits at once.
//!
//! The durability promise is unchanged: a write is reported done only after the transaction
//! holding it committed. If a batch fails, its writes are retried one by one so that one
//! bad write (a recipient deleted in the meantime, say) fails alone.
//!
//! Writes are queued in the order they are handed over and a batch applies its inserts in
//! that order, so the messages of one relay connection are stored in the order it sent
//! them. The queue itself is unbounded; what bounds it is the requests in flight (each
//! waits for its write), each relay connection's limit on writes in flight (`relay/ws.rs`)
//! and the TCP protocol's one request at a time.

use std::future::Future;
use std::ops::Range;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{MessageAck, MessageInsert, NewAuditEvent, NewMessage, NewSession, Store, StoreError};

/// Most writes in one transaction.
pub const MAX_BATCH: usize = 512;

/// A completed login's writes: the session and its audit row.
pub type LoginWrite = (NewSession, NewAuditEvent);

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Job {
    Login(LoginWrite, Reply<()>),
    Insert(NewMessage, Reply<MessageInsert>),
    /// The acknowledgements of one relay frame (one or many ids of one mailbox).
    Ack(Vec<MessageAck>, Reply<()>),
}

/// A handle on the writer task; the task ends when the last handle is dropped.
#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for GroupWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupWriter").finish_non_exhaustive()
    }
}

impl GroupWriter {
    /// Starts the writer task on the current Tokio runtime; messages are stored with the
    /// mailbox limit `mailbox_max`.
    pub fn start(store: Arc<dyn Store>, mailbox_max: u64) -> GroupWriter {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(store, mailbox_max, rx));
        GroupWriter { jobs }
    }

    /// Queues a completed login now (what [`Store::create_login_sessions`] writes) and
    /// returns a future that resolves once it is committed.
    pub fn login(
        &self,
        session: NewSession,
        audit: NewAuditEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self.jobs.send(Job::Login((session, audit), tx)).is_ok();
        async move { answer(queued, rx).await }
    }

    /// Queues `message` now and returns a future that resolves once it is committed (or
    /// found to be a duplicate, or refused because the mailbox is full).
    pub fn insert(
        &self,
        message: NewMessage,
    ) -> impl Future<Output = Result<MessageInsert, StoreError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self.jobs.send(Job::Insert(message, tx)).is_ok();
        async move { answer(queued, rx).await }
    }

    /// Queues the deletion of acknowledged messages now (all of one relay frame: they are
    /// deleted in the same transaction, with one `DELETE … IN (…)` per mailbox) and returns a
    /// future that resolves once it is committed.
    pub fn ack(
        &self,
        acks: Vec<MessageAck>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        let queued = self.jobs.send(Job::Ack(acks, tx)).is_ok();
        async move { answer(queued, rx).await }
    }
}

async fn answer<T>(
    queued: bool,
    rx: oneshot::Receiver<Result<T, StoreError>>,
) -> Result<T, StoreError> {
    if !queued {
        return Err(StoreError::Database(sqlx::Error::PoolClosed));
    }
    rx.await
        .unwrap_or(Err(StoreError::Database(sqlx::Error::PoolClosed)))
}

async fn run(store: Arc<dyn Store>, mailbox_max: u64, mut rx: mpsc::UnboundedReceiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        crate::metrics::write_batch(jobs.len());
        apply(&*store, mailbox_max, std::mem::take(&mut jobs)).await;
    }
}

/// Applies one batch and answers every job in it.
async fn apply(store: &dyn Store, mailbox_max: u64, jobs: Vec<Job>) {
    let mut logins = Vec::new();
    let mut login_replies = Vec::new();
    let mut acks = Vec::new();
    let mut ack_replies = Vec::new();
    let mut inserts = Vec::new();
    let mut insert_replies = Vec::new();
    for job in jobs {
        match job {
            Job::Login(l, reply) => {
                logins.push(l);
                login_replies.push(reply);
            }
            Job::Insert(m, reply) => {
                inserts.push(m);
                insert_replies.push(reply);
            }
            Job::Ack(a, reply) => {
                let start = acks.len();
                acks.extend(a);
                ack_replies.push((start..acks.len(), reply));
            }
        }
    }
    if !logins.is_empty() {
        apply_logins(store, &logins, login_replies).await;
    }
    if !acks.is_empty() || !inserts.is_empty() {
        apply_messages(
            store,
            mailbox_max,
            &acks,
            ack_replies,
            &inserts,
            insert_replies,
        )
        .await;
    }
}

async fn apply_logins(store: &dyn Store, logins: &[LoginWrite], replies: Vec<Reply<()>>) {
    match store.create_login_sessions(logins).await {
        Ok(()) => {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(err) if logins.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(err));
            }
        }
        Err(err) => {
            tracing::warn!(%err, "login batch failed; retrying its logins one by one");
            for (login, reply) in logins.iter().zip(replies) {
                let done = store
                    .create_login_sessions(std::slice::from_ref(login))
                    .await;
                let _ = reply.send(done);
            }
        }
    }
}

async fn apply_messages(
    store: &dyn Store,
    mailbox_max: u64,
    acks: &[MessageAck],
    ack_replies: Vec<(Range<usize>, Reply<()>)>,
    inserts: &[NewMessage],
    mut insert_replies: Vec<Reply<MessageInsert>>,
) {
    match store.write_messages(acks, inserts, mailbox_max).await {
        Ok(outcomes) => {
            for (reply, outcome) in insert_replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
            for (_, reply) in ack_replies {
                let _ = reply.send(Ok(()));
            }
        }
        Err(err) if ack_replies.len() + inserts.len() > 1 => {
            tracing::warn!(%err, "relay batch failed; retrying its writes one by one");
            for (range, reply) in ack_replies {
                let done = store.write_messages(&acks[range], &[], mailbox_max).await;
                let _ = reply.send(done.map(|_| ()));
            }
            for (m, reply) in inserts.iter().zip(insert_replies) {
                let _ = reply.send(store.insert_message(m, mailbox_max).await);
            }
        }
        Err(err) => {
            // A batch of one: its only job gets the error.
            if let Some(reply) = insert_replies.pop() {
                let _ = reply.send(Err(err));
            } else if let Some((_, reply)) = ack_replies.into_iter().next() {
                let _ = reply.send(Err(err));
            }
        }
    }
}
