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
use serde::{Deserialize, Serialize};
use serde_json::json;
use sesame_proto::messages::{AckStatus, LoginAck, LoginFinish, LoginStart};

use crate::error::ApiError;
use crate::http::Ctx;
use crate::service::{LoginOutcome, RequestContext, Sesame};

/// Largest WebSocket message accepted, in bytes.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// How long the server waits for each client step.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(30);

/// A frame from the client.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // the variant names are the wire `type` values
enum ClientFrame {
    LoginStart(LoginStart),
    LoginFinish(LoginFinish),
    LoginAck(LoginAck),
    SecondFactor { mfa_token: String, code: String },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::enum_variant_names)] // the variant names are the wire `type` values
enum ServerFrame<'a> {
    LoginChallenge(&'a sesame_proto::messages::LoginChallenge),
    LoginConfirmation(&'a sesame_proto::messages::LoginConfirmation),
    LoginResult { status: &'static str },
    Session(&'a crate::service::SessionIssued),
}

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
            if let Err(e) = exchange(&s, &ctx, &mut socket).await {
                let mut frame =
                    json!({ "type": "error", "error": { "code": e.code, "message": e.message } });
                if let Some(secs) = e.retry_after {
                    frame["error"]["retry_after"] = json!(secs);
                }
                let _ = socket.send(Message::Text(frame.to_string().into())).await;
            }
            let _ = socket
                .send(Message::Close(Some(CloseFrame {
                    code: 1000,
                    reason: "".into(),
                })))
                .await;
        })
}

async fn next_frame(socket: &mut WebSocket) -> Result<ClientFrame, ApiError> {
    loop {
        let msg = tokio::time::timeout(STEP_TIMEOUT, socket.recv())
            .await
            .map_err(|_| ApiError::bad_request("timeout", "No message within 30 seconds."))?;
        match msg {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(text.as_str()).map_err(|e| {
                    ApiError::bad_request("invalid_message", format!("Unexpected frame: {e}"))
                });
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Binary(_))) => {
                return Err(ApiError::bad_request(
                    "invalid_message",
                    "Send JSON text frames.",
                ))
            }
            Some(Ok(Message::Close(_))) | None => {
                return Err(ApiError::bad_request(
                    "closed",
                    "The client closed the connection.",
                ))
            }
            Some(Err(e)) => {
                return Err(ApiError::bad_request(
                    "invalid_frame",
                    format!("WebSocket error: {e}"),
                ))
            }
        }
    }
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame<'_>) -> Result<(), ApiError> {
    let text = serde_json::to_string(frame).map_err(ApiError::internal)?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|_| ApiError::bad_request("closed", "The client went away."))
}

fn out_of_order() -> ApiError {
    ApiError::bad_request(
        "unexpected_message",
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
    send(socket, &ServerFrame::LoginChallenge(&challenge)).await?;
    let ClientFrame::LoginFinish(finish) = next_frame(socket).await? else {
        return Err(out_of_order());
    };
    if finish.login_id != challenge.login_id {
        return Err(sesame_proto::Error::UnknownLogin.into());
    }
    let (confirmation, outcome) = s.login_finish(&finish, ctx).await?;
    send(socket, &ServerFrame::LoginConfirmation(&confirmation)).await?;
    let ClientFrame::LoginAck(ack) = next_frame(socket).await? else {
        return Err(out_of_order());
    };
    if ack.login_id != challenge.login_id {
        return Err(sesame_proto::Error::UnknownLogin.into());
    }
    let revoked = s.login_ack(&ack, ctx).await?;
    if ack.status == AckStatus::Failed || revoked {
        return send(socket, &ServerFrame::LoginResult { status: "revoked" }).await;
    }
    let LoginOutcome::SecondFactor(required) = outcome else {
        return send(socket, &ServerFrame::LoginResult { status: "accepted" }).await;
    };
    send(
        socket,
        &ServerFrame::LoginResult {
            status: "second_factor_required",
        },
    )
    .await?;
    // Wrong codes may be retried on the socket until the ticket is used up.
    loop {
        let ClientFrame::SecondFactor { mfa_token, code } = next_frame(socket).await? else {
            return Err(out_of_order());
        };
        if mfa_token != required.mfa_token {
            return Err(ApiError::new(
                401,
                "mfa_expired",
                "Unknown second-factor ticket.",
            ));
        }
        match s.login_second_factor(&mfa_token, &code, ctx).await {
            Ok(issued) => return send(socket, &ServerFrame::Session(&issued)).await,
            Err(e) if e.code == "invalid_code" => {
                let frame =
                    json!({ "type": "error", "error": { "code": e.code, "message": e.message } });
                socket
                    .send(Message::Text(frame.to_string().into()))
                    .await
                    .map_err(|_| ApiError::bad_request("closed", "The client went away."))?;
            }
            Err(e) => return Err(e),
        }
    }
}
