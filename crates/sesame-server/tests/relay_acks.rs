//! Batched acknowledgements of the relay through a real server, on SQLite and PostgreSQL
//! (`SESAME_REQUIRE_SERVICES=1` makes a missing PostgreSQL fail instead of skip): one `ack`
//! frame (WebSocket) or `ACK` line (TCP) with many ids, the single-id form beside it, the
//! limit and its typed error, and ids that are not the caller's.
// The tests play the clients: message timestamps and frame deadlines come from the real
// clock, outside the server under test.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

mod common;

use serde_json::json;
use sesame_proto::b64;
use sesame_proto::e2e::MAX_ACK_IDS;
use uuid::Uuid;

use common::api::err;
use common::on_every_backend;
use common::relay::{user, Tcp, User, Ws};
use common::server::TestServer;

impl Ws {
    /// Sends `ids` to `to` pipelined, then waits for every `accepted`.
    async fn send_all(&mut self, to: &str, ids: &[String]) {
        for id in ids {
            self.send(json!({
                "type": "send", "to": to, "id": id, "sent_at": 1_767_225_600_000u64,
                "ciphertext": b64::encode(id.as_bytes()), "signature": b64::encode([7u8; 64]),
            }))
            .await;
        }
        for _ in ids {
            let v = self.recv().await;
            assert_eq!(v["type"], "accepted", "{v}");
        }
    }

    /// Waits until the acknowledgements sent so far are committed: the writer commits a
    /// connection's writes in order, so the `accepted` of a later send comes after them.
    async fn settle(&mut self) {
        let id = format!("sync-{}", Uuid::new_v4().simple());
        self.send_all("alice", &[id]).await;
    }

    /// Reads `n` deliveries; returns their ids in order.
    async fn deliveries(&mut self, n: usize) -> Vec<String> {
        let mut got = Vec::with_capacity(n);
        while got.len() < n {
            let v = self.recv().await;
            assert_eq!(v["type"], "message", "{v}");
            got.push(v["id"].as_str().unwrap().to_owned());
        }
        got
    }
}

impl Tcp {
    /// Sends a line and returns the next line that is not a delivery.
    async fn answer(&mut self, fields: &[&str]) -> Vec<String> {
        self.send(fields).await;
        loop {
            let answer = self.line().await;
            if !(answer[0] == "MESSAGE" && answer.len() == 7) {
                return answer;
            }
        }
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

async fn count(srv: &TestServer, user: &User) -> u64 {
    srv.sesame.store().count_messages(user.id).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_batched_and_single_acks_delete_only_the_callers_messages() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let carol = user(&srv, "carol").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        let to_bob = ids("b", 40);
        let to_carol = ids("c", 3);
        a.send_all("bob", &to_bob).await;
        a.send_all("carol", &to_carol).await;

        let mut b = Ws::connect(&srv, &bob.session).await;
        assert_eq!(b.deliveries(40).await, to_bob, "{}", db.name);
        // One frame: 30 of bob's ids, carol's ids (not bob's: nothing happens to them) and
        // an id nobody has.
        let mut batch: Vec<String> = to_bob[..30].to_vec();
        batch.extend(to_carol.iter().cloned());
        batch.push("never-sent".into());
        b.send(json!({ "type": "ack", "ids": batch })).await;
        b.settle().await;
        assert_eq!(count(&srv, &bob).await, 10, "{}", db.name);
        assert_eq!(count(&srv, &carol).await, 3, "{}", db.name);
        // The original single-id form still works, and `id` with `ids` counts as one list.
        b.send(json!({ "type": "ack", "id": to_bob[30] })).await;
        b.send(json!({ "type": "ack", "id": to_bob[31], "ids": [to_bob[32], to_bob[33]] }))
            .await;
        b.settle().await;
        assert_eq!(count(&srv, &bob).await, 6, "{}", db.name);
        drop(b);
        // Reconnecting delivers exactly the unacknowledged ones, in order.
        let mut b = Ws::connect(&srv, &bob.access).await;
        assert_eq!(b.deliveries(6).await, to_bob[34..].to_vec(), "{}", db.name);
        b.quiet().await;
        // Carol still gets all of hers.
        let mut c = Ws::connect(&srv, &carol.access).await;
        assert_eq!(c.deliveries(3).await, to_carol, "{}", db.name);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_refused_batches_acknowledge_nothing() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        let waiting = ids("w", 5);
        a.send_all("bob", &waiting).await;
        let mut b = Ws::connect(&srv, &bob.access).await;
        b.deliveries(5).await;

        // One id over the limit, the waiting ones among them: refused whole, no id named.
        let mut over = waiting.clone();
        over.extend(ids("x", MAX_ACK_IDS + 1 - waiting.len()));
        assert_eq!(over.len(), MAX_ACK_IDS + 1);
        b.send(json!({ "type": "ack", "ids": over })).await;
        let e = b.recv().await;
        assert_eq!(e["type"], "error", "{e}");
        assert_eq!(err(&e), "too_many_acks", "{}: {e}", db.name);
        assert!(e.get("id").is_none(), "{e}");
        assert_eq!(count(&srv, &bob).await, 5);

        // A malformed id: refused whole, naming that id.
        let bad = vec![waiting[0].clone(), "bad id!".into(), waiting[1].clone()];
        b.send(json!({ "type": "ack", "ids": bad })).await;
        let e = b.recv().await;
        assert_eq!(err(&e), "invalid_message", "{e}");
        assert_eq!(e["id"], "bad id!", "{e}");
        // No ids at all.
        b.send(json!({ "type": "ack", "ids": [] })).await;
        assert_eq!(err(&b.recv().await), "invalid_message");
        b.quiet().await;
        assert_eq!(count(&srv, &bob).await, 5, "{}", db.name);

        // Exactly the limit is one frame, accepted.
        let mut full = waiting.clone();
        full.extend(ids("y", MAX_ACK_IDS - waiting.len()));
        b.send(json!({ "type": "ack", "ids": full })).await;
        b.settle().await;
        assert_eq!(count(&srv, &bob).await, 0, "{}", db.name);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_ack_lines_carry_many_ids() {
    on_every_backend!(|srv, db| {
        let alice = user(&srv, "alice").await;
        let bob = user(&srv, "bob").await;
        let carol = user(&srv, "carol").await;
        let mut a = Ws::connect(&srv, &alice.access).await;
        let to_bob = ids("t", 8);
        a.send_all("bob", &to_bob).await;
        a.send_all("carol", &["tc-0".to_owned()]).await;
        let mut b = Tcp::session(&srv, &bob).await;

        // Bob's first three and carol's message in one line: only bob's go.
        let line = ["ACK", &to_bob[0], &to_bob[1], &to_bob[2], "tc-0"];
        assert_eq!(
            b.answer(&line).await,
            ["ACK", "OK", &to_bob[0], &to_bob[1], &to_bob[2], "tc-0"],
            "{}",
            db.name
        );
        assert_eq!(count(&srv, &bob).await, 5);
        assert_eq!(count(&srv, &carol).await, 1);
        // The single-id line as before.
        assert_eq!(
            b.answer(&["ACK", &to_bob[3]]).await,
            ["ACK", "OK", &to_bob[3]]
        );
        assert_eq!(count(&srv, &bob).await, 4);

        // Over the limit: refused whole with the typed code and no id.
        let over: Vec<String> = to_bob[4..]
            .iter()
            .cloned()
            .chain(ids("z", MAX_ACK_IDS))
            .collect();
        let mut fields = vec!["ACK"];
        fields.extend(over.iter().map(String::as_str));
        let r = b.answer(&fields).await;
        assert_eq!(
            r[..4],
            ["ACK", "FAILURE", "", "too_many_acks"],
            "{}",
            db.name
        );
        // A malformed id among good ones: refused whole, naming it.
        let r = b.answer(&["ACK", &to_bob[4], "no way", &to_bob[5]]).await;
        assert_eq!(r[..4], ["ACK", "FAILURE", "no way", "invalid_message"]);
        assert_eq!(count(&srv, &bob).await, 4, "{}", db.name);
        let rest: Vec<&str> = ["ACK"]
            .into_iter()
            .chain(to_bob[4..].iter().map(String::as_str))
            .collect();
        assert_eq!(b.answer(&rest).await[..2], ["ACK", "OK"]);
        assert_eq!(count(&srv, &bob).await, 0, "{}", db.name);
        assert_eq!(count(&srv, &carol).await, 1, "{}", db.name);
    });
}
