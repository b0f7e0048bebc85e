//! The relay's verbs on the TCP line protocol ([`crate::tcp`]): the same relay as `/ws`.
//!
//! ```text
//! SESSION|session_token                          → SESSION|SUCCESS|username
//! MESSAGE|to|id|sent_at|ciphertext|signature     → MESSAGE|ACCEPTED|id
//!                                                  or MESSAGE|FAILURE|id|code|message
//! ACK|id                                         → ACK|OK|id  or  ACK|FAILURE|id|code|message
//! ACK|id1|id2|…  (at most MAX_ACK_IDS ids)       → ACK|OK|id1|id2|…  or  ACK|FAILURE|…
//! server → client: MESSAGE|from|to|id|sent_at|ciphertext|signature
//! ```
//!
//! `ciphertext` and `signature` are base64url without padding, `sent_at` unix milliseconds.
//! A connection is authenticated for messaging once it holds a session: after `AUTH`, after
//! the OPAQUE login's `LOGIN_ACK|…|success`, or with `SESSION` (a session token from any
//! transport). From then on the server writes incoming `MESSAGE` lines (7 fields; the answers
//! to `MESSAGE` have `ACCEPTED` or `FAILURE` in their second field, which no username can be)
//! between its answers: the backlog in stored order, then live messages. Lines may then be as
//! long as the largest message needs. `LOGOUT` (or a revoked login) stops the deliveries. A
//! connection that does not read fast enough gets `ERROR|slow_consumer|…` and is closed; so
//! is one whose session ends (`ERROR|session_ended|…`: at once when it is revoked, logged out,
//! or its account banned or deleted; expiry is checked every 30 seconds). The idle timeout
//! of the line protocol still applies: a client that only listens sends `PING` now and then.

use sesame_proto::b64;
use zeroize::Zeroizing;

use super::{Delivery, Outgoing, Peer, RecipientCache, Subscription, MAX_ACK_IDS};
use crate::error::{ApiError, CredentialError, ErrorCode, InputError};
use crate::service::{RequestContext, Sesame};
use crate::tcp::join;

/// The relay state of one TCP connection.
#[derive(Default)]
pub(crate) struct TcpRelay {
    /// The session token `peer` was resolved from.
    token: Option<Zeroizing<String>>,
    peer: Option<Peer>,
    sub: Option<Subscription>,
    /// Recent recipient lookups of this session's messages.
    recipients: RecipientCache,
}

fn fail(verb: &str, id: &str, e: &ApiError) -> String {
    join(&[verb, "FAILURE", id, e.code.as_str(), &e.message])
}

fn usage(verb: &str, text: &'static str) -> String {
    join(&[
        verb,
        "FAILURE",
        "invalid_request",
        &format!("Usage: {text}"),
    ])
}

fn not_authenticated() -> ApiError {
    ApiError::new(
        CredentialError::NotAuthenticated,
        "Log in on this connection first (AUTH, LOGIN_* or SESSION|session_token).",
    )
}

/// The incoming-message line for a delivery.
pub(crate) fn incoming_line(d: &Delivery) -> String {
    join(&[
        "MESSAGE",
        &d.from,
        &d.to,
        &d.id,
        &d.sent_at.to_string(),
        &b64::encode(&d.ciphertext),
        &b64::encode(&d.signature),
    ])
}

impl TcpRelay {
    fn clear(&mut self) {
        *self = TcpRelay::default();
    }

    /// The peer of `session_token`, resolved once per token.
    async fn peer(
        &mut self,
        s: &Sesame,
        ctx: &RequestContext,
        session_token: &Option<Zeroizing<String>>,
    ) -> Result<&Peer, ApiError> {
        let Some(token) = session_token else {
            self.clear();
            return Err(not_authenticated());
        };
        if self.token.as_deref() != Some(token) {
            self.clear();
        }
        if self.peer.is_none() {
            let peer = s.relay_peer(token, ctx).await.map_err(|e| match e.code {
                ErrorCode::Credentials(_) => not_authenticated(),
                _ => e,
            })?;
            self.token = Some(token.clone());
            self.peer = Some(peer);
        }
        self.peer.as_ref().ok_or_else(not_authenticated)
    }

    /// After each line: follows the connection's login. Starts delivering once the connection
    /// holds a session (not between `LOGIN_FINISH` and `LOGIN_ACK`, so that the login's own
    /// answers come first), stops when it no longer does. Returns whether deliveries run, so
    /// the caller can accept lines as long as a message.
    pub(crate) async fn after_line(
        &mut self,
        s: &Sesame,
        ctx: &RequestContext,
        verb: &str,
        session_token: &Option<Zeroizing<String>>,
    ) -> bool {
        match session_token {
            None => self.clear(),
            Some(token) if self.token.as_deref() != Some(token) => self.clear(),
            Some(_) => {}
        }
        if self.sub.is_none() && session_token.is_some() && verb != "LOGIN_FINISH" {
            if let Ok(peer) = self.peer(s, ctx, session_token).await {
                let peer = peer.clone();
                self.sub = Some(s.relay_subscribe(peer));
            }
        }
        self.sub.is_some()
    }

    /// Whether the session this connection delivers for was revoked: the caller answers no
    /// further line and closes (the next [`TcpRelay::next_line`] says why).
    pub(crate) fn session_ended(&self) -> bool {
        self.sub.as_ref().is_some_and(Subscription::session_ended)
    }

    /// The next line to write unprompted: an incoming message, or (with `true`: then close
    /// the connection) why deliveries ended. Pending while there is no subscription.
    /// Cancel-safe.
    pub(crate) async fn next_line(&mut self) -> (String, bool) {
        let Some(sub) = self.sub.as_mut() else {
            return std::future::pending().await;
        };
        match sub.next().await {
            Ok(d) => (incoming_line(&d), false),
            Err(closed) => {
                self.clear();
                (join(&["ERROR", closed.code(), closed.message()]), true)
            }
        }
    }
}

/// `SESSION`, `MESSAGE` and `ACK`.
pub(crate) async fn verb(
    s: &Sesame,
    ctx: &RequestContext,
    session_token: &mut Option<Zeroizing<String>>,
    relay: &mut TcpRelay,
    fields: &[String],
) -> Result<String, String> {
    match fields[0].as_str() {
        "SESSION" => {
            if fields.len() != 2 {
                return Err(usage("SESSION", "SESSION|session_token"));
            }
            let token = Some(Zeroizing::new(fields[1].clone()));
            relay.clear();
            let peer = relay
                .peer(s, ctx, &token)
                .await
                .map_err(|e| join(&["SESSION", "FAILURE", e.code.as_str(), &e.message]))?;
            let answer = join(&["SESSION", "SUCCESS", &peer.username]);
            *session_token = token;
            Ok(answer)
        }
        "MESSAGE" => {
            if fields.len() != 6 {
                return Err(usage(
                    "MESSAGE",
                    "MESSAGE|to|id|sent_at|ciphertext|signature",
                ));
            }
            let id = fields[2].as_str();
            let field_err =
                |name: &str| ApiError::new(InputError::InvalidMessage, format!("Bad `{name}`."));
            let out = (|| {
                Ok::<_, ApiError>(Outgoing {
                    to: fields[1].clone(),
                    id: id.to_owned(),
                    sent_at: fields[3].parse().map_err(|_| field_err("sent_at"))?,
                    ciphertext: b64::decode(&fields[4]).ok_or_else(|| field_err("ciphertext"))?,
                    signature: b64::decode(&fields[5]).ok_or_else(|| field_err("signature"))?,
                })
            })()
            .map_err(|e| fail("MESSAGE", id, &e))?;
            relay
                .peer(s, ctx, session_token)
                .await
                .map_err(|e| fail("MESSAGE", id, &e))?;
            let peer = relay
                .peer
                .as_ref()
                .ok_or_else(|| fail("MESSAGE", id, &not_authenticated()))?;
            // Like the WebSocket relay, the connection remembers its recipients a few seconds.
            s.relay_send_queued(peer, out, Some(&mut relay.recipients))
                .await
                .map_err(|e| fail("MESSAGE", id, &e))?
                .await
                .map_err(|e| fail("MESSAGE", id, &e))?;
            Ok(join(&["MESSAGE", "ACCEPTED", id]))
        }
        _ => ack(s, ctx, session_token, relay, &fields[1..]).await,
    }
}

/// `ACK|id` or `ACK|id1|id2|…` (up to [`MAX_ACK_IDS`] ids, deleted in one store operation):
/// answered `ACK|OK|` and the same ids. Refused whole with `ACK|FAILURE|id|code|message`,
/// `id` being the single id, the first malformed one, or empty for too many ids.
async fn ack(
    s: &Sesame,
    ctx: &RequestContext,
    session_token: &Option<Zeroizing<String>>,
    relay: &mut TcpRelay,
    ids: &[String],
) -> Result<String, String> {
    if ids.is_empty() {
        return Err(usage("ACK", "ACK|id or ACK|id1|id2|…"));
    }
    let about = if ids.len() == 1 {
        ids[0].as_str()
    } else if ids.len() > MAX_ACK_IDS {
        ""
    } else {
        ids.iter()
            .find(|i| super::validate_message_id(i).is_err())
            .map_or("", String::as_str)
    };
    super::check_ack_ids(ids).map_err(|e| fail("ACK", about, &e))?;
    let peer = relay
        .peer(s, ctx, session_token)
        .await
        .map_err(|e| fail("ACK", about, &e))?;
    s.relay_ack_queued(peer, ids.to_vec())
        .map_err(|e| fail("ACK", about, &e))?
        .await
        .map_err(|e| fail("ACK", about, &e))?;
    let mut answer: Vec<&str> = Vec::with_capacity(ids.len() + 2);
    answer.extend(["ACK", "OK"]);
    answer.extend(ids.iter().map(String::as_str));
    Ok(join(&answer))
}
