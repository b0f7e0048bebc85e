use super::*;

#[test]
fn session_issued_ignores_unknown_fields_and_redacts_tokens() {
    // The body of POST /api/login: SessionIssued plus the seed's compatibility fields.
    let body = r#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","username":"alice",
        "session_id":"0d6e2b4c-1b5e-4a8f-a0a4-46b3c1f0e2d9","session_token":"st-secret",
        "access_token":"at-secret","token_type":"Bearer","expires_in":900,
        "session_expires_at":1767225600,"message":"Login successful.","token":"at-secret",
        "uuid":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","expires_at":"2026-01-01T00:15:00Z"}"#;
    let s: SessionIssued = serde_json::from_str(body).unwrap();
    assert_eq!(s.username, "alice");
    assert_eq!(s.expires_in, 900);
    let debug = format!("{s:?}");
    assert!(!debug.contains("secret"), "{debug}");
}

#[test]
fn registered_and_me_tolerate_missing_optional_fields() {
    let r: Registered = serde_json::from_str(
        r#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","username":"alice","status":"active","extra":1}"#,
    )
    .unwrap();
    assert_eq!(r.message, "");
    assert_eq!(r.status, AccountStatus::Active);
    let me: Me = serde_json::from_str(
        r#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","username":"alice",
            "status":"active","created_at":5,"last_login_at":null}"#,
    )
    .unwrap();
    assert_eq!(me.last_login_at, None);
}
