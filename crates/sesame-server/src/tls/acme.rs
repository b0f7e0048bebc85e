//! Certificates from an ACME CA (RFC 8555; Let's Encrypt by default) with instant-acme.
//!
//! Configuration: `acme_domains` (the names; each must resolve to this server and reach
//! `listen` on port 443), `acme_directory`, `acme_contact`, `acme_cache_dir` (default
//! `<data_dir>/acme`) and `acme_ca_file` (a root trusted for the directory's own HTTPS, for a
//! private CA). The challenge is TLS-ALPN-01 (RFC 8737), answered by the HTTPS listener
//! itself: no port 80, no HTTP route.
//!
//! The cache holds the account (`account-<directory hash>.json`), the certificate with its
//! key (`certificate.pem`, one file so it is replaced atomically) and, during an order, the
//! challenge certificates (`tls-alpn-01/<name>.pem`); every file is 0600 in a 0700
//! directory. At start the cached certificate is served (if any); a background loop orders
//! one when there is none, renews it once two thirds of its lifetime have passed, retries
//! failures with a back-off (one minute doubling to an hour), and every hour picks up a
//! certificate another node sharing the cache wrote.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::sign::CertifiedKey;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use super::self_signed::{create_private_dir, write_private};
use super::{CertResolver, TlsError};
use crate::config::Config;

/// Let's Encrypt's production directory, the default `acme_directory`.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
/// Longest wait between two looks at the cache (another node may have renewed).
const RECHECK: Duration = Duration::from_secs(3600);
/// First retry delay after a failed order; doubles up to [`RECHECK`].
const FIRST_RETRY: Duration = Duration::from_secs(60);

fn err(what: &str, e: impl std::fmt::Display) -> TlsError {
    TlsError::Acme(format!("{what}: {e}"))
}

/// Checks the `acme_*` keys: DNS names (no wildcard, no IP address), an `https` directory.
pub fn check_settings(config: &Config) -> Result<(), TlsError> {
    for name in &config.acme_domains {
        let valid = rustls_pki_types::DnsName::try_from(name.as_str()).is_ok()
            && name.parse::<std::net::IpAddr>().is_err()
            && !name.contains('*');
        if !valid {
            return Err(TlsError::Acme(format!(
                "acme_domains: `{name}` is not a DNS name (wildcards need DNS-01, which Sesame \
                 does not do)"
            )));
        }
    }
    let directory = url::Url::parse(&config.acme_directory)
        .map_err(|e| err("acme_directory is not a URL", e))?;
    if directory.scheme() != "https" {
        return Err(TlsError::Acme(
            "acme_directory must be an https:// URL".into(),
        ));
    }
    Ok(())
}

/// The ACME settings of a configuration.
#[derive(Debug, Clone)]
pub struct AcmeSettings {
    domains: Vec<String>,
    directory: String,
    contact: Option<String>,
    cache: PathBuf,
    ca_file: Option<PathBuf>,
}

impl AcmeSettings {
    /// From the `acme_*` keys; creates the cache directory (0700).
    pub fn from_config(config: &Config) -> Result<AcmeSettings, TlsError> {
        check_settings(config)?;
        let cache = config
            .acme_cache_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.join("acme"));
        create_private_dir(&cache.join("tls-alpn-01"))
            .map_err(|e| err(&cache.display().to_string(), e))?;
        let contact = config.acme_contact.as_ref().map(|c| {
            if c.starts_with("mailto:") {
                c.clone()
            } else {
                format!("mailto:{c}")
            }
        });
        Ok(AcmeSettings {
            domains: config.acme_domains.clone(),
            directory: config.acme_directory.clone(),
            contact,
            cache,
            ca_file: config.acme_ca_file.clone(),
        })
    }

    /// The names the certificate is for.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Where the TLS-ALPN-01 challenge certificates are written during an order.
    pub fn challenge_dir(&self) -> PathBuf {
        self.cache.join("tls-alpn-01")
    }

    /// The cached certificate and key (one PEM file).
    pub fn certificate_path(&self) -> PathBuf {
        self.cache.join("certificate.pem")
    }

    fn account_path(&self) -> PathBuf {
        let id = hex::encode(&Sha256::digest(self.directory.as_bytes())[..8]);
        self.cache.join(format!("account-{id}.json"))
    }

    /// The cached certificate, if there is one for exactly these names.
    pub fn load_cached(&self) -> Result<Option<Arc<CertifiedKey>>, TlsError> {
        let path = self.certificate_path();
        let pem = match std::fs::read(&path) {
            Ok(pem) => zeroize::Zeroizing::new(pem),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => return Err(TlsError::Read { path, source }),
        };
        super::certified_key_from_pem(&pem, &pem, &path, &path).map(Some)
    }

    /// Runs one order to its certificate, caches it and returns it.
    pub async fn order(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let account = self.account().await?;
        let identifiers: Vec<Identifier> = self
            .domains
            .iter()
            .map(|d| Identifier::Dns(d.clone()))
            .collect();
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| err("new order", e))?;
        let mut written = Vec::new();
        let mut authorizations = order.authorizations();
        while let Some(authz) = authorizations.next().await {
            let mut authz = authz.map_err(|e| err("authorization", e))?;
            if authz.status != AuthorizationStatus::Pending {
                continue;
            }
            let mut challenge = authz
                .challenge(ChallengeType::TlsAlpn01)
                .ok_or_else(|| TlsError::Acme("the CA offers no tls-alpn-01 challenge".into()))?;
            let name = challenge.identifier().to_string();
            let digest = challenge.key_authorization().digest();
            written.push(write_challenge(
                &self.challenge_dir(),
                &name,
                digest.as_ref(),
            )?);
            challenge
                .set_ready()
                .await
                .map_err(|e| err("challenge ready", e))?;
        }
        let result = self.finish(&mut order).await;
        for path in written {
            let _ = std::fs::remove_file(path);
        }
        let pem = result?;
        let path = self.certificate_path();
        let key = super::certified_key_from_pem(pem.as_bytes(), pem.as_bytes(), &path, &path)?;
        write_private(&path, pem.as_bytes()).map_err(|e| err(&path.display().to_string(), e))?;
        Ok(key)
    }

    /// Waits for validation, finalizes (a fresh key and CSR) and returns chain + key PEM.
    async fn finish(
        &self,
        order: &mut instant_acme::Order,
    ) -> Result<zeroize::Zeroizing<String>, TlsError> {
        let retries = RetryPolicy::new().timeout(Duration::from_secs(120));
        let status = order
            .poll_ready(&retries)
            .await
            .map_err(|e| err("validation", e))?;
        if status != OrderStatus::Ready {
            return Err(TlsError::Acme(format!(
                "the order is {status:?}, not ready"
            )));
        }
        let key = zeroize::Zeroizing::new(order.finalize().await.map_err(|e| err("finalize", e))?);
        let chain = order
            .poll_certificate(&retries)
            .await
            .map_err(|e| err("certificate", e))?;
        Ok(zeroize::Zeroizing::new(format!(
            "{chain}\n{}",
            key.as_str()
        )))
    }

    /// The cached account for this directory, or a new one (then cached, 0600).
    async fn account(&self) -> Result<Account, TlsError> {
        let builder = match &self.ca_file {
            Some(ca) => Account::builder_with_root(ca),
            None => Account::builder(),
        }
        .map_err(|e| err("HTTP client", e))?;
        let path = self.account_path();
        if let Ok(bytes) = std::fs::read(&path) {
            let credentials: AccountCredentials =
                serde_json::from_slice(&bytes).map_err(|e| err(&path.display().to_string(), e))?;
            return builder
                .from_credentials(credentials)
                .await
                .map_err(|e| err("account", e));
        }
        let contact: Vec<&str> = self.contact.iter().map(String::as_str).collect();
        let new = NewAccount {
            contact: &contact,
            terms_of_service_agreed: true,
            only_return_existing: false,
        };
        let (account, credentials) = builder
            .create(&new, self.directory.clone(), None)
            .await
            .map_err(|e| err("new account", e))?;
        let json = zeroize::Zeroizing::new(
            serde_json::to_vec(&credentials).map_err(|e| err("account", e))?,
        );
        write_private(&path, &json).map_err(|e| err(&path.display().to_string(), e))?;
        Ok(account)
    }
}

/// The file of the challenge certificate for `name` (names are DNS names: no `/`).
fn challenge_file(dir: &Path, name: &str) -> Option<PathBuf> {
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        && !name.starts_with('.');
    safe.then(|| dir.join(format!("{}.pem", name.to_ascii_lowercase())))
}

/// Writes the TLS-ALPN-01 certificate of `name` (RFC 8737: the name, and the digest of the
/// key authorization in the critical acmeIdentifier extension) with its key.
fn write_challenge(dir: &Path, name: &str, digest: &[u8]) -> Result<PathBuf, TlsError> {
    let path = challenge_file(dir, name)
        .ok_or_else(|| TlsError::Acme(format!("unexpected identifier `{name}`")))?;
    let fail = |e: rcgen::Error| err("challenge certificate", e);
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).map_err(fail)?;
    params.custom_extensions = vec![rcgen::CustomExtension::new_acme_identifier(digest)];
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    let pem = zeroize::Zeroizing::new(format!("{}{}", cert.pem(), key.serialize_pem()));
    write_private(&path, pem.as_bytes()).map_err(|e| err(&path.display().to_string(), e))?;
    Ok(path)
}

/// The challenge certificate for `name` in `dir`, if an order is under way.
pub(super) fn load_challenge(
    dir: &Path,
    name: &str,
) -> Result<Option<Arc<CertifiedKey>>, TlsError> {
    let Some(path) = challenge_file(dir, name) else {
        return Ok(None);
    };
    match std::fs::read(&path) {
        Ok(pem) => super::certified_key_from_pem(&pem, &pem, &path, &path).map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::Read { path, source }),
    }
}

/// Seconds (Unix) from which `key`'s leaf should be renewed: two thirds into its lifetime.
pub fn renew_at(key: &CertifiedKey) -> Option<u64> {
    use x509_cert::der::Decode as _;
    let leaf = x509_cert::Certificate::from_der(key.cert.first()?).ok()?;
    let validity = &leaf.tbs_certificate.validity;
    let start = validity.not_before.to_unix_duration().as_secs();
    let end = validity.not_after.to_unix_duration().as_secs();
    Some(end.saturating_sub(end.saturating_sub(start) / 3))
}

/// Keeps the served certificate current until `stop` (see the module documentation).
pub async fn run(
    settings: AcmeSettings,
    resolver: Arc<CertResolver>,
    clock: Arc<dyn crate::clock::Clock>,
    mut stop: watch::Receiver<bool>,
) {
    let mut retry = FIRST_RETRY;
    loop {
        // Another node sharing the cache may have renewed.
        if let Ok(Some(cached)) = settings.load_cached() {
            let served = resolver.current();
            if served.is_none_or(|s| s.cert.first() != cached.cert.first()) {
                tracing::info!("ACME certificate loaded from the cache");
                resolver.set(cached);
            }
        }
        let now = clock.now();
        let due = resolver.current().and_then(|c| renew_at(&c)).unwrap_or(0);
        let wait = if due <= now {
            match settings.order().await {
                Ok(key) => {
                    let fingerprint = key
                        .cert
                        .first()
                        .map(|der| super::certificate_fingerprint(der))
                        .unwrap_or_default();
                    tracing::info!(domains = ?settings.domains, %fingerprint, "ACME certificate obtained");
                    let next = renew_at(&key).unwrap_or(0).saturating_sub(now);
                    resolver.set(key);
                    retry = FIRST_RETRY;
                    Duration::from_secs(next).clamp(FIRST_RETRY, RECHECK)
                }
                Err(e) => {
                    tracing::warn!(%e, retry_in_secs = retry.as_secs(), "ACME order failed");
                    let wait = retry;
                    retry = (retry * 2).min(RECHECK);
                    wait
                }
            }
        } else {
            Duration::from_secs(due - now).min(RECHECK)
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}
