//! Session tokens and access tokens.
//!
//! * A **session token** is 32 random bytes (256 bits) as base64url behind the prefix `sst_`.
//!   The database keeps only its SHA-256: the token has full entropy, so a plain hash is
//!   enough and a dump of the sessions table lets nobody in.
//! * An **access token** is a JWT (RFC 9068 profile: `typ` `at+jwt`) signed with Ed25519
//!   (`alg` `EdDSA`), with claims `iss`, `aud`, `sub` (user id), `sid` (session id), `iat`,
//!   `exp` (at most 15 minutes after `iat`), `jti` and `amr`. Any service can verify it with
//!   the key published at `/.well-known/jwks.json`.

use ed25519_dalek::pkcs8::EncodePrivateKey as _;
use ed25519_dalek::SigningKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::rng::Rng;

use sesame_proto::b64;

/// The prefix of every session token.
pub const SESSION_TOKEN_PREFIX: &str = "sst_";
/// The longest an access token may live, in seconds.
pub const MAX_ACCESS_TTL_SECS: u64 = 15 * 60;

/// A fresh session token and the hash to store.
pub fn new_session_token(rng: &Rng) -> (String, Vec<u8>) {
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    rng.fill(raw.as_mut());
    let token = format!("{SESSION_TOKEN_PREFIX}{}", b64::encode(raw.as_ref()));
    let hash = hash_session_token(&token);
    (token, hash)
}

/// The stored hash of a session token.
pub fn hash_session_token(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Claims of a Sesame access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer: the server's public URL.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Subject: the user id.
    pub sub: String,
    /// The session this token was issued from.
    pub sid: String,
    /// Issued at (unix seconds).
    pub iat: u64,
    /// Expires at (unix seconds).
    pub exp: u64,
    /// Unique token id.
    pub jti: String,
    /// Authentication methods (RFC 8176 style: `opaque`, `pwd`, later `otp`…).
    pub amr: Vec<String>,
}

/// Signs and verifies access tokens with the server's Ed25519 key.
pub struct TokenSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    public: [u8; 32],
    issuer: String,
    audience: String,
    ttl: u64,
}

/// Why an access token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid access token")]
pub struct InvalidToken;

impl TokenSigner {
    /// A signer for `key`, issuing tokens that live `ttl_secs` (capped at 15 minutes).
    pub fn new(key: &SigningKey, issuer: &str, audience: &str, ttl_secs: u64) -> TokenSigner {
        let public = key.verifying_key().to_bytes();
        let der = key
            .to_pkcs8_der()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default();
        let kid = b64::encode(&Sha256::digest(public)[..12]);
        TokenSigner {
            encoding: EncodingKey::from_ed_der(&der),
            decoding: DecodingKey::from_ed_der(&public),
            kid,
            public,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl: ttl_secs.clamp(1, MAX_ACCESS_TTL_SECS),
        }
    }

    /// The issuer (`iss`) of the tokens this signer issues.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Lifetime of the tokens this signer issues, in seconds.
    pub fn ttl(&self) -> u64 {
        self.ttl
    }

    /// Issues a token for `user` in `session` (its `jti` drawn from `rng`).
    pub fn issue(
        &self,
        user: Uuid,
        session: Uuid,
        amr: &[String],
        now: u64,
        rng: &Rng,
    ) -> Result<(String, AccessClaims), jsonwebtoken::errors::Error> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user.to_string(),
            sid: session.to_string(),
            iat: now,
            exp: now + self.ttl,
            jti: rng.uuid().to_string(),
            amr: amr.to_vec(),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &self.encoding)?;
        Ok((token, claims))
    }

    /// Verifies signature, algorithm, type, issuer, audience and expiry at `now`.
    pub fn verify(&self, token: &str, now: u64) -> Result<AccessClaims, InvalidToken> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| InvalidToken)?;
        if header.alg != Algorithm::EdDSA || header.typ.as_deref() != Some("at+jwt") {
            return Err(InvalidToken);
        }
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_issuer(&[&self.issuer]);
        v.set_audience(&[&self.audience]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        // Expiry is checked below against the caller's clock, not the library's.
        v.validate_exp = false;
        v.leeway = 0;
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &v)
            .map_err(|_| InvalidToken)?
            .claims;
        if now >= claims.exp {
            return Err(InvalidToken);
        }
        Ok(claims)
    }

    /// The JSON Web Key Set publishing the verification key (RFC 8037 OKP key).
    pub fn jwks(&self) -> sesame_api::discovery::Jwks {
        sesame_api::discovery::Jwks {
            keys: vec![sesame_api::discovery::Jwk {
                kty: "OKP".into(),
                crv: Some("Ed25519".into()),
                alg: "EdDSA".into(),
                use_: "sig".into(),
                kid: self.kid.clone(),
                x: Some(b64::encode(self.public)),
                n: None,
                e: None,
            }],
        }
    }
}

#[cfg(test)]
mod tests;
