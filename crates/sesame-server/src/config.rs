//! Configuration: defaults, then a TOML file, then `SESAME_*` environment variables, then
//! command-line flags (each overriding the one before).
//!
//! Every key is top-level; the environment variable of key `foo_bar` is `SESAME_FOO_BAR`.
//! `sesame.example.toml` at the repository root lists every key with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

/// Every configuration key. See `sesame.example.toml` for what each does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// HTTP and WebSocket listen address.
    pub listen: SocketAddr,
    /// TCP line-protocol listen address; off when absent.
    pub tcp_listen: Option<SocketAddr>,
    /// Accept the plaintext-password TCP verbs (`REGISTER`, `AUTH`). Unset: accepted only
    /// when the TCP listener speaks TLS; `true`: always; `false`: never.
    pub tcp_allow_password: Option<bool>,
    /// Most simultaneous TCP connections.
    pub tcp_max_connections: usize,
    /// Most simultaneous HTTP connections (WebSockets included); lowered to fit the
    /// descriptor limit. Beyond it a connection is answered 503 and closed.
    pub http_max_connections: usize,
    /// Most simultaneous HTTP connections from one IP address (0: no per-address cap).
    pub http_max_connections_per_address: usize,
    /// Seconds a client has to send a complete request head, from the connection's start or
    /// from its first byte after a previous answer.
    pub http_header_timeout_secs: u64,
    /// Seconds a keep-alive connection may wait, silent, for its next request.
    pub http_idle_timeout_secs: u64,
    /// Seconds a client has to send a whole request body, from the end of the head.
    pub http_body_timeout_secs: u64,
    /// Data directory (SQLite database, generated master key).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: `sqlite://<data_dir>/sesame.db`.
    pub database_url: Option<String>,
    /// Database connection pool size (PostgreSQL).
    pub database_max_connections: u32,
    /// PostgreSQL schema to use (created if missing); default: the connection's search path.
    pub database_schema: Option<String>,
    /// `redis://[user:password@]host[:port][/db]` (Redis 6.2 or later): keeps login states
    /// and throttle counters in Redis, shared by every node, instead of in this process. Set
    /// it whenever several nodes serve one PostgreSQL database; default: in memory.
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and of the doorbell channel, so several deployments (or test
    /// runs) can share one Redis. Every node of one deployment needs the same prefix.
    pub redis_key_prefix: String,
    /// The master key itself (43 base64url characters or 64 hex digits). Prefer the
    /// environment variable `SESAME_MASTER_KEY` or `master_key_file` to writing it here.
    pub master_key: Option<String>,
    /// File holding the master key; default: `<data_dir>/master.key`, created on first start
    /// when the database is the embedded SQLite default.
    pub master_key_file: Option<PathBuf>,
    /// Access-token issuer (`iss`); default: `http://<listen>`.
    pub issuer: Option<String>,
    /// Access-token audience (`aud`).
    pub audience: String,
    /// Access-token lifetime in seconds (at most 900).
    pub access_token_ttl: u64,
    /// Session idle timeout, seconds.
    pub session_idle: u64,
    /// Session absolute lifetime, seconds.
    pub session_absolute: u64,
    /// Lifetime of an OPAQUE login id, seconds.
    pub login_ttl: u64,
    /// Argon2id memory for new records, KiB.
    pub argon2_memory: u32,
    /// Argon2id passes for new records.
    pub argon2_iterations: u32,
    /// Argon2id lanes for new records.
    pub argon2_parallelism: u32,
    /// Hashing threads; default: one per core.
    pub hash_threads: Option<usize>,
    /// Hashing jobs that may wait; beyond this requests get 503.
    pub hash_queue: usize,
    /// Run the hashing threads at the lowest scheduling class (Linux `SCHED_IDLE`): any
    /// other runnable thread, such as the runtime answering a health check, takes the core
    /// from them at once. Hashing then only gets the CPU the rest leaves.
    pub hash_idle_priority: bool,
    /// Login attempts per account before delays start.
    pub throttle_free_attempts: u64,
    /// Longest delay between attempts on one account, seconds.
    pub throttle_max_delay: u64,
    /// Attempts are forgotten after this many seconds without one.
    pub throttle_window: u64,
    /// Login/registration requests per address per window (0: unlimited).
    pub throttle_per_address: u64,
    /// The per-address window, seconds.
    pub throttle_address_window: u64,
    /// Audit entries older than this many days are deleted (0 keeps them forever).
    pub audit_retention_days: u64,
    /// How often expired sessions and old audit entries are deleted, seconds.
    pub cleanup_interval: u64,
    /// Largest message (ciphertext) the relay accepts, bytes.
    pub message_max_bytes: usize,
    /// Most messages waiting in one user's mailbox.
    pub mailbox_max_messages: u64,
    /// Undelivered messages older than this many days are deleted (0 keeps them).
    pub message_max_age_days: u64,
    /// Messages one user may send per minute (0: unlimited).
    pub send_rate_per_minute: u64,
    /// `text` or `json` log lines.
    pub log_format: String,
    /// Issuer name shown in authenticator apps for TOTP.
    pub totp_issuer: String,
    /// WebAuthn relying party id (a domain) for passkeys; default: the issuer's host, or
    /// `localhost` when the issuer is an address ([`crate::relying_party`]).
    pub webauthn_rp_id: Option<String>,
    /// Origins passkeys may be used from (`https://host[:port]`); default: the issuer's.
    pub webauthn_origins: Vec<String>,
    /// Seconds a login or re-authentication counts as fresh for protected operations.
    pub reauth_window: u64,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` names the client; empty: the
    /// TCP peer is the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// SMTP server for outgoing mail (email codes); unset: mail goes to `<data_dir>/outbox`.
    pub smtp_host: Option<String>,
    /// SMTP port (587 submission with STARTTLS, 465 with `tls`).
    pub smtp_port: u16,
    /// `starttls` (required, default), `tls` (implicit TLS) or `none` (plain text: loopback
    /// and testing only; see [`crate::smtp`]).
    pub smtp_security: String,
    /// SMTP user name, if the server wants authentication.
    pub smtp_username: Option<String>,
    /// SMTP password; prefer the environment variable `SESAME_SMTP_PASSWORD`.
    pub smtp_password: Option<String>,
    /// `From:` of outgoing mail (SMTP and outbox).
    pub smtp_from: String,
    /// Seconds to wait for the SMTP server (connect and each command).
    pub smtp_timeout_secs: u64,
    /// TLS certificate chain (PEM, leaf first) for the HTTP and TCP listeners; with
    /// `tls_key`. Reloaded on SIGHUP and when the file changes ([`crate::tls`]).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM: PKCS#8, PKCS#1 or SEC1) matching `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Development: serve a self-signed certificate kept in `<data_dir>/tls` (created on
    /// first start for the listen address, reused after).
    pub tls_self_signed: bool,
    /// Seconds between checks of the certificate files for changes (0: only on SIGHUP).
    pub tls_reload_interval_secs: u64,
    /// `max-age` of the `Strict-Transport-Security` header sent over TLS, seconds (0: none).
    pub tls_hsts_max_age_secs: u64,
    /// Plain-HTTP listener that only redirects (308) to the HTTPS listener; needs TLS.
    pub http_redirect_listen: Option<SocketAddr>,
    /// Domain names to obtain a certificate for from an ACME CA (TLS-ALPN-01 on `listen`,
    /// which must be reachable on port 443 under these names). Empty: no ACME.
    pub acme_domains: Vec<String>,
    /// The ACME directory URL; default: Let's Encrypt's production directory.
    pub acme_directory: String,
    /// Contact of the ACME account (`mailto:` URL or an email address).
    pub acme_contact: Option<String>,
    /// Account, certificate and key cache; default: `<data_dir>/acme`. Nodes serving the
    /// same names share one (a shared volume).
    pub acme_cache_dir: Option<PathBuf>,
    /// Extra root certificate (PEM) trusted for the ACME directory's own HTTPS (a private CA
    /// such as step-ca, or a test CA); default: the system's roots.
    pub acme_ca_file: Option<PathBuf>,
    /// OpenID Connect clients declared here (`[[oidc_clients]]`, docs/oidc.md): registered at
    /// start, replacing their earlier version; clients once declared here and no longer are
    /// removed. Clients registered with `sesame admin oidc client add` are left alone.
    pub oidc_clients: Vec<crate::oidc::ClientSpec>,
}

impl Default for Config {
    fn default() -> Self {
        let throttle = crate::service::ThrottleSettings::default();
        let ksf = sesame_proto::KsfParams::DEFAULT;
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            tcp_listen: None,
            tcp_allow_password: None,
            tcp_max_connections: 4096,
            http_max_connections: 8192,
            http_max_connections_per_address: 256,
            http_header_timeout_secs: 10,
            http_idle_timeout_secs: 60,
            http_body_timeout_secs: 30,
            data_dir: PathBuf::from("sesame-data"),
            database_url: None,
            database_max_connections: 10,
            database_schema: None,
            redis_url: None,
            redis_key_prefix: crate::ephemeral::DEFAULT_KEY_PREFIX.into(),
            master_key: None,
            master_key_file: None,
            issuer: None,
            audience: "sesame".into(),
            access_token_ttl: 900,
            session_idle: 7 * 24 * 3600,
            session_absolute: 30 * 24 * 3600,
            login_ttl: sesame_proto::server::DEFAULT_LOGIN_TTL_SECS,
            argon2_memory: ksf.memory,
            argon2_iterations: ksf.iterations,
            argon2_parallelism: ksf.parallelism,
            hash_threads: None,
            hash_queue: 64,
            hash_idle_priority: false,
            throttle_free_attempts: throttle.free_attempts,
            throttle_max_delay: throttle.max_delay,
            throttle_window: throttle.window,
            throttle_per_address: throttle.per_address,
            throttle_address_window: throttle.address_window,
            audit_retention_days: 90,
            cleanup_interval: 600,
            message_max_bytes: 64 * 1024,
            mailbox_max_messages: 10_000,
            message_max_age_days: 30,
            send_rate_per_minute: 600,
            log_format: "text".into(),
            totp_issuer: "Sesame".into(),
            webauthn_rp_id: None,
            webauthn_origins: Vec::new(),
            reauth_window: 300,
            trusted_proxies: Vec::new(),
            smtp_host: None,
            smtp_port: 587,
            smtp_security: "starttls".into(),
            smtp_username: None,
            smtp_password: None,
            smtp_from: "Sesame <no-reply@localhost>".into(),
            smtp_timeout_secs: 10,
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            tls_reload_interval_secs: 10,
            tls_hsts_max_age_secs: 31_536_000,
            http_redirect_listen: None,
            acme_domains: Vec::new(),
            oidc_clients: Vec::new(),
            acme_directory: crate::tls::acme::LETS_ENCRYPT.into(),
            acme_contact: None,
            acme_cache_dir: None,
            acme_ca_file: None,
        }
    }
}

/// Why the configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(String);

impl Config {
    /// Loads defaults, then `file` (if given; it must exist), then the environment, then
    /// `overrides` (flags; only the keys it sets).
    pub fn load(file: Option<&Path>, overrides: impl Serialize) -> Result<Config, ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(ConfigError(format!(
                    "file {} does not exist",
                    path.display()
                )));
            }
            fig = fig.merge(Toml::file(path));
        }
        let keys = Config::keys();
        fig = fig
            .merge(
                Env::prefixed("SESAME_")
                    .filter(move |k| keys.iter().any(|known| k == known.as_str())),
            )
            .merge(Serialized::defaults(overrides));
        let config: Config = fig.extract().map_err(config_error)?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a configuration file's text over the defaults (no environment, no flags) and
    /// validates it, as [`Config::load`] does for a file.
    pub fn from_toml_str(text: &str) -> Result<Config, ConfigError> {
        let config: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(text))
            .extract()
            .map_err(config_error)?;
        config.validate()?;
        Ok(config)
    }

    fn keys() -> Vec<String> {
        match serde_json::to_value(Config::default()) {
            Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let ksf = self.ksf();
        sesame_proto::KsfPolicy::DEFAULT
            .check(&ksf)
            .map_err(|e| ConfigError(format!("argon2 parameters: {e}")))?;
        if !(1..=crate::tokens::MAX_ACCESS_TTL_SECS).contains(&self.access_token_ttl) {
            return Err(ConfigError(
                "access_token_ttl must be 1..=900 seconds".into(),
            ));
        }
        if self.login_ttl == 0 || self.session_idle == 0 || self.session_absolute == 0 {
            return Err(ConfigError(
                "login_ttl, session_idle and session_absolute must be positive".into(),
            ));
        }
        if !(1..=16 * 1024 * 1024).contains(&self.message_max_bytes)
            || self.mailbox_max_messages == 0
        {
            return Err(ConfigError(
                "message_max_bytes must be 1..=16777216 and mailbox_max_messages positive".into(),
            ));
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            return Err(ConfigError("log_format must be `text` or `json`".into()));
        }
        if !matches!(self.smtp_security.as_str(), "starttls" | "tls" | "none") {
            return Err(ConfigError(
                "smtp_security must be `starttls`, `tls` or `none`".into(),
            ));
        }
        if self.http_header_timeout_secs == 0
            || self.http_idle_timeout_secs == 0
            || self.http_body_timeout_secs == 0
            || self.http_max_connections == 0
        {
            return Err(ConfigError(
                "http_max_connections and the http_*_timeout_secs must be positive".into(),
            ));
        }
        if self.smtp_timeout_secs == 0 {
            return Err(ConfigError("smtp_timeout_secs must be positive".into()));
        }
        self.relying_party()?;
        self.validate_tls()
    }

    fn validate_tls(&self) -> Result<(), ConfigError> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Err(ConfigError("tls_cert and tls_key go together".into()));
        }
        let sources = [
            self.tls_cert.is_some(),
            self.tls_self_signed,
            !self.acme_domains.is_empty(),
        ];
        if sources.iter().filter(|on| **on).count() > 1 {
            return Err(ConfigError(
                "choose one of tls_cert/tls_key, tls_self_signed and acme_domains".into(),
            ));
        }
        if self.http_redirect_listen.is_some() && !self.tls_enabled() {
            return Err(ConfigError(
                "http_redirect_listen needs TLS (tls_cert, tls_self_signed or acme_domains)".into(),
            ));
        }
        if !self.acme_domains.is_empty() {
            crate::tls::acme::check_settings(self).map_err(|e| ConfigError(e.to_string()))?;
        }
        Ok(())
    }

    /// The WebAuthn relying party: `webauthn_rp_id` and `webauthn_origins`, each defaulting
    /// to the issuer's ([`crate::relying_party`]). Refused when an origin cannot match the id.
    pub fn relying_party(&self) -> Result<crate::relying_party::RelyingParty, ConfigError> {
        use crate::relying_party::RelyingParty;
        if self.webauthn_rp_id.is_none() && self.webauthn_origins.is_empty() {
            return RelyingParty::derived(&self.issuer()).map_err(|e| ConfigError(e.to_string()));
        }
        let (default_id, default_origins) = RelyingParty::defaults_for(&self.issuer());
        let id = self.webauthn_rp_id.clone().unwrap_or(default_id);
        let origins = if self.webauthn_origins.is_empty() {
            default_origins
        } else {
            self.webauthn_origins.clone()
        };
        RelyingParty::new(&id, &origins).map_err(|e| ConfigError(e.to_string()))
    }

    /// Whether the listeners speak TLS (certificate files, self-signed or ACME).
    pub fn tls_enabled(&self) -> bool {
        self.tls_cert.is_some() || self.tls_self_signed || !self.acme_domains.is_empty()
    }

    /// Argon2id parameters for new records.
    pub fn ksf(&self) -> sesame_proto::KsfParams {
        sesame_proto::KsfParams {
            memory: self.argon2_memory,
            iterations: self.argon2_iterations,
            parallelism: self.argon2_parallelism,
        }
    }

    /// The database URL, defaulting to the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("sesame.db").display()))
    }

    /// Whether the database is SQLite.
    pub fn is_sqlite(&self) -> bool {
        self.database_url().starts_with("sqlite:")
    }

    /// The token issuer: `issuer`, else `https://<first ACME domain>` with ACME, else
    /// `https://<listen>` with TLS, else `http://<listen>`.
    pub fn issuer(&self) -> String {
        if let Some(issuer) = &self.issuer {
            return issuer.clone();
        }
        match (self.acme_domains.first(), self.tls_enabled()) {
            (Some(domain), _) => format!("https://{domain}"),
            (None, true) => format!("https://{}", self.listen),
            (None, false) => format!("http://{}", self.listen),
        }
    }
}

/// A configuration error in words: an unknown key names the nearest known one (a typo is the
/// usual cause) instead of listing every key.
fn config_error(e: figment::Error) -> ConfigError {
    if let figment::error::Kind::UnknownField(field, _) = &e.kind {
        let keys = Config::keys();
        let nearest = keys
            .iter()
            .min_by_key(|k| strsim::levenshtein(field, k))
            .filter(|k| strsim::levenshtein(field, k) <= 3);
        let place = e
            .metadata
            .as_ref()
            .and_then(|m| m.source.as_ref())
            .map(|s| format!(" in {s}"))
            .unwrap_or_default();
        let hint = match nearest {
            Some(k) => format!("; did you mean `{k}`?"),
            None => "; the keys are listed in sesame.example.toml".to_owned(),
        };
        return ConfigError(format!("unknown key `{field}`{place}{hint}"));
    }
    ConfigError(e.to_string())
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail closures return figment::Error
mod tests;
