//! Health, readiness and the server's public keys.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sesame_api::discovery::{Health, Jwks, Ready, ServerInfo};
use sesame_api::{ErrorCode, ServerError};

use crate::service::Sesame;

/// The OpenAPI paths of this module.
#[derive(utoipa::OpenApi)]
#[openapi(paths(healthz, readyz, jwks, server_info))]
struct DiscoveryApi;

impl crate::openapi::Sections {
    /// The paths of this module (merged by [`crate::openapi::document`]).
    pub(crate) fn discovery() -> utoipa::openapi::OpenApi {
        <DiscoveryApi as utoipa::OpenApi>::openapi()
    }
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "Alive.", body = Health))
)]
pub(super) async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// `GET /readyz`: 200 when the database and Redis (if configured) answer within a second,
/// else 503 `unavailable` naming what failed.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: the database and Redis (if configured) answer",
    responses(
        (status = 200, description = "Ready.", body = Ready),
        (status = 503, description = "Not ready; `Retry-After`.", body = Ready)
    )
)]
pub(super) async fn readyz(State(s): State<Sesame>) -> Response {
    let r = s.readiness().await;
    let show = |part: &Result<(), String>| match part {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("unavailable: {e}"),
    };
    let mut body = Ready {
        status: "ready".into(),
        database: show(&r.database),
        redis: r.redis.as_ref().map_or("not configured".to_owned(), show),
        error: None,
    };
    let no_store = (header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if r.ready() {
        return ([no_store], Json(body)).into_response();
    }
    let failing: Vec<&str> = [
        ("the database", r.database.is_err()),
        ("Redis", matches!(r.redis, Some(Err(_)))),
    ]
    .into_iter()
    .filter_map(|(name, failed)| failed.then_some(name))
    .collect();
    let verb = if failing.len() > 1 { "do" } else { "does" };
    let message = format!("Not ready: {} {verb} not answer.", failing.join(" and "));
    tracing::warn!(database = %body.database, redis = %body.redis, "not ready");
    body.status = "unavailable".into();
    body.error = Some(ErrorCode::from(ServerError::Unavailable).detail(message));
    let retry = (header::RETRY_AFTER, HeaderValue::from(5));
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [retry, no_store],
        Json(body),
    )
        .into_response()
}

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    summary = "The keys that sign access tokens and ID tokens (JWKS)",
    responses((status = 200, description = "The JWKS.", body = Jwks))
)]
pub(super) async fn jwks(State(s): State<Sesame>) -> Response {
    let cache = (
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    let mut set = s.jwks();
    // The ID-token keys of the OpenID Connect provider (drawn on first use).
    if s.store().oidc().is_some() {
        match s.oidc_jwks().await {
            Ok(keys) => set.keys.extend(keys),
            Err(e) => return e.into_response(),
        }
    }
    ([cache], Json(set)).into_response()
}

#[utoipa::path(
    get,
    path = "/.well-known/sesame",
    tag = "discovery",
    summary = "The server's OPAQUE key, fingerprint, issuer and version",
    responses((status = 200, description = "Server identity.", body = ServerInfo))
)]
pub(super) async fn server_info(State(s): State<Sesame>) -> Json<ServerInfo> {
    let (pk, fingerprint) = s.server_identity();
    Json(ServerInfo {
        opaque_public_key: sesame_proto::b64::encode(pk),
        fingerprint,
        issuer: s.issuer(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    })
}
