//! Passkeys (WebAuthn) through a real server on SQLite and PostgreSQL, with a software
//! authenticator (`common::authenticator`): registration (excluding registered credentials),
//! listing and renaming, sign-in as the second factor and passwordless, a wrong origin, a
//! replayed assertion, a cloned authenticator's counter, an unknown and a removed credential,
//! expired ceremonies, the "phishing-resistant factor required" policy, freshness, and the
//! operator's commands.

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use common::api::{self, audit_of, err, login, post, post_auth, put_auth, tokens, PASSWORD};
use common::authenticator::SoftAuthenticator;
use common::backends;
use common::server::TestServer;

/// The origin the test server accepts passkeys from (relying party `localhost`).
const ORIGIN: &str = "http://localhost:8080";

type Answer = (StatusCode, Value);

async fn start(db: &common::TestDb) -> TestServer {
    TestServer::start_with(db, |c| {
        c.webauthn_rp_id = Some("localhost".into());
        c.webauthn_origins = vec![ORIGIN.into()];
    })
    .await
}

/// Registers `name` (password) and signs in: (access token, user id, backup codes).
async fn account(c: &Client, srv: &TestServer, name: &str) -> (String, Uuid, Vec<String>) {
    let reg = api::register(c, srv, name).await;
    let codes = serde_json::from_value(reg["backupCodes"].clone()).unwrap();
    let (token, _) = tokens(c, srv, name, PASSWORD).await;
    let user = srv.sesame.admin_find(name).await.unwrap().id;
    (token, user, codes)
}

async fn post_empty(c: &Client, srv: &TestServer, path: &str, token: Option<&str>) -> Answer {
    let mut req = c.post(srv.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    api::send(req).await
}

/// Registration start; the options.
async fn register_options(c: &Client, srv: &TestServer, token: &str) -> Answer {
    post_empty(c, srv, "/api/passkeys/register/start", Some(token)).await
}

/// A whole registration by `auth`, named `name`.
async fn add_passkey(
    c: &Client,
    srv: &TestServer,
    token: &str,
    auth: &mut SoftAuthenticator,
    name: &str,
) -> Answer {
    let (s, start) = register_options(c, srv, token).await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let credential = auth.register(&start["options"]);
    let body = json!({"ceremony_id": start["ceremony_id"], "name": name, "credential": credential});
    post_auth(c, srv, "/api/passkeys/register/finish", token, body).await
}

async fn list(c: &Client, srv: &TestServer, token: &str) -> Value {
    let (s, b) = api::get_auth(c, srv, "/api/passkeys", token).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    b
}

/// Passwordless sign-in: start, then `answer` the options.
async fn passwordless(
    c: &Client,
    srv: &TestServer,
    answer: impl FnOnce(&Value) -> Value,
) -> Answer {
    let (s, start) = post_empty(c, srv, "/api/login/passkey/discoverable/start", None).await;
    assert_eq!(s, StatusCode::OK, "{start}");
    assert_eq!(start["options"]["mediation"], "conditional");
    let credential = answer(&start["options"]);
    let body = json!({"ceremony_id": start["ceremony_id"], "credential": credential});
    post(c, srv, "/api/login/passkey/discoverable/finish", body).await
}

/// The second factor by passkey for `mfa_token`: start, then `answer` the options.
async fn second_factor(
    c: &Client,
    srv: &TestServer,
    mfa_token: &Value,
    answer: impl FnOnce(&Value) -> Value,
) -> Answer {
    let (s, start) = post(
        c,
        srv,
        "/api/login/passkey/start",
        json!({"mfa_token": mfa_token}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{start}");
    let credential = answer(&start["options"]);
    let body = json!({"mfa_token": mfa_token, "ceremony_id": start["ceremony_id"],
        "credential": credential});
    post(c, srv, "/api/login/passkey/finish", body).await
}

/// The `amr` claim of an access token.
fn amr(access_token: &Value) -> Vec<String> {
    let payload = access_token.as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    serde_json::from_value(claims["amr"].clone()).unwrap()
}

fn events(audit: &[sesame_server::store::AuditRecord]) -> Vec<String> {
    audit
        .iter()
        .map(|e| format!("{} {}", e.event, e.reason.clone().unwrap_or_default()))
        .collect()
}

/// The next registration excludes the registered credential, and asks for a discoverable one.
async fn next_registration_excludes(
    c: &Client,
    srv: &TestServer,
    token: &str,
    auth: &SoftAuthenticator,
) {
    let (_, next) = register_options(c, srv, token).await;
    let pk = &next["options"]["publicKey"];
    assert_eq!(pk["rp"]["id"], "localhost");
    assert_eq!(pk["authenticatorSelection"]["residentKey"], "required");
    let excluded = pk["excludeCredentials"].as_array().unwrap();
    assert_eq!(excluded.len(), 1);
    assert_eq!(
        excluded[0]["id"],
        URL_SAFE_NO_PAD.encode(&auth.credentials[0].id)
    );
}

#[tokio::test]
async fn register_rename_and_sign_in_with_a_password_and_without() {
    for db in backends().await {
        let srv = start(&db).await;
        let c = Client::new();
        let name = api::username("pk");
        let (token, user, _) = account(&c, &srv, &name).await;
        let mut auth = SoftAuthenticator::new(ORIGIN, 1);

        let (s, view) = add_passkey(&c, &srv, &token, &mut auth, "  Laptop ").await;
        assert_eq!(s, StatusCode::CREATED, "{view}");
        assert_eq!(view["name"], "Laptop");
        next_registration_excludes(&c, &srv, &token, &auth).await;

        // Rename; bad names and unknown ids are refused.
        let id = view["id"].as_str().unwrap();
        let path = format!("/api/passkeys/{id}");
        let (s, b) = put_auth(&c, &srv, &path, &token, json!({"name": "Work laptop"})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let (s, b) = put_auth(&c, &srv, &path, &token, json!({"name": " "})).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::BAD_REQUEST, "invalid_passkey_name")
        );
        let other = format!("/api/passkeys/{}", Uuid::new_v4());
        let (s, b) = put_auth(&c, &srv, &other, &token, json!({"name": "x"})).await;
        assert_eq!((s, err(&b)), (StatusCode::NOT_FOUND, "passkey_not_found"));
        let listed = list(&c, &srv, &token).await;
        assert_eq!(listed["passkeys"][0]["name"], "Work laptop");
        assert_eq!(listed["phishing_resistant_required"], false);

        // Password, then the passkey as the second factor: pwd + hwk + mfa.
        let (s, first) = login(&c, &srv, &name, PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{first}");
        assert_eq!(first["second_factor_required"], true);
        assert_eq!(first["methods"], json!(["passkey", "backup_code"]));
        let (s, b) = second_factor(&c, &srv, &first["mfa_token"], |o| auth.assert(o)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(amr(&b["access_token"]), ["pwd", "hwk", "mfa"]);

        // Passwordless: the passkey alone, hwk.
        let (s, b) = passwordless(&c, &srv, |o| auth.assert(o)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["username"], name.as_str());
        assert_eq!(amr(&b["access_token"]), ["hwk"]);
        assert!(list(&c, &srv, &token).await["passkeys"][0]["last_used_at"].is_i64());

        let log = events(&audit_of(&srv, user).await);
        assert!(
            log.iter().any(|e| e.starts_with("passkey.added passkey=")),
            "{log:?}"
        );
        assert!(
            log.iter().any(|e| e == "login.success methods=hwk"),
            "{log:?}"
        );
        assert!(
            log.iter().any(|e| e == "login.success methods=pwd,hwk,mfa"),
            "{log:?}"
        );

        // An admin's reset of the second factors takes the passkeys too: the password alone
        // signs in again.
        let reset = sesame_server::store::writes::second_factor_reset(user);
        srv.sesame.store().write_atomically(&reset).await.unwrap();
        let (s, b) = login(&c, &srv, &name, PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert!(b["access_token"].is_string(), "{b}");
        srv.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test]
async fn forged_replayed_cloned_and_unknown_assertions_are_refused() {
    for db in backends().await {
        let srv = start(&db).await;
        let c = Client::new();
        let name = api::username("pkbad");
        let (token, user, _) = account(&c, &srv, &name).await;
        let mut auth = SoftAuthenticator::new(ORIGIN, 2);
        assert_eq!(
            add_passkey(&c, &srv, &token, &mut auth, "Phone").await.0,
            StatusCode::CREATED
        );

        // A registration from another origin does not verify.
        let mut evil = SoftAuthenticator::new("https://evil.example", 3);
        let (s, b) = add_passkey(&c, &srv, &token, &mut evil, "Evil").await;
        assert_eq!((s, err(&b)), (StatusCode::BAD_REQUEST, "passkey_invalid"));
        // Neither does an assertion claiming another origin.
        auth.origin = "http://evil.localhost:8080".into();
        let (s, b) = passwordless(&c, &srv, |o| auth.assert(o)).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "authentication_failed")
        );
        auth.origin = ORIGIN.into();

        // A replayed assertion: its ceremony is used up, and another ceremony's challenge
        // differs.
        let (_, start) = post_empty(&c, &srv, "/api/login/passkey/discoverable/start", None).await;
        let assertion = auth.assert(&start["options"]);
        let body = json!({"ceremony_id": start["ceremony_id"], "credential": assertion});
        let finish = "/api/login/passkey/discoverable/finish";
        assert_eq!(post(&c, &srv, finish, body.clone()).await.0, StatusCode::OK);
        let (s, b) = post(&c, &srv, finish, body).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::BAD_REQUEST, "passkey_ceremony_expired")
        );
        let (s, b) = passwordless(&c, &srv, |_| assertion.clone()).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "authentication_failed")
        );

        // A cloned authenticator: its counter does not move forward.
        let used = auth.credentials[0].counter;
        let (s, b) = passwordless(&c, &srv, |o| auth.assert_with(o, 0, used)).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "authentication_failed")
        );
        let (_, first) = login(&c, &srv, &name, PASSWORD).await;
        let (s, b) =
            second_factor(&c, &srv, &first["mfa_token"], |o| auth.assert_with(o, 0, 1)).await;
        assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "passkey_rejected"));
        let log = events(&audit_of(&srv, user).await);
        assert!(
            log.iter()
                .filter(|e| e.starts_with("passkey.counter_regression"))
                .count()
                >= 2,
            "{log:?}"
        );
        // The real authenticator, counting on, still works (on the same ticket).
        let (s, b) = second_factor(&c, &srv, &first["mfa_token"], |o| auth.assert(o)).await;
        assert_eq!(s, StatusCode::OK, "{b}");

        unknown_and_expired(&c, &srv, &token, &name, &mut auth).await;
        srv.stop().await;
        db.cleanup().await;
    }
}

/// An unknown credential fails exactly like a wrong password; an expired ceremony is refused.
async fn unknown_and_expired(
    c: &Client,
    srv: &TestServer,
    token: &str,
    name: &str,
    auth: &mut SoftAuthenticator,
) {
    // An unknown credential (never registered) fails exactly like a wrong password.
    let mut stranger = SoftAuthenticator::new(ORIGIN, 4);
    let (_, options) = register_options(c, srv, token).await;
    stranger.register(&options["options"]);
    let (s, unknown) = passwordless(c, srv, |o| stranger.assert(o)).await;
    let (s2, wrong) = login(c, srv, name, "not the password at all").await;
    assert_eq!((s, &unknown), (s2, &wrong));
    assert_eq!(err(&unknown), "authentication_failed");

    // An expired ceremony.
    let (_, start) = post_empty(c, srv, "/api/login/passkey/discoverable/start", None).await;
    let assertion = auth.assert(&start["options"]);
    srv.clock.advance(301);
    let body = json!({"ceremony_id": start["ceremony_id"], "credential": assertion});
    let (s, b) = post(c, srv, "/api/login/passkey/discoverable/finish", body).await;
    assert_eq!(
        (s, err(&b)),
        (StatusCode::BAD_REQUEST, "passkey_ceremony_expired")
    );
}

/// Enrols TOTP for the signed-in caller; returns the otpauth URI.
async fn enrol_totp(c: &Client, srv: &TestServer, token: &str) -> String {
    let (s, qr) = post_auth(c, srv, "/api/generate-qr", token, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{qr}");
    let uri = qr["otpauthUrl"].as_str().unwrap().to_owned();
    let code = totp_rs::TOTP::from_url_unchecked(&uri)
        .unwrap()
        .generate(srv.sesame.now());
    let body = json!({"totpCode": code});
    let (s, b) = post_auth(c, srv, "/api/enable-authenticator", token, body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    srv.clock.advance(30);
    uri
}

#[tokio::test]
async fn the_phishing_resistant_policy_removal_freshness_and_the_operator() {
    for db in backends().await {
        let srv = start(&db).await;
        let c = Client::new();
        let name = api::username("pkpol");
        let (token, user, backup) = account(&c, &srv, &name).await;
        let uri = enrol_totp(&c, &srv, &token).await;
        let policy = "/api/2fa/phishing-resistant";
        let (s, b) = put_auth(&c, &srv, policy, &token, json!({"required": true})).await;
        assert_eq!((s, err(&b)), (StatusCode::BAD_REQUEST, "no_passkey"));
        let mut auth = SoftAuthenticator::new(ORIGIN, 5);
        let (_, view) = add_passkey(&c, &srv, &token, &mut auth, "Key").await;
        let path = format!("/api/passkeys/{}", view["id"].as_str().unwrap());
        let (s, b) = put_auth(&c, &srv, policy, &token, json!({"required": true})).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        assert_eq!(
            list(&c, &srv, &token).await["phishing_resistant_required"],
            true
        );

        // TOTP is no longer a second factor; a backup code still is.
        let (_, first) = login(&c, &srv, &name, PASSWORD).await;
        assert_eq!(first["methods"], json!(["passkey", "backup_code"]));
        let code = totp_rs::TOTP::from_url_unchecked(&uri)
            .unwrap()
            .generate(srv.sesame.now());
        let body = json!({"mfa_token": first["mfa_token"], "code": code});
        let (s, b) = post(&c, &srv, "/api/login/second-factor", body).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::FORBIDDEN, "phishing_resistant_required")
        );
        let body = json!({"mfa_token": first["mfa_token"], "code": backup[0]});
        let (s, b) = post(&c, &srv, "/api/login/second-factor", body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let token = b["access_token"].as_str().unwrap().to_owned();

        // The last passkey stays while it is required.
        let (s, b) = api::delete_auth(&c, &srv, &path, &token).await;
        assert_eq!((s, err(&b)), (StatusCode::CONFLICT, "passkey_required"));
        let (s, _) = put_auth(&c, &srv, policy, &token, json!({"required": false})).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (_, first) = login(&c, &srv, &name, PASSWORD).await;
        assert_eq!(first["methods"], json!(["passkey", "totp", "backup_code"]));

        // Removed, it signs in no more, and password logins stop asking for it.
        let (s, b) = api::delete_auth(&c, &srv, &path, &token).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let (s, b) = passwordless(&c, &srv, |o| auth.assert(o)).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "authentication_failed")
        );
        let (_, first) = login(&c, &srv, &name, PASSWORD).await;
        assert_eq!(first["methods"], json!(["totp", "backup_code"]));

        // Registering needs a fresh authentication.
        srv.clock.advance(srv.sesame.reauth_window() + 1);
        let (s, b) = register_options(&c, &srv, &token).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::FORBIDDEN, "reauthentication_required")
        );

        operator(&c, &srv, &name, user, &backup[1], &mut auth).await;
        srv.stop().await;
        db.cleanup().await;
    }
}

/// A fresh sign-in (with backup code `code`) registers a passkey; the operator lists and
/// removes it (audited).
async fn operator(
    c: &Client,
    srv: &TestServer,
    name: &str,
    user: Uuid,
    code: &str,
    auth: &mut SoftAuthenticator,
) {
    // The operator lists and removes a user's passkeys (audited).
    let (_, first) = login(c, srv, name, PASSWORD).await;
    let body = json!({"mfa_token": first["mfa_token"], "code": code});
    let (s, b) = post(c, srv, "/api/login/second-factor", body).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let fresh = b["access_token"].as_str().unwrap().to_owned();
    let (_, view) = add_passkey(c, srv, &fresh, auth, "Second").await;
    let listed = srv.sesame.admin_passkeys(name).await.unwrap();
    assert_eq!(listed.passkeys.len(), 1);
    let id = view["id"].as_str().unwrap();
    srv.sesame.admin_remove_passkey(name, id).await.unwrap();
    assert!(srv
        .sesame
        .admin_passkeys(name)
        .await
        .unwrap()
        .passkeys
        .is_empty());
    let log = events(&audit_of(srv, user).await);
    assert!(
        log.iter()
            .any(|e| e == &format!("passkey.removed passkey={id} by=admin")),
        "{log:?}"
    );
    assert!(
        log.iter().any(|e| e == "passkey.phishing_resistant on"),
        "{log:?}"
    );
}

#[tokio::test]
async fn an_account_that_requires_a_passkey_recovers_only_with_a_backup_code() {
    for db in backends().await {
        let srv = start(&db).await;
        let c = Client::new();
        let name = api::username("pkrec");
        let (token, _, backup) = account(&c, &srv, &name).await;
        let uri = enrol_totp(&c, &srv, &token).await;
        let questions = json!({"questions": [
            {"question": "What was the name of your first pet?", "answer": "Rex"},
            {"question": "In which city did your parents meet?", "answer": "Lyon"},
        ]});
        let (s, b) = put_auth(&c, &srv, "/api/security-questions", &token, questions).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{b}");
        let mut auth = SoftAuthenticator::new(ORIGIN, 6);
        add_passkey(&c, &srv, &token, &mut auth, "Key").await;
        let policy = json!({"required": true});
        let (s, _) = put_auth(&c, &srv, "/api/2fa/phishing-resistant", &token, policy).await;
        assert_eq!(s, StatusCode::NO_CONTENT);

        // A TOTP code with the right answers recovers other accounts, not this one.
        let code = totp_rs::TOTP::from_url_unchecked(&uri)
            .unwrap()
            .generate(srv.sesame.now());
        let (_, started) = post(&c, &srv, "/api/recover/start", json!({"username": name})).await;
        let body = json!({"recovery_id": started["recovery_id"], "totp_code": code,
            "answers": ["Rex", "Lyon"], "new_password": "a brand new passphrase 9"});
        let (s, b) = post(&c, &srv, "/api/recover/finish", body).await;
        assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "recovery_failed"));
        let (_, started) = post(&c, &srv, "/api/recover/start", json!({"username": name})).await;
        let body = json!({"recovery_id": started["recovery_id"], "backup_code": backup[0],
            "new_password": "a brand new passphrase 9"});
        let (s, b) = post(&c, &srv, "/api/recover/finish", body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        srv.stop().await;
        db.cleanup().await;
    }
}
