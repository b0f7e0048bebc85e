//! Operator commands (`sesame admin`): they work on the database directly and need the master
//! key, so only an operator can run them. The admin API (`admin_api.rs`) shares their
//! building blocks: the user summary, bans, session revocation and the role.

use uuid::Uuid;

use super::{RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::{writes, AccountStatus, AuditQuery, AuditRecord, Role, UserRecord};

pub use sesame_api::admin::UserSummary;

pub(super) fn no_such_user() -> ApiError {
    ApiError::new(InputError::UserNotFound, "No such user.")
}

/// The context of the operator's commands in the audit log.
fn operator() -> RequestContext {
    RequestContext::new(None, Some("sesame-admin"))
}

impl Sesame {
    /// The summary of a stored user: its live sessions and second factors read now.
    pub(super) async fn summary(&self, user: UserRecord) -> Result<UserSummary, ApiError> {
        let now = self.now_i64();
        let sessions = self
            .inner
            .store
            .sessions_for_user(user.id)
            .await?
            .iter()
            .filter(|s| s.idle_expires_at > now && s.absolute_expires_at > now)
            .count();
        Ok(UserSummary {
            username: self.username_of(&user)?,
            id: user.id,
            status: user.status.wire(),
            role: user.role,
            is_admin: user.role == Role::Admin,
            created_at: user.created_at,
            last_login_at: user.last_login_at,
            sessions: sessions as u64,
            totp_enabled: self.has_totp(user.id).await?,
            device_required: self.device_required(user.id).await?,
            groups: match self.inner.store.oidc() {
                Some(oidc) => {
                    let mut groups = oidc.groups_of(user.id).await?;
                    groups.sort();
                    groups
                }
                None => Vec::new(),
            },
        })
    }

    /// The user called `name` (any spelling that canonicalises to it).
    pub async fn admin_find(&self, name: &str) -> Result<UserRecord, ApiError> {
        let username = sesame_proto::policy::Username::parse(name)?;
        self.inner
            .store
            .user_by_index(&self.username_index(username.as_str()))
            .await?
            .ok_or_else(no_such_user)
    }

    /// Users in creation order.
    pub async fn admin_users(&self, limit: u32, offset: u32) -> Result<Vec<UserSummary>, ApiError> {
        let mut out = Vec::new();
        for user in self.inner.store.list_users(limit, offset).await? {
            out.push(self.summary(user).await?);
        }
        Ok(out)
    }

    /// One user.
    pub async fn admin_user(&self, name: &str) -> Result<UserSummary, ApiError> {
        let user = self.admin_find(name).await?;
        self.summary(user).await
    }

    /// Bans (and logs out everywhere) or unbans a user.
    pub async fn admin_set_banned(
        &self,
        name: &str,
        banned: bool,
    ) -> Result<UserSummary, ApiError> {
        let user = self.admin_find(name).await?;
        self.set_banned(user.id, banned).await?;
        let event = if banned { "admin.ban" } else { "admin.unban" };
        self.audit(event, Some(user.id), None, &operator()).await;
        self.admin_user(name).await
    }

    /// Bans a user (and ends every session of it, in the same transaction) or lifts a ban.
    pub(super) async fn set_banned(&self, user: Uuid, banned: bool) -> Result<(), ApiError> {
        let status = if banned {
            AccountStatus::Banned
        } else {
            AccountStatus::Active
        };
        self.inner
            .store
            .write_atomically(&writes::status_change(user, status, self.now_i64()))
            .await?;
        if banned {
            self.sessions_ended(user, crate::relay::SessionsEnded::AllBut(None))
                .await;
        }
        Ok(())
    }

    /// Revokes every session of a user; returns how many.
    pub async fn admin_revoke_sessions(&self, name: &str) -> Result<u64, ApiError> {
        let user = self.admin_find(name).await?;
        let n = self.revoke_all_sessions(user.id).await?;
        self.audit(
            "session.revoked",
            Some(user.id),
            Some(format!("admin revoked={n}")),
            &operator(),
        )
        .await;
        Ok(n)
    }

    /// Ends every session of a user (and its relay connections); returns how many.
    pub(super) async fn revoke_all_sessions(&self, user: Uuid) -> Result<u64, ApiError> {
        let n = self
            .inner
            .store
            .delete_sessions_for_user(user, None)
            .await?;
        self.sessions_ended(user, crate::relay::SessionsEnded::AllBut(None))
            .await;
        Ok(n)
    }

    /// Grants (`Role::Admin`) or takes back (`Role::User`) the admin role; audited
    /// `admin.grant_admin` / `admin.revoke_admin`. The admin API reads the role on every call,
    /// so a revocation takes effect at once.
    pub async fn admin_set_role(&self, name: &str, role: Role) -> Result<UserSummary, ApiError> {
        let user = self.admin_find(name).await?;
        self.set_role(user.id, role).await?;
        let event = match role {
            Role::Admin => "admin.grant_admin",
            _ => "admin.revoke_admin",
        };
        self.audit(event, Some(user.id), None, &operator()).await;
        self.admin_user(name).await
    }

    /// Stores a user's role.
    pub(super) async fn set_role(&self, user: Uuid, role: Role) -> Result<(), ApiError> {
        let changed = self
            .inner
            .store
            .write_atomically(&[writes::Write::SetRole { user, role }])
            .await?;
        if changed.first() == Some(&0) {
            return Err(no_such_user());
        }
        Ok(())
    }

    /// Audit entries, newest first.
    pub async fn admin_audit(
        &self,
        user: Option<&str>,
        since: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, ApiError> {
        let user_id = match user {
            Some(name) => Some(self.admin_find(name).await?.id),
            None => None,
        };
        Ok(self
            .inner
            .store
            .list_audit(&AuditQuery {
                user_id,
                since,
                limit,
                ..AuditQuery::default()
            })
            .await?)
    }

    /// The current names of the accounts `ids` (for an operator reading the audit log, whose
    /// rows hold ids only); a deleted account has none.
    pub async fn usernames_of(
        &self,
        ids: impl IntoIterator<Item = Uuid>,
    ) -> Result<std::collections::HashMap<Uuid, String>, ApiError> {
        let mut names = std::collections::HashMap::new();
        for id in ids {
            if names.contains_key(&id) {
                continue;
            }
            if let Some(user) = self.inner.store.user_by_id(id).await? {
                names.insert(id, self.username_of(&user)?);
            }
        }
        Ok(names)
    }

    /// Operator action on the account `name` (`sesame admin`): the same effect as the admin
    /// API's, audited as done by the operator. Returns what it counts (sessions ended,
    /// factors removed, accounts deleted).
    pub async fn admin_operator_act(
        &self,
        name: &str,
        action: super::AdminAction,
    ) -> Result<u64, ApiError> {
        let user = self.admin_find(name).await?;
        let n = self.admin_apply(&user, action).await?;
        let ctx = RequestContext::new(None, Some("sesame-admin"));
        self.audit(
            action.event(),
            Some(user.id),
            Some(format!("by=operator n={n}")),
            &ctx,
        )
        .await;
        Ok(n)
    }

    /// The live sessions of the account `name`, for the operator.
    pub async fn admin_sessions(
        &self,
        name: &str,
    ) -> Result<Vec<sesame_api::sessions::SessionView>, ApiError> {
        let user = self.admin_find(name).await?;
        // No session of the operator's is among them (the nil id is none of theirs).
        let who = super::Authenticated {
            user_id: user.id,
            session_id: Uuid::nil(),
        };
        self.sessions(&who).await
    }
}
