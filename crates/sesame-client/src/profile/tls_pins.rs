//! The TLS certificates pinned on first contact (`known_tls_certs.json`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::{read_json, write_json, Profile, ProfileError, Trust, KNOWN_TLS_FILE};
use crate::tls::certificate_fingerprint;

/// `AB:CD:…` (32 pairs) back to bytes.
fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let bytes: Vec<u8> = text
        .split(':')
        .map(|pair| {
            u8::from_str_radix(pair, 16)
                .ok()
                .filter(|_| pair.len() == 2)
        })
        .collect::<Option<_>>()?;
    bytes.try_into().ok()
}

impl Profile {
    /// The path of `known_tls_certs.json`.
    pub fn known_tls_path(&self) -> PathBuf {
        self.root.join(KNOWN_TLS_FILE)
    }

    /// The SHA-256 of the TLS certificate pinned for `server`, if any.
    pub fn pinned_tls_certificate(&self, server: &str) -> Result<Option<[u8; 32]>, ProfileError> {
        let known: BTreeMap<String, String> =
            read_json(&self.known_tls_path())?.unwrap_or_default();
        let Some(text) = known.get(server) else {
            return Ok(None);
        };
        parse_fingerprint(text)
            .map(Some)
            .ok_or_else(|| ProfileError::BadPinnedCertificate {
                server: server.to_owned(),
                path: self.known_tls_path(),
            })
    }

    /// Pins the certificate `sha256` for `server` on first contact. Another certificate than
    /// the one pinned is refused with [`ProfileError::TlsCertificateChanged`], which names both
    /// fingerprints and the entry to remove.
    pub fn trust_tls_certificate(
        &self,
        server: &str,
        sha256: &[u8; 32],
    ) -> Result<Trust, ProfileError> {
        if let Some(pinned) = self.pinned_tls_certificate(server)? {
            if &pinned == sha256 {
                return Ok(Trust::AlreadyPinned);
            }
            return Err(self.tls_certificate_changed(server, &pinned, sha256));
        }
        let mut known: BTreeMap<String, String> =
            read_json(&self.known_tls_path())?.unwrap_or_default();
        known.insert(server.to_owned(), certificate_fingerprint(sha256));
        write_json(&self.known_tls_path(), &known)?;
        Ok(Trust::Pinned)
    }

    /// The error for `server` presenting the certificate `presented` while `pinned` is pinned.
    pub fn tls_certificate_changed(
        &self,
        server: &str,
        pinned: &[u8; 32],
        presented: &[u8; 32],
    ) -> ProfileError {
        ProfileError::TlsCertificateChanged {
            server: server.to_owned(),
            pinned: certificate_fingerprint(pinned),
            presented: certificate_fingerprint(presented),
            path: self.known_tls_path(),
        }
    }

    /// Removes the certificate pinned for `server`; `false` if none was.
    pub fn forget_tls_certificate(&self, server: &str) -> Result<bool, ProfileError> {
        let mut known: BTreeMap<String, String> =
            read_json(&self.known_tls_path())?.unwrap_or_default();
        if known.remove(server).is_none() {
            return Ok(false);
        }
        write_json(&self.known_tls_path(), &known)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests;
