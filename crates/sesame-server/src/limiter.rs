//! The one rate limiter: a counter per key in a window, plus an optional gate that spaces
//! hits out (a fixed gap, or a delay doubling with every hit past a free allowance).
//!
//! Every limit of the service is a [`Rule`] applied by [`Ephemeral::hit`]: the login
//! throttle (per account and per address), recovery starts, verification mail resends and
//! the relay's send rate. A hit is one atomic step on the shared store (a Lua script on
//! Redis, a mutex in memory), and time is the server's clock passed in as `now`, so a manual
//! clock drives every window in tests. [`apply`] is that step, written once in Rust (the
//! memory store runs it; the Redis script mirrors it line by line).
//!
//! One step, for a key in state `(start, count, gate)` at time `now` (milliseconds):
//!
//! 1. If the window is over (`now >= start + window`) the count restarts from `now`.
//! 2. [`Mode::Check`]: refused while `now < gate` (retry when the gate opens), or once
//!    `count >= limit` (retry when the window ends). A refused hit changes nothing.
//! 3. Otherwise the hit counts; a [`Window::Idle`] window restarts at every hit.
//! 4. If the rule has a [`Backoff`] and the gate is open, the gate closes for the delay the
//!    new count calls for: the hit that closes it goes through.
//!
//! [`Ephemeral::hit`]: crate::ephemeral::Ephemeral::hit

use std::time::Duration;

/// When a rule's count starts over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// A fixed window from the first hit: counts restart `window` after it.
    Fixed,
    /// Counts are forgotten `window` after the last hit.
    Idle,
}

/// The gate a rule closes after a hit: no hit passes until it opens again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Hits in a window that close no gate.
    pub free: u64,
    /// The first delay.
    pub first: Duration,
    /// Whether each further hit doubles the delay (else every delay is `first`).
    pub doubling: bool,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// The delay after hit number `n` (1-based) of a window, milliseconds.
    pub fn delay_ms(&self, n: u64) -> u64 {
        if n <= self.free {
            return 0;
        }
        let first = millis(self.first);
        let d = if self.doubling {
            first.saturating_mul(1u64 << (n - self.free - 1).min(30))
        } else {
            first
        };
        d.min(millis(self.max))
    }
}

/// A limit: at most `limit` hits per window, optionally spaced out by a [`Backoff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Hits let through per window (`u64::MAX`: no count limit).
    pub limit: u64,
    /// The window's length.
    pub window: Duration,
    /// How the window moves.
    pub kind: Window,
    /// The gate closed after hits, if any.
    pub backoff: Option<Backoff>,
}

impl Rule {
    /// `limit` hits per fixed `window` started by the first hit.
    pub fn fixed(limit: u64, window: Duration) -> Rule {
        Rule {
            limit,
            window,
            kind: Window::Fixed,
            backoff: None,
        }
    }
}

/// What a hit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Counts the hit if the rule allows it; refuses it otherwise.
    Check,
    /// Counts the hit whatever the rule says (a failure noticed after the fact) and closes
    /// the gate if the new count calls for it; never refused.
    Record,
}

/// The answer to a hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the hit went through.
    pub allowed: bool,
    /// The count in the current window (after this hit, if it counted).
    pub count: u64,
    /// When refused: how long until a hit can pass.
    pub retry_after: Duration,
}

/// A key's state: window start, count, and when the gate opens (all milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct State {
    /// When the window started (the last hit, for [`Window::Idle`]).
    pub start: u64,
    /// Hits counted in the window.
    pub count: u64,
    /// The gate is closed until then.
    pub gate: u64,
}

impl State {
    /// When the state stops mattering (window over and gate open): garbage after that.
    pub fn ends(&self, rule: &Rule) -> u64 {
        self.start
            .saturating_add(millis(rule.window))
            .max(self.gate)
    }
}

/// One hit on a key in `state` (`None`: never hit, or collected) at `now` (milliseconds).
pub fn apply(state: Option<State>, rule: &Rule, now: u64, mode: Mode) -> (State, Verdict) {
    let window = millis(rule.window);
    let mut s = state.unwrap_or(State {
        start: now,
        count: 0,
        gate: 0,
    });
    if now >= s.start.saturating_add(window) {
        s.start = now;
        s.count = 0;
    }
    if mode == Mode::Check {
        let wait = if now < s.gate {
            Some(s.gate - now)
        } else if s.count >= rule.limit {
            Some(s.start.saturating_add(window) - now)
        } else {
            None
        };
        if let Some(wait) = wait {
            let verdict = Verdict {
                allowed: false,
                count: s.count,
                retry_after: Duration::from_millis(wait),
            };
            return (s, verdict);
        }
    }
    s.count = s.count.saturating_add(1);
    if rule.kind == Window::Idle {
        s.start = now;
    }
    let delay = rule.backoff.map_or(0, |b| b.delay_ms(s.count));
    if delay > 0 && s.gate <= now {
        s.gate = now.saturating_add(delay);
    }
    let verdict = Verdict {
        allowed: true,
        count: s.count,
        retry_after: Duration::ZERO,
    };
    (s, verdict)
}

/// Whole seconds to wait, rounded up (for `Retry-After`).
pub fn retry_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

/// `d` in milliseconds, saturating.
pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
