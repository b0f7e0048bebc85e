//! Sessions and their tokens: what a login issues, refresh, listing.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How a session's owner proved who they are, as RFC 8176 `amr` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthMethod {
    /// A password (OPAQUE or server-assisted): `pwd`.
    Pwd,
    /// A one-time code (TOTP, a backup code or an emailed code): `otp`.
    Otp,
    /// A proof of possession of a hardware or device-bound key: `hwk`.
    Hwk,
    /// Two or more factors: `mfa`.
    Mfa,
}

impl fmt::Display for AuthMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.amr())
    }
}

impl AuthMethod {
    /// The RFC 8176 value.
    pub const fn amr(self) -> &'static str {
        match self {
            AuthMethod::Pwd => "pwd",
            AuthMethod::Otp => "otp",
            AuthMethod::Hwk => "hwk",
            AuthMethod::Mfa => "mfa",
        }
    }

    /// The method an `amr` value names; also reads the names older servers stored
    /// (`opaque`, `password`, `totp`, `backup_code`, `device`).
    pub fn from_amr(value: &str) -> Option<AuthMethod> {
        Some(match value {
            "pwd" | "opaque" | "password" => AuthMethod::Pwd,
            "otp" | "totp" | "backup_code" | "email_code" => AuthMethod::Otp,
            "hwk" | "device" => AuthMethod::Hwk,
            "mfa" => AuthMethod::Mfa,
            _ => return None,
        })
    }
}

/// What a successful login hands out; also the sealed payload of the OPAQUE confirmation.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionIssued {
    /// The user's id.
    pub user_id: Uuid,
    /// The canonical username.
    pub username: String,
    /// The new session's id.
    pub session_id: Uuid,
    /// The session token (refreshes access tokens; keep it secret).
    pub session_token: String,
    /// A fresh access token (JWT).
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// When the session ends at the latest (Unix seconds).
    pub session_expires_at: i64,
    /// Seconds without use after which the session ends earlier (each refresh restarts it).
    #[serde(default)]
    pub session_idle_timeout: u64,
}

impl fmt::Debug for SessionIssued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionIssued")
            .field("user_id", &self.user_id)
            .field("username", &self.username)
            .field("session_id", &self.session_id)
            .field("session_token", &"<redacted>")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("session_expires_at", &self.session_expires_at)
            .field("session_idle_timeout", &self.session_idle_timeout)
            .finish()
    }
}

/// `POST /api/session/refresh`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    /// The session token a login issued (43 characters of base64url).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub session_token: String,
}

/// `200` of `POST /api/session/refresh`: a fresh access token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessGrant {
    /// The access token (JWT). Secret.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until it expires.
    pub expires_in: u64,
}

impl fmt::Debug for AccessGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessGrant")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// One entry of `GET /api/sessions`. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionView {
    /// Session id.
    pub id: Uuid,
    /// Created.
    pub created_at: i64,
    /// Last used.
    pub last_seen_at: i64,
    /// Ends if unused until then.
    pub idle_expires_at: i64,
    /// Ends at the latest.
    pub absolute_expires_at: i64,
    /// Address at login.
    #[serde(default)]
    pub client_addr: Option<String>,
    /// User agent at login.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// How the user authenticated, as RFC 8176 `amr` values (`pwd`, `otp`, `hwk`, `mfa`).
    #[serde(default)]
    pub methods: Vec<AuthMethod>,
    /// Whether this is the caller's own session.
    #[serde(default)]
    pub current: bool,
}

/// `200` of `GET /api/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SessionList {
    /// The caller's live sessions.
    pub sessions: Vec<SessionView>,
}

/// `200` of `POST /api/logout-all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {
    /// How many sessions were revoked.
    pub revoked: u64,
}
