//! The server's long-term OPAQUE secrets.

use opaque_ke::ServerSetup;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::b64;
use crate::error::Error;
use crate::suite::Suite;

/// The server's OPAQUE setup: the OPRF seed, the static key pair and the key used to fake
/// records for unknown users.
///
/// Generate it once ([`ServerKeys::generate`]), store [`ServerKeys::to_bytes`] encrypted, and
/// load it on every start: a new setup invalidates every credential record.
/// The serialized form (128 bytes) is the one `@serenity-kit/opaque` calls `serverSetup`
/// (there as base64url).
#[derive(Clone)]
pub struct ServerKeys {
    pub(crate) setup: ServerSetup<Suite>,
}

impl ServerKeys {
    /// Draws a fresh setup from `rng`.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> ServerKeys {
        ServerKeys {
            setup: ServerSetup::<Suite>::new(rng),
        }
    }

    /// The secret serialized form. Keep it encrypted at rest.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.setup.serialize().to_vec())
    }

    /// Loads a setup from [`ServerKeys::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<ServerKeys, Error> {
        ServerSetup::<Suite>::deserialize(bytes)
            .map(|setup| ServerKeys { setup })
            .map_err(|_| Error::Corrupt("server setup"))
    }

    /// The static public key (32 bytes) clients authenticate and pin.
    pub fn public_key(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&self.setup.keypair().public().serialize());
        out
    }

    /// A printable fingerprint of the public key, `SHA256:` followed by the base64url SHA-256
    /// of the key, in the style of ssh.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.public_key())
    }
}

/// The fingerprint of a server public key (see [`ServerKeys::fingerprint`]).
pub fn fingerprint(public_key: &[u8]) -> String {
    format!("SHA256:{}", b64::encode(Sha256::digest(public_key)))
}

impl std::fmt::Debug for ServerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerKeys")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}
