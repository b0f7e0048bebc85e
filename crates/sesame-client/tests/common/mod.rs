//! A real server for the client library's tests: `sesame-server` in process, on a loopback
//! port, with its SQLite database in a directory the test owns.
#![allow(dead_code)] // Each test file uses a different part of this module.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use sesame_server::config::Config;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Any valid master key; the same one across a restart.
pub const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

/// A running server.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Server {
    /// Starts a server on `data` (its SQLite database lives there, so a restart on the same
    /// directory keeps everything), without the per-address limit.
    pub async fn start(data: &Path) -> Server {
        Server::start_with(data, |_| {}).await
    }

    /// The same on the address `listen`.
    pub async fn start_on(data: &Path, listen: SocketAddr) -> Server {
        Server::start_with(data, |c| c.listen = listen).await
    }

    /// The same with `tweak` applied to the configuration.
    pub async fn start_with(data: &Path, tweak: impl FnOnce(&mut Config)) -> Server {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            tcp_listen: None,
            data_dir: data.to_path_buf(),
            master_key: Some(MASTER_KEY.into()),
            throttle_per_address: 0,
            ..Config::default()
        };
        tweak(&mut config);
        let (store, master) = sesame_server::server::open(&config).await.expect("open");
        let sesame = sesame_server::server::build(&config, store, &master)
            .await
            .expect("build");
        let http = tokio::net::TcpListener::bind(config.listen).await.unwrap();
        let base = format!("http://{}", http.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.await;
            };
            sesame_server::server::serve(&config, sesame, http, None, shutdown)
                .await
                .expect("serve");
        });
        Server {
            base,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits (at most 10 s: live relay connections may hold the
    /// shutdown) for it to finish.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        }
    }
}
