use super::*;

fn delivery(seq: i64) -> Arc<Delivery> {
    Arc::new(Delivery {
        seq,
        id: format!("m{seq}"),
        from: "a".into(),
        to: "b".into(),
        sent_at: 0,
        ciphertext: vec![1],
        signature: vec![2],
    })
}

#[tokio::test]
async fn rings_reach_every_connection_and_full_queues_are_kicked() {
    let hub = Arc::new(Hub::new());
    let user = Uuid::new_v4();
    let mut a = hub.register(user, Uuid::nil());
    let b = hub.register(user, Uuid::nil());
    assert_eq!(hub.connections(user), 2);
    hub.ring(user, &delivery(1));
    assert!(matches!(a.rx.recv().await, Some(Notice::Message(d)) if d.seq == 1));
    // `b` never reads: once its queue is full it is dropped and kicked; `a` keeps going.
    for seq in 2..=(CONNECTION_QUEUE as i64 + 2) {
        hub.ring(user, &delivery(seq));
        let _ = a.rx.recv().await;
    }
    assert_eq!(hub.connections(user), 1);
    tokio::time::timeout(std::time::Duration::from_secs(1), b.kick.notified())
        .await
        .expect("kicked");
    drop(a);
    assert_eq!(hub.connections(user), 0);
    drop(b);
    hub.ring(user, &delivery(99)); // nobody listens: a no-op
}

#[tokio::test]
async fn ending_sessions_signals_only_their_connections() {
    let hub = Arc::new(Hub::new());
    let (user, s1, s2) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let (a, b) = (hub.register(user, s1), hub.register(user, s2));
    assert_eq!(hub.end_sessions(user, SessionsEnded::One(s2)), 1);
    assert!(!a.end.is_ended());
    assert!(b.end.is_ended());
    b.end.wait().await;
    assert_eq!(hub.end_sessions(user, SessionsEnded::AllBut(Some(s1))), 1);
    assert!(!a.end.is_ended());
    assert_eq!(hub.end_sessions(user, SessionsEnded::AllBut(None)), 2);
    assert!(a.end.is_ended());
    assert_eq!(
        hub.end_sessions(Uuid::new_v4(), SessionsEnded::AllBut(None)),
        0
    );
}

#[tokio::test(start_paused = true)]
async fn idle_connections_are_told_to_check_and_checks_reset_the_clock() {
    let hub = Arc::new(Hub::new());
    let (u, v) = (Uuid::new_v4(), Uuid::new_v4());
    let mut a = hub.register(u, Uuid::nil());
    let mut b = hub.register(v, Uuid::nil());
    assert_eq!(hub.user_count(), 2);
    let age = std::time::Duration::from_secs(10);
    assert_eq!(hub.check_idle(age), 0, "both just started (backlog read)");
    tokio::time::advance(std::time::Duration::from_secs(6)).await;
    hub.check(u); // a ring from another node: `a` reads now
    assert!(matches!(a.rx.recv().await, Some(Notice::Check)));
    tokio::time::advance(std::time::Duration::from_secs(5)).await;
    assert_eq!(hub.check_idle(age), 1, "only `b` is idle");
    assert!(matches!(b.rx.recv().await, Some(Notice::Check)));
    assert!(a.rx.try_recv().is_err());
    assert_eq!(hub.check_idle(age), 0);
    drop(b);
    assert_eq!(hub.users(), vec![u]);
}
