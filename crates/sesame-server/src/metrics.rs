//! Prometheus metrics, served by the server itself at `GET /metrics`, and the access log.
//!
//! The series are recorded through the [`metrics`] facade into one
//! [`metrics_exporter_prometheus`] recorder per process, installed on first use ([`handle`]):
//! the exporter's own HTTP listener is not used. Several servers in one process (the tests)
//! share that recorder, so counters add up over them; the gauges sampled at scrape time (hash
//! pool, database pool) show the server that was scraped last. docs/operations.md (section
//! *Metrics*) lists every series with its meaning.
//!
//! Label values are bounded: HTTP routes are the router's templates (`/api/sessions/{id}`,
//! never a raw path; `unmatched` for anything no route matched), login methods are `opaque`
//! or `pwd`, outcomes a fixed set.
//!
//! `observe` is the HTTP middleware that counts and times every request and writes one
//! access-log line for it (target `sesame::access`): method, route template, status, latency
//! and client address, never a header, a body, a token or a query string.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::http::Ctx;
use crate::service::Sesame;

/// `sesame_http_requests_total{method, route, status}`.
pub const HTTP_REQUESTS: &str = "sesame_http_requests_total";
/// `sesame_http_request_duration_seconds{method, route}` (histogram).
pub const HTTP_DURATION: &str = "sesame_http_request_duration_seconds";
/// `sesame_logins_total{method, outcome}`.
pub const LOGINS: &str = "sesame_logins_total";
/// `sesame_hash_pool_queue_depth` (gauge, sampled at scrape time).
pub const HASH_QUEUE_DEPTH: &str = "sesame_hash_pool_queue_depth";
/// `sesame_hash_pool_in_flight` (gauge, sampled at scrape time).
pub const HASH_IN_FLIGHT: &str = "sesame_hash_pool_in_flight";
/// `sesame_hash_pool_wait_seconds` (histogram).
pub const HASH_WAIT: &str = "sesame_hash_pool_wait_seconds";
/// `sesame_hash_pool_busy_total`.
pub const HASH_BUSY: &str = "sesame_hash_pool_busy_total";
/// `sesame_websocket_connections{endpoint}` (gauge).
pub const WEBSOCKETS: &str = "sesame_websocket_connections";
/// `sesame_relay_connections` (gauge).
pub const RELAY_CONNECTIONS: &str = "sesame_relay_connections";
/// `sesame_messages_accepted_total`.
pub const MESSAGES_ACCEPTED: &str = "sesame_messages_accepted_total";
/// `sesame_messages_stored_total`.
pub const MESSAGES_STORED: &str = "sesame_messages_stored_total";
/// `sesame_messages_delivered_total`.
pub const MESSAGES_DELIVERED: &str = "sesame_messages_delivered_total";
/// `sesame_db_write_batches_total`.
pub const WRITE_BATCHES: &str = "sesame_db_write_batches_total";
/// `sesame_db_batched_writes_total`.
pub const BATCHED_WRITES: &str = "sesame_db_batched_writes_total";
/// `sesame_db_pool_connections` (gauge, sampled at scrape time).
pub const DB_POOL_CONNECTIONS: &str = "sesame_db_pool_connections";
/// `sesame_db_pool_idle_connections` (gauge, sampled at scrape time).
pub const DB_POOL_IDLE: &str = "sesame_db_pool_idle_connections";

/// Counter: error answers with a code their route does not declare (a bug; always 0).
pub const UNDECLARED_ERRORS: &str = "sesame_undeclared_errors_total";
/// The `route` label of requests no route matched.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The values of the `outcome` label of [`LOGINS`].
pub const LOGIN_OUTCOMES: [&str; 5] = [
    "success",
    "failure",
    "second_factor_required",
    "banned",
    "throttled",
];
/// The content type of `GET /metrics` (Prometheus text exposition format 0.0.4).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Upper bounds of the request-duration buckets, seconds.
const HTTP_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Upper bounds of the hash-pool wait buckets, seconds.
const WAIT_BUCKETS: [f64; 11] = [
    0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The process's Prometheus handle, installing the recorder on first use. Idempotent and
/// safe to call from any thread; when another recorder is already installed (an embedding
/// program's), Sesame's series go there and this handle renders nothing.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.into()), &HTTP_BUCKETS)
            .and_then(|b| b.set_buckets_for_metric(Matcher::Full(HASH_WAIT.into()), &WAIT_BUCKETS));
        let recorder = match builder {
            Ok(b) => b.build_recorder(),
            // Unreachable (the bucket lists are not empty); summaries instead of histograms.
            Err(e) => {
                tracing::warn!(%e, "metrics buckets refused");
                PrometheusBuilder::new().build_recorder()
            }
        };
        let handle = recorder.handle();
        match metrics::set_global_recorder(recorder) {
            Ok(()) => {
                describe();
                start_upkeep(handle.clone());
            }
            Err(e) => {
                tracing::warn!(%e, "another metrics recorder is installed; /metrics stays empty")
            }
        }
        handle
    })
}

/// Folds histogram samples into buckets now and then, so memory stays bounded even when
/// nobody scrapes. A plain thread: the recorder outlives any one Tokio runtime.
fn start_upkeep(handle: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name("sesame-metrics".into())
        .spawn(move || loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        });
    if let Err(e) = spawned {
        tracing::warn!(%e, "could not start the metrics upkeep thread");
    }
}

/// HELP lines, and the counters that exist before their first event (so dashboards and
/// alerts see a 0, not a missing series).
fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        metrics::Unit::Seconds,
        "HTTP request latency by method and route template, until the response head."
    );
    describe_counter!(
        LOGINS,
        "Login attempts by method (opaque, pwd) and outcome (success, failure, \
         second_factor_required, banned, throttled)."
    );
    describe_gauge!(HASH_QUEUE_DEPTH, "Argon2 jobs waiting for a pool thread.");
    describe_gauge!(HASH_IN_FLIGHT, "Argon2 jobs queued or running.");
    describe_histogram!(
        HASH_WAIT,
        metrics::Unit::Seconds,
        "Time an Argon2 job waited in the queue, from enqueue to start."
    );
    describe_counter!(
        HASH_BUSY,
        "Argon2 jobs refused because the queue was full (503 busy)."
    );
    describe_gauge!(
        WEBSOCKETS,
        "Open WebSocket connections by endpoint (/auth/login, /ws)."
    );
    describe_gauge!(
        RELAY_CONNECTIONS,
        "Relay connections registered for live delivery (WebSocket and TCP)."
    );
    describe_counter!(
        MESSAGES_ACCEPTED,
        "Messages answered `accepted` (stored, or a resend of a stored id)."
    );
    describe_counter!(MESSAGES_STORED, "Messages newly stored in a mailbox.");
    describe_counter!(
        MESSAGES_DELIVERED,
        "Messages handed to a live relay connection (backlog or live; once per connection)."
    );
    describe_counter!(
        WRITE_BATCHES,
        "Batches of logins, messages and acknowledgements the group-commit writer applied."
    );
    describe_counter!(
        BATCHED_WRITES,
        "Logins, message inserts and acknowledgements applied in those batches."
    );
    describe_gauge!(
        DB_POOL_CONNECTIONS,
        "Open database connections in the pool."
    );
    describe_gauge!(DB_POOL_IDLE, "Idle database connections in the pool.");
    for method in ["opaque", "pwd", "passkey"] {
        for outcome in LOGIN_OUTCOMES {
            counter!(LOGINS, "method" => method, "outcome" => outcome).increment(0);
        }
    }
    for name in [
        HASH_BUSY,
        MESSAGES_ACCEPTED,
        MESSAGES_STORED,
        MESSAGES_DELIVERED,
        WRITE_BATCHES,
        BATCHED_WRITES,
    ] {
        counter!(name).increment(0);
    }
    for endpoint in ["/auth/login", "/ws"] {
        gauge!(WEBSOCKETS, "endpoint" => endpoint).increment(0.0);
    }
    gauge!(RELAY_CONNECTIONS).increment(0.0);
}

/// Counts a login outcome. `method` is `opaque`, `passkey` (a passwordless passkey sign-in)
/// or anything else, which counts as `pwd`; `outcome` is one of [`LOGIN_OUTCOMES`].
pub(crate) fn login(method: &str, outcome: &'static str) {
    let method = match method {
        "opaque" => "opaque",
        "passkey" => "passkey",
        _ => "pwd",
    };
    counter!(LOGINS, "method" => method, "outcome" => outcome).increment(1);
}

/// Counts a throttled login (`429`); other errors are not counted here.
pub(crate) fn login_throttled(method: &str, e: &crate::ApiError) {
    if e.code == crate::error::LimitError::TooManyAttempts.into() {
        login(method, "throttled");
    }
}

/// An Argon2 job waited `waited` for a thread.
pub(crate) fn hash_wait(waited: Duration) {
    histogram!(HASH_WAIT).record(waited.as_secs_f64());
}

/// An Argon2 job was refused: the queue was full.
pub(crate) fn hash_busy() {
    counter!(HASH_BUSY).increment(1);
}

/// A message was answered `accepted`; `stored` when it was new (not a resend).
pub(crate) fn message_accepted(stored: bool) {
    counter!(MESSAGES_ACCEPTED).increment(1);
    if stored {
        counter!(MESSAGES_STORED).increment(1);
    }
}

/// The group-commit writer took a batch of `writes` jobs.
pub(crate) fn write_batch(writes: usize) {
    counter!(WRITE_BATCHES).increment(1);
    counter!(BATCHED_WRITES).increment(u64::try_from(writes).unwrap_or(u64::MAX));
}

/// A message was handed to a live relay connection.
pub(crate) fn message_delivered() {
    counter!(MESSAGES_DELIVERED).increment(1);
}

/// A relay connection registered in the hub (pair with [`relay_connection_closed`]).
pub(crate) fn relay_connection_opened() {
    gauge!(RELAY_CONNECTIONS).increment(1.0);
}

/// A relay connection left the hub.
pub(crate) fn relay_connection_closed() {
    gauge!(RELAY_CONNECTIONS).decrement(1.0);
}

/// Holds one unit of a connection gauge for as long as it lives.
pub(crate) struct Live(metrics::Gauge);

impl Live {
    /// An open WebSocket on `endpoint` (`/auth/login` or `/ws`).
    pub(crate) fn websocket(endpoint: &'static str) -> Live {
        Live::of(gauge!(WEBSOCKETS, "endpoint" => endpoint))
    }

    fn of(gauge: metrics::Gauge) -> Live {
        gauge.increment(1.0);
        Live(gauge)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// `GET /metrics`: every series in the Prometheus text format.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    summary = "Prometheus metrics",
    description = "Every series in the Prometheus text exposition format 0.0.4 \
                   (docs/operations.md, section Metrics). Expose it to the scraper only.",
    responses(
        (status = 200, description = "The metrics.", content_type = "text/plain; version=0.0.4", body = String)
    )
)]
pub(crate) async fn serve_metrics(State(s): State<Sesame>) -> Response {
    let handle = handle();
    let (size, idle) = s.store().pool_stats();
    gauge!(DB_POOL_CONNECTIONS).set(f64::from(size));
    gauge!(DB_POOL_IDLE).set(idle as f64);
    let pool = s.pool();
    gauge!(HASH_QUEUE_DEPTH).set(pool.queued() as f64);
    gauge!(HASH_IN_FLIGHT).set(pool.in_flight() as f64);
    handle.run_upkeep();
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response()
}

/// The middleware (mount with `axum::middleware::from_fn_with_state` as the outermost layer
/// of the router): counts and times every request by route template and writes the access
/// log line.
/// Checks an error answer against the route table of the contract (`sesame_api::routes`):
/// a code the route does not declare is a drift between the server and its documentation.
/// It is logged and counted; in debug builds (the test suite) it becomes a `500 internal`,
/// so the test that provoked it fails at once.
fn check_declared(method: &axum::http::Method, route: &str, response: Response) -> Response {
    let Some(code) = response
        .extensions()
        .get::<crate::error::ErrorCode>()
        .copied()
    else {
        return response;
    };
    let documented = crate::openapi::ALIASES
        .iter()
        .find(|(alias, _)| *alias == route)
        .map_or(route, |(_, target)| *target);
    let Some(entry) = sesame_api::routes::find(method.as_str(), documented) else {
        return response;
    };
    if entry.errors().contains(&code) {
        return response;
    }
    counter!(UNDECLARED_ERRORS, "route" => documented.to_owned(), "code" => code.as_str())
        .increment(1);
    tracing::error!(
        method = method.as_str(),
        route = documented,
        code = code.as_str(),
        "answered an error code the route table does not declare"
    );
    if cfg!(debug_assertions) {
        return crate::error::ApiError::new(
            crate::error::ServerError::Internal,
            format!(
                "Undeclared error `{code}` on {method} {documented}: add it to sesame_api::routes."
            ),
        )
        .into_response();
    }
    response
}

pub(crate) async fn observe(Ctx(ctx): Ctx, req: Request, next: Next) -> Response {
    // Request latency for metrics: real elapsed time.
    #[allow(clippy::disallowed_methods)]
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str)
        .to_owned();
    let response = check_declared(&method, &route, next.run(req).await);
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    counter!(
        HTTP_REQUESTS,
        "method" => method.as_str().to_owned(),
        "route" => route.clone(),
        "status" => status.to_string(),
    )
    .increment(1);
    histogram!(
        HTTP_DURATION,
        "method" => method.as_str().to_owned(),
        "route" => route.clone(),
    )
    .record(elapsed.as_secs_f64());
    let client = ctx
        .client_addr
        .map_or_else(|| "-".to_owned(), |a| a.to_string());
    tracing::info!(
        target: "sesame::access",
        method = method.as_str(),
        route = route.as_str(),
        status,
        latency_ms = elapsed.as_secs_f64() * 1000.0,
        client = client.as_str(),
        "request"
    );
    response
}
