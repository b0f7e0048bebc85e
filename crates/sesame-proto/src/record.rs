//! The credential record the server stores for each account.

use opaque_ke::ServerRegistration;
use rand_core::{CryptoRng, RngCore};

use crate::error::Error;
use crate::suite::{KsfParams, Suite};

const RECORD_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 3 * 4;

/// What the server keeps for one account: the OPAQUE registration record plus the Argon2id
/// parameters it was made with.
///
/// The record holds the client's static public key, a masking key and the client's
/// encrypted envelope. None of it lets a thief log in; it only lets them run an offline
/// dictionary attack, one Argon2id per guess, per account (see docs/security.md).
///
/// Stored form ([`CredentialRecord::to_bytes`]): version byte `1`, then memory, iterations and
/// parallelism as big-endian `u32`, then the 192-byte RFC 9807 `RegistrationRecord`.
#[derive(Clone)]
pub struct CredentialRecord {
    pub(crate) ksf: KsfParams,
    pub(crate) upload: ServerRegistration<Suite>,
}

impl CredentialRecord {
    /// The key-stretching parameters of this record.
    pub fn ksf(&self) -> KsfParams {
        self.ksf
    }

    /// The stored form (see the type's docs).
    pub fn to_bytes(&self) -> Vec<u8> {
        let upload = self.upload.serialize();
        let mut out = Vec::with_capacity(HEADER_LEN + upload.len());
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.ksf.memory.to_be_bytes());
        out.extend_from_slice(&self.ksf.iterations.to_be_bytes());
        out.extend_from_slice(&self.ksf.parallelism.to_be_bytes());
        out.extend_from_slice(&upload);
        out
    }

    /// Reads the stored form back.
    pub fn from_bytes(bytes: &[u8]) -> Result<CredentialRecord, Error> {
        if bytes.len() < HEADER_LEN || bytes[0] != RECORD_VERSION {
            return Err(Error::Corrupt("credential record header"));
        }
        let word = |i: usize| {
            let mut w = [0u8; 4];
            w.copy_from_slice(&bytes[1 + 4 * i..5 + 4 * i]);
            u32::from_be_bytes(w)
        };
        let ksf = KsfParams {
            memory: word(0),
            iterations: word(1),
            parallelism: word(2),
        };
        let upload = ServerRegistration::<Suite>::deserialize(&bytes[HEADER_LEN..])
            .map_err(|_| Error::Corrupt("credential record body"))?;
        Ok(CredentialRecord { ksf, upload })
    }
}

impl CredentialRecord {
    /// The stored form of a record that belongs to nobody: the default Argon2id parameters, a
    /// valid public key (the server's own, whose client half nobody holds), a random masking
    /// key and a random envelope. Servers parse it for unknown usernames, so that a login for
    /// an unknown name reads and parses a record exactly as one for a known name; no password
    /// opens its envelope.
    pub fn stand_in_bytes<R: RngCore + CryptoRng>(
        rng: &mut R,
        keys: &crate::server::ServerKeys,
    ) -> Vec<u8> {
        let ksf = KsfParams::DEFAULT;
        let mut out = Vec::with_capacity(HEADER_LEN + 192);
        out.push(RECORD_VERSION);
        out.extend_from_slice(&ksf.memory.to_be_bytes());
        out.extend_from_slice(&ksf.iterations.to_be_bytes());
        out.extend_from_slice(&ksf.parallelism.to_be_bytes());
        out.extend_from_slice(&keys.public_key());
        // Masking key (64) and envelope (nonce 32, tag 64): random.
        let mut rest = [0u8; 160];
        rng.fill_bytes(&mut rest);
        out.extend_from_slice(&rest);
        out
    }
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("ksf", &self.ksf)
            .finish_non_exhaustive()
    }
}
