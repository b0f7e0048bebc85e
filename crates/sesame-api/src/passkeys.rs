//! Passkeys (WebAuthn): registering them, listing, renaming and removing them, the
//! "phishing-resistant factor required" setting, and signing in with one — as the second
//! factor after a password, or alone with a discoverable passkey.
//!
//! The WebAuthn objects themselves (the options a browser passes to
//! `navigator.credentials.create`/`get`, and the credential it answers) are carried as JSON
//! values in the standard WebAuthn JSON form: binary fields are base64url without padding,
//! as in `PublicKeyCredential.toJSON()`. docs/api.md §10.4 is the prose reference.

use serde::{Deserialize, Serialize};

/// Longest passkey name, characters.
pub const MAX_PASSKEY_NAME_CHARS: usize = 64;

/// `200` of `POST /api/passkeys/register/start`, `POST /api/login/passkey/start` and
/// `POST /api/login/passkey/discoverable/start`: one WebAuthn ceremony.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyCeremony {
    /// Names the ceremony's server-side state; sent back with the browser's answer. Single
    /// use.
    pub ceremony_id: String,
    /// The WebAuthn options, as `{"publicKey": {…}}` (and `"mediation": "conditional"` for
    /// the discoverable sign-in): `PublicKeyCredentialCreationOptions` for a registration,
    /// `PublicKeyCredentialRequestOptions` for a sign-in, binary fields in base64url.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub options: serde_json::Value,
    /// Seconds the ceremony stays valid.
    pub expires_in: u64,
}

/// `POST /api/passkeys/register/finish`: the authenticator's answer to a registration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasskeyRegisterFinish {
    /// From the start answer.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub ceremony_id: String,
    /// A name for the passkey, 1–64 printable characters ("Laptop", "Phone").
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
    /// The `PublicKeyCredential` from `navigator.credentials.create`, in WebAuthn JSON form
    /// (`id`, `rawId`, `type`, `response.attestationObject`, `response.clientDataJSON`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}

/// One registered passkey.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyView {
    /// The passkey's id in this API (not the WebAuthn credential id).
    pub id: String,
    /// The name its owner gave it.
    pub name: String,
    /// Registered (unix seconds).
    pub created_at: i64,
    /// Last used to sign in (unix seconds).
    pub last_used_at: Option<i64>,
    /// Whether the authenticator may sync it to other devices (a synced passkey).
    pub backup_eligible: bool,
    /// Whether it is currently backed up (synced).
    pub backed_up: bool,
}

/// `200` of `GET /api/passkeys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasskeyList {
    /// The caller's passkeys, oldest first.
    pub passkeys: Vec<PasskeyView>,
    /// Whether the account accepts only a phishing-resistant second factor (a passkey; backup
    /// codes still recover it).
    pub phishing_resistant_required: bool,
}

/// `PUT /api/passkeys/{id}`: a new name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasskeyRename {
    /// 1–64 printable characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub name: String,
}

/// `PUT /api/2fa/phishing-resistant`: require (or stop requiring) a passkey as the second
/// factor.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PhishingResistantSetting {
    /// `true`: authenticator (TOTP) codes no longer complete a sign-in; a passkey (or a backup
    /// code) does.
    pub required: bool,
}

/// `POST /api/login/passkey/start`: a passkey as the second factor of a password sign-in.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasskeySecondFactorStart {
    /// The ticket from the password step.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub mfa_token: String,
}

impl std::fmt::Debug for PasskeySecondFactorStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeySecondFactorStart")
            .field("mfa_token", &"<redacted>")
            .finish()
    }
}

/// `POST /api/login/passkey/finish`: the authenticator's assertion for the second factor.
#[derive(Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasskeySecondFactorFinish {
    /// The ticket from the password step.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256))]
    pub mfa_token: String,
    /// From the start answer.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, in WebAuthn JSON form
    /// (`response.authenticatorData`, `response.clientDataJSON`, `response.signature`,
    /// `response.userHandle`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}

impl std::fmt::Debug for PasskeySecondFactorFinish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasskeySecondFactorFinish")
            .field("mfa_token", &"<redacted>")
            .field("ceremony_id", &self.ceremony_id)
            .finish()
    }
}

/// `POST /api/login/passkey/discoverable/finish`: a sign-in with a passkey alone.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PasskeySignIn {
    /// From the start answer.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 128))]
    pub ceremony_id: String,
    /// The `PublicKeyCredential` from `navigator.credentials.get`, in WebAuthn JSON form; its
    /// `response.userHandle` names the account.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub credential: serde_json::Value,
}
