//! The cryptography behind every JWT this server signs or verifies (`jsonwebtoken`'s
//! [`CryptoProvider`]): RustCrypto for everything, except RS256 *signing*, which ring does,
//! and EdDSA signing, which keeps each parsed key.
//!
//! RS256: the `rsa` crate's private-key operations are not constant-time (RUSTSEC-2023-0071,
//! the Marvin attack), and the token endpoint signs an RS256 ID token whenever a client asks,
//! so its timing is observable over the network. ring's RSA signing is constant-time. The
//! `rsa` crate keeps only what leaks nothing secret over the network: generating a key (once,
//! on the server), reading a key's public half for the JWKS, and verifying signatures
//! (docs/security.md, "Dependencies").
//!
//! EdDSA: jsonwebtoken hands the signer the key's PKCS #8 document for every token, and
//! parsing it derives the public key again, a scalar multiplication that cost as much as the
//! signature itself on each refresh. The signer keeps the few keys it has parsed (at most
//! [`MAX_PARSED_KEYS`], wiped when dropped) and signs with ed25519-dalek, as before.

use std::sync::{Arc, LazyLock, Mutex};

use ed25519_dalek::ed25519::signature::{Error as SignatureError, Signer};
use ed25519_dalek::pkcs8::DecodePrivateKey as _;
use ed25519_dalek::SigningKey;
use jsonwebtoken::crypto::{rust_crypto, CryptoProvider, JwtSigner};
use jsonwebtoken::{Algorithm, EncodingKey};
use ring::rand::SystemRandom;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

/// Most parsed Ed25519 keys kept (the access-token key and the ID-token keys around a
/// rotation); the oldest goes first.
const MAX_PARSED_KEYS: usize = 8;

/// Parsed Ed25519 keys with the PKCS #8 document each came from.
type ParsedKeys = Vec<(Zeroizing<Vec<u8>>, Arc<SigningKey>)>;

/// The Ed25519 keys parsed so far.
static PARSED_KEYS: Mutex<ParsedKeys> = Mutex::new(Vec::new());

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
        Algorithm::EdDSA => Ok(Box::new(Ed25519(parsed_ed25519(key.as_bytes())?))),
        _ => (rust_crypto::DEFAULT_PROVIDER.signer_factory)(alg, key),
    }
}

/// The parsed form of the Ed25519 key whose PKCS #8 document is `der`, parsed once.
fn parsed_ed25519(der: &[u8]) -> jsonwebtoken::errors::Result<Arc<SigningKey>> {
    let mut keys = PARSED_KEYS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, key)) = keys
        .iter()
        .find(|(d, _)| bool::from(d.as_slice().ct_eq(der)))
    {
        return Ok(Arc::clone(key));
    }
    let key = Arc::new(
        SigningKey::from_pkcs8_der(der)
            .map_err(|_| jsonwebtoken::errors::ErrorKind::InvalidEddsaKey)?,
    );
    if keys.len() >= MAX_PARSED_KEYS {
        keys.remove(0);
    }
    keys.push((Zeroizing::new(der.to_vec()), Arc::clone(&key)));
    Ok(key)
}

/// An EdDSA (Ed25519) signer with a parsed key.
struct Ed25519(Arc<SigningKey>);

impl Signer<Vec<u8>> for Ed25519 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        Ok(self.0.sign(msg).to_bytes().to_vec())
    }
}

impl JwtSigner for Ed25519 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::EdDSA
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
