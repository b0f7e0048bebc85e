//! HTTP routes of passkeys (WebAuthn): the caller's own (register, list_passkeys, rename_passkey, delete_passkey, the
//! phishing-resistant requirement) and the two sign-ins (second factor, passwordless).
//! docs/api.md §10.4.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use sesame_api::auth::LoginSession;
use sesame_api::passkeys::{
    PasskeyCeremony, PasskeyList, PasskeyRegisterFinish, PasskeyRename, PasskeySecondFactorFinish,
    PasskeySecondFactorStart, PasskeySignIn, PasskeyView, PhishingResistantSetting,
};

use super::auth::seed_login;
use super::{ApiJson, ApiPath, Auth, Ctx};
use crate::error::ApiError;
use crate::service::Sesame;

/// The routes of this module (merged into [`super::router`]).
pub(super) fn routes() -> Router<Sesame> {
    Router::new()
        .route("/api/passkeys", get(list_passkeys))
        .route("/api/passkeys/register/start", post(passkey_register_start))
        .route(
            "/api/passkeys/register/finish",
            post(passkey_register_finish),
        )
        .route(
            "/api/passkeys/{id}",
            put(rename_passkey).delete(delete_passkey),
        )
        .route("/api/2fa/phishing-resistant", put(put_phishing_resistant))
        .route(
            "/api/login/passkey/start",
            post(passkey_second_factor_start),
        )
        .route(
            "/api/login/passkey/finish",
            post(passkey_second_factor_finish),
        )
        .route(
            "/api/login/passkey/discoverable/start",
            post(passkey_sign_in_start),
        )
        .route(
            "/api/login/passkey/discoverable/finish",
            post(passkey_sign_in_finish),
        )
}

/// The OpenAPI paths of [`routes`].
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    list_passkeys,
    passkey_register_start,
    passkey_register_finish,
    rename_passkey,
    delete_passkey,
    put_phishing_resistant,
    passkey_second_factor_start,
    passkey_second_factor_finish,
    passkey_sign_in_start,
    passkey_sign_in_finish,
))]
struct PasskeysApi;

impl crate::openapi::Sections {
    /// The paths of this module (merged by [`crate::openapi::document`]).
    pub(crate) fn passkeys() -> utoipa::openapi::OpenApi {
        <PasskeysApi as utoipa::OpenApi>::openapi()
    }
}

#[utoipa::path(
    get,
    path = "/api/passkeys",
    tag = "passkeys",
    summary = "The caller's passkeys and the phishing-resistant requirement",
    security(("bearer" = [])),
    responses((status = 200, description = "The passkeys.", body = PasskeyList))
)]
async fn list_passkeys(
    State(s): State<Sesame>,
    Auth(who): Auth,
) -> Result<Json<PasskeyList>, ApiError> {
    Ok(Json(s.passkeys(&who).await?))
}

#[utoipa::path(
    post,
    path = "/api/passkeys/register/start",
    tag = "passkeys",
    summary = "Start registering a passkey (options for navigator.credentials.create)",
    security(("bearer" = [])),
    responses((status = 200, description = "The ceremony.", body = PasskeyCeremony))
)]
async fn passkey_register_start(
    State(s): State<Sesame>,
    Auth(who): Auth,
) -> Result<Json<PasskeyCeremony>, ApiError> {
    Ok(Json(s.passkey_register_start(&who).await?))
}

#[utoipa::path(
    post,
    path = "/api/passkeys/register/finish",
    tag = "passkeys",
    summary = "Finish registering a passkey",
    request_body = PasskeyRegisterFinish,
    security(("bearer" = [])),
    responses((status = 201, description = "Registered.", body = PasskeyView))
)]
async fn passkey_register_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasskeyRegisterFinish>,
) -> Result<(StatusCode, Json<PasskeyView>), ApiError> {
    let view = s.passkey_register_finish(&who, &req, &ctx).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

#[utoipa::path(
    put,
    path = "/api/passkeys/{id}",
    tag = "passkeys",
    summary = "Rename a passkey",
    params(("id" = String, Path, description = "The passkey id.")),
    request_body = PasskeyRename,
    security(("bearer" = [])),
    responses((status = 204, description = "Renamed."))
)]
async fn rename_passkey(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(id): ApiPath,
    ApiJson(req): ApiJson<PasskeyRename>,
) -> Result<StatusCode, ApiError> {
    s.rename_passkey(&who, &id, &req.name, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    delete,
    path = "/api/passkeys/{id}",
    tag = "passkeys",
    summary = "Remove a passkey",
    params(("id" = String, Path, description = "The passkey id.")),
    security(("bearer" = [])),
    responses((status = 204, description = "Removed."))
)]
async fn delete_passkey(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiPath(id): ApiPath,
) -> Result<StatusCode, ApiError> {
    s.delete_passkey(&who, &id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    put,
    path = "/api/2fa/phishing-resistant",
    tag = "passkeys",
    summary = "Require (or stop requiring) a passkey as the second factor",
    request_body = PhishingResistantSetting,
    security(("bearer" = [])),
    responses((status = 204, description = "Set."))
)]
async fn put_phishing_resistant(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PhishingResistantSetting>,
) -> Result<StatusCode, ApiError> {
    s.set_phishing_resistant(&who, req.required, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/login/passkey/start",
    tag = "auth",
    summary = "Second factor by passkey: options for navigator.credentials.get",
    request_body = PasskeySecondFactorStart,
    responses((status = 200, description = "The ceremony.", body = PasskeyCeremony))
)]
async fn passkey_second_factor_start(
    State(s): State<Sesame>,
    ApiJson(req): ApiJson<PasskeySecondFactorStart>,
) -> Result<Json<PasskeyCeremony>, ApiError> {
    Ok(Json(s.passkey_second_factor_start(&req.mfa_token).await?))
}

#[utoipa::path(
    post,
    path = "/api/login/passkey/finish",
    tag = "auth",
    summary = "Second factor by passkey: finish the login with the assertion",
    request_body = PasskeySecondFactorFinish,
    responses((status = 200, description = "The session.", body = LoginSession))
)]
async fn passkey_second_factor_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<PasskeySecondFactorFinish>,
) -> Result<Json<LoginSession>, ApiError> {
    let issued = s.passkey_second_factor_finish(&req, &ctx).await?;
    Ok(Json(seed_login(&s, issued)))
}

#[utoipa::path(
    post,
    path = "/api/login/passkey/discoverable/start",
    tag = "auth",
    summary = "Passwordless sign-in: options for any discoverable passkey",
    responses((status = 200, description = "The ceremony.", body = PasskeyCeremony))
)]
async fn passkey_sign_in_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
) -> Result<Json<PasskeyCeremony>, ApiError> {
    Ok(Json(s.passkey_sign_in_start(&ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/login/passkey/discoverable/finish",
    tag = "auth",
    summary = "Passwordless sign-in: finish with the assertion",
    request_body = PasskeySignIn,
    responses((status = 200, description = "The session.", body = LoginSession))
)]
async fn passkey_sign_in_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<PasskeySignIn>,
) -> Result<Json<LoginSession>, ApiError> {
    let issued = s.passkey_sign_in_finish(&req, &ctx).await?;
    Ok(Json(seed_login(&s, issued)))
}
