//! Protected operations and recovery, on both backends: profile, fresh re-authentication,
//! password change (both paths), backup code regeneration, security questions, recovery and
//! account deletion.

mod common;

use common::api::{
    call, delete_auth, err, get, get_auth, login, post, post_auth, put_auth, refresh, register,
    tokens, PASSWORD,
};
use common::on_every_backend;
use common::server::TestServer;
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation, RegistrationChallenge};
use sesame_server::store::FactorKind;

const NEW_PASSWORD: &str = "a brand new passphrase";

/// Registers and logs in; returns (access token, session token, backup codes).
async fn account(c: &Client, srv: &TestServer, name: &str) -> (String, String, Vec<String>) {
    let reg = register(c, srv, name).await;
    let (t, st) = tokens(c, srv, name, PASSWORD).await;
    (
        t,
        st,
        serde_json::from_value(reg["backupCodes"].clone()).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profile_is_validated_and_me_reports_factor_status() {
    on_every_backend!(|c, srv, db| {
        let (token, _, _) = account(&c, &srv, "yara").await;
        let (s, me) = get_auth(&c, &srv, "/api/me", &token).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(
            (
                me["username"].as_str(),
                me["totp_enabled"].as_bool(),
                me["backup_codes_left"].as_u64()
            ),
            (Some("yara"), Some(false), Some(10))
        );
        let update = json!({"display_name": "Yara Q.", "bio": "Plays\nchess.", "picture_url": "https://example.com/y.png"});
        let (s, b) = put_auth(&c, &srv, "/api/me", &token, update).await;
        assert_eq!(s, StatusCode::OK, "{} {b}", db.name);
        assert_eq!(b["profile"]["display_name"], "Yara Q.");
        for bad in [
            json!({"display_name": "x".repeat(65)}),
            json!({"display_name": "tab\there"}),
            json!({"bio": "y".repeat(501)}),
            json!({"picture_url": "javascript:alert(1)"}),
            json!({"picture_url": "http://example.com/plain-http.png"}),
            json!({"picture_url": "not a url"}),
            json!({"nickname": "unknown field"}),
        ] {
            let (s, b) = put_auth(&c, &srv, "/api/me", &token, bad.clone()).await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {b}");
        }
        // Absent fields stay, null clears.
        let (_, b) = put_auth(&c, &srv, "/api/me", &token, json!({"bio": null})).await;
        assert_eq!(
            b["profile"],
            json!({"display_name": "Yara Q.", "picture_url": "https://example.com/y.png"})
        );
        let (s, _) = call(
            &c,
            &srv,
            reqwest::Method::PUT,
            "/api/me",
            None,
            Some(json!({})),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sensitive_operations_need_a_fresh_authentication() {
    on_every_backend!(|c, srv, db| {
        let (token, _, old_codes) = account(&c, &srv, "zack").await;
        // A fresh login may regenerate backup codes at once.
        let (s, b) = post_auth(&c, &srv, "/api/backup-codes/regenerate", &token, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{} {b}", db.name);
        let new_codes: Vec<String> = serde_json::from_value(b["backupCodes"].clone()).unwrap();
        assert_ne!(new_codes, old_codes);
        // Five minutes later the same session must re-authenticate first.
        srv.clock.advance(301);
        for (method, path, body) in [
            (
                reqwest::Method::POST,
                "/api/backup-codes/regenerate",
                Some(json!({})),
            ),
            (
                reqwest::Method::POST,
                "/api/password",
                Some(json!({"new_password": NEW_PASSWORD})),
            ),
            (
                reqwest::Method::PUT,
                "/api/security-questions",
                Some(json!({"questions": []})),
            ),
            (reqwest::Method::POST, "/api/generate-qr", Some(json!({}))),
            (reqwest::Method::DELETE, "/api/me", None),
        ] {
            let (s, b) = call(&c, &srv, method, path, Some(&token), body).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::FORBIDDEN, "reauthentication_required"),
                "{path}"
            );
        }
        // OPAQUE re-authentication: the proof refreshes this session.
        let mut rng = ChaCha20Rng::from_entropy();
        let (state, start) = client::start_login(&mut rng, "zack", PASSWORD).unwrap();
        let (s, ch) = post_auth(&c, &srv, "/api/reauth/start", &token, &start).await;
        assert_eq!(s, StatusCode::OK, "{ch}");
        let ch: LoginChallenge = serde_json::from_value(ch).unwrap();
        let done = state
            .finish(&mut rng, &ch, &ClientPolicy::default())
            .unwrap();
        let (s, conf) = post_auth(&c, &srv, "/api/reauth/finish", &token, &done.message).await;
        assert_eq!(s, StatusCode::OK, "{conf}");
        let conf: LoginConfirmation = serde_json::from_value(conf).unwrap();
        let payload: Value =
            serde_json::from_slice(&done.confirmation.open(&conf).unwrap()).unwrap();
        assert_eq!(payload["reauthenticated"], true);
        // Re-authenticating as someone else is refused.
        account(&c, &srv, "zelda").await;
        let (_, start) = client::start_login(&mut rng, "zelda", PASSWORD).unwrap();
        let (s, b) = post_auth(&c, &srv, "/api/reauth/start", &token, &start).await;
        assert_eq!((s, err(&b)), (StatusCode::BAD_REQUEST, "username_mismatch"));
        let (s, b) = post_auth(&c, &srv, "/api/backup-codes/regenerate", &token, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{b}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_on_both_paths_and_session_revocation() {
    on_every_backend!(|c, srv, db| {
        let (token, _, _) = account(&c, &srv, "quinn").await;
        let (other, _) = tokens(&c, &srv, "quinn", PASSWORD).await;
        // Server-assisted, with the policy enforced and the other session revoked.
        let (s, b) = post_auth(
            &c,
            &srv,
            "/api/password",
            &token,
            json!({"new_password": "quinn-password"}),
        )
        .await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::BAD_REQUEST, "password_contains_username")
        );
        let (s, b) = post_auth(
            &c,
            &srv,
            "/api/password",
            &token,
            json!({"new_password": NEW_PASSWORD, "revoke_other_sessions": true}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{} {b}", db.name);
        assert_eq!(b["revoked_sessions"], 1);
        let (s, _) = get_auth(&c, &srv, "/api/me", &other).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "the other session ended");
        let (s, _) = get_auth(&c, &srv, "/api/me", &token).await;
        assert_eq!(s, StatusCode::OK, "this session lives on");
        let (s, _) = login(&c, &srv, "quinn", PASSWORD).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        // Client-side: the new password never reaches the server.
        let mut rng = ChaCha20Rng::from_entropy();
        let (state, start) = client::start_registration(&mut rng, "quinn", PASSWORD).unwrap();
        let (s, ch) = post_auth(&c, &srv, "/api/password/start", &token, &start).await;
        assert_eq!(s, StatusCode::OK, "{ch}");
        let ch: RegistrationChallenge = serde_json::from_value(ch).unwrap();
        let done = state
            .finish(&mut rng, &ch, &ClientPolicy::default())
            .unwrap();
        let body = json!({"registration": done.message, "revoke_other_sessions": false});
        let (s, b) = post_auth(&c, &srv, "/api/password/finish", &token, body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        tokens(&c, &srv, "quinn", PASSWORD).await;
        let audit = srv
            .sesame
            .admin_audit(Some("quinn"), None, 50)
            .await
            .unwrap();
        assert_eq!(
            audit
                .iter()
                .filter(|e| e.event == "protected.password_changed")
                .count(),
            2
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_questions_are_validated() {
    let db = common::TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let (token, _, _) = account(&c, &srv, "rhea").await;
    let (s, cat) = get(&c, &srv, "/api/security-questions/catalog").await;
    assert_eq!(s, StatusCode::OK);
    let q = |i: usize| cat["questions"][i].as_str().unwrap().to_owned();
    for bad in [
        json!([{"question": q(0), "answer": "rex"}]),
        json!([{"question": q(0), "answer": "rex"}, {"question": q(0), "answer": "paris"}]),
        json!([{"question": q(0), "answer": "ab"}, {"question": q(1), "answer": "paris"}]),
        json!([{"question": q(0), "answer": "rex"}, {"question": q(1), "answer": "paris"}, {"question": q(2), "answer": "abc"}, {"question": q(3), "answer": "def"}]),
    ] {
        let (s, b) = put_auth(
            &c,
            &srv,
            "/api/security-questions",
            &token,
            json!({"questions": bad}),
        )
        .await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::BAD_REQUEST, "security_questions_invalid")
        );
    }
    let good = json!({"questions": [{"question": q(0), "answer": "Rex"}, {"question": "My own question?", "answer": "Paris  France"}]});
    let (s, b) = put_auth(&c, &srv, "/api/security-questions", &token, good).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
    let (_, me) = get_auth(&c, &srv, "/api/me", &token).await;
    assert_eq!(me["security_questions"], 2);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_a_backup_code_on_both_credential_paths() {
    on_every_backend!(|c, srv, db| {
        let (token, _, codes) = account(&c, &srv, "sam").await;
        // Server-assisted new password.
        let (s, started) = post(&c, &srv, "/api/recover/start", json!({"username": "sam"})).await;
        assert_eq!(s, StatusCode::OK, "{} {started}", db.name);
        let id = started["recovery_id"].as_str().unwrap().to_owned();
        let (s, b) = post(
            &c,
            &srv,
            "/api/recover/finish",
            json!({"recovery_id": id, "backup_code": "zzzzz-zzzzz", "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "recovery_failed"));
        let (s, b) = post(
            &c,
            &srv,
            "/api/recover/finish",
            json!({"recovery_id": id, "backup_code": codes[3], "new_password": NEW_PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let fresh: Vec<String> = serde_json::from_value(b["backupCodes"].clone()).unwrap();
        assert_eq!(fresh.len(), 10);
        let (s, _) = get_auth(&c, &srv, "/api/me", &token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "every session was revoked");
        tokens(&c, &srv, "sam", NEW_PASSWORD).await;
        // The recovery id is single-use; old codes died with the fresh set.
        let (s, b) = post(
            &c,
            &srv,
            "/api/recover/finish",
            json!({"recovery_id": id, "backup_code": codes[4], "new_password": PASSWORD}),
        )
        .await;
        assert_eq!((s, err(&b)), (StatusCode::BAD_REQUEST, "recovery_expired"));
        // Client-side new record: the new password never reaches the server.
        let mut rng = ChaCha20Rng::from_entropy();
        let (state, start) = client::start_registration(&mut rng, "sam", PASSWORD).unwrap();
        let (_, started) = post(
            &c,
            &srv,
            "/api/recover/start",
            json!({"username": "sam", "registration_request": start.registration_request}),
        )
        .await;
        let ch: RegistrationChallenge =
            serde_json::from_value(started["registration_challenge"].clone()).unwrap();
        let done = state
            .finish(&mut rng, &ch, &ClientPolicy::default())
            .unwrap();
        let body = json!({
            "recovery_id": started["recovery_id"], "backup_code": codes[5],
            "registration_record": done.message.registration_record, "key_stretching": done.message.key_stretching,
        });
        let (s, b) = post(&c, &srv, "/api/recover/finish", body.clone()).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "recovery_failed"),
            "old set is dead"
        );
        let (_, started) = post(
            &c,
            &srv,
            "/api/recover/start",
            json!({"username": "sam", "registration_request": start.registration_request}),
        )
        .await;
        let body = json!({
            "recovery_id": started["recovery_id"], "backup_code": fresh[0],
            "registration_record": done.message.registration_record, "key_stretching": done.message.key_stretching,
        });
        let (s, b) = post(&c, &srv, "/api/recover/finish", body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        tokens(&c, &srv, "sam", PASSWORD).await;
        let audit = srv
            .sesame
            .admin_audit(Some("sam"), None, 100)
            .await
            .unwrap();
        assert!(audit.iter().any(|e| e.event == "recovery.success"));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn questions_alone_never_recover_and_unknown_users_look_the_same() {
    let db = common::TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let (token, _, _) = account(&c, &srv, "tom").await;
    let (_, cat) = get(&c, &srv, "/api/security-questions/catalog").await;
    let questions = json!({"questions": [
        {"question": cat["questions"][0], "answer": "rex"},
        {"question": cat["questions"][1], "answer": "paris"},
    ]});
    let (s, _) = put_auth(&c, &srv, "/api/security-questions", &token, questions).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, started) = post(&c, &srv, "/api/recover/start", json!({"username": "tom"})).await;
    assert_eq!(
        started["questions"],
        json!([cat["questions"][0], cat["questions"][1]])
    );
    // Right answers but no TOTP code: refused.
    let (s, b) = post(&c, &srv, "/api/recover/finish", json!({"recovery_id": started["recovery_id"], "answers": ["Rex", "PARIS"], "new_password": NEW_PASSWORD})).await;
    assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "recovery_failed"));
    // An unknown user gets a start of the same shape (stand-in questions, stable per name)
    // and the same failure.
    let (s, ghost) = post(
        &c,
        &srv,
        "/api/recover/start",
        json!({"username": "ghost-user"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ghost), keys(&started));
    assert!(ghost["questions"].as_array().unwrap().len() >= 2);
    let (_, again) = post(
        &c,
        &srv,
        "/api/recover/start",
        json!({"username": "ghost-user"}),
    )
    .await;
    assert_eq!(again["questions"], ghost["questions"]);
    let (s, b) = post(&c, &srv, "/api/recover/finish", json!({"recovery_id": ghost["recovery_id"], "backup_code": "abcde-fghjk", "new_password": NEW_PASSWORD})).await;
    assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "recovery_failed"));
    // Five failed tries burn a recovery.
    let (_, r) = post(&c, &srv, "/api/recover/start", json!({"username": "tom"})).await;
    let mut last = StatusCode::OK;
    for _ in 0..6 {
        let (s, _) = post(&c, &srv, "/api/recover/finish", json!({"recovery_id": r["recovery_id"], "backup_code": "abcde-fghjk", "new_password": NEW_PASSWORD})).await;
        last = s;
    }
    assert!(
        matches!(
            last,
            StatusCode::BAD_REQUEST | StatusCode::TOO_MANY_REQUESTS
        ),
        "{last}"
    );
    // A malformed finish is a 400 before any code is spent.
    let (s, b) = post(
        &c,
        &srv,
        "/api/recover/finish",
        json!({"recovery_id": "x", "backup_code": "abcde-fghjk"}),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_account_removes_everything() {
    on_every_backend!(|c, srv, db| {
        let (token, session_token, _) = account(&c, &srv, "uma").await;
        put_auth(&c, &srv, "/api/me", &token, json!({"bio": "bye"})).await;
        let user = srv.sesame.admin_find("uma").await.unwrap();
        let (s, _) = delete_auth(&c, &srv, "/api/me", &token).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{}", db.name);
        let (s, _) = refresh(&c, &srv, &session_token).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, _) = login(&c, &srv, "uma", PASSWORD).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        assert!(srv
            .sesame
            .store()
            .factors(user.id, FactorKind::BackupCode)
            .await
            .unwrap()
            .is_empty());
        assert!(srv
            .sesame
            .store()
            .factors(user.id, FactorKind::Profile)
            .await
            .unwrap()
            .is_empty());
        // The name is free again.
        let (s, _) = post(
            &c,
            &srv,
            "/api/register",
            json!({"username": "uma", "password": PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_survives_a_bad_request_and_is_limited_per_account() {
    let db = common::TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let (_, _, codes) = account(&c, &srv, "vera").await;
    let (_, started) = post(&c, &srv, "/api/recover/start", json!({"username": "vera"})).await;
    let id = started["recovery_id"].clone();
    // A new password that breaks the policy is a 400 that leaves the recovery open.
    let (s, b) = post(
        &c,
        &srv,
        "/api/recover/finish",
        json!({"recovery_id": id, "backup_code": codes[0], "new_password": "short"}),
    )
    .await;
    assert_eq!(
        (s, err(&b)),
        (StatusCode::BAD_REQUEST, "password_too_short")
    );
    let (s, b) = post(
        &c,
        &srv,
        "/api/recover/finish",
        json!({"recovery_id": id, "backup_code": codes[0], "new_password": NEW_PASSWORD}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // Five recoveries an hour per account, the same for a name nobody has.
    for name in ["vera", "no-such-vera"] {
        let mut last = StatusCode::OK;
        for _ in 0..6 {
            last = post(&c, &srv, "/api/recover/start", json!({"username": name}))
                .await
                .0;
        }
        assert_eq!(last, StatusCode::TOO_MANY_REQUESTS, "{name}");
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_settings_need_a_fresh_login_and_recovery_lifts_the_requirement() {
    use ed25519_dalek::SigningKey;
    let db = common::TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let (token, _, codes) = account(&c, &srv, "walt").await;
    let device = SigningKey::from_bytes(&[7u8; 32]);
    let pk = sesame_proto::b64::encode(device.verifying_key().to_bytes());
    let (s, b) = post_auth(
        &c,
        &srv,
        "/api/devices",
        &token,
        json!({"name": "laptop", "public_key": pk}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let (s, _) = put_auth(
        &c,
        &srv,
        "/api/2fa/device",
        &token,
        json!({"required": true}),
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    srv.clock.advance(301);
    let (s, b) = put_auth(
        &c,
        &srv,
        "/api/2fa/device",
        &token,
        json!({"required": false}),
    )
    .await;
    assert_eq!(
        (s, err(&b)),
        (StatusCode::FORBIDDEN, "reauthentication_required")
    );
    let (s, b) = post_auth(
        &c,
        &srv,
        "/api/devices",
        &token,
        json!({"name": "phone", "public_key": pk}),
    )
    .await;
    assert_eq!(
        (s, err(&b)),
        (StatusCode::FORBIDDEN, "reauthentication_required")
    );
    // The device is lost: a backup code recovers the account and lifts the requirement, so a
    // plain password login works again.
    let (_, started) = post(&c, &srv, "/api/recover/start", json!({"username": "walt"})).await;
    let (s, b) = post(&c, &srv, "/api/recover/finish", json!({"recovery_id": started["recovery_id"], "backup_code": codes[1], "new_password": NEW_PASSWORD})).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    tokens(&c, &srv, "walt", NEW_PASSWORD).await;
    srv.stop().await;
}
