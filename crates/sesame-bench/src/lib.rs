//! `sesame-bench`: a load generator for Sesame servers.
//!
//! It drives a server on loopback with many concurrent virtual clients (Tokio tasks) through
//! the real client library ([`sesame_client`]) and the real protocol, and measures each
//! scenario as a comparison within one run, so every figure is a ratio that survives a noisy
//! machine. docs/benchmarks.md describes the scenarios, the figures and what limits them.
//!
//! - [`target`][]: the server under load (a child `sesame serve`, the library in process, or
//!   an external loopback server), its memory, the machine.
//! - [`ksf`][] and [`opaque`][]: the bench's OPAQUE client, whose Argon2id is memoized per user so
//!   that the server, not the client, is what gets measured.
//! - [`load`][]: closed loops and paced probes, bounded in time and count.
//! - [`scenarios`][]: P1–P6.
//! - [`count`][]: instruction counts of the login path under callgrind (`callgrind.sh`).
//! - [`cpu`][]: the CPU the server, the bench and the rest of the machine used per arm.
//! - [`stats`][]: HDR histograms, error counts, the table and the JSON report.
#![forbid(unsafe_code)]

pub mod count;
pub mod cpu;
pub mod ksf;
pub mod load;
pub mod opaque;
pub mod scenarios;
pub mod stats;
pub mod target;

use serde::Serialize;

/// Everything a run reports (the `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `sesame-bench` version.
    pub version: String,
    /// When the run started (RFC 3339, UTC).
    pub date: String,
    /// The command line.
    pub command: String,
    /// The machine.
    pub machine: target::Machine,
    /// The options.
    pub options: scenarios::Options,
    /// The results.
    pub scenarios: Vec<stats::Scenario>,
}
