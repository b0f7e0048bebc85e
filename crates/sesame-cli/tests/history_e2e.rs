//! Conversations survive a password change, a recovery never blocks messaging, and `send`
//! tells the truth: the real binary against a real server.

mod common;

use common::{fails, line, ok, ok_err, serve, sesame, PASSWORD};

const NEW_PASSWORD: &str = "a brand new passphrase";
const RECOVERED: &str = "recovered and still chatting";

/// The backup codes a command printed (`  1. xxxxx-xxxxx`).
fn backup_codes(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.trim().split_once(". "))
        .filter(|(n, _)| n.parse::<u32>().is_ok())
        .map(|(_, code)| code.trim().to_owned())
        .collect()
}

#[test]
fn history_survives_passwd_and_recover_sets_it_aside_without_blocking() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    let out = ok(
        &server,
        &alice,
        &["register", "alice", "--password-stdin"],
        &line(PASSWORD),
    );
    let codes = backup_codes(&out);
    assert!(codes.len() >= 2, "{out}");
    ok(
        &server,
        &bob,
        &["register", "bob", "--password-stdin"],
        &line(PASSWORD),
    );
    for (home, name) in [(&alice, "alice"), (&bob, "bob")] {
        ok(
            &server,
            home,
            &["login", name, "--password-stdin"],
            &line(PASSWORD),
        );
    }
    ok(
        &server,
        &alice,
        &["send", "bob", "before", "the", "change"],
        "",
    );

    // A password change re-keys the conversation: sending afterwards finds it readable.
    let both = format!("{PASSWORD}\n{NEW_PASSWORD}\n");
    let out = ok(&server, &alice, &["passwd", "--password-stdin"], &both);
    assert!(out.contains("conversations re-wrapped"), "{out}");
    let (out, err) = ok_err(
        &server,
        &alice,
        &["send", "bob", "after", "the", "change"],
        "",
    );
    assert!(out.contains("Sent to bob"), "{out}");
    assert!(
        !err.contains("could not be decrypted"),
        "the history was re-keyed: {err}"
    );
    let history = alice.join("history");
    let unreadable = |dir: &std::path::Path| {
        walk(dir)
            .iter()
            .filter(|p| p.to_string_lossy().contains(".unreadable"))
            .count()
    };
    assert_eq!(unreadable(&history), 0);
    let inbox = ok(&server, &bob, &["inbox", "--wait", "1"], "");
    assert!(inbox.contains("before the change") && inbox.contains("after the change"));

    // A recovery cannot re-key (the old password is gone): the next send sets the history
    // aside, says so, and still sends (exit 0).
    ok(
        &server,
        &alice,
        &[
            "recover",
            "alice",
            "--backup-code",
            &codes[0],
            "--password-stdin",
        ],
        &line(RECOVERED),
    );
    ok(
        &server,
        &alice,
        &["login", "alice", "--password-stdin", "--code", &codes[1]],
        &line(RECOVERED),
    );
    let (out, err) = ok_err(&server, &alice, &["send", "bob", "after", "recovery"], "");
    assert!(out.contains("Sent to bob"), "{out}");
    assert!(
        err.contains("could not be decrypted") && err.contains(".unreadable"),
        "{err}"
    );
    assert_eq!(unreadable(&history), 1);
    // The recovered account has new identity keys (a recovery does not restore them yet),
    // so bob accepts them before reading.
    ok(&server, &bob, &["keys", "trust", "alice"], "");
    let inbox = ok(&server, &bob, &["inbox", "--wait", "1"], "");
    assert!(inbox.contains("after recovery"), "{inbox}");
}

#[test]
fn send_refuses_an_empty_message_and_reads_standard_input() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    for (home, name) in [(&alice, "alice"), (&bob, "bob")] {
        ok(
            &server,
            home,
            &["register", name, "--password-stdin"],
            &line(PASSWORD),
        );
        ok(
            &server,
            home,
            &["login", name, "--password-stdin"],
            &line(PASSWORD),
        );
    }
    let err = fails(&server, &alice, &["send", "bob", ""], "");
    assert!(err.contains("the message is empty"), "{err}");
    let out = ok(
        &server,
        &alice,
        &["send", "bob", "-"],
        "piped\nover two lines\n",
    );
    assert!(out.contains("Sent to bob"), "{out}");
    let inbox = ok(&server, &bob, &["inbox", "--wait", "1"], "");
    assert!(inbox.contains("piped"), "{inbox}");
    assert!(!inbox.contains("No new messages"), "{inbox}");
    // Nothing empty was delivered.
    let out = sesame(&server, &bob, &["inbox", "--wait", "1"], "");
    assert!(String::from_utf8_lossy(&out.stdout).contains("No new messages"));
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
