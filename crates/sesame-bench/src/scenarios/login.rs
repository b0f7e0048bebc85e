//! P1 (OPAQUE login vs password login) and P2 (OPAQUE over HTTP vs the bare server login
//! work).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sesame_proto::KsfParams;

use crate::count::{bare_login, BareAccount, SESSION_PAYLOAD_BYTES};
use crate::load::closed_loop;
use crate::opaque::OpError;
use crate::stats::{Arm, Comparison, Recorder, Scenario};

use super::{check_against_library, ksf_note, make_users, measured, start, Options, User};

pub(super) async fn p1(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(
        "p1",
        "OPAQUE login vs password login (server-side Argon2id)",
    );
    let (server, bc) = start(o, &mut s).await?;
    let users = Arc::new(make_users(&bc, "p1", o.concurrency.max(1)).await?);
    s.notes.push(check_against_library(&bc, &users[0]).await?);
    let c = o.concurrency.max(1);
    let (b, u) = (bc.clone(), users.clone());
    let opaque = measured(
        &server,
        closed_loop(
            "opaque-login start+finish+session",
            o.bounds(c),
            move |w, _| {
                let (b, u) = (b.clone(), users_at(&u, w));
                async move { b.login(&u.name, &u.password).await.map(drop) }
            },
        ),
    )
    .await;
    let (b, u) = (bc.clone(), users.clone());
    let pwd = measured(
        &server,
        closed_loop(
            "password-login POST /api/login",
            o.bounds(c),
            move |w, _| {
                let (b, u) = (b.clone(), users_at(&u, w));
                async move {
                    b.client
                        .login_password(&u.name, &u.password)
                        .await
                        .map(drop)
                        .map_err(OpError::from)
                }
            },
        ),
    )
    .await;
    let ratio = opaque.per_second / pwd.per_second.max(1e-9);
    s.comparisons.push(Comparison::at_least(
        "OPAQUE / password logins per second",
        ratio,
        "x",
        100.0,
    ));
    s.notes.push(format!(
        "same {} accounts, Argon2id m={} t={} p={} on both paths; each virtual client logs in as its own account",
        users.len(),
        KsfParams::DEFAULT.memory,
        KsfParams::DEFAULT.iterations,
        KsfParams::DEFAULT.parallelism
    ));
    s.arms.push(opaque);
    s.arms.push(pwd);
    s.notes.push(ksf_note());
    server.stop().await;
    Ok(s)
}

pub(super) fn users_at(users: &Arc<Vec<User>>, w: usize) -> User {
    users[w % users.len()].clone()
}

// ---------------------------------------------------------------------------------------
// P2: OPAQUE over HTTP vs the bare server login work
// ---------------------------------------------------------------------------------------

pub(super) async fn p2(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(
        "p2",
        "OPAQUE logins/s over HTTP vs the bare server login work",
    );
    let (server, bc) = start(o, &mut s).await?;
    let users = Arc::new(make_users(&bc, "p2", o.concurrency.max(1)).await?);
    let c = o.concurrency.max(1);
    let (b, u) = (bc.clone(), users.clone());
    let http = measured(
        &server,
        closed_loop("opaque-login over HTTP", o.bounds(c), move |w, _| {
            let (b, u) = (b.clone(), users_at(&u, w));
            async move { b.login(&u.name, &u.password).await.map(drop) }
        }),
    )
    .await;
    server.stop().await;
    let bare = tokio::task::spawn_blocking({
        let (d, max) = (o.duration, o.max_requests);
        move || bare_login_loop(d, max)
    })
    .await??;
    let ratio = 100.0 * http.per_second / bare.per_second.max(1e-9);
    s.comparisons.push(Comparison::at_least(
        "HTTP logins/s as a share of the bare loop",
        ratio,
        "%",
        50.0,
    ));
    s.notes.push(
        "bare loop: one thread per core; each login runs the client half (not timed) and the \
         server half (timed): start_login + state to_bytes/from_bytes + finish + seal of a \
         SessionIssued-sized payload; rate = logins / server time per thread, summed"
            .into(),
    );
    s.arms.push(http);
    s.arms.push(bare);
    Ok(s)
}

/// `nproc` threads, each running whole logins in process and timing only the server's part.
pub(super) fn bare_login_loop(duration: Duration, max_ops: u64) -> anyhow::Result<Arm> {
    let account = Arc::new(BareAccount::new()?);
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let issued = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (account, issued) = (account.clone(), issued.clone());
        handles.push(std::thread::spawn(
            move || -> anyhow::Result<(Recorder, Duration)> {
                let mut rec = Recorder::default();
                let mut server_time = Duration::ZERO;
                let payload = vec![b'x'; SESSION_PAYLOAD_BYTES];
                let start = std::time::Instant::now();
                while start.elapsed() < duration && issued.fetch_add(1, Ordering::Relaxed) < max_ops
                {
                    let this = bare_login(&account, &payload)?;
                    server_time += this;
                    rec.ok(this);
                }
                Ok((rec, server_time))
            },
        ));
    }
    let mut total = Recorder::default();
    let mut time = Duration::ZERO;
    for h in handles {
        let (rec, t) = h
            .join()
            .map_err(|_| anyhow::anyhow!("bare loop thread panicked"))??;
        total.merge(&rec);
        time += t;
    }
    // Logins per second of server time per thread, times the threads.
    let per_thread = time / threads as u32;
    let mut arm = total.finish("bare server login work (in process)", threads, per_thread);
    arm.notes
        .push("latency columns: server CPU time of one login".to_owned());
    Ok(arm)
}
