//! Outgoing mail over SMTP ([`SmtpMailer`], crate `lettre`), and the choice between it and the
//! development outbox ([`mailer_for`]).
//!
//! # Configuration
//!
//! | key | default | meaning |
//! | --- | --- | --- |
//! | `smtp_host` | unset | the SMTP server; unset: every message is written to `<data_dir>/outbox/*.eml` instead ([`OutboxMailer`]) |
//! | `smtp_port` | `587` | its port (`465` is the usual one for `tls`) |
//! | `smtp_security` | `starttls` | `starttls`: plain connect, then STARTTLS is **required** (no mail and no credentials are sent if the server does not offer it); `tls`: TLS from the first byte (SMTPS); `none`: plain text |
//! | `smtp_username`, `smtp_password` | unset | credentials (AUTH PLAIN/LOGIN, only ever sent inside TLS unless `none`) |
//! | `smtp_from` | `Sesame <no-reply@localhost>` | the `From:` of every message |
//! | `smtp_timeout_secs` | `10` | how long to wait to connect and for each SMTP reply |
//!
//! With `starttls` and `tls` the server's certificate is checked against the Web PKI roots
//! (`webpki-roots`) for `smtp_host`.
//!
//! **`none` is for a relay on the same machine and for tests only**: codes, addresses and
//! any credentials cross the network in clear. Start-up warns when `none` points at a host
//! that is not a loopback address, and refuses `none` with credentials unless the host is
//! a loopback address.
//!
//! The start-up line `sesame: mail: …` ([`Mailer::describe`]) says where mail goes: host,
//! port and security, never the password.

use std::net::IpAddr;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use zeroize::Zeroizing;

use crate::config::Config;
use crate::service::{MailError, Mailer, OutboxMailer};

/// How the connection to the SMTP server is protected (`smtp_security`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain connect, then STARTTLS, which must succeed (`starttls`, the default).
    StartTls,
    /// TLS from the start, "SMTPS" (`tls`).
    Tls,
    /// No encryption at all (`none`): loopback relays and tests only.
    None,
}

impl SmtpSecurity {
    /// The configuration spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SmtpSecurity::StartTls => "starttls",
            SmtpSecurity::Tls => "tls",
            SmtpSecurity::None => "none",
        }
    }
}

impl FromStr for SmtpSecurity {
    type Err = MailError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "starttls" => Ok(SmtpSecurity::StartTls),
            "tls" => Ok(SmtpSecurity::Tls),
            "none" => Ok(SmtpSecurity::None),
            other => Err(MailError(format!(
                "smtp_security must be `starttls`, `tls` or `none`, not {other:?}"
            ))),
        }
    }
}

/// Everything an [`SmtpMailer`] needs.
#[derive(Clone)]
pub struct SmtpSettings {
    /// The server's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// Connection protection.
    pub security: SmtpSecurity,
    /// User name for AUTH, if any.
    pub username: Option<String>,
    /// Password for AUTH, if any.
    pub password: Option<Zeroizing<String>>,
    /// The `From:` mailbox, e.g. `Sesame <no-reply@example.com>`.
    pub from: String,
    /// Connect and per-command timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SmtpSettings {
    /// The SMTP settings of `config`, or `None` when `smtp_host` is not set.
    pub fn from_config(config: &Config) -> Result<Option<SmtpSettings>, MailError> {
        let Some(host) = config
            .smtp_host
            .as_deref()
            .map(str::trim)
            .filter(|h| !h.is_empty())
        else {
            return Ok(None);
        };
        Ok(Some(SmtpSettings {
            host: host.to_owned(),
            port: config.smtp_port,
            security: config.smtp_security.parse()?,
            username: config.smtp_username.clone().filter(|u| !u.is_empty()),
            password: config.smtp_password.clone().map(Zeroizing::new),
            from: config.smtp_from.clone(),
            timeout: Duration::from_secs(config.smtp_timeout_secs.max(1)),
        }))
    }
}

/// Whether `host` names this machine (`localhost`, `127.0.0.0/8`, `::1`).
fn is_loopback(host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    bare.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends each message over one new SMTP connection (no pooling: code mails are rare).
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    description: String,
}

impl SmtpMailer {
    /// A mailer for `settings`. Fails on an unusable `from`, host name or combination
    /// (credentials over `none` to another machine).
    pub fn new(settings: &SmtpSettings) -> Result<SmtpMailer, MailError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| MailError(format!("smtp_from {:?}: {e}", settings.from)))?;
        let host = settings.host.as_str();
        let builder = match settings.security {
            SmtpSecurity::StartTls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(host),
            SmtpSecurity::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(host),
            SmtpSecurity::None => {
                if settings.username.is_some() && !is_loopback(host) {
                    return Err(MailError(format!(
                        "smtp_security = \"none\" would send the SMTP password in clear to \
                         {host}; use `starttls` or `tls` (or a loopback relay)"
                    )));
                }
                Ok(AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(
                    host,
                ))
            }
        }
        .map_err(|e| MailError(format!("smtp_host {host:?}: {e}")))?;
        let mut builder = builder.port(settings.port).timeout(Some(settings.timeout));
        let mut auth = String::new();
        if let Some(user) = &settings.username {
            let password = settings.password.as_deref().map_or("", String::as_str);
            builder = builder.credentials(Credentials::new(user.clone(), password.to_owned()));
            auth = format!(", as {user}");
        }
        let security = match settings.security {
            SmtpSecurity::StartTls => "STARTTLS required",
            SmtpSecurity::Tls => "implicit TLS",
            SmtpSecurity::None => "no encryption: loopback and testing only",
        };
        let description = format!(
            "SMTP {host}:{} ({security}{auth}), from {from}",
            settings.port
        );
        Ok(SmtpMailer {
            transport: builder.build(),
            from,
            description,
        })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), MailError> {
        if subject.contains(['\r', '\n']) {
            return Err(MailError("header injection refused".into()));
        }
        let to: Mailbox = to
            .parse()
            .map_err(|e| MailError(format!("recipient: {e}")))?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body.to_owned())
            .map_err(|e| MailError(e.to_string()))?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| MailError(format!("SMTP: {e}")))
    }

    fn describe(&self) -> String {
        self.description.clone()
    }
}

/// The mailer `config` asks for: [`SmtpMailer`] when `smtp_host` is set, else the
/// [`OutboxMailer`] in `<data_dir>/outbox`.
pub fn mailer_for(config: &Config) -> Result<Arc<dyn Mailer>, MailError> {
    match SmtpSettings::from_config(config)? {
        Some(settings) => {
            if settings.security == SmtpSecurity::None && !is_loopback(&settings.host) {
                eprintln!(
                    "sesame: warning: smtp_security = \"none\" to {}: codes and addresses \
                     cross the network in clear",
                    settings.host
                );
            }
            Ok(Arc::new(SmtpMailer::new(&settings)?))
        }
        None => Ok(Arc::new(OutboxMailer::new(
            config.data_dir.join("outbox"),
            config.smtp_from.clone(),
        ))),
    }
}

#[cfg(test)]
mod tests;
