//! The relay connection: WebSocket `GET /ws` with JSON text frames
//! ([`sesame_proto::e2e::ClientFrame`], [`sesame_proto::e2e::ServerFrame`]).

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{FutureExt as _, SinkExt as _, StreamExt as _};
use reqwest::header::{HeaderValue, AUTHORIZATION, USER_AGENT as USER_AGENT_HEADER};
use sesame_proto::e2e::{ClientFrame, SealedMessage, ServerFrame, MAX_ACK_IDS};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::MessagingError;
use crate::client::{error_from_body, retry_after, Client, USER_AGENT};
use crate::error::Error;

/// The relay's path, relative to the server's base URL.
pub const RELAY_PATH: &str = "ws";
/// Largest frame accepted from the relay: the largest ciphertext a server may be configured
/// to accept (16 MiB) in base64url, plus its fields.
pub const MAX_RELAY_FRAME: usize = 24 * 1024 * 1024;

/// An open relay connection.
///
/// [`Relay::next`] yields what the server pushes: deliveries (the backlog first, then live
/// messages), `accepted` and `error` answers. [`Relay::send_and_wait`] keeps the deliveries
/// that arrive while it waits and hands them out later through [`Relay::next`]. Frames of an
/// unknown `type` are skipped, so a newer server can add some.
pub struct Relay {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pending: VecDeque<ServerFrame>,
    /// Ids queued by [`Relay::ack_later`], not yet sent.
    acks: Vec<String>,
    /// `ack` frames written so far.
    ack_frames: u64,
    timeout: Duration,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("pending", &self.pending.len())
            .field("acks", &self.acks.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// The relay URL: the base URL with `ws`/`wss` and [`RELAY_PATH`].
    pub fn relay_url(&self) -> crate::Result<reqwest::Url> {
        let mut url = self.url(RELAY_PATH)?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme).map_err(|()| Error::InvalidUrl {
            url: url.to_string(),
            reason: "cannot switch to a WebSocket scheme".into(),
        })?;
        Ok(url)
    }
}

impl Relay {
    /// Connects to the relay of `client`'s server with `token` (an access token or a session
    /// token) in the `Authorization` header. A refused upgrade is the server's error answer
    /// (e.g. 401 `unauthorized`).
    pub async fn connect(client: &Client, token: &str) -> Result<Relay, MessagingError> {
        let mut request = client
            .relay_url()?
            .as_str()
            .into_client_request()
            .map_err(Error::from)?;
        let auth = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
            MessagingError::InvalidInput("the token is not a valid header value".into())
        })?;
        request.headers_mut().insert(AUTHORIZATION, auth);
        request
            .headers_mut()
            .insert(USER_AGENT_HEADER, HeaderValue::from_static(USER_AGENT));
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_RELAY_FRAME))
            .max_frame_size(Some(MAX_RELAY_FRAME));
        let timeout = client.ws_timeout();
        let connect = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            client.ws_connector(),
        );
        let ws = match tokio::time::timeout(timeout, connect).await {
            Err(_) => return Err(Error::Timeout.into()),
            Ok(Err(tungstenite::Error::Http(response))) => {
                let retry = retry_after(response.headers());
                let body = response.body().as_deref().unwrap_or_default();
                return Err(error_from_body(response.status(), body, retry).into());
            }
            Ok(Err(e)) => return Err(Error::from(e).into()),
            Ok(Ok((ws, _))) => ws,
        };
        Ok(Relay {
            ws,
            pending: VecDeque::new(),
            acks: Vec::new(),
            ack_frames: 0,
            timeout,
        })
    }

    /// How many `ack` frames this connection has written (each carries one or more ids).
    pub fn ack_frames_sent(&self) -> u64 {
        self.ack_frames
    }

    /// Writes one frame.
    pub async fn send_frame(&mut self, frame: &ClientFrame) -> Result<(), MessagingError> {
        if matches!(frame, ClientFrame::Ack { .. }) {
            self.ack_frames += 1;
        }
        let text = serde_json::to_string(frame)
            .map_err(|e| MessagingError::InvalidInput(format!("cannot encode a frame: {e}")))?;
        match tokio::time::timeout(self.timeout, self.ws.send(Message::text(text))).await {
            Err(_) => Err(Error::Timeout.into()),
            Ok(r) => r.map_err(|e| Error::from(e).into()),
        }
    }

    /// Sends `message` to `to` without waiting for the answer (it comes through
    /// [`Relay::next`] as `accepted` or `error` with the same id).
    pub async fn send(&mut self, to: &str, message: &SealedMessage) -> Result<(), MessagingError> {
        self.send_frame(&ClientFrame::Send {
            to: to.to_owned(),
            message: message.clone(),
        })
        .await
    }

    /// Acknowledges the delivery `id` at once, in a frame of its own: the server deletes it.
    pub async fn ack(&mut self, id: &str) -> Result<(), MessagingError> {
        self.send_frame(&ClientFrame::ack(id)).await
    }

    /// Acknowledges many deliveries with as few frames as possible (up to [`MAX_ACK_IDS`]
    /// ids each); the server deletes each frame's messages in one store operation.
    pub async fn ack_many(&mut self, ids: &[String]) -> Result<(), MessagingError> {
        for chunk in ids.chunks(MAX_ACK_IDS) {
            self.send_frame(&ClientFrame::ack_many(chunk.to_vec()))
                .await?;
        }
        Ok(())
    }

    /// Queues the acknowledgement of `id`, to go out in one frame with others: when
    /// [`MAX_ACK_IDS`] are queued, when [`Relay::next`] or [`Relay::next_within`] find no
    /// frame ready (the backlog is read), and at [`Relay::flush_acks`] or [`Relay::close`].
    /// The way to drain a backlog: one `ack` frame per up to 512 messages instead of one each.
    /// An acknowledgement lost with the connection only means a redelivery, which the client
    /// recognises by id.
    pub async fn ack_later(&mut self, id: &str) -> Result<(), MessagingError> {
        self.acks.push(id.to_owned());
        if self.acks.len() >= MAX_ACK_IDS {
            self.flush_acks().await?;
        }
        Ok(())
    }

    /// Sends the acknowledgements queued by [`Relay::ack_later`] now.
    pub async fn flush_acks(&mut self) -> Result<(), MessagingError> {
        if self.acks.is_empty() {
            return Ok(());
        }
        let ids = std::mem::take(&mut self.acks);
        self.send_frame(&ClientFrame::ack_many(ids)).await
    }

    /// Sends `message` to `to` and waits until the server has stored it (`accepted`), or
    /// refused it ([`MessagingError::Rejected`] with the server's code). Deliveries that
    /// arrive meanwhile are kept for [`Relay::next`].
    pub async fn send_and_wait(
        &mut self,
        to: &str,
        message: &SealedMessage,
    ) -> Result<(), MessagingError> {
        self.send(to, message).await?;
        let deadline = tokio::time::Instant::now() + self.timeout;
        let mut held = Vec::new();
        let result = loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let frame = match tokio::time::timeout(left, self.read()).await {
                Err(_) => break Err(Error::Timeout.into()),
                Ok(Err(e)) => break Err(e),
                Ok(Ok(None)) => break Err(MessagingError::Closed),
                Ok(Ok(Some(frame))) => frame,
            };
            match frame {
                ServerFrame::Accepted { id } if id == message.id => break Ok(()),
                ServerFrame::Error {
                    id: Some(id),
                    error,
                } if id == message.id => {
                    break Err(MessagingError::Rejected {
                        id,
                        code: error.code,
                        message: error.message,
                    })
                }
                other => held.push(other),
            }
        };
        self.pending.extend(held);
        result
    }

    /// The next frame from the server: one kept by [`Relay::send_and_wait`] first, then the
    /// connection's. `None` once the server closed the connection.
    pub async fn next(&mut self) -> Result<Option<ServerFrame>, MessagingError> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(Some(frame));
        }
        self.read().await
    }

    /// Like [`Relay::next`], but `Ok(None)` also when nothing arrives for `idle` (the way to
    /// tell that the backlog has been delivered).
    pub async fn next_within(
        &mut self,
        idle: Duration,
    ) -> Result<Option<ServerFrame>, MessagingError> {
        if let Some(frame) = self.pending.pop_front() {
            return Ok(Some(frame));
        }
        match tokio::time::timeout(idle, self.read()).await {
            Err(_) => Ok(None),
            Ok(r) => r,
        }
    }

    /// Closes the connection politely (best effort), after sending the acknowledgements
    /// still queued, and returns once the server has closed its side (or after the
    /// client's timeout). The server closes only after committing every acknowledgement the
    /// connection sent, so a connection opened after `close` returns is never handed an
    /// acknowledged message again.
    pub async fn close(mut self) {
        let _ = self.flush_acks().await;
        let until = tokio::time::Instant::now() + self.timeout;
        let _ = tokio::time::timeout_at(until, self.ws.close(None)).await;
        // Frames still on their way (deliveries, the close reply) until the end of the stream.
        while let Ok(Some(Ok(_))) = tokio::time::timeout_at(until, self.ws.next()).await {}
    }

    /// Reads frames until one this client understands; `None` when the connection closed.
    /// Before waiting for the socket it sends the queued acknowledgements. Cancel-safe: a
    /// frame is never half-read (a cancelled flush at worst loses acknowledgements, which
    /// only means redeliveries).
    async fn read(&mut self) -> Result<Option<ServerFrame>, MessagingError> {
        loop {
            let next = match self.ws.next().now_or_never() {
                Some(ready) => ready,
                None if !self.acks.is_empty() => {
                    self.flush_acks().await?;
                    continue;
                }
                None => self.ws.next().await,
            };
            match next {
                None | Some(Ok(Message::Close(_))) => return Ok(None),
                Some(Err(e)) => return Err(Error::from(e).into()),
                Some(Ok(Message::Text(text))) => {
                    if let Some(frame) = parse_frame(text.as_str())? {
                        return Ok(Some(frame));
                    }
                }
                Some(Ok(_)) => continue,
            }
        }
    }
}

/// A server frame; `None` for a JSON object with a `type` this client does not know.
pub(crate) fn parse_frame(text: &str) -> Result<Option<ServerFrame>, MessagingError> {
    // The common case in one pass (a backlog is thousands of `message` frames); only a frame
    // that does not parse is looked at again to tell an unknown type from a malformed frame.
    if let Ok(frame) = serde_json::from_str::<ServerFrame>(text) {
        return Ok(Some(frame));
    }
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        MessagingError::Client(Error::UnexpectedResponse(format!(
            "relay frame is not JSON: {e}"
        )))
    })?;
    let known = matches!(
        value.get("type").and_then(|t| t.as_str()),
        Some("accepted" | "error" | "message")
    );
    if !known {
        return Ok(None);
    }
    serde_json::from_value(value).map(Some).map_err(|e| {
        MessagingError::Client(Error::UnexpectedResponse(format!(
            "malformed relay frame: {e}"
        )))
    })
}

#[cfg(test)]
mod tests;
