//! The server keeps answering when clients hold sockets open or trickle their requests:
//! `sesame serve` runs as a child under `ulimit -n 1024`, 2,000 sockets are held open from
//! 127.0.0.1, and `/healthz` from 127.0.0.2 still answers within 100 ms; idle sockets, a
//! trickled head and a trickled body are cut off by the timeouts; the log does not flood.

// Bounds on waits for sockets and processes: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

use common::{stdout_lines, Process, LISTENING, SESAME};

/// Sockets held open.
const HELD: usize = 2000;
/// The timeouts the server runs with here, seconds.
const TIMEOUT_SECS: u64 = 2;
/// What `/healthz` must answer within.
const HEALTHZ_WITHIN: Duration = Duration::from_millis(100);

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: &str, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from.parse::<IpAddr>().unwrap(), 0))?;
    socket.connect(to).await
}

/// Reads until the server closes the connection (or `within` passes); returns what it sent
/// and whether it closed.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> (String, bool) {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (String::from_utf8_lossy(&got).into_owned(), false),
            Ok(Ok(0) | Err(_)) => return (String::from_utf8_lossy(&got).into_owned(), true),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// `GET /healthz` on a fresh connection from `from`: the status line and the time taken.
async fn healthz(from: &str, to: SocketAddr) -> (String, Duration) {
    let start = Instant::now();
    let mut s = connect_from(from, to).await.expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let (answer, _) = read_to_close(&mut s, Duration::from_secs(5)).await;
    let status = answer.lines().next().unwrap_or_default().to_owned();
    (status, start.elapsed())
}

/// Starts the server under `ulimit -n 1024`; returns it, its address and its log file.
fn start(dir: &std::path::Path) -> (Process, SocketAddr, std::path::PathBuf) {
    let log = dir.join("serve.log");
    let mut child = {
        let mut sh = common::command("sh");
        let t = TIMEOUT_SECS.to_string();
        sh.arg("-c")
            .arg(r#"ulimit -n 1024 && exec "$0" serve --listen 127.0.0.1:0 --data-dir "$1""#)
            .arg(SESAME)
            .arg(dir.join("data"))
            .env("SESAME_HTTP_HEADER_TIMEOUT_SECS", &t)
            .env("SESAME_HTTP_IDLE_TIMEOUT_SECS", &t)
            .env("SESAME_HTTP_BODY_TIMEOUT_SECS", &t)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        sh.spawn().expect("spawn sh")
    };
    let lines = stdout_lines(&mut child);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = lines
            .recv_timeout(left)
            .expect("the server reports its address");
        if let Some(url) = line.strip_prefix(LISTENING) {
            let addr = url.trim().trim_start_matches("http://").parse().unwrap();
            return (Process(Some(child)), addr, log);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_sockets_and_trickles_do_not_stop_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, addr, log) = start(dir.path());

    // 2,000 sockets from 127.0.0.1, silent. Beyond the per-address cap they are answered
    // 503 and closed; the rest wait for the header timeout.
    let mut held = Vec::with_capacity(HELD);
    for _ in 0..HELD {
        held.push(connect_from("127.0.0.1", addr).await.expect("connect"));
    }
    let mut worst = Duration::ZERO;
    for i in 0..20 {
        let (status, took) = healthz("127.0.0.2", addr).await;
        assert!(
            status.starts_with("HTTP/1.1 200"),
            "healthz {i}: {status:?}"
        );
        worst = worst.max(took);
    }
    eprintln!("healthz with {HELD} sockets held: slowest of 20 took {worst:?}");
    assert!(worst < HEALTHZ_WITHIN, "healthz took {worst:?}");

    // One more from the crowded address: a clean 503.
    let mut extra = connect_from("127.0.0.1", addr).await.unwrap();
    let (answer, closed) = read_to_close(&mut extra, Duration::from_secs(5)).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer:?}");
    assert!(
        answer.contains("too_many_connections") && closed,
        "{answer:?}"
    );

    // Every held socket is closed by the server within the header timeout (plus slack).
    let deadline = Duration::from_secs(TIMEOUT_SECS + 3);
    let start = Instant::now();
    for s in &mut held {
        let left = deadline.saturating_sub(start.elapsed());
        let (_, closed) = read_to_close(s, left).await;
        assert!(
            closed,
            "a silent socket still open after {:?}",
            start.elapsed()
        );
    }
    drop(held);

    // A trickled head and a trickled body are cut off too.
    let mut head = connect_from("127.0.0.3", addr).await.unwrap();
    let mut body = connect_from("127.0.0.3", addr).await.unwrap();
    body.write_all(b"POST /api/login HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{")
        .await
        .unwrap();
    head.write_all(b"GET /healthz HTTP/1.1\r\n").await.unwrap();
    let start = Instant::now();
    let (mut head_closed, mut body_closed) = (None, None);
    while start.elapsed() < Duration::from_secs(TIMEOUT_SECS + 4)
        && (head_closed.is_none() || body_closed.is_none())
    {
        for (s, done) in [(&mut head, &mut head_closed), (&mut body, &mut body_closed)] {
            if done.is_none() {
                let wrote = s.write_all(b"a").await.is_ok();
                let (answer, closed) = read_to_close(s, Duration::from_millis(250)).await;
                if closed || !wrote {
                    *done = Some((start.elapsed(), answer));
                }
            }
        }
    }
    let (took, _) = head_closed.expect("a trickled head is cut off");
    eprintln!("trickled head closed after {took:?}");
    let (took, answer) = body_closed.expect("a trickled body is cut off");
    eprintln!(
        "trickled body closed after {took:?}: {:?}",
        answer.lines().next()
    );

    // Still serving, and the log did not flood.
    let (status, took) = healthz("127.0.0.2", addr).await;
    assert!(
        status.starts_with("HTTP/1.1 200"),
        "{status:?} after {took:?}"
    );
    server.kill();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("open-files limit"), "{text}");
    assert!(text.contains("soft=1024"), "{text}");
    let lines = text.lines().count();
    eprintln!("server log: {lines} lines");
    assert!(lines < 50, "the log floods ({lines} lines):\n{text}");
}
