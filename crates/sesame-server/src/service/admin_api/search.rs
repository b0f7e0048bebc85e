//! Searching users by a part of their name.
//!
//! Usernames are stored sealed, with a keyed index that finds an exact name only. So a search
//! first looks the text up as an exact name (found wherever it is), then opens the usernames
//! of the users in creation order, in batches, and keeps those that contain the text. It stops
//! after [`SEARCH_SCAN_LIMIT`] users and says so (`truncated`): the cost of one search is
//! bounded whatever the number of accounts.

use sesame_api::admin::SEARCH_SCAN_LIMIT;
use sesame_proto::policy::Username;

use crate::error::ApiError;
use crate::service::Sesame;
use crate::store::UserRecord;

/// Users read (and usernames opened) per query.
const BATCH: u32 = 500;

/// What a search found: the requested page, the number of matches, whether it stopped early.
type Found = (Vec<UserRecord>, u64, bool);

impl Sesame {
    /// The users whose canonical name contains `text` (compared in lowercase): the exact match
    /// first, then the others in creation order; `offset` and `limit` apply to that order.
    pub(super) async fn search_users(
        &self,
        text: &str,
        limit: u32,
        offset: u32,
    ) -> Result<Found, ApiError> {
        let text = text.to_lowercase();
        let exact = match Username::parse(&text) {
            Ok(name) => {
                self.inner
                    .store
                    .user_by_index(&self.username_index(name.as_str()))
                    .await?
            }
            Err(_) => None,
        };
        let window = u64::from(offset)..u64::from(offset) + u64::from(limit);
        let mut page = Vec::new();
        let mut matches: u64 = 0;
        if let Some(user) = &exact {
            if window.contains(&0) {
                page.push(user.clone());
            }
            matches = 1;
        }
        let mut scanned: u32 = 0;
        loop {
            let batch = BATCH.min(SEARCH_SCAN_LIMIT - scanned);
            let users = self.inner.store.list_users(batch, scanned).await?;
            let full = users.len() as u64 == u64::from(batch);
            scanned += batch;
            for user in users {
                if exact.as_ref().is_some_and(|e| e.id == user.id)
                    || !self.username_of(&user)?.contains(&text)
                {
                    continue;
                }
                if window.contains(&matches) {
                    page.push(user);
                }
                matches += 1;
            }
            if !full {
                return Ok((page, matches, false));
            }
            if scanned >= SEARCH_SCAN_LIMIT {
                let more = self.inner.store.count_users().await? > u64::from(scanned);
                return Ok((page, matches, more));
            }
        }
    }
}
