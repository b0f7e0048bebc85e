use super::*;
use sesame_proto::client::ClientPolicy;

#[test]
fn error_frames_and_unexpected_types_are_errors() {
    let e = parse_frame(
        r#"{"type":"error","error":{"code":"too_many_attempts","message":"Slow down."}}"#,
        "login_challenge",
    )
    .unwrap_err();
    match e {
        Error::Server {
            status,
            code,
            message,
            ..
        } => {
            assert_eq!(status, None);
            assert!(code == Some(crate::api::LimitError::TooManyAttempts.into()));
            assert_eq!(message, "Slow down.");
        }
        other => panic!("{other:?}"),
    }
    let e = parse_frame(
        r#"{"type":"error","error":{"code":"authentication_failed","message":"x"}}"#,
        "login_confirmation",
    )
    .unwrap_err();
    assert!(matches!(e, Error::AuthenticationFailed));
    let frame = parse_frame(r#"{"type":"login_result","status":"accepted"}"#, "x").unwrap();
    assert!(matches!(
        unexpected(&frame, "x"),
        Error::UnexpectedResponse(_)
    ));
    assert!(parse_frame("[1]", "login_result").is_err());
    assert!(parse_frame(r#"{"status":"accepted"}"#, "login_result").is_err());
    assert!(matches!(
        frame,
        LoginServerFrame::LoginResult {
            status: LoginResultStatus::Accepted
        }
    ));
}

#[test]
fn ws_url_follows_the_base_scheme_and_path() {
    let c = Client::new("http://127.0.0.1:7878", ClientPolicy::default()).unwrap();
    assert_eq!(
        c.ws_login_url().unwrap().as_str(),
        "ws://127.0.0.1:7878/auth/login"
    );
    let c = Client::new("https://example.com/sesame/", ClientPolicy::default()).unwrap();
    assert_eq!(
        c.ws_login_url().unwrap().as_str(),
        "wss://example.com/sesame/auth/login"
    );
}
