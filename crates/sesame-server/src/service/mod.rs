//! The command layer: every operation Sesame offers, written once.
//!
//! HTTP, WebSocket and TCP are thin codecs over [`Sesame`]: they decode a request, call one
//! method here with a [`RequestContext`], and encode the answer or the [`ApiError`]. Login,
//! throttling, sessions and auditing therefore behave identically on every transport.
//!
//! One file per feature: `accounts.rs` (registration), `login.rs`, `sessions.rs`,
//! `protected.rs` (operations that need a fresh login), `recovery.rs`, `questions.rs`,
//! `devices.rs`, `passkeys.rs` and `passkey_login.rs` (WebAuthn), `keys.rs`, `email.rs`,
//! `admin.rs` (operator commands), `admin_api.rs` (the admin API), `audit.rs`, `throttle.rs`.
//! Second factors:
//! `totp.rs` (enrolment and codes), `backup_codes.rs`, and `second_factor.rs` (the login step
//! that trades an `mfa_token` ticket and a code for a session). Operations that change several
//! rows commit them in one transaction (`crate::store::writes`).

mod accounts;
mod admin;
mod admin_api;
mod audit;
mod backup_codes;
mod devices;
pub mod email;
mod email_change;
mod keys;
mod login;
mod mail;
mod passkey_login;
mod passkeys;
mod proof;
mod protected;
mod questions;
mod recovery;
mod reset_codes;
mod second_factor;
mod sessions;
mod stand_in;
mod throttle;
mod totp;

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::ephemeral::Ephemeral;
use crate::error::ApiError;
use crate::pool::HashPool;
use crate::secrets::ServerSecrets;
use crate::store::{Store, UserRecord};
use crate::tokens::TokenSigner;

pub use admin::UserSummary;
pub use admin_api::{Admin, AdminAction};
pub use devices::{DeviceList, DeviceView};
pub use keys::{IdentityUpload, PublishedIdentity, RegistrationKeys};
pub use mail::{MailError, Mailer, OutboxMailer};
pub use passkeys::{CEREMONY_TTL_SECS, MAX_PASSKEYS};
pub use protected::{Profile, ProfileUpdate};
pub use questions::{QuestionAnswer, CATALOG as SECURITY_QUESTION_CATALOG};
pub use recovery::{RecoverFinish, RecoverStart, RecoverStarted};
pub use reset_codes::{IssuedResetCode, RESET_CODE_DEFAULT_TTL, RESET_CODE_MAX_TTL};
pub use second_factor::{LoginOutcome, SecondFactorRequired, MFA_TTL_SECS};
pub use sessions::{AccessGrant, Authenticated, SessionView};
pub use throttle::ThrottleSettings;
pub use totp::TotpEnrolment;

pub use sesame_api::sessions::SessionIssued;

pub use crate::clock::{Clock, ManualClock, SystemClock};

/// Who is asking: recorded in sessions and the audit log, and used for per-address limits.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    /// The client's address, as the transport saw it.
    pub client_addr: Option<IpAddr>,
    /// The client's `User-Agent` (HTTP) or a transport label; truncated to 256 characters.
    pub user_agent: Option<String>,
}

impl RequestContext {
    /// A context for `addr` with the given user agent (truncated).
    pub fn new(client_addr: Option<IpAddr>, user_agent: Option<&str>) -> Self {
        RequestContext {
            client_addr,
            user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
        }
    }
}

/// Tunables of the command layer (the configuration file feeds them).
#[derive(Debug, Clone)]
pub struct Settings {
    /// Key-stretching parameters for new records.
    pub ksf: sesame_proto::KsfParams,
    /// Lifetime of a login id, seconds.
    pub login_ttl: u64,
    /// A session ends after this many seconds without use.
    pub session_idle: u64,
    /// A session ends this many seconds after login, used or not.
    pub session_absolute: u64,
    /// Throttling.
    pub throttle: ThrottleSettings,
    /// Issuer shown in authenticator apps.
    pub totp_issuer: String,
    /// How long a login or re-authentication counts as fresh for protected operations, seconds.
    pub reauth_window: u64,
    /// Reverse proxies whose `X-Forwarded-For` header names the client.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Message relay limits.
    pub relay: crate::relay::RelaySettings,
    /// Whether the listeners speak TLS ([`Sesame::served_over_tls`]).
    pub tls: bool,
    /// Whether the browser app's session cookie is `Secure` (named `__Host-sesame_session`):
    /// the server is reached over HTTPS, its own TLS or a proxy's (docs/web.md).
    pub secure_cookies: bool,
    /// The WebAuthn relying party passkeys are registered with and verified against.
    pub relying_party: crate::relying_party::RelyingParty,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ksf: sesame_proto::KsfParams::DEFAULT,
            login_ttl: sesame_proto::server::DEFAULT_LOGIN_TTL_SECS,
            session_idle: 7 * 24 * 3600,
            session_absolute: 30 * 24 * 3600,
            throttle: ThrottleSettings::default(),
            totp_issuer: "Sesame".into(),
            reauth_window: 300,
            trusted_proxies: Vec::new(),
            relay: crate::relay::RelaySettings::default(),
            tls: false,
            secure_cookies: false,
            relying_party: crate::relying_party::RelyingParty::development(),
        }
    }
}

/// How long `GET /readyz` waits for the database and for Redis.
pub const READY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// What [`Sesame::readiness`] found: `Ok`, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// The database.
    pub database: Result<(), String>,
    /// Redis; `None` when none is configured (single node).
    pub redis: Option<Result<(), String>>,
}

impl Readiness {
    /// Whether every configured dependency answered.
    pub fn ready(&self) -> bool {
        self.database.is_ok() && !matches!(self.redis, Some(Err(_)))
    }
}

/// A new account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The new user's id.
    pub user_id: Uuid,
    /// The canonical username.
    pub username: String,
    /// Single-use backup codes, shown once.
    pub backup_codes: Vec<String>,
}

/// The Sesame service. Cheap to clone; every transport holds one.
#[derive(Clone)]
pub struct Sesame {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    ephemeral: Arc<dyn Ephemeral>,
    secrets: ServerSecrets,
    /// Read in place of unknown accounts (timing-safe lookups).
    stand_in: stand_in::StandIn,
    mailer: Arc<dyn Mailer>,
    mail_in_flight: Arc<mail::MailInFlight>,
    signer: TokenSigner,
    pool: HashPool,
    clock: Arc<dyn Clock>,
    rng: crate::rng::Rng,
    settings: Settings,
    relay: crate::relay::Relay,
    /// Group commit of logins and relay writes, started on the first write.
    writer: std::sync::OnceLock<crate::store::GroupWriter>,
}

/// Everything [`Sesame::new`] needs.
pub struct Parts {
    /// Durable storage.
    pub store: Arc<dyn Store>,
    /// Short-lived state (the service seals every value before it reaches this store).
    pub ephemeral: Arc<dyn Ephemeral>,
    /// The opened server secrets.
    pub secrets: ServerSecrets,
    /// Outgoing mail.
    pub mailer: Arc<dyn Mailer>,
    /// Token issuer (`iss`).
    pub issuer: String,
    /// Token audience (`aud`).
    pub audience: String,
    /// Access token lifetime, seconds (capped at 900).
    pub access_ttl: u64,
    /// The Argon2 pool.
    pub pool: HashPool,
    /// The clock.
    pub clock: Arc<dyn Clock>,
    /// Randomness for tokens, ids and codes ([`crate::rng::Rng::os`] in production).
    pub rng: crate::rng::Rng,
    /// Tunables.
    pub settings: Settings,
}

impl Sesame {
    /// Assembles the service.
    pub fn new(parts: Parts) -> Sesame {
        Sesame::with_relay(parts, crate::relay::Relay::new())
    }

    /// Assembles the service around `relay` (a cluster node's: [`crate::relay::Relay::cluster`]).
    pub fn with_relay(parts: Parts, relay: crate::relay::Relay) -> Sesame {
        if !crate::jwt_crypto::install() {
            tracing::warn!(
                "another JWT crypto provider was chosen first: RS256 ID tokens are signed by \
                 the `rsa` crate, not in constant time"
            );
        }
        let signer = TokenSigner::new(
            &parts.secrets.jwt,
            &parts.issuer,
            &parts.audience,
            parts.access_ttl,
        );
        // Values reach the short-lived store (maybe a shared Redis) sealed, like identifying
        // fields in the database.
        let ephemeral: Arc<dyn Ephemeral> = Arc::new(crate::ephemeral::SealedEphemeral::new(
            parts.ephemeral,
            parts.secrets.fields.clone(),
        ));
        // From the OS, not `parts.rng`: a seeded test generator keeps its sequence.
        let stand_in = stand_in::StandIn::new(&parts.secrets, &crate::rng::Rng::os());
        Sesame {
            inner: Arc::new(Inner {
                store: parts.store,
                ephemeral,
                secrets: parts.secrets,
                stand_in,
                mailer: parts.mailer,
                mail_in_flight: Arc::default(),
                signer,
                pool: parts.pool,
                clock: parts.clock,
                rng: parts.rng,
                settings: parts.settings,
                relay,
                writer: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The tunables.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The message relay's live connections and doorbell.
    pub fn relay(&self) -> &crate::relay::Relay {
        &self.inner.relay
    }

    /// Proxies whose `X-Forwarded-For` is believed.
    pub fn trusted_proxies(&self) -> &[std::net::IpAddr] {
        &self.inner.settings.trusted_proxies
    }

    /// Whether this server's listeners speak TLS (`tls_cert`, `tls_self_signed` or
    /// `acme_domains`): browsers reach it over `https://`, so cookies it sets must carry
    /// `Secure`, and links it builds use `https://`. `false` behind a TLS-terminating proxy,
    /// which Sesame cannot see (set `issuer` to the public `https://` URL there).
    pub fn served_over_tls(&self) -> bool {
        self.inner.settings.tls
    }

    /// Seconds a login or re-authentication stays fresh for protected operations.
    pub fn reauth_window(&self) -> u64 {
        self.inner.settings.reauth_window
    }

    /// The durable store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// The group-commit writer (`store/group.rs`), started on first use.
    pub(crate) fn writer(&self) -> &crate::store::GroupWriter {
        self.inner.writer.get_or_init(|| {
            crate::store::GroupWriter::start(
                self.inner.store.clone(),
                self.inner.settings.relay.mailbox_max_messages,
            )
        })
    }

    /// The short-lived state store.
    pub fn ephemeral(&self) -> &Arc<dyn Ephemeral> {
        &self.inner.ephemeral
    }

    /// The Argon2 pool.
    pub fn pool(&self) -> &HashPool {
        &self.inner.pool
    }

    /// The JWKS document for `/.well-known/jwks.json`.
    pub fn jwks(&self) -> sesame_api::discovery::Jwks {
        self.inner.signer.jwks()
    }

    /// The server's OPAQUE public key and its fingerprint.
    pub fn server_identity(&self) -> ([u8; 32], String) {
        let keys = &self.inner.secrets.opaque;
        (keys.public_key(), keys.fingerprint())
    }

    /// Keyed indexes and field encryption (the identifying fields, sealed signing keys).
    pub(crate) fn fields(&self) -> &crate::secrets::FieldCrypto {
        &self.inner.secrets.fields
    }

    /// The X25519 secret key that opens sealed request envelopes ([`crate::envelope`]).
    pub fn envelope_key(&self) -> &crypto_box::SecretKey {
        &self.inner.secrets.envelope
    }

    /// Token issuer.
    pub fn issuer(&self) -> String {
        self.inner.signer.issuer().to_owned()
    }

    /// The service clock's current time (unix seconds).
    pub fn now(&self) -> u64 {
        self.inner.clock.now()
    }

    /// The service clock's current time (milliseconds since the Unix epoch): what every
    /// short-lived state's expiry and every limiter window is measured by.
    pub fn now_ms(&self) -> u64 {
        self.inner.clock.now_ms()
    }

    /// The service's random number generator.
    pub fn rng(&self) -> &crate::rng::Rng {
        &self.inner.rng
    }

    fn now_i64(&self) -> i64 {
        i64::try_from(self.now()).unwrap_or(i64::MAX)
    }

    /// The keyed index of a canonical username.
    fn username_index(&self, username: &str) -> Vec<u8> {
        self.inner.secrets.fields.index("username", username)
    }

    /// The plaintext username of a stored user (for answers and the admin tool).
    pub fn username_of(&self, user: &UserRecord) -> Result<String, ApiError> {
        self.inner
            .secrets
            .fields
            .open("username", user.id.as_bytes(), &user.username_sealed)
            .ok_or_else(|| {
                ApiError::internal(format!("username of user {} does not decrypt", user.id))
            })
    }

    /// Whether the database and Redis answer, each within [`READY_TIMEOUT`] (`GET /readyz`).
    pub async fn readiness(&self) -> Readiness {
        async fn answer<E: std::fmt::Display>(
            call: impl std::future::Future<Output = Result<(), E>>,
        ) -> Result<(), String> {
            match tokio::time::timeout(READY_TIMEOUT, call).await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("no answer within {READY_TIMEOUT:?}")),
            }
        }
        let (database, redis) = tokio::join!(
            answer(self.inner.store.ping()),
            answer(self.inner.ephemeral.ping())
        );
        Readiness {
            database,
            // Redis is configured exactly when the relay is a cluster node's.
            redis: self.relay().node_id().map(|_| redis),
        }
    }

    /// Deletes expired sessions and audit entries older than `audit_retention` seconds.
    pub async fn cleanup(&self, audit_retention: Option<u64>) -> Result<(u64, u64), ApiError> {
        let now = self.now_i64();
        let sessions = self.inner.store.delete_expired_sessions(now).await?;
        // Expired OpenID Connect tokens, and grants revoked or spent a day ago.
        if let Some(oidc) = self.inner.store.oidc() {
            oidc.delete_expired_oidc_tokens(now).await?;
        }
        let audit = match audit_retention {
            Some(keep) => {
                self.inner
                    .store
                    .delete_audit_before(now - i64::try_from(keep).unwrap_or(i64::MAX))
                    .await?
            }
            None => 0,
        };
        Ok((sessions, audit))
    }
}
