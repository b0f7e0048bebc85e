//! Brute-force throttling: growing per-account delays and a per-address rate limit, both
//! rules of the one [rate limiter](crate::limiter), timed by the service clock.
//!
//! **Per account.** Every login attempt (OPAQUE start, password login) is counted *before*
//! any verification, in one atomic limiter hit, so parallel attempts cannot slip past the
//! count, and a login start that never finishes counts as a failure. Only a successful login
//! resets it. The first `free_attempts` in a window go through; after that one attempt is
//! let through per delay period, the delay doubling from 1 s up to `max_delay` (15 min): the
//! attempt that closes the limiter's gate goes through, every other one is refused until it
//! opens. Attempts are forgotten `window` seconds after the last one. There is no hard
//! lockout an attacker could use to shut a victim out: the victim waits at most `max_delay`
//! for the next try. Unknown usernames are throttled exactly like known ones (the key is the
//! keyed username index), so throttling reveals nothing.
//!
//! **Per address.** A fixed-window counter per client address bounds how many login and
//! registration requests one address may make per window.
//!
//! Either limit answers 429 `too_many_attempts` with `Retry-After`.

use std::time::Duration;

use super::{RequestContext, Sesame};
use crate::error::ApiError;
use crate::limiter::{retry_secs, Backoff, Mode, Rule, Window};

/// Throttle tunables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThrottleSettings {
    /// Attempts per account before delays start.
    pub free_attempts: u64,
    /// The longest delay between attempts on one account, seconds.
    pub max_delay: u64,
    /// Attempts are forgotten after this many seconds without one.
    pub window: u64,
    /// Requests per address per `address_window` (0 disables the limit).
    pub per_address: u64,
    /// The per-address window, seconds.
    pub address_window: u64,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        ThrottleSettings {
            free_attempts: 5,
            max_delay: 900,
            window: 3600,
            per_address: 60,
            address_window: 60,
        }
    }
}

impl ThrottleSettings {
    /// The delay imposed before attempt number `n` (1-based).
    pub fn delay_for(&self, n: u64) -> u64 {
        if n <= self.free_attempts {
            return 0;
        }
        let exp = (n - self.free_attempts - 1).min(30);
        (1u64 << exp).min(self.max_delay)
    }

    /// The per-account rule: no count limit, attempts forgotten `window` seconds after the
    /// last one, and a gate of [`ThrottleSettings::delay_for`] seconds after each attempt.
    pub fn account_rule(&self) -> Rule {
        Rule {
            limit: u64::MAX,
            window: Duration::from_secs(self.window),
            kind: Window::Idle,
            backoff: Some(Backoff {
                free: self.free_attempts,
                first: Duration::from_secs(1),
                doubling: true,
                max: Duration::from_secs(self.max_delay),
            }),
        }
    }

    /// The per-address rule: `per_address` requests per fixed `address_window`.
    pub fn address_rule(&self) -> Rule {
        Rule::fixed(self.per_address, Duration::from_secs(self.address_window))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sesame {
    /// Counts one request from this address; 429 once the window's budget is spent.
    pub(crate) async fn throttle_address(&self, ctx: &RequestContext) -> Result<(), ApiError> {
        let t = self.inner.settings.throttle;
        let Some(addr) = ctx.client_addr else {
            return Ok(());
        };
        if t.per_address == 0 {
            return Ok(());
        }
        let key = format!("thr:addr:{addr}");
        let v = self
            .inner
            .ephemeral
            .hit(&key, &t.address_rule(), self.now_ms(), Mode::Check)
            .await?;
        if !v.allowed {
            return Err(ApiError::too_many(
                v.retry_after.as_secs() + 1,
                "Too many requests from this address; wait before retrying.",
            ));
        }
        Ok(())
    }

    /// Counts one login attempt on the account with this username index; 429 while the
    /// account's delay has not passed.
    pub(crate) async fn throttle_account(&self, index: &[u8]) -> Result<(), ApiError> {
        let rule = self.inner.settings.throttle.account_rule();
        let v = self
            .inner
            .ephemeral
            .hit(&account_key(index), &rule, self.now_ms(), Mode::Check)
            .await?;
        if !v.allowed {
            return Err(ApiError::too_many(
                retry_secs(v.retry_after),
                "Too many login attempts for this account; wait before retrying.",
            ));
        }
        Ok(())
    }

    /// [`Sesame::throttle_account`] for a login, auditing a refusal as `login.throttled` on the
    /// account (for unknown names, on no account), at most once a minute per account so that
    /// an attacker cannot flood the log. The audit costs the refused request one user lookup,
    /// known name or not.
    pub(crate) async fn throttle_login(
        &self,
        index: &[u8],
        ctx: &RequestContext,
    ) -> Result<(), ApiError> {
        let Err(refused) = self.throttle_account(index).await else {
            return Ok(());
        };
        let once_a_minute = Rule::fixed(1, Duration::from_secs(60));
        let key = format!("audit:thr:{}", hex(index));
        let due = self
            .inner
            .ephemeral
            .hit(&key, &once_a_minute, self.now_ms(), Mode::Check)
            .await
            .is_ok_and(|v| v.allowed);
        if due {
            let user = self.inner.store.user_by_index(index).await.ok().flatten();
            let reason = match &user {
                Some(_) => format!("retry_after={}", refused.retry_after.unwrap_or(0)),
                None => "unknown_user".to_owned(),
            };
            self.audit("login.throttled", user.map(|u| u.id), Some(reason), ctx)
                .await;
        }
        Err(refused)
    }

    /// Counts a failed attempt that did not go through [`Sesame::throttle_account`] (a wrong
    /// second-factor code): the counter grows and the next delay is armed.
    pub(crate) async fn throttle_failure(&self, index: &[u8]) -> Result<(), ApiError> {
        let rule = self.inner.settings.throttle.account_rule();
        self.inner
            .ephemeral
            .hit(&account_key(index), &rule, self.now_ms(), Mode::Record)
            .await?;
        Ok(())
    }

    /// Forgets the account's attempts after a successful login.
    pub(crate) async fn throttle_reset(&self, index: &[u8]) -> Result<(), ApiError> {
        self.inner.ephemeral.delete(&account_key(index)).await?;
        Ok(())
    }
}

/// The limiter key of an account's attempts.
fn account_key(index: &[u8]) -> String {
    format!("thr:acct:{}", hex(index))
}

#[cfg(test)]
mod tests;
