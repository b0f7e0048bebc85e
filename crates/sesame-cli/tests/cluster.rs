//! A cluster of real `sesame serve` processes on loopback ports, sharing this machine's
//! PostgreSQL and Redis: logins that span nodes, the shared throttle, cross-node message
//! delivery, a node killed with SIGKILL mid-traffic, and a Redis outage.
//!
//! Services: PostgreSQL at `postgres://postgres@127.0.0.1:5432/test` (override with
//! `SESAME_TEST_POSTGRES_URL`) and Redis at `redis://127.0.0.1:6379` (override with
//! `SESAME_TEST_REDIS_URL`). When either is unreachable the tests are skipped with a loud
//! `*** SKIPPING cluster tests: … ***` line on stderr, unless `SESAME_REQUIRE_SERVICES=1`,
//! which turns it into a panic. The Redis outage test runs its own `redis-server` on a free
//! port (never touching the shared one).
//!
//! Each cluster gets a fresh schema `sesame_t_<unix secs>_<hex>` (dropped at the end, and by
//! the sesame-server tests' sweep of stale schemas if a run is killed) and a fresh Redis key
//! prefix `sesame_t:cluster:<hex>:` (deleted at the end; every key has a TTL anyway). A failed
//! test prints each node's log.

// Bounds on waits for sockets and processes: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{sesame_command, stdout_lines, unix_now, Process, LISTENING, PASSWORD};
use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation};
use sqlx::{Connection as _, PgConnection};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

/// Every node of a cluster uses this master key.
const MASTER_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const REQUIRE_SERVICES_ENV: &str = "SESAME_REQUIRE_SERVICES";
/// How long a node may take to report its address.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// "Live" delivery: a message must reach a connection on another node within this.
const LIVE: Duration = Duration::from_secs(2);
/// A connection re-reads its mailbox at least this often (the server's `SAFETY_POLL`), plus
/// a tick and some slack.
const SAFETY_POLL_BOUND: Duration = Duration::from_secs(13);

// ---------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// Writes to the real stderr, past the harness's capture, once per process.
fn skip_notice(line: &str) {
    static SHOWN: OnceLock<()> = OnceLock::new();
    SHOWN.get_or_init(|| {
        let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
    });
}

/// Skips (`None`) or panics, as `SESAME_REQUIRE_SERVICES` says.
fn unavailable(what: &str) -> Option<Services> {
    if std::env::var(REQUIRE_SERVICES_ENV).as_deref() == Ok("1") {
        panic!("{what} ({REQUIRE_SERVICES_ENV}=1 requires it)");
    }
    skip_notice(&format!(
        "SKIPPING cluster tests: {what} (set {REQUIRE_SERVICES_ENV}=1 to fail instead)"
    ));
    None
}

#[derive(Clone)]
struct Services {
    postgres: String,
    redis: String,
}

/// PostgreSQL and Redis, if both answer.
async fn services() -> Option<Services> {
    let postgres = env_or("SESAME_TEST_POSTGRES_URL", DEFAULT_POSTGRES_URL);
    let redis = env_or("SESAME_TEST_REDIS_URL", DEFAULT_REDIS_URL);
    let probe = tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&postgres));
    match probe.await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
        }
        Ok(Err(e)) => return unavailable(&format!("PostgreSQL unreachable: {e}")),
        Err(_) => return unavailable("PostgreSQL does not answer"),
    }
    if let Err(e) = redis_ping(&redis).await {
        return unavailable(&format!("Redis unreachable at {redis}: {e}"));
    }
    Some(Services { postgres, redis })
}

async fn redis_conn(url: &str) -> redis::RedisResult<redis::aio::MultiplexedConnection> {
    redis::Client::open(url)?
        .get_multiplexed_async_connection()
        .await
}

async fn redis_ping(url: &str) -> Result<(), String> {
    let ping = async {
        let mut conn = redis_conn(url).await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(2), ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer".into()),
    }
}

/// A private `redis-server` on a free loopback port, killed when dropped.
struct PrivateRedis {
    port: u16,
    child: Process,
}

impl PrivateRedis {
    /// Starts one, or `None` (skip or panic) if `redis-server` cannot run here.
    async fn start() -> Option<PrivateRedis> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut redis = PrivateRedis {
            port,
            child: Process(None),
        };
        match redis.resume().await {
            Ok(()) => Some(redis),
            Err(e) => {
                unavailable(&format!("cannot run a private redis-server: {e}"));
                None
            }
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on its port and waits until it answers.
    async fn resume(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("redis-server: {e}"))?;
        self.child = Process(Some(child));
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match redis_ping(&self.url()).await {
                Ok(()) => return Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    }

    /// Kills the server (SIGKILL: a crash, not a shutdown).
    fn kill(&mut self) {
        self.child.kill();
    }
}

// ---------------------------------------------------------------------------------------
// Nodes
// ---------------------------------------------------------------------------------------

/// One `sesame serve` process.
struct Node {
    name: String,
    child: Process,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Its cluster node id (`sesame: cluster node …`).
    id: Uuid,
    log: PathBuf,
}

impl Node {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn ws_url(&self) -> String {
        format!("{}/ws", self.base.replacen("http://", "ws://", 1))
    }

    /// SIGTERM, then waits for the process to exit (at most 15 s, then SIGKILL).
    fn terminate(&mut self) {
        let Some(child) = &mut self.child.0 else {
            return;
        };
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                assert!(status.success(), "{} exited with {status}", self.name);
                self.child = Process(None);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not stop within 15 s of SIGTERM", self.name);
    }

    /// SIGKILL: no shutdown, no cleanup.
    fn kill(&mut self) {
        self.child.kill();
    }
}

/// Several nodes on one fresh schema and one fresh key prefix.
struct Cluster {
    nodes: Vec<Node>,
    postgres: String,
    redis: String,
    schema: String,
    prefix: String,
    dir: tempfile::TempDir,
    cleaned: bool,
    /// More `SESAME_*` settings for every node.
    env: Vec<(String, String)>,
}

impl Cluster {
    /// Starts `n` nodes on `redis` (the shared one, or a private one).
    async fn start(services: &Services, redis: &str, n: usize) -> Cluster {
        Cluster::start_with(services, redis, n, &[]).await
    }

    /// Starts `n` nodes on `redis` with more `SESAME_*` settings.
    async fn start_with(
        services: &Services,
        redis: &str,
        n: usize,
        env: &[(&str, &str)],
    ) -> Cluster {
        let hex = Uuid::new_v4().simple().to_string();
        let mut cluster = Cluster {
            nodes: Vec::new(),
            postgres: services.postgres.clone(),
            redis: redis.to_owned(),
            schema: format!("sesame_t_{}_{hex}", unix_now()),
            prefix: format!("sesame_t:cluster:{hex}:"),
            dir: tempfile::tempdir().unwrap(),
            cleaned: false,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        // The first node creates the schema, the tables and the server secrets; the others
        // start together once it is up.
        let names: Vec<String> = (0..n)
            .map(|i| format!("node{}", (b'a' + i as u8) as char))
            .collect();
        let first = tokio::task::block_in_place(|| cluster.spawn(&names[0]));
        cluster.nodes.push(first);
        let rest: Vec<Node> = tokio::task::block_in_place(|| {
            std::thread::scope(|s| {
                let handles: Vec<_> = names[1..]
                    .iter()
                    .map(|name| {
                        let c = &cluster;
                        s.spawn(move || c.spawn(name))
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            })
        });
        cluster.nodes.extend(rest);
        cluster
    }

    /// Prints every node's log (stderr).
    fn print_logs(&self) {
        for node in &self.nodes {
            let log = std::fs::read_to_string(&node.log).unwrap_or_default();
            eprintln!("----- {} ({}) log -----\n{log}", node.name, node.id);
        }
    }

    /// Starts one node and waits for its address.
    fn spawn(&self, name: &str) -> Node {
        let data = self.dir.path().join(name);
        let log = self.dir.path().join(format!("{name}.log"));
        let mut cmd = sesame_command();
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data)
            .env("SESAME_DATABASE_URL", &self.postgres)
            .env("SESAME_DATABASE_SCHEMA", &self.schema)
            .env("SESAME_DATABASE_MAX_CONNECTIONS", "5")
            .env("SESAME_REDIS_URL", &self.redis)
            .env("SESAME_REDIS_KEY_PREFIX", &self.prefix)
            .env("SESAME_MASTER_KEY", MASTER_KEY)
            // Every test client is 127.0.0.1, and the SIGKILL test sends as fast as it can.
            .env("SESAME_THROTTLE_PER_ADDRESS", "0")
            .env("SESAME_SEND_RATE_PER_MINUTE", "0")
            .env("RUST_LOG", "info,sqlx=warn")
            // Last, so a test's own settings win over the defaults above.
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap());
        let mut child = cmd.spawn().expect("spawn sesame serve");
        let rx = stdout_lines(&mut child);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut id = None;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "{name} did not report its address; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            };
            if let Some(rest) = line.strip_prefix("sesame: cluster node ") {
                id = rest.split_whitespace().next().and_then(|s| s.parse().ok());
            }
            if let Some(url) = line.strip_prefix(LISTENING) {
                return Node {
                    name: name.to_owned(),
                    child: Process(Some(child)),
                    base: url.trim().to_owned(),
                    id: id.expect("a `sesame: cluster node` line before the address"),
                    log,
                };
            }
        }
    }

    /// Stops the nodes, drops the schema and deletes the Redis keys.
    async fn cleanup(mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if std::env::var("SESAME_TEST_SHOW_LOGS").as_deref() == Ok("1") {
            self.print_logs();
        }
        self.cleaned = true;
        drop_schema(&self.postgres, &self.schema).await;
        delete_prefixed(&self.redis, &self.prefix).await;
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        if std::thread::panicking() {
            self.print_logs();
        }
        if self.cleaned {
            return;
        }
        // A failed test: drop the schema from a helper thread (Drop cannot await).
        let (url, schema) = (self.postgres.clone(), self.schema.clone());
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), drop_schema(&url, &schema)).await
                })
                .ok()
        });
        let _ = worker.join();
    }
}

async fn drop_schema(url: &str, schema: &str) {
    assert!(
        schema.starts_with("sesame_t_")
            && schema
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "refusing to drop schema {schema:?}"
    );
    let drop = async {
        let mut conn = PgConnection::connect(url).await?;
        sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .execute(&mut conn)
            .await?;
        conn.close().await
    };
    if let Err(e) = drop.await {
        eprintln!("warning: could not drop test schema {schema}: {e}");
    }
}

/// Deletes the keys under `prefix` (best effort; they all expire anyway).
async fn delete_prefixed(url: &str, prefix: &str) {
    let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(2), redis_conn(url)).await
    else {
        return;
    };
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(500)
            .query_async::<(u64, Vec<String>)>(&mut conn)
            .await
        else {
            return;
        };
        if !keys.is_empty() {
            let _ = redis::cmd("DEL")
                .arg(&keys)
                .query_async::<i64>(&mut conn)
                .await;
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

// ---------------------------------------------------------------------------------------
// HTTP and WebSocket clients
// ---------------------------------------------------------------------------------------

async fn post(c: &Client, url: String, body: &Value) -> (StatusCode, Value) {
    let resp = c.post(url).json(body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// A logged-in user.
struct User {
    name: String,
    id: Uuid,
    access: String,
}

/// A fresh user name (the schema is fresh too; this keeps logs readable).
fn name(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..6])
}

async fn register(c: &Client, node: &Node, name: &str) -> Uuid {
    let body = json!({ "username": name, "password": PASSWORD });
    let (s, b) = post(c, node.url("/api/register"), &body).await;
    assert_eq!(
        s,
        StatusCode::CREATED,
        "register {name} on {}: {b}",
        node.name
    );
    b["user_id"].as_str().unwrap().parse().unwrap()
}

async fn login(c: &Client, node: &Node, name: &str) -> User {
    let body = json!({ "username": name, "password": PASSWORD });
    let (s, b) = post(c, node.url("/api/login"), &body).await;
    assert_eq!(s, StatusCode::OK, "login {name} on {}: {b}", node.name);
    User {
        name: name.to_owned(),
        id: b["user_id"].as_str().unwrap().parse().unwrap(),
        access: b["access_token"].as_str().unwrap().to_owned(),
    }
}

async fn user(c: &Client, node: &Node, prefix: &str) -> User {
    let name = name(prefix);
    register(c, node, &name).await;
    login(c, node, &name).await
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A relay connection.
struct Ws(Socket);

impl Ws {
    async fn connect(node: &Node, who: &User) -> Ws {
        let mut req = node.ws_url().into_client_request().unwrap();
        req.headers_mut().insert(
            "authorization",
            format!("Bearer {}", who.access).parse().unwrap(),
        );
        // No Nagle: an ack and a send written back to back must not wait for a TCP ack.
        let (ws, resp) = tokio_tungstenite::connect_async_with_config(req, None, true)
            .await
            .unwrap_or_else(|e| panic!("connect {}/ws: {e}", node.name));
        assert_eq!(resp.status(), 101);
        Ws(ws)
    }

    async fn send(&mut self, v: Value) {
        self.0
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame within `wait`; `None` on timeout or when the connection ends.
    async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.0.next())
                .await
                .ok()?
            {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                _ => return None,
            }
        }
    }

    /// The next `message` frame within `wait` (other frames are skipped); acknowledged.
    async fn message_within(&mut self, wait: Duration) -> Option<Value> {
        let v = self.unacknowledged_within(wait).await?;
        self.send(json!({ "type": "ack", "id": v["id"] })).await;
        Some(v)
    }

    /// The next `message` frame within `wait` (other frames are skipped); not acknowledged.
    async fn unacknowledged_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self.recv_within(left).await?;
            if v["type"] == "message" {
                return Some(v);
            }
        }
    }

    /// Waits until this connection's subscription is running: a message to oneself is
    /// accepted and comes back (from the backlog or live), so the backlog read is over.
    async fn until_live(&mut self, me: &User) {
        let id = format!("probe-{}", Uuid::new_v4().simple());
        self.send(send_frame(&me.name, &id)).await;
        let (mut accepted, mut delivered) = (false, false);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !(accepted && delivered) {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let v = self
                .recv_within(left)
                .await
                .unwrap_or_else(|| panic!("the probe {id} did not come back"));
            match v["type"].as_str() {
                Some("accepted") if v["id"] == id.as_str() => accepted = true,
                Some("message") if v["id"] == id.as_str() => {
                    self.send(json!({ "type": "ack", "id": id })).await;
                    delivered = true;
                }
                _ => panic!("unexpected frame while probing: {v}"),
            }
        }
    }

    /// Sends one message and waits for `accepted`.
    async fn send_msg(&mut self, to: &User, id: &str) {
        self.send(send_frame(&to.name, id)).await;
        let answer = self.recv_within(Duration::from_secs(10)).await;
        let answer = answer.expect("an answer to send");
        assert_eq!(answer["type"], "accepted", "{answer}");
        assert_eq!(answer["id"], id);
    }
}

fn send_frame(to: &str, id: &str) -> Value {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    json!({
        "type": "send", "to": to, "id": id, "sent_at": now,
        // Opaque to the server: any bytes do.
        "ciphertext": sesame_proto::b64::encode(id.as_bytes()),
        "signature": sesame_proto::b64::encode([7u8; 64]),
    })
}

/// Waits until `f` holds, polling every 50 ms, at most `within`; how long it took.
async fn eventually<F, Fut>(within: Duration, what: &str, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if f().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

/// An OPAQUE login started on one node finishes on another (exactly once), and parallel
/// attempts on one account spread over three nodes share one throttle: at most the free
/// attempts plus the one let through the first delay get past it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logins_and_the_throttle_span_nodes() {
    let Some(services) = services().await else {
        return;
    };
    let cluster = Cluster::start(&services, &services.redis, 3).await;
    let [a, b, c] = &cluster.nodes[..] else {
        unreachable!()
    };
    let http = Client::new();
    let alice = name("alice");
    register(&http, a, &alice).await;

    // OPAQUE: start on A, finish on B.
    let mut rng = rand_core::OsRng;
    let (state, start) = client::start_login(&mut rng, &alice, PASSWORD).unwrap();
    let (s, body) = post(&http, a.url("/api/login/start"), &json!(start)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let challenge: LoginChallenge = serde_json::from_value(body).unwrap();
    let done = state
        .finish(&mut rng, &challenge, &ClientPolicy::default())
        .unwrap();
    let finish = serde_json::to_value(&done.message).unwrap();
    let (s, body) = post(&http, b.url("/api/login/finish"), &finish).await;
    assert_eq!(
        s,
        StatusCode::OK,
        "a login started on A finishes on B: {body}"
    );
    let confirmation: LoginConfirmation = serde_json::from_value(body).unwrap();
    let session: Value =
        serde_json::from_slice(&done.confirmation.open(&confirmation).unwrap()).unwrap();
    assert!(session["access_token"].is_string(), "{session}");
    // The login state was taken: a replay fails on every node.
    for node in [a, b, c] {
        let (s, body) = post(&http, node.url("/api/login/finish"), &finish).await;
        assert_ne!(
            s,
            StatusCode::OK,
            "replayed finish on {}: {body}",
            node.name
        );
    }

    // The throttle: 24 parallel login starts for one account, round-robin over the nodes.
    let carol = name("carol");
    register(&http, a, &carol).await;
    let mut tasks = Vec::new();
    for i in 0..24 {
        let url = cluster.nodes[i % 3].url("/api/login/start");
        let (_, start) = client::start_login(&mut rng, &carol, PASSWORD).unwrap();
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            http.post(url).json(&start).send().await.unwrap().status()
        }));
    }
    let mut passed = 0;
    for t in tasks {
        match t.await.unwrap() {
            StatusCode::OK => passed += 1,
            StatusCode::TOO_MANY_REQUESTS => {}
            other => panic!("unexpected {other}"),
        }
    }
    eprintln!("{passed} of 24 parallel attempts on three nodes got past the throttle");
    // Five free attempts (the default) and one through the first gate, whatever the nodes.
    assert!(
        (1..=6).contains(&passed),
        "{passed} of 24 parallel attempts on three nodes got past the throttle"
    );
    cluster.cleanup().await;
}

/// A message sent through one node reaches the recipient's connection on another at once,
/// both ways; the recipient's presence is recorded in Redis with a TTL, per node, and
/// withdrawn when they disconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_ring_across_nodes_and_presence_is_recorded() {
    let Some(services) = services().await else {
        return;
    };
    let mut cluster = Cluster::start(&services, &services.redis, 2).await;
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let http = Client::new();
    let alice = user(&http, a, "alice").await;
    let bob = user(&http, b, "bob").await;
    let mut alice_ws = Ws::connect(a, &alice).await;
    let mut bob_ws = Ws::connect(b, &bob).await;
    // Both subscriptions have read their backlogs once a message to oneself came back.
    alice_ws.until_live(&alice).await;
    bob_ws.until_live(&bob).await;

    for round in 0..3 {
        let id = format!("ab{round}");
        let sent = Instant::now();
        alice_ws.send_msg(&bob, &id).await;
        let got = bob_ws.message_within(LIVE).await;
        let got = got.unwrap_or_else(|| panic!("{id} (A → B) did not arrive within {LIVE:?}"));
        assert_eq!(got["id"], id.as_str());
        assert_eq!(got["from"], alice.name.as_str());
        eprintln!("A → B live delivery of {id}: {:?}", sent.elapsed());

        let id = format!("ba{round}");
        let sent = Instant::now();
        bob_ws.send_msg(&alice, &id).await;
        let got = alice_ws.message_within(LIVE).await;
        let got = got.unwrap_or_else(|| panic!("{id} (B → A) did not arrive within {LIVE:?}"));
        assert_eq!(got["id"], id.as_str());
        eprintln!("B → A live delivery of {id}: {:?}", sent.elapsed());
    }

    // Presence: bob on B only, with a TTL of at most 30 s.
    let mut redis = redis_conn(&cluster.redis).await.unwrap();
    let key =
        |user: &User, node: &Node| format!("{}presence:{}:{}", cluster.prefix, user.id, node.id);
    let (bob_on_b, bob_on_a) = (key(&bob, b), key(&bob, a));
    let took = eventually(Duration::from_secs(3), "bob's presence on B", || {
        let mut redis = redis.clone();
        let key = bob_on_b.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut redis)
                .await
                .unwrap()
                == 1
        }
    })
    .await;
    eprintln!("presence recorded after {took:?}");
    let ttl: i64 = redis::cmd("PTTL")
        .arg(&bob_on_b)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert!((1..=30_000).contains(&ttl), "presence TTL {ttl} ms");
    let on_a: i64 = redis::cmd("EXISTS")
        .arg(&bob_on_a)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(on_a, 0, "bob is not connected to A");

    // Bob leaves: his presence on B is withdrawn.
    let _ = bob_ws.0.close(None).await;
    drop(bob_ws);
    eventually(Duration::from_secs(4), "bob's presence withdrawn", || {
        let mut redis = redis.clone();
        let key = bob_on_b.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut redis)
                .await
                .unwrap()
                == 0
        }
    })
    .await;

    // Back on B, then B shuts down gracefully (SIGTERM): it withdraws its presence keys
    // before exiting, rather than leaving them to expire.
    let _bob_ws = Ws::connect(b, &bob).await;
    eventually(Duration::from_secs(3), "bob's presence on B again", || {
        let mut redis = redis.clone();
        let key = bob_on_b.clone();
        async move {
            redis::cmd("EXISTS")
                .arg(key)
                .query_async::<i64>(&mut redis)
                .await
                .unwrap()
                == 1
        }
    })
    .await;
    let t = Instant::now();
    tokio::task::block_in_place(|| cluster.nodes[1].terminate());
    eprintln!("B stopped gracefully in {:?}", t.elapsed());
    let left: i64 = redis::cmd("EXISTS")
        .arg(&bob_on_b)
        .query_async(&mut redis)
        .await
        .unwrap();
    assert_eq!(left, 0, "a node that shuts down withdraws its presence");
    drop(alice_ws);
    cluster.cleanup().await;
}

/// A node killed with SIGKILL while a sender streams messages through it loses none of the
/// messages it accepted: the recipient, connected to the same node, reconnects to the other
/// one and gets every accepted id there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_node_loses_no_accepted_message() {
    let Some(services) = services().await else {
        return;
    };
    let mut cluster = Cluster::start(&services, &services.redis, 2).await;
    let http = Client::new();
    let a = &cluster.nodes[0];
    let alice = user(&http, a, "alice").await;
    let bob = user(&http, a, "bob").await;
    let received: Arc<Mutex<BTreeSet<String>>> = Arc::default();
    let accepted: Arc<Mutex<BTreeSet<String>>> = Arc::default();

    // Bob reads on A, live, until it dies; he acknowledges nothing there, so every accepted
    // message must still be in his mailbox, readable through B, afterwards.
    let mut bob_ws = Ws::connect(a, &bob).await;
    let bob_task = {
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(v) = bob_ws.unacknowledged_within(Duration::from_secs(30)).await {
                received
                    .lock()
                    .unwrap()
                    .insert(v["id"].as_str().unwrap().to_owned());
            }
        })
    };
    // Alice streams messages through A without waiting for each answer, and records the
    // `accepted` ones, until A dies.
    let alice_ws = Ws::connect(a, &alice).await;
    let (mut sink, mut stream) = alice_ws.0.split();
    let to = bob.name.clone();
    let writer = tokio::spawn(async move {
        let mut sent = 0u64;
        loop {
            let frame = send_frame(&to, &format!("m{sent}"));
            if sink
                .send(Message::Text(frame.to_string().into()))
                .await
                .is_err()
            {
                return sent;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let reader = {
        let accepted = accepted.clone();
        tokio::spawn(async move {
            while let Some(Ok(frame)) = stream.next().await {
                if let Message::Text(t) = frame {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    assert_eq!(v["type"], "accepted", "{v}");
                    accepted
                        .lock()
                        .unwrap()
                        .insert(v["id"].as_str().unwrap().to_owned());
                }
            }
        })
    };

    // Mid-traffic: once a good number went through, SIGKILL node A.
    let accepted_count = || accepted.lock().unwrap().len();
    eventually(Duration::from_secs(15), "200 accepted messages", || {
        let n = accepted_count();
        async move { n >= 200 }
    })
    .await;
    cluster.nodes[0].kill();
    let killed_at = Instant::now();
    let sent = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("the sender notices the dead node")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), reader)
        .await
        .expect("the sender's reader ends")
        .unwrap();
    tokio::time::timeout(Duration::from_secs(35), bob_task)
        .await
        .expect("bob's connection ends")
        .unwrap();
    let accepted = accepted.lock().unwrap().clone();
    let live = received.lock().unwrap().clone();
    eprintln!(
        "sent {sent}, accepted {}, delivered live {}, node killed {:?} ago",
        accepted.len(),
        live.len(),
        killed_at.elapsed()
    );

    // Bob reconnects to B and reads his mailbox until every accepted id is in (or nothing
    // more comes), acknowledging each.
    let b = &cluster.nodes[1];
    let mut bob_ws = Ws::connect(b, &bob).await;
    let reconnected = Instant::now();
    let mut mailbox = BTreeSet::new();
    loop {
        let wait = if accepted.is_subset(&mailbox) {
            Duration::from_millis(500)
        } else {
            Duration::from_secs(5)
        };
        match bob_ws.message_within(wait).await {
            Some(v) => {
                mailbox.insert(v["id"].as_str().unwrap().to_owned());
            }
            None => break,
        }
    }
    eprintln!(
        "after reconnecting to B: {} messages from the mailbox ({:?}); {} of them not \
         `accepted` before the kill",
        mailbox.len(),
        reconnected.elapsed(),
        mailbox.difference(&accepted).count()
    );
    assert!(accepted.len() >= 200);
    let lost: Vec<&String> = accepted.difference(&mailbox).collect();
    assert!(lost.is_empty(), "accepted but not in the mailbox: {lost:?}");
    // What was delivered live is what was stored, and only what was sent.
    assert!(live.is_subset(&mailbox), "{:?}", live.difference(&mailbox));
    let sent_ids: BTreeSet<String> = (0..sent).map(|i| format!("m{i}")).collect();
    assert!(mailbox.is_subset(&sent_ids));

    // Every message was acknowledged on B: a new connection finds the mailbox empty.
    bob_ws.0.close(None).await.unwrap();
    while bob_ws.recv_within(Duration::from_secs(5)).await.is_some() {}
    let mut again = Ws::connect(b, &bob).await;
    if let Some(v) = again
        .unacknowledged_within(Duration::from_millis(700))
        .await
    {
        panic!("the mailbox should be empty after the acks: {v}");
    }
    cluster.cleanup().await;
}

/// Redis down: `/readyz` says so (503, the database still ok), logins answer 503
/// `unavailable` with `Retry-After` at once instead of hanging, and a message stored
/// meanwhile still reaches its recipient on another node (by the safety poll). Redis back:
/// everything recovers by itself, cross-node rings included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_fast_and_recovers() {
    let Some(services) = services().await else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let cluster = Cluster::start(&services, &redis.url(), 2).await;
    let [a, b] = &cluster.nodes[..] else {
        unreachable!()
    };
    let http = Client::new();
    let alice = user(&http, a, "alice").await;
    let bob = user(&http, b, "bob").await;
    let mut alice_ws = Ws::connect(a, &alice).await;
    let mut bob_ws = Ws::connect(b, &bob).await;
    alice_ws.until_live(&alice).await;
    bob_ws.until_live(&bob).await;

    for node in [a, b] {
        let resp = http.get(node.url("/readyz")).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(
            v,
            json!({"status": "ready", "database": "ok", "redis": "ok"})
        );
    }

    redis.kill();
    let outage = Instant::now();

    // /readyz: 503 naming Redis, within about its one-second budget.
    for node in [a, b] {
        let t = Instant::now();
        let resp = http.get(node.url("/readyz")).send().await.unwrap();
        let took = t.elapsed();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["status"], "unavailable", "{v}");
        assert_eq!(v["database"], "ok", "{v}");
        assert!(
            v["redis"].as_str().unwrap().starts_with("unavailable"),
            "{v}"
        );
        assert_eq!(v["error"]["code"], "unavailable", "{v}");
        assert!(took < Duration::from_millis(1800), "/readyz took {took:?}");
        eprintln!("{}: /readyz during the outage ({took:?}): {v}", node.name);
    }
    // Logins: 503 unavailable with Retry-After, quickly, on every node and both flavours.
    let mut rng = rand_core::OsRng;
    for node in [a, b] {
        let t = Instant::now();
        let resp = http
            .post(node.url("/api/login"))
            .json(&json!({ "username": alice.name, "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        let took = t.elapsed();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(resp.headers().contains_key("retry-after"));
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unavailable", "{v}");
        assert!(
            took < Duration::from_secs(3),
            "password login took {took:?}"
        );

        let (_, start) = client::start_login(&mut rng, &alice.name, PASSWORD).unwrap();
        let t = Instant::now();
        let (s, v) = post(&http, node.url("/api/login/start"), &json!(start)).await;
        let took = t.elapsed();
        assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
        assert_eq!(v["error"]["code"], "unavailable", "{v}");
        assert!(
            took < Duration::from_secs(3),
            "OPAQUE login start took {took:?}"
        );
        eprintln!("{}: logins answer 503 in {took:?}", node.name);
    }
    // The relay keeps working without Redis: the message is stored, and bob's connection on
    // the other node reads it at its next poll, the ring being lost.
    let sent = Instant::now();
    alice_ws.send_msg(&bob, "during-outage").await;
    let got = bob_ws.message_within(SAFETY_POLL_BOUND).await;
    assert_eq!(
        got.expect("a message stored during the outage arrives by the poll")["id"],
        "during-outage"
    );
    eprintln!("delivered without Redis after {:?}", sent.elapsed());

    // Redis returns (empty: it keeps nothing on disk).
    redis.resume().await.expect("restart redis-server");
    eprintln!("Redis back after an outage of {:?}", outage.elapsed());
    let took = eventually(Duration::from_secs(10), "ready again", || {
        let (http, a, b) = (http.clone(), a.url("/readyz"), b.url("/readyz"));
        async move {
            for url in [a, b] {
                match http.get(url).send().await {
                    Ok(r) if r.status() == StatusCode::OK => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
    eprintln!("ready again {took:?} after Redis returned");
    let relogin = eventually(Duration::from_secs(10), "logins work again", || {
        let (http, url) = (http.clone(), b.url("/api/login"));
        let body = json!({ "username": alice.name, "password": PASSWORD });
        async move {
            let resp = http.post(url).json(&body).send().await.unwrap();
            resp.status() == StatusCode::OK
        }
    })
    .await;
    eprintln!("password login works again after {relogin:?}");
    // An OPAQUE login spanning both nodes works again.
    let (state, start) = client::start_login(&mut rng, &alice.name, PASSWORD).unwrap();
    let (s, body) = post(&http, b.url("/api/login/start"), &json!(start)).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let challenge: LoginChallenge = serde_json::from_value(body).unwrap();
    let done = state
        .finish(&mut rng, &challenge, &ClientPolicy::default())
        .unwrap();
    let (s, body) = post(
        &http,
        a.url("/api/login/finish"),
        &serde_json::to_value(&done.message).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");

    // Cross-node rings work again once the nodes have resubscribed (backoff at most 5 s):
    // three messages in a row arrive at once (a resubscription's catch-up read could explain
    // one fast delivery, not three).
    let deadline = Instant::now() + Duration::from_secs(12);
    let mut fast_in_a_row = 0;
    let mut times = Vec::new();
    for round in 0.. {
        let id = format!("after-{round}");
        let sent = Instant::now();
        alice_ws.send_msg(&bob, &id).await;
        let got = bob_ws
            .message_within(SAFETY_POLL_BOUND)
            .await
            .unwrap_or_else(|| panic!("{id} did not arrive"));
        assert_eq!(got["id"], id.as_str());
        let took = sent.elapsed();
        times.push(took);
        fast_in_a_row = if took < Duration::from_millis(500) {
            fast_in_a_row + 1
        } else {
            0
        };
        if fast_in_a_row == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no live cross-node delivery after Redis returned: {times:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("cross-node deliveries after Redis returned: {times:?}");
    drop((alice_ws, bob_ws));
    cluster.cleanup().await;
}

/// One rate limiter for every node: 200 concurrent requests from one address, spread over
/// three server processes sharing Redis, let exactly the per-address limit through (the
/// limiter's check-and-count is one Lua script, so no two processes can both take the last
/// place).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_share_one_rate_limit() {
    const LIMIT: usize = 50;
    let Some(services) = services().await else {
        return;
    };
    let limit = LIMIT.to_string();
    let env = [
        ("SESAME_THROTTLE_PER_ADDRESS", limit.as_str()),
        ("SESAME_THROTTLE_ADDRESS_WINDOW", "600"),
    ];
    let cluster = Cluster::start_with(&services, &services.redis, 3, &env).await;
    let http = Client::new();
    let body = json!({"username": "nobody-here", "code": "123456"});
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (http, body) = (http.clone(), body.clone());
            let url = cluster.nodes[i % 3].url("/api/verify-email");
            tokio::spawn(async move { post(&http, url, &body).await })
        })
        .collect();
    let (mut through, mut limited) = (0, 0);
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            StatusCode::BAD_REQUEST => {
                assert_eq!(body["error"]["code"], "code_expired", "{body}");
                through += 1;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    if (through, limited) != (LIMIT, 200 - LIMIT) {
        cluster.print_logs();
    }
    assert_eq!((through, limited), (LIMIT, 200 - LIMIT));
}
