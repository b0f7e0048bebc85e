//! Operator commands (`sesame admin`): they work on the database directly and need the master
//! key, so only an operator can run them.

use serde::Serialize;
use uuid::Uuid;

use super::{RequestContext, Sesame};
use crate::error::{ApiError, InputError};
use crate::store::{AccountStatus, AuditQuery, AuditRecord, UserRecord};

/// A user as the operator sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserSummary {
    /// User id.
    pub id: Uuid,
    /// Canonical username (decrypted).
    pub username: String,
    /// `active`, `pending` or `banned`.
    pub status: String,
    /// Created (unix seconds).
    pub created_at: i64,
    /// Last successful login (unix seconds).
    pub last_login_at: Option<i64>,
    /// Live sessions.
    pub sessions: usize,
}

fn no_such_user() -> ApiError {
    ApiError::new(InputError::UserNotFound, "No such user.")
}

impl Sesame {
    async fn summary(&self, user: UserRecord) -> Result<UserSummary, ApiError> {
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
            status: user.status.as_str().to_owned(),
            created_at: user.created_at,
            last_login_at: user.last_login_at,
            sessions,
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
        let status = if banned {
            AccountStatus::Banned
        } else {
            AccountStatus::Active
        };
        // One transaction: a ban and the revocation of the sessions commit together.
        self.inner
            .store
            .write_atomically(&crate::store::writes::status_change(
                user.id,
                status,
                self.now_i64(),
            ))
            .await?;
        if banned {
            self.sessions_ended(user.id, crate::relay::SessionsEnded::AllBut(None))
                .await;
        }
        let ctx = RequestContext::new(None, Some("sesame-admin"));
        let event = if banned { "admin.ban" } else { "admin.unban" };
        self.audit(event, Some(user.id), None, &ctx).await;
        self.admin_user(name).await
    }

    /// Revokes every session of a user; returns how many.
    pub async fn admin_revoke_sessions(&self, name: &str) -> Result<u64, ApiError> {
        let user = self.admin_find(name).await?;
        let n = self
            .inner
            .store
            .delete_sessions_for_user(user.id, None)
            .await?;
        self.sessions_ended(user.id, crate::relay::SessionsEnded::AllBut(None))
            .await;
        let ctx = RequestContext::new(None, Some("sesame-admin"));
        self.audit(
            "session.revoked",
            Some(user.id),
            Some(format!("admin revoked={n}")),
            &ctx,
        )
        .await;
        Ok(n)
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
}
