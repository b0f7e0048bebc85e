//! The key directory, the key backup and device keys (HTTP bodies of the messaging routes).
//!
//! The relay's own frames (`send`, `ack`, `accepted`, `message`, `error`) and the sealed
//! message format are in `sesame_proto::e2e`; [`RelayAck`] describes the `ack` frame with its
//! limits for the OpenAPI document.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use sesame_proto::e2e::MAX_ACK_IDS;

/// The relay's `ack` frame on `GET /ws` (a WebSocket text frame, not an HTTP body):
/// `{"type":"ack","id"}` for one delivered message, `{"type":"ack","ids":[…]}` for up to
/// [`MAX_ACK_IDS`] at once (the server deletes them in one store operation). Answered only
/// when refused: `too_many_acks` above the limit, `invalid_message` for a malformed id or no
/// id; nothing of a refused frame is acknowledged. The client and the server build and read
/// it as `sesame_proto::e2e::ClientFrame::Ack`; this type states the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RelayAck {
    /// Always `ack`.
    #[serde(rename = "type")]
    #[cfg_attr(feature = "openapi", schema(pattern = "^ack$"))]
    pub kind: String,
    /// One message id (1–64 characters of `A-Z a-z 0-9 - _`): the original form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{1,64}$"))]
    pub id: Option<String>,
    /// Many message ids, each like `id`; at most 512 (`MAX_ACK_IDS`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 512))]
    pub ids: Vec<String>,
}

/// The most bytes of a key backup (decoded).
pub const MAX_BACKUP_BYTES: usize = 4096;

/// `PUT /api/keys`: the caller's public identity.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct IdentityUpload {
    /// Ed25519 public key (32 bytes, base64url).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")
    )]
    pub signing_key: String,
    /// X25519 public key (32 bytes, base64url).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")
    )]
    pub encryption_key: String,
    /// Ed25519 signature over `b"sesame/v1/identity-encryption-key" || encryption_key`
    /// (64 bytes, base64url).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9_-]{85}[AQgw]$"))]
    pub encryption_key_signature: String,
}

/// `200` of `GET /api/keys/{username}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishedIdentity {
    /// The canonical username.
    pub username: String,
    /// The user's id.
    pub user_id: Uuid,
    /// Ed25519 public key (base64url).
    pub signing_key: String,
    /// X25519 public key (base64url).
    pub encryption_key: String,
    /// Signature of the encryption key by the signing key (base64url).
    pub encryption_key_signature: String,
    /// When the keys were last uploaded (Unix seconds).
    pub updated_at: i64,
}

/// `PUT /api/keys/backup` and `200` of `GET /api/keys/backup`: the encrypted key backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct KeyBackup {
    /// The backup, base64url without padding (opaque to the server; at most 4096 bytes).
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 2,
            max_length = 5462,
            pattern = r"^([A-Za-z0-9_-]{4})*([A-Za-z0-9_-]{2}[AEIMQUYcgkosw048]|[A-Za-z0-9_-][AQgw])?$"
        )
    )]
    pub blob: String,
}

/// `POST /api/devices`: register a device key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewDevice {
    /// A name for people: 1–64 printable characters.
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 1, max_length = 64, pattern = r"^[^\x00-\x1f\x7f-\x9f]+$")
    )]
    pub name: String,
    /// The Ed25519 public key (32 bytes, base64url).
    #[cfg_attr(
        feature = "openapi",
        schema(pattern = r"^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$")
    )]
    pub public_key: String,
}

/// `201` of `POST /api/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceCreated {
    /// The new device's id (what `device_key_id` names at login).
    pub id: String,
}

/// One registered device key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceView {
    /// The device id.
    pub id: String,
    /// The name its owner gave it.
    pub name: String,
    /// The Ed25519 public key (base64url).
    pub public_key: String,
    /// When it was registered (Unix seconds).
    pub created_at: i64,
}

/// `200` of `GET /api/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceList {
    /// The registered devices, by id.
    pub devices: Vec<DeviceView>,
    /// Whether logins must be signed by one of them.
    pub required: bool,
}

/// `PUT /api/2fa/device`: require (or stop requiring) a device key at login.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RequireDevice {
    /// Whether logins must be signed by a registered device key.
    pub required: bool,
}
