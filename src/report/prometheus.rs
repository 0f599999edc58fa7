//! The Prometheus text exposition of one cycle, for node_exporter's textfile
//! collector: the Reading's figures, the metrics' levels after hysteresis, and the
//! agent's own counters. No per-sample timestamps.

use crate::judge::{Kind, Metric};
use crate::reading::Reading;
use crate::sample::PRESSURE_KINDS;
use std::fmt::Write as _;

/// The agent's own figures beside the Reading and the metrics.
pub struct Extra {
    /// Cycles run since start, this one included.
    pub cycles: u64,
    /// How long the previous cycle took.
    pub cycle_seconds: f64,
}

/// Writes the whole file into `out` (cleared first; its storage is reused).
pub fn prometheus(out: &mut String, metrics: &[Metric], r: &Reading, x: &Extra) {
    out.clear();
    let mut t = Text(out);
    host(&mut t, r);
    disks(&mut t, metrics);
    pressure(&mut t, r);
    t.gauge(
        "level",
        "Alert level after hysteresis: 0 ok, 1 warning, 2 critical.",
    );
    for m in metrics {
        let level = m.hyst.reported as f64;
        match m.mount_text() {
            Some(mp) => t.line("level", &[("metric", m.kind.name()), ("mount", mp)], level),
            None => t.line("level", &[("metric", m.kind.name())], level),
        }
    }
    t.help("cycles_total", "Cycles run since start.", "counter");
    t.line("cycles_total", &[], x.cycles as f64);
    t.gauge(
        "last_cycle_timestamp_seconds",
        "Wall-clock time of the last cycle, seconds since the epoch.",
    );
    let wall = round(r.wall_ns as f64 / 1e9, 3);
    t.line("last_cycle_timestamp_seconds", &[], wall);
    t.gauge(
        "cycle_duration_seconds",
        "How long the previous cycle took.",
    );
    t.line("cycle_duration_seconds", &[], round(x.cycle_seconds, 6));
}

fn host(t: &mut Text, r: &Reading) {
    if let Some(c) = r.cpu_percent {
        t.gauge(
            "cpu_used_percent",
            "CPU time used over the last interval, percent of all CPUs.",
        );
        t.line("cpu_used_percent", &[], round(c, 1));
    }
    t.gauge("cpus", "Number of online CPUs.");
    t.line("cpus", &[], r.ncpu as f64);
    if let Some(p) = r.mem_percent {
        t.gauge(
            "memory_used_percent",
            "Memory in use (total minus available), percent.",
        );
        t.line("memory_used_percent", &[], round(p, 1));
    }
    if let Some(p) = r.swap_percent {
        t.gauge(
            "swap_used_percent",
            "Swap in use, percent (0 without swap).",
        );
        t.line("swap_used_percent", &[], round(p, 1));
    }
    if let Some(l) = r.load() {
        t.gauge("load_average", "Load average over 1, 5 and 15 minutes.");
        for (period, v) in [("1m", l.one), ("5m", l.five), ("15m", l.fifteen)] {
            t.line("load_average", &[("period", period)], v);
        }
    }
}

fn disks(t: &mut Text, metrics: &[Metric]) {
    for (kind, name, help) in [
        (
            Kind::Disk,
            "disk_used_percent",
            "Disk space in use as df computes it, percent.",
        ),
        (Kind::Inode, "inode_used_percent", "Inodes in use, percent."),
    ] {
        t.gauge(name, help);
        for m in metrics.iter().filter(|m| m.kind == kind) {
            if let (Some(v), Some(mount)) = (m.value, m.mount_text()) {
                t.line(name, &[("mount", mount)], v);
            }
        }
    }
}

fn pressure(t: &mut Text, r: &Reading) {
    if r.host.pressure.iter().all(Option::is_none) {
        return;
    }
    let name = "pressure_avg10_percent";
    t.gauge(name, "Pressure stall information, share of the last 10 s.");
    for (kind, p) in PRESSURE_KINDS.iter().zip(&r.host.pressure) {
        let Some(p) = p else { continue };
        t.line(name, &[("resource", kind), ("kind", "some")], p.some.avg10);
        if let Some(f) = &p.full {
            t.line(name, &[("resource", kind), ("kind", "full")], f.avg10);
        }
    }
}

/// The text being written.
struct Text<'a>(&'a mut String);

impl Text<'_> {
    fn help(&mut self, name: &str, help: &str, kind: &str) {
        let _ = write!(
            self.0,
            "# HELP system_agent_{name} {help}\n# TYPE system_agent_{name} {kind}\n"
        );
    }

    fn gauge(&mut self, name: &str, help: &str) {
        self.help(name, help, "gauge");
    }

    /// One sample, its label values escaped as the text format wants.
    fn line(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        let out = &mut *self.0;
        let _ = write!(out, "system_agent_{name}");
        if !labels.is_empty() {
            out.push('{');
            for (i, (k, val)) in labels.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{k}=\"");
                for ch in val.chars() {
                    match ch {
                        '\\' => out.push_str("\\\\"),
                        '"' => out.push_str("\\\""),
                        '\n' => out.push_str("\\n"),
                        c => out.push(c),
                    }
                }
                out.push('"');
            }
            out.push('}');
        }
        let _ = writeln!(out, " {v}");
    }
}

fn round(v: f64, decimals: i32) -> f64 {
    let s = 10f64.powi(decimals);
    (v * s).round() / s
}
