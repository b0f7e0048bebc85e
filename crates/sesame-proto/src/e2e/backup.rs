//! The key backup: the [`WrapKey`] derived from OPAQUE's export key, and the identity keys
//! wrapped under it ([`wrap_identity`], [`unwrap_identity`]).

use std::fmt;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{
    E2eError, IdentityKeys, KEY_BACKUP_CONTEXT, KEY_BACKUP_INFO, WRAP_NONCE_LEN, WRAP_VERSION,
};

/// The 32-byte symmetric key that wraps the identity keys (at rest and in the server-side
/// backup) and the local message history: HKDF-SHA256 with salt [`KEY_BACKUP_CONTEXT`], the
/// 64-byte OPAQUE export key as input keying material and info [`KEY_BACKUP_INFO`].
///
/// A blob is `version (1 byte, `[`WRAP_VERSION`]`) || nonce (24) || XChaCha20-Poly1305(key,
/// nonce, aad, plaintext)` with ciphertext and tag. The nonce is random, so one key safely
/// wraps many blobs; each kind of blob has its own associated data.
#[derive(Clone)]
pub struct WrapKey(Zeroizing<[u8; 32]>);

impl fmt::Debug for WrapKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrapKey(<redacted>)")
    }
}

impl WrapKey {
    /// Derives the key from OPAQUE's export key.
    pub fn derive(export_key: &[u8; 64]) -> WrapKey {
        let hk = Hkdf::<Sha256>::new(Some(KEY_BACKUP_CONTEXT), export_key);
        let mut okm = Zeroizing::new([0u8; 32]);
        // 32 bytes is always a valid HKDF-SHA256 output length.
        hk.expand(KEY_BACKUP_INFO, &mut okm[..])
            .expect("32 bytes is a valid HKDF-SHA256 length");
        WrapKey(okm)
    }

    /// A key from its raw bytes (as kept by a client between runs).
    pub fn from_bytes(bytes: [u8; 32]) -> WrapKey {
        WrapKey(Zeroizing::new(bytes))
    }

    /// The raw key (secret).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }

    /// Encrypts `plaintext` with associated data `aad` under a random nonce from `rng`.
    pub fn seal(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        aad: &[u8],
        plaintext: &[u8],
    ) -> Vec<u8> {
        let mut nonce = [0u8; WRAP_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .expect("XChaCha20-Poly1305 encrypts any length a Vec holds");
        let mut out = Vec::with_capacity(1 + WRAP_NONCE_LEN + ct.len());
        out.push(WRAP_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Decrypts a blob made by [`WrapKey::seal`] with the same `aad`:
    /// [`E2eError::UnsupportedVersion`] for an unknown version byte,
    /// [`E2eError::InvalidMessage`]`("blob")` if too short, [`E2eError::DecryptFailed`] for a
    /// wrong key, wrong `aad` or tampering.
    pub fn open(&self, aad: &[u8], blob: &[u8]) -> Result<Zeroizing<Vec<u8>>, E2eError> {
        let (&version, rest) = blob.split_first().ok_or(E2eError::InvalidMessage("blob"))?;
        if version != WRAP_VERSION {
            return Err(E2eError::UnsupportedVersion(version));
        }
        if rest.len() < WRAP_NONCE_LEN + 16 {
            return Err(E2eError::InvalidMessage("blob"));
        }
        let (nonce, ct) = rest.split_at(WRAP_NONCE_LEN);
        let cipher = XChaCha20Poly1305::new((&*self.0).into());
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map(Zeroizing::new)
            .map_err(|_| E2eError::DecryptFailed)
    }

    /// Wraps the identity keys: [`WrapKey::seal`] of [`IdentityKeys::to_bytes`] with
    /// associated data [`KEY_BACKUP_CONTEXT`] (`WRAP_OVERHEAD + 64` = 105 bytes).
    pub fn wrap_identity(
        &self,
        rng: &mut (impl RngCore + CryptoRng),
        keys: &IdentityKeys,
    ) -> Vec<u8> {
        self.seal(rng, KEY_BACKUP_CONTEXT, &keys.to_bytes()[..])
    }

    /// Unwraps identity keys wrapped by [`WrapKey::wrap_identity`].
    pub fn unwrap_identity(&self, blob: &[u8]) -> Result<IdentityKeys, E2eError> {
        let bytes = self.open(KEY_BACKUP_CONTEXT, blob)?;
        IdentityKeys::from_bytes(&bytes).map_err(|_| E2eError::InvalidMessage("blob"))
    }
}

/// Wraps `keys` under the [`WrapKey`] derived from `export_key` (the key backup format).
pub fn wrap_identity(
    rng: &mut (impl RngCore + CryptoRng),
    export_key: &[u8; 64],
    keys: &IdentityKeys,
) -> Vec<u8> {
    WrapKey::derive(export_key).wrap_identity(rng, keys)
}

/// Unwraps a key backup made by [`wrap_identity`] with the same export key;
/// [`E2eError::DecryptFailed`] for another export key (another password) or a tampered blob.
pub fn unwrap_identity(export_key: &[u8; 64], blob: &[u8]) -> Result<IdentityKeys, E2eError> {
    WrapKey::derive(export_key).unwrap_identity(blob)
}

// ---------------------------------------------------------------------------------------
// Safety numbers
// ---------------------------------------------------------------------------------------
