//! Timing-safe account lookups (docs/security.md, "Account enumeration"): every route that
//! takes a username does the same store work for an unknown name as for a known one. The
//! store calls of each route are logged (a [`FailingStore`] in front of the real store,
//! never armed) and compared, known against unknown. The timing itself is measured by
//! `sesame-bench enumeration`, not here.

mod common;

use std::sync::Arc;

use sesame_server::service::{ManualClock, RecoverStart};
use sesame_server::{RequestContext, Sesame};
use zeroize::Zeroizing;

use common::failing::FailingStore;
use common::TestDb;

const PASSWORD: &str = "a long enough password for the known account";

async fn service(db: &TestDb) -> (Sesame, Arc<FailingStore>, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let config = common::server::test_config(db, data.path());
    let (store, master) = sesame_server::server::open(&config).await.expect("open");
    let logged = FailingStore::new(store);
    let now = sesame_server::service::Clock::now(&sesame_server::service::SystemClock);
    let sesame = sesame_server::server::build_with_clock(
        &config,
        logged.clone(),
        &master,
        Arc::new(ManualClock::new(now)),
    )
    .await
    .expect("build");
    (sesame, logged, data)
}

fn ctx() -> RequestContext {
    RequestContext::new(None, Some("enumeration-test"))
}

/// Runs `route` and returns the store methods it called.
macro_rules! calls {
    ($log:expr, $route:expr) => {{
        $log.take_calls();
        let _ = $route;
        $log.take_calls()
    }};
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_names_cost_the_same_store_calls_as_known_ones() {
    let db = TestDb::sqlite();
    let (s, log, _data) = service(&db).await;
    let known = "known-account";
    s.register_password(known, Zeroizing::new(PASSWORD.into()), &ctx())
        .await
        .unwrap();
    let mut rng = common::api::rng();
    for (k, u) in [(known, "unknown-one"), (known, "unknown-two")] {
        let route = "login start";
        let (_, start_k) = sesame_proto::client::start_login(&mut rng, k, PASSWORD).unwrap();
        let (_, start_u) = sesame_proto::client::start_login(&mut rng, u, PASSWORD).unwrap();
        let a = calls!(log, s.login_start(&start_k, &ctx()).await.unwrap());
        let b = calls!(log, s.login_start(&start_u, &ctx()).await.unwrap());
        assert!(a.contains(&"user_by_index"), "{route}: {a:?}");
        assert_eq!(a, b, "{route}");

        let route = "password login (wrong password)";
        let wrong = || Zeroizing::new("not the password at all".to_owned());
        let a = calls!(log, s.login_password(k, wrong(), &ctx()).await.unwrap_err());
        let b = calls!(log, s.login_password(u, wrong(), &ctx()).await.unwrap_err());
        assert!(a.contains(&"append_audit"), "{route}: {a:?}");
        assert_eq!(a, b, "{route}");

        let route = "recovery start";
        let req = |name: &str| RecoverStart {
            username: name.to_owned(),
            registration_request: None,
        };
        let a = calls!(log, s.recover_start(&req(k), &ctx()).await.unwrap());
        let b = calls!(log, s.recover_start(&req(u), &ctx()).await.unwrap());
        assert!(a.contains(&"factors"), "{route}: {a:?}");
        assert_eq!(a, b, "{route}");

        let route = "email resend";
        let a = calls!(log, s.resend_verification(k, &ctx()).await.unwrap());
        let b = calls!(log, s.resend_verification(u, &ctx()).await.unwrap());
        assert_eq!(a, b, "{route}");

        let route = "key directory";
        let a = calls!(log, s.identity_of(k).await.unwrap_err());
        let b = calls!(log, s.identity_of(u).await.unwrap_err());
        assert!(a.contains(&"factor"), "{route}: {a:?}");
        assert_eq!(a, b, "{route}");
    }
    db.cleanup().await;
}
