//! P6: the relay with many idle connections open.

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

use crate::cpu::CpuSnap;
use crate::opaque::BenchClient;
use crate::stats::{Arm, Comparison, Recorder, Scenario};
use crate::target::BenchServer;

use super::relay::{connect_all, make_pairs, run_recipient, run_sender, AckMode, Pair, SendPlan};
use super::{run_tag, server_pid, start, Options};

pub(super) fn raise_nofile(s: &mut Scenario) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => s
            .notes
            .push(format!("open-files limit (soft) of the bench: {n}")),
        Err(e) => s
            .notes
            .push(format!("could not raise the open-files limit: {e}")),
    }
}

pub(super) async fn idle_connections(
    o: &Options,
    server: &BenchServer,
    bc: &BenchClient,
    pairs: &[Arc<Pair>],
    s: &mut Scenario,
) -> anyhow::Result<()> {
    let limit = rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft);
    let wanted = o.idle_connections as u64;
    let n = wanted.min(limit.saturating_sub(512)) as usize;
    if (n as u64) < wanted {
        s.notes.push(format!(
            "idle connections capped at {n} by the open-files limit {limit}"
        ));
    }
    let tokens = idle_tokens(pairs, n);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_kib();
    let bench_before = crate::target::rss_kib(std::process::id());
    let t0 = Instant::now();
    let conns = connect_all(bc, &tokens)
        .await
        .map_err(|e| anyhow::anyhow!("idle connections: {e}"))?;
    let connect_time = t0.elapsed();
    // Let the server settle (handshakes finished, subscriptions read their empty mailboxes).
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib();
    let bench_after = crate::target::rss_kib(std::process::id());
    let open = conns.len();
    drop(conns);
    let rec = Recorder {
        ok: open as u64,
        ..Recorder::default()
    };
    let mut arm = rec.finish(&format!("idle WebSockets opened ({n})"), 64, connect_time);
    if let (Some(b), Some(a), true) = (bench_before, bench_after, server.is_child()) {
        arm.notes.push(format!(
            "bench (client side, tokio-tungstenite with its default 128 KiB read buffer): \
             {:.1} KB per connection",
            (a as f64 - b as f64) * 1024.0 / 1000.0 / open.max(1) as f64
        ));
    }
    match (before, after) {
        (Some(b), Some(a)) => {
            let per = (a as f64 - b as f64) * 1024.0 / 1000.0 / open.max(1) as f64;
            arm.notes.push(format!(
                "server VmRSS {b} KiB before, {a} KiB with {open} idle connections"
            ));
            if server.is_child() {
                s.comparisons.push(Comparison::at_most(
                    "server memory per idle WebSocket",
                    per,
                    " KB",
                    20.0,
                    false,
                ));
            } else {
                arm.notes.push(format!(
                    "{per:.1} KB per connection, but the server shares this process with the \
                     clients (use --spawn process for the server's own figure)"
                ));
            }
        }
        _ => arm
            .notes
            .push("server RSS unknown (external server: no pid)".to_owned()),
    }
    s.arms.push(arm);
    // Give the server time to tear the connections down before the next arm.
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

/// `n` session tokens for idle connections, alternating senders and recipients of `pairs`.
fn idle_tokens(pairs: &[Arc<Pair>], n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            let p = &pairs[i % pairs.len()];
            if i % 2 == 0 {
                p.sender_token.clone()
            } else {
                p.recipient_token.clone()
            }
        })
        .collect()
}

/// P6's first arm: every sender sends to its offline recipient; the arm and the messages
/// stored per pair.
pub(super) async fn store_offline(
    o: &Options,
    server: &BenchServer,
    bc: &BenchClient,
    pairs: &[Arc<Pair>],
) -> anyhow::Result<(Arm, Vec<u64>)> {
    let n = pairs.len();
    let window = o.window.max(1);
    let tag = run_tag();
    let senders = connect_all(
        bc,
        &pairs
            .iter()
            .map(|p| p.sender_token.clone())
            .collect::<Vec<_>>(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("connect senders: {e}"))?;
    let accepted_total = Arc::new(AtomicU64::new(0));
    let cpu_store = CpuSnap::take(server_pid(server));
    let epoch = Instant::now();
    let plan = SendPlan {
        window,
        interval: None,
        max: o.max_requests,
        deadline: epoch + o.duration,
        give_up: epoch + o.duration + o.grace,
    };
    let mut sset = tokio::task::JoinSet::new();
    for (pair, mut relay) in pairs.iter().cloned().zip(senders) {
        let (tag, total) = (tag.clone(), accepted_total.clone());
        let every = o.verify_every;
        sset.spawn(async move {
            let r = run_sender(&mut relay, &pair, &tag, epoch, plan, every, &total).await;
            relay.close().await;
            (pair.index, r)
        });
    }
    let mut store_rec = Recorder::default();
    let mut per_pair = vec![0u64; n];
    let mut last_accept = epoch;
    let mut sent = 0;
    while let Some(r) = sset.join_next().await {
        let (i, r) = r.context("sender task")?;
        store_rec.merge(&r.rec);
        per_pair[i] = r.accepted;
        sent += r.sent;
        last_accept = last_accept.max(r.last_accept);
    }
    let stored: u64 = per_pair.iter().sum();
    store_rec.ok = stored;
    let store_elapsed = last_accept
        .saturating_duration_since(epoch)
        .max(Duration::from_millis(1));
    let mut store = store_rec.finish(
        &format!("store for offline recipients (window {window})"),
        n,
        store_elapsed,
    );
    store.cpu = Some(cpu_store.until(&CpuSnap::take(server_pid(server)), stored));
    store.notes.push(format!(
        "sent {sent}, accepted (durably stored) {stored}; latency columns not measured for this arm"
    ));

    Ok((store, per_pair))
}

/// P6's second arm: every recipient connects and reads its backlog.
pub(super) async fn drain_backlog(
    o: &Options,
    server: &BenchServer,
    bc: &BenchClient,
    pairs: &[Arc<Pair>],
    per_pair: &[u64],
    stored: u64,
) -> anyhow::Result<Arm> {
    let n = pairs.len();
    // Drain: every recipient connects and reads its backlog, acknowledging each message.
    let recipient_tokens: Vec<String> = pairs.iter().map(|p| p.recipient_token.clone()).collect();
    let cpu_drain = CpuSnap::take(server_pid(server));
    let t0 = Instant::now();
    let recipients = connect_all(bc, &recipient_tokens)
        .await
        .map_err(|e| anyhow::anyhow!("connect recipients: {e}"))?;
    let received_total = Arc::new(AtomicU64::new(0));
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let give_up = Instant::now() + o.duration.max(Duration::from_secs(1)) * 3 + o.grace;
    // Batched acknowledgements, as the client library drains a backlog.
    let ack = if o.ack {
        AckMode::Batched
    } else {
        AckMode::None
    };
    let mut rset = tokio::task::JoinSet::new();
    for (pair, mut relay) in pairs.iter().cloned().zip(recipients) {
        let expected = per_pair[pair.index];
        let (stop, total) = (stop_rx.clone(), received_total.clone());
        rset.spawn(async move {
            let r = run_recipient(
                &mut relay,
                &pair,
                t0,
                Some(t0),
                Some(expected),
                stop,
                &total,
                give_up,
                ack,
            )
            .await;
            relay.close().await;
            r
        });
    }
    let mut drain_rec = Recorder::default();
    let mut last = t0;
    let mut verified = 0;
    while let Some(r) = rset.join_next().await {
        let r = r.context("recipient task")?;
        drain_rec.merge(&r.rec);
        verified += r.verified;
        if let Some(t) = r.last_receive {
            last = last.max(t);
        }
    }
    let missing = stored.saturating_sub(drain_rec.ok);
    if missing > 0 {
        *drain_rec.errors.entry("undelivered".into()).or_default() += missing;
    }
    let mut drain = drain_rec.finish(
        "backlog drain on reconnect",
        n,
        last.saturating_duration_since(t0)
            .max(Duration::from_millis(1)),
    );
    drain.cpu = Some(cpu_drain.until(&CpuSnap::take(server_pid(server)), drain.ops));
    drain.notes.push(format!(
        "delivered {} of {stored} ({verified} sealed afresh and opened); timed from the first \
         connect; latency columns = time into the drain at which a message arrived",
        drain_rec.ok
    ));
    Ok(drain)
}

pub(super) async fn p6(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(
        "p6",
        "offline store: messages/s durably stored for offline recipients, backlog drain",
    );
    raise_nofile(&mut s);
    let (server, bc) = start(o, &mut s).await?;
    let n = o.pairs.max(1);
    let pairs = make_pairs(&bc, "p6", n, o.message_bytes).await?;
    let (store, per_pair) = store_offline(o, &server, &bc, &pairs).await?;
    let stored: u64 = per_pair.iter().sum();
    let drain = drain_backlog(o, &server, &bc, &pairs, &per_pair, stored).await?;
    s.comparisons.push(Comparison::at_least(
        "messages/s durably stored for offline recipients",
        store.per_second,
        " msg/s",
        5_000.0,
    ));
    s.comparisons.push(Comparison::at_least(
        "backlog drain rate / store rate",
        drain.per_second / store.per_second.max(1e-9),
        "x",
        10.0,
    ));
    s.notes.push(format!(
        "{n} pairs, {} B plaintext; recipients offline while senders send",
        o.message_bytes
    ));
    if !o.ack {
        s.notes
            .push("diagnostic run: recipients did not acknowledge (--no-ack)".into());
    }
    s.arms.push(store);
    s.arms.push(drain);
    server.stop().await;
    Ok(s)
}
