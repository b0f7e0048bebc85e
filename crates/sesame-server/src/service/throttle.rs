//! Brute-force throttling: growing per-account delays and a per-address rate limit.
//!
//! **Per account.** Every login attempt (OPAQUE start, password login) is counted *before*
//! any verification, atomically (`incr`), so parallel attempts cannot slip past the count, and
//! a login start that never finishes counts as a failure. Only a successful login resets it.
//! The first `free_attempts` in a window go through; after that one attempt is let through
//! per delay period, the delay doubling from 1 s up to `max_delay` (15 min): the gate is a
//! `set_nx` key whose lifetime is the delay, so exactly one of many parallel attempts gets
//! it. There is no hard lockout an attacker could use to shut a victim out: the victim waits
//! at most `max_delay` for the next try. Unknown usernames are throttled exactly like known
//! ones (the counter is keyed by the keyed username index), so throttling reveals nothing.
//!
//! **Per address.** A fixed-window counter per client address bounds how many login and
//! registration requests one address may make per window.
//!
//! Either limit answers 429 `too_many_attempts` with `Retry-After`.

use std::time::Duration;

use super::{RequestContext, Sesame};
use crate::error::ApiError;

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
        let window = Duration::from_secs(t.address_window);
        let eph = &self.inner.ephemeral;
        // Fixed window: the first request of a window sets its expiry; later ones count
        // within it without extending it.
        if eph.set_nx(&key, b"1", window).await? {
            return Ok(());
        }
        let ttl = eph.ttl(&key).await?.unwrap_or(window);
        let n = eph.incr(&key, ttl.max(Duration::from_millis(1))).await?;
        if n > t.per_address {
            return Err(ApiError::too_many(
                ttl.as_secs() + 1,
                "Too many requests from this address; wait before retrying.",
            ));
        }
        Ok(())
    }

    /// Counts one login attempt on the account with this username index; 429 while the
    /// account's delay has not passed.
    pub(crate) async fn throttle_account(&self, index: &[u8]) -> Result<(), ApiError> {
        let t = self.inner.settings.throttle;
        let id = hex(index);
        let gate = format!("thr:gate:{id}");
        let eph = &self.inner.ephemeral;
        if let Some(left) = eph.ttl(&gate).await? {
            return Err(too_many_for_account(left));
        }
        let n = eph
            .incr(&format!("thr:acct:{id}"), Duration::from_secs(t.window))
            .await?;
        let delay = t.delay_for(n);
        if delay > 0 && !eph.set_nx(&gate, b"1", Duration::from_secs(delay)).await? {
            let left = eph.ttl(&gate).await?.unwrap_or(Duration::from_secs(delay));
            return Err(too_many_for_account(left));
        }
        Ok(())
    }

    /// Counts a failed attempt that did not go through [`Sesame::throttle_account`] (a wrong
    /// second-factor code): the counter grows and the next delay is armed.
    pub(crate) async fn throttle_failure(&self, index: &[u8]) -> Result<(), ApiError> {
        let t = self.inner.settings.throttle;
        let id = hex(index);
        let eph = &self.inner.ephemeral;
        let n = eph
            .incr(&format!("thr:acct:{id}"), Duration::from_secs(t.window))
            .await?;
        let delay = t.delay_for(n);
        if delay > 0 {
            eph.set_nx(&format!("thr:gate:{id}"), b"1", Duration::from_secs(delay))
                .await?;
        }
        Ok(())
    }

    /// Forgets the account's attempts after a successful login.
    pub(crate) async fn throttle_reset(&self, index: &[u8]) -> Result<(), ApiError> {
        let id = hex(index);
        self.inner
            .ephemeral
            .delete(&format!("thr:acct:{id}"))
            .await?;
        self.inner
            .ephemeral
            .delete(&format!("thr:gate:{id}"))
            .await?;
        Ok(())
    }
}

fn too_many_for_account(left: Duration) -> ApiError {
    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    ApiError::too_many(
        secs,
        "Too many login attempts for this account; wait before retrying.",
    )
}

#[cfg(test)]
mod tests {
    use super::ThrottleSettings;

    #[test]
    fn delays_double_after_the_free_attempts_and_are_capped() {
        let t = ThrottleSettings::default();
        let delays: Vec<u64> = (1..=17).map(|n| t.delay_for(n)).collect();
        assert_eq!(
            delays,
            [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900]
        );
        assert_eq!(t.delay_for(u64::MAX), 900);
    }
}
