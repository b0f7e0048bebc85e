//! How the client checks a server's TLS certificate ([`TlsOptions`], [`Client::with_tls`]).
//!
//! * [`TlsOptions::web_pki`]: the public web PKI (Mozilla's roots), as a browser does.
//! * [`TlsOptions::with_ca_pem`]: a private CA: normal certificate verification (chain, name,
//!   validity) against the given roots only.
//! * [`TlsOptions::pinned`]: a certificate the public roots vouch for is accepted as with
//!   [`TlsOptions::web_pki`]; any other (a self-signed one, `sesame serve
//!   --tls-self-signed`) only if its SHA-256 is the pinned one; with nothing pinned, the first
//!   one presented is accepted and reported by [`TlsOptions::presented`] so the caller can pin
//!   it (trust on first use, as ssh does). In every case rustls still checks that the server
//!   holds the certificate's key: the handshake signature is verified with
//!   `verify_tls12_signature`/`verify_tls13_signature`.
//!
//! Every option speaks TLS 1.2 and 1.3 only, on rustls with the *ring* provider.

use std::fmt;
use std::sync::{Arc, Mutex};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest as _, Sha256};

use crate::client::{Client, DEFAULT_TIMEOUT, USER_AGENT};
use crate::error::{Error, Result};

/// The SHA-256 of a DER certificate, as hex pairs joined by `:` (what `openssl x509
/// -fingerprint -sha256` and `sesame serve` print).
pub fn certificate_fingerprint(sha256: &[u8; 32]) -> String {
    let hex: Vec<String> = sha256.iter().map(|b| format!("{b:02X}")).collect();
    hex.join(":")
}

/// The TLS verification a [`Client`] uses. Cheap to clone.
#[derive(Clone)]
pub struct TlsOptions {
    config: Arc<ClientConfig>,
    pin: Option<Arc<PinVerifier>>,
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsOptions")
            .field("pinned", &self.pin.as_ref().and_then(|p| p.expected))
            .finish_non_exhaustive()
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(what: &str, e: impl fmt::Display) -> Error {
    Error::Tls(format!("{what}: {e}"))
}

fn web_pki_roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn config_with(verifier: Arc<dyn ServerCertVerifier>) -> Result<Arc<ClientConfig>> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| tls_error("rustls", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

fn web_pki_verifier(roots: RootCertStore) -> Result<Arc<WebPkiServerVerifier>> {
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| tls_error("certificate verifier", e))
}

impl TlsOptions {
    /// Verification against the public web PKI (Mozilla's root certificates).
    pub fn web_pki() -> Result<TlsOptions> {
        Ok(TlsOptions {
            config: config_with(web_pki_verifier(web_pki_roots())?)?,
            pin: None,
        })
    }

    /// Verification against the CA certificates in `pem` (one or more `CERTIFICATE` blocks)
    /// and nothing else.
    pub fn with_ca_pem(pem: &[u8]) -> Result<TlsOptions> {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| tls_error("CA file", e))?;
            roots
                .add(cert)
                .map_err(|e| tls_error("CA certificate", e))?;
        }
        if roots.is_empty() {
            return Err(Error::Tls("CA file: no CERTIFICATE block".into()));
        }
        Ok(TlsOptions {
            config: config_with(web_pki_verifier(roots)?)?,
            pin: None,
        })
    }

    /// The public web PKI, else the certificate whose SHA-256 is `expected`; with `None`,
    /// else the first certificate presented (see the module documentation).
    pub fn pinned(expected: Option<[u8; 32]>) -> Result<TlsOptions> {
        let pin = Arc::new(PinVerifier {
            web_pki: web_pki_verifier(web_pki_roots())?,
            expected,
            presented: Mutex::new(None),
            provider: provider(),
        });
        Ok(TlsOptions {
            config: config_with(pin.clone())?,
            pin: Some(pin),
        })
    }

    /// The SHA-256 of the last certificate the public roots did not vouch for and the pin
    /// decided on (accepted or refused); `None` before any, or without pinning.
    pub fn presented(&self) -> Option<[u8; 32]> {
        let pin = self.pin.as_ref()?;
        *pin.presented.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The pinned SHA-256, if any.
    pub fn pinned_sha256(&self) -> Option<[u8; 32]> {
        self.pin.as_ref().and_then(|p| p.expected)
    }

    /// The rustls configuration (for other HTTP or WebSocket clients).
    pub fn rustls_config(&self) -> Arc<ClientConfig> {
        self.config.clone()
    }
}

/// The web PKI, else a pinned (or first-seen) certificate; signatures always verified.
#[derive(Debug)]
struct PinVerifier {
    web_pki: Arc<WebPkiServerVerifier>,
    expected: Option<[u8; 32]>,
    presented: Mutex<Option<[u8; 32]>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        let web_pki = self.web_pki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        if web_pki.is_ok() {
            return web_pki;
        }
        let hash: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
        *self.presented.lock().unwrap_or_else(|p| p.into_inner()) = Some(hash);
        match self.expected {
            Some(pinned) if pinned != hash => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The `reqwest` builder every client of this crate starts from: [`USER_AGENT`],
/// [`DEFAULT_TIMEOUT`], no redirects, and `tls` when given.
pub(crate) fn http_builder(tls: Option<&TlsOptions>) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .user_agent(USER_AGENT)
        .timeout(DEFAULT_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none());
    match tls {
        Some(tls) => builder.use_preconfigured_tls((*tls.config).clone()),
        None => builder,
    }
}

impl Client {
    /// A client of the server at `base_url` that checks the server's certificate with
    /// `tls` (over HTTPS and WSS alike).
    pub fn with_tls(
        base_url: &str,
        policy: sesame_proto::client::ClientPolicy,
        tls: TlsOptions,
    ) -> Result<Client> {
        let http = http_builder(Some(&tls)).build()?;
        let mut client = Client::with_http_client(base_url, policy, http)?;
        client.tls = Some(tls);
        Ok(client)
    }

    /// The TLS options given to [`Client::with_tls`].
    pub fn tls(&self) -> Option<&TlsOptions> {
        self.tls.as_ref()
    }

    /// The connector WebSocket connections use: the [`TlsOptions`], else the default.
    pub(crate) fn ws_connector(&self) -> Option<tokio_tungstenite::Connector> {
        self.tls
            .as_ref()
            .map(|t| tokio_tungstenite::Connector::Rustls(t.config.clone()))
    }
}
