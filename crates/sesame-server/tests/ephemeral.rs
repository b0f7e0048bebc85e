//! The short-lived state contract ([`Ephemeral`]), run against every implementation:
//! [`MemoryEphemeral`] and [`RedisEphemeral`] on a real Redis.
//!
//! Redis: `redis://127.0.0.1:6379` (override with `SESAME_TEST_REDIS_URL`). When it is
//! unreachable the Redis half is skipped with a loud `*** SKIPPING Redis tests: … ***` line on
//! stderr, unless `SESAME_REQUIRE_SERVICES=1`, which turns it into a panic. Every test uses
//! its own key prefix (`sesame_t:<test>:<uuid>:`), so runs never collide, and deletes its
//! keys at the end; every key is written with a short TTL, so a failed test's keys expire
//! by themselves.
//!
//! Time is what the caller passes in (`now_ms`, the server clock in production): expiry and
//! limiter windows are tested by passing later times, never by sleeping.
// Fail-fast checks against dead or silent Redis servers measure real elapsed time.
#![allow(clippy::disallowed_methods)]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::server::TestServer;
use common::TestDb;
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation};
use sesame_server::ephemeral::{Ephemeral, EphemeralError, MemoryEphemeral, RedisEphemeral};
use sesame_server::limiter::{Backoff, Mode, Rule, Window};
use tokio::net::{TcpListener, TcpStream};

/// The server time the tests start at (milliseconds).
const T0: u64 = 1_767_225_600_000;
/// A short TTL for expiry tests.
const SHORT: Duration = Duration::from_millis(300);
const SHORT_MS: u64 = 300;
/// The TTL of keys that must outlive the test.
const LONG: Duration = Duration::from_secs(60);

/// A fresh prefix for one test: `sesame_t:<test>:<uuid>:`.
fn unique_prefix(test: &str) -> String {
    format!("sesame_t:{test}:{}:", uuid::Uuid::new_v4().simple())
}

/// Two handles on one store, like two nodes: the same instance twice for memory, two
/// separate connections with the same prefix for Redis.
struct Backend {
    name: &'static str,
    a: Arc<dyn Ephemeral>,
    b: Arc<dyn Ephemeral>,
    /// Redis URL and prefix, for inspection and cleanup.
    redis: Option<(String, String)>,
}

impl Backend {
    /// Deletes the test's Redis keys (no-op for memory).
    async fn cleanup(self) {
        if let Some((url, prefix)) = &self.redis {
            delete_prefixed(url, prefix).await;
        }
    }
}

/// Memory, then Redis unless skipped.
async fn backends(test: &str) -> Vec<Backend> {
    let memory: Arc<dyn Ephemeral> = Arc::new(MemoryEphemeral::new());
    let mut list = vec![Backend {
        name: "memory",
        a: memory.clone(),
        b: memory,
        redis: None,
    }];
    if let Some(url) = common::redis_url().await {
        let prefix = unique_prefix(test);
        let a = RedisEphemeral::connect(&url, &prefix).await.unwrap();
        let b = RedisEphemeral::connect(&url, &prefix).await.unwrap();
        list.push(Backend {
            name: "redis",
            a: Arc::new(a),
            b: Arc::new(b),
            redis: Some((url, prefix)),
        });
    }
    list
}

/// Deletes every key under `prefix`.
async fn delete_prefixed(url: &str, prefix: &str) {
    let keys = common::redis_keys_under(url, prefix).await;
    if keys.is_empty() {
        return;
    }
    let mut conn = common::redis_raw(url).await;
    let _: i64 = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(common::redis_keys_under(url, prefix).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_get_and_single_use_take() {
    for be in backends("take").await {
        let (s, n) = (&be.a, be.name);
        assert_eq!(s.get("k", T0).await.unwrap(), None, "{n}");
        assert_eq!(s.take("k", T0).await.unwrap(), None, "{n}");
        s.put("k", b"first", T0, LONG).await.unwrap();
        s.put("k", b"v\x00\xffbinary", T0, LONG).await.unwrap();
        let want = Some(b"v\x00\xffbinary".to_vec());
        assert_eq!(s.get("k", T0).await.unwrap(), want, "{n}: put replaces");
        assert_eq!(
            s.get("k", T0).await.unwrap(),
            want,
            "{n}: get does not remove"
        );
        assert_eq!(
            be.b.get("k", T0).await.unwrap(),
            want,
            "{n}: the other node sees it"
        );
        assert_eq!(s.take("k", T0).await.unwrap(), want, "{n}");
        assert_eq!(
            s.take("k", T0).await.unwrap(),
            None,
            "{n}: take is single-use"
        );
        assert_eq!(be.b.take("k", T0).await.unwrap(), None, "{n}");
        assert_eq!(s.get("k", T0).await.unwrap(), None, "{n}");
        s.ping().await.unwrap();
        be.cleanup().await;
    }
}

/// Expiry is the stored expiry against the caller's clock, to the millisecond; the backend
/// still holds the value (its own time to live only collects garbage).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_expire_by_the_server_clock() {
    for be in backends("expire").await {
        let (s, n) = (&be.a, be.name);
        s.put("k", b"v", T0, SHORT).await.unwrap();
        s.put("t", b"v", T0, SHORT).await.unwrap();
        let last = T0 + SHORT_MS - 1;
        assert!(s.get("k", last).await.unwrap().is_some(), "{n}");
        assert!(be.b.get("k", last).await.unwrap().is_some(), "{n}");
        assert_eq!(s.get("k", T0 + SHORT_MS).await.unwrap(), None, "{n}");
        assert_eq!(s.take("t", T0 + SHORT_MS).await.unwrap(), None, "{n}");
        assert_eq!(
            be.b.take("t", T0).await.unwrap(),
            None,
            "{n}: a take of a dead value removes it"
        );
        if let Some((url, prefix)) = &be.redis {
            let pttl: i64 = redis::cmd("PTTL")
                .arg(format!("{prefix}k"))
                .query_async(&mut common::redis_raw(url).await)
                .await
                .unwrap();
            assert!(
                pttl > 60_000,
                "{n}: garbage collection waits past the grace: {pttl}"
            );
        }
        be.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_nx_sets_once_until_expiry() {
    for be in backends("set_nx").await {
        let (s, n) = (&be.a, be.name);
        assert!(s.set_nx("g", b"1", T0, SHORT).await.unwrap(), "{n}");
        assert!(!s.set_nx("g", b"2", T0, SHORT).await.unwrap(), "{n}");
        let last = T0 + SHORT_MS - 1;
        assert!(!be.b.set_nx("g", b"3", last, SHORT).await.unwrap(), "{n}");
        assert_eq!(
            s.get("g", T0).await.unwrap().as_deref(),
            Some(&b"1"[..]),
            "{n}"
        );
        let later = T0 + SHORT_MS;
        assert!(
            s.set_nx("g", b"4", later, LONG).await.unwrap(),
            "{n}: free again"
        );
        assert_eq!(
            s.get("g", later).await.unwrap().as_deref(),
            Some(&b"4"[..]),
            "{n}"
        );
        be.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_removes_values_and_limits() {
    let rule = Rule::fixed(1, LONG);
    for be in backends("delete").await {
        let (s, n) = (&be.a, be.name);
        s.put("k", b"v", T0, LONG).await.unwrap();
        assert!(
            s.hit("c", &rule, T0, Mode::Check).await.unwrap().allowed,
            "{n}"
        );
        assert!(
            !s.hit("c", &rule, T0, Mode::Check).await.unwrap().allowed,
            "{n}"
        );
        be.b.delete("k").await.unwrap();
        be.b.delete("c").await.unwrap();
        be.b.delete("never-there").await.unwrap();
        assert_eq!(s.get("k", T0).await.unwrap(), None, "{n}");
        assert!(
            s.hit("c", &rule, T0, Mode::Check).await.unwrap().allowed,
            "{n}: a deleted limit restarts"
        );
        be.cleanup().await;
    }
}

/// The limiter on each backend, driven by the clock passed in: a fixed window refuses past
/// its limit with the time left and rolls over; an idle window with doubling delays lets
/// one hit through per gate; recorded failures close gates without being refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limiter_follows_the_clock_on_every_backend() {
    let fixed = Rule::fixed(3, Duration::from_secs(60));
    let doubling = Rule {
        limit: u64::MAX,
        window: Duration::from_secs(3600),
        kind: Window::Idle,
        backoff: Some(Backoff {
            free: 1,
            first: Duration::from_secs(1),
            doubling: true,
            max: Duration::from_secs(900),
        }),
    };
    for be in backends("limiter").await {
        let n = be.name;
        let hit = |node: &Arc<dyn Ephemeral>, key: &'static str, rule: Rule, at: u64, mode| {
            let node = node.clone();
            async move { node.hit(key, &rule, at, mode).await.unwrap() }
        };
        for (i, node) in [&be.a, &be.b, &be.a].into_iter().enumerate() {
            let v = hit(node, "f", fixed, T0 + 10, Mode::Check).await;
            assert!(v.allowed && v.count == i as u64 + 1, "{n}: {v:?}");
        }
        let v = hit(&be.b, "f", fixed, T0 + 30_000, Mode::Check).await;
        assert_eq!(
            (v.allowed, v.retry_after),
            (false, Duration::from_millis(30_010)),
            "{n}"
        );
        let v = hit(&be.a, "f", fixed, T0 + 60_010, Mode::Check).await;
        assert!(
            v.allowed && v.count == 1,
            "{n}: the window rolled over: {v:?}"
        );

        assert!(
            hit(&be.a, "d", doubling, T0, Mode::Check).await.allowed,
            "{n}"
        );
        assert!(
            hit(&be.b, "d", doubling, T0, Mode::Check).await.allowed,
            "{n}: closes 1 s"
        );
        let v = hit(&be.a, "d", doubling, T0 + 400, Mode::Check).await;
        assert_eq!(
            (v.allowed, v.retry_after),
            (false, Duration::from_millis(600)),
            "{n}"
        );
        let v = hit(&be.b, "d", doubling, T0 + 1_000, Mode::Record).await;
        assert!(v.allowed && v.count == 3, "{n}: recorded: {v:?}");
        let v = hit(&be.a, "d", doubling, T0 + 1_000, Mode::Check).await;
        assert_eq!(
            v.retry_after,
            Duration::from_secs(2),
            "{n}: the record closed 2 s"
        );
        let v = hit(&be.a, "d", doubling, T0 + 3_000, Mode::Check).await;
        assert!(v.allowed && v.count == 4, "{n}: {v:?}");
        let v = hit(&be.b, "d", doubling, T0 + 3_001, Mode::Check).await;
        assert_eq!(v.retry_after, Duration::from_millis(3_999), "{n}: then 4 s");
        let later = T0 + 3_000 + 3_600_000;
        let v = hit(&be.b, "d", doubling, later, Mode::Check).await;
        assert!(
            v.allowed && v.count == 1,
            "{n}: forgotten after an idle hour: {v:?}"
        );
        be.cleanup().await;
    }
}

/// 200 concurrent hits on one key through three independent handles (three connections for
/// Redis, like three nodes) let exactly the limit through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_hits_on_three_nodes_let_exactly_the_limit_through() {
    const LIMIT: u64 = 37;
    let rule = Rule::fixed(LIMIT, LONG);
    for be in backends("limit3").await {
        let n = be.name;
        let third: Arc<dyn Ephemeral> = match &be.redis {
            Some((url, prefix)) => Arc::new(RedisEphemeral::connect(url, prefix).await.unwrap()),
            None => be.a.clone(),
        };
        let nodes = [be.a.clone(), be.b.clone(), third];
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let node = nodes[i % 3].clone();
                tokio::spawn(async move { node.hit("k", &rule, T0, Mode::Check).await.unwrap() })
            })
            .collect();
        let mut allowed = 0;
        let mut counts = Vec::new();
        for t in tasks {
            let v = t.await.unwrap();
            if v.allowed {
                allowed += 1;
                counts.push(v.count);
            }
        }
        counts.sort_unstable();
        assert_eq!(allowed, LIMIT, "{n}");
        assert_eq!(counts, (1..=LIMIT).collect::<Vec<_>>(), "{n}");
        be.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_takes_on_two_nodes_are_atomic() {
    for be in backends("parallel").await {
        let n = be.name;
        be.a.put("once", b"x", T0, LONG).await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..50 {
            let s = if i % 2 == 0 {
                be.a.clone()
            } else {
                be.b.clone()
            };
            tasks.push(tokio::spawn(
                async move { s.take("once", T0).await.unwrap() },
            ));
        }
        let mut winners = 0;
        for t in tasks {
            if let Some(v) = t.await.unwrap() {
                assert_eq!(v, b"x", "{n}");
                winners += 1;
            }
        }
        assert_eq!(winners, 1, "{n}: exactly one take wins");
        be.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_carry_the_prefix() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let prefix = unique_prefix("prefix");
    let other = unique_prefix("prefix");
    let s = RedisEphemeral::connect(&url, &prefix).await.unwrap();
    let t = RedisEphemeral::connect(&url, &other).await.unwrap();
    assert_eq!(s.key_prefix(), prefix);
    s.put("k", b"v", T0, LONG).await.unwrap();
    assert_eq!(
        t.get("k", T0).await.unwrap(),
        None,
        "another prefix is another store"
    );
    let mut conn = common::redis_raw(&url).await;
    let stored: Option<Vec<u8>> = redis::cmd("GET")
        .arg(format!("{prefix}k"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let want = format!("{:020}v", T0 + 60_000);
    assert_eq!(
        stored.as_deref(),
        Some(want.as_bytes()),
        "stamped with its expiry"
    );
    let pttl: i64 = redis::cmd("PTTL")
        .arg(format!("{prefix}k"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(pttl > 60_000 && pttl <= 120_000, "{pttl}");
    assert_eq!(common::redis_keys_under(&url, &prefix).await.len(), 1);
    delete_prefixed(&url, &prefix).await;
    delete_prefixed(&url, &other).await;
}

/// A value written by someone else (no expiry stamp) reads as absent and `set_nx` may
/// replace it; a limiter replaces a key of another type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_values_without_a_stamp_count_as_absent() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let prefix = unique_prefix("foreign");
    let s = RedisEphemeral::connect(&url, &prefix).await.unwrap();
    let mut conn = common::redis_raw(&url).await;
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}foreign"))
        .arg("7")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(s.get("foreign", T0).await.unwrap(), None);
    assert!(s.set_nx("foreign", b"mine", T0, LONG).await.unwrap());
    assert_eq!(
        s.take("foreign", T0).await.unwrap().as_deref(),
        Some(&b"mine"[..])
    );
    // A plain counter (as older versions kept limits) under a limiter key starts it afresh.
    let _: () = redis::cmd("SET")
        .arg(format!("{prefix}counter"))
        .arg("99")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut conn)
        .await
        .unwrap();
    let v = s
        .hit("counter", &Rule::fixed(2, LONG), T0, Mode::Check)
        .await;
    assert_eq!(v.unwrap().count, 1);
    delete_prefixed(&url, &prefix).await;
}

fn assert_unavailable<T: std::fmt::Debug>(r: Result<T, EphemeralError>, what: &str) {
    match r {
        Err(EphemeralError::Unavailable(msg)) => assert!(msg.contains("redis"), "{what}: {msg}"),
        other => panic!("{what}: expected Unavailable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_redis_fails_fast() {
    let started = Instant::now();
    assert_unavailable(
        RedisEphemeral::connect("redis://127.0.0.1:1", "sesame_t:x:").await,
        "closed port",
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_unavailable(
        RedisEphemeral::connect("http://not-redis", "sesame_t:x:").await,
        "bad URL",
    );
    // A password never shows in the message.
    match RedisEphemeral::connect("redis://u:hunter2@127.0.0.1:1", "sesame_t:x:").await {
        Err(EphemeralError::Unavailable(msg)) => assert!(!msg.contains("hunter2"), "{msg}"),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

/// Something that accepts connections and never answers (a hung Redis): connecting gives
/// up after the timeout instead of hanging.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_redis_fails_fast() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            sockets.push(socket);
        }
    });
    let started = Instant::now();
    assert_unavailable(
        RedisEphemeral::connect(&format!("redis://{addr}"), "sesame_t:x:").await,
        "silent server",
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    held.abort();
}

/// A loopback TCP proxy in front of Redis that can cut its connections and go silent (a
/// crashed or hung Redis), then come back (a restarted one).
struct Proxy {
    addr: SocketAddr,
    silent: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let silent = Arc::new(AtomicBool::new(false));
        let links: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>> = Arc::default();
        let (s, l) = (silent.clone(), links.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let silent = s.load(Ordering::SeqCst);
                let link = tokio::spawn(async move {
                    if silent {
                        // Hold the socket, answer nothing.
                        std::future::pending::<()>().await;
                    }
                    if let Ok(mut server) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l.lock().unwrap().push(link);
            }
        });
        Proxy {
            addr,
            silent,
            links,
            accept,
        }
    }

    /// Drops every open connection; new ones get no answer while `silent`.
    fn cut(&self, silent: bool) {
        self.silent.store(silent, Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut(false);
        self.accept.abort();
    }
}

/// The address of a `redis://host:port[/…]` URL.
fn socket_addr(url: &str) -> Option<SocketAddr> {
    let rest = url.strip_prefix("redis://")?;
    let authority = rest.split('/').next()?;
    let hostport = authority.rsplit('@').next()?;
    let hostport = hostport.replace("localhost", "127.0.0.1");
    if hostport.contains(':') {
        hostport.parse().ok()
    } else {
        format!("{hostport}:6379").parse().ok()
    }
}

/// A connected store whose Redis dies answers `Unavailable` within the timeout, not a hang,
/// and works again, without a restart, once Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_fails_fast_and_recovers() {
    let Some(url) = common::redis_url().await else {
        return;
    };
    let Some(upstream) = socket_addr(&url) else {
        eprintln!("outage test needs a plain redis://host:port URL, not {url}; skipped");
        return;
    };
    let proxy = Proxy::start(upstream).await;
    let prefix = unique_prefix("outage");
    let s = RedisEphemeral::connect(&format!("redis://{}", proxy.addr), &prefix)
        .await
        .unwrap();
    s.put("k", b"v", T0, LONG).await.unwrap();

    // Hung Redis: the connection drops and reconnecting gets no answer.
    proxy.cut(true);
    for op in 0..3 {
        let started = Instant::now();
        assert_unavailable(s.get("k", T0).await, &format!("op {op} during the outage"));
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "op {op}: {:?}",
            started.elapsed()
        );
    }

    // Back: the same store reconnects by itself.
    proxy.cut(false);
    let deadline = Instant::now() + Duration::from_secs(15);
    let got = loop {
        match s.get("k", T0).await {
            Ok(v) => break v,
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet reconnected: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("no reconnection within 15 s: {e}"),
        }
    };
    assert_eq!(got.as_deref(), Some(&b"v"[..]));
    let v = s.hit("c", &Rule::fixed(1, LONG), T0, Mode::Check).await;
    assert!(v.unwrap().allowed);
    delete_prefixed(&url, &prefix).await;
}

/// The build refuses an unreachable `redis_url` quickly instead of starting a server that
/// would fail every login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_build_fails_fast_on_an_unreachable_redis() {
    let db = TestDb::sqlite();
    let data = tempfile::tempdir().unwrap();
    let mut config = common::server::test_config(&db, data.path());
    config.redis_url = Some("redis://127.0.0.1:1".into());
    let (store, master) = sesame_server::server::open(&config).await.unwrap();
    let started = Instant::now();
    let built = sesame_server::server::build(&config, store.clone(), &master).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match built {
        Err(sesame_server::server::ServeError::Ephemeral(EphemeralError::Unavailable(_))) => {}
        Err(e) => panic!("expected an Ephemeral error, got {e}"),
        Ok(_) => panic!("built a server on an unreachable Redis"),
    }
    store.close().await;
}

async fn post(c: &Client, base: &str, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = c
        .post(format!("{base}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Two server nodes on one database and one Redis: registration and password login work,
/// and an OPAQUE login started on one node finishes on the other (the login state lives in
/// Redis), exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_share_login_state_through_redis() {
    const PASSWORD: &str = "correct horse battery staple";
    let Some(url) = common::redis_url().await else {
        return;
    };
    let db = TestDb::sqlite();
    let node_a = TestServer::start_with(&db, |c| c.redis_url = Some(url.clone())).await;
    let node_b = TestServer::start_with(&db, |c| c.redis_url = Some(url.clone())).await;
    let c = Client::new();
    let user = format!("redis-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);

    let (s, b) = post(
        &c,
        &node_a.base,
        "/api/register",
        json!({"username": user, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, StatusCode::CREATED, "{b}");
    let user_id = b["user_id"].as_str().unwrap().to_owned();

    // A wrong password counts against the account (a Redis counter); the right one works
    // on the other node and resets it.
    let (s, b) = post(
        &c,
        &node_a.base,
        "/api/login",
        json!({"username": user, "password": "not the password"}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{b}");
    let (s, b) = post(
        &c,
        &node_b.base,
        "/api/login",
        json!({"username": user, "password": PASSWORD}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["uuid"], user_id.as_str());

    // OPAQUE: start on A, finish on B.
    let mut rng = ChaCha20Rng::from_entropy();
    let (state, start) = client::start_login(&mut rng, &user, PASSWORD).unwrap();
    let (s, b) = post(
        &c,
        &node_a.base,
        "/api/login/start",
        serde_json::to_value(&start).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let challenge: LoginChallenge = serde_json::from_value(b).unwrap();
    let done = state
        .finish(&mut rng, &challenge, &ClientPolicy::default())
        .unwrap();
    let finish = serde_json::to_value(&done.message).unwrap();
    let (s, b) = post(&c, &node_b.base, "/api/login/finish", finish.clone()).await;
    assert_eq!(s, StatusCode::OK, "a login started on A finishes on B: {b}");
    let confirmation: LoginConfirmation = serde_json::from_value(b).unwrap();
    let session: Value =
        serde_json::from_slice(&done.confirmation.open(&confirmation).unwrap()).unwrap();
    assert!(session["access_token"].is_string(), "{session}");
    // The login state was taken: replaying the finish fails on either node.
    for node in [&node_a, &node_b] {
        let (s, b) = post(&c, &node.base, "/api/login/finish", finish.clone()).await;
        assert_ne!(s, StatusCode::OK, "a replayed finish must fail: {b}");
    }

    node_a.stop().await;
    node_b.stop().await;
}

/// Three server nodes on one Redis share the per-address limit: 200 concurrent requests
/// from one address, spread over the nodes, get exactly the configured number through.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_one_rate_limit_through_redis() {
    const LIMIT: u64 = 50;
    let Some(url) = common::redis_url().await else {
        return;
    };
    let db = TestDb::sqlite();
    let prefix = unique_prefix("nodes3");
    let mut nodes = Vec::new();
    for _ in 0..3 {
        let node = TestServer::start_with(&db, |c| {
            c.redis_url = Some(url.clone());
            c.redis_key_prefix = prefix.clone();
            c.throttle_per_address = LIMIT;
            c.throttle_address_window = 600;
        })
        .await;
        nodes.push(node);
    }
    let c = Client::new();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (c, base) = (c.clone(), nodes[i % 3].base.clone());
            tokio::spawn(async move {
                let body = json!({"username": "nobody-here", "code": "123456"});
                post(&c, &base, "/api/verify-email", body).await
            })
        })
        .collect();
    let (mut through, mut limited) = (0, 0);
    for t in tasks {
        let (s, b) = t.await.unwrap();
        match s {
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            StatusCode::BAD_REQUEST => {
                assert_eq!(b["error"]["code"], "code_expired", "{b}");
                through += 1;
            }
            other => panic!("unexpected {other}: {b}"),
        }
    }
    assert_eq!((through, limited), (LIMIT, 200 - LIMIT));
    for node in nodes {
        node.stop().await;
    }
    delete_prefixed(&url, &prefix).await;
}
