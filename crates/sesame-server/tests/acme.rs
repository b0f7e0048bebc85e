//! ACME against Pebble (Let's Encrypt's test CA, Debian package `pebble`) on loopback: the
//! server orders a certificate at start, serves it, caches it (0600) and serves the cached
//! one after a restart without a new order.
//!
//! Pebble runs with `PEBBLE_VA_ALWAYS_VALID=1` (it does not connect back to validate the
//! TLS-ALPN-01 challenge). Without the `pebble` binary the test says so loudly and skips,
//! unless `SESAME_REQUIRE_SERVICES=1`.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;

use common::server::TestServer;
use common::tls::{client_config_for, peer_sha256, tool_available, write_pair, TestCa};
use common::TestDb;

const DOMAIN: &str = "sesame.test";

struct Pebble {
    child: Child,
    directory: String,
    management: SocketAddr,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

/// Starts Pebble with its HTTPS certificate from `ca`, and waits until it answers.
async fn pebble(ca: &TestCa, dir: &std::path::Path) -> Pebble {
    let (cert, key) = write_pair(dir, "pebble", &ca.leaf());
    let (listen, management) = (free_port(), free_port());
    let config = serde_json::json!({"pebble": {
        "listenAddress": listen.to_string(),
        "managementListenAddress": management.to_string(),
        "certificate": cert,
        "privateKey": key,
        "httpPort": 5002,
        "tlsPort": 5001,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false
    }});
    let path = dir.join("pebble.json");
    std::fs::write(&path, config.to_string()).unwrap();
    let child = Command::new("pebble")
        .arg("-config")
        .arg(&path)
        .env("PEBBLE_VA_ALWAYS_VALID", "1")
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env("PEBBLE_WFE_NONCEREJECT", "0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pebble starts");
    let pebble = Pebble {
        child,
        directory: format!("https://{listen}/dir"),
        management,
    };
    let http = https(ca);
    for _ in 0..100 {
        if http.get(&pebble.directory).send().await.is_ok() {
            return pebble;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("pebble did not answer at {}", pebble.directory);
}

fn https(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls((*ca.client_config()).clone())
        .build()
        .unwrap()
}

/// Connects to `srv` as `DOMAIN`, verifying against Pebble's root: the served certificate's
/// SHA-256, once it verifies (bounded: 60 s).
async fn wait_for_acme_certificate(srv: &TestServer, root: Arc<rustls::ClientConfig>) -> [u8; 32] {
    let addr: SocketAddr = srv.base.trim_start_matches("https://").parse().unwrap();
    let mut last = String::new();
    for _ in 0..600 {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from(DOMAIN).unwrap();
        match tokio_rustls::TlsConnector::from(root.clone())
            .connect(name, tcp)
            .await
        {
            Ok(tls) => return peer_sha256(&tls),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no certificate from Pebble was served: {last}");
}

#[tokio::test]
async fn acme_certificate_from_pebble_is_served_cached_and_reused() {
    if !tool_available("pebble", &["-h"], "apt-get install -y pebble") {
        return;
    }
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let pebble = pebble(&ca, dir.path()).await;
    let ca_file = dir.path().join("pebble-ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let cache = dir.path().join("acme");
    let directory = pebble.directory.clone();
    let configure = |c: &mut sesame_server::config::Config| {
        c.acme_domains = vec![DOMAIN.to_owned()];
        c.acme_directory = directory.clone();
        c.acme_contact = Some("ops@sesame.test".into());
        c.acme_ca_file = Some(ca_file.clone());
        c.acme_cache_dir = Some(cache.clone());
    };

    let db = TestDb::sqlite();
    let srv = TestServer::start_with(&db, configure).await;
    assert_eq!(srv.config.issuer(), format!("https://{DOMAIN}"));
    // Pebble's root (a new one every run), from its management interface.
    let root = https(&ca)
        .get(format!("https://{}/roots/0", pebble.management))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let verifier = client_config_for(root.as_bytes());
    let issued = wait_for_acme_certificate(&srv, verifier.clone()).await;
    srv.stop().await;

    let cached = cache.join("certificate.pem");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&cached).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "certificate.pem mode {mode:o}");
    }
    let accounts = std::fs::read_dir(&cache)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("account-"))
        .count();
    assert_eq!(accounts, 1);

    // A restart serves the cached certificate at once (Pebble stopped: no new order).
    drop(pebble);
    let srv = TestServer::start_with(&db, configure).await;
    assert_eq!(wait_for_acme_certificate(&srv, verifier).await, issued);
    srv.stop().await;
}
