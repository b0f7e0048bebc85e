//! Operator-issued password resets and accounts (`sesame admin user reset-password`,
//! `sesame admin user create`).
//!
//! The operator never chooses, sees or sends a password. They get a **one-time reset code**
//! (20 Crockford base32 characters, 100 bits, shown once as `xxxxx-xxxxx-xxxxx-xxxxx`) and
//! hand it to the person, who redeems it with `sesame recover NAME --reset-code CODE` (or
//! `reset_code` in `POST /api/recover/finish`), choosing the new password on their own
//! device. Only a keyed hash of the code is stored, with its expiry; issuing a new code
//! replaces the old one; a successful recovery consumes it. The code replaces the password
//! only: a second factor still applies at the next login (the operator resets that
//! separately, with `reset-2fa`). Wrong codes count against the recovery's 5 tries and the
//! account's recovery limits, like every other recovery proof.
//!
//! `admin user create` makes an account whose password nobody knows (a random one, dropped
//! at once) and issues it a reset code: the person sets their password by redeeming it.

use std::time::Duration;

use uuid::Uuid;
use zeroize::Zeroizing;

use super::backup_codes::normalize_code;
use super::{RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::{FactorKind, FactorRecord, Slot};

const KIND: FactorKind = FactorKind::ResetCode;
const RESET_CODE_CHARS: usize = 20;
/// How long a reset code stays valid unless the operator says otherwise.
pub const RESET_CODE_DEFAULT_TTL: Duration = Duration::from_secs(24 * 3600);
/// The longest validity an operator may give a reset code.
pub const RESET_CODE_MAX_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A reset code just issued: shown once to the operator, never stored in clear.
#[derive(Clone, serde::Serialize)]
pub struct IssuedResetCode {
    /// The account's canonical username.
    pub username: String,
    /// The code, `xxxxx-xxxxx-xxxxx-xxxxx`.
    pub code: String,
    /// When it stops working (unix seconds).
    pub expires_at: i64,
}

impl std::fmt::Debug for IssuedResetCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedResetCode")
            .field("username", &self.username)
            .field("code", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

fn operator() -> RequestContext {
    RequestContext::new(None, Some("sesame-admin"))
}

impl Sesame {
    fn reset_slot(&self, user: Uuid, normalized: &str) -> Slot {
        let h = self
            .inner
            .secrets
            .fields
            .index("reset_code", &format!("{user}:{normalized}"));
        Slot::Key(h.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// Issues a one-time reset code for `user`, valid for `ttl` (at most
    /// [`RESET_CODE_MAX_TTL`]); any earlier code stops working.
    async fn issue_reset_code(
        &self,
        user: Uuid,
        username: String,
        ttl: Duration,
    ) -> Result<IssuedResetCode, ApiError> {
        if ttl.is_zero() || ttl > RESET_CODE_MAX_TTL {
            return Err(ApiError::new(
                InputError::InvalidRequest,
                "A reset code is valid for at least a second and at most 30 days.",
            ));
        }
        let code = Zeroizing::new(self.crockford_code(RESET_CODE_CHARS));
        let now = self.now_i64();
        let expires_at = now.saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let record = FactorRecord {
            user_id: user,
            kind: KIND,
            slot: self.reset_slot(user, &code),
            value: expires_at.to_be_bytes().to_vec(),
            counter: 0,
            created_at: now,
            used_at: None,
        };
        self.inner
            .store
            .replace_factors(user, KIND, std::slice::from_ref(&record))
            .await?;
        let shown = format!(
            "{}-{}-{}-{}",
            &code[..5],
            &code[5..10],
            &code[10..15],
            &code[15..]
        );
        Ok(IssuedResetCode {
            username,
            code: shown,
            expires_at,
        })
    }

    /// `sesame admin user reset-password NAME`: a one-time code the person redeems with
    /// `sesame recover NAME --reset-code CODE`. Audited as `admin.reset_code_issued`.
    pub async fn admin_issue_reset_code(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<IssuedResetCode, ApiError> {
        let user = self.admin_find(name).await?;
        let username = self.username_of(&user)?;
        let issued = self.issue_reset_code(user.id, username, ttl).await?;
        let reason = format!("by=operator expires_at={}", issued.expires_at);
        self.audit(
            "admin.reset_code_issued",
            Some(user.id),
            Some(reason),
            &operator(),
        )
        .await;
        Ok(issued)
    }

    /// `sesame admin user create NAME`: an account whose password nobody knows, and a reset
    /// code that lets its owner set one. Audited as `register` and `admin.user_created`.
    pub async fn admin_create_user(
        &self,
        name: &str,
        ttl: Duration,
    ) -> Result<IssuedResetCode, ApiError> {
        let username = sesame_proto::policy::Username::parse(name)?;
        // A password nobody ever sees: 256 random bits, wiped once the record is made.
        let mut raw = Zeroizing::new([0u8; 32]);
        self.rng().fill(raw.as_mut());
        let unknown = Zeroizing::new(sesame_proto::b64::encode(raw.as_ref()));
        let registered = self
            .register_password(username.as_str(), unknown, &operator())
            .await?;
        let issued = self
            .issue_reset_code(registered.user_id, username.as_str().to_owned(), ttl)
            .await?;
        let reason = format!("by=operator expires_at={}", issued.expires_at);
        self.audit(
            "admin.user_created",
            Some(registered.user_id),
            Some(reason),
            &operator(),
        )
        .await;
        Ok(issued)
    }

    /// Consumes the user's reset code if `code` is it and it has not expired.
    pub(super) async fn consume_reset_code(
        &self,
        user: Uuid,
        code: &str,
    ) -> Result<bool, ApiError> {
        let Some(code) = normalize_code(code, RESET_CODE_CHARS).map(Zeroizing::new) else {
            return Ok(false);
        };
        let slot = self.reset_slot(user, &code);
        let Some(stored) = self.inner.store.factor(user, KIND, &slot).await? else {
            return Ok(false);
        };
        let expires_at = <[u8; 8]>::try_from(stored.value.as_slice())
            .map(i64::from_be_bytes)
            .unwrap_or(0);
        if self.now_i64() >= expires_at {
            return Ok(false);
        }
        Ok(self
            .inner
            .store
            .use_factor(user, KIND, &slot, self.now_i64())
            .await?)
    }
}
