//! The client's admin API and account activity against the REAL server (tests/real): the role
//! check, the actions with their fresh authentication, the audit log's filters, the caller's
//! activity, and a username that needs escaping in a path.

mod real;

use real::{Server, PASSWORD};
use sesame_client::admin::{AuditQuery, Role, UserQuery};
use sesame_client::{Client, LoginOutcome};

/// Registers `name` and logs in with OPAQUE: the access token.
async fn account(c: &Client, name: &str) -> String {
    c.register(name, PASSWORD).await.unwrap();
    login(c, name).await
}

/// Creates `bob` and the admin `grace`, both logged in: their access tokens.
async fn admin_and_user(srv: &Server, c: &Client) -> (String, String) {
    let bob = account(c, "bob").await;
    let e = srv.sesame.admin_set_role("grace", Role::Admin).await;
    assert!(e.is_err(), "no such user yet");
    c.register("grace", PASSWORD).await.unwrap();
    srv.sesame
        .admin_set_role("grace", Role::Admin)
        .await
        .unwrap();
    let grace = login(c, "grace").await;
    assert!(c.me(&grace).await.unwrap().is_admin);
    (grace, bob)
}

/// Logs in with OPAQUE: the access token.
async fn login(c: &Client, name: &str) -> String {
    c.login(name, PASSWORD)
        .await
        .and_then(LoginOutcome::into_login)
        .unwrap()
        .session
        .access_token
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_lists_shows_and_acts_through_the_client() {
    let srv = Server::start().await;
    let c = srv.client();
    let (grace, bob) = admin_and_user(&srv, &c).await;
    let e = c
        .admin_users(&bob, &UserQuery::default())
        .await
        .unwrap_err();
    assert!(e.is_forbidden(), "{e}");
    let search = UserQuery {
        q: Some("BO".into()),
        ..UserQuery::default()
    };
    let page = c.admin_users(&grace, &search).await.unwrap();
    assert_eq!(page.users.len(), 1);
    assert_eq!((page.users[0].username.as_str(), page.total), ("bob", 1));
    assert_eq!(c.admin_user(&grace, "Bob").await.unwrap().sessions, 1);
    // A name with a slash is one path segment: not a username, so not found.
    let e = c.admin_user(&grace, "a/b").await.unwrap_err();
    assert!(e.is(sesame_client::api::InputError::UserNotFound), "{e}");

    let banned = c.admin_ban(&grace, "bob").await.unwrap();
    assert_eq!(banned.status, sesame_client::api::AccountStatus::Banned);
    assert!(c.me(&bob).await.unwrap_err().is_unauthorized());
    c.admin_unban(&grace, "bob").await.unwrap();
    login(&c, "bob").await;
    assert_eq!(c.admin_revoke_sessions(&grace, "bob").await.unwrap(), 1);
    let reset = c.admin_reset_second_factors(&grace, "bob").await.unwrap();
    assert!(!reset.totp_enabled);
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fresh_delete_audit_and_activity_through_the_client() {
    let srv = Server::start().await;
    let c = srv.client();
    let (grace, bob) = admin_and_user(&srv, &c).await;
    srv.clock.advance(srv.sesame.reauth_window() + 1);
    let e = c.admin_delete_user(&grace, "bob").await.unwrap_err();
    assert!(e.is_reauthentication_required(), "{e}");
    c.reauth(&grace, "grace", PASSWORD).await.unwrap();
    c.admin_delete_user(&grace, "bob").await.unwrap();

    let audit = AuditQuery {
        event: Some("admin.*".into()),
        limit: Some(500),
        ..AuditQuery::default()
    };
    let page = c.admin_audit(&grace, &audit).await.unwrap();
    let events: Vec<&str> = page.entries.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events[..2],
        ["admin.delete", "admin.grant_admin"],
        "{events:?}"
    );
    let mine = c.my_activity(&grace, Some(2)).await.unwrap().events;
    let names: Vec<&str> = mine.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names, ["login.success", "register"]);
    assert!(c
        .my_activity(&bob, None)
        .await
        .unwrap_err()
        .is_unauthorized());
    srv.stop().await;
}
