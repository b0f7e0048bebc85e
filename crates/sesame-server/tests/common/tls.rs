//! TLS test support: a throw-away CA and its leaf certificates (rcgen), rustls clients that
//! trust it, and the skip-or-fail rule for external tools.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest as _, Sha256};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A CA made for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A fresh CA.
    pub fn new() -> TestCa {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "Sesame test CA");
        let key = KeyPair::generate().unwrap();
        TestCa {
            issuer: CertifiedIssuer::self_signed(params, key).unwrap(),
        }
    }

    /// The CA certificate (PEM).
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A leaf certificate for `127.0.0.1` and `localhost`: (certificate PEM, key PEM).
    pub fn leaf(&self) -> (String, String) {
        let params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A rustls client configuration trusting this CA only (TLS 1.2 and 1.3, ring).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_config_for(self.pem().as_bytes())
    }
}

/// A rustls client configuration trusting the CA certificates in `pem`.
pub fn client_config_for(pem: &[u8]) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    Arc::new(config)
}

/// Writes a certificate and key into `dir` as `<name>.crt` and `<name>.key`.
pub fn write_pair(dir: &Path, name: &str, pair: &(String, String)) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &pair.0).unwrap();
    std::fs::write(&key, &pair.1).unwrap();
    (cert, key)
}

/// Replaces `path` atomically (write a sibling, rename), as deployment tools do.
pub fn replace(path: &Path, contents: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Connects over TLS to `addr` as `127.0.0.1`.
pub async fn connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The SHA-256 of the certificate `stream`'s server presented.
pub fn peer_sha256<S>(stream: &TlsStream<S>) -> [u8; 32] {
    let (_, conn) = stream.get_ref();
    let cert = &conn.peer_certificates().expect("a certificate")[0];
    Sha256::digest(cert.as_ref()).into()
}

/// The SHA-256 of the first certificate in `pem`.
pub fn pem_sha256(pem: &str) -> [u8; 32] {
    use rustls::pki_types::pem::PemObject as _;
    let der = CertificateDer::from_pem_slice(pem.as_bytes()).unwrap();
    Sha256::digest(der.as_ref()).into()
}

/// Whether `tool --version`-like `probe` runs. When it does not, says so loudly and returns
/// `false` (the test then skips), unless `SESAME_REQUIRE_SERVICES=1`, where it panics.
pub fn tool_available(tool: &str, probe: &[&str], install: &str) -> bool {
    let ok = std::process::Command::new(tool)
        .args(probe)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        let required = std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1");
        assert!(
            !required,
            "SESAME_REQUIRE_SERVICES=1 but `{tool}` is not available ({install})"
        );
        eprintln!("\n*** SKIPPING: `{tool}` is not available ({install}) ***\n");
    }
    ok
}
