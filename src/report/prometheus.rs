//! The Prometheus text exposition of one cycle, for node_exporter's textfile
//! collector: the Reading's figures, the metrics' levels after hysteresis, and the
//! agent's own counters. Named as the Prometheus conventions ask: shares as
//! `_ratio` from 0 to 1, times in `_seconds`, sizes in `_bytes`, counters in
//! `_total`, the version in `system_agent_build_info`; every family with HELP and
//! TYPE; no per-sample timestamps.

use crate::judge::{Kind, Metric};
use crate::procfs::pressure::Pressure;
use crate::reading::{DiskReading, Reading};
use crate::sample::{DiskUsage, PRESSURE_KINDS};
use std::fmt::Write as _;

/// The agent's own figures beside the Reading and the metrics.
pub struct Extra {
    /// Cycles run since start, this one included.
    pub cycles: u64,
    /// How long the previous cycle took.
    pub cycle_seconds: f64,
    /// Memory relief is on: MemAvailable, what it judges, in bytes as well.
    pub relief: bool,
}

/// Writes the whole file into `out` (cleared first; its storage is reused).
pub fn prometheus(out: &mut String, metrics: &[Metric], r: &Reading, x: &Extra) {
    out.clear();
    let mut t = Text(out);
    t.gauge("build_info", "The agent's version, in the label; always 1.");
    t.line("build_info", &[("version", env!("CARGO_PKG_VERSION"))], 1.0);
    host(&mut t, r, x.relief);
    disks(&mut t, metrics, r);
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
    let wall = round(r.wall_ns as f64 / 1e9, 3);
    t.single(
        "last_cycle_timestamp_seconds",
        "Wall-clock time of the last cycle, seconds since the epoch.",
        wall,
    );
    t.single(
        "cycle_duration_seconds",
        "How long the previous cycle took.",
        round(x.cycle_seconds, 6),
    );
}

fn host(t: &mut Text, r: &Reading, relief: bool) {
    if let Some(c) = r.cpu_percent {
        t.single(
            "cpu_used_ratio",
            "CPU time used over the last interval, share of all CPUs (0-1).",
            ratio(c, 1),
        );
    }
    t.single("cpus", "Number of online CPUs.", r.ncpu as f64);
    if let Some(p) = r.host_mem_percent {
        t.single(
            "memory_used_ratio",
            "Memory in use (total minus available), share of the total (0-1).",
            ratio(p, 1),
        );
    }
    cgroup(t, r);
    if let Some(m) = r.mem().filter(|_| relief) {
        t.single(
            "memory_available_bytes",
            "MemAvailable: memory available for new work without swapping.",
            (m.available_kb * 1024) as f64,
        );
    }
    if let Some(p) = r.swap_percent {
        t.single(
            "swap_used_ratio",
            "Swap in use, share of the total (0-1; 0 without swap).",
            ratio(p, 1),
        );
    }
    if let Some(l) = r.load() {
        t.gauge("load_average", "Load average over 1, 5 and 15 minutes.");
        for (period, v) in [("1m", l.one), ("5m", l.five), ("15m", l.fifteen)] {
            t.line("load_average", &[("period", period)], v);
        }
    }
}

/// The agent's memory cgroup, when one was found: the share of its limit in use
/// (of the host's memory without one), the limit, and its pressure.
fn cgroup(t: &mut Text, r: &Reading) {
    if let Some(p) = r.cgroup_mem_percent {
        t.single(
            "cgroup_memory_used_ratio",
            "Memory the agent's cgroup uses without its inactive page cache, share of its \
             limit (of the host's memory without one) (0-1).",
            ratio(p, 1),
        );
    }
    if let Ok(Some(limit)) = r.cgroup.as_ref().map(|g| g.limit) {
        t.single(
            "cgroup_memory_limit_bytes",
            "The tightest memory limit of the agent's cgroup and the groups above it.",
            limit as f64,
        );
    }
    psi(
        t,
        "cgroup_pressure_avg10_ratio",
        &r.cgroup_pressure,
        "The agent's cgroup's pressure stall information: share of the last 10 s some or all of its tasks were stalled (0-1).",
    );
}

fn disks(t: &mut Text, metrics: &[Metric], r: &Reading) {
    for (kind, name, help) in [
        (
            Kind::Disk,
            "disk_used_ratio",
            "Disk space in use as df computes it (a whole percent, rounded up), as a share (0-1).",
        ),
        (
            Kind::Inode,
            "inode_used_ratio",
            "Inodes in use (a whole percent, rounded up), as a share (0-1).",
        ),
    ] {
        t.gauge(name, help);
        for m in metrics.iter().filter(|m| m.kind == kind) {
            if let (Some(v), Some(mount)) = (m.value, m.mount_text()) {
                t.line(name, &[("mount", mount)], ratio(v, 0));
            }
        }
    }
    let size = "Size of the filesystem.";
    disk_bytes(t, r, "disk_size_bytes", size, |u| u.size_bytes);
    let avail = "Space available to unprivileged users (without the part reserved for root).";
    disk_bytes(t, r, "disk_avail_bytes", avail, |u| u.avail_bytes);
    let space = "Seconds until the space is used up at the rate it filled over [disk] \
                 forecast_window (absent while not filling).";
    fill_eta(t, r, "disk_fill_eta_seconds", space, |d| d.space.eta_s);
    let inodes = "Seconds until the inodes are used up at the rate they were used over [disk] \
                  forecast_window (absent while not filling).";
    fill_eta(t, r, "inode_fill_eta_seconds", inodes, |d| d.inodes.eta_s);
}

/// A forecast per watched mount that is filling; no family while none is.
fn fill_eta(
    t: &mut Text,
    r: &Reading,
    name: &str,
    help: &str,
    eta: fn(&DiskReading) -> Option<f64>,
) {
    let filling = || {
        r.disks
            .iter()
            .filter(|d| d.usage.is_ok() && eta(d).is_some())
    };
    if filling().next().is_none() {
        return;
    }
    t.gauge(name, help);
    for d in filling() {
        let mount = d.mount.to_string_lossy();
        t.line(name, &[("mount", &mount)], eta(d).unwrap_or(0.0).round());
    }
}

/// One figure in bytes per watched mount that could be read.
fn disk_bytes(t: &mut Text, r: &Reading, name: &str, help: &str, value: fn(&DiskUsage) -> u64) {
    t.gauge(name, help);
    for d in &r.disks {
        if let Ok(u) = &d.usage {
            let mount = d.mount.to_string_lossy();
            t.line(name, &[("mount", &mount)], value(u) as f64);
        }
    }
}

fn pressure(t: &mut Text, r: &Reading) {
    psi(
        t,
        "pressure_avg10_ratio",
        &r.host.pressure,
        "Pressure stall information: share of the last 10 s some or all tasks were stalled (0-1).",
    );
}

/// One family of pressure figures, when there are any.
fn psi(t: &mut Text, name: &str, pressure: &[Option<Pressure>; 3], help: &str) {
    if pressure.iter().all(Option::is_none) {
        return;
    }
    t.gauge(name, help);
    for (kind, p) in PRESSURE_KINDS.iter().zip(pressure) {
        let Some(p) = p else { continue };
        let some = ratio(p.some.avg10, 2);
        t.line(name, &[("resource", kind), ("kind", "some")], some);
        if let Some(f) = &p.full {
            t.line(
                name,
                &[("resource", kind), ("kind", "full")],
                ratio(f.avg10, 2),
            );
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

    /// A gauge of one sample without labels.
    fn single(&mut self, name: &str, help: &str, v: f64) {
        self.gauge(name, help);
        self.line(name, &[], v);
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

/// A percentage shown with `decimals` as a share from 0 to 1, without the
/// binary noise of dividing (`57.3` → `0.573`, not `0.5730000000000001`).
fn ratio(percent: f64, decimals: i32) -> f64 {
    round(percent / 100.0, decimals + 2)
}

fn round(v: f64, decimals: i32) -> f64 {
    let s = 10f64.powi(decimals);
    (v * s).round() / s
}
