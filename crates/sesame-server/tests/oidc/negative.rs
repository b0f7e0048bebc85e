//! Every refusal: unregistered redirect URI, PKCE missing, `plain` or wrong, a replayed code
//! (and its tokens revoked), an expired code, `prompt=none` without a session, sign-in and
//! re-authentication redirects, a tampered ID token.

use reqwest::StatusCode;
use sesame_server::oidc::IdTokenAlg;

use super::common::on_every_backend;
use super::{
    authorize, client, code, err, exchange, location, pkce_request, query, user, userinfo, verify,
    CHALLENGE, REDIRECT, VERIFIER,
};

#[tokio::test]
async fn authorization_requests_are_refused_as_rfc_6749_says() {
    on_every_backend!(|c, srv, _db| {
        let u = user(&c, &srv, "oidcneg").await;
        let (id, _) = client(&srv, true, true, IdTokenAlg::RS256).await;
        let cookie = Some(u.cookie.as_str());
        // An unregistered redirect URI or client: a page, never a redirect.
        let mut p = pkce_request(&id, &[]);
        p[2] = ("redirect_uri", "http://127.0.0.1:9/evil");
        let resp = authorize(&srv, cookie, &p).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        assert!(resp.headers().get("location").is_none());
        assert!(resp.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'"));
        let mut p = pkce_request(&id, &[]);
        p[1] = ("client_id", "nobody");
        assert_eq!(
            authorize(&srv, cookie, &p).await.status(),
            StatusCode::BAD_REQUEST
        );
        // Errors after the redirect URI is known go back to the client.
        let cases: [(&[(&str, &str)], &str); 4] = [
            (&[("code_challenge_method", "plain")], "invalid_request"),
            (&[("response_type", "token")], "unsupported_response_type"),
            (&[("scope", "profile")], "invalid_scope"),
            (&[("prompt", "none login")], "invalid_request"),
        ];
        for (change, expected) in cases {
            let mut p = pkce_request(&id, &[]);
            for (k, v) in change {
                p.retain(|(pk, _)| pk != k);
                p.push((k, v));
            }
            let to = location(&authorize(&srv, cookie, &p).await);
            assert!(to.starts_with(REDIRECT), "{to}");
            assert_eq!(query(&to, "error").as_deref(), Some(expected), "{change:?}");
            assert_eq!(query(&to, "state").as_deref(), Some("st-1"));
        }
        // A public client without PKCE.
        let mut p = pkce_request(&id, &[]);
        p.retain(|(k, _)| !k.starts_with("code_challenge"));
        let to = location(&authorize(&srv, cookie, &p).await);
        assert_eq!(query(&to, "error").as_deref(), Some("invalid_request"));
        // Nobody signed in: to the sign-in page, or `login_required` with prompt=none.
        let to = location(&authorize(&srv, None, &pkce_request(&id, &[])).await);
        assert!(
            to.starts_with("/signin?next=%2Foauth2%2Fauthorize%3F"),
            "{to}"
        );
        let to = location(&authorize(&srv, None, &pkce_request(&id, &[("prompt", "none")])).await);
        assert_eq!(query(&to, "error").as_deref(), Some("login_required"));
        // prompt=login and an exceeded max_age ask for a new sign-in, without looping.
        let to =
            location(&authorize(&srv, cookie, &pkce_request(&id, &[("prompt", "login")])).await);
        assert_eq!(query(&to, "login").as_deref(), Some("1"));
        assert!(!query(&to, "next").unwrap().contains("prompt=login"));
        srv.clock.advance(120);
        let to = location(&authorize(&srv, cookie, &pkce_request(&id, &[("max_age", "60")])).await);
        assert_eq!(query(&to, "login").as_deref(), Some("1"));
        let to =
            location(&authorize(&srv, cookie, &pkce_request(&id, &[("max_age", "600")])).await);
        assert!(query(&to, "code").is_some(), "{to}");
    });
}

#[tokio::test]
async fn codes_are_single_use_short_lived_and_bound_to_pkce() {
    on_every_backend!(|c, srv, _db| {
        let u = user(&c, &srv, "oidccode").await;
        let (id, _) = client(&srv, true, true, IdTokenAlg::RS256).await;
        // Missing or wrong verifier.
        let c1 = code(&srv, &u, &id).await;
        let (status, e) = exchange(&srv, &id, &c1, "").await;
        assert_eq!(
            (status, err(&e)),
            (StatusCode::BAD_REQUEST, "invalid_grant")
        );
        let wrong = "x".repeat(43);
        let (_, e) = exchange(&srv, &id, &code(&srv, &u, &id).await, &wrong).await;
        assert_eq!(err(&e), "invalid_grant");
        assert_ne!(CHALLENGE, VERIFIER);
        // Expired: the code lives 60 seconds.
        let c2 = code(&srv, &u, &id).await;
        srv.clock.advance(61);
        let (_, e) = exchange(&srv, &id, &c2, VERIFIER).await;
        assert_eq!(err(&e), "invalid_grant");
        // Replayed: refused, and what the first use issued is revoked.
        let c3 = code(&srv, &u, &id).await;
        let (status, t) = exchange(&srv, &id, &c3, VERIFIER).await;
        assert_eq!(status, StatusCode::OK, "{t}");
        let access = t["access_token"].as_str().unwrap();
        assert_eq!(userinfo(&srv, access).await.0, StatusCode::OK);
        let (_, e) = exchange(&srv, &id, &c3, VERIFIER).await;
        assert_eq!(err(&e), "invalid_grant");
        assert_eq!(userinfo(&srv, access).await.0, StatusCode::UNAUTHORIZED);
        // A code of one client is useless to another.
        let (other, _) = client(&srv, true, true, IdTokenAlg::RS256).await;
        let (_, e) = exchange(&srv, &other, &code(&srv, &u, &id).await, VERIFIER).await;
        assert_eq!(err(&e), "invalid_grant");
        // A tampered ID token does not verify.
        let (_, t) = exchange(&srv, &id, &code(&srv, &u, &id).await, VERIFIER).await;
        let idt = t["id_token"].as_str().unwrap();
        let mut parts: Vec<String> = idt.split('.').map(str::to_owned).collect();
        let mut claims: serde_json::Value =
            serde_json::from_slice(&sesame_proto::b64::decode(&parts[1]).unwrap()).unwrap();
        claims["sub"] = "someone-else".into();
        parts[1] = sesame_proto::b64::encode(serde_json::to_vec(&claims).unwrap());
        assert!(verify(&srv, &parts.join("."), &id).await.is_err());
        assert!(verify(&srv, idt, &id).await.is_ok());
        // The cleanup deletes expired tokens and spent grants on both backends.
        srv.clock.advance(31 * 86_400);
        srv.sesame.cleanup(None).await.unwrap();
        let rt = t["refresh_token"].as_str().unwrap();
        let refresh = [
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", &id),
        ];
        let (_, e) = super::form(&srv, "/oauth2/token", &refresh, None).await;
        assert_eq!(err(&e), "invalid_grant");
        // Bad token requests.
        let (status, e) = super::form(
            &srv,
            "/oauth2/token",
            &[("grant_type", "password"), ("client_id", &id)],
            None,
        )
        .await;
        assert_eq!(
            (status, err(&e)),
            (StatusCode::BAD_REQUEST, "unsupported_grant_type")
        );
        let (status, e) = super::form(
            &srv,
            "/oauth2/token",
            &[("grant_type", "authorization_code")],
            None,
        )
        .await;
        assert_eq!(
            (status, err(&e)),
            (StatusCode::UNAUTHORIZED, "invalid_client")
        );
        let (status, e) = super::form(&srv, "/oauth2/userinfo", &[], None).await;
        assert_eq!(
            (status, err(&e)),
            (StatusCode::UNAUTHORIZED, "invalid_token")
        );
    });
}
