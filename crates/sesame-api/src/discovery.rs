//! Health, readiness and the server's public keys.

use serde::{Deserialize, Serialize};

use crate::error::ErrorDetail;

/// `200` of `GET /healthz`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// `GET /readyz`, `200` or `503`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ready {
    /// `ready` or `unavailable`.
    pub status: String,
    /// `ok` or `unavailable: <why>`.
    pub database: String,
    /// `ok`, `unavailable: <why>` or `not configured`.
    pub redis: String,
    /// When unavailable: code `unavailable` and what does not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// `200` of `GET /.well-known/sesame`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServerInfo {
    /// The OPAQUE server public key (base64url).
    pub opaque_public_key: String,
    /// `SHA256:…` of that key, for checking out of band.
    pub fingerprint: String,
    /// The access tokens' `iss`.
    pub issuer: String,
    /// The server's version.
    pub version: String,
}

/// One JSON Web Key (RFC 7517) of the JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwk {
    /// Key type: `OKP` (Ed25519) or `RSA`.
    pub kty: String,
    /// Curve of an `OKP` key: `Ed25519`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crv: Option<String>,
    /// Algorithm: `EdDSA` or `RS256`.
    pub alg: String,
    /// Use: `sig`.
    #[serde(rename = "use")]
    pub use_: String,
    /// Key id (the tokens' `kid`).
    pub kid: String,
    /// The public key of an `OKP` key (base64url).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub x: Option<String>,
    /// The modulus of an `RSA` key (base64url, big-endian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<String>,
    /// The public exponent of an `RSA` key (base64url, big-endian).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

/// `200` of `GET /.well-known/jwks.json`: the keys that sign access tokens and ID tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Jwks {
    /// The keys.
    pub keys: Vec<Jwk>,
}

/// `200` of `GET /api/server-key`: the key to seal request bodies to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct EnvelopeKey {
    /// X25519 public key, standard base64.
    pub public_key: String,
    /// The sealing algorithm (`crypto_box_seal`).
    pub algorithm: String,
}

/// A sealed body, either way: `{"encryptedData": <standard base64 of a crypto_box_seal>}`
/// (docs/api.md §14).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SealedBody {
    /// The sealed JSON body.
    #[serde(rename = "encryptedData")]
    pub encrypted_data: String,
}
