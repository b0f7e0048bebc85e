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
