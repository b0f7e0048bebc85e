//! Writing the audit log.
//!
//! Events (the `event` column): `register`, `login.success`, `login.failure`,
//! `login.banned`, `login.server_auth_failed` (the client reported that the server's
//! confirmation did not verify), `logout`, `logout_all`, `session.revoked`,
//! `session.refresh_denied`. Password logins carry `method=pwd` in the reason. Each row has the
//! time, the user (when known), the client address and user agent; never a password, token
//! or username in clear.

use sesame_api::admin::{Activity, ActivityEntry, ActivityQuery, MAX_ACTIVITY};
use uuid::Uuid;

use super::{Authenticated, RequestContext, Sesame};
use crate::error::ApiError;
use crate::store::{AuditQuery, NewAuditEvent};

impl Sesame {
    /// Appends one audit event; a failure to write is logged, never returned to the client.
    /// (`login.success` is different: it commits in the same transaction as the session, so
    /// a login that cannot be audited does not happen; `Sesame::create_session`.)
    pub(crate) async fn audit(
        &self,
        event: &str,
        user: Option<Uuid>,
        reason: Option<String>,
        ctx: &RequestContext,
    ) {
        let e = self.audit_event(event, user, reason, ctx);
        if let Err(err) = self.inner.store.append_audit(&e).await {
            tracing::error!(%err, event, "audit write failed");
        }
    }

    /// The audit row for `event` now, for writes that commit it together with other changes.
    pub(crate) fn audit_event(
        &self,
        event: &str,
        user: Option<Uuid>,
        reason: Option<String>,
        ctx: &RequestContext,
    ) -> NewAuditEvent {
        NewAuditEvent {
            at: self.now_i64(),
            event: event.to_owned(),
            user_id: user,
            reason,
            client_addr: ctx.client_addr.map(|a| a.to_string()),
            user_agent: ctx.user_agent.clone(),
        }
    }

    /// `GET /api/me/activity`: the caller's own sign-ins and security events, newest first.
    /// The `admin.*` rows about the account are left out: they carry the admin's address.
    pub async fn my_activity(
        &self,
        who: &Authenticated,
        query: &ActivityQuery,
    ) -> Result<Activity, ApiError> {
        let limit = super::admin_api::page_limit(query.limit, MAX_ACTIVITY, MAX_ACTIVITY)?;
        let rows = self
            .inner
            .store
            .list_audit(&AuditQuery {
                user_id: Some(who.user_id),
                exclude_prefix: Some("admin.".into()),
                limit,
                ..AuditQuery::default()
            })
            .await?;
        Ok(Activity {
            events: rows
                .into_iter()
                .map(|r| ActivityEntry {
                    at: r.at,
                    event: r.event,
                    client_addr: r.client_addr,
                    user_agent: r.user_agent,
                })
                .collect(),
        })
    }
}
