//! Observability against a real server on loopback: the Prometheus series at `/metrics`, the
//! OpenAPI document at `/openapi.json` (it must name every route the source registers), and
//! the JSON logs (no password or token in any line).
//!
//! The metrics recorder and the log subscriber are per process, so the tests of this file run
//! one at a time ([`SERIAL`]) and compare counters before and after what they do.

mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use common::server::TestServer;
use common::{backends, TestDb};
use futures_util::{SinkExt as _, StreamExt as _};
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sesame_proto::b64::Bytes;
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::e2e::{ClientFrame, SealedMessage};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation, LoginFinish};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;

const PASSWORD: &str = "observability horse battery staple";

/// One test at a time: counters and the captured log are process-wide.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

// ---------------------------------------------------------------------------------------
// Log capture: the same JSON formatter as `sesame serve --log-format json`, into a buffer.

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).expect("logs are UTF-8")
    }
}

/// Installs the capturing JSON subscriber once (before any server starts).
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,sesame_server=debug,sesame=debug,sqlx=warn",
            ))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .json()
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
        captured
    })
}

// ---------------------------------------------------------------------------------------
// Helpers.

fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

fn unique_name(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

async fn post(c: &Client, srv: &TestServer, path: &str, body: Value) -> (StatusCode, Value) {
    let resp = c.post(srv.url(path)).json(&body).send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn register(c: &Client, srv: &TestServer, name: &str) {
    let (status, body) = post(
        c,
        srv,
        "/api/register",
        json!({"username": name, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// A password login; the status and body.
async fn login_pwd(
    c: &Client,
    srv: &TestServer,
    name: &str,
    password: &str,
) -> (StatusCode, Value) {
    post(
        c,
        srv,
        "/api/login",
        json!({"username": name, "password": password}),
    )
    .await
}

/// An OPAQUE login over REST with the right password: the opened session payload.
async fn login_opaque(c: &Client, srv: &TestServer, name: &str) -> Value {
    let mut r = rng();
    let (state, start) = client::start_login(&mut r, name, PASSWORD).unwrap();
    let (status, body) = post(
        c,
        srv,
        "/api/login/start",
        serde_json::to_value(&start).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let challenge: LoginChallenge = serde_json::from_value(body).unwrap();
    let done = state
        .finish(&mut r, &challenge, &ClientPolicy::default())
        .unwrap();
    let (status, body) = post(
        c,
        srv,
        "/api/login/finish",
        serde_json::to_value(&done.message).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let confirmation: LoginConfirmation = serde_json::from_value(body).unwrap();
    serde_json::from_slice(&done.confirmation.open(&confirmation).unwrap()).unwrap()
}

/// An OPAQUE login whose proof the server refuses (a forged KE3): 401.
async fn login_opaque_forged(c: &Client, srv: &TestServer, name: &str) {
    let mut r = rng();
    let (_, start) = client::start_login(&mut r, name, PASSWORD).unwrap();
    let (status, body) = post(
        c,
        srv,
        "/api/login/start",
        serde_json::to_value(&start).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let challenge: LoginChallenge = serde_json::from_value(body).unwrap();
    let forged = LoginFinish {
        login_id: challenge.login_id,
        ke3: Bytes(vec![0x42; 64]),
        device_key_id: None,
        device_signature: None,
    };
    let (status, body) = post(
        c,
        srv,
        "/api/login/finish",
        serde_json::to_value(&forged).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

// ---------------------------------------------------------------------------------------
// The Prometheus text format.

/// One series: its name and labels.
type Series = (String, BTreeMap<String, String>);

/// Parses the Prometheus text exposition format (what this test needs of it).
fn parse_metrics(text: &str) -> HashMap<Series, f64> {
    let mut out = HashMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("a name");
        let name = line[..name_end].to_owned();
        let mut labels = BTreeMap::new();
        let mut rest = &line[name_end..];
        if let Some(inner) = rest.strip_prefix('{') {
            let mut chars = inner.char_indices().peekable();
            loop {
                let (start, c) = chars.next().expect("a label or `}`");
                if c == '}' {
                    rest = &inner[start + 1..];
                    break;
                }
                if c == ',' {
                    continue;
                }
                let eq = inner[start..].find("=\"").expect("key=\"value\"") + start;
                let key = inner[start..eq].to_owned();
                while chars.peek().is_some_and(|&(i, _)| i <= eq + 1) {
                    chars.next();
                }
                let mut value = String::new();
                loop {
                    let (_, c) = chars.next().expect("a closing quote");
                    match c {
                        '\\' => value.push(chars.next().expect("an escaped character").1),
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key, value);
            }
        }
        let value: f64 = rest
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("value of {line}"));
        out.insert((name, labels), value);
    }
    out
}

struct Scrape {
    text: String,
    series: HashMap<Series, f64>,
}

impl Scrape {
    /// The value of `name{labels}`, 0 if absent.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.find(name, labels).unwrap_or(0.0)
    }

    fn find(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let key = (
            name.to_owned(),
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>(),
        );
        self.series.get(&key).copied()
    }

    /// The values of every `name` series whose labels include `labels`.
    fn matching(
        &self,
        name: &str,
        labels: &[(&str, &str)],
    ) -> Vec<(&BTreeMap<String, String>, f64)> {
        self.series
            .iter()
            .filter(|((n, l), _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|((_, l), v)| (l, *v))
            .collect()
    }
}

async fn scrape(c: &Client, srv: &TestServer) -> Scrape {
    let resp = c.get(srv.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    let text = resp.text().await.unwrap();
    Scrape {
        series: parse_metrics(&text),
        text,
    }
}

/// Scrapes until `check` holds (gauges follow connection tasks asynchronously), at most 5 s.
async fn scrape_until(
    c: &Client,
    srv: &TestServer,
    what: &str,
    check: impl Fn(&Scrape) -> bool,
) -> Scrape {
    for _ in 0..100 {
        let s = scrape(c, srv).await;
        if check(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

// ---------------------------------------------------------------------------------------
// /metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_logins_connections_messages_and_pools() {
    let _serial = SERIAL.lock().await;
    logs();
    for db in backends().await {
        metrics_on(&db).await;
        db.cleanup().await;
    }
}

async fn metrics_on(db: &TestDb) {
    let srv = TestServer::start_with(db, |c| c.throttle_free_attempts = 2).await;
    let c = Client::new();
    let name = unique_name("metrics");
    register(&c, &srv, &name).await;
    let before = scrape(&c, &srv).await;
    for outcome in common_outcomes() {
        for method in ["opaque", "pwd"] {
            assert!(
                before
                    .find(
                        "sesame_logins_total",
                        &[("method", method), ("outcome", outcome)]
                    )
                    .is_some(),
                "{method}/{outcome} exists before any login:\n{}",
                before.text
            );
        }
    }

    // Logins: a password success and failure, an OPAQUE success and failure.
    let (status, body) = login_pwd(&c, &srv, &name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = login_pwd(&c, &srv, &name, "not the password at all").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let session = login_opaque(&c, &srv, &name).await;
    assert!(session["access_token"].is_string());
    login_opaque_forged(&c, &srv, &name).await;
    // Wrong passwords until the per-account throttle answers 429.
    let (mut failures, mut throttled) = (1.0, 0.0);
    for _ in 0..6 {
        let (status, body) = login_pwd(&c, &srv, &name, "still not the password").await;
        match status {
            StatusCode::UNAUTHORIZED => failures += 1.0,
            StatusCode::TOO_MANY_REQUESTS => {
                throttled += 1.0;
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(throttled, 1.0, "the throttle never answered 429");

    // A route with a parameter, and one that matches nothing.
    let raw_id = uuid::Uuid::new_v4().to_string();
    let resp = c
        .delete(srv.url(&format!("/api/sessions/{raw_id}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = c
        .get(srv.url(&format!("/no/such/{raw_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);

    let after = scrape(&c, &srv).await;
    let logins = |s: &Scrape, method: &str, outcome: &str| {
        s.get(
            "sesame_logins_total",
            &[("method", method), ("outcome", outcome)],
        )
    };
    let delta = |method: &str, outcome: &str| {
        logins(&after, method, outcome) - logins(&before, method, outcome)
    };
    assert_eq!(delta("pwd", "success"), 1.0, "{}", after.text);
    assert_eq!(delta("pwd", "failure"), failures, "{}", after.text);
    assert_eq!(delta("pwd", "throttled"), throttled, "{}", after.text);
    assert_eq!(delta("opaque", "success"), 1.0, "{}", after.text);
    assert_eq!(delta("opaque", "failure"), 1.0, "{}", after.text);
    assert_eq!(delta("pwd", "banned") + delta("opaque", "banned"), 0.0);
    assert_eq!(delta("pwd", "second_factor_required"), 0.0);

    // Requests by route template and status, never by raw path.
    let http = |s: &Scrape, method: &str, route: &str, status: &str| {
        s.get(
            "sesame_http_requests_total",
            &[("method", method), ("route", route), ("status", status)],
        )
    };
    let http_delta = |method: &str, route: &str, status: &str| {
        http(&after, method, route, status) - http(&before, method, route, status)
    };
    assert_eq!(
        http_delta("POST", "/api/login", "200"),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(http_delta("POST", "/api/login", "401"), failures);
    assert_eq!(http_delta("POST", "/api/login", "429"), throttled);
    assert_eq!(http_delta("POST", "/api/login/start", "200"), 2.0);
    assert_eq!(
        http_delta("DELETE", "/api/sessions/{id}", "404"),
        1.0,
        "{}",
        after.text
    );
    assert_eq!(http_delta("GET", "unmatched", "404"), 1.0, "{}", after.text);
    assert!(http(&after, "GET", "/metrics", "200") >= 1.0);
    assert!(
        !after.text.contains(&raw_id),
        "a raw path reached a label:\n{}",
        after.text
    );
    assert!(
        !after.text.contains("/no/such"),
        "a raw path reached a label"
    );
    let buckets = after.matching(
        "sesame_http_request_duration_seconds_bucket",
        &[("method", "POST"), ("route", "/api/login")],
    );
    assert!(
        buckets.len() > 5,
        "request duration is a histogram: {buckets:?}"
    );
    assert!(after
        .text
        .contains("# TYPE sesame_http_request_duration_seconds histogram"));
    assert!(after.text.contains("# HELP sesame_logins_total"));

    // The Argon2 pool: 1 registration + 1 + (failures) password logins ran on it.
    let waits = after.get("sesame_hash_pool_wait_seconds_count", &[])
        - before.get("sesame_hash_pool_wait_seconds_count", &[]);
    assert_eq!(waits, 1.0 + failures, "{}", after.text);
    assert!(after
        .text
        .contains("# TYPE sesame_hash_pool_wait_seconds histogram"));
    for gauge in ["sesame_hash_pool_queue_depth", "sesame_hash_pool_in_flight"] {
        assert_eq!(
            after.find(gauge, &[]),
            Some(0.0),
            "{gauge} idle: {}",
            after.text
        );
    }
    assert!(after.find("sesame_hash_pool_busy_total", &[]).is_some());

    // The database pool, sampled at scrape time.
    let size = after
        .find("sesame_db_pool_connections", &[])
        .expect("pool size");
    let idle = after
        .find("sesame_db_pool_idle_connections", &[])
        .expect("pool idle");
    assert!(
        size >= 1.0 && idle <= size,
        "{} size {size} idle {idle}",
        db.name
    );

    // WebSockets: the relay (with a message to oneself) and the login socket.
    let ws_base = srv.base.replace("http://", "ws://");
    let ws_gauge = |s: &Scrape, endpoint: &str| {
        s.get("sesame_websocket_connections", &[("endpoint", endpoint)])
    };
    let (relay_before, login_before) = (ws_gauge(&after, "/ws"), ws_gauge(&after, "/auth/login"));
    let hub_before = after.get("sesame_relay_connections", &[]);
    let mut req = format!("{ws_base}/ws").into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut relay, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("relay socket");
    let (mut login, _) = tokio_tungstenite::connect_async(format!("{ws_base}/auth/login"))
        .await
        .expect("login socket");
    let open = scrape_until(&c, &srv, "open WebSocket gauges", |s| {
        ws_gauge(s, "/ws") == relay_before + 1.0
            && ws_gauge(s, "/auth/login") == login_before + 1.0
            && s.get("sesame_relay_connections", &[]) == hub_before + 1.0
    })
    .await;
    let frame = ClientFrame::Send {
        to: name.clone(),
        message: SealedMessage {
            id: unique_name("m"),
            sent_at: 1,
            ciphertext: Bytes(vec![7; 48]),
            signature: Bytes(vec![9; 64]),
        },
    };
    relay
        .send(Message::Text(serde_json::to_string(&frame).unwrap().into()))
        .await
        .unwrap();
    let mut seen = BTreeSet::new();
    while seen.len() < 2 {
        let msg = tokio::time::timeout(Duration::from_secs(10), relay.next())
            .await
            .expect("relay answers")
            .expect("open")
            .expect("frame");
        if let Message::Text(text) = msg {
            let v: Value = serde_json::from_str(text.as_str()).unwrap();
            seen.insert(v["type"].as_str().unwrap().to_owned());
        }
    }
    assert_eq!(
        seen,
        BTreeSet::from(["accepted".to_owned(), "message".to_owned()])
    );
    let counted = |s: &Scrape, n: &str| s.get(n, &[]) - open.get(n, &[]);
    let sent = scrape_until(&c, &srv, "message counters", |s| {
        counted(s, "sesame_messages_delivered_total") == 1.0
    })
    .await;
    assert_eq!(counted(&sent, "sesame_messages_accepted_total"), 1.0);
    assert_eq!(counted(&sent, "sesame_messages_stored_total"), 1.0);
    relay.close(None).await.unwrap();
    login.close(None).await.unwrap();
    scrape_until(&c, &srv, "closed WebSocket gauges", |s| {
        ws_gauge(s, "/ws") == relay_before
            && ws_gauge(s, "/auth/login") == login_before
            && s.get("sesame_relay_connections", &[]) == hub_before
    })
    .await;
    srv.stop().await;
}

fn common_outcomes() -> [&'static str; 5] {
    sesame_server::metrics::LOGIN_OUTCOMES
}

// ---------------------------------------------------------------------------------------
// /openapi.json

/// Every `(METHOD, path)` the routers in `src/` register, read from the `.route("…", …)`
/// calls of the source (what `axum::Router` cannot list).
fn routes_in_source() -> BTreeSet<(String, String)> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    let mut routes = BTreeSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Unit-test routers are not the server's; comments are not code.
        let text = text.split("#[cfg(test)]\nmod tests").next().unwrap();
        let text: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .map(|l| format!("{l}\n"))
            .collect();
        for unsupported in [".nest(", ".route_service(", ".nest_service("] {
            assert!(
                !text.contains(unsupported),
                "{}: `{unsupported}` — teach this test (and document the routes)",
                file.display()
            );
        }
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let rest_trim = rest.trim_start();
            // The browser app's pages (`web::PAGES`, registered in a loop) are not API
            // operations (docs/web.md); every other route has a literal path.
            if file.ends_with("src/web.rs") && rest_trim.starts_with("page,") {
                continue;
            }
            let lit = rest_trim
                .strip_prefix('"')
                .unwrap_or_else(|| panic!("{}: .route( without a literal path", file.display()));
            let end = lit.find('"').unwrap();
            let path = lit[..end].to_owned();
            // The method router: up to the parenthesis closing `.route(`.
            let mut depth = 1;
            let args = &lit[end + 1..];
            let close = args
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map(|(i, _)| i)
                .unwrap();
            let methods = &args[..close];
            let mut found = 0;
            for m in [
                "get", "post", "put", "delete", "patch", "head", "options", "trace", "any", "on",
            ] {
                let mut scan = methods;
                while let Some(i) = scan.find(&format!("{m}(")) {
                    let before = scan[..i].chars().last();
                    scan = &scan[i + m.len()..];
                    if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                        continue; // part of a longer name (`widget(`, `foo_get(`)
                    }
                    assert!(
                        m != "any" && m != "on",
                        "{}: `{path}` uses `{m}(…)` — list its methods in the test",
                        file.display()
                    );
                    routes.insert((m.to_uppercase(), path.clone()));
                    found += 1;
                }
            }
            assert!(found > 0, "{}: no method for `{path}`", file.display());
            rest = &args[close..];
        }
    }
    routes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_documents_every_route() {
    let _serial = SERIAL.lock().await;
    logs();
    let db = TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let resp = c.get(srv.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let doc: Value = resp.json().await.expect("valid JSON");
    let version = doc["openapi"].as_str().expect("openapi version");
    assert!(version.starts_with("3."), "{version}");
    assert_eq!(doc["info"]["title"], "Sesame");

    // Every route of the source is documented with every method, and nothing else is.
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().unwrap() {
            if [
                "get", "put", "post", "delete", "patch", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                documented.insert((method.to_uppercase(), path.clone()));
                assert!(
                    op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                    "{method} {path}"
                );
                assert!(op["operationId"].is_string(), "{method} {path}");
            }
        }
    }
    // The browser app's files are not API operations either (docs/web.md).
    let source: BTreeSet<_> = routes_in_source()
        .into_iter()
        .filter(|(_, path)| !path.starts_with("/assets/") && path != "/favicon.ico")
        .collect();
    assert!(
        source.len() >= 50,
        "the source scan found only {} routes",
        source.len()
    );
    let missing: Vec<_> = source.difference(&documented).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    let stale: Vec<_> = documented.difference(&source).collect();
    assert!(
        stale.is_empty(),
        "documented routes the router does not have: {stale:?}"
    );
    for must in [
        "/auth/login",
        "/ws",
        "/metrics",
        "/openapi.json",
        "/api/sessions/{id}",
    ] {
        assert!(doc["paths"][must].is_object(), "{must}");
    }
    let ws = doc["paths"]["/ws"]["get"]["description"].as_str().unwrap();
    assert!(ws.contains("WebSocket"), "{ws}");
    assert!(doc["paths"]["/auth/login"]["get"]["responses"]["101"].is_object());

    // Operation ids are unique; every reference resolves.
    let ids: Vec<_> = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|item| item.as_object().unwrap().values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    assert_eq!(
        ids.len(),
        ids.iter().collect::<BTreeSet<_>>().len(),
        "{ids:?}"
    );
    let mut refs = Vec::new();
    collect_refs(&doc, &mut refs);
    assert!(!refs.is_empty());
    for r in refs {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {r}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "dangling $ref {r}"
        );
    }

    // The error envelope, the bearer scheme, and who needs it.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(
        error["properties"]["error"]["$ref"],
        "#/components/schemas/ErrorDetail"
    );
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert!(
        detail["properties"]["code"].is_object() && detail["properties"]["message"].is_object()
    );
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(bearer["type"], "http");
    assert_eq!(bearer["scheme"], "bearer");
    assert_eq!(
        doc["paths"]["/api/sessions"]["get"]["security"][0]["bearer"],
        json!([])
    );
    assert!(doc["paths"]["/api/login"]["post"]["security"].is_null());
    assert!(doc["paths"]["/api/login"]["post"]["responses"]["default"].is_object());
    // The wire messages of sesame-proto are there with their fields.
    let start = &doc["components"]["schemas"]["LoginStart"];
    assert!(start["properties"]["ke1"].is_object(), "{start}");
    srv.stop().await;
    db.cleanup().await;
}

fn collect_refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    out.push(v.as_str().unwrap().to_owned());
                } else {
                    collect_refs(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------
// Logs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_json_and_hold_no_secrets() {
    let _serial = SERIAL.lock().await;
    let logs = logs();
    let db = TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let name = unique_name("logs");
    register(&c, &srv, &name).await;
    let (status, body) = login_pwd(&c, &srv, &name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let session_token = body["session_token"].as_str().unwrap().to_owned();
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let (status, body) = post(
        &c,
        &srv,
        "/api/session/refresh",
        json!({"session_token": session_token}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refreshed = body["access_token"].as_str().unwrap().to_owned();
    let resp = c
        .get(srv.url("/api/sessions"))
        .bearer_auth(&refreshed)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // A token in a query string (a browser's relay socket), and a wrong password.
    let resp = c
        .get(srv.url(&format!("/ws?token={session_token}")))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_client_error(), "{}", resp.status());
    let (status, _) = login_pwd(&c, &srv, &name, "a wrong password here").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    srv.stop().await;
    db.cleanup().await;

    let text = logs.text();
    let secrets = [
        ("the password", PASSWORD),
        ("the session token", session_token.as_str()),
        ("the access token", access_token.as_str()),
        ("the refreshed access token", refreshed.as_str()),
    ];
    let mut access = Vec::new();
    for line in text.lines() {
        let v: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        for (what, secret) in secrets {
            assert!(!line.contains(secret), "{what} in a log line: {line}");
        }
        assert!(
            !line.contains("a wrong password here"),
            "a wrong password in a log line: {line}"
        );
        if v["target"] == "sesame::access" {
            access.push(v["fields"].clone());
        }
    }
    // The access log: method, route template, status, latency, client; no query string.
    let line_of = |method: &str, route: &str| {
        access
            .iter()
            .find(|f| f["method"] == method && f["route"] == route)
            .unwrap_or_else(|| panic!("no access line for {method} {route}:\n{text}"))
    };
    let login = line_of("POST", "/api/login");
    assert!(
        login["status"].is_u64() && login["latency_ms"].is_f64(),
        "{login}"
    );
    assert_eq!(login["client"], "127.0.0.1");
    line_of("POST", "/api/session/refresh");
    line_of("GET", "/api/sessions");
    let ws = line_of("GET", "/ws");
    assert!(!ws.to_string().contains("token"), "{ws}");
}
