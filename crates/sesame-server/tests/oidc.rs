//! The OpenID Connect provider over HTTP, on SQLite and PostgreSQL: the code flow with PKCE
//! and the browser's cookie session, consent, both client authentications, RS256 and EdDSA ID
//! tokens checked against the JWKS, refresh rotation and reuse detection, userinfo,
//! revocation, introspection, end-session, and every refusal of docs/oidc.md §6.

mod common;

use common::api::{register, tokens, username, PASSWORD};
use common::on_every_backend;
use common::server::TestServer;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::{Client, StatusCode};
use serde_json::Value;
use sesame_server::oidc::{ClientSpec, IdTokenAlg};

const REDIRECT: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K1mMmexlCqIZ8M8G6JmXnr9G9U";
const CHALLENGE: &str = "htz_ueQIeLyw3V5nsUE_hmGjDJhGs7hKFm5AkV9hO34";

fn browser() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A signed-in user: id and the cookie header of its browser session.
struct User {
    id: String,
    name: String,
    cookie: String,
}

async fn user(c: &Client, srv: &TestServer, prefix: &str) -> User {
    let name = username(prefix);
    let reg = register(c, srv, &name).await;
    let (_, session) = tokens(c, srv, &name, PASSWORD).await;
    User {
        id: reg["user_id"].as_str().unwrap().to_owned(),
        name: name.clone(),
        cookie: format!("sesame_session={session}"),
    }
}

async fn client(
    srv: &TestServer,
    public: bool,
    skip: bool,
    alg: IdTokenAlg,
) -> (String, Option<String>) {
    let reg = srv
        .sesame
        .oidc_register_client(
            ClientSpec {
                name: "Test app".into(),
                redirect_uris: vec![REDIRECT.into()],
                post_logout_redirect_uris: vec!["http://127.0.0.1:9/bye".into()],
                public,
                skip_consent: skip,
                id_token_alg: alg,
                ..ClientSpec::default()
            },
            "cli",
        )
        .await
        .unwrap();
    (reg.client_id, reg.client_secret)
}

/// `GET /oauth2/authorize` with `pairs`, as the browser with `cookie`.
async fn authorize(
    srv: &TestServer,
    cookie: Option<&str>,
    pairs: &[(&str, &str)],
) -> reqwest::Response {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.extend_pairs(pairs);
    let mut req = browser().get(format!("{}/oauth2/authorize?{}", srv.base, q.finish()));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    req.send().await.unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    assert_eq!(resp.status(), StatusCode::FOUND, "{resp:?}");
    resp.headers()["location"].to_str().unwrap().to_owned()
}

/// The query parameter `name` of `url`.
fn query(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url)
        .unwrap_or_else(|_| url::Url::parse(&format!("http://x{url}")).unwrap());
    u.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn pkce_request<'a>(id: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut p = vec![
        ("response_type", "code"),
        ("client_id", id),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile email groups"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    p.extend_from_slice(extra);
    p
}

/// A code for `id` (PKCE, consent skipped or already given).
async fn code(srv: &TestServer, u: &User, id: &str) -> String {
    let to = location(&authorize(srv, Some(&u.cookie), &pkce_request(id, &[])).await);
    assert!(to.starts_with(REDIRECT), "{to}");
    assert_eq!(query(&to, "state").as_deref(), Some("st-1"));
    assert_eq!(
        query(&to, "iss").as_deref(),
        Some(srv.sesame.issuer().as_str())
    );
    query(&to, "code").unwrap()
}

/// `POST path` with a form body and optional Basic credentials.
async fn form(
    srv: &TestServer,
    path: &str,
    pairs: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (StatusCode, Value) {
    let mut body = url::form_urlencoded::Serializer::new(String::new());
    body.extend_pairs(pairs);
    let mut req = browser()
        .post(format!("{}{path}", srv.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.finish());
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn exchange(srv: &TestServer, id: &str, code: &str, verifier: &str) -> (StatusCode, Value) {
    form(
        srv,
        "/oauth2/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("client_id", id),
            ("code_verifier", verifier),
        ],
        None,
    )
    .await
}

async fn userinfo(srv: &TestServer, access: &str) -> (StatusCode, Value) {
    let resp = browser()
        .get(format!("{}/oauth2/userinfo", srv.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Verifies an ID token with the key of the JWKS its `kid` names.
async fn verify(
    srv: &TestServer,
    token: &str,
    aud: &str,
) -> Result<Value, jsonwebtoken::errors::Error> {
    let jwks: Value = browser()
        .get(format!("{}/.well-known/jwks.json", srv.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = jsonwebtoken::decode_header(token)?;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"].as_str() == header.kid.as_deref())
        .expect("the kid is published");
    let key = match header.alg {
        Algorithm::RS256 => DecodingKey::from_rsa_components(
            jwk["n"].as_str().unwrap(),
            jwk["e"].as_str().unwrap(),
        )?,
        _ => DecodingKey::from_ed_components(jwk["x"].as_str().unwrap())?,
    };
    let mut v = Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[srv.sesame.issuer()]);
    v.validate_exp = false;
    Ok(jsonwebtoken::decode::<Value>(token, &key, &v)?.claims)
}

fn err(v: &Value) -> &str {
    v["error"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn public_client_code_flow_with_pkce_refresh_rotation_and_reuse_detection() {
    on_every_backend!(|c, srv, _db| {
        let u = user(&c, &srv, "oidcpub").await;
        let (id, secret) = client(&srv, true, true, IdTokenAlg::RS256).await;
        assert!(secret.is_none());
        let (status, t) = exchange(&srv, &id, &code(&srv, &u, &id).await, VERIFIER).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        let claims = verify(&srv, t["id_token"].as_str().unwrap(), &id)
            .await
            .unwrap();
        assert_eq!(claims["sub"], u.id.as_str());
        assert_eq!(claims["nonce"], "n-1");
        assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
        assert!(claims["auth_time"].as_i64().unwrap() > 0);
        assert_eq!(
            jsonwebtoken::decode_header(t["id_token"].as_str().unwrap())
                .unwrap()
                .alg,
            Algorithm::RS256
        );
        let (status, info) = userinfo(&srv, t["access_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(info["sub"], u.id.as_str());
        assert!(info["preferred_username"]
            .as_str()
            .unwrap()
            .starts_with("oidcpub"));
        assert_eq!(info["groups"], serde_json::json!([]));
        // Refresh: a new pair; the old refresh token is spent.
        let old = t["refresh_token"].as_str().unwrap();
        let refresh = |rt: String| {
            let id = id.clone();
            let srv = &srv;
            async move {
                form(
                    srv,
                    "/oauth2/token",
                    &[
                        ("grant_type", "refresh_token"),
                        ("refresh_token", &rt),
                        ("client_id", &id),
                    ],
                    None,
                )
                .await
            }
        };
        let (status, t2) = refresh(old.to_owned()).await;
        assert_eq!(status, StatusCode::OK, "{t2}");
        assert_ne!(t2["refresh_token"], t["refresh_token"]);
        // Reusing the spent one revokes the family: the new tokens die too.
        let (status, e) = refresh(old.to_owned()).await;
        assert_eq!(
            (status, err(&e)),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
        let (status, e) = refresh(t2["refresh_token"].as_str().unwrap().to_owned()).await;
        assert_eq!(
            (status, err(&e)),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
        let (status, _) = userinfo(&srv, t2["access_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let events: Vec<String> = common::api::audit_of(&srv, u.id.parse().unwrap())
            .await
            .into_iter()
            .map(|e| e.event)
            .collect();
        for e in [
            "oidc.authorized",
            "oidc.token_issued",
            "oidc.token_refreshed",
            "oidc.refresh_reused",
        ] {
            assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
        }
    });
}

#[tokio::test]
async fn confidential_client_consent_basic_and_post_auth_eddsa_introspection_revocation() {
    on_every_backend!(|c, srv, _db| {
        let u = user(&c, &srv, "oidcconf").await;
        let (id, secret) = client(&srv, false, false, IdTokenAlg::EdDSA).await;
        let secret = secret.unwrap();
        let p = [
            ("response_type", "code"),
            ("client_id", id.as_str()),
            ("redirect_uri", REDIRECT),
            ("scope", "openid profile"),
            ("state", "s2"),
        ];
        // First use: the consent page.
        let to = location(&authorize(&srv, Some(&u.cookie), &p).await);
        assert!(to.starts_with("/consent?ticket="), "{to}");
        let ticket = query(&to, "ticket").unwrap();
        let session = u.cookie.trim_start_matches("sesame_session=").to_owned();
        let grant = common::api::refresh(&c, &srv, &session).await.1;
        let bearer = grant["access_token"].as_str().unwrap();
        let path = format!("/api/oauth2/consent/{ticket}");
        let (status, prompt) = common::api::get_auth(&c, &srv, &path, bearer).await;
        assert_eq!(status, StatusCode::OK, "{prompt}");
        assert_eq!(prompt["client_name"], "Test app");
        let (status, next) = common::api::post_auth(
            &c,
            &srv,
            &path,
            bearer,
            serde_json::json!({"approve": true}),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{next}");
        let code1 = query(next["redirect_to"].as_str().unwrap(), "code").unwrap();
        // Consent is remembered: the next request goes straight back with a code.
        let to = location(&authorize(&srv, Some(&u.cookie), &p).await);
        let code2 = query(&to, "code").expect("no consent the second time");
        let base = [
            ("grant_type", "authorization_code"),
            ("redirect_uri", REDIRECT),
        ];
        // client_secret_basic.
        let mut basic = base.to_vec();
        basic.push(("code", &code1));
        let (status, t) = form(&srv, "/oauth2/token", &basic, Some((&id, &secret))).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        let idt = t["id_token"].as_str().unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(idt).unwrap().alg,
            Algorithm::EdDSA
        );
        assert_eq!(verify(&srv, idt, &id).await.unwrap()["sub"], u.id.as_str());
        // client_secret_post, and a wrong secret.
        let mut post = base.to_vec();
        post.extend([
            ("code", code2.as_str()),
            ("client_id", &id),
            ("client_secret", "wrong-secret"),
        ]);
        let (status, e) = form(&srv, "/oauth2/token", &post, None).await;
        assert_eq!(
            (status, err(&e)),
            (StatusCode::UNAUTHORIZED, "invalid_client")
        );
        post.pop();
        post.push(("client_secret", &secret));
        let (status, t2) = form(&srv, "/oauth2/token", &post, None).await;
        // The wrong secret was refused before the code was looked at: it still works.
        assert_eq!(status, StatusCode::OK, "{t2}");
        revocation_and_logout(&c, &srv, (&id, &secret), &t, &t2, (&session, &u.id)).await;
    });
}

/// Introspection before and after revoking one grant's refresh token, then end-session.
async fn revocation_and_logout(
    c: &Client,
    srv: &TestServer,
    (id, secret): (&str, &str),
    t: &Value,
    t2: &Value,
    (session, user): (&str, &str),
) {
    // Introspection and revocation.
    let at = t["access_token"].as_str().unwrap();
    let (_, i) = form(
        srv,
        "/oauth2/introspect",
        &[("token", at)],
        Some((id, secret)),
    )
    .await;
    assert_eq!(i["active"], true);
    assert_eq!(i["sub"], user);
    let rt = t["refresh_token"].as_str().unwrap();
    let (status, _) = form(srv, "/oauth2/revoke", &[("token", rt)], Some((id, secret))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, i) = form(
        srv,
        "/oauth2/introspect",
        &[("token", at)],
        Some((id, secret)),
    )
    .await;
    assert_eq!(
        i["active"], false,
        "revoking the refresh token revokes its access token"
    );
    let (_, i) = form(
        srv,
        "/oauth2/introspect",
        &[("token", t2["access_token"].as_str().unwrap())],
        Some((id, secret)),
    )
    .await;
    assert_eq!(i["active"], true, "another grant lives on");
    // End-session with the ID token: the browser session ends, back to the client.
    let q = format!(
        "/oauth2/logout?id_token_hint={}&post_logout_redirect_uri={}&state=bye",
        t2["id_token"].as_str().unwrap(),
        "http%3A%2F%2F127.0.0.1%3A9%2Fbye"
    );
    let resp = browser().get(srv.url(&q)).send().await.unwrap();
    assert_eq!(location(&resp), "http://127.0.0.1:9/bye?state=bye");
    let (status, _) = common::api::refresh(c, srv, &session).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the session ended");
}

#[path = "oidc/negative.rs"]
mod negative;

#[path = "oidc/admin.rs"]
mod admin;
