use super::*;

#[test]
fn server_error_display_names_code_and_status() {
    let e = Error::Server {
        status: Some(409),
        code: ErrorCode::from_wire("username_taken", Some(409)),
        wire_code: "username_taken".into(),
        message: "That username is taken.".into(),
        retry_after: None,
    };
    assert_eq!(
        e.to_string(),
        "That username is taken. (server error `username_taken`, HTTP 409)"
    );
    assert!(e.is(sesame_api::InputError::UsernameTaken));
    assert!(!e.is_unauthorized());
}

#[test]
fn proto_errors_map_to_the_variants_callers_act_on() {
    assert!(matches!(
        Error::from(sesame_proto::Error::AuthenticationFailed),
        Error::AuthenticationFailed
    ));
    assert!(matches!(
        Error::from(sesame_proto::Error::ConfirmationInvalid),
        Error::ConfirmationInvalid
    ));
    assert!(matches!(
        Error::from(sesame_proto::Error::KsfRejected("x")),
        Error::Protocol(sesame_proto::Error::KsfRejected("x"))
    ));
}

#[test]
fn key_mismatch_names_both_fingerprints() {
    let e = Error::ServerKeyMismatch {
        server: "http://127.0.0.1:7878".into(),
        pinned: "SHA256:aaa".into(),
        presented: "SHA256:bbb".into(),
    };
    let text = e.to_string();
    assert!(text.contains("SHA256:aaa") && text.contains("SHA256:bbb"));
    assert!(text.contains("http://127.0.0.1:7878"));
}
