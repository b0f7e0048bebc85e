//! The TCP line codec (seed 002): one UTF-8 line per message, fields separated by `|`.
//!
//! A field containing `|`, `\` or a line break is escaped: `\|`, `\\`, `\n`, `\r`. Binary
//! fields are base64url without padding. Lines are at most [`MAX_LINE_BYTES`] bytes; a longer
//! line, invalid UTF-8 or an idle connection ([`IDLE_TIMEOUT`]) ends the connection after an
//! `ERROR|code|message` line. Verbs (docs/api.md has every answer):
//!
//! ```text
//! PING                                             → PONG
//! REGISTER|username|password                       → REGISTER|SUCCESS|user_id
//! AUTH|username|password                           → AUTH|SUCCESS|session_token|user_id|access_token|expires_in
//!                                                    or AUTH|SECOND_FACTOR|mfa_token|totp,backup_code|expires_in
//! SECOND_FACTOR|mfa_token|code                     → SECOND_FACTOR|SUCCESS|session_token|user_id|access_token|expires_in
//! REGISTER_START|username|registration_request     → REGISTER_CHALLENGE|registration_response|memory|iterations|parallelism|server_public_key
//! REGISTER_FINISH|username|record|memory|iterations|parallelism → REGISTER|SUCCESS|user_id
//! LOGIN_START|username|ke1                         → LOGIN_CHALLENGE|login_id|ke2|memory|iterations|parallelism|server_public_key|expires_in
//! LOGIN_FINISH|login_id|ke3                        → LOGIN_CONFIRMATION|login_id|sealed
//!   (accounts that require a device key append |device_key_id|device_signature, service/devices.rs)
//! LOGIN_ACK|login_id|success  or  LOGIN_ACK|login_id|failed|reason → LOGIN_ACK|ACCEPTED or LOGIN_ACK|REVOKED
//! LOGOUT  or  LOGOUT|session_token                 → LOGOUT|SUCCESS
//! SESSION|session_token                            → SESSION|SUCCESS|username
//! MESSAGE|to|id|sent_at|ciphertext|signature       → MESSAGE|ACCEPTED|id  or  MESSAGE|FAILURE|id|code|message
//! ACK|id                                           → ACK|OK|id  or  ACK|FAILURE|id|code|message
//! ACK|id1|id2|…   (up to 512 ids)                 → ACK|OK|id1|id2|…
//! (server → client, once logged in) MESSAGE|from|to|id|sent_at|ciphertext|signature
//! ```
//! The messaging verbs are the relay's ([`crate::relay`]; `relay/tcp.rs` has the details).
//! Failures answer `VERB|FAILURE|code|message` (for `REGISTER_*` the verb is `REGISTER`, for
//! `LOGIN_START` and `LOGIN_FINISH` it is `LOGIN`, for `LOGIN_ACK` it is `LOGIN_ACK`). `REGISTER` and `AUTH` carry the password in the clear over a
//! plain TCP stream, so without TLS they are refused with `password_verbs_disabled` unless the
//! configuration enables them (`tcp_allow_password = true`: only behind TLS termination or on
//! a trusted network). Over Sesame's own TLS ([`crate::tls`]) they are accepted unless
//! `tcp_allow_password = false`. The OPAQUE verbs never carry the password.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use sesame_proto::b64::{self, Bytes};
use sesame_proto::messages::{
    AckStatus, LoginAck, LoginFinish, LoginStart, RegistrationFinish, RegistrationStart,
};
use sesame_proto::KsfParams;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio_util::codec::{Framed, LinesCodec, LinesCodecError};
use zeroize::Zeroizing;

use crate::error::{ApiError, ConnectionError, CredentialError, InputError};
use crate::service::{LoginOutcome, RequestContext, Sesame};

/// Longest line accepted, in bytes.
pub const MAX_LINE_BYTES: usize = 8 * 1024;
/// A connection with no complete line for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

mod line;

pub use line::{escape, join, split_fields};

/// TCP listener settings.
#[derive(Debug, Clone, Copy)]
pub struct TcpSettings {
    /// Accept the plaintext-password verbs `REGISTER` and `AUTH`.
    pub allow_password: bool,
    /// Most simultaneous connections; further ones wait to be accepted.
    pub max_connections: usize,
}

/// How long a TLS client has to finish its handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections (over TLS with `tls`) until `shutdown` turns true, then waits for open
/// ones to finish. Accept errors back off ([`crate::accept::AcceptErrors`]).
pub async fn serve(
    listener: TcpListener,
    sesame: Sesame,
    settings: TcpSettings,
    tls: Option<tokio_rustls::TlsAcceptor>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    let mut errors = crate::accept::AcceptErrors::new("tcp");
    loop {
        let permit = tokio::select! {
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = match accepted {
            Ok(ok) => {
                errors.accepted();
                ok
            }
            Err(e) => {
                drop(permit);
                errors.failed(&e).await;
                continue;
            }
        };
        let sesame = sesame.clone();
        let stop = shutdown.clone();
        let tls = tls.clone();
        tasks.spawn(async move {
            match tls {
                None => connection(stream, peer, sesame, settings, stop).await,
                Some(acceptor) => {
                    let accepted =
                        tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    match accepted.await {
                        Ok(Ok(stream)) => connection(stream, peer, sesame, settings, stop).await,
                        Ok(Err(e)) => tracing::debug!(%peer, %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            drop(permit);
        });
        while tasks.try_join_next().is_some() {}
    }
    while tasks.join_next().await.is_some() {}
}

async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    sesame: Sesame,
    settings: TcpSettings,
    mut shutdown: watch::Receiver<bool>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut lines = Framed::new(stream, LinesCodec::new_with_max_length(MAX_LINE_BYTES));
    let ctx = RequestContext::new(Some(peer.ip()), Some("sesame-tcp"));
    let mut conn = Conn {
        session_token: None,
        relay: Default::default(),
    };
    loop {
        let next = tokio::select! {
            n = tokio::time::timeout(IDLE_TIMEOUT, lines.next()) => n,
            (out, end) = conn.relay.next_line() => {
                // An incoming message for this connection's user (relay/tcp.rs).
                if lines.send(out).await.is_err() || end {
                    return;
                }
                continue;
            }
            _ = shutdown.changed() => return,
        };
        let line = match next {
            Ok(Some(Ok(line))) => line,
            Ok(None) => return,
            Err(_) => {
                let _ = lines.send(error_line(ConnectionError::IdleTimeout)).await;
                return;
            }
            Ok(Some(Err(LinesCodecError::MaxLineLengthExceeded))) => {
                let _ = lines.send(error_line(ConnectionError::LineTooLong)).await;
                return;
            }
            Ok(Some(Err(LinesCodecError::Io(e)))) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    let _ = lines.send(error_line(ConnectionError::InvalidUtf8)).await;
                }
                return;
            }
        };
        let line = line.strip_suffix('\r').unwrap_or(&line);
        if line.is_empty() {
            continue;
        }
        if conn.relay.session_ended() {
            // Revoked while this line was on its way: say so and close.
            let (out, _) = conn.relay.next_line().await;
            let _ = lines.send(out).await;
            return;
        }
        let answer = handle(&sesame, &ctx, settings, &mut conn, line).await;
        if lines.send(answer).await.is_err() {
            return;
        }
        // Logged in: deliver messages, and accept lines as long as a message needs.
        let verb = line.split('|').next().unwrap_or_default();
        if conn
            .relay
            .after_line(&sesame, &ctx, verb, &conn.session_token)
            .await
        {
            let max = sesame
                .settings()
                .relay
                .max_frame_bytes()
                .max(MAX_LINE_BYTES);
            if lines.codec().max_length() < max {
                lines = lines.map_codec(|_| LinesCodec::new_with_max_length(max));
            }
        }
    }
}

/// The `ERROR|code|message` line that ends a connection for a reading problem.
fn error_line(code: ConnectionError) -> String {
    let message = match code {
        ConnectionError::IdleTimeout => "No message for 300 seconds.",
        ConnectionError::LineTooLong => "Lines are limited to 8192 bytes.",
        _ => "Lines must be UTF-8.",
    };
    join(&["ERROR", code.as_str(), message])
}

/// Per-connection state: the session a login on this connection created.
struct Conn {
    session_token: Option<Zeroizing<String>>,
    relay: crate::relay::tcp::TcpRelay,
}

/// `VERB|FAILURE|code|message`, plus `|retry_after_seconds` on 429 and 503 answers.
fn failure(verb: &str, e: &ApiError) -> String {
    match e.retry_after {
        Some(secs) => join(&[
            verb,
            "FAILURE",
            e.code.as_str(),
            &e.message,
            &secs.to_string(),
        ]),
        None => join(&[verb, "FAILURE", e.code.as_str(), &e.message]),
    }
}

fn arity(verb: &str, fields: &[String], n: usize, usage: &'static str) -> Result<(), String> {
    if fields.len() == n {
        Ok(())
    } else {
        Err(failure(
            verb,
            &ApiError::new(InputError::InvalidRequest, format!("Usage: {usage}")),
        ))
    }
}

fn field_bytes(v: &str, name: &'static str) -> Result<Bytes, ApiError> {
    b64::decode(v).map(Bytes).ok_or_else(|| {
        ApiError::new(
            InputError::InvalidMessage,
            format!("Field `{name}` is not base64url."),
        )
    })
}

fn ksf(fields: &[String]) -> Result<KsfParams, ApiError> {
    let n = |s: &String| {
        s.parse::<u32>().map_err(|_| {
            ApiError::new(
                InputError::InvalidMessage,
                "Key-stretching parameters are integers.",
            )
        })
    };
    Ok(KsfParams {
        memory: n(&fields[0])?,
        iterations: n(&fields[1])?,
        parallelism: n(&fields[2])?,
    })
}

async fn handle(
    s: &Sesame,
    ctx: &RequestContext,
    t: TcpSettings,
    conn: &mut Conn,
    line: &str,
) -> String {
    let fields = split_fields(line);
    let verb = fields[0].as_str();
    let result = match verb {
        "PING" => Ok("PONG".to_owned()),
        "REGISTER" | "AUTH" => password_verb(s, ctx, t, conn, verb, &fields).await,
        "REGISTER_START" | "REGISTER_FINISH" => registration(s, ctx, &fields).await,
        "LOGIN_START" | "LOGIN_FINISH" | "LOGIN_ACK" => login(s, ctx, conn, &fields).await,
        "LOGOUT" => logout(s, ctx, conn, &fields).await,
        "SECOND_FACTOR" => second_factor(s, ctx, conn, &fields).await,
        "SESSION" | "MESSAGE" | "ACK" => {
            crate::relay::tcp::verb(s, ctx, &mut conn.session_token, &mut conn.relay, &fields).await
        }
        _ => Ok(join(&[
            "ERROR",
            "unknown_verb",
            "Unknown verb; see docs/api.md for the TCP verbs.",
        ])),
    };
    result.unwrap_or_else(|line| line)
}

async fn password_verb(
    s: &Sesame,
    ctx: &RequestContext,
    t: TcpSettings,
    conn: &mut Conn,
    verb: &str,
    fields: &[String],
) -> Result<String, String> {
    arity(
        verb,
        fields,
        3,
        "REGISTER|username|password or AUTH|username|password",
    )?;
    if !t.allow_password {
        return Err(failure(
            verb,
            &ApiError::new(
                CredentialError::PasswordVerbsDisabled,
                "Plaintext-password verbs are disabled on this server; use the OPAQUE verbs.",
            ),
        ));
    }
    let password = Zeroizing::new(fields[2].clone());
    if verb == "REGISTER" {
        let r = s
            .register_password(&fields[1], password, ctx)
            .await
            .map_err(|e| failure(verb, &e))?;
        return Ok(join(&["REGISTER", "SUCCESS", &r.user_id.to_string()]));
    }
    let outcome = s
        .login_password(&fields[1], password, ctx)
        .await
        .map_err(|e| failure(verb, &e))?;
    match outcome {
        LoginOutcome::Session(issued) => Ok(session_line(conn, "AUTH", issued)),
        LoginOutcome::SecondFactor(required) => Ok(second_factor_line("AUTH", &required)),
    }
}

/// `VERB|SUCCESS|session_token|user_id|access_token|expires_in`, remembering the session
/// for a bare `LOGOUT`.
fn session_line(conn: &mut Conn, verb: &str, issued: crate::service::SessionIssued) -> String {
    let line = join(&[
        verb,
        "SUCCESS",
        &issued.session_token,
        &issued.user_id.to_string(),
        &issued.access_token,
        &issued.expires_in.to_string(),
    ]);
    conn.session_token = Some(Zeroizing::new(issued.session_token));
    line
}

/// `VERB|SECOND_FACTOR|mfa_token|totp,backup_code|expires_in`.
fn second_factor_line(verb: &str, r: &crate::service::SecondFactorRequired) -> String {
    join(&[
        verb,
        "SECOND_FACTOR",
        &r.mfa_token,
        &r.methods.join(","),
        &r.expires_in.to_string(),
    ])
}

async fn second_factor(
    s: &Sesame,
    ctx: &RequestContext,
    conn: &mut Conn,
    fields: &[String],
) -> Result<String, String> {
    arity("SECOND_FACTOR", fields, 3, "SECOND_FACTOR|mfa_token|code")?;
    let issued = s
        .login_second_factor(&fields[1], &fields[2], ctx)
        .await
        .map_err(|e| failure("SECOND_FACTOR", &e))?;
    Ok(session_line(conn, "SECOND_FACTOR", issued))
}

async fn registration(
    s: &Sesame,
    ctx: &RequestContext,
    fields: &[String],
) -> Result<String, String> {
    let fail = |e: ApiError| failure("REGISTER", &e);
    if fields[0] == "REGISTER_START" {
        arity(
            "REGISTER",
            fields,
            3,
            "REGISTER_START|username|registration_request",
        )?;
        let msg = RegistrationStart {
            username: fields[1].clone(),
            registration_request: field_bytes(&fields[2], "registration_request").map_err(fail)?,
        };
        let ch = s.register_start(&msg, ctx).await.map_err(fail)?;
        let p = ch.key_stretching.params();
        return Ok(join(&[
            "REGISTER_CHALLENGE",
            &b64::encode(&ch.registration_response.0),
            &p.memory.to_string(),
            &p.iterations.to_string(),
            &p.parallelism.to_string(),
            &b64::encode(&ch.server_public_key.0),
        ]));
    }
    arity(
        "REGISTER",
        fields,
        6,
        "REGISTER_FINISH|username|record|memory|iterations|parallelism",
    )?;
    let msg = RegistrationFinish {
        username: fields[1].clone(),
        registration_record: field_bytes(&fields[2], "registration_record").map_err(fail)?,
        key_stretching: ksf(&fields[3..6]).map_err(fail)?.into(),
    };
    let r = s.register_finish(&msg, ctx).await.map_err(fail)?;
    Ok(join(&["REGISTER", "SUCCESS", &r.user_id.to_string()]))
}

async fn login(
    s: &Sesame,
    ctx: &RequestContext,
    conn: &mut Conn,
    fields: &[String],
) -> Result<String, String> {
    match fields[0].as_str() {
        "LOGIN_START" => login_start(s, ctx, fields).await,
        "LOGIN_FINISH" => login_finish(s, ctx, conn, fields).await,
        _ => login_ack(s, ctx, conn, fields).await,
    }
}

/// `LOGIN_START|username|ke1` → `LOGIN_CHALLENGE|login_id|ke2|m|t|p|server_public_key|expires_in`.
async fn login_start(
    s: &Sesame,
    ctx: &RequestContext,
    fields: &[String],
) -> Result<String, String> {
    let fail = |e: ApiError| failure("LOGIN", &e);
    arity("LOGIN", fields, 3, "LOGIN_START|username|ke1")?;
    let msg = LoginStart {
        username: fields[1].clone(),
        ke1: field_bytes(&fields[2], "ke1").map_err(fail)?,
    };
    let ch = s.login_start(&msg, ctx).await.map_err(fail)?;
    let p = ch.key_stretching.params();
    Ok(join(&[
        "LOGIN_CHALLENGE",
        &ch.login_id,
        &b64::encode(&ch.ke2.0),
        &p.memory.to_string(),
        &p.iterations.to_string(),
        &p.parallelism.to_string(),
        &b64::encode(&ch.server_public_key.0),
        &ch.expires_in.to_string(),
    ]))
}

/// `LOGIN_FINISH|login_id|ke3[|device_key_id|device_signature]` → `LOGIN_CONFIRMATION|…`.
async fn login_finish(
    s: &Sesame,
    ctx: &RequestContext,
    conn: &mut Conn,
    fields: &[String],
) -> Result<String, String> {
    let fail = |e: ApiError| failure("LOGIN", &e);
    // Accounts that require a device key add `|device_key_id|device_signature`.
    if fields.len() != 5 {
        let usage = "LOGIN_FINISH|login_id|ke3[|device_key_id|device_signature]";
        arity("LOGIN", fields, 3, usage)?;
    }
    let msg = LoginFinish {
        login_id: fields[1].clone(),
        ke3: field_bytes(&fields[2], "ke3").map_err(fail)?,
        device_key_id: fields.get(3).cloned(),
        device_signature: match fields.get(4) {
            Some(v) => Some(field_bytes(v, "device_signature").map_err(fail)?),
            None => None,
        },
    };
    let (confirmation, outcome) = s.login_finish(&msg, ctx).await.map_err(fail)?;
    // With a second factor pending there is no session yet: the sealed payload carries the
    // ticket, answered with SECOND_FACTOR.
    if let LoginOutcome::Session(issued) = outcome {
        conn.session_token = Some(Zeroizing::new(issued.session_token));
    }
    Ok(join(&[
        "LOGIN_CONFIRMATION",
        &confirmation.login_id,
        &b64::encode(&confirmation.sealed.0),
    ]))
}

/// `LOGIN_ACK|login_id|success` or `LOGIN_ACK|login_id|failed|reason`.
async fn login_ack(
    s: &Sesame,
    ctx: &RequestContext,
    conn: &mut Conn,
    fields: &[String],
) -> Result<String, String> {
    let status = match fields.get(2).map(String::as_str) {
        Some("success") if fields.len() == 3 => AckStatus::Success,
        Some("failed") if fields.len() <= 4 => AckStatus::Failed,
        _ => {
            return Err(failure(
                "LOGIN_ACK",
                &ApiError::new(
                    InputError::InvalidRequest,
                    "Usage: LOGIN_ACK|login_id|success or LOGIN_ACK|login_id|failed|reason",
                ),
            ))
        }
    };
    let ack = LoginAck {
        login_id: fields[1].clone(),
        status,
        reason: fields.get(3).cloned(),
    };
    let revoked = s
        .login_ack(&ack, ctx)
        .await
        .map_err(|e| failure("LOGIN_ACK", &e))?;
    if revoked {
        conn.session_token = None;
        Ok("LOGIN_ACK|REVOKED".to_owned())
    } else {
        Ok("LOGIN_ACK|ACCEPTED".to_owned())
    }
}

async fn logout(
    s: &Sesame,
    ctx: &RequestContext,
    conn: &mut Conn,
    fields: &[String],
) -> Result<String, String> {
    // An explicit token logs out that session and leaves this connection's own login alone;
    // so does a malformed line.
    let explicit = fields.len() != 1;
    let token = match (
        fields.len(),
        if explicit {
            None
        } else {
            conn.session_token.take()
        },
    ) {
        (2, _) => Zeroizing::new(fields[1].clone()),
        (1, Some(t)) => t,
        (1, None) => {
            return Err(failure(
                "LOGOUT",
                &ApiError::new(
                    ConnectionError::NoSession,
                    "No login on this connection; send LOGOUT|session_token.",
                ),
            ))
        }
        _ => {
            return Err(failure(
                "LOGOUT",
                &ApiError::new(
                    InputError::InvalidRequest,
                    "Usage: LOGOUT or LOGOUT|session_token",
                ),
            ))
        }
    };
    s.logout_session_token(&token, ctx)
        .await
        .map_err(|e| failure("LOGOUT", &e))?;
    Ok("LOGOUT|SUCCESS".to_owned())
}

#[cfg(test)]
mod tests;
