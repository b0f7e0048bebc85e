//! Device keys as a login factor, through a real server on SQLite and PostgreSQL: register a
//! device, require it, then OPAQUE logins with a valid, a missing and a bad device signature
//! (REST and TCP), password logins refused, and turning the requirement off.

mod common;

use ed25519_dalek::SigningKey;
use rand_chacha::rand_core::SeedableRng as _;
use rand_chacha::ChaCha20Rng;
use rand_core::OsRng;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sesame_proto::b64::{self, Bytes};
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::device::sign_device_login;
use sesame_proto::messages::{LoginChallenge, LoginConfirmation, LoginFinish};
use sesame_proto::KsfParams;
use sesame_server::store::AuditQuery;
use sesame_server::tcp::{join, split_fields};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use common::api::{self, call, err, login, opaque_start, post, tokens, PASSWORD};
use common::backends;
use common::server::TestServer;

/// Registers `name` and returns an access token (password login).
async fn register(c: &Client, srv: &TestServer, name: &str) -> String {
    api::register(c, srv, name).await;
    tokens(c, srv, name, PASSWORD).await.0
}

/// How the client signs (or fails to sign) the device challenge.
enum Device<'a> {
    None,
    Sign(&'a str, &'a SigningKey),
    /// Signs something other than this login's challenge.
    WrongChallenge(&'a str, &'a SigningKey),
}

/// An OPAQUE login over REST; returns the finish answer and the opened payload on success.
async fn opaque_login(
    c: &Client,
    srv: &TestServer,
    name: &str,
    device: Device<'_>,
) -> (StatusCode, Value) {
    let (challenge, done) = opaque_start(c, srv, name, PASSWORD).await;
    let mut finish: LoginFinish = done.message.clone();
    match device {
        Device::None => {}
        Device::Sign(id, key) => {
            let sig = sign_device_login(key, &challenge.login_id, challenge.ke2.as_slice());
            finish.device_key_id = Some(id.to_owned());
            finish.device_signature = Some(Bytes(sig.to_vec()));
        }
        Device::WrongChallenge(id, key) => {
            let sig = sign_device_login(key, &challenge.login_id, b"another challenge");
            finish.device_key_id = Some(id.to_owned());
            finish.device_signature = Some(Bytes(sig.to_vec()));
        }
    }
    let (status, body) = post(c, srv, "/api/login/finish", &finish).await;
    if status != StatusCode::OK {
        return (status, body);
    }
    let confirmation: LoginConfirmation = serde_json::from_value(body).unwrap();
    let payload = done.confirmation.open(&confirmation).unwrap();
    (status, serde_json::from_slice(&payload).unwrap())
}

/// One request line and its answer over a TCP connection.
async fn tcp_call(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    fields: &[&str],
) -> Vec<String> {
    w.write_all(format!("{}\n", join(fields)).as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    r.read_line(&mut answer).await.unwrap();
    split_fields(answer.trim_end())
}

/// An OPAQUE login over TCP, signed by `key` (`LOGIN_FINISH|id|ke3|device_key_id|signature`)
/// or not; returns the answer to `LOGIN_FINISH`.
async fn tcp_login(srv: &TestServer, name: &str, key: Option<(&str, &SigningKey)>) -> Vec<String> {
    let (r, mut w) = TcpStream::connect(srv.tcp).await.unwrap().into_split();
    let mut r = BufReader::new(r);
    let mut rng = ChaCha20Rng::from_entropy();
    let (state, start) = client::start_login(&mut rng, name, PASSWORD).unwrap();
    let ke1 = b64::encode(&start.ke1.0);
    let ch = tcp_call(&mut r, &mut w, &["LOGIN_START", name, &ke1]).await;
    assert_eq!(ch[0], "LOGIN_CHALLENGE", "{ch:?}");
    let n = |i: usize| ch[i].parse::<u32>().unwrap();
    let challenge = LoginChallenge {
        login_id: ch[1].clone(),
        ke2: Bytes(b64::decode(&ch[2]).unwrap()),
        key_stretching: KsfParams {
            memory: n(3),
            iterations: n(4),
            parallelism: n(5),
        }
        .into(),
        server_public_key: Bytes(b64::decode(&ch[6]).unwrap()),
        expires_in: ch[7].parse().unwrap(),
    };
    let done = state
        .finish(&mut rng, &challenge, &ClientPolicy::default())
        .unwrap();
    let ke3 = b64::encode(&done.message.ke3.0);
    let mut fields = vec!["LOGIN_FINISH", challenge.login_id.as_str(), ke3.as_str()];
    let sig;
    if let Some((id, key)) = key {
        sig = b64::encode(sign_device_login(
            key,
            &challenge.login_id,
            challenge.ke2.as_slice(),
        ));
        fields.extend([id, sig.as_str()]);
    }
    tcp_call(&mut r, &mut w, &fields).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_key_as_a_login_factor() {
    for db in backends().await {
        // Many failed attempts on one account: keep the throttle out of the way.
        let srv = TestServer::start_with(&db, |c| c.throttle_free_attempts = 1000).await;
        let c = Client::new();
        let token = register(&c, &srv, "alice").await;
        let (put, post, get, del) = (
            reqwest::Method::PUT,
            reqwest::Method::POST,
            reqwest::Method::GET,
            reqwest::Method::DELETE,
        );
        let tok = Some(token.as_str());

        // Off by default; cannot be turned on without a device.
        let (status, v) = call(&c, &srv, get.clone(), "/api/devices", tok, None).await;
        assert_eq!(status, 200, "{}: {v}", db.name);
        assert_eq!(v, json!({ "devices": [], "required": false }));
        let on = Some(json!({ "required": true }));
        let (status, v) = call(&c, &srv, put.clone(), "/api/2fa/device", tok, on.clone()).await;
        assert_eq!((status.as_u16(), err(&v)), (400, "no_device_key"));
        // Unauthenticated: 401.
        let (status, _) = call(&c, &srv, get.clone(), "/api/devices", None, None).await;
        assert_eq!(status, 401);

        // Bad keys and names are refused.
        let low_order = b64::encode({
            let mut k = [0u8; 32];
            k[0] = 1;
            k
        });
        for (body, want) in [
            (
                json!({ "name": "x", "public_key": low_order }),
                "invalid_device_key",
            ),
            (
                json!({ "name": "x", "public_key": "AAAA" }),
                "invalid_device_key",
            ),
            (
                json!({ "name": "", "public_key": low_order }),
                "invalid_device_name",
            ),
        ] {
            let (status, v) = call(&c, &srv, post.clone(), "/api/devices", tok, Some(body)).await;
            assert_eq!((status.as_u16(), err(&v)), (400, want));
        }

        // Register a device and require it.
        let key = SigningKey::generate(&mut OsRng);
        let public_key = b64::encode(key.verifying_key().to_bytes());
        let body = json!({ "name": "laptop", "public_key": public_key });
        let (status, v) = call(&c, &srv, post.clone(), "/api/devices", tok, Some(body)).await;
        assert_eq!(status, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_owned();
        let (_, v) = call(&c, &srv, get.clone(), "/api/devices", tok, None).await;
        assert_eq!(v["devices"][0]["id"], id);
        assert_eq!(v["devices"][0]["name"], "laptop");
        assert_eq!(v["devices"][0]["public_key"], public_key);
        let (status, _) = call(&c, &srv, put.clone(), "/api/2fa/device", tok, on.clone()).await;
        assert_eq!(status, 204);
        let (_, v) = call(&c, &srv, get.clone(), "/api/devices", tok, None).await;
        assert_eq!(v["required"], true);

        // A valid device signature over this login's challenge: in.
        let (status, v) = opaque_login(&c, &srv, "alice", Device::Sign(&id, &key)).await;
        assert_eq!(status, 200, "{}: {v}", db.name);
        assert_eq!(v["username"], "alice");
        assert!(v["access_token"].is_string(), "{v}");

        // Missing, over the wrong challenge, by another key, naming an unknown device:
        // all exactly like a wrong password.
        let other = SigningKey::generate(&mut OsRng);
        for device in [
            Device::None,
            Device::WrongChallenge(&id, &key),
            Device::Sign(&id, &other),
            Device::Sign("no-such-device", &key),
        ] {
            let (status, v) = opaque_login(&c, &srv, "alice", device).await;
            assert_eq!(
                (status.as_u16(), err(&v)),
                (401, "authentication_failed"),
                "{v}"
            );
        }
        let failures = srv
            .sesame
            .store()
            .list_audit(&AuditQuery {
                user_id: None,
                since: None,
                limit: 100,
            })
            .await
            .unwrap()
            .into_iter()
            .filter(|e| e.event == "login.failure" && e.reason.as_deref() == Some("device_key"))
            .count();
        assert_eq!(failures, 4);

        // A password login cannot carry a device signature: refused the same way.
        let (status, v) = login(&c, &srv, "alice", PASSWORD).await;
        assert_eq!((status.as_u16(), err(&v)), (401, "authentication_failed"));
        // TCP: AUTH refused, OPAQUE with the device fields accepted, without them refused.
        let mut t = TcpStream::connect(srv.tcp).await.unwrap();
        t.write_all(format!("{}\n", join(&["AUTH", "alice", PASSWORD])).as_bytes())
            .await
            .unwrap();
        let mut answer = String::new();
        BufReader::new(&mut t).read_line(&mut answer).await.unwrap();
        assert_eq!(
            split_fields(answer.trim_end())[..3],
            ["AUTH", "FAILURE", "authentication_failed"]
        );
        let ok = tcp_login(&srv, "alice", Some((&id, &key))).await;
        assert_eq!(ok[0], "LOGIN_CONFIRMATION", "{ok:?}");
        let refused = tcp_login(&srv, "alice", None).await;
        assert_eq!(refused[..3], ["LOGIN", "FAILURE", "authentication_failed"]);

        // The last device cannot go while required; unknown devices are 404.
        let path = format!("/api/devices/{id}");
        let (status, v) = call(&c, &srv, del.clone(), &path, tok, None).await;
        assert_eq!((status.as_u16(), err(&v)), (409, "device_required"));
        let (status, v) = call(&c, &srv, del.clone(), "/api/devices/nope", tok, None).await;
        assert_eq!((status.as_u16(), err(&v)), (404, "device_not_found"));

        // Off again: passwords work, and the device can go.
        let off = Some(json!({ "required": false }));
        let (status, _) = call(&c, &srv, put.clone(), "/api/2fa/device", tok, off).await;
        assert_eq!(status, 204);
        let (status, v) = login(&c, &srv, "alice", PASSWORD).await;
        assert_eq!(status, 200, "{v}");
        let (status, v) = opaque_login(&c, &srv, "alice", Device::None).await;
        assert_eq!(status, 200, "{v}");
        let (status, _) = call(&c, &srv, del.clone(), &path, tok, None).await;
        assert_eq!(status, 204);
        let (_, v) = call(&c, &srv, get.clone(), "/api/devices", tok, None).await;
        assert_eq!(v, json!({ "devices": [], "required": false }));

        // Another user's device requirement does not touch this one.
        let bob = register(&c, &srv, "bob").await;
        let (_, v) = call(&c, &srv, get, "/api/devices", Some(&bob), None).await;
        assert_eq!(v["devices"], json!([]));
        srv.stop().await;
        db.cleanup().await;
    }
}
