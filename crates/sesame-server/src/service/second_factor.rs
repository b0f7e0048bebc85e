//! Second factors: TOTP (RFC 6238) and single-use backup codes, and the login step that asks
//! for one after the password proof.
//!
//! * **TOTP**: a 160-bit secret, sealed at rest (field encryption bound to the user id), SHA-1,
//!   6 digits, 30-second steps, accepted one step either side. The last accepted step is a
//!   counter that only moves forward ([`advance_counter`](crate::store::FactorStore)), so a
//!   code's step can never be used twice, even by two parallel requests.
//! * **Backup codes**: ten codes of ten Crockford base32 characters (50 bits each), shown
//!   once as `xxxxx-xxxxx`, stored only as keyed hashes; each is consumed atomically.
//! * **The login step**: when an account has TOTP, a verified password does not create a
//!   session. It creates a short-lived second-factor ticket (`mfa_token`); the session is
//!   created only from a [`SecondFactorVerified`] proof, after a valid TOTP or backup code.
//!   Wrong codes count toward the account's throttle like wrong passwords.

use std::time::Duration;

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use super::{RequestContext, Sesame, SessionIssued};
use crate::error::ApiError;
use crate::store::FactorRecord;

/// Factor kinds in the factor store.
pub(crate) mod kinds {
    pub const TOTP: &str = "totp";
    pub const BACKUP_CODE: &str = "backup_code";
}

const TOTP_STEP: u64 = 30;
const TOTP_DIGITS: usize = 6;
const TOTP_SECRET_BYTES: usize = 20;
const BACKUP_CODES: usize = 10;
const BACKUP_CODE_CHARS: usize = 10;
/// Crockford's base32 alphabet: no i, l, o, u.
const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// How long a second-factor ticket lives, seconds.
pub const MFA_TTL_SECS: u64 = 300;
/// Wrong codes one ticket accepts before it is burnt.
const MFA_MAX_TRIES: u32 = 5;

/// What the server answers instead of a session when a second factor is needed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SecondFactorRequired {
    /// Always `true`: tells this answer apart from a session.
    pub second_factor_required: bool,
    /// The ticket to present with the code.
    pub mfa_token: String,
    /// Accepted kinds of code: `totp`, `backup_code`.
    pub methods: Vec<String>,
    /// Seconds the ticket stays valid.
    pub expires_in: u64,
}

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

/// Proof that a second factor was verified for a ticket. Only this module makes one.
pub(crate) struct SecondFactorVerified {
    pub(crate) user_id: Uuid,
    pub(crate) username: String,
    pub(crate) methods: Vec<String>,
}

/// The TOTP enrolment answer (seed 004 names).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TotpEnrolment {
    /// Human message.
    pub message: String,
    /// The base32 secret, for typing into an authenticator.
    pub secret: String,
    /// The `otpauth://totp/...` URI.
    pub otpauth_url: String,
    /// `data:image/png;base64,...` QR code of the URI.
    pub qr_code_url: String,
}

fn invalid_code() -> ApiError {
    ApiError::new(
        401,
        "invalid_code",
        "The code is wrong, expired or already used.",
    )
}

fn ticket_key(token: &str) -> String {
    format!("mfa:{token}")
}

/// Canonical form of a typed backup code: lowercase, no separators, Crockford aliases mapped.
fn normalize_backup_code(code: &str) -> Option<String> {
    let mut out = String::with_capacity(BACKUP_CODE_CHARS);
    for c in code.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c => c,
        };
        if !CROCKFORD.contains(&(c as u8)) || !c.is_ascii() {
            return None;
        }
        out.push(c);
    }
    (out.len() == BACKUP_CODE_CHARS).then_some(out)
}

fn is_totp_code(code: &str) -> bool {
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
            .factor(user, kinds::TOTP, "active")
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
        let Some(f) = self.inner.store.factor(user, kinds::TOTP, "active").await? else {
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
            .advance_counter(user, kinds::TOTP, "active", step)
            .await?)
    }

    /// Consumes one backup code; `false` if it is not one of the user's unused codes.
    pub async fn consume_backup_code(&self, user: Uuid, code: &str) -> Result<bool, ApiError> {
        let Some(code) = normalize_backup_code(code) else {
            return Ok(false);
        };
        let slot = self.backup_slot(user, &code);
        Ok(self
            .inner
            .store
            .use_factor(user, kinds::BACKUP_CODE, &slot, self.now_i64())
            .await?)
    }

    fn backup_slot(&self, user: Uuid, normalized: &str) -> String {
        let h = self
            .inner
            .secrets
            .fields
            .index("backup_code", &format!("{user}:{normalized}"));
        h.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Replaces the user's backup codes with a fresh set and returns it (shown once).
    pub async fn issue_backup_codes(&self, user: Uuid) -> Result<Vec<String>, ApiError> {
        let (codes, records) = self.new_backup_codes(user);
        self.inner
            .store
            .replace_factors(user, kinds::BACKUP_CODE, &records)
            .await?;
        Ok(codes)
    }

    /// A fresh set of backup codes: the codes to show once, and the records (keyed hashes)
    /// to store.
    pub(crate) fn new_backup_codes(&self, user: Uuid) -> (Vec<String>, Vec<FactorRecord>) {
        let now = self.now_i64();
        let mut codes = Vec::with_capacity(BACKUP_CODES);
        let mut records = Vec::with_capacity(BACKUP_CODES);
        for _ in 0..BACKUP_CODES {
            let mut raw = [0u8; BACKUP_CODE_CHARS];
            OsRng.fill_bytes(&mut raw);
            let code: String = raw
                .iter()
                .map(|b| CROCKFORD[usize::from(b & 31)] as char)
                .collect();
            records.push(FactorRecord {
                user_id: user,
                kind: kinds::BACKUP_CODE.into(),
                slot: self.backup_slot(user, &code),
                value: Vec::new(),
                counter: 0,
                created_at: now,
                used_at: None,
            });
            codes.push(format!("{}-{}", &code[..5], &code[5..]));
        }
        (codes, records)
    }

    /// Unused backup codes left.
    pub async fn backup_codes_left(&self, user: Uuid) -> Result<usize, ApiError> {
        let all = self.inner.store.factors(user, kinds::BACKUP_CODE).await?;
        Ok(all.iter().filter(|f| f.used_at.is_none()).count())
    }

    /// Starts (or restarts) TOTP enrolment: a pending secret, its URI and QR code.
    pub async fn totp_enrol(&self, user: Uuid, username: &str) -> Result<TotpEnrolment, ApiError> {
        let mut secret = zeroize::Zeroizing::new(vec![0u8; TOTP_SECRET_BYTES]);
        OsRng.fill_bytes(&mut secret);
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
                kind: kinds::TOTP.into(),
                slot: "pending".into(),
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
        let Some(pending) = self
            .inner
            .store
            .factor(user, kinds::TOTP, "pending")
            .await?
        else {
            return Err(ApiError::bad_request(
                "totp_not_pending",
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
            slot: "active".into(),
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
        self.inner
            .store
            .delete_factors(user, kinds::TOTP, None)
            .await?;
        self.audit("protected.totp_disabled", Some(user), None, ctx)
            .await;
        Ok(())
    }

    /// After a verified password: asks for a second factor when the account has one.
    pub(crate) async fn second_factor_ticket(
        &self,
        user: Uuid,
        username: &str,
        methods: &[String],
    ) -> Result<Option<SecondFactorRequired>, ApiError> {
        if !self.has_totp(user).await? {
            return Ok(None);
        }
        let mut raw = [0u8; 32];
        OsRng.fill_bytes(&mut raw);
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
                Duration::from_secs(MFA_TTL_SECS),
            )
            .await?;
        Ok(Some(SecondFactorRequired {
            second_factor_required: true,
            mfa_token: token,
            methods: vec!["totp".into(), "backup_code".into()],
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
                401,
                "mfa_expired",
                "The second-factor step expired; log in again.",
            )
        };
        // Take the ticket so two parallel attempts cannot both use it; put it back on a
        // wrong code while tries remain. The ticket itself passed the account's throttle
        // gate at the password step, so the code is not gated again (a delay longer than the
        // ticket would lock the user out); a wrong code counts as a failed attempt instead.
        let bytes = self.inner.ephemeral.take(&key).await?.ok_or_else(expired)?;
        let mut ticket: Ticket = serde_json::from_slice(&bytes).map_err(|_| expired())?;
        let index = self.username_index(&ticket.username);
        let code = code.trim();
        let method = if self
            .verify_totp(ticket.user_id, &ticket.username, code)
            .await?
        {
            Some("otp")
        } else if self.consume_backup_code(ticket.user_id, code).await? {
            Some("backup_code")
        } else {
            None
        };
        let Some(method) = method else {
            self.throttle_failure(&index).await?;
            ticket.tries += 1;
            self.audit(
                "login.failure",
                Some(ticket.user_id),
                Some("second_factor".into()),
                ctx,
            )
            .await;
            if ticket.tries < MFA_MAX_TRIES {
                let bytes = serde_json::to_vec(&ticket).map_err(ApiError::internal)?;
                self.inner
                    .ephemeral
                    .put(&key, &bytes, Duration::from_secs(MFA_TTL_SECS))
                    .await?;
            }
            return Err(invalid_code());
        };
        let mut methods = ticket.methods.clone();
        methods.push(method.into());
        methods.push("mfa".into());
        let proof = SecondFactorVerified {
            user_id: ticket.user_id,
            username: ticket.username,
            methods,
        };
        self.throttle_reset(&index).await?;
        self.session_after_second_factor(proof, ctx).await
    }
}

#[cfg(test)]
mod tests {
    use super::{normalize_backup_code, TOTP_DIGITS};
    use totp_rs::{Algorithm, TOTP};

    #[test]
    fn backup_codes_normalise_typing_variants() {
        assert_eq!(
            normalize_backup_code("ABCDE-FGH1K").as_deref(),
            Some("abcdefgh1k")
        );
        assert_eq!(
            normalize_backup_code("abcde fghlk").as_deref(),
            Some("abcdefgh1k"),
            "l reads as 1"
        );
        assert_eq!(
            normalize_backup_code("0o0o0-OOOO0").as_deref(),
            Some("0000000000")
        );
        assert_eq!(
            normalize_backup_code("abcde-fghu1"),
            None,
            "u is not Crockford"
        );
        assert_eq!(normalize_backup_code("abcd"), None);
        assert_eq!(normalize_backup_code("abcde-fgh1kk"), None);
        assert_eq!(normalize_backup_code("äbcde-fgh1k"), None);
    }

    /// RFC 6238 Appendix B, SHA-1 rows (8 digits, the RFC's 20-byte ASCII secret), through
    /// the same library and step arithmetic the server uses.
    #[test]
    fn rfc6238_appendix_b_sha1_vectors() {
        let totp = TOTP::new(
            Algorithm::SHA1,
            8,
            1,
            30,
            b"12345678901234567890".to_vec(),
            None,
            String::new(),
        )
        .unwrap();
        for (time, code) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(totp.generate(time), code, "T = {time}");
        }
        let six = TOTP::new(
            Algorithm::SHA1,
            TOTP_DIGITS,
            1,
            30,
            b"12345678901234567890".to_vec(),
            None,
            String::new(),
        )
        .unwrap();
        assert_eq!(
            six.generate(59),
            "287082",
            "6 digits are the low digits of the same value"
        );
    }
}
