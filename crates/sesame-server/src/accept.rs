//! What every accept loop (HTTP in `listen.rs`, TCP in `tcp.rs`) shares: the descriptor
//! limit, raised at start and split between the listeners, and the back-off on accept errors.
//!
//! **Descriptors.** At start the soft limit on open files is raised to the hard one
//! ([`raise_descriptor_limit`]), and both are logged. The connection caps are then lowered
//! to fit: [`RESERVED_DESCRIPTORS`] stay free for the database pool, Redis, log and data
//! files, and for answering a refused connection; the rest is shared by the listeners
//! ([`DescriptorBudget`]). A cap that fits means `accept` does not fail with `EMFILE`.
//!
//! **Accept errors** ([`AcceptErrors`]). An error that concerns only the connection being
//! accepted (reset or aborted before it was accepted) is skipped. Any other (`EMFILE`,
//! `ENFILE`, `ENOBUFS`, `ENOMEM`…) would fail again at once: the loop sleeps, 10 ms doubling
//! to 1 s while errors last, and logs at most one line per [`LOG_INTERVAL`] (with the count
//! of errors since the last line).

use std::io;
use std::time::Duration;

use tokio::time::Instant;

/// Descriptors left for everything but client connections.
pub const RESERVED_DESCRIPTORS: u64 = 128;
/// At most one log line per listener per this interval about accept errors.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);
const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The open-files limit after [`raise_descriptor_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DescriptorBudget {
    /// The soft limit in force (`None`: unknown or unlimited).
    pub soft: Option<u64>,
    /// The hard limit.
    pub hard: Option<u64>,
}

impl DescriptorBudget {
    /// Caps for the HTTP and the TCP listener that fit the soft limit with
    /// [`RESERVED_DESCRIPTORS`] to spare: the configured ones if they fit, else shared in
    /// proportion to them (each at least 16).
    pub fn caps(&self, http: usize, tcp: usize) -> (usize, usize) {
        let Some(soft) = self.soft else {
            return (http, tcp);
        };
        let room = usize::try_from(soft.saturating_sub(RESERVED_DESCRIPTORS)).unwrap_or(usize::MAX);
        if http.saturating_add(tcp) <= room {
            return (http, tcp);
        }
        let total = (http + tcp).max(1) as u128;
        let share = |n: usize| ((room as u128 * n as u128 / total) as usize).max(16);
        (share(http).min(http), share(tcp).min(tcp))
    }
}

/// Raises the soft open-files limit to the hard one and logs both.
pub fn raise_descriptor_limit() -> DescriptorBudget {
    #[cfg(unix)]
    {
        let before = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
        let raised = rlimit::increase_nofile_limit(u64::MAX);
        let after = rlimit::getrlimit(rlimit::Resource::NOFILE).ok();
        let known = |v: u64| (v != rlimit::INFINITY).then_some(v);
        let budget = DescriptorBudget {
            soft: after.and_then(|(s, _)| known(s)),
            hard: after.and_then(|(_, h)| known(h)),
        };
        match raised {
            Ok(_) => tracing::info!(
                soft_before = before.map(|(s, _)| s),
                soft = budget.soft,
                hard = budget.hard,
                "open-files limit"
            ),
            Err(e) => tracing::warn!(
                %e,
                soft = budget.soft,
                hard = budget.hard,
                "could not raise the open-files limit"
            ),
        }
        budget
    }
    #[cfg(not(unix))]
    DescriptorBudget {
        soft: None,
        hard: None,
    }
}

/// Whether an accept error concerns only the connection being accepted.
fn connection_only(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
            | io::ErrorKind::WouldBlock
    )
}

/// The back-off and log rate of one accept loop.
#[derive(Debug)]
pub struct AcceptErrors {
    listener: &'static str,
    delay: Duration,
    last_log: Option<Instant>,
    unlogged: u64,
}

impl AcceptErrors {
    /// For the listener named `listener` in the logs.
    pub fn new(listener: &'static str) -> AcceptErrors {
        AcceptErrors {
            listener,
            delay: BACKOFF_MIN,
            last_log: None,
            unlogged: 0,
        }
    }

    /// A connection was accepted: the next error starts the back-off afresh.
    pub fn accepted(&mut self) {
        self.delay = BACKOFF_MIN;
    }

    /// Handles an accept error: returns at once for one that concerns only that connection,
    /// else logs (rate-limited) and sleeps the back-off.
    pub async fn failed(&mut self, e: &io::Error) {
        if connection_only(e) {
            return;
        }
        self.unlogged += 1;
        let now = Instant::now();
        if self
            .last_log
            .is_none_or(|at| now.duration_since(at) >= LOG_INTERVAL)
        {
            tracing::warn!(
                listener = self.listener,
                %e,
                errors = self.unlogged,
                backoff_ms = self.delay.as_millis() as u64,
                "accept failed; backing off"
            );
            self.last_log = Some(now);
            self.unlogged = 0;
        }
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests;
