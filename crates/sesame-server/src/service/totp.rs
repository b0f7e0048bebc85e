//! TOTP (RFC 6238): enrolment, confirmation, verification and removal.
//!
//! A 160-bit secret, sealed at rest (field encryption bound to the user id), SHA-1, 6 digits,
//! 30-second steps, accepted one step either side. The last accepted step is a counter that
//! only moves forward ([`advance_counter`](crate::store::FactorStore)), so a code's step can
//! never be used twice, even by two parallel requests. The login step that asks for a code is
//! in `second_factor.rs`; backup codes in `backup_codes.rs`.

use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use super::second_factor::invalid_code;
use super::{RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::FactorRecord;
use crate::store::{FactorKind, Slot};

/// The factor kind of TOTP secrets (slots `pending` and `active`).
pub(crate) const KIND: FactorKind = FactorKind::Totp;
const TOTP_STEP: u64 = 30;
pub(super) const TOTP_DIGITS: usize = 6;
const TOTP_SECRET_BYTES: usize = 20;

pub use sesame_api::account::TotpEnrolment;

pub(super) fn is_totp_code(code: &str) -> bool {
    code.len() == TOTP_DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

impl Sesame {
    fn totp_for(&self, secret: &[u8], username: &str) -> Result<TOTP, ApiError> {
        TOTP::new(
            Algorithm::SHA1,
            TOTP_DIGITS,
            1,
            TOTP_STEP,
            secret.to_vec(),
            Some(self.inner.settings.totp_issuer.clone()),
            username.to_owned(),
        )
        .map_err(ApiError::internal)
    }

    fn open_totp_secret(&self, user: Uuid, f: &FactorRecord) -> Result<Vec<u8>, ApiError> {
        let text = self
            .inner
            .secrets
            .fields
            .open("totp", user.as_bytes(), &f.value)
            .ok_or_else(|| ApiError::internal("TOTP secret does not decrypt"))?;
        sesame_proto::b64::decode(&text).ok_or_else(|| ApiError::internal("TOTP secret corrupt"))
    }

    /// The step whose code matches, within one step of now.
    fn matching_step(&self, totp: &TOTP, code: &str) -> Option<u64> {
        let now = self.now() / TOTP_STEP;
        [now.saturating_sub(1), now, now + 1]
            .into_iter()
            .find(|step| {
                bool::from(
                    totp.generate(step * TOTP_STEP)
                        .as_bytes()
                        .ct_eq(code.as_bytes()),
                )
            })
    }

    /// Whether the user has TOTP enabled.
    pub async fn has_totp(&self, user: Uuid) -> Result<bool, ApiError> {
        Ok(self
            .inner
            .store
            .factor(user, KIND, &Slot::Active)
            .await?
            .is_some())
    }

    /// Checks a TOTP code for the user's active secret and burns its step. `false` for a
    /// wrong, expired or replayed code.
    pub async fn verify_totp(
        &self,
        user: Uuid,
        username: &str,
        code: &str,
    ) -> Result<bool, ApiError> {
        if !is_totp_code(code) {
            return Ok(false);
        }
        let Some(f) = self.inner.store.factor(user, KIND, &Slot::Active).await? else {
            return Ok(false);
        };
        let totp = self.totp_for(&self.open_totp_secret(user, &f)?, username)?;
        let Some(step) = self.matching_step(&totp, code) else {
            return Ok(false);
        };
        let step = i64::try_from(step).map_err(ApiError::internal)?;
        Ok(self
            .inner
            .store
            .advance_counter(user, KIND, &Slot::Active, step)
            .await?)
    }

    /// Starts (or restarts) TOTP enrolment: a pending secret, its URI and QR code.
    pub async fn totp_enrol(&self, user: Uuid, username: &str) -> Result<TotpEnrolment, ApiError> {
        let mut secret = zeroize::Zeroizing::new(vec![0u8; TOTP_SECRET_BYTES]);
        self.rng().fill(&mut secret);
        let totp = self.totp_for(&secret, username)?;
        let sealed = self.inner.secrets.fields.seal(
            "totp",
            user.as_bytes(),
            &sesame_proto::b64::encode(secret.as_slice()),
        );
        self.inner
            .store
            .put_factor(&FactorRecord {
                user_id: user,
                kind: KIND,
                slot: Slot::Pending,
                value: sealed,
                counter: 0,
                created_at: self.now_i64(),
                used_at: None,
            })
            .await?;
        let qr = totp.get_qr_base64().map_err(ApiError::internal)?;
        Ok(TotpEnrolment {
            message: "QR code generated successfully.".into(),
            secret: totp.get_secret_base32(),
            otpauth_url: totp.get_url(),
            qr_code_url: format!("data:image/png;base64,{qr}"),
        })
    }

    /// Confirms enrolment with a code from the pending secret; TOTP is then required at login.
    pub async fn totp_confirm(
        &self,
        user: Uuid,
        username: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        // Code guesses count toward the account's attempts, like logins.
        let index = self.username_index(username);
        self.throttle_account(&index).await?;
        let Some(pending) = self.inner.store.factor(user, KIND, &Slot::Pending).await? else {
            return Err(ApiError::new(
                InputError::TotpNotPending,
                "Generate a QR code first.",
            ));
        };
        let totp = self.totp_for(&self.open_totp_secret(user, &pending)?, username)?;
        let step = match is_totp_code(code)
            .then(|| self.matching_step(&totp, code))
            .flatten()
        {
            Some(step) => step,
            None => {
                self.audit(
                    "protected.totp_code_failed",
                    Some(user),
                    Some("enable".into()),
                    ctx,
                )
                .await;
                return Err(invalid_code());
            }
        };
        let active = FactorRecord {
            slot: Slot::Active,
            counter: i64::try_from(step).map_err(ApiError::internal)?,
            created_at: self.now_i64(),
            ..pending
        };
        // One transaction: the secret is active and no longer pending at the same time.
        self.inner
            .store
            .write_atomically(&crate::store::writes::totp_activation(active))
            .await?;
        self.throttle_reset(&index).await?;
        self.audit("protected.totp_enabled", Some(user), None, ctx)
            .await;
        Ok(())
    }

    /// Turns TOTP off; needs a valid TOTP or backup code.
    pub async fn totp_disable(
        &self,
        user: Uuid,
        username: &str,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let index = self.username_index(username);
        self.throttle_account(&index).await?;
        if !self.verify_totp(user, username, code).await?
            && !self.consume_backup_code(user, code).await?
        {
            self.audit(
                "protected.totp_code_failed",
                Some(user),
                Some("disable".into()),
                ctx,
            )
            .await;
            return Err(invalid_code());
        }
        self.throttle_reset(&index).await?;
        self.inner.store.delete_factors(user, KIND, None).await?;
        self.audit("protected.totp_disabled", Some(user), None, ctx)
            .await;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
