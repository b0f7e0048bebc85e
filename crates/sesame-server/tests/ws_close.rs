//! A WebSocket message the server cannot take ends the connection with a close frame that
//! says why: 1009 for a message above the limit, 1007 for a text frame that is not UTF-8; on
//! the relay (`/ws`) and on the login socket (`/auth/login`).

// Bounds on waits for sockets and processes: wall time on purpose.
#![allow(clippy::disallowed_methods)]

mod common;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::Client;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::Message;

use common::api::{self, PASSWORD};
use common::server::TestServer;
use common::TestDb;

/// Connects to `path`, sends `msg`, and returns the close frame's code and reason.
async fn close_after(
    srv: &TestServer,
    path: &str,
    token: Option<&str>,
    msg: Message,
) -> (u16, String) {
    let url = format!("{}{path}", srv.base.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().unwrap();
    if let Some(t) = token {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(req)
        .await
        .expect("connect");
    let _ = ws.send(msg).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("closed in time")
        {
            Some(Ok(Message::Close(Some(f)))) => return (u16::from(f.code), f.reason.to_string()),
            Some(Ok(Message::Close(None))) => panic!("a close frame without a code"),
            Some(Ok(_)) => continue,
            other => panic!("closed without a close frame: {other:?}"),
        }
    }
}

fn too_big() -> Message {
    Message::Text("x".repeat(150 * 1024).into())
}

fn not_utf8() -> Message {
    Message::Frame(Frame::message(
        vec![b'{', 0xff, 0xfe, b'}'],
        OpCode::Data(Data::Text),
        true,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_invalid_utf8_frames_get_a_close_code() {
    let db = TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let name = api::username("wc");
    api::register(&c, &srv, &name).await;
    let (access, _) = api::tokens(&c, &srv, &name, PASSWORD).await;
    for (path, token) in [("/ws", Some(access.as_str())), ("/auth/login", None)] {
        let (code, reason) = close_after(&srv, path, token, too_big()).await;
        assert_eq!((code, reason.as_str()), (1009, "message_too_big"), "{path}");
        let (code, reason) = close_after(&srv, path, token, not_utf8()).await;
        assert_eq!((code, reason.as_str()), (1007, "invalid_utf8"), "{path}");
    }
    srv.stop().await;
    db.cleanup().await;
}
