use std::sync::Arc;
use std::time::Duration;

use super::{Ephemeral, MemoryEphemeral, GC_GRACE};
use crate::limiter::{Mode, Rule};

const T0: u64 = 1_767_225_600_000;

#[tokio::test]
async fn values_expire_by_the_callers_clock_and_take_is_single_use() {
    let s = MemoryEphemeral::new();
    let ttl = Duration::from_secs(10);
    s.put("k", b"v", T0, ttl).await.unwrap();
    assert_eq!(s.get("k", T0).await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(s.take("k", T0).await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(s.take("k", T0).await.unwrap(), None);

    s.put("k", b"v", T0, ttl).await.unwrap();
    assert!(s.get("k", T0 + 9_999).await.unwrap().is_some());
    assert_eq!(s.get("k", T0 + 10_000).await.unwrap(), None);
    assert_eq!(s.take("k", T0 + 10_000).await.unwrap(), None);
}

#[tokio::test]
async fn set_nx_sets_once_until_expiry() {
    let s = MemoryEphemeral::new();
    let ttl = Duration::from_secs(5);
    assert!(s.set_nx("g", b"1", T0, ttl).await.unwrap());
    assert!(!s.set_nx("g", b"2", T0 + 4_999, ttl).await.unwrap());
    assert!(s.set_nx("g", b"3", T0 + 5_000, ttl).await.unwrap());
    assert_eq!(
        s.get("g", T0 + 5_000).await.unwrap().as_deref(),
        Some(&b"3"[..])
    );
}

#[tokio::test]
async fn dead_entries_are_swept_after_the_grace() {
    let s = MemoryEphemeral::new();
    s.put("old", b"v", T0, Duration::from_secs(1))
        .await
        .unwrap();
    let later = T0 + 1_000 + u64::try_from(GC_GRACE.as_millis()).unwrap();
    // The sweep runs every 1024 operations.
    for _ in 0..1100 {
        s.get("other", later).await.unwrap();
    }
    assert!(s.map.lock().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_hits_and_takes_are_atomic() {
    let s = Arc::new(MemoryEphemeral::new());
    s.put("once", b"x", T0, Duration::from_secs(60))
        .await
        .unwrap();
    let rule = Rule::fixed(u64::MAX, Duration::from_secs(60));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let n = s.hit("n", &rule, T0, Mode::Check).await.unwrap().count;
            let got = s.take("once", T0).await.unwrap().is_some();
            (n, got)
        }));
    }
    let mut seen = Vec::new();
    let mut takers = 0;
    for t in tasks {
        let (n, got) = t.await.unwrap();
        seen.push(n);
        takers += usize::from(got);
    }
    seen.sort_unstable();
    assert_eq!(seen, (1..=64).collect::<Vec<u64>>());
    assert_eq!(takers, 1);
}
