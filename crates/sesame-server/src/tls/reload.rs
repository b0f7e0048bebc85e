//! Reloads the certificate files on SIGHUP and when they change.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::CertResolver;

/// What identifies one version of a file: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &std::path::Path) -> Stamp {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches a certificate and key pair and swaps them into the resolver when they change.
pub(super) struct Reloader {
    resolver: Arc<CertResolver>,
    cert: PathBuf,
    key: PathBuf,
    every: Duration,
    seen: (Stamp, Stamp),
    hangup: Hangup,
}

impl Reloader {
    /// Watches `cert` and `key`, checking every `every` (zero: only on SIGHUP). The SIGHUP
    /// handler is installed here, at once (inside a Tokio runtime).
    pub(super) fn new(
        resolver: Arc<CertResolver>,
        cert: PathBuf,
        key: PathBuf,
        every: Duration,
    ) -> Reloader {
        let seen = (stamp(&cert), stamp(&key));
        Reloader {
            resolver,
            cert,
            key,
            every,
            seen,
            hangup: hangup_signal(),
        }
    }

    /// Runs until `stop` turns true.
    pub(super) async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut hangup = self.hangup.take();
        let poll = !self.every.is_zero();
        let mut ticks = tokio::time::interval(self.every.max(Duration::from_millis(100)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick(), if poll => {
                    let now = (stamp(&self.cert), stamp(&self.key));
                    if now != self.seen {
                        self.seen = now;
                        self.reload("the files changed");
                    }
                }
                Some(()) = recv(&mut hangup) => {
                    self.seen = (stamp(&self.cert), stamp(&self.key));
                    self.reload("SIGHUP");
                }
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }

    /// Loads the pair; on failure the certificate in use stays.
    fn reload(&self, why: &'static str) {
        match super::load_certified_key(&self.cert, &self.key) {
            Ok(key) => {
                let fingerprint = key
                    .cert
                    .first()
                    .map(|der| super::certificate_fingerprint(der))
                    .unwrap_or_default();
                self.resolver.set(key);
                tracing::info!(why, %fingerprint, cert = %self.cert.display(), "TLS certificate reloaded");
            }
            Err(e) => tracing::warn!(
                why,
                %e,
                "TLS certificate NOT reloaded; the previous certificate stays in use"
            ),
        }
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = Option<()>;

fn hangup_signal() -> Hangup {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(%e, "cannot listen for SIGHUP; TLS files are only polled");
                None
            }
        }
    }
    #[cfg(not(unix))]
    None
}

/// The next SIGHUP; never resolves without a handler.
async fn recv(hangup: &mut Hangup) -> Option<()> {
    #[cfg(unix)]
    if let Some(s) = hangup {
        return s.recv().await;
    }
    #[cfg(not(unix))]
    let _ = hangup;
    std::future::pending().await
}
