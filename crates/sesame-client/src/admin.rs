//! The admin API (`/api/admin/…`, accounts with the admin role only) and the caller's own
//! activity (`GET /api/me/activity`).
//!
//! A caller without the role gets `403 forbidden` ([`Error::is_forbidden`](crate::Error::is_forbidden)).
//! Banning, revoking sessions, resetting second factors and deleting need a fresh
//! authentication, like deleting one's own account: on `reauthentication_required`
//! re-authenticate ([`Client::reauth`]) and retry.

use reqwest::Url;

use crate::client::Client;
use crate::error::{Error, Result};

pub use sesame_api::admin::{
    Activity, ActivityEntry, ActivityQuery, AuditEntry, AuditPage, AuditQuery, Role, UserPage,
    UserQuery, UserSummary,
};
use sesame_api::sessions::Revoked;

impl Client {
    /// `api/admin/users/{name}[/{action}]`, the name escaped as one path segment.
    fn admin_user_url(&self, name: &str, action: Option<&str>) -> Result<Url> {
        let mut url = self.url("api/admin/users")?;
        let invalid = |url: &Url| Error::InvalidUrl {
            url: url.to_string(),
            reason: "cannot take a path".into(),
        };
        {
            let copy = url.clone();
            let mut segments = url.path_segments_mut().map_err(|()| invalid(&copy))?;
            segments.push(name);
            if let Some(action) = action {
                segments.push(action);
            }
        }
        Ok(url)
    }

    /// `GET /api/me/activity`: the account's recent sign-ins and security events, newest
    /// first (at most 50, fewer with `limit`).
    pub async fn my_activity(&self, access_token: &str, limit: Option<u32>) -> Result<Activity> {
        let query = ActivityQuery { limit };
        let req = self.http().get(self.url("api/me/activity")?);
        self.send_json(req.query(&query).bearer_auth(access_token))
            .await
    }

    /// `GET /api/admin/users`: a page of users, or of those whose name contains `query.q`.
    pub async fn admin_users(&self, access_token: &str, query: &UserQuery) -> Result<UserPage> {
        let req = self.http().get(self.url("api/admin/users")?);
        self.send_json(req.query(query).bearer_auth(access_token))
            .await
    }

    /// `GET /api/admin/users/{name}`: one user (404 `user_not_found`).
    pub async fn admin_user(&self, access_token: &str, name: &str) -> Result<UserSummary> {
        let req = self.http().get(self.admin_user_url(name, None)?);
        self.send_json(req.bearer_auth(access_token)).await
    }

    /// `POST /api/admin/users/{name}/ban` (fresh): no login, every session ended.
    pub async fn admin_ban(&self, access_token: &str, name: &str) -> Result<UserSummary> {
        let req = self.http().post(self.admin_user_url(name, Some("ban"))?);
        self.send_json(req.bearer_auth(access_token)).await
    }

    /// `POST /api/admin/users/{name}/unban`: lifts a ban.
    pub async fn admin_unban(&self, access_token: &str, name: &str) -> Result<UserSummary> {
        let req = self.http().post(self.admin_user_url(name, Some("unban"))?);
        self.send_json(req.bearer_auth(access_token)).await
    }

    /// `POST /api/admin/users/{name}/revoke-sessions` (fresh): ends every session of the
    /// user; returns how many.
    pub async fn admin_revoke_sessions(&self, access_token: &str, name: &str) -> Result<u64> {
        let url = self.admin_user_url(name, Some("revoke-sessions"))?;
        let revoked: Revoked = self
            .send_json(self.http().post(url).bearer_auth(access_token))
            .await?;
        Ok(revoked.revoked)
    }

    /// `POST /api/admin/users/{name}/reset-2fa` (fresh): removes the user's TOTP and
    /// device-key requirement, so the password alone logs in.
    pub async fn admin_reset_second_factors(
        &self,
        access_token: &str,
        name: &str,
    ) -> Result<UserSummary> {
        let req = self
            .http()
            .post(self.admin_user_url(name, Some("reset-2fa"))?);
        self.send_json(req.bearer_auth(access_token)).await
    }

    /// `DELETE /api/admin/users/{name}` (fresh): deletes the account and everything of it.
    pub async fn admin_delete_user(&self, access_token: &str, name: &str) -> Result<()> {
        let req = self.http().delete(self.admin_user_url(name, None)?);
        self.send_empty(req.bearer_auth(access_token)).await
    }

    /// `GET /api/admin/audit`: the audit log, newest first, filtered by `query`.
    pub async fn admin_audit(&self, access_token: &str, query: &AuditQuery) -> Result<AuditPage> {
        let req = self.http().get(self.url("api/admin/audit")?);
        self.send_json(req.query(query).bearer_auth(access_token))
            .await
    }
}
