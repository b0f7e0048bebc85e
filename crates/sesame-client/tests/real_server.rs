//! The client against the REAL server (tests/real: `sesame-server` in process on a loopback
//! port, SQLite in a temporary directory): every route of the contract, the WebSocket login
//! with its `login_ack`, pinning, the server's errors and the client's local policy checks.
//! Behaviour the real server never shows (a rotated key, a tampered confirmation, weak key
//! stretching) is tested against the adversarial server in `tests/adversarial.rs`.

mod real;

use real::{Server, PASSWORD};
use sesame_client::profile::{Profile, StoredSession, Trust};
use sesame_client::{Client, ClientPolicy, Error, LoginOutcome, PasswordLogin};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_log_in_over_rest_and_websocket() {
    let srv = Server::start().await;
    let c = srv.client();
    c.health().await.unwrap();
    let info = c.server_info().await.unwrap();

    let reg = c.register("Alice", PASSWORD).await.unwrap();
    assert_eq!(
        reg.registered.username, "alice",
        "the canonical name comes back"
    );
    assert_eq!(reg.server_fingerprint(), info.fingerprint);
    assert_eq!(
        sesame_proto::b64::encode(reg.server_public_key),
        info.opaque_public_key
    );

    // Pinned from here on, as a caller that trusts on first use would.
    let c = srv.pinned(reg.server_public_key);
    let rest = c
        .login("alice", PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap();
    assert_eq!(rest.session.username, "alice");
    assert_eq!(rest.session.user_id, reg.registered.user_id);
    assert_eq!(rest.session.token_type, "Bearer");
    assert_eq!(*rest.export_key, *reg.export_key, "export key is stable");
    assert_eq!(rest.server_public_key, reg.server_public_key);

    // The WebSocket login returns only once the server has `accepted` the client's
    // `login_ack` `success`.
    let ws = c
        .login_ws("ALICE", PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap();
    assert_eq!(ws.session.user_id, reg.registered.user_id);
    assert_eq!(*ws.export_key, *reg.export_key);
    assert_ne!(ws.session.session_id, rest.session.session_id);
    // An acknowledged WebSocket session stays live: its token works and the server lists it.
    assert_eq!(
        c.me(&ws.session.access_token).await.unwrap().user_id,
        reg.registered.user_id
    );
    let live = c.sessions(&rest.session.access_token).await.unwrap();
    assert!(
        live.iter().any(|s| s.id == ws.session.session_id),
        "an acknowledged WebSocket session stays live: {live:?}"
    );

    let me = c.me(&rest.session.access_token).await.unwrap();
    assert_eq!(me.username, "alice");
    assert_eq!(me.status, sesame_client::api::AccountStatus::Active);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_routes_list_refresh_revoke_and_log_out() {
    let srv = Server::start().await;
    let c = srv.client();
    c.register("bob", PASSWORD).await.unwrap();
    let a = c
        .login("bob", PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap()
        .session;
    let b = c
        .login("bob", PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap()
        .session;
    let third = c
        .login_ws("bob", PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap()
        .session;

    let list = c.sessions(&a.access_token).await.unwrap();
    assert_eq!(list.len(), 3);
    let current: Vec<_> = list.iter().filter(|s| s.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].id, a.session_id);
    assert_eq!(
        current[0].methods,
        vec![sesame_client::api::AuthMethod::Pwd]
    );

    // Refresh issues a new access token that works.
    let refreshed = c.refresh(&b.session_token).await.unwrap();
    assert_eq!(refreshed.token_type, "Bearer");
    assert_eq!(
        c.me(&refreshed.access_token).await.unwrap().user_id,
        b.user_id
    );

    // Revoke b from a: b's tokens stop working, refresh says session_invalid.
    c.revoke_session(&a.access_token, b.session_id)
        .await
        .unwrap();
    let err = c.me(&refreshed.access_token).await.unwrap_err();
    assert!(err.is_unauthorized(), "{err:?}");
    assert_eq!(err.server_code().map(|c| c.as_str()), Some("unauthorized"));
    let err = c.refresh(&b.session_token).await.unwrap_err();
    assert_eq!(
        err.server_code().map(|c| c.as_str()),
        Some("session_invalid")
    );
    assert!(err.is_unauthorized());
    match c
        .revoke_session(&a.access_token, b.session_id)
        .await
        .unwrap_err()
    {
        Error::Server { status, code, .. } => {
            assert_eq!(status, Some(404));
            assert_eq!(code.map(|c| c.as_str()), Some("session_not_found"));
        }
        other => panic!("{other:?}"),
    }

    // Log out a; then log out everything else from the third session.
    c.logout(&a.access_token).await.unwrap();
    assert!(c.me(&a.access_token).await.unwrap_err().is_unauthorized());
    assert_eq!(c.logout_all(&third.access_token).await.unwrap(), 1);
    assert!(c
        .sessions(&third.access_token)
        .await
        .unwrap_err()
        .is_unauthorized());
    srv.stop().await;
}

/// That the client gives up before sending a KE3 can only be observed on the adversarial
/// server (`tests/adversarial.rs`), which counts the KE3s it receives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_fail_alike() {
    let srv = Server::start().await;
    let c = srv.client();
    c.register("carol", PASSWORD).await.unwrap();
    for (user, password) in [
        ("carol", "not the password at all"),
        ("not-a-user", PASSWORD),
    ] {
        let rest = c.login(user, password).await.unwrap_err();
        assert!(
            matches!(rest, Error::AuthenticationFailed),
            "{user}: {rest:?}"
        );
        let ws = c.login_ws(user, password).await.unwrap_err();
        assert!(matches!(ws, Error::AuthenticationFailed), "{user}: {ws:?}");
        // The server-assisted login reports the same error.
        let pwd = c.login_password(user, password).await.unwrap_err();
        assert!(
            matches!(pwd, Error::AuthenticationFailed),
            "{user}: {pwd:?}"
        );
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_assisted_registration_and_password_login() {
    let srv = Server::start().await;
    let c = srv.client();
    let reg = c.register_with_password("Dave", PASSWORD).await.unwrap();
    assert_eq!(reg.username, "dave");
    let session = c
        .login_password("dave", PASSWORD)
        .await
        .and_then(PasswordLogin::into_session)
        .unwrap();
    assert_eq!(session.user_id, reg.user_id);
    assert_eq!(c.me(&session.access_token).await.unwrap().username, "dave");
    // The record is the one client-side registration makes: OPAQUE login works too.
    let login = c
        .login("dave", PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap();
    assert_eq!(login.session.user_id, reg.user_id);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_carry_code_status_and_retry_after() {
    // Three login or registration requests per address per minute: the registration
    // (start, finish) and the second registration's start; the logins after that are over.
    const WINDOW: u64 = 60;
    let srv = Server::start_with(|config| {
        config.throttle_per_address = 3;
        config.throttle_address_window = WINDOW;
    })
    .await;
    let c = srv.client();
    c.register("erin", PASSWORD).await.unwrap();
    match c.register("Erin", PASSWORD).await.unwrap_err() {
        Error::Server {
            status,
            code,
            message,
            retry_after,
            ..
        } => {
            assert_eq!(status, Some(409));
            assert_eq!(code.map(|c| c.as_str()), Some("username_taken"));
            assert_eq!(message, "That username is already taken.");
            assert_eq!(retry_after, None);
        }
        other => panic!("{other:?}"),
    }
    match c.login("erin", PASSWORD).await.unwrap_err() {
        Error::Server {
            status,
            code,
            retry_after,
            ..
        } => {
            assert_eq!(status, Some(429));
            assert_eq!(code.map(|c| c.as_str()), Some("too_many_attempts"));
            let secs = retry_after.expect("Retry-After");
            assert!((1..=WINDOW + 1).contains(&secs), "Retry-After: {secs}");
        }
        other => panic!("{other:?}"),
    }
    // The WebSocket is upgraded before the limit applies: the refusal comes as an `error`
    // frame, which has no HTTP status but carries the wait.
    match c.login_ws("erin", PASSWORD).await.unwrap_err() {
        Error::Server {
            status,
            code,
            retry_after,
            ..
        } => {
            assert_eq!(status, None);
            assert_eq!(code.map(|c| c.as_str()), Some("too_many_attempts"));
            let secs = retry_after.expect("retry_after in the error frame");
            assert!((1..=WINDOW + 1).contains(&secs), "retry_after: {secs}");
        }
        other => panic!("{other:?}"),
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_errors_are_local_and_server_policy_errors_are_reported() {
    let srv = Server::start().await;
    let c = srv.client();
    assert!(matches!(
        c.register("judy", "judy-password-1").await,
        Err(Error::Password(_))
    ));
    assert!(matches!(
        c.register("_judy", PASSWORD).await,
        Err(Error::Username(_))
    ));
    // Nothing reached the server: the name is still free.
    c.register("judy", PASSWORD).await.unwrap();
    // Login does not second-guess the username: the server answers.
    match c.login("x", PASSWORD).await.unwrap_err() {
        Error::Server { status, code, .. } => {
            assert_eq!(status, Some(400));
            assert_eq!(code.map(|c| c.as_str()), Some("username_too_short"));
        }
        other => panic!("{other:?}"),
    }
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_on_first_use_through_the_profile() {
    let srv = Server::start().await;
    let home = tempfile::tempdir().unwrap();
    let profile = Profile::at(home.path());
    let server = sesame_client::server_id(&srv.base).unwrap();

    let c = Client::new(
        &server,
        ClientPolicy {
            pinned_server_key: profile.pinned_key(&server).unwrap(),
            ..ClientPolicy::default()
        },
    )
    .unwrap();
    let reg = c.register("mallory", PASSWORD).await.unwrap();
    assert_eq!(
        profile
            .trust_server(&server, &reg.server_public_key)
            .unwrap(),
        Trust::Pinned
    );

    let mut c = c;
    c.set_pinned_server_key(profile.pinned_key(&server).unwrap());
    let login = c
        .login("mallory", PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap();
    assert_eq!(
        profile
            .trust_server(&server, &login.server_public_key)
            .unwrap(),
        Trust::AlreadyPinned
    );
    let stored =
        StoredSession::from_issued(&server, &login.session, sesame_client::profile::unix_now());
    profile.save_session(&stored).unwrap();
    let loaded = profile.load_session(&server).unwrap().unwrap();
    assert_eq!(
        c.me(&loaded.access_token).await.unwrap().username,
        "mallory"
    );
    srv.stop().await;
}
