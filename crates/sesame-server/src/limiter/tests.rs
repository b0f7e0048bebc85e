//! The limiter step, and the memory store running it, on a manual clock: windows roll over
//! and gates open by moving the clock, never by sleeping.

use std::sync::Arc;
use std::time::Duration;

use super::{apply, Backoff, Mode, Rule, Verdict, Window};
use crate::clock::{Clock, ManualClock};
use crate::ephemeral::{Ephemeral, MemoryEphemeral};

const T0: u64 = 1_767_225_600;

fn doubling() -> Rule {
    Rule {
        limit: u64::MAX,
        window: Duration::from_secs(3600),
        kind: Window::Idle,
        backoff: Some(Backoff {
            free: 2,
            first: Duration::from_secs(1),
            doubling: true,
            max: Duration::from_secs(4),
        }),
    }
}

async fn hit(s: &MemoryEphemeral, clock: &ManualClock, rule: &Rule) -> Verdict {
    s.hit("k", rule, clock.now_ms(), Mode::Check).await.unwrap()
}

#[tokio::test]
async fn a_fixed_window_rolls_over_by_the_clock() {
    let (s, clock) = (MemoryEphemeral::new(), ManualClock::new(T0));
    let rule = Rule::fixed(3, Duration::from_secs(60));
    for n in 1..=3 {
        let v = hit(&s, &clock, &rule).await;
        assert!(v.allowed && v.count == n, "{v:?}");
    }
    let v = hit(&s, &clock, &rule).await;
    assert!(!v.allowed);
    assert_eq!(v.retry_after, Duration::from_secs(60));
    clock.advance(59);
    clock.advance_ms(999);
    let v = hit(&s, &clock, &rule).await;
    assert_eq!(
        (v.allowed, v.retry_after),
        (false, Duration::from_millis(1))
    );
    clock.advance_ms(1);
    let v = hit(&s, &clock, &rule).await;
    assert!(v.allowed && v.count == 1, "a new window: {v:?}");
}

#[tokio::test]
async fn doubling_delays_let_one_hit_through_per_gate() {
    let (s, clock) = (MemoryEphemeral::new(), ManualClock::new(T0));
    let rule = doubling();
    assert!(hit(&s, &clock, &rule).await.allowed);
    assert!(hit(&s, &clock, &rule).await.allowed);
    // The third hit closes a 1 s gate and goes through; the next waits for it.
    assert!(hit(&s, &clock, &rule).await.allowed);
    let v = hit(&s, &clock, &rule).await;
    assert_eq!((v.allowed, v.retry_after), (false, Duration::from_secs(1)));
    clock.advance(1);
    assert!(hit(&s, &clock, &rule).await.allowed, "the gate opened");
    let v = hit(&s, &clock, &rule).await;
    assert_eq!(v.retry_after, Duration::from_secs(2), "the delay doubled");
    clock.advance(2);
    assert!(hit(&s, &clock, &rule).await.allowed);
    clock.advance(4);
    assert!(hit(&s, &clock, &rule).await.allowed);
    let v = hit(&s, &clock, &rule).await;
    assert_eq!(
        v.retry_after,
        Duration::from_secs(4),
        "capped at the maximum"
    );
    // An hour without a hit forgets everything.
    clock.advance(3600);
    let v = hit(&s, &clock, &rule).await;
    assert!(v.allowed && v.count == 1, "{v:?}");
}

#[tokio::test]
async fn recorded_failures_count_and_close_the_gate_but_are_never_refused() {
    let (s, clock) = (MemoryEphemeral::new(), ManualClock::new(T0));
    let rule = doubling();
    for n in 1..=5 {
        let v = s
            .hit("k", &rule, clock.now_ms(), Mode::Record)
            .await
            .unwrap();
        assert!(v.allowed && v.count == n, "{v:?}");
    }
    let v = hit(&s, &clock, &rule).await;
    assert!(
        !v.allowed,
        "the first recorded failure past the free ones closed a gate"
    );
    s.delete("k").await.unwrap();
    assert!(hit(&s, &clock, &rule).await.allowed, "delete resets");
}

#[test]
fn a_refused_hit_changes_nothing() {
    let rule = Rule::fixed(1, Duration::from_secs(10));
    let (state, v) = apply(None, &rule, 1_000, Mode::Check);
    assert!(v.allowed);
    let (again, v) = apply(Some(state), &rule, 2_000, Mode::Check);
    assert!(!v.allowed);
    assert_eq!(again, state);
    assert_eq!(state.ends(&rule), 11_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_hits_let_exactly_the_limit_through() {
    let s = Arc::new(MemoryEphemeral::new());
    let rule = Rule::fixed(37, Duration::from_secs(60));
    let tasks: Vec<_> = (0..200)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.hit("k", &rule, T0 * 1000, Mode::Check).await })
        })
        .collect();
    let mut allowed = 0;
    for t in tasks {
        allowed += usize::from(t.await.unwrap().unwrap().allowed);
    }
    assert_eq!(allowed, 37);
}
