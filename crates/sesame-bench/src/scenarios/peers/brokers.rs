//! The peer arms: fan-out to online subscribers (Redis pub/sub, core NATS) and a durable
//! JetStream stream stored and then drained by pull consumers with acknowledgements.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt as _;
use tokio::time::Instant;

use crate::cpu::CpuSnap;
use crate::stats::{Arm, Recorder};

use super::super::relay::SendPlan;
use super::driver::{
    payload_micros, pid_of, run_recipient, run_sender, Deliveries, Outlet, SentTotals,
};

/// A broker for the fan-out arms.
#[derive(Clone)]
pub(super) enum Broker {
    /// Redis pub/sub at this URL.
    Redis(String),
    /// Core NATS at this URL.
    Nats(String),
}

impl Broker {
    /// The broker's process name (for its CPU use).
    fn comm(&self) -> &'static str {
        match self {
            Broker::Redis(_) => "redis-server",
            Broker::Nats(_) => "nats-server",
        }
    }

    /// A subscriber on `subject`, ready (the subscription is confirmed) when this returns.
    async fn subscribe(&self, subject: &str, body_len: usize) -> anyhow::Result<Deliveries> {
        match self {
            Broker::Redis(url) => {
                let client = redis::Client::open(url.as_str())?;
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(subject).await?;
                Ok(Box::pin(ps.into_on_message().map(move |m| {
                    payload_micros(m.get_payload_bytes(), body_len)
                })))
            }
            Broker::Nats(url) => {
                let client = async_nats::connect(url.as_str()).await?;
                let sub = client.subscribe(subject.to_owned()).await?;
                client.flush().await?;
                // The subscriber keeps its connection open.
                Ok(Box::pin(
                    sub.map(move |m| payload_micros(&m.payload, body_len)),
                ))
            }
        }
    }

    /// A sender's connection.
    async fn outlet(&self) -> anyhow::Result<Outlet> {
        Ok(match self {
            Broker::Redis(url) => Outlet::Redis(
                redis::Client::open(url.as_str())?
                    .get_multiplexed_async_connection()
                    .await?,
            ),
            Broker::Nats(url) => Outlet::Nats(async_nats::connect(url.as_str()).await?),
        })
    }
}

/// Joins sender tasks: records merged, sent, accepted, last acceptance.
async fn join_senders(
    mut set: tokio::task::JoinSet<(usize, SentTotals)>,
    n: usize,
    epoch: Instant,
) -> anyhow::Result<(Recorder, u64, Vec<u64>, Instant)> {
    let mut rec = Recorder::default();
    let mut sent = 0;
    let mut per = vec![0u64; n];
    let mut last = epoch;
    while let Some(r) = set.join_next().await {
        let (i, t) = r.context("sender task")?;
        rec.merge(&t.rec);
        sent += t.sent;
        per[i] = t.accepted;
        last = last.max(t.last_accept);
    }
    Ok((rec, sent, per, last))
}

/// Joins recipient tasks: records merged, last delivery (`epoch` if none).
async fn join_recipients(
    mut set: tokio::task::JoinSet<super::driver::ReceivedTotals>,
    epoch: Instant,
) -> anyhow::Result<(Recorder, Instant)> {
    let mut rec = Recorder::default();
    let mut last = epoch;
    while let Some(r) = set.join_next().await {
        let r = r.context("recipient task")?;
        rec.merge(&r.rec);
        if let Some(t) = r.last_receive {
            last = last.max(t);
        }
    }
    Ok((rec, last))
}

/// Counts the undelivered and the senders' errors into the recipients' record.
fn fold_errors(recv: &mut Recorder, send: &Recorder, accepted: u64) {
    let undelivered = accepted.saturating_sub(recv.ok);
    if undelivered > 0 {
        *recv.errors.entry("undelivered".into()).or_default() += undelivered;
    }
    for (k, v) in &send.errors {
        *recv.errors.entry(format!("send_{k}")).or_default() += v;
    }
}

/// One fan-out arm: `n` sender/subscriber pairs, each on its own connections and subject,
/// sending `body` by `plan_of(epoch)`; latency = send → subscriber receive.
pub(super) async fn fanout_arm(
    name: &str,
    broker: &Broker,
    n: usize,
    body: Arc<Vec<u8>>,
    plan_of: impl Fn(Instant) -> SendPlan,
    grace: Duration,
) -> anyhow::Result<Arm> {
    let tag = super::super::run_tag();
    let subjects: Vec<String> = (0..n).map(|i| format!("sesame-bench.{tag}.{i}")).collect();
    let mut subs = Vec::with_capacity(n);
    let mut outs = Vec::with_capacity(n);
    for s in &subjects {
        subs.push(broker.subscribe(s, body.len()).await.context("subscribe")?);
        outs.push(broker.outlet().await.context("connect sender")?);
    }
    let received = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let pid = pid_of(broker.comm());
    let cpu = CpuSnap::take(pid);
    let epoch = Instant::now();
    let plan = plan_of(epoch);
    let give_up = plan.give_up + grace;
    let mut rset = tokio::task::JoinSet::new();
    for d in subs {
        let (stop, total) = (stop_rx.clone(), received.clone());
        rset.spawn(run_recipient(d, epoch, None, None, stop, total, give_up));
    }
    let mut sset = tokio::task::JoinSet::new();
    for (i, (out, subject)) in outs.into_iter().zip(subjects).enumerate() {
        let body = body.clone();
        sset.spawn(async move { (i, run_sender(out, subject, body, epoch, plan).await) });
    }
    let (send_rec, sent, per, last_accept) = join_senders(sset, n, epoch).await?;
    let accepted: u64 = per.iter().sum();
    while received.load(Ordering::Relaxed) < accepted && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let (mut recv, last) = join_recipients(rset, epoch).await?;
    fold_errors(&mut recv, &send_rec, accepted);
    let elapsed = last
        .saturating_duration_since(epoch)
        .max(Duration::from_millis(1));
    let mut arm = recv.finish(name, n, elapsed);
    arm.cpu = Some(cpu.until(&CpuSnap::take(pid), arm.ops));
    arm.notes.push(format!(
        "sent {sent}, accepted {accepted} ({:.1}/s until the last accept), delivered {}; \
         CPU \"server\" = the {} process",
        accepted as f64
            / last_accept
                .saturating_duration_since(epoch)
                .as_secs_f64()
                .max(1e-3),
        recv.ok,
        broker.comm()
    ));
    Ok(arm)
}

/// JetStream's store and drain arms on a fresh file-backed stream, deleted afterwards.
pub(super) async fn jetstream_arms(
    url: &str,
    n: usize,
    body: Arc<Vec<u8>>,
    plan_of: impl Fn(Instant) -> SendPlan,
    drain_give_up: Duration,
) -> anyhow::Result<(Arm, Arm)> {
    let tag = super::super::run_tag();
    let name = format!("SESAME_BENCH_{tag}");
    let admin = jetstream::new(async_nats::connect(url).await.context("connect NATS")?);
    admin
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("sesame-bench.{tag}.>")],
            storage: stream::StorageType::File,
            ..Default::default()
        })
        .await
        .context("create the JetStream stream")?;
    let result = store_and_drain(url, &name, &tag, n, body, plan_of, drain_give_up).await;
    let deleted = admin.delete_stream(&name).await;
    let arms = result?;
    deleted.context("delete the JetStream stream")?;
    Ok(arms)
}

#[allow(clippy::too_many_arguments)]
async fn store_and_drain(
    url: &str,
    name: &str,
    tag: &str,
    n: usize,
    body: Arc<Vec<u8>>,
    plan_of: impl Fn(Instant) -> SendPlan,
    drain_give_up: Duration,
) -> anyhow::Result<(Arm, Arm)> {
    let pid = pid_of("nats-server");
    let mut outs = Vec::with_capacity(n);
    for _ in 0..n {
        let client = async_nats::connect(url).await.context("connect sender")?;
        outs.push(Outlet::JetStream(jetstream::new(client)));
    }
    let cpu = CpuSnap::take(pid);
    let epoch = Instant::now();
    let plan = plan_of(epoch);
    let mut sset = tokio::task::JoinSet::new();
    for (i, out) in outs.into_iter().enumerate() {
        let (body, subject) = (body.clone(), format!("sesame-bench.{tag}.{i}"));
        sset.spawn(async move { (i, run_sender(out, subject, body, epoch, plan).await) });
    }
    let (mut store_rec, sent, per, last_accept) = join_senders(sset, n, epoch).await?;
    let stored: u64 = per.iter().sum();
    store_rec.ok = stored;
    let elapsed = last_accept
        .saturating_duration_since(epoch)
        .max(Duration::from_millis(1));
    let mut store = store_rec.finish(
        &format!("JetStream publish+ack (window {})", plan.window),
        n,
        elapsed,
    );
    store.cpu = Some(cpu.until(&CpuSnap::take(pid), stored));
    store.notes.push(format!(
        "sent {sent}, acknowledged (stored in a file-backed stream) {stored}; CPU \"server\" = \
         the nats-server process; latency columns not measured for this arm"
    ));
    let drain = drain(url, name, tag, &per, body.len(), pid, drain_give_up).await?;
    Ok((store, drain))
}

/// One durable pull consumer per pair on its subject, each reading its backlog and
/// acknowledging every message.
#[allow(clippy::too_many_arguments)]
async fn drain(
    url: &str,
    name: &str,
    tag: &str,
    per: &[u64],
    body_len: usize,
    pid: Option<u32>,
    give_up: Duration,
) -> anyhow::Result<Arm> {
    let stored: u64 = per.iter().sum();
    let received = Arc::new(AtomicU64::new(0));
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cpu = CpuSnap::take(pid);
    let t0 = Instant::now();
    let give_up = t0 + give_up;
    let mut rset = tokio::task::JoinSet::new();
    for (i, &expected) in per.iter().enumerate() {
        // Each reader on its own connection, as each Sesame recipient has its own WebSocket.
        let client = async_nats::connect(url).await.context("connect reader")?;
        let stream = jetstream::new(client)
            .get_stream(name)
            .await
            .context("get stream")?;
        let c: consumer::PullConsumer = stream
            .create_consumer(consumer::pull::Config {
                durable_name: Some(format!("reader-{i}")),
                filter_subject: format!("sesame-bench.{tag}.{i}"),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            })
            .await
            .context("create consumer")?;
        let messages = c.messages().await.context("consumer messages")?;
        let deliveries: Deliveries = Box::pin(messages.then(move |m| async move {
            let m = m.map_err(|_| "consume")?;
            let micros = payload_micros(&m.payload, body_len)?;
            m.ack().await.map_err(|_| "ack")?;
            Ok(micros)
        }));
        let (stop, total) = (stop_rx.clone(), received.clone());
        rset.spawn(run_recipient(
            deliveries,
            t0,
            Some(t0),
            Some(expected),
            stop,
            total,
            give_up,
        ));
    }
    let (mut rec, last) = join_recipients(rset, t0).await?;
    let missing = stored.saturating_sub(rec.ok);
    if missing > 0 {
        *rec.errors.entry("undelivered".into()).or_default() += missing;
    }
    let mut arm = rec.finish(
        "JetStream pull consumers drain+ack",
        per.len(),
        last.saturating_duration_since(t0)
            .max(Duration::from_millis(1)),
    );
    arm.cpu = Some(cpu.until(&CpuSnap::take(pid), arm.ops));
    arm.notes.push(format!(
        "delivered and acknowledged {} of {stored}; timed from creating the consumers; latency \
         columns = time into the drain at which a message arrived",
        rec.ok
    ));
    Ok(arm)
}
