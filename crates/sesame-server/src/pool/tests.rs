use std::sync::{Arc, Barrier};

use super::{HashPool, PoolBusy};

#[tokio::test]
async fn runs_jobs_off_the_runtime_and_returns_results() {
    let pool = HashPool::new(2, 4);
    let name = pool
        .run(|| std::thread::current().name().map(str::to_owned))
        .await
        .unwrap();
    assert!(name.unwrap().starts_with("sesame-hash-"));
    assert_eq!(pool.run(|| 6 * 7).await, Ok(42));
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn idle_priority_puts_the_workers_in_sched_idle_and_default_does_not() {
    use thread_priority::unix::{
        thread_schedule_policy, NormalThreadSchedulePolicy, ThreadSchedulePolicy,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    let other = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Other);
    let low = HashPool::with_priority(1, 4, true);
    let policy = low.run(|| thread_schedule_policy().ok()).await.unwrap();
    assert_eq!(policy, Some(idle));
    let normal = HashPool::new(1, 4);
    let policy = normal.run(|| thread_schedule_policy().ok()).await.unwrap();
    assert_eq!(policy, Some(other));
    // The caller's own thread is untouched.
    assert_eq!(thread_schedule_policy().ok(), Some(other));
}

#[tokio::test]
async fn a_full_queue_is_refused_at_once() {
    // One worker held by a barrier, a queue of one: the third job is refused.
    let pool = HashPool::new(1, 1);
    let gate = Arc::new(Barrier::new(2));
    let g = gate.clone();
    let first = tokio::spawn({
        let pool = pool.clone();
        async move { pool.run(move || g.wait()).await.map(|_| ()) }
    });
    while pool.in_flight() == 0 || pool.queued() > 0 {
        tokio::task::yield_now().await;
    }
    let second = tokio::spawn({
        let pool = pool.clone();
        async move { pool.run(|| 2).await }
    });
    while pool.queued() == 0 {
        tokio::task::yield_now().await;
    }
    assert_eq!(pool.run(|| 3).await, Err(PoolBusy));
    gate.wait();
    assert!(first.await.unwrap().is_ok());
    assert_eq!(second.await.unwrap(), Ok(2));
}
