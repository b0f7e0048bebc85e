//! The peer generator: the same senders (window, pacing, payload) and recipients as the
//! Sesame relay arms, over NATS (core and JetStream) and Redis pub/sub connections.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt as _};
use redis::AsyncCommands as _;
use tokio::time::Instant;

use crate::stats::Recorder;

use super::super::relay::SendPlan;

/// The answer to one publish: the broker accepted it (or an error kind).
pub(super) type AckFuture = Pin<Box<dyn Future<Output = Result<(), &'static str>> + Send>>;

/// A stream of deliveries: the send time in the payload (µs since the arm's epoch), or an
/// error kind.
pub(super) type Deliveries =
    Pin<Box<dyn futures_util::Stream<Item = Result<u64, &'static str>> + Send>>;

/// A sender's connection to a broker.
pub(super) enum Outlet {
    /// Redis `PUBLISH` on a multiplexed connection: answered by the subscriber count.
    Redis(redis::aio::MultiplexedConnection),
    /// Core NATS `PUB`: not answered per message; a `flush` (PING/PONG) after every
    /// `window` messages bounds what is unanswered.
    Nats(async_nats::Client),
    /// JetStream publish: answered by the stream's acknowledgement once stored.
    JetStream(async_nats::jetstream::Context),
}

impl Outlet {
    /// Publishes message number `n`; `Some` answer to wait for, or `None` when it already
    /// counts as accepted.
    async fn send(
        &mut self,
        subject: &str,
        payload: Vec<u8>,
        n: u64,
        window: usize,
    ) -> Result<Option<AckFuture>, &'static str> {
        match self {
            Outlet::Redis(conn) => {
                let (mut conn, subject) = (conn.clone(), subject.to_owned());
                Ok(Some(Box::pin(async move {
                    conn.publish(subject, payload)
                        .await
                        .map(|_subscribers: usize| ())
                        .map_err(|_| "publish")
                })))
            }
            Outlet::Nats(client) => {
                client
                    .publish(subject.to_owned(), payload.into())
                    .await
                    .map_err(|_| "publish")?;
                if (n + 1).is_multiple_of(window.max(1) as u64) {
                    client.flush().await.map_err(|_| "flush")?;
                }
                Ok(None)
            }
            Outlet::JetStream(ctx) => {
                let ack = ctx
                    .publish(subject.to_owned(), payload.into())
                    .await
                    .map_err(|_| "publish")?;
                Ok(Some(Box::pin(async move {
                    ack.await.map(drop).map_err(|_| "publish_ack")
                })))
            }
        }
    }

    /// Waits until everything published so far reached the broker (core NATS only).
    async fn finish(&mut self) -> Result<(), &'static str> {
        match self {
            Outlet::Nats(client) => client.flush().await.map_err(|_| "flush"),
            _ => Ok(()),
        }
    }
}

/// What one sender did.
pub(super) struct SentTotals {
    pub(super) sent: u64,
    pub(super) accepted: u64,
    pub(super) rec: Recorder,
    pub(super) last_accept: Instant,
}

/// `micros` (big-endian) followed by `body`: the peers carry the send time in the payload.
fn payload(micros: u64, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + body.len());
    p.extend_from_slice(&micros.to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// The send time in a payload, if it has the expected length.
pub(super) fn payload_micros(p: &[u8], body_len: usize) -> Result<u64, &'static str> {
    if p.len() != 8 + body_len {
        return Err("payload_altered");
    }
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[..8]);
    Ok(u64::from_be_bytes(b))
}

/// One sender: the same loop as the Sesame senders (at most `plan.window` unanswered, paced
/// or as fast as the window allows, stops at the deadline or the budget).
pub(super) async fn run_sender(
    mut out: Outlet,
    subject: String,
    body: Arc<Vec<u8>>,
    epoch: Instant,
    plan: SendPlan,
) -> SentTotals {
    let mut rec = Recorder::default();
    let mut inflight: FuturesUnordered<AckFuture> = FuturesUnordered::new();
    let (mut sent, mut accepted) = (0u64, 0u64);
    let mut next_at = Instant::now();
    let mut last_accept = epoch;
    loop {
        let now = Instant::now();
        let sending = now < plan.deadline && sent < plan.max;
        if (!sending && inflight.is_empty()) || now >= plan.give_up {
            break;
        }
        let due = plan.interval.is_none() || now >= next_at;
        if sending && inflight.len() < plan.window && due {
            let intended = match plan.interval {
                Some(iv) => {
                    let at = next_at;
                    next_at += iv;
                    at
                }
                None => now,
            };
            let micros = intended.saturating_duration_since(epoch).as_micros() as u64;
            match out
                .send(&subject, payload(micros, &body), sent, plan.window)
                .await
            {
                Ok(Some(ack)) => inflight.push(ack),
                Ok(None) => {
                    accepted += 1;
                    last_accept = Instant::now();
                }
                Err(kind) => {
                    rec.error(kind);
                    break;
                }
            }
            sent += 1;
            continue;
        }
        let wake = if sending && inflight.len() < plan.window {
            next_at.min(plan.deadline)
        } else if sending {
            plan.deadline
        } else {
            plan.give_up
        };
        tokio::select! {
            Some(r) = inflight.next(), if !inflight.is_empty() => match r {
                Ok(()) => {
                    accepted += 1;
                    last_accept = Instant::now();
                }
                Err(kind) => rec.error(kind),
            },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    if let Err(kind) = out.finish().await {
        rec.error(kind);
    }
    if !inflight.is_empty() {
        *rec.errors.entry("unanswered".into()).or_default() += inflight.len() as u64;
    }
    SentTotals {
        sent,
        accepted,
        rec,
        last_accept,
    }
}

/// What one recipient received.
pub(super) struct ReceivedTotals {
    pub(super) rec: Recorder,
    pub(super) last_receive: Option<Instant>,
}

/// One recipient: reads deliveries until `stop`, `expected` of them or `give_up`; latency
/// from the send time in the payload, or from `since` when given.
pub(super) async fn run_recipient(
    mut deliveries: Deliveries,
    epoch: Instant,
    since: Option<Instant>,
    expected: Option<u64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    received_total: Arc<AtomicU64>,
    give_up: Instant,
) -> ReceivedTotals {
    let mut rec = Recorder::default();
    let mut last_receive = None;
    loop {
        if expected.is_some_and(|n| rec.ok >= n) || *stop.borrow() || Instant::now() >= give_up {
            break;
        }
        tokio::select! {
            d = deliveries.next() => match d {
                Some(Ok(micros)) => {
                    let now = Instant::now();
                    let from = since.unwrap_or(epoch + Duration::from_micros(micros));
                    rec.ok(now.saturating_duration_since(from));
                    last_receive = Some(now);
                    received_total.fetch_add(1, Ordering::Relaxed);
                }
                Some(Err(kind)) => rec.error(kind),
                None => { rec.error("closed"); break; }
            },
            _ = stop.changed() => {}
            () = tokio::time::sleep_until(give_up) => {}
        }
    }
    ReceivedTotals { rec, last_receive }
}

/// The process id of the first process whose command name is `comm` (the local broker, for
/// its CPU use); `None` when not found or not readable.
pub(super) fn pid_of(comm: &str) -> Option<u32> {
    let dir = std::fs::read_dir("/proc").ok()?;
    dir.filter_map(Result::ok).find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let name = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (name.trim() == comm).then_some(pid)
    })
}
