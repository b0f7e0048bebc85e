//! A real Sesame server on ephemeral loopback ports, on one [`TestDb`](super::TestDb).
//!
//! The server runs in-process (same `serve` function as the binary) on a
//! [`ManualClock`] that starts at the real time, so tests can move time forward
//! (expiry) while tokens stay valid for outside verifiers.

use std::net::SocketAddr;
use std::sync::Arc;

use sesame_server::clock::{Clock as _, ManualClock, SystemClock};
use sesame_server::config::Config;
use sesame_server::rng::Rng;
use sesame_server::secrets::MasterKey;
use sesame_server::Sesame;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::TestDb;

/// The master key every test server uses, so a restart on the same database works.
pub const TEST_MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:PORT` (`https://` when the configuration turns TLS on).
    pub base: String,
    /// The TCP line-protocol address.
    pub tcp: SocketAddr,
    /// The service itself, for inspecting state (audit log, store).
    pub sesame: Sesame,
    /// The server's clock.
    pub clock: Arc<ManualClock>,
    /// The configuration it runs with.
    pub config: Config,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    _data: tempfile::TempDir,
}

/// The environment variable that fixes the servers' random seeds (for reproducing a run).
pub const SEED_ENV: &str = "SESAME_TEST_SEED";

/// The seed of the next test server: `SESAME_TEST_SEED` plus a counter when set (servers of
/// one test still differ), else fresh. Printed, so a failing run can be reproduced.
fn test_seed() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let base = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or_else(|| {
            let mut b = [0u8; 8];
            Rng::os().fill(&mut b);
            u64::from_le_bytes(b)
        });
    let seed = base.wrapping_add(n);
    eprintln!("test server seed {seed} ({SEED_ENV}={base})");
    seed
}

/// The configuration tests start from: fast to reason about, generous per-address limit
/// (tests share 127.0.0.1), password TCP verbs on.
pub fn test_config(db: &TestDb, data: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tcp_listen: Some("127.0.0.1:0".parse().unwrap()),
        tcp_allow_password: Some(true),
        data_dir: data.to_path_buf(),
        database_url: Some(db.url.clone()),
        database_schema: db.options.pg_schema.clone(),
        database_max_connections: db.options.max_connections,
        master_key: Some(TEST_MASTER_KEY.into()),
        throttle_per_address: 0,
        ..Config::default()
    }
}

impl TestServer {
    /// Starts a server with the test configuration.
    pub async fn start(db: &TestDb) -> TestServer {
        Self::start_with(db, |_| {}).await
    }

    /// Starts a server with the test configuration changed by `tweak`.
    pub async fn start_with(db: &TestDb, tweak: impl FnOnce(&mut Config)) -> TestServer {
        let data = tempfile::tempdir().unwrap();
        let mut config = test_config(db, data.path());
        tweak(&mut config);
        // The manual clock starts at the real time, so tokens verify outside.
        let clock = Arc::new(ManualClock::new(SystemClock.now()));
        let (store, master) = sesame_server::server::open(&config).await.expect("open");
        let sesame = sesame_server::server::build_with(
            &config,
            store,
            &master,
            clock.clone(),
            Rng::seeded(test_seed()),
        )
        .await
        .expect("build");
        let http = TcpListener::bind(config.listen).await.unwrap();
        let tcp = TcpListener::bind(config.tcp_listen.unwrap()).await.unwrap();
        let scheme = if config.tls_enabled() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}", http.local_addr().unwrap());
        let tcp_addr = tcp.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let cfg = config.clone();
        let svc = sesame.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            sesame_server::server::serve(&cfg, svc, http, Some(tcp), shutdown)
                .await
                .expect("serve");
        });
        TestServer {
            base,
            tcp: tcp_addr,
            sesame,
            clock,
            config,
            stop: Some(stop),
            task: Some(task),
            _data: data,
        }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Stops the server gracefully and waits for it (the database pool is closed).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task");
        }
    }
}

/// A master key other than [`TEST_MASTER_KEY`].
pub fn other_master_key() -> String {
    MasterKey::generate().to_text().to_string()
}

/// Two nodes of one cluster: servers on one fresh PostgreSQL database sharing the real Redis
/// under a key prefix of this test's own. `None`, after a skip line naming `test`, when
/// PostgreSQL or Redis is missing (without `SESAME_REQUIRE_SERVICES=1`, which fails instead).
pub async fn two_nodes(test: &str) -> Option<(super::TestDb, TestServer, TestServer)> {
    let (Some(db), Some(url)) = (super::TestDb::postgres().await, super::redis_url().await) else {
        eprintln!("SKIPPING {test}: PostgreSQL or Redis is missing");
        return None;
    };
    let prefix = format!("sesame_t:{test}:{}:", uuid::Uuid::new_v4().simple());
    let cluster = |c: &mut Config| {
        c.redis_url = Some(url.clone());
        c.redis_key_prefix = prefix.clone();
    };
    let a = TestServer::start_with(&db, cluster).await;
    let b = TestServer::start_with(&db, cluster).await;
    Some((db, a, b))
}
