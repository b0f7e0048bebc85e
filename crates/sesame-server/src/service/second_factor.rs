//! The login step that asks for a second factor after the password proof: the `mfa_token`
//! ticket.
//!
//! When an account has TOTP, a verified password does not create a session. It creates a
//! short-lived second-factor ticket (`mfa_token`); the session is created only from a
//! [`SecondFactorVerified`] proof, after a valid TOTP code (`totp.rs`) or backup code
//! (`backup_codes.rs`), or a passkey's assertion (`second_factor/passkey.rs`). Wrong codes
//! and refused assertions count toward the account's throttle like wrong passwords.
//!
//! An account with a passkey always gets the ticket; one that requires a phishing-resistant
//! factor accepts no TOTP code on it (403 `phishing_resistant_required`): only a passkey, or
//! a backup code, which stays the way back in when every passkey is lost.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_api::sessions::AuthMethod;
use sesame_proto::server::AuthMethod as PasswordMethod;
use uuid::Uuid;

use super::{RequestContext, Sesame, SessionIssued};
use crate::error::{ApiError, CredentialError};

mod passkey;

pub use sesame_api::auth::SecondFactorRequired;

/// How long a second-factor ticket lives, seconds.
pub const MFA_TTL_SECS: u64 = 300;
/// Wrong codes one ticket accepts before it is burnt.
const MFA_MAX_TRIES: u32 = 5;

/// The outcome of a verified password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// No second factor needed: the session.
    Session(SessionIssued),
    /// A second factor is needed first.
    SecondFactor(SecondFactorRequired),
}

impl LoginOutcome {
    /// The JSON the transports send (and seal into the OPAQUE confirmation).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            LoginOutcome::Session(s) => serde_json::to_value(s).unwrap_or_default(),
            LoginOutcome::SecondFactor(m) => serde_json::to_value(m).unwrap_or_default(),
        }
    }
}

/// The state behind an `mfa_token`.
#[derive(Debug, Serialize, Deserialize)]
struct Ticket {
    user_id: Uuid,
    username: String,
    methods: Vec<String>,
    tries: u32,
}

/// Proof that a second factor was verified for a ticket. Only this module makes one (its
/// fields are private); a session is made from it through `LoginComplete`.
#[derive(Debug)]
pub(crate) struct SecondFactorVerified {
    user_id: Uuid,
    username: String,
    password: PasswordMethod,
    factor: AuthMethod,
}

impl SecondFactorVerified {
    /// The account.
    pub(crate) fn user_id(&self) -> Uuid {
        self.user_id
    }

    /// The canonical username.
    pub(crate) fn username(&self) -> &str {
        &self.username
    }

    /// How the password was proven before the second factor.
    pub(crate) fn password(&self) -> PasswordMethod {
        self.password
    }

    /// The second factor, as an RFC 8176 `amr` value (`otp` for TOTP and backup codes).
    pub(crate) fn factor(&self) -> AuthMethod {
        self.factor
    }
}

/// Witness that the account has no second factor: only [`Sesame::second_factor_ticket`]
/// makes one, and a password-only login needs it.
#[derive(Debug)]
pub(crate) struct NoSecondFactor(());

/// What follows a verified password.
pub(crate) enum SecondStep {
    /// The account has a second factor: the ticket to present with the code.
    Required(SecondFactorRequired),
    /// The account has none.
    NotNeeded(NoSecondFactor),
}

pub(super) fn invalid_code() -> ApiError {
    ApiError::new(
        CredentialError::InvalidCode,
        "The code is wrong, expired or already used.",
    )
}

fn ticket_key(token: &str) -> String {
    format!("mfa:{token}")
}

impl Sesame {
    /// After a verified password: asks for a second factor when the account has one.
    pub(crate) async fn second_factor_ticket(
        &self,
        user: Uuid,
        username: &str,
        methods: &[String],
    ) -> Result<SecondStep, ApiError> {
        let totp = self.has_totp(user).await?;
        let passkeys = !self.inner.store.passkeys_of(user).await?.is_empty();
        if !totp && !passkeys {
            return Ok(SecondStep::NotNeeded(NoSecondFactor(())));
        }
        let strict = self.phishing_resistant_required(user).await?;
        let mut accepted: Vec<String> = Vec::with_capacity(3);
        if passkeys {
            accepted.push("passkey".into());
        }
        if totp && !strict {
            accepted.push("totp".into());
        }
        accepted.push("backup_code".into());
        let mut raw = [0u8; 32];
        self.rng().fill(&mut raw);
        let token = format!("mfa_{}", sesame_proto::b64::encode(raw));
        let ticket = Ticket {
            user_id: user,
            username: username.to_owned(),
            methods: methods.to_vec(),
            tries: 0,
        };
        let bytes = serde_json::to_vec(&ticket).map_err(ApiError::internal)?;
        self.inner
            .ephemeral
            .put(
                &ticket_key(&token),
                &bytes,
                self.now_ms(),
                Duration::from_secs(MFA_TTL_SECS),
            )
            .await?;
        Ok(SecondStep::Required(SecondFactorRequired {
            second_factor_required: true,
            mfa_token: token,
            methods: accepted,
            expires_in: MFA_TTL_SECS,
        }))
    }

    /// Drops a second-factor ticket (the client reported the server failed to authenticate).
    pub(crate) async fn burn_ticket(&self, token: &str) -> Result<(), ApiError> {
        self.inner.ephemeral.delete(&ticket_key(token)).await?;
        Ok(())
    }

    /// Verifies the second factor for `mfa_token` and creates the session.
    pub async fn login_second_factor(
        &self,
        mfa_token: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<SessionIssued, ApiError> {
        let key = ticket_key(mfa_token);
        let expired = || {
            ApiError::new(
                CredentialError::MfaExpired,
                "The second-factor step expired; log in again.",
            )
        };
        // Take the ticket so two parallel attempts cannot both use it; put it back on a
        // wrong code while tries remain. The ticket itself passed the account's throttle
        // gate at the password step, so the code is not gated again (a delay longer than the
        // ticket would lock the user out); a wrong code counts as a failed attempt instead.
        let bytes = self
            .inner
            .ephemeral
            .take(&key, self.now_ms())
            .await?
            .ok_or_else(expired)?;
        let ticket: Ticket = serde_json::from_slice(&bytes).map_err(|_| expired())?;
        let code = code.trim();
        if super::totp::is_totp_code(code)
            && self.phishing_resistant_required(ticket.user_id).await?
        {
            // Not a guess at anything: the ticket goes back untouched.
            self.put_ticket(&key, &ticket).await?;
            return Err(ApiError::new(
                CredentialError::PhishingResistantRequired,
                "This account signs in with a passkey (or a backup code), not an authenticator code.",
            ));
        }
        let verified = self
            .verify_totp(ticket.user_id, &ticket.username, code)
            .await?
            || self.consume_backup_code(ticket.user_id, code).await?;
        if !verified {
            self.ticket_failure(&key, ticket, "second_factor", ctx)
                .await?;
            return Err(invalid_code());
        }
        self.complete_ticket(ticket, AuthMethod::Otp, ctx).await
    }

    /// Puts a ticket back under `key` (after a refused attempt that leaves it usable).
    async fn put_ticket(&self, key: &str, ticket: &Ticket) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec(ticket).map_err(ApiError::internal)?;
        self.inner
            .ephemeral
            .put(
                key,
                &bytes,
                self.now_ms(),
                Duration::from_secs(MFA_TTL_SECS),
            )
            .await?;
        Ok(())
    }

    /// A wrong code or a refused passkey on a ticket: counts as a failed attempt, is audited,
    /// and burns the ticket after [`MFA_MAX_TRIES`].
    async fn ticket_failure(
        &self,
        key: &str,
        mut ticket: Ticket,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let index = self.username_index(&ticket.username);
        self.throttle_failure(&index).await?;
        ticket.tries += 1;
        self.audit(
            "login.failure",
            Some(ticket.user_id),
            Some(reason.into()),
            ctx,
        )
        .await;
        if ticket.tries < MFA_MAX_TRIES {
            self.put_ticket(key, &ticket).await?;
        }
        Ok(())
    }

    /// A ticket whose second factor (`factor`) checked out: the session.
    async fn complete_ticket(
        &self,
        ticket: Ticket,
        factor: AuthMethod,
        ctx: &RequestContext,
    ) -> Result<SessionIssued, ApiError> {
        let index = self.username_index(&ticket.username);
        let password = match ticket.methods.first().map(String::as_str) {
            Some("opaque") => PasswordMethod::Opaque,
            _ => PasswordMethod::Password,
        };
        let proof = SecondFactorVerified {
            user_id: ticket.user_id,
            username: ticket.username,
            password,
            factor,
        };
        self.throttle_reset(&index).await?;
        self.session_after_second_factor(proof, ctx).await
    }
}
