//! The process reaper against real processes: what a rule selects, SIGTERM then
//! SIGKILL after the grace, `in_state_for` (in the loop and across `--once` runs),
//! PID 1, the agent and its ancestors, reused pids, `action = log` and dry runs,
//! and one actor at a time. (Zombies and processes that look like them:
//! reaper_zombies.rs.)
//!
//! Every scenario runs in a private PID namespace (tests/common/reaper.rs):
//! inside, the script is PID 1 and sees only the processes it starts, so the agent
//! cannot see, let alone signal, anything of this machine; when the test kills
//! `unshare` (a scenario that overruns), the whole namespace dies with it. The
//! processes a scenario starts are copies of /bin/sleep under distinctive names in
//! the test's temp dir. The script writes what it saw (PIDs, who is alive, exit
//! statuses) to T/out as `key=value` lines; the test asserts on those and on the
//! exact `event=reap` lines of T/agent.log. How long a step took is never
//! asserted: "not sooner" is a lower bound on the log's clock, "at the first
//! chance" counts the cycles (100 ms apart at the least) in between.
//!
//! These tests need root (unshare, setpriv); as another user they are skipped with
//! a message.

mod common;

use common::*;

/// The rule most scenarios use: root's `victim`, SIGTERM.
const TERM_VICTIM: &str = "[reap.v]\nmatch = victim\nuser = root\naction = term\n";

/// At most this many 100 ms cycles fit into `secs` seconds, with some to spare
/// (see tests/tasks_children.rs).
fn cycles_in(secs: usize) -> usize {
    secs * 10 + 3
}

/// The exit status of a shell's child killed by `sig`.
fn died_of(sig: i32) -> String {
    (128 + sig).to_string()
}

// 1. Only what a rule selects.

#[test]
fn only_processes_a_rule_selects_are_signalled() {
    let rules = "[reap.byname]\nmatch = victim\nuser = alice\naction = term\n\n\
                 [reap.bycmd]\ncmdline = *worker 999\naction = kill\n";
    let bins = ["victim", "victim2", "other", "worker"];
    let Some(s) = Scenario::with("select", &bins, "grace = 1s", rules) else {
        return;
    };
    let o = s.run(
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
for k in "${!P[@]}"; do poll comm_is "${P[$k]}" "${NAME[$k]}" || problem "not_started_$k"; done
once; out rc $?
poll dead "${P[alice_victim]}"
poll dead "${P[bob_worker999]}"
for k in "${!P[@]}"; do record "alive_$k" "${P[$k]}"; done
status status_alice_victim "${P[alice_victim]}"
status status_bob_worker999 "${P[bob_worker999]}"
"#,
    );
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
    o.expect("status_alice_victim", &died_of(libc::SIGTERM));
    o.expect("status_bob_worker999", &died_of(libc::SIGKILL));
    let (v, w) = (o.pid("alice_victim"), o.pid("bob_worker999"));
    o.expect_reaps(vec![
        reap(
            v,
            "victim",
            "alice",
            "sleeping",
            "term",
            "byname",
            "name victim",
        ),
        reap(
            w,
            "worker",
            "bob",
            "sleeping",
            "kill",
            "bycmd",
            "cmdline *worker 999",
        ),
    ]);
}

// 2. SIGTERM, then SIGKILL after grace.

#[test]
fn sigterm_ignored_is_escalated_to_sigkill_after_grace() {
    let Some(s) = Scenario::with("grace", &["victim"], "grace = 1s", TERM_VICTIM) else {
        return;
    };
    let o = s.run(
        r#"
sh -c 'trap "" TERM; exec "$0" 1000' "$T/bin/victim" & V=$!; out victim $V
poll comm_is $V victim || problem not_started
agent_bg
poll logged "action=term" || problem no_term
poll dead $V
record alive_after_the_escalation $V
status victim_status $V
nap 0.5
stop_agent
"#,
    );
    o.expect("alive_after_the_escalation", "no");
    o.expect("victim_status", &died_of(libc::SIGKILL));
    o.expect("agent_rc", "0");
    let v = o.pid("victim");
    o.expect_reaps(vec![
            term_victim(v),
            format!(
                "level=warn event=reap pid={v} name=victim action=kill rule=v reason=\"still running 1s after SIGTERM\""
            ),
        ]);
    // The escalation came a grace after the SIGTERM (not sooner), at the first
    // cycle past it.
    let term = ts_ms(one_line(&o.log, " action=term "));
    let kill = ts_ms(one_line(&o.log, " action=kill "));
    assert!(
        kill - term >= 1000,
        "SIGKILL {} ms after SIGTERM\n{}",
        kill - term,
        o.context
    );
    let cycles = samples_between(&o.log, " action=term ", " action=kill ");
    assert!(cycles <= cycles_in(1), "{cycles} cycles\n{}", o.context);
}

// 3. in_state_for, in the loop and across --once runs.

const STOPPED_2S: &str =
    "[reap.v]\nmatch = victim\nuser = root\nstate = stopped\nin_state_for = 2s\naction = kill\n";

/// The one reap line of the stopped-victim scenarios.
fn reaped_stopped(o: &Outcome) {
    let reason = "name victim, state stopped, in state 2s >= 2s";
    o.expect_reaps(vec![reap(
        o.pid("stopped"),
        "victim",
        "root",
        "stopped",
        "kill",
        "v",
        reason,
    )]);
}

#[test]
fn stopped_process_is_reaped_only_after_in_state_for_in_the_loop() {
    let Some(s) = Scenario::with("stopped-loop", &["victim"], "grace = 1s", STOPPED_2S) else {
        return;
    };
    let o = s.run(
        r#"
"$T/bin/victim" 1000 & V=$!; out stopped $V
"$T/bin/victim" 1000 & R=$!; out running $R
poll comm_is $V victim && poll comm_is $R victim || problem not_started
kill -STOP $V
poll st_is $V T || problem not_stopped
agent_bg
poll dead $V
record alive_at_the_end $V
status victim_status $V
record running_alive $R
stop_agent
"#,
    );
    o.expect("alive_at_the_end", "no");
    o.expect("victim_status", &died_of(libc::SIGKILL));
    o.expect("running_alive", "yes");
    o.expect("agent_rc", "0");
    reaped_stopped(&o);
    // Not before in_state_for (by the log's clock), and at the first cycle past it.
    let start = ts_ms(one_line(&o.log, " event=start "));
    let reaped = ts_ms(one_line(&o.log, " event=reap "));
    assert!(
        reaped - start >= 2000,
        "reaped {} ms after the agent started\n{}",
        reaped - start,
        o.context
    );
    let cycles = samples_between(&o.log, " event=start ", " event=reap ");
    assert!(cycles <= cycles_in(2), "{cycles} cycles\n{}", o.context);
}

#[test]
fn stopped_process_is_reaped_only_after_in_state_for_across_once_runs() {
    let Some(s) = Scenario::with("stopped-once", &["victim"], "grace = 1s", STOPPED_2S) else {
        return;
    };
    let o = s.run(
        r#"
"$T/bin/victim" 1000 & V=$!; out stopped $V
poll comm_is $V victim || problem not_started
kill -STOP $V
poll st_is $V T || problem not_stopped
for ((i = 0; i < 12; i++)); do
    once; out rc_$i $?
    if dead $V; then out reaped_by_run $i; break; fi
    nap 0.5
done
out runs $i
status victim_status $V
"#,
    );
    o.expect("victim_status", &died_of(libc::SIGKILL));
    // Counted from the first run (the clock was kept in state_dir), not restarted
    // by each run: runs a few milliseconds long would never see it stopped for 2 s.
    let run: u32 = o.get("reaped_by_run").parse().expect("run number");
    // Runs start at least 0.5 s apart: the first ones (0 s, ~0.5 s, ~1 s) must not reap.
    assert!(run >= 3, "reaped by run {run}\n{}", o.context);
    reaped_stopped(&o);
    let first = first_ts_ms(&o.log, " event=sample ");
    let reaped = ts_ms(one_line(&o.log, " event=reap "));
    assert!(
        reaped - first >= 2000,
        "reaped {} ms after the first run\n{}",
        reaped - first,
        o.context
    );
}

// 4. PID 1, the agent and its ancestors, whatever the rule.

#[test]
fn pid1_the_agent_and_its_parent_survive_match_all_kill() {
    let rules = "[reap.all]\nmatch = *\nuser = root\naction = kill\n";
    let bins = ["victim", "keeper"];
    let Some(s) = Scenario::with("protect", &bins, "grace = 1s\nprotect = keeper", rules) else {
        return;
    };
    // From here on nothing in this script forks but what it means to: a subshell
    // would be a target too.
    let o = s.run(
        r#"
"$T/bin/victim" 1000 & V=$!; out victim $V
"$T/bin/keeper" 1000 & K=$!; out keeper $K
poll comm_is $V victim && poll comm_is $K keeper || problem not_started
sh -c '"$A" -c "$T/agent.ini" >>"$T/agent.out" 2>&1; echo $? >"$T/exit"' & W=$!; out wrapper $W
poll dead $V
record victim_alive $V
nap 1
# The agent: the wrapper's only child.
{ read -r AG <"/proc/$W/task/$W/children"; } 2>/dev/null; AG=${AG% }; out agent ${AG:-none}
record pid1_alive 1
record wrapper_alive $W
record agent_alive $AG
record keeper_alive $K
kill -TERM $AG
poll test -s "$T/exit"
{ read -r rc <"$T/exit"; } 2>/dev/null; out agent_rc ${rc:-none}
poll dead $W; status wrapper_status $W

# The same as a one-shot under a wrapper.
"$T/bin/victim" 1000 & V2=$!; out victim2 $V2
poll comm_is $V2 victim || problem not_started2
sh -c '"$A" -c "$T/agent.ini" --once >>"$T/agent.out" 2>&1; echo $? >"$T/exit2"' & W2=$!; out wrapper2 $W2
poll test -s "$T/exit2"
{ read -r rc <"$T/exit2"; } 2>/dev/null; out once_rc ${rc:-none}
poll dead $W2; status wrapper2_status $W2
poll dead $V2
record victim2_alive $V2
record keeper_alive2 $K
"#,
    );
    for (key, want) in [
        ("victim_alive", "no"),
        ("pid1_alive", "yes"),
        ("wrapper_alive", "yes"),
        ("agent_alive", "yes"),
        ("keeper_alive", "yes"),
        ("agent_rc", "0"),
        ("wrapper_status", "0"),
        ("wrapper2_status", "0"),
        ("victim2_alive", "no"),
        ("keeper_alive2", "yes"),
    ] {
        o.expect(key, want);
    }
    o.expect_nagios("once_rc");
    let killed = |key: &str| {
        reap(
            o.pid(key),
            "victim",
            "root",
            "sleeping",
            "kill",
            "all",
            "name *",
        )
    };
    o.expect_reaps(vec![killed("victim"), killed("victim2")]);
    let start = one_line(&o.log, " mode=service ");
    assert!(
        start.contains(&format!(" pid={} ", o.pid("agent"))) && start.contains(" pidfd=yes "),
        "{start}"
    );
}

// 5. A reused PID is never hit.

#[test]
fn a_reused_pid_is_not_escalated_in_the_loop() {
    let bins = ["victim", "bystander"];
    let Some(s) = Scenario::with("reuse-loop", &bins, "grace = 2s", TERM_VICTIM) else {
        return;
    };
    let o = s.run(
        r#"
sh -c 'trap "" TERM; exec "$0" 1000' "$T/bin/victim" & P=$!; out victim $P
poll comm_is $P victim || problem not_started
agent_bg
poll logged "action=term" || problem no_term
kill -KILL $P; poll dead $P; status victim_status $P
# The next PID is P: nothing forks between these two lines.
echo $((P - 1)) >/proc/sys/kernel/ns_last_pid
"$T/bin/bystander" 1000 & B=$!; out bystander $B
poll comm_is $B bystander || problem bystander_not_started
# Past the grace of the SIGTERM sent to the victim (2 s), by a margin.
nap 3
record bystander_alive $B
stop_agent
"#,
    );
    assert_eq!(o.pid("bystander"), o.pid("victim"), "{}", o.context);
    o.expect("victim_status", &died_of(libc::SIGKILL));
    o.expect("bystander_alive", "yes");
    o.expect("agent_rc", "0");
    let p = o.pid("victim");
    o.expect_reaps(vec![term_victim(p)]);
}

#[test]
fn a_reused_pid_is_not_escalated_across_once_runs() {
    // Between --once runs no pidfd is kept: only the start time in state_dir tells
    // the old process from the new. The newcomer even has the victim's name and
    // ignores SIGTERM: it is a new process, so it gets a SIGTERM of its own (and a
    // grace of its own), never the old one's SIGKILL.
    let Some(s) = Scenario::with("reuse-once", &["victim"], "grace = 1s", TERM_VICTIM) else {
        return;
    };
    let o = s.run(
        r#"
sh -c 'trap "" TERM; exec "$0" 1000' "$T/bin/victim" & P=$!; out victim $P
poll comm_is $P victim || problem not_started
once; out rc1 $?
record victim_alive_after_run1 $P
kill -KILL $P; poll dead $P; status victim_status $P
echo $((P - 1)) >/proc/sys/kernel/ns_last_pid
sh -c 'trap "" TERM; exec "$0" 1000' "$T/bin/victim" & B=$!; out lookalike $B
poll comm_is $B victim || problem lookalike_not_started
# Past the grace of the first SIGTERM.
nap 1.5
once; out rc2 $?
nap 0.3
record lookalike_alive $B
"#,
    );
    assert_eq!(o.pid("lookalike"), o.pid("victim"), "{}", o.context);
    o.expect("victim_alive_after_run1", "yes");
    o.expect("lookalike_alive", "yes");
    let term = term_victim(o.pid("victim"));
    o.expect_reaps(vec![term.clone(), term]);
}

// 6. action = log and dry runs signal nothing.

/// Starts alice's `victim` (and bob's, with `bob`), the service with `args`
/// until it cycled 8 times, then records whether they live and stops it.
fn logged_only(s: &Scenario, bob: bool, args: &str) -> Outcome {
    let bob = if bob {
        "as 1001 \"$T/bin/victim\" 1000 & V2=$!; out v2 $V2\npoll comm_is $V2 victim || problem not_started\n"
    } else {
        ""
    };
    s.run(&format!(
        r#"
as 1000 "$T/bin/victim" 1000 & V=$!; out v $V
poll comm_is $V victim || problem not_started
{bob}agent_bg {args}
samples() {{ [ "$(grep -c ' event=sample ' "$T/agent.log" 2>/dev/null)" -ge 8 ]; }}
poll samples || problem too_few_cycles
record v_alive $V
[ -n "${{V2:-}}" ] && record v2_alive $V2
stop_agent
"#
    ))
}

#[test]
fn action_log_signals_nothing_and_logs_once() {
    let rules = "[reap.v]\nmatch = victim\naction = log\n";
    let Some(s) = Scenario::with("log", &["victim"], "grace = 1s", rules) else {
        return;
    };
    let o = logged_only(&s, true, "");
    o.expect("v_alive", "yes");
    o.expect("v2_alive", "yes");
    o.expect("agent_rc", "0");
    let logged = |key: &str, user: &str| {
        reap(
            o.pid(key),
            "victim",
            user,
            "sleeping",
            "log",
            "v",
            "name victim",
        )
    };
    o.expect_reaps(vec![logged("v", "alice"), logged("v2", "bob")]);
}

#[test]
fn dry_run_flag_signals_nothing() {
    let rules = "[reap.v]\nmatch = victim\naction = term\n";
    let Some(s) = Scenario::with("dry-flag", &["victim"], "grace = 1s", rules) else {
        return;
    };
    let o = logged_only(&s, false, "--dry-run");
    o.expect("v_alive", "yes");
    o.expect("agent_rc", "0");
    let line = reap(
        o.pid("v"),
        "victim",
        "alice",
        "sleeping",
        "term",
        "v",
        "name victim",
    );
    o.expect_reaps(vec![line + " dry_run=yes"]);
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
poll comm_is $V victim || problem not_started
once; out rc1 $?
once; out rc2 $?
record v_alive $V
"#,
    );
    o.expect("v_alive", "yes");
    o.expect_nagios("rc1");
    o.expect_nagios("rc2");
    // Decided once: the second run remembers the process was dealt with.
    let line = reap(
        o.pid("v"),
        "victim",
        "alice",
        "sleeping",
        "kill",
        "v",
        "name victim",
    );
    o.expect_reaps(vec![line + " dry_run=yes"]);
}

// 7. One actor at a time.

#[test]
fn a_once_run_beside_the_service_signals_nothing() {
    // The service's rule spares young processes; the one-shot's would kill it.
    let rules = "[reap.v]\nmatch = victim\nolder_than = 1h\naction = kill\n";
    let Some(s) = Scenario::with("beside", &["victim"], "grace = 1s", rules) else {
        return;
    };
    let kill_all = "[reap.v]\nmatch = victim\naction = kill\n";
    s.config_file("once.ini", "", "grace = 1s", kill_all);
    let o = s.run(
        r#"
as 1000 "$T/bin/victim" 1000 & V=$!; out v $V
poll comm_is $V victim || problem not_started
agent_bg
poll logged " event=sample " || problem no_sample
"$A" -c "$T/once.ini" --once >>"$T/agent.out" 2>&1; out once_rc $?
nap 0.3
record v_alive $V
stop_agent
"#,
    );
    o.expect_nagios("once_rc");
    o.expect("v_alive", "yes");
    o.expect("agent_rc", "0");
    o.expect_reaps(Vec::<String>::new());
}
