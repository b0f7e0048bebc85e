//! Refresh, logout and the caller's sessions.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use sesame_api::sessions::{AccessGrant, RefreshRequest, Revoked, SessionList};
use uuid::Uuid;

use super::{ApiJson, ApiPath, Auth, Ctx};
use crate::error::{ApiError, InputError};
use crate::service::Sesame;

/// The routes of this module (merged into [`super::router`]).
pub(super) fn routes() -> Router<Sesame> {
    Router::new()
        .route("/api/session/refresh", post(refresh))
        .route("/api/logout", post(logout))
        .route("/api/logout-all", post(logout_all))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}", delete(revoke_session))
}

/// The OpenAPI paths of [`routes`].
#[derive(utoipa::OpenApi)]
#[openapi(paths(refresh, logout, logout_all, sessions, revoke_session))]
struct SessionsApi;

impl crate::openapi::Sections {
    /// The paths of this module (merged by [`crate::openapi::document`]).
    pub(crate) fn sessions() -> utoipa::openapi::OpenApi {
        <SessionsApi as utoipa::OpenApi>::openapi()
    }
}

#[utoipa::path(
    post,
    path = "/api/session/refresh",
    tag = "sessions",
    summary = "A fresh access token for a session token",
    request_body = RefreshRequest,
    responses((status = 200, description = "A new access token.", body = AccessGrant))
)]
async fn refresh(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<Json<AccessGrant>, ApiError> {
    Ok(Json(s.refresh(&req.session_token, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "sessions",
    summary = "End the caller's session",
    security(("bearer" = [])),
    responses((status = 204, description = "Logged out."))
)]
async fn logout(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
) -> Result<StatusCode, ApiError> {
    s.logout(&who, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/logout-all",
    tag = "sessions",
    summary = "End every session of the caller",
    security(("bearer" = [])),
    responses((status = 200, description = "How many sessions ended.", body = Revoked))
)]
async fn logout_all(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
) -> Result<Json<Revoked>, ApiError> {
    let revoked = s.logout_all(&who, &ctx).await?;
    Ok(Json(Revoked { revoked }))
}

#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "sessions",
    summary = "The caller's live sessions",
    security(("bearer" = [])),
    responses((status = 200, description = "The sessions.", body = SessionList))
)]
async fn sessions(State(s): State<Sesame>, Auth(who): Auth) -> Result<Json<SessionList>, ApiError> {
    Ok(Json(SessionList {
        sessions: s.sessions(&who).await?,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/sessions/{id}",
    tag = "sessions",
    summary = "End one of the caller's sessions",
    params(("id" = String, Path, description = "The session id (UUID).")),
    security(("bearer" = [])),
    responses((status = 204, description = "Revoked."))
)]
async fn revoke_session(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::new(InputError::SessionNotFound, "No such session."))?;
    s.revoke_session(&who, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
