//! The REAL server for the client's tests: `sesame-server` in process on a loopback port,
//! SQLite in a temporary directory (or one the test owns, to restart on the same database),
//! a manual clock. Shared by every test file that talks to a real server.
// Each test crate that includes this module uses a different part of it.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sesame_client::{Client, ClientPolicy};
use sesame_server::config::Config;
use sesame_server::service::ManualClock;
use sesame_server::Sesame;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use totp_rs::TOTP;

pub const PASSWORD: &str = "correct horse battery staple";
/// Any valid master key.
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

pub struct Server {
    pub base: String,
    pub sesame: Sesame,
    pub clock: Arc<ManualClock>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    /// The data directory when the server made it (`None`: the test's, see [`Server::start_in`]).
    _data: Option<tempfile::TempDir>,
}

impl Server {
    /// Starts a server with no per-address limit.
    pub async fn start() -> Server {
        Server::start_with(|_| {}).await
    }

    /// Starts a server whose configuration `adjust` may change first (from a loopback
    /// listener, a temporary data directory, no per-address limit).
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Server {
        let data = tempfile::tempdir().unwrap();
        let mut server = Server::start_in(data.path(), adjust).await;
        server._data = Some(data);
        server
    }

    /// Starts a server on the test's directory `data`: a server started again on it (and on
    /// the first one's address, `c.listen`) keeps every account, session and message.
    pub async fn start_in(data: &Path, adjust: impl FnOnce(&mut Config)) -> Server {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tcp_listen: None,
            data_dir: data.to_path_buf(),
            master_key: Some(MASTER_KEY.into()),
            throttle_per_address: 0,
            ..Config::default()
        };
        adjust(&mut config);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let clock = Arc::new(ManualClock::new(now));
        let (store, master) = sesame_server::server::open(&config).await.expect("open");
        let sesame =
            sesame_server::server::build_with_clock(&config, store, &master, clock.clone())
                .await
                .expect("build");
        let http = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let scheme = if config.tls_enabled() {
            "https"
        } else {
            "http"
        };
        let base = format!("{scheme}://{}", http.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let svc = sesame.clone();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            sesame_server::server::serve(&config, svc, http, None, shutdown)
                .await
                .expect("serve");
        });
        Server {
            base,
            sesame,
            clock,
            stop: Some(stop),
            task: Some(task),
            _data: None,
        }
    }

    /// A client that pins nothing.
    pub fn client(&self) -> Client {
        Client::new(&self.base, ClientPolicy::default()).unwrap()
    }

    /// A client that pins `key`.
    pub fn pinned(&self, key: [u8; 32]) -> Client {
        let policy = ClientPolicy {
            pinned_server_key: Some(key),
            ..ClientPolicy::default()
        };
        Client::new(&self.base, policy).unwrap()
    }

    /// The code the app shows for `totp` at the server's time, `steps` time steps later.
    pub fn code(&self, totp: &TOTP, steps: u64) -> String {
        totp.generate(self.sesame.now() + 30 * steps)
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}
