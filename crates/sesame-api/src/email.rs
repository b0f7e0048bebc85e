//! The caller's email address: changed only through a code mailed to the new address
//! (`POST /api/me/email`, then `POST /api/me/email/verify`), removed with
//! `DELETE /api/me/email`. Both changes need a fresh authentication.

use serde::{Deserialize, Serialize};

/// `POST /api/me/email`: the address to change to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EmailChange {
    /// The new address (at most 254 characters; nothing is trimmed).
    #[cfg_attr(
        feature = "openapi",
        schema(min_length = 3, max_length = 254, format = "email")
    )]
    pub email: String,
}

/// `202` of `POST /api/me/email`: a code is on its way to the new address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailChangeStarted {
    /// Human message.
    pub message: String,
    /// Seconds the code stays valid.
    pub expires_in: u64,
}

/// `POST /api/me/email/verify`: the code mailed to the new address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EmailChangeCode {
    /// The 6-digit code from the mail.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub code: String,
}

/// `200` of `POST /api/me/email/verify` and `DELETE /api/me/email`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailChanged {
    /// Human message.
    pub message: String,
    /// The account's address now (`null`: none).
    pub email: Option<String>,
}
