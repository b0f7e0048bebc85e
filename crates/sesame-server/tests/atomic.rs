//! Multi-write operations commit in one transaction: with any one of their writes failing
//! (a [`FailingStore`] in front of the real store), nothing partial remains. Above all, old
//! sessions never survive a password reset or a password change, and a banned account keeps
//! no session. Runs on SQLite and PostgreSQL, through the service itself.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;

use sesame_server::service::{
    AdminAction, Authenticated, LoginOutcome, ManualClock, RecoverFinish, RecoverStart,
};
use sesame_server::store::{AccountStatus, FactorRecord, NewSession, Store};
use sesame_server::{RequestContext, Sesame};
use totp_rs::TOTP;
use uuid::Uuid;
use zeroize::Zeroizing;

use common::failing::FailingStore;
use common::TestDb;
use sesame_server::store::{FactorKind, Slot};

const OLD_PASSWORD: &str = "an old passphrase that still works";
const NEW_PASSWORD: &str = "a brand new passphrase after all";

/// The service over a [`FailingStore`] on `db`, and the data directory it needs.
async fn service(db: &TestDb) -> (Sesame, Arc<FailingStore>, tempfile::TempDir) {
    let data = tempfile::tempdir().unwrap();
    let config = common::server::test_config(db, data.path());
    let (store, master) = sesame_server::server::open(&config).await.expect("open");
    let failing = FailingStore::new(store);
    let now = sesame_server::service::Clock::now(&sesame_server::service::SystemClock);
    let sesame = sesame_server::server::build_with_clock(
        &config,
        failing.clone(),
        &master,
        Arc::new(ManualClock::new(now)),
    )
    .await
    .expect("build");
    (sesame, failing, data)
}

fn ctx() -> RequestContext {
    RequestContext::new(None, Some("atomic-test"))
}

fn session(user_id: Uuid) -> NewSession {
    let now = 1_700_000_000;
    NewSession {
        id: Uuid::new_v4(),
        user_id,
        token_hash: Uuid::new_v4().as_bytes().repeat(2),
        created_at: now,
        last_seen_at: now,
        idle_expires_at: i64::MAX / 2,
        absolute_expires_at: i64::MAX / 2,
        client_addr: None,
        user_agent: None,
        methods: vec!["opaque".into()],
    }
}

async fn credential(s: &dyn Store, user: Uuid) -> Vec<u8> {
    s.user_by_id(user).await.unwrap().unwrap().credential
}

async fn sessions(s: &dyn Store, user: Uuid) -> BTreeSet<Uuid> {
    let all = s.sessions_for_user(user).await.unwrap();
    all.into_iter().map(|s| s.id).collect()
}

async fn code_slots(s: &dyn Store, user: Uuid) -> BTreeSet<Slot> {
    let all = s.factors(user, FactorKind::BackupCode).await.unwrap();
    all.into_iter().map(|f| f.slot).collect()
}

/// Recovery with every write failing in turn, then with none: the credential, the sessions,
/// the backup codes and the device-key requirement change all together or not at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_reset_is_all_or_nothing() {
    for db in common::backends().await {
        let (sesame, failing, _data) = service(&db).await;
        let s = failing.inner().clone();
        for fail_at in 0.. {
            let name = format!("reset{fail_at}");
            let reg = sesame
                .register_password(&name, Zeroizing::new(OLD_PASSWORD.into()), &ctx())
                .await
                .unwrap();
            let user = reg.user_id;
            for _ in 0..2 {
                s.create_session(&session(user)).await.unwrap();
            }
            s.put_factor(&FactorRecord {
                user_id: user,
                kind: FactorKind::DeviceRequired,
                slot: Slot::Only,
                value: b"1".to_vec(),
                counter: 0,
                created_at: 1,
                used_at: None,
            })
            .await
            .unwrap();
            let (old_credential, old_sessions) =
                (credential(&*s, user).await, sessions(&*s, user).await);
            let old_codes = code_slots(&*s, user).await;
            let started = sesame
                .recover_start(
                    &RecoverStart {
                        username: name.clone(),
                        registration_request: None,
                    },
                    &ctx(),
                )
                .await
                .unwrap();
            let (result, fired) = failing
                .with_write_failing(
                    fail_at,
                    sesame.recover_finish(
                        RecoverFinish {
                            recovery_id: started.recovery_id,
                            backup_code: Some(reg.backup_codes[0].clone()),
                            email_code: None,
                            totp_code: None,
                            answers: None,
                            reset_code: None,
                            new_password: Some(Zeroizing::new(NEW_PASSWORD.into())),
                            registration_record: None,
                            key_stretching: None,
                        },
                        &ctx(),
                    ),
                )
                .await;
            let device_required = s
                .factor(user, FactorKind::DeviceRequired, &Slot::Only)
                .await
                .unwrap();
            let codes = code_slots(&*s, user).await;
            if credential(&*s, user).await == old_credential {
                assert!(result.is_err(), "{}: write {fail_at}", db.name);
                assert_eq!(
                    sessions(&*s, user).await,
                    old_sessions,
                    "{}: write {fail_at}",
                    db.name
                );
                assert_eq!(codes, old_codes, "{}: write {fail_at}", db.name);
                assert!(device_required.is_some(), "{}: write {fail_at}", db.name);
            } else {
                assert!(
                    sessions(&*s, user).await.is_empty(),
                    "{}: old sessions survived a password reset (write {fail_at} failed)",
                    db.name
                );
                assert_eq!(codes.len(), 10, "{}: write {fail_at}", db.name);
                assert!(
                    codes.is_disjoint(&old_codes),
                    "{}: write {fail_at}",
                    db.name
                );
                assert!(device_required.is_none(), "{}: write {fail_at}", db.name);
            }
            if !fired {
                let codes = result.expect("recovery without a failure");
                assert_eq!(codes.len(), 10);
                assert!(fail_at >= 5, "recovery made only {fail_at} writes");
                break;
            }
        }
        failing.inner().close().await;
        db.cleanup().await;
    }
}

/// A password change that revokes the other sessions, with every write failing in turn: the
/// new credential never coexists with the other sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn password_change_is_all_or_nothing() {
    for db in common::backends().await {
        let (sesame, failing, _data) = service(&db).await;
        let s = failing.inner().clone();
        let reg = sesame
            .register_password("changer", Zeroizing::new(OLD_PASSWORD.into()), &ctx())
            .await
            .unwrap();
        let user = reg.user_id;
        let login = sesame
            .login_password("changer", Zeroizing::new(OLD_PASSWORD.into()), &ctx())
            .await
            .unwrap();
        let LoginOutcome::Session(issued) = login else {
            panic!("no second factor expected");
        };
        let who = Authenticated {
            user_id: user,
            session_id: issued.session_id,
        };
        for _ in 0..2 {
            s.create_session(&session(user)).await.unwrap();
        }
        let old_sessions = sessions(&*s, user).await;
        assert_eq!(old_sessions.len(), 3);
        let old_credential = credential(&*s, user).await;
        for fail_at in 0.. {
            let (result, fired) = failing
                .with_write_failing(
                    fail_at,
                    sesame.password_change(&who, Zeroizing::new(NEW_PASSWORD.into()), true, &ctx()),
                )
                .await;
            if credential(&*s, user).await == old_credential {
                assert!(result.is_err(), "{}: write {fail_at}", db.name);
                assert_eq!(
                    sessions(&*s, user).await,
                    old_sessions,
                    "{}: write {fail_at}",
                    db.name
                );
            } else {
                assert_eq!(
                    sessions(&*s, user).await,
                    BTreeSet::from([who.session_id]),
                    "{}: other sessions survived a password change (write {fail_at} failed)",
                    db.name
                );
            }
            if !fired {
                result.expect("change without a failure");
                break;
            }
        }
        failing.inner().close().await;
        db.cleanup().await;
    }
}

/// A ban with every write failing in turn: a banned account never keeps a session.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ban_is_all_or_nothing() {
    for db in common::backends().await {
        let (sesame, failing, _data) = service(&db).await;
        let s = failing.inner().clone();
        let reg = sesame
            .register_password("banned", Zeroizing::new(OLD_PASSWORD.into()), &ctx())
            .await
            .unwrap();
        let user = reg.user_id;
        for _ in 0..2 {
            s.create_session(&session(user)).await.unwrap();
        }
        for fail_at in 0.. {
            let (result, fired) = failing
                .with_write_failing(fail_at, sesame.admin_set_banned("banned", true))
                .await;
            let status = s.user_by_id(user).await.unwrap().unwrap().status;
            if status == AccountStatus::Banned {
                assert!(
                    sessions(&*s, user).await.is_empty(),
                    "{}: write {fail_at}",
                    db.name
                );
            } else {
                assert!(result.is_err(), "{}: write {fail_at}", db.name);
                assert_eq!(
                    sessions(&*s, user).await.len(),
                    2,
                    "{}: write {fail_at}",
                    db.name
                );
            }
            if !fired {
                result.expect("ban without a failure");
                break;
            }
        }
        failing.inner().close().await;
        db.cleanup().await;
    }
}

/// The TOTP slots (`active`, `pending`) a user has.
async fn totp_slots(s: &dyn Store, user: Uuid) -> BTreeSet<Slot> {
    let all = s.factors(user, FactorKind::Totp).await.unwrap();
    all.into_iter().map(|f| f.slot).collect()
}

/// A user `name` with TOTP enrolled and confirmed; the authenticator that matches it.
async fn with_totp(sesame: &Sesame, name: &str) -> (Uuid, TOTP) {
    let reg = sesame
        .register_password(name, Zeroizing::new(OLD_PASSWORD.into()), &ctx())
        .await
        .unwrap();
    let enrolment = sesame.totp_enrol(reg.user_id, name).await.unwrap();
    let totp = TOTP::from_url_unchecked(&enrolment.otpauth_url).unwrap();
    (reg.user_id, totp)
}

/// TOTP confirmation with every write failing in turn: the secret becomes active and stops
/// being pending together, never one without the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn totp_activation_is_all_or_nothing() {
    for db in common::backends().await {
        let (sesame, failing, _data) = service(&db).await;
        let s = failing.inner().clone();
        let (user, totp) = with_totp(&sesame, "totper").await;
        for fail_at in 0.. {
            let code = totp.generate(sesame.now());
            let (result, fired) = failing
                .with_write_failing(fail_at, sesame.totp_confirm(user, "totper", &code, &ctx()))
                .await;
            let slots = totp_slots(&*s, user).await;
            if !fired {
                result.as_ref().expect("confirmation without a failure");
            }
            if slots.contains(&Slot::Active) {
                // Committed (a failure after the commit, if any, changes nothing of it).
                assert_eq!(slots, BTreeSet::from([Slot::Active]), "{}", db.name);
                break;
            }
            assert!(result.is_err(), "{}: write {fail_at}", db.name);
            assert_eq!(slots, BTreeSet::from([Slot::Pending]), "{}", db.name);
        }
        failing.inner().close().await;
        db.cleanup().await;
    }
}

/// An operator's reset of a user's second factors with every write failing in turn: the TOTP
/// secret and the device-key requirement go together or both stay.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn second_factor_reset_is_all_or_nothing() {
    for db in common::backends().await {
        let (sesame, failing, _data) = service(&db).await;
        let s = failing.inner().clone();
        let (user, totp) = with_totp(&sesame, "resetme").await;
        let code = totp.generate(sesame.now());
        sesame
            .totp_confirm(user, "resetme", &code, &ctx())
            .await
            .unwrap();
        s.put_factor(&FactorRecord {
            user_id: user,
            kind: FactorKind::DeviceRequired,
            slot: Slot::Only,
            value: b"1".to_vec(),
            counter: 0,
            created_at: 1_700_000_000,
            used_at: None,
        })
        .await
        .unwrap();
        let required = || async {
            let r = s.factors(user, FactorKind::DeviceRequired).await.unwrap();
            !r.is_empty()
        };
        for fail_at in 0.. {
            let (result, fired) = failing
                .with_write_failing(
                    fail_at,
                    sesame.admin_operator_act("resetme", AdminAction::ResetSecondFactors),
                )
                .await;
            let totp_left = !totp_slots(&*s, user).await.is_empty();
            assert_eq!(totp_left, required().await, "{}: write {fail_at}", db.name);
            if totp_left {
                assert!(result.is_err(), "{}: write {fail_at}", db.name);
            }
            if !fired {
                result.expect("reset without a failure");
                break;
            }
        }
        failing.inner().close().await;
        db.cleanup().await;
    }
}
