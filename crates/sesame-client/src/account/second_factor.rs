//! Login with a second factor: what the server answers instead of a session, and the
//! [`PendingLogin`] that finishes it with a TOTP or backup code.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::SinkExt as _;
use tokio_tungstenite::tungstenite::Message;
use zeroize::Zeroizing;

use crate::api::SessionIssued;
use crate::client::{Client, Login};
use crate::error::{Error, Result};

/// The WebSocket of a login waiting for its second factor.
pub(crate) type WsStream =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// How often [`PendingLogin::keep_alive_while`] pings the server.
const KEEPALIVE: Duration = Duration::from_secs(10);

pub use sesame_api::auth::SecondFactorRequired;

/// What a verified password leads to, as the server says it.
pub(crate) enum Confirmed {
    Session(SessionIssued),
    SecondFactor(SecondFactorRequired),
}

/// Reads a login answer: a [`SecondFactorRequired`] (`"second_factor_required": true`) or a
/// [`SessionIssued`].
pub(crate) fn parse_login_payload(bytes: &[u8]) -> Result<Confirmed> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| Error::UnexpectedResponse(format!("the login answer is not JSON: {e}")))?;
    if value.get("second_factor_required") == Some(&serde_json::Value::Bool(true)) {
        let required = serde_json::from_value(value)
            .map_err(|e| Error::UnexpectedResponse(format!("malformed second-factor step: {e}")))?;
        return Ok(Confirmed::SecondFactor(required));
    }
    serde_json::from_value(value)
        .map(Confirmed::Session)
        .map_err(|e| Error::UnexpectedResponse(format!("the login does not carry a session: {e}")))
}

/// The outcome of an OPAQUE login ([`Client::login`], [`Client::login_ws`]).
#[derive(Debug)]
pub enum LoginOutcome {
    /// Logged in.
    Session(Login),
    /// The password was right and the server is authenticated, but the account needs a
    /// second factor: finish with [`PendingLogin::submit`].
    SecondFactor(PendingLogin),
}

impl LoginOutcome {
    /// The login, or [`Error::SecondFactorRequired`] when the account needs a second factor
    /// (for callers that do not handle one).
    pub fn into_login(self) -> Result<Login> {
        match self {
            LoginOutcome::Session(login) => Ok(login),
            LoginOutcome::SecondFactor(_) => Err(Error::SecondFactorRequired),
        }
    }

    /// The server's public key, authenticated by the password in both cases: pin it if
    /// nothing was pinned yet.
    pub fn server_public_key(&self) -> &[u8; 32] {
        match self {
            LoginOutcome::Session(login) => &login.server_public_key,
            LoginOutcome::SecondFactor(pending) => &pending.server_public_key,
        }
    }
}

/// A login waiting for its second factor (a TOTP code or a backup code).
///
/// Over REST it holds the ticket; over the WebSocket it also holds the open connection, which
/// the server closes when no frame arrives for 30 seconds: while asking a person for the code,
/// wrap the wait in [`PendingLogin::keep_alive_while`].
pub struct PendingLogin {
    client: Client,
    required: SecondFactorRequired,
    export_key: Zeroizing<[u8; 64]>,
    server_public_key: [u8; 32],
    ws: Option<Box<WsStream>>,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("required", &self.required)
            .field("websocket", &self.ws.is_some())
            .finish_non_exhaustive()
    }
}

impl PendingLogin {
    pub(crate) fn new(
        client: Client,
        required: SecondFactorRequired,
        export_key: Zeroizing<[u8; 64]>,
        server_public_key: [u8; 32],
        ws: Option<Box<WsStream>>,
    ) -> PendingLogin {
        PendingLogin {
            client,
            required,
            export_key,
            server_public_key,
            ws,
        }
    }

    /// The second-factor ticket. Secret.
    pub fn mfa_token(&self) -> &str {
        &self.required.mfa_token
    }

    /// The kinds of code the server accepts (`totp`, `backup_code`).
    pub fn methods(&self) -> &[String] {
        &self.required.methods
    }

    /// Seconds the ticket was valid for when the server issued it.
    pub fn expires_in(&self) -> u64 {
        self.required.expires_in
    }

    /// The server's public key (authenticated by the password already).
    pub fn server_public_key(&self) -> &[u8; 32] {
        &self.server_public_key
    }

    /// Whether the login runs over the WebSocket.
    pub fn is_websocket(&self) -> bool {
        self.ws.is_some()
    }

    /// Sends a TOTP code or a backup code and returns the login.
    ///
    /// A wrong code fails with the server error `invalid_code` and may be retried (the server
    /// allows a few tries per ticket); `mfa_expired` means the ticket is gone: log in again.
    pub async fn submit(&mut self, code: &str) -> Result<Login> {
        let code = code.trim();
        let session = match self.ws.as_deref_mut() {
            Some(ws) => {
                self.client
                    .ws_second_factor(ws, &self.required, code)
                    .await?
            }
            None => {
                self.client
                    .second_factor(&self.required.mfa_token, code)
                    .await?
            }
        };
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(self.client.ws_timeout(), WsStream::close(&mut ws, None))
                .await;
        }
        Ok(Login {
            session,
            export_key: self.export_key.clone(),
            server_public_key: self.server_public_key,
        })
    }

    /// Runs `fut` (typically: asking a person for the code) while keeping the WebSocket
    /// alive with pings. Over REST it just runs `fut`.
    pub async fn keep_alive_while<F: Future>(&mut self, fut: F) -> F::Output {
        let Some(ws) = self.ws.as_deref_mut() else {
            return fut.await;
        };
        tokio::pin!(fut);
        let mut tick = tokio::time::interval(KEEPALIVE);
        tick.tick().await; // the first tick is immediate
        loop {
            tokio::select! {
                out = &mut fut => return out,
                _ = tick.tick() => {
                    // A failed ping shows up as an error at the next submit.
                    let _ = ws.send(Message::Ping(Vec::new().into())).await;
                }
            }
        }
    }

    /// Gives up: closes the WebSocket, if any. The ticket expires by itself.
    pub async fn cancel(mut self) {
        if let Some(mut ws) = self.ws.take() {
            let _ = tokio::time::timeout(self.client.ws_timeout(), WsStream::close(&mut ws, None))
                .await;
        }
    }
}

/// The outcome of a server-assisted login ([`Client::login_password`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordLogin {
    /// Logged in.
    Session(SessionIssued),
    /// The account needs a second factor: finish with [`Client::second_factor`].
    SecondFactor(SecondFactorRequired),
}

impl PasswordLogin {
    /// The session, or [`Error::SecondFactorRequired`].
    pub fn into_session(self) -> Result<SessionIssued> {
        match self {
            PasswordLogin::Session(s) => Ok(s),
            PasswordLogin::SecondFactor(_) => Err(Error::SecondFactorRequired),
        }
    }
}

impl Client {
    /// `POST /api/login/second-factor`: finishes a login that asked for a second factor
    /// ([`PasswordLogin::SecondFactor`], or a REST [`PendingLogin`]) with a TOTP code or a
    /// backup code. A wrong code answers `invalid_code` and may be retried.
    pub async fn second_factor(&self, mfa_token: &str, code: &str) -> Result<SessionIssued> {
        let body = sesame_api::auth::SecondFactorRequest {
            mfa_token: mfa_token.to_owned(),
            code: code.trim().to_owned(),
        };
        self.send_json(self.post("api/login/second-factor", None)?.json(&body))
            .await
    }
}
