//! The access token, verified by an independent JWT implementation: Python's PyJWT (with
//! `cryptography` for Ed25519), through `tests/py/verify_jwt.py`.
//!
//! The server is asked for a token (password login and OPAQUE login over HTTP) and for its
//! JWKS (`/.well-known/jwks.json`); the script builds the key from the JWK, checks the header
//! (`alg` EdDSA, `typ` at+jwt), the signature, `iss`, `aud` and `exp`, and prints the claims,
//! which must name the right user, session and method. A token with one flipped signature
//! character, or checked against another server's JWKS, must fail.
//!
//! Without PyJWT and cryptography (`pip install -r tests/py/requirements.txt`) the tests are
//! skipped with a loud line, unless `SESAME_REQUIRE_SERVICES=1`, which makes them fail.

mod common;

use reqwest::Client;
use serde_json::{json, Value};

use common::api::{get_auth, login, opaque_login, post, refresh, username, PASSWORD};
use common::on_every_backend;
use common::python::{self, python_ready, script};
use common::server::TestServer;
use common::TestDb;

const SKIP: &str = "*** SKIPPING external JWT verification: pip install pyjwt cryptography ***";

/// What the Python side is asked to check.
struct Check<'a> {
    jwks: &'a Value,
    token: &'a str,
    issuer: &'a str,
    audience: &'a str,
    /// Use only the key with the token's `kid` (false: try every key of the set).
    match_kid: bool,
}

/// Runs the verifier: `Ok({header, claims})` or `Err(reason)` when the token is refused.
async fn verify_external(check: Check<'_>) -> Result<Value, String> {
    let input = json!({
        "jwks": check.jwks,
        "token": check.token,
        "issuer": check.issuer,
        "audience": check.audience,
        "match_kid": check.match_kid,
    })
    .to_string();
    let out = python::run(script("verify_jwt.py"), &[], input.as_bytes()).await;
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("the verifier printed no JSON ({e}): {stderr}"))),
        Some(1) => Err(stderr),
        other => panic!("the verifier failed to run ({other:?}): {stderr}"),
    }
}

async fn get_json(url: &str) -> Value {
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(resp.status(), 200, "GET {url}");
    resp.json().await.expect("JSON body")
}

/// Registers a user and logs in with the password (`POST /api/login`); returns the body.
async fn password_login(srv: &TestServer, user: &str) -> Value {
    let c = Client::new();
    let creds = json!({ "username": user, "password": PASSWORD });
    let (status, body) = post(&c, srv, "/register", &creds).await;
    assert_eq!(status, 201, "register: {body}");
    let (status, body) = login(&c, srv, user, PASSWORD).await;
    assert_eq!(status, 200, "login: {body}");
    body
}

/// The issuer the server announces, checked against the service's own.
async fn issuer(srv: &TestServer) -> String {
    let info = get_json(&srv.url("/.well-known/sesame")).await;
    let iss = info["issuer"].as_str().expect("issuer").to_owned();
    assert_eq!(iss, srv.sesame.issuer());
    iss
}

/// Replaces one character in the middle of the signature with another base64url character.
fn flip_signature_char(token: &str) -> String {
    let (signed, sig) = token.rsplit_once('.').expect("three parts");
    let mut sig: Vec<char> = sig.chars().collect();
    assert_eq!(
        sig.len(),
        86,
        "an Ed25519 signature is 86 base64url characters"
    );
    let i = sig.len() / 2;
    sig[i] = if sig[i] == 'A' { 'B' } else { 'A' };
    format!("{signed}.{}", sig.into_iter().collect::<String>())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_verify_with_pyjwt() {
    if !python_ready(SKIP, "import jwt, cryptography") {
        return;
    }
    on_every_backend!(|srv, db| {
        let jwks = get_json(&srv.url("/.well-known/jwks.json")).await;
        let iss = issuer(&srv).await;
        let aud = srv.config.audience.clone();
        let kid = jwks["keys"][0]["kid"].as_str().expect("kid").to_owned();

        // Password login: amr ["pwd"].
        let user = username("jwt");
        let login = password_login(&srv, &user).await;
        let token = login["access_token"].as_str().expect("access_token");
        let check = |token| Check {
            jwks: &jwks,
            token,
            issuer: &iss,
            audience: &aud,
            match_kid: true,
        };
        let out = verify_external(check(token))
            .await
            .unwrap_or_else(|e| panic!("[{}] PyJWT refused the token: {e}", db.name));
        let (header, claims) = (&out["header"], &out["claims"]);
        assert_eq!(header["alg"], "EdDSA", "[{}] {out}", db.name);
        assert_eq!(header["typ"], "at+jwt", "[{}] {out}", db.name);
        assert_eq!(header["kid"], json!(kid), "[{}] {out}", db.name);
        assert_eq!(claims["sub"], login["user_id"], "[{}] {out}", db.name);
        assert_eq!(claims["sid"], login["session_id"], "[{}] {out}", db.name);
        assert_eq!(claims["amr"], json!(["pwd"]), "[{}] {out}", db.name);
        assert_eq!(claims["iss"], json!(iss));
        assert_eq!(claims["aud"], json!(aud));
        let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
        assert_eq!(lifetime, login["expires_in"].as_u64().unwrap());

        // A refreshed token: same session, new jti.
        let (status, grant) = refresh(&Client::new(), &srv, &login["session_token"]).await;
        assert_eq!(status, 200, "[{}] refresh: {grant}", db.name);
        let out2 = verify_external(check(grant["access_token"].as_str().unwrap()))
            .await
            .unwrap_or_else(|e| panic!("[{}] PyJWT refused the refreshed token: {e}", db.name));
        assert_eq!(out2["claims"]["sid"], login["session_id"]);
        assert_eq!(out2["claims"]["amr"], json!(["pwd"]));
        assert_ne!(out2["claims"]["jti"], claims["jti"]);

        // OPAQUE login over HTTP: amr ["pwd"] (RFC 8176: a password, whatever the protocol).
        let issued = opaque_login(&Client::new(), &srv, &user, PASSWORD).await;
        let out3 = verify_external(check(issued["access_token"].as_str().unwrap()))
            .await
            .unwrap_or_else(|e| panic!("[{}] PyJWT refused the OPAQUE token: {e}", db.name));
        assert_eq!(out3["claims"]["sub"], login["user_id"]);
        assert_eq!(out3["claims"]["sid"], issued["session_id"]);
        assert_eq!(
            out3["claims"]["amr"],
            json!(["pwd"]),
            "[{}] {out3}",
            db.name
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_and_foreign_tokens_fail_in_pyjwt() {
    if !python_ready(SKIP, "import jwt, cryptography") {
        return;
    }
    let db = TestDb::sqlite();
    let srv = TestServer::start(&db).await;
    let other_db = TestDb::sqlite();
    let other = TestServer::start_with(&other_db, |c| {
        c.master_key = Some(common::server::other_master_key());
    })
    .await;

    let jwks = get_json(&srv.url("/.well-known/jwks.json")).await;
    let other_jwks = get_json(&other.url("/.well-known/jwks.json")).await;
    assert_ne!(
        jwks, other_jwks,
        "another master key gives another signing key"
    );
    let iss = issuer(&srv).await;
    let other_iss = issuer(&other).await;
    let aud = srv.config.audience.clone();

    let login = password_login(&srv, &username("jwta")).await;
    let token = login["access_token"].as_str().unwrap();
    let other_login = password_login(&other, &username("jwtb")).await;
    let other_token = other_login["access_token"].as_str().unwrap();

    // Positive controls: each token verifies against its own server's JWKS.
    let own = |jwks, token, issuer| Check {
        jwks,
        token,
        issuer,
        audience: &aud,
        match_kid: true,
    };
    verify_external(own(&jwks, token, &iss))
        .await
        .expect("the token verifies against its own JWKS");
    verify_external(own(&other_jwks, other_token, &other_iss))
        .await
        .expect("the other token verifies against its own JWKS");

    // One flipped signature character.
    let tampered = flip_signature_char(token);
    assert_ne!(tampered, token);
    let err = verify_external(own(&jwks, &tampered, &iss))
        .await
        .expect_err("PyJWT must refuse a tampered signature");
    assert!(err.contains("Signature"), "{err}");
    // The server refuses it as well.
    let (status, _) = get_auth(&Client::new(), &srv, "/api/me", &tampered).await;
    assert_eq!(status, 401);

    // Another server's JWKS: no key with this kid, and no key of it verifies the signature.
    let err = verify_external(own(&other_jwks, token, &iss))
        .await
        .expect_err("a foreign JWKS must not verify the token");
    assert!(err.contains("kid"), "{err}");
    let err = verify_external(Check {
        match_kid: false,
        ..own(&other_jwks, token, &iss)
    })
    .await
    .expect_err("a foreign key must not verify the signature");
    assert!(err.contains("Signature"), "{err}");
    let err = verify_external(Check {
        match_kid: false,
        ..own(&jwks, other_token, &other_iss)
    })
    .await
    .expect_err("this server's key must not verify the other server's token");
    assert!(err.contains("Signature"), "{err}");

    // Wrong audience or issuer.
    let err = verify_external(Check {
        audience: "someone-else",
        ..own(&jwks, token, &iss)
    })
    .await
    .expect_err("wrong audience");
    assert!(err.contains("Audience"), "{err}");
    let err = verify_external(own(&jwks, token, "https://not-the-issuer.example"))
        .await
        .expect_err("wrong issuer");
    assert!(err.contains("Issuer"), "{err}");

    other.stop().await;
    other_db.cleanup().await;
    srv.stop().await;
    db.cleanup().await;
}
