//! HTTP routes of second factors, re-authentication, protected operations and recovery.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use sesame_proto::messages::{LoginFinish, LoginStart, RegistrationFinish, RegistrationStart};
use zeroize::Zeroizing;

use super::{ApiJson, Auth, Ctx};
use crate::error::ApiError;
use crate::service::{
    ProfileUpdate, QuestionAnswer, RecoverFinish, RecoverStart, Sesame, SECURITY_QUESTION_CATALOG,
};

/// The routes of this module (merged into [`super::router`]).
pub(super) fn routes() -> Router<Sesame> {
    Router::new()
        .route(
            "/api/me",
            get(me).put(update_profile).delete(delete_account),
        )
        .route("/api/generate-qr", post(generate_qr))
        .route("/api/enable-authenticator", post(enable_authenticator))
        .route("/api/2fa/totp/disable", post(disable_authenticator))
        .route(
            "/api/backup-codes/regenerate",
            post(regenerate_backup_codes),
        )
        .route("/api/reauth", post(reauth_password))
        .route("/api/reauth/start", post(reauth_start))
        .route("/api/reauth/finish", post(reauth_finish))
        .route("/api/password", post(password_change))
        .route("/api/password/start", post(password_change_start))
        .route("/api/password/finish", post(password_change_finish))
        .route("/api/security-questions", put(set_questions))
        .route("/api/security-questions/catalog", get(catalog))
        .route("/api/recover/start", post(recover_start))
        .route("/api/recover/finish", post(recover_finish))
}

async fn me(State(s): State<Sesame>, Auth(who): Auth) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.me(&who).await?))
}

async fn update_profile(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(update): ApiJson<ProfileUpdate>,
) -> Result<impl IntoResponse, ApiError> {
    let profile = s.update_profile(&who, update, &ctx).await?;
    Ok(Json(
        json!({ "message": "Profile updated.", "profile": profile }),
    ))
}

async fn delete_account(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
) -> Result<StatusCode, ApiError> {
    s.delete_account(&who, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn generate_qr(
    State(s): State<Sesame>,
    Auth(who): Auth,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.generate_qr(&who).await?))
}

#[derive(Deserialize)]
struct TotpCode {
    #[serde(rename = "totpCode", alias = "code")]
    totp_code: String,
}

async fn enable_authenticator(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<impl IntoResponse, ApiError> {
    s.enable_authenticator(&who, req.totp_code.trim(), &ctx)
        .await?;
    Ok(Json(
        json!({ "message": "Authenticator enabled successfully." }),
    ))
}

async fn disable_authenticator(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<impl IntoResponse, ApiError> {
    s.disable_authenticator(&who, req.totp_code.trim(), &ctx)
        .await?;
    Ok(Json(json!({ "message": "Authenticator disabled." })))
}

async fn regenerate_backup_codes(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
) -> Result<impl IntoResponse, ApiError> {
    let codes = s.regenerate_backup_codes(&who, &ctx).await?;
    Ok(Json(
        json!({ "message": "New backup codes; the old ones no longer work.", "backupCodes": codes }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    password: Zeroizing<String>,
}

async fn reauth_password(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordBody>,
) -> Result<impl IntoResponse, ApiError> {
    s.reauth_password(&who, req.password, &ctx).await?;
    Ok(Json(
        json!({ "reauthenticated": true, "expires_in": s.reauth_window() }),
    ))
}

async fn reauth_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<LoginStart>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.reauth_start(&who, &req, &ctx).await?))
}

async fn reauth_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<LoginFinish>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.reauth_finish(&who, &req, &ctx).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    new_password: Zeroizing<String>,
    #[serde(default)]
    revoke_other_sessions: bool,
}

async fn password_change(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<impl IntoResponse, ApiError> {
    let revoked = s
        .password_change(&who, req.new_password, req.revoke_other_sessions, &ctx)
        .await?;
    Ok(Json(
        json!({ "message": "Password changed.", "revoked_sessions": revoked }),
    ))
}

async fn password_change_start(
    State(s): State<Sesame>,
    Auth(who): Auth,
    ApiJson(req): ApiJson<RegistrationStart>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.password_change_start(&who, &req).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChangeFinish {
    registration: RegistrationFinish,
    #[serde(default)]
    revoke_other_sessions: bool,
}

async fn password_change_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordChangeFinish>,
) -> Result<impl IntoResponse, ApiError> {
    let revoked = s
        .password_change_finish(&who, &req.registration, req.revoke_other_sessions, &ctx)
        .await?;
    Ok(Json(
        json!({ "message": "Password changed.", "revoked_sessions": revoked }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Questions {
    questions: Vec<QuestionAnswer>,
}

async fn set_questions(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<Questions>,
) -> Result<StatusCode, ApiError> {
    s.set_security_questions(&who, req.questions, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn catalog() -> impl IntoResponse {
    Json(json!({ "questions": SECURITY_QUESTION_CATALOG }))
}

async fn recover_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RecoverStart>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.recover_start(&req, &ctx).await?))
}

async fn recover_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RecoverFinish>,
) -> Result<impl IntoResponse, ApiError> {
    let codes = s.recover_finish(req, &ctx).await?;
    Ok(Json(json!({
        "message": "Password reset; every session was signed out. Keep the new backup codes.",
        "backupCodes": codes,
    })))
}
