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
