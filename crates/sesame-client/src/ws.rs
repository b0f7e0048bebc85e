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
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sesame_proto::client as proto;
use sesame_proto::messages::{AckStatus, LoginAck, LoginChallenge, LoginConfirmation};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::WebSocketStream;

use zeroize::Zeroizing;

use crate::account::{Confirmed, LoginOutcome, PendingLogin, SecondFactorRequired};
use crate::api::{ErrorDetail, SessionIssued};
use crate::client::{error_from_body, from_detail, open_confirmation, Client, Login, USER_AGENT};
use crate::error::{Error, Result};

/// Largest frame or message accepted from the server (the API's body limit).
const MAX_MESSAGE: usize = 64 * 1024;

/// What the client tells the server when the confirmation does not open.
const REASON_CONFIRMATION: &str = "login confirmation does not verify";
/// What the client tells the server when the confirmation opens to something else than a
/// session.
const REASON_PAYLOAD: &str = "login confirmation does not carry a session";

/// `login_result` from the server.
#[derive(Debug, Deserialize)]
struct LoginResult {
    status: String,
}

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
        let connect = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
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
        let frame = serde_json::json!({ "mfa_token": required.mfa_token, "code": code });
        self.send(ws, "second_factor", &frame).await?;
        self.recv(ws, "session").await
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
        self.send(ws, "login_start", &start).await?;
        let challenge: LoginChallenge = self.recv(ws, "login_challenge").await?;
        let login_id = challenge.login_id.clone();
        let done = self.finish_login(state, challenge).await?;
        self.send(ws, "login_finish", &done.message).await?;
        let confirmation: LoginConfirmation = self.recv(ws, "login_confirmation").await?;
        match open_confirmation(done.confirmation, &confirmation) {
            Ok(confirmed) => {
                let ack = LoginAck {
                    login_id,
                    status: AckStatus::Success,
                    reason: None,
                };
                self.send(ws, "login_ack", &ack).await?;
                let result: LoginResult = self.recv(ws, "login_result").await?;
                let expected = match confirmed {
                    Confirmed::Session(_) => "accepted",
                    Confirmed::SecondFactor(_) => "second_factor_required",
                };
                if result.status != expected {
                    return Err(Error::UnexpectedResponse(format!(
                        "the server answered the login with `{}` instead of `{expected}`",
                        result.status
                    )));
                }
                Ok((confirmed, done.export_key, done.server_public_key))
            }
            Err(err) => {
                let reason = match err {
                    Error::ConfirmationInvalid => REASON_CONFIRMATION,
                    _ => REASON_PAYLOAD,
                };
                let ack = LoginAck {
                    login_id,
                    status: AckStatus::Failed,
                    reason: Some(reason.to_owned()),
                };
                // Best effort: the verdict stands whether or not the server hears it, and
                // its `login_result` (`revoked`) changes nothing here.
                if self.send(ws, "login_ack", &ack).await.is_ok() {
                    let _ = self.recv::<_, LoginResult>(ws, "login_result").await;
                }
                Err(err)
            }
        }
    }

    async fn send<S, T>(&self, ws: &mut WebSocketStream<S>, kind: &str, msg: &T) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        T: Serialize,
    {
        let text = tagged(kind, msg)?;
        match tokio::time::timeout(self.ws_timeout(), ws.send(Message::text(text))).await {
            Err(_) => Err(Error::Timeout),
            Ok(r) => r.map_err(Error::from),
        }
    }

    async fn recv<S, T>(&self, ws: &mut WebSocketStream<S>, kind: &str) -> Result<T>
    where
        S: AsyncRead + AsyncWrite + Unpin,
        T: DeserializeOwned,
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
                Some(Ok(Message::Text(text))) => return untag(text.as_str(), kind),
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

/// Serialises `msg` as a JSON object with `"type": kind` added.
pub(crate) fn tagged<T: Serialize>(kind: &str, msg: &T) -> Result<String> {
    let mut value = serde_json::to_value(msg)
        .map_err(|e| Error::Internal(format!("cannot encode `{kind}`: {e}")))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| Error::Internal(format!("`{kind}` is not a JSON object")))?;
    object.insert("type".into(), serde_json::Value::String(kind.into()));
    Ok(value.to_string())
}

/// Reads a frame of type `kind`; an `error` frame becomes the server's error.
pub(crate) fn untag<T: DeserializeOwned>(text: &str, kind: &str) -> Result<T> {
    let malformed =
        |why: String| Error::UnexpectedResponse(format!("malformed `{kind}` frame: {why}"));
    let mut value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
    let object = value
        .as_object_mut()
        .ok_or_else(|| malformed("not a JSON object".into()))?;
    let found = match object.remove("type") {
        Some(serde_json::Value::String(t)) => t,
        _ => return Err(malformed("no `type`".into())),
    };
    if found == "error" {
        let detail: ErrorDetail = object
            .remove("error")
            .and_then(|e| serde_json::from_value(e).ok())
            .ok_or_else(|| malformed("an `error` frame without `{code, message}`".into()))?;
        let retry_after = detail.retry_after;
        return Err(from_detail(None, detail, retry_after));
    }
    if found != kind {
        return Err(Error::UnexpectedResponse(format!(
            "the server sent `{found}` where `{kind}` was expected"
        )));
    }
    serde_json::from_value(value).map_err(|e| malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sesame_proto::b64::Bytes;
    use sesame_proto::client::ClientPolicy;
    use sesame_proto::messages::LoginStart;

    #[test]
    fn frames_carry_their_type_next_to_the_message_fields() {
        let start = LoginStart {
            username: "alice".into(),
            ke1: Bytes(vec![0, 1, 2]),
        };
        let text = tagged("login_start", &start).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "login_start");
        assert_eq!(value["username"], "alice");
        assert_eq!(value["ke1"], "AAEC");
        // And back: the type is stripped before the strict message parser sees it.
        let back: LoginStart = untag(&text, "login_start").unwrap();
        assert_eq!(back, start);
    }

    #[test]
    fn error_frames_and_unexpected_types_are_errors() {
        let e = untag::<LoginResult>(
            r#"{"type":"error","error":{"code":"too_many_attempts","message":"Slow down."}}"#,
            "login_challenge",
        )
        .unwrap_err();
        match e {
            Error::Server {
                status,
                code,
                message,
                ..
            } => {
                assert_eq!(status, None);
                assert_eq!(code, "too_many_attempts");
                assert_eq!(message, "Slow down.");
            }
            other => panic!("{other:?}"),
        }
        let e = untag::<LoginResult>(
            r#"{"type":"error","error":{"code":"authentication_failed","message":"x"}}"#,
            "login_confirmation",
        )
        .unwrap_err();
        assert!(matches!(e, Error::AuthenticationFailed));
        let e = untag::<LoginResult>(r#"{"type":"login_result","status":"accepted"}"#, "x")
            .unwrap_err();
        assert!(matches!(e, Error::UnexpectedResponse(_)));
        assert!(untag::<LoginResult>("[1]", "login_result").is_err());
        assert!(untag::<LoginResult>(r#"{"status":"accepted"}"#, "login_result").is_err());
        let ok: LoginResult = untag(
            r#"{"type":"login_result","status":"accepted"}"#,
            "login_result",
        )
        .unwrap();
        assert_eq!(ok.status, "accepted");
    }

    #[test]
    fn ws_url_follows_the_base_scheme_and_path() {
        let c = Client::new("http://127.0.0.1:7878", ClientPolicy::default()).unwrap();
        assert_eq!(
            c.ws_login_url().unwrap().as_str(),
            "ws://127.0.0.1:7878/auth/login"
        );
        let c = Client::new("https://example.com/sesame/", ClientPolicy::default()).unwrap();
        assert_eq!(
            c.ws_login_url().unwrap().as_str(),
            "wss://example.com/sesame/auth/login"
        );
    }
}
