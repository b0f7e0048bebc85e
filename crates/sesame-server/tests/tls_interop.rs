//! Built-in TLS against other implementations: OpenSSL's client (TLS 1.1 refused, 1.2 and
//! 1.3 accepted) and Node (`@serenity-kit/opaque` registering and logging in over HTTPS,
//! trusting the test CA through `NODE_EXTRA_CA_CERTS`).
//!
//! Needs `openssl`, `node` and `npm ci --prefix crates/sesame-proto/tests/interop`; without
//! them each test says so loudly and skips, unless `SESAME_REQUIRE_SERVICES=1`.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::Value;

use common::api::{username, PASSWORD};
use common::server::TestServer;
use common::tls::{tool_available, write_pair, TestCa};
use common::TestDb;

async fn tls_server(db: &TestDb, ca: &TestCa, dir: &std::path::Path) -> TestServer {
    let (cert, key) = write_pair(dir, "server", &ca.leaf());
    let srv = TestServer::start_with(db, |c| {
        c.tls_cert = Some(cert);
        c.tls_key = Some(key);
    })
    .await;
    // Serving once a handshake completes.
    common::tls::connect(addr(&srv).parse().unwrap(), ca.client_config())
        .await
        .expect("TLS handshake");
    srv
}

fn addr(srv: &TestServer) -> String {
    srv.base.trim_start_matches("https://").to_owned()
}

/// `openssl s_client` with `flags` against the server: (handshake done, output).
async fn s_client(srv: &TestServer, ca_file: &std::path::Path, flags: &[&str]) -> (bool, String) {
    let mut args = vec![
        "s_client".to_owned(),
        "-connect".into(),
        addr(srv),
        "-CAfile".into(),
        ca_file.display().to_string(),
        // Let OpenSSL 3 itself offer TLS 1.1 (its default security level refuses to).
        "-cipher".into(),
        "DEFAULT:@SECLEVEL=0".into(),
    ];
    args.extend(flags.iter().map(|f| (*f).to_owned()));
    let out = tokio::task::spawn_blocking(move || {
        Command::new("openssl")
            .args(&args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let done = text.contains("Verify return code: 0 (ok)") && !text.contains("Cipher is (NONE)");
    (done, text)
}

#[tokio::test]
async fn openssl_tls_1_1_is_refused_and_1_2_and_1_3_are_served() {
    if !tool_available("openssl", &["version"], "apt-get install -y openssl") {
        return;
    }
    let db = TestDb::sqlite();
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let srv = tls_server(&db, &ca, dir.path()).await;

    let (done, text) = s_client(&srv, &ca_file, &["-tls1_1"]).await;
    assert!(!done, "TLS 1.1 was accepted:\n{text}");
    // Refused by the server (an alert it sent), not by the local OpenSSL.
    assert!(
        text.contains("alert protocol version") || text.contains("alert handshake failure"),
        "TLS 1.1 was not refused by the server:\n{text}"
    );
    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (done, text) = s_client(&srv, &ca_file, &[flag]).await;
        assert!(done, "{flag} failed:\n{text}");
        assert!(text.contains(protocol), "{flag}:\n{text}");
    }
    srv.stop().await;
}

fn interop_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sesame-proto/tests/interop")
}

#[tokio::test]
async fn node_serenity_kit_client_registers_and_logs_in_over_https() {
    if !tool_available("node", &["--version"], "apt-get install -y nodejs") {
        return;
    }
    let modules = interop_dir().join("node_modules/@serenity-kit/opaque");
    if !modules.exists() {
        let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
        let msg = "node_modules missing: run `npm ci --prefix crates/sesame-proto/tests/interop`";
        assert!(!required, "SESAME_REQUIRE_SERVICES=1 but {msg}");
        eprintln!("\n*** SKIPPING Node over HTTPS: {msg} ***\n");
        return;
    }
    let db = TestDb::sqlite();
    let ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let srv = tls_server(&db, &ca, dir.path()).await;
    let user = username("nodetls");

    let base = srv.base.clone();
    let (name, ca_path) = (user.clone(), ca_file.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("https_login.mjs")
            .args([&base, &name, PASSWORD])
            .current_dir(interop_dir())
            .env("NODE_EXTRA_CA_CERTS", &ca_path)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "node failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let issued: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(issued["username"], user.as_str());

    // The access token Node obtained works over HTTPS.
    let c = reqwest::Client::builder()
        .use_preconfigured_tls((*ca.client_config()).clone())
        .build()
        .unwrap();
    let me: Value = c
        .get(srv.url("/api/me"))
        .bearer_auth(issued["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], user.as_str(), "{me}");

    // Without the CA, Node refuses the certificate.
    let base = srv.base.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .arg("https_login.mjs")
            .args([&base, "someoneelse", PASSWORD])
            .current_dir(interop_dir())
            .env_remove("NODE_EXTRA_CA_CERTS")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    srv.stop().await;
}
