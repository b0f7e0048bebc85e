use super::*;
use zeroize::Zeroizing;

fn received(verdict: Verdict) -> Received {
    Received {
        id: "id-1".into(),
        from: "bob".into(),
        sent_at: 1_767_225_600_000 + 61_000,
        verdict,
    }
}

#[test]
fn control_characters_never_reach_the_terminal() {
    assert_eq!(clean("hi\x1b[2Jthere"), "hi\u{FFFD}[2Jthere");
    assert_eq!(clean("a\nb"), "a\n    b");
    assert_eq!(clean("tab\there"), "tab here");
    assert_eq!(clean("\u{7}bell"), "\u{FFFD}bell");
}

#[test]
fn clocks_are_utc() {
    assert_eq!(
        clock(1_767_225_600_000, Clock::Date),
        "2026-01-01 00:00 UTC"
    );
    assert_eq!(clock(1_767_225_600_000 + 3_661_000, Clock::Time), "01:01");
}

#[test]
fn only_valid_messages_look_like_messages() {
    let ok = describe(
        &received(Verdict::Valid {
            text: Zeroizing::new("hello".into()),
            trust: ContactTrust::Unverified,
            first_use: false,
            duplicate: false,
        }),
        Clock::Time,
    )
    .unwrap();
    assert_eq!(ok, "[00:01] bob (unverified): hello");
    let dup = received(Verdict::Valid {
        text: Zeroizing::new("hello".into()),
        trust: ContactTrust::Verified,
        first_use: false,
        duplicate: true,
    });
    assert!(describe(&dup, Clock::Time).is_none());
    for v in [
        Verdict::BadSignature,
        Verdict::DecryptFailed,
        Verdict::UnknownSender,
        Verdict::Invalid("x".into()),
        Verdict::Unavailable("y".into()),
        Verdict::KeyChanged {
            pinned: "p".into(),
            presented: "q".into(),
        },
    ] {
        let line = describe(&received(v), Clock::Time).unwrap();
        assert!(line.starts_with("!!"), "{line}");
        assert!(!line.contains("hello"));
    }
}

#[test]
fn own_messages_look_like_the_peers() {
    let msg = sesame_proto::e2e::SealedMessage {
        id: "id-2".into(),
        sent_at: 1_767_225_600_000 + 3_661_000,
        ciphertext: sesame_proto::b64::Bytes(Vec::new()),
        signature: sesame_proto::b64::Bytes(Vec::new()),
    };
    assert_eq!(
        interactive::own_line(&msg, "hi\x1b[2J"),
        "[01:01] you: hi\u{FFFD}[2J"
    );
}

#[test]
fn the_arrows_walk_the_lines_sent_and_come_back_to_the_draft() {
    let mut h = terminal::History::default();
    assert_eq!(h.older("draft"), None);
    h.push("one");
    h.push("two");
    h.push("two");
    assert_eq!(h.older("half typed").as_deref(), Some("two"));
    assert_eq!(h.older("two").as_deref(), Some("one"));
    assert_eq!(h.older("one"), None);
    assert_eq!(h.newer().as_deref(), Some("two"));
    assert_eq!(h.newer().as_deref(), Some("half typed"));
    assert_eq!(h.newer(), None);
    h.push("three");
    assert_eq!(h.older("").as_deref(), Some("three"));
}

#[test]
fn only_failures_that_may_pass_are_retried() {
    use sesame_client::Error;
    let gone = anyhow::Error::from(MessagingError::Client(Error::Timeout))
        .context("cannot connect to the relay");
    assert!(interactive::transient(&gone));
    let busy = anyhow::Error::from(Error::Server {
        status: Some(503),
        code: None,
        wire_code: "http_503".into(),
        message: "service unavailable".into(),
        retry_after: None,
    })
    .context("cannot refresh the access token");
    assert!(interactive::transient(&busy));
    let refused = anyhow::Error::from(MessagingError::Client(Error::AuthenticationFailed));
    assert!(!interactive::transient(&refused));
    let pin = anyhow::Error::from(Error::ServerKeyMismatch {
        server: "http://127.0.0.1:1".into(),
        pinned: "a".into(),
        presented: "b".into(),
    });
    assert!(!interactive::transient(&pin));
    assert!(!interactive::transient(&anyhow::anyhow!("not logged in")));
}

#[test]
fn quitting_takes_the_whole_line() {
    assert!(terminal::is_quit("/quit"));
    assert!(terminal::is_quit("  /exit "));
    assert!(!terminal::is_quit("/quit now"));
    assert!(!terminal::is_quit("//quit"));
}
