//! Idle-time tasks as children of the built binary: timeouts that end the whole
//! process group (SIGTERM, SIGKILL 5 s later), a timeout that outlives a reload,
//! reaping (no zombie, no orphan, SIGCHLD wakes the loop), and stopping a running
//! task with the agent, in the service and in `--once`.
//!
//! The tasks are scripts in a private temp dir that write their pids (and their
//! children's) to T/pids. Signals go only to agents these tests started and, in
//! clean-up guards, to the tasks' own children, identified by pid and process
//! group. How long a step took is never asserted: a child that should have been
//! ended sleeps 1000 s, so a missed signal is a hang the bounded waits catch;
//! lower bounds use the agent's own clock (its `duration=` and log times), upper
//! bounds count cycles.

mod common;

use common::*;

/// At most this many cycles (`interval` apart at the least) fit into `secs`
/// seconds of 100 ms cycles, with some to spare: a cycle may fall due just before
/// the event it is counted towards, and the loop handles one at a time.
fn cycles_in(secs: usize) -> usize {
    secs * 10 + 3
}

/// A task `name` running a `pids_script` with `background`, with `keys`.
fn pids_task(h: &Host, name: &str, background: &str, keys: &str) -> std::path::PathBuf {
    let script = pids_script(h, name, background);
    h.config(Ini::extra(&task(
        name,
        &script,
        &format!("idle_cycles = 0\n{keys}"),
    )))
}

/// The one `task_timeout` line of task `name` with pid `pid` after `after`.
fn timeout_line(name: &str, pid: i32, after: &str) -> String {
    format!(
        "level=warn event=task_timeout name={name} pid={pid} after={after} action=\"SIGTERM to its process group, SIGKILL 5s later\""
    )
}

/// The `task_done` line of a task `name` that ended on `signal`.
fn signalled(name: &str, signal: u32) -> String {
    format!(
        "level=warn event=task_done name={name} exit=\"signal {signal}\" duration=D stdout_lines=0 stderr_lines=0"
    )
}

/// Fails the test unless every pid in `all` is gone (bounded wait).
fn all_gone(all: &[i32], pgid: i32) {
    assert!(
        wait_for(LIMIT, || all.iter().all(|&p| gone(p, pgid))),
        "left running: {:?}",
        all.iter()
            .map(|&p| (p, proc_stat_of(p)))
            .collect::<Vec<_>>()
    );
}

// 1. Timeouts end the whole process group.

#[test]
fn a_task_past_its_timeout_is_killed_with_its_process_group() {
    let h = task_host("timeout");
    let cfg = pids_task(&h, "hang", &SLEEPER.repeat(2), "timeout = 1s");
    let script = h.p("hang.sh");
    let agent = h.spawn(&cfg);
    let (all, pid, _guard) = task_pids(&h, "hang", 3);
    for &p in &all {
        assert_eq!(proc_stat_of(p).map(|s| s.2), Some(pid), "own group");
    }
    h.must_see("event=task_done", 1);
    let done = h.events("event=task_done");
    let (done0, secs) = without_duration(&done[0]);
    assert_eq!(
        h.events("event=task_"),
        vec![
            format!("level=info event=task_start name=hang pid={pid} command={script}"),
            timeout_line("hang", pid, "1s"),
            done[0].clone(),
        ]
    );
    assert_eq!(done0, signalled("hang", 15));
    // Not before its timeout, and at the first moment after it.
    assert!(secs >= 1.0, "{secs}");
    let cycles = samples_between(&h.log(), "event=task_start", "event=task_timeout");
    assert!(cycles <= cycles_in(1), "{cycles} cycles\n{}", h.log());
    // The grandchildren got the SIGTERM too.
    all_gone(&all, pid);
    assert_eq!(children_of(agent.pid()), vec![]);
    // A timed-out run is a failure: not retried within the hour.
    h.wait_cycles(5);
    assert_eq!(h.events("event=task_start").len(), 1);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn once_waits_for_its_task_only_up_to_the_timeout() {
    // The task's sleep runs 1000 s: a run that waited for it would be a hang.
    let h = task_host("once-timeout");
    let cfg = pids_task(&h, "hang", SLEEPER, "timeout = 1s");
    let run = h.once_seeded(&cfg, &[]);
    let (all, pid, _guard) = task_pids(&h, "hang", 2);
    assert_eq!(run.code, 0, "{}", run.err);
    let done = h.events("event=task_done");
    assert_eq!(done.len(), 1, "{}", h.log());
    assert_eq!(
        h.events("event=task_timeout"),
        vec![timeout_line("hang", pid, "1s")]
    );
    let (done0, secs) = without_duration(&done[0]);
    assert_eq!(done0, signalled("hang", 15));
    assert!(secs >= 1.0, "waited up to the timeout: {secs}");
    all_gone(&all, pid);
}

#[test]
fn after_a_timeout_a_grandchild_ignoring_sigterm_gets_the_sigkill() {
    let h = task_host("term-ignored");
    let cfg = pids_task(&h, "stubborn", STUBBORN, "timeout = 1s");
    let agent = h.spawn(&cfg);
    let (all, pid, _guard) = task_pids(&h, "stubborn", 2);
    h.must_see("event=task_timeout", 1);
    let killed = wait_for(LIMIT, || gone(all[0], pid));
    assert_eq!(agent.stop(), 0);
    assert!(
        killed,
        "the grandchild {} still runs {LIMIT:?} after the timeout: {:?}",
        all[0],
        proc_stat_of(all[0])
    );
}

#[test]
fn when_the_agent_stops_a_grandchild_ignoring_sigterm_gets_the_sigkill() {
    let h = task_host("term-ignored-stop");
    let cfg = pids_task(&h, "stubborn", STUBBORN, "timeout = 1h");
    let agent = h.spawn(&cfg);
    let (all, pid, _guard) = task_pids(&h, "stubborn", 2);
    assert_eq!(agent.stop(), 0);
    assert!(
        wait_for(LIMIT, || gone(all[0], pid)),
        "the grandchild {} outlived the agent: {:?}",
        all[0],
        proc_stat_of(all[0])
    );
}

#[test]
fn a_task_ignoring_sigterm_is_killed_5s_later() {
    let h = task_host("kill");
    let deaf = format!("trap '' TERM\n{SLEEPER}");
    let cfg = pids_task(&h, "deaf", &deaf, "timeout = 1s");
    let agent = h.spawn(&cfg);
    let (all, pid, _guard) = task_pids(&h, "deaf", 2);
    h.must_see("event=task_timeout", 1);
    h.must_see("event=task_done", 1);
    let (done, secs) = without_duration(&h.events("event=task_done")[0]);
    assert_eq!(done, signalled("deaf", 9));
    // The SIGKILL came 5 s after the SIGTERM (by the agent's clock), at the first
    // moment it could: within the cycles that fit in those 5 s.
    assert!(secs >= 5.9, "{secs}");
    let log = h.log();
    let waited = first_ts_ms(&log, "event=task_done") - first_ts_ms(&log, "event=task_timeout");
    assert!(waited >= 4500, "{waited} ms");
    let cycles = samples_between(&log, "event=task_timeout", "event=task_done");
    assert!(cycles <= cycles_in(5), "{cycles} cycles\n{log}");
    all_gone(&all, pid);
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop(), 0);
}

/// Starts a 2 s-timeout task, removes it from the config by a reload while it
/// runs, and waits for its end; returns (task pid, `after` of its timeout event).
fn run_task_removed_by_a_reload(tag: &str) -> (i32, String) {
    let h = task_host(tag);
    let script = h.script("hang.sh", "exec sleep 1000\n");
    let keys = "idle_cycles = 0\ntimeout = 2s";
    let cfg = h.config(Ini::extra(&task("hang", &script, keys)));
    let agent = h.spawn(&cfg);
    h.must_see("event=task_start", 1);
    let pid = started_pid(&h, "hang");
    let _guard = Leftovers::new(vec![pid], pid);
    h.config(Ini::default());
    agent.signal(libc::SIGHUP);
    h.must_see("event=reload", 1);
    h.must_see("event=task_done", 1);
    let timeouts = h.events("event=task_timeout");
    assert_eq!(timeouts.len(), 1, "{}", h.log());
    let after = field(&timeouts[0], "after").unwrap();
    assert_eq!(
        timeouts[0].replace(&format!(" after={after} "), " after=X "),
        timeout_line("hang", pid, "X")
    );
    let (done, secs) = without_duration(&h.events("event=task_done")[0]);
    assert_eq!(done, signalled("hang", 15));
    // The old timeout holds: not sooner, and not later than its cycles.
    assert!(secs >= 2.0, "the old timeout holds: {secs}");
    let cycles = samples_between(&h.log(), "event=task_start", "event=task_timeout");
    assert!(cycles <= cycles_in(2), "{cycles} cycles\n{}", h.log());
    assert!(gone(pid, pid));
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop(), 0);
    (pid, after)
}

#[test]
fn a_task_removed_by_a_reload_while_it_runs_is_still_timed_out_and_reaped() {
    run_task_removed_by_a_reload("reload-running");
}

#[test]
fn the_timeout_event_of_a_task_removed_by_a_reload_names_its_timeout() {
    assert_eq!(run_task_removed_by_a_reload("reload-after").1, "2s");
}

// 2. Reaping: no zombie, and a clean stop.

#[test]
fn a_finished_task_is_reaped_at_once_and_leaves_no_zombie() {
    let h = task_host("reap");
    let script = h.script("short.sh", "sleep 0.3\necho done\n");
    // A cycle an hour away: only SIGCHLD (and the pipes) can wake the loop in time.
    let cfg = h.config(Ini {
        agent: "interval = 1h",
        extra: &task("short", &script, "idle_cycles = 0"),
        ..Ini::default()
    });
    let agent = h.spawn(&cfg);
    h.must_see("event=task_start", 1);
    let pid = started_pid(&h, "short");
    h.must_see("event=task_done", 1);
    assert!(gone(pid, pid));
    assert_eq!(children_of(agent.pid()), vec![], "no zombie, no child");
    assert_eq!(
        without_duration(&h.events("event=task_done")[0]).0,
        "level=info event=task_done name=short exit=0 duration=D stdout_lines=1 stderr_lines=0"
    );
    assert_eq!(h.events("event=sample").len(), 1, "one cycle only");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn repeated_runs_leave_no_zombie() {
    let h = task_host("zombies");
    let keys = "every = 1s\nidle_cycles = 0";
    let cfg = h.config(Ini::extra(&task("tick", "/bin/true", keys)));
    let agent = h.spawn(&cfg);
    h.must_see("event=task_done", 3);
    // Between runs (a second apart), the agent has no child at all.
    assert!(
        wait_for(LIMIT, || children_of(agent.pid()).is_empty()),
        "{:?}",
        children_of(agent.pid())
    );
    // One run a second, not one a cycle (100 ms): by the log's clock, each start
    // comes at least half a second after the one before.
    let starts: Vec<i64> = h
        .log()
        .lines()
        .filter(|l| l.contains(" event=task_start "))
        .map(ts_ms)
        .collect();
    assert!(starts.len() >= 3, "{starts:?}");
    for w in starts.windows(2) {
        assert!(
            w[1] - w[0] >= 500,
            "one run a second, not one a cycle: {starts:?}"
        );
    }
    for d in h.events("event=task_done") {
        assert_eq!(
            without_duration(&d).0,
            "level=info event=task_done name=tick exit=0 duration=D stdout_lines=0 stderr_lines=0"
        );
    }
    assert_eq!(agent.stop(), 0);
}

#[test]
fn sigterm_stops_the_running_task_and_the_agent_exits_0() {
    // The task's sleep runs 1000 s: a stop that waited for it would be a hang.
    let h = task_host("stop");
    let cfg = pids_task(&h, "long", SLEEPER, "timeout = 1h");
    let agent = h.spawn(&cfg);
    let (all, pid, _guard) = task_pids(&h, "long", 2);
    // The loop goes on while the task runs.
    h.wait_cycles(3);
    assert!(!gone(pid, pid));
    let agent_pid = agent.pid();
    assert_eq!(agent.stop(), 0);
    assert!(gone(pid, pid), "the task was reaped");
    all_gone(&all, pid);
    assert_eq!(children_of(agent_pid), vec![]);
    let done = h.events("event=task_done");
    assert_eq!(done.len(), 1, "{}", h.log());
    assert_eq!(
        without_duration(&done[0]).0,
        "level=warn event=task_done name=long exit=\"signal 15\" duration=D stdout_lines=0 stderr_lines=0 note=\"stopped with the agent\""
    );
    let log = h.log();
    let tail: Vec<&str> = log.lines().rev().take(2).collect();
    assert!(tail[0].contains(" event=stop reason=SIGTERM "), "{log}");
    assert!(tail[1].contains(" event=task_done "), "{log}");
}

#[test]
fn sigterm_to_a_once_run_stops_its_task_too() {
    let h = task_host("once-term");
    let cfg = pids_task(&h, "long", SLEEPER, "timeout = 1h");
    h.seed_cpu(0, 0, std::time::Duration::from_secs(60));
    let once = h.spawn_with(&cfg, &["--once"]);
    let (all, pid, _guard) = task_pids(&h, "long", 2);
    once.signal(libc::SIGTERM);
    once.wait();
    all_gone(&all, pid);
    assert_eq!(h.events("event=task_done").len(), 1, "{}", h.log());
}

#[test]
fn what_a_task_leaves_in_its_group_is_killed_when_it_exits() {
    let h = task_host("leftover");
    let pids = h.p("pids");
    let script = h.script(
        "bg.sh",
        &format!("sleep 1000 &\necho $! >> {pids}\necho $$ >> {pids}\nexit 0\n"),
    );
    let cfg = h.config(Ini::extra(&task("bg", &script, "idle_cycles = 0")));
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    let (all, pid, _guard) = task_pids(&h, "bg", 2);
    let done = h.events("event=task_done");
    assert_eq!(
        without_duration(&done[0]).0,
        "level=info event=task_done name=bg exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );
    // The background sleep did not outlive the run.
    assert!(
        wait_for(LIMIT, || gone(all[0], pid)),
        "{:?}",
        proc_stat_of(all[0])
    );
}
