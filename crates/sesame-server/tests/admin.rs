//! The admin API (`/api/admin/…`) and `GET /api/me/activity`, on both backends: the role
//! check on every call, listing and searching, the actions and their effect on the target's
//! logins, fresh authentication, the audit log's filters and the audit rows of every call.

mod common;

use common::api::{call, err, get_auth, login, post_auth, register, tokens, PASSWORD};
use common::on_every_backend;
use common::server::TestServer;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};
use sesame_server::store::{AuditQuery, AuditRecord, Role};
use totp_rs::TOTP;
use uuid::Uuid;

/// Registers `name`, gives it the admin role (as the operator would) and logs in: the
/// access token and the user id.
async fn admin(c: &Client, srv: &TestServer, name: &str) -> (String, Uuid) {
    register(c, srv, name).await;
    let summary = srv.sesame.admin_set_role(name, Role::Admin).await.unwrap();
    assert!(summary.is_admin);
    let (token, _) = tokens(c, srv, name, PASSWORD).await;
    (token, summary.id)
}

/// Registers `name` and logs in: the access token.
async fn user(c: &Client, srv: &TestServer, name: &str) -> String {
    register(c, srv, name).await;
    tokens(c, srv, name, PASSWORD).await.0
}

/// `method path` with a bearer token and no body.
async fn send(
    c: &Client,
    srv: &TestServer,
    method: Method,
    path: &str,
    token: &str,
) -> (StatusCode, Value) {
    call(c, srv, method, path, Some(token), None).await
}

/// Every audit row, newest first.
async fn audit_rows(srv: &TestServer) -> Vec<AuditRecord> {
    let q = AuditQuery {
        limit: 10_000,
        ..AuditQuery::default()
    };
    srv.sesame.store().list_audit(&q).await.unwrap()
}

/// The names of a page of users.
fn names(page: &Value) -> Vec<&str> {
    page["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect()
}

const EVERY_ADMIN_ROUTE: [(&str, &str); 8] = [
    ("GET", "/api/admin/users"),
    ("GET", "/api/admin/users/someone"),
    ("DELETE", "/api/admin/users/someone"),
    ("POST", "/api/admin/users/someone/ban"),
    ("POST", "/api/admin/users/someone/unban"),
    ("POST", "/api/admin/users/someone/revoke-sessions"),
    ("POST", "/api/admin/users/someone/reset-2fa"),
    ("GET", "/api/admin/audit"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_get_in_and_the_role_is_read_on_every_call() {
    on_every_backend!(|c, srv, db| {
        let (root, _) = admin(&c, &srv, "grace").await;
        let bob = user(&c, &srv, "bob").await;
        let (_, me) = get_auth(&c, &srv, "/api/me", &bob).await;
        assert_eq!(
            (me["role"].as_str(), me["is_admin"].as_bool()),
            (Some("user"), Some(false))
        );
        let (_, me) = get_auth(&c, &srv, "/api/me", &root).await;
        assert_eq!(
            (me["role"].as_str(), me["is_admin"].as_bool()),
            (Some("admin"), Some(true))
        );
        for (method, path) in EVERY_ADMIN_ROUTE {
            let method = Method::from_bytes(method.as_bytes()).unwrap();
            let (s, b) = send(&c, &srv, method.clone(), path, &bob).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::FORBIDDEN, "forbidden"),
                "{} {method} {path}",
                db.name
            );
            let (s, b) = call(&c, &srv, method, path, None, None).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::UNAUTHORIZED, "unauthorized"),
                "{path}"
            );
        }
        let (s, _) = get_auth(&c, &srv, "/api/admin/users", &root).await;
        assert_eq!(s, StatusCode::OK);
        // Revoking the role takes effect at the next call, with the same token.
        srv.sesame
            .admin_set_role("grace", Role::User)
            .await
            .unwrap();
        let (s, b) = get_auth(&c, &srv, "/api/admin/users", &root).await;
        assert_eq!((s, err(&b)), (StatusCode::FORBIDDEN, "forbidden"));
        let events: Vec<String> = audit_rows(&srv)
            .await
            .into_iter()
            .map(|r| r.event)
            .collect();
        assert!(
            events.contains(&"admin.grant_admin".to_owned()),
            "{events:?}"
        );
        assert!(
            events.contains(&"admin.revoke_admin".to_owned()),
            "{events:?}"
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_list_search_and_show_users() {
    on_every_backend!(|c, srv, db| {
        let (root, _) = admin(&c, &srv, "grace").await;
        // One second apart: the list is in creation order.
        for name in ["caroline", "carol", "dave"] {
            srv.clock.advance(1);
            register(&c, &srv, name).await;
        }
        let (s, page) = get_auth(&c, &srv, "/api/admin/users", &root).await;
        assert_eq!(s, StatusCode::OK, "{}: {page}", db.name);
        assert_eq!(names(&page), ["grace", "caroline", "carol", "dave"]);
        assert_eq!(
            (page["total"].as_u64(), page["truncated"].as_bool()),
            (Some(4), Some(false))
        );
        let root_row = &page["users"][0];
        assert_eq!(root_row["is_admin"], true);
        assert_eq!(root_row["role"], "admin");
        assert_eq!(root_row["status"], "active");
        assert_eq!(root_row["sessions"], 1);
        assert_eq!(root_row["totp_enabled"], false);
        assert!(root_row["last_login_at"].is_i64());
        assert_eq!(page["users"][3]["is_admin"], false);
        let (_, page) = get_auth(&c, &srv, "/api/admin/users?limit=2&offset=1", &root).await;
        assert_eq!(names(&page), ["caroline", "carol"]);

        // Substring search, case-insensitive; an exact name comes first.
        let (_, page) = get_auth(&c, &srv, "/api/admin/users?q=CAR", &root).await;
        assert_eq!(
            (names(&page), page["total"].as_u64()),
            (vec!["caroline", "carol"], Some(2))
        );
        let (_, page) = get_auth(&c, &srv, "/api/admin/users?q=carol", &root).await;
        assert_eq!(names(&page), ["carol", "caroline"]);
        let (_, page) = get_auth(&c, &srv, "/api/admin/users?q=carol&offset=1", &root).await;
        assert_eq!(names(&page), ["caroline"]);
        let (_, page) = get_auth(&c, &srv, "/api/admin/users?q=zzz", &root).await;
        assert_eq!((names(&page).len(), page["total"].as_u64()), (0, Some(0)));

        let (s, one) = get_auth(&c, &srv, "/api/admin/users/Dave", &root).await;
        assert_eq!(s, StatusCode::OK, "{one}");
        assert_eq!(
            (one["username"].as_str(), one["sessions"].as_u64()),
            (Some("dave"), Some(0))
        );
        for missing in ["nobody", "x", "a%2Fb"] {
            let path = format!("/api/admin/users/{missing}");
            let (s, b) = get_auth(&c, &srv, &path, &root).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::NOT_FOUND, "user_not_found"),
                "{missing}"
            );
        }
        let long = "q".repeat(33);
        for bad in [
            "limit=0",
            "limit=101",
            "limit=ten",
            "offset=-1",
            "offset=2147483648",
            "colour=blue",
            &format!("q={long}"),
        ] {
            let path = format!("/api/admin/users?{bad}");
            let (s, b) = get_auth(&c, &srv, &path, &root).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::BAD_REQUEST, "invalid_request"),
                "{bad}: {b}"
            );
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ban_unban_revoke_and_delete_act_on_the_target_only() {
    on_every_backend!(|c, srv, db| {
        let (root, root_id) = admin(&c, &srv, "grace").await;
        let bob = user(&c, &srv, "bob").await;
        let (s, b) = send(&c, &srv, Method::POST, "/api/admin/users/bob/ban", &root).await;
        assert_eq!(s, StatusCode::OK, "{}: {b}", db.name);
        assert_eq!(
            (b["status"].as_str(), b["sessions"].as_u64()),
            (Some("banned"), Some(0))
        );
        let (s, _) = get_auth(&c, &srv, "/api/me", &bob).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "the ban ended bob's session");
        let (s, b) = login(&c, &srv, "bob", PASSWORD).await;
        assert_eq!((s, err(&b)), (StatusCode::FORBIDDEN, "account_banned"));

        let (s, b) = send(&c, &srv, Method::POST, "/api/admin/users/bob/unban", &root).await;
        assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("active")));
        let (bob, _) = tokens(&c, &srv, "bob", PASSWORD).await;
        tokens(&c, &srv, "bob", PASSWORD).await;

        let (s, b) = send(
            &c,
            &srv,
            Method::POST,
            "/api/admin/users/bob/revoke-sessions",
            &root,
        )
        .await;
        assert_eq!((s, b["revoked"].as_u64()), (StatusCode::OK, Some(2)), "{b}");
        let (s, _) = get_auth(&c, &srv, "/api/me", &bob).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);

        // Not on oneself; nothing changed.
        for (method, path) in [
            (Method::POST, "/api/admin/users/grace/ban"),
            (Method::DELETE, "/api/admin/users/GRACE"),
        ] {
            let (s, b) = send(&c, &srv, method, path, &root).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::BAD_REQUEST, "cannot_target_self"),
                "{path}"
            );
        }
        let (s, _) = get_auth(&c, &srv, "/api/me", &root).await;
        assert_eq!(s, StatusCode::OK);

        let (s, _) = send(&c, &srv, Method::DELETE, "/api/admin/users/bob", &root).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
        let (s, b) = get_auth(&c, &srv, "/api/admin/users/bob", &root).await;
        assert_eq!((s, err(&b)), (StatusCode::NOT_FOUND, "user_not_found"));
        let (s, b) = login(&c, &srv, "bob", PASSWORD).await;
        assert_eq!(
            (s, err(&b)),
            (StatusCode::UNAUTHORIZED, "authentication_failed")
        );
        let (s, b) = send(&c, &srv, Method::POST, "/api/admin/users/bob/unban", &root).await;
        assert_eq!((s, err(&b)), (StatusCode::NOT_FOUND, "user_not_found"));

        // Every action is in the audit log, about bob, by root.
        let rows = audit_rows(&srv).await;
        let by = format!("by={root_id}");
        for event in [
            "admin.ban",
            "admin.unban",
            "admin.revoke_sessions",
            "admin.delete",
        ] {
            let row = rows
                .iter()
                .find(|r| r.event == event)
                .unwrap_or_else(|| panic!("{event}"));
            assert!(row.reason.as_deref().unwrap().starts_with(&by), "{row:?}");
            assert_ne!(row.user_id, Some(root_id), "{row:?}");
            assert_eq!(row.client_addr.as_deref(), Some("127.0.0.1"));
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_2fa_lets_the_user_in_with_the_password_alone() {
    on_every_backend!(|c, srv, db| {
        let (root, _) = admin(&c, &srv, "grace").await;
        let tina = user(&c, &srv, "tina").await;
        let (s, qr) = post_auth(&c, &srv, "/api/generate-qr", &tina, json!({})).await;
        assert_eq!(s, StatusCode::OK, "{}: {qr}", db.name);
        let totp = TOTP::from_url_unchecked(qr["otpauthUrl"].as_str().unwrap()).unwrap();
        let code = totp.generate(srv.sesame.now());
        let body = json!({"totpCode": code});
        let (s, b) = post_auth(&c, &srv, "/api/enable-authenticator", &tina, body).await;
        assert_eq!(s, StatusCode::OK, "{b}");
        let (_, step) = login(&c, &srv, "tina", PASSWORD).await;
        assert_eq!(step["second_factor_required"], true, "{step}");
        let (_, one) = get_auth(&c, &srv, "/api/admin/users/tina", &root).await;
        assert_eq!(one["totp_enabled"], true);

        let (s, b) = send(
            &c,
            &srv,
            Method::POST,
            "/api/admin/users/tina/reset-2fa",
            &root,
        )
        .await;
        assert_eq!(
            (s, b["totp_enabled"].as_bool()),
            (StatusCode::OK, Some(false)),
            "{b}"
        );
        let (s, session) = login(&c, &srv, "tina", PASSWORD).await;
        assert_eq!(s, StatusCode::OK);
        assert!(session["access_token"].is_string(), "{session}");
        let row = audit_rows(&srv)
            .await
            .into_iter()
            .find(|r| r.event == "admin.reset_2fa");
        assert!(row.unwrap().reason.unwrap().ends_with("removed=1"));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destructive_actions_need_a_fresh_authentication() {
    on_every_backend!(|c, srv, db| {
        let (root, _) = admin(&c, &srv, "grace").await;
        register(&c, &srv, "bob").await;
        srv.clock.advance(srv.sesame.reauth_window() + 1);
        for (method, path) in [
            (Method::POST, "/api/admin/users/bob/ban"),
            (Method::POST, "/api/admin/users/bob/revoke-sessions"),
            (Method::POST, "/api/admin/users/bob/reset-2fa"),
            (Method::DELETE, "/api/admin/users/bob"),
            (Method::DELETE, "/api/admin/users/nobody"),
        ] {
            let (s, b) = send(&c, &srv, method, path, &root).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::FORBIDDEN, "reauthentication_required"),
                "{} {path}",
                db.name
            );
        }
        // Reads and unban do not need it.
        let (s, _) = send(&c, &srv, Method::POST, "/api/admin/users/bob/unban", &root).await;
        assert_eq!(s, StatusCode::OK);
        let (s, _) = post_auth(
            &c,
            &srv,
            "/api/reauth",
            &root,
            json!({"password": PASSWORD}),
        )
        .await;
        assert_eq!(s, StatusCode::OK);
        let (s, b) = send(&c, &srv, Method::POST, "/api/admin/users/bob/ban", &root).await;
        assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("banned")));
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_log_filters_by_user_event_and_time() {
    on_every_backend!(|c, srv, db| {
        let (root, _) = admin(&c, &srv, "grace").await;
        user(&c, &srv, "bob").await;
        let t0 = srv.sesame.now();
        srv.clock.advance(100);
        user(&c, &srv, "carol").await;
        login(&c, &srv, "bob", "not the password").await;
        let t1 = srv.sesame.now();

        let get = |query: String| {
            let (c, srv, root) = (&c, &srv, &root);
            async move { get_auth(c, srv, &format!("/api/admin/audit?{query}"), root).await }
        };
        let (s, page) = get(String::new()).await;
        assert_eq!(s, StatusCode::OK, "{}: {page}", db.name);
        let entries = page["entries"].as_array().unwrap();
        assert_eq!(entries[0]["event"], "login.failure", "newest first");
        let bob_id = entries[0]["user_id"].as_str().unwrap().to_owned();

        let (_, page) = get("user=bob".into()).await;
        let events: Vec<&str> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(events, ["login.failure", "login.success", "register"]);
        let (_, by_id) = get(format!("user={bob_id}")).await;
        assert_eq!(by_id["entries"], page["entries"]);
        let (_, page) = get("event=login.success&limit=500".into()).await;
        let entries = page["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 3, "grace, bob, carol: {page}");
        let (_, page) = get("user=bob&event=login.*".into()).await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 2);
        let (_, page) = get(format!("since={}&event=register", t0 + 1)).await;
        assert_eq!(
            page["entries"].as_array().unwrap().len(),
            1,
            "carol's only: {page}"
        );
        let (_, page) = get(format!("until={}&event=register", t0 + 1)).await;
        assert_eq!(
            page["entries"].as_array().unwrap().len(),
            2,
            "grace's and bob's"
        );
        let (_, page) = get(format!("since={t1}&until={t1}")).await;
        assert_eq!(page["entries"], json!([]));
        let (_, page) = get("limit=1".into()).await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_audit_queries_are_refused_and_admin_reads_are_audited() {
    on_every_backend!(|c, srv, db| {
        let (root, root_id) = admin(&c, &srv, "grace").await;
        let get = |query: &'static str| {
            let (c, srv, root) = (&c, &srv, &root);
            async move { get_auth(c, srv, &format!("/api/admin/audit?{query}"), root).await }
        };
        let (s, _) = get("").await;
        assert_eq!(s, StatusCode::OK, "{}", db.name);
        for bad in [
            "limit=501",
            "limit=0",
            "event=Login!",
            "since=-1",
            "since=5&until=4",
            "user=a&user=b",
            "page=2",
        ] {
            let (s, b) = get(bad).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::BAD_REQUEST, "invalid_request"),
                "{bad}: {b}"
            );
        }
        let (s, b) = get("user=nobody").await;
        assert_eq!((s, err(&b)), (StatusCode::NOT_FOUND, "user_not_found"));

        // The reads are audited too, by the admin.
        let path = format!("/api/admin/audit?event=admin.audit.*&user={root_id}");
        let (_, page) = get_auth(&c, &srv, &path, &root).await;
        let reads = page["entries"].as_array().unwrap();
        assert!(reads.iter().all(|e| e["reason"]
            .as_str()
            .unwrap()
            .starts_with(&format!("by={root_id}"))));
        assert!(
            reads.iter().any(|e| e["event"] == "admin.audit.read"),
            "{page}"
        );
        get_auth(&c, &srv, "/api/admin/users", &root).await;
        let (_, page) = get("event=admin.users.list").await;
        assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn my_activity_shows_my_sign_ins_only() {
    on_every_backend!(|srv, db| {
        let alice_ua = Client::builder()
            .user_agent("alice-browser")
            .build()
            .unwrap();
        let bob_ua = Client::builder().user_agent("bob-browser").build().unwrap();
        let (root, _) = admin(&alice_ua, &srv, "alice").await;
        tokens(&alice_ua, &srv, "alice", PASSWORD).await;
        login(&alice_ua, &srv, "alice", "not the password").await;
        let bob = user(&bob_ua, &srv, "bob").await;
        // An admin action about alice is not in her activity (it would show the admin's address).
        get_auth(&alice_ua, &srv, "/api/admin/users/alice", &root).await;

        let (s, mine) = get_auth(&alice_ua, &srv, "/api/me/activity", &root).await;
        assert_eq!(s, StatusCode::OK, "{}: {mine}", db.name);
        let events = mine["events"].as_array().unwrap();
        let names: Vec<&str> = events
            .iter()
            .map(|e| e["event"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "login.failure",
                "login.success",
                "login.success",
                "register"
            ]
        );
        assert!(events
            .iter()
            .all(|e| e["user_agent"] == "alice-browser" && e["client_addr"] == "127.0.0.1"));
        assert!(events
            .windows(2)
            .all(|w| w[0]["at"].as_i64() >= w[1]["at"].as_i64()));

        let (_, theirs) = get_auth(&bob_ua, &srv, "/api/me/activity?limit=1", &bob).await;
        let events = theirs["events"].as_array().unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(
            (
                events[0]["event"].as_str(),
                events[0]["user_agent"].as_str()
            ),
            (Some("login.success"), Some("bob-browser"))
        );
        for bad in ["limit=51", "limit=0", "user=alice"] {
            let path = format!("/api/me/activity?{bad}");
            let (s, b) = get_auth(&bob_ua, &srv, &path, &bob).await;
            assert_eq!(
                (s, err(&b)),
                (StatusCode::BAD_REQUEST, "invalid_request"),
                "{bad}"
            );
        }
        let (s, _) = call(&bob_ua, &srv, Method::GET, "/api/me/activity", None, None).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    });
}
