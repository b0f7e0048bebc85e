//! An email address from the command line: `register --email` keeps the account pending until
//! `verify-email` gets the mailed code (here from the development outbox).

mod common;

use common::{fails, line, ok, serve, PASSWORD};

/// The 6-digit code of the newest message in the server's outbox.
fn mailed_code(outbox: &std::path::Path) -> String {
    let newest = std::fs::read_dir(outbox)
        .unwrap()
        .map(|e| e.unwrap().path())
        .max_by_key(|p| std::fs::metadata(p).unwrap().modified().unwrap())
        .expect("a message in the outbox");
    let text = std::fs::read_to_string(newest).unwrap();
    text.split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .expect("a 6-digit code")
        .to_owned()
}

#[test]
fn register_with_email_then_verify_from_the_cli() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let out = ok(
        &server,
        &home,
        &[
            "register",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        &line(PASSWORD),
    );
    assert!(
        out.contains("The account is pending") && out.contains("sesame verify-email alice"),
        "{out}"
    );
    let err = fails(
        &server,
        &home,
        &["login", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    assert!(err.contains("pending"), "{err}");

    let err = fails(&server, &home, &["verify-email", "alice", "000000"], "");
    assert!(err.contains("email verification failed"), "{err}");
    let out = ok(&server, &home, &["verify-email", "alice", "--resend"], "");
    assert!(out.contains("a new code is on its way"), "{out}");
    let code = mailed_code(&server.data_dir().join("outbox"));
    let out = ok(&server, &home, &["verify-email", "alice", &code], "");
    assert!(out.contains("account status: active"), "{out}");
    let out = ok(
        &server,
        &home,
        &["login", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    assert!(out.contains("Logged in as alice"), "{out}");
}
