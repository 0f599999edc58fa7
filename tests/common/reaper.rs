//! The reaper against real processes: scenario scripts that run as PID 1 of a
//! private PID namespace (`unshare --pid --fork --mount-proc --kill-child`), where
//! the agent sees, and can signal, only what the script starts; what they record;
//! and the reaper's log lines.

use super::{Host, Ini, in_pid_ns, is_root};
use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

/// Shell helpers every scenario starts with. Besides the agent itself and `logged`
/// (grep), none of them forks (`nap` times out a `read` on a FIFO nobody writes),
/// so a scenario can run while a `match = *` rule is active without subshells of
/// its own becoming targets.
pub const PRELUDE: &str = r#"set -u
mkfifo "$T/fifo" && exec 9<>"$T/fifo"
# out KEY VALUE: one result for the test.
out() { printf '%s=%s\n' "$1" "$2" >>"$T/out"; }
# problem WHAT: the scenario could not set itself up as intended (the test fails).
problem() { out problem "$1"; }
# nap SECONDS
nap() { read -r -t "$1" -u 9 _ || true; }
# st PID: sets ST to the state letter of PID, or to "gone".
st() { ST=gone; local l; { read -r l <"/proc/$1/stat"; } 2>/dev/null || return 0; l=${l##*) }; ST=${l%% *}; }
alive() { st "$1"; [ "$ST" != gone ] && [ "$ST" != Z ]; }
dead() { ! alive "$1"; }
st_is() { st "$1"; [ "$ST" = "$2" ]; }
comm_is() { local c; { read -r c <"/proc/$1/comm"; } 2>/dev/null && [ "$c" = "$2" ]; }
# poll COMMAND...: COMMAND every 0.1 s until it succeeds, for up to 30 s (a bound
# that only stops a hang: what a scenario polls for is meant to come).
poll() { local i; for ((i = 1; i < 300; i++)); do "$@" && return 0; nap 0.1; done; "$@"; }
# as UID COMMAND...: exec COMMAND with that uid and gid (run it with &).
as() { local u=$1; shift; exec setpriv --reuid="$u" --regid="$u" --clear-groups "$@"; }
# record KEY PID: KEY=yes when PID is alive (not gone, not a zombie), else KEY=no.
record() { if alive "$2"; then out "$1" yes; else out "$1" no; fi; }
# logged TEXT: T/agent.log has TEXT (forks grep: not for match = * scenarios).
logged() { [ -e "$T/agent.log" ] && grep -qF -- "$1" "$T/agent.log"; }
# The agent: in the background (AG is its PID), stopped with SIGTERM; or one --once.
agent_bg() { "$A" -c "$T/agent.ini" "$@" >>"$T/agent.out" 2>&1 & AG=$!; }
# status KEY PID: KEY=the exit status of PID (a child of this shell) once it is
# dead, KEY=alive if it is not (never blocks).
status() { if dead "$2"; then wait "$2"; out "$1" $?; else out "$1" alive; fi; }
stop_agent() { kill -TERM "$AG"; poll dead "$AG"; status agent_rc "$AG"; if alive "$AG"; then kill -KILL "$AG"; fi; }
once() { "$A" -c "$T/agent.ini" --once "$@" >>"$T/agent.out" 2>&1; }
"#;

/// The Python parent of a zombie: installs a SIGCHLD handler that appends a line
/// to argv[1] and never waits; its child execs argv[2] (a copy of sleep) with
/// argument argv[4] (default 0: it exits at once), as uid argv[3] unless -1.
pub const ZOMBIE_PARENT: &str = r#"import os, signal, sys, time
log, child, uid = sys.argv[1], sys.argv[2], int(sys.argv[3])
arg = sys.argv[4] if len(sys.argv) > 4 else "0"
def on_chld(sig, frame):
    with open(log, "a") as f:
        f.write("chld\n")
signal.signal(signal.SIGCHLD, on_chld)
if os.fork() == 0:
    if uid != -1:
        os.setgid(uid)
        os.setuid(uid)
    os.execv(child, [child, arg])
while True:
    time.sleep(1)
"#;

/// A live process that is not a zombie but looks like one: its main thread (the
/// thread group leader, named `victim`) exits, another thread runs on. Its
/// /proc/PID/stat then says `Z`; /proc/PID/status says `Threads: 2`.
pub const DEFUNCT_LEADER: &str = r#"import ctypes, threading, time
libc = ctypes.CDLL(None)
libc.prctl(15, b"victim", 0, 0, 0)  # PR_SET_NAME, on the leader
def work():
    while True:
        time.sleep(0.05)
threading.Thread(target=work).start()
time.sleep(0.2)
libc.pthread_exit(None)
"#;

/// One scenario: a host with bin/ (copies of sleep named as the scenario needs),
/// the Python helpers, and agent.ini.
pub struct Scenario {
    pub h: Host,
}

impl Scenario {
    /// `None` (the test is skipped) unless running as root.
    pub fn new(tag: &str, bins: &[&str]) -> Option<Scenario> {
        if !is_root() {
            eprintln!("reaper test {tag}: skipped, needs root (unshare --pid, setpriv)");
            return None;
        }
        let h = Host::new(&format!("reap-{tag}"));
        std::fs::create_dir(h.path("bin")).expect("mkdir bin");
        for b in bins {
            std::fs::copy("/bin/sleep", h.path(&format!("bin/{b}"))).expect("copy sleep");
        }
        h.write("zparent.py", ZOMBIE_PARENT);
        h.write("defunct.py", DEFUNCT_LEADER);
        Some(Scenario { h })
    }

    /// `new`, with agent.ini written by `config`.
    pub fn with(tag: &str, bins: &[&str], reaper: &str, rules: &str) -> Option<Scenario> {
        let s = Scenario::new(tag, bins)?;
        s.config("", reaper, rules);
        Some(s)
    }

    /// Writes agent.ini: a 100 ms loop on this machine's /proc (the namespace's),
    /// thresholds that never fire, no disks, the reaper on; `agent` adds `[agent]`
    /// keys, `reaper` is the `[reaper]` body (besides `enabled`), `rules` the
    /// `[reap.NAME]` sections.
    pub fn config(&self, agent: &str, reaper: &str, rules: &str) {
        self.config_file("agent.ini", agent, reaper, rules);
    }

    /// `config`, written to T/`name`, and checked with `--check-config`.
    pub fn config_file(&self, name: &str, agent: &str, reaper: &str, rules: &str) {
        let agent = format!("top = 0\n{agent}");
        let extra = format!("[reaper]\nenabled = yes\n{reaper}\n\n{rules}");
        let path = self.h.config_as(
            name,
            Ini {
                agent: &agent,
                thresholds: "cpu_warn = 100\ncpu_crit = 100\nmem_warn = 100\nmem_crit = 100",
                real_proc: true,
                extra: &extra,
                ..Ini::default()
            },
        );
        let check = Command::new(super::bin())
            .arg("-c")
            .arg(&path)
            .arg("--check-config")
            .output()
            .expect("run --check-config");
        assert!(
            check.status.success(),
            "invalid test config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    /// Runs `body` (after PRELUDE) as PID 1 of a new PID namespace, with `A` the
    /// agent binary and `T` the temp dir; kills the namespace if it overruns.
    pub fn run(&self, body: &str) -> Outcome {
        let script = self.h.write("scenario.sh", format!("{PRELUDE}\n{body}"));
        let Some(status) = in_pid_ns(&self.h.t, &script, Duration::from_secs(60)) else {
            panic!("scenario overran\n{}", self.context("(killed)"));
        };
        let out = self
            .h
            .read("out")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let context = self.context(&format!("{status}"));
        assert!(status.success(), "scenario failed\n{context}");
        assert!(
            !self
                .h
                .read("out")
                .lines()
                .any(|l| l.starts_with("problem=")),
            "scenario set-up failed\n{context}"
        );
        Outcome {
            out,
            log: self.h.log(),
            context,
        }
    }

    fn context(&self, status: &str) -> String {
        format!(
            "scenario exit: {status}\n--- out\n{}--- agent.log\n{}--- agent stdout/stderr\n{}--- scenario stderr\n{}",
            self.h.read("out"),
            self.h.read("agent.log"),
            self.h.read("agent.out"),
            self.h.read("scenario.stderr"),
        )
    }
}

/// The reap line of rule `v`'s SIGTERM to root's sleeping `victim` `pid`.
pub fn term_victim(pid: i32) -> String {
    reap(
        pid,
        "victim",
        "root",
        "sleeping",
        "term",
        "v",
        "name victim",
    )
}

/// An `event=reap` line as `reap_lines` shows it (`age=*`): level warn, or info
/// for `action=log`.
pub fn reap(
    pid: i32,
    name: &str,
    user: &str,
    state: &str,
    action: &str,
    rule: &str,
    reason: &str,
) -> String {
    let level = if action == "log" { "info" } else { "warn" };
    format!(
        "level={level} event=reap pid={pid} name={name} user={user} state={state} age=* action={action} rule={rule} reason=\"{reason}\""
    )
}

/// What a scenario left behind.
pub struct Outcome {
    pub out: HashMap<String, String>,
    pub log: String,
    pub context: String,
}

impl Outcome {
    pub fn get(&self, key: &str) -> &str {
        match self.out.get(key) {
            Some(v) => v,
            None => panic!("{key} not recorded\n{}", self.context),
        }
    }

    pub fn pid(&self, key: &str) -> i32 {
        self.get(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a pid\n{}", self.context))
    }

    /// Asserts `key=want` with the whole context on failure.
    pub fn expect(&self, key: &str, want: &str) {
        assert_eq!(self.get(key), want, "{key}\n{}", self.context);
    }

    /// Asserts that a `--once` exit status is a Nagios status (0-3): the run was
    /// not killed. Which one depends on the load of this machine.
    pub fn expect_nagios(&self, key: &str) {
        assert!(
            matches!(self.get(key), "0" | "1" | "2" | "3"),
            "{key}\n{}",
            self.context
        );
    }

    /// The `event=reap` and `event=reap_failed` lines, without `ts=` and with the
    /// age (which depends on timing) as `age=*`.
    pub fn reaps(&self) -> Vec<String> {
        reap_lines(&self.log)
    }

    /// Asserts the reap lines are exactly `want`, with the whole context on failure.
    pub fn expect_reaps(&self, want: Vec<String>) {
        assert_eq!(self.reaps(), want, "{}", self.context);
    }
}

/// The `event=reap` and `event=reap_failed` lines of `log` (see `lines_without_age`).
pub fn reap_lines(log: &str) -> Vec<String> {
    lines_without_age(log, &[" event=reap ", " event=reap_failed "])
}

/// `reap_lines` and the reaper's own errors (`what=reaper`).
pub fn reaper_lines(log: &str) -> Vec<String> {
    lines_without_age(
        log,
        &[" event=reap ", " event=reap_failed ", " what=reaper "],
    )
}

/// The lines of `log` with any of `needles`, without `ts=` and with the age
/// (which depends on timing) as `age=*`.
fn lines_without_age(log: &str, needles: &[&str]) -> Vec<String> {
    log.lines()
        .filter(|l| needles.iter().any(|n| l.contains(n)))
        .map(|l| {
            let rest = l.split_once(' ').map_or("", |(_, r)| r);
            rest.split(' ')
                .map(|w| if w.starts_with("age=") { "age=*" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}
