//! When idle-time tasks run and what a run reports, against the built binary: a
//! real `mandb` on a private man tree, the CPU gate and `idle_cycles` (in the
//! service and across `--once` runs), `every`, failed and noisy runs, clocks set
//! back, quoted commands, and `--dry-run`. (Children's process groups, timeouts
//! and reaping: tasks_children.rs; what a child inherits and when a task cannot
//! run: tasks_exec.rs.)
//!
//! Every file lives in a private temp dir; the tasks are scripts there (or
//! `/usr/bin/mandb` on a tree and cache inside the temp dir). Signals go only to
//! agents these tests started.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

// 1. A real mandb.

#[test]
fn mandb_indexes_a_private_man_tree_as_user_man() {
    if !Path::new("/usr/bin/mandb").exists() {
        eprintln!("skipped: /usr/bin/mandb is not installed");
        return;
    }
    let h = task_host("mandb");
    let (uid, gid) = man_ids();
    h.write(
        "man/man1/foo.1",
        ".TH FOO 1\n.SH NAME\nfoo \\- a page only system-agent tests index\n.SH DESCRIPTION\nHello.\n",
    );
    // The tree must be readable by man whatever the umask.
    for d in ["man", "man/man1", "man/man1/foo.1"] {
        let mode = if d.ends_with(".1") { 0o644 } else { 0o755 };
        chmod(&h.path(d), mode);
    }
    let cache = h.path("cache");
    std::fs::create_dir(&cache).unwrap();
    std::os::unix::fs::chown(&cache, Some(uid), Some(gid)).unwrap();
    let conf = h.write(
        "man_db.conf",
        format!("MANDB_MAP {} {}\n", h.p("man"), h.p("cache")),
    );
    // The manpath argument limits mandb to this tree (never /usr/share/man), and
    // MANDB_MAP puts its cache here (never /var/cache/man).
    let command = format!("/usr/bin/mandb -q -C {} {}", conf.display(), h.p("man"));
    let keys = "idle_cycles = 1\nuser = man\ntimeout = 30s";
    let cfg = h.config(Ini::extra(&task("mandb", &command, keys)));
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(
        (run.code, run.out.as_str(), run.err.as_str()),
        (
            0,
            "SYSTEM-AGENT OK - all checks ok | cpu=10.0%;80;90 mem=50.0%;85;95 load1=0.52\n",
            ""
        ),
        "{}",
        h.log()
    );
    let pid = started_pid(&h, "mandb");
    assert_eq!(h.events("event=task_done").len(), 1, "{}", h.log());
    assert_eq!(
        h.events("event=task_"),
        vec![
            format!(
                "level=info event=task_start name=mandb pid={pid} user=man command=\"{command}\""
            ),
            h.events("event=task_done")[0].clone(),
        ]
    );
    assert_eq!(
        without_duration(&h.events("event=task_done")[0]).0,
        "level=info event=task_done name=mandb exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );
    // The index is in the private cache, written by man, and holds the page.
    let index = cache.join("index.db");
    let meta = std::fs::metadata(&index).unwrap_or_else(|e| panic!("{index:?}: {e}"));
    assert_eq!(meta.uid(), uid, "written as man");
    let db = std::fs::read(&index).unwrap();
    let needle = b"a page only system-agent tests index";
    assert!(db.windows(needle.len()).any(|w| w == needle));
    // Succeeded: recorded, so the next run does not start it again.
    let (success, attempt, _) = task_state(&h, "mandb").unwrap();
    assert!(success >= attempt && attempt > 0, "{success} {attempt}");
    h.once_seeded(&cfg, &[]);
    assert_eq!(h.events("event=task_start").len(), 1);
}

// 2. The CPU gate and `every`.

/// `cpu=` of each sample event, in order (None when the CPU was unknown).
fn cpu_samples(lines: &[&str]) -> Vec<Option<f64>> {
    lines
        .iter()
        .filter(|l| l.contains(" event=sample "))
        .map(|l| field(l, "cpu").and_then(|v| v.parse().ok()))
        .collect()
}

/// A task `work` that appends a line to T/runs, with `keys`.
fn work_task(h: &Host, keys: &str) -> std::path::PathBuf {
    let script = h.script("work.sh", &format!("echo run >> {}\n", h.p("runs")));
    h.config(Ini::extra(&task("work", &script, keys)))
}

#[test]
fn starts_only_once_the_cpu_is_idle_and_not_again_before_every() {
    let h = task_host("cpu-gate");
    let cfg = work_task(&h, "every = 1h\nwhen_cpu_below = 20\nidle_cycles = 3");
    let script = h.p("work.sh");
    let load = CpuLoad::start(&h, 50);
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 8);
    assert_eq!(h.events("event=task_start"), Vec::<String>::new());
    let log = h.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        cpu_samples(&lines).iter().all(|c| *c == Some(50.0)),
        "{log}"
    );

    load.set(10);
    h.must_see("event=task_done", 1);
    // Started in the third cycle in a row below 20%, not sooner.
    let log = h.log();
    let lines: Vec<&str> = log.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains(" event=task_start "))
        .unwrap();
    let before = cpu_samples(&lines[..at]);
    let n = before.len();
    assert!(n >= 11, "{log}");
    assert!(
        before[n - 3..].iter().all(|c| c.is_some_and(|c| c < 20.0)),
        "{log}"
    );
    assert!(before[n - 4].is_none_or(|c| c >= 20.0), "{log}");
    let pid = started_pid(&h, "work");
    assert_eq!(
        h.events("event=task_"),
        vec![
            format!("level=info event=task_start name=work pid={pid} command={script}"),
            h.events("event=task_done")[0].clone(),
        ]
    );
    assert_eq!(
        without_duration(&h.events("event=task_done")[0]).0,
        "level=info event=task_done name=work exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );

    // Not again before `every`, however idle the machine stays.
    h.wait_cycles(10);
    assert_eq!(h.events("event=task_start").len(), 1);
    assert_eq!(agent.stop(), 0);

    // Nor in the cron runs that follow: the last success is in state_dir/tasks.
    let (success, attempt, idle) = task_state(&h, "work").unwrap();
    assert!(success >= attempt && attempt > 0 && idle == 3);
    let idle_samples = h.events("event=sample cpu=10.0").len();
    for _ in 0..3 {
        // The counters move on.
        let stat = h.read("proc/stat");
        assert!(wait_for(LIMIT, || h.read("proc/stat") != stat));
        let run = h.once(&cfg, &[]);
        assert_eq!(run.code, 0, "{}", run.err);
    }
    // Each run an idle cycle (from the counters the last one saved), yet no start.
    assert_eq!(
        h.events("event=sample cpu=10.0").len(),
        idle_samples + 3,
        "{}",
        h.log()
    );
    assert_eq!(h.events("event=task_start").len(), 1, "{}", h.log());
    assert_eq!(h.read("runs"), "run\n");
}

#[test]
fn a_restarted_service_remembers_the_last_success() {
    let h = task_host("restart");
    let cfg = work_task(&h, "every = 1h\nidle_cycles = 1");
    let _load = CpuLoad::start(&h, 10);
    let agent = h.spawn(&cfg);
    h.must_see("event=task_done", 1);
    assert_eq!(agent.stop(), 0);
    assert!(task_state(&h, "work").unwrap().0 > 0);
    let agent = h.spawn(&cfg);
    h.must_see("event=start ", 2);
    h.wait_cycles(8);
    assert_eq!(agent.stop(), 0);
    assert_eq!(h.read("runs"), "run\n", "{}", h.log());
    assert_eq!(h.events("event=task_start").len(), 1);
}

// 3. idle_cycles across cron runs.

#[test]
fn idle_cycles_count_across_once_runs() {
    let h = task_host("idle-once");
    let script = h.script("work.sh", &format!("echo ran > {}\n", h.p("ran")));
    let keys = "every = 1h\nwhen_cpu_below = 20\nidle_cycles = 3";
    let cfg = h.config(Ini::extra(&task("work", &script, keys)));
    h.seed_cpu(0, 0, std::time::Duration::from_secs(60));
    for run in 1..=5u64 {
        // Time passes between cron runs: the counters move on, 10% busy.
        h.write("proc/stat", proc_stat(100 * run, 900 * run));
        let r = h.once(&cfg, &[]);
        assert_eq!(r.code, 0, "run {run}: {} {}", r.out, r.err);
        assert!(
            r.out.contains(" | cpu=10.0%;80;90 "),
            "run {run}: {}",
            r.out
        );
        let starts = h.events("event=task_start").len();
        assert_eq!(starts, usize::from(run >= 3), "run {run}: {}", h.log());
        let (success, attempt, idle) = task_state(&h, "work").unwrap();
        assert_eq!(idle, run.min(3) as u32, "run {run}");
        assert_eq!(
            (success > 0, attempt > 0),
            (run >= 3, run >= 3),
            "run {run}"
        );
        // --once waited for it: done before the exit.
        assert_eq!(h.events("event=task_done").len(), starts, "run {run}");
        assert_eq!(h.read("ran"), if run >= 3 { "ran\n" } else { "" });
    }
}

#[test]
fn a_busy_cron_run_starts_the_idle_count_over() {
    let h = task_host("idle-reset");
    let script = h.script("work.sh", "exit 0\n");
    let cfg = h.config(Ini::extra(&task("work", &script, "idle_cycles = 2")));
    h.seed_cpu(0, 0, std::time::Duration::from_secs(60));
    // 10%, 50%, 10%, 10%: the count restarts at the busy run.
    let mut busy = 0;
    let mut idle = 0;
    for (run, pct) in [(1, 10), (2, 50), (3, 10), (4, 10)] {
        busy += 10 * pct;
        idle += 10 * (100 - pct);
        h.write("proc/stat", proc_stat(busy, idle));
        h.once(&cfg, &[]);
        let want = [1, 0, 1, 2][run - 1];
        assert_eq!(task_state(&h, "work").unwrap().2, want, "run {run}");
        assert_eq!(
            h.events("event=task_start").len(),
            usize::from(run == 4),
            "run {run}"
        );
    }
}

// 4. What a run reports.

/// One `--once` run of task `name` running `body`; its `task_done` line with the
/// duration as `D`.
fn done_line(tag: &str, name: &str, body: &str) -> (Host, String) {
    let h = task_host(tag);
    let script = h.script(&format!("{name}.sh"), body);
    let cfg = h.config(Ini::extra(&task(name, &script, "idle_cycles = 0")));
    h.once_seeded(&cfg, &[]);
    let done = h.events("event=task_done");
    assert_eq!(done.len(), 1, "{}", h.log());
    let line = without_duration(&done[0]).0;
    (h, line)
}

#[test]
fn a_failed_run_is_reported_and_not_retried_at_once() {
    let (h, done) = done_line(
        "fail",
        "fail",
        "echo partial\necho 'oops: no disk' >&2\nexit 3\n",
    );
    assert_eq!(
        done,
        "level=warn event=task_done name=fail exit=3 duration=D stdout_lines=1 stderr_lines=1 stderr_tail=\"oops: no disk\""
    );
    let (success, attempt, _) = task_state(&h, "fail").unwrap();
    assert_eq!(success, 0);
    assert!(attempt > 0);
    // The next cron run, a minute later: retried only after min(1h, every).
    h.once_seeded(&h.path("agent.ini"), &[]);
    assert_eq!(h.events("event=task_start").len(), 1, "{}", h.log());
}

#[test]
fn output_on_stderr_makes_a_warning_but_still_a_success() {
    let (h, done) = done_line("stderr", "warn", "echo 'note: 3 pages skipped' >&2\n");
    assert_eq!(
        done,
        "level=warn event=task_done name=warn exit=0 duration=D stdout_lines=0 stderr_lines=1 stderr_tail=\"note: 3 pages skipped\""
    );
    assert!(task_state(&h, "warn").unwrap().0 > 0, "a success");
}

#[test]
fn a_noisy_task_is_drained_by_the_loop_and_its_tail_kept() {
    let h = task_host("noisy");
    // Far more than a pipe holds; `yes` dies of SIGPIPE quietly (default
    // disposition) when `head` has enough.
    let script = h.script(
        "noisy.sh",
        "yes line | head -n 100000\nyes err | head -n 50000 >&2\n",
    );
    // No cycle for an hour: only the pipes (and SIGCHLD) wake the loop.
    let cfg = h.config(Ini {
        agent: "interval = 1h",
        extra: &task("noisy", &script, "idle_cycles = 0"),
        ..Ini::default()
    });
    let agent = h.spawn(&cfg);
    h.must_see("event=task_done", 1);
    // The last 2048 bytes, from the first whole line: 511 lines of "err".
    let tail = vec!["err"; 511].join("\\n");
    assert_eq!(
        without_duration(&h.events("event=task_done")[0]).0,
        format!(
            "level=warn event=task_done name=noisy exit=0 duration=D stdout_lines=100000 stderr_lines=50000 stderr_tail=\"{tail}\""
        )
    );
    assert_eq!(agent.stop(), 0);
}

// 5. --dry-run.

/// A task `mk` that touches T/created, with `keys`; the script's path.
fn mk_task(h: &Host, args: &str, keys: &str) -> (std::path::PathBuf, String) {
    let script = h.script("mk.sh", &format!("touch {}\n", h.p("created")));
    let command = format!("{script}{args}");
    (h.config(Ini::extra(&task("mk", &command, keys))), script)
}

#[test]
fn dry_run_logs_the_start_and_runs_nothing() {
    let h = task_host("dry");
    let (cfg, script) = mk_task(&h, " now", "idle_cycles = 0\nuser = daemon");
    let run = h.once_seeded(&cfg, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.err);
    assert_eq!(
        h.events("event=task_"),
        vec![format!(
            "level=info event=task_start name=mk user=daemon command=\"{script} now\" dry_run=yes"
        )]
    );
    assert!(!h.path("created").exists());
}

#[test]
fn a_dry_run_does_not_count_as_a_run_for_later_real_runs() {
    let h = task_host("dry-then-real");
    let (cfg, script) = mk_task(&h, "", "idle_cycles = 0");
    h.once_seeded(&cfg, &["--dry-run"]);
    assert!(!h.path("created").exists());
    assert_eq!(
        task_state(&h, "mk").map_or(0, |s| s.0),
        0,
        "no success recorded"
    );
    h.once_seeded(&cfg, &[]);
    assert!(h.path("created").exists(), "{}", h.log());
    let starts = h.events("event=task_start");
    let pid = starts
        .get(1)
        .and_then(|l| field(l, "pid"))
        .unwrap_or_default();
    assert_eq!(
        starts,
        vec![
            format!("level=info event=task_start name=mk command={script} dry_run=yes"),
            format!("level=info event=task_start name=mk pid={pid} command={script}"),
        ]
    );
}

// 6. Time going backwards.

/// Stamps in the future (the clock was stepped back, or the state came from another
/// host) count as long ago: the task runs, and the saved stamps are corrected.
#[test]
fn a_last_run_dated_in_the_future_does_not_stop_the_task() {
    let h = task_host("future");
    let script = h.script("work.sh", &format!("echo ran >> {}\n", h.p("ran")));
    let cfg = h.config(Ini::extra(&task(
        "work",
        &script,
        "every = 1h\nidle_cycles = 0",
    )));
    // Ten years ahead: a success, then a failed attempt after it.
    let future = now_ns() + 10 * 365 * 86_400 * 1_000_000_000;
    h.write(
        "state/tasks",
        format!(
            "system-agent-tasks 1\ntask {future} {} 0 work\nend\n",
            future + 1
        ),
    );
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert_eq!(h.read("ran"), "ran\n", "{}", h.log());
    let (success, attempt, _) = task_state(&h, "work").unwrap();
    let (before, after) = (run.start_ns, run.end_ns);
    assert!(
        (before..=after).contains(&attempt) && (attempt..=after).contains(&success),
        "{before} {attempt} {success} {after}"
    );
    // Succeeded now: not again within `every`.
    h.once_seeded(&cfg, &[]);
    assert_eq!(h.read("ran"), "ran\n", "{}", h.log());
}

// 7. A command's quoted words reach execve as written.

#[test]
fn a_quoted_command_runs_with_exactly_its_words() {
    let h = task_host("quoted");
    let out = h.p("args");
    let script = h.script(
        "my tools/args.sh",
        &format!("for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done > {out}\n"),
    );
    let command = format!("\"{script}\" \"a b\" 'c \"d\"' e\\ f \"\" *.tmp ; a comment");
    let cfg = h.config(Ini::extra(&task("quoted", &command, "idle_cycles = 0")));
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    assert_eq!(
        h.read("args"),
        "[a b]\n[c \"d\"]\n[e f]\n[]\n[*.tmp]\n",
        "{}",
        h.log()
    );
    // The event shows the words quoted as --check-config prints them.
    let pid = started_pid(&h, "quoted");
    assert_eq!(
        h.events("event=task_start"),
        vec![format!(
            "level=info event=task_start name=quoted pid={pid} command=\"\\\"{script}\\\" \\\"a b\\\" \\\"c \\\\\\\"d\\\\\\\"\\\" \\\"e f\\\" \\\"\\\" *.tmp\""
        )]
    );
}
