use std::time::Duration;

use super::{millis, redact, stamp, unstamp, MAX_TTL_MS};

#[test]
fn passwords_are_hidden() {
    assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    assert_eq!(
        redact("redis://user:secret@h:1/0"),
        "redis://user:***@h:1/0"
    );
    assert_eq!(redact("redis://:secret@h"), "redis://:***@h");
    assert_eq!(redact("redis://token@h"), "redis://***@h");
    assert_eq!(redact("not a url"), "not a url");
}

#[test]
fn ttls_are_clamped_to_what_redis_accepts() {
    assert_eq!(millis(Duration::ZERO), 1);
    assert_eq!(millis(Duration::from_millis(300)), 300);
    assert_eq!(millis(Duration::MAX), MAX_TTL_MS);
}

#[test]
fn stamped_values_die_at_their_expiry() {
    let raw = stamp(1_000, Duration::from_millis(500), b"v\x00");
    assert_eq!(&raw[..20], b"00000000000000001500");
    assert_eq!(unstamp(&raw, 1_499), Some(b"v\x00".to_vec()));
    assert_eq!(unstamp(&raw, 1_500), None);
    assert_eq!(unstamp(b"short", 0), None);
    assert_eq!(unstamp(b"not-a-stamp-at-all!!value", 0), None);
}
