//! The process reaper against real processes: what `[reaper]` and `[reap.NAME]`
//! select is signalled, and nothing its safety rules spare (PID 1, the agent and
//! its ancestors, root's processes unless named, a reused pid).
//!
//! Every scenario runs in a private PID namespace:
//! `unshare --pid --fork --mount-proc --kill-child bash T/scenario.sh`. Inside, the
//! script is PID 1 and sees only the processes it starts, so the agent cannot see,
//! let alone signal, anything of this machine; when the test kills `unshare` (a
//! scenario that overruns its limit), the whole namespace dies with it. The
//! processes a scenario starts are copies of /bin/sleep under distinctive names in
//! the test's temp dir (and, for zombies, a small Python parent). The script writes
//! what it saw (PIDs, who is alive, exit statuses) to T/out as `key=value` lines; the
//! test asserts on those and on the exact `event=reap` lines of T/agent.log.
//!
//! These tests need root (unshare, setpriv); as another user they are skipped with
//! a message.

mod common;

use common::*;
use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Shell helpers every scenario starts with. Besides the agent itself and `logged`
/// (grep), none of them forks (`nap` times out a `read` on a FIFO nobody writes),
/// so a scenario can run while a `match = *` rule is active without subshells of
/// its own becoming targets.
const PRELUDE: &str = r#"set -u
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
# poll TRIES COMMAND...: COMMAND every 0.1 s until it succeeds, at most TRIES times.
poll() { local n=$1 i; shift; for ((i = 1; i < n; i++)); do "$@" && return 0; nap 0.1; done; "$@"; }
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
stop_agent() { kill -TERM "$AG"; poll 30 dead "$AG"; status agent_rc "$AG"; if alive "$AG"; then kill -KILL "$AG"; fi; }
once() { "$A" -c "$T/agent.ini" --once "$@" >>"$T/agent.out" 2>&1; }
"#;

/// The Python parent of a zombie: installs a SIGCHLD handler that appends a line
/// to argv[1] and never waits; its child execs argv[2] (a copy of sleep) with
/// argument argv[4] (default 0: it exits at once), as uid argv[3] unless -1.
const ZOMBIE_PARENT: &str = r#"import os, signal, sys, time
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
const DEFUNCT_LEADER: &str = r#"import ctypes, threading, time
libc = ctypes.CDLL(None)
libc.prctl(15, b"victim", 0, 0, 0)  # PR_SET_NAME, on the leader
def work():
    while True:
        time.sleep(0.05)
threading.Thread(target=work).start()
time.sleep(0.2)
libc.pthread_exit(None)
"#;

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
    alice:x:1000:1000::/home/alice:/bin/bash\n\
    bob:x:1001:1001::/home/bob:/bin/sh\n";

/// One scenario: a temp dir with bin/ (copies of sleep), passwd, agent.ini.
struct Scenario {
    t: TempDir,
}

/// What a scenario left behind.
struct Outcome {
    out: HashMap<String, String>,
    log: String,
    context: String,
}

impl Outcome {
    fn get(&self, key: &str) -> &str {
        match self.out.get(key) {
            Some(v) => v,
            None => panic!("{key} not recorded\n{}", self.context),
        }
    }

    fn pid(&self, key: &str) -> i32 {
        self.get(key)
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a pid\n{}", self.context))
    }

    /// Asserts `key=want` with the whole context on failure.
    fn expect(&self, key: &str, want: &str) {
        assert_eq!(self.get(key), want, "{key}\n{}", self.context);
    }

    /// Asserts that a `--once` exit status is a Nagios status (0-3): the run was
    /// not killed. Which one depends on the load of this machine.
    fn expect_nagios(&self, key: &str) {
        assert!(
            matches!(self.get(key), "0" | "1" | "2" | "3"),
            "{key}\n{}",
            self.context
        );
    }

    /// The `event=reap` and `event=reap_failed` lines, without `ts=` and with the
    /// age (which depends on timing) as `age=*`.
    fn reaps(&self) -> Vec<String> {
        reap_lines(&self.log)
    }

    /// Asserts that the log line `to` came `ms` (a range) after the line `from`.
    fn expect_gap(&self, what: &str, from: &str, to: &str, ms: std::ops::Range<i64>) {
        let gap = ts_ms(to) - ts_ms(from);
        assert!(ms.contains(&gap), "{what}: {gap} ms\n{}", self.context);
    }

    /// Asserts the `reaps` lines, with the whole context on failure.
    fn expect_reaps(&self, want: Vec<String>) {
        assert_eq!(self.reaps(), want, "{}", self.context);
    }
}

fn reap_lines(log: &str) -> Vec<String> {
    log_lines(log, |l| {
        l.contains(" event=reap ") || l.contains(" event=reap_failed ")
    })
}

/// Rule `v`: root's `victim` gets a SIGTERM.
const TERM_RULE: &str = "[reap.v]\nmatch = victim\nuser = root\naction = term\n";

/// The `reap` line of the SIGTERM `TERM_RULE` sends to root's sleeping `victim`
/// `pid`.
fn victim_term(pid: i32) -> String {
    format!(
        "level=warn event=reap pid={pid} name=victim user=root state=sleeping age=* action=term rule=v reason=\"name victim\""
    )
}

/// Milliseconds since midnight UTC of a log line's `ts=2026-11-26T12:11:46.845Z`.
fn ts_ms(line: &str) -> i64 {
    let ts = line
        .strip_prefix("ts=")
        .and_then(|r| r.get(11..23))
        .unwrap_or_else(|| panic!("no ts in {line}"));
    let n = |r: std::ops::Range<usize>| ts[r].parse::<i64>().expect("ts digits");
    ((n(0..2) * 60 + n(3..5)) * 60 + n(6..8)) * 1000 + n(9..12)
}

/// The raw log line (with ts) of the only line containing `needle`.
fn one_line<'a>(log: &'a str, needle: &str) -> &'a str {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(lines.len(), 1, "lines with {needle:?}\n{log}");
    lines[0]
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

impl Scenario {
    /// `None` (the test is skipped) unless running as root.
    fn new(tag: &str, bins: &[&str]) -> Option<Scenario> {
        if !is_root() {
            eprintln!("reaper test {tag}: skipped, needs root (unshare --pid, setpriv)");
            return None;
        }
        let t = TempDir::new(&format!("reap-{tag}"));
        std::fs::create_dir(t.join("bin")).expect("mkdir bin");
        for b in bins {
            std::fs::copy("/bin/sleep", t.join(&format!("bin/{b}"))).expect("copy sleep");
        }
        t.write("passwd", PASSWD);
        t.write("zparent.py", ZOMBIE_PARENT);
        t.write("defunct.py", DEFUNCT_LEADER);
        Some(Scenario { t })
    }

    fn p(&self, rel: &str) -> String {
        self.t.join(rel).display().to_string()
    }

    /// Writes agent.ini: a 100 ms loop, thresholds that never fire, no disks, the
    /// reaper on; `agent` adds `[agent]` keys, `reaper` is the `[reaper]` body
    /// (besides `enabled`), `rules` the `[reap.NAME]` sections.
    fn config(&self, agent: &str, reaper: &str, rules: &str) {
        self.config_file("agent.ini", agent, reaper, rules);
    }

    /// `config`, written to T/`name`.
    fn config_file(&self, name: &str, agent: &str, reaper: &str, rules: &str) {
        let text = format!(
            "[agent]\ninterval = 100ms\nlog_file = {log}\nsyslog = no\nstate_dir = {state}\ntop = 0\n{agent}\n\
             [paths]\npasswd = {passwd}\n\n\
             [thresholds]\ncpu_warn = 100\ncpu_crit = 100\nmem_warn = 100\nmem_crit = 100\n\n\
             [disk]\nmounts =\n[audit]\nbash_history = no\n\n\
             [reaper]\nenabled = yes\n{reaper}\n\n{rules}",
            log = self.p("agent.log"),
            state = self.p("state"),
            passwd = self.p("passwd"),
        );
        self.t.write(name, text);
        let check = Command::new(bin())
            .args(["-c", &self.p(name), "--check-config"])
            .output()
            .expect("run --check-config");
        assert!(
            check.status.success(),
            "invalid test config: {}",
            String::from_utf8_lossy(&check.stderr)
        );
    }

    /// Runs `body` (after PRELUDE) as PID 1 of a new PID namespace, with `A` the
    /// agent binary and `T` the temp dir; kills the namespace after `limit`.
    fn run(&self, body: &str, limit: Duration) -> Outcome {
        self.t.write("scenario.sh", format!("{PRELUDE}\n{body}"));
        let stdout = std::fs::File::create(self.t.join("scenario.stdout")).expect("stdout file");
        let stderr = std::fs::File::create(self.t.join("scenario.stderr")).expect("stderr file");
        let mut child = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--kill-child", "bash"])
            .arg(self.t.join("scenario.sh"))
            .env("A", bin())
            .env("T", self.t.path())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .expect("spawn unshare");
        let start = Instant::now();
        let status = loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                break st;
            }
            if start.elapsed() >= limit {
                // SIGKILL to unshare; --kill-child takes PID 1, and so the whole
                // namespace, with it.
                let _ = child.kill();
                let _ = child.wait();
                panic!("scenario overran {limit:?}\n{}", self.context("(killed)"));
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let out = self
            .t
            .read("out")
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let context = self.context(&format!("{status}"));
        assert!(status.success(), "scenario failed\n{context}");
        assert!(
            !self
                .t
                .read("out")
                .lines()
                .any(|l| l.starts_with("problem=")),
            "scenario set-up failed\n{context}"
        );
        Outcome {
            out,
            log: self.t.read("agent.log"),
            context,
        }
    }

    fn context(&self, status: &str) -> String {
        format!(
            "scenario exit: {status}\n--- out\n{}--- agent.log\n{}--- agent stdout/stderr\n{}--- scenario stderr\n{}",
            self.t.read("out"),
            self.t.read("agent.log"),
            self.t.read("agent.out"),
            self.t.read("scenario.stderr"),
        )
    }
}

fn limit() -> Duration {
    Duration::from_secs(40)
}

/// A scenario of `bins` with `[reaper] grace = 1s` and `rules`, run with `body`;
/// `None` (the test is skipped) unless running as root.
fn run_scenario(tag: &str, bins: &[&str], rules: &str, body: &str) -> Option<Outcome> {
    let s = Scenario::new(tag, bins)?;
    s.config("", "grace = 1s", rules);
    Some(s.run(body, limit()))
}

// 1. Only what a rule selects.

#[test]
fn only_processes_a_rule_selects_are_signalled() {
    let Some(o) = run_scenario(
        "select",
        &["victim", "victim2", "other", "worker"],
        "[reap.byname]\nmatch = victim\nuser = alice\naction = term\n\n\
         [reap.bycmd]\ncmdline = *worker 999\naction = kill\n",
        r#"
declare -A P NAME
# start KEY UID PROGRAM ARGS...
start() {
    local key=$1 u=$2; shift 2
    if [ "$u" = 0 ]; then "$@" & else as "$u" "$@" & fi
    P[$key]=$!; NAME[$key]=${1##*/}; out "$key" $!
}
start alice_victim 1000 "$T/bin/victim" 1000
start bob_victim 1001 "$T/bin/victim" 1000
start root_victim 0 "$T/bin/victim" 1000
start alice_victim2 1000 "$T/bin/victim2" 1000
start alice_other 1000 "$T/bin/other" 1000
start bob_worker999 1001 "$T/bin/worker" 999
start bob_worker998 1001 "$T/bin/worker" 998
start root_worker999 0 "$T/bin/worker" 999
for k in "${!P[@]}"; do poll 50 comm_is "${P[$k]}" "${NAME[$k]}" || problem "not_started_$k"; done
once; out rc $?
poll 50 dead "${P[alice_victim]}"
poll 50 dead "${P[bob_worker999]}"
for k in "${!P[@]}"; do record "alive_$k" "${P[$k]}"; done
status status_alice_victim "${P[alice_victim]}"
status status_bob_worker999 "${P[bob_worker999]}"
"#,
    ) else {
        return;
    };
    o.expect_nagios("rc");
    for (k, alive) in [
        ("alice_victim", "no"),
        ("bob_victim", "yes"),
        ("root_victim", "yes"),
        ("alice_victim2", "yes"),
        ("alice_other", "yes"),
        ("bob_worker999", "no"),
        ("bob_worker998", "yes"),
        ("root_worker999", "yes"),
    ] {
        o.expect(&format!("alive_{k}"), alive);
    }
    // Died of the signal each rule names.
    o.expect("status_alice_victim", &(128 + libc::SIGTERM).to_string());
    o.expect("status_bob_worker999", &(128 + libc::SIGKILL).to_string());
    o.expect_reaps(vec![
        format!(
            "level=warn event=reap pid={} name=victim user=alice state=sleeping age=* action=term rule=byname reason=\"name victim\"",
            o.pid("alice_victim")
        ),
        format!(
            "level=warn event=reap pid={} name=worker user=bob state=sleeping age=* action=kill rule=bycmd reason=\"cmdline *worker 999\"",
            o.pid("bob_worker999")
        ),
    ]);
}

// 2. SIGTERM, then SIGKILL after grace.

#[test]
fn sigterm_ignored_is_escalated_to_sigkill_after_grace() {
    let Some(o) = run_scenario(
        "grace",
        &["victim"],
        TERM_RULE,
        r#"
sh -c 'trap "" TERM; exec "$0" 1000' "$T/bin/victim" & V=$!; out victim $V
poll 50 comm_is $V victim || problem not_started
agent_bg
poll 50 logged "action=term" || problem no_term
nap 0.5
record alive_after_half_a_second $V
poll 30 dead $V
record alive_after_three_seconds $V
status victim_status $V
nap 0.5
stop_agent
"#,
    ) else {
        return;
    };
    o.expect("alive_after_half_a_second", "yes");
    o.expect("alive_after_three_seconds", "no");
    o.expect("victim_status", &(128 + libc::SIGKILL).to_string());
    o.expect("agent_rc", "0");
    let v = o.pid("victim");
    o.expect_reaps(vec![
        victim_term(v),
        format!(
            "level=warn event=reap pid={v} name=victim action=kill rule=v reason=\"still running 1s after SIGTERM\""
        ),
    ]);
    // The escalation came a grace after the SIGTERM, at the next 100 ms cycle.
    let term = one_line(&o.log, " action=term ");
    let kill = one_line(&o.log, " action=kill ");
    o.expect_gap("SIGKILL after SIGTERM", term, kill, 1000..1800);
}

// 3. in_state_for, in the loop and across --once runs.

/// Rule `v`: root's `victim`, once seen stopped for 2 s, is killed.
const STOPPED_RULE: &str =
    "[reap.v]\nmatch = victim\nuser = root\nstate = stopped\nin_state_for = 2s\naction = kill\n";

/// The `reap` line of `STOPPED_RULE`'s SIGKILL to `pid`.
fn stopped_kill(pid: i32) -> String {
    format!(
        "level=warn event=reap pid={pid} name=victim user=root state=stopped age=* action=kill rule=v reason=\"name victim, state stopped, in state 2s >= 2s\""
    )
}

#[test]
fn stopped_process_is_reaped_only_after_in_state_for_in_the_loop() {
    let Some(o) = run_scenario(
        "stopped-loop",
        &["victim"],
        STOPPED_RULE,
        r#"
"$T/bin/victim" 1000 & V=$!; out stopped $V
"$T/bin/victim" 1000 & R=$!; out running $R
poll 50 comm_is $V victim && poll 50 comm_is $R victim || problem not_started
kill -STOP $V
poll 50 st_is $V T || problem not_stopped
agent_bg
nap 1.5
record alive_after_1_5s $V
poll 40 dead $V
record alive_after_5_5s $V
status victim_status $V
record running_alive $R
stop_agent
"#,
    ) else {
        return;
    };
    o.expect("alive_after_1_5s", "yes");
    o.expect("alive_after_5_5s", "no");
    o.expect("victim_status", &(128 + libc::SIGKILL).to_string());
    o.expect("running_alive", "yes");
    o.expect("agent_rc", "0");
    o.expect_reaps(vec![stopped_kill(o.pid("stopped"))]);
    let start = one_line(&o.log, " event=start ");
    let reap = one_line(&o.log, " event=reap ");
    o.expect_gap("reaped after the agent started", start, reap, 2000..3000);
}

#[test]
fn stopped_process_is_reaped_only_after_in_state_for_across_once_runs() {
    let Some(o) = run_scenario(
        "stopped-once",
        &["victim"],
        STOPPED_RULE,
        r#"
"$T/bin/victim" 1000 & V=$!; out stopped $V
poll 50 comm_is $V victim || problem not_started
kill -STOP $V
poll 50 st_is $V T || problem not_stopped
for ((i = 0; i < 12; i++)); do
    once; out rc_$i $?
    if dead $V; then out reaped_by_run $i; break; fi
    nap 0.5
done
out runs $i
status victim_status $V
"#,
    ) else {
        return;
    };
    o.expect("victim_status", &(128 + libc::SIGKILL).to_string());
    let run: u32 = o.get("reaped_by_run").parse().expect("run number");
    // Runs start about 0.5 s apart: the first ones (0 s, ~0.5 s, ~1 s) must not reap.
    assert!(run >= 3, "reaped by run {run}\n{}", o.context);
    o.expect_reaps(vec![stopped_kill(o.pid("stopped"))]);
    // Counted from the first run (the clock was kept in state_dir), not restarted
    // by each run.
    let first = o.log.lines().find(|l| l.contains(" event=sample "));
    let reap = one_line(&o.log, " event=reap ");
    o.expect_gap(
        "reaped after the first run",
        first.unwrap(),
        reap,
        2000..3500,
    );
}

// 4. Zombies: SIGCHLD to the parent, or the parent killed, or only a line.

/// A zombie `zchild` of alice's Python parent PA, and one (of alice) of root's
/// Python parent PR; a rule `match = zchild`, `state = zombie` (no user: not root);
/// the agent runs `--once` twice. Each parent appends `chld` to its file on SIGCHLD:
/// one line for the real exit of its child, a second one if the agent sent one.
fn zombie_scenario(tag: &str, action: &str, scope: &str) -> Outcome {
    let s = Scenario::new(tag, &["zchild"]).expect("checked by the caller");
    s.config(
        "",
        &format!("grace = 1s\nscope = {scope}"),
        &format!("[reap.z]\nmatch = zchild\nstate = zombie\naction = {action}\n"),
    );
    s.run(
        r#"
: >"$T/chld_a"; : >"$T/chld_r"; chmod 666 "$T/chld_a"
lines() { N=0; local l; while read -r l; do N=$((N + 1)); done <"$1"; }
lines_are() { lines "$1"; [ "$N" = "$2" ]; }
# zombie_of PID: Z is the only child of PID once it is a zombie zchild.
# (children has no newline: read fails at its end but sets c.)
zombie_of() { Z=; local c=; { read -r c <"/proc/$1/task/$1/children"; } 2>/dev/null; Z=${c% }; [ -n "$Z" ] && comm_is "$Z" zchild && st_is "$Z" Z; }
as 1000 /usr/bin/python3 "$T/zparent.py" "$T/chld_a" "$T/bin/zchild" -1 & PA=$!; out pa $PA
/usr/bin/python3 "$T/zparent.py" "$T/chld_r" "$T/bin/zchild" 1000 & PR=$!; out pr $PR
poll 100 zombie_of $PA && out za $Z || problem no_zombie_a
poll 100 zombie_of $PR && out zr $Z || problem no_zombie_r
poll 50 lines_are "$T/chld_a" 1 || problem no_first_sigchld_a
poll 50 lines_are "$T/chld_r" 1 || problem no_first_sigchld_r
once; out rc1 $?
# Settle: a SIGCHLD handled, or a parent gone; then a second run (nothing new).
poll 10 lines_are "$T/chld_a" 2
poll 10 dead $PA
once; out rc2 $?
nap 0.3
record pa_alive $PA
record pr_alive $PR
lines "$T/chld_a"; out chld_a $N
lines "$T/chld_r"; out chld_r $N
"#,
        limit(),
    )
}

fn zombie_lines(o: &Outcome, action_a: &str) -> Vec<String> {
    let (za, zr) = (o.pid("za"), o.pid("zr"));
    let line_a = match action_a {
        "log" => format!(
            "level=info event=reap pid={za} name=zchild user=alice state=zombie age=* action=log rule=z reason=\"name zchild, state zombie\""
        ),
        act => format!(
            "level=warn event=reap pid={za} name=zchild user=alice state=zombie age=* action={act} rule=z reason=\"name zchild, state zombie\" target={}",
            o.pid("pa")
        ),
    };
    // Root's parent is never signalled by a rule without user = root: only a line.
    let line_r = format!(
        "level=info event=reap pid={zr} name=zchild user=alice state=zombie age=* action=log rule=z reason=\"name zchild, state zombie\""
    );
    let mut v = vec![(za, line_a), (zr, line_r)];
    v.sort();
    v.into_iter().map(|(_, l)| l).collect()
}

/// A zombie scenario (`action`, `scope`) that must record `want` (`key=value`
/// words) and log the lines of `action_a` on alice's zombie.
fn zombie_case(tag: &str, action: &str, scope: &str, want: &str, action_a: &str) {
    if !is_root() {
        return;
    }
    let o = zombie_scenario(tag, action, scope);
    for (key, value) in want.split(' ').filter_map(|w| w.split_once('=')) {
        o.expect(key, value);
    }
    o.expect_reaps(zombie_lines(&o, action_a));
}

#[test]
fn zombie_term_sends_sigchld_to_its_parent() {
    let want = "chld_a=2 pa_alive=yes chld_r=1 pr_alive=yes";
    zombie_case("zombie-term", "term", "all", want, "sigchld");
}

#[test]
fn zombie_kill_kills_its_parent() {
    let want = "pa_alive=no chld_a=1 chld_r=1 pr_alive=yes";
    zombie_case("zombie-kill", "kill", "all", want, "kill_parent");
}

#[test]
fn zombie_log_signals_nothing() {
    let want = "chld_a=1 pa_alive=yes chld_r=1 pr_alive=yes";
    zombie_case("zombie-log", "log", "all", want, "log");
}

#[test]
fn zombie_term_sends_sigchld_under_the_default_scope() {
    let want = "chld_a=2 pa_alive=yes chld_r=1";
    zombie_case("zombie-scope-root", "term", "root", want, "sigchld");
}

/// A process whose main thread exited while another runs on (DEFUNCT_LEADER), the
/// child of an innocent `sh`; `rules` under `scope = all`; one `--once`.
/// `None` (the test is skipped) unless running as root.
fn defunct_leader_scenario(tag: &str, rules: &str) -> Option<Outcome> {
    let s = Scenario::new(tag, &[])?;
    s.config("", "grace = 1s\nscope = all", rules);
    let o = s.run(
        r#"
# threads PID: sets N to the Threads: of PID (0 when gone).
threads() { N=0; local k v; while read -r k v; do [ "$k" = Threads: ] && N=$v; done 2>/dev/null <"/proc/$1/status"; }
threads_are() { threads "$1"; [ "$N" = "$2" ]; }
child_of() { C=; local c=; { read -r c <"/proc/$1/task/$1/children"; } 2>/dev/null; C=${c% }; [ -n "$C" ]; }
# The parent outlives python (the sleep), so its survival means something.
sh -c '/usr/bin/python3 "$T/defunct.py"; echo $? >"$T/py_exit"; sleep 30' & W=$!; out parent $W
poll 50 child_of $W && out victim $C || problem no_child
V=$C
# Leader gone (stat says Z), the other thread alive.
poll 50 comm_is $V victim && poll 50 st_is $V Z && poll 50 threads_are $V 2 || problem not_defunct
once; out rc $?
poll 10 test -s "$T/py_exit"
nap 0.3
record parent_alive $W
threads $V; out victim_threads $N
{ read -r e <"$T/py_exit"; } 2>/dev/null; out py_exit ${e:-none}
"#,
        limit(),
    );
    Some(o)
}

#[test]
fn a_live_process_with_an_exited_main_thread_is_not_a_zombie() {
    let rule = "[reap.z]\nmatch = victim\nstate = zombie\nuser = root\naction = kill\n";
    let Some(o) = defunct_leader_scenario("defunct-zombie-rule", rule) else {
        return;
    };
    // Not a zombie: the rule does not select it, and nobody is signalled.
    o.expect("parent_alive", "yes");
    o.expect("victim_threads", "2");
    o.expect_reaps(Vec::<String>::new());
}

#[test]
fn a_live_process_with_an_exited_main_thread_is_killed_itself() {
    let rule = "[reap.v]\nmatch = victim\nuser = root\naction = kill\n";
    let Some(o) = defunct_leader_scenario("defunct-kill", rule) else {
        return;
    };
    // The process itself is killed (all its threads); its parent is untouched.
    o.expect("victim_threads", "0");
    o.expect("py_exit", &(128 + libc::SIGKILL).to_string());
    o.expect("parent_alive", "yes");
    let v = o.pid("victim");
    let reaps = o.reaps();
    assert_eq!(reaps.len(), 1, "{}", o.context);
    assert!(
        reaps[0].starts_with(&format!(
            "level=warn event=reap pid={v} name=victim user=root "
        )) && reaps[0].contains(" action=kill rule=v ")
            && !reaps[0].contains(" target="),
        "{}",
        o.context
    );
}

// 5. PID 1, the agent and its ancestors, whatever the rule.

#[test]
fn pid1_the_agent_and_its_parent_survive_match_all_kill() {
    let Some(s) = Scenario::new("protect", &["victim", "keeper"]) else {
        return;
    };
    s.config(
        "",
        "grace = 1s\nprotect = keeper",
        "[reap.all]\nmatch = *\nuser = root\naction = kill\n",
    );
    // From here on nothing in this script forks but what it means to: a subshell
    // would be a target too.
    let o = s.run(
        r#"
"$T/bin/victim" 1000 & V=$!; out victim $V
"$T/bin/keeper" 1000 & K=$!; out keeper $K
poll 50 comm_is $V victim && poll 50 comm_is $K keeper || problem not_started
sh -c '"$A" -c "$T/agent.ini" >>"$T/agent.out" 2>&1; echo $? >"$T/exit"' & W=$!; out wrapper $W
poll 50 dead $V
record victim_alive $V
nap 1
# The agent: the wrapper's only child.
{ read -r AG <"/proc/$W/task/$W/children"; } 2>/dev/null; AG=${AG% }; out agent ${AG:-none}
record pid1_alive 1
record wrapper_alive $W
record agent_alive $AG
record keeper_alive $K
kill -TERM $AG
poll 50 test -s "$T/exit"
{ read -r rc <"$T/exit"; } 2>/dev/null; out agent_rc ${rc:-none}
poll 30 dead $W; status wrapper_status $W

# The same as a one-shot under a wrapper.
"$T/bin/victim" 1000 & V2=$!; out victim2 $V2
poll 50 comm_is $V2 victim || problem not_started2
sh -c '"$A" -c "$T/agent.ini" --once >>"$T/agent.out" 2>&1; echo $? >"$T/exit2"' & W2=$!; out wrapper2 $W2
poll 50 test -s "$T/exit2"
{ read -r rc <"$T/exit2"; } 2>/dev/null; out once_rc ${rc:-none}
poll 30 dead $W2; status wrapper2_status $W2
poll 50 dead $V2
record victim2_alive $V2
record keeper_alive2 $K
"#,
        limit(),
    );
    o.expect("victim_alive", "no");
    o.expect("pid1_alive", "yes");
    o.expect("wrapper_alive", "yes");
    o.expect("agent_alive", "yes");
    o.expect("keeper_alive", "yes");
    o.expect("agent_rc", "0");
    o.expect("wrapper_status", "0");
    o.expect_nagios("once_rc");
    o.expect("wrapper2_status", "0");
    o.expect("victim2_alive", "no");
    o.expect("keeper_alive2", "yes");
    o.expect_reaps(vec![
        format!(
            "level=warn event=reap pid={} name=victim user=root state=sleeping age=* action=kill rule=all reason=\"name *\"",
            o.pid("victim")
        ),
        format!(
            "level=warn event=reap pid={} name=victim user=root state=sleeping age=* action=kill rule=all reason=\"name *\"",
            o.pid("victim2")
        ),
    ]);
    let start = one_line(&o.log, " mode=service ");
    assert!(
        start.contains(&format!(" pid={} ", o.pid("agent"))) && start.contains(" pidfd=yes "),
        "{start}"
    );
}

// 6. A reused PID is never hit.

#[test]
fn a_reused_pid_is_not_escalated_in_the_loop() {
    let Some(s) = Scenario::new("reuse-loop", &["victim", "bystander"]) else {
        return;
    };
    s.config("", "grace = 2s", TERM_RULE);
    let o = s.run(
        r#"
sh -c 'trap "" TERM; exec "$0" 1000' "$T/bin/victim" & P=$!; out victim $P
poll 50 comm_is $P victim || problem not_started
agent_bg
poll 50 logged "action=term" || problem no_term
kill -KILL $P; poll 30 dead $P; status victim_status $P
# The next PID is P: nothing forks between these two lines.
echo $((P - 1)) >/proc/sys/kernel/ns_last_pid
"$T/bin/bystander" 1000 & B=$!; out bystander $B
poll 50 comm_is $B bystander || problem bystander_not_started
# Past the grace of the SIGTERM sent to the victim (2 s), by a margin.
nap 3
record bystander_alive $B
stop_agent
"#,
        limit(),
    );
    assert_eq!(o.pid("bystander"), o.pid("victim"), "{}", o.context);
    o.expect("victim_status", &(128 + libc::SIGKILL).to_string());
    o.expect("bystander_alive", "yes");
    o.expect("agent_rc", "0");
    o.expect_reaps(vec![victim_term(o.pid("victim"))]);
}

#[test]
fn a_reused_pid_is_not_escalated_across_once_runs() {
    // Between --once runs no pidfd is kept: only the start time in state_dir tells
    // the old process from the new. The newcomer even has the victim's name and
    // ignores SIGTERM: it is a new process, so it gets a SIGTERM of its own (and a
    // grace of its own), never the old one's SIGKILL.
    let Some(o) = run_scenario(
        "reuse-once",
        &["victim"],
        TERM_RULE,
        r#"
sh -c 'trap "" TERM; exec "$0" 1000' "$T/bin/victim" & P=$!; out victim $P
poll 50 comm_is $P victim || problem not_started
once; out rc1 $?
record victim_alive_after_run1 $P
kill -KILL $P; poll 30 dead $P; status victim_status $P
echo $((P - 1)) >/proc/sys/kernel/ns_last_pid
sh -c 'trap "" TERM; exec "$0" 1000' "$T/bin/victim" & B=$!; out lookalike $B
poll 50 comm_is $B victim || problem lookalike_not_started
# Past the grace of the first SIGTERM.
nap 1.5
once; out rc2 $?
nap 0.3
record lookalike_alive $B
"#,
    ) else {
        return;
    };
    assert_eq!(o.pid("lookalike"), o.pid("victim"), "{}", o.context);
    o.expect("victim_alive_after_run1", "yes");
    o.expect("lookalike_alive", "yes");
    let term = victim_term(o.pid("victim"));
    o.expect_reaps(vec![term.clone(), term]);
}

/// A victim (a child of a Python parent that never waits) ends on the SIGTERM and
/// stays a zombie: it is not "still running", so there is no escalation.
/// `None` (the test is skipped) unless running as root.
fn term_into_zombie(tag: &str, once: bool) -> Option<Outcome> {
    let first = if once { "once" } else { "agent_bg" };
    let last = if once { "once" } else { "stop_agent" };
    run_scenario(
        tag,
        &["victim"],
        TERM_RULE,
        &format!(
            r#"
child_of() {{ C=; local c=; {{ read -r c <"/proc/$1/task/$1/children"; }} 2>/dev/null; C=${{c% }}; [ -n "$C" ]; }}
/usr/bin/python3 "$T/zparent.py" /dev/null "$T/bin/victim" -1 1000 & PA=$!; out parent $PA
poll 50 child_of $PA && poll 50 comm_is $C victim && out victim $C || problem not_started
V=$C
{first}
poll 50 st_is $V Z || problem no_zombie
# Past the grace.
nap 1.5
{last}
record parent_alive $PA
st $V; out victim_state $ST
"#
        ),
    )
}

/// A `term_into_zombie` outcome, when there is one: only the SIGTERM.
fn assert_term_only(o: Option<Outcome>) {
    let Some(o) = o else {
        return;
    };
    o.expect("parent_alive", "yes");
    o.expect("victim_state", "Z");
    o.expect_reaps(vec![victim_term(o.pid("victim"))]);
}

#[test]
fn a_terminated_process_left_a_zombie_is_not_escalated_in_the_loop() {
    assert_term_only(term_into_zombie("term-zombie-loop", false));
}

#[test]
fn a_terminated_process_left_a_zombie_is_not_escalated_across_once_runs() {
    assert_term_only(term_into_zombie("term-zombie-once", true));
}

// 7. action = log and dry runs signal nothing.

#[test]
fn action_log_signals_nothing_and_logs_once() {
    let Some(o) = run_scenario(
        "log",
        &["victim"],
        "[reap.v]\nmatch = victim\naction = log\n",
        r#"
as 1000 "$T/bin/victim" 1000 & V1=$!; out v1 $V1
as 1001 "$T/bin/victim" 1000 & V2=$!; out v2 $V2
poll 50 comm_is $V1 victim && poll 50 comm_is $V2 victim || problem not_started
agent_bg
samples() { [ "$(grep -c ' event=sample ' "$T/agent.log" 2>/dev/null)" -ge 8 ]; }
poll 50 samples || problem too_few_cycles
record v1_alive $V1
record v2_alive $V2
stop_agent
"#,
    ) else {
        return;
    };
    o.expect("v1_alive", "yes");
    o.expect("v2_alive", "yes");
    o.expect("agent_rc", "0");
    o.expect_reaps(vec![
        format!(
            "level=info event=reap pid={} name=victim user=alice state=sleeping age=* action=log rule=v reason=\"name victim\"",
            o.pid("v1")
        ),
        format!(
            "level=info event=reap pid={} name=victim user=bob state=sleeping age=* action=log rule=v reason=\"name victim\"",
            o.pid("v2")
        ),
    ]);
}

#[test]
fn dry_run_flag_signals_nothing() {
    let Some(o) = run_scenario(
        "dry-flag",
        &["victim"],
        "[reap.v]\nmatch = victim\naction = term\n",
        r#"
as 1000 "$T/bin/victim" 1000 & V=$!; out v $V
poll 50 comm_is $V victim || problem not_started
agent_bg --dry-run
samples() { [ "$(grep -c ' event=sample ' "$T/agent.log" 2>/dev/null)" -ge 8 ]; }
poll 50 samples || problem too_few_cycles
record v_alive $V
stop_agent
"#,
    ) else {
        return;
    };
    o.expect("v_alive", "yes");
    o.expect("agent_rc", "0");
    o.expect_reaps(vec![format!(
        "level=warn event=reap pid={} name=victim user=alice state=sleeping age=* action=term rule=v reason=\"name victim\" dry_run=yes",
        o.pid("v")
    )]);
    let start = one_line(&o.log, " event=start ");
    assert!(start.contains(" dry_run=yes "), "{start}");
}

#[test]
fn dry_run_config_signals_nothing_across_once_runs() {
    let Some(s) = Scenario::new("dry-config", &["victim"]) else {
        return;
    };
    s.config(
        "dry_run = yes",
        "grace = 1s",
        "[reap.v]\nmatch = victim\naction = kill\n",
    );
    let o = s.run(
        r#"
as 1000 "$T/bin/victim" 1000 & V=$!; out v $V
poll 50 comm_is $V victim || problem not_started
once; out rc1 $?
once; out rc2 $?
record v_alive $V
"#,
        limit(),
    );
    o.expect("v_alive", "yes");
    o.expect_nagios("rc1");
    o.expect_nagios("rc2");
    // Decided once: the second run remembers the process was dealt with.
    o.expect_reaps(vec![format!(
        "level=warn event=reap pid={} name=victim user=alice state=sleeping age=* action=kill rule=v reason=\"name victim\" dry_run=yes",
        o.pid("v")
    )]);
}

// 8. One actor at a time.

#[test]
fn a_once_run_beside_the_service_signals_nothing() {
    let Some(s) = Scenario::new("beside", &["victim"]) else {
        return;
    };
    // The service's rule spares young processes; the one-shot's would kill it.
    s.config(
        "",
        "grace = 1s",
        "[reap.v]\nmatch = victim\nolder_than = 1h\naction = kill\n",
    );
    s.config_file(
        "once.ini",
        "",
        "grace = 1s",
        "[reap.v]\nmatch = victim\naction = kill\n",
    );
    let o = s.run(
        r#"
as 1000 "$T/bin/victim" 1000 & V=$!; out v $V
poll 50 comm_is $V victim || problem not_started
agent_bg
poll 50 logged " event=sample " || problem no_sample
"$A" -c "$T/once.ini" --once >>"$T/agent.out" 2>&1; out once_rc $?
nap 0.3
record v_alive $V
stop_agent
"#,
        limit(),
    );
    o.expect_nagios("once_rc");
    o.expect("v_alive", "yes");
    o.expect("agent_rc", "0");
    o.expect_reaps(Vec::<String>::new());
}
