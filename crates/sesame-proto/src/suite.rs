//! The cipher suite and the key-stretching parameters.
//!
//! Sesame runs OPAQUE (RFC 9807) with ristretto255 for both the OPRF and the key exchange,
//! TripleDH over SHA-512, and Argon2id (version 0x13, a 16-byte all-zero salt, output as long as
//! the OPRF hash) as the key-stretching function. That is exactly what the npm package
//! `@serenity-kit/opaque` 1.x runs, so browsers and Node clients interoperate byte for byte.

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// The OPAQUE cipher suite: ristretto255 OPRF and key exchange, TripleDH with SHA-512, Argon2id.
#[derive(Debug, Clone, Copy)]
pub struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = opaque_ke::Ristretto255;
    type KeyExchange = opaque_ke::TripleDh<opaque_ke::Ristretto255, sha2::Sha512>;
    type Ksf = argon2::Argon2<'static>;
}

/// Argon2id parameters of one credential record.
///
/// They belong to the record (a record made with one set of parameters only opens with the
/// same set), are stored beside it and are sent to the client in every login challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KsfParams {
    /// Memory in KiB (Argon2 `m_cost`); the policy's floor and ceiling apply.
    #[cfg_attr(feature = "openapi", schema(minimum = 7168, maximum = 2097152))]
    pub memory: u32,
    /// Passes over memory (Argon2 `t_cost`); `memory × iterations` must reach 35840.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 64))]
    pub iterations: u32,
    /// Lanes (Argon2 `p_cost`).
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 16))]
    pub parallelism: u32,
}

impl KsfParams {
    /// The defaults for new records: m = 19456 KiB, t = 2, p = 1 (OWASP's first choice).
    pub const DEFAULT: KsfParams = KsfParams {
        memory: 19_456,
        iterations: 2,
        parallelism: 1,
    };

    /// Builds the Argon2id instance for these parameters.
    pub(crate) fn argon2(&self) -> Result<argon2::Argon2<'static>, Error> {
        let params = argon2::Params::new(self.memory, self.iterations, self.parallelism, None)
            .map_err(|_| Error::KsfRejected("Argon2 refuses these parameters"))?;
        Ok(argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            params,
        ))
    }
}

impl Default for KsfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How key-stretching parameters travel on the wire.
///
/// The JSON form is the one `@serenity-kit/opaque` takes as its `keyStretching` option,
/// `{"argon2id-custom": {"iterations": 2, "memory": 19456, "parallelism": 1}}`, so a
/// JavaScript client passes the field through unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum KeyStretching {
    /// Argon2id with explicit parameters.
    #[serde(rename = "argon2id-custom")]
    Argon2id(KsfParams),
}

impl KeyStretching {
    /// The Argon2id parameters.
    pub fn params(&self) -> KsfParams {
        match self {
            KeyStretching::Argon2id(p) => *p,
        }
    }
}

impl From<KsfParams> for KeyStretching {
    fn from(p: KsfParams) -> Self {
        KeyStretching::Argon2id(p)
    }
}

/// Bounds on key-stretching parameters.
///
/// A client checks the parameters a server asks for against this policy *before* stretching
/// anything: a malicious or compromised server must not be able to make a client register a
/// record that is cheap to crack (the floor), nor make it burn gigabytes (the ceiling). The
/// server applies the same policy to the parameters a client declares at registration.
///
/// The floor accepts every configuration OWASP lists for Argon2id (m=47104/t=1, m=19456/t=2,
/// m=12288/t=3, m=9216/t=4, m=7168/t=5) and nothing weaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KsfPolicy {
    /// Smallest memory in KiB.
    pub min_memory: u32,
    /// Smallest `memory × iterations` (KiB-passes).
    pub min_cost: u64,
    /// Largest memory in KiB.
    pub max_memory: u32,
    /// Largest number of passes.
    pub max_iterations: u32,
    /// Largest number of lanes.
    pub max_parallelism: u32,
}

impl KsfPolicy {
    /// The documented floor and ceiling (see the type's docs and docs/protocol.md).
    pub const DEFAULT: KsfPolicy = KsfPolicy {
        min_memory: 7_168,
        min_cost: 35_840,
        max_memory: 2_097_152,
        max_iterations: 64,
        max_parallelism: 16,
    };

    /// Accepts `params` or says which bound they break.
    pub fn check(&self, params: &KsfParams) -> Result<(), Error> {
        if params.memory < self.min_memory {
            return Err(Error::KsfRejected("memory below the floor"));
        }
        if u64::from(params.memory) * u64::from(params.iterations) < self.min_cost {
            return Err(Error::KsfRejected("memory x iterations below the floor"));
        }
        if params.memory > self.max_memory {
            return Err(Error::KsfRejected("memory above the ceiling"));
        }
        if params.iterations == 0 || params.iterations > self.max_iterations {
            return Err(Error::KsfRejected("iterations out of range"));
        }
        if params.parallelism == 0 || params.parallelism > self.max_parallelism {
            return Err(Error::KsfRejected("parallelism out of range"));
        }
        if params.memory < 8 * params.parallelism {
            return Err(Error::KsfRejected("memory below 8 KiB per lane"));
        }
        Ok(())
    }
}

impl Default for KsfPolicy {
    fn default() -> Self {
        Self::DEFAULT
    }
}
