//! Wire messages of registration and login.
//!
//! Every message is a JSON object; binary fields are base64url without padding of the
//! RFC 9807 serialization (see docs/protocol.md for sizes). Unknown fields are refused so a
//! typo in a client surfaces at once.

use serde::{Deserialize, Serialize};

use crate::b64::Bytes;
use crate::suite::KeyStretching;

/// Client → server: begin a client-side registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistrationStart {
    /// The username as typed; the server canonicalises it.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
    /// OPAQUE `RegistrationRequest` (32 bytes).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$"))]
    pub registration_request: Bytes,
}

/// Server → client: the OPRF evaluation and the parameters to stretch with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistrationChallenge {
    /// OPAQUE `RegistrationResponse` (64 bytes: evaluated element, server public key).
    pub registration_response: Bytes,
    /// The key-stretching parameters the server asks for.
    pub key_stretching: KeyStretching,
    /// The server's static public key (32 bytes), for pinning.
    pub server_public_key: Bytes,
}

/// Client → server: the finished credential record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistrationFinish {
    /// The username, as in [`RegistrationStart`].
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
    /// OPAQUE `RegistrationRecord` (192 bytes).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]{256}$"))]
    pub registration_record: Bytes,
    /// The parameters the client actually stretched with.
    pub key_stretching: KeyStretching,
}

/// Client → server, login step 1: the username and KE1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginStart {
    /// The username as typed; the server canonicalises it.
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 3,
            max_length = 32,
            pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
        )
    )]
    pub username: String,
    /// OPAQUE KE1 (96 bytes: blinded element, client nonce, client ephemeral key share).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]{128}$"))]
    pub ke1: Bytes,
}

/// Server → client, login step 2: the challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginChallenge {
    /// Single-use id of this login (16 random bytes, base64url: 22 characters).
    pub login_id: String,
    /// OPAQUE KE2 (320 bytes: evaluated element, masking nonce, masked credential response,
    /// server nonce, server ephemeral key share, server MAC).
    pub ke2: Bytes,
    /// The key-stretching parameters of the record.
    pub key_stretching: KeyStretching,
    /// The server's static public key (32 bytes).
    pub server_public_key: Bytes,
    /// Seconds until the login id expires.
    pub expires_in: u64,
}

/// Client → server, login step 3: the client's proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginFinish {
    /// The login id from the challenge.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{21}[AQgw]$"))]
    pub login_id: String,
    /// OPAQUE KE3 (64 bytes: the client MAC).
    #[cfg_attr(feature = "openapi", schema(value_type = String, pattern = r"^[A-Za-z0-9_-]{85}[AQgw]$"))]
    pub ke3: Bytes,
    /// The id of the registered device key that signed this login (only when the account
    /// requires a device key; see [`crate::device`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key_id: Option<String>,
    /// Ed25519 signature by that device key over
    /// [`device_login_bytes`](crate::device::device_login_bytes)`(login_id, ke2)` (64 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, pattern = r"^[A-Za-z0-9_-]{85}[AQgw]$"))]
    pub device_signature: Option<Bytes>,
}

/// Server → client, login step 4: the confirmation sealed under the session key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginConfirmation {
    /// The login id from the challenge.
    pub login_id: String,
    /// 12-byte ChaCha20-Poly1305 nonce followed by the ciphertext and 16-byte tag.
    pub sealed: Bytes,
}

/// Client → server, login step 5 (connection-oriented transports): the client's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LoginAck {
    /// The login id from the challenge.
    pub login_id: String,
    /// Whether the client accepted the confirmation.
    pub status: AckStatus,
    /// Why not, when `status` is `failed` (free text, at most 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The client's verdict on the server's confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AckStatus {
    /// The confirmation opened and the client accepts the session.
    Success,
    /// The confirmation did not open: the client does not trust this server.
    Failed,
}
