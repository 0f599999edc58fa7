//! Idle-time tasks seen from outside: a host whose passwd has the users tasks run
//! as, scripts that write their pids, a run's events, the state file the agent
//! keeps for tasks, and CPU counters that keep moving like a real /proc/stat.

use super::{BTIME, Host, LIMIT, Leftovers, field, wait_for};
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The real `man` user's uid and gid (Debian: 6 and 12), for the fixture passwd.
pub fn man_ids() -> (u32, u32) {
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

/// A fixture host whose passwd has root, daemon (1) and man (this machine's ids).
pub fn task_host(tag: &str) -> Host {
    let h = Host::new(tag);
    let (uid, gid) = man_ids();
    h.passwd(&format!(
        "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
         man:x:{uid}:{gid}:man:/var/cache/man:/usr/sbin/nologin\n"
    ));
    h
}

/// `[task.NAME]` with `command` and more `keys` lines.
pub fn task(name: &str, command: &str, keys: &str) -> String {
    format!("[task.{name}]\ncommand = {command}\n{keys}\n")
}

/// `line` with its `duration=` value replaced by `D`, and that value.
pub fn without_duration(line: &str) -> (String, f64) {
    let d = field(line, "duration").expect("a duration field");
    (
        line.replace(&format!(" duration={d} "), " duration=D "),
        d.parse().expect("a number"),
    )
}

/// The pid in the first `task_start` event of `name`.
pub fn started_pid(h: &Host, name: &str) -> i32 {
    let starts = h.events(&format!("event=task_start name={name} "));
    let first = starts.first().unwrap_or_else(|| panic!("{}", h.log()));
    field(first, "pid").unwrap().parse().unwrap()
}

/// The pids a task script wrote to T/`rel`, one a line, once `n` are there.
pub fn read_pids(h: &Host, rel: &str, n: usize) -> Vec<i32> {
    assert!(
        wait_for(LIMIT, || h.read(rel).lines().count() >= n),
        "{rel}: {:?}\n{}",
        h.read(rel),
        h.log()
    );
    h.read(rel)
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect()
}

/// A script for task `name` that starts `background` (lines that each write the
/// pid of what they started to T/pids), then writes its own pid and waits.
pub fn pids_script(h: &Host, name: &str, background: &str) -> String {
    let body = background.replace("PIDS", &h.p("pids"));
    h.script(
        &format!("{name}.sh"),
        &format!("{body}echo $$ >> {}\nwait\n", h.p("pids")),
    )
}

/// `sleep 1000` in the background, its pid to T/pids (a `pids_script` line).
pub const SLEEPER: &str = "sleep 1000 &\necho $! >> PIDS\n";

/// A subshell that ignores SIGTERM and execs sleep, which inherits that.
pub const STUBBORN: &str = "(trap '' TERM; exec sleep 1000) &\necho $! >> PIDS\n";

/// The `n` pids a `pids_script` of task `name` wrote, the last one the task itself
/// (checked), and a guard that kills what is left of its group when the test ends.
pub fn task_pids(h: &Host, name: &str, n: usize) -> (Vec<i32>, i32, Leftovers) {
    let all = read_pids(h, "pids", n);
    let pid = started_pid(h, name);
    assert_eq!(all[n - 1], pid, "the task is its script");
    let guard = Leftovers::new(all.clone(), pid);
    (all, pid, guard)
}

/// `tasks` state line of one task: (last_success_ns, last_attempt_ns, idle).
pub fn task_state(h: &Host, name: &str) -> Option<(u64, u64, u32)> {
    let text = h.read("state/tasks");
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
pub struct CpuLoad {
    percent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CpuLoad {
    pub fn start(h: &Host, percent: u64) -> CpuLoad {
        h.write("proc/stat", stat_fixed(100, 900));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(h.path("proc/stat"))
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

    pub fn set(&self, percent: u64) {
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
