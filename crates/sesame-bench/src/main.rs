//! `sesame-bench`: see the library docs and docs/benchmarks.md.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use sesame_bench::scenarios::{self, Options};
use sesame_bench::target::{bench_settings, Machine, ServerOptions, SpawnMode};
use sesame_bench::Report;

/// Load generator for Sesame: each scenario is a comparison measured in one run.
///
/// Scenarios: p1 (OPAQUE vs password login), p2 (HTTP logins vs the bare login work),
/// p3 (registrations vs bare Argon2id, probes under saturation), p4 (refresh vs /healthz),
/// p5 (relay throughput, latency at a fixed rate, idle WebSockets), p6 (offline store and
/// backlog drain), all (P1–P6), peers (P5/P6 against Redis pub/sub, core NATS and
/// JetStream on loopback: SESAME_BENCH_REDIS_URL, SESAME_BENCH_NATS_URL), or enumeration
/// (existing vs unknown usernames, KS test per route).
#[derive(Debug, Parser)]
#[command(name = "sesame-bench", version)]
struct Args {
    /// Scenarios to run (p1 … p6, all, peers, enumeration).
    #[arg(default_value = "all")]
    scenarios: Vec<String>,
    /// Drive this running server instead of starting one (loopback only, e.g.
    /// http://127.0.0.1:7878). It must allow the load: throttle_per_address = 0,
    /// http_max_connections_per_address = 0 and, for
    /// P5/P6, send_rate_per_minute = 0 and a large mailbox_max_messages.
    #[arg(long)]
    server: Option<String>,
    /// How to start the server: a child `sesame serve` process or the library in process.
    #[arg(long, value_enum, default_value = "process")]
    spawn: SpawnMode,
    /// The `sesame` binary for --spawn process [default: next to sesame-bench].
    #[arg(long)]
    sesame_bin: Option<PathBuf>,
    /// Parent directory of the spawned server's temporary data directory [default: the
    /// system's temp directory]. Its file system's fsync rate bounds every commit.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Run the spawned server process on these CPUs (`taskset -c`, e.g. 0).
    #[arg(long)]
    server_cpus: Option<String>,
    /// Extra configuration for the spawned server, KEY=VALUE (TOML value); repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Wall time of each measured arm.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Concurrent virtual clients of the HTTP arms.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Most operations per arm.
    #[arg(long, default_value_t = 5_000_000)]
    max_requests: u64,
    /// Sender/recipient pairs (P5, P6).
    #[arg(long, default_value_t = 32)]
    pairs: usize,
    /// Offered rate of P5's latency arm, messages/s.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Idle WebSockets opened in P5 (0 skips).
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Unanswered sends per sender (P5 throughput, P6).
    #[arg(long, default_value_t = 32)]
    window: usize,
    /// Seal, sign, verify and open one message in this many (0: none).
    #[arg(long, default_value_t = 100)]
    verify_every: u64,
    /// Interval of the P3 probes.
    #[arg(long, default_value = "20ms", value_parser = humantime::parse_duration)]
    probe_interval: Duration,
    /// Message plaintext size, bytes.
    #[arg(long, default_value_t = 1024)]
    message_bytes: usize,
    /// Longest wait for outstanding answers and deliveries after a relay arm.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    grace: Duration,
    /// Recipients do not acknowledge deliveries (diagnostic: shows what acks cost).
    #[arg(long)]
    no_ack: bool,
    /// Write the JSON report here (`-` for stdout, then the table goes to stderr).
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    rt.block_on(run(args))
}

/// The scenarios to run, lowercase (`all` expands to every one).
fn scenario_ids(args: &Args) -> anyhow::Result<Vec<String>> {
    let ids: Vec<String> = if args.scenarios.iter().any(|s| s == "all") {
        scenarios::ALL.iter().map(|s| s.to_string()).collect()
    } else {
        args.scenarios.iter().map(|s| s.to_lowercase()).collect()
    };
    for id in &ids {
        anyhow::ensure!(
            scenarios::ALL.contains(&id.as_str()) || scenarios::EXTRA.contains(&id.as_str()),
            "unknown scenario {id} (p1 … p6, peers or all)"
        );
    }
    Ok(ids)
}

/// The run's options from the command line (`--set` overrides the spawned server's settings).
fn options(args: &Args) -> anyhow::Result<Options> {
    let mut settings = bench_settings();
    for kv in &args.set {
        let (k, v) = kv
            .split_once('=')
            .with_context(|| format!("--set {kv}: expected KEY=VALUE"))?;
        settings.retain(|(key, _)| key != k);
        settings.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(Options {
        server: ServerOptions {
            external: args.server.clone(),
            mode: args.spawn,
            sesame_bin: args.sesame_bin.clone(),
            data_root: args.data_dir.clone(),
            cpus: args.server_cpus.clone(),
            settings,
        },
        duration: args.duration,
        concurrency: args.concurrency,
        max_requests: args.max_requests,
        pairs: args.pairs,
        rate: args.rate,
        idle_connections: args.idle_connections,
        window: args.window,
        verify_every: args.verify_every,
        probe_interval: args.probe_interval,
        message_bytes: args.message_bytes,
        grace: args.grace,
        ack: !args.no_ack,
    })
}

async fn run(args: Args) -> anyhow::Result<()> {
    let ids = scenario_ids(&args)?;
    let options = options(&args)?;
    if let Some(url) = &options.server.external {
        sesame_bench::target::check_loopback(url)?;
    }
    let to_stderr = args.json.as_deref() == Some(std::path::Path::new("-"));
    let say = |text: &str| {
        if to_stderr {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    };
    let data_root = args.data_dir.clone().unwrap_or_else(std::env::temp_dir);
    let machine = Machine::probe(Some(&data_root));
    let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    say(&format!(
        "sesame-bench {} — {date}\nmachine: {} CPUs ({}), {} MiB, Linux {}, fsync/s in {}: {}\n",
        env!("CARGO_PKG_VERSION"),
        machine.nproc,
        machine.cpu,
        machine.memory_mib,
        machine.kernel,
        data_root.display(),
        machine
            .fsync_per_s
            .map_or("unknown".into(), |f| format!("{f:.0}"))
    ));
    if options.server.external.is_none() {
        let set: Vec<String> = options
            .server
            .settings
            .iter()
            .map(|(k, v)| format!("{k} = {v}"))
            .collect();
        say(&format!("spawned server settings: {}\n", set.join(", ")));
    }
    let mut results = Vec::new();
    let mut failed = Vec::new();
    for id in &ids {
        match scenarios::run(id, &options).await {
            Ok(s) => {
                say(&s.table());
                results.push(s);
            }
            Err(e) => {
                say(&format!("\n== {}: FAILED: {e:#}\n", id.to_uppercase()));
                failed.push(id.clone());
            }
        }
    }
    let report = Report {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        date,
        command,
        machine,
        options,
        scenarios: results,
    };
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report)?;
        if to_stderr {
            println!("{text}");
        } else {
            std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
        }
    }
    anyhow::ensure!(failed.is_empty(), "scenarios failed: {}", failed.join(", "));
    Ok(())
}
