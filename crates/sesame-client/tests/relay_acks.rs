//! The client library drains a backlog with batched acknowledgements, through the REAL
//! server (`sesame-server` in process, loopback, a temporary SQLite database).

// Bounds on waits for sockets: wall time on purpose.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use sesame_client::messaging::{Relay, ServerFrame, MAX_ACK_IDS};
use sesame_client::{Client, ClientPolicy};
use sesame_proto::b64::Bytes;
use sesame_proto::e2e::SealedMessage;

mod real;
use real::{Server, PASSWORD};

/// How long to wait for a frame that must come.
const WAIT: Duration = Duration::from_secs(20);
/// How long to wait to be sure that no frame comes.
const QUIET: Duration = Duration::from_millis(700);
/// The backlog: more than two full `ack` frames.
const BACKLOG: usize = 2 * MAX_ACK_IDS + 100;

/// Starts a server on `data` without the per-sender rate limit.
async fn start(data: &std::path::Path) -> Server {
    Server::start_in(data, |c| c.send_rate_per_minute = 0).await
}

/// Registers and logs in `name`; its client and access token.
async fn account(base: &str, name: &str) -> (Client, String) {
    let client = Client::new(base, ClientPolicy::default()).unwrap();
    client.register(name, PASSWORD).await.unwrap();
    let login = client
        .login(name, PASSWORD)
        .await
        .and_then(sesame_client::LoginOutcome::into_login)
        .unwrap();
    (client, login.session.access_token)
}

/// Alice stores `n` messages for bob (the server does not open them: any bytes do).
async fn fill(client: &Client, token: &str, n: usize) -> Vec<String> {
    let mut relay = Relay::connect(client, token).await.unwrap();
    let ids: Vec<String> = (0..n).map(|i| format!("m-{i}")).collect();
    for id in &ids {
        let m = SealedMessage {
            id: id.clone(),
            sent_at: 1_767_225_600_000,
            ciphertext: Bytes(id.as_bytes().to_vec()),
            signature: Bytes(vec![7; 64]),
        };
        relay.send("bob", &m).await.unwrap();
    }
    let mut accepted = 0;
    while accepted < n {
        match tokio::time::timeout(WAIT, relay.next()).await {
            Ok(Ok(Some(ServerFrame::Accepted { .. }))) => accepted += 1,
            // Bob's `settle` messages to alice.
            Ok(Ok(Some(ServerFrame::Message { .. }))) => {}
            other => panic!("expected accepted, got {other:?}"),
        }
    }
    relay.close().await;
    ids
}

/// Waits until the acknowledgements sent on `relay` are committed: the server commits a
/// connection's writes in order, so the `accepted` of a later send comes after them.
async fn settle(relay: &mut Relay) {
    relay.flush_acks().await.unwrap();
    let m = SealedMessage {
        id: "settle".into(),
        sent_at: 1_767_225_600_000,
        ciphertext: Bytes(vec![1]),
        signature: Bytes(vec![7; 64]),
    };
    relay.send_and_wait("alice", &m).await.unwrap();
}

/// Reads `n` deliveries, queuing an acknowledgement of each with [`Relay::ack_later`].
async fn drain(relay: &mut Relay, n: usize) -> Vec<String> {
    let mut got = Vec::with_capacity(n);
    while got.len() < n {
        match tokio::time::timeout(WAIT, relay.next()).await {
            Ok(Ok(Some(ServerFrame::Message { message, .. }))) => {
                relay.ack_later(&message.id).await.unwrap();
                got.push(message.id);
            }
            other => panic!("expected a delivery, got {other:?}"),
        }
    }
    got
}

async fn assert_empty(client: &Client, token: &str) {
    let mut relay = Relay::connect(client, token).await.unwrap();
    if let Some(frame) = relay.next_within(QUIET).await.unwrap() {
        panic!("the mailbox should be empty, got {frame:?}");
    }
    relay.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_is_drained_with_batched_acks() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path()).await;
    let base = server.base.clone();
    let (alice, alice_token) = account(&base, "alice").await;
    let (bob, bob_token) = account(&base, "bob").await;

    // `ack_later`: frames go out at 512 ids or whenever no delivery is ready.
    let sent = fill(&alice, &alice_token, BACKLOG).await;
    let mut relay = Relay::connect(&bob, &bob_token).await.unwrap();
    assert_eq!(drain(&mut relay, BACKLOG).await, sent);
    settle(&mut relay).await;
    let frames = relay.ack_frames_sent();
    relay.close().await;
    assert!(
        (3..=BACKLOG as u64).contains(&frames),
        "{frames} ack frames for {BACKLOG} messages"
    );
    assert_empty(&bob, &bob_token).await;

    // `ack_many`: exactly one frame per 512 ids.
    let sent = fill(&alice, &alice_token, BACKLOG).await;
    let mut relay = Relay::connect(&bob, &bob_token).await.unwrap();
    let mut got = Vec::new();
    while got.len() < BACKLOG {
        match tokio::time::timeout(WAIT, relay.next()).await {
            Ok(Ok(Some(ServerFrame::Message { message, .. }))) => got.push(message.id),
            other => panic!("expected a delivery, got {other:?}"),
        }
    }
    assert_eq!(got, sent);
    relay.ack_many(&got).await.unwrap();
    assert_eq!(relay.ack_frames_sent(), 3);
    settle(&mut relay).await;
    relay.close().await;
    assert_empty(&bob, &bob_token).await;
    server.stop().await;
}

/// Acknowledgements sent just before the connection closes are applied: the next connection
/// gets nothing again. (`close` sends the queued acknowledgements, then the close frame; no
/// later frame waits for them to be committed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledgements_right_before_close_are_kept() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path()).await;
    let base = server.base.clone();
    let (alice, alice_token) = account(&base, "alice").await;
    let (bob, bob_token) = account(&base, "bob").await;
    for _ in 0..3 {
        let sent = fill(&alice, &alice_token, BACKLOG).await;
        let mut relay = Relay::connect(&bob, &bob_token).await.unwrap();
        assert_eq!(drain(&mut relay, BACKLOG).await, sent);
        relay.close().await;
        assert_empty(&bob, &bob_token).await;
    }
    server.stop().await;
}
