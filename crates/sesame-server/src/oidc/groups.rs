//! Groups for the `groups` claim, managed by the operator (`sesame admin group …`).

use serde::Serialize;

use crate::error::{ApiError, InputError};
use crate::service::Sesame;

/// A group with its members' usernames.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupView {
    /// The name (the value in the `groups` claim).
    pub name: String,
    /// The members, by username.
    pub members: Vec<String>,
}

fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            InputError::InvalidRequest,
            "A group name is 1 to 64 letters, digits, '-', '_', '.' or ':'.",
        ))
    }
}

fn no_group() -> ApiError {
    ApiError::new(InputError::NotFound, "No such group.")
}

impl Sesame {
    /// Creates a group; `false` if it exists.
    pub async fn oidc_group_create(&self, name: &str) -> Result<bool, ApiError> {
        check_name(name)?;
        let now = i64::try_from(self.now()).unwrap_or(i64::MAX);
        Ok(self.oidc_store()?.create_group(name, now).await?)
    }

    /// Deletes a group; `false` if none.
    pub async fn oidc_group_delete(&self, name: &str) -> Result<bool, ApiError> {
        Ok(self.oidc_store()?.delete_group(name).await?)
    }

    /// Adds (`member`) or removes the user `username`; `false` if nothing changed.
    pub async fn oidc_group_member(
        &self,
        name: &str,
        username: &str,
        member: bool,
    ) -> Result<bool, ApiError> {
        let user = self.admin_find(username).await?;
        let store = self.oidc_store()?;
        if !store.groups().await?.iter().any(|(g, _)| g == name) {
            return Err(no_group());
        }
        Ok(store.set_group_member(name, user.id, member).await?)
    }

    /// Every group with its members.
    pub async fn oidc_groups(&self) -> Result<Vec<GroupView>, ApiError> {
        let mut out = Vec::new();
        for (name, ids) in self.oidc_store()?.groups().await? {
            let mut members = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(u) = self.store().user_by_id(id).await? {
                    members.push(self.username_of(&u)?);
                }
            }
            members.sort();
            out.push(GroupView { name, members });
        }
        Ok(out)
    }
}
