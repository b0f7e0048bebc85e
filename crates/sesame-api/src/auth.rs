//! Registration and login bodies around the OPAQUE messages of `sesame_proto::messages`.

use serde::{Deserialize, Serialize};
use sesame_proto::b64::Bytes;
use sesame_proto::KeyStretching;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::sessions::SessionIssued;

/// An account's state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AccountStatus {
    /// The account may log in (the default when a server does not say).
    #[default]
    Active,
    /// The account awaits a step (the code mailed to its address).
    Pending,
    /// The account is barred from logging in.
    Banned,
}

impl std::fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AccountStatus {
    /// The wire and storage text: `active`, `pending` or `banned`.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccountStatus::Active => "active",
            AccountStatus::Pending => "pending",
            AccountStatus::Banned => "banned",
        }
    }
}

/// `POST /api/login` (server-assisted login): the seed-style `{username, password}`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordLoginRequest {
    /// The username as typed (see [`RegisterPasswordRequest::username`]).
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
    /// The password (at most 128 characters).
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 128))]
    pub password: Zeroizing<String>,
}

/// `POST /register` and `POST /api/register` (server-assisted registration).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterPasswordRequest {
    /// The username: 3–32 of `a-z 0-9 . _ -` after Unicode NFKC and lowercasing, starting
    /// with a letter or digit, not reserved (docs/api.md §5).
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
    /// The password: 8–128 characters, not containing the username, not a common password.
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 8, max_length = 128))]
    pub password: Zeroizing<String>,
    /// An email address to verify (the account stays `pending` until the mailed code is
    /// entered; refused when the server sends no mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 254, format = "email"))]
    pub email: Option<String>,
}

/// `POST /api/register/finish`: the OPAQUE record plus an optional email address.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegisterFinishRequest {
    /// The username, as in the registration start.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
    /// OPAQUE `RegistrationRecord` (192 bytes, base64url).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]{256}$"))]
    pub registration_record: Bytes,
    /// The parameters the client stretched with.
    pub key_stretching: KeyStretching,
    /// As in [`RegisterPasswordRequest::email`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 254, format = "email"))]
    pub email: Option<String>,
    /// The new account's messaging identity, published with the account so that others can
    /// write to it before its first login (as `PUT /api/keys`; checked before the account is
    /// created: `400 invalid_identity`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<crate::messaging::IdentityUpload>,
    /// The identity's backup, wrapped under the export key (as `PUT /api/keys/backup`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_backup: Option<crate::messaging::KeyBackup>,
}

/// `201` of every registration route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Registered {
    /// Human message.
    #[serde(default)]
    pub message: String,
    /// The new account's id.
    pub user_id: Uuid,
    /// The same id (seed name).
    #[serde(default)]
    pub uuid: Uuid,
    /// The canonical username the server stored (show this one).
    pub username: String,
    /// `active`, or `pending` until the code mailed to the given address is entered.
    #[serde(default)]
    pub status: AccountStatus,
    /// The single-use backup codes, shown this once.
    #[serde(default, rename = "backupCodes")]
    pub backup_codes: Vec<String>,
}

/// `POST /api/verify-email`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VerifyEmailRequest {
    /// The pending account.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
    /// The code from the mail.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub code: String,
}

/// `200` of `POST /api/verify-email`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailVerified {
    /// Human message.
    pub message: String,
    /// The account's status now.
    pub status: AccountStatus,
}

/// `POST /api/verify-email/resend`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ResendRequest {
    /// The pending account.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
}

/// A plain acknowledgement: `{"message"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Human message.
    #[serde(default)]
    pub message: String,
}

impl Message {
    /// `{"message": text}`.
    pub fn new(text: impl Into<String>) -> Self {
        Message {
            message: text.into(),
        }
    }
}

/// A password that was right, but the account needs a second factor: present the ticket with
/// a code (`POST /api/login/second-factor`, WebSocket `second_factor`, TCP `SECOND_FACTOR`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorRequired {
    /// Always `true`: tells this answer apart from a session.
    #[serde(default)]
    pub second_factor_required: bool,
    /// The ticket to present with the code. Secret.
    pub mfa_token: String,
    /// Accepted kinds of code: `totp`, `backup_code`.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Seconds the ticket stays valid.
    #[serde(default)]
    pub expires_in: u64,
}

impl std::fmt::Debug for SecondFactorRequired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecondFactorRequired")
            .field("mfa_token", &"<redacted>")
            .field("methods", &self.methods)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// `POST /api/login/second-factor`, and the WebSocket `second_factor` frame's fields.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SecondFactorRequest {
    /// The ticket from the password step.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub mfa_token: String,
    /// A 6-digit TOTP code or a backup code.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub code: String,
}

/// A session in seed 004's login shape: the [`SessionIssued`] fields plus `message`, `token`
/// (the access token again), `uuid` (the user id again) and `expires_at` (RFC 3339, when the
/// access token ends).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginSession {
    /// `Login successful.`
    pub message: String,
    /// The access token again (seed name).
    pub token: String,
    /// The user id again (seed name).
    pub uuid: Uuid,
    /// When the access token expires (RFC 3339).
    pub expires_at: String,
    /// The session.
    #[serde(flatten)]
    pub session: SessionIssued,
}

/// The second-factor step in seed 004's shape: [`SecondFactorRequired`] plus `message`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SecondFactorPending {
    /// `Second factor required.`
    pub message: String,
    /// The ticket.
    #[serde(flatten)]
    pub required: SecondFactorRequired,
}

/// `200` of `POST /api/login`: a session, or a second-factor ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum PasswordLogin {
    /// A second factor is needed (tried first: it has `second_factor_required`).
    SecondFactor(SecondFactorPending),
    /// Logged in.
    Session(LoginSession),
}
