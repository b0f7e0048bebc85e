//! [`CertResolver`]: the certificate every listener serves, swapped in place on reload.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// The certificate new handshakes get. A reload replaces it; a connection that already
/// finished its handshake is unaffected (rustls copied what it needed).
///
/// With ACME, a handshake that offers only the `acme-tls/1` protocol (RFC 8737) gets the
/// challenge certificate for its server name instead, read from the challenge directory of
/// the ACME cache (so any node sharing the cache can answer the CA's validation).
#[derive(Debug, Default)]
pub struct CertResolver {
    current: RwLock<Option<Arc<CertifiedKey>>>,
    challenges: RwLock<Option<PathBuf>>,
}

impl CertResolver {
    /// A resolver with no certificate yet (handshakes fail until [`CertResolver::set`]).
    pub fn new() -> CertResolver {
        CertResolver::default()
    }

    /// Serves `key` to every new handshake from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(key);
    }

    /// The certificate served now.
    pub fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Answers `acme-tls/1` handshakes from the challenge files in `dir`.
    pub fn set_challenge_dir(&self, dir: PathBuf) {
        *self.challenges.write().unwrap_or_else(|p| p.into_inner()) = Some(dir);
    }

    fn challenge(&self, name: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let dir = self
            .challenges
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()?;
        let name = name?;
        match super::acme::load_challenge(&dir, name) {
            Ok(key) => key,
            Err(e) => {
                tracing::warn!(%e, name, "cannot load the ACME challenge certificate");
                None
            }
        }
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == super::ACME_TLS_ALPN));
        if acme {
            return self.challenge(hello.server_name());
        }
        self.current()
    }
}
