//! The Sesame server library.
//!
//! Holds everything `sesame serve` runs: storage, the command layer shared by the HTTP,
//! WebSocket and TCP codecs, sessions and tokens.
#![forbid(unsafe_code)]

pub mod clock;
pub mod ephemeral;
pub mod error;
pub mod limiter;
pub mod pool;
pub mod relay;
pub mod relying_party;
pub mod rng;
pub mod secrets;
pub mod service;
pub mod store;
pub mod tokens;

pub use error::ApiError;
pub use service::{RequestContext, Sesame};
// Connection timers (accept back-off, header, idle and body timeouts) measure the transport
// with the monotonic clock; no expiry of the protocol reads it.
#[allow(clippy::disallowed_methods)]
pub mod accept;
pub mod config;
pub mod envelope;
pub mod http;
pub mod jwt_crypto;
#[allow(clippy::disallowed_methods)] // connection timers, as for `accept`
pub mod listen;
pub mod metrics;
pub mod oidc;
pub mod openapi;
pub mod server;
pub mod smtp;
pub mod tcp;
pub mod tls;
pub mod web;
mod ws;
