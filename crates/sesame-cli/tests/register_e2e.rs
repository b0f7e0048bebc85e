//! Registration asks for the name's verdict before any password, and checks the password
//! before anything is stretched: the real binary against a real server.

mod common;

use common::{fails, line, ok, serve, PASSWORD};

#[test]
fn a_taken_or_invalid_name_is_refused_before_the_password_is_read() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    ok(
        &server,
        &home,
        &["register", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    // No password on standard input at all: the name's verdict comes first.
    let err = fails(
        &server,
        &home,
        &["register", "Alice", "--password-stdin"],
        "",
    );
    assert!(
        err.contains("username_taken") || err.contains("taken"),
        "{err}"
    );
    assert!(!err.contains("password"), "{err}");
    let err = fails(
        &server,
        &home,
        &["register", "admin", "--password-stdin"],
        "",
    );
    assert!(err.contains("reserved"), "{err}");
    // A free name with a weak password: refused by the policy, before any stretching.
    let err = fails(
        &server,
        &home,
        &["register", "bob", "--password-stdin"],
        "bob-secret\n",
    );
    assert!(
        err.contains("password refused") && err.contains("username"),
        "{err}"
    );
    let err = fails(
        &server,
        &home,
        &["register", "bob", "--password-stdin"],
        "password\n",
    );
    assert!(err.contains("too common"), "{err}");
    ok(
        &server,
        &home,
        &["register", "bob", "--password-stdin"],
        &line(PASSWORD),
    );
}

/// A one-shot HTTP server on loopback that answers every request with an HTML 404 page (what
/// another program, or a proxy's error page, looks like).
fn html_server() -> String {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(4) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let body = "<!DOCTYPE html><html><body><h1>Not Found</h1></body></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 404 Not Found\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    format!("http://{addr}")
}

#[test]
fn network_errors_say_what_is_wrong() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    // Nothing listening: said in words, without the library's error chain.
    let err = fails(
        &server,
        &home,
        &[
            "register",
            "zed",
            "--password-stdin",
            "--server",
            &format!("http://{closed}"),
        ],
        "",
    );
    assert!(
        err.contains(&format!(
            "cannot reach http://{closed}: is `sesame serve` running there?"
        )),
        "{err}"
    );
    assert!(!err.contains("os error"), "{err}");
    // No scheme: plain HTTP is meant.
    let bare = server.url.trim_start_matches("http://").to_owned();
    let out = ok(
        &server,
        &home,
        &["register", "zed", "--password-stdin", "--server", &bare],
        &line(PASSWORD),
    );
    assert!(out.contains("Registered zed"), "{out}");
    // https:// for a plain HTTP server.
    let tls = format!("https://{bare}");
    let err = fails(
        &server,
        &home,
        &["register", "yan", "--password-stdin", "--server", &tls],
        &line(PASSWORD),
    );
    assert!(
        err.contains("does not speak TLS") && err.contains("use http://"),
        "{err}"
    );
    // Another program's web page is never dumped.
    let html = html_server();
    let err = fails(
        &server,
        &home,
        &["register", "yan", "--password-stdin", "--server", &html],
        &line(PASSWORD),
    );
    assert!(err.contains("web page instead of a Sesame answer"), "{err}");
    assert!(!err.contains("<html") && !err.contains("DOCTYPE"), "{err}");
}

#[test]
fn a_new_account_can_be_written_to_before_its_first_login() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let out = ok(
        &server,
        &bob,
        &["register", "bob", "--password-stdin"],
        &line(PASSWORD),
    );
    assert!(out.contains("others can write to you now"), "{out}");
    ok(
        &server,
        &alice,
        &["register", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    ok(
        &server,
        &alice,
        &["login", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    // bob has never logged in: his keys were published with the account.
    let out = ok(&server, &alice, &["send", "bob", "welcome aboard"], "");
    assert!(out.contains("Sent to bob"), "{out}");
    // His first login finds the same keys (no replacement, no warning) and the message.
    let (out, err) = common::ok_err(
        &server,
        &bob,
        &["login", "bob", "--password-stdin"],
        &line(PASSWORD),
    );
    assert!(
        !err.contains("WARNING") && !out.contains("replac"),
        "{out}{err}"
    );
    let inbox = ok(&server, &bob, &["inbox", "--wait", "1"], "");
    assert!(inbox.contains("welcome aboard"), "{inbox}");
}
