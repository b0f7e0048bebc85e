//! The factor store on both backends: upsert, listing, single use, counters, replacement.

mod common;

use std::sync::Arc;

use common::backends;
use sesame_server::store::{AccountStatus, FactorRecord, NewUser, Store};
use sesame_server::store::{FactorKind, Slot};
use uuid::Uuid;

async fn user(store: &Arc<dyn Store>) -> Uuid {
    let id = Uuid::new_v4();
    store
        .create_user(&NewUser {
            id,
            username_index: id.as_bytes().to_vec(),
            username_sealed: vec![1],
            email_index: None,
            email_sealed: None,
            credential: vec![2],
            status: AccountStatus::Active,
            created_at: 100,
        })
        .await
        .unwrap();
    id
}

fn factor(user: Uuid, kind: FactorKind, slot: Slot, value: &[u8]) -> FactorRecord {
    FactorRecord {
        user_id: user,
        kind,
        slot,
        value: value.to_vec(),
        counter: 0,
        created_at: 100,
        used_at: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn factors_upsert_list_and_delete() {
    for db in backends().await {
        let store = db.connect().await;
        let (a, b) = (user(&store).await, user(&store).await);
        store
            .put_factor(&factor(a, FactorKind::Totp, Slot::Active, b"s1"))
            .await
            .unwrap();
        store
            .put_factor(&factor(a, FactorKind::Totp, Slot::Active, b"s2"))
            .await
            .unwrap();
        store
            .put_factor(&factor(a, FactorKind::Totp, Slot::Pending, b"p"))
            .await
            .unwrap();
        store
            .put_factor(&factor(b, FactorKind::Totp, Slot::Active, b"other"))
            .await
            .unwrap();
        let got = store
            .factor(a, FactorKind::Totp, &Slot::Active)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.value, b"s2", "{}: upsert replaces", db.name);
        assert_eq!(got.user_id, a);
        let all = store.factors(a, FactorKind::Totp).await.unwrap();
        assert_eq!(
            all.iter().map(|f| f.slot.stored()).collect::<Vec<_>>(),
            ["active", "pending"]
        );
        assert_eq!(
            store
                .factor(b, FactorKind::Totp, &Slot::Pending)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            store
                .delete_factors(a, FactorKind::Totp, Some(&Slot::Pending))
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .delete_factors(a, FactorKind::Totp, None)
                .await
                .unwrap(),
            1
        );
        assert!(store.factors(a, FactorKind::Totp).await.unwrap().is_empty());
        assert_eq!(
            store.factors(b, FactorKind::Totp).await.unwrap().len(),
            1,
            "other users untouched"
        );
        // Deleting the user removes its factors.
        store.delete_user(b).await.unwrap();
        assert!(store.factors(b, FactorKind::Totp).await.unwrap().is_empty());
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_use_and_counters_are_atomic() {
    for db in backends().await {
        let store = db.connect().await;
        let a = user(&store).await;
        store
            .put_factor(&factor(
                a,
                FactorKind::BackupCode,
                Slot::Key("h1".into()),
                b"",
            ))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .use_factor(a, FactorKind::BackupCode, &Slot::Key("h1".into()), 200 + i)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "{}: a code is used once", db.name);
        assert!(store
            .factor(a, FactorKind::BackupCode, &Slot::Key("h1".into()))
            .await
            .unwrap()
            .unwrap()
            .used_at
            .is_some());
        assert!(!store
            .use_factor(a, FactorKind::BackupCode, &Slot::Key("nope".into()), 1)
            .await
            .unwrap());

        store
            .put_factor(&factor(a, FactorKind::Totp, Slot::Active, b"s"))
            .await
            .unwrap();
        assert!(store
            .advance_counter(a, FactorKind::Totp, &Slot::Active, 10)
            .await
            .unwrap());
        assert!(
            !store
                .advance_counter(a, FactorKind::Totp, &Slot::Active, 10)
                .await
                .unwrap(),
            "same step twice"
        );
        assert!(
            !store
                .advance_counter(a, FactorKind::Totp, &Slot::Active, 9)
                .await
                .unwrap(),
            "older step"
        );
        assert!(store
            .advance_counter(a, FactorKind::Totp, &Slot::Active, 11)
            .await
            .unwrap());
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .advance_counter(a, FactorKind::Totp, &Slot::Active, 12)
                    .await
                    .unwrap()
            }));
        }
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1, "{}: a step is accepted once", db.name);
        store.close().await;
        db.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replace_swaps_a_whole_kind() {
    for db in backends().await {
        let store = db.connect().await;
        let a = user(&store).await;
        let old: Vec<_> = (0..3)
            .map(|i| factor(a, FactorKind::BackupCode, Slot::Key(format!("old{i}")), b""))
            .collect();
        store
            .replace_factors(a, FactorKind::BackupCode, &old)
            .await
            .unwrap();
        store
            .put_factor(&factor(a, FactorKind::Profile, Slot::Only, b"{}"))
            .await
            .unwrap();
        let new: Vec<_> = (0..2)
            .map(|i| factor(a, FactorKind::BackupCode, Slot::Key(format!("new{i}")), b""))
            .collect();
        store
            .replace_factors(a, FactorKind::BackupCode, &new)
            .await
            .unwrap();
        let slots: Vec<_> = store
            .factors(a, FactorKind::BackupCode)
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.slot.stored())
            .collect();
        assert_eq!(slots, ["new0", "new1"], "{}", db.name);
        assert!(
            store
                .factor(a, FactorKind::Profile, &Slot::Only)
                .await
                .unwrap()
                .is_some(),
            "other kinds untouched"
        );
        store.close().await;
        db.cleanup().await;
    }
}
