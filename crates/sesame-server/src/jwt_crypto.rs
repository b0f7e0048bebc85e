//! The cryptography behind every JWT this server signs or verifies (`jsonwebtoken`'s
//! [`CryptoProvider`]): RustCrypto for everything, except RS256 *signing*, which ring does.
//!
//! Why: the `rsa` crate's private-key operations are not constant-time (RUSTSEC-2023-0071,
//! the Marvin attack), and the token endpoint signs an RS256 ID token whenever a client asks,
//! so its timing is observable over the network. ring's RSA signing is constant-time. The
//! `rsa` crate keeps only what leaks nothing secret over the network: generating a key (once,
//! on the server), reading a key's public half for the JWKS, and verifying signatures
//! (docs/security.md, "Dependencies").

use std::sync::LazyLock;

use ed25519_dalek::ed25519::signature::{Error as SignatureError, Signer};
use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtSigner};
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};

/// RustCrypto's provider with ring's RS256 signer.
static PROVIDER: LazyLock<CryptoProvider> = LazyLock::new(|| CryptoProvider {
    signer_factory: new_signer,
    verifier_factory: rust_crypto::DEFAULT_PROVIDER.verifier_factory,
    key_utils: rust_crypto::DEFAULT_PROVIDER.key_utils.clone(),
});

/// Makes [`PROVIDER`] the process's JWT cryptography. Called before the service signs its
/// first token; idempotent. `false` when some other provider was chosen first (then RS256
/// tokens are still signed correctly, by the `rsa` crate), which the caller logs.
pub fn install() -> bool {
    let ours: &'static CryptoProvider = &PROVIDER;
    match ours.install_default() {
        Ok(()) => true,
        Err(existing) => std::ptr::eq(existing, ours),
    }
}

fn new_signer(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    match alg {
        Algorithm::RS256 => Ok(Box::new(RingRs256::new(key)?)),
        _ => (rust_crypto::DEFAULT_PROVIDER.signer_factory)(alg, key),
    }
}

/// An RS256 signer on ring: PKCS #1 v1.5 with SHA-256, constant-time.
struct RingRs256 {
    key: RsaKeyPair,
    rng: SystemRandom,
}

impl RingRs256 {
    /// The signer for a PKCS #1 `RSAPrivateKey` (DER), as `EncodingKey::from_rsa_der` holds it.
    fn new(key: &EncodingKey) -> jsonwebtoken::errors::Result<RingRs256> {
        let key = RsaKeyPair::from_der(key.as_bytes())
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidRsaKey("not an RSA key".into()))?;
        Ok(RingRs256 {
            key,
            rng: SystemRandom::new(),
        })
    }
}

impl Signer<Vec<u8>> for RingRs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
            .map_err(|_| SignatureError::new())?;
        Ok(sig)
    }
}

impl JwtSigner for RingRs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::RS256
    }
}

#[cfg(test)]
mod tests;
