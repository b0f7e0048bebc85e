//! What a shared Redis holds: never a username in clear, neither in a key nor in a value
//! (docs/security.md, "Short-lived state"). The database keeps usernames only as a keyed
//! index plus a ciphertext; the short-lived store keeps the same rule.
//!
//! Runs against the real Redis at `redis://127.0.0.1:6379` (override with
//! `SESAME_TEST_REDIS_URL`); skipped loudly when it is unreachable, unless
//! `SESAME_REQUIRE_SERVICES=1`. Each run uses its own key prefix and deletes its keys.

mod common;

use common::api::{self, post, PASSWORD};
use common::server::TestServer;
use common::TestDb;
use redis::aio::MultiplexedConnection;
use reqwest::{Client, StatusCode};
use serde_json::json;

/// Every byte string stored under `key`: the value of a string, the fields and values of a
/// hash.
async fn contents(conn: &mut MultiplexedConnection, key: &[u8]) -> Vec<Vec<u8>> {
    let kind: String = redis::cmd("TYPE").arg(key).query_async(conn).await.unwrap();
    match kind.as_str() {
        "string" => {
            let v: Option<Vec<u8>> = redis::cmd("GET").arg(key).query_async(conn).await.unwrap();
            v.into_iter().collect()
        }
        "hash" => redis::cmd("HGETALL")
            .arg(key)
            .query_async(conn)
            .await
            .unwrap(),
        "none" => Vec::new(),
        other => panic!("unexpected Redis type {other} under {key:?}"),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Login start (OPAQUE), a password login, a wrong password and recovery start leave login
/// states, recovery states and counters in Redis: none of them shows the username.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_never_holds_a_username_in_clear() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let prefix = format!("sesame_t:contents:{}:", uuid::Uuid::new_v4().simple());
    let db = TestDb::sqlite();
    let srv = TestServer::start_with(&db, |c| {
        c.redis_url = Some(url.clone());
        c.redis_key_prefix = prefix.clone();
    })
    .await;
    let c = Client::new();
    let known = api::username("redisname");
    let unknown = api::username("nobodyname");
    api::register(&c, &srv, &known).await;

    for name in [&known, &unknown] {
        let (_, status, body) = api::login_start(&c, &srv, name, PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "login start {name}: {body}");
        let (status, body) = api::login(&c, &srv, name, "not the password at all").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        let (status, body) = post(&c, &srv, "/api/recover/start", json!({"username": name})).await;
        assert_eq!(status, StatusCode::OK, "recover start {name}: {body}");
    }

    let mut conn = common::redis_raw(&url).await;
    let keys = common::redis_keys_under(&url, &prefix).await;
    let kind = |k: &Vec<u8>, head: &str| k[prefix.len()..].starts_with(head.as_bytes());
    let login_states = keys.iter().filter(|k| kind(k, "login:")).count();
    let recoveries = keys.iter().filter(|k| kind(k, "recover:")).count();
    assert_eq!(login_states, 2, "one login state per login start");
    assert_eq!(recoveries, 2, "one recovery state per recovery start");
    for key in &keys {
        let mut stored = contents(&mut conn, key).await;
        stored.push(key.clone());
        for bytes in &stored {
            for name in [&known, &unknown] {
                assert!(
                    !contains(bytes, name.as_bytes()),
                    "{name} in clear under {}: {}",
                    String::from_utf8_lossy(key),
                    String::from_utf8_lossy(bytes)
                );
            }
        }
    }

    // The sealed states still work: the known user logs in with OPAQUE through Redis.
    let payload = api::opaque_login(&c, &srv, &known, PASSWORD).await;
    assert!(payload["access_token"].is_string(), "{payload}");

    if !keys.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(common::redis_keys_under(&url, &prefix).await)
            .query_async(&mut conn)
            .await
            .unwrap();
    }
    srv.stop().await;
    db.cleanup().await;
}
