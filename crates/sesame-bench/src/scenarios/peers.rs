//! `peers`: Sesame's relay and offline store side by side with the brokers a user would pick
//! instead, in one run, with the same generator: the same number of sender/recipient pairs,
//! the same window of unanswered sends, the same pacing and payload size (the Sesame pairs'
//! sealed 1 KiB message, 8 bytes of send time in front).
//!
//! - P6 peer: JetStream publish with acknowledgement into a file-backed stream, then one
//!   durable pull consumer per recipient draining its backlog with acknowledgements.
//! - P5 peers: Redis pub/sub and core NATS fan-out to online subscribers, at full speed
//!   (window-bounded) and at P5's fixed offered rate.
//!
//! The brokers are the local ones: `SESAME_BENCH_NATS_URL` (default
//! `nats://127.0.0.1:4222`) and `SESAME_BENCH_REDIS_URL` (default `redis://127.0.0.1:6379`),
//! loopback only. Each run uses fresh subjects and a fresh stream, deleted afterwards.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::time::Instant;

use crate::stats::{Arm, Comparison, Scenario};

use super::idle::{drain_backlog, raise_nofile, store_offline};
use super::relay::{make_pairs, relay_arm, SendPlan};
use super::{start, Options};

mod brokers;
mod driver;

use brokers::{fanout_arm, jetstream_arms, Broker};

/// The NATS URL of the peer arms.
pub fn nats_url() -> String {
    std::env::var("SESAME_BENCH_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// The Redis URL of the peer arms.
pub fn redis_url() -> String {
    std::env::var("SESAME_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Refuses a broker that is not on loopback: the bench sends load nowhere else.
fn check_loopback(url: &str) -> anyhow::Result<()> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let hostport = rest.split(['/', '?']).next().unwrap_or("");
    let host = hostport.rsplit_once('@').map_or(hostport, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let ok = bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    anyhow::ensure!(ok, "peer brokers must be on loopback: {url}");
    Ok(())
}

/// The plans of the two fan-out arms: as fast as the window allows, and P5's paced arm.
struct Plans {
    window: usize,
    duration: Duration,
    grace: Duration,
    max: u64,
    interval: Duration,
    per_sender: u64,
}

impl Plans {
    fn new(o: &Options, n: usize) -> Plans {
        let rate = o.rate.max(1);
        Plans {
            window: o.window.max(1),
            duration: o.duration,
            grace: o.grace,
            max: o.max_requests,
            interval: Duration::from_secs_f64(n as f64 / rate as f64),
            per_sender: (rate * o.duration.as_secs().max(1)).div_ceil(n as u64),
        }
    }

    fn full(&self, epoch: Instant) -> SendPlan {
        SendPlan {
            window: self.window,
            interval: None,
            max: self.max,
            deadline: epoch + self.duration,
            give_up: epoch + self.duration + self.grace,
        }
    }

    fn paced(&self, epoch: Instant) -> SendPlan {
        SendPlan {
            window: self.window.saturating_mul(4),
            interval: Some(self.interval),
            max: self.per_sender.min(self.max),
            deadline: epoch + self.duration,
            give_up: epoch + self.duration + self.grace,
        }
    }
}

/// Sesame's four arms: store for offline recipients and drain on one server, then relay
/// throughput and the paced relay on a fresh one (as P6 and P5 each start their own), so no
/// message left from one part reaches the other.
async fn sesame_arms(o: &Options, s: &mut Scenario) -> anyhow::Result<(Arc<Vec<u8>>, [Arm; 4])> {
    let n = o.pairs.max(1);
    let (server, bc) = start(o, s).await?;
    let pairs = make_pairs(&bc, "peers", n, o.message_bytes).await?;
    let body = Arc::new(pairs[0].template.ciphertext.0.clone());
    let (store, per_pair) = store_offline(o, &server, &bc, &pairs).await?;
    let stored: u64 = per_pair.iter().sum();
    let drain = drain_backlog(o, &server, &bc, &pairs, &per_pair, stored).await?;
    server.stop().await;
    let (server, bc) = start(o, s).await?;
    let pairs = make_pairs(&bc, "peers", n, o.message_bytes).await?;
    let plans = Plans::new(o, n);
    let (full, _) = relay_arm(
        &format!("Sesame relay (window {})", plans.window),
        &server,
        &bc,
        &pairs,
        |e| plans.full(e),
        o,
    )
    .await?;
    let (paced, _) = relay_arm(
        &format!("Sesame relay at {} msg/s", o.rate.max(1)),
        &server,
        &bc,
        &pairs,
        |e| plans.paced(e),
        o,
    )
    .await?;
    server.stop().await;
    Ok((body, [store, drain, full, paced]))
}

/// Runs the `peers` scenario.
pub(super) async fn peers(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(
        "peers",
        "Sesame vs JetStream (durable store, drain) and Redis pub/sub / core NATS (fan-out)",
    );
    let (nats, redis) = (nats_url(), redis_url());
    check_loopback(&nats)?;
    check_loopback(&redis)?;
    raise_nofile(&mut s);
    let n = o.pairs.max(1);
    let (body, [store, drain, full, paced]) = sesame_arms(o, &mut s).await?;
    let plans = Plans::new(o, n);
    let give_up = o.duration.max(Duration::from_secs(1)) * 3 + o.grace;
    let (js_store, js_drain) = jetstream_arms(&nats, n, body.clone(), |e| plans.full(e), give_up)
        .await
        .context("JetStream")?;
    let rate = o.rate.max(1);
    let mut fanout = Vec::new();
    for (label, broker) in [
        ("Redis pub/sub", Broker::Redis(redis.clone())),
        ("core NATS", Broker::Nats(nats.clone())),
    ] {
        let name = format!("{label} (window {})", plans.window);
        let f = fanout_arm(&name, &broker, n, body.clone(), |e| plans.full(e), o.grace)
            .await
            .with_context(|| label.to_owned())?;
        let name = format!("{label} at {rate} msg/s");
        let p = fanout_arm(&name, &broker, n, body.clone(), |e| plans.paced(e), o.grace)
            .await
            .with_context(|| label.to_owned())?;
        fanout.push((label, f, p));
    }
    compare(&mut s, &store, &drain, &js_store, &js_drain);
    for (label, f, p) in &fanout {
        compare_fanout(&mut s, label, &full, &paced, f, p, rate);
    }
    s.notes.push(format!(
        "{n} pairs, window {} (x4 for the paced arms), {} B payloads (Sesame: the sealed \
         message in a JSON frame; peers: the same ciphertext bytes plus 8 bytes of send time); \
         each sender and each recipient on its own connection; brokers {nats} and {redis}",
        plans.window,
        body.len()
    ));
    s.notes.push(
        "Sesame checks every sender's session and stores every message durably before \
         accepting it (and deletes it on acknowledgement), also when the recipient is online; \
         Redis pub/sub and core NATS store nothing and check nobody"
            .into(),
    );
    s.arms
        .extend([store, drain, js_store, js_drain, full, paced]);
    for (_, f, p) in fanout {
        s.arms.extend([f, p]);
    }
    Ok(s)
}

fn compare(s: &mut Scenario, store: &Arm, drain: &Arm, js_store: &Arm, js_drain: &Arm) {
    s.comparisons.push(Comparison::at_least(
        "Sesame durable store / JetStream publish+ack",
        store.per_second / js_store.per_second.max(1e-9),
        "x",
        1.0,
    ));
    s.notes.push(format!(
        "Sesame backlog drain / JetStream drain: {:.2}x ({:.0} vs {:.0} msg/s; no target)",
        drain.per_second / js_drain.per_second.max(1e-9),
        drain.per_second,
        js_drain.per_second
    ));
}

fn compare_fanout(
    s: &mut Scenario,
    label: &str,
    full: &Arm,
    paced: &Arm,
    f: &Arm,
    p: &Arm,
    rate: u64,
) {
    s.comparisons.push(Comparison::at_least(
        &format!("Sesame relay / {label} fan-out msg/s"),
        full.per_second / f.per_second.max(1e-9),
        "x",
        0.5,
    ));
    s.notes.push(format!(
        "p99 delivery latency at {rate} msg/s, Sesame / {label}: {:.2}x ({:.3} vs {:.3} ms; \
         no target)",
        paced.p99_ms / p.p99_ms.max(1e-9),
        paced.p99_ms,
        p.p99_ms
    ));
}

#[cfg(test)]
mod tests;
