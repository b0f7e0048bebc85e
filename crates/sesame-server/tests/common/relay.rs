//! Relay clients for the integration tests: a logged-in user, and a WebSocket (`/ws`) and a
//! TCP line connection that send the relay's frames and read them back within bounds. A test
//! file adds its own `impl Ws` / `impl Tcp` blocks for what only it needs.
// Bounds on reads: the real clock, outside the server under test.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sesame_server::tcp::{join, split_fields};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use super::api::{self, PASSWORD};
use super::server::TestServer;

/// How long a read may take before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(20);
/// How long to wait to be sure nothing more arrives.
pub const QUIET: Duration = Duration::from_millis(600);

/// A logged-in user.
pub struct User {
    pub name: String,
    pub id: Uuid,
    pub access: String,
    pub session: String,
}

/// Registers `name` and logs in.
pub async fn user(srv: &TestServer, name: &str) -> User {
    api::register(&Client::new(), srv, name).await;
    login(srv, name).await
}

/// Logs `name` in (a new session).
pub async fn login(srv: &TestServer, name: &str) -> User {
    let (status, v) = api::login(&Client::new(), srv, name, PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "login {name}");
    User {
        name: name.to_owned(),
        id: v["user_id"].as_str().unwrap().parse().unwrap(),
        access: v["access_token"].as_str().unwrap().to_owned(),
        session: v["session_token"].as_str().unwrap().to_owned(),
    }
}

/// A `/ws` connection.
pub struct Ws(pub WebSocketStream<MaybeTlsStream<TcpStream>>);

/// The server's `/ws` URL.
pub fn ws_url(srv: &TestServer) -> String {
    format!("{}/ws", srv.base.replacen("http://", "ws://", 1))
}

impl Ws {
    /// Connects with `Authorization: Bearer token`.
    pub async fn connect(srv: &TestServer, token: &str) -> Ws {
        let mut req = ws_url(srv).into_client_request().unwrap();
        req.headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
        let (ws, resp) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect /ws");
        assert_eq!(resp.status(), 101);
        Ws(ws)
    }

    /// Sends `v` as a text frame.
    pub async fn send(&mut self, v: Value) {
        self.0
            .send(Message::Text(v.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON frame within `wait`; `None` on timeout. Panics if the connection ends.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.0.next())
                .await
                .ok()?;
            match next {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                other => panic!("connection ended: {other:?}"),
            }
        }
    }

    /// The next JSON frame; panics after [`READ_TIMEOUT`].
    pub async fn recv(&mut self) -> Value {
        self.recv_within(READ_TIMEOUT)
            .await
            .expect("a frame in time")
    }

    /// Expects no frame for [`QUIET`].
    pub async fn quiet(&mut self) {
        if let Some(v) = self.recv_within(QUIET).await {
            panic!("unexpected frame {v}");
        }
    }
}

/// A TCP line-protocol connection.
pub struct Tcp {
    pub reader: BufReader<OwnedReadHalf>,
    pub writer: OwnedWriteHalf,
}

impl Tcp {
    /// Connects to the server's TCP listener.
    pub async fn connect(srv: &TestServer) -> Tcp {
        let (r, w) = TcpStream::connect(srv.tcp).await.unwrap().into_split();
        Tcp {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    /// A connection logged in as `u` with `SESSION`.
    pub async fn session(srv: &TestServer, u: &User) -> Tcp {
        let mut t = Tcp::connect(srv).await;
        assert_eq!(
            t.call(&["SESSION", &u.session]).await,
            ["SESSION", "SUCCESS", &u.name]
        );
        t
    }

    /// Sends one line of `fields`.
    pub async fn send(&mut self, fields: &[&str]) {
        let line = format!("{}\n", join(fields));
        self.writer.write_all(line.as_bytes()).await.unwrap();
    }

    /// The next line's fields within `wait`; `None` on timeout. Panics if the connection
    /// closed.
    pub async fn line_within(&mut self, wait: Duration) -> Option<Vec<String>> {
        let mut line = String::new();
        let n = tokio::time::timeout(wait, self.reader.read_line(&mut line))
            .await
            .ok()?
            .unwrap();
        assert!(n > 0, "the TCP connection closed");
        Some(split_fields(line.trim_end_matches(['\r', '\n'])))
    }

    /// The next line's fields; panics after [`READ_TIMEOUT`].
    pub async fn line(&mut self) -> Vec<String> {
        self.line_within(READ_TIMEOUT)
            .await
            .expect("a line in time")
    }

    /// Sends a line and returns the next one.
    pub async fn call(&mut self, fields: &[&str]) -> Vec<String> {
        self.send(fields).await;
        self.line().await
    }
}
