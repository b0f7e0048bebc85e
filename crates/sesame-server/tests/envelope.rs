//! Sealed request envelopes (`{"encryptedData": …}`, libsodium `crypto_box_seal`), driven by
//! an independent implementation: libsodium itself through Python's PyNaCl
//! (`tests/py/sealed_box.py`).
//!
//! The seed flow (fetch `/api/server-key`, seal `{username, password, clientPublicKey}`,
//! register and log in, open the sealed answers with the client's secret key) runs on every
//! backend; the envelope errors, sealed inner errors and plain pass-through run on SQLite.
//!
//! Without PyNaCl (`pip install pynacl`) the tests are skipped with a loud line, unless
//! `SESAME_REQUIRE_SERVICES=1`, which makes them fail.

mod common;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use common::api::{self, call, get, get_auth, username, PASSWORD};
use common::python::{self, python_ready, script};
use common::server::TestServer;
use common::TestDb;

const SKIP: &str = "*** SKIPPING sealed-envelope PyNaCl tests: pip install pynacl ***";
const ALGORITHM: &str = "crypto_box_seal (X25519, XSalsa20-Poly1305)";

/// Runs `sealed_box.py args…` with `input` on stdin: `Ok(stdout)`, or `Err(stderr)` when a
/// ciphertext does not open (exit 1).
async fn py(args: &[&str], input: &[u8]) -> Result<Vec<u8>, String> {
    let out = python::run(script("sealed_box.py"), args, input).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(out.stdout),
        Some(1) => Err(stderr),
        other => panic!("sealed_box.py failed to run ({other:?}): {stderr}"),
    }
}

/// A PyNaCl key pair, standard base64.
struct Keypair {
    sk: String,
    pk: String,
}

async fn keypair() -> Keypair {
    let out = py(&["keypair"], b"").await.expect("keypair");
    let v: Value = serde_json::from_slice(&out).expect("keypair JSON");
    Keypair {
        sk: v["sk"].as_str().unwrap().to_owned(),
        pk: v["pk"].as_str().unwrap().to_owned(),
    }
}

/// PyNaCl seals `plaintext` to `pk`: the base64 ciphertext.
async fn seal(pk: &str, plaintext: &[u8]) -> String {
    let out = py(&["seal", pk], plaintext).await.expect("seal");
    String::from_utf8(out).expect("base64 is ASCII")
}

/// PyNaCl opens a sealed answer with the client's secret key, as JSON.
async fn open(sk: &str, sealed: &str) -> Value {
    let plain = py(&["open", sk], sealed.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("PyNaCl could not open the answer: {e}"));
    serde_json::from_slice(&plain).unwrap_or_else(|e| {
        panic!(
            "the opened answer is not JSON ({e}): {}",
            String::from_utf8_lossy(&plain)
        )
    })
}

/// `GET /api/server-key`, checked against the alias `/api/getkey`: the key, base64.
async fn server_key(srv: &TestServer) -> String {
    let mut seen = Vec::new();
    for path in ["/api/server-key", "/api/getkey"] {
        let (status, body) = get(&Client::new(), srv, path).await;
        assert_eq!(status, 200, "GET {path}");
        assert_eq!(body["algorithm"], ALGORITHM, "{body}");
        let key = body["publicKey"].as_str().expect("publicKey").to_owned();
        let raw = STANDARD.decode(&key).expect("standard base64");
        assert_eq!(raw.len(), 32, "an X25519 public key is 32 bytes");
        seen.push(key);
    }
    assert_eq!(seen[0], seen[1], "/api/getkey is the same key");
    seen.remove(0)
}

/// `POST path` with a JSON body, on a fresh client.
async fn post(srv: &TestServer, path: &str, body: &Value) -> (StatusCode, Value) {
    api::post(&Client::new(), srv, path, body).await
}

/// Seals `plain` (a JSON value) to the server and POSTs it to `path`; returns the status and
/// the answer opened with `client`. Panics if the answer is not a sealed envelope.
async fn sealed_call(
    srv: &TestServer,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    server_pk: &str,
    client: &Keypair,
    plain: &Value,
) -> (StatusCode, Value) {
    let sealed = seal(server_pk, plain.to_string().as_bytes()).await;
    let envelope = json!({ "encryptedData": sealed });
    let (status, body) = call(&Client::new(), srv, method, path, bearer, Some(envelope)).await;
    let obj = body.as_object().expect("a JSON object answer");
    assert_eq!(
        obj.len(),
        1,
        "only encryptedData in a sealed answer: {body}"
    );
    let ct = body["encryptedData"].as_str().expect("encryptedData");
    STANDARD
        .decode(ct)
        .expect("the answer is standard base64 with padding");
    (status, open(&client.sk, ct).await)
}

/// [`sealed_call`] with `POST` and no token.
async fn sealed_post(
    srv: &TestServer,
    path: &str,
    server_pk: &str,
    client: &Keypair,
    plain: &Value,
) -> (StatusCode, Value) {
    sealed_call(
        srv,
        reqwest::Method::POST,
        path,
        None,
        server_pk,
        client,
        plain,
    )
    .await
}

fn assert_error(status: StatusCode, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_register_and_login_sealed_with_pynacl() {
    if !python_ready(SKIP, "import nacl") {
        return;
    }
    for db in common::backends().await {
        let name = db.name;
        let srv = TestServer::start(&db).await;
        let server_pk = server_key(&srv).await;
        let client = keypair().await;
        let user = username("env");
        let creds = json!({
            "username": user,
            "password": PASSWORD,
            "clientPublicKey": client.pk,
        });

        let (status, reg) = sealed_post(&srv, "/api/register", &server_pk, &client, &creds).await;
        assert_eq!(status, 201, "[{name}] register: {reg}");
        assert_eq!(reg["message"], "User registered successfully.", "[{name}]");
        let user_id = reg["user_id"].as_str().expect("user_id").to_owned();
        Uuid::parse_str(&user_id).expect("user_id is a UUID");

        let (status, login) = sealed_post(&srv, "/api/login", &server_pk, &client, &creds).await;
        assert_eq!(status, 200, "[{name}] login: {login}");
        assert_eq!(login["message"], "Login successful.", "[{name}]");
        assert_eq!(login["uuid"], json!(user_id), "[{name}] {login}");
        assert!(login["expires_at"].is_string(), "[{name}] {login}");
        let token = login["token"].as_str().expect("token").to_owned();

        // The token works: a GET without a body passes through in the clear...
        let (status, me) = get_auth(&Client::new(), &srv, "/api/me", &token).await;
        assert_eq!(status, 200, "[{name}]");
        assert_eq!(me["username"], json!(user), "[{name}] {me}");

        // ... and a GET with a sealed body gets a sealed answer.
        let (status, me2) = sealed_call(
            &srv,
            reqwest::Method::GET,
            "/api/me",
            Some(&token),
            &server_pk,
            &client,
            &json!({ "clientPublicKey": client.pk }),
        )
        .await;
        assert_eq!(status, 200, "[{name}] sealed /api/me: {me2}");
        assert_eq!(me2, me, "[{name}]");

        srv.stop().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelope_errors_and_sealed_inner_errors() {
    if !python_ready(SKIP, "import nacl") {
        return;
    }
    let db = TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let server_pk = server_key(&srv).await;
    let client = keypair().await;
    let user = username("enverr");
    let creds = json!({ "username": user, "password": PASSWORD, "clientPublicKey": client.pk });

    // Not base64.
    let (status, body) = post(
        &srv,
        "/api/register",
        &json!({ "encryptedData": "*** not base64 ***" }),
    )
    .await;
    assert_error(status, &body, 400, "envelope_invalid");

    // Not a string.
    let (status, body) = post(&srv, "/api/register", &json!({ "encryptedData": 42 })).await;
    assert_error(status, &body, 400, "envelope_invalid");

    // Valid base64, but too short to be a sealed box.
    let (status, body) = post(
        &srv,
        "/api/register",
        &json!({ "encryptedData": STANDARD.encode([7u8; 40]) }),
    )
    .await;
    assert_error(status, &body, 400, "envelope_invalid");

    // Sealed to another key.
    let stranger = keypair().await;
    let wrong = seal(&stranger.pk, creds.to_string().as_bytes()).await;
    let (status, body) = post(&srv, "/api/register", &json!({ "encryptedData": wrong })).await;
    assert_error(status, &body, 400, "envelope_invalid");

    // One ciphertext byte altered.
    let good = seal(&server_pk, creds.to_string().as_bytes()).await;
    let mut raw = STANDARD.decode(&good).unwrap();
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let (status, body) = post(
        &srv,
        "/api/register",
        &json!({ "encryptedData": STANDARD.encode(&raw) }),
    )
    .await;
    assert_error(status, &body, 400, "envelope_invalid");

    // The plaintext is not JSON, or not a JSON object.
    for plain in [&b"username=alice&password=x"[..], b"[1, 2, 3]", b"\"text\""] {
        let sealed = seal(&server_pk, plain).await;
        let (status, body) = post(&srv, "/api/register", &json!({ "encryptedData": sealed })).await;
        assert_error(status, &body, 400, "envelope_invalid");
    }

    // No clientPublicKey, or one that is not a usable key.
    for key in [
        None,
        Some(json!(12)),
        Some(json!("not base64 !")),
        Some(json!(STANDARD.encode([9u8; 31]))),
        Some(json!(STANDARD.encode([0u8; 32]))),
    ] {
        let mut plain = json!({ "username": user, "password": PASSWORD });
        if let Some(key) = key {
            plain["clientPublicKey"] = key;
        }
        let sealed = seal(&server_pk, plain.to_string().as_bytes()).await;
        let (status, body) = post(&srv, "/api/register", &json!({ "encryptedData": sealed })).await;
        assert_error(status, &body, 400, "envelope_missing_client_key");
    }

    // None of the refused envelopes registered anybody: a sealed registration now succeeds.
    let (status, reg) = sealed_post(&srv, "/api/register", &server_pk, &client, &creds).await;
    assert_eq!(status, 201, "{reg}");

    // An inner error comes back sealed, with its status.
    let (status, dup) = sealed_post(&srv, "/api/register", &server_pk, &client, &creds).await;
    assert_error(status, &dup, 409, "username_taken");
    let (status, bad) = sealed_post(
        &srv,
        "/api/login",
        &server_pk,
        &client,
        &json!({ "username": user, "password": "wrong password", "clientPublicKey": client.pk }),
    )
    .await;
    assert_error(status, &bad, 401, "authentication_failed");
    let (status, bad) = sealed_post(
        &srv,
        "/api/login",
        &server_pk,
        &client,
        &json!({ "username": user, "clientPublicKey": client.pk }),
    )
    .await;
    assert_error(status, &bad, 400, "invalid_request");

    // URL-safe base64 without padding is accepted for both fields.
    let client_pk_url = URL_SAFE_NO_PAD.encode(STANDARD.decode(&client.pk).unwrap());
    let plain = json!({ "username": user, "password": PASSWORD, "clientPublicKey": client_pk_url });
    let sealed = seal(&server_pk, plain.to_string().as_bytes()).await;
    let sealed_url = URL_SAFE_NO_PAD.encode(STANDARD.decode(&sealed).unwrap());
    let (status, body) = post(&srv, "/api/login", &json!({ "encryptedData": sealed_url })).await;
    assert_eq!(status, 200, "{body}");
    let login = open(&client.sk, body["encryptedData"].as_str().unwrap()).await;
    assert!(login["token"].is_string(), "{login}");

    // Plain requests still work, and plain errors stay plain.
    let plain_user = username("plain");
    let plain_creds = json!({ "username": plain_user, "password": PASSWORD });
    let (status, body) = post(&srv, "/api/register", &plain_creds).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["username"], json!(plain_user));
    let (status, body) = post(&srv, "/api/login", &plain_creds).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].is_string(), "{body}");
    let (status, body) = post(&srv, "/api/register", &plain_creds).await;
    assert_error(status, &body, 409, "username_taken");
    // An object with encryptedData and other keys is not an envelope: the route refuses it.
    let (status, body) = post(
        &srv,
        "/api/login",
        &json!({ "encryptedData": good, "username": plain_user }),
    )
    .await;
    assert_error(status, &body, 400, "invalid_request");

    // The body limit holds for envelopes too.
    let huge = "A".repeat(70 * 1024);
    let (status, body) = post(&srv, "/api/register", &json!({ "encryptedData": huge })).await;
    assert_error(status, &body, 413, "payload_too_large");

    // The key is stored (sealed under the master key): a restart keeps it.
    srv.stop().await;
    let srv = TestServer::start(&db).await;
    assert_eq!(
        server_key(&srv).await,
        server_pk,
        "the key survives a restart"
    );
    srv.stop().await;
    db.cleanup().await;
}
