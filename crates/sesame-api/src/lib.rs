//! Sesame's wire contract, defined once.
//!
//! Every body that crosses the network — HTTP requests and answers, the WebSocket login's
//! frames, the fields of the TCP verbs — is a type in this crate, and every error code is a
//! variant of [`ErrorCode`] with its HTTP status in one table. The server builds its answers
//! from these types, the client library parses them with the same types, and the server's
//! `/openapi.json` is generated from them (feature `openapi`), with the limits the server
//! enforces written into the schemas.
//!
//! The cryptographic protocol messages (OPAQUE registration and login, the relay's sealed
//! messages) live in `sesame-proto`, which stays free of any transport; this crate adds the
//! transport-level bodies around them. docs/api.md is the prose reference.

#![forbid(unsafe_code)]

pub mod account;
pub mod admin;
pub mod auth;
pub mod discovery;
pub mod email;
pub mod error;
pub mod login_socket;
pub mod messaging;
pub mod oauth;
pub mod passkeys;
pub mod routes;
pub mod sessions;
pub mod web;

pub use error::{
    ConnectionError, CredentialError, ErrorBody, ErrorCode, ErrorDetail, InputError, LimitError,
    ServerError,
};

/// The largest request body any route accepts, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
