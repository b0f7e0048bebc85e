//! The JSON bodies of the server's API that are not protocol messages.
//!
//! Unknown fields are ignored when deserialising, so a newer server that adds fields still
//! works with this client. Secrets (tokens) are redacted from `Debug` output.

use std::fmt;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// `201` answer of `POST /api/register/finish` and `POST /api/register`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The new account's id.
    pub user_id: Uuid,
    /// The canonical username the server stored (show this one to the user).
    pub username: String,
    /// The server's human-readable message.
    #[serde(default)]
    pub message: String,
    /// `active`, or `pending` until the emailed code is entered (empty from older servers).
    #[serde(default)]
    pub status: String,
    /// The single-use backup codes, shown this once: the user must store them now.
    #[serde(default, rename = "backupCodes")]
    pub backup_codes: Vec<String>,
}

/// The session a successful login issues (`SessionIssued`): the sealed payload of the OPAQUE
/// login confirmation, and the body of `POST /api/login`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionIssued {
    /// The account's id.
    pub user_id: Uuid,
    /// The canonical username.
    pub username: String,
    /// The session's id (as listed by `GET /api/sessions`).
    pub session_id: Uuid,
    /// The long-lived session token: exchange it for access tokens at
    /// `POST /api/session/refresh`. Secret.
    pub session_token: String,
    /// The short-lived bearer token for authenticated routes. Secret.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// When the session itself expires, in Unix seconds.
    pub session_expires_at: u64,
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
            .finish()
    }
}

/// `200` answer of `POST /api/session/refresh`: a fresh access token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refreshed {
    /// The new bearer token. Secret.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl fmt::Debug for Refreshed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Refreshed")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// One entry of `GET /api/sessions`. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionInfo {
    /// The session's id.
    pub id: Uuid,
    /// When the session was created.
    pub created_at: i64,
    /// When the session was last used.
    pub last_seen_at: i64,
    /// When the session expires if left unused.
    pub idle_expires_at: i64,
    /// When the session expires regardless of use.
    pub absolute_expires_at: i64,
    /// The address the session was created from, if recorded.
    #[serde(default)]
    pub client_addr: Option<String>,
    /// The `User-Agent` the session was created with, if recorded.
    #[serde(default)]
    pub user_agent: Option<String>,
    /// How the user authenticated (e.g. `opaque`, `password`).
    #[serde(default)]
    pub methods: Vec<String>,
    /// Whether this is the session of the access token that asked.
    #[serde(default)]
    pub current: bool,
}

/// `200` answer of `GET /api/sessions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct SessionList {
    pub(crate) sessions: Vec<SessionInfo>,
}

/// `200` answer of `POST /api/logout-all`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RevokedCount {
    pub(crate) revoked: u64,
}

/// `200` answer of `GET /api/me`: the account behind an access token. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    /// The account's id.
    pub user_id: Uuid,
    /// The canonical username.
    pub username: String,
    /// The account status (e.g. `active`).
    pub status: String,
    /// When the account was created.
    pub created_at: i64,
    /// When the account last logged in, if ever.
    #[serde(default)]
    pub last_login_at: Option<i64>,
}

/// `200` answer of `GET /.well-known/sesame`: what the server says about itself.
///
/// Nothing here is authenticated: the key printed here is only trustworthy once an OPAQUE
/// exchange has confirmed it (see [`crate::Client::register`] and [`crate::Client::login`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerInfo {
    /// The server's OPAQUE public key, base64url.
    pub opaque_public_key: String,
    /// Its fingerprint, `SHA256:…`.
    pub fingerprint: String,
    /// The token issuer.
    #[serde(default)]
    pub issuer: String,
    /// The server's version.
    #[serde(default)]
    pub version: String,
}

/// Body of `POST /api/register` and `POST /api/login` (server-assisted paths).
#[derive(Serialize)]
pub(crate) struct PasswordBody<'a> {
    pub(crate) username: &'a str,
    pub(crate) password: &'a str,
}

/// Body of `POST /api/session/refresh`.
#[derive(Serialize)]
pub(crate) struct RefreshBody<'a> {
    pub(crate) session_token: &'a str,
}

/// The error body every non-2xx answer carries.
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub(crate) error: ErrorDetail,
}

/// `{"code","message"}` inside [`ErrorBody`] (and inside WebSocket `error` frames).
#[derive(Debug, Deserialize)]
pub(crate) struct ErrorDetail {
    pub(crate) code: String,
    #[serde(default)]
    pub(crate) message: String,
    /// Seconds to wait (WebSocket error frames carry it here; HTTP uses `Retry-After`).
    #[serde(default)]
    pub(crate) retry_after: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_issued_ignores_unknown_fields_and_redacts_tokens() {
        // The body of POST /api/login: SessionIssued plus the seed's compatibility fields.
        let body = r#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","username":"alice",
            "session_id":"0d6e2b4c-1b5e-4a8f-a0a4-46b3c1f0e2d9","session_token":"st-secret",
            "access_token":"at-secret","token_type":"Bearer","expires_in":900,
            "session_expires_at":1767225600,"message":"Login successful.","token":"at-secret",
            "uuid":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","expires_at":"2026-01-01T00:15:00Z"}"#;
        let s: SessionIssued = serde_json::from_str(body).unwrap();
        assert_eq!(s.username, "alice");
        assert_eq!(s.expires_in, 900);
        let debug = format!("{s:?}");
        assert!(!debug.contains("secret"), "{debug}");
    }

    #[test]
    fn registered_and_me_tolerate_missing_optional_fields() {
        let r: Registered = serde_json::from_str(
            r#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","username":"alice","extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.message, "");
        let me: Me = serde_json::from_str(
            r#"{"user_id":"6f1b0c1e-8a53-4b57-9d0f-2c1d2a9e6b11","username":"alice",
                "status":"active","created_at":5,"last_login_at":null}"#,
        )
        .unwrap();
        assert_eq!(me.last_login_at, None);
    }
}
