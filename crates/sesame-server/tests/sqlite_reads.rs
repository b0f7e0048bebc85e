//! SQLite's session lookups run on the caller's thread (`store/sqlite_reads.rs`): they read
//! what was stored, field for field, and see every change at once, including one made
//! through another connection to the file (as `sesame admin` makes from its own process),
//! also while many lookups and writes run together.

use std::sync::Arc;

use sesame_server::store::{
    self, AccountStatus, ConnectOptions, NewSession, NewUser, SessionRecord, Store,
};
use uuid::Uuid;

const NOW: i64 = 1_767_225_600;

/// Two stores on one new database file: the server's and another process's.
async fn two_stores() -> (Arc<dyn Store>, Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sesame.db").display());
    let options = ConnectOptions::default();
    let server = store::connect(&url, &options).await.unwrap();
    let admin = store::connect(&url, &options).await.unwrap();
    (server, admin, dir)
}

fn user(n: u8) -> NewUser {
    NewUser {
        id: Uuid::new_v4(),
        username_index: vec![n; 32],
        username_sealed: vec![n; 40],
        email_index: None,
        email_sealed: None,
        credential: vec![7; 64],
        status: AccountStatus::Active,
        created_at: NOW,
    }
}

fn session(user_id: Uuid, n: u8) -> NewSession {
    NewSession {
        id: Uuid::new_v4(),
        user_id,
        token_hash: vec![n; 32],
        created_at: NOW,
        last_seen_at: NOW + 1,
        idle_expires_at: NOW + 600,
        absolute_expires_at: NOW + 3600,
        client_addr: Some("192.0.2.7".into()),
        user_agent: Some("reads-test/1 \"quoted\"".into()),
        methods: vec!["pwd".into(), "otp".into()],
    }
}

/// What a lookup should give back for `s`.
fn record(s: &NewSession) -> SessionRecord {
    SessionRecord {
        id: s.id,
        user_id: s.user_id,
        token_hash: s.token_hash.clone(),
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        idle_expires_at: s.idle_expires_at,
        absolute_expires_at: s.absolute_expires_at,
        client_addr: s.client_addr.clone(),
        user_agent: s.user_agent.clone(),
        methods: s.methods.clone(),
    }
}

#[tokio::test]
async fn lookups_read_every_field_as_stored() {
    let (server, _admin, _dir) = two_stores().await;
    let u = user(1);
    server.create_user(&u).await.unwrap();
    let s = session(u.id, 1);
    server.create_session(&s).await.unwrap();
    let by_hash = server.session_and_owner_by_token_hash(&s.token_hash).await;
    assert_eq!(
        by_hash.unwrap(),
        Some((record(&s), Some(AccountStatus::Active)))
    );
    assert_eq!(server.session_by_id(s.id).await.unwrap(), Some(record(&s)));
    // Unknown keys are no session, not an error.
    let unknown = server.session_and_owner_by_token_hash(&[9; 32]).await;
    assert_eq!(unknown.unwrap(), None);
    assert_eq!(server.session_by_id(Uuid::new_v4()).await.unwrap(), None);
}

#[tokio::test]
async fn changes_through_another_connection_show_at_once() {
    let (server, admin, _dir) = two_stores().await;
    let u = user(2);
    server.create_user(&u).await.unwrap();
    let (a, b) = (session(u.id, 2), session(u.id, 3));
    server.create_session(&a).await.unwrap();
    server.create_session(&b).await.unwrap();
    // Warm: the lookups have their connections and statements ready.
    for _ in 0..3 {
        assert!(server.session_by_id(a.id).await.unwrap().is_some());
    }
    // Another process revokes one session: gone from the very next lookup, both ways.
    assert!(admin.delete_session(u.id, a.id).await.unwrap());
    assert_eq!(server.session_by_id(a.id).await.unwrap(), None);
    let gone = server.session_and_owner_by_token_hash(&a.token_hash).await;
    assert_eq!(gone.unwrap(), None);
    // It bans the owner: the next lookup says so.
    admin
        .set_user_status(u.id, AccountStatus::Banned, NOW + 5)
        .await
        .unwrap();
    let banned = server.session_and_owner_by_token_hash(&b.token_hash).await;
    assert_eq!(
        banned.unwrap().map(|(_, st)| st),
        Some(Some(AccountStatus::Banned))
    );
    // It deletes the account: its sessions go with it.
    assert!(admin.delete_user(u.id).await.unwrap());
    assert_eq!(server.session_by_id(b.id).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lookups_beside_writes_never_fail() {
    let (server, admin, _dir) = two_stores().await;
    let u = user(3);
    server.create_user(&u).await.unwrap();
    let kept = session(u.id, 4);
    server.create_session(&kept).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let server = server.clone();
        let id = kept.id;
        tasks.push(tokio::spawn(async move {
            for _ in 0..200 {
                let found = server.session_by_id(id).await.expect("lookup");
                assert_eq!(found.map(|s| s.id), Some(id));
            }
        }));
    }
    // Meanwhile the other connection writes and deletes sessions of the same user.
    for n in 0..100u8 {
        let s = session(u.id, n.wrapping_add(10));
        admin.create_session(&s).await.unwrap();
        assert!(admin.delete_session(u.id, s.id).await.unwrap());
    }
    for t in tasks {
        t.await.unwrap();
    }
}

/// A lookup leaves no read transaction open behind it (its statement is reset before the
/// connection is kept for the next one): a checkpoint afterwards moves every frame of the
/// write-ahead log into the database, which an open reader would stop, letting the log grow.
#[tokio::test]
async fn lookups_leave_no_reader_behind_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("sesame.db").display());
    let options = ConnectOptions::default();
    let server = store::SqliteStore::connect(&url, &options).await.unwrap();
    let u = user(4);
    server.create_user(&u).await.unwrap();
    let s = session(u.id, 5);
    server.create_session(&s).await.unwrap();
    assert!(server.session_by_id(s.id).await.unwrap().is_some());
    let found = server.session_and_owner_by_token_hash(&s.token_hash).await;
    assert!(found.unwrap().is_some());
    // More writes after the lookups, so the log has frames to move.
    server.create_session(&session(u.id, 6)).await.unwrap();
    let (busy, log, moved): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(server.writer())
        .await
        .unwrap();
    assert_eq!(
        busy, 0,
        "a reader held the log (frames {log}, moved {moved})"
    );
    assert_eq!(log, moved);
    // Control: a reader that does hold a read transaction open is seen by the same check.
    let holder = rusqlite::Connection::open(dir.path().join("sesame.db")).unwrap();
    holder.execute_batch("BEGIN").unwrap();
    let n: i64 = holder
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
    server.create_session(&session(u.id, 7)).await.unwrap();
    let (busy, log, moved): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(server.writer())
        .await
        .unwrap();
    assert!(log > moved, "an open reader went unnoticed (busy {busy})");
}
