//! The client against an ADVERSARIAL server (tests/mock): an in-process fake of the server
//! API, used only for behaviour the real server never shows: a replaced server key, a
//! tampered login confirmation, weak key-stretching parameters; and for what only a fake can
//! observe (that a failed login never sends a KE3). Everything else runs against the real
//! server, in `tests/real_server.rs` and `tests/account.rs`.

mod mock;

use std::sync::atomic::Ordering;

use mock::PASSWORD;
use sesame_client::{Client, ClientPolicy, Error};
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

/// The client finds a wrong password (or an unknown user) out on its own and stops before
/// KE3, which only a fake server can count. That both fail alike, over every login, is tested
/// on the real server (`tests/real_server.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_fail_before_ke3() {
    let (url, mock) = mock::start().await;
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_server_key_is_refused_before_the_password_is_used() {
    let (url, mock) = mock::start().await;
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
    let (url, mock) = mock::start().await;
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
    let (url, mock) = mock::start().await;
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
