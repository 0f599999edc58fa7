//! Judging: readings → a level per metric (OK / WARNING / CRITICAL / UNKNOWN), and
//! `for_cycles` hysteresis that turns levels into `alert` / `recovered` transitions.
//! Pure: no I/O, no clock; the loop and `--once` feed it readings and persist its
//! counters in state_dir, so cron runs count as consecutive cycles.

use crate::config::{Config, Limits};
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
    fn badness(self) -> u8 {
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Cpu,
    Mem,
    Swap,
    Load,
    Disk,
    Inode,
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
        }
    }

    /// Decimals shown for values of this kind.
    pub fn decimals(self) -> usize {
        match self {
            Kind::Cpu | Kind::Mem | Kind::Swap => 1,
            Kind::Load => 2,
            Kind::Disk | Kind::Inode => 0,
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
                format!("{}_{}", kind.name(), mount_label(m)),
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
                self.raw = level(v, self.limits);
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

/// `/` → `root`, `/var/log` → `var_log`: a label usable in perfdata and logfmt keys.
pub fn mount_label(m: &std::path::Path) -> String {
    let s = m.to_string_lossy();
    let t = s.trim_matches('/');
    if t.is_empty() {
        return "root".to_string();
    }
    t.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// The metrics a config asks for, in a fixed order: cpu, mem, swap (if limited), load
/// (if limited), then disk and inode for each mount.
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
    out
}

/// Whether a process that is not root may keep the file capabilities it was started
/// with, given the config it runs: only when that file is root's and nobody else can
/// write it, so the capabilities act on root's rules and never on a file that group
/// aion (or a compromised aion) wrote. Built-in defaults are safe.
pub fn may_keep_capabilities(
    uid: u32,
    file: Option<&std::path::Path>,
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    let Some(path) = file else { return Ok(()) };
    match owner {
        _ if uid == 0 => Ok(()),
        Some((0, mode)) if mode & 0o022 == 0 => Ok(()),
        Some((0, mode)) => Err(format!(
            "{} is writable by group or others (mode {:o})",
            path.display(),
            mode & 0o7777
        )),
        Some((o, _)) => Err(format!("{} is owned by uid {o}, not root", path.display())),
        None => Err(format!("the owner of {} is unknown", path.display())),
    }
}

/// Capability bits (linux/capability.h).
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;

/// The capabilities the configured features use: the effective set a non-root
/// agent keeps (the others stay permitted but off, until a reload needs them).
pub fn needed_capabilities(cfg: &Config) -> u64 {
    let bit = |b: u32| 1u64 << b;
    let mut m = 0;
    if cfg.reaper.enabled && !cfg.reap.is_empty() {
        m |= bit(CAP_KILL);
    }
    if !cfg.cleanup.is_empty() {
        m |= bit(CAP_DAC_OVERRIDE) | bit(CAP_FOWNER) | bit(CAP_DAC_READ_SEARCH);
    }
    if cfg.audit.bash_history {
        m |= bit(CAP_DAC_READ_SEARCH);
    }
    if cfg.tasks.iter().any(|t| t.user.is_some()) {
        m |= bit(CAP_SETUID) | bit(CAP_SETGID);
    }
    m
}

/// For a process that is not root, which configured features its missing
/// capabilities limit, and how: what `event=start` reports as `limited=`.
pub fn privilege_limits(uid: u32, caps: u64, cfg: &Config) -> Vec<String> {
    if uid == 0 {
        return Vec::new();
    }
    let missing = |bits: &[(u32, &'static str)]| -> Vec<&'static str> {
        bits.iter()
            .filter(|(b, _)| caps >> b & 1 == 0)
            .map(|(_, n)| *n)
            .collect()
    };
    let mut out = Vec::new();
    if cfg.reaper.enabled && !cfg.reap.is_empty() {
        let m = missing(&[(CAP_KILL, "cap_kill")]);
        if !m.is_empty() {
            out.push(format!(
                "reaper: no {}, signals only uid {uid}'s processes",
                m.join(",")
            ));
        }
    }
    for t in &cfg.tasks {
        let Some(user) = &t.user else { continue };
        let m = missing(&[(CAP_SETUID, "cap_setuid"), (CAP_SETGID, "cap_setgid")]);
        if !m.is_empty() {
            out.push(format!(
                "task {}: no {}, cannot run as {user}",
                t.name,
                m.join(",")
            ));
        }
    }
    if cfg.audit.bash_history {
        let m = missing(&[(CAP_DAC_READ_SEARCH, "cap_dac_read_search")]);
        if !m.is_empty() {
            out.push(format!(
                "audit: no {}, reads only uid {uid}'s history",
                m.join(",")
            ));
        }
    }
    if !cfg.cleanup.is_empty() {
        let m = missing(&[
            (CAP_DAC_OVERRIDE, "cap_dac_override"),
            (CAP_FOWNER, "cap_fowner"),
            (CAP_DAC_READ_SEARCH, "cap_dac_read_search"),
        ]);
        if !m.is_empty() {
            out.push(format!(
                "cleanup: no {}, reads and removes only what uid {uid} may",
                m.join(",")
            ));
        }
    }
    out
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
    fn capabilities_only_with_a_config_only_root_can_write() {
        let p = Some(std::path::Path::new("/etc/aion/a.ini"));
        assert!(may_keep_capabilities(100, p, Some((0, 0o100640))).is_ok());
        assert!(may_keep_capabilities(100, None, None).is_ok());
        assert!(may_keep_capabilities(0, p, Some((100, 0o100666))).is_ok());
        assert_eq!(
            may_keep_capabilities(100, p, Some((100, 0o100600))),
            Err("/etc/aion/a.ini is owned by uid 100, not root".to_string())
        );
        assert_eq!(
            may_keep_capabilities(100, p, Some((0, 0o100664))),
            Err("/etc/aion/a.ini is writable by group or others (mode 664)".to_string())
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
}
