//! The scenarios P1–P6, each a comparison measured in one run against a fresh server, and
//! `enumeration` (timing of existing vs non-existing usernames).

use std::time::Duration;

use anyhow::Context as _;
use rand_core::{OsRng, RngCore as _};
use serde::Serialize;

use crate::cpu::CpuSnap;
use crate::load::Bounds;
use crate::opaque::BenchClient;
use crate::stats::{Arm, Scenario};
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

mod enumeration;
mod idle;
mod login;
pub mod peers;
mod refresh;
mod registration;
mod relay;
mod throughput;

use enumeration::enumeration;
use idle::p6;
use login::{p1, p2};
use refresh::p4;
use registration::p3;
use throughput::p5;

/// Known scenario ids, in order.
pub const ALL: [&str; 7] = ["p1", "p2", "p3", "p4", "p5", "p6", "enumeration"];

/// Scenarios run only when named (they need more than the server: `peers` drives the local
/// NATS and Redis).
pub const EXTRA: [&str; 1] = ["peers"];

/// Runs scenario `id`.
pub async fn run(id: &str, o: &Options) -> anyhow::Result<Scenario> {
    match id {
        "p1" => p1(o).await,
        "p2" => p2(o).await,
        "p3" => p3(o).await,
        "p4" => p4(o).await,
        "p5" => p5(o).await,
        "p6" => p6(o).await,
        "peers" => peers::peers(o).await,
        "enumeration" => enumeration(o).await,
        other => anyhow::bail!("unknown scenario {other} (p1 … p6, all, peers or enumeration)"),
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
