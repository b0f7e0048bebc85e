//! `sesame serve`: runs the server until SIGINT/SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;
use sesame_server::config::Config;

/// Flags shared by `serve` and `admin`: where the configuration and the data live.
#[derive(Debug, Clone, Default, clap::Args, Serialize)]
pub struct StorageArgs {
    /// Configuration file (TOML); see sesame.example.toml.
    #[arg(long, env = "SESAME_CONFIG")]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// Data directory (SQLite database, generated master key) [default: ./sesame-data].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB [default: the SQLite file].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// File holding the master key (43 base64url characters or 64 hex digits).
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub master_key_file: Option<PathBuf>,
}

/// Flags of `sesame serve` (each overrides the file and the environment).
#[derive(Debug, Clone, clap::Args, Serialize)]
pub struct ServeArgs {
    #[command(flatten)]
    #[serde(flatten)]
    storage: StorageArgs,
    /// HTTP and WebSocket listen address [default: 127.0.0.1:7878].
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<SocketAddr>,
    /// Also serve the TCP line protocol on this address.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    tcp_listen: Option<SocketAddr>,
    /// Accept the plaintext-password TCP verbs REGISTER and AUTH even without TLS (over
    /// TLS they are accepted unless the configuration says `tcp_allow_password = false`).
    #[arg(long)]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tcp_allow_password: bool,
    /// TLS certificate chain (PEM) for the HTTP and TCP listeners; with --tls-key.
    /// Reloaded on SIGHUP and when the file changes.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of --tls-cert.
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    #[serde(skip_serializing_if = "Option::is_none")]
    tls_key: Option<PathBuf>,
    /// Development: serve a self-signed certificate kept in the data directory (created on
    /// first start, reused after; its SHA-256 fingerprint is printed).
    #[arg(long, conflicts_with = "tls_cert")]
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls_self_signed: bool,
    /// Also listen for plain HTTP here, answering every request with a redirect to HTTPS.
    #[arg(long, value_name = "ADDR")]
    #[serde(skip_serializing_if = "Option::is_none")]
    http_redirect_listen: Option<SocketAddr>,
    /// Log format: text or json.
    #[arg(long)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
}

/// Loads the configuration from a file, the environment and `overrides`.
pub fn load_config(
    file: Option<&std::path::Path>,
    overrides: impl Serialize,
) -> anyhow::Result<Config> {
    Ok(Config::load(file, overrides)?)
}

/// Runs the server until SIGINT/SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = load_config(args.storage.config.as_deref(), &args)?;
    if let Some(file) = &args.storage.config {
        let shown = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
        println!("sesame: configuration {}", shown.display());
    }
    init_logging(&config.log_format);
    sesame_server::server::run(config, shutdown_signal())
        .await
        .context("sesame serve")
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let _ = if format == "json" {
        // Every stderr line is then JSON: a panic (answered `500 internal` by the HTTP layer)
        // is logged as an event instead of the default hook's plain text.
        std::panic::set_hook(Box::new(|info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .copied()
                .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
                .unwrap_or("(no message)");
            let location = info
                .location()
                .map_or_else(String::new, ToString::to_string);
            tracing::error!(target: "sesame::panic", location = location.as_str(), "panic: {message}");
        }));
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
