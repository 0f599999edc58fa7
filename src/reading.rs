//! `Reading`: one cycle's view of the host, read once and derived once. The sample
//! (/proc/stat, meminfo, loadavg, pressure, one `statvfs` per watched mount) and
//! every figure made from it (CPU% against the previous counters, memory and swap
//! used %, load per CPU) live here, so judging, the sample line, the status line,
//! the metrics file and alert mails all read the same numbers and none recomputes
//! them. The agent owns one Reading and refills it in place each cycle: no
//! allocation once its buffers have grown. Each watched mount keeps its recent
//! readings too, for the disk-full forecast (`forecast`).

use crate::cgroup::{self, GroupMem};
use crate::config::MemScope;
use crate::error::Error;
use crate::forecast::{Fill, Point, Series};
use crate::procfs::loadavg::LoadAvg;
use crate::procfs::meminfo::Meminfo;
use crate::procfs::pressure::Pressure;
use crate::procfs::stat::CpuTimes;
use crate::sample::{DiskUsage, HostSample};
use crate::sys;
use std::path::{Path, PathBuf};

/// How long the second of two back-to-back readings waits (CPU% needs a window),
/// for the host's counters and for the processes'; also the shortest window saved
/// counters may give.
pub const SHORT_WINDOW_MS: u64 = 250;

/// One watched mount (`[disk] mounts`) and what `statvfs` said of it this cycle.
pub struct DiskReading {
    pub mount: PathBuf,
    /// `root`, `var_log`: the mount in metric labels and sample fields.
    pub label: String,
    pub usage: Result<DiskUsage, Error>,
    /// Its readings over the forecast window (kept across cycles and reloads).
    pub series: Series,
    /// How its space and its inodes are filling, from `series` (nothing known
    /// while it cannot be read).
    pub space: Fill,
    pub inodes: Fill,
}

pub struct Reading {
    /// The figures as read; each part failed or not on its own.
    pub host: HostSample,
    /// One per watched mount, looked up by mount (`disk`).
    pub disks: Vec<DiskReading>,
    /// When the cycle read the host: wall clock and monotonic, ns.
    pub wall_ns: u64,
    pub mono_ns: u64,
    /// CPU time used since `cpu_base`, percent of all CPUs; `None` without an
    /// earlier reading to compare with.
    pub cpu_percent: Option<f64>,
    /// The counters the next CPU% is measured from: the last ones read (and the
    /// ones saved in state_dir for the next `--once`).
    pub cpu_base: Option<CpuTimes>,
    /// Online CPUs and boot time, from the last /proc/stat that could be read.
    pub ncpu: u32,
    pub btime: Option<u64>,
    /// The memory figure judged: the host's or the agent's cgroup's, as
    /// `mem_scope` says (per `[thresholds] mem_scope`, `mem_setting`).
    pub mem_percent: Option<f64>,
    pub mem_scope: MemScope,
    pub mem_setting: MemScope,
    /// `(MemTotal - MemAvailable) / MemTotal`.
    pub host_mem_percent: Option<f64>,
    /// The agent's memory cgroup (`Err`: none found, or unreadable this cycle),
    /// and the share of its limit it uses (of the host's memory without one).
    pub cgroup: Result<GroupMem, Error>,
    pub cgroup_mem_percent: Option<f64>,
    /// A v2 group's pressure files (cpu, memory, io), where present.
    pub cgroup_pressure: [Option<Pressure>; 3],
    pub swap_percent: Option<f64>,
    /// The 1-minute load average divided by the CPUs.
    pub load_per_cpu: Option<f64>,
    /// Clock ticks per second and the page size: the units of /proc/PID/stat.
    pub ticks_per_sec: u64,
    pub page_size: u64,
    /// `[disk] forecast_window`, ns; 0: no forecasts.
    pub forecast_window_ns: u64,
}

impl Reading {
    /// An empty reading watching `mounts`.
    pub fn new(mounts: &[PathBuf]) -> Reading {
        let mut r = Reading {
            host: HostSample::empty(),
            disks: Vec::new(),
            wall_ns: 0,
            mono_ns: 0,
            cpu_percent: None,
            cpu_base: None,
            ncpu: 1,
            btime: None,
            mem_percent: None,
            mem_scope: MemScope::Host,
            mem_setting: MemScope::Auto,
            host_mem_percent: None,
            cgroup: Err(cgroup::not_found("not looked for")),
            cgroup_mem_percent: None,
            cgroup_pressure: [None; 3],
            swap_percent: None,
            load_per_cpu: None,
            ticks_per_sec: sys::clock_ticks(),
            page_size: sys::page_size(),
            forecast_window_ns: 30 * 60 * 1_000_000_000,
        };
        r.watch(mounts);
        r
    }

    /// The watched mounts, at start and after a reload (a mount watched before
    /// keeps its forecast readings).
    pub fn watch(&mut self, mounts: &[PathBuf]) {
        let mut old = std::mem::take(&mut self.disks);
        self.disks = mounts
            .iter()
            .map(|m| DiskReading {
                mount: m.clone(),
                label: mount_label(m),
                usage: Err(not_read()),
                series: old
                    .iter_mut()
                    .find(|d| d.mount == *m)
                    .map_or_else(Series::new, |d| std::mem::take(&mut d.series)),
                space: Fill::default(),
                inodes: Fill::default(),
            })
            .collect();
    }

    /// Restores a mount's forecast readings (from state_dir), if it is watched.
    pub fn restore_series(&mut self, mount: &std::path::Path, points: &[Point]) {
        if let Some(d) = self.disks.iter_mut().find(|d| d.mount == mount) {
            d.series.points.clear();
            let keep = points.len().min(d.series.points.capacity());
            d.series
                .points
                .extend_from_slice(&points[points.len() - keep..]);
        }
    }

    /// Makes every derived figure from the sample just read into `host` and
    /// `disks`. A /proc/stat that failed keeps the CPU count, boot time and base
    /// counters of the last one that did.
    pub fn derive(&mut self) {
        self.cpu_percent = None;
        if let Ok(st) = &self.host.stat {
            self.cpu_percent = self.cpu_base.and_then(|p| st.cpu.used_percent_since(&p));
            self.cpu_base = Some(st.cpu);
            self.btime = st.btime;
            self.ncpu = st.ncpu.max(1);
        }
        let mem = self.mem().copied();
        self.host_mem_percent = mem.as_ref().and_then(Meminfo::used_percent);
        self.swap_percent = mem.as_ref().map(Meminfo::swap_used_percent);
        self.judged_memory(mem.map(|m| m.total_kb.saturating_mul(1024)));
        self.load_per_cpu = self.load().map(|l| l.one / self.ncpu as f64);
        self.forecast();
    }

    /// Each readable mount's reading joins its series, and its space and inodes
    /// are forecast from it.
    fn forecast(&mut self) {
        let window = self.forecast_window_ns;
        for d in &mut self.disks {
            (d.space, d.inodes) = (Fill::default(), Fill::default());
            let Ok(u) = &d.usage else { continue };
            if window == 0 {
                continue;
            }
            let point = Point {
                t_ns: self.wall_ns,
                used: u.used_bytes,
                inodes: u.inode_percent.map(|_| u.inodes_used),
            };
            d.series.record(point, window);
            d.space = d.series.space(u.avail_bytes, window);
            d.inodes = d.series.inodes(u.inodes_free, window);
        }
    }

    /// The memory figure to judge: the host's, or the group's share of its limit
    /// (of the host's memory, `total` bytes, when it has none), or under `auto`
    /// the group's when it has a limit and uses more of it than the host does.
    fn judged_memory(&mut self, total: Option<u64>) {
        let host = self.host_mem_percent;
        let group = self.cgroup.as_ref().ok().and_then(|g| {
            let limit = g.limit.or(total.filter(|&t| t > 0))?;
            Some((g.used as f64 * 100.0 / limit as f64, g.limit.is_some()))
        });
        self.cgroup_mem_percent = group.map(|g| g.0);
        (self.mem_percent, self.mem_scope) = match (self.mem_setting, group) {
            (MemScope::Host, _) => (host, MemScope::Host),
            (MemScope::Cgroup, g) => (g.map(|g| g.0), MemScope::Cgroup),
            (MemScope::Auto, Some((g, true))) if host.is_none_or(|h| g > h) => {
                (Some(g), MemScope::Cgroup)
            }
            (MemScope::Auto, _) => (host, MemScope::Host),
        };
    }

    /// Why the judged memory figure is missing.
    pub fn mem_unknown(&self) -> &dyn std::fmt::Display {
        match (self.mem_scope, &self.cgroup, &self.host.mem) {
            (MemScope::Cgroup, Err(e), _) => e,
            (_, _, Err(e)) => e,
            _ => &"MemTotal is 0",
        }
    }

    pub fn mem(&self) -> Option<&Meminfo> {
        self.host.mem.as_ref().ok()
    }

    pub fn load(&self) -> Option<&LoadAvg> {
        self.host.load.as_ref().ok()
    }

    /// The reading of a watched mount.
    pub fn disk(&self, mount: &Path) -> Option<&DiskReading> {
        self.disks.iter().find(|d| d.mount == mount)
    }

    /// A per-CPU load figure (a `[thresholds] load_*` limit) for the whole host,
    /// as load averages are shown.
    pub fn whole_host(&self, per_cpu: f64) -> f64 {
        per_cpu * self.ncpu as f64
    }
}

fn not_read() -> Error {
    Error::io("read", "", std::io::Error::from_raw_os_error(libc::ENODATA))
}

/// `/` → `root`, `/var/log` → `var_log`: a label usable in perfdata and logfmt keys.
pub fn mount_label(m: &Path) -> String {
    let s = m.to_string_lossy();
    let t = s.trim_matches('/');
    if t.is_empty() {
        return "root".to_string();
    }
    t.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procfs::stat::Stat;

    fn stat(busy: u64, idle: u64, ncpu: u32) -> Stat {
        Stat {
            cpu: CpuTimes::from_array([busy, 0, 0, idle, 0, 0, 0, 0]),
            ncpu,
            btime: Some(1_700_000_000),
        }
    }

    #[test]
    fn derived_once_from_the_sample() {
        let mut r = Reading::new(&[PathBuf::from("/"), PathBuf::from("/var/log")]);
        r.host.stat = Ok(stat(100, 900, 4));
        r.host.mem = Ok(Meminfo {
            total_kb: 1000,
            available_kb: 250,
            swap_total_kb: 200,
            swap_free_kb: 150,
        });
        r.host.load = Ok(LoadAvg {
            one: 2.0,
            five: 1.0,
            fifteen: 0.5,
        });
        r.derive();
        assert_eq!(r.cpu_percent, None, "no earlier counters");
        assert_eq!((r.ncpu, r.btime), (4, Some(1_700_000_000)));
        assert_eq!((r.mem_percent, r.swap_percent), (Some(75.0), Some(25.0)));
        assert_eq!(r.load_per_cpu, Some(0.5));
        assert_eq!(r.whole_host(1.5), 6.0);
        r.host.stat = Ok(stat(150, 1350, 4));
        r.derive();
        assert_eq!(r.cpu_percent, Some(10.0));
        // An unreadable /proc/stat keeps what the last one said, but no CPU%.
        r.host.stat = Err(not_read());
        r.derive();
        assert_eq!((r.cpu_percent, r.ncpu), (None, 4));
        assert_eq!(r.cpu_base, Some(stat(150, 1350, 4).cpu));
        let labels: Vec<&str> = r.disks.iter().map(|d| d.label.as_str()).collect();
        assert_eq!(labels, ["root", "var_log"]);
        assert!(r.disk(Path::new("/var/log")).is_some());
        assert!(r.disk(Path::new("/var")).is_none());
    }
}
