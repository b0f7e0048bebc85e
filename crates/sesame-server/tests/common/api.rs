//! HTTP helpers shared by the integration tests: JSON requests to a [`TestServer`] that
//! return an [`Answer`] (the status and the body, `Null` when it is not JSON), the error
//! code of an answer, and the usual account steps (register, log in, refresh).
//!
//! Every helper takes the [`Client`] to send with, so a test keeps one connection pool.

use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use reqwest::{Client, Method, RequestBuilder, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use sesame_proto::client::{self, ClientLoginFinished, ClientPolicy, ExpectLoginChallenge};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation};
use sesame_server::store::{AuditQuery, AuditRecord};
use uuid::Uuid;

use super::server::TestServer;

/// The password the tests register their users with.
pub const PASSWORD: &str = "correct horse battery staple";

/// A fresh random generator for the OPAQUE client.
pub fn rng() -> ChaCha20Rng {
    ChaCha20Rng::from_entropy()
}

/// A fresh username (`prefix` and 12 hex digits), unique per call.
pub fn username(prefix: &str) -> String {
    format!("{prefix}{}", &Uuid::new_v4().simple().to_string()[..12])
}

/// What the helpers return: the status and the body as JSON (`Null` if it is not JSON).
pub type Answer = (StatusCode, Value);

/// Sends `req` and reads the [`Answer`].
pub async fn send(req: RequestBuilder) -> Answer {
    let resp = req.send().await.unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// `method path`, with a bearer token and a JSON body if given.
pub async fn call(
    c: &Client,
    srv: &TestServer,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut req = c.request(method, srv.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    send(req).await
}

/// `GET path` without a token.
pub async fn get(c: &Client, srv: &TestServer, path: &str) -> Answer {
    send(c.get(srv.url(path))).await
}

/// `GET path` with a bearer token.
pub async fn get_auth(c: &Client, srv: &TestServer, path: &str, token: &str) -> Answer {
    send(c.get(srv.url(path)).bearer_auth(token)).await
}

/// `DELETE path` with a bearer token.
pub async fn delete_auth(c: &Client, srv: &TestServer, path: &str, token: &str) -> Answer {
    send(c.delete(srv.url(path)).bearer_auth(token)).await
}

/// `POST path` with a JSON body, without a token.
pub async fn post(c: &Client, srv: &TestServer, path: &str, body: impl Serialize) -> Answer {
    send(c.post(srv.url(path)).json(&body)).await
}

/// Generates `name(c, srv, path, token, body)`: `method path` with a bearer token and a JSON
/// body.
macro_rules! with_token_and_body {
    ($($(#[$doc:meta])* $name:ident => $method:ident;)*) => {$(
        $(#[$doc])*
        pub async fn $name(
            c: &Client,
            srv: &TestServer,
            path: &str,
            token: &str,
            body: impl Serialize,
        ) -> Answer {
            send(c.$method(srv.url(path)).bearer_auth(token).json(&body)).await
        }
    )*};
}

with_token_and_body! {
    /// `POST path` with a bearer token and a JSON body.
    post_auth => post;
    /// `PUT path` with a bearer token and a JSON body.
    put_auth => put;
}

/// The error code of an error answer (`{"error": {"code": …}}`).
pub fn err(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("<no error code>")
}

/// Server-assisted registration (`POST /api/register`) with [`PASSWORD`]; checks it is
/// created and returns the answer.
pub async fn register(c: &Client, srv: &TestServer, name: &str) -> Value {
    let body = json!({"username": name, "password": PASSWORD});
    let (status, body) = post(c, srv, "/api/register", body).await;
    assert_eq!(status, StatusCode::CREATED, "register {name}: {body}");
    body
}

/// Password login (`POST /api/login`): the answer, whatever it is.
pub async fn login(c: &Client, srv: &TestServer, name: &str, password: &str) -> Answer {
    let body = json!({"username": name, "password": password});
    post(c, srv, "/api/login", body).await
}

/// Password login that must succeed: the access and the session token.
pub async fn tokens(c: &Client, srv: &TestServer, name: &str, password: &str) -> (String, String) {
    let (status, body) = login(c, srv, name, password).await;
    assert_eq!(status, StatusCode::OK, "login {name}: {body}");
    (
        body["access_token"].as_str().unwrap().into(),
        body["session_token"].as_str().unwrap().into(),
    )
}

/// One login: its tokens and the id of its session.
pub struct Login {
    pub access: String,
    pub session: String,
    pub session_id: Uuid,
}

/// Password login (with [`PASSWORD`]) that must succeed, and the new session's id from
/// `GET /api/sessions`.
pub async fn login_session(c: &Client, srv: &TestServer, name: &str) -> Login {
    let (access, session) = tokens(c, srv, name, PASSWORD).await;
    let (status, v) = get_auth(c, srv, "/api/sessions", &access).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let current = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .expect("the current session");
    Login {
        access,
        session,
        session_id: current["id"].as_str().unwrap().parse().unwrap(),
    }
}

/// `POST /api/session/refresh` with this session token (a string or a JSON value).
pub async fn refresh(c: &Client, srv: &TestServer, session_token: impl Serialize) -> Answer {
    let body = json!({"session_token": session_token});
    post(c, srv, "/api/session/refresh", body).await
}

/// Starts an OPAQUE login over REST: the client's state and the server's answer to
/// `/api/login/start`.
pub async fn login_start(
    c: &Client,
    srv: &TestServer,
    name: &str,
    password: &str,
) -> (ExpectLoginChallenge, StatusCode, Value) {
    let (state, start) = client::start_login(&mut rng(), name, password).unwrap();
    let (status, body) = post(c, srv, "/api/login/start", &start).await;
    (state, status, body)
}

/// The first half of an OPAQUE login over REST: [`login_start`], then the client's answer
/// to the challenge, which it must accept. Returns the challenge and that answer (its
/// `message` goes to `/api/login/finish`).
pub async fn opaque_start(
    c: &Client,
    srv: &TestServer,
    name: &str,
    password: &str,
) -> (LoginChallenge, ClientLoginFinished) {
    let (state, status, body) = login_start(c, srv, name, password).await;
    assert_eq!(status, StatusCode::OK, "login start: {body}");
    let challenge: LoginChallenge = serde_json::from_value(body).expect("challenge");
    let done = state
        .finish(&mut rng(), &challenge, &ClientPolicy::default())
        .expect("client finish");
    (challenge, done)
}

/// OPAQUE login over REST (`/api/login/start`, `/api/login/finish`) that must succeed:
/// the opened confirmation's payload.
pub async fn opaque_login(c: &Client, srv: &TestServer, name: &str, password: &str) -> Value {
    let (_, done) = opaque_start(c, srv, name, password).await;
    let (status, body) = post(c, srv, "/api/login/finish", &done.message).await;
    assert_eq!(status, StatusCode::OK, "login finish: {body}");
    let confirmation: LoginConfirmation = serde_json::from_value(body).expect("confirmation");
    let payload = done.confirmation.open(&confirmation).expect("opens");
    serde_json::from_slice(&payload).expect("payload JSON")
}

/// The audit events about `user`, newest first.
pub async fn audit_of(srv: &TestServer, user: Uuid) -> Vec<AuditRecord> {
    srv.sesame
        .store()
        .list_audit(&AuditQuery {
            user_id: Some(user),
            since: None,
            limit: 1000,
            ..AuditQuery::default()
        })
        .await
        .expect("list_audit")
}
