//! Changing or removing the account's email address (`sesame profile --email`, the account
//! page).
//!
//! * `POST /api/me/email {email}` (fresh authentication): the address is validated and a
//!   6-digit code is mailed to it (the answer is the same whether another account has it). The pending change is
//!   kept in the short-lived store for 10 minutes: the new address sealed to the account, a
//!   keyed hash of the code, a try counter (5). At most 5 such mails per account per hour.
//! * `POST /api/me/email/verify {code}`: the right code makes the new address the account's
//!   (still unique: 409 `email_taken` if someone took it meanwhile); the old address, if
//!   any, is told by mail. Wrong code 400 `invalid_code`; none pending, expired
//!   or burnt 400 `code_expired`.
//! * `DELETE /api/me/email` (fresh authentication): the account has no address any more, so
//!   recovery by email stops working for it.
//!
//! Each step is audited (`email.change_started`, `email.changed`, `email.removed`).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::email::{email_taken, new_code, EmailAddress, EMAIL_CODE_TRIES, EMAIL_CODE_TTL_SECS};
use super::{Authenticated, RequestContext, Sesame};
use crate::error::{ApiError, CredentialError, InputError};
use crate::limiter::{Mode, Rule};
use crate::store::{ConflictOn, StoreError, UserRecord};

/// Address-change mails one account may cause per hour.
pub const EMAIL_CHANGES_PER_HOUR: u64 = 5;

/// A pending change, in the short-lived store.
#[derive(Serialize, Deserialize)]
struct Pending {
    /// The new address, sealed to the account.
    sealed: Vec<u8>,
    /// Keyed hash of the account id and the code.
    hash: Vec<u8>,
    /// Service-clock time after which the code is refused.
    expires_at: u64,
    /// Wrong codes so far.
    tries: u32,
}

fn pending_key(user: uuid::Uuid) -> String {
    format!("email:change:{user}")
}

fn code_expired() -> ApiError {
    ApiError::new(
        InputError::CodeExpired,
        "No address change is waiting: the code expired, was tried too often, or none was \
         sent. Start again.",
    )
}

fn map_conflict(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict(ConflictOn::Email) => email_taken(),
        e => e.into(),
    }
}

impl Sesame {
    fn change_code_digest(&self, user: uuid::Uuid, code: &str) -> Vec<u8> {
        self.inner
            .secrets
            .fields
            .index("email_change", &format!("{user}:{code}"))
    }

    /// `POST /api/me/email`: mails a code to `email` (see the module documentation).
    pub async fn email_change_start(
        &self,
        who: &Authenticated,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<u64, ApiError> {
        self.require_fresh(who).await?;
        let email = EmailAddress::parse(email)?;
        // Whether another account has the address is told only at the end, to the holder of
        // the code: the start answers the same for every address.
        let (_, sealed) = self.seal_email(who.user_id, &email);
        let username = self.username_of(&self.account(who).await?)?;
        let rule = Rule::fixed(EMAIL_CHANGES_PER_HOUR, Duration::from_secs(3600));
        let key = format!("email:change-sent:{}", who.user_id);
        let verdict = self
            .inner
            .ephemeral
            .hit(&key, &rule, self.now_ms(), Mode::Check)
            .await?;
        if !verdict.allowed {
            return Err(ApiError::too_many(
                verdict.retry_after.as_secs() + 1,
                "Too many address changes; wait before trying again.",
            ));
        }
        let code = zeroize::Zeroizing::new(new_code(self.rng()));
        let pending = Pending {
            sealed,
            hash: self.change_code_digest(who.user_id, &code),
            expires_at: self.now().saturating_add(EMAIL_CODE_TTL_SECS),
            tries: 0,
        };
        let value = serde_json::to_vec(&pending).map_err(ApiError::internal)?;
        let ttl = Duration::from_secs(EMAIL_CODE_TTL_SECS);
        self.inner
            .ephemeral
            .put(&pending_key(who.user_id), &value, self.now_ms(), ttl)
            .await?;
        let body = format!(
            "Someone asked to use this address for the Sesame account {}.\n\nYour code: \
             {}\n\nIt expires in 10 minutes. If this was not you, ignore this message.\n",
            username,
            code.as_str()
        );
        let to = email.as_str().to_owned();
        self.send_mail_in_background(to, "Confirm your new email address", body, "email-change");
        self.audit("email.change_started", Some(who.user_id), None, ctx)
            .await;
        Ok(EMAIL_CODE_TTL_SECS)
    }

    /// `POST /api/me/email/verify`: the right code makes the pending address the account's.
    /// Returns the new address.
    pub async fn email_change_finish(
        &self,
        who: &Authenticated,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<String, ApiError> {
        let eph = &self.inner.ephemeral;
        let key = pending_key(who.user_id);
        // Taken, not read: concurrent guesses cannot share one try.
        let bytes = eph
            .take(&key, self.now_ms())
            .await?
            .ok_or_else(code_expired)?;
        let mut pending: Pending = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
        let now = self.now();
        if now >= pending.expires_at {
            return Err(code_expired());
        }
        let digest = self.change_code_digest(who.user_id, code.trim());
        if !bool::from(digest.ct_eq(&pending.hash)) {
            pending.tries += 1;
            if pending.tries < EMAIL_CODE_TRIES {
                let left = Duration::from_secs(pending.expires_at - now);
                let value = serde_json::to_vec(&pending).map_err(ApiError::internal)?;
                eph.set_nx(&key, &value, self.now_ms(), left).await?;
            }
            return Err(ApiError::new(
                InputError::VerificationCodeInvalid,
                "That code is not the one we sent.",
            ));
        }
        let fields = &self.inner.secrets.fields;
        let new = fields
            .open("email", who.user_id.as_bytes(), &pending.sealed)
            .ok_or_else(|| ApiError::internal("a pending address does not open"))?;
        let account = self.account(who).await?;
        let old = account
            .email_sealed
            .as_ref()
            .and_then(|s| fields.open("email", who.user_id.as_bytes(), s));
        let index = fields.index("email", &new);
        self.inner
            .store
            .set_user_email(who.user_id, Some((&index, &pending.sealed)), self.now_i64())
            .await
            .map_err(map_conflict)?;
        if let Some(old) = old.filter(|o| *o != new) {
            let body = format!(
                "The email address of the Sesame account {} was changed to {new}.\n\nIf \
                 this was not you, sign in and change your password now.\n",
                self.username_of(&account)?
            );
            self.send_mail_in_background(
                old,
                "Your email address was changed",
                body,
                "email-change",
            );
        }
        self.audit("email.changed", Some(who.user_id), None, ctx)
            .await;
        Ok(new)
    }

    /// `DELETE /api/me/email`: the account keeps no address (fresh authentication needed).
    pub async fn email_remove(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        self.inner
            .store
            .set_user_email(who.user_id, None, self.now_i64())
            .await?;
        self.inner
            .ephemeral
            .delete(&pending_key(who.user_id))
            .await?;
        self.audit("email.removed", Some(who.user_id), None, ctx)
            .await;
        Ok(())
    }

    /// The caller's account record.
    async fn account(&self, who: &Authenticated) -> Result<UserRecord, ApiError> {
        self.inner
            .store
            .user_by_id(who.user_id)
            .await?
            .ok_or_else(|| ApiError::new(CredentialError::Unauthorized, "The account is gone."))
    }
}
