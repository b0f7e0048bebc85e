//! Every HTTP route against a real server on loopback, on SQLite and PostgreSQL, with positive
//! and negative cases.

mod common;

use common::api::{
    delete_auth, err, get, get_auth, login, login_start, opaque_login, opaque_start, post, refresh,
    register, rng, PASSWORD,
};
use common::server::{other_master_key, TestServer};
use common::{backends, on_every_backend, TestDb};
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use sesame_proto::client::{self, ClientPolicy};
use sesame_proto::messages::{LoginChallenge, LoginFinish, RegistrationChallenge};

/// Client-side OPAQUE registration through /api/register/{start,finish}.
async fn register_opaque(
    c: &Client,
    srv: &TestServer,
    name: &str,
    password: &str,
) -> (StatusCode, Value) {
    let mut r = rng();
    let (state, start) = client::start_registration(&mut r, name, password).unwrap();
    let (status, body) = post(c, srv, "/api/register/start", &start).await;
    if status != StatusCode::OK {
        return (status, body);
    }
    let challenge: RegistrationChallenge = serde_json::from_value(body).unwrap();
    let done = state
        .finish(&mut r, &challenge, &ClientPolicy::default())
        .unwrap();
    post(c, srv, "/api/register/finish", &done.message).await
}

/// An OPAQUE login over REST whose client half refuses the challenge (a wrong password or
/// an unknown user), with a forged KE3 sent anyway: the server's answer to it. `None` if
/// the server refused the start or the client accepted the challenge.
async fn forged_login(
    c: &Client,
    srv: &TestServer,
    name: &str,
    password: &str,
) -> Option<(StatusCode, Value)> {
    let (state, status, body) = login_start(c, srv, name, password).await;
    if status != StatusCode::OK {
        return None;
    }
    let challenge: LoginChallenge = serde_json::from_value(body).unwrap();
    state
        .finish(&mut rng(), &challenge, &ClientPolicy::default())
        .err()?;
    let forged = LoginFinish {
        login_id: challenge.login_id.clone(),
        ke3: sesame_proto::b64::Bytes(vec![0x42; 64]),
        device_key_id: None,
        device_signature: None,
    };
    Some(post(c, srv, "/api/login/finish", &forged).await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_assisted_registration_and_its_errors() {
    on_every_backend!(|c, srv, db| {
        // Seed 001 shape at /register, canonicalised name in the answer.
        let (s, b) = post(
            &c,
            &srv,
            "/register",
            json!({"username": "Ａｌｉｃｅ", "password": PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::CREATED, "{} {b}", db.name);
        assert_eq!(b["username"], "alice");
        assert_eq!(b["message"], "User registered successfully.");
        assert_eq!(b["uuid"], b["user_id"]);
        // The same name in another spelling is taken.
        let (s, b) = post(
            &c,
            &srv,
            "/api/register",
            json!({"username": "ALICE", "password": PASSWORD}),
        )
        .await;
        assert_eq!((s, err(&b)), (StatusCode::CONFLICT, "username_taken"));
        let cases = [
            (
                json!({"username": "al", "password": PASSWORD}),
                "username_too_short",
            ),
            (
                json!({"username": "a".repeat(33), "password": PASSWORD}),
                "username_too_long",
            ),
            (
                json!({"username": "bob smith", "password": PASSWORD}),
                "username_invalid_character",
            ),
            (
                json!({"username": "_bob", "password": PASSWORD}),
                "username_invalid_start",
            ),
            (
                json!({"username": "admin", "password": PASSWORD}),
                "username_reserved",
            ),
            (
                json!({"username": "bob", "password": "short"}),
                "password_too_short",
            ),
            (
                json!({"username": "bob", "password": "x".repeat(129)}),
                "password_too_long",
            ),
            (
                json!({"username": "bob", "password": "my-bob-password"}),
                "password_contains_username",
            ),
            (
                json!({"username": "bob", "password": "password1"}),
                "password_common",
            ),
            (json!({"username": "bob"}), "invalid_request"),
            (
                json!({"username": "bob", "password": PASSWORD, "extra": 1}),
                "invalid_request",
            ),
            (
                json!({"username": 5, "password": PASSWORD}),
                "invalid_request",
            ),
        ];
        for (body, want) in cases {
            let (s, b) = post(&c, &srv, "/api/register", body.clone()).await;
            assert_eq!((s, err(&b)), (StatusCode::BAD_REQUEST, want), "{body}");
            assert!(b["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
        }
    });
}

/// Only a JSON object is a body: an array whose elements would fit the fields is refused
/// (serde alone would read `["name","password"]` as the struct), and a path parameter that is
/// not UTF-8 gets the JSON error, not a plain-text one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrays_as_bodies_and_undecodable_path_parameters_are_json_errors() {
    on_every_backend!(|c, srv, db| {
        for (path, body) in [
            ("/api/register", json!(["arrayuser", "long password 12345"])),
            ("/api/login", json!(["arrayuser", "long password 12345"])),
            ("/api/session/refresh", json!(["sst_x"])),
        ] {
            let r = c.post(srv.url(path)).json(&body).send().await.unwrap();
            assert_eq!(r.status(), StatusCode::BAD_REQUEST, "[{}] {path}", db.name);
            assert_eq!(err(&r.json().await.unwrap()), "invalid_request", "{path}");
        }
        let r = c
            .post(srv.url("/api/register"))
            .body("\"just a string\"")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err(&r.json().await.unwrap()), "invalid_request");
        let (s, _) = register_opaque(&c, &srv, "pathuser", PASSWORD).await;
        assert_eq!(s, StatusCode::CREATED);
        let session = opaque_login(&c, &srv, "pathuser", PASSWORD).await;
        let token = session["access_token"].as_str().unwrap();
        let r = c
            .delete(srv.url("/api/sessions/%00%ff"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err(&r.json().await.unwrap()), "invalid_request");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_clear_4xx_answers() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        let r = c
            .post(srv.url("/api/login/start"))
            .body("{not json")
            .header("content-type", "application/json")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert_eq!(err(&r.json().await.unwrap()), "invalid_json");
        let r = c
            .post(srv.url("/api/login/start"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(err(&r.json().await.unwrap()), "unsupported_media_type");
        let big = json!({"username": "x".repeat(70_000), "password": "y"});
        let r = c
            .post(srv.url("/api/register"))
            .json(&big)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(err(&r.json().await.unwrap()), "payload_too_large");
        let r = c.get(srv.url("/api/nothing-here")).send().await.unwrap();
        assert_eq!(
            (r.status(), err(&r.json().await.unwrap()).to_owned()),
            (StatusCode::NOT_FOUND, "not_found".into())
        );
        let r = c.get(srv.url("/api/login")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(err(&r.json().await.unwrap()), "method_not_allowed");
        // Binary fields must be canonical base64url of the right length.
        for ke1 in ["!!!", "AAAA", "AAAA=", &"A".repeat(128)] {
            let (s, b) = post(
                &c,
                &srv,
                "/api/login/start",
                json!({"username": "alice", "ke1": ke1}),
            )
            .await;
            assert_eq!(s, StatusCode::BAD_REQUEST, "{ke1}: {b}");
            assert!(
                matches!(err(&b), "invalid_request" | "invalid_message"),
                "{b}"
            );
        }
        let (s, b) = post(
            &c,
            &srv,
            "/api/login/finish",
            json!({"login_id": "nope", "ke3": "AAAA"}),
        )
        .await;
        assert_eq!((s, err(&b)), (StatusCode::BAD_REQUEST, "unknown_login"));
        let (s, _) = post(&c, &srv, "/api/register/finish", json!({"username": "zed", "registration_record": "AAAA", "key_stretching": {"argon2id-custom": {"memory": 19456, "iterations": 2, "parallelism": 1}}})).await;
        assert_eq!(s, StatusCode::BAD_REQUEST);
        let r = c.get(srv.url("/healthz")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "still serving");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_side_registration_then_opaque_login_and_password_login() {
    on_every_backend!(|c, srv, db| {
        let (s, b) = register_opaque(&c, &srv, "carol", PASSWORD).await;
        assert_eq!(s, StatusCode::CREATED, "{} {b}", db.name);
        let user_id = b["user_id"].as_str().unwrap().to_owned();
        let (s, b) = register_opaque(&c, &srv, "Carol", PASSWORD).await;
        assert_eq!((s, err(&b)), (StatusCode::CONFLICT, "username_taken"));

        let session = opaque_login(&c, &srv, "carol", PASSWORD).await;
        assert_eq!(session["user_id"], user_id.as_str());
        assert_eq!(session["username"], "carol");
        assert_eq!(session["token_type"], "Bearer");
        assert!(session["session_token"]
            .as_str()
            .unwrap()
            .starts_with("sst_"));
        let (s, me) = get_auth(
            &c,
            &srv,
            "/api/me",
            session["access_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(me["username"], "carol");
        assert_eq!(me["status"], "active");

        // Password login on the client-side record, seed 004 fields included.
        let (s, b) = login(&c, &srv, "carol", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        assert_eq!(b["message"], "Login successful.");
        assert_eq!(b["uuid"], user_id.as_str());
        assert_eq!(b["token"], b["access_token"]);
        assert!(b["expires_at"].as_str().unwrap().ends_with('Z'));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_look_the_same() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        register(&c, &srv, "dave").await;
        let Some((s1, b1)) = forged_login(&c, &srv, "dave", "not the password").await else {
            panic!("a wrong password must not log in")
        };
        let Some((s2, b2)) = forged_login(&c, &srv, "nobody-here", PASSWORD).await else {
            panic!("an unknown user must not log in")
        };
        assert_eq!((s1, &b1), (StatusCode::UNAUTHORIZED, &b2));
        assert_eq!(err(&b1), "authentication_failed");
        assert_eq!(s2, StatusCode::UNAUTHORIZED);
        // Password login: same status and body for both.
        let (s1, b1) = login(&c, &srv, "dave", "not the password").await;
        let (s2, b2) = login(&c, &srv, "nobody-here", PASSWORD).await;
        assert_eq!((s1, b1.clone()), (s2, b2));
        assert_eq!(
            (s1, err(&b1)),
            (StatusCode::UNAUTHORIZED, "authentication_failed")
        );
        // The challenges for a known and an unknown user have the same fields and sizes.
        let mut r = rng();
        let (_, start) = client::start_login(&mut r, "dave", PASSWORD).unwrap();
        let (_, known) = post(&c, &srv, "/api/login/start", &start).await;
        let unknown_start = json!({"username": "nobody-here", "ke1": start.ke1});
        let (_, unknown) = post(&c, &srv, "/api/login/start", unknown_start).await;
        let shape = |v: &Value| {
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.to_string().len()))
                .collect::<Vec<_>>()
        };
        assert_eq!(shape(&known), shape(&unknown));
        assert_eq!(known["key_stretching"], unknown["key_stretching"]);
        // The audit log tells the operator what happened, the client did not learn it.
        let audit = srv.sesame.admin_audit(None, None, 50).await.unwrap();
        let reasons: Vec<_> = audit
            .iter()
            .filter(|e| e.event == "login.failure")
            .filter_map(|e| e.reason.clone())
            .collect();
        assert!(reasons.iter().any(|r| r == "bad_proof"), "{reasons:?}");
        assert!(reasons.iter().any(|r| r == "unknown_user"), "{reasons:?}");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_ids_are_single_use_and_expire() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        register(&c, &srv, "erin").await;
        // Replay: finishing the same login twice.
        let (_, done) = opaque_start(&c, &srv, "erin", PASSWORD).await;
        let finish = serde_json::to_value(&done.message).unwrap();
        let (s, _) = post(&c, &srv, "/api/login/finish", finish.clone()).await;
        assert_eq!(s, StatusCode::OK);
        let (s, b) = post(&c, &srv, "/api/login/finish", finish).await;
        assert_eq!((s, err(&b)), (StatusCode::BAD_REQUEST, "unknown_login"));
        // Expiry: 60 s by default.
        let (ch, done) = opaque_start(&c, &srv, "erin", PASSWORD).await;
        assert_eq!(ch.expires_in, 60);
        srv.clock.advance(61);
        let (s, b) = post(&c, &srv, "/api/login/finish", &done.message).await;
        assert_eq!((s, err(&b)), (StatusCode::BAD_REQUEST, "login_expired"));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_attempts_bring_growing_delays_not_a_lockout() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        register(&c, &srv, "frank").await;
        let wrong = json!({"username": "frank", "password": "not the password"});
        for i in 1..=5 {
            let (s, b) = post(&c, &srv, "/api/login", wrong.clone()).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::UNAUTHORIZED, "authentication_failed"),
                "attempt {i}"
            );
        }
        // The 6th passes the gate (1 s delay starts), the 7th right away is throttled.
        let (s, _) = post(&c, &srv, "/api/login", wrong.clone()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let resp = c
            .post(srv.url("/api/login"))
            .json(&wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry: u64 = resp.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=2).contains(&retry), "{retry}");
        assert_eq!(err(&resp.json().await.unwrap()), "too_many_attempts");
        // OPAQUE starts are throttled the same way (they count as attempts).
        let mut r = rng();
        let (_, start) = client::start_login(&mut r, "frank", PASSWORD).unwrap();
        let (s, _) = post(&c, &srv, "/api/login/start", &start).await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
        // After the delay the right password gets in and resets the counter.
        srv.clock.advance(2);
        let (s, b) = login(&c, &srv, "frank", PASSWORD).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        for _ in 0..5 {
            let (s, _) = post(&c, &srv, "/api/login", wrong.clone()).await;
            assert_eq!(
                s,
                StatusCode::UNAUTHORIZED,
                "the count restarted after the success"
            );
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_attempts_cannot_slip_past_the_counter() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        register(&c, &srv, "grace").await;
        let mut tasks = Vec::new();
        for _ in 0..24 {
            let (c, url) = (c.clone(), srv.url("/api/login/start"));
            let mut r = rng();
            let (_, start) = client::start_login(&mut r, "grace", PASSWORD).unwrap();
            tasks.push(tokio::spawn(async move {
                c.post(url).json(&start).send().await.unwrap().status()
            }));
        }
        let mut passed = 0;
        for t in tasks {
            match t.await.unwrap() {
                StatusCode::OK => passed += 1,
                StatusCode::TOO_MANY_REQUESTS => {}
                other => panic!("unexpected {other}"),
            }
        }
        // Five free attempts and one through the first gate, however the 24 interleave.
        assert_eq!(passed, 6);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_address_limit_answers_429() {
    let db = TestDb::sqlite();
    let srv = TestServer::start_with(&db, |c| {
        c.throttle_per_address = 3;
        c.throttle_address_window = 60;
    })
    .await;
    let c = Client::new();
    for i in 0..3 {
        let (s, _) = login(&c, &srv, &format!("user{i}"), PASSWORD).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let resp = c
        .post(srv.url("/api/register"))
        .json(&json!({"username": "henry", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(resp.headers().contains_key("retry-after"));
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn banned_accounts_learn_it_only_after_a_correct_proof() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        register(&c, &srv, "ivan").await;
        let before = opaque_login(&c, &srv, "ivan", PASSWORD).await;
        srv.sesame.admin_set_banned("ivan", true).await.unwrap();
        // The ban revoked the session.
        let (s, _) = get_auth(
            &c,
            &srv,
            "/api/me",
            before["access_token"].as_str().unwrap(),
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, b) = refresh(&c, &srv, &before["session_token"]).await;
        assert_eq!((s, err(&b)), (StatusCode::UNAUTHORIZED, "session_invalid"));
        // Wrong password: the usual answer, nothing about the ban.
        let (s, b) = login(&c, &srv, "ivan", "not the password").await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "authentication_failed")
        );
        // Right password: now it says so, on both login paths.
        let (s, b) = login(&c, &srv, "ivan", PASSWORD).await;
        assert_eq!((s, err(&b)), (StatusCode::FORBIDDEN, "account_banned"));
        let (_, done) = opaque_start(&c, &srv, "ivan", PASSWORD).await;
        let (s, b) = post(&c, &srv, "/api/login/finish", &done.message).await;
        assert_eq!((s, err(&b)), (StatusCode::FORBIDDEN, "account_banned"));
        srv.sesame.admin_set_banned("ivan", false).await.unwrap();
        opaque_login(&c, &srv, "ivan", PASSWORD).await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_refresh_list_revoke_and_logout() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        register(&c, &srv, "judy").await;
        let a = opaque_login(&c, &srv, "judy", PASSWORD).await;
        let b = opaque_login(&c, &srv, "judy", PASSWORD).await;
        let a_token = a["access_token"].as_str().unwrap().to_owned();

        let (s, list) = get_auth(&c, &srv, "/api/sessions", &a_token).await;
        assert_eq!(s, StatusCode::OK);
        let sessions = list["sessions"].as_array().unwrap();
        assert_eq!(sessions.len(), 2);
        let current: Vec<_> = sessions.iter().filter(|s| s["current"] == true).collect();
        assert_eq!(current.len(), 1);
        assert_eq!(current[0]["id"], a["session_id"]);
        assert_eq!(current[0]["methods"], json!(["pwd"]));

        // Refresh gives a new working access token.
        let (s, grant) = refresh(&c, &srv, &a["session_token"]).await;
        assert_eq!(s, StatusCode::OK, "{grant}");
        assert_eq!(grant["expires_in"], 900);
        let (s, _) = get_auth(&c, &srv, "/api/me", grant["access_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::OK);
        for bad in ["", "sst_nope", "not-a-token"] {
            let (s, body) = refresh(&c, &srv, bad).await;
            assert_eq!(
                (s, err(&body)),
                (StatusCode::UNAUTHORIZED, "session_invalid")
            );
        }

        // Revoke b from a; b's token stops working at once.
        let b_id = b["session_id"].as_str().unwrap();
        let b_path = format!("/api/sessions/{b_id}");
        let (s, _) = delete_auth(&c, &srv, &b_path, &a_token).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, _) = delete_auth(&c, &srv, &b_path, &a_token).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = delete_auth(&c, &srv, "/api/sessions/not-a-uuid", &a_token).await;
        assert_eq!(s, StatusCode::NOT_FOUND);
        let (s, _) = get_auth(&c, &srv, "/api/me", b["access_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Someone else's session cannot be revoked.
        register(&c, &srv, "mallory").await;
        let m = opaque_login(&c, &srv, "mallory", PASSWORD).await;
        let a_path = format!("/api/sessions/{}", a["session_id"].as_str().unwrap());
        let (s, _) = delete_auth(&c, &srv, &a_path, m["access_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::NOT_FOUND);

        // Logout ends a; refresh with its session token fails.
        let r = c
            .post(srv.url("/api/logout"))
            .bearer_auth(&a_token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NO_CONTENT);
        let (s, body) = refresh(&c, &srv, &a["session_token"]).await;
        assert_eq!(
            (s, err(&body)),
            (StatusCode::UNAUTHORIZED, "session_invalid")
        );

        // Logout-all.
        let x = opaque_login(&c, &srv, "judy", PASSWORD).await;
        opaque_login(&c, &srv, "judy", PASSWORD).await;
        let r = c
            .post(srv.url("/api/logout-all"))
            .bearer_auth(x["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.json::<Value>().await.unwrap()["revoked"], 2);

        // Authentication errors.
        for header in ["", "Bearer", "Bearer abc.def.ghi", "Basic Zm9vOmJhcg=="] {
            let r = c
                .get(srv.url("/api/me"))
                .header("authorization", header)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{header}");
            assert_eq!(err(&r.json().await.unwrap()), "unauthorized");
        }
        let audit = srv
            .sesame
            .admin_audit(Some("judy"), None, 100)
            .await
            .unwrap();
        for event in [
            "register",
            "login.success",
            "session.revoked",
            "logout",
            "logout_all",
        ] {
            assert!(audit.iter().any(|e| e.event == event), "missing {event}");
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_and_access_tokens_expire() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        register(&c, &srv, "kate").await;
        let s1 = opaque_login(&c, &srv, "kate", PASSWORD).await;
        // Access tokens last 15 minutes.
        srv.clock.advance(901);
        let (s, _) = get_auth(&c, &srv, "/api/me", s1["access_token"].as_str().unwrap()).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, grant) = refresh(&c, &srv, &s1["session_token"]).await;
        assert_eq!(s, StatusCode::OK, "{grant}");
        // Seven idle days end the session; the cleanup removes it.
        srv.clock.advance(7 * 24 * 3600 + 1);
        let (s, body) = refresh(&c, &srv, &s1["session_token"]).await;
        assert_eq!(
            (s, err(&body)),
            (StatusCode::UNAUTHORIZED, "session_invalid")
        );
        let s2 = opaque_login(&c, &srv, "kate", PASSWORD).await;
        srv.clock.advance(8 * 24 * 3600);
        let (deleted, _) = srv.sesame.cleanup(None).await.unwrap();
        assert_eq!(deleted, 1);
        let _ = s2;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn well_known_documents_and_health() {
    on_every_backend!(|c, srv, db| {
        let _ = &db;
        let (_, jwks) = get(&c, &srv, "/.well-known/jwks.json").await;
        let key = &jwks["keys"][0];
        assert_eq!(
            (
                key["kty"].as_str(),
                key["crv"].as_str(),
                key["alg"].as_str()
            ),
            (Some("OKP"), Some("Ed25519"), Some("EdDSA"))
        );
        let (_, info) = get(&c, &srv, "/.well-known/sesame").await;
        let (pk, fp) = srv.sesame.server_identity();
        assert_eq!(info["opaque_public_key"], sesame_proto::b64::encode(pk));
        assert_eq!(info["fingerprint"], fp);
        let (_, health) = get(&c, &srv, "/healthz").await;
        assert_eq!(health["status"], "ok");
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saturated_hash_pool_answers_503_and_other_routes_keep_working() {
    let db = TestDb::sqlite();
    let srv = TestServer::start_with(&db, |c| {
        c.hash_threads = Some(1);
        c.hash_queue = 1;
    })
    .await;
    let c = Client::new();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let (c, url) = (c.clone(), srv.url("/api/login"));
        tasks.push(tokio::spawn(async move {
            let r = c
                .post(url)
                .json(&json!({"username": format!("pool{i}"), "password": PASSWORD}))
                .send()
                .await
                .unwrap();
            (r.status(), r.headers().get("retry-after").cloned())
        }));
    }
    // While the pool is saturated, health checks answer at once.
    let health = c.get(srv.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let mut busy = 0;
    for t in tasks {
        let (status, retry) = t.await.unwrap();
        match status {
            StatusCode::SERVICE_UNAVAILABLE => {
                busy += 1;
                assert!(retry.is_some());
            }
            StatusCode::UNAUTHORIZED => {}
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        busy > 0,
        "12 parallel hashes on 1 thread with a queue of 1 must overflow"
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_keeps_accounts_and_keys_and_a_wrong_master_key_is_refused() {
    for db in backends().await {
        let c = Client::new();
        let srv = TestServer::start(&db).await;
        register(&c, &srv, "liam").await;
        let (pk, _) = srv.sesame.server_identity();
        srv.stop().await;
        let srv = TestServer::start(&db).await;
        assert_eq!(
            srv.sesame.server_identity().0,
            pk,
            "{}: the OPAQUE key survives",
            db.name
        );
        opaque_login(&c, &srv, "liam", PASSWORD).await;
        srv.stop().await;
        // The same database with another master key: a clear start-up error, no regeneration.
        let dir = tempfile::tempdir().unwrap();
        let mut config = common::server::test_config(&db, dir.path());
        config.master_key = Some(other_master_key());
        let (store, master) = sesame_server::server::open(&config).await.unwrap();
        let err = sesame_server::server::build(&config, store.clone(), &master)
            .await
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("master key does not match"),
            "{err}"
        );
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_creates_a_key_once_and_never_replaces_a_lost_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = sesame_server::config::Config {
        data_dir: dir.path().join("data"),
        ..Default::default()
    };
    // First start: data directory (0700), database and key file (0600) are created.
    let (store, master) = sesame_server::server::open(&config).await.unwrap();
    sesame_server::server::build(&config, store.clone(), &master)
        .await
        .unwrap();
    store.close().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&config.data_dir), 0o700);
        assert_eq!(mode(&config.data_dir.join("master.key")), 0o600);
    }
    // The key file is lost: start-up refuses instead of generating a key that cannot open
    // the existing secrets.
    std::fs::remove_file(config.data_dir.join("master.key")).unwrap();
    let err = sesame_server::server::open(&config).await.err().unwrap();
    assert!(err.to_string().contains("master key file"), "{err}");
    assert!(!config.data_dir.join("master.key").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    let login = |c: &Client, srv: &TestServer, forwarded: &str| {
        c.post(srv.url("/api/login"))
            .header("x-forwarded-for", forwarded)
            .json(&json!({"username": "nobody-at-all", "password": PASSWORD}))
            .send()
    };
    // Behind a trusted proxy each forwarded client has its own budget, and the audit log
    // shows the client, not the proxy.
    let db = TestDb::sqlite();
    let srv = TestServer::start_with(&db, |c| {
        c.throttle_per_address = 2;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let c = Client::new();
    for _ in 0..2 {
        assert_eq!(
            login(&c, &srv, "203.0.113.7").await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&c, &srv, "203.0.113.7").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // A client cannot escape by prepending a fake hop: the proxy appended the real one.
    assert_eq!(
        login(&c, &srv, "198.51.100.1, 203.0.113.7")
            .await
            .unwrap()
            .status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login(&c, &srv, "203.0.113.8").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let audit = srv.sesame.admin_audit(None, None, 10).await.unwrap();
    assert!(audit
        .iter()
        .any(|e| e.client_addr.as_deref() == Some("203.0.113.8")));
    srv.stop().await;

    // Without a trusted proxy the header is ignored: spoofing it does not reset the budget.
    let db = TestDb::sqlite();
    let srv = TestServer::start_with(&db, |c| c.throttle_per_address = 2).await;
    for ip in ["192.0.2.1", "192.0.2.2"] {
        assert_eq!(
            login(&c, &srv, ip).await.unwrap().status(),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        login(&c, &srv, "192.0.2.3").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_tokens_and_sessions_survive_a_restart() {
    let db = TestDb::sqlite();
    let c = Client::new();
    let srv = TestServer::start(&db).await;
    register(&c, &srv, "nora").await;
    let s = opaque_login(&c, &srv, "nora", PASSWORD).await;
    srv.stop().await;
    let srv = TestServer::start(&db).await;
    let (status, me) = get_auth(&c, &srv, "/api/me", s["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    let (status, _) = refresh(&c, &srv, &s["session_token"]).await;
    assert_eq!(status, StatusCode::OK);
    srv.stop().await;
}
