//! What an operator reads, all from one cycle's `Reading` and judged metrics (so
//! every output shows the same numbers): the `sample` log line, the `--once`
//! status line with perfdata (Nagios plugin style), and the Prometheus text file
//! for node_exporter's textfile collector (`prometheus`), and the status file
//! the service leaves for `--status` (`status`).

mod nagios;
mod prometheus;
pub mod status;

pub use nagios::status_line;
pub use prometheus::{Extra, prometheus};

use crate::config::MemScope;
use crate::judge::{Kind, Metric};
use crate::log::{Level, Logger};
use crate::reading::Reading;

/// `event=sample`: the cycle's figures, one line.
pub fn sample_line(log: &mut Logger, r: &Reading, metrics: &[Metric]) {
    let mut e = log.event(Level::Info, "sample");
    if let Some(c) = r.cpu_percent {
        e = e.num("cpu", c, 1);
    }
    if let Some(p) = r.mem_percent {
        e = e.num("mem", p, 1);
    }
    if r.mem_scope == MemScope::Cgroup {
        e = e.str("mem_scope", "cgroup");
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
        if matches!(
            m.kind,
            Kind::Disk | Kind::Inode | Kind::DiskEta | Kind::InodeEta
        ) && let Some(v) = m.value
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
    for (key, p) in ["cgroup_psi_cpu", "cgroup_psi_memory", "cgroup_psi_io"]
        .iter()
        .zip(&r.cgroup_pressure)
    {
        if let Some(p) = p {
            e = e.num(key, p.some.avg10, 2);
        }
    }
    e.emit();
}
