//! Login: OPAQUE (start, finish, the client's acknowledgement) and password login.

use std::time::Duration;

use sesame_proto::messages::{
    AckStatus, LoginAck, LoginChallenge, LoginConfirmation, LoginFinish, LoginStart,
};
use sesame_proto::policy::{Username, PASSWORD_MAX_CHARS};
use sesame_proto::server::{self as proto, ExpectLoginFinish, PasswordVerified};
use sesame_proto::{CredentialRecord, Timestamp};
use uuid::Uuid;
use zeroize::Zeroizing;

use super::proof::LoginComplete;
use super::second_factor::{LoginOutcome, SecondFactorVerified, SecondStep};
use super::{RequestContext, Sesame, SessionIssued};
use crate::error::{ApiError, CredentialError, InputError};
use crate::store::{AccountStatus, UserRecord};

/// Longest free-text reason a client may attach to a `failed` acknowledgement.
const MAX_ACK_REASON_CHARS: usize = 200;

/// How long the store keeps a login state past its own expiry (so a late finish gets
/// `login_expired`, not `unknown_login`).
const STATE_GRACE: Duration = Duration::from_secs(60);

fn login_key(id: &str) -> String {
    format!("login:{id}")
}

fn ack_key(id: &str) -> String {
    format!("ack:{id}")
}

impl Sesame {
    /// The account under `index` and its parsed credential record. For an unknown name the
    /// stand-in record is parsed (and dropped), so that both paths read and parse a record.
    async fn user_and_record(
        &self,
        index: &[u8],
    ) -> Result<Option<(UserRecord, CredentialRecord)>, ApiError> {
        let user = self.inner.store.user_by_index(index).await?;
        let bytes = user
            .as_ref()
            .map_or(self.inner.stand_in.record.as_slice(), |u| {
                u.credential.as_slice()
            });
        let record = CredentialRecord::from_bytes(bytes).map_err(|e| {
            let whose = user
                .as_ref()
                .map_or("the stand-in".to_owned(), |u| u.id.to_string());
            ApiError::internal(format!("credential of {whose}: {e}"))
        })?;
        Ok(user.map(|u| (u, record)))
    }

    /// OPAQUE login, step 2: answers `username` + KE1 with a challenge. Unknown users get an
    /// indistinguishable challenge. Counts as an attempt for throttling.
    pub async fn login_start(
        &self,
        msg: &LoginStart,
        ctx: &RequestContext,
    ) -> Result<LoginChallenge, ApiError> {
        self.throttle_address(ctx)
            .await
            .inspect_err(|e| crate::metrics::login_throttled("opaque", e))?;
        let username = Username::parse(&msg.username)?;
        let index = self.username_index(username.as_str());
        self.throttle_login(&index, ctx)
            .await
            .inspect_err(|e| crate::metrics::login_throttled("opaque", e))?;
        let found = self.user_and_record(&index).await?;
        let ttl = self.inner.settings.login_ttl;
        let (state, challenge) = proto::start_login(
            &mut self.rng().handle(),
            &self.inner.secrets.opaque,
            &username,
            found.as_ref().map(|(_, r)| r),
            msg,
            Timestamp(self.now()),
            ttl,
        )?;
        self.inner
            .ephemeral
            .put(
                &login_key(&challenge.login_id),
                &state.to_bytes(),
                self.now_ms(),
                // The state carries its own expiry, checked against the service clock when
                // the login finishes (`login_expired`); the store keeps it a little longer so
                // that check, not the store, decides.
                Duration::from_secs(ttl).saturating_add(STATE_GRACE),
            )
            .await?;
        Ok(challenge)
    }

    /// OPAQUE login, step 4: verifies KE3, creates the session and returns it sealed in the
    /// confirmation (and in clear for the caller's bookkeeping; transports send only the
    /// confirmation).
    pub async fn login_finish(
        &self,
        msg: &LoginFinish,
        ctx: &RequestContext,
    ) -> Result<(LoginConfirmation, LoginOutcome), ApiError> {
        let bytes = self
            .inner
            .ephemeral
            .take(&login_key(&msg.login_id), self.now_ms())
            .await?
            .ok_or_else(|| ApiError::from(sesame_proto::Error::UnknownLogin))?;
        let state = ExpectLoginFinish::from_bytes(&bytes).map_err(ApiError::internal)?;
        let ke2 = state.ke2().to_vec(); // what a device key signs (service/devices.rs)
        let index = self.username_index(state.username().as_str());
        let user = self.inner.store.user_by_index(&index).await?;
        let (verified, sealer) = match state.finish(msg, Timestamp(self.now())) {
            Ok(ok) => ok,
            Err(e) => {
                let reason = match (&e, &user) {
                    (sesame_proto::Error::AuthenticationFailed, None) => "unknown_user".to_owned(),
                    (sesame_proto::Error::AuthenticationFailed, Some(_)) => "bad_proof".to_owned(),
                    (other, _) => other.code().to_owned(),
                };
                crate::metrics::login("opaque", "failure");
                self.audit("login.failure", user.map(|u| u.id), Some(reason), ctx)
                    .await;
                return Err(e.into());
            }
        };
        let user = user.ok_or_else(ApiError::authentication_failed)?;
        // Device key factor: without a valid device signature over this challenge, a user
        // who requires one fails exactly like a wrong password.
        self.check_device_login(&user, msg, &ke2, ctx)
            .await
            .inspect_err(|_| crate::metrics::login("opaque", "failure"))?;
        let outcome = self.complete_login(verified, &user, &index, ctx).await?;
        let payload = serde_json::to_vec(&outcome.to_json()).map_err(ApiError::internal)?;
        let confirmation = sealer.seal(&mut self.rng().handle(), &payload)?;
        // Remember what this login made (a session or a second-factor ticket), for the
        // client's acknowledgement.
        let ack = match &outcome {
            LoginOutcome::Session(issued) => format!("{}|session|{}", user.id, issued.session_id),
            LoginOutcome::SecondFactor(m) => format!("{}|mfa|{}", user.id, m.mfa_token),
        };
        self.inner
            .ephemeral
            .put(
                &ack_key(&msg.login_id),
                ack.as_bytes(),
                self.now_ms(),
                Duration::from_secs(self.inner.settings.login_ttl),
            )
            .await?;
        Ok((confirmation, outcome))
    }

    /// The client's verdict on the confirmation (WebSocket and TCP). `failed` revokes the
    /// session the login created and is audited: the client could not authenticate the
    /// server. Returns whether the session was revoked.
    pub async fn login_ack(&self, ack: &LoginAck, ctx: &RequestContext) -> Result<bool, ApiError> {
        let Some(bytes) = self
            .inner
            .ephemeral
            .take(&ack_key(&ack.login_id), self.now_ms())
            .await?
        else {
            return Err(sesame_proto::Error::UnknownLogin.into());
        };
        let text = String::from_utf8_lossy(&bytes);
        let mut parts = text.splitn(3, '|');
        let (Some(user), Some(kind), Some(made)) = (
            parts.next().and_then(|u| Uuid::parse_str(u).ok()),
            parts.next(),
            parts.next(),
        ) else {
            return Err(ApiError::internal("malformed acknowledgement record"));
        };
        match ack.status {
            AckStatus::Success => Ok(false),
            AckStatus::Failed => {
                match (kind, Uuid::parse_str(made)) {
                    ("session", Ok(session)) => {
                        self.inner.store.delete_session(user, session).await?;
                    }
                    _ => self.burn_ticket(made).await?,
                }
                let reason: String = ack
                    .reason
                    .as_deref()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(MAX_ACK_REASON_CHARS)
                    .collect();
                self.audit("login.server_auth_failed", Some(user), Some(reason), ctx)
                    .await;
                Ok(true)
            }
        }
    }

    /// Password login (seed `POST /api/login`, TCP `AUTH`): the server runs both halves of
    /// OPAQUE on the hashing pool. Unknown users cost the same work and get the same answer.
    pub async fn login_password(
        &self,
        username: &str,
        password: Zeroizing<String>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, ApiError> {
        self.throttle_address(ctx)
            .await
            .inspect_err(|e| crate::metrics::login_throttled("pwd", e))?;
        let username = Username::parse(username)?;
        if sesame_proto::policy::normalize_password(&password)
            .chars()
            .count()
            > PASSWORD_MAX_CHARS
        {
            return Err(ApiError::new(
                InputError::PasswordTooLong,
                format!("Passwords are at most {PASSWORD_MAX_CHARS} characters."),
            ));
        }
        let index = self.username_index(username.as_str());
        self.throttle_login(&index, ctx)
            .await
            .inspect_err(|e| crate::metrics::login_throttled("pwd", e))?;
        let found = self.user_and_record(&index).await?;
        let record = found.as_ref().map(|(_, r)| r.clone());
        let result = self
            .verify_password_on_pool(&username, record, password)
            .await?;
        let user = found.map(|(u, _)| u);
        let verified = match result {
            Ok(v) => v,
            Err(e) => {
                let reason = if user.is_some() {
                    "bad_password"
                } else {
                    "unknown_user"
                };
                crate::metrics::login("pwd", "failure");
                self.audit(
                    "login.failure",
                    user.map(|u| u.id),
                    Some(format!("method=pwd {reason}")),
                    ctx,
                )
                .await;
                return Err(e.into());
            }
        };
        let user = user.ok_or_else(ApiError::authentication_failed)?;
        // A password login carries no device signature (service/devices.rs).
        self.refuse_password_if_device_required(&user, ctx)
            .await
            .inspect_err(|_| crate::metrics::login("pwd", "failure"))?;
        self.complete_login(verified, &user, &index, ctx).await
    }

    /// After a verified password: refuse banned and unverified accounts (saying so only
    /// now), reset the throttle, then either ask for a second factor or create the session.
    async fn complete_login(
        &self,
        verified: PasswordVerified,
        user: &UserRecord,
        index: &[u8],
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, ApiError> {
        let method = verified.method();
        refuse_inactive(self, user, method.as_str(), ctx).await?;
        let methods = [method.as_str().to_owned()];
        let username = verified.username().as_str().to_owned();
        // With a second factor pending the attempt counter is not reset: only a completed
        // login resets it, so knowing the password buys no fresh code guesses.
        let none = match self
            .second_factor_ticket(user.id, &username, &methods)
            .await?
        {
            SecondStep::NotNeeded(none) => none,
            SecondStep::Required(ticket) => {
                crate::metrics::login(method.as_str(), "second_factor_required");
                self.audit(
                    "login.second_factor_required",
                    Some(user.id),
                    Some(format!("method={}", method.as_str())),
                    ctx,
                )
                .await;
                return Ok(LoginOutcome::SecondFactor(ticket));
            }
        };
        self.throttle_reset(index).await?;
        let login = LoginComplete::password_only(verified, user.id, none);
        let issued = self.create_session(login, ctx).await?;
        crate::metrics::login(method.as_str(), "success");
        Ok(LoginOutcome::Session(issued))
    }

    /// Creates the session once the second factor checked out.
    pub(crate) async fn session_after_second_factor(
        &self,
        proof: SecondFactorVerified,
        ctx: &RequestContext,
    ) -> Result<SessionIssued, ApiError> {
        let login = LoginComplete::after_second_factor(proof);
        let method = login.method_label();
        let user = self
            .inner
            .store
            .user_by_id(login.user_id())
            .await?
            .ok_or_else(ApiError::authentication_failed)?;
        if user.status == AccountStatus::Banned {
            crate::metrics::login(method, "banned");
            return Err(banned());
        }
        let issued = self.create_session(login, ctx).await?;
        crate::metrics::login(method, "success");
        Ok(issued)
    }
}

fn banned() -> ApiError {
    ApiError::new(CredentialError::AccountBanned, "This account is banned.")
}

/// Refuses a banned or not yet verified account, after its password checked out.
pub(super) async fn refuse_inactive(
    s: &Sesame,
    user: &UserRecord,
    method: &'static str,
    ctx: &RequestContext,
) -> Result<(), ApiError> {
    match user.status {
        AccountStatus::Banned => {
            crate::metrics::login(method, "banned");
            s.audit("login.banned", Some(user.id), None, ctx).await;
            Err(banned())
        }
        AccountStatus::Pending => Err(ApiError::new(
            CredentialError::AccountPending,
            "Verify the email address first (POST /api/verify-email).",
        )),
        AccountStatus::Active => Ok(()),
    }
}
