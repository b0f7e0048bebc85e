//! Unit tests for the backend-independent helpers. The behaviour of both stores is
//! tested in `tests/store.rs`, on real databases.

use super::*;

#[test]
fn account_status_round_trips_through_text() {
    for status in [
        AccountStatus::Active,
        AccountStatus::Pending,
        AccountStatus::Banned,
    ] {
        assert_eq!(status.as_str().parse::<AccountStatus>(), Ok(status));
        assert_eq!(status.to_string(), status.as_str());
    }
    assert_eq!(
        "Active".parse::<AccountStatus>(),
        Err(UnknownStatus("Active".into()))
    );
    assert!(matches!(
        decode_status("deleted"),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn methods_are_a_json_array() {
    let methods = vec!["opaque".to_owned(), "to,tp \"x\"".to_owned()];
    let text = encode_methods(&methods);
    assert_eq!(text, r#"["opaque","to,tp \"x\""]"#);
    assert_eq!(decode_methods(&text).unwrap(), methods);
    assert_eq!(encode_methods(&[]), "[]");
    assert!(decode_methods("[]").unwrap().is_empty());
    assert!(matches!(
        decode_methods("opaque"),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn negative_counts_are_corrupt() {
    assert_eq!(count_to_u64(3).unwrap(), 3);
    assert!(matches!(count_to_u64(-1), Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn unknown_schemes_are_rejected_without_echoing_the_url() {
    for url in ["mysql://root:hunter2@db/x", "hunter2", "", "file:/tmp/x.db"] {
        match connect(url, &ConnectOptions::default()).await {
            Err(StoreError::InvalidUrl(msg)) => assert!(!msg.contains("hunter2"), "{msg}"),
            Err(other) => panic!("{url}: unexpected error {other}"),
            Ok(_) => panic!("{url}: accepted"),
        }
    }
}

#[tokio::test]
async fn bad_schema_names_are_rejected_before_connecting() {
    for schema in [
        "",
        "Upper",
        "1abc",
        "a-b",
        "a;drop",
        "pg_x",
        &"a".repeat(64),
    ] {
        let options = ConnectOptions {
            max_connections: 1,
            pg_schema: Some(schema.to_owned()),
        };
        // Port 9 (discard) on loopback: never reached, the name is checked first.
        let result = connect("postgres://nobody@127.0.0.1:9/none", &options).await;
        assert!(
            matches!(result, Err(StoreError::InvalidUrl(_))),
            "{schema:?} was not rejected"
        );
    }
}

#[tokio::test]
async fn in_memory_sqlite_keeps_its_data_across_uses() {
    let store = connect("sqlite::memory:", &ConnectOptions::default())
        .await
        .unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    store.ping().await.unwrap();
    assert_eq!(
        store.insert_secret_if_absent("k", b"v1", 1).await.unwrap(),
        b"v1"
    );
    // Give the pool a chance to recycle; the single connection must stay open.
    tokio::task::yield_now().await;
    assert_eq!(
        store.secret("k").await.unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    store.close().await;
    assert!(store.ping().await.is_err());
}

#[test]
fn unique_violation_mapping_reads_the_constraint_or_message() {
    // The mapping itself is exercised against real databases in tests/store.rs; here
    // only the non-database path.
    let err: StoreError = sqlx::Error::RowNotFound.into();
    assert!(matches!(
        err,
        StoreError::Database(sqlx::Error::RowNotFound)
    ));
}

#[test]
fn factor_kinds_round_trip_and_unknown_ones_are_corrupt() {
    for kind in super::FactorKind::ALL {
        assert_eq!(super::FactorKind::parse(kind.as_str()).unwrap(), kind);
    }
    assert!(matches!(
        super::FactorKind::parse("poison"),
        Err(super::StoreError::Corrupt(_))
    ));
}

#[test]
fn slots_round_trip_by_kind_and_odd_ones_are_corrupt() {
    use super::{FactorKind as K, Slot};
    for (kind, slot) in [
        (K::Totp, Slot::Active),
        (K::Totp, Slot::Pending),
        (K::SecurityQuestion, Slot::Position(2)),
        (K::BackupCode, Slot::Key("a1b2".into())),
        (K::DeviceKey, Slot::Key("dev_x".into())),
        (K::Profile, Slot::Only),
        (K::DeviceRequired, Slot::Only),
    ] {
        assert_eq!(Slot::parse(kind, &slot.stored()).unwrap(), slot);
    }
    assert!(Slot::parse(K::Totp, "other").is_err());
    assert!(Slot::parse(K::SecurityQuestion, "x").is_err());
    assert!(Slot::parse(K::Profile, "1").is_err());
}
