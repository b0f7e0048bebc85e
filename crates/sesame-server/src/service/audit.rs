//! Writing the audit log.
//!
//! Events (the `event` column): `register`, `login.success`, `login.failure`,
//! `login.banned`, `login.server_auth_failed` (the client reported that the server's
//! confirmation did not verify), `logout`, `logout_all`, `session.revoked`,
//! `session.refresh_denied`. Password logins carry `method=pwd` in the reason. Each row has the
//! time, the user (when known), the client address and user agent; never a password, token
//! or username in clear.

use uuid::Uuid;

use super::{RequestContext, Sesame};
use crate::store::NewAuditEvent;

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
}
