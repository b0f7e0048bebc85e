//! Errors of the protocol core, grouped by who is at fault.

/// Everything that can go wrong in registration and login.
///
/// Authentication failures are deliberately one variant, [`Error::AuthenticationFailed`]: a
/// wrong password, an unknown user and a tampered KE3 look the same to the peer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The peer sent a field that does not decode (wrong length, bad base64url, not a valid
    /// group element). Names the field.
    #[error("invalid message: field `{0}` does not decode")]
    InvalidMessage(&'static str),
    /// The proof did not verify: wrong password, unknown user, or a tampered message.
    #[error("authentication failed")]
    AuthenticationFailed,
    /// The login id is not the one this login state was issued for.
    #[error("unknown login id")]
    UnknownLogin,
    /// The login state outlived its time to live.
    #[error("login expired")]
    LoginExpired,
    /// The key-stretching parameters break the policy (below the floor or above the ceiling).
    #[error("key-stretching parameters refused: {0}")]
    KsfRejected(&'static str),
    /// The server's static public key is not the one the client pinned.
    #[error("the server's public key does not match the pinned key")]
    ServerKeyMismatch,
    /// The login confirmation did not open: tampered, or not for this login.
    #[error("login confirmation does not verify")]
    ConfirmationInvalid,
    /// A stored value (server setup, credential record, login state) does not decode.
    #[error("stored value is corrupt: {0}")]
    Corrupt(&'static str),
    /// The local cryptography failed (Argon2 refused its parameters, or similar).
    #[error("internal error: {0}")]
    Internal(&'static str),
}

impl Error {
    /// The stable machine-readable code of this error, used on the wire.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidMessage(_) => "invalid_message",
            Error::AuthenticationFailed => "authentication_failed",
            Error::UnknownLogin => "unknown_login",
            Error::LoginExpired => "login_expired",
            Error::KsfRejected(_) => "key_stretching_rejected",
            Error::ServerKeyMismatch => "server_key_mismatch",
            Error::ConfirmationInvalid => "confirmation_invalid",
            Error::Corrupt(_) => "corrupt_state",
            Error::Internal(_) => "internal",
        }
    }
}
