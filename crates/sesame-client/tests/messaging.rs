//! End-to-end messaging through the REAL server (`sesame-server`, in process, on a loopback
//! port with a temporary SQLite database): two (or three) clients with real OPAQUE accounts,
//! real identity keys, the real key directory and relay.

// Bounds on waits for sockets and processes: wall time on purpose.
#![allow(clippy::disallowed_methods)]

use std::net::SocketAddr;
use std::time::Duration;

use sesame_client::messaging::{
    ensure_identity, ContactTrust, IdentitySource, KeyDirectory, MessagingError, MessagingStore,
    Messenger, Relay, ServerFrame, Verdict,
};
use sesame_client::profile::{unix_now, Profile, StoredSession};
use sesame_client::{Client, ClientPolicy};
use sesame_proto::e2e::{IdentityKeys, SealedMessage, WrapKey};

mod real;
use real::{Server, PASSWORD};

/// How long to wait for a frame that must come.
const WAIT: Duration = Duration::from_secs(10);
/// How long to wait to be sure that no frame comes.
const QUIET: Duration = Duration::from_millis(700);

/// One user on one device: an account, a login, identity keys and a profile directory.
struct Device {
    client: Client,
    session: StoredSession,
    messenger: Messenger,
    _home: tempfile::TempDir,
}

impl Device {
    fn token(&self) -> &str {
        &self.session.access_token
    }

    async fn relay(&self) -> Relay {
        Relay::connect(&self.client, self.token()).await.unwrap()
    }
}

async fn register(base: &str, name: &str) {
    let client = Client::new(base, ClientPolicy::default()).unwrap();
    client.register(name, PASSWORD).await.unwrap();
}

/// Logs `name` in on a fresh device and sets up its identity.
async fn login(base: &str, name: &str) -> (Device, IdentitySource) {
    let client = Client::new(base, ClientPolicy::default()).unwrap();
    let login = client
        .login(name, PASSWORD)
        .await
        .and_then(sesame_client::LoginOutcome::into_login)
        .unwrap();
    let session = StoredSession::from_issued(client.server_id(), &login.session, unix_now());
    let home = tempfile::tempdir().unwrap();
    let profile = Profile::at(home.path().join("sesame"));
    profile.save_session(&session).unwrap();
    let store = MessagingStore::new(&profile);
    let directory = KeyDirectory::new(&client).unwrap();
    let report = ensure_identity(&store, &directory, &session, &login.export_key)
        .await
        .unwrap();
    let messenger = Messenger::unlock(store, directory, &session).unwrap();
    (
        Device {
            client,
            session,
            messenger,
            _home: home,
        },
        report.source,
    )
}

async fn user(base: &str, name: &str) -> Device {
    register(base, name).await;
    let (device, source) = login(base, name).await;
    assert_eq!(source, IdentitySource::Created);
    device
}

/// The next delivery on `relay` (skipping `accepted`/`error` frames), within [`WAIT`].
async fn delivery(relay: &mut Relay) -> (String, SealedMessage) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(left, relay.next()).await {
            Err(_) => panic!("no delivery within {WAIT:?}"),
            Ok(frame) => {
                if let Some(ServerFrame::Message { from, message, .. }) = frame.unwrap() {
                    return (from, message);
                }
            }
        }
    }
}

/// Asserts that no delivery arrives for [`QUIET`].
async fn no_delivery(relay: &mut Relay) {
    while let Some(frame) = relay.next_within(QUIET).await.unwrap() {
        if let ServerFrame::Message { message, .. } = frame {
            panic!("unexpected delivery {}", message.id);
        }
    }
}

fn text_of(v: &Verdict) -> &str {
    match v {
        Verdict::Valid { text, .. } => text.as_str(),
        other => panic!("not a valid message: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_delivery_between_two_clients() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), |_| {}).await;
    let alice = user(&server.base, "alice").await;
    let bob = user(&server.base, "bob").await;

    let mut bob_relay = bob.relay().await;
    no_delivery(&mut bob_relay).await;

    let (msg, to) = alice
        .messenger
        .seal_to(alice.token(), "bob", "hello bob, are you online?")
        .await
        .unwrap();
    assert!(to.first_use);
    let mut alice_relay = alice.relay().await;
    alice_relay.send_and_wait("bob", &msg).await.unwrap();
    alice
        .messenger
        .record_outgoing("bob", &msg, "hello bob, are you online?")
        .unwrap();

    let (from, got) = delivery(&mut bob_relay).await;
    assert_eq!(from, "alice");
    assert_eq!(got, msg);
    let r = bob
        .messenger
        .receive(bob.token(), &from, &got)
        .await
        .unwrap();
    assert_eq!(text_of(&r.verdict), "hello bob, are you online?");
    assert!(matches!(
        r.verdict,
        Verdict::Valid {
            first_use: true,
            trust: ContactTrust::Unverified,
            ..
        }
    ));
    bob_relay.ack(&r.id).await.unwrap();

    // And back, on the same connections.
    let (reply, _) = bob
        .messenger
        .seal_to(bob.token(), "alice", "yes!")
        .await
        .unwrap();
    bob_relay.send_and_wait("alice", &reply).await.unwrap();
    bob.messenger
        .record_outgoing("alice", &reply, "yes!")
        .unwrap();
    let (from, got) = delivery(&mut alice_relay).await;
    let r = alice
        .messenger
        .receive(alice.token(), &from, &got)
        .await
        .unwrap();
    assert_eq!(text_of(&r.verdict), "yes!");
    alice_relay.ack(&r.id).await.unwrap();

    // Both sides compute the same safety number from what they pinned.
    let a = alice.messenger.safety_number(
        "bob",
        &alice.messenger.pinned("bob").unwrap().unwrap().identity,
    );
    let b = bob.messenger.safety_number(
        "alice",
        &bob.messenger.pinned("alice").unwrap().unwrap().identity,
    );
    assert_eq!(a, b);
    // The history is local and encrypted; each side has both messages.
    assert_eq!(alice.messenger.history("bob").unwrap().len(), 2);
    assert_eq!(bob.messenger.history("alice").unwrap().len(), 2);

    alice_relay.close().await;
    bob_relay.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_delivery_resend_dedup_and_restart() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), |_| {}).await;
    let alice = user(&server.base, "alice").await;
    let bob = user(&server.base, "bob").await;

    // Bob is offline. Alice sends one message twice (a resend after a lost answer).
    let (msg, _) = alice
        .messenger
        .seal_to(alice.token(), "bob", "while you were away")
        .await
        .unwrap();
    let mut alice_relay = alice.relay().await;
    alice_relay.send_and_wait("bob", &msg).await.unwrap();
    alice_relay.send_and_wait("bob", &msg).await.unwrap();
    let (second, _) = alice
        .messenger
        .seal_to(alice.token(), "bob", "and a second one")
        .await
        .unwrap();
    alice_relay.send_and_wait("bob", &second).await.unwrap();
    alice_relay.close().await;

    // The server restarts (same database, same address): nothing is lost.
    let addr: SocketAddr = server.base.trim_start_matches("http://").parse().unwrap();
    server.stop().await;
    let server = Server::start_in(data.path(), |c| c.listen = addr).await;
    // Access tokens do not outlive the server process; the session does.
    let mut bob = bob;
    let refreshed = bob
        .client
        .refresh(&bob.session.session_token)
        .await
        .unwrap();
    bob.session.apply_refresh(&refreshed, unix_now());

    // Bob connects: the backlog, in order, the resent message once.
    let mut relay = bob.relay().await;
    let (from, first) = delivery(&mut relay).await;
    assert_eq!(
        (from.as_str(), first.id.as_str()),
        ("alice", msg.id.as_str())
    );
    let (_, next) = delivery(&mut relay).await;
    assert_eq!(next.id, second.id);
    no_delivery(&mut relay).await;
    // Read the first but acknowledge nothing yet, then the connection drops.
    let r = bob
        .messenger
        .receive(bob.token(), "alice", &first)
        .await
        .unwrap();
    assert_eq!(text_of(&r.verdict), "while you were away");
    relay.close().await;

    // Redelivered on reconnection: the client recognises the one it already read.
    let mut relay = bob.relay().await;
    let (_, again) = delivery(&mut relay).await;
    assert_eq!(again.id, msg.id);
    let r = bob
        .messenger
        .receive(bob.token(), "alice", &again)
        .await
        .unwrap();
    assert!(
        matches!(
            r.verdict,
            Verdict::Valid {
                duplicate: true,
                ..
            }
        ),
        "{r:?}"
    );
    relay.ack(&r.id).await.unwrap();
    let (_, b) = delivery(&mut relay).await;
    let r = bob
        .messenger
        .receive(bob.token(), "alice", &b)
        .await
        .unwrap();
    assert_eq!(text_of(&r.verdict), "and a second one");
    relay.ack(&r.id).await.unwrap();
    no_delivery(&mut relay).await;
    relay.close().await;

    // Acknowledged means gone.
    let mut relay = bob.relay().await;
    no_delivery(&mut relay).await;
    relay.close().await;
    assert_eq!(bob.messenger.history("alice").unwrap().len(), 2);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_misaddressed_messages_are_rejected_by_the_recipient() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), |_| {}).await;
    let alice = user(&server.base, "alice").await;
    let bob = user(&server.base, "bob").await;
    let carol = user(&server.base, "carol").await;

    let mut alice_relay = alice.relay().await;
    // A bit flipped in the ciphertext after signing (what a malicious relay could do).
    let (mut tampered, _) = alice
        .messenger
        .seal_to(alice.token(), "bob", "original text")
        .await
        .unwrap();
    let last = tampered.ciphertext.0.len() - 1;
    tampered.ciphertext.0[last] ^= 0x01;
    alice_relay.send_and_wait("bob", &tampered).await.unwrap();
    // Sealed and signed for carol, but sent to bob.
    let (for_carol, _) = alice
        .messenger
        .seal_to(alice.token(), "carol", "for carol only")
        .await
        .unwrap();
    alice_relay.send_and_wait("bob", &for_carol).await.unwrap();
    // A sent_at changed after signing.
    let (mut retimed, _) = alice
        .messenger
        .seal_to(alice.token(), "bob", "when?")
        .await
        .unwrap();
    retimed.sent_at += 1;
    alice_relay.send_and_wait("bob", &retimed).await.unwrap();

    let mut relay = bob.relay().await;
    for _ in 0..3 {
        let (from, m) = delivery(&mut relay).await;
        let r = bob.messenger.receive(bob.token(), &from, &m).await.unwrap();
        assert!(matches!(r.verdict, Verdict::BadSignature), "{r:?}");
        assert!(r.should_ack());
        relay.ack(&r.id).await.unwrap();
    }
    no_delivery(&mut relay).await;
    assert!(bob.messenger.history("alice").unwrap().is_empty());

    // An unknown recipient is refused by the server with its own code.
    let err = alice_relay
        .send_and_wait("no-such-user", &for_carol)
        .await
        .unwrap_err();
    assert_eq!(
        err.server_code().map(|c| c.as_str()),
        Some("unknown_recipient"),
        "{err}"
    );
    relay.close().await;
    alice_relay.close().await;
    drop(carol);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_change_is_detected_and_messages_under_it_are_withheld() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), |_| {}).await;
    let alice = user(&server.base, "alice").await;
    let bob = user(&server.base, "bob").await;

    // They talk once: each pins the other.
    let (m, _) = alice
        .messenger
        .seal_to(alice.token(), "bob", "hi")
        .await
        .unwrap();
    let mut alice_relay = alice.relay().await;
    alice_relay.send_and_wait("bob", &m).await.unwrap();
    let mut bob_relay = bob.relay().await;
    let (from, got) = delivery(&mut bob_relay).await;
    let r = bob
        .messenger
        .receive(bob.token(), &from, &got)
        .await
        .unwrap();
    assert_eq!(text_of(&r.verdict), "hi");
    bob_relay.ack(&r.id).await.unwrap();
    bob_relay.close().await;

    // Bob's keys are replaced on the server (a new device without the backup, or an
    // impostor with bob's token).
    let new_keys = IdentityKeys::generate(&mut rand_core::OsRng);
    let directory = KeyDirectory::new(&bob.client).unwrap();
    directory
        .publish(bob.token(), &new_keys.public())
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let new_bob = Messenger::new(
        MessagingStore::new(&Profile::at(home.path())),
        directory,
        "bob",
        new_keys,
        WrapKey::from_bytes([5; 32]),
    );

    // Alice refuses to send under the new keys.
    let err = alice
        .messenger
        .seal_to(alice.token(), "bob", "still you?")
        .await
        .unwrap_err();
    assert!(matches!(err, MessagingError::KeyChanged { .. }), "{err}");
    assert!(err.to_string().contains("HAVE CHANGED"), "{err}");

    // A message signed by the new keys is withheld and stays on the server.
    let (from_new, _) = new_bob
        .seal_to(bob.token(), "alice", "new phone, same bob")
        .await
        .unwrap();
    let mut relay = bob.relay().await;
    relay.send_and_wait("alice", &from_new).await.unwrap();
    relay.close().await;
    let (from, got) = delivery(&mut alice_relay).await;
    let r = alice
        .messenger
        .receive(alice.token(), &from, &got)
        .await
        .unwrap();
    assert!(matches!(r.verdict, Verdict::KeyChanged { .. }), "{r:?}");
    assert!(!r.should_ack());
    alice_relay.close().await;

    // Alice checks with bob and accepts the new keys: on reconnection the withheld message
    // is delivered again and now opens.
    alice
        .messenger
        .accept_changed_keys(alice.token(), "bob")
        .await
        .unwrap();
    let mut alice_relay = alice.relay().await;
    let (from, got) = delivery(&mut alice_relay).await;
    let r = alice
        .messenger
        .receive(alice.token(), &from, &got)
        .await
        .unwrap();
    assert_eq!(text_of(&r.verdict), "new phone, same bob");
    alice_relay.ack(&r.id).await.unwrap();
    alice_relay.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_restores_the_identity_from_the_backup() {
    let data = tempfile::tempdir().unwrap();
    let server = Server::start_in(data.path(), |_| {}).await;
    let alice = user(&server.base, "alice").await;
    let (laptop, source) = login(&server.base, "alice").await;
    assert_eq!(source, IdentitySource::Backup);
    assert_eq!(laptop.messenger.public(), alice.messenger.public());
    // The directory publishes exactly these keys.
    let entry = laptop
        .messenger
        .directory()
        .lookup(laptop.token(), "alice")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entry.identity, alice.messenger.public());
    assert_eq!(entry.user_id, laptop.session.user_id);
    server.stop().await;
}
