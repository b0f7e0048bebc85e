//! The library's error type.

use sesame_api::{CredentialError, ErrorCode};
use sesame_proto::policy::{PasswordError, UsernameError};

/// Everything that can go wrong talking to a Sesame server.
///
/// [`Error::Http`] keeps its cause as [`std::error::Error::source`] (print the chain, e.g.
/// with `anyhow`'s `{:#}`); the other variants carry their whole story in `Display`.
///
/// Branch on the variant (and, for [`Error::Server`], on its typed `code`, e.g. with
/// [`Error::is`]), never on the `Display` text, which is meant for people and may change.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server answered with an error: `{"error":{"code","message"}}`. The code
    /// `authentication_failed` is reported as [`Error::AuthenticationFailed`] instead.
    #[error("{message} (server error `{wire_code}`{})", status_suffix(*.status))]
    Server {
        /// The HTTP status, or `None` when the error arrived over the WebSocket login.
        status: Option<u16>,
        /// The typed code, e.g. `InputError::UsernameTaken`; `None` for a code this build
        /// does not know (a newer server) or an answer that is not the API's error body.
        code: Option<ErrorCode>,
        /// The code as received, e.g. `username_taken` (`http_<status>` for an answer that is
        /// not the API's error body). For people and logs; branch on `code`.
        wire_code: String,
        /// The server's human-readable message.
        message: String,
        /// Seconds to wait before retrying, from `Retry-After` (429 and 503 answers).
        retry_after: Option<u64>,
    },
    /// The server's public key is not the one pinned for it: either the server's key was
    /// replaced, or someone is impersonating the server. Nothing was sent that depends on the
    /// password.
    #[error(
        "the server at {server} presented the key {presented}, but the key pinned for it is \
         {pinned}: the server's key changed, or someone is impersonating it; refusing to continue"
    )]
    ServerKeyMismatch {
        /// The server base URL.
        server: String,
        /// Fingerprint of the pinned key (`SHA256:…`).
        pinned: String,
        /// Fingerprint of the key the server presented (`SHA256:…`).
        presented: String,
    },
    /// The login failed: wrong username or password. The client detects a wrong password
    /// itself (the OPAQUE envelope does not open) and the server answers the same for an
    /// unknown user, so the two are indistinguishable by design.
    #[error("authentication failed: wrong username or password")]
    AuthenticationFailed,
    /// The server's login confirmation did not open: the server did not complete this
    /// exchange. Over the WebSocket the client has told the server (`login_ack` `failed`) and
    /// discarded whatever it sent.
    #[error("the server's login confirmation does not verify; the session was rejected")]
    ConfirmationInvalid,
    /// The password was right, but the account needs a second factor (a TOTP code or a
    /// backup code) and the caller did not handle one (see
    /// [`crate::LoginOutcome::into_login`]).
    #[error("this account needs a second factor (an authenticator code or a backup code)")]
    SecondFactorRequired,
    /// The username breaks the account policy (checked locally before contacting the server).
    #[error("invalid username: {0}")]
    Username(UsernameError),
    /// The password breaks the account policy (checked locally before contacting the server).
    #[error("password refused: {0}")]
    Password(PasswordError),
    /// The protocol failed locally: the server's parameters were refused (key-stretching
    /// bounds), or one of its messages does not decode.
    #[error("protocol error: {0}")]
    Protocol(sesame_proto::Error),
    /// The HTTP request could not be made or its answer could not be read.
    #[error("{}", describe_http(.0))]
    Http(reqwest::Error),
    /// The WebSocket connection failed.
    #[error("the WebSocket connection failed: {0}")]
    WebSocket(Box<tokio_tungstenite::tungstenite::Error>),
    /// The server answered something the API contract does not allow (wrong status, body or
    /// message order).
    #[error("unexpected answer from the server: {0}")]
    UnexpectedResponse(String),
    /// The server did not answer in time.
    #[error("timed out waiting for the server")]
    Timeout,
    /// The server URL is not an `http://` or `https://` URL.
    #[error("invalid server URL `{url}`: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The TLS options are unusable (a CA file without certificates, …).
    #[error("TLS: {0}")]
    Tls(String),
    /// A background task (the Argon2 work) failed.
    #[error("internal error: {0}")]
    Internal(String),
}

fn status_suffix(status: Option<u16>) -> String {
    match status {
        Some(s) => format!(", HTTP {s}"),
        None => String::new(),
    }
}

impl Error {
    /// The server's typed error code, if this is an [`Error::Server`] with a known code.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Error::Server { code, .. } => *code,
            _ => None,
        }
    }

    /// Whether this is the server's error `code`.
    pub fn is(&self, code: impl Into<ErrorCode>) -> bool {
        self.server_code() == Some(code.into())
    }

    /// Whether the server refused the credentials (a 401 `unauthorized` or `session_invalid`):
    /// the stored access or session token is no longer good.
    pub fn is_unauthorized(&self) -> bool {
        self.is(CredentialError::Unauthorized) || self.is(CredentialError::SessionInvalid)
    }

    /// Whether the server wants a fresh authentication first (403
    /// `reauthentication_required`): re-authenticate ([`crate::Client::reauth`]) and retry.
    pub fn is_reauthentication_required(&self) -> bool {
        self.is(CredentialError::ReauthenticationRequired)
    }

    /// Whether the account may not do this (403 `forbidden`: the admin API without the admin
    /// role).
    pub fn is_forbidden(&self) -> bool {
        self.is(CredentialError::Forbidden)
    }
}

impl From<UsernameError> for Error {
    fn from(e: UsernameError) -> Self {
        Error::Username(e)
    }
}

impl From<PasswordError> for Error {
    fn from(e: PasswordError) -> Self {
        Error::Password(e)
    }
}

impl From<tokio_tungstenite::tungstenite::Error> for Error {
    fn from(e: tokio_tungstenite::tungstenite::Error) -> Self {
        Error::WebSocket(Box::new(e))
    }
}

/// Maps an error of the protocol core, keeping the cases a caller acts on apart.
impl From<sesame_proto::Error> for Error {
    fn from(e: sesame_proto::Error) -> Self {
        match e {
            sesame_proto::Error::AuthenticationFailed => Error::AuthenticationFailed,
            sesame_proto::Error::ConfirmationInvalid => Error::ConfirmationInvalid,
            other => Error::Protocol(other),
        }
    }
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a failed HTTP request means to a person: the server is not there, does not speak
/// TLS, or took too long; the library's own words otherwise.
fn describe_http(e: &reqwest::Error) -> String {
    let url = e
        .url()
        .map(|u| format!("{}://{}", u.scheme(), u.authority()))
        .unwrap_or_else(|| "the server".to_owned());
    if is_tls_on_plain_http(e) {
        return format!(
            "{url} does not speak TLS (nothing answered the TLS handshake): use http:// for a \
             server without TLS"
        );
    }
    if e.is_connect() {
        return format!("cannot reach {url}: is `sesame serve` running there?");
    }
    if e.is_timeout() {
        return format!("{url} did not answer in time");
    }
    let mut text = format!("the HTTP request to {url} failed");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Whether the TLS handshake failed because the peer answered in plain text (an `https://`
/// URL for a plain HTTP server): rustls then reports an invalid content type.
fn is_tls_on_plain_http(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if invalid_content_type(s) {
            return true;
        }
        source = s.source();
    }
    false
}

/// Whether `e` is (or wraps, as an I/O error or a boxed error) rustls' invalid content type.
fn invalid_content_type(e: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType)) =
        e.downcast_ref::<rustls::Error>()
    {
        return true;
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(|io| io.get_ref())
    {
        return invalid_content_type(inner);
    }
    false
}

impl From<reqwest::Error> for Error {
    fn from(e: reqwest::Error) -> Self {
        // Not a `source`: `describe_http` already says what matters, with the cause chain
        // only when it has nothing better.
        Error::Http(e)
    }
}

#[cfg(test)]
mod tests;
