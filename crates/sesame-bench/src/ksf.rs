//! The bench client's cipher suite: Sesame's suite with a memoizing key-stretching function.
//!
//! OPAQUE's client stretches the OPRF output with Argon2id (RFC 9807 §6.4.2,
//! `Stretch(oprf_output)`). The OPRF output is a deterministic function of the password and
//! of the server's per-user OPRF key (derived from the server's seed and the username), so
//! for one (server, user, password) the Argon2id input, and therefore its output, is always
//! the same, even though every login blinds the password afresh.
//!
//! [`CachingKsf`] computes `Argon2id(input, salt = 16 zero bytes, m, t, p)` exactly as
//! [`argon2::Argon2`]'s `Ksf` implementation in `opaque-ke` does, and remembers the result
//! keyed by `(m, t, p, input)`. The first login (or the registration) of a user pays the
//! Argon2id once; later ones find it. Nothing else is cached: blinding, unblinding, the
//! key exchange (3DH), the MACs and the confirmation run in full on every login.
//!
//! The suite differs from [`sesame_proto::suite::Suite`] only in the `Ksf` type, which is
//! not visible on the wire: the server cannot tell, and the records the bench registers
//! are byte-for-byte those the real client would make (the tests check the export key
//! against [`sesame_client::Client::login`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use generic_array::{ArrayLength, GenericArray};
use opaque_ke::errors::InternalError;
use opaque_ke::ksf::Ksf;
use sesame_proto::KsfParams;

/// Sesame's cipher suite with [`CachingKsf`] as the key-stretching function.
#[derive(Debug, Clone, Copy)]
pub struct BenchSuite;

impl opaque_ke::CipherSuite for BenchSuite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = CachingKsf;
}

/// Argon2id (version 0x13, 16 zero bytes of salt) with a process-wide memo of its results.
#[derive(Debug, Clone, Copy)]
pub struct CachingKsf {
    params: KsfParams,
}

impl Default for CachingKsf {
    fn default() -> Self {
        CachingKsf {
            params: KsfParams::DEFAULT,
        }
    }
}

type Key = (u32, u32, u32, Vec<u8>);

fn memo() -> &'static Mutex<HashMap<Key, Vec<u8>>> {
    static MEMO: OnceLock<Mutex<HashMap<Key, Vec<u8>>>> = OnceLock::new();
    MEMO.get_or_init(|| Mutex::new(HashMap::new()))
}

static HITS: AtomicU64 = AtomicU64::new(0);
static MISSES: AtomicU64 = AtomicU64::new(0);

/// How often the memo answered (`hits`) and how many Argon2id runs the client did (`misses`).
pub fn stats() -> (u64, u64) {
    (HITS.load(Ordering::Relaxed), MISSES.load(Ordering::Relaxed))
}

impl CachingKsf {
    /// Stretching with these parameters (those of the server's challenge).
    pub fn new(params: KsfParams) -> CachingKsf {
        CachingKsf { params }
    }

    fn argon2(&self) -> Result<argon2::Argon2<'static>, InternalError> {
        let p = self.params;
        let params = argon2::Params::new(p.memory, p.iterations, p.parallelism, None)
            .map_err(|_| InternalError::KsfError)?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

impl Ksf for CachingKsf {
    fn hash<L: ArrayLength<u8>>(
        &self,
        input: GenericArray<u8, L>,
    ) -> Result<GenericArray<u8, L>, InternalError> {
        let p = self.params;
        let key = (p.memory, p.iterations, p.parallelism, input.to_vec());
        let cached = memo()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        if let Some(out) = cached {
            if out.len() == L::USIZE {
                HITS.fetch_add(1, Ordering::Relaxed);
                return Ok(GenericArray::clone_from_slice(&out));
            }
        }
        MISSES.fetch_add(1, Ordering::Relaxed);
        // Exactly `opaque_ke`'s `Ksf for argon2::Argon2`.
        let mut output = GenericArray::default();
        self.argon2()?
            .hash_password_into(&input, &[0; argon2::RECOMMENDED_SALT_LEN], &mut output)
            .map_err(|_| InternalError::KsfError)?;
        memo()
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key, output.to_vec());
        Ok(output)
    }
}

#[cfg(test)]
mod tests;
