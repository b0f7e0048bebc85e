//! The relay's WebSocket codec: `GET /ws`.
//!
//! Authentication happens before the upgrade: `Authorization: Bearer <access token or
//! session token>`, or `?token=…` for browsers, which cannot set headers on a WebSocket (a
//! token in a URL may end up in proxy logs: prefer the header). Without a valid token the
//! answer is `401 unauthorized` and no upgrade.
//!
//! Then JSON text frames tagged by `type` ([`sesame_proto::e2e::ClientFrame`] and
//! [`sesame_proto::e2e::ServerFrame`], shared with the client):
//!
//! ```text
//! client: {"type":"send","to","id","sent_at","ciphertext","signature"}
//! server: {"type":"accepted","id"}                       once the message is stored
//!         {"type":"error","id","error":{"code","message"}} if it was not
//! client: {"type":"ack","id"}                             deletes a delivered message
//! server: {"type":"message","id","from","to","sent_at","ciphertext","signature"}
//!         the backlog in stored order first, then live messages
//! ```
//!
//! The server pings every [`PING_INTERVAL`] and closes a connection it has not heard from
//! for [`IDLE_LIMIT`]. Frames are limited to the largest message plus overhead
//! ([`RelaySettings::max_frame_bytes`](super::RelaySettings::max_frame_bytes)). A connection
//! that does not read its messages fast enough is closed (1013); they stay stored.

use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse as _, Response};
use serde::Deserialize;
use sesame_proto::b64::Bytes;
use sesame_proto::e2e::{ClientFrame, FrameError, SealedMessage, ServerFrame};
use tokio::time::Instant;

use super::{Closed, Delivery, Outgoing, Peer};
use crate::error::ApiError;
use crate::http::Ctx;
use crate::service::Sesame;

/// Initial WebSocket read buffer per connection, bytes.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// How often the server pings an idle connection.
pub const PING_INTERVAL: Duration = Duration::from_secs(30);
/// A connection silent for this long (not even a pong) is closed.
pub const IDLE_LIMIT: Duration = Duration::from_secs(90);
/// How long the server tries to send a closing frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    token: Option<String>,
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// `GET /ws`.
pub(super) async fn socket(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let token = bearer(&headers).or_else(|| query.ok().and_then(|Query(q)| q.token));
    let Some(token) = token.filter(|t| !t.is_empty() && t.len() <= 4096) else {
        return ApiError::unauthorized().into_response();
    };
    let peer = match s.relay_peer(&token, &ctx).await {
        Ok(peer) => peer,
        Err(e) => return e.into_response(),
    };
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    let max = s.settings().relay.max_frame_bytes();
    // A small read buffer (it grows for larger frames): tungstenite's 128 KiB default is
    // zero-filled on the first read and would stay resident for every idle connection.
    ws.max_message_size(max)
        .max_frame_size(max)
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| run(s, peer, socket))
}

async fn run(s: Sesame, peer: Peer, mut socket: WebSocket) {
    let _live = crate::metrics::Live::websocket("/ws");
    let mut sub = s.relay_subscribe(peer.clone());
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut heard = Instant::now();
    let closing: Option<(u16, &'static str)> = loop {
        tokio::select! {
            incoming = socket.recv() => {
                heard = Instant::now();
                let reply = match incoming {
                    Some(Ok(Message::Text(text))) => handle(&s, &peer, text.as_str()).await,
                    Some(Ok(Message::Binary(_))) => Some(error_frame(
                        None,
                        &ApiError::bad_request("invalid_message", "Send JSON text frames."),
                    )),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => None,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break None,
                };
                if let Some(frame) = reply {
                    if send(&mut socket, &frame).await.is_err() {
                        break None;
                    }
                }
            }
            delivery = sub.next() => match delivery {
                Ok(d) => {
                    if send(&mut socket, &message_frame(&d)).await.is_err() {
                        break None;
                    }
                }
                Err(closed) => break Some(close_code(closed)),
            },
            _ = ping.tick() => {
                if heard.elapsed() >= IDLE_LIMIT {
                    break Some((1001, "idle_timeout"));
                }
                if socket.send(Message::Ping(Default::default())).await.is_err() {
                    break None;
                }
            }
        }
    };
    drop(sub);
    if let Some((code, reason)) = closing {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await;
    }
}

fn close_code(closed: Closed) -> (u16, &'static str) {
    let code = match closed {
        Closed::SlowConsumer => 1013,
        Closed::Shutdown => 1001,
        Closed::SessionEnded => 1008,
        Closed::Failed => 1011,
    };
    (code, closed.code())
}

/// One client frame: the answer to send, if any.
async fn handle(s: &Sesame, peer: &Peer, text: &str) -> Option<ServerFrame> {
    // Read the id first so that even a malformed send can be answered about its id.
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Some(error_frame(None, &unreadable(&e))),
    };
    let id = value.get("id").and_then(|v| v.as_str()).map(str::to_owned);
    let frame: ClientFrame = match serde_json::from_value(value) {
        Ok(f) => f,
        Err(e) => return Some(error_frame(id, &unreadable(&e))),
    };
    match frame {
        ClientFrame::Send { to, message } => {
            let id = message.id.clone();
            let out = Outgoing {
                to,
                id: message.id,
                sent_at: message.sent_at,
                ciphertext: message.ciphertext.0,
                signature: message.signature.0,
            };
            Some(match s.relay_send(peer, out).await {
                Ok(()) => ServerFrame::Accepted { id },
                Err(e) => error_frame(Some(id), &e),
            })
        }
        ClientFrame::Ack { id } => match s.relay_ack(peer, &id).await {
            Ok(()) => None,
            Err(e) => Some(error_frame(Some(id), &e)),
        },
        // Frame types added to the shared enum later are not relay requests.
        #[allow(unreachable_patterns)]
        _ => Some(error_frame(
            id,
            &ApiError::bad_request("invalid_message", "Unexpected frame type."),
        )),
    }
}

fn unreadable(e: &serde_json::Error) -> ApiError {
    ApiError::bad_request("invalid_message", format!("Unreadable frame: {e}"))
}

fn error_frame(id: Option<String>, e: &ApiError) -> ServerFrame {
    ServerFrame::Error {
        id,
        error: FrameError {
            code: e.code.to_owned(),
            message: e.message.to_string(),
        },
    }
}

fn message_frame(d: &Delivery) -> ServerFrame {
    ServerFrame::Message {
        from: d.from.clone(),
        to: d.to.clone(),
        message: SealedMessage {
            id: d.id.clone(),
            sent_at: d.sent_at,
            ciphertext: Bytes(d.ciphertext.clone()),
            signature: Bytes(d.signature.clone()),
        },
    }
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), ()> {
    let text = serde_json::to_string(frame).map_err(|_| ())?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|_| ())
}
