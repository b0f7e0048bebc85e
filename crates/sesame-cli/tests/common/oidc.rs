//! The OpenID Connect tests' server: `sesame serve` on a port chosen first, so its issuer is
//! the URL relying parties fetch the metadata from, and a bounded wait for a port to answer.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use super::Process;

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
    let process = super::serve_at(
        &format!("127.0.0.1:{port}"),
        data,
        &[("SESAME_ISSUER", &url)],
    );
    (process, url)
}

/// Waits (at most `limit`) until something accepts connections on `port`.
pub fn wait_for_port(port: u16, limit: Duration) -> bool {
    super::poll_until(limit, || {
        std::net::TcpStream::connect(("127.0.0.1", port))
            .ok()
            .map(drop)
    })
    .is_some()
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
    let node = cmd.spawn().expect("node starts");
    let status = super::wait_bounded(node, limit)
        .unwrap_or_else(|| panic!("node ran over {limit:?} and was killed"));
    status.success()
}
