//! ID-token signing keys: one RS256 (RSA 2048) and one EdDSA (Ed25519) key at a time, sealed
//! in the database, drawn on first use from the service's RNG.
//!
//! Rotation (`sesame admin keys rotate`) adds a key that is published at once and signs
//! only from `active_from`, later; a key stops signing when a newer key of its algorithm is
//! active and stays published [`super::ID_TOKEN_TTL_SECS`] (plus a margin) after that, so a
//! token it signed verifies until it expires. Every node reads the same table, so they all
//! switch at the same time.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rsa::pkcs1::{DecodeRsaPrivateKey as _, EncodeRsaPrivateKey as _};
use rsa::traits::PublicKeyParts as _;
use serde::de::DeserializeOwned;
use serde::Serialize;
use sesame_api::discovery::Jwk;
use sesame_proto::b64;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::{IdTokenAlg, ID_TOKEN_TTL_SECS};
use crate::error::ApiError;
use crate::service::Sesame;
use crate::store::KeyRecord;

/// How long a superseded key stays published beyond the ID tokens' lifetime, seconds.
const PUBLISH_MARGIN_SECS: i64 = 300;

/// A key, opened.
struct Opened {
    kid: String,
    alg: IdTokenAlg,
    encoding: EncodingKey,
    decoding: DecodingKey,
    jwk: Jwk,
}

fn corrupt(kid: &str) -> ApiError {
    ApiError::internal(format!("signing key {kid} does not open"))
}

/// Opens a stored key (its private part is sealed with the field key, bound to the kid).
fn open(s: &Sesame, k: &KeyRecord) -> Result<Opened, ApiError> {
    let der: Zeroizing<Vec<u8>> = Zeroizing::new(
        s.fields()
            .open("oidc_key", k.kid.as_bytes(), &k.private_sealed)
            .and_then(|text| b64::decode(&Zeroizing::new(text)))
            .ok_or_else(|| corrupt(&k.kid))?,
    );
    let alg = IdTokenAlg::parse(&k.alg).ok_or_else(|| corrupt(&k.kid))?;
    let jwk = |kty: &str| Jwk {
        kty: kty.into(),
        crv: None,
        alg: alg.as_str().into(),
        use_: "sig".into(),
        kid: k.kid.clone(),
        x: None,
        n: None,
        e: None,
    };
    match alg {
        IdTokenAlg::RS256 => {
            let key = rsa::RsaPrivateKey::from_pkcs1_der(&der).map_err(|_| corrupt(&k.kid))?;
            let (n, e) = (key.n().to_bytes_be(), key.e().to_bytes_be());
            Ok(Opened {
                kid: k.kid.clone(),
                alg,
                encoding: EncodingKey::from_rsa_der(&der),
                decoding: DecodingKey::from_rsa_raw_components(&n, &e),
                jwk: Jwk {
                    n: Some(b64::encode(&n)),
                    e: Some(b64::encode(&e)),
                    ..jwk("RSA")
                },
            })
        }
        IdTokenAlg::EdDSA => {
            let seed: [u8; 32] = der[..].try_into().map_err(|_| corrupt(&k.kid))?;
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let public = key.verifying_key().to_bytes();
            let pkcs8 = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&key)
                .map_err(|_| corrupt(&k.kid))?;
            Ok(Opened {
                kid: k.kid.clone(),
                alg,
                encoding: EncodingKey::from_ed_der(pkcs8.as_bytes()),
                decoding: DecodingKey::from_ed_der(&public),
                jwk: Jwk {
                    crv: Some("Ed25519".into()),
                    x: Some(b64::encode(public)),
                    ..jwk("OKP")
                },
            })
        }
    }
}

/// Draws a new private key of `alg`: PKCS#1 DER for RSA, the 32-byte seed for Ed25519.
async fn generate(s: &Sesame, alg: IdTokenAlg) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let rng = s.rng().clone();
    tokio::task::spawn_blocking(move || match alg {
        IdTokenAlg::RS256 => {
            let key =
                rsa::RsaPrivateKey::new(&mut rng.handle(), 2048).map_err(ApiError::internal)?;
            let der = key.to_pkcs1_der().map_err(ApiError::internal)?;
            Ok(Zeroizing::new(der.as_bytes().to_vec()))
        }
        IdTokenAlg::EdDSA => {
            let mut seed = Zeroizing::new(vec![0u8; 32]);
            rng.fill(&mut seed);
            Ok(seed)
        }
    })
    .await
    .map_err(ApiError::internal)?
}

/// The key id of a private key: the first 96 bits of its SHA-256, base64url.
fn kid_of(private: &[u8], alg: IdTokenAlg) -> String {
    let mut h = Sha256::new();
    h.update(alg.as_str());
    h.update(private);
    b64::encode(&h.finalize()[..12])
}

impl Sesame {
    /// Adds a new key of `alg` that signs from `active_from` (published at once).
    pub(crate) async fn oidc_add_key(
        &self,
        alg: IdTokenAlg,
        active_from: i64,
    ) -> Result<String, ApiError> {
        let private = generate(self, alg).await?;
        let kid = kid_of(&private, alg);
        let sealed = self.fields().seal(
            "oidc_key",
            kid.as_bytes(),
            &Zeroizing::new(b64::encode(&private)),
        );
        let now = i64::try_from(self.now()).unwrap_or(i64::MAX);
        self.oidc_store()?
            .insert_oidc_key(&KeyRecord {
                kid: kid.clone(),
                alg: alg.as_str().into(),
                private_sealed: sealed,
                created_at: now,
                active_from,
            })
            .await?;
        Ok(kid)
    }

    /// Starts a rotation: a new key of each algorithm, published now and signing in
    /// `delay_secs`. Answers the new kids.
    pub async fn oidc_rotate_keys(&self, delay_secs: i64) -> Result<Vec<String>, ApiError> {
        let from = i64::try_from(self.now()).unwrap_or(i64::MAX) + delay_secs;
        let mut kids = Vec::new();
        for alg in [IdTokenAlg::RS256, IdTokenAlg::EdDSA] {
            kids.push(self.oidc_add_key(alg, from).await?);
        }
        Ok(kids)
    }

    /// Every stored key with whether it is published and whether it signs now, and deletes
    /// keys no longer published.
    pub async fn oidc_key_states(&self) -> Result<Vec<(KeyRecord, bool, bool)>, ApiError> {
        let now = i64::try_from(self.now()).unwrap_or(i64::MAX);
        let keys = self.oidc_store()?.oidc_keys().await?;
        let mut out = Vec::with_capacity(keys.len());
        for k in &keys {
            // The first newer key of the same algorithm that is already active.
            let superseded_at = keys
                .iter()
                .filter(|o| o.alg == k.alg && o.active_from <= now)
                .filter(|o| (o.active_from, &o.kid) > (k.active_from, &k.kid))
                .map(|o| o.active_from)
                .min();
            let signing = k.active_from <= now && superseded_at.is_none();
            let published =
                superseded_at.is_none_or(|at| now < at + ID_TOKEN_TTL_SECS + PUBLISH_MARGIN_SECS);
            if !published {
                self.oidc_store()?.delete_oidc_key(&k.kid).await?;
                continue;
            }
            out.push((k.clone(), published, signing));
        }
        Ok(out)
    }

    /// The published keys, opened; draws a first key of each algorithm when there is none.
    async fn oidc_opened_keys(&self) -> Result<Vec<(Opened, bool)>, ApiError> {
        let mut states = self.oidc_key_states().await?;
        let mut drew = false;
        for alg in [IdTokenAlg::RS256, IdTokenAlg::EdDSA] {
            if !states.iter().any(|(k, _, _)| k.alg == alg.as_str()) {
                let now = i64::try_from(self.now()).unwrap_or(i64::MAX);
                self.oidc_add_key(alg, now).await?;
                drew = true;
            }
        }
        if drew {
            states = self.oidc_key_states().await?;
        }
        states
            .iter()
            .map(|(k, _, signing)| Ok((open(self, k)?, *signing)))
            .collect()
    }

    /// The published ID-token keys as JWKs.
    pub(crate) async fn oidc_jwks(&self) -> Result<Vec<Jwk>, ApiError> {
        Ok(self
            .oidc_opened_keys()
            .await?
            .into_iter()
            .map(|(k, _)| k.jwk)
            .collect())
    }

    /// Signs `claims` with the active key of `alg`.
    pub(crate) async fn oidc_sign<T: Serialize>(
        &self,
        alg: IdTokenAlg,
        claims: &T,
    ) -> Result<String, ApiError> {
        let keys = self.oidc_opened_keys().await?;
        let key = keys
            .iter()
            .filter(|(k, signing)| *signing && k.alg == alg)
            .map(|(k, _)| k)
            .next_back()
            .ok_or_else(|| ApiError::internal(format!("no active {} key", alg.as_str())))?;
        let mut header = Header::new(jose(alg));
        header.kid = Some(key.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &key.encoding).map_err(ApiError::internal)
    }

    /// Verifies a token this provider signed (any published key; expiry not checked).
    pub(crate) async fn oidc_verify<T: DeserializeOwned>(&self, token: &str) -> Option<T> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let keys = self.oidc_opened_keys().await.ok()?;
        let (key, _) = keys
            .iter()
            .find(|(k, _)| Some(&k.kid) == header.kid.as_ref() && jose(k.alg) == header.alg)?;
        let mut v = Validation::new(jose(key.alg));
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_issuer(&[self.issuer()]);
        v.set_required_spec_claims(&["iss", "sub", "aud"]);
        jsonwebtoken::decode::<T>(token, &key.decoding, &v)
            .ok()
            .map(|d| d.claims)
    }
}

/// The jsonwebtoken algorithm of `alg`.
fn jose(alg: IdTokenAlg) -> Algorithm {
    match alg {
        IdTokenAlg::RS256 => Algorithm::RS256,
        IdTokenAlg::EdDSA => Algorithm::EdDSA,
    }
}
