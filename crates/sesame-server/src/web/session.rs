//! The browser's cookie session: `/web/session`, `/web/refresh` and `/web/logout`.
//!
//! The cookie is `HttpOnly` (page scripts cannot read it), `SameSite=Strict`, `Path=/`, and
//! `Secure` with the `__Host-` prefix when the server is reached over HTTPS. Every request here
//! must come from the server's own origin: `Sec-Fetch-Site` must be `same-origin` (or `none`,
//! a navigation the user typed), or, from a browser that does not send it, `Origin` must be
//! this host. A request with neither header is not from a browser and cannot be a forgery.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use cookie::{Cookie, SameSite};
use sesame_api::sessions::AccessGrant;
use sesame_api::web::{CookieSessionRequest, SECURE_SESSION_COOKIE, SESSION_COOKIE};

use crate::error::{ApiError, CredentialError};
use crate::http::{ApiJson, Ctx};
use crate::service::Sesame;

/// The routes of this module.
pub(super) fn routes() -> Router<Sesame> {
    Router::new()
        .route("/web/session", post(start))
        .route("/web/refresh", post(refresh))
        .route("/web/logout", post(logout))
}

/// The OpenAPI paths of [`routes`].
#[derive(utoipa::OpenApi)]
#[openapi(paths(start, refresh, logout))]
struct WebApi;

/// The OpenAPI paths of the cookie session (merged by [`crate::openapi::document`]).
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    <WebApi as utoipa::OpenApi>::openapi()
}

/// Refuses a request that did not come from this origin (see the module docs).
fn same_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = || {
        ApiError::new(
            CredentialError::CrossSiteRequest,
            "This request came from another site and was refused.",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        return match site.as_bytes() {
            b"same-origin" | b"none" => Ok(()),
            _ => Err(refused()),
        };
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Ok(());
    };
    let authority = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, authority)| authority);
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match (authority, host) {
        (Some(a), Some(h)) if a.eq_ignore_ascii_case(h) => Ok(()),
        _ => Err(refused()),
    }
}

/// The cookie's name on this server.
fn cookie_name(s: &Sesame) -> &'static str {
    if s.settings().secure_cookies {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// `Set-Cookie` for `value`, living `max_age` seconds (0 deletes it).
fn set_cookie(s: &Sesame, value: &str, max_age: u64) -> HeaderValue {
    let cookie = Cookie::build((cookie_name(s), value.to_owned()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(s.settings().secure_cookies)
        .path("/")
        .max_age(cookie::time::Duration::seconds(
            i64::try_from(max_age).unwrap_or(i64::MAX),
        ))
        .build();
    // A cookie built from a session token (base64url and `_`) is always a valid header value.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The session token in the request's cookie, if any.
fn cookie_token(s: &Sesame, headers: &HeaderMap) -> Option<String> {
    let name = cookie_name(s);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// The grant with the cookie that keeps the session.
fn with_cookie(s: &Sesame, grant: AccessGrant, token: &str) -> Response {
    let cookie = set_cookie(s, token, s.settings().session_absolute);
    ([(header::SET_COOKIE, cookie)], Json(grant)).into_response()
}

#[utoipa::path(
    post,
    path = "/web/session",
    operation_id = "web_session",
    tag = "web",
    summary = "Keep a session in the browser's HttpOnly cookie",
    description = "Checks the session token, sets the `HttpOnly`, `SameSite=Strict` session \
                   cookie and answers an access token. Same-origin requests only.",
    request_body = CookieSessionRequest,
    responses((status = 200, description = "The cookie is set; an access token.", body = AccessGrant))
)]
async fn start(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    ApiJson(req): ApiJson<CookieSessionRequest>,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let grant = s.refresh(&req.session_token, &ctx).await?;
    Ok(with_cookie(&s, grant, &req.session_token))
}

#[utoipa::path(
    post,
    path = "/web/refresh",
    operation_id = "web_refresh",
    tag = "web",
    summary = "An access token for the browser's cookie session",
    description = "Same-origin requests only. Without a live session the cookie is cleared and \
                   the answer is `401 session_invalid`.",
    responses((status = 200, description = "A new access token.", body = AccessGrant))
)]
async fn refresh(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    let token = cookie_token(&s, &headers).unwrap_or_default();
    match s.refresh(&token, &ctx).await {
        Ok(grant) => Ok(with_cookie(&s, grant, &token)),
        Err(e) => {
            let mut resp = e.into_response();
            resp.headers_mut()
                .insert(header::SET_COOKIE, set_cookie(&s, "", 0));
            Ok(resp)
        }
    }
}

#[utoipa::path(
    post,
    path = "/web/logout",
    operation_id = "web_logout",
    tag = "web",
    summary = "Sign the browser out: end the cookie's session and clear the cookie",
    description = "Same-origin requests only. Succeeds whether or not a session was live.",
    responses((status = 204, description = "Signed out."))
)]
async fn logout(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    same_origin(&headers)?;
    if let Some(token) = cookie_token(&s, &headers) {
        s.logout_by_token(&token, &ctx).await?;
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, set_cookie(&s, "", 0))],
    )
        .into_response())
}
