//! The OpenID Connect tests' server: `sesame serve` on a port chosen first, so its issuer is
//! the URL relying parties fetch the metadata from, and a bounded wait for a port to answer.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use super::{sesame_command, stdout_lines, Process, LISTENING};

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `sesame serve` with its data in `data` and `issuer = <its URL>`; the process and the URL.
pub fn serve_with_issuer(data: &Path) -> (Process, String) {
    let port = free_port();
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

/// Waits (at most `limit`) until something accepts connections on `port`.
pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Runs `node script` with the server's address, the binary and its data directory, and
/// waits (at most `limit`) for it to end; whether it succeeded.
pub fn run_node(
    script: &Path,
    url: &str,
    data: &Path,
    extra: &[(&str, String)],
    limit: Duration,
) -> bool {
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/web-screenshots");
    let mut cmd = super::command("node");
    cmd.arg(script)
        .env("SESAME_URL", url)
        .env("SESAME_BIN", super::SESAME)
        .env("SESAME_DATA_DIR", data)
        .env("SESAME_SCREENSHOTS", &shots)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let mut node = Process(Some(cmd.spawn().expect("node starts")));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = node.0.as_mut().unwrap().try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "node ran over {limit:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    node.0 = None;
    status.success()
}
