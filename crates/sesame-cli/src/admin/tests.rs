use super::parse_since;

#[test]
fn since_accepts_three_forms() {
    assert_eq!(parse_since("1767225600", 0).unwrap(), 1_767_225_600);
    assert_eq!(
        parse_since("2026-01-01T00:00:00Z", 0).unwrap(),
        1_767_225_600
    );
    assert_eq!(parse_since("2h", 10_000).unwrap(), 10_000 - 7200);
    assert!(parse_since("yesterday-ish", 0).is_err());
}
