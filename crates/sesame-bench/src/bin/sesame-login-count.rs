//! `sesame-login-count`: the login path's work for callgrind (see `callgrind.sh` and
//! docs/benchmarks.md, "Instruction counts").
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use sesame_bench::target::{bench_settings, ServerOptions, SpawnMode};

/// Runs logins for instruction counting under callgrind.
#[derive(Debug, Parser)]
#[command(name = "sesame-login-count", version)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// N bare logins in this process (run it under callgrind with
    /// `--toggle-collect='*count::server_start*' --toggle-collect='*count::server_finish*'`).
    Bare {
        /// Logins.
        #[arg(long, default_value_t = 100)]
        logins: u64,
    },
    /// Logins over HTTP against a `sesame serve` started through `--sesame-bin` (a wrapper
    /// that runs it under callgrind): zero, N logins, dump, for each N of `--logins`.
    Http {
        /// The wrapper that starts `sesame` under callgrind.
        #[arg(long)]
        sesame_bin: PathBuf,
        /// Parent of the server's temporary data directory.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Login counts, comma-separated: one dump each.
        #[arg(long, value_delimiter = ',', default_values_t = [20u64, 60])]
        logins: Vec<u64>,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().mode {
        Mode::Bare { logins } => sesame_bench::count::bare_logins(logins),
        Mode::Http {
            sesame_bin,
            data_dir,
            logins,
        } => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("tokio runtime")?;
            let options = ServerOptions {
                external: None,
                mode: SpawnMode::Process,
                sesame_bin: Some(sesame_bin),
                data_root: data_dir,
                cpus: None,
                settings: bench_settings(),
            };
            let pid = rt.block_on(sesame_bench::count::http_logins(&options, &logins))?;
            println!("server pid {pid}");
            Ok(())
        }
    }
}
