//! The SQLite database and its `-wal` and `-shm` files are owner-only (0600), fresh or
//! inherited from an older install that created them 0644.
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use sesame_server::store::{self, ConnectOptions};

fn mode(path: &Path) -> Option<u32> {
    std::fs::metadata(path)
        .ok()
        .map(|m| m.permissions().mode() & 0o777)
}

/// Every database file that exists has mode 0600; the database and its WAL must exist.
fn assert_private(db: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let path = db.with_file_name(format!(
            "{}{suffix}",
            db.file_name().unwrap().to_string_lossy()
        ));
        match mode(&path) {
            Some(m) => assert_eq!(m, 0o600, "{} is {m:o}", path.display()),
            None => assert!(
                !suffix.is_empty() && suffix != "-wal",
                "{} missing",
                path.display()
            ),
        }
    }
}

#[tokio::test]
async fn database_files_are_owner_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sesame.db");
    let url = format!("sqlite://{}", db.display());
    let s = store::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    assert_private(&db);
    s.close().await;

    // An older install's world-readable files are narrowed at the next start.
    let old = dir.path().join("old.db");
    let url = format!("sqlite://{}", old.display());
    let s = store::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    s.close().await;
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("old.db{suffix}"));
        if p.exists() {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
    }
    let s = store::connect(&url, &ConnectOptions::default())
        .await
        .unwrap();
    assert_private(&old);
    s.close().await;
}
