//! An ADVERSARIAL in-process fake of the Sesame server API, built on `sesame_proto::server`,
//! for `tests/adversarial.rs` only: behaviour the real server never shows. It speaks the
//! documented contract for registration and the OPAQUE login (REST and the WebSocket) and has
//! knobs to misbehave: swap its key (rotation or an impostor), tamper with the confirmation,
//! ask for weak key stretching. It also counts the KE3s it receives and records every
//! `login_ack`. Every other route is tested against the real server (`tests/real`).
// Handlers return `Result<_, Response>` for brevity; the size of `Response` is no concern here.
#![allow(missing_docs, clippy::result_large_err)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rand_core::OsRng;
use serde_json::{json, Value};
use sesame_client::profile::unix_now;
use sesame_client::SessionIssued;
use sesame_proto::messages::{
    AckStatus, LoginAck, LoginChallenge, LoginConfirmation, LoginFinish, LoginStart,
    RegistrationFinish, RegistrationStart,
};
use sesame_proto::policy::Username;
use sesame_proto::server::{self, ExpectLoginFinish, ServerKeys};
use sesame_proto::{CredentialRecord, KsfParams, KsfPolicy, Timestamp};
use uuid::Uuid;

pub const PASSWORD: &str = "correct horse battery staple";

pub struct User {
    pub id: Uuid,
    pub username: String,
    pub record: CredentialRecord,
}

/// A session the fake issued; `revoked` once the client acknowledged it `failed`.
pub struct Sess {
    pub id: Uuid,
    pub revoked: bool,
}

/// The fake's state; every field is shared with the test through `Arc<Mock>`.
pub struct Mock {
    pub keys: Mutex<ServerKeys>,
    pub ksf: Mutex<KsfParams>,
    pub users: Mutex<HashMap<String, User>>,
    logins: Mutex<HashMap<String, ExpectLoginFinish>>,
    pub sessions: Mutex<Vec<Sess>>,
    /// Flip a bit of every sealed confirmation.
    pub tamper_confirmation: AtomicBool,
    /// How many KE3s the server received.
    pub finishes: AtomicUsize,
    /// Every `login_ack` received over the WebSocket.
    pub acks: Mutex<Vec<LoginAck>>,
}

/// Starts the fake on an ephemeral loopback port; returns its base URL and its state.
pub async fn start() -> (String, Arc<Mock>) {
    let mock = Arc::new(Mock {
        keys: Mutex::new(ServerKeys::generate(&mut OsRng)),
        ksf: Mutex::new(KsfParams::DEFAULT),
        users: Mutex::new(HashMap::new()),
        logins: Mutex::new(HashMap::new()),
        sessions: Mutex::new(Vec::new()),
        tamper_confirmation: AtomicBool::new(false),
        finishes: AtomicUsize::new(0),
        acks: Mutex::new(Vec::new()),
    });
    let app = Router::new()
        .route("/api/register/start", post(register_start))
        .route("/api/register/finish", post(register_finish))
        .route("/api/login/start", post(login_start))
        .route("/api/login/finish", post(login_finish))
        .route("/auth/login", get(ws_login))
        .with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), mock)
}

type S = State<Arc<Mock>>;

fn now() -> Timestamp {
    Timestamp(unix_now())
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn proto_error(e: sesame_proto::Error) -> Response {
    let status = match e {
        sesame_proto::Error::AuthenticationFailed => StatusCode::UNAUTHORIZED,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e.code(), &e.to_string())
}

fn username(input: &str) -> Result<Username, Response> {
    Username::parse(input).map_err(|e| error(StatusCode::BAD_REQUEST, e.code(), &e.to_string()))
}

fn registered(user: &User) -> Response {
    (
        StatusCode::CREATED,
        Json(json!({"user_id": user.id, "username": user.username,
                    "message": "User registered successfully.", "later_field": true})),
    )
        .into_response()
}

fn add_user(m: &Mock, name: &Username, record: CredentialRecord) -> Result<Response, Response> {
    let mut users = m.users.lock().unwrap();
    if users.contains_key(name.as_str()) {
        return Err(error(
            StatusCode::CONFLICT,
            "username_taken",
            "That username is taken.",
        ));
    }
    let user = User {
        id: Uuid::new_v4(),
        username: name.as_str().to_owned(),
        record,
    };
    let resp = registered(&user);
    users.insert(user.username.clone(), user);
    Ok(resp)
}

async fn register_start(State(m): S, Json(msg): Json<RegistrationStart>) -> Response {
    let name = match username(&msg.username) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if m.users.lock().unwrap().contains_key(name.as_str()) {
        return error(
            StatusCode::CONFLICT,
            "username_taken",
            "That username is taken.",
        );
    }
    let keys = m.keys.lock().unwrap().clone();
    let ksf = *m.ksf.lock().unwrap();
    match server::registration_challenge(&keys, &name, &msg, ksf) {
        Ok(ch) => Json(ch).into_response(),
        Err(e) => proto_error(e),
    }
}

async fn register_finish(State(m): S, Json(msg): Json<RegistrationFinish>) -> Response {
    let name = match username(&msg.username) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let record = match server::registration_record(&msg, &KsfPolicy::DEFAULT) {
        Ok(r) => r,
        Err(e) => return proto_error(e),
    };
    add_user(&m, &name, record).unwrap_or_else(|r| r)
}

/// Login step 2, shared by REST and the WebSocket.
fn challenge(m: &Mock, msg: &LoginStart) -> Result<LoginChallenge, Response> {
    let name = username(&msg.username)?;
    let record = m
        .users
        .lock()
        .unwrap()
        .get(name.as_str())
        .map(|u| u.record.clone());
    let keys = m.keys.lock().unwrap().clone();
    let (state, ch) = server::start_login(
        &mut OsRng,
        &keys,
        &name,
        record.as_ref(),
        msg,
        now(),
        server::DEFAULT_LOGIN_TTL_SECS,
    )
    .map_err(proto_error)?;
    m.logins.lock().unwrap().insert(ch.login_id.clone(), state);
    Ok(ch)
}

fn issue(m: &Mock, user_id: Uuid, username: &str) -> SessionIssued {
    let issued = SessionIssued {
        user_id,
        username: username.to_owned(),
        session_id: Uuid::new_v4(),
        session_token: format!("st-{}", Uuid::new_v4()),
        access_token: format!("at-{}", Uuid::new_v4()),
        token_type: "Bearer".into(),
        expires_in: 900,
        session_expires_at: i64::try_from(unix_now()).unwrap() + 86_400,
        session_idle_timeout: 3_600,
    };
    m.sessions.lock().unwrap().push(Sess {
        id: issued.session_id,
        revoked: false,
    });
    issued
}

/// Login step 4, shared by REST and the WebSocket.
fn confirm(m: &Mock, msg: &LoginFinish) -> Result<(LoginConfirmation, Uuid), Response> {
    m.finishes.fetch_add(1, Ordering::SeqCst);
    let state = m
        .logins
        .lock()
        .unwrap()
        .remove(&msg.login_id)
        .ok_or_else(|| error(StatusCode::BAD_REQUEST, "unknown_login", "Unknown login."))?;
    let (verified, sealer) = state.finish(msg, now()).map_err(proto_error)?;
    let (user_id, name) = {
        let users = m.users.lock().unwrap();
        let user = &users[verified.username().as_str()];
        (user.id, user.username.clone())
    };
    let issued = issue(m, user_id, &name);
    let payload = serde_json::to_vec(&issued).unwrap();
    let mut confirmation = sealer.seal(&mut OsRng, &payload).unwrap();
    if m.tamper_confirmation.load(Ordering::SeqCst) {
        let last = confirmation.sealed.0.len() - 1;
        confirmation.sealed.0[last] ^= 1;
    }
    Ok((confirmation, issued.session_id))
}

async fn login_start(State(m): S, Json(msg): Json<LoginStart>) -> Response {
    match challenge(&m, &msg) {
        Ok(ch) => Json(ch).into_response(),
        Err(r) => r,
    }
}

async fn login_finish(State(m): S, Json(msg): Json<LoginFinish>) -> Response {
    match confirm(&m, &msg) {
        Ok((c, _)) => Json(c).into_response(),
        Err(r) => r,
    }
}

async fn ws_login(State(m): S, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| ws_session(m, socket))
}

async fn ws_recv(socket: &mut WebSocket, kind: &str) -> Option<Value> {
    loop {
        match socket.recv().await? {
            Ok(Message::Text(text)) => {
                let mut v: Value = serde_json::from_str(text.as_str()).ok()?;
                let obj = v.as_object_mut()?;
                if obj.remove("type")? != kind {
                    return None;
                }
                return Some(v);
            }
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            _ => return None,
        }
    }
}

async fn ws_send(socket: &mut WebSocket, kind: &str, v: impl serde::Serialize) {
    let mut v = serde_json::to_value(v).unwrap();
    v["type"] = json!(kind);
    let _ = socket.send(Message::Text(v.to_string().into())).await;
}

async fn ws_error(socket: &mut WebSocket, code: &str, message: &str) {
    ws_send(
        socket,
        "error",
        json!({"error": {"code": code, "message": message}}),
    )
    .await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn ws_session(m: Arc<Mock>, mut socket: WebSocket) {
    let Some(start) = ws_recv(&mut socket, "login_start").await else {
        return ws_error(&mut socket, "invalid_message", "expected login_start").await;
    };
    let Ok(start) = serde_json::from_value::<LoginStart>(start) else {
        return ws_error(&mut socket, "invalid_message", "bad login_start").await;
    };
    let ch = match challenge(&m, &start) {
        Ok(ch) => ch,
        Err(_) => return ws_error(&mut socket, "invalid_message", "bad login_start").await,
    };
    ws_send(&mut socket, "login_challenge", &ch).await;
    let Some(finish) = ws_recv(&mut socket, "login_finish").await else {
        return;
    };
    let Ok(finish) = serde_json::from_value::<LoginFinish>(finish) else {
        return ws_error(&mut socket, "invalid_message", "bad login_finish").await;
    };
    let (confirmation, session_id) = match confirm(&m, &finish) {
        Ok(c) => c,
        Err(_) => {
            return ws_error(
                &mut socket,
                "authentication_failed",
                "Invalid username or password.",
            )
            .await
        }
    };
    ws_send(&mut socket, "login_confirmation", &confirmation).await;
    let Some(ack) = ws_recv(&mut socket, "login_ack").await else {
        return;
    };
    let Ok(ack) = serde_json::from_value::<LoginAck>(ack) else {
        return ws_error(&mut socket, "invalid_message", "bad login_ack").await;
    };
    let status = match ack.status {
        AckStatus::Success => "accepted",
        AckStatus::Failed => {
            let mut sessions = m.sessions.lock().unwrap();
            if let Some(s) = sessions.iter_mut().find(|s| s.id == session_id) {
                s.revoked = true;
            }
            "revoked"
        }
    };
    m.acks.lock().unwrap().push(ack);
    ws_send(&mut socket, "login_result", json!({"status": status})).await;
    let _ = socket.send(Message::Close(None)).await;
}
