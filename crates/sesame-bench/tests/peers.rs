//! Keeps the `peers` scenario working: Sesame, JetStream, Redis pub/sub and core NATS arms
//! for about a second each at tiny concurrency, against an in-process server and the local
//! brokers. Every arm must complete with operations and without errors, and the JetStream
//! stream must be gone afterwards. Nothing here checks a speed or a target.
//!
//! Skipped (loudly) when NATS or Redis is not listening, unless `SESAME_REQUIRE_SERVICES=1`.

use std::time::Duration;

use sesame_bench::scenarios;
use sesame_bench::scenarios::peers::{nats_url, redis_url};

mod common;

/// The host:port of a broker URL.
fn address(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest).to_owned()
}

async fn listening(url: &str) -> bool {
    let connect = tokio::net::TcpStream::connect(address(url));
    matches!(
        tokio::time::timeout(Duration::from_secs(2), connect).await,
        Ok(Ok(_))
    )
}

async fn jetstream_streams() -> Vec<String> {
    use futures_util::StreamExt as _;
    let client = async_nats::connect(nats_url()).await.expect("connect NATS");
    let js = async_nats::jetstream::new(client);
    let mut names = js.stream_names();
    let mut out = Vec::new();
    while let Some(n) = names.next().await {
        out.push(n.expect("stream name"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_scenario_completes_without_errors_and_cleans_up() {
    for url in [nats_url(), redis_url()] {
        if !listening(&url).await {
            if std::env::var("SESAME_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("{url} is not listening (SESAME_REQUIRE_SERVICES=1 requires it)");
            }
            eprintln!("\n*** SKIPPING peers test: {url} is not listening ***\n");
            return;
        }
    }
    let before = jetstream_streams().await;
    let s = scenarios::run("peers", &common::tiny())
        .await
        .unwrap_or_else(|e| panic!("peers: {e:#}"));
    print!("{}", s.table());
    assert_eq!(s.arms.len(), 10, "every arm: {:?}", s.arms);
    for arm in &s.arms {
        assert!(arm.ops > 0, "{}: no operations", arm.name);
        assert_eq!(arm.error_count, 0, "{}: {:?}", arm.name, arm.errors);
    }
    assert_eq!(s.comparisons.len(), 3, "{:?}", s.comparisons);
    let after = jetstream_streams().await;
    let left: Vec<_> = after
        .iter()
        .filter(|n| n.starts_with("SESAME_BENCH_") && !before.contains(n))
        .collect();
    assert!(left.is_empty(), "streams left behind: {left:?}");
}
