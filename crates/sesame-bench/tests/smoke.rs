//! Keeps the load generator working: every scenario runs for about a second at tiny
//! concurrency against an in-process server and must complete with operations and without
//! errors. Nothing here checks a speed or a target.

use std::time::Duration;

use sesame_bench::scenarios::{self, Options};
use sesame_bench::target::{bench_settings, ServerOptions, SpawnMode};

fn tiny() -> Options {
    Options {
        server: ServerOptions {
            external: None,
            mode: SpawnMode::InProcess,
            sesame_bin: None,
            data_root: None,
            cpus: None,
            settings: bench_settings(),
        },
        duration: Duration::from_millis(1000),
        concurrency: 2,
        max_requests: 2_000,
        pairs: 2,
        rate: 40,
        idle_connections: 20,
        window: 4,
        verify_every: 3,
        probe_interval: Duration::from_millis(50),
        message_bytes: 1024,
        grace: Duration::from_secs(10),
        ack: true,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_completes_without_errors() {
    let options = tiny();
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
