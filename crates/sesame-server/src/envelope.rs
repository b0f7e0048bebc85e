//! Sealed request envelopes: libsodium sealed boxes (`crypto_box_seal`) around the JSON bodies
//! of `/api/*`, for clients written against the "encrypted communication" API (every body
//! `{"encryptedData": …}`).
//!
//! # Format
//!
//! **Server key.** `GET /api/server-key` (alias `GET /api/getkey`) answers `200`:
//!
//! ```json
//! {"publicKey": "<standard base64 of the 32-byte X25519 public key>",
//!  "algorithm": "crypto_box_seal (X25519, XSalsa20-Poly1305)"}
//! ```
//!
//! The key pair is generated once and stored in the database sealed under the master key
//! (secret `envelope_x25519_secret`), so it survives restarts and every node of one database
//! answers with the same key. Clients should pin it (or check it over a channel they trust):
//! a key fetched over the same connection protects no more than that connection does.
//!
//! **Request.** Any `/api/*` request (any method) whose body is a JSON object with exactly one
//! key, `encryptedData`:
//!
//! ```json
//! {"encryptedData": "<base64 of crypto_box_seal(plaintext, server public key)>"}
//! ```
//!
//! The plaintext is a UTF-8 JSON object: the route's normal body plus `clientPublicKey`, the
//! base64 of the client's own 32-byte X25519 public key, for example
//! `{"username": "alice", "password": "…", "clientPublicKey": "…"}`. The server removes
//! `clientPublicKey` and runs the route on the rest exactly as if it had been sent in the
//! clear (with `Content-Type: application/json`). A route without a body (`GET /api/me`)
//! takes a plaintext of just `{"clientPublicKey": "…"}`. The 64 KiB body limit applies to the
//! sealed request as received.
//!
//! `encryptedData` and `clientPublicKey` accept standard base64 (`+/`) and URL-safe base64
//! (`-_`), with or without `=` padding (surrounding whitespace is ignored); line breaks and a
//! mix of both alphabets are refused. The server always writes standard base64 with padding.
//!
//! **Response.** Whatever the route answers, success or error, comes back with the same
//! status (and the same `Retry-After`, if any) as
//!
//! ```json
//! {"encryptedData": "<standard base64 of crypto_box_seal(response body, clientPublicKey)>"}
//! ```
//!
//! which the client opens with `crypto_box_seal_open(ciphertext, client_pk, client_sk)` to get
//! the route's usual JSON body (for example `{"error": {"code": "username_taken", …}}` with
//! status 409). A `204 No Content` answer (`/api/logout`, `DELETE /api/sessions/{id}`) stays
//! `204` without a body: there is nothing to seal.
//!
//! **Envelope errors** are answered in the clear (the server has no client key to seal them
//! to), as `{"error": {"code": …, "message": …}}`:
//!
//! | status | code | when |
//! | --- | --- | --- |
//! | 400 | `envelope_invalid` | `encryptedData` is not a base64 string, does not open with the server's key (sealed to another key, altered, truncated), or its plaintext is not a JSON object |
//! | 400 | `envelope_missing_client_key` | the plaintext has no `clientPublicKey`, or it is not a string of base64 for 32 bytes, or it is a low-order X25519 point (libsodium refuses those too) |
//! | 413 | `payload_too_large` | the body is over 64 KiB |
//!
//! Any other body (plain JSON, no body, a JSON object with other keys besides
//! `encryptedData`) passes through untouched, so unsealed requests keep working.
//!
//! # Security
//!
//! Sealed boxes are anonymous: they hide request and response bodies from whoever handles the
//! traffic on the way (a TLS-terminating proxy, a request log) and bind the reply to the key
//! the request named, but they do not authenticate the client and add no replay protection.
//! Authentication stays where it is (passwords, OPAQUE, bearer tokens); TLS is still expected.
//! Decrypted request plaintexts and response bodies are wiped from memory once used (best
//! effort: copies made inside the JSON parser or the HTTP stack are out of reach).

use std::collections::BTreeMap;

use axum::body::{Body, Bytes, HttpBody as _};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine as _};
use crypto_box::{PublicKey, SecretKey};
use curve25519_dalek::montgomery::MontgomeryPoint;
use futures_util::StreamExt as _;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{ApiError, InputError};
use crate::http::MAX_BODY_BYTES;
use crate::service::Sesame;
use sesame_api::discovery::{EnvelopeKey, SealedBody};

/// The `algorithm` named by `GET /api/server-key`.
pub const ALGORITHM: &str = "crypto_box_seal (X25519, XSalsa20-Poly1305)";

/// The only key of a sealed request body, and of a sealed response body.
pub const ENCRYPTED_FIELD: &str = "encryptedData";

/// The plaintext key naming the client's X25519 public key (removed before the route sees it).
pub const CLIENT_KEY_FIELD: &str = "clientPublicKey";

/// Requests under this path prefix are inspected for envelopes.
const API_PREFIX: &str = "/api/";

const LENIENT_PADDING: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT_PADDING);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT_PADDING);

/// Decodes base64 as envelopes accept it: the standard or the URL-safe alphabet, padding
/// optional, surrounding whitespace ignored. `None` if it is neither.
pub fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    STANDARD_LENIENT
        .decode(text)
        .or_else(|_| URL_SAFE_LENIENT.decode(text))
        .ok()
}

/// `GET /api/server-key` and `GET /api/getkey`: the X25519 public key to seal requests to.
#[utoipa::path(
    get,
    path = "/api/server-key",
    tag = "discovery",
    summary = "The X25519 key to seal request bodies to",
    responses((status = 200, description = "The key.", body = EnvelopeKey))
)]
pub async fn server_key(State(s): State<Sesame>) -> Json<EnvelopeKey> {
    let public = s.envelope_key().public_key();
    Json(EnvelopeKey {
        public_key: STANDARD.encode(public.as_bytes()),
        algorithm: ALGORITHM.to_owned(),
    })
}

/// The middleware (mount with `axum::middleware::from_fn_with_state`): opens sealed `/api/*`
/// requests, runs the route on the plaintext and seals its answer to the client's key. Every
/// other request passes through untouched. See the [module documentation](self) for the
/// format and the errors.
pub async fn middleware(State(s): State<Sesame>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with(API_PREFIX) || req.body().size_hint().exact() == Some(0) {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let bytes = match read_limited(body, MAX_BODY_BYTES).await {
        Ok(bytes) => bytes,
        Err(e) => return e.into_response(),
    };
    let sealed = match envelope_of(&bytes) {
        Ok(Some(sealed)) => sealed,
        Ok(None) => {
            return next
                .run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(e) => return e.into_response(),
    };
    let (inner, client) = match open(s.envelope_key(), &sealed) {
        Ok(opened) => opened,
        Err(e) => return e.into_response(),
    };
    parts.headers.remove(header::TRANSFER_ENCODING);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(inner.len()));
    let resp = next
        .run(Request::from_parts(parts, Body::from(inner)))
        .await;
    seal_response(resp, &client, s.rng()).await
}

/// Reads the whole body, refusing more than `limit` bytes with `413 payload_too_large`.
/// A body that arrives in one piece is returned as it is, without copying.
async fn read_limited(body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            InputError::PayloadTooLarge,
            format!("Request bodies are limited to {limit} bytes."),
        )
    };
    if body.size_hint().lower() > limit as u64 {
        return Err(too_large());
    }
    let mut stream = body.into_data_stream();
    let mut chunks: Vec<Bytes> = Vec::new();
    let mut total = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                InputError::InvalidRequest,
                format!("The request body could not be read: {e}"),
            )
        })?;
        total = total.saturating_add(chunk.len());
        if total > limit {
            return Err(too_large());
        }
        chunks.push(chunk);
    }
    if chunks.len() == 1 {
        return Ok(chunks.remove(0));
    }
    // One exact allocation: growing a buffer would leave stray copies of a plain body.
    let mut all = Vec::with_capacity(total);
    for chunk in &chunks {
        all.extend_from_slice(chunk);
    }
    Ok(Bytes::from(all))
}

fn invalid(message: &'static str) -> ApiError {
    ApiError::new(InputError::EnvelopeInvalid, message)
}

fn missing_client_key(message: &'static str) -> ApiError {
    ApiError::new(InputError::EnvelopeMissingClientKey, message)
}

/// Opens a request body as the middleware does, without the HTTP around it: `Ok(None)` for a
/// body that is not an envelope (passed through unchanged), `Ok(Some((inner body, client
/// key)))` for one that opens with `server`, the error answer otherwise. (The decoder an
/// outsider reaches; the fuzz targets call it.)
pub fn open_body(server: &SecretKey, body: &[u8]) -> Result<Option<(Bytes, PublicKey)>, ApiError> {
    match envelope_of(body)? {
        Some(sealed) => open(server, &sealed).map(Some),
        None => Ok(None),
    }
}

/// `Ok(Some(base64))` for an envelope, `Ok(None)` for any other body.
fn envelope_of(body: &[u8]) -> Result<Option<String>, ApiError> {
    // Only the keys are read here: the values of a plain body (passwords) are skipped, not
    // copied.
    let Ok(keys) = serde_json::from_slice::<BTreeMap<String, IgnoredAny>>(body) else {
        return Ok(None);
    };
    if keys.len() != 1 || !keys.contains_key(ENCRYPTED_FIELD) {
        return Ok(None);
    }
    #[derive(Deserialize)]
    struct Envelope {
        #[serde(rename = "encryptedData")]
        data: Value,
    }
    match serde_json::from_slice::<Envelope>(body) {
        Ok(Envelope {
            data: Value::String(sealed),
        }) => Ok(Some(sealed)),
        _ => Err(invalid("encryptedData must be a string of base64.")),
    }
}

/// A parsed plaintext whose strings are wiped when it goes out of scope.
struct Wiped(Value);

impl Drop for Wiped {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

fn wipe(value: &mut Value) {
    match value {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Opens a sealed body: the inner JSON body for the route (wiped when dropped) and the
/// client's key.
fn open(server: &SecretKey, sealed: &str) -> Result<(Bytes, PublicKey), ApiError> {
    let sealed = decode_base64(sealed).ok_or_else(|| invalid("encryptedData is not base64."))?;
    let plain = Zeroizing::new(server.unseal(&sealed).map_err(|_| {
        invalid(
            "encryptedData does not open with this server's key (sealed to another key, \
             altered or truncated); fetch the key from /api/server-key.",
        )
    })?);
    let mut parsed = Wiped(
        serde_json::from_slice::<Value>(&plain)
            .map_err(|_| invalid("The sealed plaintext is not a JSON object."))?,
    );
    let Value::Object(object) = &mut parsed.0 else {
        return Err(invalid("The sealed plaintext is not a JSON object."));
    };
    let client = match object.remove(CLIENT_KEY_FIELD).map(Wiped) {
        Some(Wiped(Value::String(ref key))) => client_key(key)?,
        Some(_) => {
            return Err(missing_client_key(
                "clientPublicKey must be a base64 string.",
            ))
        }
        None => {
            return Err(missing_client_key(
                "The sealed plaintext has no clientPublicKey to seal the answer to.",
            ))
        }
    };
    // Re-serialising never needs much more room than the plaintext; reserving it up front
    // avoids reallocations that would leave unwiped copies behind.
    let mut inner = Zeroizing::new(Vec::with_capacity(plain.len() * 2 + 16));
    serde_json::to_writer(&mut *inner, &parsed.0).map_err(ApiError::internal)?;
    Ok((Bytes::from_owner(inner), client))
}

/// Decodes `clientPublicKey`: 32 bytes, and not a low-order point (whose shared secret is
/// predictable, so the answer would be readable by anyone; libsodium refuses them too).
fn client_key(text: &str) -> Result<PublicKey, ApiError> {
    let bytes: [u8; 32] = decode_base64(text)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| {
            missing_client_key("clientPublicKey must be the base64 of a 32-byte X25519 key.")
        })?;
    // X25519 with any clamped scalar (a multiple of the cofactor 8) sends exactly the
    // low-order points to zero.
    if MontgomeryPoint(bytes).mul_clamped([0x55; 32]).0 == [0u8; 32] {
        return Err(missing_client_key(
            "clientPublicKey is a low-order X25519 point; use a real public key.",
        ));
    }
    Ok(PublicKey::from(bytes))
}

/// Seals the route's answer to `client`, keeping its status and `Retry-After`.
async fn seal_response(resp: Response, client: &PublicKey, rng: &crate::rng::Rng) -> Response {
    let (parts, body) = resp.into_parts();
    let status = parts.status;
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Response::from_parts(parts, body);
    }
    let plain = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(bytes) => Zeroizing::new(Vec::from(bytes)),
        Err(e) => {
            return ApiError::internal(format!("reading a response to seal: {e}")).into_response()
        }
    };
    let sealed = match client.seal(&mut rng.handle(), &plain) {
        Ok(sealed) => sealed,
        Err(_) => return ApiError::internal("sealing a response failed").into_response(),
    };
    let mut out = (
        status,
        Json(SealedBody {
            encrypted_data: STANDARD.encode(sealed),
        }),
    )
        .into_response();
    if let Some(retry) = parts.headers.get(header::RETRY_AFTER) {
        out.headers_mut().insert(header::RETRY_AFTER, retry.clone());
    }
    out
}

#[cfg(test)]
mod tests;
