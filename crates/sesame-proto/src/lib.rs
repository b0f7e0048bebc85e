//! Sesame's protocol core: OPAQUE (RFC 9807) registration and login, the login confirmation,
//! the wire messages and the account policy, **sans-IO**.
//!
//! Nothing here touches a socket, a file, the clock or the operating system's randomness:
//! every function that needs randomness takes `impl RngCore + CryptoRng`, every function that
//! needs the time takes a [`Timestamp`]. The server and client crates drive these state
//! machines over HTTP, WebSocket and TCP; tests drive them with seeded RNGs and fixed clocks.
//!
//! The flow (docs/protocol.md has the full specification):
//!
//! ```text
//! client                                   server
//! start_login ── LoginStart{username,KE1} ──▶ start_login
//!             ◀─ LoginChallenge{id,KE2,ksf,pk} ─
//! finish      ── LoginFinish{id,KE3} ───────▶ ExpectLoginFinish::finish → PasswordVerified
//! open        ◀─ LoginConfirmation{sealed} ─── ConfirmationSealer::seal
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod b64;
pub mod client;
mod confirm;
pub mod device;
pub mod e2e;
pub mod error;
pub mod messages;
pub mod policy;
mod record;
pub mod server;
pub mod suite;
mod time;

pub use error::Error;
pub use record::CredentialRecord;
pub use server::keys_fingerprint as fingerprint;
pub use suite::{KeyStretching, KsfParams, KsfPolicy};
pub use time::Timestamp;
