//! The HTTP codec: JSON routes over [`Sesame`].
//!
//! Every body is JSON, at most [`MAX_BODY_BYTES`]; every error is
//! `{"error": {"code": …, "message": …}}` with its status (and `Retry-After` on 429/503).
//! Malformed input of any kind is a 4xx, never a 500; a panic in a handler is caught and
//! answered with a bare `500 internal`.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sesame_api::ErrorBody;

use crate::error::{ApiError, InputError, ServerError};
use crate::service::{Authenticated, RequestContext, Sesame};

mod account;
mod admin;
mod auth;
mod discovery;
mod extract;
mod passkeys;
mod sessions;

pub use extract::{ApiJson, ApiPath, ApiQuery};

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = sesame_api::MAX_BODY_BYTES;

/// Builds the router. Callers serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so per-address throttling sees the peer.
pub fn router(sesame: Sesame) -> Router {
    // The Prometheus recorder, once per process (`crate::metrics`).
    crate::metrics::handle();
    Router::new()
        .route("/healthz", get(discovery::healthz))
        .route("/readyz", get(discovery::readyz))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/.well-known/sesame", get(discovery::server_info))
        .route("/api/server-key", get(crate::envelope::server_key))
        .route("/api/getkey", get(crate::envelope::server_key))
        .route("/auth/login", get(crate::ws::login_socket))
        .route("/metrics", get(crate::metrics::serve_metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .merge(auth::routes())
        .merge(sessions::routes())
        .merge(account::routes())
        .merge(passkeys::routes())
        .merge(admin::routes())
        .merge(crate::relay::routes())
        .merge(crate::web::routes())
        .merge(crate::oidc::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Sealed `{"encryptedData"}` bodies on `/api/*` (see `crate::envelope`).
        .layer(axum::middleware::from_fn_with_state(
            sesame.clone(),
            crate::envelope::middleware,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::new(ServerError::Internal, "Internal server error.").into_response()
        }))
        // Outermost: request metrics and the access log, by route template (`crate::metrics`).
        .layer(axum::middleware::from_fn_with_state(
            sesame.clone(),
            crate::metrics::observe,
        ))
        .with_state(sesame)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ErrorBody {
            error: sesame_api::ErrorDetail {
                retry_after: None,
                ..self.detail()
            },
        };
        let mut resp = (status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.code == InputError::PayloadTooLarge.into() {
            // The rest of the body is never read: the connection cannot carry another request,
            // and saying so keeps clients from reusing it.
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        // The code, for the check of answers against the route table (`crate::metrics`).
        resp.extensions_mut().insert(self.code);
        resp
    }
}

/// The request's address and user agent.
pub struct Ctx(pub RequestContext);

impl FromRequestParts<Sesame> for Ctx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        sesame: &Sesame,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip());
        let addr = peer.map(|peer| client_address(peer, &parts.headers, sesame.trusted_proxies()));
        let ua = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Ok(Ctx(RequestContext::new(addr, ua)))
    }
}

/// The client's address: the peer, unless the peer is a trusted proxy, in which case the
/// right-most `X-Forwarded-For` entry that is not itself a trusted proxy (entries further left
/// are whatever the client claimed and are ignored).
fn client_address(
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .collect::<Vec<_>>();
    forwarded
        .into_iter()
        .rev()
        .find(|a| !trusted.contains(a))
        .unwrap_or(peer)
}

/// A caller with a valid access token (`Authorization: Bearer …`) and a live session.
pub struct Auth(pub Authenticated);

impl FromRequestParts<Sesame> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        sesame: &Sesame,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(&parts.headers).ok_or_else(ApiError::unauthorized)?;
        Ok(Auth(sesame.authenticate(token).await?))
    }
}

/// The token of an `Authorization: Bearer …` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

async fn not_found() -> ApiError {
    ApiError::new(InputError::NotFound, "No such route.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        InputError::MethodNotAllowed,
        "This route does not take that method.",
    )
}
