//! Cross-node delivery: the [`Doorbell`] of a cluster, through Redis pub/sub.
//!
//! Several nodes share one database and one Redis. A message stored by node A for a user
//! connected to node B must reach B's connection at once; the database stays the source of
//! truth, so what travels between nodes is only a notice, "new message for user X":
//!
//! * **Ring** ([`RedisDoorbell::ring`], on the sender's task, never blocking): the message goes
//!   to this node's own connections at once (the local [`Hub`], no database read), and the
//!   recipient's id into a bounded queue ([`RING_QUEUE`]). When the queue is full the notice is
//!   dropped (counted in [`RedisDoorbell::dropped_rings`]).
//! * **Publish** (one background task): drains the queue in batches of at most
//!   [`PUBLISH_BATCH`] distinct users and `PUBLISH`es each batch as one notice on the channel
//!   `<prefix>doorbell`: `<node id> <user id> <user id> …` (ids as 32 hex digits).
//! * **Subscribe** (one background task, its own pub/sub connection): every notice from another
//!   node makes the named users' connections on this node re-read their mailboxes
//!   ([`Hub::check`]); a burst of notices is coalesced first. The connection is checked with a
//!   `PING` every [`SUBSCRIPTION_PING`]; when it is lost the task reconnects with backoff
//!   (100 ms doubling to 5 s) and, once subscribed again, has every local connection re-read
//!   its mailbox, since notices published meanwhile are gone.
//! * **Sessions ended** ([`RedisDoorbell::publish_end`], awaited by the revoking request):
//!   `<node id> end:<user id>:<one|all>:<session id>` on the same channel (`all` with the
//!   session kept, nil for none); every other node closes the connections of those sessions
//!   ([`Hub::end_sessions`]). A lost notice leaves them to the connections' periodic session
//!   check.
//! * **Safety poll** (one background task): a connection that has not re-read its mailbox for
//!   [`SAFETY_POLL`] does so ([`Hub::check_idle`]). A notice lost any other way (a full queue,
//!   a failed `PUBLISH`, a node killed between its commit and its publish) thus delays a
//!   message by about [`SAFETY_POLL`] at most; it never loses one.
//! * **Presence** (one background task): `<prefix>presence:<user id>:<node id>` = `1` with a
//!   time to live of [`PRESENCE_TTL`], for every user with a live connection on this node.
//!   A new user's key is written within about a second, every key is refreshed every
//!   [`PRESENCE_REFRESH`], a user's key is deleted about a second after their last connection
//!   here closed, and all of this node's keys are deleted on a graceful shutdown. A node that
//!   crashed leaves keys that expire by themselves within [`PRESENCE_TTL`].
//!
//! Publishing is not skipped for users without presence: asking Redis whether anyone is
//! connected costs one round trip, as much as the `PUBLISH` it would save, and a presence key
//! written a moment after the check would turn the skip into a delayed message.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use ::redis::{Client, Msg, RedisError, Value};
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};
use uuid::Uuid;

use super::hub::{Doorbell, Hub, SessionsEnded};
use super::{Delivery, Relay};
use crate::ephemeral::{EphemeralError, REDIS_TIMEOUT};
#[cfg(test)]
use notice::parse_end;
use notice::{end_notice, notice, users_of};

/// The pub/sub channel, after the key prefix.
pub const DOORBELL_CHANNEL: &str = "doorbell";
/// Notices that may wait to be published; beyond this a ring is dropped.
pub const RING_QUEUE: usize = 4096;
/// Most users named in one published notice.
pub const PUBLISH_BATCH: usize = 256;
/// Lifetime of a presence key; a crashed node's keys are gone this long after its last refresh.
pub const PRESENCE_TTL: Duration = Duration::from_secs(30);
/// How often every presence key of this node is rewritten.
pub const PRESENCE_REFRESH: Duration = Duration::from_secs(10);
/// A connection re-reads its mailbox at least this often, notices or not.
pub const SAFETY_POLL: Duration = Duration::from_secs(10);
/// How often the subscription connection is checked with `PING`.
pub const SUBSCRIPTION_PING: Duration = Duration::from_secs(10);
/// How often the presence and safety-poll tasks run.
const TICK: Duration = Duration::from_secs(1);
/// Reconnection backoff of the subscription.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// Notices coalesced into one round of checks.
const COALESCE: usize = 1024;
/// Presence commands per pipeline.
const PRESENCE_CHUNK: usize = 1000;

/// The cluster [`Doorbell`]: rings this node's connections directly and every other node's
/// through Redis pub/sub. See the module documentation.
pub struct RedisDoorbell {
    node: Uuid,
    hub: Arc<Hub>,
    queue: mpsc::Sender<Uuid>,
    dropped: AtomicU64,
    running: watch::Sender<usize>,
    /// For [`RedisDoorbell::publish_end`].
    conn: ConnectionManager,
    channel: String,
}

impl std::fmt::Debug for RedisDoorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisDoorbell")
            .field("node", &self.node)
            .finish_non_exhaustive()
    }
}

impl RedisDoorbell {
    /// This node's id: a random UUID per process.
    pub fn node_id(&self) -> Uuid {
        self.node
    }

    /// Rings dropped because the publish queue was full, since start.
    pub fn dropped_rings(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Resolves once every background task has ended (after [`Relay::shutdown`]; the presence
    /// task withdraws this node's keys first).
    pub async fn stopped(&self) {
        let mut running = self.running.subscribe();
        let _ = running.wait_for(|n| *n == 0).await;
    }

    /// Tells every other node that sessions of `user` ended (this node's own connections are
    /// the caller's business). Waits for Redis at most [`REDIS_TIMEOUT`]; a failure is logged.
    pub async fn publish_end(&self, user: Uuid, which: SessionsEnded) {
        let mut cmd = ::redis::cmd("PUBLISH");
        cmd.arg(&self.channel)
            .arg(end_notice(self.node, user, which));
        let mut conn = self.conn.clone();
        if let Err(e) = bounded(cmd.query_async::<i64>(&mut conn)).await {
            tracing::warn!(
                cause = %e,
                %user,
                "doorbell: could not announce ended sessions (other nodes close them at their \
                 next session check)"
            );
        }
    }

    fn task(&self) -> TaskGuard {
        self.running.send_modify(|n| *n += 1);
        TaskGuard(self.running.clone())
    }
}

impl Doorbell for RedisDoorbell {
    fn ring(&self, recipient: Uuid, message: &Arc<Delivery>) {
        self.hub.ring(recipient, message);
        match self.queue.try_send(recipient) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Delivery to other nodes waits for their safety poll.
                if self
                    .dropped
                    .fetch_add(1, Ordering::Relaxed)
                    .is_multiple_of(1000)
                {
                    tracing::warn!(
                        "doorbell queue full: ring dropped (delivery waits for the poll)"
                    );
                }
            }
        }
    }
}

/// Counts a running background task for [`RedisDoorbell::stopped`].
struct TaskGuard(watch::Sender<usize>);

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

/// A cluster [`Relay`]: connects to Redis (failing within [`REDIS_TIMEOUT`] if it does not
/// answer) and starts the background tasks, which end after [`Relay::shutdown`].
pub(super) async fn relay(url: &str, prefix: &str) -> Result<Relay, EphemeralError> {
    let client =
        Client::open(url).map_err(|e| EphemeralError::Unavailable(format!("redis URL: {e}")))?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(REDIS_TIMEOUT))
        .set_response_timeout(Some(REDIS_TIMEOUT))
        .set_number_of_retries(3)
        .set_max_delay(Duration::from_millis(500));
    let conn = bounded(ConnectionManager::new_with_config(client.clone(), config))
        .await
        .map_err(|e| EphemeralError::Unavailable(format!("doorbell: {e}")))?;

    let mut relay = Relay::new();
    let (queue, rx) = mpsc::channel(RING_QUEUE);
    let doorbell = Arc::new(RedisDoorbell {
        node: Uuid::new_v4(),
        hub: relay.hub.clone(),
        queue,
        dropped: AtomicU64::new(0),
        running: watch::Sender::new(0),
        conn: conn.clone(),
        channel: format!("{prefix}{DOORBELL_CHANNEL}"),
    });
    let node = doorbell.node;
    let channel = doorbell.channel.clone();
    let hub = Arc::downgrade(&relay.hub);
    let stop = relay.stop.subscribe();
    tokio::spawn(publish_loop(
        conn.clone(),
        channel.clone(),
        node,
        rx,
        stop.clone(),
        doorbell.task(),
    ));
    tokio::spawn(subscribe_loop(
        client,
        channel,
        node,
        hub.clone(),
        stop.clone(),
        doorbell.task(),
    ));
    tokio::spawn(presence_loop(
        conn,
        prefix.to_owned(),
        node,
        hub.clone(),
        stop.clone(),
        doorbell.task(),
    ));
    tokio::spawn(poll_loop(hub, stop, doorbell.task()));
    relay.doorbell = doorbell.clone();
    relay.cluster = Some(doorbell);
    Ok(relay)
}

/// Runs one Redis call, failing after [`REDIS_TIMEOUT`].
async fn bounded<T>(
    call: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, String> {
    match tokio::time::timeout(REDIS_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("redis: {e}")),
        Err(_) => Err(format!("redis: no answer within {REDIS_TIMEOUT:?}")),
    }
}

/// Resolves when `stop` turns true (or its sender is gone).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Drains the ring queue into `PUBLISH`es until the relay stops (then publishes what is left)
/// or the doorbell is dropped.
async fn publish_loop(
    mut conn: ConnectionManager,
    channel: String,
    node: Uuid,
    mut rx: mpsc::Receiver<Uuid>,
    mut stop: watch::Receiver<bool>,
    _running: TaskGuard,
) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    let mut closing = false;
    let mut failing = false;
    loop {
        let first = if closing {
            rx.recv().await
        } else {
            tokio::select! {
                user = rx.recv() => user,
                () = stopping(&mut stop) => {
                    closing = true;
                    rx.close();
                    continue;
                }
            }
        };
        let Some(first) = first else {
            return;
        };
        batch.push(first);
        while batch.len() < PUBLISH_BATCH {
            match rx.try_recv() {
                Ok(user) => batch.push(user),
                Err(_) => break,
            }
        }
        batch.sort_unstable();
        batch.dedup();
        let mut cmd = ::redis::cmd("PUBLISH");
        cmd.arg(&channel).arg(notice(node, &batch));
        match bounded(cmd.query_async::<i64>(&mut conn)).await {
            Ok(_) if failing => {
                failing = false;
                tracing::info!("doorbell: publishing through Redis again");
            }
            Ok(_) => {}
            Err(e) if !failing => {
                failing = true;
                tracing::warn!(
                    cause = %e,
                    "doorbell: publish failed (other nodes deliver at their next poll)"
                );
            }
            Err(_) => {}
        }
        batch.clear();
    }
}

/// How a subscription ended.
enum Ended {
    /// The relay stopped or is gone: end the task.
    Stop,
    /// The connection failed: reconnect.
    Lost(String),
}

/// Keeps a subscription to the doorbell channel, reconnecting with backoff, and rings this
/// node's connections for every notice of another node.
async fn subscribe_loop(
    client: Client,
    channel: String,
    node: Uuid,
    hub: Weak<Hub>,
    mut stop: watch::Receiver<bool>,
    _running: TaskGuard,
) {
    let mut backoff = BACKOFF_MIN;
    let mut failing = false;
    loop {
        let connect = bounded(async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok(pubsub)
        });
        let connected = tokio::select! {
            r = connect => r,
            () = stopping(&mut stop) => return,
        };
        match connected {
            Ok(pubsub) => {
                if failing {
                    tracing::info!("doorbell: subscribed to Redis again");
                }
                backoff = BACKOFF_MIN;
                // Notices published while this node was not subscribed are lost: every local
                // connection reads its mailbox again.
                let Some(h) = hub.upgrade() else {
                    return;
                };
                for user in h.users() {
                    h.check(user);
                }
                drop(h);
                match listen(pubsub, node, &hub, &mut stop).await {
                    Ended::Stop => return,
                    Ended::Lost(cause) => {
                        failing = true;
                        tracing::warn!(%cause, "doorbell: lost the Redis subscription; reconnecting");
                    }
                }
            }
            Err(cause) => {
                if !failing {
                    tracing::warn!(%cause, "doorbell: cannot subscribe to Redis; retrying");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stopping(&mut stop) => return,
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Reads notices until the connection fails or the relay stops.
async fn listen(
    pubsub: PubSub,
    node: Uuid,
    hub: &Weak<Hub>,
    stop: &mut watch::Receiver<bool>,
) -> Ended {
    let (mut sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval_at(Instant::now() + SUBSCRIPTION_PING, SUBSCRIPTION_PING);
    ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut users = HashSet::new();
    let mut ends = Vec::new();
    loop {
        tokio::select! {
            msg = stream.next() => {
                let Some(msg) = msg else {
                    return Ended::Lost("the connection closed".into());
                };
                users.clear();
                ends.clear();
                collect(&msg, node, &mut users, &mut ends);
                // Coalesce a burst: one check per user for all the notices already here.
                let mut closed = false;
                for _ in 0..COALESCE {
                    match stream.next().now_or_never() {
                        Some(Some(msg)) => collect(&msg, node, &mut users, &mut ends),
                        Some(None) => {
                            closed = true;
                            break;
                        }
                        None => break,
                    }
                }
                let Some(h) = hub.upgrade() else {
                    return Ended::Stop;
                };
                for (user, which) in ends.drain(..) {
                    h.end_sessions(user, which);
                }
                for user in users.drain() {
                    h.check(user);
                }
                if closed {
                    return Ended::Lost("the connection closed".into());
                }
            }
            _ = ping.tick() => {
                if hub.strong_count() == 0 {
                    return Ended::Stop;
                }
                if let Err(e) = bounded(sink.ping::<Value>()).await {
                    return Ended::Lost(e);
                }
            }
            () = stopping(stop) => return Ended::Stop,
        }
    }
}

fn collect(
    msg: &Msg,
    node: Uuid,
    users: &mut HashSet<Uuid>,
    ends: &mut Vec<(Uuid, SessionsEnded)>,
) {
    users_of(msg.get_payload_bytes(), node, users, ends);
}

/// `<prefix>presence:<user>:<node>`.
fn presence_key(prefix: &str, user: Uuid, node: Uuid) -> String {
    format!("{prefix}presence:{user}:{node}")
}

/// Writes (`SET … PX`) the presence of `set` and deletes that of `gone`.
async fn write_presence(
    conn: &mut ConnectionManager,
    prefix: &str,
    node: Uuid,
    set: &[Uuid],
    gone: &[Uuid],
) -> Result<(), String> {
    let ttl = u64::try_from(PRESENCE_TTL.as_millis()).unwrap_or(u64::MAX);
    let commands = set
        .iter()
        .map(|u| (true, *u))
        .chain(gone.iter().map(|u| (false, *u)))
        .collect::<Vec<_>>();
    for chunk in commands.chunks(PRESENCE_CHUNK) {
        let mut pipe = ::redis::pipe();
        for (present, user) in chunk {
            let key = presence_key(prefix, *user, node);
            if *present {
                pipe.cmd("SET").arg(key).arg(1).arg("PX").arg(ttl).ignore();
            } else {
                pipe.cmd("DEL").arg(key).ignore();
            }
        }
        bounded(pipe.query_async::<()>(conn)).await?;
    }
    Ok(())
}

/// Keeps this node's presence keys in step with its live connections; deletes them all when
/// the relay stops.
async fn presence_loop(
    mut conn: ConnectionManager,
    prefix: String,
    node: Uuid,
    hub: Weak<Hub>,
    mut stop: watch::Receiver<bool>,
    _running: TaskGuard,
) {
    // Users whose key this node wrote and did not delete.
    let mut written: HashSet<Uuid> = HashSet::new();
    let mut next_full = Instant::now();
    let mut failing = false;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopping(&mut stop) => break,
        }
        let Some(h) = hub.upgrade() else {
            break;
        };
        let live: HashSet<Uuid> = h.users().into_iter().collect();
        drop(h);
        let now = Instant::now();
        let full = now >= next_full;
        let set: Vec<Uuid> = if full {
            live.iter().copied().collect()
        } else {
            live.difference(&written).copied().collect()
        };
        let gone: Vec<Uuid> = written.difference(&live).copied().collect();
        if !set.is_empty() || !gone.is_empty() {
            if let Err(cause) = write_presence(&mut conn, &prefix, node, &set, &gone).await {
                if !failing {
                    tracing::warn!(%cause, "doorbell: presence update failed; retrying");
                }
                failing = true;
                // Everything again at the next tick.
                next_full = now;
                continue;
            }
            if failing {
                tracing::info!("doorbell: presence recorded in Redis again");
            }
            failing = false;
        }
        written = live;
        if full {
            next_full = now + PRESENCE_REFRESH;
        }
    }
    if !written.is_empty() {
        let gone: Vec<Uuid> = written.into_iter().collect();
        let _ = write_presence(&mut conn, &prefix, node, &[], &gone).await;
    }
}

/// The safety poll: connections that have not read their mailbox for [`SAFETY_POLL`] do.
async fn poll_loop(hub: Weak<Hub>, mut stop: watch::Receiver<bool>, _running: TaskGuard) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = stopping(&mut stop) => return,
        }
        let Some(h) = hub.upgrade() else {
            return;
        };
        h.check_idle(SAFETY_POLL);
    }
}

mod notice;
#[cfg(test)]
mod tests;
