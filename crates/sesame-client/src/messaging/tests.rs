//! Unit tests against a small in-process mock of the key routes (the bearer token is the
//! username). The relay and the real server are covered by `tests/messaging.rs`.
#![allow(clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::*;
use sesame_proto::e2e::{self, PublicIdentity};
use uuid::Uuid;

use crate::profile::{Profile, StoredSession};
use crate::Client;
use crate::ClientPolicy;

#[derive(Default)]
struct Keys {
    published: HashMap<String, PublicIdentity>,
    backups: HashMap<String, Value>,
}

type Shared = Arc<Mutex<Keys>>;

fn user(headers: &HeaderMap) -> Result<String, Response> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| error(StatusCode::UNAUTHORIZED, "unauthorized"))
}

fn error(status: StatusCode, code: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": code}})),
    )
        .into_response()
}

async fn put_keys(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(identity): Json<PublicIdentity>,
) -> Result<StatusCode, Response> {
    let me = user(&headers)?;
    identity
        .verify()
        .map_err(|_| error(StatusCode::BAD_REQUEST, "invalid_keys"))?;
    s.lock().unwrap().published.insert(me, identity);
    Ok(StatusCode::NO_CONTENT)
}

async fn get_keys(
    State(s): State<Shared>,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, Response> {
    user(&headers)?;
    let keys = s.lock().unwrap();
    let p = keys
        .published
        .get(&name)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "keys_not_found"))?;
    let mut v = serde_json::to_value(p).unwrap();
    v["username"] = json!(name);
    v["user_id"] = json!(Uuid::from_u128(name.len() as u128));
    v["updated_at"] = json!(1_767_225_600);
    Ok(Json(v))
}

async fn put_backup(
    State(s): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Result<StatusCode, Response> {
    let me = user(&headers)?;
    s.lock().unwrap().backups.insert(me, body);
    Ok(StatusCode::NO_CONTENT)
}

async fn get_backup(State(s): State<Shared>, headers: HeaderMap) -> Result<Json<Value>, Response> {
    let me = user(&headers)?;
    let keys = s.lock().unwrap();
    keys.backups
        .get(&me)
        .cloned()
        .map(Json)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "backup_not_found"))
}

async fn mock() -> (Client, Shared) {
    let state = Shared::default();
    let app = Router::new()
        .route("/api/keys", put(put_keys))
        .route("/api/keys/backup", get(get_backup).put(put_backup))
        .route("/api/keys/{username}", get(get_keys))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = Client::new(&format!("http://{addr}"), ClientPolicy::default()).unwrap();
    (client, state)
}

struct Device {
    _tmp: tempfile::TempDir,
    store: MessagingStore,
    session: StoredSession,
}

fn device(client: &Client, username: &str, session: u128) -> Device {
    let tmp = tempfile::tempdir().unwrap();
    let store = MessagingStore::new(&Profile::at(tmp.path().join("sesame")));
    Device {
        _tmp: tmp,
        store,
        session: StoredSession {
            server: client.server_id().to_owned(),
            username: username.into(),
            user_id: Uuid::from_u128(7),
            session_id: Uuid::from_u128(session),
            session_token: "st".into(),
            access_token: username.into(),
            access_expires_at: u64::MAX,
            session_expires_at: u64::MAX,
            session_idle_timeout: 0,
        },
    }
}

const ALICE_EXPORT: [u8; 64] = [1; 64];
const BOB_EXPORT: [u8; 64] = [2; 64];

async fn ready(client: &Client, username: &str, export: &[u8; 64]) -> (Device, Messenger) {
    let d = device(client, username, 1);
    let dir = KeyDirectory::new(client).unwrap();
    ensure_identity(&d.store, &dir, &d.session, export)
        .await
        .unwrap();
    let m = Messenger::unlock(d.store.clone(), dir, &d.session).unwrap();
    (d, m)
}

#[tokio::test]
async fn the_first_login_creates_publishes_and_backs_up_then_nothing_more() {
    let (client, state) = mock().await;
    let dir = KeyDirectory::new(&client).unwrap();
    let d = device(&client, "alice", 1);
    let r = ensure_identity(&d.store, &dir, &d.session, &ALICE_EXPORT)
        .await
        .unwrap();
    assert_eq!(r.source, IdentitySource::Created);
    assert!(r.published && r.backed_up && r.warnings.is_empty());
    assert_eq!(state.lock().unwrap().published["alice"], r.public);
    let backup = state.lock().unwrap().backups["alice"]["blob"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = sesame_proto::b64::decode(&backup).unwrap();
    assert!(e2e::unwrap_identity(&ALICE_EXPORT, &blob)
        .unwrap()
        .matches(&r.public));

    let again = ensure_identity(&d.store, &dir, &d.session, &ALICE_EXPORT)
        .await
        .unwrap();
    assert_eq!(again.source, IdentitySource::Device);
    assert!(!again.published && !again.backed_up);
    assert_eq!(again.public, r.public);
}

#[tokio::test]
async fn keys_made_at_registration_are_published_at_the_first_login() {
    let (client, state) = mock().await;
    let dir = KeyDirectory::new(&client).unwrap();
    let d = device(&client, "alice", 1);
    let public = create_identity(&d.store, &d.session.server, "alice", &ALICE_EXPORT).unwrap();
    let r = ensure_identity(&d.store, &dir, &d.session, &ALICE_EXPORT)
        .await
        .unwrap();
    assert_eq!(r.source, IdentitySource::Device);
    assert_eq!(r.public, public);
    assert!(r.published && r.backed_up);
    assert_eq!(state.lock().unwrap().published["alice"], public);
}

#[tokio::test]
async fn a_new_device_restores_the_backup() {
    let (client, _state) = mock().await;
    let dir = KeyDirectory::new(&client).unwrap();
    let (_d1, first) = ready(&client, "alice", &ALICE_EXPORT).await;
    let d2 = device(&client, "alice", 2);
    let r = ensure_identity(&d2.store, &dir, &d2.session, &ALICE_EXPORT)
        .await
        .unwrap();
    assert_eq!(r.source, IdentitySource::Backup);
    assert!(!r.published && !r.backed_up, "{r:?}");
    assert_eq!(r.public, first.public());
    let m = Messenger::unlock(d2.store.clone(), dir, &d2.session).unwrap();
    assert_eq!(m.public(), first.public());
}

#[tokio::test]
async fn a_backup_that_does_not_open_means_new_keys_loudly() {
    let (client, state) = mock().await;
    let dir = KeyDirectory::new(&client).unwrap();
    let (_d1, first) = ready(&client, "alice", &ALICE_EXPORT).await;
    let d2 = device(&client, "alice", 2);
    let r = ensure_identity(&d2.store, &dir, &d2.session, &[9; 64])
        .await
        .unwrap();
    assert_eq!(r.source, IdentitySource::Created);
    assert_ne!(r.public, first.public());
    assert!(r.published && r.backed_up);
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(r.warnings[1].contains("key change"), "{:?}", r.warnings);
    assert_eq!(state.lock().unwrap().published["alice"], r.public);
}

#[tokio::test]
async fn the_keys_are_locked_outside_the_login_that_unlocked_them() {
    let (client, _state) = mock().await;
    let dir = KeyDirectory::new(&client).unwrap();
    let (mut d, _m) = ready(&client, "alice", &ALICE_EXPORT).await;
    d.session.session_id = Uuid::from_u128(99);
    let err = Messenger::unlock(d.store.clone(), dir.clone(), &d.session).unwrap_err();
    assert!(matches!(err, MessagingError::Locked { .. }), "{err}");
    let other = device(&client, "carol", 1);
    let err = Messenger::unlock(other.store.clone(), dir, &other.session).unwrap_err();
    assert!(matches!(err, MessagingError::NoIdentity { .. }), "{err}");
}

#[tokio::test]
async fn messages_round_trip_with_pinning_history_and_dedup() {
    let (client, _state) = mock().await;
    let (_da, alice) = ready(&client, "alice", &ALICE_EXPORT).await;
    let (_db, bob) = ready(&client, "bob", &BOB_EXPORT).await;

    let (msg, to) = alice.seal_to("alice", "Bob", "hi bob").await.unwrap();
    assert_eq!(to.username, "bob");
    assert!(to.first_use);
    assert_eq!(to.contact.trust, ContactTrust::Unverified);
    alice.record_outgoing("bob", &msg, "hi bob").unwrap();
    assert!(!alice.resolve("alice", "bob").await.unwrap().first_use);

    let got = bob.receive("bob", "alice", &msg).await.unwrap();
    match &got.verdict {
        Verdict::Valid {
            text,
            first_use,
            duplicate,
            trust,
        } => {
            assert_eq!(text.as_str(), "hi bob");
            assert!(*first_use && !*duplicate);
            assert_eq!(*trust, ContactTrust::Unverified);
        }
        other => panic!("{other:?}"),
    }
    assert!(got.should_ack());
    // A redelivery is flagged, not shown twice.
    let again = bob.receive("bob", "alice", &msg).await.unwrap();
    assert!(matches!(
        again.verdict,
        Verdict::Valid {
            duplicate: true,
            first_use: false,
            ..
        }
    ));
    assert_eq!(bob.history("alice").unwrap().len(), 1);
    assert_eq!(
        alice.history("bob").unwrap()[0].direction,
        Direction::Outgoing
    );

    // Verified after the safety number was compared, and both sides see the same number.
    let a_sees = alice.safety_number("bob", &bob.public());
    let b_sees = bob.safety_number("alice", &alice.public());
    assert_eq!(a_sees, b_sees);
    bob.mark_verified("alice").unwrap();
    let (msg2, _) = alice.seal_to("alice", "bob", "second").await.unwrap();
    let got = bob.receive("bob", "alice", &msg2).await.unwrap();
    assert!(matches!(
        got.verdict,
        Verdict::Valid {
            trust: ContactTrust::Verified,
            ..
        }
    ));
}

#[tokio::test]
async fn tampered_and_misdirected_messages_are_rejected() {
    let (client, _state) = mock().await;
    let (_da, alice) = ready(&client, "alice", &ALICE_EXPORT).await;
    let (_db, bob) = ready(&client, "bob", &BOB_EXPORT).await;
    let (_dc, carol) = ready(&client, "carol", &[3; 64]).await;
    let (msg, _) = alice.seal_to("alice", "bob", "for bob").await.unwrap();

    let mut t = msg.clone();
    let n = t.ciphertext.0.len();
    t.ciphertext.0[n - 1] ^= 1;
    let got = bob.receive("bob", "alice", &t).await.unwrap();
    assert!(matches!(got.verdict, Verdict::BadSignature), "{got:?}");
    assert!(got.should_ack());

    // The server claims it came from carol: carol's keys did not sign it.
    let got = bob.receive("bob", "carol", &msg).await.unwrap();
    assert!(matches!(got.verdict, Verdict::BadSignature), "{got:?}");
    // Delivered to carol instead of bob: signed for bob.
    let got = carol.receive("carol", "alice", &msg).await.unwrap();
    assert!(matches!(got.verdict, Verdict::BadSignature), "{got:?}");
    // An unknown sender: kept for later.
    let got = bob.receive("bob", "zed", &msg).await.unwrap();
    assert!(matches!(got.verdict, Verdict::UnknownSender), "{got:?}");
    assert!(!got.should_ack());
    assert!(bob.history("alice").unwrap().is_empty());
}

#[tokio::test]
async fn a_changed_key_is_refused_until_accepted() {
    let (client, _state) = mock().await;
    let (_da, alice) = ready(&client, "alice", &ALICE_EXPORT).await;
    let (_db, bob) = ready(&client, "bob", &BOB_EXPORT).await;
    // Each pins the other.
    let (m, _) = alice.seal_to("alice", "bob", "hello").await.unwrap();
    bob.receive("bob", "alice", &m).await.unwrap();

    // Bob loses his device and his backup does not open: new keys.
    let (_db2, bob2) = ready(&client, "bob", &[42; 64]).await;
    assert_ne!(bob2.public(), bob.public());

    let err = alice
        .seal_to("alice", "bob", "still there?")
        .await
        .unwrap_err();
    match &err {
        MessagingError::KeyChanged {
            username,
            pinned,
            presented,
        } => {
            assert_eq!(username, "bob");
            assert_eq!(*pinned, bob.public().fingerprint());
            assert_eq!(*presented, bob2.public().fingerprint());
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("HAVE CHANGED"));
    let pinned = alice.pinned("bob").unwrap().unwrap();
    assert_eq!(pinned.identity, bob.public());
    assert_eq!(pinned.changed_to, Some(bob2.public()));

    // A message under the new keys is withheld, not shown and not acknowledged.
    let (from_new, _) = bob2
        .seal_to("bob", "alice", "it's me, new keys")
        .await
        .unwrap();
    let got = alice.receive("alice", "bob", &from_new).await.unwrap();
    assert!(matches!(got.verdict, Verdict::KeyChanged { .. }), "{got:?}");
    assert!(!got.should_ack());

    // Accepted: the same message now opens, unverified.
    let r = alice.accept_changed_keys("alice", "bob").await.unwrap();
    assert_eq!(r.contact.identity, bob2.public());
    let got = alice.receive("alice", "bob", &from_new).await.unwrap();
    assert!(matches!(
        got.verdict,
        Verdict::Valid {
            trust: ContactTrust::Unverified,
            ..
        }
    ));
    alice.seal_to("alice", "bob", "welcome back").await.unwrap();
}

#[tokio::test]
async fn a_user_without_keys_cannot_be_written_to() {
    let (client, _state) = mock().await;
    let (_da, alice) = ready(&client, "alice", &ALICE_EXPORT).await;
    let err = alice.seal_to("alice", "zed", "x").await.unwrap_err();
    assert!(matches!(err, MessagingError::NoKeys { .. }), "{err}");
    let err = alice
        .seal_to("alice", "not a name!", "x")
        .await
        .unwrap_err();
    assert!(matches!(err, MessagingError::InvalidInput(_)), "{err}");
}

#[tokio::test]
async fn directory_entries_parse_with_extra_fields() {
    let (client, _state) = mock().await;
    let (_da, alice) = ready(&client, "alice", &ALICE_EXPORT).await;
    let e = alice
        .directory()
        .lookup("alice", "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.username, "alice");
    assert_eq!(e.identity, alice.public());
    assert!(alice
        .directory()
        .lookup("alice", "zed")
        .await
        .unwrap()
        .is_none());
    let err = alice.directory().lookup("", "alice").await;
    assert!(err.is_err());
}

#[tokio::test]
async fn a_password_change_rewraps_the_keys_and_the_backup() {
    let (client, state) = mock().await;
    let dir = KeyDirectory::new(&client).unwrap();
    let (d, m) = ready(&client, "alice", &ALICE_EXPORT).await;
    let new_export = [77u8; 64];
    // Unlocked by the current login.
    assert!(
        rewrap_for_new_password(&d.store, &dir, &d.session, None, &new_export)
            .await
            .unwrap()
    );
    let blob = state.lock().unwrap().backups["alice"]["blob"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = sesame_proto::b64::decode(&blob).unwrap();
    assert!(e2e::unwrap_identity(&new_export, &blob)
        .unwrap()
        .matches(&m.public()));
    assert!(e2e::unwrap_identity(&ALICE_EXPORT, &blob).is_err());
    let again = Messenger::unlock(d.store.clone(), dir.clone(), &d.session).unwrap();
    assert_eq!(again.public(), m.public());

    // Another device, only the previous export key: the backup is found and re-wrapped.
    let d2 = device(&client, "alice", 2);
    let newer = [78u8; 64];
    assert!(
        rewrap_for_new_password(&d2.store, &dir, &d2.session, Some(&new_export), &newer)
            .await
            .unwrap()
    );
    let m2 = Messenger::unlock(d2.store.clone(), dir.clone(), &d2.session).unwrap();
    assert_eq!(m2.public(), m.public());
    // Nothing to go on: nothing done.
    let d3 = device(&client, "alice", 3);
    assert!(
        !rewrap_for_new_password(&d3.store, &dir, &d3.session, Some(&[0; 64]), &[1; 64])
            .await
            .unwrap()
    );
}
