//! The bounded pool that runs Argon2id off the async runtime.
//!
//! A fixed number of OS threads (one per core by default) take jobs from a bounded queue.
//! When the queue is full, [`HashPool::run`] fails at once with [`PoolBusy`] and the
//! transports answer 503 with `Retry-After`: a flood of password logins waits in no unbounded
//! queue and cannot starve token refreshes, health checks or OPAQUE logins (which need no
//! Argon2 on the server).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use crossbeam_channel::{bounded, Sender, TrySendError};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// The queue is full: try again later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password hashing pool is saturated")]
pub struct PoolBusy;

/// A fixed set of threads for CPU-heavy work, with a bounded queue.
#[derive(Clone)]
pub struct HashPool {
    tx: Sender<Job>,
    threads: usize,
    capacity: usize,
    in_flight: Arc<AtomicUsize>,
}

impl HashPool {
    /// Starts `threads` workers (at least 1) behind a queue of `capacity` waiting jobs.
    pub fn new(threads: usize, capacity: usize) -> HashPool {
        HashPool::with_priority(threads, capacity, false)
    }

    /// [`HashPool::new`], with the workers at the idle scheduling class when `idle` (see
    /// [`lower_priority`]).
    pub fn with_priority(threads: usize, capacity: usize, idle: bool) -> HashPool {
        let threads = threads.max(1);
        let (tx, rx) = bounded::<Job>(capacity);
        for i in 0..threads {
            let rx = rx.clone();
            // A worker exits when every sender is gone (the pool was dropped).
            let spawned = thread::Builder::new()
                .name(format!("sesame-hash-{i}"))
                .spawn(move || {
                    if idle {
                        lower_priority();
                    }
                    while let Ok(job) = rx.recv() {
                        job();
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("could not start hash worker {i}: {e}");
            }
        }
        HashPool {
            tx,
            threads,
            capacity,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// One worker per available core, with a queue of 32 jobs per worker.
    pub fn per_core() -> HashPool {
        let n = thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        HashPool::new(n, 32 * n)
    }

    /// Runs `f` on a worker and waits for its result without blocking the runtime.
    pub async fn run<T, F>(&self, f: F) -> Result<T, PoolBusy>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let in_flight = self.in_flight.clone();
        // Queue-wait latency for metrics: real elapsed time.
        #[allow(clippy::disallowed_methods)]
        let queued_at = std::time::Instant::now();
        let job: Job = Box::new(move || {
            crate::metrics::hash_wait(queued_at.elapsed());
            let _ = done.send(f());
            in_flight.fetch_sub(1, Ordering::Relaxed);
        });
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        match self.tx.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.in_flight.fetch_sub(1, Ordering::Relaxed);
                crate::metrics::hash_busy();
                return Err(PoolBusy);
            }
        }
        // The worker always answers unless it panicked; treat that as busy rather than hang.
        result.await.map_err(|_| PoolBusy)
    }

    /// Jobs waiting in the queue right now.
    pub fn queued(&self) -> usize {
        self.tx.len()
    }

    /// Jobs queued or running.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Number of worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Size of the waiting queue.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Puts the calling thread in Linux's `SCHED_IDLE` class: it runs only on CPU no other
/// thread wants, and a waking thread of any other class preempts it at once. Lowering a
/// thread's own priority needs no privilege; if it fails anyway the thread keeps its
/// priority and the failure is logged.
#[cfg(target_os = "linux")]
pub fn lower_priority() {
    use thread_priority::unix::{
        set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
        ThreadSchedulePolicy,
    };
    let idle = ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle);
    if let Err(e) = set_thread_priority_and_policy(
        thread_native_id(),
        thread_priority::ThreadPriority::Min,
        idle,
    ) {
        tracing::warn!("hash worker keeps its priority: SCHED_IDLE refused: {e:?}");
    }
}

/// Elsewhere the workers keep the default priority.
#[cfg(not(target_os = "linux"))]
pub fn lower_priority() {
    tracing::warn!("hash_idle_priority is only supported on Linux");
}

#[cfg(test)]
mod tests;
