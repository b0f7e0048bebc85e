//! The relay machinery P5 and P6 share: sender/recipient pairs over WebSockets, senders,
//! recipients and one measured arm.

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
use crate::stats::{Arm, Recorder};
use crate::target::BenchServer;

use super::{login_all, make_users, run_tag, server_pid, Options};

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
        Some(code) => OpError::new(code.as_str()),
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

impl SendPlan {
    /// The intended send time of the next message, in microseconds since `epoch`: the next
    /// slot when paced (which moves `next_at` on), else `now`.
    fn take_slot(&self, next_at: &mut Instant, now: Instant, epoch: Instant) -> u64 {
        let intended = match self.interval {
            Some(iv) => {
                let at = *next_at;
                *next_at += iv;
                at
            }
            None => now,
        };
        intended.saturating_duration_since(epoch).as_micros() as u64
    }
}

pub(super) struct SenderResult {
    pub(super) sent: u64,
    pub(super) accepted: u64,
    pub(super) rec: Recorder,
    pub(super) last_accept: Instant,
}

/// Message number `sent` of `pair`: one in `verify_every` sealed and signed afresh (`None`
/// if sealing fails), the others a copy of the pair's template under a new id.
fn bench_message(
    pair: &Pair,
    tag: &str,
    sent: u64,
    micros: u64,
    verify_every: u64,
) -> Option<SealedMessage> {
    let real = verify_every > 0 && sent.is_multiple_of(verify_every);
    let id = message_id(tag, pair.index, sent, micros, real);
    if !real {
        return Some(SealedMessage {
            id,
            sent_at: unix_ms(),
            ciphertext: pair.template.ciphertext.clone(),
            signature: pair.template.signature.clone(),
        });
    }
    e2e::seal(
        &mut OsRng,
        &pair.sender_keys,
        &pair.from,
        &pair.to,
        &pair.recipient_public,
        &id,
        unix_ms(),
        &pair.plaintext,
    )
    .ok()
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
            let micros = plan.take_slot(&mut next_at, now, epoch);
            let Some(msg) = bench_message(pair, tag, sent, micros, verify_every) else {
                rec.error("seal");
                continue;
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

/// How a recipient acknowledges what it reads.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum AckMode {
    /// Not at all (a diagnostic: `--no-ack`).
    None,
    /// One `ack` frame per message, at once (live delivery).
    Each,
    /// Batched `ack` frames ([`Relay::ack_later`]: up to 512 ids per frame, sent whenever
    /// no delivery is ready), the way the client library drains a backlog.
    Batched,
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
    ack: AckMode,
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
                    let acked = match ack {
                        AckMode::None => continue,
                        AckMode::Each => relay.ack(&message.id).await,
                        AckMode::Batched => relay.ack_later(&message.id).await,
                    };
                    if let Err(e) = acked {
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

/// Which end of the pairs to connect.
#[derive(Clone, Copy)]
enum Side {
    Senders,
    Recipients,
}

/// One relay connection per pair, for its sender or its recipient.
async fn connect_side(
    bc: &BenchClient,
    pairs: &[Arc<Pair>],
    side: Side,
) -> anyhow::Result<Vec<Relay>> {
    let tokens: Vec<String> = pairs
        .iter()
        .map(|p| match side {
            Side::Senders => p.sender_token.clone(),
            Side::Recipients => p.recipient_token.clone(),
        })
        .collect();
    let what = match side {
        Side::Senders => "senders",
        Side::Recipients => "recipients",
    };
    connect_all(bc, &tokens)
        .await
        .map_err(|e| anyhow::anyhow!("connect {what}: {e}"))
}

/// Waits for the recipient tasks: their records merged, how many messages they verified,
/// and the time of the last delivery (`epoch` if none).
async fn join_recipients(
    mut rset: tokio::task::JoinSet<RecipientResult>,
    epoch: Instant,
) -> anyhow::Result<(Recorder, u64, Instant)> {
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
    Ok((recv, verified, last_receive))
}

/// Runs one sender task per pair and waits for them: their records merged, messages sent
/// and accepted, and the time of the last acceptance (`epoch` if none).
async fn run_senders(
    pairs: &[Arc<Pair>],
    senders: Vec<Relay>,
    tag: &str,
    epoch: Instant,
    plan: SendPlan,
    every: u64,
    accepted_total: &Arc<AtomicU64>,
) -> anyhow::Result<(Recorder, u64, u64, Instant)> {
    let mut sset = tokio::task::JoinSet::new();
    for (pair, mut relay) in pairs.iter().cloned().zip(senders) {
        let (tag, total) = (tag.to_owned(), accepted_total.clone());
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
    Ok((send_rec, sent, accepted, last_accept))
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
    let senders = connect_side(bc, pairs, Side::Senders).await?;
    let recipients = connect_side(bc, pairs, Side::Recipients).await?;
    let accepted_total = Arc::new(AtomicU64::new(0));
    let received_total = Arc::new(AtomicU64::new(0));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let cpu_before = CpuSnap::take(server_pid(server));
    let epoch = Instant::now();
    let plan = plan_of(epoch);
    let recv_give_up = plan.give_up + o.grace;
    let mut rset = tokio::task::JoinSet::new();
    for (pair, mut relay) in pairs.iter().cloned().zip(recipients) {
        let ack = if o.ack { AckMode::Each } else { AckMode::None };
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
    let (send_rec, sent, accepted, last_accept) = run_senders(
        pairs,
        senders,
        &tag,
        epoch,
        plan,
        o.verify_every,
        &accepted_total,
    )
    .await?;
    // Wait (bounded) until every accepted message reached its recipient, then stop them.
    while received_total.load(Ordering::Relaxed) < accepted && Instant::now() < recv_give_up {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop_tx.send(true);
    let (mut recv, verified, last_receive) = join_recipients(rset, epoch).await?;
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
