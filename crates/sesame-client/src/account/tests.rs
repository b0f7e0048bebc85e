use super::*;

#[test]
fn login_answers_are_told_apart() {
    let step = br#"{"second_factor_required":true,"mfa_token":"mfa_x","methods":["totp","backup_code"],"expires_in":300,"message":"Second factor required."}"#;
    match parse_login_payload(step).unwrap() {
        Confirmed::SecondFactor(r) => {
            assert_eq!(r.mfa_token, "mfa_x");
            assert_eq!(r.methods, ["totp", "backup_code"]);
            assert_eq!(r.expires_in, 300);
            assert!(!format!("{r:?}").contains("mfa_x"));
        }
        Confirmed::Session(_) => panic!("not a session"),
    }
    let session = br#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","username":"alice",
        "session_id":"0d6e2b4c-1b5e-4a8f-a0a4-46b3c1f0e2d9","session_token":"s",
        "access_token":"a","token_type":"Bearer","expires_in":900,"session_expires_at":1}"#;
    assert!(matches!(
        parse_login_payload(session).unwrap(),
        Confirmed::Session(_)
    ));
    assert!(parse_login_payload(br#"{"reauthenticated":true}"#).is_err());
    assert!(parse_login_payload(b"not json").is_err());
}

#[test]
fn profile_updates_send_only_what_changes() {
    let update = ProfileUpdate {
        display_name: Some(Some("Alice".into())),
        bio: Some(None),
        picture_url: None,
    };
    assert_eq!(
        serde_json::to_string(&update).unwrap(),
        r#"{"display_name":"Alice","bio":null}"#
    );
    assert!(ProfileUpdate::default().is_empty());
}

#[test]
fn recovery_proofs_send_only_what_is_given_and_hide_it_in_debug() {
    let proof = RecoveryProof {
        totp_code: Some("123456".into()),
        answers: Some(vec!["rex".into(), "paris".into()]),
        ..RecoveryProof::default()
    };
    assert_eq!(
        serde_json::to_string(&proof).unwrap(),
        r#"{"totp_code":"123456","answers":["rex","paris"]}"#
    );
    let debug = format!("{proof:?}");
    assert!(
        !debug.contains("123456") && !debug.contains("rex"),
        "{debug}"
    );
}

#[test]
fn account_reads_the_full_me_body() {
    let body = r#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","uuid":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11",
        "username":"alice","status":"active","created_at":5,"last_login_at":null,
        "profile":{"display_name":"Alice"},"totp_enabled":true,"backup_codes_left":9,
        "security_questions":2,"email":null}"#;
    let a: Account = serde_json::from_str(body).unwrap();
    assert!(a.totp_enabled);
    assert_eq!(a.backup_codes_left, 9);
    assert_eq!(a.profile.display_name.as_deref(), Some("Alice"));
    assert_eq!(a.profile.bio, None);
}
