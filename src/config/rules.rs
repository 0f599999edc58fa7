//! The sections that come once per rule (`[cleanup.NAME]`, `[task.NAME]`,
//! `[reap.NAME]`), each key declared once as in `keys`, and what a rule needs
//! beyond its single keys.

use super::kinds::{
    AbsPath, Choice, Choices, Command, Flag, Globs, Int, Nice, Optional, Pattern, Percent,
    SomeGlobs, Text, Time, TimeOver0, Umask, Words,
};
use super::table::{Kind, Written, initial, key, key_name, rule};
use super::{Action, ProcState, When, value};
use crate::glob::Glob;
use std::path::{Path, PathBuf};
use std::time::Duration;

rule! {
    /// `[cleanup.NAME]`: which old files to remove, where, and when.
    pub struct CleanupRule in [cleanup.NAME] {
        paths: Vec<PathBuf> = "", CleanPaths,
            "Required: the directories to clean, absolute, not /.";
        matches as "match": Vec<Glob> = "*", SomeGlobs,
            "Globs on the file name.";
        older_than: Duration = "7d", Time,
            "By modification time; a future date is not old.";
        when: When = "disk_high", Choice { what: "when", names: &When::ALL },
            "disk_high: only while the path's filesystem is at or above disk_warn, oldest \
             first; always: every cycle.";
        recursive: bool = "no", Flag,
            "Descend into subdirectories (at most 64 deep).";
        remove_empty_dirs: bool = "no", Flag,
            "Remove directories that were old and end up empty.";
        protect: Vec<Glob> = "", Globs,
            "Extra name globs never removed (nor descended into), beside the always-spared names.";
    }
}

rule! {
    /// `[task.NAME]`: a maintenance command run when due and the CPU is idle.
    pub struct Task in [task.NAME] {
        command: Vec<String> = "", Command,
            "Required: an absolute program path, then arguments (words as sh splits \
             them; no shell).";
        every: Duration = "24h", Time,
            "How often it is due, since its last success.";
        when_cpu_below: f64 = "20", Percent,
            "CPU% below which a cycle counts as idle.";
        idle_cycles: u32 = "3", Int(0, 10_000),
            "Idle cycles in a row before it starts.";
        timeout: Duration = "30m", TimeOver0,
            "Its process group is killed after this long.";
        nice: i32 = "10", Nice,
            "Its nice value, -20 to 19.";
        user: Option<String> = "", Optional(Text),
            "Run as this user from [paths] passwd, with its groups from [paths] group. \
             Empty: the agent's user.";
        cwd: PathBuf = "/", AbsPath,
            "The working directory (absolute), never the agent's own.";
        umask: u32 = "022", Umask,
            "The file mode creation mask, octal up to 777, never the agent's own.";
    }
}

rule! {
    /// `[reap.NAME]`: which processes to stop, and how.
    pub struct ReapRule in [reap.NAME] {
        matches as "match": Vec<Glob> = "", SomeGlobs,
            "Globs on the process name (comm); match or cmdline is required.";
        cmdline: Option<Glob> = "", Optional(Pattern),
            "A glob on the whole command line (arguments joined by spaces).";
        users as "user": Vec<String> = "", Words,
            "User names. Empty: any user but root.";
        states as "state": Vec<ProcState> = "",
            Choices(Choice { what: "state", names: &ProcState::ALL }),
            "Process states: running sleeping disk-sleep stopped zombie. Empty: any.";
        older_than: Option<Duration> = "", Optional(Time),
            "Since the process started.";
        in_state_for: Option<Duration> = "", Optional(Time),
            "How long it has been seen in its current state.";
        cpu_over: Option<Duration> = "", Optional(Time),
            "CPU time used (user + system).";
        action: Action = "term", Choice { what: "action", names: &Action::ALL },
            "term (SIGTERM, then SIGKILL after grace), kill, or log (report only).";
    }
}

/// What a rule lacks that no single key can say: the key to name (`""`: the rule
/// as a whole) and the message.
pub trait Complete {
    fn missing(&self) -> Option<(&'static str, &'static str)>;
}

impl Complete for CleanupRule {
    fn missing(&self) -> Option<(&'static str, &'static str)> {
        self.paths
            .is_empty()
            .then_some(("paths", "a cleanup rule needs paths"))
    }
}

impl Complete for Task {
    fn missing(&self) -> Option<(&'static str, &'static str)> {
        self.command
            .is_empty()
            .then_some(("command", "a task needs a command"))
    }
}

impl Complete for ReapRule {
    fn missing(&self) -> Option<(&'static str, &'static str)> {
        let msg = "a reap rule needs match or cmdline (match = * to name every process)";
        (self.matches.is_empty() && self.cmdline.is_none()).then_some(("", msg))
    }
}

/// The directories a cleanup rule cleans: absolute paths, never `/` itself.
pub struct CleanPaths;

impl Kind<Vec<PathBuf>> for CleanPaths {
    fn read(&self, w: Written) -> Result<Vec<PathBuf>, String> {
        let mut paths = Vec::new();
        for p in value::list(w.value) {
            let p = value::path(&p)?;
            if p == Path::new("/") {
                return Err("refusing to clean / (name the directories to clean)".to_string());
            }
            paths.push(p);
        }
        Ok(paths)
    }

    fn print(&self, paths: &Vec<PathBuf>) -> String {
        super::kinds::AbsPaths.print(paths)
    }
}
