//! The account calls against the REAL server (tests/real: `sesame-server` in process on a
//! loopback port, SQLite in a temporary directory, a manual clock): second factors over REST,
//! the WebSocket and the server-assisted login; re-authentication; password change; profile;
//! security questions; recovery; deletion. TOTP codes come from the otpauth URI through
//! `totp-rs`, as an authenticator app would compute them.

mod real;

use real::{Server, PASSWORD};
use sesame_client::account::{ProfileUpdate, QuestionAnswer, RecoveryProof};
use sesame_client::{Error, LoginOutcome, PasswordLogin};
use totp_rs::TOTP;
use zeroize::Zeroizing;

const NEW_PASSWORD: &str = "a brand new passphrase here";

fn login(outcome: LoginOutcome) -> sesame_client::Login {
    outcome.into_login().unwrap()
}

fn code_of(e: &Error) -> &'static str {
    e.server_code().map_or("<none>", |c| c.as_str())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_over_rest_websocket_and_the_password_login() {
    let srv = Server::start().await;
    let c = srv.client();
    let reg = c.register("alice", PASSWORD).await.unwrap();
    assert_eq!(reg.registered.status.as_str(), "active");
    assert_eq!(reg.registered.backup_codes.len(), 10);
    let backup = reg.registered.backup_codes.clone();
    let first = login(c.login("alice", PASSWORD).await.unwrap());
    let token = first.session.access_token.clone();
    assert!(!c.account(&token).await.unwrap().totp_enabled);

    // Enrol: a wrong code does not enable it, the app's code does.
    let enrolment = c.generate_qr(&token).await.unwrap();
    assert!(enrolment.qr_code_url.starts_with("data:image/png;base64,"));
    assert!(!format!("{enrolment:?}").contains(&enrolment.secret));
    let totp = TOTP::from_url(&enrolment.otpauth_url).unwrap();
    let err = c.enable_authenticator(&token, "000000").await.unwrap_err();
    assert_eq!(code_of(&err), "invalid_code");
    c.enable_authenticator(&token, &srv.code(&totp, 0))
        .await
        .unwrap();
    let account = c.account(&token).await.unwrap();
    assert!(account.totp_enabled);
    assert_eq!(account.backup_codes_left, 10);
    srv.clock.advance(30);

    // REST: the password proof yields a pending login; a wrong code may be retried.
    let outcome = c.login("alice", PASSWORD).await.unwrap();
    assert_eq!(outcome.server_public_key(), &reg.server_public_key);
    let LoginOutcome::SecondFactor(mut pending) = outcome else {
        panic!("a second factor is needed");
    };
    assert!(!pending.is_websocket());
    assert_eq!(pending.methods(), ["totp", "backup_code"]);
    assert!(pending.expires_in() > 0);
    let err = pending.submit("000000").await.unwrap_err();
    assert_eq!(code_of(&err), "invalid_code");
    let done = pending.submit(&srv.code(&totp, 0)).await.unwrap();
    assert_eq!(done.session.username, "alice");
    assert_eq!(*done.export_key, *reg.export_key);
    c.me(&done.session.access_token).await.unwrap();
    // Callers that do not handle a second factor get a clear error.
    assert!(matches!(
        c.login("alice", PASSWORD).await.unwrap().into_login(),
        Err(Error::SecondFactorRequired)
    ));

    // The WebSocket keeps the connection open for the code, and for a retry.
    srv.clock.advance(30);
    let LoginOutcome::SecondFactor(mut pending) = c.login_ws("alice", PASSWORD).await.unwrap()
    else {
        panic!("a second factor is needed");
    };
    assert!(pending.is_websocket());
    let err = pending.submit("123").await.unwrap_err();
    assert_eq!(code_of(&err), "invalid_code");
    let code = srv.code(&totp, 0);
    let done = pending.keep_alive_while(async { code.clone() }).await;
    let done = pending.submit(&done).await.unwrap();
    assert_eq!(*done.export_key, *reg.export_key);
    c.me(&done.session.access_token).await.unwrap();
    // The same time step twice: refused (replay).
    let LoginOutcome::SecondFactor(mut pending) = c.login_ws("alice", PASSWORD).await.unwrap()
    else {
        panic!("a second factor is needed");
    };
    assert_eq!(
        code_of(&pending.submit(&code).await.unwrap_err()),
        "invalid_code"
    );
    pending.cancel().await;

    // The server-assisted login, finished with a backup code (once only).
    let PasswordLogin::SecondFactor(step) = c.login_password("alice", PASSWORD).await.unwrap()
    else {
        panic!("a second factor is needed");
    };
    let session = c
        .second_factor(&step.mfa_token, &backup[0].to_uppercase())
        .await
        .unwrap();
    assert_eq!(session.username, "alice");
    let step = c.login_password("alice", PASSWORD).await.unwrap();
    let PasswordLogin::SecondFactor(step) = step else {
        panic!("a second factor is needed");
    };
    let err = c
        .second_factor(&step.mfa_token, &backup[0])
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "invalid_code");

    // Turning it off needs a valid code; then the password alone logs in again.
    let err = c
        .disable_authenticator(&session.access_token, "000000")
        .await
        .unwrap_err();
    assert_eq!(code_of(&err), "invalid_code");
    c.disable_authenticator(&session.access_token, &backup[1])
        .await
        .unwrap();
    assert!(matches!(
        c.login("alice", PASSWORD).await.unwrap(),
        LoginOutcome::Session(_)
    ));
    assert!(matches!(
        c.login_password("alice", PASSWORD).await.unwrap(),
        PasswordLogin::Session(_)
    ));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protected_operations_reauthentication_profile_password_and_deletion() {
    let srv = Server::start().await;
    let c = srv.client();
    let reg = c.register("bob", PASSWORD).await.unwrap();
    let s = login(c.login("bob", PASSWORD).await.unwrap()).session;
    let other = login(c.login("bob", PASSWORD).await.unwrap()).session;
    let t = s.access_token.as_str();

    // Fresh right after the login; stale five minutes later.
    assert_eq!(c.regenerate_backup_codes(t).await.unwrap().len(), 10);
    srv.clock.advance(301);
    let err = c.regenerate_backup_codes(t).await.unwrap_err();
    assert!(err.is_reauthentication_required(), "{err:?}");
    assert!(c
        .set_password(t, "bob", NEW_PASSWORD, false)
        .await
        .unwrap_err()
        .is_reauthentication_required());
    assert!(c
        .delete_account(t)
        .await
        .unwrap_err()
        .is_reauthentication_required());
    // OPAQUE re-authentication: a wrong password fails on the client, the right one works.
    assert!(matches!(
        c.reauth(t, "bob", "not the password").await,
        Err(Error::AuthenticationFailed)
    ));
    let reauth = c.reauth(t, "bob", PASSWORD).await.unwrap();
    assert_eq!(reauth.expires_in, 300);
    assert_eq!(*reauth.export_key, *reg.export_key);
    assert_eq!(c.regenerate_backup_codes(t).await.unwrap().len(), 10);
    // Only as the signed-in user.
    assert_eq!(
        code_of(&c.reauth(t, "alice", PASSWORD).await.unwrap_err()),
        "username_mismatch"
    );
    // The password re-authentication, for clients without OPAQUE.
    srv.clock.advance(301);
    assert!(matches!(
        c.reauth_password(t, "wrong password here").await,
        Err(Error::AuthenticationFailed)
    ));
    assert_eq!(c.reauth_password(t, PASSWORD).await.unwrap(), 300);
    c.regenerate_backup_codes(t).await.unwrap();

    // Profile: set, read, clear one field, refuse a bad URL.
    let update = ProfileUpdate {
        display_name: Some(Some("Bob".into())),
        bio: Some(Some("Hello\nthere".into())),
        picture_url: Some(Some("https://example.com/b.png".into())),
    };
    let p = c.update_profile(t, &update).await.unwrap();
    assert_eq!(p.display_name.as_deref(), Some("Bob"));
    let clear = ProfileUpdate {
        bio: Some(None),
        ..ProfileUpdate::default()
    };
    let p = c.update_profile(t, &clear).await.unwrap();
    assert_eq!(p.bio, None);
    assert_eq!(p.picture_url.as_deref(), Some("https://example.com/b.png"));
    assert_eq!(c.profile(t).await.unwrap(), p);
    let bad = ProfileUpdate {
        picture_url: Some(Some("javascript:alert(1)".into())),
        ..ProfileUpdate::default()
    };
    assert_eq!(
        code_of(&c.update_profile(t, &bad).await.unwrap_err()),
        "profile_invalid"
    );

    // Security questions: from the catalog and custom.
    let catalog = c.security_questions_catalog().await.unwrap();
    assert!(catalog.len() >= 3);
    let questions = [
        QuestionAnswer {
            question: catalog[0].clone(),
            answer: Zeroizing::new("Rex".into()),
        },
        QuestionAnswer {
            question: "My own question?".into(),
            answer: Zeroizing::new("my own answer".into()),
        },
    ];
    c.set_security_questions(t, &questions).await.unwrap();
    assert_eq!(
        code_of(
            &c.set_security_questions(t, &questions[..1])
                .await
                .unwrap_err()
        ),
        "security_questions_invalid"
    );
    assert_eq!(c.account(t).await.unwrap().security_questions, 2);

    // Password change, client-side: both export keys come back; the other session is revoked.
    assert!(matches!(
        c.change_password(t, "bob", PASSWORD, "password", true)
            .await,
        Err(Error::Password(_))
    ));
    assert!(matches!(
        c.change_password(t, "bob", "not the password", NEW_PASSWORD, true)
            .await,
        Err(Error::AuthenticationFailed)
    ));
    let changed = c
        .change_password(t, "bob", PASSWORD, NEW_PASSWORD, true)
        .await
        .unwrap();
    assert_eq!(changed.revoked_sessions, 1);
    assert_eq!(
        changed.previous_export_key.as_deref(),
        Some(&*reg.export_key)
    );
    assert_ne!(*changed.export_key, *reg.export_key);
    assert!(c
        .me(&other.access_token)
        .await
        .unwrap_err()
        .is_unauthorized());
    c.me(t).await.unwrap();
    assert!(matches!(
        c.login("bob", PASSWORD).await,
        Err(Error::AuthenticationFailed)
    ));
    let again = login(c.login("bob", NEW_PASSWORD).await.unwrap());
    assert_eq!(*again.export_key, *changed.export_key);

    // Deletion (fresh): the account and its sessions are gone.
    c.delete_account(t).await.unwrap();
    assert!(c.me(t).await.unwrap_err().is_unauthorized());
    assert!(matches!(
        c.login("bob", NEW_PASSWORD).await,
        Err(Error::AuthenticationFailed)
    ));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_with_a_backup_code_and_with_totp_plus_answers() {
    let srv = Server::start().await;
    let c = srv.client();
    let reg = c.register("carol", PASSWORD).await.unwrap();
    let t = login(c.login("carol", PASSWORD).await.unwrap())
        .session
        .access_token;
    let questions = ["What was the name of your first pet?", "Favourite number?"];
    let qa: Vec<QuestionAnswer> = questions
        .iter()
        .zip(["Rex", "Forty two"])
        .map(|(q, a)| QuestionAnswer {
            question: (*q).into(),
            answer: Zeroizing::new(a.into()),
        })
        .collect();
    c.set_security_questions(&t, &qa).await.unwrap();
    let enrolment = c.generate_qr(&t).await.unwrap();
    let totp = TOTP::from_url(&enrolment.otpauth_url).unwrap();
    c.enable_authenticator(&t, &srv.code(&totp, 0))
        .await
        .unwrap();
    srv.clock.advance(30);

    // The policy is checked before anything is sent.
    assert!(matches!(
        c.recover_start("carol", "password").await,
        Err(Error::Password(_))
    ));
    // A backup code: a new password, every session signed out, fresh backup codes.
    let started = c.recover_start("carol", NEW_PASSWORD).await.unwrap();
    assert_eq!(started.questions, questions);
    let proof = RecoveryProof {
        backup_code: Some(reg.registered.backup_codes[0].clone()),
        ..RecoveryProof::default()
    };
    let recovered = c.recover_finish(started, &proof).await.unwrap();
    assert_eq!(recovered.backup_codes.len(), 10);
    assert!(c.me(&t).await.unwrap_err().is_unauthorized());
    let LoginOutcome::SecondFactor(mut pending) = c.login("carol", NEW_PASSWORD).await.unwrap()
    else {
        panic!("TOTP stays on");
    };
    let done = pending.submit(&recovered.backup_codes[0]).await.unwrap();
    assert_eq!(*done.export_key, *recovered.export_key);
    // The used backup code, an unknown user: the same `recovery_failed`.
    for (user, code) in [
        ("carol", reg.registered.backup_codes[0].clone()),
        ("no-such-user", reg.registered.backup_codes[1].clone()),
    ] {
        let started = c.recover_start(user, NEW_PASSWORD).await.unwrap();
        let proof = RecoveryProof {
            backup_code: Some(code),
            ..RecoveryProof::default()
        };
        let err = c.recover_finish(started, &proof).await.unwrap_err();
        assert_eq!(code_of(&err), "recovery_failed", "{user}");
    }

    // A TOTP code plus the answers (normalised: case and spaces do not matter).
    srv.clock.advance(30);
    let third = "yet another good passphrase";
    let started = c.recover_start("carol", third).await.unwrap();
    let wrong = RecoveryProof {
        totp_code: Some(srv.code(&totp, 0)),
        answers: Some(vec!["rex".into(), "wrong".into()]),
        ..RecoveryProof::default()
    };
    assert_eq!(
        code_of(&c.recover_finish(started, &wrong).await.unwrap_err()),
        "recovery_failed"
    );
    let started = c.recover_start("carol", third).await.unwrap();
    let proof = RecoveryProof {
        totp_code: Some(srv.code(&totp, 0)),
        answers: Some(vec!["  REX ".into(), "forty   two".into()]),
        ..RecoveryProof::default()
    };
    let recovered = c.recover_finish(started, &proof).await.unwrap();
    let LoginOutcome::SecondFactor(mut pending) = c.login("carol", third).await.unwrap() else {
        panic!("TOTP stays on");
    };
    pending.submit(&recovered.backup_codes[0]).await.unwrap();
    srv.stop().await;
}
