//! HTTP routes of second factors, re-authentication, protected operations and recovery.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use sesame_api::account::{
    BackupCodes, Me, PasswordBody, PasswordChange, PasswordChangeFinish, PasswordChanged,
    ProfileUpdate, ProfileUpdated, QuestionCatalog, Questions, Reauthenticated, RecoverFinish,
    RecoverStart, RecoverStarted, TotpCode, TotpEnrolment,
};
use sesame_api::auth::Message;
use sesame_api::email::{EmailChange, EmailChangeCode, EmailChangeStarted, EmailChanged};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation, LoginFinish, LoginStart};
use sesame_proto::messages::{RegistrationChallenge, RegistrationStart};

use super::{ApiJson, Auth, Ctx};
use crate::error::ApiError;
use crate::service::{Sesame, SECURITY_QUESTION_CATALOG};

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
        .route(
            "/api/me/email",
            post(email_change_start).delete(email_remove),
        )
        .route("/api/me/email/verify", post(email_change_finish))
}

/// The OpenAPI paths of [`routes`].
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    me,
    update_profile,
    delete_account,
    generate_qr,
    enable_authenticator,
    disable_authenticator,
    regenerate_backup_codes,
    reauth_password,
    reauth_start,
    reauth_finish,
    password_change,
    password_change_start,
    password_change_finish,
    set_questions,
    catalog,
    recover_start,
    recover_finish,
    email_change_start,
    email_change_finish,
    email_remove,
))]
struct AccountApi;

impl crate::openapi::Sections {
    /// The paths of this module (merged by [`crate::openapi::document`]).
    pub(crate) fn account() -> utoipa::openapi::OpenApi {
        <AccountApi as utoipa::OpenApi>::openapi()
    }
}

#[utoipa::path(
    get,
    path = "/api/me",
    tag = "account",
    summary = "The caller's account, profile and factors",
    security(("bearer" = [])),
    responses((status = 200, description = "The account.", body = Me))
)]
async fn me(State(s): State<Sesame>, Auth(who): Auth) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.me(&who).await?))
}

#[utoipa::path(
    put,
    path = "/api/me",
    tag = "account",
    summary = "Change the profile (fields present only; `null` clears)",
    request_body = ProfileUpdate,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The profile now.", body = ProfileUpdated)
    )
)]
async fn update_profile(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(update): ApiJson<ProfileUpdate>,
) -> Result<impl IntoResponse, ApiError> {
    let profile = s.update_profile(&who, update, &ctx).await?;
    Ok(Json(ProfileUpdated {
        message: "Profile updated.".into(),
        profile,
    }))
}

#[utoipa::path(
    delete,
    path = "/api/me",
    tag = "account",
    summary = "Delete the caller's account (needs a fresh authentication)",
    security(("bearer" = [])),
    responses((status = 204, description = "Deleted."))
)]
async fn delete_account(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
) -> Result<StatusCode, ApiError> {
    s.delete_account(&who, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/generate-qr",
    tag = "account",
    summary = "Start enrolling an authenticator app",
    security(("bearer" = [])),
    responses((status = 200, description = "The secret and its QR code.", body = TotpEnrolment))
)]
async fn generate_qr(
    State(s): State<Sesame>,
    Auth(who): Auth,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.generate_qr(&who).await?))
}

#[utoipa::path(
    post,
    path = "/api/enable-authenticator",
    tag = "account",
    summary = "Confirm the authenticator with a first code",
    request_body = TotpCode,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Enabled.", body = Message)
    )
)]
async fn enable_authenticator(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<impl IntoResponse, ApiError> {
    s.enable_authenticator(&who, req.totp_code.trim(), &ctx)
        .await?;
    Ok(Json(Message::new("Authenticator enabled successfully.")))
}

#[utoipa::path(
    post,
    path = "/api/2fa/totp/disable",
    tag = "account",
    summary = "Turn the authenticator off (needs a current code)",
    request_body = TotpCode,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Disabled.", body = Message)
    )
)]
async fn disable_authenticator(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<TotpCode>,
) -> Result<impl IntoResponse, ApiError> {
    s.disable_authenticator(&who, req.totp_code.trim(), &ctx)
        .await?;
    Ok(Json(Message::new("Authenticator disabled.")))
}

#[utoipa::path(
    post,
    path = "/api/backup-codes/regenerate",
    tag = "account",
    summary = "New backup codes (the old ones stop working)",
    security(("bearer" = [])),
    responses((status = 200, description = "The codes, shown once.", body = BackupCodes))
)]
async fn regenerate_backup_codes(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
) -> Result<impl IntoResponse, ApiError> {
    let backup_codes = s.regenerate_backup_codes(&who, &ctx).await?;
    Ok(Json(BackupCodes {
        message: "New backup codes; the old ones no longer work.".into(),
        backup_codes,
    }))
}

#[utoipa::path(
    post,
    path = "/api/reauth",
    tag = "account",
    summary = "Re-authenticate with the password",
    request_body = PasswordBody,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Fresh for a while.", body = Reauthenticated)
    )
)]
async fn reauth_password(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordBody>,
) -> Result<impl IntoResponse, ApiError> {
    s.reauth_password(&who, req.password, &ctx).await?;
    Ok(Json(Reauthenticated {
        reauthenticated: true,
        expires_in: s.reauth_window(),
    }))
}

#[utoipa::path(
    post,
    path = "/api/reauth/start",
    tag = "account",
    summary = "Re-authenticate with OPAQUE, step 1",
    request_body = LoginStart,
    security(("bearer" = [])),
    responses((status = 200, description = "The challenge.", body = LoginChallenge))
)]
async fn reauth_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<LoginStart>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.reauth_start(&who, &req, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/reauth/finish",
    tag = "account",
    summary = "Re-authenticate with OPAQUE, step 2",
    request_body = LoginFinish,
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sealed confirmation.", body = LoginConfirmation)
    )
)]
async fn reauth_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<LoginFinish>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.reauth_finish(&who, &req, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/password",
    tag = "account",
    summary = "Change the password (server-assisted; needs a fresh authentication)",
    request_body = PasswordChange,
    security(("bearer" = [])),
    responses((status = 200, description = "Changed.", body = PasswordChanged))
)]
async fn password_change(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordChange>,
) -> Result<impl IntoResponse, ApiError> {
    let revoked = s
        .password_change(&who, req.new_password, req.revoke_other_sessions, &ctx)
        .await?;
    Ok(Json(password_changed(revoked)))
}

#[utoipa::path(
    post,
    path = "/api/password/start",
    tag = "account",
    summary = "Change the password with OPAQUE, step 1",
    request_body = RegistrationStart,
    security(("bearer" = [])),
    responses((status = 200, description = "The registration challenge.", body = RegistrationChallenge))
)]
async fn password_change_start(
    State(s): State<Sesame>,
    Auth(who): Auth,
    ApiJson(req): ApiJson<RegistrationStart>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.password_change_start(&who, &req).await?))
}

#[utoipa::path(
    post,
    path = "/api/password/finish",
    tag = "account",
    summary = "Change the password with OPAQUE, step 2",
    request_body = PasswordChangeFinish,
    security(("bearer" = [])),
    responses((status = 200, description = "Changed.", body = PasswordChanged))
)]
async fn password_change_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<PasswordChangeFinish>,
) -> Result<impl IntoResponse, ApiError> {
    let revoked = s
        .password_change_finish(&who, &req.registration, req.revoke_other_sessions, &ctx)
        .await?;
    Ok(Json(password_changed(revoked)))
}

#[utoipa::path(
    put,
    path = "/api/security-questions",
    tag = "recovery",
    summary = "Set the caller's security questions",
    request_body = Questions,
    security(("bearer" = [])),
    responses((status = 204, description = "Set."))
)]
async fn set_questions(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<Questions>,
) -> Result<StatusCode, ApiError> {
    s.set_security_questions(&who, req.questions, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/api/security-questions/catalog",
    tag = "recovery",
    summary = "The security questions one may choose from",
    responses((status = 200, description = "The catalog.", body = QuestionCatalog))
)]
async fn catalog() -> Json<QuestionCatalog> {
    Json(QuestionCatalog {
        questions: SECURITY_QUESTION_CATALOG
            .iter()
            .map(|q| (*q).to_owned())
            .collect(),
    })
}

#[utoipa::path(
    post,
    path = "/api/recover/start",
    tag = "recovery",
    summary = "Start recovering an account (same shape for every username)",
    request_body = RecoverStart,
    responses(
        (status = 200, description = "The recovery id and the questions.", body = RecoverStarted)
    )
)]
async fn recover_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RecoverStart>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.recover_start(&req, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/recover/finish",
    tag = "recovery",
    summary = "Prove the factors and set a new password",
    request_body = RecoverFinish,
    responses(
        (status = 200, description = "Reset; new backup codes.", body = BackupCodes)
    )
)]
async fn recover_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RecoverFinish>,
) -> Result<impl IntoResponse, ApiError> {
    let backup_codes = s.recover_finish(req, &ctx).await?;
    Ok(Json(BackupCodes {
        message: "Password reset; every session was signed out. Keep the new backup codes.".into(),
        backup_codes,
    }))
}

fn password_changed(revoked_sessions: u64) -> PasswordChanged {
    PasswordChanged {
        message: "Password changed.".into(),
        revoked_sessions,
    }
}

#[utoipa::path(
    post,
    path = "/api/me/email",
    tag = "account",
    summary = "Change the email address: mails a code to the new one (needs a fresh authentication)",
    request_body = EmailChange,
    security(("bearer" = [])),
    responses((status = 202, description = "A code is on its way.", body = EmailChangeStarted))
)]
async fn email_change_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<EmailChange>,
) -> Result<(StatusCode, Json<EmailChangeStarted>), ApiError> {
    let expires_in = s.email_change_start(&who, &req.email, &ctx).await?;
    let message = "A code was sent to the new address; confirm it to make the change.".into();
    Ok((
        StatusCode::ACCEPTED,
        Json(EmailChangeStarted {
            message,
            expires_in,
        }),
    ))
}

#[utoipa::path(
    post,
    path = "/api/me/email/verify",
    tag = "account",
    summary = "Confirm a new email address with the code mailed to it",
    request_body = EmailChangeCode,
    security(("bearer" = [])),
    responses((status = 200, description = "Changed.", body = EmailChanged))
)]
async fn email_change_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    ApiJson(req): ApiJson<EmailChangeCode>,
) -> Result<Json<EmailChanged>, ApiError> {
    let email = s.email_change_finish(&who, &req.code, &ctx).await?;
    Ok(Json(EmailChanged {
        message: "Email address changed.".into(),
        email: Some(email),
    }))
}

#[utoipa::path(
    delete,
    path = "/api/me/email",
    tag = "account",
    summary = "Remove the email address (needs a fresh authentication)",
    security(("bearer" = [])),
    responses((status = 200, description = "Removed.", body = EmailChanged))
)]
async fn email_remove(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
) -> Result<Json<EmailChanged>, ApiError> {
    s.email_remove(&who, &ctx).await?;
    Ok(Json(EmailChanged {
        message: "Email address removed.".into(),
        email: None,
    }))
}
