//! Account recovery ("forgot password", seed 004).
//!
//! `recover_start` opens a recovery (15 minutes, 5 tries) and, if the account has an email
//! address, mails it a 6-digit code. `recover_finish` accepts exactly one of:
//!
//! * a **backup code**;
//! * an **email code** — plus a TOTP or backup code when the account has TOTP, so a stolen
//!   mailbox does not bypass the second factor;
//! * a **TOTP code plus at least two correct security answers** — security questions are
//!   never enough alone;
//! * an operator's one-time **reset code** (`sesame admin user reset-password`, see
//!   [`super::reset_codes`]).
//!
//! Finishing stores a new OPAQUE record (client-side registration or server-assisted), revokes
//! every session, consumes the code, issues fresh backup codes and is audited. Unknown
//! usernames get the same answers: the same start response (with stand-in questions chosen
//! from the username) and the same `recovery_failed` at the end.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use sesame_proto::messages::RegistrationStart;
use sesame_proto::policy::{check_password, Username};
use sesame_proto::server as proto;
use sesame_proto::{CredentialRecord, KsfPolicy};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::questions::CATALOG;
use super::stand_in::STAND_IN_ID;
use super::{RequestContext, Sesame};
use crate::error::{ApiError, CredentialError, InputError};
use crate::limiter::{Mode, Rule};
use crate::store::{writes, UserRecord};

pub use sesame_api::account::RecoverFinish;
pub use sesame_api::account::RecoverStart;
pub use sesame_api::account::RecoverStarted;

/// Recoveries one account may start per hour.
pub const RECOVERIES_PER_HOUR: u64 = 5;

/// How long a recovery stays open, seconds.
pub const RECOVERY_TTL_SECS: u64 = 900;
const MAX_TRIES: u32 = 5;

#[derive(Serialize, Deserialize)]
struct State {
    username: String,
    user: Option<Uuid>,
    email_code: Option<Vec<u8>>,
    tries: u32,
}

fn key(id: &str) -> String {
    format!("recover:{id}")
}

fn failed() -> ApiError {
    ApiError::new(
        CredentialError::RecoveryFailed,
        "Recovery failed: the codes or answers do not check out.",
    )
}

/// The client-side registration record of `req`, checked (`None`: the server-assisted
/// `new_password`, checked against the password policy). Exactly one of the two is accepted.
fn new_record(
    req: &RecoverFinish,
    username: &Username,
) -> Result<Option<CredentialRecord>, ApiError> {
    match (
        &req.new_password,
        &req.registration_record,
        &req.key_stretching,
    ) {
        (Some(pw), None, None) => {
            check_password(pw, username)?;
            Ok(None)
        }
        (None, Some(rec), Some(ksf)) => Ok(Some(proto::registration_record(
            &sesame_proto::messages::RegistrationFinish {
                username: username.as_str().to_owned(),
                registration_record: rec.clone(),
                key_stretching: *ksf,
            },
            &KsfPolicy::DEFAULT,
        )?)),
        _ => Err(ApiError::new(
            InputError::InvalidRequest,
            "Send either new_password, or registration_record with key_stretching.",
        )),
    }
}

impl Sesame {
    fn email_code_hash(&self, recovery_id: &str, code: &str) -> Vec<u8> {
        self.inner
            .secrets
            .fields
            .index("email_code", &format!("{recovery_id}:{code}"))
    }

    /// Stand-in questions for a username without real ones: stable per name.
    fn standin_questions(&self, username: &str) -> Vec<String> {
        let h = self
            .inner
            .secrets
            .fields
            .index("standin_questions", username);
        let count = 2 + usize::from(h[0] & 1);
        let mut picked = Vec::new();
        let mut i = 1;
        while picked.len() < count {
            let q = CATALOG[usize::from(h[i]) % CATALOG.len()].to_owned();
            if !picked.contains(&q) {
                picked.push(q);
            }
            i += 1;
            if i >= h.len() {
                break;
            }
        }
        picked
    }

    async fn throttle_recovery(&self, index: &[u8]) -> Result<(), ApiError> {
        let id: String = index.iter().map(|b| format!("{b:02x}")).collect();
        let key = format!("thr:recover:{id}");
        let rule = Rule::fixed(RECOVERIES_PER_HOUR, Duration::from_secs(3600));
        let v = self
            .inner
            .ephemeral
            .hit(&key, &rule, self.now_ms(), Mode::Check)
            .await?;
        if !v.allowed {
            return Err(ApiError::too_many(
                v.retry_after.as_secs() + 1,
                "Too many recoveries for this account; wait before retrying.",
            ));
        }
        Ok(())
    }

    /// Mails a fresh recovery code to the account's address, if it has one, in the
    /// background; returns the code's hash to keep with the recovery. Without an account or
    /// an address the stand-in address is opened and a code made and hashed all the same
    /// (then dropped): only the hand-off to the mailer, in the background, differs.
    fn mail_recovery_code(
        &self,
        u: Option<&UserRecord>,
        username: &Username,
        id: &str,
    ) -> Option<Vec<u8>> {
        let real = u.and_then(|u| u.email_sealed.as_deref().map(|s| (u.id, s)));
        let (row, sealed) = real.unwrap_or((STAND_IN_ID, self.inner.stand_in.email.as_slice()));
        let email = self
            .inner
            .secrets
            .fields
            .open("email", row.as_bytes(), sealed);
        let code = super::email::new_code(self.rng());
        let hash = self.email_code_hash(id, &code);
        let email = email.filter(|_| real.is_some())?;
        let body = format!(
            "Someone asked to recover the Sesame account {}.\n\nYour recovery code: {code}\n\nIt expires in 15 minutes. If this was not you, ignore this message.\n",
            username.as_str()
        );
        // Sent in the background: the answer must not take longer for accounts
        // that have an email address.
        self.send_mail_in_background(email, "Your Sesame recovery code", body, "recovery");
        Some(hash)
    }

    /// Opens a recovery. The answer does not depend on whether the account exists.
    pub async fn recover_start(
        &self,
        req: &RecoverStart,
        ctx: &RequestContext,
    ) -> Result<RecoverStarted, ApiError> {
        self.throttle_address(ctx).await?;
        let username = Username::parse(&req.username)?;
        // Per account (known or not, keyed by the username index): recoveries started, so
        // nobody can flood a mailbox or use the OPRF answer as a guessing oracle.
        self.throttle_recovery(&self.username_index(username.as_str()))
            .await?;
        let user = self
            .inner
            .store
            .user_by_index(&self.username_index(username.as_str()))
            .await?;
        let mut raw = [0u8; 16];
        self.rng().fill(&mut raw);
        let id = sesame_proto::b64::encode(raw);
        // Unknown names cost the same lookups: the questions of an id no account has.
        let mut questions = self
            .security_questions(user.as_ref().map_or(STAND_IN_ID, |u| u.id))
            .await?;
        let stand_ins = self.standin_questions(username.as_str());
        if questions.is_empty() {
            questions = stand_ins;
        }
        let email_code = self.mail_recovery_code(user.as_ref(), &username, &id);
        let state = State {
            username: username.as_str().to_owned(),
            user: user.as_ref().map(|u| u.id),
            email_code,
            tries: 0,
        };
        self.inner
            .ephemeral
            .put(
                &key(&id),
                &serde_json::to_vec(&state).map_err(ApiError::internal)?,
                self.now_ms(),
                Duration::from_secs(RECOVERY_TTL_SECS),
            )
            .await?;
        let registration_challenge = match &req.registration_request {
            Some(request) => Some(proto::registration_challenge(
                &self.inner.secrets.opaque,
                &username,
                &RegistrationStart {
                    username: username.as_str().to_owned(),
                    registration_request: request.clone(),
                },
                self.inner.settings.ksf,
            )?),
            None => None,
        };
        self.audit("recovery.start", user.map(|u| u.id), None, ctx)
            .await;
        Ok(RecoverStarted {
            recovery_id: id,
            questions,
            registration_challenge,
            expires_in: RECOVERY_TTL_SECS,
            message: "If the account has an email address, a recovery code was sent to it.".into(),
        })
    }

    /// Checks the proof, replaces the credential, revokes every session and returns fresh
    /// backup codes.
    pub async fn recover_finish(
        &self,
        req: RecoverFinish,
        ctx: &RequestContext,
    ) -> Result<Vec<String>, ApiError> {
        let k = key(&req.recovery_id);
        let expired = || {
            ApiError::new(
                InputError::RecoveryExpired,
                "Unknown or expired recovery; start again.",
            )
        };
        // Look first, take later: a malformed request or a throttled one must not cost the
        // user the recovery (and its emailed code).
        let bytes = self
            .inner
            .ephemeral
            .get(&k, self.now_ms())
            .await?
            .ok_or_else(expired)?;
        let state: State = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
        let username = Username::parse(&state.username).map_err(ApiError::internal)?;
        // The new credential must be well-formed before any code is spent on it.
        let record = new_record(&req, &username)?;
        self.throttle_account(&self.username_index(username.as_str()))
            .await?;
        // Now take the recovery so parallel attempts cannot share one try.
        let bytes = self
            .inner
            .ephemeral
            .take(&k, self.now_ms())
            .await?
            .ok_or_else(expired)?;
        let state: State = serde_json::from_slice(&bytes).map_err(ApiError::internal)?;
        let verified = match state.user {
            Some(user) => {
                self.recovery_proof(user, &username, &req.recovery_id, &state, &req)
                    .await?
            }
            None => None,
        };
        let Some((user, how)) = verified else {
            self.count_failed_try(&k, state, ctx).await?;
            return Err(failed());
        };
        let record = match record {
            Some(r) => r,
            None => {
                let pw = req.new_password.clone().unwrap_or_default();
                self.record_for_password(&username, pw).await?
            }
        };
        // One transaction: the new credential never exists alongside the old sessions, the
        // old backup codes or the device-key requirement (a lost device is a common reason
        // to recover: the proof above replaces it; registered device keys stay, to re-enable).
        let (codes, code_records) = self.new_backup_codes(user);
        let counts = self
            .inner
            .store
            .write_atomically(&writes::password_reset(
                user,
                record.to_bytes(),
                code_records,
                self.now_i64(),
            ))
            .await?;
        self.sessions_ended(user, crate::relay::SessionsEnded::AllBut(None))
            .await;
        let revoked = counts.get(1).copied().unwrap_or(0);
        self.throttle_reset(&self.username_index(username.as_str()))
            .await?;
        self.audit(
            "recovery.success",
            Some(user),
            Some(format!("method={how} revoked={revoked}")),
            ctx,
        )
        .await;
        Ok(codes)
    }

    /// A proof that did not check out: counts the try and puts the recovery back while tries
    /// remain.
    async fn count_failed_try(
        &self,
        k: &str,
        mut state: State,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        state.tries += 1;
        self.audit("recovery.failure", state.user, None, ctx).await;
        if state.tries < MAX_TRIES {
            self.inner
                .ephemeral
                .put(
                    k,
                    &serde_json::to_vec(&state).map_err(ApiError::internal)?,
                    self.now_ms(),
                    Duration::from_secs(RECOVERY_TTL_SECS),
                )
                .await?;
        }
        Ok(())
    }

    /// Which proof checks out, if any (codes are only spent when they complete a proof).
    async fn recovery_proof(
        &self,
        user: Uuid,
        username: &Username,
        recovery_id: &str,
        state: &State,
        req: &RecoverFinish,
    ) -> Result<Option<(Uuid, &'static str)>, ApiError> {
        if let Some(code) = &req.reset_code {
            // An operator's one-time code stands alone (a second factor still applies at
            // the next login); it is never combined with the other proofs.
            let ok = self.consume_reset_code(user, code).await?;
            return Ok(ok.then_some((user, "reset_code")));
        }
        let has_totp = self.has_totp(user).await?;
        let email_ok = match (&req.email_code, &state.email_code) {
            (Some(code), Some(expected)) => bool::from(
                self.email_code_hash(recovery_id, code.trim())
                    .ct_eq(expected),
            ),
            _ => false,
        };
        if self.phishing_resistant_required(user).await? {
            // An account that requires a passkey is recovered by a backup code only: an email
            // code and a TOTP code can both be phished.
            return Ok(match &req.backup_code {
                Some(code) if self.consume_backup_code(user, code).await? => Some((
                    user,
                    if email_ok {
                        "email+backup_code"
                    } else {
                        "backup_code"
                    },
                )),
                _ => None,
            });
        }
        if email_ok && !has_totp {
            return Ok(Some((user, "email")));
        }
        if email_ok {
            if let Some(code) = &req.totp_code {
                if self
                    .verify_totp(user, username.as_str(), code.trim())
                    .await?
                {
                    return Ok(Some((user, "email+totp")));
                }
            }
            if let Some(code) = &req.backup_code {
                if self.consume_backup_code(user, code).await? {
                    return Ok(Some((user, "email+backup_code")));
                }
            }
            return Ok(None);
        }
        if let (Some(code), Some(answers)) = (&req.totp_code, &req.answers) {
            // Answers first (no side effects), then the TOTP step is spent.
            if self.correct_answers(user, answers).await? >= 2
                && self
                    .verify_totp(user, username.as_str(), code.trim())
                    .await?
            {
                return Ok(Some((user, "totp+questions")));
            }
            return Ok(None);
        }
        if let Some(code) = &req.backup_code {
            if self.consume_backup_code(user, code).await? {
                return Ok(Some((user, "backup_code")));
            }
        }
        Ok(None)
    }
}
