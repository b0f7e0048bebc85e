//! The caller's account: profile, second factors, password, security questions, recovery.

use serde::{Deserialize, Deserializer, Serialize};
use sesame_proto::b64::Bytes;
use sesame_proto::messages::{RegistrationChallenge, RegistrationFinish};
use sesame_proto::KeyStretching;
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::admin::Role;
use crate::auth::AccountStatus;

/// The most characters of a display name.
pub const MAX_DISPLAY_NAME: usize = 64;
/// The most characters of a bio.
pub const MAX_BIO: usize = 500;
/// The most bytes of a picture URL.
pub const MAX_PICTURE_URL: usize = 2048;

/// Public profile fields (seed 004 `name`, `bio`, `p_pic`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Profile {
    /// Display name, at most 64 characters, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")
    )]
    pub display_name: Option<String>,
    /// Free text, at most 500 characters; no control characters but newlines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(max_length = 500, pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*$")
    )]
    pub bio: Option<String>,
    /// An `https://` URL (or `http://` on localhost), at most 2048 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            max_length = 2048,
            format = "uri",
            pattern = r"^(https://[A-Za-z0-9._~!$&'()*+,;=:%-]+|http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?)([/?#][A-Za-z0-9._~!$&'()*+,;=:@/?#%-]*)?$"
        )
    )]
    pub picture_url: Option<String>,
}

/// `PUT /api/me`: only the fields present change; `null` clears one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdate {
    /// New display name (rules of [`Profile::display_name`]).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"))]
    pub display_name: Option<Option<String>>,
    /// New bio (rules of [`Profile::bio`]).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 500, pattern = r"^[^\x00-\x09\x0b-\x1f\x7f-\x9f]*$"))]
    pub bio: Option<Option<String>>,
    /// New picture URL (rules of [`Profile::picture_url`]).
    #[serde(
        default,
        deserialize_with = "present",
        skip_serializing_if = "Option::is_none"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 2048, format = "uri", pattern = r"^(https://[A-Za-z0-9._~!$&'()*+,;=:%-]+|http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?)([/?#][A-Za-z0-9._~!$&'()*+,;=:@/?#%-]*)?$"))]
    pub picture_url: Option<Option<String>>,
}

impl ProfileUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        self.display_name.is_none() && self.bio.is_none() && self.picture_url.is_none()
    }
}

/// A field that is present: `Some(None)` for `null`, `Some(Some(v))` for a value.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// `200` of `PUT /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfileUpdated {
    /// `Profile updated.`
    pub message: String,
    /// The profile now.
    pub profile: Profile,
}

/// `200` of `GET /api/me`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    /// The user's id.
    pub user_id: Uuid,
    /// The same id (seed name).
    #[serde(default)]
    pub uuid: Uuid,
    /// The canonical username.
    pub username: String,
    /// The account's state.
    pub status: AccountStatus,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last login (Unix seconds).
    #[serde(default)]
    pub last_login_at: Option<i64>,
    /// Public profile.
    #[serde(default)]
    pub profile: Profile,
    /// Whether an authenticator app is enabled.
    #[serde(default)]
    pub totp_enabled: bool,
    /// Unused backup codes.
    #[serde(default)]
    pub backup_codes_left: u64,
    /// How many security questions are set.
    #[serde(default)]
    pub security_questions: u64,
    /// The account's email address, if any.
    #[serde(default)]
    pub email: Option<String>,
    /// The account's role (`user` or `admin`).
    #[serde(default)]
    pub role: Role,
    /// Whether the role is `admin`: the account may use the admin API (`/api/admin/…`).
    #[serde(default)]
    pub is_admin: bool,
}

/// `200` of `POST /api/generate-qr`: a pending authenticator secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrolment {
    /// Human message.
    #[serde(default)]
    pub message: String,
    /// The base32 secret, for typing into an authenticator. Secret.
    pub secret: String,
    /// The `otpauth://totp/...` URI. Secret.
    pub otpauth_url: String,
    /// `data:image/png;base64,...` QR code of the URI. Secret.
    #[serde(default)]
    pub qr_code_url: String,
}

impl std::fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpEnrolment")
            .field("message", &self.message)
            .finish_non_exhaustive()
    }
}

/// `POST /api/enable-authenticator`, `POST /api/2fa/totp/disable`: a current code.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TotpCode {
    /// The 6-digit code the authenticator shows (`code` is accepted too).
    #[serde(rename = "totpCode", alias = "code")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub totp_code: String,
}

/// Fresh single-use backup codes, shown once (backup-code regeneration, recovery).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackupCodes {
    /// Human message.
    #[serde(default)]
    pub message: String,
    /// The codes. Secret.
    #[serde(rename = "backupCodes")]
    pub backup_codes: Vec<String>,
}

impl std::fmt::Debug for BackupCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackupCodes")
            .field("message", &self.message)
            .field("backup_codes", &self.backup_codes.len())
            .finish()
    }
}

/// `POST /api/reauth`: the password.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordBody {
    /// The account's password.
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 1, max_length = 128))]
    pub password: Zeroizing<String>,
}

/// `200` of `POST /api/reauth`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reauthenticated {
    /// Always `true`.
    pub reauthenticated: bool,
    /// Seconds the fresh authentication lasts.
    #[serde(default)]
    pub expires_in: u64,
}

/// `POST /api/password` (server-assisted password change).
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The new password (rules of registration).
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 8, max_length = 128))]
    pub new_password: Zeroizing<String>,
    /// Whether to end the caller's other sessions.
    #[serde(default)]
    pub revoke_other_sessions: bool,
}

/// `POST /api/password/finish` (client-side password change).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeFinish {
    /// The new record.
    pub registration: RegistrationFinish,
    /// Whether to end the caller's other sessions.
    #[serde(default)]
    pub revoke_other_sessions: bool,
}

/// `200` of `POST /api/password` and `POST /api/password/finish`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordChanged {
    /// `Password changed.`
    #[serde(default)]
    pub message: String,
    /// How many other sessions were revoked.
    #[serde(default)]
    pub revoked_sessions: u64,
}

/// The fewest security questions an account sets.
pub const MIN_QUESTIONS: usize = 2;
/// The most security questions an account sets.
pub const MAX_QUESTIONS: usize = 3;
/// The most characters of a question.
pub const MAX_QUESTION_CHARS: usize = 200;
/// The fewest characters of an answer.
pub const MIN_ANSWER_CHARS: usize = 3;
/// The most characters of an answer.
pub const MAX_ANSWER_CHARS: usize = 100;

/// One security question with its answer.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct QuestionAnswer {
    /// The question text (1–200 characters).
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 200))]
    pub question: String,
    /// The answer (3–100 characters; normalised before hashing).
    #[cfg_attr(feature = "openapi", schema(value_type = String, min_length = 3, max_length = 100))]
    pub answer: Zeroizing<String>,
}

impl std::fmt::Debug for QuestionAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuestionAnswer")
            .field("question", &self.question)
            .finish_non_exhaustive()
    }
}

/// `PUT /api/security-questions`.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Questions {
    /// Two or three questions with their answers.
    #[cfg_attr(feature = "openapi", schema(min_items = 2, max_items = 3))]
    pub questions: Vec<QuestionAnswer>,
}

/// `200` of `GET /api/security-questions/catalog`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuestionCatalog {
    /// The questions one may choose from.
    pub questions: Vec<String>,
}

/// `POST /api/recover/start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoverStart {
    /// The account.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
    /// For a client-side new record: the OPAQUE registration request (32 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub registration_request: Option<Bytes>,
}

/// `200` of `POST /api/recover/start` (the same shape for every username).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RecoverStarted {
    /// Present with `recover/finish`.
    pub recovery_id: String,
    /// The account's security questions (stand-ins for accounts without any).
    #[serde(default)]
    pub questions: Vec<String>,
    /// When a registration request was sent: the challenge for the new record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_challenge: Option<RegistrationChallenge>,
    /// Seconds the recovery stays open.
    #[serde(default)]
    pub expires_in: u64,
    /// Human message.
    #[serde(default)]
    pub message: String,
}

/// `POST /api/recover/finish`: the factors and the new credential.
#[derive(Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RecoverFinish {
    /// From the start.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub recovery_id: String,
    /// A backup code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_code: Option<String>,
    /// The emailed code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_code: Option<String>,
    /// A TOTP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub totp_code: Option<String>,
    /// Answers to the questions, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<String>>,
    /// A one-time reset code an operator issued (`sesame admin user reset-password`):
    /// 20 Crockford base32 characters, dashes and spaces ignored. It stands alone; it is
    /// not combined with the other proofs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 20, max_length = 40))]
    pub reset_code: Option<String>,
    /// Server-assisted: the new password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, min_length = 8, max_length = 128))]
    pub new_password: Option<Zeroizing<String>>,
    /// Client-side: the new OPAQUE registration record…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_-]{256}$"))]
    pub registration_record: Option<Bytes>,
    /// …and the parameters it was stretched with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_stretching: Option<KeyStretching>,
}

impl std::fmt::Debug for RecoverFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let has = |o: bool| if o { "<redacted>" } else { "-" };
        f.debug_struct("RecoverFinish")
            .field("recovery_id", &self.recovery_id)
            .field("backup_code", &has(self.backup_code.is_some()))
            .field("email_code", &has(self.email_code.is_some()))
            .field("totp_code", &has(self.totp_code.is_some()))
            .field("answers", &has(self.answers.is_some()))
            .field("reset_code", &has(self.reset_code.is_some()))
            .field("new_password", &has(self.new_password.is_some()))
            .finish_non_exhaustive()
    }
}
