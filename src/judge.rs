//! Judging: one cycle's `Reading` → a value and a level per metric (OK / WARNING /
//! CRITICAL / UNKNOWN), and `for_cycles` hysteresis that turns levels into `alert` /
//! `recovered` transitions. Pure: no I/O, no clock; the agent feeds it the Reading
//! and keeps its counters in state_dir, so cron runs count as consecutive cycles.

use crate::config::{Config, Limits};
use crate::reading::{Reading, mount_label};
use std::fmt::Write as _;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    Ok = 0,
    Warning = 1,
    Critical = 2,
    Unknown = 3,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Critical => "critical",
            Status::Unknown => "unknown",
        }
    }

    /// The Nagios plugin word; the exit code is the discriminant.
    pub fn nagios(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warning => "WARNING",
            Status::Critical => "CRITICAL",
            Status::Unknown => "UNKNOWN",
        }
    }

    pub fn from_u8(v: u8) -> Option<Status> {
        match v {
            0 => Some(Status::Ok),
            1 => Some(Status::Warning),
            2 => Some(Status::Critical),
            3 => Some(Status::Unknown),
            _ => None,
        }
    }

    /// How bad, for picking the overall status: CRITICAL > WARNING > UNKNOWN > OK,
    /// so a check that has a real problem reports it even when another metric could
    /// not be read.
    pub fn badness(self) -> u8 {
        match self {
            Status::Ok => 0,
            Status::Unknown => 1,
            Status::Warning => 2,
            Status::Critical => 3,
        }
    }

    pub fn worst(a: Status, b: Status) -> Status {
        if b.badness() > a.badness() { b } else { a }
    }
}

/// The level a value is at: `crit` first, then `warn`; a limit that is off never fires.
pub fn level(value: f64, limits: Limits) -> Status {
    if limits.crit.is_some_and(|c| value >= c) {
        Status::Critical
    } else if limits.warn.is_some_and(|w| value >= w) {
        Status::Warning
    } else {
        Status::Ok
    }
}

/// The level of a value that is worse when lower (a time left): at or below
/// `crit` first, then `warn`.
pub fn level_below(value: f64, limits: Limits) -> Status {
    if limits.crit.is_some_and(|c| value <= c) {
        Status::Critical
    } else if limits.warn.is_some_and(|w| value <= w) {
        Status::Warning
    } else {
        Status::Ok
    }
}

/// `for_cycles` hysteresis. A level is reported after the reading has been at or
/// above it for `n` consecutive cycles; the reported level drops to a lower one after
/// the reading has been at or below that one for `n` consecutive cycles. Counters
/// saturate at `n`, so a steady state stops changing (and stops being written).
/// An unreadable cycle (UNKNOWN) leaves the counters as they were.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hysteresis {
    /// OK, WARNING or CRITICAL; never UNKNOWN.
    pub reported: u8,
    /// Consecutive cycles at or above WARNING, at or above CRITICAL.
    pub up: [u32; 2],
    /// Consecutive cycles at or below OK, at or below WARNING.
    pub down: [u32; 2],
}

impl Hysteresis {
    pub fn reported(&self) -> Status {
        Status::from_u8(self.reported)
            .filter(|&s| s != Status::Unknown)
            .unwrap_or(Status::Ok)
    }

    /// Feeds one cycle's raw level; returns `(from, to)` when the reported level changes.
    pub fn observe(&mut self, raw: Status, n: u32) -> Option<(Status, Status)> {
        if raw == Status::Unknown {
            return None;
        }
        let n = n.max(1);
        let count = |c: &mut u32, hit: bool| *c = if hit { (*c + 1).min(n) } else { 0 };
        count(&mut self.up[0], raw >= Status::Warning);
        count(&mut self.up[1], raw >= Status::Critical);
        count(&mut self.down[0], raw <= Status::Ok);
        count(&mut self.down[1], raw <= Status::Warning);
        let from = self.reported();
        let sustained = if self.up[1] >= n {
            Status::Critical
        } else if self.up[0] >= n {
            Status::Warning
        } else {
            Status::Ok
        };
        let to = if sustained > from {
            sustained
        } else if from > Status::Ok && self.down[0] >= n {
            Status::Ok
        } else if from == Status::Critical && self.down[1] >= n {
            Status::Warning
        } else {
            from
        };
        self.reported = to as u8;
        (to != from).then_some((from, to))
    }

    /// How many consecutive cycles (up to `for_cycles`) the reading has been at
    /// the level `raw` by the count that decides: toward a change when `raw` is
    /// not the reported level, holding it when it is; `None` for an unread cycle.
    pub fn held(&self, raw: Status) -> Option<u32> {
        match raw {
            Status::Unknown => None,
            Status::Ok => Some(self.down[0]),
            Status::Warning if self.reported() == Status::Critical => Some(self.down[1]),
            Status::Warning => Some(self.up[0]),
            Status::Critical => Some(self.up[1]),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cpu,
    Mem,
    Swap,
    Load,
    Disk,
    Inode,
    /// Seconds until a mount's space runs out at the rate it has been filling.
    DiskEta,
    /// Likewise for its inodes.
    InodeEta,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Cpu => "cpu",
            Kind::Mem => "mem",
            Kind::Swap => "swap",
            Kind::Load => "load",
            Kind::Disk => "disk",
            Kind::Inode => "inode",
            Kind::DiskEta => "disk_eta",
            Kind::InodeEta => "inode_eta",
        }
    }

    /// Decimals shown for values of this kind.
    pub fn decimals(self) -> usize {
        match self {
            Kind::Cpu | Kind::Mem | Kind::Swap => 1,
            Kind::Load => 2,
            Kind::Disk | Kind::Inode | Kind::DiskEta | Kind::InodeEta => 0,
        }
    }

    /// A time left: lower is worse, and no value (not filling) is OK.
    pub fn is_eta(self) -> bool {
        matches!(self, Kind::DiskEta | Kind::InodeEta)
    }

    /// The prefix of a per-mount label: `disk_root`, `eta_root`, `inode_eta_root`.
    fn label(self) -> &'static str {
        match self {
            Kind::DiskEta => "eta",
            k => k.name(),
        }
    }
}

/// One judged quantity: cpu, mem, swap, load, or disk / inode of one mount.
#[derive(Debug, Clone)]
pub struct Metric {
    pub kind: Kind,
    pub mount: Option<PathBuf>,
    /// Key in state_dir: `cpu`, `disk:/var`.
    pub key: String,
    /// Perfdata and sample-field label: `cpu`, `disk_root`, `inode_var_log`.
    pub label: String,
    pub limits: Limits,
    /// This cycle's value, rounded to what is shown (so shown and judged agree).
    pub value: Option<f64>,
    pub raw: Status,
    /// Why `raw` is UNKNOWN (empty otherwise); its storage is reused.
    pub error: String,
    pub hyst: Hysteresis,
}

impl Metric {
    fn new(kind: Kind, mount: Option<PathBuf>, limits: Limits) -> Metric {
        let (key, label) = match &mount {
            Some(m) => (
                format!("{}:{}", kind.name(), m.display()),
                format!("{}_{}", kind.label(), mount_label(m)),
            ),
            None => (kind.name().to_string(), kind.name().to_string()),
        };
        Metric {
            kind,
            mount,
            key,
            label,
            limits,
            value: None,
            raw: Status::Unknown,
            error: String::new(),
            hyst: Hysteresis::default(),
        }
    }

    /// Records this cycle's reading (or why there is none).
    pub fn set(&mut self, reading: Result<f64, &dyn std::fmt::Display>) {
        match reading {
            Ok(v) => {
                let scale = 10f64.powi(self.kind.decimals() as i32);
                let v = (v * scale).round() / scale;
                self.value = Some(v);
                self.raw = if self.kind.is_eta() {
                    level_below(v, self.limits)
                } else {
                    level(v, self.limits)
                };
                self.error.clear();
            }
            Err(e) => {
                self.value = None;
                self.raw = Status::Unknown;
                self.error.clear();
                let _ = write!(self.error, "{e}");
            }
        }
    }

    /// No value, and nothing wrong: a mount that is not filling has no time left.
    pub fn set_steady(&mut self) {
        self.value = None;
        self.raw = Status::Ok;
        self.error.clear();
    }

    /// The mount as text (from the key, so without allocating), for disk and inode.
    pub fn mount_text(&self) -> Option<&str> {
        self.mount
            .as_ref()
            .and(self.key.split_once(':').map(|(_, m)| m))
    }

    /// The limit that a level refers to, for event lines.
    pub fn threshold(&self, s: Status) -> Option<f64> {
        match s {
            Status::Critical => self.limits.crit,
            Status::Warning | Status::Ok | Status::Unknown => self.limits.warn,
        }
    }
}

/// The metrics a config asks for, in a fixed order: cpu, mem, swap (if limited), load
/// (if limited), disk and inode for each mount, then (if limited and forecasts
/// are on) the time left of each mount's space and of its inodes.
pub fn metrics_for(cfg: &Config) -> Vec<Metric> {
    let t = &cfg.thresholds;
    let on = |l: Limits| l.warn.is_some() || l.crit.is_some();
    let mut out = vec![
        Metric::new(Kind::Cpu, None, t.cpu),
        Metric::new(Kind::Mem, None, t.mem),
    ];
    if on(t.swap) {
        out.push(Metric::new(Kind::Swap, None, t.swap));
    }
    if on(t.load) {
        out.push(Metric::new(Kind::Load, None, t.load));
    }
    for m in &cfg.disk.mounts {
        out.push(Metric::new(Kind::Disk, Some(m.clone()), t.disk));
    }
    for m in &cfg.disk.mounts {
        out.push(Metric::new(Kind::Inode, Some(m.clone()), t.inode));
    }
    let forecasts = !cfg.disk.forecast_window.is_zero();
    for (kind, limits) in [(Kind::DiskEta, t.disk_eta), (Kind::InodeEta, t.inode_eta)] {
        if forecasts && on(limits) {
            for m in &cfg.disk.mounts {
                out.push(Metric::new(kind, Some(m.clone()), limits));
            }
        }
    }
    out
}

/// This cycle's value and raw level of every metric, from the Reading alone.
pub fn judge(r: &Reading, metrics: &mut [Metric]) {
    for m in metrics {
        match m.kind {
            Kind::Cpu => match (&r.host.stat, r.cpu_percent) {
                (Ok(_), Some(p)) => m.set(Ok(p)),
                (Err(e), _) => m.set(Err(e)),
                (Ok(_), None) => m.set(Err(&"no earlier CPU sample to compare with")),
            },
            Kind::Mem => match r.mem_percent {
                Some(p) => m.set(Ok(p)),
                None => m.set(Err(r.mem_unknown())),
            },
            Kind::Swap => match (&r.host.mem, r.swap_percent) {
                (Err(e), _) => m.set(Err(e)),
                (Ok(_), p) => m.set(p.ok_or(&"not sampled" as &dyn std::fmt::Display)),
            },
            Kind::Load => match (&r.host.load, r.load_per_cpu) {
                (Err(e), _) => m.set(Err(e)),
                (Ok(_), p) => m.set(p.ok_or(&"not sampled" as &dyn std::fmt::Display)),
            },
            Kind::Disk | Kind::Inode => {
                let disk = m.mount.as_deref().and_then(|p| r.disk(p));
                match disk.map(|d| &d.usage) {
                    Some(Ok(d)) if m.kind == Kind::Disk => m.set(Ok(d.used_percent as f64)),
                    Some(Ok(d)) => m.set(Ok(d.inode_percent.unwrap_or(0) as f64)),
                    Some(Err(e)) => m.set(Err(e)),
                    None => m.set(Err(&"not sampled")),
                }
            }
            Kind::DiskEta | Kind::InodeEta => {
                let disk = m.mount.as_deref().and_then(|p| r.disk(p));
                let fill = disk.map(|d| {
                    (
                        &d.usage,
                        if m.kind == Kind::DiskEta {
                            d.space
                        } else {
                            d.inodes
                        },
                    )
                });
                match fill {
                    Some((Ok(_), f)) => match f.eta_s {
                        Some(eta) => m.set(Ok(eta)),
                        None => m.set_steady(),
                    },
                    // Unknown this cycle (the hysteresis holds); the disk says why.
                    Some((Err(e), _)) => m.set(Err(e)),
                    None => m.set(Err(&"not sampled")),
                }
            }
        }
    }
}

/// Carries hysteresis over a reload: a metric that still exists keeps its counters.
pub fn carry_over(old: &[Metric], new: &mut [Metric]) {
    for m in new {
        if let Some(o) = old.iter().find(|o| o.key == m.key) {
            m.hyst = o.hyst;
        }
    }
}

/// The overall status of a set of metrics (the `--once` exit status).
pub fn overall(metrics: &[Metric]) -> Status {
    metrics
        .iter()
        .fold(Status::Ok, |acc, m| Status::worst(acc, m.raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Status::*;

    fn run(n: u32, raws: &[Status]) -> Vec<Option<(Status, Status)>> {
        let mut h = Hysteresis::default();
        raws.iter().map(|&r| h.observe(r, n)).collect()
    }

    #[test]
    fn alert_on_the_nth_cycle_and_recover_likewise() {
        assert_eq!(
            run(3, &[Critical, Critical, Critical, Ok, Ok, Ok]),
            vec![
                None,
                None,
                Some((Ok, Critical)),
                None,
                None,
                Some((Critical, Ok))
            ]
        );
    }

    #[test]
    fn a_broken_run_starts_over() {
        assert_eq!(
            run(3, &[Warning, Warning, Ok, Warning, Warning, Warning])
                .iter()
                .flatten()
                .count(),
            1
        );
        assert_eq!(
            run(3, &[Warning, Warning, Ok, Warning, Warning, Warning])[5],
            Some((Ok, Warning))
        );
    }

    #[test]
    fn mixed_warning_and_critical_count_as_warning() {
        assert_eq!(
            run(3, &[Warning, Critical, Critical]),
            vec![None, None, Some((Ok, Warning))]
        );
        assert_eq!(
            run(2, &[Critical, Critical, Warning, Warning, Ok, Ok]),
            vec![
                None,
                Some((Ok, Critical)),
                None,
                Some((Critical, Warning)),
                None,
                Some((Warning, Ok))
            ]
        );
    }

    #[test]
    fn held_counts_toward_the_next_change() {
        let mut h = Hysteresis::default();
        let mut seen = Vec::new();
        for raw in [
            Warning, Warning, Warning, Critical, Unknown, Ok, Warning, Warning, Ok,
        ] {
            h.observe(raw, 3);
            seen.push((h.reported(), h.held(raw)));
        }
        assert_eq!(
            seen,
            vec![
                (Ok, Some(1)),
                (Ok, Some(2)),
                (Warning, Some(3)),
                (Warning, Some(1)),
                (Warning, None),
                (Warning, Some(1)),
                (Warning, Some(1)),
                (Warning, Some(2)),
                (Warning, Some(1)),
            ]
        );
        // Down from CRITICAL, a WARNING reading counts toward WARNING.
        let mut h = Hysteresis::default();
        for raw in [Critical, Critical, Critical, Warning, Warning] {
            h.observe(raw, 3);
        }
        assert_eq!((h.reported(), h.held(Warning)), (Critical, Some(2)));
    }

    #[test]
    fn unknown_neither_counts_nor_breaks_a_run() {
        assert_eq!(
            run(2, &[Critical, Unknown, Critical]),
            vec![None, None, Some((Ok, Critical))]
        );
    }

    #[test]
    fn n_of_one_follows_the_reading() {
        assert_eq!(
            run(1, &[Warning, Critical, Ok]),
            vec![
                Some((Ok, Warning)),
                Some((Warning, Critical)),
                Some((Critical, Ok))
            ]
        );
    }

    #[test]
    fn levels_and_labels() {
        let l = Limits {
            warn: Some(80.0),
            crit: Some(90.0),
        };
        assert_eq!(level(79.9, l), Ok);
        assert_eq!(level(80.0, l), Warning);
        assert_eq!(level(90.0, l), Critical);
        assert_eq!(level(1e9, Limits::default()), Ok);
        assert_eq!(mount_label(std::path::Path::new("/")), "root");
        assert_eq!(mount_label(std::path::Path::new("/var/log/")), "var_log");
        assert_eq!(Status::worst(Unknown, Warning), Warning);
        assert_eq!(Status::worst(Ok, Unknown), Unknown);
        assert_eq!(Status::worst(Critical, Unknown), Critical);
    }

    /// A reading in → each metric's value and raw level out. Per row: CPU %, memory
    /// %, load per CPU, / and /data as (used %, inodes used %); `None` where that
    /// source could not be read (no load: nothing could be read at all).
    #[test]
    fn a_reading_judged() {
        type Disk = Option<(u32, Option<u32>)>;
        type Row = (
            Option<f64>,
            Option<f64>,
            Option<f64>,
            Disk,
            Disk,
            &'static str,
        );
        let rows: [Row; 4] = [
            (
                Some(12.34),
                Some(85.0),
                Some(0.5),
                Some((96, Some(3))),
                Some((50, None)),
                "cpu=12.3 ok, mem=85 warning, swap=0 ok, load=0.5 ok, disk_root=96 critical, \
                 disk_data=50 ok, inode_root=3 ok, inode_data=0 ok",
            ),
            (
                Some(95.0),
                Some(99.96),
                Some(1.0),
                Some((85, Some(97))),
                None,
                "cpu=95 critical, mem=100 critical, swap=0 ok, load=1 warning, \
                 disk_root=85 warning, disk_data=U unknown, inode_root=97 critical, \
                 inode_data=U unknown",
            ),
            // No earlier CPU counters; a meminfo whose MemTotal is 0.
            (
                None,
                None,
                Some(0.0),
                Some((0, Some(0))),
                Some((0, Some(0))),
                "cpu=U unknown, mem=U unknown, swap=0 ok, load=0 ok, disk_root=0 ok, \
                 disk_data=0 ok, inode_root=0 ok, inode_data=0 ok",
            ),
            (
                None,
                None,
                None,
                None,
                None,
                "cpu=U unknown, mem=U unknown, swap=U unknown, load=U unknown, \
                 disk_root=U unknown, disk_data=U unknown, inode_root=U unknown, \
                 inode_data=U unknown",
            ),
        ];
        let cfg = judged_config();
        for (i, (cpu, mem, load, root, data, want)) in rows.into_iter().enumerate() {
            let mut r = Reading::new(&cfg.disk.mounts);
            fill(&mut r, load.is_some(), [root, data]);
            (r.cpu_percent, r.mem_percent, r.load_per_cpu) = (cpu, mem, load);
            let mut metrics = metrics_for(&cfg);
            judge(&r, &mut metrics);
            assert_eq!(judged(&metrics), want, "row {i}");
            let unknown = metrics.iter().filter(|m| m.raw == Unknown);
            assert!(unknown.clone().all(|m| !m.error.is_empty()), "row {i}");
        }
        let mut metrics = metrics_for(&cfg);
        judge(&Reading::new(&[]), &mut metrics);
        assert_eq!(metrics[4].error, "not sampled", "a mount the Reading lacks");
    }

    /// A mount's time left, lower is worse: warn at 6 h or less, crit at 1 h or
    /// less, OK (no value) while not filling, unknown while it cannot be read.
    #[test]
    fn a_time_left_is_judged_lower_is_worse() {
        let mut cfg = Config::default();
        cfg.disk.mounts = vec!["/".into()];
        let mut r = Reading::new(&cfg.disk.mounts);
        let mut metrics = metrics_for(&cfg);
        let kinds: Vec<&str> = metrics.iter().map(|m| m.label.as_str()).collect();
        assert_eq!(
            kinds,
            [
                "cpu",
                "mem",
                "disk_root",
                "inode_root",
                "eta_root",
                "inode_eta_root"
            ]
        );
        let rows = [
            (
                Some(3600.4),
                None,
                "eta_root=3600 critical, inode_eta_root=U ok",
            ),
            (
                Some(3601.0),
                Some(21_600.0),
                "eta_root=3601 warning, inode_eta_root=21600 warning",
            ),
            (
                Some(21_601.0),
                Some(0.0),
                "eta_root=21601 ok, inode_eta_root=0 critical",
            ),
            (None, None, "eta_root=U ok, inode_eta_root=U ok"),
        ];
        for (space, inodes, want) in rows {
            fill(&mut r, true, [Some((50, Some(50))), None]);
            r.disks[0].space.eta_s = space;
            r.disks[0].inodes.eta_s = inodes;
            judge(&r, &mut metrics);
            assert_eq!(judged(&metrics[4..]), want);
        }
        fill(&mut r, true, [None, None]);
        judge(&r, &mut metrics);
        assert_eq!(
            judged(&metrics[4..]),
            "eta_root=U unknown, inode_eta_root=U unknown"
        );
        // Off when the window is 0 or both limits are empty.
        cfg.disk.forecast_window = std::time::Duration::ZERO;
        assert_eq!(metrics_for(&cfg).len(), 4);
        cfg.disk.forecast_window = std::time::Duration::from_secs(60);
        cfg.thresholds.disk_eta = Limits::default();
        assert_eq!(metrics_for(&cfg).len(), 5);
    }

    /// Every metric on: swap and load limited, two mounts (no forecasts: see
    /// `a_time_left_is_judged_lower_is_worse`).
    fn judged_config() -> Config {
        let mut cfg = Config::default();
        cfg.thresholds.disk_eta = Limits::default();
        cfg.thresholds.inode_eta = Limits::default();
        let limits = |warn, crit| Limits { warn, crit };
        cfg.thresholds.swap = limits(Some(50.0), Some(80.0));
        cfg.thresholds.load = limits(Some(1.0), None);
        cfg.disk.mounts = vec!["/".into(), "/data".into()];
        cfg
    }

    /// The host's sources read (or all failed), and the two mounts' figures.
    fn fill(r: &mut Reading, read: bool, disks: [Option<(u32, Option<u32>)>; 2]) {
        use crate::error::Error;
        use crate::sample::DiskUsage;
        let failed = || Error::io("read", "/x", std::io::Error::from_raw_os_error(libc::EIO));
        r.host.stat = if read {
            Result::Ok(Default::default())
        } else {
            Err(failed())
        };
        r.host.mem = if read {
            Result::Ok(Default::default())
        } else {
            Err(failed())
        };
        r.host.load = if read {
            Result::Ok(Default::default())
        } else {
            Err(failed())
        };
        r.swap_percent = read.then_some(0.0);
        for (d, figures) in r.disks.iter_mut().zip(disks) {
            d.usage = match figures {
                Some((used, inodes)) => Result::Ok(DiskUsage {
                    used_percent: used,
                    inode_percent: inodes,
                    ..DiskUsage::default()
                }),
                None => Err(failed()),
            };
        }
    }

    /// `label=value level, ...` (`U` for no value).
    fn judged(metrics: &[Metric]) -> String {
        let one = |m: &Metric| match m.value {
            Some(v) => format!("{}={v} {}", m.label, m.raw.name()),
            None => format!("{}=U {}", m.label, m.raw.name()),
        };
        metrics.iter().map(one).collect::<Vec<_>>().join(", ")
    }
}
