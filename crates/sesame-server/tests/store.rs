//! The storage contract, tested with the same bodies on SQLite and on PostgreSQL.
//!
//! Each body below becomes two tests, `sqlite::<name>` and `postgres::<name>`, each on a
//! fresh database (see `common`). The PostgreSQL ones are skipped loudly when it is
//! unreachable, unless `SESAME_REQUIRE_SERVICES=1`.

mod common;

use std::future::Future;
use std::sync::Arc;

use sesame_server::store::writes;
use sesame_server::store::{
    self, AccountStatus, AuditQuery, Backend, ConflictOn, ConnectOptions, FactorRecord, MessageAck,
    MessageInsert, NewAuditEvent, NewMessage, NewSession, NewUser, Store, StoreError, Write,
};
use uuid::Uuid;

use common::TestDb;
use sesame_server::store::{FactorKind, Slot};

/// What a test body gets: an open store plus how to open the same database again.
struct Ctx {
    store: Arc<dyn Store>,
    url: String,
    options: ConnectOptions,
}

impl Ctx {
    /// Another store (another pool, like another node) on the same database.
    async fn reconnect(&self) -> Arc<dyn Store> {
        store::connect(&self.url, &self.options)
            .await
            .expect("reconnect")
    }
}

async fn run<F, Fut>(db: TestDb, body: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: Future<Output = ()>,
{
    let store = db.connect().await;
    let expected = match db.name {
        "sqlite" => Backend::Sqlite,
        _ => Backend::Postgres,
    };
    assert_eq!(store.backend(), expected);
    body(Ctx {
        store: store.clone(),
        url: db.url.clone(),
        options: db.options.clone(),
    })
    .await;
    store.close().await;
    db.cleanup().await;
}

/// Generates `sqlite::$name` and `postgres::$name` running the body `$name`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    crate::run(crate::common::TestDb::sqlite(), super::$name).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    if let Some(db) = crate::common::TestDb::postgres().await {
                        crate::run(db, super::$name).await;
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    connection_basics,
    users_create_and_lookup,
    users_unique_keys,
    users_list_and_count,
    users_updates,
    delete_user_cascades_sessions_not_audit,
    sessions_lookup_and_touch,
    sessions_listing_and_deletion,
    sessions_expiry,
    audit_log,
    secrets,
    secrets_concurrent_insert,
    account_creation_is_one_transaction,
    atomic_writes_commit_together,
    login_session_is_one_transaction,
    message_batches,
    message_batches_from_many_tasks,
);

// ---------------------------------------------------------------------------------
// Fixtures

/// A 32-byte stand-in for a keyed HMAC index.
fn index(label: &str) -> Vec<u8> {
    let mut out = [0u8; 32];
    for (slot, byte) in out.iter_mut().zip(label.bytes().cycle()) {
        *slot = byte;
    }
    out[31] = label.len() as u8;
    out.to_vec()
}

fn user(name: &str, email: Option<&str>, created_at: i64) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        username_index: index(&format!("u:{name}")),
        username_sealed: format!("sealed:{name}").into_bytes(),
        email_index: email.map(|e| index(&format!("e:{e}"))),
        email_sealed: email.map(|e| format!("sealed:{e}").into_bytes()),
        credential: format!("cred:{name}").into_bytes(),
        status: AccountStatus::Active,
        created_at,
    }
}

fn session(user_id: Uuid, token: &str, created_at: i64) -> NewSession {
    NewSession {
        id: Uuid::new_v4(),
        user_id,
        token_hash: index(&format!("t:{token}")),
        created_at,
        last_seen_at: created_at,
        idle_expires_at: created_at + 1_800,
        absolute_expires_at: created_at + 86_400,
        client_addr: Some("127.0.0.1:5000".into()),
        user_agent: Some(format!("agent/{token}")),
        methods: vec!["opaque".into()],
    }
}

fn event(at: i64, name: &str, user_id: Option<Uuid>) -> NewAuditEvent {
    NewAuditEvent {
        at,
        event: name.into(),
        user_id,
        reason: None,
        client_addr: None,
        user_agent: None,
    }
}

async fn create(store: &dyn Store, u: &NewUser) {
    store.create_user(u).await.expect("create user");
}

// ---------------------------------------------------------------------------------
// Bodies

async fn connection_basics(t: Ctx) {
    t.store.ping().await.unwrap();
    let u = user("alice", None, 100);
    create(&*t.store, &u).await;

    // Reconnecting re-runs the migrator (nothing to apply) and sees the same data.
    let again = t.reconnect().await;
    again.ping().await.unwrap();
    assert_eq!(again.user_by_id(u.id).await.unwrap().unwrap().id, u.id);
    again.close().await;
    assert!(again.ping().await.is_err(), "a closed store must fail");
    // Closing one pool leaves the other working.
    t.store.ping().await.unwrap();
}

async fn users_create_and_lookup(t: Ctx) {
    let s = &*t.store;
    assert!(s.user_by_index(&index("u:nobody")).await.unwrap().is_none());
    // The stand-in row a miss reads (zero index, nil id) is never an account.
    assert!(s.user_by_index(&[0u8; 32]).await.unwrap().is_none());
    assert!(s.user_by_id(Uuid::nil()).await.unwrap().is_none());
    assert!(s.user_by_id(Uuid::new_v4()).await.unwrap().is_none());

    let mut alice = user("alice", Some("alice@example.com"), 1_000);
    alice.status = AccountStatus::Pending;
    create(s, &alice).await;
    let bob = user("bob", None, 1_001);
    create(s, &bob).await;

    let found = s
        .user_by_index(&alice.username_index)
        .await
        .unwrap()
        .expect("by index");
    assert_eq!(found.id, alice.id);
    assert_eq!(found.username_index, alice.username_index);
    assert_eq!(found.username_sealed, alice.username_sealed);
    assert_eq!(found.email_index, alice.email_index);
    assert_eq!(found.email_sealed, alice.email_sealed);
    assert_eq!(found.credential, alice.credential);
    assert_eq!(found.status, AccountStatus::Pending);
    assert_eq!(found.created_at, 1_000);
    assert_eq!(found.updated_at, 1_000);
    assert_eq!(found.last_login_at, None);
    assert_eq!(s.user_by_id(alice.id).await.unwrap().as_ref(), Some(&found));

    let found_bob = s.user_by_id(bob.id).await.unwrap().expect("by id");
    assert_eq!(found_bob.username_index, bob.username_index);
    assert_eq!(found_bob.email_index, None);
    assert_eq!(found_bob.email_sealed, None);
    // An email index is not a username index.
    assert!(s
        .user_by_index(alice.email_index.as_ref().unwrap())
        .await
        .unwrap()
        .is_none());
}

async fn users_unique_keys(t: Ctx) {
    let s = &*t.store;
    let alice = user("alice", Some("shared@example.com"), 1);
    create(s, &alice).await;

    // Same username, different email.
    let mut dup_name = user("alice", Some("other@example.com"), 2);
    dup_name.username_sealed = b"different ciphertext".to_vec();
    match s.create_user(&dup_name).await {
        Err(StoreError::Conflict(ConflictOn::Username)) => {}
        other => panic!("duplicate username: {other:?}"),
    }
    // Different username, same email.
    let dup_email = user("carol", Some("shared@example.com"), 3);
    match s.create_user(&dup_email).await {
        Err(StoreError::Conflict(ConflictOn::Email)) => {}
        other => panic!("duplicate email: {other:?}"),
    }
    // Same id, new username and email.
    let mut dup_id = user("dave", Some("dave@example.com"), 4);
    dup_id.id = alice.id;
    match s.create_user(&dup_id).await {
        Err(StoreError::Conflict(ConflictOn::Other(_))) => {}
        other => panic!("duplicate id: {other:?}"),
    }
    // Any number of users without an email.
    for name in ["erin", "frank", "grace"] {
        create(s, &user(name, None, 5)).await;
    }
    assert_eq!(s.count_users().await.unwrap(), 4);
    // The failed inserts left nothing behind.
    assert!(s.user_by_index(&index("u:carol")).await.unwrap().is_none());
    assert_eq!(
        s.user_by_id(alice.id).await.unwrap().unwrap().credential,
        alice.credential
    );
}

async fn users_list_and_count(t: Ctx) {
    let s = &*t.store;
    assert_eq!(s.count_users().await.unwrap(), 0);
    assert!(s.list_users(10, 0).await.unwrap().is_empty());

    // Created out of order, two sharing a timestamp (then ordered by id).
    let mut users = vec![
        user("u3", None, 30),
        user("u1", None, 10),
        user("u2a", None, 20),
        user("u2b", None, 20),
        user("u4", None, 40),
    ];
    for u in &users {
        create(s, u).await;
    }
    users.sort_by_key(|u| (u.created_at, u.id));
    let expected: Vec<Uuid> = users.iter().map(|u| u.id).collect();

    assert_eq!(s.count_users().await.unwrap(), 5);
    let all: Vec<Uuid> = s
        .list_users(100, 0)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(all, expected);
    let page: Vec<Uuid> = s
        .list_users(2, 1)
        .await
        .unwrap()
        .iter()
        .map(|u| u.id)
        .collect();
    assert_eq!(page, expected[1..3]);
    assert_eq!(s.list_users(2, 4).await.unwrap().len(), 1);
    assert!(s.list_users(2, 5).await.unwrap().is_empty());
    assert!(s.list_users(0, 0).await.unwrap().is_empty());
}

async fn users_updates(t: Ctx) {
    let s = &*t.store;
    let alice = user("alice", None, 100);
    create(s, &alice).await;
    let missing = Uuid::new_v4();

    assert!(s
        .set_user_status(alice.id, AccountStatus::Banned, 200)
        .await
        .unwrap());
    let got = s.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(got.status, AccountStatus::Banned);
    assert_eq!(got.updated_at, 200);
    assert!(s
        .set_user_status(alice.id, AccountStatus::Active, 210)
        .await
        .unwrap());
    assert_eq!(
        s.user_by_id(alice.id).await.unwrap().unwrap().status,
        AccountStatus::Active
    );
    assert!(!s
        .set_user_status(missing, AccountStatus::Banned, 200)
        .await
        .unwrap());

    assert!(s
        .set_credential(alice.id, b"new credential", 300)
        .await
        .unwrap());
    let got = s.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(got.credential, b"new credential");
    assert_eq!(got.updated_at, 300);
    assert!(!s.set_credential(missing, b"x", 300).await.unwrap());

    s.record_login(alice.id, 400).await.unwrap();
    let got = s.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(got.last_login_at, Some(400));
    assert_eq!(got.updated_at, 300, "a login is not an account change");
    s.record_login(alice.id, 500).await.unwrap();
    assert_eq!(
        s.user_by_id(alice.id).await.unwrap().unwrap().last_login_at,
        Some(500)
    );
    // Unknown user: not an error.
    s.record_login(missing, 400).await.unwrap();
}

async fn delete_user_cascades_sessions_not_audit(t: Ctx) {
    let s = &*t.store;
    let alice = user("alice", Some("a@example.com"), 1);
    let bob = user("bob", None, 1);
    create(s, &alice).await;
    create(s, &bob).await;
    let a1 = session(alice.id, "a1", 10);
    let a2 = session(alice.id, "a2", 11);
    let b1 = session(bob.id, "b1", 12);
    for x in [&a1, &a2, &b1] {
        s.create_session(x).await.unwrap();
    }
    s.append_audit(&event(20, "login.ok", Some(alice.id)))
        .await
        .unwrap();

    assert!(s.delete_user(alice.id).await.unwrap());
    assert!(!s.delete_user(alice.id).await.unwrap(), "already gone");
    assert!(s.user_by_id(alice.id).await.unwrap().is_none());
    assert!(s.sessions_for_user(alice.id).await.unwrap().is_empty());
    assert!(s.session_by_id(a1.id).await.unwrap().is_none());
    assert!(s
        .session_by_token_hash(&a2.token_hash)
        .await
        .unwrap()
        .is_none());
    // Bob untouched.
    assert_eq!(s.sessions_for_user(bob.id).await.unwrap().len(), 1);
    // The audit row keeps the id of the deleted user.
    let audit = s
        .list_audit(&AuditQuery {
            user_id: Some(alice.id),
            since: None,
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].user_id, Some(alice.id));
    // The freed username and email can be taken again.
    create(s, &user("alice", Some("a@example.com"), 30)).await;
}

async fn sessions_lookup_and_touch(t: Ctx) {
    let s = &*t.store;
    let alice = user("alice", None, 1);
    create(s, &alice).await;

    let mut a1 = session(alice.id, "a1", 100);
    a1.methods = vec!["opaque".into(), "totp".into()];
    a1.client_addr = None;
    a1.user_agent = None;
    s.create_session(&a1).await.unwrap();
    let mut a2 = session(alice.id, "a2", 101);
    a2.methods = Vec::new();
    s.create_session(&a2).await.unwrap();

    let by_hash = s
        .session_by_token_hash(&a1.token_hash)
        .await
        .unwrap()
        .expect("by hash");
    assert_eq!(by_hash.id, a1.id);
    assert_eq!(by_hash.user_id, alice.id);
    assert_eq!(by_hash.token_hash, a1.token_hash);
    assert_eq!(by_hash.created_at, 100);
    assert_eq!(by_hash.last_seen_at, 100);
    assert_eq!(by_hash.idle_expires_at, a1.idle_expires_at);
    assert_eq!(by_hash.absolute_expires_at, a1.absolute_expires_at);
    assert_eq!(by_hash.client_addr, None);
    assert_eq!(by_hash.user_agent, None);
    assert_eq!(by_hash.methods, vec!["opaque", "totp"]);
    assert_eq!(
        s.session_by_id(a1.id).await.unwrap().as_ref(),
        Some(&by_hash)
    );

    let second = s.session_by_id(a2.id).await.unwrap().expect("by id");
    assert!(second.methods.is_empty());
    assert_eq!(second.client_addr.as_deref(), Some("127.0.0.1:5000"));
    assert_eq!(second.user_agent.as_deref(), Some("agent/a2"));

    assert!(s
        .session_by_token_hash(&index("t:nope"))
        .await
        .unwrap()
        .is_none());

    // The refresh read: the same session plus its owner's status.
    let (joined, owner) = s
        .session_and_owner_by_token_hash(&a1.token_hash)
        .await
        .unwrap()
        .expect("with owner");
    assert_eq!(joined, by_hash);
    assert_eq!(owner, Some(AccountStatus::Active));
    s.set_user_status(alice.id, AccountStatus::Banned, 101)
        .await
        .unwrap();
    let (_, owner) = s
        .session_and_owner_by_token_hash(&a1.token_hash)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(owner, Some(AccountStatus::Banned));
    s.set_user_status(alice.id, AccountStatus::Active, 101)
        .await
        .unwrap();
    assert!(s
        .session_and_owner_by_token_hash(&index("t:nope"))
        .await
        .unwrap()
        .is_none());
    assert!(s.session_by_id(Uuid::new_v4()).await.unwrap().is_none());

    assert!(s.touch_session(a1.id, 150, 1_950).await.unwrap());
    let touched = s.session_by_id(a1.id).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, 150);
    assert_eq!(touched.idle_expires_at, 1_950);
    assert_eq!(touched.absolute_expires_at, a1.absolute_expires_at);
    assert_eq!(touched.created_at, 100);
    assert!(!s.touch_session(Uuid::new_v4(), 150, 1_950).await.unwrap());

    // The token hash is unique.
    let mut clash = session(alice.id, "other", 102);
    clash.token_hash = a1.token_hash.clone();
    match s.create_session(&clash).await {
        Err(StoreError::Conflict(ConflictOn::Other(_))) => {}
        other => panic!("duplicate token hash: {other:?}"),
    }
    // A session needs an existing user.
    let orphan = session(Uuid::new_v4(), "orphan", 103);
    assert!(matches!(
        s.create_session(&orphan).await,
        Err(StoreError::Database(_))
    ));
    assert!(s.session_by_id(orphan.id).await.unwrap().is_none());
}

async fn sessions_listing_and_deletion(t: Ctx) {
    let s = &*t.store;
    let alice = user("alice", None, 1);
    let bob = user("bob", None, 1);
    create(s, &alice).await;
    create(s, &bob).await;
    assert!(s.sessions_for_user(alice.id).await.unwrap().is_empty());

    let a_old = session(alice.id, "old", 100);
    let a_new = session(alice.id, "new", 300);
    let a_mid = session(alice.id, "mid", 200);
    let b1 = session(bob.id, "b1", 250);
    for x in [&a_old, &a_new, &a_mid, &b1] {
        s.create_session(x).await.unwrap();
    }
    let listed: Vec<Uuid> = s
        .sessions_for_user(alice.id)
        .await
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(listed, vec![a_new.id, a_mid.id, a_old.id], "newest first");

    // Only the owner can delete a session.
    assert!(!s.delete_session(bob.id, a_old.id).await.unwrap());
    assert!(s.session_by_id(a_old.id).await.unwrap().is_some());
    assert!(s.delete_session(alice.id, a_old.id).await.unwrap());
    assert!(!s.delete_session(alice.id, a_old.id).await.unwrap());
    assert!(s.session_by_id(a_old.id).await.unwrap().is_none());

    // Everything but the current one.
    let a_more = session(alice.id, "more", 400);
    s.create_session(&a_more).await.unwrap();
    assert_eq!(
        s.delete_sessions_for_user(alice.id, Some(a_mid.id))
            .await
            .unwrap(),
        2
    );
    let left: Vec<Uuid> = s
        .sessions_for_user(alice.id)
        .await
        .unwrap()
        .iter()
        .map(|x| x.id)
        .collect();
    assert_eq!(left, vec![a_mid.id]);
    // `except` naming someone else's session protects nothing of theirs.
    assert_eq!(
        s.delete_sessions_for_user(alice.id, Some(b1.id))
            .await
            .unwrap(),
        1
    );
    assert!(s.sessions_for_user(alice.id).await.unwrap().is_empty());
    assert_eq!(s.delete_sessions_for_user(alice.id, None).await.unwrap(), 0);

    // All of them.
    let b2 = session(bob.id, "b2", 260);
    s.create_session(&b2).await.unwrap();
    assert_eq!(s.delete_sessions_for_user(bob.id, None).await.unwrap(), 2);
    assert!(s.sessions_for_user(bob.id).await.unwrap().is_empty());
}

async fn sessions_expiry(t: Ctx) {
    let s = &*t.store;
    let alice = user("alice", None, 1);
    create(s, &alice).await;
    let now = 10_000;

    let mut idle_gone = session(alice.id, "idle", 100);
    idle_gone.idle_expires_at = now; // boundary: expired at `now`
    idle_gone.absolute_expires_at = now + 1_000;
    let mut absolute_gone = session(alice.id, "abs", 100);
    absolute_gone.idle_expires_at = now + 500;
    absolute_gone.absolute_expires_at = now - 10; // boundary too
    let mut alive = session(alice.id, "alive", 100);
    alive.idle_expires_at = now + 1;
    alive.absolute_expires_at = now + 1_000;
    for x in [&idle_gone, &absolute_gone, &alive] {
        s.create_session(x).await.unwrap();
    }

    assert_eq!(s.delete_expired_sessions(now - 10).await.unwrap(), 1);
    assert!(s.session_by_id(absolute_gone.id).await.unwrap().is_none());
    assert_eq!(s.delete_expired_sessions(now).await.unwrap(), 1);
    assert!(s.session_by_id(idle_gone.id).await.unwrap().is_none());
    assert!(s.session_by_id(alive.id).await.unwrap().is_some());
    assert_eq!(s.delete_expired_sessions(now).await.unwrap(), 0);

    // Touching pushes the idle expiry out; the absolute one still ends it.
    assert!(s.touch_session(alive.id, now, now + 5_000).await.unwrap());
    assert_eq!(s.delete_expired_sessions(now + 999).await.unwrap(), 0);
    assert_eq!(s.delete_expired_sessions(now + 1_000).await.unwrap(), 1);
    assert!(s.sessions_for_user(alice.id).await.unwrap().is_empty());
}

async fn audit_log(t: Ctx) {
    let s = &*t.store;
    let alice = Uuid::new_v4();
    let bob = Uuid::new_v4();
    let everything = AuditQuery {
        user_id: None,
        since: None,
        limit: 100,
        ..AuditQuery::default()
    };
    assert!(s.list_audit(&everything).await.unwrap().is_empty());

    let full = NewAuditEvent {
        at: 100,
        event: "login.failed".into(),
        user_id: Some(alice),
        reason: Some("bad password".into()),
        client_addr: Some("[::1]:4000".into()),
        user_agent: Some("curl/8".into()),
    };
    s.append_audit(&full).await.unwrap();
    s.append_audit(&event(200, "login.ok", Some(alice)))
        .await
        .unwrap();
    s.append_audit(&event(200, "register", Some(bob)))
        .await
        .unwrap();
    s.append_audit(&event(300, "server.start", None))
        .await
        .unwrap();
    s.append_audit(&event(150, "late.write", Some(alice)))
        .await
        .unwrap();

    let all = s.list_audit(&everything).await.unwrap();
    let order: Vec<(i64, &str)> = all.iter().map(|e| (e.at, e.event.as_str())).collect();
    // Newest first; equal times by id, newest first.
    assert_eq!(
        order,
        vec![
            (300, "server.start"),
            (200, "register"),
            (200, "login.ok"),
            (150, "late.write"),
            (100, "login.failed"),
        ]
    );
    assert!(all
        .windows(2)
        .all(|w| w[0].at > w[1].at || w[0].id > w[1].id));
    let first = all.last().unwrap();
    assert_eq!(first.user_id, Some(alice));
    assert_eq!(first.reason.as_deref(), Some("bad password"));
    assert_eq!(first.client_addr.as_deref(), Some("[::1]:4000"));
    assert_eq!(first.user_agent.as_deref(), Some("curl/8"));
    assert_eq!(all[0].user_id, None);
    assert_eq!(all[0].reason, None);

    let alices = s
        .list_audit(&AuditQuery {
            user_id: Some(alice),
            since: None,
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let events: Vec<&str> = alices.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(events, vec!["login.ok", "late.write", "login.failed"]);

    let recent = s
        .list_audit(&AuditQuery {
            user_id: None,
            since: Some(200),
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(recent.len(), 3, "since is inclusive");

    let both = s
        .list_audit(&AuditQuery {
            user_id: Some(alice),
            since: Some(150),
            limit: 1,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(both.len(), 1);
    assert_eq!(both[0].event, "login.ok");

    let limited = s
        .list_audit(&AuditQuery {
            limit: 2,
            ..everything.clone()
        })
        .await
        .unwrap();
    assert_eq!(limited, all[..2]);
    assert!(s
        .list_audit(&AuditQuery {
            limit: 0,
            ..everything.clone()
        })
        .await
        .unwrap()
        .is_empty());
    assert!(s
        .list_audit(&AuditQuery {
            user_id: Some(Uuid::new_v4()),
            since: None,
            limit: 10,
            ..AuditQuery::default()
        })
        .await
        .unwrap()
        .is_empty());

    // Strictly before the cutoff.
    assert_eq!(s.delete_audit_before(150).await.unwrap(), 1);
    assert_eq!(s.delete_audit_before(150).await.unwrap(), 0);
    assert_eq!(s.delete_audit_before(201).await.unwrap(), 3);
    let left = s.list_audit(&everything).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event, "server.start");

    // Ids keep increasing.
    s.append_audit(&event(400, "server.stop", None))
        .await
        .unwrap();
    let newest = s.list_audit(&everything).await.unwrap();
    assert!(newest[0].id > newest[1].id);
}

async fn secrets(t: Ctx) {
    let s = &*t.store;
    assert_eq!(s.secret("hmac").await.unwrap(), None);
    assert_eq!(
        s.insert_secret_if_absent("hmac", b"first", 1)
            .await
            .unwrap(),
        b"first"
    );
    assert_eq!(
        s.insert_secret_if_absent("hmac", b"second", 2)
            .await
            .unwrap(),
        b"first",
        "the existing value wins"
    );
    assert_eq!(
        s.secret("hmac").await.unwrap().as_deref(),
        Some(&b"first"[..])
    );
    // Names are independent; empty and binary values are kept exactly.
    assert_eq!(
        s.insert_secret_if_absent("empty", b"", 3).await.unwrap(),
        b""
    );
    let binary: Vec<u8> = (0..=255).collect();
    assert_eq!(
        s.insert_secret_if_absent("binary", &binary, 4)
            .await
            .unwrap(),
        binary
    );
    assert_eq!(s.secret("empty").await.unwrap(), Some(Vec::new()));
    assert_eq!(s.secret("binary").await.unwrap(), Some(binary));
    assert_eq!(s.secret("HMAC").await.unwrap(), None, "names are exact");
}

async fn secrets_concurrent_insert(t: Ctx) {
    // Two pools, like two nodes starting at once, eight racing callers.
    let other = t.reconnect().await;
    let stores = [t.store.clone(), other.clone()];
    for round in 0..3 {
        let name = format!("signing-key-{round}");
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8u8)
            .map(|i| {
                let store = stores[usize::from(i % 2)].clone();
                let barrier = barrier.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    store
                        .insert_secret_if_absent(&name, &[i; 32], i64::from(i))
                        .await
                        .expect("insert_secret_if_absent")
                })
            })
            .collect();
        let mut results = Vec::new();
        for task in tasks {
            results.push(task.await.expect("task"));
        }
        let winner = results[0].clone();
        assert!(
            results.iter().all(|r| *r == winner),
            "callers disagree: {results:?}"
        );
        assert!((0..8u8).any(|i| winner == [i; 32]), "not a submitted value");
        assert_eq!(t.store.secret(&name).await.unwrap(), Some(winner.clone()));
        assert_eq!(other.secret(&name).await.unwrap(), Some(winner));
    }
    other.close().await;
}

async fn login_session_is_one_transaction(t: Ctx) {
    let s = &*t.store;
    let alice = user("alice", None, 1);
    create(s, &alice).await;
    let first = session(alice.id, "a1", 50);
    s.create_login_sessions(&[(first.clone(), event(50, "login.success", Some(alice.id)))])
        .await
        .unwrap();
    let got = s.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(got.last_login_at, Some(50));
    assert_eq!(
        s.session_by_id(first.id).await.unwrap().unwrap().token_hash,
        first.token_hash
    );
    let audit = |user| AuditQuery {
        user_id: Some(user),
        since: None,
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(s.list_audit(&audit(alice.id)).await.unwrap().len(), 1);

    // A session that cannot be stored (its id is taken) leaves no trace: no audit row, no
    // new last_login_at.
    let clash = NewSession {
        created_at: 60,
        ..session(alice.id, "a2", 60)
    };
    let clash = NewSession {
        id: first.id,
        ..clash
    };
    // In a batch with a valid login before it, the whole batch is refused.
    let fine = session(alice.id, "a3", 60);
    assert!(s
        .create_login_sessions(&[
            (fine.clone(), event(60, "login.success", Some(alice.id))),
            (clash, event(60, "login.success", Some(alice.id))),
        ])
        .await
        .is_err());
    assert!(s.session_by_id(fine.id).await.unwrap().is_none());
    assert_eq!(
        s.user_by_id(alice.id).await.unwrap().unwrap().last_login_at,
        Some(50)
    );
    assert_eq!(s.list_audit(&audit(alice.id)).await.unwrap().len(), 1);

    // An unknown user: the foreign key refuses the session, and nothing is written.
    let ghost = Uuid::new_v4();
    assert!(s
        .create_login_sessions(&[(
            session(ghost, "g", 70),
            event(70, "login.success", Some(ghost))
        )])
        .await
        .is_err());
    assert!(s.list_audit(&audit(ghost)).await.unwrap().is_empty());

    // Several logins in one batch, for two users.
    let bob = user("bob", None, 1);
    create(s, &bob).await;
    let (a4, b1) = (session(alice.id, "a4", 80), session(bob.id, "b1", 81));
    s.create_login_sessions(&[
        (a4.clone(), event(80, "login.success", Some(alice.id))),
        (b1.clone(), event(81, "login.success", Some(bob.id))),
    ])
    .await
    .unwrap();
    assert_eq!(
        s.user_by_id(alice.id).await.unwrap().unwrap().last_login_at,
        Some(80)
    );
    assert_eq!(
        s.user_by_id(bob.id).await.unwrap().unwrap().last_login_at,
        Some(81)
    );
    assert!(s.session_by_id(a4.id).await.unwrap().is_some());
    assert!(s.session_by_id(b1.id).await.unwrap().is_some());
    assert_eq!(s.list_audit(&audit(alice.id)).await.unwrap().len(), 2);
}

fn message(to: Uuid, from: Uuid, id: &str) -> NewMessage {
    NewMessage {
        recipient_id: to,
        sender_id: from,
        sender_sealed: b"sealed:sender".to_vec(),
        msg_id: id.into(),
        sent_at: 1_000,
        stored_at: 1,
        ciphertext: format!("ct:{id}").into_bytes(),
        signature: vec![7; 64],
    }
}

async fn message_batches(t: Ctx) {
    let s = &*t.store;
    let alice = user("alice", None, 1);
    let bob = user("bob", None, 1);
    create(s, &alice).await;
    create(s, &bob).await;

    // One batch: the mailbox limit (3) counts the batch's own earlier inserts, and a
    // duplicate inside the batch is recognised.
    let batch = [
        message(bob.id, alice.id, "m1"),
        message(bob.id, alice.id, "m2"),
        message(bob.id, alice.id, "m1"),
        message(alice.id, bob.id, "r1"),
        message(bob.id, alice.id, "m3"),
        message(bob.id, alice.id, "m4"),
    ];
    let out = s.write_messages(&[], &batch, 3).await.unwrap();
    assert_eq!(out.len(), 6);
    let seqs: Vec<i64> = out
        .iter()
        .filter_map(|o| match o {
            MessageInsert::Stored(seq) => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(seqs.len(), 4, "{out:?}");
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "stored in batch order: {seqs:?}"
    );
    assert_eq!(out[2], MessageInsert::Duplicate);
    assert_eq!(out[5], MessageInsert::MailboxFull);
    let stored: Vec<String> = s
        .messages_after(bob.id, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.msg_id)
        .collect();
    assert_eq!(stored, ["m1", "m2", "m3"]);

    // Acknowledgements apply before the inserts of the same batch, so they make room; an
    // ack of a missing id is harmless, and acks only touch their own mailbox.
    let acks = [
        MessageAck {
            recipient: bob.id,
            msg_id: "m1".into(),
        },
        MessageAck {
            recipient: bob.id,
            msg_id: "m2".into(),
        },
        MessageAck {
            recipient: bob.id,
            msg_id: "gone".into(),
        },
        MessageAck {
            recipient: bob.id,
            msg_id: "r1".into(),
        },
    ];
    let out = s
        .write_messages(&acks, &[message(bob.id, alice.id, "m4")], 3)
        .await
        .unwrap();
    assert!(matches!(out[..], [MessageInsert::Stored(_)]), "{out:?}");
    assert_eq!(s.count_messages(bob.id).await.unwrap(), 2);
    assert_eq!(
        s.count_messages(alice.id).await.unwrap(),
        1,
        "r1 is alice's"
    );

    // A batch that fails stores nothing of itself: the unknown recipient breaks the foreign
    // key, and the valid message and the ack before it are rolled back too.
    let ghost = Uuid::new_v4();
    let bad = [message(alice.id, bob.id, "r2"), message(ghost, bob.id, "x")];
    let ack_r1 = [MessageAck {
        recipient: alice.id,
        msg_id: "r1".into(),
    }];
    let refused = s.write_messages(&ack_r1, &bad, 3).await.unwrap_err();
    assert!(refused.is_missing_reference(), "{refused}");
    let alone = s
        .insert_message(&message(ghost, bob.id, "y"), 3)
        .await
        .unwrap_err();
    assert!(alone.is_missing_reference(), "{alone}");
    let left: Vec<String> = s
        .messages_after(alice.id, 0, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.msg_id)
        .collect();
    assert_eq!(left, ["r1"]);

    // Empty batches are fine.
    assert!(s.write_messages(&[], &[], 3).await.unwrap().is_empty());
}

async fn message_batches_from_many_tasks(t: Ctx) {
    // Parallel batches into the same mailboxes (two pools, as two nodes would) never push
    // a mailbox past its limit, and each id is stored once.
    let s: Arc<dyn Store> = t.store.clone();
    let other = t.reconnect().await;
    let alice = user("alice", None, 1);
    let bob = user("bob", None, 1);
    create(&*s, &alice).await;
    create(&*s, &bob).await;
    let mut tasks = Vec::new();
    for task in 0..8 {
        let store = if task % 2 == 0 {
            s.clone()
        } else {
            other.clone()
        };
        let (a, b) = (alice.id, bob.id);
        tasks.push(tokio::spawn(async move {
            let batch: Vec<NewMessage> = (0..10)
                .flat_map(|i| {
                    // Every task also resends ids another task sends.
                    let id = format!("m{}", (task * 10 + i) % 60);
                    [message(b, a, &id), message(a, b, &id)]
                })
                .collect();
            store.write_messages(&[], &batch, 25).await.unwrap()
        }));
    }
    let mut stored = 0;
    for task in tasks {
        stored += task
            .await
            .unwrap()
            .iter()
            .filter(|o| matches!(o, MessageInsert::Stored(_)))
            .count();
    }
    assert_eq!(s.count_messages(bob.id).await.unwrap(), 25);
    assert_eq!(s.count_messages(alice.id).await.unwrap(), 25);
    assert_eq!(stored, 50);
    other.close().await;
}

async fn account_creation_is_one_transaction(t: Ctx) {
    let s = &*t.store;
    let codes = |user: Uuid| -> Vec<FactorRecord> {
        (0..3)
            .map(|i| FactorRecord {
                user_id: user,
                kind: FactorKind::BackupCode,
                slot: Slot::Key(format!("slot{i}")),
                value: Vec::new(),
                counter: 0,
                created_at: 5,
                used_at: None,
            })
            .collect()
    };
    let alice = user("alice", Some("a@example.com"), 5);
    s.create_account(
        &alice,
        &codes(alice.id),
        &event(5, "register", Some(alice.id)),
    )
    .await
    .unwrap();
    assert!(s.user_by_id(alice.id).await.unwrap().is_some());
    assert_eq!(
        s.factors(alice.id, FactorKind::BackupCode)
            .await
            .unwrap()
            .len(),
        3
    );
    let audit = |user| AuditQuery {
        user_id: Some(user),
        since: None,
        limit: 10,
        ..AuditQuery::default()
    };
    assert_eq!(s.list_audit(&audit(alice.id)).await.unwrap().len(), 1);

    // A taken username or email is a conflict, and nothing of the new account is written.
    for (dup, on) in [
        (user("alice", None, 6), ConflictOn::Username),
        (user("other", Some("a@example.com"), 6), ConflictOn::Email),
    ] {
        match s
            .create_account(&dup, &codes(dup.id), &event(6, "register", Some(dup.id)))
            .await
        {
            Err(StoreError::Conflict(got)) => assert_eq!(got, on),
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert!(s.user_by_id(dup.id).await.unwrap().is_none());
        assert!(s
            .factors(dup.id, FactorKind::BackupCode)
            .await
            .unwrap()
            .is_empty());
        assert!(s.list_audit(&audit(dup.id)).await.unwrap().is_empty());
    }
}

async fn atomic_writes_commit_together(t: Ctx) {
    let s = &*t.store;
    let bob = user("bob", None, 5);
    create(s, &bob).await;
    let keep = session(bob.id, "keep", 5);
    for token in ["keep", "b", "c"] {
        let mut one = session(bob.id, token, 5);
        if token == "keep" {
            one = keep.clone();
        }
        s.create_session(&one).await.unwrap();
    }
    let factor = |kind: FactorKind, slot: Slot| FactorRecord {
        user_id: bob.id,
        kind,
        slot,
        value: b"v".to_vec(),
        counter: 0,
        created_at: 5,
        used_at: None,
    };
    s.put_factor(&factor(FactorKind::BackupCode, Slot::Key("old".into())))
        .await
        .unwrap();
    s.put_factor(&factor(FactorKind::DeviceRequired, Slot::Only))
        .await
        .unwrap();

    // A write the database refuses (a factor for nobody) rolls back the writes before it.
    let mut failing = writes::password_reset(
        bob.id,
        b"new".to_vec(),
        vec![factor(FactorKind::BackupCode, Slot::Key("n1".into()))],
        6,
    );
    failing.insert(
        2,
        Write::PutFactor(FactorRecord {
            user_id: Uuid::new_v4(),
            ..factor(FactorKind::BackupCode, Slot::Only)
        }),
    );
    assert!(s.write_atomically(&failing).await.is_err());
    let stored = s.user_by_id(bob.id).await.unwrap().unwrap();
    assert_eq!(stored.credential, bob.credential);
    assert_eq!(stored.updated_at, 5);
    assert_eq!(s.sessions_for_user(bob.id).await.unwrap().len(), 3);
    assert_eq!(
        s.factors(bob.id, FactorKind::BackupCode).await.unwrap()[0].slot,
        Slot::Key("old".into())
    );

    // A password change keeping one session: rows counted per write.
    let counts = s
        .write_atomically(&writes::password_change(
            bob.id,
            b"changed".to_vec(),
            Some(keep.id),
            7,
        ))
        .await
        .unwrap();
    assert_eq!(counts, vec![1, 2]);
    let left = s.sessions_for_user(bob.id).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, keep.id);

    // The reset: new credential, no session, the new codes only, no device requirement, no
    // operator's reset code left (bob has none: 0 rows).
    let counts = s
        .write_atomically(&writes::password_reset(
            bob.id,
            b"reset".to_vec(),
            vec![
                factor(FactorKind::BackupCode, Slot::Key("n1".into())),
                factor(FactorKind::BackupCode, Slot::Key("n2".into())),
            ],
            8,
        ))
        .await
        .unwrap();
    assert_eq!(counts, vec![1, 1, 2, 1, 0]);
    let stored = s.user_by_id(bob.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.credential.as_slice(), stored.updated_at),
        (&b"reset"[..], 8)
    );
    assert!(s.sessions_for_user(bob.id).await.unwrap().is_empty());
    let codes = s.factors(bob.id, FactorKind::BackupCode).await.unwrap();
    assert_eq!(
        codes.iter().map(|f| f.slot.stored()).collect::<Vec<_>>(),
        ["n1", "n2"]
    );
    assert!(s
        .factor(bob.id, FactorKind::DeviceRequired, &Slot::Only)
        .await
        .unwrap()
        .is_none());

    // A ban revokes the sessions; TOTP activation swaps pending for active.
    s.create_session(&session(bob.id, "d", 9)).await.unwrap();
    let counts = s
        .write_atomically(&writes::status_change(bob.id, AccountStatus::Banned, 9))
        .await
        .unwrap();
    assert_eq!(counts, vec![1, 1]);
    assert_eq!(
        s.user_by_id(bob.id).await.unwrap().unwrap().status,
        AccountStatus::Banned
    );
    s.put_factor(&factor(FactorKind::Totp, Slot::Pending))
        .await
        .unwrap();
    s.write_atomically(&writes::totp_activation(factor(
        FactorKind::Totp,
        Slot::Active,
    )))
    .await
    .unwrap();
    let totp = s.factors(bob.id, FactorKind::Totp).await.unwrap();
    assert_eq!(
        totp.iter().map(|f| f.slot.stored()).collect::<Vec<_>>(),
        ["active"]
    );
}
