use std::sync::Arc;
use std::time::Duration;

use super::{Ephemeral, MemoryEphemeral};

#[tokio::test(start_paused = true)]
async fn values_expire_and_take_is_single_use() {
    let s = MemoryEphemeral::new();
    s.put("k", b"v", Duration::from_secs(10)).await.unwrap();
    assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(s.take("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(s.take("k").await.unwrap(), None);

    s.put("k", b"v", Duration::from_secs(10)).await.unwrap();
    tokio::time::advance(Duration::from_secs(9)).await;
    assert!(s.ttl("k").await.unwrap().unwrap() <= Duration::from_secs(1));
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(s.get("k").await.unwrap(), None);
    assert_eq!(s.ttl("k").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn counters_count_and_refresh_their_ttl() {
    let s = MemoryEphemeral::new();
    let ttl = Duration::from_secs(60);
    assert_eq!(s.incr("c", ttl).await.unwrap(), 1);
    assert_eq!(s.incr("c", ttl).await.unwrap(), 2);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(s.incr("c", ttl).await.unwrap(), 3);
    tokio::time::advance(Duration::from_secs(59)).await;
    assert_eq!(s.incr("c", ttl).await.unwrap(), 4, "the ttl was refreshed");
    tokio::time::advance(Duration::from_secs(61)).await;
    assert_eq!(
        s.incr("c", ttl).await.unwrap(),
        1,
        "expired counters restart"
    );
    s.delete("c").await.unwrap();
    assert_eq!(s.get("c").await.unwrap(), None);
}

#[tokio::test(start_paused = true)]
async fn set_nx_sets_once_until_expiry() {
    let s = MemoryEphemeral::new();
    assert!(s.set_nx("g", b"1", Duration::from_secs(5)).await.unwrap());
    assert!(!s.set_nx("g", b"2", Duration::from_secs(5)).await.unwrap());
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(s.set_nx("g", b"3", Duration::from_secs(5)).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_increments_and_takes_are_atomic() {
    let s = Arc::new(MemoryEphemeral::new());
    s.put("once", b"x", Duration::from_secs(60)).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let n = s.incr("n", Duration::from_secs(60)).await.unwrap();
            let got = s.take("once").await.unwrap().is_some();
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
