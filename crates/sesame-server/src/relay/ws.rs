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
//!         {"type":"ack","ids":[…]}                        deletes up to MAX_ACK_IDS at once
//! server: {"type":"message","id","from","to","sent_at","ciphertext","signature"}
//!         the backlog in stored order first, then live messages
//! ```
//!
//! A client may send without waiting for the answers: up to [`MAX_IN_FLIGHT`] sends and
//! acknowledgements per connection are committed concurrently (in batches with every other
//! connection's, `store/group.rs` (`GroupWriter`)) while the connection goes on reading frames and
//! forwarding deliveries. Messages are stored in the order they were sent; answers are
//! matched by `id` (an error found before storing, such as `unknown_recipient`, may overtake
//! the `accepted` of an earlier send). With that many writes pending, the server reads no
//! further frames until one completes. When the connection closes, writes already read are
//! still completed.
//!
//! The server pings every [`PING_INTERVAL`] and closes a connection it has not heard from
//! for [`IDLE_LIMIT`]. Frames are limited to the largest message plus overhead
//! ([`RelaySettings::max_frame_bytes`](super::RelaySettings::max_frame_bytes)). A connection
//! that does not read its messages fast enough is closed (1013); they stay stored. A message
//! above the limit closes the connection with 1009 (`message_too_big`), a text frame that is
//! not UTF-8 with 1007 (`invalid_utf8`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse as _, Response};
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use futures_util::{FutureExt as _, SinkExt as _};
use serde::Deserialize;
use sesame_proto::e2e::{ClientFrame, ServerFrame};
use tokio::time::Instant;

use super::{Closed, Delivery, Outgoing, Peer, RecipientCache};
use crate::error::{ApiError, InputError};
use crate::http::Ctx;
use crate::service::Sesame;

/// Initial WebSocket read buffer per connection, bytes.
const READ_BUFFER_BYTES: usize = 8 * 1024;

/// Most deliveries written with one flush.
const DELIVERY_BURST: usize = 64;

/// Most sends and acknowledgements one connection may have waiting for their commit.
pub const MAX_IN_FLIGHT: usize = 64;

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

/// `GET /ws`.
pub(super) async fn socket(
    State(s): State<Sesame>,
    Ctx(ctx): Ctx,
    headers: HeaderMap,
    query: Result<Query<TokenQuery>, QueryRejection>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let token = crate::http::bearer(&headers)
        .map(str::to_owned)
        .or_else(|| query.ok().and_then(|Query(q)| q.token));
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

/// A write waiting for its commit; resolves to the frame to answer with, if any.
type Pending = Pin<Box<dyn Future<Output = Option<ServerFrame>> + Send>>;

async fn run(s: Sesame, peer: Peer, mut socket: WebSocket) {
    let _live = crate::metrics::Live::websocket("/ws");
    let mut sub = s.relay_subscribe(peer.clone());
    let mut ping = tokio::time::interval_at(Instant::now() + PING_INTERVAL, PING_INTERVAL);
    let mut heard = Instant::now();
    let mut pending: FuturesUnordered<Pending> = FuturesUnordered::new();
    let mut recipients = RecipientCache::default();
    let closing: Option<(u16, &'static str)> = loop {
        tokio::select! {
            incoming = socket.recv(), if pending.len() < MAX_IN_FLIGHT => {
                // A revoked session sends nothing more, whichever branch won the race.
                if sub.session_ended() {
                    break Some(close_code(Closed::SessionEnded));
                }
                heard = Instant::now();
                let handled = match incoming {
                    Some(Ok(Message::Text(text))) => {
                        handle(&s, &peer, &mut recipients, text.as_str()).await
                    }
                    Some(Ok(Message::Binary(_))) => Handled::Answer(error_frame(
                        None,
                        &ApiError::new(InputError::InvalidMessage, "Send JSON text frames."),
                    )),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => Handled::Nothing,
                    Some(Err(e)) => break crate::ws::close_for(&e).map(|(code, c)| (code, c.as_str())),
                    Some(Ok(Message::Close(_))) | None => break None,
                };
                match handled {
                    Handled::Answer(frame) => {
                        if send(&mut socket, &frame).await.is_err() {
                            break None;
                        }
                    }
                    Handled::Later(write) => pending.push(write),
                    Handled::Nothing => {}
                }
            }
            Some(answer) = pending.next(), if !pending.is_empty() => {
                if let Some(frame) = answer {
                    if send(&mut socket, &frame).await.is_err() {
                        break None;
                    }
                }
            }
            delivery = sub.next() => match delivery {
                Ok(d) => match forward(&mut socket, &mut sub, &d).await {
                    Ok(None) => {}
                    Ok(Some(closed)) => break Some(close_code(closed)),
                    Err(()) => break None,
                },
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
    finish(socket, pending, sub, closing).await;
}

/// Completes the writes already read (an acknowledgement sent just before closing still
/// deletes its message), sending their answers while the socket still takes them, then the
/// closing frame. The subscription is dropped only after the writes: it is what counts this
/// connection as open, and at shutdown the server closes the database once no relay
/// connection is open.
async fn finish(
    mut socket: WebSocket,
    mut pending: FuturesUnordered<Pending>,
    sub: super::Subscription,
    closing: Option<(u16, &'static str)>,
) {
    let deadline = Instant::now() + CLOSE_TIMEOUT;
    let mut open = true;
    while let Ok(Some(answer)) = tokio::time::timeout_at(deadline, pending.next()).await {
        if let (true, Some(frame)) = (open, answer) {
            open = send(&mut socket, &frame).await.is_ok();
        }
    }
    drop(sub);
    if let Some((code, reason)) = closing {
        let frame = Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        }));
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, socket.send(frame)).await;
        if code == 1009 || code == 1007 {
            crate::ws::linger(&mut socket).await;
        }
    }
}

/// What to do about one client frame.
enum Handled {
    /// Answer now.
    Answer(ServerFrame),
    /// A write was queued: answer (if at all) once it completes.
    Later(Pending),
    /// Nothing to answer.
    Nothing,
}

/// Writes `first` and every further delivery that is ready at once (up to
/// [`DELIVERY_BURST`]) with one flush, so a backlog goes out in few writes instead of one
/// system call per message. `Ok(Some(_))`: the subscription ended after what was written.
async fn forward(
    socket: &mut WebSocket,
    sub: &mut super::Subscription,
    first: &Delivery,
) -> Result<Option<Closed>, ()> {
    feed(socket, &message_frame(first)).await?;
    let mut ended = None;
    for _ in 1..DELIVERY_BURST {
        // `Subscription::next` is cancel-safe: polling it once and dropping it loses nothing.
        match sub.next().now_or_never() {
            Some(Ok(d)) => feed(socket, &message_frame(&d)).await?,
            Some(Err(closed)) => {
                ended = Some(closed);
                break;
            }
            None => break,
        }
    }
    socket.flush().await.map_err(|_| ())?;
    Ok(ended)
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

/// One client frame. A send is checked (and its recipient looked up) before the next frame
/// is read, which keeps a connection's messages in order; its commit is left pending.
async fn handle(s: &Sesame, peer: &Peer, recipients: &mut RecipientCache, text: &str) -> Handled {
    let frame: ClientFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            // Answer about the frame's id if it has a readable one (only on this error path:
            // parsing the whole frame twice would copy every ciphertext once more).
            #[derive(Deserialize)]
            struct IdOnly {
                id: Option<String>,
            }
            let id = serde_json::from_str::<IdOnly>(text).ok().and_then(|f| f.id);
            return Handled::Answer(error_frame(id, &unreadable(&e)));
        }
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
            match s.relay_send_queued(peer, out, Some(recipients)).await {
                Ok(stored) => Handled::Later(Box::pin(async move {
                    Some(match stored.await {
                        Ok(()) => ServerFrame::Accepted { id },
                        Err(e) => error_frame(Some(id), &e),
                    })
                })),
                Err(e) => Handled::Answer(error_frame(Some(id), &e)),
            }
        }
        ClientFrame::Ack { id, ids } => ack(s, peer, id, ids),
        // Frame types added to the shared enum later are not relay requests.
        #[allow(unreachable_patterns)]
        _ => Handled::Answer(error_frame(
            None,
            &ApiError::new(InputError::InvalidMessage, "Unexpected frame type."),
        )),
    }
}

/// An `ack` frame: its ids (`id` and `ids` together) are deleted in one store operation. Not
/// answered unless refused; an error names the single id, or the first malformed one of a
/// batch (none for an empty or oversized batch).
fn ack(s: &Sesame, peer: &Peer, id: Option<String>, mut ids: Vec<String>) -> Handled {
    let single = ids.is_empty();
    ids.extend(id);
    if let Err(e) = super::check_ack_ids(&ids) {
        let about = if single {
            ids.pop()
        } else if ids.len() <= super::MAX_ACK_IDS {
            ids.into_iter()
                .find(|i| super::validate_message_id(i).is_err())
        } else {
            None
        };
        return Handled::Answer(error_frame(about, &e));
    }
    let named = if single { ids.first().cloned() } else { None };
    match s.relay_ack_queued(peer, ids) {
        Ok(deleted) => Handled::Later(Box::pin(async move {
            deleted.await.err().map(|e| error_frame(named, &e))
        })),
        Err(e) => Handled::Answer(error_frame(named, &e)),
    }
}

fn unreadable(e: &serde_json::Error) -> ApiError {
    ApiError::new(InputError::InvalidMessage, format!("Unreadable frame: {e}"))
}

fn error_frame(id: Option<String>, e: &ApiError) -> ServerFrame {
    ServerFrame::Error {
        id,
        error: e.detail(),
    }
}

/// A delivery's `message` frame ([`ServerFrame::Message`]'s JSON), serialized from the shared
/// delivery without copying its ciphertext first.
#[derive(serde::Serialize)]
struct MessageFrame<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    from: &'a str,
    to: &'a str,
    id: &'a str,
    sent_at: u64,
    ciphertext: B64<'a>,
    signature: B64<'a>,
}

/// Bytes serialized as base64url without padding (as `sesame_proto::b64::Bytes`).
struct B64<'a>(&'a [u8]);

impl serde::Serialize for B64<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&sesame_proto::b64::encode(self.0))
    }
}

fn message_frame(d: &Delivery) -> MessageFrame<'_> {
    MessageFrame {
        kind: "message",
        from: &d.from,
        to: &d.to,
        id: &d.id,
        sent_at: d.sent_at,
        ciphertext: B64(&d.ciphertext),
        signature: B64(&d.signature),
    }
}

/// Queues a frame without flushing.
async fn feed(socket: &mut WebSocket, frame: &impl serde::Serialize) -> Result<(), ()> {
    let text = serde_json::to_string(frame).map_err(|_| ())?;
    socket
        .feed(Message::Text(text.into()))
        .await
        .map_err(|_| ())
}

async fn send(socket: &mut WebSocket, frame: &ServerFrame) -> Result<(), ()> {
    feed(socket, frame).await?;
    socket.flush().await.map_err(|_| ())
}
