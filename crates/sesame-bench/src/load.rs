//! The load loops. Every loop stops at its deadline or after its operation budget, whichever
//! comes first, and every single operation is bounded by a timeout.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::opaque::OpError;
use crate::stats::{Arm, Recorder};

/// How long one operation may take before it counts as a `timeout` error.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// The bounds of one arm.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// Wall time.
    pub duration: Duration,
    /// Most operations (all workers together).
    pub max_ops: u64,
    /// Concurrent virtual clients.
    pub concurrency: usize,
}

/// Runs `op(worker, iteration)` in `bounds.concurrency` concurrent tasks, each starting its
/// next operation as soon as the previous one finished (closed loop), until the deadline or
/// the budget. Latency is measured per operation.
pub async fn closed_loop<F, Fut>(name: &str, bounds: Bounds, op: F) -> Arm
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), OpError>> + Send + 'static,
{
    let op = Arc::new(op);
    let issued = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + bounds.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..bounds.concurrency.max(1) {
        let op = op.clone();
        let issued = issued.clone();
        tasks.spawn(async move {
            let mut rec = Recorder::default();
            let mut i = 0u64;
            while Instant::now() < deadline
                && issued.fetch_add(1, Ordering::Relaxed) < bounds.max_ops
            {
                let t0 = Instant::now();
                match tokio::time::timeout(OP_TIMEOUT, op(w, i)).await {
                    Ok(Ok(())) => rec.ok(t0.elapsed()),
                    Ok(Err(e)) => rec.error(&e.0),
                    Err(_) => rec.error("timeout"),
                }
                i += 1;
            }
            rec
        });
    }
    let mut total = Recorder::default();
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(rec) => total.merge(&rec),
            Err(_) => total.error("worker_panicked"),
        }
    }
    total.finish(name, bounds.concurrency, start.elapsed())
}

/// Runs `op()` one at a time, starting one every `interval` (a paced probe), for `duration`
/// or `max_ops` operations. A probe that overruns its slot starts the next at once.
pub async fn paced_loop<F, Fut>(
    name: &str,
    interval: Duration,
    duration: Duration,
    max_ops: u64,
    op: F,
) -> Arm
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), OpError>>,
{
    let mut rec = Recorder::default();
    let start = Instant::now();
    let deadline = start + duration;
    let mut next = start;
    let mut n = 0u64;
    while Instant::now() < deadline && n < max_ops {
        tokio::time::sleep_until(next).await;
        next += interval;
        let t0 = Instant::now();
        match tokio::time::timeout(OP_TIMEOUT, op()).await {
            Ok(Ok(())) => rec.ok(t0.elapsed()),
            Ok(Err(e)) => rec.error(&e.0),
            Err(_) => rec.error("timeout"),
        }
        n += 1;
        if Instant::now() > next {
            next = Instant::now();
        }
    }
    rec.finish(name, 1, start.elapsed())
}
