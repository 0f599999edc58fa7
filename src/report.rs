//! What an operator reads: the `--once` status line with perfdata (Nagios plugin
//! style), and the Prometheus text file for node_exporter's textfile collector.

use crate::policy::{Kind, Metric, Status};
use crate::sample::{HostSample, PRESSURE_KINDS};
use std::fmt::Write as _;

/// `SYSTEM-AGENT CRITICAL - disk / 96% | cpu=12.0%;80;90 mem=40.1%;85;95 disk_root=96%;85;95 load1=0.52`
///
/// The text lists the metrics that are not OK, worst first; perfdata lists cpu, mem,
/// swap (when limited), each mount's disk, load1 and each mount's inodes. Returns the
/// overall status, whose discriminant is the exit code.
pub fn status_line(out: &mut String, metrics: &[Metric], load1: Option<f64>, ncpu: u32) -> Status {
    let overall = crate::policy::overall(metrics);
    out.clear();
    let _ = write!(out, "SYSTEM-AGENT {} - ", overall.nagios());
    let mut problems = 0;
    for want in [Status::Critical, Status::Warning, Status::Unknown] {
        for m in metrics.iter().filter(|m| m.raw == want) {
            if problems > 0 {
                out.push_str(", ");
            }
            problems += 1;
            describe(out, m);
        }
    }
    if problems == 0 {
        out.push_str("all checks ok");
    }
    out.push_str(" |");
    for m in metrics
        .iter()
        .filter(|m| m.kind != Kind::Inode && m.kind != Kind::Load)
    {
        perf(
            out,
            &m.label,
            m.value,
            m.kind.decimals(),
            "%",
            m.limits.warn,
            m.limits.crit,
        );
    }
    let per_cpu = |v: Option<f64>| v.map(|v| v * ncpu.max(1) as f64);
    let load = metrics.iter().find(|m| m.kind == Kind::Load);
    let (w, c) = load
        .map(|m| (per_cpu(m.limits.warn), per_cpu(m.limits.crit)))
        .unwrap_or((None, None));
    perf(out, "load1", load1, 2, "", w, c);
    for m in metrics.iter().filter(|m| m.kind == Kind::Inode) {
        perf(out, &m.label, m.value, 0, "%", m.limits.warn, m.limits.crit);
    }
    overall
}

fn describe(out: &mut String, m: &Metric) {
    let what = match m.kind {
        Kind::Inode => "inodes",
        k => k.name(),
    };
    out.push_str(what);
    if let Some(mount) = &m.mount {
        out.push(' ');
        sanitize(out, &mount.to_string_lossy());
    }
    match (m.value, Some(&m.error).filter(|e| !e.is_empty())) {
        (Some(v), _) if m.kind == Kind::Load => {
            let _ = write!(out, " {v:.2} per cpu");
        }
        (Some(v), _) => {
            let _ = write!(out, " {v:.prec$}%", prec = m.kind.decimals());
        }
        (None, Some(e)) => {
            out.push_str(" unknown (");
            sanitize(out, e);
            out.push(')');
        }
        (None, None) => out.push_str(" unknown"),
    }
}

/// One status line: no line breaks, and no `|` that would start perfdata early.
fn sanitize(out: &mut String, s: &str) {
    out.extend(
        s.chars()
            .map(|c| if c.is_control() || c == '|' { '?' } else { c }),
    );
}

fn perf(
    out: &mut String,
    label: &str,
    v: Option<f64>,
    decimals: usize,
    unit: &str,
    w: Option<f64>,
    c: Option<f64>,
) {
    let _ = write!(out, " {label}=");
    match v {
        Some(v) => {
            let _ = write!(out, "{v:.decimals$}{unit}");
        }
        None => out.push('U'),
    }
    if w.is_some() || c.is_some() {
        out.push(';');
        if let Some(w) = w {
            push_limit(out, w);
        }
        out.push(';');
        if let Some(c) = c {
            push_limit(out, c);
        }
    }
}

/// `80`, `1.5`, `3.2`: at most two decimals, no trailing zeros.
fn push_limit(out: &mut String, v: f64) {
    let start = out.len();
    let _ = write!(out, "{v:.2}");
    while out.ends_with('0') {
        out.pop();
    }
    if out.ends_with('.') {
        out.pop();
    }
    if out.len() == start {
        out.push('0');
    }
}

/// Inputs of the metrics file beyond the judged metrics.
pub struct Extra {
    pub cpu_percent: Option<f64>,
    pub ncpu: u32,
    pub cycles: u64,
    pub wall_ns: u64,
    pub cycle_seconds: f64,
}

/// The Prometheus text exposition of this cycle (no per-sample timestamps).
pub fn prometheus(out: &mut String, metrics: &[Metric], host: &HostSample, x: &Extra) {
    out.clear();
    let gauge = |out: &mut String, name: &str, help: &str| {
        let _ = write!(
            out,
            "# HELP system_agent_{name} {help}\n# TYPE system_agent_{name} gauge\n"
        );
    };
    let line = |out: &mut String, name: &str, labels: &[(&str, &str)], v: f64| {
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
    };
    if let Some(c) = x.cpu_percent {
        gauge(
            out,
            "cpu_used_percent",
            "CPU time used over the last interval, percent of all CPUs.",
        );
        line(out, "cpu_used_percent", &[], round(c, 1));
    }
    gauge(out, "cpus", "Number of online CPUs.");
    line(out, "cpus", &[], x.ncpu as f64);
    if let Ok(m) = &host.mem {
        if let Some(p) = m.used_percent() {
            gauge(
                out,
                "memory_used_percent",
                "Memory in use (total minus available), percent.",
            );
            line(out, "memory_used_percent", &[], round(p, 1));
        }
        gauge(
            out,
            "swap_used_percent",
            "Swap in use, percent (0 without swap).",
        );
        line(
            out,
            "swap_used_percent",
            &[],
            round(m.swap_used_percent(), 1),
        );
    }
    if let Ok(l) = &host.load {
        gauge(
            out,
            "load_average",
            "Load average over 1, 5 and 15 minutes.",
        );
        for (period, v) in [("1m", l.one), ("5m", l.five), ("15m", l.fifteen)] {
            line(out, "load_average", &[("period", period)], v);
        }
    }
    for (kind, name, help) in [
        (
            Kind::Disk,
            "disk_used_percent",
            "Disk space in use as df computes it, percent.",
        ),
        (Kind::Inode, "inode_used_percent", "Inodes in use, percent."),
    ] {
        gauge(out, name, help);
        for m in metrics.iter().filter(|m| m.kind == kind) {
            if let (Some(v), Some(mount)) = (m.value, m.mount_text()) {
                line(out, name, &[("mount", mount)], v);
            }
        }
    }
    if host.pressure.iter().any(Option::is_some) {
        gauge(
            out,
            "pressure_avg10_percent",
            "Pressure stall information, share of the last 10 s.",
        );
        for (kind, p) in PRESSURE_KINDS.iter().zip(&host.pressure) {
            if let Some(p) = p {
                line(
                    out,
                    "pressure_avg10_percent",
                    &[("resource", kind), ("kind", "some")],
                    p.some.avg10,
                );
                if let Some(f) = &p.full {
                    line(
                        out,
                        "pressure_avg10_percent",
                        &[("resource", kind), ("kind", "full")],
                        f.avg10,
                    );
                }
            }
        }
    }
    gauge(
        out,
        "level",
        "Alert level after hysteresis: 0 ok, 1 warning, 2 critical.",
    );
    for m in metrics {
        match m.mount_text() {
            Some(mp) => line(
                out,
                "level",
                &[("metric", m.kind.name()), ("mount", mp)],
                m.hyst.reported as f64,
            ),
            None => line(
                out,
                "level",
                &[("metric", m.kind.name())],
                m.hyst.reported as f64,
            ),
        }
    }
    let _ = write!(
        out,
        "# HELP system_agent_cycles_total Cycles run since start.\n# TYPE system_agent_cycles_total counter\n"
    );
    line(out, "cycles_total", &[], x.cycles as f64);
    gauge(
        out,
        "last_cycle_timestamp_seconds",
        "Wall-clock time of the last cycle, seconds since the epoch.",
    );
    line(
        out,
        "last_cycle_timestamp_seconds",
        &[],
        round(x.wall_ns as f64 / 1e9, 3),
    );
    gauge(
        out,
        "cycle_duration_seconds",
        "How long the previous cycle took.",
    );
    line(
        out,
        "cycle_duration_seconds",
        &[],
        round(x.cycle_seconds, 6),
    );
}

fn round(v: f64, decimals: i32) -> f64 {
    let s = 10f64.powi(decimals);
    (v * s).round() / s
}
