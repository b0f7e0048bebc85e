//! Keeps the load generator working: every scenario runs for about a second at tiny
//! concurrency against an in-process server and must complete with operations and without
//! errors. Nothing here checks a speed or a target.

mod common;

use sesame_bench::scenarios::{self, Options};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_completes_without_errors() {
    // Idle WebSockets too, for P5's memory arm.
    let options = Options {
        idle_connections: 20,
        ..common::tiny()
    };
    for id in scenarios::ALL {
        let s = scenarios::run(id, &options)
            .await
            .unwrap_or_else(|e| panic!("{id}: {e:#}"));
        print!("{}", s.table());
        assert!(!s.arms.is_empty(), "{id}: no arms");
        for arm in &s.arms {
            assert!(arm.ops > 0, "{id}/{}: no operations", arm.name);
            assert_eq!(arm.error_count, 0, "{id}/{}: {:?}", arm.name, arm.errors);
        }
        assert!(!s.comparisons.is_empty(), "{id}: no comparison");
    }
}
