//! The browser app's serving and cookie session over HTTP, on SQLite and PostgreSQL: pages and
//! assets with their headers, the cookie's attributes, refresh and sign-out through the cookie,
//! and cross-site requests refused. (The app itself runs in Chromium in
//! `crates/sesame-cli/tests/web.rs`.)

mod common;

use common::api::{register, tokens, username, PASSWORD};
use common::on_every_backend;
use reqwest::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, SET_COOKIE};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

/// POST `path` with the cookie (if any), `extra` headers, and an optional JSON body.
async fn web_post(
    c: &Client,
    base: &str,
    path: &str,
    cookie: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = c.post(format!("{base}{path}"));
    if let Some(cookie) = cookie {
        req = req.header("cookie", cookie);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

async fn code(resp: reqwest::Response) -> String {
    let body: Value = resp.json().await.unwrap();
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn pages_and_assets_carry_their_headers() {
    on_every_backend!(|c, srv, _db| {
        for page in sesame_server::web::PAGES {
            let resp = c.get(format!("{}{page}", srv.base)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::OK, "{page}");
            let csp = resp.headers()[CONTENT_SECURITY_POLICY].to_str().unwrap();
            assert_eq!(csp, sesame_server::web::CONTENT_SECURITY_POLICY);
            assert_eq!(resp.headers()[CACHE_CONTROL], "no-store");
            assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
            assert_eq!(resp.headers()["referrer-policy"], "no-referrer");
            let html = resp.text().await.unwrap();
            assert!(html.contains(sesame_server::web::asset_set()));
        }
        let set = sesame_server::web::asset_set();
        let asset = c
            .get(format!("{}/assets/{set}/js/contract.mjs", srv.base))
            .send()
            .await
            .unwrap();
        assert_eq!(asset.status(), StatusCode::OK);
        assert!(asset.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
        let module = asset.text().await.unwrap();
        assert!(module.contains("\"CROSS_SITE_REQUEST\":\"cross_site_request\""));
        // Another build's set, or a file that is not embedded: 404 JSON, never a guess.
        for path in [
            "/assets/0000000000000000/app.css".to_owned(),
            format!("/assets/{set}/../Cargo.toml"),
            format!("/assets/{set}/vendor/package.json"),
        ] {
            let resp = c.get(format!("{}{path}", srv.base)).send().await.unwrap();
            assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
        }
    });
}

#[tokio::test]
async fn the_cookie_session_refreshes_signs_out_and_refuses_other_sites() {
    on_every_backend!(|c, srv, _db| {
        let name = username("web");
        register(&c, &srv, &name).await;
        let (_, session) = tokens(&c, &srv, &name, PASSWORD).await;
        let base = &srv.base;
        let same = [("sec-fetch-site", "same-origin")];

        // A bad token sets nothing; a good one sets an HttpOnly, SameSite=Strict cookie.
        let bad = json!({ "session_token": "sess_nothing" });
        let resp = web_post(&c, base, "/web/session", None, &same, Some(bad)).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers().get(SET_COOKIE).is_none());
        let body = json!({ "session_token": session });
        let resp = web_post(&c, base, "/web/session", None, &same, Some(body.clone())).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let set = resp.headers()[SET_COOKIE].to_str().unwrap().to_owned();
        for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
            assert!(set.contains(attr), "{set}");
        }
        assert!(!set.contains("Secure"), "no TLS here: {set}");
        let grant: Value = resp.json().await.unwrap();
        assert!(grant["access_token"].as_str().unwrap().len() > 20);
        let cookie = set.split(';').next().unwrap().to_owned();

        // Cross-site: refused whatever the route, by Sec-Fetch-Site or, without it, by Origin.
        let other = [("sec-fetch-site", "same-site")];
        let evil_origin = [("origin", "http://evil.example")];
        for (path, headers) in [
            ("/web/refresh", &other[..]),
            ("/web/logout", &other[..]),
            ("/web/logout", &evil_origin[..]),
            ("/web/session", &other[..]),
        ] {
            let resp = web_post(&c, base, path, Some(&cookie), headers, Some(body.clone())).await;
            assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
            assert_eq!(code(resp).await, "cross_site_request");
        }

        // Same origin (by Sec-Fetch-Site, or by an Origin naming this host): new access tokens.
        let host = base.trim_start_matches("http://");
        let own_origin = format!("http://{host}");
        for headers in [&same[..], &[("origin", own_origin.as_str())][..]] {
            let resp = web_post(&c, base, "/web/refresh", Some(&cookie), headers, None).await;
            assert_eq!(resp.status(), StatusCode::OK);
        }

        // Sign-out ends the session and clears the cookie; the cookie then refreshes nothing.
        let resp = web_post(&c, base, "/web/logout", Some(&cookie), &same, None).await;
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        assert!(resp.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        let resp = web_post(&c, base, "/web/refresh", Some(&cookie), &same, None).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert!(resp.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0"));
        assert_eq!(code(resp).await, "session_invalid");
        let resp = web_post(&c, base, "/web/refresh", None, &same, None).await;
        assert_eq!(code(resp).await, "session_invalid");
    });
}
