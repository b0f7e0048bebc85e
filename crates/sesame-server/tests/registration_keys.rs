//! A registration may carry the new account's messaging identity and its backup: published
//! with the account when valid; refused before any account exists when not. SQLite and
//! PostgreSQL.

mod common;

use common::api::{get, post, rng, username, PASSWORD};
use common::on_every_backend;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sesame_proto::b64;
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::e2e::IdentityKeys;
use sesame_proto::messages::RegistrationChallenge;

/// The `register/finish` body of a client-side registration of `name`, without keys.
async fn finish_body(c: &reqwest::Client, srv: &common::server::TestServer, name: &str) -> Value {
    let mut r = rng();
    let (state, start) = client::start_registration(&mut r, name, PASSWORD).unwrap();
    let (status, body) = post(c, srv, "/api/register/start", &start).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let challenge: RegistrationChallenge = serde_json::from_value(body).unwrap();
    let done = state
        .finish(&mut r, &challenge, &ClientPolicy::default())
        .unwrap();
    serde_json::to_value(&done.message).unwrap()
}

fn identity_json(keys: &IdentityKeys) -> Value {
    let public = keys.public();
    json!({
        "signing_key": b64::encode(public.signing_key),
        "encryption_key": b64::encode(public.encryption_key),
        "encryption_key_signature": b64::encode(public.encryption_key_signature),
    })
}

#[tokio::test]
async fn keys_published_with_the_account_or_no_account_at_all() {
    on_every_backend!(|c, srv, _db| {
        // Valid keys: the account exists and its keys are in the directory at once.
        let name = username("regkeys");
        let keys = IdentityKeys::generate(&mut rng());
        let mut body = finish_body(&c, &srv, &name).await;
        body["identity"] = identity_json(&keys);
        body["key_backup"] = json!({ "blob": b64::encode([7u8; 105]) });
        let (status, answer) = post(&c, &srv, "/api/register/finish", &body).await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let (status, published) = get(&c, &srv, &format!("/api/keys/{name}")).await;
        // The directory needs a token; the published keys are checked through the store.
        assert!(status == StatusCode::UNAUTHORIZED, "{published}");
        let found = srv.sesame.identity_of(&name).await.unwrap();
        assert_eq!(found.signing_key, b64::encode(keys.public().signing_key));

        // A forged signature: 400 invalid_identity, and the name is still free.
        let name = username("badkeys");
        let mut body = finish_body(&c, &srv, &name).await;
        let mut forged = identity_json(&keys);
        forged["encryption_key_signature"] = json!(b64::encode([1u8; 64]));
        body["identity"] = forged;
        let (status, answer) = post(&c, &srv, "/api/register/finish", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "invalid_identity");
        assert!(
            srv.sesame.admin_find(&name).await.is_err(),
            "no account made"
        );

        // An oversized backup: 413 backup_too_large, and no account either.
        let mut body = finish_body(&c, &srv, &name).await;
        body["identity"] = identity_json(&keys);
        body["key_backup"] = json!({ "blob": b64::encode(vec![0u8; 5000]) });
        let (status, answer) = post(&c, &srv, "/api/register/finish", &body).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
        assert_eq!(answer["error"]["code"], "backup_too_large");
        assert!(
            srv.sesame.admin_find(&name).await.is_err(),
            "no account made"
        );
    });
}
