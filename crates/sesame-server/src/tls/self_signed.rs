//! The development certificate of `sesame serve --tls-self-signed`.
//!
//! `<data_dir>/tls/self-signed.crt` and `self-signed.key` (mode 0600), made with rcgen on
//! first start and reused after, so clients that pinned it (the `sesame` command pins it on
//! first contact) keep trusting it. It names `localhost`, `127.0.0.1`, `::1` and the listen
//! address; delete both files to make a new one (clients then see a changed certificate).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::TlsError;

/// The development certificate's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfSigned {
    /// `<data_dir>/tls/self-signed.crt`.
    pub cert: PathBuf,
    /// `<data_dir>/tls/self-signed.key` (0600).
    pub key: PathBuf,
    /// Whether this call created them.
    pub created: bool,
}

/// The certificate in `<data_dir>/tls`, created for `ip` (and the loopback names) if absent.
pub fn load_or_create(data_dir: &Path, ip: IpAddr) -> Result<SelfSigned, TlsError> {
    let dir = data_dir.join("tls");
    let cert = dir.join("self-signed.crt");
    let key = dir.join("self-signed.key");
    if cert.exists() && key.exists() {
        return Ok(SelfSigned {
            cert,
            key,
            created: false,
        });
    }
    let fail = |what: &str, e: &dyn std::fmt::Display| TlsError::SelfSigned(format!("{what}: {e}"));
    create_private_dir(&dir).map_err(|e| fail(&dir.display().to_string(), &e))?;
    let (cert_pem, key_pem) = generate(ip)?;
    write_private(&key, key_pem.as_bytes()).map_err(|e| fail(&key.display().to_string(), &e))?;
    std::fs::write(&cert, cert_pem).map_err(|e| fail(&cert.display().to_string(), &e))?;
    Ok(SelfSigned {
        cert,
        key,
        created: true,
    })
}

/// A fresh self-signed certificate and its key (PEM) for the loopback names and `ip`.
pub fn generate(ip: IpAddr) -> Result<(String, zeroize::Zeroizing<String>), TlsError> {
    let mut names = vec![
        "localhost".to_owned(),
        Ipv4Addr::LOCALHOST.to_string(),
        Ipv6Addr::LOCALHOST.to_string(),
    ];
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    let fail = |e: rcgen::Error| TlsError::SelfSigned(e.to_string());
    let mut params = rcgen::CertificateParams::new(names).map_err(fail)?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Sesame development certificate");
    let key = rcgen::KeyPair::generate().map_err(fail)?;
    let cert = params.self_signed(&key).map_err(fail)?;
    Ok((cert.pem(), zeroize::Zeroizing::new(key.serialize_pem())))
}

/// Creates `dir` (and parents) owner-only (0700) if missing.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Writes `bytes` to a new file `path` readable by the owner only (0600), replacing it
/// atomically (a temporary file renamed over it).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    ));
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)
}
