//! The admin API (`/api/admin/…`, accounts with the [`Role::Admin`] role only) and the
//! caller's own security activity (`GET /api/me/activity`).
//!
//! Query strings are parsed into the `*Query` types below, whose limits the server enforces
//! (an out-of-range value is `400 invalid_request`, never clamped) and the OpenAPI document
//! states. docs/api.md §18 is the prose reference.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::AccountStatus;

/// The most users one page of `GET /api/admin/users` holds.
pub const MAX_USER_PAGE: u32 = 100;
/// The page size of `GET /api/admin/users` when `limit` is absent.
pub const DEFAULT_USER_PAGE: u32 = 50;
/// The longest search text of `GET /api/admin/users`, in characters (a username has at most
/// 32).
pub const MAX_SEARCH_CHARS: usize = 32;
/// How many users, at most, a search of `GET /api/admin/users` looks at. Usernames are stored
/// encrypted (with a keyed index for exact lookups only), so a substring search decrypts the
/// users one by one in creation order; it stops after this many and says so
/// ([`UserPage::truncated`]). An exact username is always found, wherever it is.
pub const SEARCH_SCAN_LIMIT: u32 = 10_000;
/// The largest `offset` of `GET /api/admin/users` (the largest 32-bit signed integer, what the
/// OpenAPI `int32` format admits).
pub const MAX_OFFSET: u32 = 2_147_483_647;
/// The most entries one page of `GET /api/admin/audit` holds.
pub const MAX_AUDIT_PAGE: u32 = 500;
/// The page size of `GET /api/admin/audit` when `limit` is absent.
pub const DEFAULT_AUDIT_PAGE: u32 = 100;
/// The longest `event` filter of `GET /api/admin/audit`, in characters.
pub const MAX_EVENT_CHARS: usize = 64;
/// The most entries `GET /api/me/activity` answers (and its default).
pub const MAX_ACTIVITY: u32 = 50;

/// An account's role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Role {
    /// An ordinary account (the default when a server does not say).
    #[default]
    User,
    /// May use the admin API. Granted by the operator (`sesame admin user grant-admin`).
    Admin,
}

impl Role {
    /// The wire and storage text: `user` or `admin`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// A user as an admin sees it: `GET /api/admin/users/{name}`, the entries of
/// `GET /api/admin/users`, the answer of the admin actions. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserSummary {
    /// The user's id.
    pub id: Uuid,
    /// The canonical username.
    pub username: String,
    /// `active`, `pending` (email not verified yet) or `banned`.
    pub status: AccountStatus,
    /// The account's role.
    #[serde(default)]
    pub role: Role,
    /// Whether the role is `admin`.
    #[serde(default)]
    pub is_admin: bool,
    /// Created.
    pub created_at: i64,
    /// Last successful login, if any.
    #[serde(default)]
    pub last_login_at: Option<i64>,
    /// Live sessions.
    pub sessions: u64,
    /// Whether logins need a TOTP code (or a backup code).
    #[serde(default)]
    pub totp_enabled: bool,
    /// Whether OPAQUE logins need a device key signature.
    #[serde(default)]
    pub device_required: bool,
    /// The groups the account belongs to (`sesame admin group`; the OpenID Connect `groups`
    /// claim), sorted.
    #[serde(default)]
    pub groups: Vec<String>,
}

/// The query of `GET /api/admin/users`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct UserQuery {
    /// Only users whose username contains this text (case-insensitive, at most 32
    /// characters; empty means everyone). At most 10 000 users are searched.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 32))]
    pub q: Option<String>,
    /// Page size, 1–100 (default 50).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 100))]
    pub limit: Option<u32>,
    /// Users to skip (of the matches, in creation order), 0–2147483647.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 0, maximum = 2_147_483_647))]
    pub offset: Option<u32>,
}

/// `200` of `GET /api/admin/users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPage {
    /// The page, in creation order (an exact match of the search first).
    pub users: Vec<UserSummary>,
    /// How many users match in all: every user without a search, the matches among the users
    /// searched with one.
    pub total: u64,
    /// Whether a search stopped at [`SEARCH_SCAN_LIMIT`] users: later users were not looked
    /// at (search for the exact name, or a longer text).
    #[serde(default)]
    pub truncated: bool,
}

/// The query of `GET /api/admin/audit`. Times are Unix seconds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only entries about this user: a username, or a user id (which also finds the entries
    /// of deleted accounts).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(max_length = 36))]
    pub user: Option<String>,
    /// Only this event (`login.success`), or a family of events with a trailing `*`
    /// (`login.*`, `admin.*`). At most 64 characters of `a-z 0-9 . _` and the final `*`.
    #[serde(default)]
    #[cfg_attr(
        feature = "openapi",
        param(max_length = 64, pattern = r"^[a-z0-9._]*\*?$")
    )]
    pub event: Option<String>,
    /// Only entries at or after this time.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 0))]
    pub since: Option<i64>,
    /// Only entries before this time.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 0))]
    pub until: Option<i64>,
    /// At most this many entries, 1–500 (default 100).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 500))]
    pub limit: Option<u32>,
}

/// One audit log entry. The stored row never holds a password, code, token or username; the
/// name here is the account's current one, looked up when the log is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    /// Increasing id.
    pub id: i64,
    /// When it happened (Unix seconds).
    pub at: i64,
    /// What happened (docs/api.md §15).
    pub event: String,
    /// The user concerned, if any (kept after the account is deleted).
    #[serde(default)]
    pub user_id: Option<Uuid>,
    /// That user's current name (absent once the account is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Why, or who did it (`by=<admin id>`), if recorded.
    #[serde(default)]
    pub reason: Option<String>,
    /// The client's address, if known.
    #[serde(default)]
    pub client_addr: Option<String>,
    /// The client's user agent, if known.
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// `200` of `GET /api/admin/audit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// The entries, newest first.
    pub entries: Vec<AuditEntry>,
}

/// The query of `GET /api/me/activity`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
#[serde(deny_unknown_fields)]
pub struct ActivityQuery {
    /// At most this many entries, 1–50 (default 50).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", param(minimum = 1, maximum = 50))]
    pub limit: Option<u32>,
}

/// One sign-in or security event of the caller's account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ActivityEntry {
    /// When it happened (Unix seconds).
    pub at: i64,
    /// What happened (`login.success`, `login.failure`, `protected.password_changed`, …;
    /// docs/api.md §15).
    pub event: String,
    /// The client's address, if known.
    #[serde(default)]
    pub client_addr: Option<String>,
    /// The client's user agent, if known.
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// `200` of `GET /api/me/activity`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Activity {
    /// The events, newest first.
    pub events: Vec<ActivityEntry>,
}
