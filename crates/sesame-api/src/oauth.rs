//! The OpenID Connect provider's wire contract (`/oauth2/*`, `/.well-known/openid-configuration`).
//!
//! OAuth 2.0 fixes its own error format, which relying parties' libraries parse: a flat
//! `{"error": "invalid_grant", "error_description": "…"}` from the token endpoint (RFC 6749
//! §5.2), and `error=…&error_description=…&state=…` on the redirect back from the
//! authorization endpoint (§4.1.2.1). Those are not Sesame's `{"error": {"code", "message"}}`
//! envelope, so they are a separate enum, [`OAuthErrorCode`], with each RFC string and status
//! written once here (docs/api.md §19).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// An OAuth 2.0 / OpenID Connect error code (RFC 6749 §4.1.2.1 and §5.2, OpenID Connect Core
/// §3.1.2.6, RFC 7009, RFC 6750 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OAuthErrorCode {
    /// A parameter is missing, repeated, malformed or not supported.
    InvalidRequest,
    /// Client authentication failed (unknown client, wrong secret, wrong method).
    InvalidClient,
    /// The code or refresh token is invalid, expired, used, revoked, or belongs to another
    /// client or redirect URI, or the PKCE verifier does not match.
    InvalidGrant,
    /// The client may not use this grant or response type.
    UnauthorizedClient,
    /// The grant type is not supported.
    UnsupportedGrantType,
    /// A scope the client may not ask for.
    InvalidScope,
    /// The user refused.
    AccessDenied,
    /// Only `response_type=code` is supported.
    UnsupportedResponseType,
    /// The server failed.
    ServerError,
    /// The server is overloaded.
    TemporarilyUnavailable,
    /// `prompt=none` and nobody is signed in.
    LoginRequired,
    /// `prompt=none` and the user has not consented yet.
    ConsentRequired,
    /// `prompt=none` and the user would have to act.
    InteractionRequired,
    /// The bearer token of a userinfo request is missing, expired or revoked.
    InvalidToken,
    /// RFC 7009: the token type cannot be revoked.
    UnsupportedTokenType,
}

impl OAuthErrorCode {
    /// Every code.
    pub const ALL: [OAuthErrorCode; 15] = [
        OAuthErrorCode::InvalidRequest,
        OAuthErrorCode::InvalidClient,
        OAuthErrorCode::InvalidGrant,
        OAuthErrorCode::UnauthorizedClient,
        OAuthErrorCode::UnsupportedGrantType,
        OAuthErrorCode::InvalidScope,
        OAuthErrorCode::AccessDenied,
        OAuthErrorCode::UnsupportedResponseType,
        OAuthErrorCode::ServerError,
        OAuthErrorCode::TemporarilyUnavailable,
        OAuthErrorCode::LoginRequired,
        OAuthErrorCode::ConsentRequired,
        OAuthErrorCode::InteractionRequired,
        OAuthErrorCode::InvalidToken,
        OAuthErrorCode::UnsupportedTokenType,
    ];

    /// The RFC's string and the HTTP status when the error is a response body (redirected
    /// errors are always a `302` to the client).
    pub const fn wire(self) -> (&'static str, u16) {
        match self {
            OAuthErrorCode::InvalidRequest => ("invalid_request", 400),
            OAuthErrorCode::InvalidClient => ("invalid_client", 401),
            OAuthErrorCode::InvalidGrant => ("invalid_grant", 400),
            OAuthErrorCode::UnauthorizedClient => ("unauthorized_client", 400),
            OAuthErrorCode::UnsupportedGrantType => ("unsupported_grant_type", 400),
            OAuthErrorCode::InvalidScope => ("invalid_scope", 400),
            OAuthErrorCode::AccessDenied => ("access_denied", 403),
            OAuthErrorCode::UnsupportedResponseType => ("unsupported_response_type", 400),
            OAuthErrorCode::ServerError => ("server_error", 500),
            OAuthErrorCode::TemporarilyUnavailable => ("temporarily_unavailable", 503),
            OAuthErrorCode::LoginRequired => ("login_required", 400),
            OAuthErrorCode::ConsentRequired => ("consent_required", 400),
            OAuthErrorCode::InteractionRequired => ("interaction_required", 400),
            OAuthErrorCode::InvalidToken => ("invalid_token", 401),
            OAuthErrorCode::UnsupportedTokenType => ("unsupported_token_type", 400),
        }
    }

    /// The RFC's string.
    pub const fn as_str(self) -> &'static str {
        self.wire().0
    }

    /// The HTTP status of the error as a response body.
    pub const fn status(self) -> u16 {
        self.wire().1
    }

    /// The code whose RFC string is `s`.
    pub fn parse(s: &str) -> Option<OAuthErrorCode> {
        OAuthErrorCode::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

impl std::fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error body (RFC 6749 §5.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OAuthErrorBody {
    /// The code.
    pub error: OAuthErrorCode,
    /// A sentence for the developer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The token endpoint's answer (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// An opaque access token for `/oauth2/userinfo`.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds the access token lives.
    pub expires_in: u64,
    /// A refresh token; each use returns a new one (the old one is then spent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token (a JWS), when the grant has the `openid` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// The granted scopes, space-separated.
    pub scope: String,
}

impl std::fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenResponse")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

/// The claims of `/oauth2/userinfo` (OpenID Connect Core §5.3), by scope.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// The user's id (never the username).
    pub sub: String,
    /// `profile`: the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// `profile`: the display name, or the username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `email`: the account's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email`: whether the address was confirmed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `groups`: the names of the user's groups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
}

/// `/oauth2/introspect` (RFC 7662 §2.2).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Introspection {
    /// Whether the token is live.
    pub active: bool,
    /// Its scopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The client it was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The username.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `access_token` or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The user's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// `/.well-known/openid-configuration` (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProviderMetadata {
    /// The issuer: the server's public URL.
    pub issuer: String,
    /// The authorization endpoint.
    pub authorization_endpoint: String,
    /// The token endpoint.
    pub token_endpoint: String,
    /// The userinfo endpoint.
    pub userinfo_endpoint: String,
    /// The JWKS.
    pub jwks_uri: String,
    /// RFC 7009 revocation.
    pub revocation_endpoint: String,
    /// RFC 7662 introspection.
    pub introspection_endpoint: String,
    /// RP-initiated logout.
    pub end_session_endpoint: String,
    /// Supported scopes.
    pub scopes_supported: Vec<String>,
    /// `code`.
    pub response_types_supported: Vec<String>,
    /// `query`.
    pub response_modes_supported: Vec<String>,
    /// `authorization_code`, `refresh_token`.
    pub grant_types_supported: Vec<String>,
    /// `public`.
    pub subject_types_supported: Vec<String>,
    /// `RS256`, `EdDSA`.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`, `none`.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// The same methods, for revocation.
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// `client_secret_basic`, `client_secret_post`.
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// `S256`.
    pub code_challenge_methods_supported: Vec<String>,
    /// The claims Sesame can return.
    pub claims_supported: Vec<String>,
    /// `login`, `none`, `consent`.
    pub prompt_values_supported: Vec<String>,
    /// The `iss` parameter on the authorization response (RFC 9207).
    pub authorization_response_iss_parameter_supported: bool,
}

/// `GET /api/oauth2/consent/{ticket}`: what the consent page shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentPrompt {
    /// The client's id.
    pub client_id: String,
    /// The client's name, as the operator registered it.
    pub client_name: String,
    /// The scopes asked for.
    pub scopes: Vec<String>,
    /// The user being asked.
    pub user_id: Uuid,
}

/// `POST /api/oauth2/consent/{ticket}`: the user's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ConsentDecision {
    /// `true` to allow, `false` to refuse (the client gets `access_denied`).
    pub approve: bool,
}

/// Where the browser goes next after a consent decision (the client's redirect URI with
/// `code` or `error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConsentRedirect {
    /// The URL to navigate to.
    pub redirect_to: String,
}

#[cfg(test)]
mod tests;
