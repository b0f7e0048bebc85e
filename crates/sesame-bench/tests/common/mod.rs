//! What the load generator's tests share.

use std::time::Duration;

use sesame_bench::scenarios::Options;
use sesame_bench::target::{bench_settings, ServerOptions, SpawnMode};

/// Options for about a second per arm at tiny concurrency, against an in-process server.
pub fn tiny() -> Options {
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
        idle_connections: 0,
        window: 4,
        verify_every: 3,
        probe_interval: Duration::from_millis(50),
        message_bytes: 1024,
        grace: Duration::from_secs(10),
        ack: true,
    }
}
