//! What an operator reads, all from one cycle's `Reading` and judged metrics (so
//! every output shows the same numbers): the `sample` log line, the `--once`
//! status line with perfdata (Nagios plugin style), and the Prometheus text file
//! for node_exporter's textfile collector (`prometheus`).

mod prometheus;

pub use prometheus::{Extra, prometheus};

use crate::judge::{Kind, Metric, Status};
use crate::log::{Level, Logger};
use crate::reading::Reading;
use std::fmt::Write as _;

/// `event=sample`: the cycle's figures, one line.
pub fn sample_line(log: &mut Logger, r: &Reading, metrics: &[Metric]) {
    let mut e = log.event(Level::Info, "sample");
    if let Some(c) = r.cpu_percent {
        e = e.num("cpu", c, 1);
    }
    if let Some(p) = r.mem_percent {
        e = e.num("mem", p, 1);
    }
    if let Some(p) = r.swap_percent {
        e = e.num("swap", p, 1);
    }
    if let Some(l) = r.load() {
        e = e
            .num("load1", l.one, 2)
            .num("load5", l.five, 2)
            .num("load15", l.fifteen, 2);
    }
    for m in metrics {
        if matches!(m.kind, Kind::Disk | Kind::Inode)
            && let Some(v) = m.value
        {
            e = e.u64(&m.label, v as u64);
        }
    }
    for (key, p) in ["psi_cpu", "psi_memory", "psi_io"]
        .iter()
        .zip(&r.host.pressure)
    {
        if let Some(p) = p {
            e = e.num(key, p.some.avg10, 2);
        }
    }
    e.emit();
}

/// `SYSTEM-AGENT CRITICAL - disk / 96% | cpu=12.0%;80;90 mem=40.1%;85;95 disk_root=96%;85;95 load1=0.52`
///
/// The text lists the metrics that are not OK, worst first; perfdata lists cpu, mem,
/// swap (when limited), each mount's disk, load1 and each mount's inodes. Returns the
/// overall status, whose discriminant is the exit code.
pub fn status_line(out: &mut String, metrics: &[Metric], r: &Reading) -> Status {
    let overall = crate::judge::overall(metrics);
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
    let host = |v: Option<f64>| v.map(|v| r.whole_host(v));
    let load = metrics.iter().find(|m| m.kind == Kind::Load);
    let (w, c) = load
        .map(|m| (host(m.limits.warn), host(m.limits.crit)))
        .unwrap_or((None, None));
    perf(out, "load1", r.load().map(|l| l.one), 2, "", w, c);
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
