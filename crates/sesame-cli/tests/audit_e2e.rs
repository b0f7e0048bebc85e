//! Failed and throttled sign-ins reach the audit log (without flooding it), and the operator
//! reads it by name: the real binary against a real server.

mod common;

use common::{line, ok, serve, sesame, sesame_command, PASSWORD};

#[test]
fn throttled_attempts_are_audited_once_a_minute_and_shown_by_name() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    ok(
        &server,
        &home,
        &["register", "bob", "--password-stdin"],
        &line(PASSWORD),
    );
    let mut throttled = 0;
    for i in 0..8 {
        let out = sesame(
            &server,
            &home,
            &["login", "bob", "--password-stdin"],
            &format!("wrong guess {i}\n"),
        );
        assert!(!out.status.success());
        if String::from_utf8_lossy(&out.stderr).contains("try again in") {
            throttled += 1;
        }
    }
    assert!(throttled >= 2, "{throttled} attempts answered 429");
    let out = sesame_command()
        .args(["admin", "--data-dir"])
        .arg(server.data_dir())
        .args(["audit", "--user", "bob"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let log = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("login.throttled"))
        .collect();
    // Audited, by name, and at most once a minute however many were refused.
    assert_eq!(lines.len(), 1, "{log}");
    assert!(lines[0].contains("user=bob ("), "{log}");
    assert!(lines[0].contains("retry_after="), "{log}");
}
