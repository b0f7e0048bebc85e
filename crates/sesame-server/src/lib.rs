//! The Sesame server library.
//!
//! Holds everything `sesame serve` runs: storage, the command layer shared by the HTTP,
//! WebSocket and TCP codecs, sessions and tokens.
#![forbid(unsafe_code)]

pub mod ephemeral;
pub mod error;
pub mod pool;
pub mod relay;
pub mod secrets;
pub mod service;
pub mod store;
pub mod tokens;

pub use error::ApiError;
pub use service::{RequestContext, Sesame};
pub mod accept;
pub mod config;
pub mod envelope;
pub mod http;
pub mod listen;
pub mod metrics;
pub mod openapi;
pub mod server;
pub mod smtp;
pub mod tcp;
mod ws;
