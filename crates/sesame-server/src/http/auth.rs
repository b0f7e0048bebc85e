//! Registration, email verification and login.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use sesame_api::auth::{
    AccountStatus, EmailVerified, LoginSession, Message, PasswordLogin, PasswordLoginRequest,
    RegisterFinishRequest, RegisterPasswordRequest, Registered, ResendRequest, SecondFactorPending,
    SecondFactorRequest, VerifyEmailRequest,
};
use sesame_proto::messages::{
    LoginChallenge, LoginConfirmation, LoginFinish, LoginStart, RegistrationChallenge,
    RegistrationFinish, RegistrationStart,
};

use super::{ApiJson, Ctx};
use crate::error::ApiError;
use crate::service::{LoginOutcome, Sesame, SessionIssued};

/// The routes of this module (merged into [`super::router`]).
pub(super) fn routes() -> Router<Sesame> {
    Router::new()
        .route("/register", post(register_password))
        .route("/api/register", post(register_password))
        .route("/api/register/start", post(register_start))
        .route("/api/register/finish", post(register_finish))
        .route("/api/verify-email", post(verify_email))
        .route("/api/verify-email/resend", post(verify_email_resend))
        .route("/api/login/start", post(login_start))
        .route("/api/login/finish", post(login_finish))
        .route("/api/login", post(login_password))
        .route("/api/login/second-factor", post(login_second_factor))
}

/// The OpenAPI paths of [`routes`].
#[derive(utoipa::OpenApi)]
#[openapi(paths(
    register_password,
    register_start,
    register_finish,
    verify_email,
    verify_email_resend,
    login_start,
    login_finish,
    login_password,
    login_second_factor,
))]
struct AuthApi;

impl crate::openapi::Sections {
    /// The paths of this module (merged by [`crate::openapi::document`]).
    pub(crate) fn auth() -> utoipa::openapi::OpenApi {
        <AuthApi as utoipa::OpenApi>::openapi()
    }
}

fn registered(
    (r, status): (crate::service::Registered, crate::store::AccountStatus),
) -> (StatusCode, Json<Registered>) {
    let status = status.wire();
    let message = match status {
        AccountStatus::Pending => {
            "User registered; enter the code mailed to you to activate the account."
        }
        _ => "User registered successfully.",
    };
    let body = Registered {
        message: message.to_owned(),
        user_id: r.user_id,
        uuid: r.user_id,
        username: r.username,
        status,
        backup_codes: r.backup_codes,
    };
    (StatusCode::CREATED, Json(body))
}

#[utoipa::path(
    post,
    path = "/api/register",
    tag = "auth",
    summary = "Register with a password (the server runs OPAQUE for the client)",
    request_body = RegisterPasswordRequest,
    responses((status = 201, description = "Registered.", body = Registered))
)]
async fn register_password(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RegisterPasswordRequest>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let email = req.email.as_deref();
    Ok(registered(
        s.register_password_with_email(&req.username, req.password, email, &ctx)
            .await?,
    ))
}

#[utoipa::path(
    post,
    path = "/api/register/start",
    tag = "auth",
    summary = "OPAQUE registration, step 1",
    request_body = RegistrationStart,
    responses((status = 200, description = "The OPRF evaluation and the parameters to stretch with.", body = RegistrationChallenge))
)]
async fn register_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RegistrationStart>,
) -> Result<Json<RegistrationChallenge>, ApiError> {
    Ok(Json(s.register_start(&req, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/register/finish",
    tag = "auth",
    summary = "OPAQUE registration, step 2: store the record",
    request_body = RegisterFinishRequest,
    responses((status = 201, description = "Registered.", body = Registered))
)]
async fn register_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RegisterFinishRequest>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    // The messaging keys are checked before the account exists, published after.
    let keys = Sesame::check_registration_keys(req.identity.as_ref(), req.key_backup.as_ref())?;
    let msg = RegistrationFinish {
        username: req.username,
        registration_record: req.registration_record,
        key_stretching: req.key_stretching,
    };
    let email = req.email.as_deref();
    let done = s.register_finish_with_email(&msg, email, &ctx).await?;
    if let Err(e) = s
        .publish_registration_keys(done.0.user_id, keys, &ctx)
        .await
    {
        tracing::warn!(error = %e.message, "keys of a new account not published");
    }
    Ok(registered(done))
}

/// `POST /api/verify-email` (see [`crate::service::email`]).
#[utoipa::path(
    post,
    path = "/api/verify-email",
    tag = "auth",
    summary = "Activate a pending account with the code mailed to it",
    request_body = VerifyEmailRequest,
    responses((status = 200, description = "Verified.", body = EmailVerified))
)]
async fn verify_email(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<VerifyEmailRequest>,
) -> Result<Json<EmailVerified>, ApiError> {
    let status = s.verify_email(&req.username, &req.code, &ctx).await?;
    Ok(Json(EmailVerified {
        message: "Email verified.".into(),
        status: status.wire(),
    }))
}

/// `POST /api/verify-email/resend`: always the same `202`, whatever the account.
#[utoipa::path(
    post,
    path = "/api/verify-email/resend",
    tag = "auth",
    summary = "Mail a new verification code (same answer for every username)",
    request_body = ResendRequest,
    responses((status = 202, description = "Accepted.", body = Message))
)]
async fn verify_email_resend(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<ResendRequest>,
) -> Result<(StatusCode, Json<Message>), ApiError> {
    s.resend_verification(&req.username, &ctx).await?;
    let message =
        Message::new("If the account awaits email verification, a new code is on its way.");
    Ok((StatusCode::ACCEPTED, Json(message)))
}

#[utoipa::path(
    post,
    path = "/api/login/start",
    tag = "auth",
    summary = "OPAQUE login, step 1: KE1 → KE2",
    request_body = LoginStart,
    responses((status = 200, description = "The challenge.", body = LoginChallenge))
)]
async fn login_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<LoginStart>,
) -> Result<Json<LoginChallenge>, ApiError> {
    Ok(Json(s.login_start(&req, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/login/finish",
    tag = "auth",
    summary = "OPAQUE login, step 2: KE3 → the sealed session",
    request_body = LoginFinish,
    responses((status = 200, description = "The confirmation, sealed under the session key.", body = LoginConfirmation))
)]
async fn login_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<LoginFinish>,
) -> Result<Json<LoginConfirmation>, ApiError> {
    let (confirmation, _issued) = s.login_finish(&req, &ctx).await?;
    Ok(Json(confirmation))
}

#[utoipa::path(
    post,
    path = "/api/login",
    tag = "auth",
    summary = "Log in with a password (the server runs OPAQUE for the client)",
    request_body = PasswordLoginRequest,
    responses((status = 200, description = "A session, or a second-factor ticket.", body = PasswordLogin))
)]
async fn login_password(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<PasswordLoginRequest>,
) -> Result<Json<PasswordLogin>, ApiError> {
    Ok(Json(
        match s.login_password(&req.username, req.password, &ctx).await? {
            LoginOutcome::Session(issued) => PasswordLogin::Session(seed_login(&s, issued)),
            LoginOutcome::SecondFactor(required) => {
                PasswordLogin::SecondFactor(SecondFactorPending {
                    message: "Second factor required.".into(),
                    required,
                })
            }
        },
    ))
}

/// A session in seed 004's login shape.
pub(super) fn seed_login(s: &Sesame, session: SessionIssued) -> LoginSession {
    let expires =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.now() + session.expires_in);
    LoginSession {
        message: "Login successful.".into(),
        token: session.access_token.clone(),
        uuid: session.user_id,
        expires_at: humantime::format_rfc3339_seconds(expires).to_string(),
        session,
    }
}

#[utoipa::path(
    post,
    path = "/api/login/second-factor",
    tag = "auth",
    summary = "Finish a login with a TOTP or backup code",
    request_body = SecondFactorRequest,
    responses((status = 200, description = "The session.", body = LoginSession))
)]
async fn login_second_factor(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<SecondFactorRequest>,
) -> Result<Json<LoginSession>, ApiError> {
    let issued = s
        .login_second_factor(&req.mfa_token, &req.code, &ctx)
        .await?;
    Ok(Json(seed_login(&s, issued)))
}
