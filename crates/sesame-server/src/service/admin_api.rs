//! The admin API (`/api/admin/…`): what an account with the admin role may do over the
//! network. The operator grants the role with `sesame admin user grant-admin` (`admin.rs`).
//!
//! Every operation starts with [`Sesame::require_admin`], which reads the caller's role from
//! the store on every call, so a revoked role takes effect at the next request (`403
//! forbidden`). The destructive ones (ban, revoke-sessions, reset-2fa, delete) also need a
//! fresh authentication, exactly like `DELETE /api/me`. An admin cannot ban or delete their
//! own account here (`400 cannot_target_self`).
//!
//! Every call is audited with `by=<admin id>` in the reason. An action (`admin.ban`,
//! `admin.unban`, `admin.revoke_sessions`, `admin.reset_2fa`, `admin.delete`) is a row about
//! its target; a read (`admin.users.list`, `admin.user.show`, `admin.audit.read`) is a row
//! about the admin, with the user it concerned as `user=<id>` in the reason, so that reads do
//! not fill the target's own history. Usernames never go into the audit log, so a search's
//! text is not recorded either.

use sesame_api::admin::{
    AuditEntry, AuditPage, AuditQuery as AuditFilter, UserPage, UserQuery, DEFAULT_AUDIT_PAGE,
    DEFAULT_USER_PAGE, MAX_AUDIT_PAGE, MAX_EVENT_CHARS, MAX_OFFSET, MAX_SEARCH_CHARS,
    MAX_USER_PAGE,
};
use sesame_proto::policy::Username;
use uuid::Uuid;

use super::admin::no_such_user;
use super::{Authenticated, RequestContext, Sesame, UserSummary};
use crate::error::{ApiError, CredentialError, InputError};
use crate::store::{writes, AuditQuery, AuditRecord, Role, UserRecord};

mod search;

/// A caller whose account had the admin role when the request was checked: only
/// [`Sesame::require_admin`] makes one.
#[derive(Debug)]
pub struct Admin {
    id: Uuid,
    who: Authenticated,
}

fn forbidden() -> ApiError {
    ApiError::new(CredentialError::Forbidden, "This needs an admin account.")
}

fn bad_request(message: impl Into<std::borrow::Cow<'static, str>>) -> ApiError {
    ApiError::new(InputError::InvalidRequest, message)
}

/// A page size: `default` when absent, `400 invalid_request` outside `1..=max`.
pub(super) fn page_limit(asked: Option<u32>, default: u32, max: u32) -> Result<u32, ApiError> {
    match asked.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n),
        _ => Err(bad_request(format!("limit must be 1 to {max}."))),
    }
}

/// The admin actions that change an account, with their audit event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminAction {
    /// Ban: no login, every session ended (fresh; not on oneself).
    Ban,
    /// Lift a ban.
    Unban,
    /// End every session (fresh).
    RevokeSessions,
    /// Remove the TOTP secret and the device-key requirement (fresh).
    ResetSecondFactors,
    /// Delete the account (fresh; not on oneself).
    Delete,
}

impl AdminAction {
    /// The audit event of the action (`admin.ban`, …).
    pub fn event(self) -> &'static str {
        match self {
            AdminAction::Ban => "admin.ban",
            AdminAction::Unban => "admin.unban",
            AdminAction::RevokeSessions => "admin.revoke_sessions",
            AdminAction::ResetSecondFactors => "admin.reset_2fa",
            AdminAction::Delete => "admin.delete",
        }
    }

    fn needs_fresh(self) -> bool {
        !matches!(self, AdminAction::Unban)
    }

    fn allowed_on_self(self) -> bool {
        !matches!(self, AdminAction::Ban | AdminAction::Delete)
    }
}

impl Sesame {
    /// `403 forbidden` unless the caller's account has the admin role now (read from the
    /// store on every call).
    pub async fn require_admin(&self, who: &Authenticated) -> Result<Admin, ApiError> {
        let user = self
            .inner
            .store
            .user_by_id(who.user_id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        if user.role != Role::Admin {
            return Err(forbidden());
        }
        Ok(Admin {
            id: user.id,
            who: who.clone(),
        })
    }

    /// Appends an admin audit row: about `target` (the admin when `None`), `by=<admin id>`
    /// and `detail` in the reason.
    async fn audit_admin(
        &self,
        admin: &Admin,
        event: &str,
        target: Option<Uuid>,
        detail: Option<String>,
        ctx: &RequestContext,
    ) {
        let mut reason = format!("by={}", admin.id);
        if let Some(detail) = detail {
            reason.push(' ');
            reason.push_str(&detail);
        }
        self.audit(event, Some(target.unwrap_or(admin.id)), Some(reason), ctx)
            .await;
    }

    /// The user a path names: a name that cannot be a username is not found either.
    async fn admin_target(&self, name: &str) -> Result<UserRecord, ApiError> {
        let Ok(username) = Username::parse(name) else {
            return Err(no_such_user());
        };
        self.inner
            .store
            .user_by_index(&self.username_index(username.as_str()))
            .await?
            .ok_or_else(no_such_user)
    }

    /// `GET /api/admin/users`: a page of users in creation order, or of the users whose name
    /// contains `q` (`search.rs`).
    pub async fn admin_api_users(
        &self,
        who: &Authenticated,
        query: &UserQuery,
        ctx: &RequestContext,
    ) -> Result<UserPage, ApiError> {
        let admin = self.require_admin(who).await?;
        let limit = page_limit(query.limit, DEFAULT_USER_PAGE, MAX_USER_PAGE)?;
        let offset = query.offset.unwrap_or(0);
        if offset > MAX_OFFSET {
            return Err(bad_request(format!("offset is at most {MAX_OFFSET}.")));
        }
        let text = query.q.as_deref().filter(|q| !q.is_empty());
        if text.is_some_and(|q| q.chars().count() > MAX_SEARCH_CHARS) {
            return Err(bad_request(format!(
                "q is at most {MAX_SEARCH_CHARS} characters."
            )));
        }
        let (users, total, truncated) = match text {
            None => {
                let users = self.inner.store.list_users(limit, offset).await?;
                (users, self.inner.store.count_users().await?, false)
            }
            Some(text) => self.search_users(text, limit, offset).await?,
        };
        let mut page = Vec::with_capacity(users.len());
        for user in users {
            page.push(self.summary(user).await?);
        }
        let detail = format!("count={} search={}", page.len(), text.is_some());
        self.audit_admin(&admin, "admin.users.list", None, Some(detail), ctx)
            .await;
        Ok(UserPage {
            users: page,
            total,
            truncated,
        })
    }

    /// `GET /api/admin/users/{name}`.
    pub async fn admin_api_user(
        &self,
        who: &Authenticated,
        name: &str,
        ctx: &RequestContext,
    ) -> Result<UserSummary, ApiError> {
        let admin = self.require_admin(who).await?;
        let user = self.admin_target(name).await?;
        let id = user.id;
        let summary = self.summary(user).await?;
        let detail = Some(format!("user={id}"));
        self.audit_admin(&admin, "admin.user.show", None, detail, ctx)
            .await;
        Ok(summary)
    }

    /// An admin action on the user `name`; the user afterwards (`None` once deleted).
    pub async fn admin_api_act(
        &self,
        who: &Authenticated,
        name: &str,
        action: AdminAction,
        ctx: &RequestContext,
    ) -> Result<(Option<UserSummary>, u64), ApiError> {
        let admin = self.require_admin(who).await?;
        if action.needs_fresh() {
            self.require_fresh(&admin.who).await?;
        }
        let user = self.admin_target(name).await?;
        if user.id == admin.id && !action.allowed_on_self() {
            return Err(ApiError::new(
                InputError::CannotTargetSelf,
                "An admin cannot ban or delete their own account.",
            ));
        }
        let (id, count) = (user.id, self.admin_apply(&user, action).await?);
        let detail = match action {
            AdminAction::RevokeSessions => Some(format!("revoked={count}")),
            AdminAction::ResetSecondFactors => Some(format!("removed={count}")),
            _ => None,
        };
        self.audit_admin(&admin, action.event(), Some(id), detail, ctx)
            .await;
        if action == AdminAction::Delete {
            return Ok((None, count));
        }
        let after = self
            .inner
            .store
            .user_by_id(id)
            .await?
            .ok_or_else(no_such_user)?;
        Ok((Some(self.summary(after).await?), count))
    }

    /// Does `action` to `user`; what it counts (sessions ended, factors removed, users
    /// deleted).
    pub(super) async fn admin_apply(
        &self,
        user: &UserRecord,
        action: AdminAction,
    ) -> Result<u64, ApiError> {
        match action {
            AdminAction::Ban | AdminAction::Unban => {
                self.set_banned(user.id, action == AdminAction::Ban).await?;
                Ok(1)
            }
            AdminAction::RevokeSessions => self.revoke_all_sessions(user.id).await,
            AdminAction::ResetSecondFactors => {
                let removed = self
                    .inner
                    .store
                    .write_atomically(&writes::second_factor_reset(user.id))
                    .await?;
                Ok(removed.iter().sum())
            }
            AdminAction::Delete => {
                let deleted = self.inner.store.delete_user(user.id).await?;
                self.sessions_ended(user.id, crate::relay::SessionsEnded::AllBut(None))
                    .await;
                Ok(u64::from(deleted))
            }
        }
    }

    /// `GET /api/admin/audit`: the audit log, newest first, filtered.
    pub async fn admin_api_audit(
        &self,
        who: &Authenticated,
        filter: &AuditFilter,
        ctx: &RequestContext,
    ) -> Result<AuditPage, ApiError> {
        let admin = self.require_admin(who).await?;
        let mut query = audit_query(filter)?;
        query.user_id = match filter.user.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(user) => match Uuid::parse_str(user) {
                Ok(id) => Some(id),
                Err(_) => Some(self.admin_target(user).await?.id),
            },
        };
        let entries = self.inner.store.list_audit(&query).await?;
        let mut detail = format!("count={}", entries.len());
        if let Some(id) = query.user_id {
            detail.push_str(&format!(" user={id}"));
        }
        self.audit_admin(&admin, "admin.audit.read", None, Some(detail), ctx)
            .await;
        let ids: Vec<Uuid> = entries.iter().filter_map(|e| e.user_id).collect();
        let names = self.usernames_of(ids).await?;
        Ok(AuditPage {
            entries: entries
                .into_iter()
                .map(|r| {
                    let username = r.user_id.and_then(|id| names.get(&id).cloned());
                    audit_entry(r, username)
                })
                .collect(),
        })
    }
}

/// The store query of an audit filter (without the user, which needs a lookup).
fn audit_query(filter: &AuditFilter) -> Result<AuditQuery, ApiError> {
    let limit = page_limit(filter.limit, DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE)?;
    for t in [filter.since, filter.until].into_iter().flatten() {
        if t < 0 {
            return Err(bad_request("since and until are Unix seconds (0 or more)."));
        }
    }
    if let (Some(since), Some(until)) = (filter.since, filter.until) {
        if since > until {
            return Err(bad_request("since is after until."));
        }
    }
    let mut query = AuditQuery {
        since: filter.since,
        until: filter.until,
        limit,
        ..AuditQuery::default()
    };
    if let Some(event) = filter.event.as_deref().filter(|e| !e.is_empty()) {
        let name = event.strip_suffix('*').unwrap_or(event);
        let valid = event.len() <= MAX_EVENT_CHARS
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'_');
        if !valid {
            return Err(bad_request(format!(
                "event is an event name of at most {MAX_EVENT_CHARS} characters of a-z 0-9 . _, \
                 with an optional final *."
            )));
        }
        if name.len() < event.len() {
            query.event_prefix = Some(name.to_owned()).filter(|n| !n.is_empty());
        } else {
            query.event = Some(name.to_owned());
        }
    }
    Ok(query)
}

/// The wire form of an audit row.
pub(super) fn audit_entry(r: AuditRecord, username: Option<String>) -> AuditEntry {
    AuditEntry {
        id: r.id,
        at: r.at,
        event: r.event,
        user_id: r.user_id,
        username,
        reason: r.reason,
        client_addr: r.client_addr,
        user_agent: r.user_agent,
    }
}
