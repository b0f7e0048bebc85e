//! The admin API (`/api/admin/…`, accounts with the admin role only) and the caller's own
//! activity (`GET /api/me/activity`): the two views of the audit log the web app shows.
//!
//! The handlers only decode and encode: the role check, the fresh authentication, the
//! self-protection and the audit rows are in the service (`service/admin_api.rs`).

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use sesame_api::admin::{Activity, ActivityQuery, AuditPage, AuditQuery, UserPage, UserQuery};
use sesame_api::sessions::Revoked;

use super::{ApiPath, ApiQuery, Auth, Ctx};
use crate::error::ApiError;
use crate::service::{AdminAction, Sesame, UserSummary};

/// The routes of this module (merged into [`super::router`]).
pub(super) fn routes() -> Router<Sesame> {
    Router::new()
        .route("/api/me/activity", get(activity))
        .route("/api/admin/users", get(users))
        .route("/api/admin/users/{name}", get(user).delete(delete_user))
        .route("/api/admin/users/{name}/ban", post(ban))
        .route("/api/admin/users/{name}/unban", post(unban))
        .route(
            "/api/admin/users/{name}/revoke-sessions",
            post(revoke_sessions),
        )
        .route(
            "/api/admin/users/{name}/reset-2fa",
            post(reset_second_factors),
        )
        .route("/api/admin/audit", get(audit))
}

/// The OpenAPI paths of [`routes`].
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    activity,
    users,
    user,
    delete_user,
    ban,
    unban,
    revoke_sessions,
    reset_second_factors,
    audit
))]
struct AdminApi;

impl crate::openapi::Sections {
    /// The paths of this module (merged by [`crate::openapi::document`]).
    pub(crate) fn admin() -> utoipa::openapi::OpenApi {
        <AdminApi as utoipa::OpenApi>::openapi()
    }
}

#[utoipa::path(
    get,
    path = "/api/me/activity",
    tag = "account",
    summary = "The caller's recent sign-ins and security events",
    params(ActivityQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The events, newest first.", body = Activity))
)]
async fn activity(
    State(s): State<Sesame>,
    Auth(who): Auth,
    ApiQuery(query): ApiQuery<ActivityQuery>,
) -> Result<Json<Activity>, ApiError> {
    Ok(Json(s.my_activity(&who, &query).await?))
}

#[utoipa::path(
    get,
    path = "/api/admin/users",
    tag = "admin",
    summary = "List or search users (admin)",
    params(UserQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "A page of users.", body = UserPage))
)]
async fn users(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<UserPage>, ApiError> {
    Ok(Json(s.admin_api_users(&who, &query, &ctx).await?))
}

#[utoipa::path(
    get,
    path = "/api/admin/users/{name}",
    tag = "admin",
    summary = "One user (admin)",
    params(("name" = String, Path, description = "The username.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The user.", body = UserSummary))
)]
async fn user(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(name): ApiPath,
) -> Result<Json<UserSummary>, ApiError> {
    Ok(Json(s.admin_api_user(&who, &name, &ctx).await?))
}

/// Runs an action that answers the user afterwards.
async fn act(
    s: &Sesame,
    who: &crate::service::Authenticated,
    name: &str,
    action: AdminAction,
    ctx: &crate::service::RequestContext,
) -> Result<Json<UserSummary>, ApiError> {
    match s.admin_api_act(who, name, action, ctx).await? {
        (Some(user), _) => Ok(Json(user)),
        (None, _) => Err(ApiError::internal("the user of an admin action is gone")),
    }
}

#[utoipa::path(
    post,
    path = "/api/admin/users/{name}/ban",
    tag = "admin",
    summary = "Ban a user and end its sessions (admin, fresh)",
    params(("name" = String, Path, description = "The username.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The user now.", body = UserSummary))
)]
async fn ban(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(name): ApiPath,
) -> Result<Json<UserSummary>, ApiError> {
    act(&s, &who, &name, AdminAction::Ban, &ctx).await
}

#[utoipa::path(
    post,
    path = "/api/admin/users/{name}/unban",
    tag = "admin",
    summary = "Lift a ban (admin)",
    params(("name" = String, Path, description = "The username.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The user now.", body = UserSummary))
)]
async fn unban(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(name): ApiPath,
) -> Result<Json<UserSummary>, ApiError> {
    act(&s, &who, &name, AdminAction::Unban, &ctx).await
}

#[utoipa::path(
    post,
    path = "/api/admin/users/{name}/revoke-sessions",
    tag = "admin",
    summary = "End every session of a user (admin, fresh)",
    params(("name" = String, Path, description = "The username.")),
    security(("bearer" = [])),
    responses((status = 200, description = "How many sessions ended.", body = Revoked))
)]
async fn revoke_sessions(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(name): ApiPath,
) -> Result<Json<Revoked>, ApiError> {
    let (_, revoked) = s
        .admin_api_act(&who, &name, AdminAction::RevokeSessions, &ctx)
        .await?;
    Ok(Json(Revoked { revoked }))
}

#[utoipa::path(
    post,
    path = "/api/admin/users/{name}/reset-2fa",
    tag = "admin",
    summary = "Remove a user's TOTP and device-key requirement (admin, fresh)",
    params(("name" = String, Path, description = "The username.")),
    security(("bearer" = [])),
    responses((status = 200, description = "The user now.", body = UserSummary))
)]
async fn reset_second_factors(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(name): ApiPath,
) -> Result<Json<UserSummary>, ApiError> {
    act(&s, &who, &name, AdminAction::ResetSecondFactors, &ctx).await
}

#[utoipa::path(
    delete,
    path = "/api/admin/users/{name}",
    tag = "admin",
    summary = "Delete a user and everything of it (admin, fresh)",
    params(("name" = String, Path, description = "The username.")),
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted."))
)]
async fn delete_user(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(name): ApiPath,
) -> Result<StatusCode, ApiError> {
    s.admin_api_act(&who, &name, AdminAction::Delete, &ctx)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/admin/audit",
    tag = "admin",
    summary = "The audit log, newest first, filtered (admin)",
    params(AuditQuery),
    security(("bearer" = [])),
    responses((status = 200, description = "The entries.", body = AuditPage))
)]
async fn audit(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    Ok(Json(s.admin_api_audit(&who, &query, &ctx).await?))
}
