//! `sesame serve`: opens the database and secrets, binds the listeners, runs until SIGINT or
//! SIGTERM, then stops accepting, lets in-flight requests finish and closes the pool.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::ephemeral::{Ephemeral, EphemeralError, MemoryEphemeral, RedisEphemeral};
use crate::pool::HashPool;
use crate::rng::Rng;
use crate::secrets::{MasterKey, SecretsError, ServerSecrets};
use crate::service::{Clock, Parts, Sesame, Settings, ThrottleSettings};
use crate::store::{self, ConnectOptions, Store};
use crate::tcp::{self, TcpSettings};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// Bad configuration.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// An `[[oidc_clients]]` entry of the configuration is invalid.
    #[error("oidc_clients: {0}")]
    OidcClients(String),
    /// The master key or the secrets failed.
    #[error(transparent)]
    Secrets(#[from] SecretsError),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] store::StoreError),
    /// The short-lived state store (`redis_url`) is unreachable or unusable.
    #[error(transparent)]
    Ephemeral(#[from] EphemeralError),
    /// A listener or the data directory failed (the cause follows in the error chain).
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// The SQLite database exists but the generated key file next to it is gone.
    #[error(
        "the database exists but its master key file {0} is missing: restore the key from your \
         backup (or set SESAME_MASTER_KEY); a new key cannot open the existing secrets"
    )]
    MissingKeyFile(String),
    /// No master key for a shared database.
    #[error(
        "no master key: set SESAME_MASTER_KEY or master_key_file (every node sharing this \
         database needs the same key; `sesame admin gen-master-key` prints a fresh one)"
    )]
    NoMasterKey,
    /// `admin` pointed at a data directory without a Sesame database: it creates nothing.
    #[error("no Sesame data in {0}; pass --data-dir or --database-url")]
    NoInstallation(String),
    /// `serve` pointed at a directory that holds other files but no Sesame database.
    #[error(
        "{0} is not empty and holds no Sesame database: a new installation is only created in \
         an absent or empty directory; pass --data-dir or --database-url"
    )]
    NotAnInstallation(String),
    /// The TLS certificate or settings are unusable.
    #[error("tls: {0}")]
    Tls(#[from] crate::tls::TlsError),
    /// The mail settings (`smtp_*`) are unusable.
    #[error("mail settings: {}", .0 .0)]
    Mail(#[from] crate::service::MailError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ServeError {
    let what = what.into();
    move |source| ServeError::Io { what, source }
}

/// Opens an existing installation only (`sesame admin`): with the embedded SQLite database,
/// a missing database file is an error instead of a new, empty installation.
pub async fn open_existing(config: &Config) -> Result<(Arc<dyn Store>, MasterKey), ServeError> {
    if let Some(db) = sqlite_file(config).filter(|_| config.is_sqlite()) {
        if !db.exists() {
            return Err(ServeError::NoInstallation(absolute(&config.data_dir)));
        }
    }
    open(config).await
}

/// The absolute form of `path`, for messages.
fn absolute(path: &std::path::Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_owned())
        .display()
        .to_string()
}

/// Refuses to start a new SQLite installation in a directory that holds other files, and
/// says so in one line when a new one is created.
fn check_new_installation(config: &Config) -> Result<(), ServeError> {
    let Some(db) = sqlite_file(config).filter(|_| config.is_sqlite()) else {
        return Ok(());
    };
    if db.exists() {
        return Ok(());
    }
    let dir = &config.data_dir;
    // A master key put there beforehand is part of a new installation, not someone else's.
    let empty = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .flatten()
            .all(|e| e.file_name() == std::ffi::OsStr::new("master.key")),
        Err(_) => true,
    };
    if !empty {
        return Err(ServeError::NotAnInstallation(absolute(dir)));
    }
    println!("sesame: creating a new installation in {}", absolute(dir));
    Ok(())
}

/// Opens the store and the master key the configuration names (shared by `serve` and
/// `admin`). Creates the data directory and, for the embedded default, the key file; a new
/// SQLite installation only in an absent or empty directory.
pub async fn open(config: &Config) -> Result<(Arc<dyn Store>, MasterKey), ServeError> {
    let sqlite = config.is_sqlite();
    check_new_installation(config)?;
    if sqlite || config.master_key_file.is_none() {
        create_private_dir(&config.data_dir)
            .map_err(io(format!("data directory {}", config.data_dir.display())))?;
    }
    let master = if let Some(text) = &config.master_key {
        MasterKey::parse(text)?
    } else if let Some(path) = &config.master_key_file {
        MasterKey::load_or_create(path, false)?.0
    } else {
        let path = config.data_dir.join("master.key");
        if !sqlite && !path.exists() {
            return Err(ServeError::NoMasterKey);
        }
        // A key is generated only for a database that does not exist yet: an existing one
        // without its key needs the original key back, never a new one.
        let fresh_database = !sqlite_file(config).is_some_and(|db| db.exists());
        if !path.exists() && !fresh_database {
            return Err(ServeError::MissingKeyFile(path.display().to_string()));
        }
        let (key, created) = MasterKey::load_or_create(&path, sqlite && fresh_database)?;
        if created {
            println!(
                "sesame: created master key {} (mode 0600): back it up",
                path.display()
            );
        }
        key
    };
    let options = ConnectOptions {
        max_connections: config.database_max_connections,
        pg_schema: config.database_schema.clone(),
    };
    let store = store::connect(&config.database_url(), &options).await?;
    Ok((store, master))
}

/// The file of a `sqlite://PATH[?…]` database URL.
fn sqlite_file(config: &Config) -> Option<std::path::PathBuf> {
    let url = config.database_url();
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && !path.contains(":memory:")).then(|| std::path::PathBuf::from(path))
}

/// Creates `dir` (and its parents) if missing; a directory created here is owner-only (0700),
/// since it holds the database and possibly the master key.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Builds the service from an opened store and master key.
pub async fn build(
    config: &Config,
    store: Arc<dyn Store>,
    master: &MasterKey,
) -> Result<Sesame, ServeError> {
    build_with_clock(config, store, master, crate::clock::serve_clock()).await
}

/// Builds the service on the given clock (tests move time with a
/// [`ManualClock`](crate::service::ManualClock)).
pub async fn build_with_clock(
    config: &Config,
    store: Arc<dyn Store>,
    master: &MasterKey,
    clock: Arc<dyn Clock>,
) -> Result<Sesame, ServeError> {
    build_with(config, store, master, clock, Rng::os()).await
}

/// Builds the service on the given clock and random number generator (tests seed one).
pub async fn build_with(
    config: &Config,
    store: Arc<dyn Store>,
    master: &MasterKey,
    clock: Arc<dyn Clock>,
    rng: Rng,
) -> Result<Sesame, ServeError> {
    let now = i64::try_from(clock.now()).unwrap_or(0);
    let secrets = ServerSecrets::load_or_create(store.as_ref(), master, now).await?;
    let threads = config.hash_threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
    });
    // Redis when configured (shared by every node, and the relay's doorbell between them),
    // else this process's memory.
    let (ephemeral, relay): (Arc<dyn Ephemeral>, _) = match &config.redis_url {
        Some(url) => {
            let prefix = &config.redis_key_prefix;
            (
                Arc::new(RedisEphemeral::connect(url, prefix).await?),
                crate::relay::Relay::cluster(url, prefix).await?,
            )
        }
        None => (Arc::new(MemoryEphemeral::new()), crate::relay::Relay::new()),
    };
    let parts = Parts {
        store,
        ephemeral,
        secrets,
        // SMTP when `smtp_host` is set, else the development outbox in the data directory.
        mailer: crate::smtp::mailer_for(config)?,
        issuer: config.issuer(),
        audience: config.audience.clone(),
        access_ttl: config.access_token_ttl,
        pool: HashPool::with_priority(threads, config.hash_queue, config.hash_idle_priority),
        clock,
        rng,
        settings: Settings {
            ksf: config.ksf(),
            login_ttl: config.login_ttl,
            session_idle: config.session_idle,
            session_absolute: config.session_absolute,
            throttle: ThrottleSettings {
                free_attempts: config.throttle_free_attempts,
                max_delay: config.throttle_max_delay,
                window: config.throttle_window,
                per_address: config.throttle_per_address,
                address_window: config.throttle_address_window,
            },
            totp_issuer: config.totp_issuer.clone(),
            reauth_window: config.reauth_window,
            trusted_proxies: config.trusted_proxies.clone(),
            relay: crate::relay::RelaySettings {
                message_max_bytes: config.message_max_bytes,
                mailbox_max_messages: config.mailbox_max_messages,
                message_max_age: config.message_max_age_days.saturating_mul(86_400),
                send_rate_per_minute: config.send_rate_per_minute,
            },
            tls: config.tls_enabled(),
            secure_cookies: config.tls_enabled()
                || config
                    .issuer
                    .as_deref()
                    .is_some_and(|issuer| issuer.starts_with("https://")),
            relying_party: config.relying_party()?,
        },
    };
    let sesame = Sesame::with_relay(parts, relay);
    sesame
        .oidc_sync_config_clients(&config.oidc_clients)
        .await
        .map_err(|e| ServeError::OidcClients(e.message.into_owned()))?;
    Ok(sesame)
}

/// Opens everything the configuration names, binds the listeners and serves until `shutdown`
/// resolves (the binary passes SIGINT/SIGTERM).
pub async fn run(
    config: Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let (store, master) = open(&config).await?;
    let sesame = build(&config, store, &master).await?;
    drop(master);
    let http = TcpListener::bind(config.listen)
        .await
        .map_err(io(format!("listen on {}", config.listen)))?;
    let tcp = match config.tcp_listen {
        Some(addr) => Some(
            TcpListener::bind(addr)
                .await
                .map_err(io(format!("listen on {addr}")))?,
        ),
        None => None,
    };
    serve(&config, sesame, http, tcp, shutdown).await
}

/// Serves `sesame` on already-bound listeners until `shutdown` resolves, then stops accepting,
/// lets in-flight requests and connections finish and closes the database pool.
///
/// The configuration's TLS settings ([`crate::tls`]) apply to both listeners, and
/// `http_redirect_listen` is bound here. Prints the fingerprints and the bound addresses to
/// stdout, one `sesame: …` line each.
pub async fn serve(
    config: &Config,
    sesame: Sesame,
    http: TcpListener,
    tcp: Option<TcpListener>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let store = sesame.store().clone();
    announce(config, &sesame);
    let http_addr = http.local_addr().map_err(io("local address"))?;
    let tls = crate::tls::ServerTls::from_config(config, http_addr)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(tls) = &tls {
        // Before the banner: SIGHUP reloads from the moment "listening" is printed.
        tls.spawn(crate::clock::serve_clock(), stop_rx.clone(), &mut tasks);
    }
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("sesame: listening on {scheme}://{http_addr}");
    if let Some(tls) = &tls {
        println!("sesame: {}", tls.describe());
    }
    let (settings, tcp_cap) = listener_settings(config);
    if let Some(listener) = tcp {
        let local = listener.local_addr().map_err(io("local address"))?;
        let over = if tls.is_some() { " (TLS)" } else { "" };
        println!("sesame: tcp listening on {local}{over}");
        let settings = TcpSettings {
            allow_password: config.tcp_allow_password.unwrap_or(tls.is_some()),
            max_connections: tcp_cap,
        };
        let acceptor = tls.as_ref().map(|t| t.tcp_acceptor());
        tasks.spawn(tcp::serve(
            listener,
            sesame.clone(),
            settings,
            acceptor,
            stop_rx.clone(),
        ));
    }
    if let Some(addr) = config.http_redirect_listen {
        let redirect = redirect_listener(addr, http_addr.port(), settings, stop_rx.clone());
        tasks.spawn(redirect.await?);
    }
    spawn_background(config, &sesame, &stop_rx, &mut tasks);

    let mut app = crate::http::router(sesame.clone());
    if tls.is_some() {
        app = crate::tls::redirect::hsts(app, config.tls_hsts_max_age_secs);
    }
    let acceptor = tls.as_ref().map(|t| t.http_acceptor());
    let server = crate::listen::serve(http, app, settings, acceptor, stop_rx.clone());
    let signal = tokio::spawn(async move {
        shutdown.await;
        println!("sesame: shutting down");
        let _ = stop_tx.send(true);
    });
    server.await;
    signal.abort();
    while tasks.join_next().await.is_some() {}
    store.close().await;
    Ok(())
}

/// The HTTP listener's limits and the TCP connection cap, fitted to the descriptor limit.
fn listener_settings(config: &Config) -> (crate::listen::HttpSettings, usize) {
    let budget = crate::accept::raise_descriptor_limit();
    let (http_cap, tcp_cap) = budget.caps(config.http_max_connections, config.tcp_max_connections);
    if (http_cap, tcp_cap) != (config.http_max_connections, config.tcp_max_connections) {
        tracing::warn!(
            http_max_connections = http_cap,
            tcp_max_connections = tcp_cap,
            soft_limit = budget.soft,
            "connection caps lowered to fit the open-files limit"
        );
    }
    let settings = crate::listen::HttpSettings {
        max_connections: http_cap,
        max_per_address: config.http_max_connections_per_address,
        header_timeout: Duration::from_secs(config.http_header_timeout_secs),
        idle_timeout: Duration::from_secs(config.http_idle_timeout_secs),
        body_timeout: Duration::from_secs(config.http_body_timeout_secs),
    };
    (settings, tcp_cap)
}

/// Binds `http_redirect_listen` and returns its server (every request redirected to HTTPS
/// on `https_port`).
async fn redirect_listener(
    addr: std::net::SocketAddr,
    https_port: u16,
    settings: crate::listen::HttpSettings,
    stop: watch::Receiver<bool>,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, ServeError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(io(format!("listen on {addr}")))?;
    let local = listener.local_addr().map_err(io("local address"))?;
    println!("sesame: redirecting http://{local} to https (port {https_port})");
    let app = crate::tls::redirect::redirect_router(https_port);
    Ok(crate::listen::serve(listener, app, settings, None, stop))
}

/// Prints what the server runs with.
fn announce(config: &Config, sesame: &Sesame) {
    let store = sesame.store();
    let (_, fingerprint) = sesame.server_identity();
    println!("sesame: server key fingerprint {fingerprint}");
    match sqlite_file(config).filter(|_| config.is_sqlite()) {
        Some(db) => println!("sesame: database {} {}", store.backend(), absolute(&db)),
        None => println!("sesame: database {}", store.backend()),
    }
    println!("sesame: mail: {}", sesame.mail_description());
    if store.backend() == store::Backend::Postgres && config.redis_url.is_none() {
        eprintln!(
            "sesame: warning: PostgreSQL without redis_url: several nodes would not share \
             login state"
        );
    }
    if let Some(node) = sesame.relay().node_id() {
        println!("sesame: cluster node {node} (messages for other nodes ring through Redis)");
    }
}

/// The cleanup loop, and the relay's shutdown: relay connections (upgraded WebSockets)
/// outlive the HTTP server's graceful shutdown, so they are closed when the server stops,
/// before the database pool.
fn spawn_background(
    config: &Config,
    sesame: &Sesame,
    stop_rx: &watch::Receiver<bool>,
    tasks: &mut tokio::task::JoinSet<()>,
) {
    let retention = (config.audit_retention_days > 0).then(|| config.audit_retention_days * 86_400);
    let every = Duration::from_secs(config.cleanup_interval.max(1));
    tasks.spawn(cleanup_loop(
        sesame.clone(),
        every,
        retention,
        stop_rx.clone(),
    ));
    let relay = sesame.clone();
    let mut relay_stop = stop_rx.clone();
    tasks.spawn(async move {
        let _ = relay_stop.wait_for(|stop| *stop).await;
        relay.relay().shutdown();
        relay.relay().wait_closed(Duration::from_secs(5)).await;
    });
}

async fn cleanup_loop(
    sesame: Sesame,
    every: Duration,
    retention: Option<u64>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        match sesame.cleanup(retention).await {
            Ok((s, a)) if s + a > 0 => {
                tracing::info!(sessions = s, audit = a, "deleted expired records")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%e, "cleanup failed"),
        }
        match sesame.expire_messages().await {
            Ok(n) if n > 0 => tracing::info!(messages = n, "deleted expired messages"),
            Ok(_) => {}
            Err(e) => tracing::warn!(%e, "message cleanup failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
