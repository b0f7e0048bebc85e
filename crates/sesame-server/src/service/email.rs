//! Email addresses and their one-time codes (seed 003).
//!
//! * An address given at registration is validated and normalised ([`EmailAddress`]), stored
//!   as a keyed index (`index("email", …)`, unique: a second account with it gets 409
//!   `email_taken`) plus a ciphertext bound to the user's row, and the account is created
//!   `pending`.
//! * A 6-digit code (uniform, from the service generator, [`crate::rng`]) is mailed to it
//!   through the configured [`Mailer`](super::Mailer) (SMTP, or the development outbox). Only a keyed hash of the code
//!   is kept, in the short-lived store, with its expiry time (10 minutes by the service clock)
//!   and a try counter: after 5 wrong codes it is burnt.
//! * `POST /api/verify-email {username, code}` activates the account
//!   ([`Sesame::verify_email`]); audited as `register.email_verified`.
//! * `POST /api/verify-email/resend {username}` mails a fresh code (the old one stops
//!   working) — at most one mail per 60 s and 5 per hour per account (the registration mail
//!   included; one [limiter](crate::limiter) rule, a fixed hour from the first mail). The answer is the same `202` whether the name exists, is pending, is
//!   limited or not: limits are applied silently, so the route tells nothing about accounts.
//!   Mail is handed over in the background for the same reason, and so that a slow SMTP
//!   server does not hold the request.
//!
//! Answers of `verify-email`: wrong code 400 `invalid_code`; no live code (never sent,
//! expired, burnt, or an unknown username) 400 `code_expired`; an account that is already
//! active 400 `already_verified`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_proto::policy::Username;
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::stand_in::STAND_IN_ID;
use super::{RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::limiter::{Backoff, Mode, Rule};
use crate::rng::Rng;
use crate::store::AccountStatus;

/// Seconds an emailed verification code stays valid.
pub const EMAIL_CODE_TTL_SECS: u64 = 600;
/// Wrong codes before a code is burnt.
pub const EMAIL_CODE_TRIES: u32 = 5;
/// At most one verification mail per account per this many seconds.
pub const RESEND_GAP_SECS: u64 = 60;
/// At most this many verification mails per account per hour.
pub const RESEND_PER_HOUR: u64 = 5;
const HOUR: u64 = 3600;
/// The longest address accepted (RFC 5321's path limit less the brackets).
pub const MAX_EMAIL_LEN: usize = 254;

/// A validated email address: at most 254 characters, exactly one `@`, non-empty local part
/// and domain, no whitespace or control characters, a domain with a dot (or `localhost`),
/// acceptable to the mail library. Nothing is trimmed (a stray space or newline is refused,
/// not guessed away). The domain is lowercased; the local part is kept as given (it may be
/// case-sensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Validates and normalises `raw`; 400 `email_invalid` if it is not an address.
    pub fn parse(raw: &str) -> Result<EmailAddress, ApiError> {
        let text = raw;
        if text.is_empty() {
            return Err(email_invalid("The email address is empty."));
        }
        if text.chars().count() > MAX_EMAIL_LEN {
            return Err(email_invalid(
                "The email address is longer than 254 characters.",
            ));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(email_invalid(
                "The email address contains spaces or control characters.",
            ));
        }
        let mut parts = text.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return Err(email_invalid("An email address has exactly one @."));
        };
        if local.is_empty() || domain.is_empty() {
            return Err(email_invalid(
                "An email address needs a name before and a domain after the @.",
            ));
        }
        let domain = domain.to_lowercase();
        if !(domain.contains('.') || domain == "localhost")
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(email_invalid("The email domain is not a domain name."));
        }
        let address = format!("{local}@{domain}");
        // Whatever is accepted here must also be deliverable.
        if address.parse::<lettre::Address>().is_err() {
            return Err(email_invalid("That is not a deliverable email address."));
        }
        Ok(EmailAddress(address))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn email_invalid(message: &'static str) -> ApiError {
    ApiError::new(InputError::EmailInvalid, message)
}

/// 409 `email_taken`.
pub(crate) fn email_taken() -> ApiError {
    ApiError::new(
        InputError::EmailTaken,
        "That email address belongs to another account.",
    )
}

fn invalid_code() -> ApiError {
    ApiError::new(
        InputError::VerificationCodeInvalid,
        "That code is not the one we sent.",
    )
}

fn code_expired() -> ApiError {
    ApiError::new(
        InputError::CodeExpired,
        "No valid code: it expired, was tried too often, or none was sent. Ask for a new one \
         (POST /api/verify-email/resend).",
    )
}

fn already_verified() -> ApiError {
    ApiError::new(
        InputError::AlreadyVerified,
        "This account is already active.",
    )
}

/// A uniformly random 6-digit code (rejection sampling: no modulo bias).
pub(crate) fn new_code(rng: &Rng) -> String {
    const LIMIT: u32 = u32::MAX - (u32::MAX % 1_000_000);
    loop {
        let n = rng.next_u32();
        if n < LIMIT {
            return format!("{:06}", n % 1_000_000);
        }
    }
}

/// What the short-lived store keeps about a pending code.
#[derive(Serialize, Deserialize)]
struct PendingCode {
    /// Keyed hash of the user id and the code.
    hash: Vec<u8>,
    /// Service-clock time after which the code is refused.
    expires_at: u64,
    /// Wrong codes so far.
    tries: u32,
}

fn code_key(user: Uuid) -> String {
    format!("email:code:{user}")
}

/// The limiter key of an account's verification mails.
fn mail_key(user: Uuid) -> String {
    format!("email:sent:{user}")
}

/// [`RESEND_PER_HOUR`] mails per hour (a fixed window from the first), each closing a
/// [`RESEND_GAP_SECS`] gate.
fn mail_rule() -> Rule {
    Rule {
        backoff: Some(Backoff {
            free: 0,
            first: Duration::from_secs(RESEND_GAP_SECS),
            doubling: false,
            max: Duration::from_secs(RESEND_GAP_SECS),
        }),
        ..Rule::fixed(RESEND_PER_HOUR, Duration::from_secs(HOUR))
    }
}

impl Sesame {
    /// Where outgoing mail goes (the start-up line `sesame: mail: …`).
    pub fn mail_description(&self) -> String {
        self.inner.mailer.describe()
    }

    /// The keyed index and the row-bound ciphertext of `email` for the user `id`.
    pub(crate) fn seal_email(&self, id: Uuid, email: &EmailAddress) -> (Vec<u8>, Vec<u8>) {
        let fields = &self.inner.secrets.fields;
        (
            fields.index("email", email.as_str()),
            fields.seal("email", id.as_bytes(), email.as_str()),
        )
    }

    fn email_code_digest(&self, user: Uuid, code: &str) -> Vec<u8> {
        self.inner
            .secrets
            .fields
            .index("email_verify", &format!("{user}:{code}"))
    }

    /// Takes the account's mail slot: `false` if a verification mail went out less than
    /// [`RESEND_GAP_SECS`] ago or [`RESEND_PER_HOUR`] already went out this hour (one
    /// limiter rule, service clock).
    async fn claim_mail_slot(&self, user: Uuid) -> Result<bool, ApiError> {
        let v = self
            .inner
            .ephemeral
            .hit(&mail_key(user), &mail_rule(), self.now_ms(), Mode::Check)
            .await?;
        Ok(v.allowed)
    }

    /// Mails a fresh verification code to `email` (replacing any earlier one) unless the
    /// account's mail limits say no; `true` if a mail was handed to the mailer.
    pub(crate) async fn send_verification_code(
        &self,
        user: Uuid,
        username: &str,
        email: &str,
    ) -> Result<bool, ApiError> {
        if !self.claim_mail_slot(user).await? {
            return Ok(false);
        }
        self.send_verification_code_in_slot(user, username, email)
            .await
    }

    /// [`Sesame::send_verification_code`] once the mail slot is taken.
    async fn send_verification_code_in_slot(
        &self,
        user: Uuid,
        username: &str,
        email: &str,
    ) -> Result<bool, ApiError> {
        let code = new_code(self.rng());
        let state = PendingCode {
            hash: self.email_code_digest(user, &code),
            expires_at: self.now().saturating_add(EMAIL_CODE_TTL_SECS),
            tries: 0,
        };
        self.inner
            .ephemeral
            .put(
                &code_key(user),
                &serde_json::to_vec(&state).map_err(ApiError::internal)?,
                self.now_ms(),
                Duration::from_secs(EMAIL_CODE_TTL_SECS),
            )
            .await?;
        let body = format!(
            "Welcome to Sesame, {username}.\n\nYour verification code: {code}\n\nIt expires in \
             10 minutes. Enter it to activate your account.\nIf you did not register, ignore \
             this message.\n"
        );
        self.send_mail_in_background(
            email.to_owned(),
            "Your Sesame verification code",
            body,
            "verification",
        );
        Ok(true)
    }

    /// `POST /api/verify-email`: checks the mailed code and activates the account.
    pub async fn verify_email(
        &self,
        username: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<AccountStatus, ApiError> {
        self.throttle_address(ctx).await?;
        let username = Username::parse(username)?;
        let Some(user) = self
            .inner
            .store
            .user_by_index(&self.username_index(username.as_str()))
            .await?
        else {
            return Err(code_expired());
        };
        match user.status {
            AccountStatus::Active => return Err(already_verified()),
            AccountStatus::Banned => return Err(code_expired()),
            AccountStatus::Pending => {}
        }
        let eph = &self.inner.ephemeral;
        let key = code_key(user.id);
        // Taken, not read: concurrent guesses cannot share one try.
        let Some(bytes) = eph.take(&key, self.now_ms()).await? else {
            return Err(code_expired());
        };
        let mut state: PendingCode = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
        let now = self.now();
        if now >= state.expires_at {
            return Err(code_expired());
        }
        let digest = self.email_code_digest(user.id, code.trim());
        if !bool::from(digest.ct_eq(&state.hash)) {
            state.tries += 1;
            if state.tries < EMAIL_CODE_TRIES {
                // `set_nx`: a code resent meanwhile wins over this older one.
                let left = Duration::from_secs(state.expires_at - now);
                let value = serde_json::to_vec(&state).map_err(ApiError::internal)?;
                eph.set_nx(&key, &value, self.now_ms(), left).await?;
            }
            let reason = format!("wrong_code tries={}", state.tries);
            self.audit(
                "register.email_code_failure",
                Some(user.id),
                Some(reason),
                ctx,
            )
            .await;
            return Err(invalid_code());
        }
        self.inner
            .store
            .set_user_status(user.id, AccountStatus::Active, self.now_i64())
            .await?;
        eph.delete(&mail_key(user.id)).await?;
        self.audit("register.email_verified", Some(user.id), None, ctx)
            .await;
        Ok(AccountStatus::Active)
    }

    /// `POST /api/verify-email/resend`: mails a fresh code if the account is pending and its
    /// limits allow. Says nothing either way (see the module documentation). Unknown names,
    /// active or banned accounts and accounts without an address do the same work as a
    /// pending account whose mail slot is taken: one user lookup, one address opened (the
    /// stand-in's) and one mail-limiter hit (on the stand-in's id).
    pub async fn resend_verification(
        &self,
        username: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.throttle_address(ctx).await?;
        let username = Username::parse(username)?;
        let user = self
            .inner
            .store
            .user_by_index(&self.username_index(username.as_str()))
            .await?;
        let pending = user
            .filter(|u| u.status == AccountStatus::Pending)
            .and_then(|u| u.email_sealed.clone().map(|sealed| (u.id, sealed)));
        let (id, sealed) = match &pending {
            Some((id, sealed)) => (*id, sealed.as_slice()),
            None => (STAND_IN_ID, self.inner.stand_in.email.as_slice()),
        };
        let email = self
            .inner
            .secrets
            .fields
            .open("email", id.as_bytes(), sealed);
        let slot = self.claim_mail_slot(id).await?;
        let (Some(email), true, true) = (email, slot, pending.is_some()) else {
            return Ok(());
        };
        if self
            .send_verification_code_in_slot(id, username.as_str(), &email)
            .await?
        {
            self.audit("register.email_code_resent", Some(id), None, ctx)
                .await;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
