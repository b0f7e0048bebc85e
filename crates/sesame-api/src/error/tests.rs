use std::collections::BTreeSet;

use super::*;

#[test]
fn every_code_and_status_pair_is_unique_and_parses_back() {
    let mut seen = BTreeSet::new();
    for code in ErrorCode::all() {
        assert!(
            seen.insert((code.as_str(), code.status())),
            "{code:?} repeats a (code, status) pair"
        );
        assert_eq!(
            ErrorCode::from_wire(code.as_str(), Some(code.status())),
            Some(code)
        );
        assert!((400..600).contains(&code.status()), "{code:?}");
        assert!(code
            .as_str()
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
    }
    assert_eq!(ErrorCode::from_wire("no_such_code", None), None);
}

#[test]
fn the_one_code_with_two_statuses_is_told_apart_by_status() {
    assert_eq!(
        ErrorCode::from_wire("invalid_code", Some(400)),
        Some(InputError::VerificationCodeInvalid.into())
    );
    assert_eq!(
        ErrorCode::from_wire("invalid_code", Some(401)),
        Some(CredentialError::InvalidCode.into())
    );
    // WebSocket and TCP carry no status and only ever send the second-factor meaning.
    assert_eq!(
        ErrorCode::from_wire("invalid_code", None),
        Some(CredentialError::InvalidCode.into())
    );
}

#[test]
fn groups_say_who_is_at_fault() {
    assert_eq!(
        ErrorCode::from(CredentialError::AuthenticationFailed).status(),
        401
    );
    assert!(ErrorCode::from(LimitError::TooManyAttempts).is_retryable());
    assert!(!ErrorCode::from(InputError::UsernameTaken).is_retryable());
    let body = ErrorBody {
        error: ErrorCode::from(InputError::UnknownLogin).detail("start again"),
    };
    assert_eq!(
        serde_json::to_string(&body).unwrap(),
        r#"{"error":{"code":"unknown_login","message":"start again"}}"#
    );
}

#[test]
fn policy_errors_map_to_the_codes_the_policy_names() {
    use sesame_proto::policy::{PasswordError, UsernameError};
    for e in [
        UsernameError::TooShort,
        UsernameError::TooLong,
        UsernameError::InvalidCharacter('!'),
        UsernameError::InvalidStart,
        UsernameError::Reserved,
    ] {
        assert_eq!(InputError::from(e).as_str(), e.code());
    }
    for e in [
        PasswordError::TooShort,
        PasswordError::TooLong,
        PasswordError::ContainsUsername,
        PasswordError::Common,
    ] {
        assert_eq!(InputError::from(e).as_str(), e.code());
    }
}
