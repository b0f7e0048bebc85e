//! The HTTP codec: JSON routes over [`Sesame`].
//!
//! Every body is JSON, at most [`MAX_BODY_BYTES`]; every error is
//! `{"error": {"code": …, "message": …}}` with its status (and `Retry-After` on 429/503).
//! Malformed input of any kind is a 4xx, never a 500; a panic in a handler is caught and
//! answered with a bare `500 internal`.

use std::net::SocketAddr;

use axum::extract::rejection::JsonRejection;
use axum::extract::{
    ConnectInfo, DefaultBodyLimit, FromRequest, FromRequestParts, Path, Request, State,
};
use axum::http::{header, request::Parts, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sesame_proto::messages::{LoginFinish, LoginStart, RegistrationFinish, RegistrationStart};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::error::ApiError;
use crate::service::{Authenticated, LoginOutcome, RequestContext, Sesame};

mod account;

/// The largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Builds the router. Callers serve it with `into_make_service_with_connect_info::<SocketAddr>()`
/// so per-address throttling sees the peer.
pub fn router(sesame: Sesame) -> Router {
    // The Prometheus recorder, once per process (`crate::metrics`).
    crate::metrics::handle();
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/sesame", get(server_info))
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
        .route("/api/session/refresh", post(refresh))
        .route("/api/logout", post(logout))
        .route("/api/logout-all", post(logout_all))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}", delete(revoke_session))
        .route("/api/server-key", get(crate::envelope::server_key))
        .route("/api/getkey", get(crate::envelope::server_key))
        .route("/auth/login", get(crate::ws::login_socket))
        .route("/metrics", get(crate::metrics::serve_metrics))
        .route("/openapi.json", get(crate::openapi::serve))
        .merge(account::routes())
        .merge(crate::relay::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // Sealed `{"encryptedData"}` bodies on `/api/*` (see `crate::envelope`).
        .layer(axum::middleware::from_fn_with_state(
            sesame.clone(),
            crate::envelope::middleware,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            ApiError::new(500, "internal", "Internal server error.").into_response()
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
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = Json(json!({ "error": { "code": self.code, "message": self.message } }));
        let mut resp = (status, body).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// A JSON body whose rejections are [`ApiError`]s with stable codes.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    match r {
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            415,
            "unsupported_media_type",
            "Send the body as JSON with Content-Type: application/json.",
        ),
        JsonRejection::JsonSyntaxError(e) => ApiError::bad_request(
            "invalid_json",
            format!("The body is not valid JSON: {}", e.body_text()),
        ),
        JsonRejection::JsonDataError(e) => ApiError::bad_request(
            "invalid_request",
            format!("The body does not match the request: {}", e.body_text()),
        ),
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::new(
                413,
                "payload_too_large",
                format!("Request bodies are limited to {MAX_BODY_BYTES} bytes."),
            )
        }
        other => ApiError::bad_request("invalid_request", other.body_text()),
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
    ApiError::new(404, "not_found", "No such route.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        405,
        "method_not_allowed",
        "This route does not take that method.",
    )
}

#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    summary = "Liveness: the process answers",
    responses((status = 200, description = "Alive.", body = crate::openapi::Health))
)]
async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: 200 when the database and Redis (if configured) answer within a second,
/// else 503 `unavailable` naming what failed.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    summary = "Readiness: the database and Redis (if configured) answer",
    responses(
        (status = 200, description = "Ready.", body = crate::openapi::Ready),
        (status = 503, description = "Not ready; `Retry-After`.", body = crate::openapi::Ready)
    )
)]
async fn readyz(State(s): State<Sesame>) -> Response {
    let r = s.readiness().await;
    let show = |part: &Result<(), String>| match part {
        Ok(()) => "ok".to_owned(),
        Err(e) => format!("unavailable: {e}"),
    };
    let redis = r.redis.as_ref().map_or("not configured".to_owned(), show);
    let mut body = json!({ "database": show(&r.database), "redis": redis });
    if r.ready() {
        body["status"] = json!("ready");
        return (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            Json(body),
        )
            .into_response();
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
    tracing::warn!(database = %body["database"], redis = %body["redis"], "not ready");
    body["status"] = json!("unavailable");
    body["error"] = json!({ "code": "unavailable", "message": message });
    let mut resp = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
    let headers = resp.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(5));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "discovery",
    summary = "The key that signs access tokens (JWKS)",
    responses((status = 200, description = "The JWKS.", body = crate::openapi::Jwks))
)]
async fn jwks(State(s): State<Sesame>) -> Response {
    let mut resp = Json(s.jwks()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

#[utoipa::path(
    get,
    path = "/.well-known/sesame",
    tag = "discovery",
    summary = "The server's OPAQUE key, fingerprint, issuer and version",
    responses((status = 200, description = "Server identity.", body = crate::openapi::ServerInfo))
)]
async fn server_info(State(s): State<Sesame>) -> Json<serde_json::Value> {
    let (pk, fingerprint) = s.server_identity();
    Json(json!({
        "opaque_public_key": sesame_proto::b64::encode(pk),
        "fingerprint": fingerprint,
        "issuer": s.issuer(),
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

/// `{username, password}`: the seed-style server-assisted request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordRequest {
    username: String,
    #[schema(value_type = String)]
    password: Zeroizing<String>,
}

/// `{username, password, email?}`: server-assisted registration (`/register`, `/api/register`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterPasswordRequest {
    username: String,
    #[schema(value_type = String)]
    password: Zeroizing<String>,
    #[serde(default)]
    email: Option<String>,
}

/// `POST /api/register/finish`: the fields of [`RegistrationFinish`] (which refuses unknown
/// fields) plus an optional `email`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RegisterFinishRequest {
    username: String,
    registration_record: sesame_proto::b64::Bytes,
    key_stretching: sesame_proto::KeyStretching,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct RegisteredResponse {
    message: &'static str,
    user_id: Uuid,
    uuid: Uuid,
    username: String,
    /// `active`, or `pending` until the code mailed to the given email address is entered.
    status: &'static str,
    /// Seed 004's name: the single-use backup codes, shown this once.
    #[serde(rename = "backupCodes")]
    backup_codes: Vec<String>,
}

fn registered(
    (r, status): (crate::service::Registered, crate::store::AccountStatus),
) -> (StatusCode, Json<RegisteredResponse>) {
    let message = match status {
        crate::store::AccountStatus::Pending => {
            "User registered; enter the code mailed to you to activate the account."
        }
        _ => "User registered successfully.",
    };
    (
        StatusCode::CREATED,
        Json(RegisteredResponse {
            message,
            user_id: r.user_id,
            uuid: r.user_id,
            username: r.username,
            status: status.as_str(),
            backup_codes: r.backup_codes,
        }),
    )
}

#[utoipa::path(
    post,
    path = "/api/register",
    tag = "auth",
    summary = "Register with a password (the server runs OPAQUE for the client)",
    request_body = RegisterPasswordRequest,
    responses(
        (status = 201, description = "Registered.", body = RegisteredResponse),
        (status = 400, description = "Invalid username, password or email.", body = crate::openapi::ErrorBody),
        (status = 409, description = "`username_taken`.", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_attempts`; `Retry-After`.", body = crate::openapi::ErrorBody),
        (status = 503, description = "`busy`: the hashing pool is full; `Retry-After`.", body = crate::openapi::ErrorBody)
    )
)]
async fn register_password(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RegisterPasswordRequest>,
) -> Result<impl IntoResponse, ApiError> {
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
    responses(
        (status = 200, description = "The OPRF evaluation and the parameters to stretch with.", body = sesame_proto::messages::RegistrationChallenge),
        (status = 400, description = "Invalid username or message.", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_attempts`; `Retry-After`.", body = crate::openapi::ErrorBody)
    )
)]
async fn register_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RegistrationStart>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.register_start(&req, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/register/finish",
    tag = "auth",
    summary = "OPAQUE registration, step 2: store the record",
    request_body = RegisterFinishRequest,
    responses(
        (status = 201, description = "Registered.", body = RegisteredResponse),
        (status = 400, description = "Invalid record, parameters or email.", body = crate::openapi::ErrorBody),
        (status = 409, description = "`username_taken`.", body = crate::openapi::ErrorBody)
    )
)]
async fn register_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RegisterFinishRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let msg = RegistrationFinish {
        username: req.username,
        registration_record: req.registration_record,
        key_stretching: req.key_stretching,
    };
    let email = req.email.as_deref();
    Ok(registered(
        s.register_finish_with_email(&msg, email, &ctx).await?,
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct VerifyEmailRequest {
    username: String,
    code: String,
}

/// `POST /api/verify-email` (see [`crate::service::email`]).
#[utoipa::path(
    post,
    path = "/api/verify-email",
    tag = "auth",
    summary = "Activate a pending account with the code mailed to it",
    request_body = VerifyEmailRequest,
    responses(
        (status = 200, description = "Verified.", body = crate::openapi::EmailVerified),
        (status = 401, description = "`invalid_code`.", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_attempts`; `Retry-After`.", body = crate::openapi::ErrorBody)
    )
)]
async fn verify_email(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<VerifyEmailRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let status = s.verify_email(&req.username, &req.code, &ctx).await?;
    Ok(Json(
        json!({ "message": "Email verified.", "status": status.as_str() }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ResendRequest {
    username: String,
}

/// `POST /api/verify-email/resend`: always the same `202`, whatever the account.
#[utoipa::path(
    post,
    path = "/api/verify-email/resend",
    tag = "auth",
    summary = "Mail a new verification code (same answer for every username)",
    request_body = ResendRequest,
    responses((status = 202, description = "Accepted.", body = crate::openapi::Message))
)]
async fn verify_email_resend(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<ResendRequest>,
) -> Result<impl IntoResponse, ApiError> {
    s.resend_verification(&req.username, &ctx).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "message": "If the account awaits email verification, a new code is on its way."
        })),
    ))
}

#[utoipa::path(
    post,
    path = "/api/login/start",
    tag = "auth",
    summary = "OPAQUE login, step 1: KE1 → KE2",
    request_body = LoginStart,
    responses(
        (status = 200, description = "The challenge.", body = sesame_proto::messages::LoginChallenge),
        (status = 400, description = "Invalid username or message.", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_attempts`; `Retry-After`.", body = crate::openapi::ErrorBody)
    )
)]
async fn login_start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<LoginStart>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.login_start(&req, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/login/finish",
    tag = "auth",
    summary = "OPAQUE login, step 2: KE3 → the sealed session",
    request_body = LoginFinish,
    responses(
        (status = 200, description = "The confirmation, sealed under the session key.", body = sesame_proto::messages::LoginConfirmation),
        (status = 401, description = "`authentication_failed`, `unknown_login`.", body = crate::openapi::ErrorBody),
        (status = 403, description = "`account_banned`, `account_pending`.", body = crate::openapi::ErrorBody)
    )
)]
async fn login_finish(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<LoginFinish>,
) -> Result<impl IntoResponse, ApiError> {
    let (confirmation, _issued) = s.login_finish(&req, &ctx).await?;
    Ok(Json(confirmation))
}

#[utoipa::path(
    post,
    path = "/api/login",
    tag = "auth",
    summary = "Log in with a password (the server runs OPAQUE for the client)",
    request_body = PasswordRequest,
    responses(
        (status = 200, description = "A session, or a second-factor ticket.", body = crate::openapi::PasswordLogin),
        (status = 401, description = "`authentication_failed`.", body = crate::openapi::ErrorBody),
        (status = 403, description = "`account_banned`, `account_pending`.", body = crate::openapi::ErrorBody),
        (status = 429, description = "`too_many_attempts`; `Retry-After`.", body = crate::openapi::ErrorBody),
        (status = 503, description = "`busy`: the hashing pool is full; `Retry-After`.", body = crate::openapi::ErrorBody)
    )
)]
async fn login_password(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> Result<impl IntoResponse, ApiError> {
    match s.login_password(&req.username, req.password, &ctx).await? {
        LoginOutcome::Session(issued) => Ok(Json(seed_login_body(&s, &issued)?)),
        LoginOutcome::SecondFactor(required) => {
            let mut body = serde_json::to_value(&required).map_err(ApiError::internal)?;
            body["message"] = json!("Second factor required.");
            Ok(Json(body))
        }
    }
}

/// A session in seed 004's login shape (`message`, `token`, `uuid`, `expires_at`) plus the
/// [`SessionIssued`](crate::service::SessionIssued) fields.
fn seed_login_body(
    s: &Sesame,
    issued: &crate::service::SessionIssued,
) -> Result<serde_json::Value, ApiError> {
    let expires =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(s.now() + issued.expires_in);
    let mut body = serde_json::to_value(issued).map_err(ApiError::internal)?;
    body["message"] = json!("Login successful.");
    body["token"] = json!(issued.access_token);
    body["uuid"] = json!(issued.user_id);
    body["expires_at"] = json!(humantime::format_rfc3339_seconds(expires).to_string());
    Ok(body)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SecondFactorRequest {
    mfa_token: String,
    code: String,
}

#[utoipa::path(
    post,
    path = "/api/login/second-factor",
    tag = "auth",
    summary = "Finish a login with a TOTP or backup code",
    request_body = SecondFactorRequest,
    responses(
        (status = 200, description = "The session.", body = crate::openapi::LoginSession),
        (status = 401, description = "`invalid_code`, `mfa_expired`.", body = crate::openapi::ErrorBody)
    )
)]
async fn login_second_factor(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<SecondFactorRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let issued = s
        .login_second_factor(&req.mfa_token, &req.code, &ctx)
        .await?;
    Ok(Json(seed_login_body(&s, &issued)?))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshRequest {
    session_token: String,
}

#[utoipa::path(
    post,
    path = "/api/session/refresh",
    tag = "sessions",
    summary = "A fresh access token for a session token",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access token.", body = crate::service::AccessGrant),
        (status = 401, description = "`session_invalid`.", body = crate::openapi::ErrorBody)
    )
)]
async fn refresh(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ApiJson(req): ApiJson<RefreshRequest>,
) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(s.refresh(&req.session_token, &ctx).await?))
}

#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "sessions",
    summary = "End the caller's session",
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Logged out."),
        (status = 401, description = "`unauthorized`.", body = crate::openapi::ErrorBody)
    )
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
    responses(
        (status = 200, description = "How many sessions ended.", body = crate::openapi::Revoked),
        (status = 401, description = "`unauthorized`.", body = crate::openapi::ErrorBody)
    )
)]
async fn logout_all(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
) -> Result<impl IntoResponse, ApiError> {
    let n = s.logout_all(&who, &ctx).await?;
    Ok(Json(json!({ "revoked": n })))
}

#[utoipa::path(
    get,
    path = "/api/sessions",
    tag = "sessions",
    summary = "The caller's live sessions",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The sessions.", body = crate::openapi::Sessions),
        (status = 401, description = "`unauthorized`.", body = crate::openapi::ErrorBody)
    )
)]
async fn sessions(State(s): State<Sesame>, Auth(who): Auth) -> Result<impl IntoResponse, ApiError> {
    Ok(Json(json!({ "sessions": s.sessions(&who).await? })))
}

#[utoipa::path(
    delete,
    path = "/api/sessions/{id}",
    tag = "sessions",
    summary = "End one of the caller's sessions",
    params(("id" = String, Path, description = "The session id (UUID).")),
    security(("bearer" = [])),
    responses(
        (status = 204, description = "Revoked."),
        (status = 401, description = "`unauthorized`.", body = crate::openapi::ErrorBody),
        (status = 404, description = "`session_not_found`.", body = crate::openapi::ErrorBody)
    )
)]
async fn revoke_session(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    Auth(who): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id)
        .map_err(|_| ApiError::new(404, "session_not_found", "No such session."))?;
    s.revoke_session(&who, id, &ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}
