//! Idle-time tasks (SPEC §3 `[task.NAME]`, §4 step 7, §6 "Children") against the
//! built binary: a real `mandb` on a private man tree, timeouts that end the whole
//! process group, the CPU gate and `idle_cycles` (in the service and across `--once`
//! runs), `every`, reaping (no zombie, no orphan), what a child inherits,
//! `task_skipped` and `--dry-run`.
//!
//! Every file lives in a private temp dir; the tasks are scripts there (or
//! `/bin/sleep`, `/bin/true`, `/usr/bin/mandb` on a tree and cache inside the temp
//! dir). Signals go only to agents these tests started, and, in clean-up guards, to
//! the tasks' own grandchildren, identified by pid and process group.

mod common;

use common::*;
use std::os::unix::fs::{FileExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const BTIME: u64 = 1_700_000_000;

/// A fixture host: proc/{stat,meminfo,loadavg}, etc/passwd, a state dir, a config.
struct Host {
    t: TempDir,
}

impl Host {
    fn new(tag: &str) -> Host {
        let t = TempDir::new(tag);
        // Tasks may run as daemon or man: they must be able to reach their files.
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        t.write("proc/stat", stat_fixed(100, 900));
        t.write("proc/meminfo", proc_meminfo(50));
        t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
        let (uid, gid) = man_ids();
        t.write(
            "etc/passwd",
            format!(
                "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
                 man:x:{uid}:{gid}:man:/var/cache/man:/usr/sbin/nologin\n"
            ),
        );
        Host { t }
    }

    fn p(&self, rel: &str) -> String {
        self.t.join(rel).display().to_string()
    }

    /// agent.ini on the fixture tree (see `fixture_ini`), 100ms cycles.
    fn config(&self, agent: &str, extra: &str) -> PathBuf {
        fixture_ini(&self.t, "100ms", agent, extra)
    }

    /// Saves CPU counters in state_dir as an earlier run would have, a minute ago.
    fn seed_cpu(&self, busy: u64, idle: u64) {
        let saved = now_ns() - 60_000_000_000;
        self.t.write(
            "state/state",
            format!("system-agent-state 1\nsaved {saved}\nbtime {BTIME}\ncpu {busy} 0 0 {idle} 0 0 0 0\nend\n"),
        );
    }

    /// A `#!/bin/sh` script, mode 0755; returns its path.
    fn script(&self, rel: &str, body: &str) -> String {
        let p = self.t.write(rel, format!("#!/bin/sh\n{body}"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    fn log(&self) -> String {
        self.t.read("agent.log")
    }

    fn events(&self, needle: &str) -> Vec<String> {
        events(&self.log(), needle)
    }

    fn once(&self, cfg: &Path, extra: &[&str]) -> (i32, String, String) {
        let mut args = vec!["-c", cfg.to_str().unwrap(), "--once"];
        args.extend_from_slice(extra);
        let out = run(&args);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn spawn(&self, cfg: &Path) -> Agent {
        Agent(spawn(&["-c", cfg.to_str().unwrap()]))
    }

    /// Waits (bounded) until `n` lines contain `needle`.
    fn wait_events(&self, needle: &str, n: usize, limit: Duration) -> bool {
        wait_for(limit, || self.events(needle).len() >= n)
    }
}

/// The real `man` user's uid and gid (Debian: 6 and 12), for the fixture passwd.
fn man_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() >= 4 && f[0] == "man").then(|| (f[2].parse().ok(), f[3].parse().ok()))
        })
        .and_then(|(u, g)| Some((u?, g?)))
        .unwrap_or((6, 12))
}

/// `proc_stat` with fixed-width counters, so it can be rewritten in place (the
/// agent keeps the file open and re-reads it) with the same length every time.
fn stat_fixed(busy: u64, idle: u64) -> String {
    let w = |n: u64| format!("{n:015}");
    format!(
        "cpu  {} 0 0 {} 0 0 0 0 0 0\ncpu0 {} 0 0 {} 0 0 0 0 0 0\ncpu1 {} 0 0 {} 0 0 0 0 0 0\n\
         intr 1 2 3\nctxt 100\nbtime {BTIME}\nprocesses 10\nprocs_running 1\nprocs_blocked 0\n",
        w(busy),
        w(idle),
        w(busy / 2),
        w(idle / 2),
        w(busy - busy / 2),
        w(idle - idle / 2)
    )
}

/// Keeps the fixture CPU counters moving, `percent` busy, like a real /proc/stat:
/// the service needs moving counters to have a CPU reading at all.
struct CpuLoad {
    percent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CpuLoad {
    fn start(h: &Host, percent: u64) -> CpuLoad {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(h.t.join("proc/stat"))
            .unwrap();
        let pct = Arc::new(AtomicU64::new(percent));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (Arc::clone(&pct), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let (mut busy, mut idle) = (100u64, 900u64);
            while !s.load(Ordering::SeqCst) {
                let b = p.load(Ordering::SeqCst);
                busy += b;
                idle += 100 - b;
                // Same length every time, at offset 0: never a truncated file.
                file.write_all_at(stat_fixed(busy, idle).as_bytes(), 0)
                    .unwrap();
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        CpuLoad {
            percent: pct,
            stop,
            thread: Some(thread),
        }
    }

    fn set(&self, percent: u64) {
        self.percent.store(percent, Ordering::SeqCst);
    }
}

impl Drop for CpuLoad {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A running service; killed if a test fails before stopping it.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Agent {
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    fn stop(mut self) -> (i32, Duration) {
        let start = Instant::now();
        signal(&self.0, libc::SIGTERM);
        let st = wait_exit(&mut self.0, Duration::from_secs(5));
        (st.code().unwrap_or(-1), start.elapsed())
    }
}

/// Lines of `log` containing `needle`, with the `ts=... ` prefix removed.
fn events(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(|l| {
            l.split_once(' ')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// The value of an unquoted `key=value` field.
fn field(line: &str, key: &str) -> Option<String> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// `line` with its `duration=` value replaced by `D`, and that value.
fn without_duration(line: &str) -> (String, f64) {
    let d = field(line, "duration").expect("a duration field");
    (
        line.replace(&format!(" duration={d} "), " duration=D "),
        d.parse().expect("a number"),
    )
}

/// The pid in the first `task_start` event of `name`.
fn started_pid(h: &Host, name: &str) -> i32 {
    let starts = h.events(&format!("event=task_start name={name} "));
    let first = starts.first().unwrap_or_else(|| panic!("{}", h.log()));
    field(first, "pid").unwrap().parse().unwrap()
}

/// (state, ppid, pgrp) of a live process, from /proc/PID/stat.
fn proc_stat_of(pid: i32) -> Option<(char, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f[0].chars().next()?, f[1].parse().ok()?, f[2].parse().ok()?))
}

/// Gone: no such process, a zombie (dead, waiting for init to reap it), or the
/// pid now belongs to another process group (reused).
fn gone(pid: i32, pgid: i32) -> bool {
    match proc_stat_of(pid) {
        None => true,
        Some((state, _, pgrp)) => state == 'Z' || pgrp != pgid,
    }
}

/// Every process whose parent is `ppid`: (pid, state).
fn children_of(ppid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((state, parent, _)) = proc_stat_of(pid)
            && parent == ppid
        {
            out.push((pid, state));
        }
    }
    out
}

/// The pids a task script wrote, one a line, once `n` are there.
fn read_pids(h: &Host, rel: &str, n: usize) -> Vec<i32> {
    assert!(
        wait_for(Duration::from_secs(5), || h.t.read(rel).lines().count()
            >= n),
        "{rel}: {:?}\n{}",
        h.t.read(rel),
        h.log()
    );
    h.t.read(rel)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// Kills, on drop, whatever is left of a task's process group: only processes
/// whose pid a task script wrote and whose group is still that task's.
struct Leftovers {
    pids: Vec<i32>,
    pgid: i32,
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        for &pid in &self.pids {
            if !gone(pid, self.pgid) {
                // SAFETY: kill(2) on a grandchild this test's task started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// `tasks` state line of one task: (last_success_ns, last_attempt_ns, idle).
fn task_state(h: &Host, name: &str) -> Option<(u64, u64, u32)> {
    let text = h.t.read("state/tasks");
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(' ').collect();
        (f.len() == 5 && f[0] == "task" && f[4] == name).then(|| {
            (
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
                f[3].parse().unwrap(),
            )
        })
    })
}

// 1. A real mandb.

#[test]
fn mandb_indexes_a_private_man_tree_as_user_man() {
    if !Path::new("/usr/bin/mandb").exists() {
        eprintln!("skipped: /usr/bin/mandb is not installed");
        return;
    }
    let h = Host::new("mandb");
    let (uid, gid) = man_ids();
    h.t.write(
        "man/man1/foo.1",
        ".TH FOO 1\n.SH NAME\nfoo \\- a page only system-agent tests index\n.SH DESCRIPTION\nHello.\n",
    );
    // The tree must be readable by man whatever the umask.
    for d in ["man", "man/man1", "man/man1/foo.1"] {
        let mode = if d.ends_with(".1") { 0o644 } else { 0o755 };
        std::fs::set_permissions(h.t.join(d), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let cache = h.t.join("cache");
    std::fs::create_dir(&cache).unwrap();
    std::os::unix::fs::chown(&cache, Some(uid), Some(gid)).unwrap();
    let conf = h.t.write(
        "man_db.conf",
        format!("MANDB_MAP {} {}\n", h.p("man"), h.p("cache")),
    );
    // The manpath argument limits mandb to this tree (never /usr/share/man), and
    // MANDB_MAP puts its cache here (never /var/cache/man).
    let command = format!("/usr/bin/mandb -q -C {} {}", conf.display(), h.p("man"));
    let cfg = h.config(
        "",
        &format!("[task.mandb]\ncommand = {command}\nidle_cycles = 1\nuser = man\ntimeout = 30s\n"),
    );
    h.seed_cpu(0, 0);
    let (code, out, err) = h.once(&cfg, &[]);
    assert_eq!(
        (code, out.as_str(), err.as_str()),
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
    let (done, secs) = without_duration(&h.events("event=task_done")[0]);
    assert_eq!(
        done,
        "level=info event=task_done name=mandb exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );
    assert!((0.0..30.0).contains(&secs), "{secs}");
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
    h.seed_cpu(0, 0);
    h.once(&cfg, &[]);
    assert_eq!(h.events("event=task_start").len(), 1);
}

// 2. Timeouts end the whole process group.

#[test]
fn a_task_past_its_timeout_is_killed_with_its_process_group() {
    let h = Host::new("timeout");
    let pids = h.p("pids");
    let script = h.script(
        "hang.sh",
        &format!("sleep 1000 &\necho $! >> {pids}\nsleep 1000 &\necho $! >> {pids}\necho $$ >> {pids}\nwait\n"),
    );
    let cfg = h.config(
        "",
        &format!("[task.hang]\ncommand = {script}\nidle_cycles = 0\ntimeout = 1s\n"),
    );
    let agent = h.spawn(&cfg);
    let all = read_pids(&h, "pids", 3);
    let pid = started_pid(&h, "hang");
    assert_eq!(all[2], pid, "the task is its script");
    let _guard = Leftovers {
        pids: all.clone(),
        pgid: pid,
    };
    for &p in &all {
        assert_eq!(proc_stat_of(p).map(|s| s.2), Some(pid), "own group");
    }
    assert!(
        h.wait_events("event=task_done", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    let done = h.events("event=task_done");
    let (done0, secs) = without_duration(&done[0]);
    assert_eq!(
        h.events("event=task_"),
        vec![
            format!("level=info event=task_start name=hang pid={pid} command={script}"),
            format!(
                "level=warn event=task_timeout name=hang pid={pid} after=1s action=\"SIGTERM to its process group, SIGKILL 5s later\""
            ),
            done[0].clone(),
        ]
    );
    assert_eq!(
        done0,
        "level=warn event=task_done name=hang exit=\"signal 15\" duration=D stdout_lines=0 stderr_lines=0"
    );
    assert!((1.0..3.0).contains(&secs), "{secs}");
    // The grandchildren got the SIGTERM too.
    assert!(
        wait_for(Duration::from_secs(2), || all.iter().all(|&p| gone(p, pid))),
        "left: {:?}",
        all.iter()
            .map(|&p| (p, proc_stat_of(p)))
            .collect::<Vec<_>>()
    );
    assert_eq!(children_of(agent.pid()), vec![]);
    // A timed-out run is a failure: not retried within the hour.
    let seen = h.events("event=sample").len();
    assert!(h.wait_events("event=sample", seen + 5, Duration::from_secs(5)));
    assert_eq!(h.events("event=task_start").len(), 1);
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn once_waits_for_its_task_only_up_to_the_timeout() {
    let h = Host::new("once-timeout");
    let pids = h.p("pids");
    let script = h.script(
        "hang.sh",
        &format!("sleep 1000 &\necho $! >> {pids}\necho $$ >> {pids}\nwait\n"),
    );
    let cfg = h.config(
        "",
        &format!("[task.hang]\ncommand = {script}\nidle_cycles = 0\ntimeout = 1s\n"),
    );
    h.seed_cpu(0, 0);
    let start = Instant::now();
    let (code, _, err) = h.once(&cfg, &[]);
    let took = start.elapsed();
    let all = read_pids(&h, "pids", 2);
    let _guard = Leftovers {
        pids: all.clone(),
        pgid: all[1],
    };
    assert_eq!(code, 0, "{err}");
    assert!(
        (Duration::from_secs(1)..Duration::from_secs(3)).contains(&took),
        "{took:?}"
    );
    let pid = started_pid(&h, "hang");
    assert_eq!(all[1], pid);
    let done = h.events("event=task_done");
    assert_eq!(done.len(), 1, "{}", h.log());
    assert_eq!(
        h.events("event=task_timeout"),
        vec![format!(
            "level=warn event=task_timeout name=hang pid={pid} after=1s action=\"SIGTERM to its process group, SIGKILL 5s later\""
        )]
    );
    assert_eq!(
        without_duration(&done[0]).0,
        "level=warn event=task_done name=hang exit=\"signal 15\" duration=D stdout_lines=0 stderr_lines=0"
    );
    assert!(
        wait_for(Duration::from_secs(2), || all.iter().all(|&p| gone(p, pid))),
        "{all:?}"
    );
}

const STUBBORN: &str =
    "(trap '' TERM; exec sleep 1000) &\necho $! >> PIDS\necho $$ >> PIDS\nwait\n";

#[test]
fn after_a_timeout_a_grandchild_ignoring_sigterm_gets_the_sigkill() {
    let h = Host::new("term-ignored");
    // The subshell ignores SIGTERM and execs sleep, which inherits that.
    let script = h.script("stubborn.sh", &STUBBORN.replace("PIDS", &h.p("pids")));
    let cfg = h.config(
        "",
        &format!("[task.stubborn]\ncommand = {script}\nidle_cycles = 0\ntimeout = 1s\n"),
    );
    let agent = h.spawn(&cfg);
    let all = read_pids(&h, "pids", 2);
    let pid = started_pid(&h, "stubborn");
    let _guard = Leftovers {
        pids: all.clone(),
        pgid: pid,
    };
    assert!(h.wait_events("event=task_timeout", 1, Duration::from_secs(5)));
    let killed = wait_for(Duration::from_millis(7500), || gone(all[0], pid));
    assert_eq!(agent.stop().0, 0);
    assert!(
        killed,
        "the grandchild {} still runs 7.5 s after the timeout: {:?}",
        all[0],
        proc_stat_of(all[0])
    );
}

#[test]
fn when_the_agent_stops_a_grandchild_ignoring_sigterm_gets_the_sigkill() {
    let h = Host::new("term-ignored-stop");
    let script = h.script("stubborn.sh", &STUBBORN.replace("PIDS", &h.p("pids")));
    let cfg = h.config(
        "",
        &format!("[task.stubborn]\ncommand = {script}\nidle_cycles = 0\ntimeout = 1h\n"),
    );
    let agent = h.spawn(&cfg);
    let all = read_pids(&h, "pids", 2);
    let pid = started_pid(&h, "stubborn");
    let _guard = Leftovers {
        pids: all.clone(),
        pgid: pid,
    };
    let (code, took) = agent.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        wait_for(Duration::from_secs(1), || gone(all[0], pid)),
        "the grandchild {} outlived the agent: {:?}",
        all[0],
        proc_stat_of(all[0])
    );
}

#[test]
fn a_task_ignoring_sigterm_is_killed_5s_later() {
    let h = Host::new("kill");
    let pids = h.p("pids");
    let script = h.script(
        "deaf.sh",
        &format!("trap '' TERM\nsleep 1000 &\necho $! >> {pids}\necho $$ >> {pids}\nwait\n"),
    );
    let cfg = h.config(
        "",
        &format!("[task.deaf]\ncommand = {script}\nidle_cycles = 0\ntimeout = 1s\n"),
    );
    let agent = h.spawn(&cfg);
    let all = read_pids(&h, "pids", 2);
    let pid = started_pid(&h, "deaf");
    let _guard = Leftovers {
        pids: all.clone(),
        pgid: pid,
    };
    assert!(h.wait_events("event=task_timeout", 1, Duration::from_secs(5)));
    let timed_out = Instant::now();
    assert!(
        h.wait_events("event=task_done", 1, Duration::from_secs(8)),
        "{}",
        h.log()
    );
    let waited = timed_out.elapsed();
    assert!(
        (Duration::from_millis(4500)..Duration::from_secs(7)).contains(&waited),
        "{waited:?}"
    );
    let (done, secs) = without_duration(&h.events("event=task_done")[0]);
    assert_eq!(
        done,
        "level=warn event=task_done name=deaf exit=\"signal 9\" duration=D stdout_lines=0 stderr_lines=0"
    );
    assert!((5.9..8.0).contains(&secs), "{secs}");
    assert!(
        wait_for(Duration::from_secs(2), || all.iter().all(|&p| gone(p, pid))),
        "{all:?}"
    );
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop().0, 0);
}

/// Starts a 2 s-timeout task, removes it from the config by a reload while it
/// runs, and waits for its end; returns (task pid, `after` of its timeout event).
fn run_task_removed_by_a_reload(tag: &str) -> (i32, String) {
    let h = Host::new(tag);
    let script = h.script("hang.sh", "exec sleep 1000\n");
    let task = format!("[task.hang]\ncommand = {script}\nidle_cycles = 0\ntimeout = 2s\n");
    let cfg = h.config("", &task);
    let agent = h.spawn(&cfg);
    assert!(h.wait_events("event=task_start", 1, Duration::from_secs(5)));
    let pid = started_pid(&h, "hang");
    let _guard = Leftovers {
        pids: vec![pid],
        pgid: pid,
    };
    h.config("", "");
    signal(&agent.0, libc::SIGHUP);
    assert!(h.wait_events("event=reload", 1, Duration::from_secs(5)));
    assert!(
        h.wait_events("event=task_done", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    let timeouts = h.events("event=task_timeout");
    assert_eq!(timeouts.len(), 1, "{}", h.log());
    let after = field(&timeouts[0], "after").unwrap();
    assert_eq!(
        timeouts[0].replace(&format!(" after={after} "), " after=X "),
        format!(
            "level=warn event=task_timeout name=hang pid={pid} after=X action=\"SIGTERM to its process group, SIGKILL 5s later\""
        )
    );
    let (done, secs) = without_duration(&h.events("event=task_done")[0]);
    assert_eq!(
        done,
        "level=warn event=task_done name=hang exit=\"signal 15\" duration=D stdout_lines=0 stderr_lines=0"
    );
    assert!((2.0..4.0).contains(&secs), "the old timeout holds: {secs}");
    assert!(gone(pid, pid));
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop().0, 0);
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

// 3. The CPU gate and `every`.

/// `cpu=` of each sample event, in order (None when the CPU was unknown).
fn cpu_samples(lines: &[&str]) -> Vec<Option<f64>> {
    lines
        .iter()
        .filter(|l| l.contains(" event=sample "))
        .map(|l| field(l, "cpu").and_then(|v| v.parse().ok()))
        .collect()
}

#[test]
fn starts_only_once_the_cpu_is_idle_and_not_again_before_every() {
    let h = Host::new("cpu-gate");
    let marker = h.p("runs");
    let script = h.script("work.sh", &format!("echo run >> {marker}\n"));
    let task = format!(
        "[task.work]\ncommand = {script}\nevery = 1h\nwhen_cpu_below = 20\nidle_cycles = 3\n"
    );
    let cfg = h.config("", &task);
    let load = CpuLoad::start(&h, 50);
    let agent = h.spawn(&cfg);
    assert!(h.wait_events("event=sample", 8, Duration::from_secs(5)));
    assert_eq!(h.events("event=task_start"), Vec::<String>::new());
    let log = h.log();
    let lines: Vec<&str> = log.lines().collect();
    assert!(
        cpu_samples(&lines).iter().all(|c| *c == Some(50.0)),
        "{log}"
    );

    load.set(10);
    assert!(
        h.wait_events("event=task_done", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
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
    let seen = h.events("event=sample").len();
    assert!(h.wait_events("event=sample", seen + 10, Duration::from_secs(5)));
    assert_eq!(h.events("event=task_start").len(), 1);
    assert_eq!(agent.stop().0, 0);

    // Nor in the cron runs that follow: the last success is in state_dir/tasks.
    let (success, attempt, idle) = task_state(&h, "work").unwrap();
    assert!(success >= attempt && attempt > 0 && idle == 3);
    let idle_samples = h.events("event=sample cpu=10.0").len();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(30)); // the counters move on
        let (code, _, err) = h.once(&cfg, &[]);
        assert_eq!(code, 0, "{err}");
    }
    // Each run an idle cycle (from the counters the last one saved), yet no start.
    assert_eq!(
        h.events("event=sample cpu=10.0").len(),
        idle_samples + 3,
        "{}",
        h.log()
    );
    assert_eq!(h.events("event=task_start").len(), 1, "{}", h.log());
    assert_eq!(h.t.read("runs"), "run\n");
}

#[test]
fn a_restarted_service_remembers_the_last_success() {
    let h = Host::new("restart");
    let marker = h.p("runs");
    let script = h.script("work.sh", &format!("echo run >> {marker}\n"));
    let cfg = h.config(
        "",
        &format!("[task.work]\ncommand = {script}\nevery = 1h\nidle_cycles = 1\n"),
    );
    let _load = CpuLoad::start(&h, 10);
    let agent = h.spawn(&cfg);
    assert!(
        h.wait_events("event=task_done", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop().0, 0);
    assert!(task_state(&h, "work").unwrap().0 > 0);
    let agent = h.spawn(&cfg);
    assert!(h.wait_events("event=start ", 2, Duration::from_secs(5)));
    let seen = h.events("event=sample").len();
    assert!(h.wait_events("event=sample", seen + 8, Duration::from_secs(5)));
    assert_eq!(agent.stop().0, 0);
    assert_eq!(h.t.read("runs"), "run\n", "{}", h.log());
    assert_eq!(h.events("event=task_start").len(), 1);
}

// 4. idle_cycles across cron runs.

#[test]
fn idle_cycles_count_across_once_runs() {
    let h = Host::new("idle-once");
    let marker = h.p("ran");
    let script = h.script("work.sh", &format!("echo ran > {marker}\n"));
    let cfg = h.config(
        "",
        &format!(
            "[task.work]\ncommand = {script}\nevery = 1h\nwhen_cpu_below = 20\nidle_cycles = 3\n"
        ),
    );
    h.seed_cpu(0, 0);
    for run in 1..=5u64 {
        // Time passes between cron runs: the counters move on, 10% busy.
        h.t.write("proc/stat", proc_stat(100 * run, 900 * run));
        let (code, out, err) = h.once(&cfg, &[]);
        assert_eq!(code, 0, "run {run}: {out} {err}");
        assert!(out.contains(" | cpu=10.0%;80;90 "), "run {run}: {out}");
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
        assert_eq!(h.t.read("ran"), if run >= 3 { "ran\n" } else { "" });
    }
}

#[test]
fn a_busy_cron_run_starts_the_idle_count_over() {
    let h = Host::new("idle-reset");
    let script = h.script("work.sh", "exit 0\n");
    let cfg = h.config(
        "",
        &format!("[task.work]\ncommand = {script}\nidle_cycles = 2\n"),
    );
    h.seed_cpu(0, 0);
    // 10%, 50%, 10%, 10%: the count restarts at the busy run.
    let mut busy = 0;
    let mut idle = 0;
    for (run, pct) in [(1, 10), (2, 50), (3, 10), (4, 10)] {
        busy += 10 * pct;
        idle += 10 * (100 - pct);
        h.t.write("proc/stat", proc_stat(busy, idle));
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

#[test]
fn a_failed_run_is_reported_and_not_retried_at_once() {
    let h = Host::new("fail");
    let script = h.script(
        "fail.sh",
        "echo partial\necho 'oops: no disk' >&2\nexit 3\n",
    );
    let cfg = h.config(
        "",
        &format!("[task.fail]\ncommand = {script}\nidle_cycles = 0\n"),
    );
    h.seed_cpu(0, 0);
    h.once(&cfg, &[]);
    let done = h.events("event=task_done");
    assert_eq!(done.len(), 1, "{}", h.log());
    assert_eq!(
        without_duration(&done[0]).0,
        "level=warn event=task_done name=fail exit=3 duration=D stdout_lines=1 stderr_lines=1 stderr_tail=\"oops: no disk\""
    );
    let (success, attempt, _) = task_state(&h, "fail").unwrap();
    assert_eq!(success, 0);
    assert!(attempt > 0);
    // The next cron run, a minute later: retried only after min(1h, every).
    h.seed_cpu(0, 0);
    h.once(&cfg, &[]);
    assert_eq!(h.events("event=task_start").len(), 1, "{}", h.log());
}

#[test]
fn output_on_stderr_makes_a_warning_but_still_a_success() {
    let h = Host::new("stderr");
    let script = h.script("warn.sh", "echo 'note: 3 pages skipped' >&2\n");
    let cfg = h.config(
        "",
        &format!("[task.warn]\ncommand = {script}\nidle_cycles = 0\n"),
    );
    h.seed_cpu(0, 0);
    h.once(&cfg, &[]);
    let done = h.events("event=task_done");
    assert_eq!(done.len(), 1, "{}", h.log());
    assert_eq!(
        without_duration(&done[0]).0,
        "level=warn event=task_done name=warn exit=0 duration=D stdout_lines=0 stderr_lines=1 stderr_tail=\"note: 3 pages skipped\""
    );
    assert!(task_state(&h, "warn").unwrap().0 > 0, "a success");
}

#[test]
fn a_noisy_task_is_drained_by_the_loop_and_its_tail_kept() {
    let h = Host::new("noisy");
    // Far more than a pipe holds; `yes` dies of SIGPIPE quietly (default
    // disposition) when `head` has enough.
    let script = h.script(
        "noisy.sh",
        "yes line | head -n 100000\nyes err | head -n 50000 >&2\n",
    );
    // No cycle for an hour: only the pipes (and SIGCHLD) wake the loop.
    let cfg = h.config(
        "interval = 1h",
        &format!("[task.noisy]\ncommand = {script}\nidle_cycles = 0\n"),
    );
    let agent = h.spawn(&cfg);
    assert!(
        h.wait_events("event=task_done", 1, Duration::from_secs(10)),
        "{}",
        h.log()
    );
    // The last 2048 bytes, from the first whole line: 511 lines of "err".
    let tail = vec!["err"; 511].join("\\n");
    assert_eq!(
        without_duration(&h.events("event=task_done")[0]).0,
        format!(
            "level=warn event=task_done name=noisy exit=0 duration=D stdout_lines=100000 stderr_lines=50000 stderr_tail=\"{tail}\""
        )
    );
    assert_eq!(agent.stop().0, 0);
}

// 5. Reaping: no zombie, and a clean stop.

#[test]
fn a_finished_task_is_reaped_at_once_and_leaves_no_zombie() {
    let h = Host::new("reap");
    let script = h.script("short.sh", "sleep 0.3\necho done\n");
    // A cycle an hour away: only SIGCHLD (and the pipes) can wake the loop.
    let cfg = h.config(
        "interval = 1h",
        &format!("[task.short]\ncommand = {script}\nidle_cycles = 0\n"),
    );
    let agent = h.spawn(&cfg);
    assert!(h.wait_events("event=task_start", 1, Duration::from_secs(5)));
    let pid = started_pid(&h, "short");
    let start = Instant::now();
    assert!(
        h.wait_events("event=task_done", 1, Duration::from_secs(3)),
        "{}",
        h.log()
    );
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(gone(pid, pid));
    assert_eq!(children_of(agent.pid()), vec![], "no zombie, no child");
    assert_eq!(
        without_duration(&h.events("event=task_done")[0]).0,
        "level=info event=task_done name=short exit=0 duration=D stdout_lines=1 stderr_lines=0"
    );
    assert_eq!(h.events("event=sample").len(), 1, "one cycle only");
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn repeated_runs_leave_no_zombie() {
    let h = Host::new("zombies");
    let cfg = h.config(
        "",
        "[task.tick]\ncommand = /bin/true\nevery = 1s\nidle_cycles = 0\n",
    );
    let agent = h.spawn(&cfg);
    assert!(
        h.wait_events("event=task_done", 3, Duration::from_secs(6)),
        "{}",
        h.log()
    );
    // Between runs (a second apart), the agent has no child at all.
    assert!(
        wait_for(Duration::from_millis(500), || children_of(agent.pid())
            .is_empty()),
        "{:?}",
        children_of(agent.pid())
    );
    let starts = h.events("event=task_start").len();
    assert!(
        (3..=4).contains(&starts),
        "one run a second, not one a cycle: {starts}"
    );
    for d in h.events("event=task_done") {
        assert_eq!(
            without_duration(&d).0,
            "level=info event=task_done name=tick exit=0 duration=D stdout_lines=0 stderr_lines=0"
        );
    }
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn sigterm_stops_the_running_task_and_the_agent_exits_0() {
    let h = Host::new("stop");
    let pids = h.p("pids");
    let script = h.script(
        "long.sh",
        &format!("sleep 30 &\necho $! >> {pids}\necho $$ >> {pids}\nwait\n"),
    );
    let cfg = h.config(
        "",
        &format!("[task.long]\ncommand = {script}\nidle_cycles = 0\ntimeout = 1h\n"),
    );
    let agent = h.spawn(&cfg);
    let all = read_pids(&h, "pids", 2);
    let pid = started_pid(&h, "long");
    assert_eq!(all[1], pid);
    let _guard = Leftovers {
        pids: all.clone(),
        pgid: pid,
    };
    // The loop goes on while the task runs.
    let seen = h.events("event=sample").len();
    assert!(h.wait_events("event=sample", seen + 3, Duration::from_secs(3)));
    assert!(!gone(pid, pid));
    let agent_pid = agent.pid();
    let (code, took) = agent.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(gone(pid, pid), "the task was reaped");
    assert!(
        wait_for(Duration::from_secs(1), || all.iter().all(|&p| gone(p, pid))),
        "{all:?}"
    );
    assert_eq!(children_of(agent_pid), vec![]);
    let done = h.events("event=task_done");
    assert_eq!(done.len(), 1, "{}", h.log());
    let (line, secs) = without_duration(&done[0]);
    assert_eq!(
        line,
        "level=warn event=task_done name=long exit=\"signal 15\" duration=D stdout_lines=0 stderr_lines=0 note=\"stopped with the agent\""
    );
    assert!(secs < 10.0);
    let log = h.log();
    let tail: Vec<&str> = log.lines().rev().take(2).collect();
    assert!(tail[0].contains(" event=stop reason=SIGTERM "), "{log}");
    assert!(tail[1].contains(" event=task_done "), "{log}");
}

#[test]
fn sigterm_to_a_once_run_stops_its_task_too() {
    let h = Host::new("once-term");
    let pids = h.p("pids");
    let script = h.script(
        "long.sh",
        &format!("sleep 30 &\necho $! >> {pids}\necho $$ >> {pids}\nwait\n"),
    );
    let cfg = h.config(
        "",
        &format!("[task.long]\ncommand = {script}\nidle_cycles = 0\ntimeout = 1h\n"),
    );
    h.seed_cpu(0, 0);
    let mut once = spawn(&["-c", cfg.to_str().unwrap(), "--once"]);
    let all = read_pids(&h, "pids", 2);
    let pid = started_pid(&h, "long");
    let _guard = Leftovers {
        pids: all.clone(),
        pgid: pid,
    };
    signal(&once, libc::SIGTERM);
    // Generous bounds: they only keep a broken build from hanging the suite.
    wait_exit(&mut once, Duration::from_secs(20));
    assert!(
        wait_for(Duration::from_secs(20), || all
            .iter()
            .all(|&p| gone(p, pid))),
        "left running: {:?}",
        all.iter()
            .map(|&p| (p, proc_stat_of(p)))
            .collect::<Vec<_>>()
    );
    assert_eq!(h.events("event=task_done").len(), 1, "{}", h.log());
}

// 6. What the child inherits.

/// How the agent is started for the exec-state tests.
#[derive(Clone, Copy)]
struct Start {
    /// Close fds 0-2 before exec.
    close_stdio: bool,
    /// Signals the agent inherits as ignored (`SIG_IGN` survives exec); every
    /// other signal is set to its default first, so the result does not depend on
    /// what the test harness ignores.
    ignored: &'static [i32],
}

/// Sets `sig`'s disposition with the raw system call: glibc's `signal` refuses
/// 32 and 33, which it reserves. Async-signal-safe.
fn set_disposition(sig: i32, handler: libc::sighandler_t) {
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let act = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a valid kernel sigaction for SIG_DFL or SIG_IGN; no old action.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig as libc::c_long,
            &act as *const KernelSigaction,
            std::ptr::null::<KernelSigaction>(),
            8 as libc::c_long,
        )
    };
}

/// Starts `--once` with an extra inheritable descriptor (fd 9, no close-on-exec),
/// and the signal dispositions and stdio of `how`.
fn spawn_once(cfg: &Path, leak: &Path, how: Start) -> Child {
    use std::os::unix::io::AsRawFd;
    use std::os::unix::process::CommandExt;
    let file = std::fs::File::create(leak).unwrap();
    let raw = file.as_raw_fd();
    let mut cmd = Command::new(bin());
    cmd.args(["-c", cfg.to_str().unwrap(), "--once"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only dup2, close and rt_sigaction (async-signal-safe) between fork
    // and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for sig in 1..=64 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    set_disposition(sig, libc::SIG_DFL);
                }
            }
            for &sig in how.ignored {
                set_disposition(sig, libc::SIG_IGN);
            }
            if how.close_stdio {
                libc::close(0);
                libc::close(1);
                libc::close(2);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(file);
    child
}

fn status_field(pid: i32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .map(|e| {
            let n = e.file_name().to_str().unwrap().parse().unwrap();
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            (n, target)
        })
        .collect();
    fds.sort();
    fds
}

/// Looks at a running task from outside: descriptors, exec environment, signal
/// mask and dispositions, process group, nice value and ids.
fn check_exec_state(h: &Host, agent: i32, task: i32) {
    let fds = fds_of(task);
    let numbers: Vec<i32> = fds.iter().map(|f| f.0).collect();
    assert_eq!(numbers, vec![0, 1, 2], "{fds:?}");
    assert_eq!(fds[0].1, "/dev/null");
    assert!(
        fds[1].1.starts_with("pipe:[") && fds[2].1.starts_with("pipe:["),
        "{fds:?}"
    );
    assert_ne!(fds[1].1, fds[2].1, "stdout and stderr are separate pipes");
    assert_eq!(
        std::fs::read(format!("/proc/{task}/environ")).unwrap(),
        b"PATH=/usr/sbin:/usr/bin:/sbin:/bin\0LANG=C\0"
    );
    assert_eq!(status_field(task, "SigBlk"), "0000000000000000");
    assert_eq!(status_field(task, "SigIgn"), "0000000000000000");
    assert_eq!(status_field(task, "Uid"), "1 1 1 1", "user = daemon");
    assert_eq!(status_field(task, "Gid"), "1 1 1 1");
    assert_eq!(status_field(task, "Groups"), "1");
    let stat = std::fs::read_to_string(format!("/proc/{task}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!(f[2], task.to_string(), "its own process group");
    assert_eq!(f[16], "7", "nice");
    assert_eq!(
        std::fs::read_link(format!("/proc/{task}/exe")).unwrap(),
        std::fs::canonicalize("/bin/sleep").unwrap()
    );
    // The test is meaningful: the agent holds more, and ignores signals.
    let mine = fds_of(agent);
    assert!(mine.iter().any(|f| f.0 == 9), "{mine:?}");
    assert!(
        mine.iter().any(|f| f.1 == h.p("agent.log")),
        "{mine:?} {}",
        h.p("agent.log")
    );
    // SIGUSR1 (10), SIGALRM (14), SIGTTOU (22) and 40 come from the test, SIGHUP,
    // SIGPIPE from the agent itself.
    let ign = u64::from_str_radix(&status_field(agent, "SigIgn"), 16).unwrap();
    for sig in [1, 10, 13, 14, 22, 40] {
        assert_eq!(ign >> (sig - 1) & 1, 1, "signal {sig} in {ign:x}");
    }
}

fn exec_state_config(h: &Host) -> PathBuf {
    h.config(
        "",
        "[task.probe]\ncommand = /bin/sleep 2\nidle_cycles = 0\nnice = 7\nuser = daemon\ntimeout = 10s\n",
    )
}

#[test]
fn the_child_gets_exactly_fds_0_to_2_the_minimal_env_and_default_signals() {
    let h = Host::new("exec");
    let cfg = exec_state_config(&h);
    h.seed_cpu(0, 0);
    let how = Start {
        close_stdio: false,
        // Ignored by the agent (besides what it ignores itself): never by its child.
        ignored: &[libc::SIGUSR1, libc::SIGALRM, libc::SIGTTOU, 40],
    };
    let mut agent = spawn_once(&cfg, &h.t.join("leak"), how);
    assert!(
        h.wait_events("event=task_start", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    let task = started_pid(&h, "probe");
    check_exec_state(&h, agent.id() as i32, task);
    let st = wait_exit(&mut agent, Duration::from_secs(6));
    assert_eq!(st.code(), Some(0));
    assert_eq!(
        h.events("event=task_start"),
        vec![format!(
            "level=info event=task_start name=probe pid={task} user=daemon command=\"/bin/sleep 2\""
        )]
    );
    assert_eq!(
        without_duration(&h.events("event=task_done")[0]).0,
        "level=info event=task_done name=probe exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );
}

#[test]
fn an_agent_started_with_fds_0_to_2_closed_still_gives_its_child_0_to_2() {
    let h = Host::new("exec-closed");
    let cfg = exec_state_config(&h);
    h.seed_cpu(0, 0);
    let how = Start {
        close_stdio: true,
        ignored: &[],
    };
    let mut agent = spawn_once(&cfg, &h.t.join("leak"), how);
    assert!(
        h.wait_events("event=task_start", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    let task = started_pid(&h, "probe");
    let fds = fds_of(task);
    let st = wait_exit(&mut agent, Duration::from_secs(6));
    assert_eq!(st.code(), Some(0));
    let numbers: Vec<i32> = fds.iter().map(|f| f.0).collect();
    assert_eq!(numbers, vec![0, 1, 2], "{fds:?}");
    assert_eq!(fds[0].1, "/dev/null", "{fds:?}");
}

#[test]
fn the_child_gets_default_dispositions_for_every_signal() {
    let h = Host::new("exec-rt");
    let cfg = exec_state_config(&h);
    h.seed_cpu(0, 0);
    let how = Start {
        close_stdio: false,
        ignored: &[32, 33, 34, 63, 64],
    };
    let mut agent = spawn_once(&cfg, &h.t.join("leak"), how);
    assert!(
        h.wait_events("event=task_start", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    let task = started_pid(&h, "probe");
    let ign = status_field(task, "SigIgn");
    let st = wait_exit(&mut agent, Duration::from_secs(6));
    assert_eq!(st.code(), Some(0));
    assert_eq!(ign, "0000000000000000");
}

// 7. task_skipped.

#[test]
fn a_task_that_cannot_run_is_skipped_once_per_config_load() {
    let h = Host::new("skip");
    let missing = h.p("no/such/program");
    let cfg = h.config(
        "",
        &format!(
            "[task.gone]\ncommand = {missing} --flag\nevery = 1s\nidle_cycles = 0\n\n\
             [task.who]\ncommand = /bin/true\nevery = 1s\nidle_cycles = 0\nuser = nosuchuser\n"
        ),
    );
    let agent = h.spawn(&cfg);
    let gone = format!(
        "level=warn event=task_skipped name=gone reason=\"{missing} is missing or not executable\""
    );
    let who = format!(
        "level=warn event=task_skipped name=who reason=\"user nosuchuser is not in {}\"",
        h.p("etc/passwd")
    );
    assert!(h.wait_events("event=task_skipped", 2, Duration::from_secs(5)));
    // Both would be due again every second: still reported once (25 cycles of
    // 100 ms later).
    let seen = h.events("event=sample").len();
    assert!(h.wait_events("event=sample", seen + 25, Duration::from_secs(10)));
    assert_eq!(
        h.events("event=task_skipped"),
        vec![gone.clone(), who.clone()]
    );
    assert_eq!(h.events("event=task_start"), Vec::<String>::new());
    // A reload (same file) is a new config load: once more each.
    signal(&agent.0, libc::SIGHUP);
    assert!(h.wait_events("event=reload", 1, Duration::from_secs(5)));
    assert!(
        h.wait_events("event=task_skipped", 4, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    let seen = h.events("event=sample").len();
    assert!(h.wait_events("event=sample", seen + 25, Duration::from_secs(10)));
    let mut got = h.events("event=task_skipped");
    got[2..].sort();
    assert_eq!(got, vec![gone.clone(), who.clone(), gone, who]);
    assert_eq!(h.events("event=task_start"), Vec::<String>::new());
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn an_agent_that_cannot_switch_users_skips_the_task() {
    use std::os::unix::process::CommandExt;
    let h = Host::new("skip-nonroot");
    // The agent runs as nobody, without capabilities: its log and state are nobody's.
    let nobody = 65_534;
    std::fs::create_dir(h.t.join("state")).unwrap();
    std::fs::set_permissions(h.t.join("state"), std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(h.t.join("state"), Some(nobody), Some(nobody)).unwrap();
    let log = h.t.write("agent.log", "");
    std::os::unix::fs::chown(&log, Some(nobody), Some(nobody)).unwrap();
    let marker = h.p("ran");
    let script = h.script("work.sh", &format!("touch {marker}\n"));
    let cfg = h.config(
        "",
        &format!("[task.as-daemon]\ncommand = {script}\nidle_cycles = 0\nuser = daemon\n"),
    );
    let out = Command::new(bin())
        .args(["-c", cfg.to_str().unwrap(), "--once"])
        .uid(nobody)
        .gid(nobody)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        h.events("event=task_"),
        vec![
            "level=warn event=task_skipped name=as-daemon reason=\"cannot run as daemon: needs root or cap_setuid and cap_setgid\""
                .to_string()
        ],
        "{}{}",
        h.log(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!Path::new(&marker).exists());
}

#[test]
fn a_program_that_cannot_be_executed_is_an_error_and_leaves_no_child() {
    let h = Host::new("enoexec");
    // Executable, but neither ELF nor a script with `#!`: execve fails (ENOEXEC).
    let bad = h.t.write("bad", "not a program\n");
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o755)).unwrap();
    let cfg = h.config(
        "",
        &format!("[task.bad]\ncommand = {}\nidle_cycles = 0\n", bad.display()),
    );
    let agent = h.spawn(&cfg);
    assert!(
        h.wait_events("what=task", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    assert_eq!(
        h.events("what=task"),
        vec!["level=error event=error what=task error=\"Exec format error\" name=bad"]
    );
    assert_eq!(h.events("event=task_"), Vec::<String>::new());
    // Not retried every cycle (a failed attempt waits min(1h, every)).
    let seen = h.events("event=sample").len();
    assert!(h.wait_events("event=sample", seen + 5, Duration::from_secs(5)));
    assert_eq!(h.events("what=task").len(), 1);
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop().0, 0);
}

// 8. --dry-run.

#[test]
fn dry_run_logs_the_start_and_runs_nothing() {
    let h = Host::new("dry");
    let marker = h.p("created");
    let script = h.script("mk.sh", &format!("touch {marker}\n"));
    let cfg = h.config(
        "",
        &format!("[task.mk]\ncommand = {script} now\nidle_cycles = 0\nuser = daemon\n"),
    );
    h.seed_cpu(0, 0);
    let (code, _, err) = h.once(&cfg, &["--dry-run"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        h.events("event=task_"),
        vec![format!(
            "level=info event=task_start name=mk user=daemon command=\"{script} now\" dry_run=yes"
        )]
    );
    assert!(!Path::new(&marker).exists());
}

#[test]
fn a_dry_run_does_not_count_as_a_run_for_later_real_runs() {
    let h = Host::new("dry-then-real");
    let marker = h.p("created");
    let script = h.script("mk.sh", &format!("touch {marker}\n"));
    let cfg = h.config(
        "",
        &format!("[task.mk]\ncommand = {script}\nidle_cycles = 0\n"),
    );
    h.seed_cpu(0, 0);
    h.once(&cfg, &["--dry-run"]);
    assert!(!Path::new(&marker).exists());
    assert_eq!(
        task_state(&h, "mk").map_or(0, |s| s.0),
        0,
        "no success recorded"
    );
    h.seed_cpu(0, 0);
    h.once(&cfg, &[]);
    assert!(Path::new(&marker).exists(), "{}", h.log());
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

#[test]
fn a_reload_that_adds_the_missing_user_runs_the_task_at_once() {
    // every = 1h: without the reload, the skipped task would wait an hour.
    let h = Host::new("skip-fix");
    std::fs::create_dir(h.t.join("carol")).unwrap();
    std::os::unix::fs::chown(h.t.join("carol"), Some(4001), Some(4001)).unwrap();
    let marker = h.p("carol/ran");
    let script = h.script("work.sh", &format!("touch {marker}\n"));
    let cfg = h.config(
        "",
        &format!("[task.who]\ncommand = {script}\nevery = 1h\nidle_cycles = 0\nuser = carol\n"),
    );
    let agent = h.spawn(&cfg);
    assert!(h.wait_events("event=task_skipped", 1, Duration::from_secs(5)));
    let passwd = h.t.read("etc/passwd");
    h.t.write(
        "etc/passwd",
        format!("{passwd}carol:x:4001:4001::/nonexistent:/bin/sh\n"),
    );
    signal(&agent.0, libc::SIGHUP);
    assert!(
        h.wait_events("event=task_done", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    let done = h.events("event=task_done");
    let (done0, _) = without_duration(&done[0]);
    assert_eq!(
        done0,
        "level=info event=task_done name=who exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );
    let st = std::fs::metadata(&marker).unwrap();
    assert_eq!((st.uid(), st.gid()), (4001, 4001));
    assert_eq!(h.events("event=task_skipped").len(), 1);
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn what_a_task_leaves_in_its_group_is_killed_when_it_exits() {
    let h = Host::new("leftover");
    let pids = h.p("pids");
    let script = h.script(
        "bg.sh",
        &format!("sleep 1000 &\necho $! >> {pids}\necho $$ >> {pids}\nexit 0\n"),
    );
    let cfg = h.config(
        "",
        &format!("[task.bg]\ncommand = {script}\nidle_cycles = 0\n"),
    );
    h.seed_cpu(0, 0);
    let (code, out, err) = h.once(&cfg, &[]);
    assert_eq!(code, 0, "{out}{err}");
    let all = read_pids(&h, "pids", 2);
    let pid = started_pid(&h, "bg");
    assert_eq!(all[1], pid, "the task is its script");
    let _guard = Leftovers {
        pids: all.clone(),
        pgid: pid,
    };
    let done = h.events("event=task_done");
    let (done0, _) = without_duration(&done[0]);
    assert_eq!(
        done0,
        "level=info event=task_done name=bg exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );
    // The background sleep did not outlive the run.
    assert!(
        wait_for(Duration::from_secs(2), || gone(all[0], pid)),
        "{:?}",
        proc_stat_of(all[0])
    );
}

#[test]
fn a_skipped_task_is_reported_once_across_cron_runs_and_again_by_a_service_start() {
    let h = Host::new("skip-cron");
    let missing = h.p("no/such/program");
    let cfg = h.config(
        "",
        &format!("[task.gone]\ncommand = {missing}\nevery = 10ms\nidle_cycles = 0\n"),
    );
    let line = format!(
        "level=warn event=task_skipped name=gone reason=\"{missing} is missing or not executable\""
    );
    let mut attempts = Vec::new();
    for _ in 0..3 {
        if let Some(&last) = attempts.last() {
            // Due again: more than `every` since the last try (runs can be that quick).
            assert!(wait_for(Duration::from_secs(1), || now_ns() - last > 20_000_000));
        }
        h.seed_cpu(0, 0);
        let (code, out, err) = h.once(&cfg, &[]);
        assert_eq!(code, 0, "{out}{err}");
        attempts.push(task_state(&h, "gone").unwrap().1);
    }
    // Each run tried it (the attempt moved on); only the first reported it.
    assert!(attempts.windows(2).all(|w| w[1] > w[0]), "{attempts:?}");
    assert_eq!(h.events("event=task_skipped"), vec![line.clone()]);
    // A service start is a new configuration: tried at once, reported once more.
    let agent = h.spawn(&cfg);
    assert!(h.wait_events("event=task_skipped", 2, Duration::from_secs(5)));
    let seen = h.events("event=sample").len();
    assert!(h.wait_events("event=sample", seen + 5, Duration::from_secs(5)));
    assert_eq!(agent.stop().0, 0);
    assert_eq!(h.events("event=task_skipped"), vec![line.clone(), line]);
}

// 9. Time going backwards.

/// Stamps in the future (the clock was stepped back, or the state came from another
/// host) count as long ago: the task runs, and the saved stamps are corrected.
#[test]
fn a_last_run_dated_in_the_future_does_not_stop_the_task() {
    let h = Host::new("future");
    let marker = h.p("ran");
    let script = h.script("work.sh", &format!("echo ran >> {marker}\n"));
    let cfg = h.config(
        "",
        &format!("[task.work]\ncommand = {script}\nevery = 1h\nidle_cycles = 0\n"),
    );
    // Ten years ahead: a success, then a failed attempt after it.
    let future = now_ns() + 10 * 365 * 86_400 * 1_000_000_000;
    h.t.write(
        "state/tasks",
        format!(
            "system-agent-tasks 1\ntask {future} {} 0 work\nend\n",
            future + 1
        ),
    );
    h.seed_cpu(0, 0);
    let before = now_ns();
    let (code, out, err) = h.once(&cfg, &[]);
    let after = now_ns();
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(h.t.read("ran"), "ran\n", "{}", h.log());
    let (success, attempt, _) = task_state(&h, "work").unwrap();
    assert!(
        (before..=after).contains(&attempt) && (attempt..=after).contains(&success),
        "{before} {attempt} {success} {after}"
    );
    // Succeeded now: not again within `every`.
    h.seed_cpu(0, 0);
    h.once(&cfg, &[]);
    assert_eq!(h.t.read("ran"), "ran\n", "{}", h.log());
}

// 10. Children start clean: their own working directory and umask.

/// Runs `--once` from `cwd` with umask `mask` (the agent's, which its children
/// must not inherit).
fn once_from(cfg: &Path, cwd: &Path, mask: libc::mode_t) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(bin());
    cmd.args(["-c", cfg.to_str().unwrap(), "--once"])
        .current_dir(cwd)
        .stdin(Stdio::null());
    // SAFETY: umask(2) only, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        });
    }
    cmd.output().unwrap()
}

#[test]
fn tasks_the_mailer_and_the_alert_command_start_in_root_with_umask_022() {
    let h = Host::new("cwd-umask");
    // The agent runs from a world-writable directory with umask 0000.
    let open = h.t.join("world-writable");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let work = h.t.join("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::create_dir(h.t.join("out")).unwrap();
    // Each child writes where it runs and its umask to out/NAME (a new file, so
    // its mode shows the umask too).
    let report = h.script(
        "report.sh",
        &format!(
            "/bin/cat > /dev/null\n{{ pwd -P; grep '^Umask:' /proc/self/status; }} > {}/$1\n",
            h.p("out")
        ),
    );
    h.t.write("proc/meminfo", proc_meminfo(96));
    let cfg = h.config(
        "",
        &format!(
            "[thresholds]\nfor_cycles = 1\n\n\
             [alert]\nemail = ops@example.com\nsendmail = {report} mail\ncommand = {report} command\n\n\
             [task.plain]\ncommand = {report} task\nidle_cycles = 0\n\n\
             [task.custom]\ncommand = {report} custom\nidle_cycles = 0\ncwd = {}\numask = 027\n",
            work.display()
        ),
    );
    let read = |name: &str| {
        let p = h.t.join("out").join(name);
        let mode = std::fs::metadata(&p).map(|m| m.mode() & 0o777).unwrap_or(0);
        (h.t.read(&format!("out/{name}")), format!("{mode:o}"))
    };
    let clean = ("/\nUmask:\t0022\n".to_string(), "644".to_string());
    // The first run starts task plain (one task a run) and tells the alert.
    h.seed_cpu(0, 0);
    let out = once_from(&cfg, &open, 0);
    assert_eq!(out.status.code(), Some(2), "{}", h.log());
    for name in ["task", "mail", "command"] {
        assert_eq!(read(name), clean, "{name}: {}", h.log());
    }
    // The second starts task custom, in its cwd with its umask.
    h.seed_cpu(0, 0);
    let out = once_from(&cfg, &open, 0);
    assert_eq!(out.status.code(), Some(2), "{}", h.log());
    let work = std::fs::canonicalize(&work).unwrap();
    assert_eq!(
        read("custom"),
        (
            format!("{}\nUmask:\t0027\n", work.display()),
            "640".to_string()
        ),
        "{}",
        h.log()
    );
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
}

#[test]
fn a_task_cwd_it_cannot_enter_is_an_error_and_leaves_no_child() {
    let h = Host::new("cwd-missing");
    let missing = h.p("no/such/dir");
    let cfg = h.config(
        "",
        &format!("[task.lost]\ncommand = /bin/true\nidle_cycles = 0\ncwd = {missing}\n"),
    );
    let agent = h.spawn(&cfg);
    assert!(
        h.wait_events("what=task", 1, Duration::from_secs(5)),
        "{}",
        h.log()
    );
    assert_eq!(
        h.events("what=task"),
        vec![format!(
            "level=error event=error what=task error=\"cannot change directory to {missing}: No such file or directory\" name=lost"
        )]
    );
    assert_eq!(h.events("event=task_"), Vec::<String>::new());
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop().0, 0);
}

// 11. A task's user gets its supplementary groups from [paths] group.

/// Runs task `who` as user `probe` (uid 4242, gid 4343: ids this host need not
/// have) with `group` as `[paths] group`; returns its `Uid:`, `Gid:` and `Groups:`
/// lines (groups sorted), or the log when it did not run.
fn ids_of_task(h: &Host, group: &str) -> Result<Vec<String>, String> {
    h.t.write(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nprobe:x:4242:4343::/nonexistent:/bin/sh\n",
    );
    let out = h.t.join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(4242), Some(4343)).unwrap();
    let script = h.script(
        "ids.sh",
        &format!(
            "grep -E '^(Uid|Gid|Groups):' /proc/self/status > {}/ids\n",
            out.display()
        ),
    );
    let cfg = h.config(
        "",
        &format!("[task.who]\ncommand = {script}\nidle_cycles = 0\nuser = probe\n"),
    );
    // [paths] group as given (the fixture's etc/group by default).
    let text = std::fs::read_to_string(&cfg).unwrap();
    let fixture = format!("\ngroup = {}\n", h.p("etc/group"));
    assert!(text.contains(&fixture), "{text}");
    std::fs::write(
        &cfg,
        text.replace(&fixture, &format!("\ngroup = {group}\n")),
    )
    .unwrap();
    h.seed_cpu(0, 0);
    let (code, stdout, stderr) = h.once(&cfg, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let text = h.t.read("out/ids");
    if text.is_empty() {
        return Err(h.log());
    }
    Ok(text
        .lines()
        .map(|l| {
            let (key, v) = l.split_once(':').unwrap();
            let mut ids: Vec<u32> = v.split_whitespace().map(|n| n.parse().unwrap()).collect();
            if key == "Groups" {
                ids.sort_unstable();
            }
            let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
            format!("{key}: {}", ids.join(" "))
        })
        .collect())
}

#[test]
fn a_task_user_gets_its_supplementary_groups_from_the_group_file() {
    let h = Host::new("groups");
    let group = h.t.write(
        "etc/group",
        "root:x:0:\nprimary:x:4343:\nlow:x:77:other,probe\nhigh:x:5001:probe\n\
         notmine:x:5002:other,probe2\n# comment:x:5003:probe\nbroken:x:probe\nalso:x:5004:probe,\n",
    );
    assert_eq!(
        ids_of_task(&h, &group.display().to_string()),
        Ok(vec![
            "Uid: 4242 4242 4242 4242".to_string(),
            "Gid: 4343 4343 4343 4343".to_string(),
            "Groups: 77 4343 5001 5004".to_string(),
        ])
    );
}

#[test]
fn without_a_group_file_a_task_user_gets_only_its_primary_group() {
    let h = Host::new("groups-none");
    assert_eq!(
        ids_of_task(&h, &h.p("etc/no-group-file")),
        Ok(vec![
            "Uid: 4242 4242 4242 4242".to_string(),
            "Gid: 4343 4343 4343 4343".to_string(),
            "Groups: 4343".to_string(),
        ])
    );
}

#[test]
fn an_unreadable_group_file_skips_the_task() {
    let h = Host::new("groups-bad");
    // A directory: read(2) fails with EISDIR, whoever reads it.
    let dir = h.t.join("etc/group.d");
    std::fs::create_dir_all(&dir).unwrap();
    let log = ids_of_task(&h, &dir.display().to_string()).unwrap_err();
    assert_eq!(
        events(&log, "event=task_"),
        vec![format!(
            "level=warn event=task_skipped name=who reason=\"cannot read {}: Is a directory\"",
            dir.display()
        )]
    );
}

// 12. A command's quoted words reach execve as written.

#[test]
fn a_quoted_command_runs_with_exactly_its_words() {
    let h = Host::new("quoted");
    let out = h.p("args");
    let script = h.script(
        "my tools/args.sh",
        &format!("for a in \"$@\"; do printf '[%s]\\n' \"$a\"; done > {out}\n"),
    );
    let command = format!("\"{script}\" \"a b\" 'c \"d\"' e\\ f \"\" *.tmp ; a comment");
    let cfg = h.config(
        "",
        &format!("[task.quoted]\ncommand = {command}\nidle_cycles = 0\n"),
    );
    h.seed_cpu(0, 0);
    let (code, stdout, stderr) = h.once(&cfg, &[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        h.t.read("args"),
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
