//! Built-in TLS for the HTTP/WebSocket listener and the TCP line-protocol listener.
//!
//! rustls with the *ring* provider (the one sqlx, reqwest and lettre already use: pure Rust
//! and assembly, no C toolchain), TLS 1.2 and 1.3 only. The certificate comes from one of:
//!
//! * **Files** (`tls_cert`, `tls_key`, PEM). They are reloaded on SIGHUP and when their
//!   modification time or size changes (checked every `tls_reload_interval_secs`). A reload
//!   swaps the certificate new handshakes get; open connections keep theirs and are not
//!   dropped. A new file that does not load (bad PEM, key not matching the certificate) is
//!   logged and the certificate in use stays.
//! * **Self-signed** (`tls_self_signed`, development): `<data_dir>/tls/self-signed.crt` and
//!   `self-signed.key` (0600), created on first start for the listen address and reused
//!   after, then treated as files.
//! * **ACME** (`acme_domains`, [`acme`]): obtained from an ACME CA, cached and renewed.
//!
//! Whichever it is, [`ServerTls`] holds one [`CertResolver`] the listeners' rustls
//! configurations share, so every listener serves the same certificate.
//!
//! When TLS is on, the service knows it ([`crate::Sesame::served_over_tls`]: cookies set by
//! the web code must then be `Secure`), every answer carries `Strict-Transport-Security`
//! ([`redirect::hsts`]), the token issuer and `/.well-known/sesame` say `https://`, and the
//! TCP listener accepts the plaintext-password verbs unless `tcp_allow_password = false`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::ResolvesServerCert;
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;

pub mod acme;
pub mod redirect;
mod reload;
mod resolver;
pub mod self_signed;

pub use resolver::CertResolver;

/// ALPN protocol of the TLS-ALPN-01 ACME challenge (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM certificate or key.
    #[error("{}: {what}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// The key does not fit the certificate, or rustls refused them.
    #[error("certificate {} with key {}: {source}", cert.display(), key.display())]
    Key {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
    /// Generating or writing the development certificate failed.
    #[error("self-signed certificate: {0}")]
    SelfSigned(String),
    /// rustls refused the configuration.
    #[error("rustls: {0}")]
    Rustls(rustls::Error),
    /// ACME settings or the ACME cache are unusable.
    #[error("acme: {0}")]
    Acme(String),
}

/// The crypto provider of every TLS configuration here: *ring*.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The SHA-256 fingerprint of a DER certificate as `openssl x509 -fingerprint -sha256`
/// prints it: upper-case hex pairs joined by `:`.
pub fn certificate_fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// Reads a PEM certificate chain (leaf first) and its PEM private key, and checks that they
/// belong together.
pub fn load_certified_key(cert: &Path, key: &Path) -> Result<Arc<CertifiedKey>, TlsError> {
    let cert_pem = std::fs::read(cert).map_err(|source| TlsError::Read {
        path: cert.to_owned(),
        source,
    })?;
    let key_pem = zeroize::Zeroizing::new(std::fs::read(key).map_err(|source| TlsError::Read {
        path: key.to_owned(),
        source,
    })?);
    certified_key_from_pem(&cert_pem, &key_pem, cert, key)
}

/// A PEM parse error in words (the library's own shows marker lines as byte lists).
fn pem_problem(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "a section is missing its `{}` line",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { line } => format!(
            "malformed section start `{}`",
            String::from_utf8_lossy(line)
        ),
        other => other.to_string(),
    }
}

/// [`load_certified_key`] on the files' contents (`cert`, `key` name them in errors).
pub fn certified_key_from_pem(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert: &Path,
    key: &Path,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem_error = |path: &Path, what: String| TlsError::Pem {
        path: path.to_owned(),
        what,
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            pem_error(
                cert,
                format!("not a PEM certificate chain: {}", pem_problem(&e)),
            )
        })?;
    if chain.is_empty() {
        return Err(pem_error(cert, "no CERTIFICATE block".into()));
    }
    let private = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        pem_error(
            key,
            format!("no usable PEM private key: {}", pem_problem(&e)),
        )
    })?;
    let certified =
        CertifiedKey::from_der(chain, private, &provider()).map_err(|source| TlsError::Key {
            cert: cert.to_owned(),
            key: key.to_owned(),
            source,
        })?;
    // `from_der` tolerates keys whose public half it cannot derive; insist on a match.
    certified.keys_match().map_err(|source| TlsError::Key {
        cert: cert.to_owned(),
        key: key.to_owned(),
        source,
    })?;
    Ok(Arc::new(certified))
}

/// A rustls server configuration over `resolver`: TLS 1.2 and 1.3, the given ALPN protocols.
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Rustls)?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Where the certificate comes from.
#[derive(Debug, Clone)]
enum Source {
    /// Files, reloaded when they change (`tls_cert`/`tls_key`, or the self-signed pair).
    Files { cert: PathBuf, key: PathBuf },
    /// ACME.
    Acme(acme::AcmeSettings),
}

/// The TLS side of a running server: the shared certificate and the listeners' acceptors.
#[derive(Clone)]
pub struct ServerTls {
    resolver: Arc<CertResolver>,
    http: TlsAcceptor,
    tcp: TlsAcceptor,
    source: Source,
    reload_every: std::time::Duration,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// The TLS the configuration asks for (`None`: plain listeners), with its certificate
    /// loaded (for ACME: the cached one, if any). `listen` is the bound HTTP address (the
    /// self-signed certificate names its IP address).
    pub fn from_config(
        config: &Config,
        listen: std::net::SocketAddr,
    ) -> Result<Option<ServerTls>, TlsError> {
        let source = if let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) {
            Source::Files {
                cert: cert.clone(),
                key: key.clone(),
            }
        } else if config.tls_self_signed {
            let pair = self_signed::load_or_create(&config.data_dir, listen.ip())?;
            Source::Files {
                cert: pair.cert,
                key: pair.key,
            }
        } else if !config.acme_domains.is_empty() {
            Source::Acme(acme::AcmeSettings::from_config(config)?)
        } else {
            return Ok(None);
        };
        let resolver = Arc::new(CertResolver::new());
        let mut http_alpn: Vec<&[u8]> = vec![b"http/1.1"];
        match &source {
            Source::Files { cert, key } => resolver.set(load_certified_key(cert, key)?),
            Source::Acme(settings) => {
                resolver.set_challenge_dir(settings.challenge_dir());
                if let Some(cached) = settings.load_cached()? {
                    resolver.set(cached);
                }
                http_alpn.push(ACME_TLS_ALPN);
            }
        }
        Ok(Some(ServerTls {
            http: TlsAcceptor::from(server_config(resolver.clone(), &http_alpn)?),
            tcp: TlsAcceptor::from(server_config(resolver.clone(), &[])?),
            resolver,
            source,
            reload_every: std::time::Duration::from_secs(config.tls_reload_interval_secs),
        }))
    }

    /// The acceptor of the HTTP/WebSocket listener (ALPN `http/1.1`, and `acme-tls/1` with
    /// ACME).
    pub fn http_acceptor(&self) -> TlsAcceptor {
        self.http.clone()
    }

    /// The acceptor of the TCP line-protocol listener.
    pub fn tcp_acceptor(&self) -> TlsAcceptor {
        self.tcp.clone()
    }

    /// The certificate resolver every listener shares.
    pub fn resolver(&self) -> &Arc<CertResolver> {
        &self.resolver
    }

    /// One `sesame: …` line about the certificate in use, for the start-up banner.
    pub fn describe(&self) -> String {
        let current = self
            .resolver
            .current()
            .and_then(|c| c.cert.first().map(|der| certificate_fingerprint(der)));
        match (&self.source, current) {
            (Source::Files { cert, .. }, Some(fp)) => format!(
                "TLS certificate {} SHA-256 fingerprint {fp}",
                cert.display()
            ),
            (Source::Acme(s), Some(fp)) => format!(
                "TLS certificate from ACME for {} SHA-256 fingerprint {fp}",
                s.domains().join(", ")
            ),
            (Source::Acme(s), None) => format!(
                "TLS certificate from ACME for {}: none cached yet, ordering one",
                s.domains().join(", ")
            ),
            (Source::Files { cert, .. }, None) => format!("TLS certificate {}", cert.display()),
        }
    }

    /// Starts what keeps the certificate current until `stop`: the file reloader (SIGHUP
    /// and polling) or the ACME order and renewal loop.
    pub fn spawn(
        &self,
        clock: Arc<dyn crate::clock::Clock>,
        stop: watch::Receiver<bool>,
        tasks: &mut tokio::task::JoinSet<()>,
    ) {
        match &self.source {
            Source::Files { cert, key } => {
                let watcher = reload::Reloader::new(
                    self.resolver.clone(),
                    cert.clone(),
                    key.clone(),
                    self.reload_every,
                );
                let _ = clock;
                tasks.spawn(watcher.run(stop));
            }
            Source::Acme(settings) => {
                let resolver = self.resolver.clone();
                tasks.spawn(acme::run(settings.clone(), resolver, clock, stop));
            }
        }
    }
}
