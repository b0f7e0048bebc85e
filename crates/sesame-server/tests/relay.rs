//! The message relay and the key directory through a real server, on SQLite and PostgreSQL:
//! real WebSocket and TCP clients, the server restarted in between, the store inspected
//! directly.
//!
//! Messages are opaque to the server; most tests send random bytes. The online-delivery test
//! seals a real end-to-end message (`sesame_proto::e2e`) and opens it at the recipient.
// The tests play the clients: message timestamps, client keys and frame deadlines come
// from the real clock and the OS generator, outside the server under test.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rand_chacha::rand_core::{RngCore as _, SeedableRng as _};
use rand_chacha::ChaCha20Rng;
use rand_core::OsRng;
use reqwest::Client;
use serde_json::{json, Value};
use sesame_proto::b64;
use sesame_proto::e2e::{self, IdentityKeys, SealedMessage};
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use common::api::{err, get_auth, PASSWORD};
use common::relay::{login, user, ws_url, Tcp, User, Ws, QUIET, READ_TIMEOUT};
use common::server::TestServer;
use common::{backends, on_every_backend};

fn random(n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    ChaCha20Rng::from_entropy().fill_bytes(&mut v);
    v
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

// ---------------------------------------------------------------------------------------
// WebSocket client
// ---------------------------------------------------------------------------------------

impl Ws {
    /// Connects with `?token=`.
    async fn connect_query(srv: &TestServer, token: &str) -> Ws {
        let url = format!("{}?token={token}", ws_url(srv));
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("connect /ws?token");
        Ws(ws)
    }

    /// Sends one message and returns the answer frame.
    async fn send_msg(&mut self, to: &str, id: &str, ciphertext: &[u8]) -> Value {
        self.send(send_frame(to, id, ciphertext)).await;
        let answer = self.recv().await;
        if answer["type"] == "accepted" || answer["type"] == "error" {
            assert_eq!(answer["id"], id, "{answer}");
        }
        answer
    }

    async fn ack(&mut self, id: &str) {
        self.send(json!({ "type": "ack", "id": id })).await;
    }

    /// Reads until the connection closes; returns the close code, if any.
    async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(READ_TIMEOUT, self.0.next())
                .await
                .expect("close in time")
            {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }
}

fn send_frame(to: &str, id: &str, ciphertext: &[u8]) -> Value {
    json!({
        "type": "send", "to": to, "id": id, "sent_at": now_ms(),
        "ciphertext": b64::encode(ciphertext), "signature": b64::encode(random(64)),
    })
}

fn assert_accepted(answer: &Value) {
    assert_eq!(answer["type"], "accepted", "{answer}");
}

fn assert_error(answer: &Value, want: &str) {
    assert_eq!(answer["type"], "error", "{answer}");
    assert_eq!(err(answer), want, "{answer}");
}

/// Expects a delivery of `id` from `from`; returns the frame.
async fn expect_message(ws: &mut Ws, from: &str, id: &str) -> Value {
    let m = ws.recv().await;
    assert_eq!(m["type"], "message", "{m}");
    assert_eq!(m["id"], id, "{m}");
    assert_eq!(m["from"], from, "{m}");
    m
}

// ---------------------------------------------------------------------------------------
// TCP client
// ---------------------------------------------------------------------------------------

impl Tcp {
    async fn message(&mut self, to: &str, id: &str, ciphertext: &[u8]) -> Vec<String> {
        let (ct, sig) = (b64::encode(ciphertext), b64::encode(random(64)));
        self.call(&["MESSAGE", to, id, &now_ms().to_string(), &ct, &sig])
            .await
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_directory_and_backup() {
    on_every_backend!(|c, srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let keys = IdentityKeys::generate(&mut OsRng);
        let public = serde_json::to_value(keys.public()).unwrap();

        let put = |who: &User, path: &str, body: Value| {
            c.put(srv.url(path))
                .bearer_auth(&who.access)
                .json(&body)
                .send()
        };
        let get = |who: &User, path: &str| c.get(srv.url(path)).bearer_auth(&who.access).send();

        // Unauthenticated: 401.
        let r = c.get(srv.url("/api/keys/alice")).send().await.unwrap();
        assert_eq!(r.status(), 401, "{}", db.name);
        // Nobody has keys yet; unknown users look the same.
        for name in ["alice", "nobody", "Not A Name!"] {
            let r = get(&bob, &format!("/api/keys/{name}")).await.unwrap();
            assert_eq!(r.status(), 404);
            assert_eq!(err(&r.json().await.unwrap()), "keys_not_found");
        }
        // A bad signature, a short key: invalid_identity.
        let mut forged = public.clone();
        forged["encryption_key"] = json!(b64::encode([9u8; 32]));
        let mut short = public.clone();
        short["signing_key"] = json!(b64::encode([1u8; 31]));
        for bad in [forged, short] {
            let r = put(&alice, "/api/keys", bad).await.unwrap();
            assert_eq!(r.status(), 400);
            assert_eq!(err(&r.json().await.unwrap()), "invalid_identity");
        }
        let r = put(&alice, "/api/keys", public.clone()).await.unwrap();
        assert_eq!(r.status(), 204, "{}", db.name);
        let r = get(&bob, "/api/keys/Alice").await.unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["username"], "alice");
        assert_eq!(v["user_id"], alice.id.to_string());
        for field in ["signing_key", "encryption_key", "encryption_key_signature"] {
            assert_eq!(v[field], public[field], "{field}");
        }
        assert!(v["updated_at"].as_i64().unwrap() > 0);
        // What the directory returns is a verifiable identity.
        let back: e2e::PublicIdentity = serde_json::from_value(v).unwrap();
        back.verify().unwrap();
        assert!(back.same_keys(&keys.public()));

        // Backup: missing, stored, replaced, too large, not base64url.
        let r = get(&alice, "/api/keys/backup").await.unwrap();
        assert_eq!(r.status(), 404);
        assert_eq!(err(&r.json().await.unwrap()), "backup_not_found");
        let blob = b64::encode(random(300));
        let r = put(&alice, "/api/keys/backup", json!({ "blob": blob }))
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        let r = get(&alice, "/api/keys/backup").await.unwrap();
        assert_eq!(r.json::<Value>().await.unwrap()["blob"], blob);
        let big = b64::encode(random(4097));
        let r = put(&alice, "/api/keys/backup", json!({ "blob": big }))
            .await
            .unwrap();
        assert_eq!(r.status(), 413);
        let r = put(&alice, "/api/keys/backup", json!({ "blob": "not base64!" }))
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // Each user sees only their own backup.
        let r = get(&bob, "/api/keys/backup").await.unwrap();
        assert_eq!(r.status(), 404);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_requires_a_valid_token() {
    on_every_backend!(|srv, db| {
        let bob = user(&srv, "bob").await;
        let refused = |url: String| async move {
            match tokio_tungstenite::connect_async(url).await {
                Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
                other => panic!("expected an HTTP refusal, got {:?}", other.map(|(_, r)| r)),
            }
        };
        assert_eq!(refused(ws_url(&srv)).await, 401, "{}", db.name);
        assert_eq!(
            refused(format!("{}?token=nonsense", ws_url(&srv))).await,
            401
        );
        assert_eq!(
            refused(format!("{}?token=sst_nonsense", ws_url(&srv))).await,
            401
        );
        // A plain GET with a valid token but no upgrade: not a WebSocket request.
        let (status, _) = get_auth(&Client::new(), &srv, "/ws", &bob.access).await;
        assert!(status.is_client_error(), "{}", status);
        // Both token kinds work, in the header and in the query.
        Ws::connect(&srv, &bob.access).await;
        Ws::connect(&srv, &bob.session).await;
        Ws::connect_query(&srv, &bob.session).await;
        // A logged-out session no longer does.
        let r = Client::new()
            .post(srv.url("/api/logout"))
            .bearer_auth(&bob.access)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204);
        assert_eq!(
            refused(format!("{}?token={}", ws_url(&srv), bob.session)).await,
            401
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_delivery_reaches_every_live_connection() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let (alice_keys, bob_keys) = (
            IdentityKeys::generate(&mut OsRng),
            IdentityKeys::generate(&mut OsRng),
        );
        let mut a = Ws::connect(&srv, &alice.access).await;
        let mut b1 = Ws::connect(&srv, &bob.access).await;
        let mut b2 = Ws::connect_query(&srv, &bob.session).await;
        b1.quiet().await; // empty mailbox: no backlog

        let id = e2e::new_message_id(&mut OsRng);
        let sealed = e2e::seal(
            &mut OsRng,
            &alice_keys,
            "alice",
            "bob",
            &bob_keys.public(),
            &id,
            now_ms(),
            b"hello bob",
        )
        .unwrap();
        let mut frame = serde_json::to_value(&sealed).unwrap();
        frame["type"] = json!("send");
        frame["to"] = json!("bob");
        a.send(frame).await;
        assert_accepted(&a.recv().await);
        for b in [&mut b1, &mut b2] {
            let m = expect_message(b, "alice", &id).await;
            assert_eq!(m["to"], "bob");
            let got: SealedMessage = serde_json::from_value(m).unwrap();
            assert_eq!(got, sealed, "{}: delivered byte for byte", db.name);
            let text = e2e::open(&bob_keys, "alice", "bob", &got, &alice_keys.public()).unwrap();
            assert_eq!(&text[..], b"hello bob");
        }
        a.quiet().await; // the sender's own connection gets nothing
        assert_eq!(srv.sesame.relay().hub().connections(bob.id), 2);
        // Still stored until acknowledged; one ack (on either connection) deletes it.
        assert_eq!(srv.sesame.store().count_messages(bob.id).await.unwrap(), 1);
        b2.ack(&id).await;
        b2.ack(&id).await; // acknowledging twice is harmless
        b2.quiet().await;
        assert_eq!(srv.sesame.store().count_messages(bob.id).await.unwrap(), 0);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_backlog_in_order_ack_deletes_and_unacked_are_redelivered() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        let ids: Vec<String> = (0..5)
            .map(|i| format!("m{i}-{}", Uuid::new_v4().simple()))
            .collect();
        let bodies: Vec<Vec<u8>> = (0..5).map(|_| random(100)).collect();
        for (id, body) in ids.iter().zip(&bodies) {
            assert_accepted(&a.send_msg("bob", id, body).await);
        }
        // Bob comes online: the backlog in the order it was sent.
        let mut b = Ws::connect(&srv, &bob.access).await;
        for (id, body) in ids.iter().zip(&bodies) {
            let m = expect_message(&mut b, "alice", id).await;
            assert_eq!(m["ciphertext"], b64::encode(body), "{}", db.name);
        }
        b.quiet().await;
        b.ack(&ids[0]).await;
        b.ack(&ids[3]).await;
        // A live message after the backlog.
        assert_accepted(&a.send_msg("bob", "live-1", b"x").await);
        expect_message(&mut b, "alice", "live-1").await;
        b.quiet().await;
        drop(b);
        // Reconnect: the unacknowledged ones again, in order; the acknowledged ones never.
        let mut b = Ws::connect(&srv, &bob.session).await;
        for id in [&ids[1], &ids[2], &ids[4]]
            .into_iter()
            .chain([&"live-1".to_owned()])
        {
            expect_message(&mut b, "alice", id).await;
        }
        b.quiet().await;
        assert_eq!(srv.sesame.store().count_messages(bob.id).await.unwrap(), 4);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resending_the_same_id_is_idempotent() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        let mut b = Ws::connect(&srv, &bob.access).await;
        let body = random(64);
        for _ in 0..3 {
            assert_accepted(&a.send_msg("bob", "same-id", &body).await);
        }
        expect_message(&mut b, "alice", "same-id").await;
        b.quiet().await;
        assert_eq!(
            srv.sesame.store().count_messages(bob.id).await.unwrap(),
            1,
            "{}",
            db.name
        );
        // The same id to another recipient is another message.
        let carol = user(&srv, "carol").await;
        assert_accepted(&a.send_msg("carol", "same-id", &body).await);
        assert_eq!(
            srv.sesame.store().count_messages(carol.id).await.unwrap(),
            1
        );
        // And a reconnect delivers it once.
        drop(b);
        let mut b = Ws::connect(&srv, &bob.access).await;
        expect_message(&mut b, "alice", "same-id").await;
        b.quiet().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_restart_loses_nothing() {
    for db in backends().await {
        let srv = TestServer::start(&db).await;
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        let mut b = Ws::connect(&srv, &bob.access).await;
        assert_accepted(&a.send_msg("bob", "before-1", b"1").await);
        expect_message(&mut b, "alice", "before-1").await; // delivered, never acknowledged
        drop(b);
        assert_accepted(&a.send_msg("bob", "before-2", b"2").await);
        // Stopping the server closes the relay connections (1001 going away).
        let stopping = tokio::spawn(srv.stop());
        assert_eq!(a.closed().await, Some(1001), "{}", db.name);
        stopping.await.unwrap();

        let srv = TestServer::start(&db).await;
        let alice = login(&srv, "alice").await;
        let bob = login(&srv, "bob").await;
        let mut b = Ws::connect(&srv, &bob.access).await;
        expect_message(&mut b, "alice", "before-1").await;
        expect_message(&mut b, "alice", "before-2").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        assert_accepted(&a.send_msg("bob", "after-1", b"3").await);
        expect_message(&mut b, "alice", "after-1").await;
        b.quiet().await;
        srv.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_each_have_their_code() {
    for db in backends().await {
        let srv = TestServer::start_with(&db, |c| {
            c.message_max_bytes = 1024;
            c.mailbox_max_messages = 3;
        })
        .await;
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let carol = user(&srv, "carol").await;
        let mut a = Ws::connect(&srv, &alice.access).await;

        assert_accepted(&a.send_msg("bob", "exactly-max", &random(1024)).await);
        assert_error(
            &a.send_msg("bob", "too-big", &random(1025)).await,
            "message_too_large",
        );
        assert_error(&a.send_msg("nobody", "x1", b"x").await, "unknown_recipient");
        assert_error(&a.send_msg("bob", "bad id!", b"x").await, "invalid_message");
        assert_error(
            &a.send_msg("bob", &"x".repeat(65), b"x").await,
            "invalid_message",
        );
        a.send(json!({ "type": "send", "to": "bob", "id": "no-body" }))
            .await;
        assert_error(&a.recv().await, "invalid_message");
        a.send(json!({ "type": "nonsense" })).await;
        assert_error(&a.recv().await, "invalid_message");
        a.0.send(Message::Text("not json".into())).await.unwrap();
        assert_error(&a.recv().await, "invalid_message");

        for i in 0..3 {
            assert_accepted(&a.send_msg("carol", &format!("c{i}"), b"x").await);
        }
        assert_error(&a.send_msg("carol", "c3", b"x").await, "mailbox_full");
        // A resend of a stored message is still accepted, full or not.
        assert_accepted(&a.send_msg("carol", "c1", b"x").await);
        assert_eq!(
            srv.sesame.store().count_messages(carol.id).await.unwrap(),
            3,
            "{}",
            db.name
        );
        // Acknowledging makes room.
        let mut c = Ws::connect(&srv, &carol.access).await;
        expect_message(&mut c, "alice", "c0").await;
        c.ack("c0").await;
        c.ack("c0").await;
        // The acknowledgement is written in the background: poll (bounded) until it is.
        for _ in 0..100 {
            if srv.sesame.store().count_messages(carol.id).await.unwrap() == 2 {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_accepted(&a.send_msg("carol", "c3", b"x").await);

        // Age: the cleanup deletes messages older than message_max_age_days.
        srv.clock.advance(29 * 86_400);
        assert_eq!(srv.sesame.expire_messages().await.unwrap(), 0);
        srv.clock.advance(2 * 86_400);
        assert_eq!(srv.sesame.expire_messages().await.unwrap(), 4); // bob 1, carol 3
        assert_eq!(
            srv.sesame.store().count_messages(carol.id).await.unwrap(),
            0
        );
        assert_eq!(srv.sesame.store().count_messages(bob.id).await.unwrap(), 0);
        srv.stop().await;

        // Rate: a fresh server on the same data with a small per-sender rate.
        let srv = TestServer::start_with(&db, |c| c.send_rate_per_minute = 5).await;
        let alice = login(&srv, "alice").await;
        let bob = login(&srv, "bob").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        for i in 0..5 {
            assert_accepted(&a.send_msg("bob", &format!("r{i}"), b"x").await);
        }
        assert_error(&a.send_msg("bob", "r5", b"x").await, "rate_limited");
        // Per sender: bob may still send.
        let mut b = Ws::connect(&srv, &bob.access).await;
        for i in 0..5 {
            expect_message(&mut b, "alice", &format!("r{i}")).await;
        }
        assert_accepted(&b.send_msg("alice", "from-bob", b"x").await);
        srv.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_recipient_deletes_its_messages() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        assert_accepted(&a.send_msg("bob", "m1", b"1").await);
        assert_accepted(&a.send_msg("bob", "m2", b"2").await);
        // Messages bob sent survive him (alice still gets them).
        let mut b = Ws::connect(&srv, &bob.access).await;
        expect_message(&mut b, "alice", "m1").await;
        expect_message(&mut b, "alice", "m2").await;
        assert_accepted(&b.send_msg("alice", "from-bob", b"3").await);
        expect_message(&mut a, "bob", "from-bob").await;
        drop(b);
        let store = srv.sesame.store();
        assert_eq!(store.count_messages(bob.id).await.unwrap(), 2);
        assert!(store.delete_user(bob.id).await.unwrap());
        assert_eq!(
            store.count_messages(bob.id).await.unwrap(),
            0,
            "{}",
            db.name
        );
        assert!(store
            .messages_after(bob.id, 0, 100)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.count_messages(alice.id).await.unwrap(), 1);
        // Alice's connection looked bob up a moment ago (and may still remember him): a
        // message to the deleted account is refused as to an unknown name, not an error.
        assert_error(&a.send_msg("bob", "m3", b"3").await, "unknown_recipient");
        assert_error(&a.send_msg("bob", "m4", b"4").await, "unknown_recipient");
        // A reconnecting alice still sees bob's name on it.
        drop(a);
        let mut a = Ws::connect(&srv, &alice.access).await;
        expect_message(&mut a, "bob", "from-bob").await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_message_incoming_and_ack() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;

        // Not logged in: refused.
        let mut anon = Tcp::connect(&srv).await;
        let r = anon.message("bob", "m0", b"x").await;
        assert_eq!(
            r[..4],
            ["MESSAGE", "FAILURE", "m0", "not_authenticated"],
            "{}",
            db.name
        );
        let r = anon.call(&["SESSION", "sst_nonsense"]).await;
        assert_eq!(r[..3], ["SESSION", "FAILURE", "not_authenticated"]);

        // Alice logs in with AUTH, bob with SESSION.
        let mut a = Tcp::connect(&srv).await;
        let r = a.call(&["AUTH", "alice", PASSWORD]).await;
        assert_eq!(r[..2], ["AUTH", "SUCCESS"]);
        let mut b = Tcp::session(&srv, &bob).await;
        let big = random(60 * 1024); // far beyond the 8 KiB line limit before login
        assert_eq!(
            a.message("bob", "t1", &big).await,
            ["MESSAGE", "ACCEPTED", "t1"]
        );
        let m = b.line().await;
        assert_eq!(m[..4], ["MESSAGE", "alice", "bob", "t1"], "{}", db.name);
        assert!(m[4].parse::<u64>().is_ok());
        assert_eq!(b64::decode(&m[5]).unwrap(), big);
        assert_eq!(b64::decode(&m[6]).unwrap().len(), 64);
        assert_eq!(b.call(&["ACK", "t1"]).await, ["ACK", "OK", "t1"]);
        assert_eq!(srv.sesame.store().count_messages(bob.id).await.unwrap(), 0);

        // Errors carry the id and the code.
        let r = a.message("nobody", "t2", b"x").await;
        assert_eq!(r[..4], ["MESSAGE", "FAILURE", "t2", "unknown_recipient"]);
        let r = a.call(&["MESSAGE", "bob", "t3", "soon", "eA", "eA"]).await;
        assert_eq!(r[..4], ["MESSAGE", "FAILURE", "t3", "invalid_message"]);
        let r = a.call(&["MESSAGE", "bob"]).await;
        assert_eq!(r[..3], ["MESSAGE", "FAILURE", "invalid_request"]);
        let r = b.call(&["ACK", "bad id!"]).await;
        assert_eq!(r[..4], ["ACK", "FAILURE", "bad id!", "invalid_message"]);

        // Offline: stored, then the backlog right after SESSION, in order.
        drop(b);
        for id in ["o1", "o2"] {
            assert_eq!(
                a.message("bob", id, b"x").await,
                ["MESSAGE", "ACCEPTED", id]
            );
        }
        let mut b = Tcp::session(&srv, &bob).await;
        assert_eq!(b.line().await[..4], ["MESSAGE", "alice", "bob", "o1"]);
        assert_eq!(b.line().await[..4], ["MESSAGE", "alice", "bob", "o2"]);
        assert!(b.line_within(QUIET).await.is_none());
        // LOGOUT on the connection stops deliveries.
        assert_eq!(b.call(&["LOGOUT"]).await, ["LOGOUT", "SUCCESS"]);
        let _ = alice;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_crosses_transports() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let mut a_ws = Ws::connect(&srv, &alice.access).await;
        let mut b_tcp = Tcp::session(&srv, &bob).await;
        let mut b_ws = Ws::connect(&srv, &bob.access).await;
        // WebSocket → TCP (and bob's WebSocket too).
        let body = random(500);
        assert_accepted(&a_ws.send_msg("bob", "x1", &body).await);
        let m = b_tcp.line().await;
        assert_eq!(m[..4], ["MESSAGE", "alice", "bob", "x1"], "{}", db.name);
        assert_eq!(b64::decode(&m[5]).unwrap(), body);
        let w = expect_message(&mut b_ws, "alice", "x1").await;
        assert_eq!(w["sent_at"].as_u64().unwrap().to_string(), m[4]);
        assert_eq!(w["signature"], m[6]);
        // TCP → WebSocket.
        assert_eq!(
            b_tcp.message("alice", "y1", b"hi").await,
            ["MESSAGE", "ACCEPTED", "y1"]
        );
        let w = expect_message(&mut a_ws, "bob", "y1").await;
        assert_eq!(w["to"], "alice");
        // An ack on one transport deletes it for all.
        assert_eq!(b_tcp.call(&["ACK", "x1"]).await, ["ACK", "OK", "x1"]);
        drop((b_tcp, b_ws));
        let mut b = Ws::connect(&srv, &bob.access).await;
        b.quiet().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_does_not_block_the_sender() {
    for db in backends().await {
        let srv = TestServer::start_with(&db, |c| {
            c.send_rate_per_minute = 0;
            c.mailbox_max_messages = 100_000;
        })
        .await;
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        // Bob connects and never reads: his socket buffers fill, then his queue.
        let mut b = Ws::connect(&srv, &bob.access).await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        let body = random(60 * 1024);
        let n = sesame_server::relay::CONNECTION_QUEUE + 300;
        let started = std::time::Instant::now();
        for i in 0..n {
            assert_accepted(&a.send_msg("bob", &format!("s{i}"), &body).await);
        }
        eprintln!("{}: {n} sends in {:?}", db.name, started.elapsed());
        // Bob's connection was dropped by the hub; everything is still stored.
        assert_eq!(
            srv.sesame.relay().hub().connections(bob.id),
            0,
            "{}",
            db.name
        );
        assert_eq!(
            srv.sesame.store().count_messages(bob.id).await.unwrap(),
            n as u64
        );
        assert_eq!(b.closed().await, Some(1013));
        // Reconnecting gets them from the start.
        let mut b = Ws::connect(&srv, &bob.access).await;
        expect_message(&mut b, "alice", "s0").await;
        srv.stop().await;
        db.cleanup().await;
    }
}
