//! Shared support for the integration tests: a fresh, isolated database on every
//! backend.
//!
//! * SQLite: a database file in a temporary directory, removed on drop.
//! * PostgreSQL: `postgres://postgres@127.0.0.1:5432/test` (override with
//!   `SESAME_TEST_POSTGRES_URL`), with a fresh schema `sesame_t_<unix secs>_<hex>` per
//!   [`TestDb`]. The schema is dropped (`DROP SCHEMA … CASCADE`) by
//!   [`TestDb::cleanup`], or else, best effort, when the [`TestDb`] is dropped (a
//!   failing test included); schemas of this form older than an hour, left by killed
//!   runs, are dropped when a test process first uses PostgreSQL.
//!
//! When PostgreSQL is unreachable the PostgreSQL half is skipped with a loud
//! `SKIPPING PostgreSQL tests: …` line on stderr, unless `SESAME_REQUIRE_SERVICES=1`,
//! which turns it into a panic (CI sets it so a missing service cannot pass silently).
//!
//! [`api`] has the HTTP helpers (requests, error codes, register and log in), [`python`]
//! the checks against Python implementations, [`server`] a real server to test against,
//! [`relay`] WebSocket and TCP relay clients, and [`redis_url`] the Redis the tests use
//! (skipped, or with `SESAME_REQUIRE_SERVICES=1` failed, when it does not answer).
//!
//! Use it from a test file with `mod common;`. Typical use:
//!
//! ```ignore
//! for db in common::backends().await {
//!     let store = db.connect().await;
//!     // … the same test body for every backend …
//!     store.close().await;
//!     db.cleanup().await;
//! }
//! ```
#![allow(dead_code)] // Each test file uses a different part of this module.

pub mod api;
pub mod authenticator;
pub mod failing;
pub mod python;
pub mod relay;
pub mod server;
pub mod tls;

use std::io::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sesame_server::store::{self, ConnectOptions, Store};
use sqlx::{Connection as _, PgConnection};
use tokio::sync::OnceCell;

/// The default PostgreSQL test database.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// Env var overriding [`DEFAULT_POSTGRES_URL`].
pub const POSTGRES_URL_ENV: &str = "SESAME_TEST_POSTGRES_URL";
/// Env var that, set to `1`, makes an unreachable PostgreSQL a failure instead of a skip.
pub const REQUIRE_SERVICES_ENV: &str = "SESAME_REQUIRE_SERVICES";
/// Prefix of the per-test PostgreSQL schemas.
pub const SCHEMA_PREFIX: &str = "sesame_t_";
/// Leftover test schemas older than this are dropped at start.
const STALE_SCHEMA_AGE: Duration = Duration::from_secs(3600);
/// How long to wait for PostgreSQL to answer before declaring it unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

/// Which backend a [`TestDb`] is on, with what keeps it alive.
#[derive(Debug)]
pub enum TestDbKind {
    /// A SQLite file inside this directory (deleted with it).
    Sqlite(tempfile::TempDir),
    /// A PostgreSQL schema (dropped by [`TestDb::cleanup`] or on drop).
    Postgres {
        /// The schema's name.
        schema: String,
    },
}

/// One fresh, isolated database. Connect to it as often as needed (for example to
/// restart a server on the same data): every [`TestDb::connect`] sees the same data.
#[derive(Debug)]
pub struct TestDb {
    /// `"sqlite"` or `"postgres"`, for test output.
    pub name: &'static str,
    /// The URL to give to [`store::connect`] (or to the server's configuration).
    pub url: String,
    /// The options to give with it (`pg_schema` set for PostgreSQL).
    pub options: ConnectOptions,
    /// The backend and its resources.
    pub kind: TestDbKind,
    /// Whether the PostgreSQL schema is already dropped.
    cleaned: bool,
}

impl TestDb {
    /// A fresh SQLite database file in a new temporary directory.
    pub fn sqlite() -> TestDb {
        let dir = tempfile::Builder::new()
            .prefix("sesame-test-")
            .tempdir()
            .expect("create a temporary directory");
        let url = format!("sqlite://{}", dir.path().join("sesame.db").display());
        TestDb {
            name: "sqlite",
            url,
            options: ConnectOptions {
                max_connections: 4,
                pg_schema: None,
            },
            kind: TestDbKind::Sqlite(dir),
            cleaned: false,
        }
    }

    /// A fresh PostgreSQL schema, or `None` (after a loud line on stderr) if PostgreSQL
    /// is unreachable. Panics instead when `SESAME_REQUIRE_SERVICES=1`.
    pub async fn postgres() -> Option<TestDb> {
        let url = postgres_url();
        if let Err(reason) = postgres_available(&url).await {
            if std::env::var(REQUIRE_SERVICES_ENV).as_deref() == Ok("1") {
                panic!(
                    "PostgreSQL is required ({REQUIRE_SERVICES_ENV}=1) but unreachable at \
                     {}: {reason}",
                    redact(&url)
                );
            }
            skip_notice(&format!(
                "SKIPPING PostgreSQL tests: unreachable at {}: {reason} (set \
                 {POSTGRES_URL_ENV} to point elsewhere, {REQUIRE_SERVICES_ENV}=1 to fail \
                 instead)",
                redact(&url)
            ));
            return None;
        }
        let secs = unix_now();
        let schema = format!("{SCHEMA_PREFIX}{secs}_{}", uuid::Uuid::new_v4().simple());
        Some(TestDb {
            name: "postgres",
            url,
            options: ConnectOptions {
                max_connections: 5,
                pg_schema: Some(schema.clone()),
            },
            kind: TestDbKind::Postgres { schema },
            cleaned: false,
        })
    }

    /// Opens the store (running migrations), panicking on failure.
    pub async fn connect(&self) -> Arc<dyn Store> {
        store::connect(&self.url, &self.options)
            .await
            .unwrap_or_else(|e| panic!("connect to the {} test database: {e}", self.name))
    }

    /// Drops the PostgreSQL schema (no-op for SQLite, whose directory goes on drop).
    /// Close the stores opened on it first.
    pub async fn cleanup(mut self) {
        if let TestDbKind::Postgres { schema } = &self.kind {
            if let Err(e) = drop_schema(&self.url, schema).await {
                eprintln!("warning: could not drop test schema {schema}: {e}");
            }
        }
        self.cleaned = true;
    }
}

impl Drop for TestDb {
    /// Best-effort schema removal when [`TestDb::cleanup`] was not reached (a panic).
    /// `Drop` cannot await, so a helper thread runs the drop on its own runtime.
    fn drop(&mut self) {
        let TestDbKind::Postgres { schema } = &self.kind else {
            return;
        };
        if self.cleaned {
            return;
        }
        let (url, schema) = (self.url.clone(), schema.clone());
        let worker = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            // The timer must be created inside the runtime, hence the async block.
            runtime
                .block_on(async {
                    tokio::time::timeout(Duration::from_secs(10), drop_schema(&url, &schema)).await
                })
                .ok()
        });
        let _ = worker.join();
    }
}

/// Every backend available here: SQLite always, then PostgreSQL unless skipped (see
/// [`TestDb::postgres`]).
pub async fn backends() -> Vec<TestDb> {
    let mut dbs = vec![TestDb::sqlite()];
    dbs.extend(TestDb::postgres().await);
    dbs
}

/// Runs a test body once per backend (see [`backends`]) against a fresh
/// [`TestServer`](server::TestServer), then stops the server and drops the database.
/// `on_every_backend!(|c, srv, db| { … })` also gives a `reqwest::Client`;
/// `on_every_backend!(|srv, db| { … })` does not.
#[allow(unused_macros)]
macro_rules! on_every_backend {
    (|$c:ident, $srv:ident, $db:ident| $body:block) => {
        $crate::common::on_every_backend!(|$srv, $db| {
            let $c = ::reqwest::Client::new();
            $body
        })
    };
    (|$srv:ident, $db:ident| $body:block) => {{
        for $db in $crate::common::backends().await {
            let $srv = $crate::common::server::TestServer::start(&$db).await;
            $body
            $srv.stop().await;
            $db.cleanup().await;
        }
    }};
}
#[allow(unused_imports)]
pub(crate) use on_every_backend;

/// The PostgreSQL URL to test against.
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned())
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

// Outside the server: the test's own wall clock.
#[allow(clippy::disallowed_methods)]
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Writes to the real stderr, past the test harness's capture, once per process.
fn skip_notice(line: &str) {
    static SHOWN: OnceLock<()> = OnceLock::new();
    SHOWN.get_or_init(|| {
        let _ = writeln!(std::io::stderr(), "\n*** {line} ***\n");
    });
}

/// The default Redis for the tests.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
/// Env var overriding [`DEFAULT_REDIS_URL`].
pub const REDIS_URL_ENV: &str = "SESAME_TEST_REDIS_URL";

/// The Redis URL if Redis answers; `None` after a loud skip line otherwise (a panic when
/// `SESAME_REQUIRE_SERVICES=1`).
pub async fn redis_url() -> Option<String> {
    let url = std::env::var(REDIS_URL_ENV)
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| DEFAULT_REDIS_URL.to_owned());
    let probe = format!("sesame_t:probe:{}:", uuid::Uuid::new_v4().simple());
    match sesame_server::ephemeral::RedisEphemeral::connect(&url, &probe).await {
        Ok(_) => Some(url),
        Err(e) => {
            if std::env::var(REQUIRE_SERVICES_ENV).as_deref() == Ok("1") {
                panic!("Redis is required ({REQUIRE_SERVICES_ENV}=1) but unusable at {url}: {e}");
            }
            static SHOWN: OnceLock<()> = OnceLock::new();
            SHOWN.get_or_init(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "\n*** SKIPPING Redis tests: unusable at {url}: {e} (set {REDIS_URL_ENV} \
                     to point elsewhere, {REQUIRE_SERVICES_ENV}=1 to fail instead) ***\n"
                );
            });
            None
        }
    }
}

/// A plain Redis connection, outside the code under test.
pub async fn redis_raw(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

/// The keys under `prefix`, by `SCAN` (the prefixes tests make hold no glob characters).
pub async fn redis_keys_under(url: &str, prefix: &str) -> Vec<Vec<u8>> {
    assert!(
        !prefix.contains(['*', '?', '[', ']', '\\']),
        "glob characters in {prefix:?}"
    );
    let mut conn = redis_raw(url).await;
    let mut cursor: u64 = 0;
    let mut keys = Vec::new();
    loop {
        let (next, batch): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(500)
            .query_async(&mut conn)
            .await
            .unwrap();
        keys.extend(batch);
        if next == 0 {
            return keys;
        }
        cursor = next;
    }
}

/// Whether PostgreSQL answers, probed once per process; the first probe also sweeps
/// stale test schemas.
async fn postgres_available(url: &str) -> Result<(), String> {
    // The outcome only (no connection) is cached: each #[tokio::test] has its own
    // runtime, and a connection must not outlive the runtime that made it.
    static PROBE: OnceCell<Result<(), String>> = OnceCell::const_new();
    PROBE
        .get_or_init(|| async {
            let mut conn =
                match tokio::time::timeout(PROBE_TIMEOUT, PgConnection::connect(url)).await {
                    Ok(Ok(conn)) => conn,
                    Ok(Err(e)) => return Err(e.to_string()),
                    Err(_) => return Err(format!("no answer within {PROBE_TIMEOUT:?}")),
                };
            if let Err(e) = drop_stale_schemas(&mut conn).await {
                eprintln!("warning: could not sweep stale test schemas: {e}");
            }
            let _ = conn.close().await;
            Ok(())
        })
        .await
        .clone()
}

/// Drops `sesame_t_<secs>_…` schemas created more than [`STALE_SCHEMA_AGE`] ago.
async fn drop_stale_schemas(conn: &mut PgConnection) -> Result<(), sqlx::Error> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE $1")
            .bind(format!("{}%", SCHEMA_PREFIX.replace('_', "\\_")))
            .fetch_all(&mut *conn)
            .await?;
    let cutoff = unix_now().saturating_sub(STALE_SCHEMA_AGE.as_secs());
    for name in names {
        let created = name
            .strip_prefix(SCHEMA_PREFIX)
            .and_then(|rest| rest.split('_').next())
            .and_then(|secs| secs.parse::<u64>().ok());
        if created.is_some_and(|secs| secs < cutoff) && is_plain_identifier(&name) {
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// Drops one test schema and everything in it.
async fn drop_schema(url: &str, schema: &str) -> Result<(), sqlx::Error> {
    assert!(
        schema.starts_with(SCHEMA_PREFIX) && is_plain_identifier(schema),
        "refusing to drop schema {schema:?}"
    );
    let mut conn = PgConnection::connect(url).await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut conn)
        .await?;
    conn.close().await
}

fn is_plain_identifier(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}
