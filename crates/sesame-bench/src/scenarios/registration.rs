//! P3: server-assisted registration vs bare Argon2id, with probes under saturation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sesame_proto::KsfParams;

use crate::load::{closed_loop, paced_loop};
use crate::opaque::{BenchClient, OpError};
use crate::stats::{Arm, Comparison, Recorder, Scenario};

use super::{login_all, make_users, measured, run_tag, start, Options};

pub(super) async fn p3(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(
        "p3",
        "server-assisted registrations/s vs bare Argon2id; /healthz and refresh under saturation",
    );
    let bare = tokio::task::spawn_blocking({
        let (d, max) = (o.duration, o.max_requests);
        move || bare_argon2(d, max)
    })
    .await??;
    let (server, bc) = start(o, &mut s).await?;
    let probe_user = make_users(&bc, "p3p", 1).await?;
    let session = login_all(&bc, &probe_user).await?.remove(0);
    let token = Arc::new(session.session_token);
    let idle_len = (o.duration / 2).max(Duration::from_secs(1));
    let (idle_health, idle_refresh) = probes(&bc, &token, o, idle_len).await;

    let c = o.concurrency.max(1);
    let tag = run_tag();
    let b = bc.clone();
    let register = closed_loop(
        "registration POST /api/register",
        o.bounds(c),
        move |w, i| {
            let b = b.clone();
            let name = format!("p3-{tag}-{w}-{i}");
            let password = format!("bench p3 secret {tag} ok");
            async move {
                b.client
                    .register_with_password(&name, &password)
                    .await
                    .map(drop)
                    .map_err(OpError::from)
            }
        },
    );
    let (register, (busy_health, busy_refresh)) = tokio::join!(
        measured(&server, register),
        probes(&bc, &token, o, o.duration)
    );
    s.comparisons.push(Comparison::at_least(
        "registrations/s as a share of bare Argon2id hashes/s",
        100.0 * register.per_second / bare.per_second.max(1e-9),
        "%",
        90.0,
    ));
    for (name, idle, busy) in [
        ("/healthz", &idle_health, &busy_health),
        ("refresh", &idle_refresh, &busy_refresh),
    ] {
        s.comparisons.push(Comparison::at_most(
            &format!("{name} p99 under registration load / idle p99"),
            busy.p99_ms / idle.p99_ms.max(1e-6),
            "x",
            5.0,
            false,
        ));
    }
    s.notes.push(format!(
        "probes: one /healthz and one refresh request every {} each, sequential, idle for {} then during the registration arm",
        humantime::format_duration(o.probe_interval),
        humantime::format_duration(idle_len)
    ));
    s.arms.push(bare);
    s.arms.push(register);
    for (arm, label) in [
        (idle_health, "idle /healthz probe"),
        (idle_refresh, "idle refresh probe"),
        (busy_health, "loaded /healthz probe"),
        (busy_refresh, "loaded refresh probe"),
    ] {
        s.arms.push(Arm {
            name: label.to_owned(),
            ..arm
        });
    }
    server.stop().await;
    Ok(s)
}

pub(super) async fn probes(
    bc: &BenchClient,
    token: &Arc<String>,
    o: &Options,
    duration: Duration,
) -> (Arm, Arm) {
    let max = o.max_requests;
    let health = paced_loop("healthz", o.probe_interval, duration, max, || {
        let b = bc.clone();
        async move { b.client.health().await.map_err(OpError::from) }
    });
    let refresh = paced_loop("refresh", o.probe_interval, duration, max, || {
        let (b, t) = (bc.clone(), token.clone());
        async move { b.client.refresh(&t).await.map(drop).map_err(OpError::from) }
    });
    tokio::join!(health, refresh)
}

/// Argon2id at the default parameters on `nproc` threads: hashes per second.
pub(super) fn bare_argon2(duration: Duration, max_ops: u64) -> anyhow::Result<Arm> {
    let p = KsfParams::DEFAULT;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let issued = Arc::new(AtomicU64::new(0));
    let start = std::time::Instant::now();
    let mut handles = Vec::new();
    for t in 0..threads {
        let issued = issued.clone();
        handles.push(std::thread::spawn(move || -> anyhow::Result<Recorder> {
            let argon = argon2::Argon2::new(
                argon2::Algorithm::Argon2id,
                argon2::Version::V0x13,
                argon2::Params::new(p.memory, p.iterations, p.parallelism, None)
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            let mut rec = Recorder::default();
            let mut input = [t as u8; 64];
            let mut out = [0u8; 64];
            let begin = std::time::Instant::now();
            while begin.elapsed() < duration && issued.fetch_add(1, Ordering::Relaxed) < max_ops {
                let t0 = std::time::Instant::now();
                argon
                    .hash_password_into(&input, &[0u8; 16], &mut out)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                rec.ok(t0.elapsed());
                input[..].copy_from_slice(&[out[0]; 64]);
            }
            Ok(rec)
        }));
    }
    let mut total = Recorder::default();
    for h in handles {
        total.merge(
            &h.join()
                .map_err(|_| anyhow::anyhow!("argon2 thread panicked"))??,
        );
    }
    Ok(total.finish(
        &format!(
            "bare Argon2id m={} t={} p={}",
            p.memory, p.iterations, p.parallelism
        ),
        threads,
        start.elapsed(),
    ))
}
