//! The configuration: INI text → typed, validated values with defaults filled in.
//! Every error names file, line, `section.key` and the bad value, and all of them
//! are reported at once. The effective configuration can be printed back as INI
//! (`--check-config`), which is also how a reload says what changed. Each key is
//! declared once (`keys`, `rules`); parsing, defaults, hints, printing and the key
//! reference all come from that declaration.
//!
//! The main file is read first, then each `*.ini` of its drop-in directory
//! (`load`); `origin` keeps where each value was set.

mod build;
mod keys;
mod kinds;
mod load;
mod origin;
mod rules;
mod source;
mod table;
pub mod value;

use std::fmt;
use std::path::{Path, PathBuf};

pub use crate::log::LogFormat;
pub use keys::{
    Agent, Alert, Audit, Disk, MemAmount, Paths, Pick, Reaper, Relief, Thresholds, is_address,
};
pub use load::dropin_dir;
pub use origin::{Origin, Origins, Source};
pub use rules::{CleanupRule, ReapRule, Task};
pub use source::{RawEntry, RawSection};
use table::Section;

/// Where the config is read from when `-c` is not given. A missing default file means
/// built-in defaults; a missing `-c` file is an error.
pub const DEFAULT_PATH: &str = "/etc/aion/system_agent.ini";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The file this came from; `None` for built-in defaults.
    pub file: Option<PathBuf>,
    /// Owner uid and mode of that file as it was read (from the same descriptor), so
    /// the agent can refuse to use capabilities on a config someone else could write.
    pub file_owner: Option<(u32, u32)>,
    /// The drop-ins read and where each value was set (not compared by `==`).
    pub origins: Origins,
    pub agent: Agent,
    pub paths: Paths,
    pub thresholds: Thresholds,
    pub disk: Disk,
    pub cleanup: Vec<CleanupRule>,
    pub reaper: Reaper,
    pub reap: Vec<ReapRule>,
    pub relief: Relief,
    pub tasks: Vec<Task>,
    pub audit: Audit,
    pub alert: Alert,
}

/// A warn and a crit limit; `None` is off.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Limits {
    pub warn: Option<f64>,
    pub crit: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Only while the filesystem holding the path is at or above `disk_warn`,
    /// oldest first, stopping once it is below.
    DiskHigh,
    /// Only while the forecast of the watched mount holding the path is at
    /// `disk_eta_warn` or worse, oldest first, stopping once the time left at
    /// that rate is beyond it.
    DiskFilling,
    /// Every candidate, every cycle.
    Always,
}

impl When {
    pub const ALL: [(When, &'static str); 3] = [
        (When::DiskHigh, "disk_high"),
        (When::DiskFilling, "disk_filling"),
        (When::Always, "always"),
    ];
}

/// What `mem` is judged against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemScope {
    /// The tighter of the host and the agent's cgroup (when it has a memory limit).
    Auto,
    /// The host's memory alone (`/proc/meminfo`).
    Host,
    /// The agent's cgroup: its usage against its limit (the host's memory when it
    /// has none).
    Cgroup,
}

impl MemScope {
    pub const ALL: [(MemScope, &'static str); 3] = [
        (MemScope::Auto, "auto"),
        (MemScope::Host, "host"),
        (MemScope::Cgroup, "cgroup"),
    ];
}

/// Limits where a lower value is worse (a time left): warn is the larger.
pub fn lower_is_worse(limit: &str) -> bool {
    limit.ends_with("_eta")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only processes whose root directory is the agent's own.
    Root,
    /// Every process in /proc.
    All,
}

impl Scope {
    pub const ALL: [(Scope, &'static str); 2] = [(Scope::Root, "root"), (Scope::All, "all")];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AlertLevel {
    Warning,
    Critical,
}

impl AlertLevel {
    pub const ALL: [(AlertLevel, &'static str); 2] = [
        (AlertLevel::Warning, "warning"),
        (AlertLevel::Critical, "critical"),
    ];
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
        word(&ProcState::ALL, &self)
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
    pub const ALL: [(Action, &'static str); 3] = [
        (Action::Term, "term"),
        (Action::Kill, "kill"),
        (Action::Log, "log"),
    ];

    pub fn name(self) -> &'static str {
        word(&Action::ALL, &self)
    }
}

/// The word for `t` in a list of values and their words such as `Action::ALL`.
fn word<T: PartialEq>(all: &[(T, &'static str)], t: &T) -> &'static str {
    all.iter().find(|(v, _)| v == t).map_or("?", |(_, w)| w)
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

/// Every section and key this version knows, for "unknown key" hints and printing.
pub const SECTIONS: &[(&str, &[&str])] = &[
    (Agent::NAME, Agent::NAMES),
    (Paths::NAME, Paths::NAMES),
    (Thresholds::NAME, Thresholds::NAMES),
    (Disk::NAME, Disk::NAMES),
    (Reaper::NAME, Reaper::NAMES),
    (Relief::NAME, Relief::NAMES),
    (Audit::NAME, Audit::NAMES),
    (Alert::NAME, Alert::NAMES),
];

/// Sections that come once per rule, as `[PREFIX.NAME]`, and their keys.
pub const RULE_SECTIONS: &[(&str, &[&str])] = &[
    (CleanupRule::NAME, CleanupRule::NAMES),
    (Task::NAME, Task::NAMES),
    (ReapRule::NAME, ReapRule::NAMES),
];

/// One key as its declaration describes it, for the key reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyDoc {
    /// `agent`, or `cleanup.NAME` for a rule section.
    pub section: String,
    pub key: &'static str,
    /// As a user would write it; empty: unset (none, or required where `doc` says).
    pub default: &'static str,
    /// One line.
    pub doc: &'static str,
}

/// Every key this version knows, in the order of `SECTIONS`, then `RULE_SECTIONS`.
pub fn keys() -> Vec<KeyDoc> {
    fn docs<T: Section>(out: &mut Vec<KeyDoc>, section: &str) {
        out.extend(T::KEYS.iter().map(|k| KeyDoc {
            section: section.to_string(),
            key: k.name,
            default: k.default,
            doc: k.doc,
        }));
    }
    let rule = |prefix: &str| format!("{prefix}.NAME");
    let mut out = Vec::new();
    docs::<Agent>(&mut out, Agent::NAME);
    docs::<Paths>(&mut out, Paths::NAME);
    docs::<Thresholds>(&mut out, Thresholds::NAME);
    docs::<Disk>(&mut out, Disk::NAME);
    docs::<Reaper>(&mut out, Reaper::NAME);
    docs::<Relief>(&mut out, Relief::NAME);
    docs::<Audit>(&mut out, Audit::NAME);
    docs::<Alert>(&mut out, Alert::NAME);
    docs::<CleanupRule>(&mut out, &rule(CleanupRule::NAME));
    docs::<Task>(&mut out, &rule(Task::NAME));
    docs::<ReapRule>(&mut out, &rule(ReapRule::NAME));
    out
}

/// The key reference as text a page generator reads: per section a `[section]`
/// line, then per key a `key = default` line (`key =` when unset) and its
/// description on the next line after a tab; a blank line between sections.
pub fn reference() -> String {
    let mut out = String::new();
    let mut current = "";
    let all = keys();
    for k in &all {
        if k.section != current {
            if !current.is_empty() {
                out.push('\n');
            }
            out.push_str(&format!("[{}]\n", k.section));
            current = &k.section;
        }
        match k.default {
            "" => out.push_str(&format!("{} =\n", k.key)),
            default => out.push_str(&format!("{} = {default}\n", k.key)),
        }
        out.push_str(&format!("\t{}\n", k.doc));
    }
    out
}

impl Config {
    /// Where the agent's own log goes, and how (`[agent]`).
    pub fn log_target(&self) -> crate::log::Target {
        let a = &self.agent;
        crate::log::Target {
            level: a.log_level,
            file: a.log_file.clone(),
            mode: 0o640,
            format: a.log_format,
            syslog: a
                .syslog
                .then(|| (a.syslog_socket.clone(), a.syslog_facility.code)),
        }
    }

    /// The audit trail: its own file (0600) and syslog facility, on the agent's
    /// syslog socket.
    pub fn audit_log_target(&self) -> crate::log::Target {
        let a = &self.agent;
        crate::log::Target {
            level: crate::log::Level::Info,
            file: self.audit.log_file.clone(),
            mode: 0o600,
            format: a.log_format,
            syslog: a
                .syslog
                .then(|| (a.syslog_socket.clone(), self.audit.syslog_facility.code)),
        }
    }
}

impl Config {
    /// Validates INI text; `file` is used in messages.
    pub fn parse(file: &Path, text: &str) -> Result<Config, Vec<ConfigError>> {
        let layer = source::Layer {
            path: file.to_path_buf(),
            sections: source::parse(file, text)?,
        };
        let mut cfg = build::build(std::slice::from_ref(&layer))?;
        cfg.file = Some(file.to_path_buf());
        Ok(cfg)
    }

    /// The effective configuration as (section, key, value), every key included.
    pub fn entries(&self) -> Vec<(String, &'static str, String)> {
        self.settings()
            .into_iter()
            .map(|s| (s.section, s.key, s.value))
            .collect()
    }

    /// Every setting, in file order: the fixed sections, then each task, cleanup
    /// and reap rule.
    fn settings(&self) -> Vec<Setting> {
        let mut out = Vec::new();
        add(&mut out, Agent::NAME, &self.agent);
        add(&mut out, Paths::NAME, &self.paths);
        add(&mut out, Thresholds::NAME, &self.thresholds);
        add(&mut out, Disk::NAME, &self.disk);
        add(&mut out, Reaper::NAME, &self.reaper);
        add(&mut out, Relief::NAME, &self.relief);
        add(&mut out, Audit::NAME, &self.audit);
        add(&mut out, Alert::NAME, &self.alert);
        for t in &self.tasks {
            add(&mut out, &format!("{}.{}", Task::NAME, t.name), t);
        }
        for c in &self.cleanup {
            add(&mut out, &format!("{}.{}", CleanupRule::NAME, c.name), c);
        }
        for r in &self.reap {
            add(&mut out, &format!("{}.{}", ReapRule::NAME, r.name), r);
        }
        out
    }

    /// The effective configuration as INI text that `Config::parse` accepts.
    pub fn to_ini(&self) -> String {
        self.render_ini(false)
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

/// One key's effective value.
struct Setting {
    /// `agent`, or `task.NAME` for a rule.
    section: String,
    key: &'static str,
    value: String,
    /// Written as it is, never quoted as a whole (a command line).
    verbatim: bool,
}

/// Each key of section `name` with its value in `s`.
fn add<T: Section>(out: &mut Vec<Setting>, name: &str, s: &T) {
    for k in T::KEYS {
        out.push(Setting {
            section: name.to_string(),
            key: k.name,
            value: (k.print)(s),
            verbatim: k.verbatim,
        });
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

#[cfg(test)]
mod tests;
