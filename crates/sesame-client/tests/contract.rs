//! The client against an in-process mock of the server API (tests/common): every route of
//! the contract, the WebSocket login with its `login_ack`, pinning, and the failure paths.

mod common;

use std::sync::atomic::Ordering;

use common::PASSWORD;
use sesame_client::profile::{Profile, StoredSession, Trust};
use sesame_client::{Client, ClientPolicy, Error, LoginOutcome, PasswordLogin};
use sesame_proto::messages::AckStatus;
use sesame_proto::server::ServerKeys;
use sesame_proto::KsfParams;

fn client(url: &str) -> Client {
    Client::new(url, ClientPolicy::default()).unwrap()
}

fn pinned(url: &str, key: [u8; 32]) -> Client {
    let policy = ClientPolicy {
        pinned_server_key: Some(key),
        ..ClientPolicy::default()
    };
    Client::new(url, policy).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_then_log_in_over_rest_and_websocket() {
    let (url, mock) = common::start().await;
    let c = client(&url);
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
    let c = pinned(&url, reg.server_public_key);
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

    let ws = c
        .login_ws("ALICE", PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap();
    assert_eq!(ws.session.user_id, reg.registered.user_id);
    assert_eq!(*ws.export_key, *reg.export_key);
    assert_ne!(ws.session.session_id, rest.session.session_id);
    let acks = mock.acks.lock().unwrap().clone();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].status, AckStatus::Success);
    assert_eq!(
        mock.session_by_id(ws.session.session_id).map(|s| s.0),
        Some(false),
        "an acknowledged WebSocket session stays live"
    );

    let me = c.me(&rest.session.access_token).await.unwrap();
    assert_eq!(me.username, "alice");
    assert_eq!(me.status, "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_routes_list_refresh_revoke_and_log_out() {
    let (url, _mock) = common::start().await;
    let c = client(&url);
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
    assert_eq!(current[0].methods, vec!["opaque".to_owned()]);

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
    assert_eq!(err.server_code(), Some("unauthorized"));
    let err = c.refresh(&b.session_token).await.unwrap_err();
    assert_eq!(err.server_code(), Some("session_invalid"));
    assert!(err.is_unauthorized());
    match c
        .revoke_session(&a.access_token, b.session_id)
        .await
        .unwrap_err()
    {
        Error::Server { status, code, .. } => {
            assert_eq!(status, Some(404));
            assert_eq!(code, "session_not_found");
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_fail_alike_and_before_ke3() {
    let (url, mock) = common::start().await;
    let c = client(&url);
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
    }
    assert_eq!(
        mock.finishes.load(Ordering::SeqCst),
        0,
        "the client never sent a KE3"
    );
    // The server-assisted login reports the same error.
    assert!(matches!(
        c.login_password("carol", "not the password at all").await,
        Err(Error::AuthenticationFailed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_assisted_registration_and_password_login() {
    let (url, _mock) = common::start().await;
    let c = client(&url);
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_carry_code_status_and_retry_after() {
    let (url, mock) = common::start().await;
    let c = client(&url);
    c.register("erin", PASSWORD).await.unwrap();
    match c.register("Erin", PASSWORD).await.unwrap_err() {
        Error::Server {
            status,
            code,
            message,
            retry_after,
        } => {
            assert_eq!(status, Some(409));
            assert_eq!(code, "username_taken");
            assert_eq!(message, "That username is taken.");
            assert_eq!(retry_after, None);
        }
        other => panic!("{other:?}"),
    }
    mock.rate_limited.store(true, Ordering::SeqCst);
    for err in [
        c.login("erin", PASSWORD).await.unwrap_err(),
        c.login_ws("erin", PASSWORD).await.unwrap_err(),
    ] {
        match err {
            Error::Server {
                status,
                code,
                retry_after,
                ..
            } => {
                assert_eq!(status, Some(429));
                assert_eq!(code, "too_many_attempts");
                assert_eq!(retry_after, Some(7));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_server_key_is_refused_before_the_password_is_used() {
    let (url, mock) = common::start().await;
    let c = client(&url);
    let reg = c.register("frank", PASSWORD).await.unwrap();
    let old = sesame_proto::fingerprint(&reg.server_public_key);
    // The server's key is replaced (or an impostor answers).
    let new_keys = ServerKeys::generate(&mut rand_core::OsRng);
    let new = new_keys.fingerprint();
    *mock.keys.lock().unwrap() = new_keys;

    let c = pinned(&url, reg.server_public_key);
    for err in [
        c.login("frank", PASSWORD).await.unwrap_err(),
        c.login_ws("frank", PASSWORD).await.unwrap_err(),
        c.register("grace", PASSWORD).await.unwrap_err(),
    ] {
        match &err {
            Error::ServerKeyMismatch {
                server,
                pinned,
                presented,
            } => {
                assert_eq!(server, &url);
                assert_eq!(pinned, &old);
                assert_eq!(presented, &new);
                let text = err.to_string();
                assert!(text.contains(&old) && text.contains(&new), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(mock.finishes.load(Ordering::SeqCst), 0);
    assert!(!mock.users.lock().unwrap().contains_key("grace"));

    // Without the pin, the envelope made under the old key does not open: the new server
    // cannot impersonate the old one even to a client that pinned nothing.
    assert!(matches!(
        client(&url).login("frank", PASSWORD).await,
        Err(Error::AuthenticationFailed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_that_does_not_open_is_rejected_and_acked_failed() {
    let (url, mock) = common::start().await;
    let c = client(&url);
    c.register("heidi", PASSWORD).await.unwrap();
    mock.tamper_confirmation.store(true, Ordering::SeqCst);
    assert!(matches!(
        c.login("heidi", PASSWORD).await,
        Err(Error::ConfirmationInvalid)
    ));
    assert!(matches!(
        c.login_ws("heidi", PASSWORD).await,
        Err(Error::ConfirmationInvalid)
    ));
    let acks = mock.acks.lock().unwrap().clone();
    assert_eq!(acks.len(), 1);
    assert_eq!(acks[0].status, AckStatus::Failed);
    assert_eq!(
        acks[0].reason.as_deref(),
        Some("login confirmation does not verify")
    );
    // The server revoked the WebSocket session the client refused.
    let sessions = mock.sessions.lock().unwrap();
    assert_eq!(sessions.len(), 2);
    assert!(sessions[1].revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_key_stretching_is_refused_at_registration() {
    let (url, mock) = common::start().await;
    *mock.ksf.lock().unwrap() = KsfParams {
        memory: 1024,
        iterations: 1,
        parallelism: 1,
    };
    let err = client(&url).register("ivan", PASSWORD).await.unwrap_err();
    assert!(
        matches!(err, Error::Protocol(sesame_proto::Error::KsfRejected(_))),
        "{err:?}"
    );
    assert!(mock.users.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_errors_are_local_and_server_policy_errors_are_reported() {
    let (url, mock) = common::start().await;
    let c = client(&url);
    assert!(matches!(
        c.register("judy", "judy-password-1").await,
        Err(Error::Password(_))
    ));
    assert!(matches!(
        c.register("_judy", PASSWORD).await,
        Err(Error::Username(_))
    ));
    assert!(mock.users.lock().unwrap().is_empty());
    // Login does not second-guess the username: the server answers.
    match c.login("x", PASSWORD).await.unwrap_err() {
        Error::Server { status, code, .. } => {
            assert_eq!(status, Some(400));
            assert_eq!(code, "username_too_short");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_on_first_use_through_the_profile() {
    let (url, _mock) = common::start().await;
    let home = tempfile::tempdir().unwrap();
    let profile = Profile::at(home.path());
    let server = sesame_client::server_id(&url).unwrap();

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
}
