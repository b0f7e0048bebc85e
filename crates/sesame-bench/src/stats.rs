//! Results: latency histograms (HDR, microseconds), error counts by kind, comparisons against
//! targets, the printed table and the JSON form.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Largest latency the histograms hold: 5 minutes, in microseconds.
const MAX_MICROS: u64 = 300_000_000;

/// A latency histogram in microseconds (3 significant digits).
pub fn histogram() -> Histogram<u64> {
    // Bounds are constants that hdrhistogram accepts.
    Histogram::new_with_bounds(1, MAX_MICROS, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

/// What one worker (or a whole arm) recorded.
#[derive(Clone)]
pub struct Recorder {
    /// Latencies of successful operations, microseconds.
    pub hist: Histogram<u64>,
    /// Successful operations.
    pub ok: u64,
    /// Failed operations by kind.
    pub errors: BTreeMap<String, u64>,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            hist: histogram(),
            ok: 0,
            errors: BTreeMap::new(),
        }
    }
}

impl Recorder {
    /// Records a success that took `d`.
    pub fn ok(&mut self, d: Duration) {
        self.ok += 1;
        self.latency(d);
    }

    /// Records a latency without counting an operation.
    pub fn latency(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, MAX_MICROS);
        let _ = self.hist.record(us);
    }

    /// Records a failure of kind `kind`.
    pub fn error(&mut self, kind: &str) {
        *self.errors.entry(kind.to_owned()).or_default() += 1;
    }

    /// Adds `other` into this one.
    pub fn merge(&mut self, other: &Recorder) {
        let _ = self.hist.add(&other.hist);
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }

    /// The arm's result over `elapsed`.
    pub fn finish(&self, name: &str, concurrency: usize, elapsed: Duration) -> Arm {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let q = |p: f64| {
            if self.hist.is_empty() {
                0.0
            } else {
                self.hist.value_at_quantile(p) as f64 / 1000.0
            }
        };
        Arm {
            name: name.to_owned(),
            concurrency,
            ops: self.ok,
            errors: self.errors.clone(),
            error_count: self.errors.values().sum(),
            elapsed_s: secs,
            per_second: self.ok as f64 / secs,
            p50_ms: q(0.50),
            p90_ms: q(0.90),
            p99_ms: q(0.99),
            max_ms: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.max() as f64 / 1000.0
            },
            mean_ms: if self.hist.is_empty() {
                0.0
            } else {
                self.hist.mean() / 1000.0
            },
            notes: Vec::new(),
            cpu: None,
        }
    }
}

/// One measured arm of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Arm {
    /// What was measured.
    pub name: String,
    /// Concurrent virtual clients (or threads).
    pub concurrency: usize,
    /// Successful operations.
    pub ops: u64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// All failures.
    pub error_count: u64,
    /// Measured wall time, seconds.
    pub elapsed_s: f64,
    /// Successful operations per second.
    pub per_second: f64,
    /// Latency percentiles and maximum, milliseconds.
    pub p50_ms: f64,
    /// 90th percentile, ms.
    pub p90_ms: f64,
    /// 99th percentile, ms.
    pub p99_ms: f64,
    /// Maximum, ms.
    pub max_ms: f64,
    /// Mean, ms.
    pub mean_ms: f64,
    /// Anything else worth saying about this arm.
    pub notes: Vec<String>,
    /// CPU used by the server, the bench and the rest of the machine during the arm.
    pub cpu: Option<crate::cpu::CpuUse>,
}

/// A figure compared with its target.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// What is compared (e.g. `OPAQUE / password logins per second`).
    pub name: String,
    /// The measured value.
    pub value: f64,
    /// The unit (`x`, `%`, `msg/s`, `ms`, `KB`).
    pub unit: String,
    /// The target, as text (`>= 100x`).
    pub target: String,
    /// Whether the target is met.
    pub met: bool,
}

impl Comparison {
    /// `value >= min`.
    pub fn at_least(name: &str, value: f64, unit: &str, min: f64) -> Comparison {
        Comparison {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
            target: format!(">= {}{unit}", fmt_num(min)),
            met: value >= min,
        }
    }

    /// `value <= max` (or `< max` when `strict`).
    pub fn at_most(name: &str, value: f64, unit: &str, max: f64, strict: bool) -> Comparison {
        Comparison {
            name: name.to_owned(),
            value,
            unit: unit.to_owned(),
            target: format!("{} {}{unit}", if strict { "<" } else { "<=" }, fmt_num(max)),
            met: if strict { value < max } else { value <= max },
        }
    }
}

/// One scenario's results.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// `p1` … `p6`.
    pub id: String,
    /// A title.
    pub title: String,
    /// The measured arms.
    pub arms: Vec<Arm>,
    /// The figures against their targets.
    pub comparisons: Vec<Comparison>,
    /// Settings and observations.
    pub notes: Vec<String>,
}

impl Scenario {
    /// An empty scenario.
    pub fn new(id: &str, title: &str) -> Scenario {
        Scenario {
            id: id.to_owned(),
            title: title.to_owned(),
            arms: Vec::new(),
            comparisons: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Every operation of every arm succeeded and each arm did at least one.
    pub fn clean(&self) -> bool {
        self.arms.iter().all(|a| a.ops > 0 && a.error_count == 0)
    }

    /// The arm named `name`.
    pub fn arm(&self, name: &str) -> Option<&Arm> {
        self.arms.iter().find(|a| a.name == name)
    }

    /// The printed table.
    pub fn table(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "\n== {}: {}", self.id.to_uppercase(), self.title);
        let _ = writeln!(
            s,
            "  {:<34} {:>5} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}  errors",
            "arm", "conc", "ops", "ops/s", "p50 ms", "p90 ms", "p99 ms", "max ms"
        );
        for a in &self.arms {
            let errors = if a.errors.is_empty() {
                "-".to_owned()
            } else {
                a.errors
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                s,
                "  {:<34} {:>5} {:>9} {:>10.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3}  {}",
                a.name,
                a.concurrency,
                a.ops,
                a.per_second,
                a.p50_ms,
                a.p90_ms,
                a.p99_ms,
                a.max_ms,
                errors
            );
            if let Some(cpu) = &a.cpu {
                let _ = writeln!(s, "      {}", cpu.line());
            }
            for n in &a.notes {
                let _ = writeln!(s, "      {n}");
            }
        }
        for c in &self.comparisons {
            let _ = writeln!(
                s,
                "  => {:<52} {:>12}{:<5} target {:<10} {}",
                c.name,
                fmt_num(c.value),
                c.unit,
                c.target,
                if c.met { "MET" } else { "MISSED" }
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "  note: {n}");
        }
        s
    }
}

/// A number with sensible precision for the table.
pub fn fmt_num(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else if v.abs() >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

/// The two-sample Kolmogorov–Smirnov test of `a` against `b`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct KsTest {
    /// The statistic D: the largest distance between the two empirical distributions.
    pub d: f64,
    /// The asymptotic p-value of D: the chance of a D at least this large if both samples come
    /// from one distribution.
    pub p: f64,
}

/// The two-sample Kolmogorov–Smirnov test (ties count once: at each distinct value both
/// empirical distributions step past every sample equal to it). The p-value is the
/// asymptotic one with Stephens' small-sample correction, `Q_KS((√n_e + 0.12 + 0.11/√n_e)·D)`
/// with `n_e = n·m/(n+m)` and `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}`.
pub fn ks_two_sample(a: &[f64], b: &[f64]) -> KsTest {
    if a.is_empty() || b.is_empty() {
        return KsTest { d: 0.0, p: 1.0 };
    }
    let sorted = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v
    };
    let (a, b) = (sorted(a), sorted(b));
    let (n, m) = (a.len() as f64, b.len() as f64);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0f64);
    while i < a.len() && j < b.len() {
        let x = a[i].min(b[j]);
        while i < a.len() && a[i] <= x {
            i += 1;
        }
        while j < b.len() && b[j] <= x {
            j += 1;
        }
        d = d.max((i as f64 / n - j as f64 / m).abs());
    }
    let en = (n * m / (n + m)).sqrt();
    KsTest {
        d,
        p: q_ks((en + 0.12 + 0.11 / en) * d),
    }
}

/// The Kolmogorov distribution's tail, `Q_KS(λ) = 2 Σ_{j≥1} (−1)^{j−1} e^{−2j²λ²}`, clamped
/// to [0, 1] (the series does not converge near 0, where Q_KS is 1).
pub fn q_ks(lambda: f64) -> f64 {
    if lambda < 0.2 {
        return 1.0;
    }
    let mut sum = 0.0;
    let mut sign = 1.0;
    for j in 1..=100 {
        let term = (-2.0 * f64::from(j * j) * lambda * lambda).exp();
        sum += sign * term;
        if term < 1e-17 {
            break;
        }
        sign = -sign;
    }
    (2.0 * sum).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests;
