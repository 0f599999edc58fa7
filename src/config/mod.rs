//! The configuration: INI text → typed, validated values with defaults filled in
//! (SPEC §3). Every error names file, line, `section.key` and the bad value, and all
//! of them are reported at once. The effective configuration can be printed back as
//! INI (`--check-config`), which is also how a reload says what changed.

mod source;
pub mod value;

use crate::files;
use crate::glob::Glob;
use crate::log::Level;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use source::{RawEntry, RawSection};

/// Where the config is read from when `-c` is not given. A missing default file means
/// built-in defaults; a missing `-c` file is an error.
pub const DEFAULT_PATH: &str = "/etc/aion/system_agent.ini";

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from; `None` for built-in defaults.
    pub file: Option<PathBuf>,
    /// Owner uid and mode of that file as it was read (from the same descriptor), so
    /// the agent can refuse to use capabilities on a config someone else could write.
    pub file_owner: Option<(u32, u32)>,
    pub agent: Agent,
    pub paths: Paths,
    pub thresholds: Thresholds,
    pub disk: Disk,
    pub cleanup: Vec<CleanupRule>,
    pub reaper: Reaper,
    pub reap: Vec<ReapRule>,
    pub tasks: Vec<Task>,
    pub audit: Audit,
    pub alert: Alert,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Agent {
    pub interval: Duration,
    /// `None`: log to stderr.
    pub log_file: Option<PathBuf>,
    pub log_level: Level,
    pub syslog: bool,
    pub syslog_socket: PathBuf,
    pub syslog_facility: Facility,
    pub state_dir: PathBuf,
    pub metrics_file: Option<PathBuf>,
    pub dry_run: bool,
    pub top: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Paths {
    pub proc: PathBuf,
    pub passwd: PathBuf,
    /// Group memberships, for the supplementary groups of a task's `user`.
    pub group: PathBuf,
}

/// A warn and a crit limit; `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    pub warn: Option<f64>,
    pub crit: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Thresholds {
    pub cpu: Limits,
    pub mem: Limits,
    pub swap: Limits,
    /// Per CPU: load1 / number of CPUs is compared with these.
    pub load: Limits,
    pub disk: Limits,
    pub inode: Limits,
    pub for_cycles: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Disk {
    pub mounts: Vec<PathBuf>,
}

/// `[cleanup.NAME]`: which old files to remove, where, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanupRule {
    pub name: String,
    pub paths: Vec<PathBuf>,
    /// Globs on the file name.
    pub matches: Vec<Glob>,
    /// By modification time.
    pub older_than: Duration,
    pub when: When,
    pub recursive: bool,
    pub remove_empty_dirs: bool,
    /// Extra name globs never removed (beside the always-spared names).
    pub protect: Vec<Glob>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Only while the filesystem holding the path is at or above `disk_warn`,
    /// oldest first, stopping once it is below.
    DiskHigh,
    /// Every candidate, every cycle.
    Always,
}

/// `[reaper]`: the switch and the limits every `[reap.NAME]` rule shares.
#[derive(Debug, Clone, PartialEq)]
pub struct Reaper {
    pub enabled: bool,
    /// Between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Process names (globs) never touched.
    pub protect: Vec<Glob>,
    pub scope: Scope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only processes whose root directory is the agent's own.
    Root,
    /// Every process in /proc.
    All,
}

/// `[task.NAME]`: a maintenance command run when due and the CPU is idle.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub name: String,
    /// Absolute path, then arguments (words as `value::words` splits them; no shell).
    pub command: Vec<String>,
    /// Since the last success.
    pub every: Duration,
    /// CPU% below which a cycle counts as idle.
    pub when_cpu_below: f64,
    pub idle_cycles: u32,
    pub timeout: Duration,
    pub nice: i32,
    /// Run as this user (from `[paths] passwd`, with the groups `[paths] group`
    /// lists it in); `None`: the agent's user.
    pub user: Option<String>,
    /// The working directory (absolute); `/` by default, never the agent's own.
    pub cwd: PathBuf,
    /// The file mode creation mask; `022` by default, never the agent's own.
    pub umask: u32,
}

/// `[audit]`: the shell-history trail.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    pub bash_history: bool,
    /// Empty: root and every account with uid >= 1000 and a login shell.
    pub users: Vec<String>,
    /// `None`: syslog only.
    pub log_file: Option<PathBuf>,
    pub syslog_facility: Facility,
    /// Read per history file per cycle, at most.
    pub max_bytes: u64,
}

/// `[alert]`: who hears about `alert` and `recovered` events, and how often.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    pub email: Vec<String>,
    /// `None`: `system-agent@HOSTNAME`.
    pub from: Option<String>,
    pub sendmail: Vec<String>,
    /// A program given the alert in `SA_*` variables; empty: none.
    pub command: Vec<String>,
    /// `Warning` or `Critical`.
    pub min_level: AlertLevel,
    pub cooldown: Duration,
    pub timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertLevel {
    Warning,
    Critical,
}

/// `[reap.NAME]`: which processes to stop, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct ReapRule {
    pub name: String,
    /// Globs on the process name (`comm`).
    pub matches: Vec<Glob>,
    /// A glob on the whole command line (arguments joined by spaces).
    pub cmdline: Option<Glob>,
    /// User names; empty: any user but root.
    pub users: Vec<String>,
    /// Process states; empty: any.
    pub states: Vec<ProcState>,
    /// Since the process started.
    pub older_than: Option<Duration>,
    /// How long it has been seen in its current state.
    pub in_state_for: Option<Duration>,
    /// CPU time used (user + system).
    pub cpu_over: Option<Duration>,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Running,
    Sleeping,
    DiskSleep,
    Stopped,
    Zombie,
}

impl ProcState {
    pub const ALL: [(ProcState, &'static str); 5] = [
        (ProcState::Running, "running"),
        (ProcState::Sleeping, "sleeping"),
        (ProcState::DiskSleep, "disk-sleep"),
        (ProcState::Stopped, "stopped"),
        (ProcState::Zombie, "zombie"),
    ];

    pub fn name(self) -> &'static str {
        ProcState::ALL
            .iter()
            .find(|(s, _)| *s == self)
            .map_or("?", |(_, n)| n)
    }

    /// The state of a `/proc/PID/stat` letter (`t`, traced, counts as stopped).
    pub fn of_letter(c: u8) -> Option<ProcState> {
        match c {
            b'R' => Some(ProcState::Running),
            b'S' => Some(ProcState::Sleeping),
            b'D' => Some(ProcState::DiskSleep),
            b'T' | b't' => Some(ProcState::Stopped),
            b'Z' => Some(ProcState::Zombie),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGTERM, then SIGKILL after `[reaper] grace`.
    Term,
    Kill,
    /// Report only.
    Log,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Term => "term",
            Action::Kill => "kill",
            Action::Log => "log",
        }
    }
}

/// A syslog facility by its name and its code (already shifted, as in `<PRI>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility {
    pub name: &'static str,
    pub code: u8,
}

const FACILITIES: [&str; 24] = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "audit",
    "alert",
    "clock_daemon",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
];

impl Facility {
    /// Accepts what the syslog crate accepts (`daemon`, `LOG_DAEMON`, any case).
    pub fn parse(v: &str) -> Result<Facility, String> {
        let f: syslog::Facility = v.parse().map_err(|()| {
            format!("invalid syslog facility \"{v}\" (expected e.g. daemon, authpriv, local0)")
        })?;
        let code = f as u8;
        let name = FACILITIES[(code >> 3) as usize % FACILITIES.len()];
        Ok(Facility { name, code })
    }
}

/// One problem in a config file. `line` 0 means the file as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: usize,
    /// `section.key`, `[section]`, or empty.
    pub key: String,
    pub message: String,
}

impl ConfigError {
    pub fn at(file: &Path, line: usize, key: &str, message: &str) -> ConfigError {
        ConfigError {
            file: file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.to_string(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", self.key)?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Default for Config {
    fn default() -> Config {
        let pct = |w, c| Limits {
            warn: Some(w),
            crit: Some(c),
        };
        Config {
            file: None,
            file_owner: None,
            agent: Agent {
                interval: Duration::from_secs(10),
                log_file: Some(PathBuf::from("/var/log/aion/system_agent.log")),
                log_level: Level::Info,
                syslog: true,
                syslog_socket: PathBuf::from("/dev/log"),
                syslog_facility: Facility {
                    name: "daemon",
                    code: 3 << 3,
                },
                state_dir: PathBuf::from("/var/lib/aion/system_agent"),
                metrics_file: None,
                dry_run: false,
                top: 5,
            },
            paths: Paths {
                proc: PathBuf::from("/proc"),
                passwd: PathBuf::from("/etc/passwd"),
                group: PathBuf::from("/etc/group"),
            },
            thresholds: Thresholds {
                cpu: pct(80.0, 90.0),
                mem: pct(85.0, 95.0),
                swap: Limits::default(),
                load: Limits::default(),
                disk: pct(85.0, 95.0),
                inode: pct(90.0, 97.0),
                for_cycles: 3,
            },
            disk: Disk {
                mounts: vec![PathBuf::from("/")],
            },
            cleanup: Vec::new(),
            reaper: Reaper {
                enabled: false,
                grace: Duration::from_secs(10),
                protect: Vec::new(),
                scope: Scope::Root,
            },
            reap: Vec::new(),
            tasks: Vec::new(),
            audit: Audit {
                bash_history: true,
                users: Vec::new(),
                log_file: Some(PathBuf::from("/var/log/aion/audit.log")),
                syslog_facility: Facility {
                    name: "authpriv",
                    code: 10 << 3,
                },
                max_bytes: 1 << 20,
            },
            alert: Alert {
                email: Vec::new(),
                from: None,
                sendmail: vec!["/usr/sbin/sendmail".into(), "-t".into(), "-i".into()],
                command: Vec::new(),
                min_level: AlertLevel::Critical,
                cooldown: Duration::from_secs(3600),
                timeout: Duration::from_secs(30),
            },
        }
    }
}

/// Every section and key this version knows, for "unknown key" hints and printing.
pub const SECTIONS: &[(&str, &[&str])] = &[
    (
        "agent",
        &[
            "interval",
            "log_file",
            "log_level",
            "syslog",
            "syslog_socket",
            "syslog_facility",
            "state_dir",
            "metrics_file",
            "dry_run",
            "top",
        ],
    ),
    ("paths", &["proc", "passwd", "group"]),
    (
        "thresholds",
        &[
            "cpu_warn",
            "cpu_crit",
            "mem_warn",
            "mem_crit",
            "swap_warn",
            "swap_crit",
            "load_warn",
            "load_crit",
            "disk_warn",
            "disk_crit",
            "inode_warn",
            "inode_crit",
            "for_cycles",
        ],
    ),
    ("disk", &["mounts"]),
    ("reaper", &["enabled", "grace", "protect", "scope"]),
    (
        "audit",
        &[
            "bash_history",
            "users",
            "log_file",
            "syslog_facility",
            "max_bytes",
        ],
    ),
    (
        "alert",
        &[
            "email",
            "from",
            "sendmail",
            "command",
            "min_level",
            "cooldown",
            "timeout",
        ],
    ),
];

/// Sections that come once per rule, as `[PREFIX.NAME]`, and their keys.
pub const RULE_SECTIONS: &[(&str, &[&str])] = &[
    (
        "cleanup",
        &[
            "paths",
            "match",
            "older_than",
            "when",
            "recursive",
            "remove_empty_dirs",
            "protect",
        ],
    ),
    (
        "task",
        &[
            "command",
            "every",
            "when_cpu_below",
            "idle_cycles",
            "timeout",
            "nice",
            "user",
            "cwd",
            "umask",
        ],
    ),
    (
        "reap",
        &[
            "match",
            "cmdline",
            "user",
            "state",
            "older_than",
            "in_state_for",
            "cpu_over",
            "action",
        ],
    ),
];

impl Config {
    /// Reads and validates `path`. With `must_exist` false, a missing file gives the
    /// built-in defaults (the default path on a host that has no config yet).
    ///
    /// The file is read by `files::read_config`: with the caller's own rights (no
    /// capability in effect), without blocking (a FIFO is refused, not waited on),
    /// only a regular file of at most 1 MiB; so no error can quote a file the
    /// caller could not read themselves.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, Vec<ConfigError>> {
        let mut bytes = Vec::new();
        let stat = match files::read_config(path, &mut bytes) {
            Ok(stat) => stat,
            Err(why) if why.is_missing() && !must_exist => return Ok(Config::default()),
            Err(why) => {
                let msg = format!("cannot read: {why}");
                return Err(vec![ConfigError::at(path, 0, "", &msg)]);
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => {
                let mut cfg = Config::parse(path, &text)?;
                cfg.file_owner = Some((stat.st_uid, stat.st_mode));
                Ok(cfg)
            }
            Err(e) => {
                let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
                let line = 1 + valid.iter().filter(|&&c| c == b'\n').count();
                Err(vec![ConfigError::at(path, line, "", "not valid UTF-8")])
            }
        }
    }

    /// Validates INI text; `file` is used in messages.
    pub fn parse(file: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
        let sections = source::parse(file, text)?;
        let mut cfg = Config {
            file: Some(file.to_path_buf()),
            ..Config::default()
        };
        let mut b = Builder {
            file,
            errors: Vec::new(),
        };
        b.check_duplicates(&sections);
        for s in &sections {
            match s.name.as_str() {
                "agent" => b.each(s, |b, e| b.agent(&mut cfg.agent, e)),
                "paths" => b.each(s, |b, e| b.paths(&mut cfg.paths, e)),
                "thresholds" => b.each(s, |b, e| b.thresholds(&mut cfg.thresholds, e)),
                "disk" => b.each(s, |b, e| b.disk(&mut cfg.disk, e)),
                "reaper" => b.each(s, |b, e| b.reaper(&mut cfg.reaper, e)),
                "audit" => b.each(s, |b, e| b.audit(&mut cfg.audit, e)),
                "alert" => b.each(s, |b, e| b.alert(&mut cfg.alert, e)),
                other => match other.split_once('.') {
                    Some(("cleanup", name)) => {
                        if let Some(rule) = b.cleanup_rule(s, name) {
                            cfg.cleanup.push(rule);
                        }
                    }
                    Some(("reap", name)) => {
                        if let Some(rule) = b.reap_rule(s, name) {
                            cfg.reap.push(rule);
                        }
                    }
                    Some(("task", name)) => {
                        if let Some(task) = b.task(s, name) {
                            cfg.tasks.push(task);
                        }
                    }
                    _ => b.unknown_section(s),
                },
            }
        }
        b.check_limits(&sections, &cfg.thresholds);
        // The checks run in passes; report in file order (stable, so same-line
        // errors keep their order).
        b.errors.sort_by_key(|e| e.line);
        if b.errors.is_empty() {
            Ok(cfg)
        } else {
            Err(b.errors)
        }
    }

    /// The effective configuration as (section, key, value), every key included.
    pub fn entries(&self) -> Vec<(String, &'static str, String)> {
        use value::{fmt_bool, fmt_duration, fmt_path};
        let a = &self.agent;
        let opt_path = |p: &Option<PathBuf>| p.as_deref().map(fmt_path).unwrap_or_default();
        let num = |v: Option<f64>| v.map(value::fmt_number).unwrap_or_default();
        let opt_dur = |d: Option<Duration>| d.map(fmt_duration).unwrap_or_default();
        let globs = |g: &[Glob]| g.iter().map(Glob::as_str).collect::<Vec<_>>().join(" ");
        let paths = |p: &[PathBuf]| p.iter().map(|p| fmt_path(p)).collect::<Vec<_>>().join(" ");
        let t = &self.thresholds;
        let r = &self.reaper;
        let mut out: Vec<(String, &'static str, String)> = Vec::new();
        let mut add = |section: &str, key: &'static str, value: String| {
            out.push((section.to_string(), key, value))
        };
        add("agent", "interval", fmt_duration(a.interval));
        add("agent", "log_file", opt_path(&a.log_file));
        add("agent", "log_level", a.log_level.name().to_string());
        add("agent", "syslog", fmt_bool(a.syslog));
        add("agent", "syslog_socket", fmt_path(&a.syslog_socket));
        add(
            "agent",
            "syslog_facility",
            a.syslog_facility.name.to_string(),
        );
        add("agent", "state_dir", fmt_path(&a.state_dir));
        add("agent", "metrics_file", opt_path(&a.metrics_file));
        add("agent", "dry_run", fmt_bool(a.dry_run));
        add("agent", "top", a.top.to_string());
        add("paths", "proc", fmt_path(&self.paths.proc));
        add("paths", "passwd", fmt_path(&self.paths.passwd));
        add("paths", "group", fmt_path(&self.paths.group));
        for (name, l) in [
            ("cpu", t.cpu),
            ("mem", t.mem),
            ("swap", t.swap),
            ("load", t.load),
            ("disk", t.disk),
            ("inode", t.inode),
        ] {
            let (warn, crit) = LIMIT_KEYS
                .iter()
                .find(|(n, _, _)| *n == name)
                .map(|(_, w, c)| (*w, *c))
                .unwrap_or(("", ""));
            add("thresholds", warn, num(l.warn));
            add("thresholds", crit, num(l.crit));
        }
        add("thresholds", "for_cycles", t.for_cycles.to_string());
        add("disk", "mounts", paths(&self.disk.mounts));
        add("reaper", "enabled", fmt_bool(r.enabled));
        add("reaper", "grace", fmt_duration(r.grace));
        add("reaper", "protect", globs(&r.protect));
        add(
            "reaper",
            "scope",
            if r.scope == Scope::Root {
                "root"
            } else {
                "all"
            }
            .to_string(),
        );
        let au = &self.audit;
        add("audit", "bash_history", fmt_bool(au.bash_history));
        add(
            "audit",
            "users",
            if au.users.is_empty() {
                "all".to_string()
            } else {
                au.users.join(" ")
            },
        );
        add("audit", "log_file", opt_path(&au.log_file));
        add(
            "audit",
            "syslog_facility",
            au.syslog_facility.name.to_string(),
        );
        add("audit", "max_bytes", value::fmt_size(au.max_bytes));
        let al = &self.alert;
        add("alert", "email", al.email.join(" "));
        add("alert", "from", al.from.clone().unwrap_or_default());
        add("alert", "sendmail", value::fmt_command(&al.sendmail));
        add("alert", "command", value::fmt_command(&al.command));
        add(
            "alert",
            "min_level",
            if al.min_level == AlertLevel::Warning {
                "warning"
            } else {
                "critical"
            }
            .to_string(),
        );
        add("alert", "cooldown", fmt_duration(al.cooldown));
        add("alert", "timeout", fmt_duration(al.timeout));
        for t in &self.tasks {
            let sec = format!("task.{}", t.name);
            add(&sec, "command", value::fmt_command(&t.command));
            add(&sec, "every", fmt_duration(t.every));
            add(&sec, "when_cpu_below", value::fmt_number(t.when_cpu_below));
            add(&sec, "idle_cycles", t.idle_cycles.to_string());
            add(&sec, "timeout", fmt_duration(t.timeout));
            add(&sec, "nice", t.nice.to_string());
            add(&sec, "user", t.user.clone().unwrap_or_default());
            add(&sec, "cwd", fmt_path(&t.cwd));
            add(&sec, "umask", format!("{:03o}", t.umask));
        }
        for c in &self.cleanup {
            let sec = format!("cleanup.{}", c.name);
            add(&sec, "paths", paths(&c.paths));
            add(&sec, "match", globs(&c.matches));
            add(&sec, "older_than", fmt_duration(c.older_than));
            add(
                &sec,
                "when",
                if c.when == When::Always {
                    "always"
                } else {
                    "disk_high"
                }
                .to_string(),
            );
            add(&sec, "recursive", fmt_bool(c.recursive));
            add(&sec, "remove_empty_dirs", fmt_bool(c.remove_empty_dirs));
            add(&sec, "protect", globs(&c.protect));
        }
        for p in &self.reap {
            let sec = format!("reap.{}", p.name);
            add(&sec, "match", globs(&p.matches));
            add(
                &sec,
                "cmdline",
                p.cmdline
                    .as_ref()
                    .map(|g| g.as_str().to_string())
                    .unwrap_or_default(),
            );
            add(&sec, "user", p.users.join(" "));
            add(
                &sec,
                "state",
                p.states
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            add(&sec, "older_than", opt_dur(p.older_than));
            add(&sec, "in_state_for", opt_dur(p.in_state_for));
            add(&sec, "cpu_over", opt_dur(p.cpu_over));
            add(&sec, "action", p.action.name().to_string());
        }
        out
    }

    /// The effective configuration as INI text that `Config::parse` accepts.
    pub fn to_ini(&self) -> String {
        let mut out = String::new();
        let mut current = String::new();
        for (section, key, value) in self.entries() {
            if section != current {
                if !current.is_empty() {
                    out.push('\n');
                }
                out.push_str(&format!("[{section}]\n"));
                current = section;
            }
            if value.is_empty() {
                out.push_str(&format!("{key} =\n"));
            } else if needs_quotes(&value) && !is_command(&current, key) {
                out.push_str(&format!("{key} = \"{value}\"\n"));
            } else {
                out.push_str(&format!("{key} = {value}\n"));
            }
        }
        out
    }

    /// `section.key` of every setting that differs from `other` (or that only one of
    /// them has, as for an added or removed rule), in file order.
    pub fn changed_keys(&self, other: &Config) -> Vec<String> {
        let mine = self.entries();
        let theirs = other.entries();
        let find = |list: &[(String, &str, String)], s: &str, k: &str| {
            list.iter()
                .find(|(s2, k2, _)| s2 == s && *k2 == k)
                .map(|e| e.2.clone())
        };
        let mut out: Vec<String> = mine
            .iter()
            .filter(|(s, k, v)| find(&theirs, s, k).as_ref() != Some(v))
            .map(|(s, k, _)| format!("{s}.{k}"))
            .collect();
        out.extend(
            theirs
                .iter()
                .filter(|(s, k, _)| find(&mine, s, k).is_none())
                .map(|(s, k, _)| format!("{s}.{k}")),
        );
        out
    }
}

/// The threshold keys of each metric, in file order.
const LIMIT_KEYS: [(&str, &str, &str); 6] = [
    ("cpu", "cpu_warn", "cpu_crit"),
    ("mem", "mem_warn", "mem_crit"),
    ("swap", "swap_warn", "swap_crit"),
    ("load", "load_warn", "load_crit"),
    ("disk", "disk_warn", "disk_crit"),
    ("inode", "inode_warn", "inode_crit"),
];

/// Collects errors while typed values are filled in.
struct Builder<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Builder<'_> {
    fn error(&mut self, line: usize, key: &str, message: &str) {
        self.errors
            .push(ConfigError::at(self.file, line, key, message));
    }

    fn each(
        &mut self,
        s: &RawSection,
        mut f: impl FnMut(&mut Self, &RawEntry) -> Result<(), String>,
    ) {
        for e in &s.entries {
            if let Err(msg) = f(self, e) {
                self.error(e.line, &format!("{}.{}", s.name, e.key), &msg);
            }
        }
    }

    /// A repeated section or key is an error: which one would win is a guess.
    fn check_duplicates(&mut self, sections: &[RawSection]) {
        let mut seen_sections: Vec<(&str, usize)> = Vec::new();
        let mut seen_keys: Vec<(&str, &str, usize)> = Vec::new();
        for s in sections {
            if let Some(&(_, first)) = seen_sections.iter().find(|(n, _)| *n == s.name) {
                self.error(
                    s.line,
                    &format!("[{}]", s.name),
                    &format!("section repeated (first on line {first})"),
                );
            } else {
                seen_sections.push((&s.name, s.line));
            }
            for e in &s.entries {
                if let Some(&(_, _, first)) = seen_keys
                    .iter()
                    .find(|(sn, k, _)| *sn == s.name && *k == e.key)
                {
                    self.error(
                        e.line,
                        &format!("{}.{}", s.name, e.key),
                        &format!("key repeated (first on line {first})"),
                    );
                } else {
                    seen_keys.push((&s.name, &e.key, e.line));
                }
            }
        }
    }

    fn agent(&mut self, a: &mut Agent, e: &RawEntry) -> Result<(), String> {
        let v = e.value.as_str();
        match e.key.as_str() {
            "interval" => {
                let d = value::duration(v)?;
                if d < Duration::from_millis(10) || d > Duration::from_secs(86_400) {
                    return Err(format!(
                        "interval \"{v}\" out of range (expected 10ms to 24h)"
                    ));
                }
                a.interval = d;
            }
            "log_file" => a.log_file = value::optional_path(v)?,
            "log_level" => a.log_level = Level::parse(v)?,
            "syslog" => a.syslog = value::boolean(v)?,
            "syslog_socket" => a.syslog_socket = value::path(v)?,
            "syslog_facility" => a.syslog_facility = Facility::parse(v)?,
            "state_dir" => a.state_dir = value::path(v)?,
            "metrics_file" => a.metrics_file = value::optional_path(v)?,
            "dry_run" => a.dry_run = value::boolean(v)?,
            "top" => a.top = value::integer(v, 0, 100)? as u32,
            other => return Err(unknown_key("agent", other)),
        }
        Ok(())
    }

    fn paths(&mut self, p: &mut Paths, e: &RawEntry) -> Result<(), String> {
        match e.key.as_str() {
            "proc" => p.proc = value::path(&e.value)?,
            "passwd" => p.passwd = value::path(&e.value)?,
            "group" => p.group = value::path(&e.value)?,
            other => return Err(unknown_key("paths", other)),
        }
        Ok(())
    }

    fn thresholds(&mut self, t: &mut Thresholds, e: &RawEntry) -> Result<(), String> {
        let v = e.value.as_str();
        let pct = || value::percent(v).map(Some);
        // swap and load may be left empty to turn them off.
        let optional = |f: fn(&str) -> Result<f64, String>| {
            if v.is_empty() {
                Ok(None)
            } else {
                f(v).map(Some)
            }
        };
        match e.key.as_str() {
            "cpu_warn" => t.cpu.warn = pct()?,
            "cpu_crit" => t.cpu.crit = pct()?,
            "mem_warn" => t.mem.warn = pct()?,
            "mem_crit" => t.mem.crit = pct()?,
            "swap_warn" => t.swap.warn = optional(value::percent)?,
            "swap_crit" => t.swap.crit = optional(value::percent)?,
            "load_warn" => t.load.warn = optional(value::load)?,
            "load_crit" => t.load.crit = optional(value::load)?,
            "disk_warn" => t.disk.warn = pct()?,
            "disk_crit" => t.disk.crit = pct()?,
            "inode_warn" => t.inode.warn = pct()?,
            "inode_crit" => t.inode.crit = pct()?,
            "for_cycles" => t.for_cycles = value::integer(v, 1, 1000)? as u32,
            other => return Err(unknown_key("thresholds", other)),
        }
        Ok(())
    }

    fn disk(&mut self, d: &mut Disk, e: &RawEntry) -> Result<(), String> {
        match e.key.as_str() {
            "mounts" => {
                let mut mounts = Vec::new();
                for m in value::list(&e.value) {
                    mounts.push(value::path(&m)?);
                }
                d.mounts = mounts;
            }
            other => return Err(unknown_key("disk", other)),
        }
        Ok(())
    }

    fn unknown_section(&mut self, s: &RawSection) {
        let name = s.name.as_str();
        let rules = RULE_SECTIONS.iter().map(|(p, _)| *p);
        let msg = if rules.clone().any(|p| p == name) {
            format!("unknown section (rules need a name: [{name}.NAME])")
        } else {
            let known = SECTIONS
                .iter()
                .map(|(n, _)| n.to_string())
                .chain(rules.map(|p| format!("{p}.NAME")));
            let known: Vec<String> = known.collect();
            match value::nearest(name, known.iter().map(String::as_str)) {
                Some(n) => format!("unknown section (did you mean [{n}]?)"),
                None => "unknown section".to_string(),
            }
        };
        self.error(s.line, &format!("[{name}]"), &msg);
    }

    /// A rule's name: letters, digits, `_`, `-`, `.`; it appears in events.
    fn rule_name(&mut self, s: &RawSection, name: &str) -> bool {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c));
        if !ok {
            let msg = "a rule name needs letters, digits, '_', '-' or '.'";
            self.error(s.line, &format!("[{}]", s.name), msg);
        }
        ok
    }

    fn reaper(&mut self, r: &mut Reaper, e: &RawEntry) -> Result<(), String> {
        let v = e.value.as_str();
        match e.key.as_str() {
            "enabled" => r.enabled = value::boolean(v)?,
            "grace" => r.grace = value::duration(v)?,
            "protect" => r.protect = value::list(v).iter().map(|g| Glob::new(g)).collect(),
            "scope" => {
                r.scope = match v {
                    "root" => Scope::Root,
                    "all" => Scope::All,
                    _ => return Err(format!("invalid scope \"{v}\" (expected root or all)")),
                }
            }
            other => return Err(unknown_key("reaper", other)),
        }
        Ok(())
    }

    fn task(&mut self, s: &RawSection, name: &str) -> Option<Task> {
        if !self.rule_name(s, name) {
            return None;
        }
        let mut t = Task {
            name: name.to_string(),
            command: Vec::new(),
            every: Duration::from_secs(86_400),
            when_cpu_below: 20.0,
            idle_cycles: 3,
            timeout: Duration::from_secs(1800),
            nice: 10,
            user: None,
            cwd: PathBuf::from("/"),
            umask: crate::child::DEFAULT_UMASK,
        };
        let before = self.errors.len();
        self.each(s, |_, e| {
            let v = e.value.as_str();
            match e.key.as_str() {
                "command" => t.command = command(&e.raw)?,
                "every" => t.every = value::duration(v)?,
                "when_cpu_below" => t.when_cpu_below = value::percent(v)?,
                "idle_cycles" => t.idle_cycles = value::integer(v, 0, 10_000)? as u32,
                "timeout" => t.timeout = positive(value::duration(v)?, v)?,
                "nice" => t.nice = nice(v)?,
                "user" => t.user = (!v.is_empty()).then(|| v.to_string()),
                "cwd" => t.cwd = value::path(v)?,
                "umask" => t.umask = umask(v)?,
                other => return Err(unknown_key("task", other)),
            }
            Ok(())
        });
        if t.command.is_empty() && self.errors.len() == before {
            self.error(
                s.line,
                &format!("{}.command", s.name),
                "a task needs a command",
            );
        }
        (self.errors.len() == before).then_some(t)
    }

    fn audit(&mut self, a: &mut Audit, e: &RawEntry) -> Result<(), String> {
        let v = e.value.as_str();
        match e.key.as_str() {
            "bash_history" => a.bash_history = value::boolean(v)?,
            "users" => {
                a.users = match v.trim() {
                    "all" => Vec::new(),
                    "" => return Err("a list of users, or all, is required".to_string()),
                    _ => value::list(v),
                }
            }
            "log_file" => a.log_file = value::optional_path(v)?,
            "syslog_facility" => a.syslog_facility = Facility::parse(v)?,
            "max_bytes" => {
                let n = value::size(v)?;
                if n == 0 {
                    return Err(format!("invalid size \"{v}\" (must be more than 0)"));
                }
                a.max_bytes = n;
            }
            other => return Err(unknown_key("audit", other)),
        }
        Ok(())
    }

    fn alert(&mut self, a: &mut Alert, e: &RawEntry) -> Result<(), String> {
        let v = e.value.as_str();
        match e.key.as_str() {
            "email" => {
                let list = value::list(v);
                if let Some(bad) = list.iter().find(|m| !is_address(m)) {
                    return Err(format!("invalid address \"{bad}\" (expected user@host)"));
                }
                a.email = list;
            }
            "from" => {
                a.from = match v {
                    "" => None,
                    _ if is_address(v) => Some(v.to_string()),
                    _ => return Err(format!("invalid address \"{v}\" (expected user@host)")),
                }
            }
            "sendmail" => a.sendmail = command(&e.raw)?,
            "command" => {
                a.command = if v.is_empty() {
                    Vec::new()
                } else {
                    command(&e.raw)?
                }
            }
            "min_level" => {
                a.min_level = match v {
                    "warning" => AlertLevel::Warning,
                    "critical" => AlertLevel::Critical,
                    _ => {
                        return Err(format!(
                            "invalid level \"{v}\" (expected warning or critical)"
                        ));
                    }
                }
            }
            "cooldown" => a.cooldown = value::duration(v)?,
            "timeout" => a.timeout = positive(value::duration(v)?, v)?,
            other => return Err(unknown_key("alert", other)),
        }
        Ok(())
    }

    fn cleanup_rule(&mut self, s: &RawSection, name: &str) -> Option<CleanupRule> {
        if !self.rule_name(s, name) {
            return None;
        }
        let mut r = CleanupRule {
            name: name.to_string(),
            paths: Vec::new(),
            matches: vec![Glob::new("*")],
            older_than: Duration::from_secs(7 * 86_400),
            when: When::DiskHigh,
            recursive: false,
            remove_empty_dirs: false,
            protect: Vec::new(),
        };
        let before = self.errors.len();
        self.each(s, |_, e| {
            let v = e.value.as_str();
            match e.key.as_str() {
                "paths" => {
                    let mut paths = Vec::new();
                    for p in value::list(v) {
                        let p = value::path(&p)?;
                        if p == Path::new("/") {
                            return Err(
                                "refusing to clean / (name the directories to clean)".to_string()
                            );
                        }
                        paths.push(p);
                    }
                    r.paths = paths;
                }
                "match" => r.matches = globs(v)?,
                "older_than" => r.older_than = value::duration(v)?,
                "when" => {
                    r.when = match v {
                        "disk_high" => When::DiskHigh,
                        "always" => When::Always,
                        _ => {
                            return Err(format!(
                                "invalid when \"{v}\" (expected disk_high or always)"
                            ));
                        }
                    }
                }
                "recursive" => r.recursive = value::boolean(v)?,
                "remove_empty_dirs" => r.remove_empty_dirs = value::boolean(v)?,
                "protect" => r.protect = value::list(v).iter().map(|g| Glob::new(g)).collect(),
                other => return Err(unknown_key("cleanup", other)),
            }
            Ok(())
        });
        if r.paths.is_empty() && self.errors.len() == before {
            self.error(
                s.line,
                &format!("{}.paths", s.name),
                "a cleanup rule needs paths",
            );
        }
        (self.errors.len() == before).then_some(r)
    }

    fn reap_rule(&mut self, s: &RawSection, name: &str) -> Option<ReapRule> {
        if !self.rule_name(s, name) {
            return None;
        }
        let mut r = ReapRule {
            name: name.to_string(),
            matches: Vec::new(),
            cmdline: None,
            users: Vec::new(),
            states: Vec::new(),
            older_than: None,
            in_state_for: None,
            cpu_over: None,
            action: Action::Term,
        };
        let before = self.errors.len();
        let optional = |v: &str| {
            if v.is_empty() {
                Ok(None)
            } else {
                value::duration(v).map(Some)
            }
        };
        self.each(s, |_, e| {
            let v = e.value.as_str();
            match e.key.as_str() {
                "match" => r.matches = globs(v)?,
                "cmdline" => r.cmdline = (!v.is_empty()).then(|| Glob::new(v)),
                "user" => r.users = value::list(v),
                "state" => {
                    let mut states = Vec::new();
                    for w in value::list(v) {
                        match ProcState::ALL.iter().find(|(_, n)| *n == w) {
                            Some((st, _)) => states.push(*st),
                            None => {
                                return Err(format!(
                                    "invalid state \"{w}\" (expected running, sleeping, disk-sleep, stopped or zombie)"
                                ));
                            }
                        }
                    }
                    r.states = states;
                }
                "older_than" => r.older_than = optional(v)?,
                "in_state_for" => r.in_state_for = optional(v)?,
                "cpu_over" => r.cpu_over = optional(v)?,
                "action" => {
                    r.action = match v {
                        "term" => Action::Term,
                        "kill" => Action::Kill,
                        "log" => Action::Log,
                        _ => return Err(format!("invalid action \"{v}\" (expected term, kill or log)")),
                    }
                }
                other => return Err(unknown_key("reap", other)),
            }
            Ok(())
        });
        if r.matches.is_empty() && r.cmdline.is_none() && self.errors.len() == before {
            let msg = "a reap rule needs match or cmdline (match = * to name every process)";
            self.error(s.line, &format!("[{}]", s.name), msg);
        }
        (self.errors.len() == before).then_some(r)
    }

    /// A warn limit above its crit limit is an error reported on the crit line (or
    /// the warn line when crit is the default).
    fn check_limits(&mut self, sections: &[RawSection], t: &Thresholds) {
        let line_of = |key: &str| {
            sections
                .iter()
                .filter(|s| s.name == "thresholds")
                .flat_map(|s| &s.entries)
                .find(|e| e.key == key)
                .map(|e| e.line)
        };
        for (name, l) in [
            ("cpu", t.cpu),
            ("mem", t.mem),
            ("swap", t.swap),
            ("load", t.load),
            ("disk", t.disk),
            ("inode", t.inode),
        ] {
            let (warn, crit) = (format!("{name}_warn"), format!("{name}_crit"));
            // A limit that is itself invalid was reported already; comparing the
            // default in its place would report a value that is not in the file.
            let bad = |k: &str| {
                self.errors
                    .iter()
                    .any(|e| e.key == format!("thresholds.{k}"))
            };
            if bad(&warn) || bad(&crit) {
                continue;
            }
            if let (Some(w), Some(c)) = (l.warn, l.crit)
                && w > c
            {
                let (line, key, msg) = match line_of(&crit) {
                    Some(line) => (line, crit, format!("{c} is below thresholds.{warn} ({w})")),
                    None => (
                        line_of(&warn).unwrap_or(0),
                        warn,
                        format!("{w} is above thresholds.{crit} ({c})"),
                    ),
                };
                self.error(line, &format!("thresholds.{key}"), &msg);
            }
        }
    }
}

/// Whether a value must be quoted to read back the same: an inline comment marker
/// after whitespace, surrounding whitespace, a leading quote, a trailing backslash.
fn needs_quotes(v: &str) -> bool {
    source::has_inline_comment(v)
        || v.trim() != v
        || v.starts_with(['"', '\''])
        || v.ends_with('\\')
}

/// Whether `section.key` is a command line: its value is written with its own
/// quotes (`value::fmt_command`), never quoted as a whole.
fn is_command(section: &str, key: &str) -> bool {
    matches!((section, key), ("alert", "sendmail" | "command"))
        || (section.starts_with("task.") && key == "command")
}

/// A command line, as written (`raw`): an absolute program path and its arguments,
/// split into words by `value::words` (quotes and backslashes as in sh, no shell).
fn command(raw: &str) -> Result<Vec<String>, String> {
    let argv = value::words(raw)?;
    match argv.first() {
        None => Err("a command is required".to_string()),
        Some(p) if !p.starts_with('/') => {
            Err(format!("the program must be an absolute path: \"{p}\""))
        }
        Some(_) => Ok(argv),
    }
}

fn positive(d: Duration, v: &str) -> Result<Duration, String> {
    if d.is_zero() {
        Err(format!("invalid duration \"{v}\" (must be more than 0)"))
    } else {
        Ok(d)
    }
}

/// An octal file mode creation mask: `027`, `0022`, `7` (at most `777`).
fn umask(v: &str) -> Result<u32, String> {
    let octal = !v.is_empty() && v.len() <= 4 && v.bytes().all(|c| (b'0'..=b'7').contains(&c));
    match u32::from_str_radix(v, 8) {
        Ok(m) if octal && m <= 0o777 => Ok(m),
        _ => Err(format!(
            "invalid umask \"{v}\" (expected octal digits up to 777, e.g. 027)"
        )),
    }
}

fn nice(v: &str) -> Result<i32, String> {
    match v.parse::<i32>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(n),
        _ => Err(format!("invalid nice \"{v}\" (expected -20 to 19)")),
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

/// A list of globs; empty is an error (a rule that matches nothing is a typo).
fn globs(v: &str) -> Result<Vec<Glob>, String> {
    let g: Vec<Glob> = value::list(v).iter().map(|g| Glob::new(g)).collect();
    if g.is_empty() {
        Err("at least one glob is required (* for any)".to_string())
    } else {
        Ok(g)
    }
}

fn unknown_key(section: &str, key: &str) -> String {
    let known = SECTIONS
        .iter()
        .chain(RULE_SECTIONS)
        .find(|(s, _)| *s == section)
        .map(|(_, k)| *k)
        .unwrap_or(&[]);
    if let Some(k) = value::nearest(key, known.iter().copied()) {
        return format!("unknown key \"{key}\" (did you mean \"{k}\"?)");
    }
    match SECTIONS
        .iter()
        .find(|(s, keys)| *s != section && keys.contains(&key))
    {
        Some((s, _)) => format!("unknown key \"{key}\" (it belongs in [{s}])"),
        None => format!("unknown key \"{key}\""),
    }
}
