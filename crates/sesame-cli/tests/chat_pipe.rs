//! `sesame chat` fed by a pipe (a script): no line editor, the lines are sent in order, the
//! chat waits for the server to confirm them at the end of the input, and leaves.

mod common;

use common::{ok, serve, sesame, text, PASSWORD};

#[test]
fn a_piped_chat_sends_every_line_and_leaves_at_the_end_of_input() {
    let server = serve();
    let tmp = tempfile::tempdir().unwrap();
    let pw = format!("{PASSWORD}\n");
    let (alice, bob) = (tmp.path().join("alice"), tmp.path().join("bob"));
    for (name, home) in [("alice", &alice), ("bob", &bob)] {
        ok(&server, home, &["register", name, "--password-stdin"], &pw);
        ok(&server, home, &["login", name, "--password-stdin"], &pw);
    }
    let out = sesame(
        &server,
        &alice,
        &["chat", "bob"],
        "first line\n/frobnicate\n//slash\n\nsecond line\n",
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for sent in ["] you: first line", "] you: /slash", "] you: second line"] {
        assert_eq!(stdout.matches(sent).count(), 1, "{stdout}");
    }
    assert!(stdout.contains("unknown command /frobnicate"), "{stdout}");
    assert!(stdout.trim_end().ends_with("Bye."), "{stdout}");
    assert!(!stdout.contains("os error"), "{stdout}");

    let inbox = ok(&server, &bob, &["inbox", "--wait", "0.5"], "");
    let first = inbox.find("alice (unverified, new contact): first line");
    let slash = inbox.find(": /slash");
    let second = inbox.find(": second line");
    assert!(
        first < slash && slash < second && first.is_some(),
        "{inbox}"
    );
    assert!(!inbox.contains("frobnicate"), "{inbox}");
    assert!(inbox.contains("3 new messages"), "{inbox}");
}
