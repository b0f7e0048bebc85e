//! Sesame as an OpenID Connect provider for `openid-client` (Node), with Debian's Chromium
//! signing in through the web app (password and authenticator code) and consenting:
//! `tests/web/oidc.mjs`. Needs Chromium and `npm ci --prefix crates/sesame-cli/tests/web`;
//! skipped loudly without them, failing under `SESAME_REQUIRE_SERVICES=1`.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{command, sesame_command, stdout_lines, Process, LISTENING, SESAME};

const RUN_TIMEOUT: Duration = Duration::from_secs(300);

fn web_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/web")
}

fn missing() -> Option<&'static str> {
    if !Path::new("/usr/bin/chromium").exists() {
        return Some("Chromium (apt-get install -y chromium)");
    }
    if !web_dir().join("node_modules/openid-client").exists() {
        return Some("openid-client (npm ci --prefix crates/sesame-cli/tests/web)");
    }
    None
}

/// `sesame serve` on a port chosen here, so its issuer is the URL the relying party uses.
fn serve(data: &Path) -> (Process, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = sesame_command()
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(data)
        .env("SESAME_ISSUER", &url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = stdout_lines(&mut child);
    let process = Process(Some(child));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("sesame serve reports its address");
        if line.starts_with(LISTENING) {
            return (process, url);
        }
    }
}

#[test]
fn openid_client_signs_in_through_sesame_in_chromium() {
    if let Some(what) = missing() {
        let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
        assert!(!required, "SESAME_REQUIRE_SERVICES=1 but {what} is missing");
        eprintln!("*** SKIPPED: oidc_web: {what} is missing ***");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (_server, url) = serve(&data);
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots");
    let child = command("node")
        .arg(web_dir().join("oidc.mjs"))
        .env("SESAME_URL", &url)
        .env("SESAME_BIN", SESAME)
        .env("SESAME_DATA_DIR", &data)
        .env("SESAME_SCREENSHOTS", &shots)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node starts");
    let mut node = Process(Some(child));
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = node.0.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the run took over {RUN_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    node.0 = None;
    assert!(
        status.success(),
        "an OpenID Connect flow failed (output above; screenshots in {})",
        shots.display()
    );
}
