//! The Sesame client library: talks to a Sesame server over HTTP and WebSocket.
//!
//! [`Client`] drives the sans-IO protocol core ([`sesame_proto::client`]) over the server's
//! API: client-side OPAQUE registration ([`Client::register`]), OPAQUE login over REST
//! ([`Client::login`]) or the WebSocket ([`Client::login_ws`]) with its second factor
//! ([`LoginOutcome`]), the server-assisted password routes, the session routes, and the
//! account routes ([`account`]: TOTP, backup codes, re-authentication, password change,
//! profile, security questions, recovery), the account's activity and the admin API
//! ([`admin`]). The password never leaves the process on the OPAQUE paths,
//! and the Argon2id key stretching runs on Tokio's blocking pool.
//!
//! [`profile::Profile`] keeps what a command-line client remembers between runs: the server
//! keys pinned on first use and the current login of each server.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use sesame_client::{profile::{Profile, StoredSession, unix_now}, Client, ClientPolicy, LoginOutcome};
//!
//! let profile = Profile::open()?;
//! let server = sesame_client::server_id("http://127.0.0.1:7878")?;
//! let policy = ClientPolicy {
//!     pinned_server_key: profile.pinned_key(&server)?,
//!     ..ClientPolicy::default()
//! };
//! let client = Client::new(&server, policy)?;
//! let login = match client.login("alice", "correct horse battery staple").await? {
//!     LoginOutcome::Session(login) => login,
//!     LoginOutcome::SecondFactor(mut pending) => pending.submit("123456").await?,
//! };
//! profile.trust_server(&server, &login.server_public_key)?; // pins on first use
//! profile.save_session(&StoredSession::from_issued(&server, &login.session, unix_now()))?;
//! let me = client.me(&login.session.access_token).await?;
//! println!("logged in as {}", me.username);
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod account;
pub mod admin;
mod answer;
pub mod api;
mod client;
mod error;
pub mod messaging;
pub mod profile;
pub mod tls;
mod ws;

pub use account::{
    Account, LoginOutcome, PasswordChanged, PasswordLogin, PendingLogin, QuestionAnswer,
    Reauthenticated, Recovered, RecoveryProof, RecoveryStarted, SecondFactorRequired,
    TotpEnrolment,
};
pub use api::{Me, Refreshed, Registered, ServerInfo, SessionInfo, SessionIssued};
pub use client::{
    parse_server_url, server_id, Client, Login, Registration, DEFAULT_TIMEOUT, USER_AGENT,
};
pub use error::{Error, Result};
/// URLs as this crate takes and returns them.
pub use reqwest::Url;
pub use sesame_proto::client::ClientPolicy;
pub use sesame_proto::fingerprint;
pub use sesame_proto::KsfPolicy;
pub use tls::TlsOptions;
