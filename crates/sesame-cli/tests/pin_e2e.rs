//! Another server at a pinned address: every command reports the pin mismatch, nothing local
//! is deleted, and `sesame server forget` replaces hand-editing the pin file.

mod common;

use common::{fails, line, ok, serve_at, Server, PASSWORD};

#[test]
fn a_different_server_at_a_pinned_address_keeps_the_session_and_can_be_forgotten() {
    let tmp = tempfile::tempdir().unwrap();
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let url = format!("http://{addr}");
    let mut first = serve_at(&addr, &tmp.path().join("first"), &[]);
    let server = Server::external(&url);
    let home = tmp.path().join("home");
    ok(
        &server,
        &home,
        &["register", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    ok(
        &server,
        &home,
        &["login", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    let session_file = std::fs::read_dir(home.join("sessions"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();

    // Another installation takes the address.
    first.kill();
    let _second = serve_at(&addr, &tmp.path().join("second"), &[]);
    let err = fails(&server, &home, &["whoami"], "");
    assert!(err.contains("presented the key"), "{err}");
    assert!(
        err.contains(&format!("sesame server forget {url}")),
        "{err}"
    );
    assert!(err.contains("the session was kept"), "{err}");
    assert!(!err.contains("expired or was revoked"), "{err}");
    assert!(session_file.exists(), "the local session survives");

    // Forgetting the pins (no file editing), then the new server is trusted on first use.
    let out = ok(&server, &home, &["server", "show"], "");
    assert!(
        out.contains("server key:") && out.contains("logged in as:    alice"),
        "{out}"
    );
    let out = ok(&server, &home, &["server", "forget"], "");
    assert!(out.contains("Forgot the server key"), "{out}");
    let out = ok(
        &server,
        &home,
        &["register", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    assert!(out.contains("Trusting server key"), "{out}");
}
