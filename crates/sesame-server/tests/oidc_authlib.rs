//! Authlib (Python) as a confidential OpenID Connect client of Sesame, on SQLite and
//! PostgreSQL: `tests/py/oidc_authlib.py` with `client_secret_basic` and an RS256 client, then
//! `client_secret_post` and an EdDSA client. The browser's part is plain HTTP with the cookie
//! a login over the API gets from `POST /web/session`.

mod common;

use common::api::{register, tokens, username, PASSWORD};
use common::python::{self, python_ready, script};
use common::server::TestServer;
use serde_json::{json, Value};
use sesame_server::oidc::{ClientSpec, IdTokenAlg};

const SKIP: &str =
    "*** SKIPPING the Authlib OpenID Connect client test: pip install authlib requests ***";
const REDIRECT: &str = "https://rp.example/callback";

#[tokio::test]
async fn authlib_confidential_client_basic_and_post_rs256_and_eddsa() {
    if !python_ready(SKIP, "import authlib, requests, cryptography") {
        return;
    }
    for db in common::backends().await {
        // A relying party checks that the issuer is the URL it fetched the metadata from.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let srv = TestServer::start_with(&db, |cfg| {
            cfg.listen = format!("127.0.0.1:{port}").parse().unwrap();
            cfg.issuer = Some(format!("http://127.0.0.1:{port}"));
        })
        .await;
        let c = reqwest::Client::new();
        let name = username("authlib");
        let user = register(&c, &srv, &name).await;
        let (_, session) = tokens(&c, &srv, &name, PASSWORD).await;
        // The browser's cookie, the way the web app gets it.
        let resp = c
            .post(srv.url("/web/session"))
            .json(&json!({ "session_token": session }))
            .send()
            .await
            .unwrap();
        let set_cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        for (method, alg) in [
            ("client_secret_basic", IdTokenAlg::RS256),
            ("client_secret_post", IdTokenAlg::EdDSA),
        ] {
            let client = srv
                .sesame
                .oidc_register_client(
                    ClientSpec {
                        name: "Authlib".into(),
                        redirect_uris: vec![REDIRECT.into()],
                        skip_consent: true,
                        id_token_alg: alg,
                        ..ClientSpec::default()
                    },
                    "cli",
                )
                .await
                .unwrap();
            let secret = client.client_secret.unwrap();
            let issuer = srv.sesame.issuer();
            let args = [
                issuer.as_str(),
                &client.client_id,
                &secret,
                &cookie,
                REDIRECT,
                method,
                alg.as_str(),
            ];
            let out = python::run(script("oidc_authlib.py"), &args, b"").await;
            assert!(
                out.status.success(),
                "{method}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["claims"]["sub"], user["user_id"], "{method}");
            assert_eq!(v["userinfo"]["preferred_username"], name.as_str());
        }
        srv.stop().await;
        db.cleanup().await;
    }
}
