//! Outgoing mail: one small contract with two implementations.
//!
//! * [`OutboxMailer`] (no SMTP configured): each message is written as an RFC 5322 `.eml`
//!   file into a local outbox directory, for development. Start-up says so.
//! * An SMTP mailer (see [`crate::smtp`]) when `smtp_host` is configured.

use std::path::PathBuf;

use async_trait::async_trait;

/// Why a message could not be handed over.
#[derive(Debug, thiserror::Error)]
#[error("mail delivery failed: {0}")]
pub struct MailError(pub String);

/// Sends one plain-text message.
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    /// Hands `body` to `to` with `subject`.
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError>;
    /// A line for the start-up log (where mail goes).
    fn describe(&self) -> String;
}

/// Writes each message to `<dir>/<unix seconds>-<uuid>.eml` (mode 0600).
pub struct OutboxMailer {
    dir: PathBuf,
    from: String,
}

impl OutboxMailer {
    /// An outbox in `dir` (created on first use), messages `From:` `from`.
    pub fn new(dir: PathBuf, from: impl Into<String>) -> Self {
        OutboxMailer {
            dir,
            from: from.into(),
        }
    }
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        if to.contains(['\r', '\n']) || subject.contains(['\r', '\n']) {
            return Err(MailError("header injection refused".into()));
        }
        // Only names the development outbox's files; no expiry depends on it.
        #[allow(clippy::disallowed_methods)]
        let now = std::time::SystemTime::now();
        let secs = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let text = format!(
            "From: {}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{}\r\n",
            self.from,
            humantime::format_rfc3339_seconds(now),
            body.replace('\n', "\r\n"),
        );
        let dir = self.dir.clone();
        let name = format!("{secs}-{}.eml", uuid::Uuid::new_v4());
        tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(&dir)?;
            crate::secrets::write_private(&dir.join(name), text.as_bytes())
        })
        .await
        .map_err(|e| MailError(e.to_string()))?
        .map_err(|e| MailError(e.to_string()))
    }

    fn describe(&self) -> String {
        format!(
            "no SMTP configured: mail goes to the outbox {}",
            self.dir.display()
        )
    }
}

/// Mail handed to the mailer in the background, counted so that a caller can wait until every
/// one of them was delivered or failed ([`Sesame::mail_settled`]).
#[derive(Debug, Default)]
pub(crate) struct MailInFlight {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

impl super::Sesame {
    /// Sends a mail in the background (the answer must not wait for SMTP, nor take longer
    /// for accounts that have an address); a failure is logged as `what`.
    pub(crate) fn send_mail_in_background(
        &self,
        to: String,
        subject: &'static str,
        body: String,
        what: &'static str,
    ) {
        use std::sync::atomic::Ordering;
        let mailer = self.inner.mailer.clone();
        let flight = self.inner.mail_in_flight.clone();
        flight.count.fetch_add(1, Ordering::SeqCst);
        tokio::spawn(async move {
            if let Err(e) = mailer.send(&to, subject, &body).await {
                tracing::warn!(%e, what, "mail not sent");
            }
            if flight.count.fetch_sub(1, Ordering::SeqCst) == 1 {
                flight.idle.notify_waiters();
            }
        });
    }

    /// Waits until every mail handed over in the background so far was delivered or failed.
    pub async fn mail_settled(&self) {
        let flight = &self.inner.mail_in_flight;
        loop {
            let notified = flight.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if flight.count.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }
}
