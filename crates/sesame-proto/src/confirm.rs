//! The login confirmation: step 4 of the login, sealed under a key derived from the OPAQUE
//! session key.
//!
//! ```text
//! th   = SHA-256( lp("sesame/v1/login") || lp(login_id) || lp(KE1) || lp(KE2) || lp(KE3) )
//! key  = HKDF-SHA256(salt = th, ikm = session_key, info = "sesame/v1/login-confirmation", 32)
//! sealed = nonce(12) || ChaCha20-Poly1305(key, nonce, aad = th, payload)
//! ```
//! where `lp(x)` is the length of `x` as a big-endian `u32` followed by `x`. Only someone who
//! completed the OPAQUE exchange holds the session key, so a confirmation that opens proves the
//! server verified KE3 for this very transcript.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::b64::Bytes;
use crate::error::Error;
use crate::messages::LoginConfirmation;

const TRANSCRIPT_LABEL: &[u8] = b"sesame/v1/login";
const KEY_INFO: &[u8] = b"sesame/v1/login-confirmation";
const NONCE_LEN: usize = 12;

/// Hash of the login transcript, bound into the confirmation key and its associated data.
pub(crate) fn transcript_hash(login_id: &str, ke1: &[u8], ke2: &[u8], ke3: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in [TRANSCRIPT_LABEL, login_id.as_bytes(), ke1, ke2, ke3] {
        h.update((part.len() as u32).to_be_bytes());
        h.update(part);
    }
    h.finalize().into()
}

/// The key and transcript that seal or open one login's confirmation.
pub(crate) struct ConfirmationKey {
    login_id: String,
    th: [u8; 32],
    key: Zeroizing<[u8; 32]>,
}

impl ConfirmationKey {
    pub(crate) fn derive(login_id: &str, th: [u8; 32], session_key: &[u8]) -> Result<Self, Error> {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(&th), session_key)
            .expand(KEY_INFO, key.as_mut())
            .map_err(|_| Error::Internal("HKDF output length"))?;
        Ok(ConfirmationKey {
            login_id: login_id.to_owned(),
            th,
            key,
        })
    }

    pub(crate) fn seal<R: RngCore + CryptoRng>(
        &self,
        rng: &mut R,
        payload: &[u8],
    ) -> Result<LoginConfirmation, Error> {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.key.as_ref()));
        let ct = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: payload,
                    aad: &self.th,
                },
            )
            .map_err(|_| Error::Internal("confirmation seal"))?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + ct.len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ct);
        Ok(LoginConfirmation {
            login_id: self.login_id.clone(),
            sealed: Bytes(sealed),
        })
    }

    pub(crate) fn open(&self, msg: &LoginConfirmation) -> Result<Zeroizing<Vec<u8>>, Error> {
        if msg.login_id != self.login_id {
            return Err(Error::UnknownLogin);
        }
        let sealed = msg.sealed.as_slice();
        if sealed.len() < NONCE_LEN + 16 {
            return Err(Error::ConfirmationInvalid);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let cipher = ChaCha20Poly1305::new(Key::from_slice(self.key.as_ref()));
        cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: &self.th,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| Error::ConfirmationInvalid)
    }
}
