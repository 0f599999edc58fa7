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
mod tests;
