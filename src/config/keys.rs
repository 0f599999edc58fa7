//! Every key of the fixed sections, each declared once: field and type, default as
//! a user writes it, kind of value, and what it means (see `table` for what is
//! made of them). The rule sections are in `rules`.

use super::kinds::{
    AbsPath, BytesOver0, Choice, Command, Flag, Globs, Int, Load, LogLevel, MaybeCommand, Mounts,
    Optional, Percent, Required, Seconds, SyslogFacility, Time, TimeIn, TimeOver0, Words,
};
use super::table::{Kind, Written, initial, key, key_name, section};
use super::{Action, AlertLevel, Facility, LogFormat, MemScope, Scope, value};
use crate::glob::Glob;
use crate::log::Level;
use std::path::PathBuf;
use std::time::Duration;

section! {
    /// `[agent]`: how the agent runs, where it logs and keeps its state.
    pub struct Agent in [agent] {
        interval: Duration = "10s", TimeIn("10ms", "24h"),
            "Time between cycles, 10ms to 24h (a slow cycle skips, it never bursts).";
        log_file: Option<PathBuf> = "/var/log/aion/system_agent.log", Optional(AbsPath),
            "One line per event, appended; reopened on SIGHUP. Empty: stderr.";
        log_level: Level = "info", LogLevel,
            "debug, info, warn or error (--log-level overrides it).";
        log_format: LogFormat = "logfmt",
            Choice { what: "log format", names: &LogFormat::ALL },
            "logfmt, or json (JSON Lines, the same keys) for log_file and the audit log; \
             syslog gets logfmt.";
        syslog: bool = "yes", Flag,
            "Send every line to syslog as well (severity from the level).";
        syslog_socket: PathBuf = "/dev/log", AbsPath,
            "The syslog daemon's Unix socket; while missing, retried every 5 s.";
        syslog_facility: Facility = "daemon", SyslogFacility,
            "The syslog facility: kern user mail daemon auth syslog lpr news uucp cron \
             authpriv ftp local0..local7.";
        state_dir: PathBuf = "/var/lib/aion/system_agent", AbsPath,
            "Lock, hysteresis counters, CPU counters for --once; created with mode 0700.";
        metrics_file: Option<PathBuf> = "", Optional(AbsPath),
            "Prometheus text file (node_exporter's textfile collector), rewritten each \
             cycle. Empty: off.";
        status_file: Option<PathBuf> = "/var/lib/aion/system_agent.status", Optional(AbsPath),
            "The service's last status line, rewritten each cycle (mode 0644) for \
             --status, which NRPE or cron may run as another user. Empty: off.";
        dry_run: bool = "no", Flag,
            "Decide and log every action with dry_run=yes, perform none (--dry-run).";
        top: u32 = "5", Int(0, 100),
            "How many processes the top events list (by CPU% and by RSS) while CPU or \
             memory is at warn, 0 to 100.";
    }
}

section! {
    /// `[paths]`: where the host's files are (a chroot may see them elsewhere).
    pub struct Paths in [paths] {
        proc: PathBuf = "/proc", AbsPath,
            "Where /proc is mounted; the reaper signals only when it is the agent's own.";
        passwd: PathBuf = "/etc/passwd", AbsPath,
            "The user database, parsed directly (no NSS), for user names in events.";
        group: PathBuf = "/etc/group", AbsPath,
            "Group memberships, parsed directly (no NSS), for the groups of a task's user.";
        cgroup: PathBuf = "/sys/fs/cgroup", AbsPath,
            "Where the cgroup filesystems are mounted (v2, or v1 controllers and v2 in \
             unified/), to find the agent's own memory limit.";
    }
}

section! {
    /// `[thresholds]`: the warn and crit level of each metric; `None` is off.
    pub struct Thresholds in [thresholds] {
        limits {
            cpu = "80", "90", Required(Percent),
                "CPU busy time over the interval, percent of all CPUs.";
            mem = "85", "95", Required(Percent),
                "memory in use, (MemTotal - MemAvailable) / MemTotal, percent.";
            swap = "", "", Optional(Percent),
                "swap in use, percent. Empty: not judged.";
            load = "", "", Optional(Load),
                "the 1-minute load average divided by the number of CPUs. Empty: not judged.";
            disk = "85", "95", Required(Percent),
                "disk space in use per mount, percent, as df computes it.";
            inode = "90", "97", Required(Percent),
                "inodes in use per mount, percent.";
            disk_eta = "6h", "1h", Optional(Seconds),
                "the time until a mount's space runs out at the rate it has been filling \
                 (lower is worse). Empty: not judged.";
            inode_eta = "6h", "1h", Optional(Seconds),
                "the time until a mount's inodes run out at the rate they have been used \
                 (lower is worse). Empty: not judged.";
        }
        for_cycles: u32 = "3", Int(1, 1000),
            "Consecutive cycles (or --once runs) a level must hold before it counts, 1 to 1000.";
        mem_scope: MemScope = "auto", Choice { what: "memory scope", names: &MemScope::ALL },
            "auto: mem against the tighter of the host and the agent's cgroup memory limit; \
             host; or cgroup.";
    }
}

section! {
    /// `[disk]`: the mounts whose space and inodes are judged.
    pub struct Disk in [disk] {
        mounts: Vec<PathBuf> = "/", Mounts,
            "Mount points to watch (disk and inode use of each). Empty: no disk checks.";
        forecast_window: Duration = "30m", TimeIn("0s", "7d"),
            "The span of readings a disk-full forecast fits its rate to, up to 7d. 0: no \
             forecasts.";
        truncate_deleted: Vec<Glob> = "no", TruncateNames,
            "no, or names (globs) of processes whose deleted but open files may be \
             truncated to 0 while their mount is at disk_warn.";
    }
}

section! {
    /// `[reaper]`: the switch and the limits every `[reap.NAME]` rule shares.
    pub struct Reaper in [reaper] {
        enabled: bool = "no", Flag,
            "Act on the [reap.NAME] rules; off unless enabled.";
        grace: Duration = "10s", Time,
            "Between SIGTERM and SIGKILL for action = term.";
        protect: Vec<Glob> = "", Globs,
            "Process names (globs) never touched.";
        scope: Scope = "root", Choice { what: "scope", names: &Scope::ALL },
            "root: only processes whose root directory is the agent's; all: every process.";
    }
}

section! {
    /// `[relief]`: memory relief, one process stopped before memory runs out (see
    /// `features::relief`).
    pub struct Relief in [relief] {
        enabled: bool = "no", Flag,
            "Stop one process when memory runs short; off unless enabled.";
        mem_available_below: MemAmount = "5%", Amount,
            "Memory is short while MemAvailable is below this: a percentage of MemTotal \
             (a bare number is one) or a size such as 512M.";
        swap_free_below: Option<MemAmount> = "", Optional(Amount),
            "When set, memory is short only while free swap is below this as well (a \
             percentage of SwapTotal or a size; no swap counts as none free). Empty: swap \
             is not looked at.";
        psi_memory_full_above: Option<f64> = "10", Optional(Percent),
            "Memory is also short while PSI memory full avg10 is above this percentage, and \
             when the kernel's PSI trigger sees that share of full stall within 2 s. Empty: \
             off (and no trigger).";
        pick: Pick = "oom_score", Choice { what: "pick", names: &Pick::ALL },
            "oom_score: the highest /proc/PID/oom_score is chosen; rss: the largest resident \
             size.";
        prefer: Vec<Glob> = "", Globs,
            "Process names (globs) chosen first, while any of them is a candidate.";
        avoid: Vec<Glob> = "", Globs,
            "Process names (globs) chosen only when no other candidate is left.";
        users as "user": Vec<String> = "", Words,
            "User names whose processes may be chosen. Empty: any user but root.";
        action: Action = "term", Choice { what: "action", names: &Action::ALL },
            "term (SIGTERM, then SIGKILL after grace while memory is still short), kill, or \
             log (report only).";
        grace: Duration = "5s", Time,
            "Between SIGTERM and SIGKILL for action = term.";
        min_interval: Duration = "10s", Time,
            "At most one process is chosen per min_interval.";
        check_interval: Duration = "100ms", TimeIn("10ms", "10s"),
            "Without a PSI trigger, the longest time between two MemAvailable checks \
             between cycles, 10ms to 10s.";
    }
}

/// An amount of memory: a share of a total, or a size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MemAmount {
    Percent(f64),
    Bytes(u64),
}

impl MemAmount {
    /// In KiB (the unit of /proc/meminfo), a percentage taken of `total_kb`.
    pub fn kib(self, total_kb: u64) -> u64 {
        match self {
            MemAmount::Percent(p) => (total_kb as f64 * p / 100.0) as u64,
            MemAmount::Bytes(b) => b / 1024,
        }
    }
}

/// A `MemAmount` as written: a size when it ends in a unit letter (`512M`),
/// otherwise a percentage (`5%`, `5`).
pub struct Amount;

impl Kind<MemAmount> for Amount {
    fn read(&self, w: Written) -> Result<MemAmount, String> {
        let v = w.value;
        let sized = v.ends_with(|c: char| c.is_ascii_alphabetic());
        let amount = match sized {
            true => value::size(v).map(MemAmount::Bytes),
            false => value::percent(v).map(MemAmount::Percent),
        };
        amount.map_err(|_| {
            format!(
                "invalid amount \"{v}\" (expected a percentage such as 5% or a size such as 512M)"
            )
        })
    }

    fn print(&self, a: &MemAmount) -> String {
        match *a {
            MemAmount::Percent(p) => format!("{}%", value::fmt_number(p)),
            MemAmount::Bytes(b) => value::fmt_size(b),
        }
    }
}

/// How memory relief ranks the candidates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// The kernel's own badness, `/proc/PID/oom_score` (which `oom_score_adj` moves).
    OomScore,
    /// The resident set size.
    Rss,
}

impl Pick {
    pub const ALL: [(Pick, &'static str); 2] = [(Pick::OomScore, "oom_score"), (Pick::Rss, "rss")];
}

section! {
    /// `[audit]`: the shell-history trail.
    pub struct Audit in [audit] {
        bash_history: bool = "yes", Flag,
            "Log each command audited users append to ~/.bash_history (event=history).";
        users: Vec<String> = "all", Users,
            "all: root and every account with uid >= 1000 and a login shell; or a list.";
        log_file: Option<PathBuf> = "/var/log/aion/audit.log", Optional(AbsPath),
            "The audit trail, mode 0600. Empty: syslog only.";
        syslog_facility: Facility = "authpriv", SyslogFacility,
            "Syslog facility of the audit lines.";
        max_bytes: u64 = "1M", BytesOver0,
            "Read per history file per cycle, at most.";
    }
}

section! {
    /// `[alert]`: who hears about `alert` and `recovered` events, and how often.
    pub struct Alert in [alert] {
        email: Vec<String> = "", Addresses,
            "Addresses alerts are mailed to, separated by spaces or commas. Empty: no mail.";
        from: Option<String> = "", Optional(Address),
            "The sender. Empty: system-agent@HOSTNAME.";
        sendmail: Vec<String> = "/usr/sbin/sendmail -t -i", Command,
            "The mailer, given the message on stdin (words as sh splits them, no shell).";
        command: Vec<String> = "", MaybeCommand,
            "A program given each alert in SA_* variables. Empty: none.";
        min_level: AlertLevel = "critical", Choice { what: "level", names: &AlertLevel::ALL },
            "warning or critical: the least level that is told.";
        cooldown: Duration = "1h", Time,
            "Per metric: a reminder this often while it holds; never the same alert sooner.";
        timeout: Duration = "30s", TimeOver0,
            "How long the mailer or alert command may run before it is ended.";
    }
}

/// `all` (empty: root and every account with uid >= 1000 and a login shell) or a
/// list of user names; empty is an error.
pub struct Users;

impl Kind<Vec<String>> for Users {
    fn read(&self, w: Written) -> Result<Vec<String>, String> {
        match w.value.trim() {
            "all" => Ok(Vec::new()),
            "" => Err("a list of users, or all, is required".to_string()),
            _ => Ok(value::list(w.value)),
        }
    }

    fn print(&self, users: &Vec<String>) -> String {
        if users.is_empty() {
            "all".to_string()
        } else {
            users.join(" ")
        }
    }
}

/// `no` (or empty): never; or process names (globs) whose deleted but open files
/// may be truncated.
pub struct TruncateNames;

impl Kind<Vec<Glob>> for TruncateNames {
    fn read(&self, w: Written) -> Result<Vec<Glob>, String> {
        match w.value.trim() {
            "no" | "" => Ok(Vec::new()),
            "yes" => Err("invalid value \"yes\" (expected no, or process names)".to_string()),
            _ => Globs.read(w),
        }
    }

    fn print(&self, names: &Vec<Glob>) -> String {
        if names.is_empty() {
            "no".to_string()
        } else {
            Globs.print(names)
        }
    }
}

/// A plain mail address (`is_address`).
pub struct Address;

impl Kind<String> for Address {
    fn read(&self, w: Written) -> Result<String, String> {
        match w.value {
            v if is_address(v) => Ok(v.to_string()),
            v => Err(format!("invalid address \"{v}\" (expected user@host)")),
        }
    }

    fn print(&self, a: &String) -> String {
        a.clone()
    }
}

/// Mail addresses separated by spaces or commas.
pub struct Addresses;

impl Kind<Vec<String>> for Addresses {
    fn read(&self, w: Written) -> Result<Vec<String>, String> {
        let list = value::list(w.value);
        match list.iter().find(|m| !is_address(m)) {
            Some(bad) => Err(format!("invalid address \"{bad}\" (expected user@host)")),
            None => Ok(list),
        }
    }

    fn print(&self, list: &Vec<String>) -> String {
        list.join(" ")
    }
}

/// A plain mail address: `local@domain`, printable ASCII, no spaces, commas,
/// angle brackets or quotes (nothing that could end or extend a header).
pub fn is_address(s: &str) -> bool {
    let ok = |c: char| {
        c.is_ascii_graphic() && !matches!(c, ',' | '<' | '>' | '"' | '(' | ')' | ';' | ':' | '\\')
    };
    let mut parts = s.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(l), Some(d), None) => !l.is_empty() && !d.is_empty() && s.chars().all(ok),
        _ => false,
    }
}
