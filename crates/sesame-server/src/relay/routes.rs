//! The HTTP routes of end-to-end messaging, merged into [`crate::http::router`]: the relay
//! socket, the key directory, the key backup, and device keys as a login factor. Every route
//! needs an access token (`Authorization: Bearer …`); `/ws` also takes a session token.
//!
//! ```text
//! GET    /ws                      the relay (relay/ws.rs)
//! PUT    /api/keys                {signing_key, encryption_key, encryption_key_signature} → 204
//! GET    /api/keys/{username}     → {username, user_id, signing_key, encryption_key,
//!                                    encryption_key_signature, updated_at}  or 404 keys_not_found
//! PUT    /api/keys/backup         {blob} → 204
//! GET    /api/keys/backup         → {blob}  or 404 backup_not_found
//! POST   /api/devices             {name, public_key} → 201 {id}
//! GET    /api/devices             → {devices: [{id, name, public_key, created_at}], required}
//! DELETE /api/devices/{id}        → 204
//! PUT    /api/2fa/device          {required} → 204
//! ```
//!
//! `/api/keys/backup` is the caller's own backup: the directory entry of a user named `backup`
//! cannot be read through `/api/keys/{username}`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, put};
use axum::{Json, Router};
use sesame_api::messaging::{
    DeviceCreated, DeviceList, KeyBackup, NewDevice, PublishedIdentity, RequireDevice,
};

use crate::error::ApiError;
use crate::http::{ApiJson, ApiPath, Auth, Ctx};
use crate::service::{IdentityUpload, Sesame};

/// The messaging routes (state: [`Sesame`]).
pub(crate) fn routes() -> Router<Sesame> {
    Router::new()
        .route("/ws", get(super::ws::socket))
        .route("/api/keys", put(put_keys))
        .route("/api/keys/backup", put(put_backup).get(get_backup))
        .route("/api/keys/{username}", get(get_keys))
        .route("/api/devices", get(list_devices).post(add_device))
        .route("/api/devices/{id}", delete(delete_device))
        .route("/api/2fa/device", put(require_device))
}

/// The OpenAPI paths of [`routes`] (`GET /ws` is described in [`crate::openapi`]).
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    put_keys,
    get_keys,
    put_backup,
    get_backup,
    add_device,
    list_devices,
    delete_device,
    require_device,
))]
struct RelayApi;

impl crate::openapi::Sections {
    /// The paths of this module (merged by [`crate::openapi::document`]).
    pub(crate) fn relay() -> utoipa::openapi::OpenApi {
        <RelayApi as utoipa::OpenApi>::openapi()
    }
}

#[utoipa::path(
    put,
    path = "/api/keys",
    tag = "messaging",
    summary = "Publish the caller's identity keys",
    request_body = IdentityUpload,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Published.")
    )
)]
async fn put_keys(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<IdentityUpload>,
) -> Result<StatusCode, ApiError> {
    s.put_identity(&who, &req, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/keys/{username}",
    tag = "messaging",
    summary = "A user's published identity keys",
    params(("username" = String, Path, description = "The user's name.")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The keys.", body = PublishedIdentity)
    )
)]
async fn get_keys(
    State(s): State<Sesame>,
    Auth(_who): Auth,
    ApiPath(username): ApiPath,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.identity_of(&username).await?))
}

#[utoipa::path(
    put,
    path = "/api/keys/backup",
    tag = "messaging",
    summary = "Store the caller's encrypted key backup",
    request_body = KeyBackup,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Stored.")
    )
)]
async fn put_backup(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<KeyBackup>,
) -> Result<StatusCode, ApiError> {
    s.put_key_backup(&who, &req.blob, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/keys/backup",
    tag = "messaging",
    summary = "The caller's encrypted key backup",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The backup.", body = KeyBackup)
    )
)]
async fn get_backup(
    State(s): State<Sesame>,
    Auth(who): Auth,
) -> Result<impl IntoResponse, ApiError> {
    let blob = s.key_backup(&who).await?;
    Ok(Json(KeyBackup { blob }))
}

#[utoipa::path(
    post,
    path = "/api/devices",
    tag = "devices",
    summary = "Register a device key",
    request_body = NewDevice,
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Registered.", body = DeviceCreated)
    )
)]
async fn add_device(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<NewDevice>,
) -> Result<impl IntoResponse, ApiError> {
    let id = s.add_device(&who, &req.name, &req.public_key, &ctx).await?;
    Ok((StatusCode::CREATED, Json(DeviceCreated { id })))
}

#[utoipa::path(
    get,
    path = "/api/devices",
    tag = "devices",
    summary = "The caller's device keys",
    security(("bearer" = [])),
    responses((status = 200, description = "The devices.", body = DeviceList))
)]
async fn list_devices(
    State(s): State<Sesame>,
    Auth(who): Auth,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.devices(&who).await?))
}

#[utoipa::path(
    delete,
    path = "/api/devices/{id}",
    tag = "devices",
    summary = "Remove a device key",
    params(("id" = String, Path, description = "The device id.")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed.")
    )
)]
async fn delete_device(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, ApiError> {
    s.delete_device(&who, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/api/2fa/device",
    tag = "devices",
    summary = "Require (or stop requiring) a device signature at login",
    request_body = RequireDevice,
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Set.")
    )
)]
async fn require_device(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<RequireDevice>,
) -> Result<StatusCode, ApiError> {
    s.set_device_required(&who, req.required, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
