//! Operator-issued reset codes, through the service on SQLite and PostgreSQL with a manual
//! clock: a code expires on time, is stored only as a keyed hash, works once, and a
//! recovery with it keeps the account's second factor.

mod common;

use std::sync::Arc;
use std::time::Duration;

use sesame_server::error::{CredentialError, ErrorCode, InputError};
use sesame_server::service::{ManualClock, RecoverFinish, RecoverStart};
use sesame_server::store::FactorKind;
use sesame_server::{RequestContext, Sesame};
use zeroize::Zeroizing;

use common::TestDb;

const PASSWORD: &str = "an old passphrase that still works";
const NEW_PASSWORD: &str = "a brand new passphrase after all";

async fn service(db: &TestDb) -> (Sesame, Arc<ManualClock>, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let config = common::server::test_config(db, data.path());
    let (store, master) = sesame_server::server::open(&config).await.expect("open");
    let now = sesame_server::service::Clock::now(&sesame_server::service::SystemClock);
    let clock = Arc::new(ManualClock::new(now));
    let sesame = sesame_server::server::build_with_clock(&config, store, &master, clock.clone())
        .await
        .expect("build");
    (sesame, clock, data)
}

fn ctx() -> RequestContext {
    RequestContext::new(None, Some("reset-test"))
}

/// A server-assisted recovery of `name` with `code`: the backup codes it issues, or the
/// error's code.
async fn redeem(sesame: &Sesame, name: &str, code: &str) -> Result<Vec<String>, ErrorCode> {
    let start = RecoverStart {
        username: name.into(),
        registration_request: None,
    };
    let started = sesame.recover_start(&start, &ctx()).await.unwrap();
    let finish = RecoverFinish {
        recovery_id: started.recovery_id,
        reset_code: Some(code.into()),
        new_password: Some(Zeroizing::new(NEW_PASSWORD.into())),
        ..RecoverFinish::default()
    };
    sesame
        .recover_finish(finish, &ctx())
        .await
        .map_err(|e| e.code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_codes_expire_are_hashed_and_work_once() {
    for db in common::backends().await {
        let (sesame, clock, _data) = service(&db).await;
        let reg = sesame
            .register_password("erin", Zeroizing::new(PASSWORD.into()), &ctx())
            .await
            .unwrap();
        let issued = sesame
            .admin_issue_reset_code("erin", Duration::from_secs(3600))
            .await
            .unwrap();
        // Stored as a keyed hash with its expiry: the code itself is nowhere in the row.
        let rows = sesame
            .store()
            .factors(reg.user_id, FactorKind::ResetCode)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let bare = issued.code.replace('-', "");
        assert!(!rows[0].slot.stored().contains(&bare));
        assert_eq!(rows[0].value, issued.expires_at.to_be_bytes());

        clock.advance(3601);
        assert_eq!(
            redeem(&sesame, "erin", &issued.code).await.unwrap_err(),
            CredentialError::RecoveryFailed.into()
        );

        let fresh = sesame
            .admin_issue_reset_code("erin", Duration::from_secs(3600))
            .await
            .unwrap();
        clock.advance(3599);
        let codes = redeem(&sesame, "erin", &fresh.code).await.unwrap();
        assert_eq!(codes.len(), 10);
        assert_eq!(
            redeem(&sesame, "erin", &fresh.code).await.unwrap_err(),
            CredentialError::RecoveryFailed.into()
        );
        // The reset left no code behind.
        let rows = sesame
            .store()
            .factors(reg.user_id, FactorKind::ResetCode)
            .await
            .unwrap();
        assert!(rows.is_empty(), "{rows:?}");

        let too_long = sesame
            .admin_issue_reset_code("erin", Duration::from_secs(31 * 24 * 3600))
            .await
            .unwrap_err();
        assert_eq!(too_long.code, InputError::InvalidRequest.into());
    }
}
