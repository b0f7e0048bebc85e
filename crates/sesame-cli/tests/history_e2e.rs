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

    // A recovery on the device that is logged in keeps the identity and the conversations
    // (the current login's wrap key opens them): contacts see no change.
    let out = ok(
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
    assert!(
        out.contains("identity keys and conversations were kept"),
        "{out}"
    );
    let fresh = backup_codes(&out);
    ok(
        &server,
        &alice,
        &["login", "alice", "--password-stdin", "--code", &fresh[0]],
        &line(RECOVERED),
    );
    let (out, err) = ok_err(&server, &alice, &["send", "bob", "after", "recovery"], "");
    assert!(out.contains("Sent to bob"), "{out}");
    assert!(!err.contains("could not be decrypted"), "{err}");
    assert_eq!(unreadable(&history), 0);
    let inbox = ok(&server, &bob, &["inbox", "--wait", "1"], "");
    assert!(
        inbox.contains("after recovery") && !inbox.contains("CHANGED"),
        "{inbox}"
    );

    // From another device, which cannot keep the identity: said first, refused without
    // --yes, done with it. The first device's history then no longer opens: it is set
    // aside on the next send, which still goes out (exit 0).
    let phone = tmp.path().join("phone");
    let args = [
        "recover",
        "alice",
        "--backup-code",
        &fresh[1],
        "--password-stdin",
    ];
    let err = fails(&server, &phone, &args, &line(NEW_PASSWORD));
    assert!(
        err.contains("cannot unlock the messaging identity") && err.contains("--yes"),
        "{err}"
    );
    let out = ok(
        &server,
        &phone,
        &[&args[..], &["--yes"]].concat(),
        &line(NEW_PASSWORD),
    );
    let last = backup_codes(&out);
    ok(
        &server,
        &alice,
        &["login", "alice", "--password-stdin", "--code", &last[0]],
        &line(NEW_PASSWORD),
    );
    let (out, err) = ok_err(
        &server,
        &alice,
        &["send", "bob", "after", "the", "phone"],
        "",
    );
    assert!(out.contains("Sent to bob"), "{out}");
    assert!(
        err.contains("could not be decrypted") && err.contains(".unreadable"),
        "{err}"
    );
    assert_eq!(unreadable(&history), 1);
    // New keys: bob accepts them (after checking with alice) before reading.
    let err = common::fails(&server, &bob, &["keys", "trust", "alice"], "");
    assert!(
        err.contains("pass --yes") && err.contains("replace the pinned keys"),
        "{err}"
    );
    ok(&server, &bob, &["keys", "trust", "alice", "--yes"], "");
    let inbox = ok(&server, &bob, &["inbox", "--wait", "1"], "");
    assert!(inbox.contains("after the phone"), "{inbox}");
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
