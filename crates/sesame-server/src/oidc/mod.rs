//! The OpenID Connect provider (docs/oidc.md): OpenID Connect Core 1.0 authorization-code
//! flow with PKCE (RFC 7636), Discovery, token revocation (RFC 7009), introspection (RFC
//! 7662) and RP-initiated logout.
//!
//! * `clients.rs`: registered relying parties and client authentication.
//! * `keys.rs`: the ID-token signing keys (RS256 and EdDSA), the JWKS, rotation.
//! * `authorize.rs`: `/oauth2/authorize` (the browser's cookie session, sign-in redirect,
//!   consent) and the consent API the `/consent` page calls.
//! * `token.rs`: `/oauth2/token` (authorization code with PKCE, refresh with rotation and
//!   reuse detection) and the ID token.
//! * `resource.rs`: discovery, userinfo, revocation, introspection, end-session.
//! * `groups.rs`: groups, for the `groups` claim.
//!
//! Codes live 60 seconds in the short-lived store (`crate::ephemeral`), consumed atomically;
//! grants, tokens, consents, keys and clients in the database. Every code, token and secret
//! is stored as its SHA-256 only. Errors are OAuth's own ([`OAuthErrorCode`]), rendered here.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use sesame_api::oauth::{OAuthErrorBody, OAuthErrorCode};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::service::Sesame;
use crate::store::OidcStore;

mod authorize;
mod clients;
mod groups;
mod keys;
mod resource;
mod token;

pub use clients::{ClientSpec, IdTokenAlg, RegisteredClient};
pub use groups::GroupView;

/// How long an authorization code lives, seconds.
pub const CODE_TTL_SECS: u64 = 60;
/// How long a refresh token lives, seconds (rotated on every use).
pub const REFRESH_TTL_SECS: i64 = 30 * 24 * 3600;
/// How long an ID token lives, seconds.
pub const ID_TOKEN_TTL_SECS: i64 = 600;
/// The scopes Sesame knows.
pub const SCOPES: [&str; 5] = ["openid", "profile", "email", "groups", "offline_access"];

/// An OAuth error as a response body (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The code.
    pub code: OAuthErrorCode,
    /// A sentence for the developer.
    pub description: String,
}

impl OAuthError {
    /// An error with `code` and `description`.
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> OAuthError {
        OAuthError {
            code,
            description: description.into(),
        }
    }
}

/// What an OAuth endpoint fails with: a protocol error, or Sesame's own server error.
#[derive(Debug)]
pub enum Failure {
    /// RFC 6749 §5.2.
    OAuth(OAuthError),
    /// The store or the short-lived store failed.
    Server(ApiError),
}

impl From<OAuthError> for Failure {
    fn from(e: OAuthError) -> Self {
        Failure::OAuth(e)
    }
}

impl From<ApiError> for Failure {
    fn from(e: ApiError) -> Self {
        Failure::Server(e)
    }
}

impl From<crate::store::StoreError> for Failure {
    fn from(e: crate::store::StoreError) -> Self {
        Failure::Server(e.into())
    }
}

impl From<crate::ephemeral::EphemeralError> for Failure {
    fn from(e: crate::ephemeral::EphemeralError) -> Self {
        Failure::Server(e.into())
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut resp = (
            status,
            Json(OAuthErrorBody {
                error: self.code,
                error_description: Some(self.description),
            }),
        )
            .into_response();
        let h = resp.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        match self.code {
            OAuthErrorCode::InvalidClient => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"sesame\""),
                );
            }
            OAuthErrorCode::InvalidToken => {
                h.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer error=\"invalid_token\""),
                );
            }
            _ => {}
        }
        resp
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        match self {
            Failure::OAuth(e) => e.into_response(),
            Failure::Server(e) => e.into_response(),
        }
    }
}

/// The routes of the provider (merged into [`crate::http::router`]).
pub(crate) fn routes() -> Router<Sesame> {
    let browser = Router::new()
        .route("/oauth2/authorize", get(authorize::authorize))
        .route("/oauth2/logout", get(resource::end_session))
        .layer(axum::middleware::map_response(crate::web::security_headers));
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(resource::configuration),
        )
        .route("/oauth2/token", axum::routing::post(token::token))
        .route(
            "/oauth2/userinfo",
            get(resource::userinfo).post(resource::userinfo_post),
        )
        .route("/oauth2/revoke", axum::routing::post(resource::revoke))
        .route(
            "/oauth2/introspect",
            axum::routing::post(resource::introspect),
        )
        .route(
            "/api/oauth2/consent/{ticket}",
            get(authorize::consent_prompt).post(authorize::consent_decide),
        )
        .merge(browser)
}

/// The OpenAPI paths of the provider.
#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        resource::configuration,
        authorize::authorize,
        token::token,
        resource::userinfo,
        resource::userinfo_post,
        resource::revoke,
        resource::introspect,
        resource::end_session,
        authorize::consent_prompt,
        authorize::consent_decide,
    ),
    components(schemas(OAuthErrorBody, OAuthErrorCode))
)]
struct OidcApi;

/// The OpenAPI paths of the provider (merged by [`crate::openapi::document`]).
pub(crate) fn openapi() -> utoipa::openapi::OpenApi {
    <OidcApi as utoipa::OpenApi>::openapi()
}

/// A fresh random token with `prefix` (256 bits, base64url) and its stored hash.
pub(crate) fn new_token(s: &Sesame, prefix: &str) -> (String, Vec<u8>) {
    let mut raw = zeroize::Zeroizing::new([0u8; 32]);
    s.rng().fill(raw.as_mut());
    let token = format!("{prefix}{}", sesame_proto::b64::encode(raw.as_ref()));
    let hash = hash(&token);
    (token, hash)
}

/// SHA-256 of a code, token or secret (each has full entropy, so a plain hash is enough).
pub(crate) fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

impl Sesame {
    /// The provider's tables.
    pub(crate) fn oidc_store(&self) -> Result<&dyn OidcStore, ApiError> {
        self.store()
            .oidc()
            .ok_or_else(|| ApiError::internal("this store has no OpenID Connect tables"))
    }
}

/// The parameters of a form body or a query string; a repeated parameter is an error (RFC
/// 6749 §3.1), an empty value counts as absent.
pub(crate) fn params(raw: &[u8]) -> Result<Vec<(String, String)>, OAuthError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (k, v) in url::form_urlencoded::parse(raw) {
        if v.is_empty() {
            continue;
        }
        if out.iter().any(|(seen, _)| *seen == k) {
            return Err(OAuthError::new(
                OAuthErrorCode::InvalidRequest,
                format!("The parameter {k} is repeated."),
            ));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// The value of `name` in `params`.
pub(crate) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests;
