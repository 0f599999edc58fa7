//! The process reaper and zombies, against real processes in a private PID
//! namespace (tests/common/reaper.rs): a zombie's parent gets SIGCHLD, or is
//! killed, or only a line is logged; a live process whose main thread exited
//! looks like a zombie but is not one; a process that a SIGTERM left a zombie is
//! not escalated. The zombies' parents are small Python programs in the test's
//! temp dir. These tests need root (unshare, setpriv); as another user they are
//! skipped.

mod common;

use common::*;

// 1. Zombies: SIGCHLD to the parent, or the parent killed, or only a line.

/// A zombie `zchild` of alice's Python parent PA, and one (of alice) of root's
/// Python parent PR; a rule `match = zchild`, `state = zombie` (no user: not root)
/// with `action`; the agent runs `--once` twice. Each parent appends `chld` to its
/// file on SIGCHLD: one line for the real exit of its child, a second one if the
/// agent sent one.
fn zombie_scenario(tag: &str, action: &str, scope: &str) -> Outcome {
    let s = Scenario::new(tag, &["zchild"]).expect("checked by the caller");
    s.config(
        "",
        &format!("grace = 1s\nscope = {scope}"),
        &format!("[reap.z]\nmatch = zchild\nstate = zombie\naction = {action}\n"),
    );
    // What the first run brings about, waited for before the second.
    let settle = match action {
        "term" => "poll lines_are \"$T/chld_a\" 2",
        "kill" => "poll dead $PA",
        _ => ":",
    };
    s.run(&format!(
        r#"
: >"$T/chld_a"; : >"$T/chld_r"; chmod 666 "$T/chld_a"
lines() {{ N=0; local l; while read -r l; do N=$((N + 1)); done <"$1"; }}
lines_are() {{ lines "$1"; [ "$N" = "$2" ]; }}
# zombie_of PID: Z is the only child of PID once it is a zombie zchild.
# (children has no newline: read fails at its end but sets c.)
zombie_of() {{ Z=; local c=; {{ read -r c <"/proc/$1/task/$1/children"; }} 2>/dev/null; Z=${{c% }}; [ -n "$Z" ] && comm_is "$Z" zchild && st_is "$Z" Z; }}
as 1000 /usr/bin/python3 "$T/zparent.py" "$T/chld_a" "$T/bin/zchild" -1 & PA=$!; out pa $PA
/usr/bin/python3 "$T/zparent.py" "$T/chld_r" "$T/bin/zchild" 1000 & PR=$!; out pr $PR
poll zombie_of $PA && out za $Z || problem no_zombie_a
poll zombie_of $PR && out zr $Z || problem no_zombie_r
poll lines_are "$T/chld_a" 1 || problem no_first_sigchld_a
poll lines_are "$T/chld_r" 1 || problem no_first_sigchld_r
once; out rc1 $?
# Settle: a SIGCHLD handled, or a parent gone; then a second run (nothing new).
{settle}
once; out rc2 $?
nap 0.3
record pa_alive $PA
record pr_alive $PR
lines "$T/chld_a"; out chld_a $N
lines "$T/chld_r"; out chld_r $N
"#
    ))
}

/// The reap lines of a zombie scenario whose rule did `action_a` to alice's
/// parent: a line with the target, or, for `log`, only a line.
fn zombie_lines(o: &Outcome, action_a: &str) -> Vec<String> {
    let (za, zr) = (o.pid("za"), o.pid("zr"));
    let reason = "name zchild, state zombie";
    let line_a = match action_a {
        "log" => reap(za, "zchild", "alice", "zombie", "log", "z", reason),
        act => format!(
            "{} target={}",
            reap(za, "zchild", "alice", "zombie", act, "z", reason),
            o.pid("pa")
        ),
    };
    // Root's parent is never signalled by a rule without user = root: only a line.
    let line_r = reap(zr, "zchild", "alice", "zombie", "log", "z", reason);
    let mut v = vec![(za, line_a), (zr, line_r)];
    v.sort();
    v.into_iter().map(|(_, l)| l).collect()
}

/// Runs a zombie scenario and checks what it recorded (`want`: key, value) and
/// its reap lines.
fn zombies(tag: &str, action: &str, scope: &str, logged_as: &str, want: &[(&str, &str)]) {
    if !is_root() {
        return;
    }
    let o = zombie_scenario(tag, action, scope);
    for (key, value) in want {
        o.expect(key, value);
    }
    o.expect_reaps(zombie_lines(&o, logged_as));
}

#[test]
fn zombie_term_sends_sigchld_to_its_parent() {
    let want = [
        ("chld_a", "2"),
        ("pa_alive", "yes"),
        ("chld_r", "1"),
        ("pr_alive", "yes"),
    ];
    zombies("zombie-term", "term", "all", "sigchld", &want);
}

#[test]
fn zombie_kill_kills_its_parent() {
    let want = [
        ("pa_alive", "no"),
        ("chld_a", "1"),
        ("chld_r", "1"),
        ("pr_alive", "yes"),
    ];
    zombies("zombie-kill", "kill", "all", "kill_parent", &want);
}

#[test]
fn zombie_log_signals_nothing() {
    let want = [
        ("chld_a", "1"),
        ("pa_alive", "yes"),
        ("chld_r", "1"),
        ("pr_alive", "yes"),
    ];
    zombies("zombie-log", "log", "all", "log", &want);
}

#[test]
fn zombie_term_sends_sigchld_under_the_default_scope() {
    let want = [("chld_a", "2"), ("pa_alive", "yes"), ("chld_r", "1")];
    zombies("zombie-scope-root", "term", "root", "sigchld", &want);
}

// 2. A live process whose main thread exited is not a zombie.

/// A process whose main thread exited while another runs on (DEFUNCT_LEADER), the
/// child of an innocent `sh`; `rules` under `scope = all`; one `--once`. With
/// `killed`, the run is expected to end python (its exit is waited for).
fn defunct_leader_scenario(tag: &str, rules: &str, killed: bool) -> Outcome {
    let s = Scenario::new(tag, &[]).expect("checked by the caller");
    s.config("", "grace = 1s\nscope = all", rules);
    let settle = if killed {
        "poll test -s \"$T/py_exit\""
    } else {
        ":"
    };
    s.run(&format!(
        r#"
# threads PID: sets N to the Threads: of PID (0 when gone).
threads() {{ N=0; local k v; while read -r k v; do [ "$k" = Threads: ] && N=$v; done 2>/dev/null <"/proc/$1/status"; }}
threads_are() {{ threads "$1"; [ "$N" = "$2" ]; }}
child_of() {{ C=; local c=; {{ read -r c <"/proc/$1/task/$1/children"; }} 2>/dev/null; C=${{c% }}; [ -n "$C" ]; }}
# The parent outlives python (the sleep), so its survival means something.
sh -c '/usr/bin/python3 "$T/defunct.py"; echo $? >"$T/py_exit"; sleep 30' & W=$!; out parent $W
poll child_of $W && out victim $C || problem no_child
V=$C
# Leader gone (stat says Z), the other thread alive.
poll comm_is $V victim && poll st_is $V Z && poll threads_are $V 2 || problem not_defunct
once; out rc $?
{settle}
nap 0.3
record parent_alive $W
threads $V; out victim_threads $N
{{ read -r e <"$T/py_exit"; }} 2>/dev/null; out py_exit ${{e:-none}}
"#
    ))
}

#[test]
fn a_live_process_with_an_exited_main_thread_is_not_a_zombie() {
    if !is_root() {
        return;
    }
    let rule = "[reap.z]\nmatch = victim\nstate = zombie\nuser = root\naction = kill\n";
    let o = defunct_leader_scenario("defunct-zombie-rule", rule, false);
    // Not a zombie: the rule does not select it, and nobody is signalled.
    o.expect("parent_alive", "yes");
    o.expect("victim_threads", "2");
    o.expect_reaps(Vec::<String>::new());
}

#[test]
fn a_live_process_with_an_exited_main_thread_is_killed_itself() {
    if !is_root() {
        return;
    }
    let rule = "[reap.v]\nmatch = victim\nuser = root\naction = kill\n";
    let o = defunct_leader_scenario("defunct-kill", rule, true);
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

// 3. A terminated process left a zombie is not escalated.

/// A victim (a child of a Python parent that never waits) ends on the SIGTERM and
/// stays a zombie: it is not "still running", so there is no escalation.
fn term_into_zombie(tag: &str, once: bool) {
    if !is_root() {
        return;
    }
    let s = Scenario::new(tag, &["victim"]).expect("checked above");
    let rule = "[reap.v]\nmatch = victim\nuser = root\naction = term\n";
    s.config("", "grace = 1s", rule);
    let first = if once { "once" } else { "agent_bg" };
    let last = if once { "once" } else { "stop_agent" };
    let o = s.run(&format!(
        r#"
child_of() {{ C=; local c=; {{ read -r c <"/proc/$1/task/$1/children"; }} 2>/dev/null; C=${{c% }}; [ -n "$C" ]; }}
/usr/bin/python3 "$T/zparent.py" /dev/null "$T/bin/victim" -1 1000 & PA=$!; out parent $PA
poll child_of $PA && poll comm_is $C victim && out victim $C || problem not_started
V=$C
{first}
poll st_is $V Z || problem no_zombie
# Past the grace.
nap 1.5
{last}
record parent_alive $PA
st $V; out victim_state $ST
"#
    ));
    o.expect("parent_alive", "yes");
    o.expect("victim_state", "Z");
    let v = o.pid("victim");
    o.expect_reaps(vec![term_victim(v)]);
}

#[test]
fn a_terminated_process_left_a_zombie_is_not_escalated_in_the_loop() {
    term_into_zombie("term-zombie-loop", false);
}

#[test]
fn a_terminated_process_left_a_zombie_is_not_escalated_across_once_runs() {
    term_into_zombie("term-zombie-once", true);
}
