//! The one error type every transport renders: a typed code, a message, and when to retry.
//!
//! The code is an [`ErrorCode`] of the contract crate, whose one table gives its wire string
//! and HTTP status; HTTP renders it as `{"error": {"code": …, "message": …}}` with the status
//! (and `Retry-After` when set), WebSocket as an `error` frame, TCP as
//! `VERB|FAILURE|code|message` (`crate::http`, `crate::ws`, `crate::tcp`). Server faults
//! become `500 internal` with a message that says nothing internal; the cause is logged once,
//! where it happened.

use std::borrow::Cow;

use sesame_proto::policy::{PasswordError, UsernameError};

pub use sesame_api::error::{
    ConnectionError, CredentialError, ErrorCode, ErrorDetail, InputError, LimitError, ServerError,
};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// What went wrong (its wire string and HTTP status come from the contract's table).
    pub code: ErrorCode,
    /// Human-readable explanation.
    pub message: Cow<'static, str>,
    /// Seconds after which retrying makes sense (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with the given code and message.
    pub fn new(code: impl Into<ErrorCode>, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            code: code.into(),
            message: message.into(),
            retry_after: None,
        }
    }

    /// The HTTP status of the code.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The wire form: `{code, message, retry_after?}`.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            retry_after: self.retry_after,
            ..self.code.detail(self.message.clone())
        }
    }

    /// 401 `authentication_failed`: wrong password and unknown user alike.
    pub fn authentication_failed() -> Self {
        Self::new(
            CredentialError::AuthenticationFailed,
            "Authentication failed: wrong username or password.",
        )
    }

    /// 401 `unauthorized`: no valid access token.
    pub fn unauthorized() -> Self {
        Self::new(
            CredentialError::Unauthorized,
            "A valid access token is required (Authorization: Bearer …).",
        )
    }

    /// 429 `too_many_attempts` with `Retry-After`.
    pub fn too_many(retry_after: u64, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            retry_after: Some(retry_after.max(1)),
            ..Self::new(LimitError::TooManyAttempts, message)
        }
    }

    /// 503 `busy` with `Retry-After`: the password hashing pool is saturated.
    pub fn busy() -> Self {
        ApiError {
            retry_after: Some(1),
            ..Self::new(
                LimitError::Busy,
                "The server is busy hashing passwords; retry shortly.",
            )
        }
    }

    /// 503 `unavailable`: a backing service does not answer.
    pub fn unavailable(what: &'static str) -> Self {
        ApiError {
            retry_after: Some(5),
            ..Self::new(
                ServerError::Unavailable,
                format!("The {what} is unavailable; retry shortly."),
            )
        }
    }

    /// 500 `internal`, logging `cause` (never sent to the client).
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        Self::new(ServerError::Internal, "Internal server error.")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for ApiError {}

impl From<UsernameError> for ApiError {
    fn from(e: UsernameError) -> Self {
        ApiError::new(InputError::from(e), e.to_string())
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        ApiError::new(InputError::from(e), e.to_string())
    }
}

impl From<sesame_proto::Error> for ApiError {
    fn from(e: sesame_proto::Error) -> Self {
        use sesame_proto::Error as E;
        match e {
            E::AuthenticationFailed => ApiError::authentication_failed(),
            E::UnknownLogin => ApiError::new(
                InputError::UnknownLogin,
                "Unknown or already used login id; start the login again.",
            ),
            E::LoginExpired => ApiError::new(
                InputError::LoginExpired,
                "The login expired; start it again.",
            ),
            E::InvalidMessage(field) => ApiError::new(
                InputError::InvalidMessage,
                format!("Field `{field}` does not decode."),
            ),
            E::KsfRejected(why) => ApiError::new(
                InputError::KeyStretchingRejected,
                format!("Key-stretching parameters refused: {why}."),
            ),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<crate::ephemeral::EphemeralError> for ApiError {
    fn from(e: crate::ephemeral::EphemeralError) -> Self {
        tracing::error!(cause = %e, "short-lived state store failed");
        ApiError::unavailable("short-lived state store")
    }
}

impl From<crate::pool::PoolBusy> for ApiError {
    fn from(_: crate::pool::PoolBusy) -> Self {
        ApiError::busy()
    }
}
