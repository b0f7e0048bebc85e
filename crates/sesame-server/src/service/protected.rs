//! Protected operations (seed 004): the profile, re-authentication, password change, backup
//! code regeneration, TOTP on/off, security questions and account deletion.
//!
//! All need a valid access token. The sensitive ones also need a **fresh** authentication: a
//! login or an explicit re-authentication (an OPAQUE proof, or the password for password-only
//! clients) within the last `reauth_window` seconds (5 minutes by default) on this session.
//! Otherwise they answer 403 `reauthentication_required`. Every change is audited as
//! `protected.*`.

use std::time::Duration;

use sesame_api::account::{MAX_BIO, MAX_DISPLAY_NAME, MAX_PICTURE_URL};
use sesame_proto::messages::{
    LoginChallenge, LoginConfirmation, LoginFinish, LoginStart, RegistrationChallenge,
    RegistrationFinish, RegistrationStart,
};
use sesame_proto::policy::{check_password, Username};
use sesame_proto::server::{self as proto, ExpectLoginFinish};
use sesame_proto::{CredentialRecord, KsfPolicy, Timestamp};
use zeroize::Zeroizing;

use super::proof::Fresh;
use super::{Authenticated, RequestContext, Sesame};
use crate::error::{ApiError, CredentialError, InputError};
use crate::store::{writes, FactorRecord, UserRecord};
use crate::store::{FactorKind, Slot};

pub use sesame_api::account::Profile;
pub use sesame_api::account::ProfileUpdate;

const PROFILE: FactorKind = FactorKind::Profile;

/// Checks a profile against the rules its fields document.
fn validate_profile(profile: &Profile) -> Result<(), ApiError> {
    let text = |v: &Option<String>,
                max: usize,
                what: &'static str,
                multiline: bool|
     -> Result<(), ApiError> {
        let Some(v) = v else { return Ok(()) };
        if v.chars().count() > max {
            return Err(ApiError::new(
                InputError::ProfileInvalid,
                format!("{what} is at most {max} characters."),
            ));
        }
        if v.chars()
            .any(|c| c.is_control() && !(multiline && c == '\n'))
        {
            return Err(ApiError::new(
                InputError::ProfileInvalid,
                format!("{what} has control characters."),
            ));
        }
        Ok(())
    };
    text(
        &profile.display_name,
        MAX_DISPLAY_NAME,
        "display_name",
        false,
    )?;
    text(&profile.bio, MAX_BIO, "bio", true)?;
    if let Some(u) = &profile.picture_url {
        let bad = || {
            ApiError::new(
                InputError::ProfileInvalid,
                "picture_url must be an https URL of at most 2048 characters.",
            )
        };
        // RFC 3986 characters only, brackets only around the `[::1]` host (what the schema's
        // `uri` format admits); the URL parser would otherwise accept and re-encode anything.
        let uri_char = |c: char| c.is_ascii_alphanumeric() || "-._~:/?#@!$&'()*+,;=%".contains(c);
        let rest = u.strip_prefix("http://[::1]").unwrap_or(u);
        if u.len() > MAX_PICTURE_URL || !rest.chars().all(uri_char) {
            return Err(bad());
        }
        let url = url::Url::parse(u).map_err(|_| bad())?;
        let local = matches!(url.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if !(url.scheme() == "https" || (url.scheme() == "http" && local)) || url.host().is_none() {
            return Err(bad());
        }
    }
    Ok(())
}

fn reauth_key(session: uuid::Uuid) -> String {
    format!("fresh:{session}")
}

fn reauth_required() -> ApiError {
    ApiError::new(
        CredentialError::ReauthenticationRequired,
        "This operation needs a fresh authentication: re-authenticate (POST /api/reauth/start and /api/reauth/finish, or POST /api/reauth) and retry.",
    )
}

impl Sesame {
    /// Marks `session` freshly authenticated for the re-authentication window.
    /// The time is stored in the value and compared with the service clock; the entry's own
    /// lifetime only bounds how long it occupies the store.
    pub(crate) async fn mark_fresh(&self, proof: Fresh) -> Result<(), ApiError> {
        let session = proof.session_id();
        let window = Duration::from_secs(self.inner.settings.reauth_window);
        let at = self.now().to_string();
        self.inner
            .ephemeral
            .put(&reauth_key(session), at.as_bytes(), self.now_ms(), window)
            .await?;
        Ok(())
    }

    /// 403 `reauthentication_required` unless the session authenticated recently.
    pub async fn require_fresh(&self, who: &Authenticated) -> Result<(), ApiError> {
        let at = self
            .inner
            .ephemeral
            .get(&reauth_key(who.session_id), self.now_ms())
            .await?
            .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<u64>().ok());
        match at {
            Some(at) if self.now() < at.saturating_add(self.inner.settings.reauth_window) => Ok(()),
            _ => Err(reauth_required()),
        }
    }

    async fn caller(&self, who: &Authenticated) -> Result<(UserRecord, Username), ApiError> {
        let user = self
            .inner
            .store
            .user_by_id(who.user_id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        let name = Username::parse(&self.username_of(&user)?).map_err(ApiError::internal)?;
        Ok((user, name))
    }

    /// Re-authentication, step 1: the caller's own OPAQUE login start.
    pub async fn reauth_start(
        &self,
        who: &Authenticated,
        msg: &LoginStart,
        ctx: &RequestContext,
    ) -> Result<LoginChallenge, ApiError> {
        let (_, name) = self.caller(who).await?;
        if Username::parse(&msg.username)? != name {
            return Err(ApiError::new(
                InputError::UsernameMismatch,
                "Re-authenticate as the signed-in user.",
            ));
        }
        self.login_start(msg, ctx).await
    }

    /// Re-authentication, step 2: verifies KE3 and marks the session fresh. The confirmation's
    /// sealed payload is `{"reauthenticated": true, "expires_in": <seconds>}`.
    pub async fn reauth_finish(
        &self,
        who: &Authenticated,
        msg: &LoginFinish,
        ctx: &RequestContext,
    ) -> Result<LoginConfirmation, ApiError> {
        let (user, name) = self.caller(who).await?;
        let bytes = self
            .inner
            .ephemeral
            .take(&format!("login:{}", msg.login_id), self.now_ms())
            .await?
            .ok_or_else(|| ApiError::from(sesame_proto::Error::UnknownLogin))?;
        let state = ExpectLoginFinish::from_bytes(&bytes).map_err(ApiError::internal)?;
        if state.username() != &name {
            return Err(sesame_proto::Error::UnknownLogin.into());
        }
        let (verified, sealer) = match state.finish(msg, Timestamp(self.now())) {
            Ok(ok) => ok,
            Err(e) => {
                self.audit(
                    "protected.reauth_failed",
                    Some(user.id),
                    Some(e.code().into()),
                    ctx,
                )
                .await;
                return Err(e.into());
            }
        };
        self.throttle_reset(&self.username_index(name.as_str()))
            .await?;
        let fresh = Fresh::from_reauthentication(verified, name.as_str(), who.session_id)
            .ok_or_else(ApiError::authentication_failed)?;
        self.mark_fresh(fresh).await?;
        let payload = serde_json::to_vec(&sesame_api::account::Reauthenticated {
            reauthenticated: true,
            expires_in: self.inner.settings.reauth_window,
        })
        .map_err(ApiError::internal)?;
        Ok(sealer.seal(&mut self.rng().handle(), &payload)?)
    }

    /// Re-authentication with the password, for password-only clients.
    pub async fn reauth_password(
        &self,
        who: &Authenticated,
        password: Zeroizing<String>,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let (user, name) = self.caller(who).await?;
        let index = self.username_index(name.as_str());
        self.throttle_account(&index).await?;
        let record = CredentialRecord::from_bytes(&user.credential).map_err(ApiError::internal)?;
        let verdict = self
            .verify_password_on_pool(&name, Some(record), password)
            .await?;
        // A wrong password is a failed re-authentication; anything else (a record the
        // server cannot use) is an error of its own, not a bad password.
        let verified = match verdict {
            Ok(verified) => verified,
            Err(sesame_proto::Error::AuthenticationFailed) => {
                self.audit(
                    "protected.reauth_failed",
                    Some(user.id),
                    Some("bad_password".into()),
                    ctx,
                )
                .await;
                return Err(ApiError::authentication_failed());
            }
            Err(other) => return Err(other.into()),
        };
        self.throttle_reset(&index).await?;
        let fresh = Fresh::from_reauthentication(verified, name.as_str(), who.session_id)
            .ok_or_else(ApiError::authentication_failed)?;
        self.mark_fresh(fresh).await
    }

    /// The caller's account, profile and factor status.
    pub async fn me(&self, who: &Authenticated) -> Result<sesame_api::account::Me, ApiError> {
        let (user, name) = self.caller(who).await?;
        let email = user.email_sealed.as_ref().and_then(|s| {
            self.inner
                .secrets
                .fields
                .open("email", user.id.as_bytes(), s)
        });
        Ok(sesame_api::account::Me {
            user_id: user.id,
            uuid: user.id,
            username: name.as_str().to_owned(),
            status: user.status.wire(),
            created_at: user.created_at,
            last_login_at: user.last_login_at,
            profile: self.profile(user.id).await?,
            totp_enabled: self.has_totp(user.id).await?,
            backup_codes_left: self.backup_codes_left(user.id).await? as u64,
            security_questions: self.security_question_count(user.id).await? as u64,
            email,
            role: user.role,
            is_admin: user.role == crate::store::Role::Admin,
        })
    }

    async fn profile(&self, user: uuid::Uuid) -> Result<Profile, ApiError> {
        match self.inner.store.factor(user, PROFILE, &Slot::Only).await? {
            Some(f) => serde_json::from_slice(&f.value).map_err(ApiError::internal),
            None => Ok(Profile::default()),
        }
    }

    /// Updates the caller's profile (fields present in `update` only).
    pub async fn update_profile(
        &self,
        who: &Authenticated,
        update: ProfileUpdate,
        ctx: &RequestContext,
    ) -> Result<Profile, ApiError> {
        let mut p = self.profile(who.user_id).await?;
        if let Some(v) = update.display_name {
            p.display_name = v;
        }
        if let Some(v) = update.bio {
            p.bio = v;
        }
        if let Some(v) = update.picture_url {
            p.picture_url = v;
        }
        validate_profile(&p)?;
        self.inner
            .store
            .put_factor(&FactorRecord {
                user_id: who.user_id,
                kind: PROFILE,
                slot: Slot::Only,
                value: serde_json::to_vec(&p).map_err(ApiError::internal)?,
                counter: 0,
                created_at: self.now_i64(),
                used_at: None,
            })
            .await?;
        self.audit("protected.profile_updated", Some(who.user_id), None, ctx)
            .await;
        Ok(p)
    }

    /// Regenerates the backup codes (fresh authentication needed); the old set stops working.
    pub async fn regenerate_backup_codes(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<Vec<String>, ApiError> {
        self.require_fresh(who).await?;
        let codes = self.issue_backup_codes(who.user_id).await?;
        self.audit(
            "protected.backup_codes_regenerated",
            Some(who.user_id),
            None,
            ctx,
        )
        .await;
        Ok(codes)
    }

    /// Password change, client-side: step 1 (fresh authentication needed).
    pub async fn password_change_start(
        &self,
        who: &Authenticated,
        msg: &RegistrationStart,
    ) -> Result<RegistrationChallenge, ApiError> {
        self.require_fresh(who).await?;
        let (_, name) = self.caller(who).await?;
        if Username::parse(&msg.username)? != name {
            return Err(ApiError::new(
                InputError::UsernameMismatch,
                "Change the signed-in user's password.",
            ));
        }
        Ok(proto::registration_challenge(
            &self.inner.secrets.opaque,
            &name,
            msg,
            self.inner.settings.ksf,
        )?)
    }

    /// Password change, client-side: step 2 stores the new record.
    pub async fn password_change_finish(
        &self,
        who: &Authenticated,
        msg: &RegistrationFinish,
        revoke_other_sessions: bool,
        ctx: &RequestContext,
    ) -> Result<u64, ApiError> {
        self.require_fresh(who).await?;
        let (_, name) = self.caller(who).await?;
        if Username::parse(&msg.username)? != name {
            return Err(ApiError::new(
                InputError::UsernameMismatch,
                "Change the signed-in user's password.",
            ));
        }
        let record = proto::registration_record(msg, &KsfPolicy::DEFAULT)?;
        self.replace_credential(who, &record, revoke_other_sessions, ctx)
            .await
    }

    /// Password change, server-assisted.
    pub async fn password_change(
        &self,
        who: &Authenticated,
        new_password: Zeroizing<String>,
        revoke_other_sessions: bool,
        ctx: &RequestContext,
    ) -> Result<u64, ApiError> {
        self.require_fresh(who).await?;
        let (_, name) = self.caller(who).await?;
        check_password(&new_password, &name)?;
        let record = self.record_for_password(&name, new_password).await?;
        self.replace_credential(who, &record, revoke_other_sessions, ctx)
            .await
    }

    async fn replace_credential(
        &self,
        who: &Authenticated,
        record: &CredentialRecord,
        revoke_other_sessions: bool,
        ctx: &RequestContext,
    ) -> Result<u64, ApiError> {
        // One transaction: the new credential and the revocation commit together.
        let counts = self
            .inner
            .store
            .write_atomically(&writes::password_change(
                who.user_id,
                record.to_bytes(),
                revoke_other_sessions.then_some(who.session_id),
                self.now_i64(),
            ))
            .await?;
        let revoked = counts.get(1).copied().unwrap_or(0);
        if revoke_other_sessions {
            self.sessions_ended(
                who.user_id,
                crate::relay::SessionsEnded::AllBut(Some(who.session_id)),
            )
            .await;
        }
        self.audit(
            "protected.password_changed",
            Some(who.user_id),
            Some(format!("revoked={revoked}")),
            ctx,
        )
        .await;
        Ok(revoked)
    }

    /// Deletes the caller's account and everything of it (fresh authentication needed).
    pub async fn delete_account(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        self.inner.store.delete_user(who.user_id).await?;
        self.sessions_ended(who.user_id, crate::relay::SessionsEnded::AllBut(None))
            .await;
        self.audit("protected.account_deleted", Some(who.user_id), None, ctx)
            .await;
        Ok(())
    }

    /// TOTP enrolment for the caller (seed `POST /api/generate-qr`).
    pub async fn generate_qr(&self, who: &Authenticated) -> Result<super::TotpEnrolment, ApiError> {
        self.require_fresh(who).await?;
        let (_, name) = self.caller(who).await?;
        self.totp_enrol(who.user_id, name.as_str()).await
    }

    /// Confirms TOTP enrolment (seed `POST /api/enable-authenticator`).
    pub async fn enable_authenticator(
        &self,
        who: &Authenticated,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        let (_, name) = self.caller(who).await?;
        self.totp_confirm(who.user_id, name.as_str(), code, ctx)
            .await
    }

    /// Turns TOTP off (fresh authentication and a valid code needed).
    pub async fn disable_authenticator(
        &self,
        who: &Authenticated,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        self.require_fresh(who).await?;
        let (_, name) = self.caller(who).await?;
        self.totp_disable(who.user_id, name.as_str(), code, ctx)
            .await
    }
}
