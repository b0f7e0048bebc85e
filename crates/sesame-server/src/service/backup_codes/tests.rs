use super::normalize_backup_code;

#[test]
fn backup_codes_normalise_typing_variants() {
    assert_eq!(
        normalize_backup_code("ABCDE-FGH1K").as_deref(),
        Some("abcdefgh1k")
    );
    assert_eq!(
        normalize_backup_code("abcde fghlk").as_deref(),
        Some("abcdefgh1k"),
        "l reads as 1"
    );
    assert_eq!(
        normalize_backup_code("0o0o0-OOOO0").as_deref(),
        Some("0000000000")
    );
    assert_eq!(
        normalize_backup_code("abcde-fghu1"),
        None,
        "u is not Crockford"
    );
    assert_eq!(normalize_backup_code("abcd"), None);
    assert_eq!(normalize_backup_code("abcde-fgh1kk"), None);
    assert_eq!(normalize_backup_code("äbcde-fgh1k"), None);
}
