//! The server under load: an external one (`--server URL`), a child `sesame serve` process
//! on a temporary data directory (`--spawn process`, the default), or the server library
//! started in this process on its own runtime (`--spawn in-process`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use serde::Serialize;
use tokio::io::{AsyncBufReadExt as _, BufReader};

/// How the bench gets its server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SpawnMode {
    /// A child `sesame serve` process (its memory is measurable on its own).
    Process,
    /// The server library on a runtime of its own inside the bench process.
    InProcess,
}

/// Where the server comes from and how it is configured.
#[derive(Debug, Clone, Serialize)]
pub struct ServerOptions {
    /// Drive this server instead of starting one.
    pub external: Option<String>,
    /// How to start one.
    pub mode: SpawnMode,
    /// The `sesame` binary for [`SpawnMode::Process`]; default: next to this executable.
    pub sesame_bin: Option<PathBuf>,
    /// Parent of the temporary data directory; default: the system's temp directory.
    pub data_root: Option<PathBuf>,
    /// `taskset -c` CPU list for the child process.
    pub cpus: Option<String>,
    /// Configuration keys set on a spawned server (TOML values), printed with the results.
    pub settings: Vec<(String, String)>,
}

/// The configuration keys the bench sets on the servers it starts, and why.
pub fn bench_settings() -> Vec<(String, String)> {
    [
        // Every virtual client shares 127.0.0.1: the per-address limit would refuse them.
        ("throttle_per_address", "0"),
        // The same for the per-address connection cap; the total cap only by descriptors.
        ("http_max_connections_per_address", "0"),
        ("http_max_connections", "1000000"),
        // Many logins per account in a row; the counter is reset by each success anyway.
        ("throttle_free_attempts", "1000000"),
        // P5/P6 senders send far more than the default 600 messages per minute.
        ("send_rate_per_minute", "0"),
        // P6 fills offline mailboxes beyond the default 10,000 messages.
        ("mailbox_max_messages", "10000000"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A server the bench drives.
pub struct BenchServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The server's process id (the bench's own for in-process servers), if known.
    pub pid: Option<u32>,
    /// What was started, for the report.
    pub description: String,
    child: Option<tokio::process::Child>,
    inproc: Option<InProcess>,
    _data: Option<tempfile::TempDir>,
}

struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl BenchServer {
    /// Starts (or names) the server `options` describe.
    pub async fn start(options: &ServerOptions) -> anyhow::Result<BenchServer> {
        if let Some(url) = &options.external {
            check_loopback(url)?;
            return Ok(BenchServer {
                base: url.trim_end_matches('/').to_owned(),
                pid: None,
                description: format!("external server {url}"),
                child: None,
                inproc: None,
                _data: None,
            });
        }
        let root = options.data_root.clone().unwrap_or_else(std::env::temp_dir);
        std::fs::create_dir_all(&root).with_context(|| format!("create {}", root.display()))?;
        let data = tempfile::Builder::new()
            .prefix("sesame-bench-")
            .tempdir_in(&root)
            .context("temporary data directory")?;
        match options.mode {
            SpawnMode::Process => Self::start_process(options, data).await,
            SpawnMode::InProcess => Self::start_in_process(options, data).await,
        }
    }

    async fn start_process(
        options: &ServerOptions,
        data: tempfile::TempDir,
    ) -> anyhow::Result<BenchServer> {
        let bin = match &options.sesame_bin {
            Some(b) => b.clone(),
            None => default_sesame_bin()?,
        };
        let config = data.path().join("bench.toml");
        let mut toml = format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = {:?}\n",
            data.path().join("data").display().to_string()
        );
        for (k, v) in &options.settings {
            toml.push_str(&format!("{k} = {v}\n"));
        }
        std::fs::write(&config, toml).context("write the server configuration")?;
        let mut cmd = match &options.cpus {
            Some(cpus) => {
                let mut c = tokio::process::Command::new("taskset");
                c.arg("-c").arg(cpus).arg(&bin);
                c
            }
            None => tokio::process::Command::new(&bin),
        };
        cmd.arg("serve").arg("--config").arg(&config);
        // Only the file configures the child: SESAME_* variables would override it.
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("SESAME_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .with_context(|| format!("start {}", bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(addr) = line.strip_prefix("sesame: listening on ") {
                    return Ok::<_, anyhow::Error>(addr.trim().to_owned());
                }
            }
            bail!("the server exited before listening")
        })
        .await
        .map_err(|_| anyhow!("the server did not start within 60 s"))??;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(BenchServer {
            description: format!(
                "child process `{} serve`{} (pid {}), data in {}",
                bin.display(),
                options
                    .cpus
                    .as_ref()
                    .map(|c| format!(" on CPUs {c}"))
                    .unwrap_or_default(),
                pid.unwrap_or(0),
                data.path().display()
            ),
            base,
            pid,
            child: Some(child),
            inproc: None,
            _data: Some(data),
        })
    }

    async fn start_in_process(
        options: &ServerOptions,
        data: tempfile::TempDir,
    ) -> anyhow::Result<BenchServer> {
        let mut config = sesame_server::config::Config {
            listen: "127.0.0.1:0".parse()?,
            data_dir: data.path().join("data"),
            ..Default::default()
        };
        for (k, v) in &options.settings {
            apply_setting(&mut config, k, v)?;
        }
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel::<anyhow::Result<String>>();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let thread = std::thread::Builder::new()
            .name("sesame-server".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(threads)
                    .thread_name("sesame-server-rt")
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.into()));
                        return;
                    }
                };
                rt.block_on(async move {
                    let started = async {
                        let (store, master) = sesame_server::server::open(&config).await?;
                        let sesame = sesame_server::server::build(&config, store, &master).await?;
                        let http = tokio::net::TcpListener::bind(config.listen).await?;
                        let base = format!("http://{}", http.local_addr()?);
                        Ok::<_, anyhow::Error>((sesame, http, base))
                    }
                    .await;
                    let (sesame, http, base) = match started {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = ready_tx.send(Ok(base));
                    let shutdown = async move {
                        let _ = stop_rx.await;
                    };
                    if let Err(e) =
                        sesame_server::server::serve(&config, sesame, http, None, shutdown).await
                    {
                        eprintln!("sesame-bench: in-process server: {e}");
                    }
                });
            })
            .context("start the server thread")?;
        let base = ready_rx
            .await
            .map_err(|_| anyhow!("the in-process server thread died"))??;
        Ok(BenchServer {
            description: format!(
                "in-process server (own {threads}-thread runtime), data in {}",
                data.path().display()
            ),
            base,
            pid: Some(std::process::id()),
            child: None,
            inproc: Some(InProcess {
                stop: Some(stop_tx),
                thread: Some(thread),
            }),
            _data: Some(data),
        })
    }

    /// The server's resident memory in KiB (`VmRSS` of `/proc/<pid>/status`).
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.pid?)
    }

    /// Whether the server runs in a process of its own (so its RSS is its alone).
    pub fn is_child(&self) -> bool {
        self.child.is_some()
    }

    /// Stops a spawned server and waits for it (bounded).
    pub async fn stop(mut self) {
        if let Some(mut child) = self.child.take() {
            if let Some(pid) = child.id() {
                // SIGTERM for a graceful stop; SIGKILL if it takes too long.
                let _ = tokio::process::Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
        if let Some(mut inproc) = self.inproc.take() {
            if let Some(stop) = inproc.stop.take() {
                let _ = stop.send(());
            }
            if let Some(thread) = inproc.thread.take() {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
        }
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(inproc) = self.inproc.as_mut() {
            if let Some(stop) = inproc.stop.take() {
                let _ = stop.send(());
            }
        }
    }
}

/// Refuses anything but a loopback server: the bench never sends load elsewhere.
pub fn check_loopback(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("server URL {url}"))?;
    let host = parsed.host_str().unwrap_or("");
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = bare == "localhost"
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback || parsed.scheme() != "http" {
        bail!("sesame-bench only drives http servers on loopback (127.0.0.0/8, [::1], localhost): {url}");
    }
    Ok(())
}

fn default_sesame_bin() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("locate sesame-bench")?;
    let mut dirs: Vec<&Path> = Vec::new();
    if let Some(dir) = exe.parent() {
        dirs.push(dir);
        // Test and example binaries live one level down (`target/*/deps`).
        if let Some(up) = dir.parent() {
            dirs.push(up);
        }
    }
    for dir in dirs {
        let bin = dir.join("sesame");
        if bin.is_file() {
            return Ok(bin);
        }
    }
    bail!(
        "no `sesame` binary next to {} (build it: cargo build --release -p sesame-cli), or pass \
         --sesame-bin, or use --spawn in-process",
        exe.display()
    )
}

/// Sets one configuration key on an in-process server's [`Config`](sesame_server::config::Config)
/// through its serde form, so the keys are exactly those of the TOML file.
fn apply_setting(
    config: &mut sesame_server::config::Config,
    key: &str,
    value: &str,
) -> anyhow::Result<()> {
    let mut v = serde_json::to_value(&*config)?;
    let parsed: serde_json::Value = value
        .parse::<u64>()
        .map(serde_json::Value::from)
        .or_else(|_| serde_json::from_str(value))
        .with_context(|| format!("value of {key}"))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| anyhow!("configuration is not an object"))?;
    if !obj.contains_key(key) {
        bail!("unknown configuration key {key}");
    }
    obj.insert(key.to_owned(), parsed);
    *config = serde_json::from_value(v)?;
    Ok(())
}

/// `/proc/loadavg`'s first three fields: other work on the machine skews every figure.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// `VmRSS` of process `pid`, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

/// The machine, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// Logical CPUs available to the bench.
    pub nproc: usize,
    /// CPU model (`/proc/cpuinfo`).
    pub cpu: String,
    /// Memory (`MemTotal`), MiB.
    pub memory_mib: u64,
    /// Kernel release.
    pub kernel: String,
    /// 4 KiB write + fdatasync per second in the data directory's file system (one thread,
    /// 1 s): the ceiling for anything that commits once per operation.
    pub fsync_per_s: Option<f64>,
}

impl Machine {
    /// Reads the machine's description; probes fsync in `dir` when given.
    pub fn probe(dir: Option<&Path>) -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let memory_mib = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .map_or(0, |kib| kib / 1024);
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .unwrap_or_default()
            .trim()
            .to_owned();
        Machine {
            nproc: std::thread::available_parallelism().map_or(1, |n| n.get()),
            cpu,
            memory_mib,
            kernel,
            fsync_per_s: dir.and_then(fsync_rate),
        }
    }
}

fn fsync_rate(dir: &Path) -> Option<f64> {
    use std::io::Write as _;
    let file = tempfile::NamedTempFile::new_in(dir).ok()?;
    let mut f = file.as_file();
    let block = [0x5au8; 4096];
    let start = std::time::Instant::now();
    let mut n = 0u32;
    while start.elapsed() < Duration::from_secs(1) && n < 100_000 {
        f.write_all(&block).ok()?;
        f.sync_data().ok()?;
        n += 1;
    }
    Some(f64::from(n) / start.elapsed().as_secs_f64())
}
