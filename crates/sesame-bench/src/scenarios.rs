//! The scenarios P1–P6, each a comparison measured in one run against a fresh server.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use opaque_ke::{ClientLogin, ClientLoginFinishParameters, CredentialResponse, Identifiers};
use rand_core::{OsRng, RngCore as _};
use serde::Serialize;
use sesame_client::messaging::{MessagingError, Relay, ServerFrame};
use sesame_proto::b64::Bytes;
use sesame_proto::e2e::{self, IdentityKeys, PublicIdentity, SealedMessage};
use sesame_proto::messages::{LoginFinish, LoginStart};
use sesame_proto::policy::Username;
use sesame_proto::server::{self as proto_server, ExpectLoginFinish, ServerKeys};
use sesame_proto::{KsfParams, Timestamp};
use tokio::time::Instant;

use crate::cpu::CpuSnap;
use crate::ksf::{BenchSuite, CachingKsf};
use crate::load::{closed_loop, paced_loop, Bounds};
use crate::opaque::{BenchClient, OpError};
use crate::stats::{Arm, Comparison, Recorder, Scenario};
use crate::target::{BenchServer, ServerOptions};

/// Every knob of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// The server.
    pub server: ServerOptions,
    /// Wall time of each measured arm.
    pub duration: Duration,
    /// Concurrent virtual clients for the HTTP arms.
    pub concurrency: usize,
    /// Most operations per arm.
    pub max_requests: u64,
    /// Sender/recipient pairs (P5, P6).
    pub pairs: usize,
    /// Offered message rate of P5's latency arm, messages per second (all senders).
    pub rate: u64,
    /// Idle WebSockets opened in P5 (0 skips that part).
    pub idle_connections: usize,
    /// Messages a sender may have unanswered (P5 throughput, P6).
    pub window: usize,
    /// One message in this many is sealed and signed afresh and opened by the recipient.
    pub verify_every: u64,
    /// Interval of the `/healthz` and refresh probes (P3).
    pub probe_interval: Duration,
    /// Plaintext size of a message, bytes.
    pub message_bytes: usize,
    /// Longest wait for outstanding answers and deliveries after an arm (P5, P6).
    pub grace: Duration,
    /// Recipients acknowledge each delivery (what real clients do). `false` is a diagnostic:
    /// it shows what the acknowledgements cost.
    pub ack: bool,
}

impl Options {
    fn bounds(&self, concurrency: usize) -> Bounds {
        Bounds {
            duration: self.duration,
            max_ops: self.max_requests,
            concurrency,
        }
    }
}

/// Known scenario ids, in order.
pub const ALL: [&str; 6] = ["p1", "p2", "p3", "p4", "p5", "p6"];

/// Runs scenario `id`.
pub async fn run(id: &str, o: &Options) -> anyhow::Result<Scenario> {
    match id {
        "p1" => p1(o).await,
        "p2" => p2(o).await,
        "p3" => p3(o).await,
        "p4" => p4(o).await,
        "p5" => p5(o).await,
        "p6" => p6(o).await,
        other => anyhow::bail!("unknown scenario {other} (p1 … p6 or all)"),
    }
}

// ---------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------

/// A bench account.
#[derive(Debug, Clone)]
pub struct User {
    /// Canonical username.
    pub name: String,
    /// Password.
    pub password: String,
}

fn run_tag() -> String {
    let mut b = [0u8; 3];
    OsRng.fill_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Registers `n` fresh accounts with client-side OPAQUE (one client Argon2id each, which
/// fills the memo for their logins), `nproc` at a time.
async fn make_users(bc: &BenchClient, prefix: &str, n: usize) -> anyhow::Result<Vec<User>> {
    let tag = run_tag();
    let users: Vec<User> = (0..n)
        .map(|i| User {
            name: format!("{prefix}-{tag}-{i}"),
            password: format!("bench secret {tag} number {i} ok"),
        })
        .collect();
    let parallel = std::thread::available_parallelism().map_or(2, |n| n.get());
    for chunk in users.chunks(parallel) {
        let mut set = tokio::task::JoinSet::new();
        for u in chunk.iter().cloned() {
            let bc = bc.clone();
            set.spawn(async move {
                bc.register(&u.name, &u.password)
                    .await
                    .with_context(|| format!("register {}", u.name))
            });
        }
        while let Some(r) = set.join_next().await {
            r??;
        }
    }
    Ok(users)
}

/// One OPAQUE login per user (memoized stretching), 16 at a time.
async fn login_all(
    bc: &BenchClient,
    users: &[User],
) -> anyhow::Result<Vec<sesame_client::SessionIssued>> {
    let mut out = Vec::with_capacity(users.len());
    for chunk in users.chunks(16) {
        let mut set = tokio::task::JoinSet::new();
        for (i, u) in chunk.iter().cloned().enumerate() {
            let bc = bc.clone();
            set.spawn(async move {
                let r = bc
                    .login(&u.name, &u.password)
                    .await
                    .with_context(|| format!("log in {}", u.name));
                (i, r)
            });
        }
        let mut got: Vec<(usize, sesame_client::SessionIssued)> = Vec::new();
        while let Some(r) = set.join_next().await {
            let (i, login) = r?;
            got.push((i, login?.session));
        }
        got.sort_by_key(|(i, _)| *i);
        out.extend(got.into_iter().map(|(_, s)| s));
    }
    Ok(out)
}

/// Starts the server and connects; notes what was started.
async fn start(o: &Options, s: &mut Scenario) -> anyhow::Result<(BenchServer, BenchClient)> {
    let server = BenchServer::start(&o.server).await?;
    let bc = BenchClient::connect(&server.base).await?;
    s.notes.push(format!("server: {}", server.description));
    s.notes.push(format!(
        "load average at the start (1, 5, 15 min): {}",
        crate::target::load_average()
    ));
    Ok((server, bc))
}

/// The library's `login` against the bench's: the same export key proves the memoized
/// stretching computes exactly what the real client computes.
async fn check_against_library(bc: &BenchClient, user: &User) -> anyhow::Result<String> {
    let real = bc
        .client
        .login(&user.name, &user.password)
        .await
        .and_then(|outcome| outcome.into_login())
        .context("sesame_client::Client::login")?;
    let bench = bc
        .login(&user.name, &user.password)
        .await
        .context("bench login")?;
    anyhow::ensure!(
        real.export_key.as_slice() == bench.export_key.as_slice(),
        "the bench client's export key differs from the library's: the memoized KSF is wrong"
    );
    Ok(
        "checked: sesame_client::Client::login (real Argon2id) and the bench login \
        (memoized) derive the same export key"
            .to_owned(),
    )
}

/// Runs an arm with CPU accounting of the server process, the bench and the machine.
async fn measured<F: std::future::Future<Output = Arm>>(server: &BenchServer, fut: F) -> Arm {
    let pid = server_pid(server);
    let before = CpuSnap::take(pid);
    let mut arm = fut.await;
    arm.cpu = Some(before.until(&CpuSnap::take(pid), arm.ops));
    arm
}

fn server_pid(server: &BenchServer) -> Option<u32> {
    if server.is_child() {
        server.pid
    } else {
        None
    }
}

fn ksf_note() -> String {
    let (hits, misses) = crate::ksf::stats();
    format!(
        "client key stretching so far in this process: {misses} Argon2id runs, {hits} memo hits"
    )
}

// ---------------------------------------------------------------------------------------
// P1: OPAQUE login vs password login
// ---------------------------------------------------------------------------------------

async fn p1(o: &Options) -> anyhow::Result<Scenario> {
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

fn users_at(users: &Arc<Vec<User>>, w: usize) -> User {
    users[w % users.len()].clone()
}

// ---------------------------------------------------------------------------------------
// P2: OPAQUE over HTTP vs the bare server login work
// ---------------------------------------------------------------------------------------

async fn p2(o: &Options) -> anyhow::Result<Scenario> {
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
fn bare_login_loop(duration: Duration, max_ops: u64) -> anyhow::Result<Arm> {
    let keys = ServerKeys::generate(&mut OsRng);
    let username = Username::parse("bare-user").map_err(|e| anyhow::anyhow!("{e}"))?;
    let password = "bare loop password 1234";
    let record = proto_server::register_with_password(
        &mut OsRng,
        &keys,
        &username,
        password,
        KsfParams::DEFAULT,
    )
    .map_err(|e| anyhow::anyhow!("register: {e}"))?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let issued = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..threads {
        let (keys, username, record, issued) = (
            keys.clone(),
            username.clone(),
            record.clone(),
            issued.clone(),
        );
        handles.push(std::thread::spawn(
            move || -> anyhow::Result<(Recorder, Duration)> {
                let mut rec = Recorder::default();
                let mut server_time = Duration::ZERO;
                let payload = vec![b'x'; 420];
                let start = std::time::Instant::now();
                while start.elapsed() < duration && issued.fetch_add(1, Ordering::Relaxed) < max_ops
                {
                    // Client step 1 (not timed).
                    let c = ClientLogin::<BenchSuite>::start(&mut OsRng, password.as_bytes())
                        .map_err(|_| anyhow::anyhow!("client start"))?;
                    let msg = LoginStart {
                        username: username.as_str().to_owned(),
                        ke1: Bytes(c.message.serialize().to_vec()),
                    };
                    let now = Timestamp(unix_now());
                    // Server step 2 (timed), with the state round trip the ephemeral store does.
                    let t0 = std::time::Instant::now();
                    let (state, challenge) = proto_server::start_login(
                        &mut OsRng,
                        &keys,
                        &username,
                        Some(&record),
                        &msg,
                        now,
                        60,
                    )
                    .map_err(|e| anyhow::anyhow!("server start: {e}"))?;
                    let stored = state.to_bytes();
                    let mut this = t0.elapsed();
                    // Client step 3 (not timed; memoized stretching).
                    let response =
                        CredentialResponse::<BenchSuite>::deserialize(challenge.ke2.as_slice())
                            .map_err(|_| anyhow::anyhow!("ke2"))?;
                    let stretch = CachingKsf::new(challenge.key_stretching.params());
                    let fin = c
                        .state
                        .finish(
                            &mut OsRng,
                            password.as_bytes(),
                            response,
                            ClientLoginFinishParameters::new(
                                None,
                                Identifiers::default(),
                                Some(&stretch),
                            ),
                        )
                        .map_err(|_| anyhow::anyhow!("client finish"))?;
                    let finish = LoginFinish {
                        login_id: challenge.login_id.clone(),
                        ke3: Bytes(fin.message.serialize().to_vec()),
                        device_key_id: None,
                        device_signature: None,
                    };
                    // Server step 4 (timed).
                    let t1 = std::time::Instant::now();
                    let state = ExpectLoginFinish::from_bytes(&stored)
                        .map_err(|e| anyhow::anyhow!("state: {e}"))?;
                    let (_verified, sealer) = state
                        .finish(&finish, now)
                        .map_err(|e| anyhow::anyhow!("server finish: {e}"))?;
                    let _sealed = sealer
                        .seal(&mut OsRng, &payload)
                        .map_err(|e| anyhow::anyhow!("seal: {e}"))?;
                    this += t1.elapsed();
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

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

// ---------------------------------------------------------------------------------------
// P3: server-assisted registration vs bare Argon2id; probes under saturation
// ---------------------------------------------------------------------------------------

async fn p3(o: &Options) -> anyhow::Result<Scenario> {
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

async fn probes(
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
fn bare_argon2(duration: Duration, max_ops: u64) -> anyhow::Result<Arm> {
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

// ---------------------------------------------------------------------------------------
// P4: refresh vs /healthz
// ---------------------------------------------------------------------------------------

async fn p4(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new("p4", "session refresh vs /healthz requests/s");
    let (server, bc) = start(o, &mut s).await?;
    let c = o.concurrency.max(1);
    let users = make_users(&bc, "p4", c.min(64)).await?;
    let sessions = login_all(&bc, &users).await?;
    let tokens: Arc<Vec<String>> =
        Arc::new(sessions.into_iter().map(|s| s.session_token).collect());
    let (b, t) = (bc.clone(), tokens.clone());
    let refresh = measured(
        &server,
        closed_loop(
            "refresh POST /api/session/refresh",
            o.bounds(c),
            move |w, _| {
                let (b, token) = (b.clone(), t[w % t.len()].clone());
                async move {
                    b.client
                        .refresh(&token)
                        .await
                        .map(drop)
                        .map_err(OpError::from)
                }
            },
        ),
    )
    .await;
    let b = bc.clone();
    let health = measured(
        &server,
        closed_loop("GET /healthz", o.bounds(c), move |_, _| {
            let b = b.clone();
            async move { b.client.health().await.map_err(OpError::from) }
        }),
    )
    .await;
    s.comparisons.push(Comparison::at_least(
        "refresh/s as a share of /healthz/s",
        100.0 * refresh.per_second / health.per_second.max(1e-9),
        "%",
        50.0,
    ));
    s.notes.push(format!(
        "{} sessions, one per virtual client (round robin)",
        tokens.len()
    ));
    s.arms.push(refresh);
    s.arms.push(health);
    server.stop().await;
    Ok(s)
}

// ---------------------------------------------------------------------------------------
// P5/P6: the relay
// ---------------------------------------------------------------------------------------

/// One sender/recipient pair with what both ends need.
struct Pair {
    index: usize,
    from: String,
    to: String,
    sender_keys: IdentityKeys,
    sender_public: PublicIdentity,
    recipient_keys: IdentityKeys,
    recipient_public: PublicIdentity,
    sender_token: String,
    recipient_token: String,
    /// A real sealed message from `from` to `to`, reused under fresh ids (see module docs).
    template: SealedMessage,
    plaintext: Vec<u8>,
}

fn messaging_error(e: &MessagingError) -> OpError {
    match e.server_code() {
        Some(code) => OpError::new(code.as_str()),
        None => OpError::new(match e {
            MessagingError::Client(sesame_client::Error::Timeout) => "timeout".to_owned(),
            _ => "relay".to_owned(),
        }),
    }
}

async fn make_pairs(
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

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Message ids carry the pair, a sequence number and the (intended) send time in µs since
/// the run's epoch, so the recipient measures delivery latency without a side channel:
/// `{tag}-{pair}-{seq}-{micros}` with `-v` appended when the message is sealed for real.
fn message_id(tag: &str, pair: usize, seq: u64, micros: u64, real: bool) -> String {
    format!(
        "{tag}-{pair}-{seq}-{micros}{}",
        if real { "-v" } else { "" }
    )
}

fn parse_id(id: &str) -> Option<(u64, bool)> {
    let mut parts = id.split('-');
    let _tag = parts.next()?;
    let _pair = parts.next()?;
    let _seq = parts.next()?;
    let micros = parts.next()?.parse().ok()?;
    Some((micros, parts.next() == Some("v")))
}

/// How a sender paces itself.
#[derive(Clone, Copy)]
struct SendPlan {
    /// Most unanswered sends.
    window: usize,
    /// One message per interval (open loop), or as fast as the window allows.
    interval: Option<Duration>,
    /// Most messages.
    max: u64,
    /// Stop sending at.
    deadline: Instant,
    /// Stop waiting for answers at.
    give_up: Instant,
}

struct SenderResult {
    sent: u64,
    accepted: u64,
    rec: Recorder,
    last_accept: Instant,
}

#[allow(clippy::too_many_arguments)]
async fn run_sender(
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

struct RecipientResult {
    rec: Recorder,
    verified: u64,
    last_receive: Option<Instant>,
}

/// Reads deliveries, measures their latency (from the time in the id, or from `since` when
/// given), opens the sampled ones, acknowledges each; stops when `stop` says so or after
/// `expected` deliveries.
#[allow(clippy::too_many_arguments)]
async fn run_recipient(
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
async fn connect_all(bc: &BenchClient, tokens: &[String]) -> Result<Vec<Relay>, OpError> {
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
async fn relay_arm(
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

async fn p5(o: &Options) -> anyhow::Result<Scenario> {
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

fn raise_nofile(s: &mut Scenario) {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => s
            .notes
            .push(format!("open-files limit (soft) of the bench: {n}")),
        Err(e) => s
            .notes
            .push(format!("could not raise the open-files limit: {e}")),
    }
}

async fn idle_connections(
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
    let tokens: Vec<String> = (0..n)
        .map(|i| {
            let p = &pairs[i % pairs.len()];
            if i % 2 == 0 {
                p.sender_token.clone()
            } else {
                p.recipient_token.clone()
            }
        })
        .collect();
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

async fn p6(o: &Options) -> anyhow::Result<Scenario> {
    let mut s = Scenario::new(
        "p6",
        "offline store: messages/s durably stored for offline recipients, backlog drain",
    );
    raise_nofile(&mut s);
    let (server, bc) = start(o, &mut s).await?;
    let n = o.pairs.max(1);
    let pairs = make_pairs(&bc, "p6", n, o.message_bytes).await?;
    let window = o.window.max(1);
    let tag = run_tag();
    let senders = connect_all(
        &bc,
        &pairs
            .iter()
            .map(|p| p.sender_token.clone())
            .collect::<Vec<_>>(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("connect senders: {e}"))?;
    let accepted_total = Arc::new(AtomicU64::new(0));
    let cpu_store = CpuSnap::take(server_pid(&server));
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
    store.cpu = Some(cpu_store.until(&CpuSnap::take(server_pid(&server)), stored));
    store.notes.push(format!(
        "sent {sent}, accepted (durably stored) {stored}; latency columns not measured for this arm"
    ));

    // Drain: every recipient connects and reads its backlog, acknowledging each message.
    let recipient_tokens: Vec<String> = pairs.iter().map(|p| p.recipient_token.clone()).collect();
    let cpu_drain = CpuSnap::take(server_pid(&server));
    let t0 = Instant::now();
    let recipients = connect_all(&bc, &recipient_tokens)
        .await
        .map_err(|e| anyhow::anyhow!("connect recipients: {e}"))?;
    let received_total = Arc::new(AtomicU64::new(0));
    let (_stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let give_up = Instant::now() + o.duration.max(Duration::from_secs(1)) * 3 + o.grace;
    let ack = o.ack;
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
    drain.cpu = Some(cpu_drain.until(&CpuSnap::take(server_pid(&server)), drain.ops));
    drain.notes.push(format!(
        "delivered {} of {stored} ({verified} sealed afresh and opened); timed from the first \
         connect; latency columns = time into the drain at which a message arrived",
        drain_rec.ok
    ));
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
