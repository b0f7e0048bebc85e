//! The WebSocket codec of the OPAQUE login (`GET /auth/login`, seed 001).
//!
//! JSON text frames, each with a `type`:
//!
//! ```text
//! client: {"type":"login_start", "username", "ke1"}
//! server: {"type":"login_challenge", "login_id", "ke2", "key_stretching", "server_public_key", "expires_in"}
//! client: {"type":"login_finish", "login_id", "ke3"}
//! server: {"type":"login_confirmation", "login_id", "sealed"}
//! client: {"type":"login_ack", "login_id", "status": "success"|"failed", "reason"?}
//! server: {"type":"login_result", "status": "accepted"|"revoked"|"second_factor_required"}
//! (second factor) client: {"type":"second_factor", "mfa_token", "code"}
//!                 server: {"type":"session", ...SessionIssued}  (or an `invalid_code` error
//!                 frame, after which the client may send another code)
//! then close
//! any error: {"type":"error", "error": {"code", "message"}}          then close
//! ```
//! Frames are limited to [`MAX_FRAME_BYTES`]; each client step must arrive within
//! [`STEP_TIMEOUT`].

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::response::Response;
use sesame_api::auth::SecondFactorRequest;
use sesame_api::login_socket::{
    LoginClientFrame as ClientFrame, LoginResultStatus, LoginServerFrame as ServerFrame,
    STEP_TIMEOUT_SECS,
};
use sesame_proto::messages::AckStatus;

use crate::error::{ApiError, ConnectionError, CredentialError, ErrorCode, InputError};
use crate::http::Ctx;
use crate::service::{LoginOutcome, RequestContext, Sesame};

pub use sesame_api::login_socket::MAX_FRAME_BYTES;
/// How long the server waits for each client step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(STEP_TIMEOUT_SECS);

pub(crate) async fn login_socket(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    ws: WebSocketUpgrade,
) -> Response {
    ws.max_message_size(MAX_FRAME_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .read_buffer_size(8 * 1024)
        .on_upgrade(move |socket| async move {
            let _live = crate::metrics::Live::websocket("/auth/login");
            let mut socket = socket;
            let result = exchange(&s, &ctx, &mut socket).await;
            if let Err(e) = &result {
                let _ = send(&mut socket, &ServerFrame::Error { error: e.detail() }).await;
            }
            let close = closing(result.as_ref().err());
            let unreadable = close.code != 1000;
            let _ = socket.send(Message::Close(Some(close))).await;
            if unreadable {
                linger(&mut socket).await;
            }
        })
}

/// The close code and reason for a WebSocket read error that is the client's fault: 1009
/// (`message_too_big`) for a message above the limit, 1007 (`invalid_utf8`) for a text
/// frame that is not UTF-8; `None` for anything else (a broken connection).
pub(crate) fn close_for(e: &axum::Error) -> Option<(u16, ConnectionError)> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        match err.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Capacity(_)) => {
                return Some((1009, ConnectionError::MessageTooBig))
            }
            Some(tungstenite::Error::Utf8(_)) => return Some((1007, ConnectionError::InvalidUtf8)),
            Some(_) => return None,
            None => source = err.source(),
        }
    }
    None
}

/// After a close frame for an unreadable message: keeps the connection open (at most
/// [`LINGER`]) so that the client reads the close frame before the connection is reset (the
/// rest of the unreadable message is still unread in the server's buffer, and closing a
/// socket with unread data resets it, which discards what the client has not read yet). The
/// WebSocket stream ends at a read error, so the server cannot see the client's reply: it
/// waits out the bound, without reading.
pub(crate) async fn linger(socket: &mut WebSocket) {
    #[allow(clippy::disallowed_methods)] // a bound on a socket wait, not an expiry
    let deadline = tokio::time::Instant::now() + LINGER;
    while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(deadline, socket.recv()).await {
        if matches!(msg, Message::Close(_)) {
            return;
        }
    }
    tokio::time::sleep_until(deadline).await;
}

/// How long [`linger`] keeps the connection.
const LINGER: Duration = Duration::from_secs(1);

/// The close frame that ends a login exchange that failed with `e`.
fn closing(e: Option<&ApiError>) -> CloseFrame {
    let (code, reason) = match e.map(|e| e.code) {
        Some(ErrorCode::Connection(c @ ConnectionError::MessageTooBig)) => (1009, c.as_str()),
        Some(ErrorCode::Connection(c @ ConnectionError::InvalidUtf8)) => (1007, c.as_str()),
        _ => (1000, ""),
    };
    CloseFrame {
        code,
        reason: reason.into(),
    }
}

async fn next_frame(socket: &mut WebSocket) -> Result<ClientFrame, ApiError> {
    loop {
        let msg = tokio::time::timeout(STEP_TIMEOUT, socket.recv())
            .await
            .map_err(|_| {
                ApiError::new(ConnectionError::Timeout, "No message within 30 seconds.")
            })?;
        match msg {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str()).map_err(|e| {
                    ApiError::new(InputError::InvalidMessage, format!("Unexpected frame: {e}"))
                });
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return Err(ApiError::new(
                    InputError::InvalidMessage,
                    "Send JSON text frames.",
                ))
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(ApiError::new(
                    ConnectionError::Closed,
                    "The client closed the connection.",
                ))
            }
            Some(Err(e)) => {
                return Err(match close_for(&e) {
                    Some((_, code)) => ApiError::new(code, format!("Unreadable frame: {e}")),
                    None => ApiError::new(
                        ConnectionError::InvalidFrame,
                        format!("WebSocket error: {e}"),
                    ),
                })
            }
        }
    }
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), ApiError> {
    let text = serde_json::to_string(frame).map_err(ApiError::internal)?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|_| ApiError::new(ConnectionError::Closed, "The client went away."))
}

fn out_of_order() -> ApiError {
    ApiError::new(
        ConnectionError::UnexpectedMessage,
        "That message is not expected at this step.",
    )
}

async fn exchange(
    s: &Sesame,
    ctx: &RequestContext,
    socket: &mut WebSocket,
) -> Result<(), ApiError> {
    let ClientFrame::LoginStart(start) = next_frame(socket).await? else {
        return Err(out_of_order());
    };
    let challenge = s.login_start(&start, ctx).await?;
    send(socket, &ServerFrame::LoginChallenge(challenge.clone())).await?;
    let ClientFrame::LoginFinish(finish) = next_frame(socket).await? else {
        return Err(out_of_order());
    };
    if finish.login_id != challenge.login_id {
        return Err(sesame_proto::Error::UnknownLogin.into());
    }
    let (confirmation, outcome) = s.login_finish(&finish, ctx).await?;
    send(socket, &ServerFrame::LoginConfirmation(confirmation)).await?;
    let ClientFrame::LoginAck(ack) = next_frame(socket).await? else {
        return Err(out_of_order());
    };
    if ack.login_id != challenge.login_id {
        return Err(sesame_proto::Error::UnknownLogin.into());
    }
    let revoked = s.login_ack(&ack, ctx).await?;
    if ack.status == AckStatus::Failed || revoked {
        let status = LoginResultStatus::Revoked;
        return send(socket, &ServerFrame::LoginResult { status }).await;
    }
    let LoginOutcome::SecondFactor(required) = outcome else {
        let status = LoginResultStatus::Accepted;
        return send(socket, &ServerFrame::LoginResult { status }).await;
    };
    send(
        socket,
        &ServerFrame::LoginResult {
            status: LoginResultStatus::SecondFactorRequired,
        },
    )
    .await?;
    // Wrong codes may be retried on the socket until the ticket is used up.
    loop {
        let ClientFrame::SecondFactor(SecondFactorRequest { mfa_token, code }) =
            next_frame(socket).await?
        else {
            return Err(out_of_order());
        };
        if mfa_token != required.mfa_token {
            return Err(ApiError::new(
                CredentialError::MfaExpired,
                "Unknown second-factor ticket.",
            ));
        }
        match s.login_second_factor(&mfa_token, &code, ctx).await {
            Ok(issued) => return send(socket, &ServerFrame::Session(issued)).await,
            Err(e) if e.code == CredentialError::InvalidCode.into() => {
                send(socket, &ServerFrame::Error { error: e.detail() }).await?;
            }
            Err(e) => return Err(e),
        }
    }
}
