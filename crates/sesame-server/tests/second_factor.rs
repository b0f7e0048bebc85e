//! TOTP, backup codes and the second-factor login step, on both backends and every transport.
//! TOTP codes come from the otpauth URI, as an authenticator app reads it: computed with
//! totp-rs, and cross-checked with pyotp when it is installed.

mod common;

use std::process::Command;

use common::api::{err, login, opaque_start, post, post_auth, register, PASSWORD};
use common::on_every_backend;
use common::python::{python_ready, script};
use common::server::TestServer;
use reqwest::{Client, StatusCode};
use serde::Serialize;
use serde_json::{json, Value};
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::messages::{LoginChallenge, LoginConfirmation};
use totp_rs::TOTP;

const SKIP: &str = "*** SKIPPING the pyotp cross-check of TOTP codes: pip install pyotp ***";

/// The code an authenticator app shows for `uri` at the server's current time (+ `offset` s),
/// computed by totp-rs from the URI alone. When pyotp is installed (required with
/// `SESAME_REQUIRE_SERVICES=1`, see [`python_ready`]), an independent implementation must
/// agree.
fn code(srv: &TestServer, uri: &str, offset: i64) -> String {
    let at = u64::try_from(srv.sesame.now() as i64 + offset).unwrap();
    let ours = TOTP::from_url_unchecked(uri)
        .unwrap_or_else(|e| panic!("parse {uri}: {e:?}"))
        .generate(at);
    if python_ready(SKIP, "import pyotp") {
        assert_eq!(pyotp_code(uri, at), ours, "pyotp disagrees at {at}");
    }
    ours
}

/// The code pyotp computes for `uri` at `at`.
fn pyotp_code(uri: &str, at: u64) -> String {
    let out = Command::new("python3")
        .args([&script("totp.py"), uri, &at.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Registers `name`, logs in, enrols TOTP; returns (otpauth URI, access token, backup codes).
async fn with_totp(c: &Client, srv: &TestServer, name: &str) -> (String, String, Vec<String>) {
    let reg = register(c, srv, name).await;
    let codes: Vec<String> = serde_json::from_value(reg["backupCodes"].clone()).unwrap();
    assert_eq!(codes.len(), 10);
    let (s, login) = login(c, srv, name, PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{login}");
    let token = login["access_token"].as_str().unwrap().to_owned();
    let (s, qr) = post_auth(c, srv, "/api/generate-qr", &token, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{qr}");
    let uri = qr["otpauthUrl"].as_str().unwrap().to_owned();
    assert!(uri.starts_with("otpauth://totp/Sesame:"), "{uri}");
    assert!(qr["qrCodeUrl"]
        .as_str()
        .unwrap()
        .starts_with("data:image/png;base64,"));
    assert_eq!(
        qr["secret"].as_str().unwrap().len(),
        32,
        "160-bit base32 secret"
    );
    // A wrong code does not enable it; the authenticator's code does.
    let (s, b) = post_auth(
        c,
        srv,
        "/api/enable-authenticator",
        &token,
        json!({"totpCode": "000000"}),
    )
    .await;
    assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "invalid_code"));
    let (s, b) = post_auth(
        c,
        srv,
        "/api/enable-authenticator",
        &token,
        json!({"totpCode": code(srv, &uri, 0)}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(b["message"], "Authenticator enabled successfully.");
    srv.clock.advance(30);
    (uri, token, codes)
}

/// `POST /api/login/second-factor` with a login ticket (a string or a JSON value) and a code.
async fn second_factor(
    c: &Client,
    srv: &TestServer,
    ticket: impl Serialize,
    otp: &str,
) -> (StatusCode, Value) {
    let body = json!({"mfa_token": ticket, "code": otp});
    post(c, srv, "/api/login/second-factor", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn totp_login_with_replay_protection_and_backup_codes() {
    on_every_backend!(|c, srv, db| {
        let (uri, _, backup) = with_totp(&c, &srv, "tina").await;

        // The password alone no longer makes a session.
        let (s, step) = login(&c, &srv, "tina", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{}: {step}", db.name);
        assert_eq!(step["second_factor_required"], true);
        assert!(step.get("access_token").is_none());
        assert_eq!(step["methods"], json!(["totp", "backup_code"]));
        let ticket = step["mfa_token"].as_str().unwrap();
        let now_code = code(&srv, &uri, 0);
        let (s, session) = second_factor(&c, &srv, &ticket, &now_code).await;
        assert_eq!(s, StatusCode::OK, "{session}");
        assert!(session["access_token"].is_string());
        let (s, _) = second_factor(&c, &srv, &ticket, &now_code).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "a ticket is single-use");

        // The same code (same time step) cannot be used twice, even on a new ticket.
        let (_, step) = login(&c, &srv, "tina", PASSWORD).await;
        let ticket = step["mfa_token"].as_str().unwrap().to_owned();
        let (s, b) = second_factor(&c, &srv, &ticket, &now_code).await;
        assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "invalid_code"));
        // A backup code works once, and the ticket survives a wrong code.
        let (s, b) = second_factor(&c, &srv, &ticket, &backup[0].to_uppercase()).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (_, step) = login(&c, &srv, "tina", PASSWORD).await;
        let (s, b) = second_factor(&c, &srv, &step["mfa_token"], &backup[0]).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "invalid_code"),
            "a backup code is single-use"
        );
        // The next time step's code works (±1 step accepted: here the next one).
        srv.clock.advance(30);
        let (s, b) = second_factor(&c, &srv, &step["mfa_token"], &code(&srv, &uri, 0)).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        // An old code (two steps back) is refused.
        let (_, step) = login(&c, &srv, "tina", PASSWORD).await;
        let (s, _) = second_factor(&c, &srv, &step["mfa_token"], &code(&srv, &uri, -60)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_codes_are_throttled_and_burn_the_ticket() {
    let db = common::TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let (uri, _, _) = with_totp(&c, &srv, "ursula").await;
    let (_, step) = login(&c, &srv, "ursula", PASSWORD).await;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let (s, b) = second_factor(&c, &srv, &step["mfa_token"], "123456").await;
        statuses.push((s, err(&b).to_owned()));
    }
    // Five tries per ticket, then it is burnt.
    let want: Vec<(StatusCode, String)> =
        std::iter::repeat_n((StatusCode::UNAUTHORIZED, "invalid_code".to_owned()), 5)
            .chain([(StatusCode::UNAUTHORIZED, "mfa_expired".to_owned())])
            .collect();
    assert_eq!(statuses, want);
    // The wrong codes counted toward the account's attempts like wrong passwords: the login
    // start plus five codes used the free attempts and the first delay, so logging in again
    // right away is throttled, even with the right password.
    let resp = c
        .post(srv.url("/api/login"))
        .json(&json!({"username": "ursula", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    // After the delay the right password and the right code get in.
    srv.clock.advance(2);
    let (s, step) = login(&c, &srv, "ursula", PASSWORD).await;
    assert_eq!(s, StatusCode::OK, "{step}");
    let (s, b) = second_factor(&c, &srv, &step["mfa_token"], &code(&srv, &uri, 0)).await;
    assert_eq!(s, StatusCode::OK, "{b}");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opaque_login_over_rest_ws_and_tcp_asks_for_the_second_factor() {
    use futures_util::SinkExt as _;
    use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _};
    use tokio_tungstenite::tungstenite::Message;

    let db = common::TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let c = Client::new();
    let (uri, _, _) = with_totp(&c, &srv, "victor").await;
    let mut rng = rand_chacha::ChaCha20Rng::from_entropy();
    use rand_chacha::rand_core::SeedableRng as _;

    // REST: the sealed confirmation carries the ticket, not a session.
    let (_, done) = opaque_start(&c, &srv, "victor", PASSWORD).await;
    let (_, conf) = post(&c, &srv, "/api/login/finish", &done.message).await;
    let conf: LoginConfirmation = serde_json::from_value(conf).unwrap();
    let payload: Value = serde_json::from_slice(&done.confirmation.open(&conf).unwrap()).unwrap();
    assert_eq!(payload["second_factor_required"], true);
    let (s, session) = second_factor(&c, &srv, &payload["mfa_token"], &code(&srv, &uri, 0)).await;
    assert_eq!(s, StatusCode::OK, "{session}");
    let claims = session["access_token"]
        .as_str()
        .unwrap()
        .split('.')
        .nth(1)
        .unwrap()
        .to_owned();
    let claims: Value =
        serde_json::from_slice(&sesame_proto::b64::decode(&claims).unwrap()).unwrap();
    assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
    srv.clock.advance(30);

    // WebSocket: result `second_factor_required`, a wrong code is an error frame, then the
    // right one gives the session.
    let ws_url = srv.base.replace("http://", "ws://") + "/auth/login";
    let (mut ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let (state, start) = client::start_login(&mut rng, "victor", PASSWORD).unwrap();
    let mut frame = serde_json::to_value(&start).unwrap();
    frame["type"] = json!("login_start");
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    let mut ch = recv_json(&mut ws).await;
    ch.as_object_mut().unwrap().remove("type");
    let ch: LoginChallenge = serde_json::from_value(ch).unwrap();
    let done = state
        .finish(&mut rng, &ch, &ClientPolicy::default())
        .unwrap();
    let mut frame = serde_json::to_value(&done.message).unwrap();
    frame["type"] = json!("login_finish");
    ws.send(Message::Text(frame.to_string().into()))
        .await
        .unwrap();
    let conf = recv_json(&mut ws).await;
    assert_eq!(conf["type"], "login_confirmation");
    let conf = LoginConfirmation {
        login_id: conf["login_id"].as_str().unwrap().into(),
        sealed: serde_json::from_value(conf["sealed"].clone()).unwrap(),
    };
    let payload: Value = serde_json::from_slice(&done.confirmation.open(&conf).unwrap()).unwrap();
    ws.send(Message::Text(
        json!({"type": "login_ack", "login_id": conf.login_id, "status": "success"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(
        recv_json(&mut ws).await,
        json!({"type": "login_result", "status": "second_factor_required"})
    );
    ws.send(Message::Text(
        json!({"type": "second_factor", "mfa_token": payload["mfa_token"], "code": "000000"})
            .to_string()
            .into(),
    ))
    .await
    .unwrap();
    assert_eq!(recv_json(&mut ws).await["error"]["code"], "invalid_code");
    ws.send(Message::Text(json!({"type": "second_factor", "mfa_token": payload["mfa_token"], "code": code(&srv, &uri, 0)}).to_string().into())).await.unwrap();
    let session = recv_json(&mut ws).await;
    assert_eq!(session["type"], "session");
    assert!(session["session_token"]
        .as_str()
        .unwrap()
        .starts_with("sst_"));
    srv.clock.advance(30);

    // TCP: AUTH answers SECOND_FACTOR, then the SECOND_FACTOR verb gives the session.
    let stream = tokio::net::TcpStream::connect(srv.tcp).await.unwrap();
    let (r, mut w) = stream.into_split();
    let mut lines = tokio::io::BufReader::new(r).lines();
    w.write_all(format!("AUTH|victor|{PASSWORD}\n").as_bytes())
        .await
        .unwrap();
    let line = lines.next_line().await.unwrap().unwrap();
    let fields: Vec<&str> = line.split('|').collect();
    assert_eq!(&fields[..2], ["AUTH", "SECOND_FACTOR"], "{line}");
    assert_eq!(fields[3], "totp,backup_code");
    w.write_all(format!("SECOND_FACTOR|{}|{}\n", fields[2], code(&srv, &uri, 0)).as_bytes())
        .await
        .unwrap();
    let line = lines.next_line().await.unwrap().unwrap();
    assert!(line.starts_with("SECOND_FACTOR|SUCCESS|sst_"), "{line}");
    w.write_all(b"LOGOUT\n").await.unwrap();
    assert_eq!(lines.next_line().await.unwrap().unwrap(), "LOGOUT|SUCCESS");
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_totp_needs_a_fresh_login_and_a_code() {
    on_every_backend!(|c, srv, db| {
        let (uri, token, _) = with_totp(&c, &srv, "wendy").await;
        srv.clock.advance(301);
        let (s, b) = post_auth(
            &c,
            &srv,
            "/api/2fa/totp/disable",
            &token,
            json!({"code": code(&srv, &uri, 0)}),
        )
        .await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::FORBIDDEN, "reauthentication_required"),
            "{}",
            db.name
        );
        let (s, b) = post_auth(
            &c,
            &srv,
            "/api/reauth",
            &token,
            json!({"password": "wrong password!"}),
        )
        .await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "authentication_failed")
        );
        let (s, b) = post_auth(
            &c,
            &srv,
            "/api/reauth",
            &token,
            json!({"password": PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = post_auth(
            &c,
            &srv,
            "/api/2fa/totp/disable",
            &token,
            json!({"code": "111111"}),
        )
        .await;
        assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "invalid_code"));
        let (s, b) = post_auth(
            &c,
            &srv,
            "/api/2fa/totp/disable",
            &token,
            json!({"code": code(&srv, &uri, 0)}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (s, b) = login(&c, &srv, "wendy", PASSWORD).await;
        assert_eq!(s, StatusCode::OK);
        assert!(
            b["access_token"].is_string(),
            "no second factor any more: {b}"
        );
        let audit = srv
            .sesame
            .admin_audit(Some("wendy"), None, 100)
            .await
            .unwrap();
        for event in ["protected.totp_enabled", "protected.totp_disabled"] {
            assert!(audit.iter().any(|e| e.event == event), "missing {event}");
        }
    });
}

/// The next text frame as JSON.
async fn recv_json<S>(ws: &mut tokio_tungstenite::WebSocketStream<S>) -> Value
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures_util::StreamExt as _;
    loop {
        if let tokio_tungstenite::tungstenite::Message::Text(t) = ws.next().await.unwrap().unwrap()
        {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}
