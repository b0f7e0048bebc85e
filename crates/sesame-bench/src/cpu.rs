//! CPU accounting of an arm: how much CPU the server process, the bench itself and everything
//! else on the machine used while it ran (`/proc/<pid>/stat`, `/proc/stat`). On a shared
//! 2-core machine this is what tells a slow server from a busy machine.

use std::time::Instant;

use serde::Serialize;

/// Clock ticks per second of `/proc` times (`USER_HZ`, 100 on Linux).
const TICKS: f64 = 100.0;

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy)]
pub struct CpuSnap {
    at: Instant,
    server: Option<u64>,
    bench: Option<u64>,
    busy: u64,
    total: u64,
}

/// CPU used during an arm.
#[derive(Debug, Clone, Serialize)]
pub struct CpuUse {
    /// Server process CPU per successful operation, ms (`None`: unknown or in process).
    pub server_ms_per_op: Option<f64>,
    /// This process's CPU per operation, ms (the clients, and the server if in process).
    pub bench_ms_per_op: Option<f64>,
    /// Cores the server process kept busy on average.
    pub server_cores: Option<f64>,
    /// Cores the bench kept busy on average.
    pub bench_cores: Option<f64>,
    /// Cores busy with anything else on the machine (other processes, the kernel's own).
    pub other_cores: Option<f64>,
}

fn proc_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

impl CpuSnap {
    /// Reads the counters now; `server` is the server's pid when it runs in a child process.
    pub fn take(server: Option<u32>) -> CpuSnap {
        let (busy, total) = machine_ticks();
        CpuSnap {
            at: Instant::now(),
            server: server.and_then(proc_ticks),
            bench: proc_ticks(std::process::id()),
            busy,
            total,
        }
    }

    /// What was used between `self` and `later`, over `ops` operations.
    pub fn until(&self, later: &CpuSnap, ops: u64) -> CpuUse {
        let secs = later.at.duration_since(self.at).as_secs_f64().max(1e-6);
        let cores = |ticks: u64| ticks as f64 / TICKS / secs;
        let per_op = |ticks: u64| ticks as f64 / TICKS * 1000.0 / ops.max(1) as f64;
        let server = self
            .server
            .zip(later.server)
            .map(|(a, b)| b.saturating_sub(a));
        let bench = self
            .bench
            .zip(later.bench)
            .map(|(a, b)| b.saturating_sub(a));
        let busy = later.busy.saturating_sub(self.busy);
        let ours = server.unwrap_or(0) + bench.unwrap_or(0);
        CpuUse {
            server_ms_per_op: server.map(per_op),
            bench_ms_per_op: bench.map(per_op),
            server_cores: server.map(cores),
            bench_cores: bench.map(cores),
            other_cores: (later.total > self.total).then(|| cores(busy.saturating_sub(ours))),
        }
    }
}

impl CpuUse {
    /// One line for the table.
    pub fn line(&self) -> String {
        let f = |v: Option<f64>, unit: &str| v.map_or("?".to_owned(), |x| format!("{x:.3}{unit}"));
        format!(
            "CPU: server {} ({} cores), bench {} ({} cores), everything else {} cores",
            f(self.server_ms_per_op, " ms/op"),
            f(self.server_cores, ""),
            f(self.bench_ms_per_op, " ms/op"),
            f(self.bench_cores, ""),
            f(self.other_cores, "")
        )
    }
}
