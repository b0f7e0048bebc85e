use super::*;

#[test]
fn error_bodies_become_server_errors() {
    let body = br#"{"error":{"code":"too_many_attempts","message":"Slow down."}}"#;
    let e = error_from_body(StatusCode::TOO_MANY_REQUESTS, body, Some(30));
    match e {
        Error::Server {
            status,
            code,
            message,
            retry_after,
            ..
        } => {
            assert_eq!(status, Some(429));
            assert_eq!(code.map(|c| c.as_str()), Some("too_many_attempts"));
            assert_eq!(message, "Slow down.");
            assert_eq!(retry_after, Some(30));
        }
        other => panic!("{other:?}"),
    }
    let auth = br#"{"error":{"code":"authentication_failed","message":"x"}}"#;
    assert!(matches!(
        error_from_body(StatusCode::UNAUTHORIZED, auth, None),
        Error::AuthenticationFailed
    ));
    let html = error_from_body(StatusCode::BAD_GATEWAY, b"<html>bad</html>", None);
    assert_eq!(html.server_code(), None);
    assert!(matches!(&html, Error::Server { wire_code, .. } if wire_code == "http_502"));
    let empty = error_from_body(StatusCode::BAD_GATEWAY, b"", None);
    assert!(empty.to_string().contains("Bad Gateway"), "{empty}");
}
