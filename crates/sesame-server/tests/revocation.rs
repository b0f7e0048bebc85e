//! Ending a session closes its live relay connections (WebSocket `/ws` and TCP `SESSION`)
//! within a second: revoking it, logging out everywhere, banning or deleting the account; on
//! one node and across two nodes sharing PostgreSQL and Redis.

// The tests measure how long the server takes to close a socket: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use reqwest::{Client, Method, StatusCode};
use serde_json::json;
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::messages::LoginChallenge;
use sesame_server::tcp::{join, split_fields};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use common::api::{self, delete_auth, post_auth, Login, PASSWORD};
use common::server::TestServer;
use common::TestDb;

/// How soon a revoked session's connections must close.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

type WsStream = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn ws(srv: &TestServer, token: &str) -> WsStream {
    let url = format!("{}/ws", srv.base.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req).await.expect("/ws").0
}

/// Waits (at most `within`) for the server to close `ws`; returns the close code and how
/// long it took. Panics if a frame other than a ping arrives first.
async fn ws_closed(ws: &mut WsStream, within: Duration) -> Option<(u16, Duration)> {
    let start = Instant::now();
    let deadline = start + within;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await.ok()? {
            Some(Ok(Message::Close(f))) => {
                return Some((f.map_or(0, |f| u16::from(f.code)), start.elapsed()))
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(other)) => panic!("unexpected frame {other:?}"),
            Some(Err(_)) | None => return Some((0, start.elapsed())),
        }
    }
}

/// A TCP connection logged in with `SESSION`.
struct Tcp {
    reader: BufReader<tokio::net::tcp::OwnedReadHalf>,
    writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Tcp {
    async fn session(srv: &TestServer, token: &str) -> Tcp {
        let (r, w) = TcpStream::connect(srv.tcp).await.unwrap().into_split();
        let mut t = Tcp {
            reader: BufReader::new(r),
            writer: w,
        };
        t.send(&["SESSION", token]).await;
        let line = t
            .line(Duration::from_secs(10))
            .await
            .expect("SESSION answer");
        assert_eq!(line[..2], ["SESSION", "SUCCESS"], "{line:?}");
        t
    }

    async fn send(&mut self, fields: &[&str]) {
        let line = format!("{}\n", join(fields));
        let _ = self.writer.write_all(line.as_bytes()).await;
    }

    /// The next line within `wait`; `None` on timeout or when the connection closed.
    async fn line(&mut self, wait: Duration) -> Option<Vec<String>> {
        let mut line = String::new();
        let n = tokio::time::timeout(wait, self.reader.read_line(&mut line))
            .await
            .ok()?
            .ok()?;
        (n > 0).then(|| split_fields(line.trim_end_matches(['\r', '\n'])))
    }

    /// Expects `ERROR|session_ended|…` then the end of the connection within `within`.
    async fn expect_ended(&mut self, within: Duration) -> Duration {
        let start = Instant::now();
        let line = self.line(within).await.expect("a line before the deadline");
        assert_eq!(line[..2], ["ERROR", "session_ended"], "{line:?}");
        let rest = self.line(within.saturating_sub(start.elapsed())).await;
        assert!(rest.is_none(), "the connection closes: {rest:?}");
        start.elapsed()
    }
}

/// Registers a user and logs in twice.
async fn two_logins(c: &Client, srv: &TestServer) -> (String, Login, Login) {
    let name = api::username("rv");
    api::register(c, srv, &name).await;
    let one = api::login_session(c, srv, &name).await;
    let two = api::login_session(c, srv, &name).await;
    (name, one, two)
}

/// Session 2's WebSocket and TCP connections close within a second of session 1 revoking
/// it; session 1's own connection stays open and keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_a_session_closes_its_connections_at_once() {
    let db = TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let (name, one, two) = two_logins(&c, &srv).await;
    let mut ws1 = ws(&srv, &one.access).await;
    let mut ws2 = ws(&srv, &two.access).await;
    let mut ws2s = ws(&srv, &two.session).await;
    let mut tcp2 = Tcp::session(&srv, &two.session).await;

    let path = format!("/api/sessions/{}", two.session_id);
    let (status, v) = delete_auth(&c, &srv, &path, &one.access).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    for ws in [&mut ws2, &mut ws2s] {
        let (code, took) = ws_closed(ws, CLOSE_WITHIN).await.expect("closed in time");
        assert_eq!(code, 1008);
        eprintln!("revoked session: websocket closed after {took:?}");
    }
    let took = tcp2.expect_ended(CLOSE_WITHIN).await;
    eprintln!("revoked session: tcp closed after {took:?}");

    // Session 1 is unaffected: its socket still answers.
    ws1.send(Message::Text(
        json!({"type": "ack", "id": "x"}).to_string().into(),
    ))
    .await
    .unwrap();
    assert!(ws_closed(&mut ws1, Duration::from_millis(300))
        .await
        .is_none());
    let again = api::login_session(&c, &srv, &name).await;
    drop(again);
    srv.stop().await;
    db.cleanup().await;
}

/// Logging out everywhere, a ban and an account deletion each close every connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_all_ban_and_deletion_close_every_connection() {
    let db = TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();

    let (_, one, two) = two_logins(&c, &srv).await;
    let mut conns = (ws(&srv, &one.access).await, ws(&srv, &two.session).await);
    let mut tcp = Tcp::session(&srv, &two.session).await;
    let (status, v) = post_auth(&c, &srv, "/api/logout-all", &one.access, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    for ws in [&mut conns.0, &mut conns.1] {
        assert_eq!(ws_closed(ws, CLOSE_WITHIN).await.expect("closed").0, 1008);
    }
    tcp.expect_ended(CLOSE_WITHIN).await;

    let (name, one, _two) = two_logins(&c, &srv).await;
    let mut w = ws(&srv, &one.access).await;
    let mut tcp = Tcp::session(&srv, &one.session).await;
    srv.sesame.admin_set_banned(&name, true).await.unwrap();
    assert_eq!(
        ws_closed(&mut w, CLOSE_WITHIN).await.expect("closed").0,
        1008
    );
    tcp.expect_ended(CLOSE_WITHIN).await;

    let (name, one, two) = two_logins(&c, &srv).await;
    let mut w = ws(&srv, &two.access).await;
    let mut tcp = Tcp::session(&srv, &two.session).await;
    reauthenticate(&c, &srv, &name, &one.access).await;
    let (status, v) = api::call(&c, &srv, Method::DELETE, "/api/me", Some(&one.access), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    assert_eq!(
        ws_closed(&mut w, CLOSE_WITHIN).await.expect("closed").0,
        1008
    );
    tcp.expect_ended(CLOSE_WITHIN).await;
    srv.stop().await;
    db.cleanup().await;
}

/// OPAQUE re-authentication of the session behind `access` (account deletion needs it).
async fn reauthenticate(c: &Client, srv: &TestServer, name: &str, access: &str) {
    let mut rng = ChaCha20Rng::from_entropy();
    let (state, start) = client::start_login(&mut rng, name, PASSWORD).unwrap();
    let (s, ch) = post_auth(c, srv, "/api/reauth/start", access, &start).await;
    assert_eq!(s, StatusCode::OK, "{ch}");
    let ch: LoginChallenge = serde_json::from_value(ch).unwrap();
    let done = state
        .finish(&mut rng, &ch, &ClientPolicy::default())
        .unwrap();
    let (s, conf) = post_auth(c, srv, "/api/reauth/finish", access, &done.message).await;
    assert_eq!(s, StatusCode::OK, "{conf}");
}

/// Two nodes on one PostgreSQL database and one Redis: a session revoked through node A
/// loses its connections on node B within a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_node() {
    let Some((db, a, b)) = common::server::two_nodes("revoke").await else {
        return;
    };
    let c = Client::new();
    let (_, one, two) = two_logins(&c, &a).await;
    let mut ws_b = ws(&b, &two.access).await;
    let mut tcp_b = Tcp::session(&b, &two.session).await;
    let mut ws_b1 = ws(&b, &one.access).await;

    let path = format!("/api/sessions/{}", two.session_id);
    let (status, v) = delete_auth(&c, &a, &path, &one.access).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{v}");
    let (code, took) = ws_closed(&mut ws_b, CLOSE_WITHIN)
        .await
        .expect("closed in time");
    assert_eq!(code, 1008);
    eprintln!("revoked on node A: websocket on node B closed after {took:?}");
    let took = tcp_b.expect_ended(CLOSE_WITHIN).await;
    eprintln!("revoked on node A: tcp on node B closed after {took:?}");
    assert!(ws_closed(&mut ws_b1, Duration::from_millis(300))
        .await
        .is_none());

    // Logging out everywhere through node A closes node B's remaining connection too.
    let (status, v) = post_auth(&c, &a, "/api/logout-all", &one.access, json!({})).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        ws_closed(&mut ws_b1, CLOSE_WITHIN).await.expect("closed").0,
        1008
    );
    a.stop().await;
    b.stop().await;
    db.cleanup().await;
}
