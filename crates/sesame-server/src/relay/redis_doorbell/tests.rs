//! Notice encoding of the cluster doorbell.

use super::*;

#[test]
fn notices_name_their_node_and_users() {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let (u, v) = (Uuid::new_v4(), Uuid::new_v4());
    let text = notice(a, &[u, v]);
    assert_eq!(text.len(), 32 * 3 + 2);
    let mut users = HashSet::new();
    let mut ends = Vec::new();
    users_of(text.as_bytes(), a, &mut users, &mut ends);
    assert!(users.is_empty(), "a node ignores its own notices");
    users_of(text.as_bytes(), b, &mut users, &mut ends);
    assert_eq!(users, HashSet::from([u, v]));
    users.clear();
    for junk in [
        &b""[..],
        b"\xff\xfe",
        b"not-a-uuid 1234",
        b"   ",
        b"x end:1:one:2",
    ] {
        users_of(junk, b, &mut users, &mut ends);
    }
    assert!(users.is_empty());
    assert!(ends.is_empty());
}

#[test]
fn end_notices_round_trip() {
    let (a, b, u, s) = (
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
        Uuid::new_v4(),
    );
    for which in [
        SessionsEnded::One(s),
        SessionsEnded::AllBut(Some(s)),
        SessionsEnded::AllBut(None),
    ] {
        let text = end_notice(a, u, which);
        let (mut users, mut ends) = (HashSet::new(), Vec::new());
        users_of(text.as_bytes(), a, &mut users, &mut ends);
        assert!(ends.is_empty(), "a node ignores its own notices");
        users_of(text.as_bytes(), b, &mut users, &mut ends);
        assert!(users.is_empty());
        assert_eq!(ends, vec![(u, which)]);
    }
    for junk in ["end:", "end:x:one:y", "end:{u}:some:{u}"] {
        assert_eq!(parse_end(junk), None);
    }
}

#[test]
fn presence_keys_are_prefixed_and_name_user_and_node() {
    let (u, n) = (Uuid::nil(), Uuid::max());
    assert_eq!(
        presence_key("sesame:", u, n),
        format!("sesame:presence:{u}:{n}")
    );
}
