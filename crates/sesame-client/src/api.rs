//! The JSON bodies of the server's API that are not protocol messages: the types of the
//! contract crate `sesame-api`, the same the server builds its answers from.
//!
//! Unknown fields are ignored when deserialising answers, so a newer server that adds fields
//! still works with this client. Secrets (tokens) are redacted from `Debug` output.

pub use sesame_api::account::Me;
pub use sesame_api::auth::{AccountStatus, Registered};
pub use sesame_api::discovery::ServerInfo;
pub use sesame_api::sessions::{
    AccessGrant as Refreshed, AuthMethod, SessionIssued, SessionList, SessionView as SessionInfo,
};
pub use sesame_api::{
    ConnectionError, CredentialError, ErrorBody, ErrorCode, ErrorDetail, InputError, LimitError,
    ServerError,
};

#[cfg(test)]
mod tests;
