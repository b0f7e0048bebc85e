//! A revoked session cannot be refreshed, from the very next request: on one node (SQLite and
//! PostgreSQL), when the row is deleted behind the service's back (as `sesame admin` does
//! from another process), and across two nodes sharing PostgreSQL and Redis. Each session
//! is refreshed a few times first, so anything a node remembers about it is warm.

mod common;

use reqwest::{Client, StatusCode};
use serde_json::json;
use uuid::Uuid;

use common::api::{self, delete_auth, err, get_auth, post, post_auth};
use common::on_every_backend;
use common::server::TestServer;

/// `POST /api/session/refresh` with `session`: the status and the error code, if any.
async fn refresh(c: &Client, srv: &TestServer, session: &str) -> (StatusCode, String) {
    let (status, v) = post(
        c,
        srv,
        "/api/session/refresh",
        json!({ "session_token": session }),
    )
    .await;
    (status, err(&v).to_owned())
}

/// Refreshes `session` three times, each answered 200.
async fn warm(c: &Client, srv: &TestServer, session: &str) {
    for _ in 0..3 {
        assert_eq!(refresh(c, srv, session).await.0, StatusCode::OK);
    }
}

fn refused() -> (StatusCode, String) {
    (StatusCode::UNAUTHORIZED, "session_invalid".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_cannot_refresh_from_the_next_request() {
    on_every_backend!(|c, srv, db| {
        let name = api::username("rr");
        api::register(&c, &srv, &name).await;
        let one = api::login_session(&c, &srv, &name).await;
        let two = api::login_session(&c, &srv, &name).await;
        let three = api::login_session(&c, &srv, &name).await;
        for s in [&one, &two, &three] {
            warm(&c, &srv, &s.session).await;
        }

        // Revoked by another session of the user.
        let path = format!("/api/sessions/{}", two.session_id);
        assert_eq!(
            delete_auth(&c, &srv, &path, &one.access).await.0,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            refresh(&c, &srv, &two.session).await,
            refused(),
            "{}",
            db.name
        );

        // Deleted in the database behind the service (the operator CLI's own process).
        let user: Uuid = {
            let (_, v) = get_auth(&c, &srv, "/api/me", &three.access).await;
            v["user_id"].as_str().unwrap().parse().unwrap()
        };
        assert!(srv
            .sesame
            .store()
            .delete_session(user, three.session_id)
            .await
            .unwrap());
        assert_eq!(
            refresh(&c, &srv, &three.session).await,
            refused(),
            "{}",
            db.name
        );

        // Logging out everywhere.
        let (status, _) = post_auth(&c, &srv, "/api/logout-all", &one.access, json!({})).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            refresh(&c, &srv, &one.session).await,
            refused(),
            "{}",
            db.name
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_revoked_on_one_node_cannot_refresh_on_another() {
    let Some((db, a, b)) = common::server::two_nodes("refresh").await else {
        return;
    };
    let c = Client::new();
    let name = api::username("rn");
    api::register(&c, &a, &name).await;
    let one = api::login_session(&c, &a, &name).await;
    let two = api::login_session(&c, &b, &name).await;
    for node in [&a, &b] {
        warm(&c, node, &one.session).await;
        warm(&c, node, &two.session).await;
    }

    let path = format!("/api/sessions/{}", two.session_id);
    assert_eq!(
        delete_auth(&c, &a, &path, &one.access).await.0,
        StatusCode::NO_CONTENT
    );
    assert_eq!(refresh(&c, &b, &two.session).await, refused());
    assert_eq!(refresh(&c, &a, &two.session).await, refused());

    let (status, _) = post_auth(&c, &b, "/api/logout-all", &one.access, json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(refresh(&c, &a, &one.session).await, refused());
    assert_eq!(refresh(&c, &b, &one.session).await, refused());
    a.stop().await;
    b.stop().await;
    db.cleanup().await;
}
