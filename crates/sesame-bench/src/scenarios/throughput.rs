//! P5: the relay with online pairs over `/ws`: throughput, latency at a fixed offered rate,
//! and memory per idle connection.

use std::sync::Arc;
use std::time::Duration;

use crate::opaque::BenchClient;
use crate::stats::{Comparison, Scenario};
use crate::target::BenchServer;

use super::idle::{idle_connections, raise_nofile};
use super::relay::{make_pairs, relay_arm, Pair, SendPlan};
use super::{start, Options};

pub(super) async fn p5(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(
        "p5",
        "message relay: online pairs over /ws, throughput, latency at a fixed rate, idle connections",
    );
    raise_nofile(&mut s);
    let (server, bc) = start(o, &mut s).await?;
    let n = o.pairs.max(1);
    let pairs = make_pairs(&bc, "p5", n, o.message_bytes).await?;
    s.notes.push(format!(
        "{n} pairs, {} B plaintext ({} B ciphertext); one message in {} sealed+signed afresh and \
         verified+opened by the recipient, the others reuse the pair's genuine sealed template \
         under a fresh id (the relay never decrypts or verifies)",
        o.message_bytes,
        pairs[0].template.ciphertext.0.len(),
        o.verify_every
    ));

    if !o.ack {
        s.notes
            .push("diagnostic run: recipients did not acknowledge (--no-ack)".into());
    }
    // Idle connections first, on a server that has carried no message traffic yet.
    if o.idle_connections > 0 {
        idle_connections(o, &server, &bc, &pairs, &mut s).await?;
    }

    let window = o.window.max(1);
    let (throughput, _) = relay_arm(
        &format!("relay throughput (window {window})"),
        &server,
        &bc,
        &pairs,
        |epoch| SendPlan {
            window,
            interval: None,
            max: o.max_requests,
            deadline: epoch + o.duration,
            give_up: epoch + o.duration + o.grace,
        },
        o,
    )
    .await?;
    s.comparisons.push(Comparison::at_least(
        "relay messages/s delivered",
        throughput.per_second,
        " msg/s",
        20_000.0,
    ));
    s.arms.push(throughput);

    paced_arm(o, &server, &bc, &pairs, window, &mut s).await?;
    server.stop().await;
    Ok(s)
}

/// P5's latency arm: an open loop at the offered rate.
async fn paced_arm(
    o: &Options,
    server: &BenchServer,
    bc: &BenchClient,
    pairs: &[Arc<Pair>],
    window: usize,
    s: &mut Scenario,
) -> anyhow::Result<()> {
    let n = pairs.len();
    let rate = o.rate.max(1);
    let interval = Duration::from_secs_f64(n as f64 / rate as f64);
    let per_sender = (rate * o.duration.as_secs().max(1)).div_ceil(n as u64);
    let (paced, _) = relay_arm(
        &format!("relay at {rate} msg/s offered"),
        server,
        bc,
        pairs,
        |epoch| SendPlan {
            window: window.saturating_mul(4),
            interval: Some(interval),
            max: per_sender.min(o.max_requests),
            deadline: epoch + o.duration,
            give_up: epoch + o.duration + o.grace,
        },
        o,
    )
    .await?;
    s.comparisons.push(Comparison::at_least(
        &format!("delivered share of the {rate} msg/s offered"),
        100.0 * paced.per_second / rate as f64,
        "%",
        95.0,
    ));
    s.comparisons.push(Comparison::at_most(
        &format!("p99 delivery latency at {rate} msg/s"),
        paced.p99_ms,
        " ms",
        50.0,
        true,
    ));
    s.notes.push(format!(
        "latency arm: open loop, each sender one message every {} (latency from the intended \
         send time), at most {} unanswered per sender",
        humantime::format_duration(interval),
        window.saturating_mul(4)
    ));
    s.arms.push(paced);
    Ok(())
}
