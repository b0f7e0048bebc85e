//! Real clients over loopback against a real server, on SQLite and on PostgreSQL:
//!
//! * the WebSocket login (`GET /auth/login`) driven by tokio-tungstenite and the client half
//!   of the protocol core (`sesame_proto::client`): success, `failed` acknowledgement,
//!   wrong password / unknown user, malformed and oversized frames;
//! * the TCP line protocol driven over a plain `TcpStream`: every verb, escaping, the line
//!   and encoding limits, and `tcp_allow_password = false`.

mod common;

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rand_chacha::rand_core::RngCore as _;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sesame_proto::b64::{self, Bytes};
use sesame_proto::client::{self as proto, ClientPolicy};
use sesame_proto::messages::{
    LoginChallenge, LoginConfirmation, RegistrationChallenge, RegistrationFinish,
};
use sesame_proto::KsfParams;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use uuid::Uuid;

use common::api::{self, audit_of, rng, username, PASSWORD};
use common::on_every_backend;
use common::server::TestServer;

/// How long any single read from the server may take before the test fails.
const READ_TIMEOUT: Duration = Duration::from_secs(20);
// ---------------------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------------------

async fn register_http(srv: &TestServer, user: &str, password: &str) -> Uuid {
    let body = json!({ "username": user, "password": password });
    let (status, body) = api::post(&Client::new(), srv, "/register", body).await;
    assert_eq!(status, 201, "register {user}: {body}");
    Uuid::parse_str(body["user_id"].as_str().expect("user_id")).expect("user_id is a uuid")
}

/// `GET /api/me` with `token`: (status, body).
async fn me(srv: &TestServer, token: &str) -> (StatusCode, Value) {
    api::get_auth(&Client::new(), srv, "/api/me", token).await
}

/// `POST /api/session/refresh`: (status, body).
async fn refresh(srv: &TestServer, session_token: &str) -> (StatusCode, Value) {
    api::refresh(&Client::new(), srv, session_token).await
}

/// `POST /api/login`: (status, body).
async fn login_http(srv: &TestServer, user: &str, password: &str) -> (StatusCode, Value) {
    api::login(&Client::new(), srv, user, password).await
}

async fn assert_healthy(srv: &TestServer) {
    let resp = reqwest::get(srv.url("/healthz"))
        .await
        .expect("GET /healthz");
    assert_eq!(resp.status(), 200, "the server stopped answering /healthz");
}

/// The server's OPAQUE public key, from `/.well-known/sesame`.
async fn server_public_key(srv: &TestServer) -> Vec<u8> {
    let info: Value = reqwest::get(srv.url("/.well-known/sesame"))
        .await
        .expect("GET /.well-known/sesame")
        .json()
        .await
        .expect("server info JSON");
    b64::decode(
        info["opaque_public_key"]
            .as_str()
            .expect("opaque_public_key"),
    )
    .expect("public key is base64url")
}

/// Checks the opened confirmation payload (a `SessionIssued`) and returns it.
fn check_issued(payload: &[u8], user: &str, user_id: Uuid) -> Value {
    let issued: Value = serde_json::from_slice(payload).expect("the payload is JSON");
    assert_eq!(issued["user_id"], json!(user_id), "{issued}");
    assert_eq!(issued["username"], json!(user), "{issued}");
    assert_eq!(issued["token_type"], json!("Bearer"), "{issued}");
    assert_eq!(issued["expires_in"], json!(900), "{issued}");
    let sst = issued["session_token"].as_str().expect("session_token");
    assert!(sst.starts_with("sst_"), "{sst}");
    assert_eq!(
        issued["access_token"].as_str().unwrap().split('.').count(),
        3
    );
    Uuid::parse_str(issued["session_id"].as_str().expect("session_id")).expect("session uuid");
    issued
}

// ---------------------------------------------------------------------------------------
// WebSocket helpers
// ---------------------------------------------------------------------------------------

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What came from the server. The payloads are read through `Debug` in failure messages.
#[derive(Debug)]
#[allow(dead_code)]
enum Incoming {
    /// A JSON text frame.
    Json(Value),
    /// A text frame that is not JSON, or a binary frame (the server never sends them).
    Other(String),
    /// A close frame, the end of the stream, or a transport error.
    Closed(String),
}

async fn ws_connect(srv: &TestServer) -> Ws {
    let url = format!("{}/auth/login", srv.base.replacen("http://", "ws://", 1));
    let (ws, resp) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    assert_eq!(resp.status(), 101);
    ws
}

async fn ws_recv(ws: &mut Ws) -> Incoming {
    loop {
        let next = tokio::time::timeout(READ_TIMEOUT, ws.next())
            .await
            .expect("the server answers within the timeout");
        return match next {
            Some(Ok(Message::Text(t))) => match serde_json::from_str(t.as_str()) {
                Ok(v) => Incoming::Json(v),
                Err(_) => Incoming::Other(t.to_string()),
            },
            Some(Ok(Message::Binary(b))) => Incoming::Other(format!("binary {b:?}")),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Ok(Message::Close(c))) => Incoming::Closed(format!("close {c:?}")),
            Some(Err(e)) => Incoming::Closed(format!("error {e}")),
            None => Incoming::Closed("end of stream".into()),
        };
    }
}

/// Sends `msg` (any serializable object) as a text frame with `"type": ty`.
async fn ws_send<T: serde::Serialize>(ws: &mut Ws, ty: &str, msg: &T) {
    let mut v = serde_json::to_value(msg).expect("serialize");
    v.as_object_mut()
        .expect("messages are objects")
        .insert("type".into(), json!(ty));
    ws.send(Message::text(v.to_string()))
        .await
        .unwrap_or_else(|e| panic!("send {ty}: {e}"));
}

/// Receives a frame of type `ty` and returns it without its `type`.
async fn ws_expect(ws: &mut Ws, ty: &str) -> Value {
    match ws_recv(ws).await {
        Incoming::Json(mut v) if v["type"] == ty => {
            v.as_object_mut().unwrap().remove("type");
            v
        }
        other => panic!("expected a `{ty}` frame, got {other:?}"),
    }
}

/// Receives an `error` frame and returns its code; checks the connection ends after it.
async fn ws_expect_error(ws: &mut Ws) -> String {
    let code = match ws_recv(ws).await {
        Incoming::Json(v) if v["type"] == "error" => {
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty()),
                "error frames carry a message: {v}"
            );
            v["error"]["code"].as_str().expect("error code").to_owned()
        }
        other => panic!("expected an `error` frame, got {other:?}"),
    };
    ws_expect_closed(ws).await;
    code
}

/// Checks nothing but the end of the connection comes next.
async fn ws_expect_closed(ws: &mut Ws) {
    match ws_recv(ws).await {
        Incoming::Closed(_) => {}
        other => panic!("expected the connection to close, got {other:?}"),
    }
}

/// A WebSocket login up to the opened confirmation. Returns (connection, login id, payload).
async fn ws_login_until_confirmation(
    srv: &TestServer,
    user: &str,
    password: &str,
) -> (Ws, String, Vec<u8>) {
    let mut rng = rng();
    let mut ws = ws_connect(srv).await;
    let (state, start) = proto::start_login(&mut rng, user, password).expect("start_login");
    ws_send(&mut ws, "login_start", &start).await;
    let challenge: LoginChallenge =
        serde_json::from_value(ws_expect(&mut ws, "login_challenge").await)
            .expect("a well-formed login_challenge");
    assert_eq!(challenge.login_id.len(), 22);
    assert!(challenge.expires_in > 0);
    let done = state
        .finish(&mut rng, &challenge, &ClientPolicy::default())
        .expect("the client accepts the challenge");
    assert_eq!(
        done.server_public_key.to_vec(),
        server_public_key(srv).await
    );
    ws_send(&mut ws, "login_finish", &done.message).await;
    let confirmation: LoginConfirmation =
        serde_json::from_value(ws_expect(&mut ws, "login_confirmation").await)
            .expect("a well-formed login_confirmation");
    assert_eq!(confirmation.login_id, challenge.login_id);
    let payload = done
        .confirmation
        .open(&confirmation)
        .expect("the confirmation opens");
    (ws, challenge.login_id, payload.to_vec())
}

// ---------------------------------------------------------------------------------------
// WebSocket tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_full_login_is_accepted_and_the_access_token_works() {
    on_every_backend!(|srv, db| {
        let user = username("wsok");
        let user_id = register_http(&srv, &user, PASSWORD).await;

        let (mut ws, login_id, payload) = ws_login_until_confirmation(&srv, &user, PASSWORD).await;
        let issued = check_issued(&payload, &user, user_id);
        ws_send(
            &mut ws,
            "login_ack",
            &json!({ "login_id": login_id, "status": "success" }),
        )
        .await;
        let result = ws_expect(&mut ws, "login_result").await;
        assert_eq!(result, json!({ "status": "accepted" }), "[{}]", db.name);
        ws_expect_closed(&mut ws).await;

        let access = issued["access_token"].as_str().unwrap();
        let (status, body) = me(&srv, access).await;
        assert_eq!(status, 200, "[{}] /api/me: {body}", db.name);
        assert_eq!(body["user_id"], json!(user_id));
        assert_eq!(body["username"], json!(user));
        let (status, body) = refresh(&srv, issued["session_token"].as_str().unwrap()).await;
        assert_eq!(status, 200, "[{}] refresh: {body}", db.name);

        let audit = audit_of(&srv, user_id).await;
        assert!(
            audit.iter().any(|a| a.event == "login.success"
                && a.reason.as_deref() == Some("method=opaque")),
            "[{}] audit: {audit:?}",
            db.name
        );
        // An acknowledgement on another connection is out of order there and cannot revoke
        // this login's session.
        let mut ws = ws_connect(&srv).await;
        ws_send(
            &mut ws,
            "login_ack",
            &json!({ "login_id": login_id, "status": "failed" }),
        )
        .await;
        assert_eq!(ws_expect_error(&mut ws).await, "unexpected_message");
        assert_eq!(me(&srv, access).await.0, 200, "[{}]", db.name);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_failed_ack_revokes_the_session_and_is_audited() {
    on_every_backend!(|srv, db| {
        let user = username("wsack");
        let user_id = register_http(&srv, &user, PASSWORD).await;

        let (mut ws, login_id, payload) = ws_login_until_confirmation(&srv, &user, PASSWORD).await;
        let issued = check_issued(&payload, &user, user_id);
        // Before the acknowledgement the session exists.
        let access = issued["access_token"].as_str().unwrap();
        assert_eq!(me(&srv, access).await.0, 200, "[{}]", db.name);
        ws_send(
            &mut ws,
            "login_ack",
            &json!({
                "login_id": login_id,
                "status": "failed",
                "reason": "test: confirmation\n does not verify",
            }),
        )
        .await;
        let result = ws_expect(&mut ws, "login_result").await;
        assert_eq!(result, json!({ "status": "revoked" }), "[{}]", db.name);
        ws_expect_closed(&mut ws).await;

        let (status, body) = refresh(&srv, issued["session_token"].as_str().unwrap()).await;
        assert_eq!(status, 401, "[{}] refresh after revoke: {body}", db.name);
        assert_eq!(body["error"]["code"], "session_invalid", "[{}]", db.name);
        let (status, _) = me(&srv, access).await;
        assert_eq!(
            status, 401,
            "[{}] the access token of a revoked session",
            db.name
        );

        let audit = audit_of(&srv, user_id).await;
        let entry = audit
            .iter()
            .find(|a| a.event == "login.server_auth_failed")
            .unwrap_or_else(|| panic!("[{}] no login.server_auth_failed in {audit:?}", db.name));
        // Control characters are stripped from the client's reason.
        assert_eq!(
            entry.reason.as_deref(),
            Some("test: confirmation does not verify"),
            "[{}]",
            db.name
        );
    });
}

/// Runs a WebSocket login whose client half fails (wrong password or unknown user), then
/// sends a forged KE3 anyway; returns the error code and the challenge the server sent.
async fn ws_forged_login(srv: &TestServer, user: &str, password: &str) -> (String, Value) {
    let mut rng = rng();
    let mut ws = ws_connect(srv).await;
    let (state, start) = proto::start_login(&mut rng, user, password).expect("start_login");
    ws_send(&mut ws, "login_start", &start).await;
    let raw = ws_expect(&mut ws, "login_challenge").await;
    let challenge: LoginChallenge = serde_json::from_value(raw.clone()).expect("challenge");
    let local = state
        .finish(&mut rng, &challenge, &ClientPolicy::default())
        .err();
    assert_eq!(
        local,
        Some(sesame_proto::Error::AuthenticationFailed),
        "the client half must fail for {user}"
    );
    let mut ke3 = vec![0u8; 64];
    rng.fill_bytes(&mut ke3);
    ws_send(
        &mut ws,
        "login_finish",
        &json!({ "login_id": challenge.login_id, "ke3": b64::encode(&ke3) }),
    )
    .await;
    (ws_expect_error(&mut ws).await, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_wrong_password_and_unknown_user_fail_alike() {
    on_every_backend!(|srv, db| {
        let user = username("wsbad");
        let user_id = register_http(&srv, &user, PASSWORD).await;

        let (code, real) = ws_forged_login(&srv, &user, "not the right password").await;
        assert_eq!(
            code, "authentication_failed",
            "[{}] wrong password",
            db.name
        );
        let (code, fake) = ws_forged_login(&srv, &username("wsnobody"), PASSWORD).await;
        assert_eq!(code, "authentication_failed", "[{}] unknown user", db.name);
        // The unknown user's challenge has the same shape as the real one.
        assert_eq!(
            real["ke2"].as_str().unwrap().len(),
            fake["ke2"].as_str().unwrap().len()
        );
        assert_eq!(real["key_stretching"], fake["key_stretching"]);
        assert_eq!(real["server_public_key"], fake["server_public_key"]);
        assert_eq!(real["expires_in"], fake["expires_in"]);

        let audit = audit_of(&srv, user_id).await;
        assert!(
            audit
                .iter()
                .any(|a| a.event == "login.failure" && a.reason.as_deref() == Some("bad_proof")),
            "[{}] audit: {audit:?}",
            db.name
        );
        assert!(
            !audit.iter().any(|a| a.event == "login.success"),
            "[{}] {audit:?}",
            db.name
        );
        // The right password still works afterwards.
        let (mut ws, login_id, payload) = ws_login_until_confirmation(&srv, &user, PASSWORD).await;
        check_issued(&payload, &user, user_id);
        ws_send(
            &mut ws,
            "login_ack",
            &json!({ "login_id": login_id, "status": "success" }),
        )
        .await;
        assert_eq!(
            ws_expect(&mut ws, "login_result").await["status"],
            "accepted"
        );
    });
}

/// A `login_start` frame for `user`, padded with JSON whitespace to exactly `size` bytes.
fn padded_login_start(user: &str, size: usize) -> String {
    let (_, start) = proto::start_login(&mut rng(), user, PASSWORD).expect("start_login");
    let mut v = serde_json::to_value(&start).unwrap();
    v.as_object_mut()
        .unwrap()
        .insert("type".into(), json!("login_start"));
    let text = v.to_string();
    assert!(text.len() < size);
    // `{` + spaces + the rest: still the same JSON object.
    format!("{{{}{}", " ".repeat(size - text.len()), &text[1..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_bad_input_gets_an_error_frame_and_the_server_keeps_serving() {
    on_every_backend!(|srv, db| {
        let user = username("wsinput");
        register_http(&srv, &user, PASSWORD).await;

        for frame in [
            // Not JSON.
            Message::text("this is not JSON"),
            // A binary frame.
            Message::binary(vec![0u8, 1, 2, 3]),
            // JSON of an unknown type, and a known type with a missing field.
            Message::text(r#"{"type":"hello"}"#),
            Message::text(r#"{"type":"login_start","username":"x"}"#),
        ] {
            let mut ws = ws_connect(&srv).await;
            ws.send(frame).await.unwrap();
            assert_eq!(
                ws_expect_error(&mut ws).await,
                "invalid_message",
                "[{}]",
                db.name
            );
        }

        // Out of order: login_finish first.
        let unknown_finish =
            json!({ "login_id": "AAAAAAAAAAAAAAAAAAAAAA", "ke3": b64::encode([7u8; 64]) });
        let mut ws = ws_connect(&srv).await;
        ws_send(&mut ws, "login_finish", &unknown_finish).await;
        assert_eq!(
            ws_expect_error(&mut ws).await,
            "unexpected_message",
            "[{}]",
            db.name
        );

        // Out of order: login_start twice.
        let mut ws = ws_connect(&srv).await;
        let (_, start) = proto::start_login(&mut rng(), &user, PASSWORD).unwrap();
        ws_send(&mut ws, "login_start", &start).await;
        ws_expect(&mut ws, "login_challenge").await;
        ws_send(&mut ws, "login_start", &start).await;
        assert_eq!(
            ws_expect_error(&mut ws).await,
            "unexpected_message",
            "[{}]",
            db.name
        );

        // A login_finish whose login id is not this connection's.
        let mut ws = ws_connect(&srv).await;
        ws_send(&mut ws, "login_start", &start).await;
        ws_expect(&mut ws, "login_challenge").await;
        ws_send(&mut ws, "login_finish", &unknown_finish).await;
        assert_eq!(
            ws_expect_error(&mut ws).await,
            "unknown_login",
            "[{}]",
            db.name
        );

        // Just under the frame limit: an ordinary login_start, answered normally.
        let mut ws = ws_connect(&srv).await;
        let frame = padded_login_start(&user, 60 * 1024);
        ws.send(Message::text(frame)).await.unwrap();
        ws_expect(&mut ws, "login_challenge").await;
        drop(ws);

        for (frame, what) in [
            // Over the frame limit (64 KiB): the same login_start padded past it must not
            // start a login. The server answers an error frame or just closes.
            (
                padded_login_start(&user, 64 * 1024 + 1024),
                "an oversized frame",
            ),
            // A frame far over the limit (1 MiB).
            ("x".repeat(1 << 20), "a 1 MiB frame"),
        ] {
            let mut ws = ws_connect(&srv).await;
            // The server may close while the frame is still being written.
            let _ = ws.send(Message::text(frame)).await;
            match ws_recv(&mut ws).await {
                Incoming::Json(v) if v["type"] == "error" => {
                    assert_eq!(v["error"]["code"], "message_too_big", "[{}] {v}", db.name);
                    ws_expect_closed(&mut ws).await;
                }
                Incoming::Closed(_) => {}
                other => panic!("[{}] {what} got {other:?}", db.name),
            }
        }

        // Still serving: HTTP and a new WebSocket login.
        assert_healthy(&srv).await;
        let mut ws = ws_connect(&srv).await;
        let (_, start) = proto::start_login(&mut rng(), &user, PASSWORD).unwrap();
        ws_send(&mut ws, "login_start", &start).await;
        ws_expect(&mut ws, "login_challenge").await;
        drop(ws);
    });
}

// ---------------------------------------------------------------------------------------
// TCP helpers
// ---------------------------------------------------------------------------------------

/// One TCP line-protocol connection.
struct Tcp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// Escapes one field (`\|`, `\\`, `\n`, `\r`): an implementation independent of the
/// server's.
fn esc(field: &str) -> String {
    field
        .replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// Splits an answer line into unescaped fields.
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('n') => out.last_mut().unwrap().push('\n'),
                Some('r') => out.last_mut().unwrap().push('\r'),
                Some(other) => out.last_mut().unwrap().push(other),
                None => out.last_mut().unwrap().push('\\'),
            },
            '|' => out.push(String::new()),
            other => out.last_mut().unwrap().push(other),
        }
    }
    out
}

impl Tcp {
    async fn connect(srv: &TestServer) -> Tcp {
        let stream = TcpStream::connect(srv.tcp).await.expect("connect tcp");
        let (r, w) = stream.into_split();
        Tcp {
            reader: BufReader::new(r),
            writer: w,
        }
    }

    async fn send_raw(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).await.expect("tcp write");
    }

    /// The next line without its line break; `None` at the end of the connection (or a
    /// reset).
    async fn read_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        let n = tokio::time::timeout(READ_TIMEOUT, self.reader.read_until(b'\n', &mut buf))
            .await
            .expect("the server answers within the timeout");
        match n {
            Ok(0) | Err(_) => None,
            Ok(_) => {
                assert_eq!(buf.pop(), Some(b'\n'), "an unterminated line: {buf:?}");
                Some(String::from_utf8(buf).expect("the server sends UTF-8"))
            }
        }
    }

    /// Sends one line of fields (escaped) and returns the answer line.
    async fn call(&mut self, fs: &[&str]) -> String {
        let line = fs.iter().map(|f| esc(f)).collect::<Vec<_>>().join("|");
        self.call_line(&line).await
    }

    /// Sends `line` as is (plus `\n`) and returns the answer line.
    async fn call_line(&mut self, line: &str) -> String {
        self.send_raw(format!("{line}\n").as_bytes()).await;
        self.read_line()
            .await
            .unwrap_or_else(|| panic!("no answer to {line:?}: the connection closed"))
    }

    /// Checks the server closes the connection next.
    async fn expect_closed(&mut self) {
        if let Some(line) = self.read_line().await {
            panic!("expected the connection to close, got {line:?}");
        }
    }
}

/// Asserts `line` is `VERB|FAILURE|code|message` with a non-empty message.
fn assert_failure(line: &str, verb: &str, code: &str) {
    let f = fields(line);
    assert_eq!(f.len(), 4, "{line}");
    assert_eq!((f[0].as_str(), f[1].as_str()), (verb, "FAILURE"), "{line}");
    assert_eq!(f[2], code, "{line}");
    assert!(!f[3].is_empty(), "{line}");
}

/// Asserts `line` is `ERROR|code|message`.
fn assert_error(line: &str, code: &str) {
    let f = fields(line);
    assert_eq!(f.len(), 3, "{line}");
    assert_eq!((f[0].as_str(), f[1].as_str()), ("ERROR", code), "{line}");
    assert!(!f[2].is_empty(), "{line}");
}

/// `AUTH|SUCCESS|session_token|user_id|access_token|expires_in`; returns the fields.
fn assert_auth_success(line: &str, user_id: Uuid) -> Vec<String> {
    let f = fields(line);
    assert_eq!(f.len(), 6, "{line}");
    assert_eq!(
        (f[0].as_str(), f[1].as_str()),
        ("AUTH", "SUCCESS"),
        "{line}"
    );
    assert!(f[2].starts_with("sst_"), "{line}");
    assert_eq!(f[3], user_id.to_string(), "{line}");
    assert_eq!(f[4].split('.').count(), 3, "{line}");
    assert_eq!(f[5], "900", "{line}");
    f
}

/// `REGISTER|SUCCESS|user_id`; returns the id.
fn assert_registered(line: &str) -> Uuid {
    let f = fields(line);
    assert_eq!(f.len(), 3, "{line}");
    assert_eq!(
        (f[0].as_str(), f[1].as_str()),
        ("REGISTER", "SUCCESS"),
        "{line}"
    );
    Uuid::parse_str(&f[2]).unwrap_or_else(|_| panic!("not a uuid: {line}"))
}

/// Client-side (OPAQUE) registration over TCP; returns the new user id.
async fn tcp_opaque_register(tcp: &mut Tcp, user: &str, password: &str) -> Uuid {
    let mut rng = rng();
    let (state, start) = proto::start_registration(&mut rng, user, password).unwrap();
    let line = tcp
        .call(&[
            "REGISTER_START",
            user,
            &b64::encode(start.registration_request.as_slice()),
        ])
        .await;
    let f = fields(&line);
    assert_eq!(f.len(), 6, "{line}");
    assert_eq!(f[0], "REGISTER_CHALLENGE", "{line}");
    let challenge = RegistrationChallenge {
        registration_response: Bytes(b64::decode(&f[1]).expect("registration_response")),
        key_stretching: KsfParams {
            memory: f[2].parse().unwrap(),
            iterations: f[3].parse().unwrap(),
            parallelism: f[4].parse().unwrap(),
        }
        .into(),
        server_public_key: Bytes(b64::decode(&f[5]).expect("server_public_key")),
    };
    let done = state
        .finish(&mut rng, &challenge, &ClientPolicy::default())
        .expect("the client accepts the registration challenge");
    let RegistrationFinish {
        username,
        registration_record,
        key_stretching,
    } = done.message;
    let p = key_stretching.params();
    let line = tcp
        .call(&[
            "REGISTER_FINISH",
            &username,
            &b64::encode(registration_record.as_slice()),
            &p.memory.to_string(),
            &p.iterations.to_string(),
            &p.parallelism.to_string(),
        ])
        .await;
    assert_registered(&line)
}

/// The outcome of [`tcp_opaque_login`].
enum TcpLogin {
    /// The confirmation opened: its payload and the login id.
    Opened { login_id: String, payload: Vec<u8> },
    /// The client half failed; a forged KE3 was sent and this is the server's answer.
    Forged(String),
}

/// OPAQUE login over TCP up to the opened confirmation (no `LOGIN_ACK` yet).
async fn tcp_opaque_login(tcp: &mut Tcp, srv: &TestServer, user: &str, password: &str) -> TcpLogin {
    let mut rng = rng();
    let (state, start) = proto::start_login(&mut rng, user, password).unwrap();
    let line = tcp
        .call(&["LOGIN_START", user, &b64::encode(start.ke1.as_slice())])
        .await;
    let f = fields(&line);
    assert_eq!(f.len(), 8, "{line}");
    assert_eq!(f[0], "LOGIN_CHALLENGE", "{line}");
    let challenge = LoginChallenge {
        login_id: f[1].clone(),
        ke2: Bytes(b64::decode(&f[2]).expect("ke2")),
        key_stretching: KsfParams {
            memory: f[3].parse().unwrap(),
            iterations: f[4].parse().unwrap(),
            parallelism: f[5].parse().unwrap(),
        }
        .into(),
        server_public_key: Bytes(b64::decode(&f[6]).expect("server_public_key")),
        expires_in: f[7].parse().expect("expires_in"),
    };
    assert_eq!(challenge.server_public_key.0, server_public_key(srv).await);
    let done = match state.finish(&mut rng, &challenge, &ClientPolicy::default()) {
        Ok(done) => done,
        Err(e) => {
            assert_eq!(e, sesame_proto::Error::AuthenticationFailed);
            let mut ke3 = [0u8; 64];
            rng.fill_bytes(&mut ke3);
            let answer = tcp
                .call(&["LOGIN_FINISH", &challenge.login_id, &b64::encode(ke3)])
                .await;
            return TcpLogin::Forged(answer);
        }
    };
    let line = tcp
        .call(&[
            "LOGIN_FINISH",
            &challenge.login_id,
            &b64::encode(done.message.ke3.as_slice()),
        ])
        .await;
    let f = fields(&line);
    assert_eq!(f.len(), 3, "{line}");
    assert_eq!(f[0], "LOGIN_CONFIRMATION", "{line}");
    assert_eq!(f[1], challenge.login_id, "{line}");
    let confirmation = LoginConfirmation {
        login_id: f[1].clone(),
        sealed: Bytes(b64::decode(&f[2]).expect("sealed")),
    };
    let payload = done
        .confirmation
        .open(&confirmation)
        .expect("the confirmation opens");
    TcpLogin::Opened {
        login_id: challenge.login_id,
        payload: payload.to_vec(),
    }
}

// ---------------------------------------------------------------------------------------
// TCP tests
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_password_verbs_ping_and_logout() {
    on_every_backend!(|srv, db| {
        let mut tcp = Tcp::connect(&srv).await;
        assert_eq!(tcp.call(&["PING"]).await, "PONG", "[{}]", db.name);

        let user = username("tcpu");
        let user_id = assert_registered(&tcp.call(&["REGISTER", &user, PASSWORD]).await);
        assert_failure(
            &tcp.call(&["REGISTER", &user, PASSWORD]).await,
            "REGISTER",
            "username_taken",
        );
        // The same name in another case or width is the same name.
        assert_failure(
            &tcp.call(&["REGISTER", &user.to_uppercase(), PASSWORD])
                .await,
            "REGISTER",
            "username_taken",
        );
        let other = username("tcpw");
        for (password, code) in [
            ("short", "password_too_short"),
            ("password", "password_common"),
            (&*format!("x{other}x"), "password_contains_username"),
        ] {
            let line = tcp.call(&["REGISTER", &other, password]).await;
            assert!(line.starts_with("REGISTER|FAILURE|password_"), "{line}");
            assert_failure(&line, "REGISTER", code);
        }
        assert_failure(
            &tcp.call(&["REGISTER", "no", PASSWORD]).await,
            "REGISTER",
            "username_too_short",
        );

        // AUTH: success, and wrong password / unknown user answer the identical line.
        let line = tcp.call(&["AUTH", &user, PASSWORD]).await;
        let f = assert_auth_success(&line, user_id);
        let (status, body) = me(&srv, &f[4]).await;
        assert_eq!(status, 200, "[{}] {body}", db.name);
        assert_eq!(body["user_id"], json!(user_id));
        let wrong = tcp.call(&["AUTH", &user, "not the right password"]).await;
        let unknown = tcp.call(&["AUTH", &username("tcpnobody"), PASSWORD]).await;
        assert_failure(&wrong, "AUTH", "authentication_failed");
        assert_eq!(wrong, unknown, "[{}]", db.name);

        // The TCP-registered account logs in over HTTP too.
        let (status, body) = login_http(&srv, &user, PASSWORD).await;
        assert_eq!(status, 200, "[{}] {body}", db.name);

        // LOGOUT ends the session the AUTH on this connection created.
        assert_eq!(refresh(&srv, &f[2]).await.0, 200, "[{}]", db.name);
        assert_eq!(
            tcp.call(&["LOGOUT"]).await,
            "LOGOUT|SUCCESS",
            "[{}]",
            db.name
        );
        let (status, body) = refresh(&srv, &f[2]).await;
        assert_eq!(status, 401, "[{}] {body}", db.name);
        assert_eq!(body["error"]["code"], "session_invalid");
        assert_eq!(me(&srv, &f[4]).await.0, 401, "[{}]", db.name);
        assert_failure(&tcp.call(&["LOGOUT"]).await, "LOGOUT", "no_session");
        assert_failure(
            &tcp.call(&["LOGOUT", &f[2]]).await,
            "LOGOUT",
            "session_invalid",
        );

        // LOGOUT|session_token ends a session created elsewhere.
        let (_, body) = login_http(&srv, &user, PASSWORD).await;
        let sst = body["session_token"].as_str().unwrap();
        let mut other_conn = Tcp::connect(&srv).await;
        assert_eq!(other_conn.call(&["LOGOUT", sst]).await, "LOGOUT|SUCCESS");
        assert_eq!(refresh(&srv, sst).await.0, 401, "[{}]", db.name);
        drop(other_conn);

        let audit = audit_of(&srv, user_id).await;
        assert!(
            audit.iter().any(
                |a| a.event == "login.success" && a.user_agent.as_deref() == Some("sesame-tcp")
            ),
            "[{}] {audit:?}",
            db.name
        );
        drop(tcp);
    });
}

/// `LOGOUT|other_token` must not make the connection forget the session its own `AUTH`
/// created: a later bare `LOGOUT` still ends that one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_logout_of_another_session_keeps_this_connections_session() {
    on_every_backend!(|srv, db| {
        let user = username("tcplo");
        let user_id = register_http(&srv, &user, PASSWORD).await;
        let mut tcp = Tcp::connect(&srv).await;
        let own = assert_auth_success(&tcp.call(&["AUTH", &user, PASSWORD]).await, user_id);
        let (_, body) = login_http(&srv, &user, PASSWORD).await;
        let other = body["session_token"].as_str().unwrap().to_owned();

        assert_eq!(tcp.call(&["LOGOUT", &other]).await, "LOGOUT|SUCCESS");
        assert_eq!(refresh(&srv, &other).await.0, 401, "[{}]", db.name);
        assert_eq!(refresh(&srv, &own[2]).await.0, 200, "[{}]", db.name);
        // The session of this connection's AUTH is still there to log out.
        assert_eq!(
            tcp.call(&["LOGOUT"]).await,
            "LOGOUT|SUCCESS",
            "[{}] a bare LOGOUT after LOGOUT|other_token",
            db.name
        );
        assert_eq!(refresh(&srv, &own[2]).await.0, 401, "[{}]", db.name);

        drop(tcp);
    });
}

/// A malformed `LOGOUT|a|b` is refused without touching the connection's own login: a later
/// bare `LOGOUT` still ends the session its `AUTH` created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_malformed_logout_keeps_this_connections_session() {
    on_every_backend!(|srv, db| {
        let user = username("tcpbad");
        let user_id = register_http(&srv, &user, PASSWORD).await;
        let mut tcp = Tcp::connect(&srv).await;
        let own = assert_auth_success(&tcp.call(&["AUTH", &user, PASSWORD]).await, user_id);

        assert_failure(
            &tcp.call(&["LOGOUT", "a", "b"]).await,
            "LOGOUT",
            "invalid_request",
        );
        assert_eq!(refresh(&srv, &own[2]).await.0, 200, "[{}]", db.name);
        assert_eq!(
            tcp.call(&["LOGOUT"]).await,
            "LOGOUT|SUCCESS",
            "[{}] a bare LOGOUT after LOGOUT|a|b",
            db.name
        );
        assert_eq!(refresh(&srv, &own[2]).await.0, 401, "[{}]", db.name);

        drop(tcp);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_opaque_registration_and_login() {
    on_every_backend!(|srv, db| {
        let mut tcp = Tcp::connect(&srv).await;
        let user = username("tcpo");
        let user_id = tcp_opaque_register(&mut tcp, &user, PASSWORD).await;
        // The name is taken now, for both kinds of registration.
        let (_, start) = proto::start_registration(&mut rng(), &user, PASSWORD).unwrap();
        assert_failure(
            &tcp.call(&[
                "REGISTER_START",
                &user,
                &b64::encode(start.registration_request.as_slice()),
            ])
            .await,
            "REGISTER",
            "username_taken",
        );
        assert_failure(
            &tcp.call(&["REGISTER", &user, PASSWORD]).await,
            "REGISTER",
            "username_taken",
        );

        // Login, accepted.
        let TcpLogin::Opened { login_id, payload } =
            tcp_opaque_login(&mut tcp, &srv, &user, PASSWORD).await
        else {
            panic!("[{}] the login failed", db.name);
        };
        let issued = check_issued(&payload, &user, user_id);
        assert_eq!(
            tcp.call(&["LOGIN_ACK", &login_id, "success"]).await,
            "LOGIN_ACK|ACCEPTED",
            "[{}]",
            db.name
        );
        let access = issued["access_token"].as_str().unwrap();
        let sst = issued["session_token"].as_str().unwrap();
        let (status, body) = me(&srv, access).await;
        assert_eq!(status, 200, "[{}] {body}", db.name);
        assert_eq!(body["username"], json!(user));
        // A second acknowledgement of the same login is refused.
        let line = tcp.call(&["LOGIN_ACK", &login_id, "failed"]).await;
        assert!(line.contains("|FAILURE|unknown_login|"), "{line}");
        assert_eq!(me(&srv, access).await.0, 200, "[{}]", db.name);
        // The connection remembers the OPAQUE session for a bare LOGOUT.
        assert_eq!(tcp.call(&["LOGOUT"]).await, "LOGOUT|SUCCESS");
        assert_eq!(refresh(&srv, sst).await.0, 401, "[{}]", db.name);

        // Login, then a failed acknowledgement: revoked and audited.
        let TcpLogin::Opened { login_id, payload } =
            tcp_opaque_login(&mut tcp, &srv, &user, PASSWORD).await
        else {
            panic!("[{}] the login failed", db.name);
        };
        let issued = check_issued(&payload, &user, user_id);
        assert_eq!(
            tcp.call(&["LOGIN_ACK", &login_id, "failed", "tcp | test"])
                .await,
            "LOGIN_ACK|REVOKED",
            "[{}]",
            db.name
        );
        let (status, body) = refresh(&srv, issued["session_token"].as_str().unwrap()).await;
        assert_eq!(status, 401, "[{}] {body}", db.name);
        assert_eq!(body["error"]["code"], "session_invalid");
        let audit = audit_of(&srv, user_id).await;
        assert!(
            audit.iter().any(|a| a.event == "login.server_auth_failed"
                && a.reason.as_deref() == Some("tcp | test")),
            "[{}] {audit:?}",
            db.name
        );

        // Wrong password and unknown user: the client half fails, a forged KE3 is refused.
        let TcpLogin::Forged(wrong) =
            tcp_opaque_login(&mut tcp, &srv, &user, "not the right password").await
        else {
            panic!("[{}] a wrong password opened the confirmation", db.name);
        };
        assert_failure(&wrong, "LOGIN", "authentication_failed");
        let TcpLogin::Forged(unknown) =
            tcp_opaque_login(&mut tcp, &srv, &username("tcpnobody"), PASSWORD).await
        else {
            panic!("[{}] an unknown user opened the confirmation", db.name);
        };
        assert_eq!(wrong, unknown, "[{}]", db.name);

        // The OPAQUE-registered account works with the password verbs too.
        assert_auth_success(&tcp.call(&["AUTH", &user, PASSWORD]).await, user_id);

        drop(tcp);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_fields_with_pipes_and_backslashes_are_escaped() {
    on_every_backend!(|srv, db| {
        let mut tcp = Tcp::connect(&srv).await;
        let user = username("tcpesc");
        let password = r"pa|ss\word|\|\\ and more";
        // Written out by hand: `|` as `\|`, `\` as `\\`.
        let escaped = r"pa\|ss\\word\|\\\|\\\\ and more";
        assert_eq!(esc(password), escaped);
        let user_id =
            assert_registered(&tcp.call_line(&format!("REGISTER|{user}|{escaped}")).await);
        assert_auth_success(
            &tcp.call_line(&format!("AUTH|{user}|{escaped}")).await,
            user_id,
        );
        // The stored password is exactly the unescaped one: HTTP login with it works…
        let (status, body) = login_http(&srv, &user, password).await;
        assert_eq!(status, 200, "[{}] {body}", db.name);
        // …and the escaped text itself is a different password.
        let (status, _) = login_http(&srv, &user, escaped).await;
        assert_eq!(status, 401, "[{}]", db.name);
        // An unescaped `|` splits the field: wrong arity.
        assert_failure(
            &tcp.call_line(&format!("AUTH|{user}|{password}")).await,
            "AUTH",
            "invalid_request",
        );
        // Answers escape too: the usage message contains `|`.
        let line = tcp.call_line("AUTH|only-a-name").await;
        assert!(line.contains("\\|"), "{line}");
        assert_failure(&line, "AUTH", "invalid_request");
        assert!(
            fields(&line)[3].contains("AUTH|username|password"),
            "{line}"
        );

        // A password with a line break, escaped as `\n`, round-trips as well.
        let user2 = username("tcpnl");
        let password2 = "first line\nsecond\rline";
        let id2 = assert_registered(&tcp.call(&["REGISTER", &user2, password2]).await);
        assert_auth_success(&tcp.call(&["AUTH", &user2, password2]).await, id2);
        assert_eq!(
            login_http(&srv, &user2, password2).await.0,
            200,
            "[{}]",
            db.name
        );

        drop(tcp);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_limits_and_malformed_lines() {
    on_every_backend!(|srv, db| {
        // Unknown verbs and wrong arity answer, and the connection stays usable.
        let mut tcp = Tcp::connect(&srv).await;
        assert_error(&tcp.call(&["HELLO", "world"]).await, "unknown_verb");
        assert_error(&tcp.call(&["ping"]).await, "unknown_verb");
        assert_failure(
            &tcp.call(&["AUTH", "someone"]).await,
            "AUTH",
            "invalid_request",
        );
        assert_failure(
            &tcp.call(&["REGISTER", "a", "b", "c"]).await,
            "REGISTER",
            "invalid_request",
        );
        assert_failure(
            &tcp.call(&["LOGIN_START", "x"]).await,
            "LOGIN",
            "invalid_request",
        );
        assert_failure(
            &tcp.call(&["LOGIN_FINISH", "x", "y", "z"]).await,
            "LOGIN",
            "invalid_request",
        );
        assert_failure(
            &tcp.call(&["REGISTER_START", "x"]).await,
            "REGISTER",
            "invalid_request",
        );
        assert_failure(
            &tcp.call(&["REGISTER_FINISH", "x", "y"]).await,
            "REGISTER",
            "invalid_request",
        );
        assert_failure(
            &tcp.call(&["LOGOUT", "a", "b"]).await,
            "LOGOUT",
            "invalid_request",
        );
        for ack in [
            vec!["LOGIN_ACK"],
            vec!["LOGIN_ACK", "id"],
            vec!["LOGIN_ACK", "id", "maybe"],
            vec!["LOGIN_ACK", "id", "success", "extra"],
        ] {
            let line = tcp.call(&ack).await;
            assert!(line.starts_with("LOGIN"), "{ack:?}: {line}");
            assert!(
                line.contains("|FAILURE|invalid_request|"),
                "{ack:?}: {line}"
            );
        }
        // Bad base64url and unknown login ids.
        assert_failure(
            &tcp.call(&["LOGIN_START", "someone", "not base64!"]).await,
            "LOGIN",
            "invalid_message",
        );
        assert_failure(
            &tcp.call(&[
                "LOGIN_FINISH",
                "AAAAAAAAAAAAAAAAAAAAAA",
                &b64::encode([1u8; 64]),
            ])
            .await,
            "LOGIN",
            "unknown_login",
        );
        // Empty lines are skipped; `\r\n` endings are accepted.
        tcp.send_raw(b"\n\r\n").await;
        assert_eq!(tcp.call_line("PING\r").await, "PONG");
        // A line of exactly 8192 bytes is accepted.
        let max = format!("PING|{}", "p".repeat(8192 - 5));
        assert_eq!(max.len(), 8192);
        assert_eq!(tcp.call_line(&max).await, "PONG");

        // One byte more: ERROR|line_too_long, then the connection closes.
        let long = format!("PING|{}", "p".repeat(8192 - 4));
        assert_eq!(long.len(), 8193);
        assert_error(&tcp.call_line(&long).await, "line_too_long");
        tcp.expect_closed().await;

        // Far longer, without any line break.
        let mut tcp = Tcp::connect(&srv).await;
        // The server may close before everything is written.
        let _ = tcp.writer.write_all(&vec![b'A'; 100_000]).await;
        let line = tcp.read_line().await.expect("an ERROR line");
        assert_error(&line, "line_too_long");
        tcp.expect_closed().await;

        // Invalid UTF-8: ERROR|invalid_utf8, then the connection closes.
        let mut tcp = Tcp::connect(&srv).await;
        tcp.send_raw(b"PING\xff\xfe|\xc3\x28\n").await;
        let line = tcp.read_line().await.expect("an ERROR line");
        assert_error(&line, "invalid_utf8");
        tcp.expect_closed().await;

        // Still serving on both listeners.
        let mut tcp = Tcp::connect(&srv).await;
        assert_eq!(tcp.call(&["PING"]).await, "PONG");
        assert_healthy(&srv).await;

        drop(tcp);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_password_verbs_can_be_disabled() {
    for db in common::backends().await {
        let srv = TestServer::start_with(&db, |c| c.tcp_allow_password = Some(false)).await;
        let mut tcp = Tcp::connect(&srv).await;
        let user = username("tcpoff");
        assert_failure(
            &tcp.call(&["REGISTER", &user, PASSWORD]).await,
            "REGISTER",
            "password_verbs_disabled",
        );
        // Nothing was registered.
        let user_id = register_http(&srv, &user, PASSWORD).await;
        assert_failure(
            &tcp.call(&["AUTH", &user, PASSWORD]).await,
            "AUTH",
            "password_verbs_disabled",
        );

        // The OPAQUE verbs work: registration and login.
        let user2 = username("tcpoff");
        let id2 = tcp_opaque_register(&mut tcp, &user2, PASSWORD).await;
        for (name, id) in [(&user, user_id), (&user2, id2)] {
            let TcpLogin::Opened { login_id, payload } =
                tcp_opaque_login(&mut tcp, &srv, name, PASSWORD).await
            else {
                panic!("[{}] OPAQUE login of {name} failed", db.name);
            };
            let issued = check_issued(&payload, name, id);
            assert_eq!(
                tcp.call(&["LOGIN_ACK", &login_id, "success"]).await,
                "LOGIN_ACK|ACCEPTED"
            );
            let (status, body) = me(&srv, issued["access_token"].as_str().unwrap()).await;
            assert_eq!(status, 200, "[{}] {body}", db.name);
        }

        drop(tcp);
        srv.stop().await;
        db.cleanup().await;
    }
}
