//! Request extractors whose every rejection is a documented JSON error.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::{header, request::Parts};
use serde::de::DeserializeOwned;

use crate::error::{ApiError, InputError};

use super::MAX_BODY_BYTES;

/// A JSON object body whose rejections are [`ApiError`]s with stable codes.
///
/// Only a JSON object is a valid body: an array, a string or a number is answered
/// `400 invalid_request` even when its elements would fit the fields.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers()) {
            return Err(ApiError::new(
                InputError::UnsupportedMediaType,
                "Send the body as JSON with Content-Type: application/json.",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e| match e {
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_)) => {
                ApiError::new(
                    InputError::PayloadTooLarge,
                    format!("Request bodies are limited to {MAX_BODY_BYTES} bytes."),
                )
            }
            other => ApiError::new(InputError::InvalidRequest, other.body_text()),
        })?;
        parse_object(&bytes).map(ApiJson)
    }
}

/// Parses a JSON object body into `T`.
fn parse_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match serde_json::from_slice::<T>(bytes) {
        Ok(v) if first == Some(&b'{') => Ok(v),
        Ok(_) => Err(ApiError::new(
            InputError::InvalidRequest,
            "The body must be a JSON object.",
        )),
        Err(e) if e.is_syntax() || e.is_eof() => Err(ApiError::new(
            InputError::InvalidJson,
            format!("The body is not valid JSON: {e}"),
        )),
        Err(e) if first != Some(&b'{') => Err(ApiError::new(
            InputError::InvalidRequest,
            format!("The body must be a JSON object: {e}"),
        )),
        Err(e) => Err(ApiError::new(
            InputError::InvalidRequest,
            format!("The body does not match the request: {e}"),
        )),
    }
}

/// Whether the request says its body is JSON (`application/json`, `…+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, sub)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (sub.eq_ignore_ascii_case("json")
            || sub.len() > 5 && sub[sub.len() - 5..].eq_ignore_ascii_case("+json"))
}

/// One path parameter; a parameter that is not UTF-8 (or otherwise unreadable) is answered
/// `400 invalid_request` as JSON.
pub struct ApiPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ApiPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Path::<String>::from_request_parts(parts, state).await {
            Ok(Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::new(
                InputError::InvalidRequest,
                format!("Bad path parameter: {}", e.body_text()),
            )),
        }
    }
}

/// A query string parsed into `T`; anything it does not parse (an unknown parameter, a number
/// that is not one, a parameter twice) is answered `400 invalid_request` as JSON.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(v)) => Ok(ApiQuery(v)),
            Err(e) => Err(ApiError::new(
                InputError::InvalidRequest,
                format!("Bad query string: {}", e.body_text()),
            )),
        }
    }
}
