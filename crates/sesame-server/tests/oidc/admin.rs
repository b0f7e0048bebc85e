//! What the operator manages: groups in the `groups` claim, signing-key rotation (published
//! before it signs, the old key kept until its tokens expire), and clients declared in the
//! configuration file.

use reqwest::StatusCode;
use serde_json::Value;
use sesame_server::oidc::{ClientSpec, IdTokenAlg, ID_TOKEN_TTL_SECS};

use super::common::on_every_backend;
use super::common::server::TestServer;
use super::{browser, client, code, exchange, user, userinfo, VERIFIER};

async fn jwks_kids(srv: &TestServer, alg: &str) -> Vec<String> {
    let jwks: Value = browser()
        .get(srv.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["alg"] == alg)
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

async fn id_token_kid(srv: &TestServer, u: &super::User, id: &str) -> String {
    let (status, t) = exchange(srv, id, &code(srv, u, id).await, VERIFIER).await;
    assert_eq!(status, StatusCode::OK, "{t}");
    let header = jsonwebtoken::decode_header(t["id_token"].as_str().unwrap()).unwrap();
    header.kid.unwrap()
}

#[tokio::test]
async fn groups_appear_in_the_groups_claim() {
    on_every_backend!(|c, srv, _db| {
        let u = user(&c, &srv, "oidcgroup").await;
        let name = srv.sesame.oidc_groups().await.unwrap();
        assert!(name.is_empty());
        let (id, _) = client(&srv, true, true, IdTokenAlg::RS256).await;
        assert!(srv.sesame.oidc_group_create("staff").await.unwrap());
        assert!(!srv.sesame.oidc_group_create("staff").await.unwrap());
        assert!(srv.sesame.oidc_group_create("bad name").await.is_err());
        let username = u.name.clone();
        assert!(srv
            .sesame
            .oidc_group_member("staff", &username, true)
            .await
            .unwrap());
        let (_, t) = exchange(&srv, &id, &code(&srv, &u, &id).await, VERIFIER).await;
        let claims = super::verify(&srv, t["id_token"].as_str().unwrap(), &id)
            .await
            .unwrap();
        assert_eq!(claims["groups"], serde_json::json!(["staff"]));
        let groups = srv.sesame.oidc_groups().await.unwrap();
        assert_eq!(groups[0].members, vec![username.clone()]);
        assert!(srv
            .sesame
            .oidc_group_member("staff", &username, false)
            .await
            .unwrap());
        let (_, info) = userinfo(&srv, t["access_token"].as_str().unwrap()).await;
        assert_eq!(info["groups"], serde_json::json!([]));
        assert!(srv.sesame.oidc_group_delete("staff").await.unwrap());
    });
}

#[tokio::test]
async fn key_rotation_publishes_first_and_keeps_the_old_key_until_its_tokens_expire() {
    on_every_backend!(|c, srv, _db| {
        let u = user(&c, &srv, "oidckeys").await;
        let (id, _) = client(&srv, true, true, IdTokenAlg::RS256).await;
        let old = id_token_kid(&srv, &u, &id).await;
        assert_eq!(jwks_kids(&srv, "RS256").await, vec![old.clone()]);
        let new = srv.sesame.oidc_rotate_keys(3600).await.unwrap();
        // Published at once, not signing yet.
        let published = jwks_kids(&srv, "RS256").await;
        assert!(
            published.contains(&old) && published.contains(&new[0]),
            "{published:?}"
        );
        assert_eq!(id_token_kid(&srv, &u, &id).await, old);
        // Signing after the delay; the old key stays published while its tokens live.
        srv.clock.advance(3601);
        assert_eq!(id_token_kid(&srv, &u, &id).await, new[0]);
        assert!(jwks_kids(&srv, "RS256").await.contains(&old));
        srv.clock
            .advance(u64::try_from(ID_TOKEN_TTL_SECS).unwrap() + 301);
        assert_eq!(jwks_kids(&srv, "RS256").await, vec![new[0].clone()]);
        // EdDSA: the access tokens' key and the new ID-token key.
        let eddsa = jwks_kids(&srv, "EdDSA").await;
        assert!(eddsa.len() == 2 && eddsa.contains(&new[1]), "{eddsa:?}");
    });
}

#[tokio::test]
async fn clients_declared_in_the_configuration_are_registered_and_removed() {
    for db in super::common::backends().await {
        let declared = ClientSpec {
            id: Some("grafana".into()),
            name: "Grafana".into(),
            redirect_uris: vec!["https://grafana.example/login/generic_oauth".into()],
            secret: Some("a-configured-secret-of-at-least-32-chars".into()),
            ..ClientSpec::default()
        };
        let srv =
            TestServer::start_with(&db, |cfg| cfg.oidc_clients = vec![declared.clone()]).await;
        let c = srv.sesame.oidc_client("grafana").await.unwrap().unwrap();
        assert_eq!((c.source.as_str(), c.public), ("config", false));
        let (_, cli_secret) = client(&srv, true, false, IdTokenAlg::EdDSA).await;
        assert!(cli_secret.is_none());
        srv.stop().await;
        let srv = TestServer::start(&db).await;
        assert!(srv.sesame.oidc_client("grafana").await.unwrap().is_none());
        assert_eq!(
            srv.sesame.oidc_clients().await.unwrap().len(),
            1,
            "the CLI's client stays"
        );
        let mut bad = declared.clone();
        bad.secret = None;
        assert!(srv.sesame.oidc_sync_config_clients(&[bad]).await.is_err());
        srv.stop().await;
        db.cleanup().await;
    }
}
