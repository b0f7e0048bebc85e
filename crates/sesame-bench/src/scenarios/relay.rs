//! P5: the relay, sender/recipient pairs over WebSockets, and the machinery P6 shares.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rand_core::{OsRng, RngCore as _};
use sesame_client::messaging::{MessagingError, Relay, ServerFrame};
use sesame_proto::e2e::{self, IdentityKeys, PublicIdentity, SealedMessage};
use tokio::time::Instant;

use crate::cpu::CpuSnap;
use crate::opaque::{BenchClient, OpError};
use crate::stats::{Arm, Comparison, Recorder, Scenario};
use crate::target::BenchServer;

use super::idle::{idle_connections, raise_nofile};
use super::{login_all, make_users, run_tag, server_pid, start, Options};

/// One sender/recipient pair with what both ends need.
pub(super) struct Pair {
    pub(super) index: usize,
    pub(super) from: String,
    pub(super) to: String,
    pub(super) sender_keys: IdentityKeys,
    pub(super) sender_public: PublicIdentity,
    pub(super) recipient_keys: IdentityKeys,
    pub(super) recipient_public: PublicIdentity,
    pub(super) sender_token: String,
    pub(super) recipient_token: String,
    /// A real sealed message from `from` to `to`, reused under fresh ids (see module docs).
    pub(super) template: SealedMessage,
    pub(super) plaintext: Vec<u8>,
}

pub(super) fn messaging_error(e: &MessagingError) -> OpError {
    match e.server_code() {
        Some(code) => OpError::new(code.to_owned()),
        None => OpError::new(match e {
            MessagingError::Client(sesame_client::Error::Timeout) => "timeout".to_owned(),
            _ => "relay".to_owned(),
        }),
    }
}

pub(super) async fn make_pairs(
    bc: &BenchClient,
    prefix: &str,
    n: usize,
    message_bytes: usize,
) -> anyhow::Result<Vec<Arc<Pair>>> {
    let users = make_users(bc, prefix, 2 * n).await?;
    let sessions = login_all(bc, &users).await?;
    let mut pairs = Vec::with_capacity(n);
    for i in 0..n {
        let (s, r) = (&sessions[2 * i], &sessions[2 * i + 1]);
        let sender_keys = IdentityKeys::generate(&mut OsRng);
        let recipient_keys = IdentityKeys::generate(&mut OsRng);
        let recipient_public = recipient_keys.public();
        let mut plaintext = vec![0u8; message_bytes];
        OsRng.fill_bytes(&mut plaintext);
        let template = e2e::seal(
            &mut OsRng,
            &sender_keys,
            &s.username,
            &r.username,
            &recipient_public,
            &format!("tpl-{i}"),
            unix_ms(),
            &plaintext,
        )
        .map_err(|e| anyhow::anyhow!("seal: {e}"))?;
        // The template itself is genuine: the recipient can open it.
        e2e::open(
            &recipient_keys,
            &s.username,
            &r.username,
            &template,
            &sender_keys.public(),
        )
        .map_err(|e| anyhow::anyhow!("open: {e}"))?;
        pairs.push(Arc::new(Pair {
            index: i,
            from: s.username.clone(),
            to: r.username.clone(),
            sender_public: sender_keys.public(),
            sender_keys,
            recipient_keys,
            recipient_public,
            sender_token: s.access_token.clone(),
            recipient_token: r.access_token.clone(),
            template,
            plaintext,
        }));
    }
    Ok(pairs)
}

pub(super) fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Message ids carry the pair, a sequence number and the (intended) send time in µs since
/// the run's epoch, so the recipient measures delivery latency without a side channel:
/// `{tag}-{pair}-{seq}-{micros}` with `-v` appended when the message is sealed for real.
pub(super) fn message_id(tag: &str, pair: usize, seq: u64, micros: u64, real: bool) -> String {
    format!(
        "{tag}-{pair}-{seq}-{micros}{}",
        if real { "-v" } else { "" }
    )
}

pub(super) fn parse_id(id: &str) -> Option<(u64, bool)> {
    let mut parts = id.split('-');
    let _tag = parts.next()?;
    let _pair = parts.next()?;
    let _seq = parts.next()?;
    let micros = parts.next()?.parse().ok()?;
    Some((micros, parts.next() == Some("v")))
}

/// How a sender paces itself.
#[derive(Clone, Copy)]
pub(super) struct SendPlan {
    /// Most unanswered sends.
    pub(super) window: usize,
    /// One message per interval (open loop), or as fast as the window allows.
    pub(super) interval: Option<Duration>,
    /// Most messages.
    pub(super) max: u64,
    /// Stop sending at.
    pub(super) deadline: Instant,
    /// Stop waiting for answers at.
    pub(super) give_up: Instant,
}

pub(super) struct SenderResult {
    pub(super) sent: u64,
    pub(super) accepted: u64,
    pub(super) rec: Recorder,
    pub(super) last_accept: Instant,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn run_sender(
    relay: &mut Relay,
    pair: &Pair,
    tag: &str,
    epoch: Instant,
    plan: SendPlan,
    verify_every: u64,
    accepted_total: &AtomicU64,
) -> SenderResult {
    let mut rec = Recorder::default();
    let (mut sent, mut accepted, mut outstanding) = (0u64, 0u64, 0usize);
    let mut next_at = Instant::now();
    let mut last_accept = epoch;
    loop {
        let now = Instant::now();
        let sending = now < plan.deadline && sent < plan.max;
        if (!sending && outstanding == 0) || now >= plan.give_up {
            break;
        }
        let due = plan.interval.is_none() || now >= next_at;
        if sending && outstanding < plan.window && due {
            let intended = match plan.interval {
                Some(iv) => {
                    let at = next_at;
                    next_at += iv;
                    at
                }
                None => now,
            };
            let micros = intended.saturating_duration_since(epoch).as_micros() as u64;
            let real = verify_every > 0 && sent % verify_every == 0;
            let id = message_id(tag, pair.index, sent, micros, real);
            let msg = if real {
                match e2e::seal(
                    &mut OsRng,
                    &pair.sender_keys,
                    &pair.from,
                    &pair.to,
                    &pair.recipient_public,
                    &id,
                    unix_ms(),
                    &pair.plaintext,
                ) {
                    Ok(m) => m,
                    Err(_) => {
                        rec.error("seal");
                        continue;
                    }
                }
            } else {
                SealedMessage {
                    id,
                    sent_at: unix_ms(),
                    ciphertext: pair.template.ciphertext.clone(),
                    signature: pair.template.signature.clone(),
                }
            };
            match relay.send(&pair.to, &msg).await {
                Ok(()) => {
                    sent += 1;
                    outstanding += 1;
                }
                Err(e) => {
                    rec.error(&messaging_error(&e).0);
                    break;
                }
            }
            continue;
        }
        // Paced and below the window: until the next slot. Otherwise until an answer, the
        // end of sending, or giving up.
        let wake = if sending && outstanding < plan.window {
            next_at.min(plan.deadline)
        } else if sending {
            plan.deadline
        } else {
            plan.give_up
        };
        tokio::select! {
            frame = relay.next() => match frame {
                Ok(Some(ServerFrame::Accepted { .. })) => {
                    outstanding = outstanding.saturating_sub(1);
                    accepted += 1;
                    accepted_total.fetch_add(1, Ordering::Relaxed);
                    last_accept = Instant::now();
                }
                Ok(Some(ServerFrame::Error { error, .. })) => {
                    outstanding = outstanding.saturating_sub(1);
                    rec.error(&error.code);
                }
                Ok(Some(ServerFrame::Message { .. })) => rec.error("unexpected_delivery"),
                Ok(None) => { rec.error("closed"); break; }
                Err(e) => { rec.error(&messaging_error(&e).0); break; }
            },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    if outstanding > 0 {
        *rec.errors.entry("unanswered".into()).or_default() += outstanding as u64;
    }
    SenderResult {
        sent,
        accepted,
        rec,
        last_accept,
    }
}

pub(super) struct RecipientResult {
    pub(super) rec: Recorder,
    pub(super) verified: u64,
    pub(super) last_receive: Option<Instant>,
}

/// Reads deliveries, measures their latency (from the time in the id, or from `since` when
/// given), opens the sampled ones, acknowledges each; stops when `stop` says so or after
/// `expected` deliveries.
#[allow(clippy::too_many_arguments)]
pub(super) async fn run_recipient(
    relay: &mut Relay,
    pair: &Pair,
    epoch: Instant,
    since: Option<Instant>,
    expected: Option<u64>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    received_total: &AtomicU64,
    give_up: Instant,
    ack: bool,
) -> RecipientResult {
    let mut rec = Recorder::default();
    let mut verified = 0u64;
    let mut last_receive = None;
    loop {
        if expected.is_some_and(|n| rec.ok >= n) || *stop.borrow() || Instant::now() >= give_up {
            break;
        }
        tokio::select! {
            frame = relay.next() => match frame {
                Ok(Some(ServerFrame::Message { from, to, message })) => {
                    let now = Instant::now();
                    let Some((micros, real)) = parse_id(&message.id) else {
                        rec.error("foreign_message");
                        continue;
                    };
                    let latency = match since {
                        Some(t) => now.saturating_duration_since(t),
                        None => now.saturating_duration_since(epoch + Duration::from_micros(micros)),
                    };
                    if from != pair.from || to != pair.to {
                        rec.error("wrong_sender_or_recipient");
                    } else if real {
                        match e2e::open(&pair.recipient_keys, &from, &pair.to, &message, &pair.sender_public) {
                            Ok(p) if p.as_slice() == pair.plaintext.as_slice() => verified += 1,
                            _ => rec.error("verification_failed"),
                        }
                    } else if message.ciphertext != pair.template.ciphertext {
                        rec.error("ciphertext_altered");
                    }
                    rec.ok(latency);
                    last_receive = Some(now);
                    received_total.fetch_add(1, Ordering::Relaxed);
                    if !ack {
                        continue;
                    }
                    if let Err(e) = relay.ack(&message.id).await {
                        rec.error(&messaging_error(&e).0);
                        break;
                    }
                }
                Ok(Some(ServerFrame::Error { error, .. })) => rec.error(&format!("ack_{}", error.code)),
                Ok(Some(ServerFrame::Accepted { .. })) => rec.error("unexpected_accepted"),
                Ok(None) => { rec.error("closed"); break; }
                Err(e) => { rec.error(&messaging_error(&e).0); break; }
            },
            _ = stop.changed() => {}
            () = tokio::time::sleep_until(give_up) => {}
        }
    }
    RecipientResult {
        rec,
        verified,
        last_receive,
    }
}

/// Connects `n` relay clients with these tokens, `64` handshakes at a time.
pub(super) async fn connect_all(
    bc: &BenchClient,
    tokens: &[String],
) -> Result<Vec<Relay>, OpError> {
    let mut out = Vec::with_capacity(tokens.len());
    for chunk in tokens.chunks(64) {
        let mut set = tokio::task::JoinSet::new();
        for (i, t) in chunk.iter().cloned().enumerate() {
            let c = bc.client.clone();
            set.spawn(async move { (i, Relay::connect(&c, &t).await) });
        }
        let mut got = Vec::new();
        while let Some(r) = set.join_next().await {
            let (i, relay) = r.map_err(|_| OpError::new("connect_panicked"))?;
            got.push((i, relay.map_err(|e| messaging_error(&e))?));
        }
        got.sort_by_key(|(i, _)| *i);
        out.extend(got.into_iter().map(|(_, r)| r));
    }
    Ok(out)
}

/// One relay arm: every pair's sender sends by `plan` while its recipient reads; returns
/// the arm (latency = send → receive) and the accepted count.
pub(super) async fn relay_arm(
    name: &str,
    server: &BenchServer,
    bc: &BenchClient,
    pairs: &[Arc<Pair>],
    plan_of: impl Fn(Instant) -> SendPlan,
    o: &Options,
) -> anyhow::Result<(Arm, u64)> {
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
    let recipients = connect_all(
        bc,
        &pairs
            .iter()
            .map(|p| p.recipient_token.clone())
            .collect::<Vec<_>>(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("connect recipients: {e}"))?;
    let accepted_total = Arc::new(AtomicU64::new(0));
    let received_total = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cpu_before = CpuSnap::take(server_pid(server));
    let epoch = Instant::now();
    let plan = plan_of(epoch);
    let recv_give_up = plan.give_up + o.grace;
    let mut rset = tokio::task::JoinSet::new();
    let ack = o.ack;
    for (pair, mut relay) in pairs.iter().cloned().zip(recipients) {
        let (stop, total) = (stop_rx.clone(), received_total.clone());
        rset.spawn(async move {
            let r = run_recipient(
                &mut relay,
                &pair,
                epoch,
                None,
                None,
                stop,
                &total,
                recv_give_up,
                ack,
            )
            .await;
            relay.close().await;
            r
        });
    }
    let mut sset = tokio::task::JoinSet::new();
    for (pair, mut relay) in pairs.iter().cloned().zip(senders) {
        let (tag, total) = (tag.clone(), accepted_total.clone());
        let every = o.verify_every;
        sset.spawn(async move {
            let r = run_sender(&mut relay, &pair, &tag, epoch, plan, every, &total).await;
            relay.close().await;
            r
        });
    }
    let mut send_rec = Recorder::default();
    let (mut sent, mut accepted) = (0u64, 0u64);
    let mut last_accept = epoch;
    while let Some(r) = sset.join_next().await {
        let r = r.context("sender task")?;
        send_rec.merge(&r.rec);
        sent += r.sent;
        accepted += r.accepted;
        last_accept = last_accept.max(r.last_accept);
    }
    // Wait (bounded) until every accepted message reached its recipient, then stop them.
    while received_total.load(Ordering::Relaxed) < accepted && Instant::now() < recv_give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let mut recv = Recorder::default();
    let mut verified = 0u64;
    let mut last_receive = epoch;
    while let Some(r) = rset.join_next().await {
        let r = r.context("recipient task")?;
        recv.merge(&r.rec);
        verified += r.verified;
        if let Some(t) = r.last_receive {
            last_receive = last_receive.max(t);
        }
    }
    let undelivered = accepted.saturating_sub(recv.ok);
    if undelivered > 0 {
        recv.error("undelivered");
        *recv.errors.entry("undelivered".into()).or_default() += undelivered - 1;
    }
    for (k, v) in &send_rec.errors {
        *recv.errors.entry(format!("send_{k}")).or_default() += v;
    }
    let elapsed = last_receive
        .saturating_duration_since(epoch)
        .max(Duration::from_millis(1));
    let mut arm = recv.finish(name, pairs.len(), elapsed);
    arm.cpu = Some(cpu_before.until(&CpuSnap::take(server_pid(server)), arm.ops));
    arm.notes.push(format!(
        "sent {sent}, accepted {accepted} ({:.1}/s until the last accept), delivered {}, \
         {verified} sealed afresh and opened by the recipient; latency = send → recipient receive",
        accepted as f64
            / last_accept
                .saturating_duration_since(epoch)
                .as_secs_f64()
                .max(1e-3),
        recv.ok
    ));
    Ok((arm, accepted))
}

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

    let rate = o.rate.max(1);
    let interval = Duration::from_secs_f64(n as f64 / rate as f64);
    let per_sender = (rate * o.duration.as_secs().max(1)).div_ceil(n as u64);
    let (paced, _) = relay_arm(
        &format!("relay at {rate} msg/s offered"),
        &server,
        &bc,
        &pairs,
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
    server.stop().await;
    Ok(s)
}
