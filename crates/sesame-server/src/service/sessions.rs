//! Sessions: creation, refresh, authentication of access tokens, listing and revocation.

use uuid::Uuid;

use super::proof::{Fresh, LoginComplete};
use super::{RequestContext, Sesame, SessionIssued};
use crate::error::{ApiError, CredentialError, InputError};
use crate::relay::SessionsEnded;
use crate::store::{AccountStatus, NewSession, SessionRecord};
use crate::tokens::{hash_session_token, new_session_token, SESSION_TOKEN_PREFIX};

pub use sesame_api::sessions::SessionView;
pub use sesame_api::sessions::{AccessGrant, AuthMethod};

/// A caller whose access token verified and whose session is still live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The user.
    pub user_id: Uuid,
    /// The session the token was issued from.
    pub session_id: Uuid,
}

/// A refresh records use (and extends the idle expiry) at most this often, seconds.
const TOUCH_INTERVAL_SECS: i64 = 60;

fn session_invalid() -> ApiError {
    ApiError::new(
        CredentialError::SessionInvalid,
        "The session has ended; log in again.",
    )
}

impl Sesame {
    /// A completed login: creates the session and records the login (`last_login_at` and
    /// the audit event `login.success` with `detail`) in one transaction, shared with the
    /// logins committing at the same moment (`store/group.rs`), then issues the first
    /// access token.
    pub(crate) async fn create_session(
        &self,
        login: LoginComplete,
        ctx: &RequestContext,
    ) -> Result<SessionIssued, ApiError> {
        let user_id = login.user_id();
        let now = self.now_i64();
        let s = &self.inner.settings;
        let (token, hash) = new_session_token(self.rng());
        // Stored and signed as RFC 8176 `amr` values (`pwd`, `otp`, `hwk`, `mfa`).
        let methods: Vec<String> = login.methods().iter().map(|m| m.amr().to_owned()).collect();
        let session = NewSession {
            id: self.rng().uuid(),
            user_id,
            token_hash: hash,
            created_at: now,
            last_seen_at: now,
            idle_expires_at: now + secs(s.session_idle.min(s.session_absolute)),
            absolute_expires_at: now + secs(s.session_absolute),
            client_addr: ctx.client_addr.map(|a| a.to_string()),
            user_agent: ctx.user_agent.clone(),
            methods: methods.clone(),
        };
        let detail = login.audit_detail();
        let audit = self.audit_event("login.success", Some(user_id), Some(detail), ctx);
        let session_id = session.id;
        let absolute_expires_at = session.absolute_expires_at;
        self.writer().login(session, audit).await?;
        // A login is itself a fresh authentication for protected operations.
        self.mark_fresh(Fresh::from_login(&login, session_id))
            .await?;
        let (access_token, _) = self
            .inner
            .signer
            .issue(user_id, session_id, &methods, self.now(), self.rng())
            .map_err(ApiError::internal)?;
        Ok(SessionIssued {
            user_id,
            username: login.username().to_owned(),
            session_id,
            session_token: token,
            access_token,
            token_type: "Bearer".into(),
            expires_in: self.inner.signer.ttl(),
            session_expires_at: absolute_expires_at,
            session_idle_timeout: s.session_idle.min(s.session_absolute),
        })
    }

    async fn live_session(
        &self,
        session: Option<SessionRecord>,
    ) -> Result<SessionRecord, ApiError> {
        let now = self.now_i64();
        match session {
            Some(s) if s.idle_expires_at > now && s.absolute_expires_at > now => Ok(s),
            Some(s) => {
                self.inner.store.delete_session(s.user_id, s.id).await?;
                Err(session_invalid())
            }
            None => Err(session_invalid()),
        }
    }

    /// Issues a new access token for a live session and extends its idle expiry.
    pub async fn refresh(
        &self,
        session_token: &str,
        ctx: &RequestContext,
    ) -> Result<AccessGrant, ApiError> {
        if !session_token.starts_with(SESSION_TOKEN_PREFIX) || session_token.len() > 128 {
            return Err(session_invalid());
        }
        // One read: the session and its owner's status.
        let found = self
            .inner
            .store
            .session_and_owner_by_token_hash(&hash_session_token(session_token))
            .await?;
        let owner = found.as_ref().and_then(|(_, status)| *status);
        let session = self.live_session(found.map(|(s, _)| s)).await?;
        if owner.is_none_or(|status| status == AccountStatus::Banned) {
            self.inner
                .store
                .delete_session(session.user_id, session.id)
                .await?;
            self.audit(
                "session.refresh_denied",
                Some(session.user_id),
                Some("banned_or_deleted".into()),
                ctx,
            )
            .await;
            return Err(session_invalid());
        }
        let now = self.now_i64();
        // Extending the idle expiry by less than a minute is not worth a write (the idle
        // timeout is days): refreshes in quick succession stay read-only, so they never wait
        // for the database's write lock.
        if now - session.last_seen_at >= TOUCH_INTERVAL_SECS {
            let idle =
                (now + secs(self.inner.settings.session_idle)).min(session.absolute_expires_at);
            self.inner
                .store
                .touch_session(session.id, now, idle)
                .await?;
        }
        let (access_token, _) = self
            .inner
            .signer
            .issue(
                session.user_id,
                session.id,
                &session.methods,
                self.now(),
                self.rng(),
            )
            .map_err(ApiError::internal)?;
        Ok(AccessGrant {
            access_token,
            token_type: "Bearer".into(),
            expires_in: self.inner.signer.ttl(),
        })
    }

    /// Verifies an access token and that its session is still live (so logout takes effect
    /// at once on Sesame's own routes; other services rely on the token's short expiry).
    pub async fn authenticate(&self, access_token: &str) -> Result<Authenticated, ApiError> {
        let claims = self
            .inner
            .signer
            .verify(access_token, self.now())
            .map_err(|_| ApiError::unauthorized())?;
        let user_id = Uuid::parse_str(&claims.sub).map_err(|_| ApiError::unauthorized())?;
        let session_id = Uuid::parse_str(&claims.sid).map_err(|_| ApiError::unauthorized())?;
        let session = self.inner.store.session_by_id(session_id).await?;
        match self.live_session(session).await {
            Ok(s) if s.user_id == user_id => Ok(Authenticated {
                user_id,
                session_id,
            }),
            _ => Err(ApiError::unauthorized()),
        }
    }

    /// Ends the caller's session.
    pub async fn logout(&self, who: &Authenticated, ctx: &RequestContext) -> Result<(), ApiError> {
        self.inner
            .store
            .delete_session(who.user_id, who.session_id)
            .await?;
        self.sessions_ended(who.user_id, SessionsEnded::One(who.session_id))
            .await;
        self.audit("logout", Some(who.user_id), None, ctx).await;
        Ok(())
    }

    /// Ends the session a session token belongs to (the browser's sign-out, which holds the
    /// token in a cookie rather than an access token). An unknown or expired token ends
    /// nothing and is not an error: the caller is signed out either way.
    pub async fn logout_by_token(
        &self,
        session_token: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        if !session_token.starts_with(SESSION_TOKEN_PREFIX) || session_token.len() > 128 {
            return Ok(());
        }
        let found = self
            .inner
            .store
            .session_and_owner_by_token_hash(&hash_session_token(session_token))
            .await?;
        let Some((session, _)) = found else {
            return Ok(());
        };
        self.inner
            .store
            .delete_session(session.user_id, session.id)
            .await?;
        self.sessions_ended(session.user_id, SessionsEnded::One(session.id))
            .await;
        self.audit("logout", Some(session.user_id), None, ctx).await;
        Ok(())
    }

    /// Ends every session of the caller; returns how many.
    pub async fn logout_all(
        &self,
        who: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<u64, ApiError> {
        let n = self
            .inner
            .store
            .delete_sessions_for_user(who.user_id, None)
            .await?;
        self.sessions_ended(who.user_id, SessionsEnded::AllBut(None))
            .await;
        self.audit(
            "logout_all",
            Some(who.user_id),
            Some(format!("revoked={n}")),
            ctx,
        )
        .await;
        Ok(n)
    }

    /// The caller's live sessions, newest first.
    pub async fn sessions(&self, who: &Authenticated) -> Result<Vec<SessionView>, ApiError> {
        let now = self.now_i64();
        Ok(self
            .inner
            .store
            .sessions_for_user(who.user_id)
            .await?
            .into_iter()
            .filter(|s| s.idle_expires_at > now && s.absolute_expires_at > now)
            .map(|s| SessionView {
                current: s.id == who.session_id,
                id: s.id,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                idle_expires_at: s.idle_expires_at,
                absolute_expires_at: s.absolute_expires_at,
                client_addr: s.client_addr,
                user_agent: s.user_agent,
                methods: amr(&s.methods),
            })
            .collect())
    }

    /// Revokes one of the caller's sessions; 404 if it is not theirs or does not exist.
    pub async fn revoke_session(
        &self,
        who: &Authenticated,
        id: Uuid,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        if !self.inner.store.delete_session(who.user_id, id).await? {
            return Err(ApiError::new(
                InputError::SessionNotFound,
                "No such session.",
            ));
        }
        self.sessions_ended(who.user_id, SessionsEnded::One(id))
            .await;
        self.audit(
            "session.revoked",
            Some(who.user_id),
            Some(format!("session={id}")),
            ctx,
        )
        .await;
        Ok(())
    }
}

fn secs(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX / 4)
}

impl Sesame {
    /// Ends the session that `session_token` belongs to (TCP `LOGOUT`).
    pub async fn logout_session_token(
        &self,
        session_token: &str,
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let found = self
            .inner
            .store
            .session_by_token_hash(&hash_session_token(session_token))
            .await?
            .ok_or_else(session_invalid)?;
        self.inner
            .store
            .delete_session(found.user_id, found.id)
            .await?;
        self.sessions_ended(found.user_id, SessionsEnded::One(found.id))
            .await;
        self.audit("logout", Some(found.user_id), None, ctx).await;
        Ok(())
    }

    /// Closes the live relay connections (WebSocket and TCP) of sessions just deleted, on
    /// every node: called after each revocation, logout, ban and account deletion.
    pub(crate) async fn sessions_ended(&self, user: Uuid, which: SessionsEnded) {
        self.relay().end_sessions(user, which).await;
    }
}

/// The RFC 8176 `amr` values of a session's stored method names, each once, in order.
pub(crate) fn amr(methods: &[String]) -> Vec<AuthMethod> {
    let mut out: Vec<AuthMethod> = Vec::with_capacity(methods.len());
    for m in methods.iter().filter_map(|m| AuthMethod::from_amr(m)) {
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}
