//! The WebSocket login (`GET /auth/login`): the OPAQUE login plus the client's `login_ack`.
//!
//! Every frame is a JSON text frame with a `"type"`:
//!
//! ```text
//! client login_start        {username, ke1}
//! server login_challenge    {login_id, ke2, key_stretching, server_public_key, expires_in}
//! client login_finish       {login_id, ke3}
//! server login_confirmation {login_id, sealed}
//! client login_ack          {login_id, status: success | failed, reason?}
//! server login_result       {status: accepted | revoked | second_factor_required}
//! (second factor)
//! client second_factor      {mfa_token, code}
//! server session            {...SessionIssued}        (or an `invalid_code` error: retry)
//! server error              {error: {code, message}}   (at any point, then close)
//! ```

use futures_util::{SinkExt as _, StreamExt as _};
use rand_core::OsRng;
use reqwest::header::{HeaderValue, USER_AGENT as USER_AGENT_HEADER};
use sesame_api::auth::SecondFactorRequest;
use sesame_api::login_socket::{LoginClientFrame, LoginResultStatus, LoginServerFrame};
use sesame_proto::client as proto;
use sesame_proto::messages::{AckStatus, LoginAck};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use zeroize::Zeroizing;

use crate::account::{Confirmed, LoginOutcome, PendingLogin, SecondFactorRequired};
use crate::api::SessionIssued;
use crate::client::{error_from_body, from_detail, open_confirmation, Client, Login, USER_AGENT};
use crate::error::{Error, Result};

/// Largest frame or message accepted from the server (the API's body limit).
const MAX_MESSAGE: usize = 64 * 1024;

/// What the client tells the server when the confirmation does not open.
const REASON_CONFIRMATION: &str = "login confirmation does not verify";
/// What the client tells the server when the confirmation opens to something else than a
/// session.
const REASON_PAYLOAD: &str = "login confirmation does not carry a session";

impl Client {
    /// The WebSocket login URL: the base URL with `ws`/`wss` and `auth/login`.
    pub fn ws_login_url(&self) -> Result<reqwest::Url> {
        let mut url = self.url("auth/login")?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme).map_err(|()| Error::InvalidUrl {
            url: url.to_string(),
            reason: "cannot switch to a WebSocket scheme".into(),
        })?;
        Ok(url)
    }

    /// Logs in with OPAQUE over the WebSocket (`GET /auth/login`), then acknowledges the
    /// server's confirmation.
    ///
    /// When the confirmation opens, the client answers `login_ack` `success` and returns the
    /// session once the server has `accepted` it; when the account needs a second factor, it
    /// returns [`LoginOutcome::SecondFactor`], which keeps the connection open for the code.
    /// When the confirmation does not open (or opens to
    /// something other than a session), the client answers `failed` with a reason, so the
    /// server revokes the session, and returns [`Error::ConfirmationInvalid`] (or
    /// [`Error::UnexpectedResponse`]).
    pub async fn login_ws(&self, username: &str, password: &str) -> Result<LoginOutcome> {
        let mut request = self.ws_login_url()?.as_str().into_client_request()?;
        request
            .headers_mut()
            .insert(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT));
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            self.ws_connector(),
        );
        let (mut ws, _response) = match tokio::time::timeout(self.ws_timeout(), connect).await {
            Err(_) => return Err(Error::Timeout),
            Ok(Err(tungstenite::Error::Http(response))) => {
                // The server refused the upgrade with an ordinary error answer.
                let retry_after = crate::client::retry_after(response.headers());
                let body = response.body().as_deref().unwrap_or_default();
                return Err(error_from_body(response.status(), body, retry_after));
            }
            Ok(Err(e)) => return Err(e.into()),
            Ok(Ok(pair)) => pair,
        };
        let result = self.exchange(&mut ws, username, password).await;
        if let Ok((Confirmed::SecondFactor(_), _, _)) = &result {
            // The connection stays open for the code.
        } else {
            // Close politely whatever happened; the server may have closed first.
            let _ = tokio::time::timeout(self.ws_timeout(), ws.close(None)).await;
        }
        let (confirmed, export_key, server_public_key) = result?;
        Ok(match confirmed {
            Confirmed::Session(session) => LoginOutcome::Session(Login {
                session,
                export_key,
                server_public_key,
            }),
            Confirmed::SecondFactor(required) => LoginOutcome::SecondFactor(PendingLogin::new(
                self.clone(),
                required,
                export_key,
                server_public_key,
                Some(Box::new(ws)),
            )),
        })
    }

    /// Sends the second factor on the open login connection and reads the session. An
    /// `invalid_code` error leaves the connection open for another code.
    pub(crate) async fn ws_second_factor<S>(
        &self,
        ws: &mut WebSocketStream<S>,
        required: &SecondFactorRequired,
        code: &str,
    ) -> Result<SessionIssued>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let frame = LoginClientFrame::SecondFactor(SecondFactorRequest {
            mfa_token: required.mfa_token.clone(),
            code: code.to_owned(),
        });
        self.send(ws, &frame).await?;
        match self.recv(ws, "session").await? {
            LoginServerFrame::Session(session) => Ok(session),
            other => Err(unexpected(&other, "session")),
        }
    }

    async fn exchange<S>(
        &self,
        ws: &mut WebSocketStream<S>,
        username: &str,
        password: &str,
    ) -> Result<(Confirmed, Zeroizing<[u8; 64]>, [u8; 32])>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let (state, start) = proto::start_login(&mut OsRng, username, password)?;
        self.send(ws, &LoginClientFrame::LoginStart(start)).await?;
        let challenge = match self.recv(ws, "login_challenge").await? {
            LoginServerFrame::LoginChallenge(c) => c,
            other => return Err(unexpected(&other, "login_challenge")),
        };
        let login_id = challenge.login_id.clone();
        let done = self.finish_login(state, challenge).await?;
        self.send(ws, &LoginClientFrame::LoginFinish(done.message))
            .await?;
        let confirmation = match self.recv(ws, "login_confirmation").await? {
            LoginServerFrame::LoginConfirmation(c) => c,
            other => return Err(unexpected(&other, "login_confirmation")),
        };
        let confirmed = match open_confirmation(done.confirmation, &confirmation) {
            Ok(confirmed) => confirmed,
            Err(err) => return Err(self.refuse(ws, login_id, err).await),
        };
        let ack = LoginAck {
            login_id,
            status: AckStatus::Success,
            reason: None,
        };
        self.send(ws, &LoginClientFrame::LoginAck(ack)).await?;
        let expected = match confirmed {
            Confirmed::Session(_) => LoginResultStatus::Accepted,
            Confirmed::SecondFactor(_) => LoginResultStatus::SecondFactorRequired,
        };
        match self.recv(ws, "login_result").await? {
            LoginServerFrame::LoginResult { status } if status == expected => {
                Ok((confirmed, done.export_key, done.server_public_key))
            }
            LoginServerFrame::LoginResult { status } => Err(Error::UnexpectedResponse(format!(
                "the server answered the login with `{status:?}` instead of `{expected:?}`"
            ))),
            other => Err(unexpected(&other, "login_result")),
        }
    }

    /// Tells the server the confirmation did not open (`login_ack` `failed`, so it revokes
    /// the session) and returns `err`.
    async fn refuse<S>(&self, ws: &mut WebSocketStream<S>, login_id: String, err: Error) -> Error
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let reason = match err {
            Error::ConfirmationInvalid => REASON_CONFIRMATION,
            _ => REASON_PAYLOAD,
        };
        let ack = LoginAck {
            login_id,
            status: AckStatus::Failed,
            reason: Some(reason.to_owned()),
        };
        // Best effort: the verdict stands whether or not the server hears it, and its
        // `login_result` (`revoked`) changes nothing here.
        if self
            .send(ws, &LoginClientFrame::LoginAck(ack))
            .await
            .is_ok()
        {
            let _ = self.recv(ws, "login_result").await;
        }
        err
    }

    async fn send<S>(&self, ws: &mut WebSocketStream<S>, frame: &LoginClientFrame) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let text = serde_json::to_string(frame)
            .map_err(|e| Error::Internal(format!("cannot encode a login frame: {e}")))?;
        match tokio::time::timeout(self.ws_timeout(), ws.send(Message::text(text))).await {
            Err(_) => Err(Error::Timeout),
            Ok(r) => r.map_err(Error::from),
        }
    }

    /// The next frame; an `error` frame becomes the server's error. `kind` names the frame
    /// the client waits for, for error messages.
    async fn recv<S>(&self, ws: &mut WebSocketStream<S>, kind: &str) -> Result<LoginServerFrame>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        loop {
            let next = match tokio::time::timeout(self.ws_timeout(), ws.next()).await {
                Err(_) => return Err(Error::Timeout),
                Ok(next) => next,
            };
            match next {
                None | Some(Ok(Message::Close(_))) => {
                    return Err(Error::UnexpectedResponse(format!(
                        "the server closed the connection while the client waited for `{kind}`"
                    )))
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(Message::Text(text))) => return parse_frame(text.as_str(), kind),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Binary(_))) => {
                    return Err(Error::UnexpectedResponse(format!(
                        "binary frame where `{kind}` was expected"
                    )))
                }
            }
        }
    }
}

/// Parses a server frame; an `error` frame becomes the server's error.
pub(crate) fn parse_frame(text: &str, kind: &str) -> Result<LoginServerFrame> {
    match serde_json::from_str::<LoginServerFrame>(text) {
        Ok(LoginServerFrame::Error { error }) => {
            let retry_after = error.retry_after;
            Err(from_detail(None, error, retry_after))
        }
        Ok(frame) => Ok(frame),
        Err(e) => Err(Error::UnexpectedResponse(format!(
            "malformed frame where `{kind}` was expected: {e}"
        ))),
    }
}

/// The error for a well-formed frame of the wrong type.
fn unexpected(found: &LoginServerFrame, kind: &str) -> Error {
    let found = match found {
        LoginServerFrame::LoginChallenge(_) => "login_challenge",
        LoginServerFrame::LoginConfirmation(_) => "login_confirmation",
        LoginServerFrame::LoginResult { .. } => "login_result",
        LoginServerFrame::Session(_) => "session",
        _ => "error",
    };
    Error::UnexpectedResponse(format!(
        "the server sent `{found}` where `{kind}` was expected"
    ))
}

#[cfg(test)]
mod tests;
