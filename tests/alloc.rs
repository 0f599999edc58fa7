//! The performance budget: a cycle without a process scan reads a handful of
//! files and allocates nothing in steady state. A counting global allocator
//! measures the cycles of a
//! real `Agent` on a fixture /proc tree (log file, metrics file, status file and state on, the
//! watched mount and cleanup paths found local in the tree's mountinfo, the
//! shipped cleanup rules' shape: `disk_high` with the disk below its limit, the
//! agent's memory cgroup read and the watched mount's forecast kept, a
//! history audited that does not grow, a task not due, an alert command with
//! nothing to tell, memory relief on with memory not short), after a few warm-up
//! cycles have grown its buffers. The scan cycle is held to the same, and so are
//! the service's `WATCHDOG=1` to systemd after each cycle and memory relief's
//! checks between cycles.

mod common;

use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::Path;
use system_agent::agent::{Agent, Options};
use system_agent::config::Config;

struct Counting;

thread_local! {
    // Per thread: the two tests run in parallel and must not count each other.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCS.with(|a| a.set(a.get() + 1));
    }
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations made by `f` on this thread.
fn allocations(f: impl FnOnce()) -> u64 {
    let before = ALLOCS.with(Cell::get);
    COUNTING.with(|c| c.set(true));
    f();
    COUNTING.with(|c| c.set(false));
    ALLOCS.with(Cell::get) - before
}

/// `agent` lines are added to `[agent]`.
fn agent(t: &TempDir, thresholds: &str, agent: &str) -> Agent {
    t.write("proc/meminfo", proc_meminfo(50));
    t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
    t.write(
        "proc/pressure/cpu",
        "some avg10=1.00 avg60=0.50 avg300=0.10 total=12345\n",
    );
    t.write(
        "proc/100/stat",
        "100 (worker) R 1 100 100 0 -1 0 0 0 0 0 500 20 0 0 20 0 1 0 5000 1000000 300 0 0\n",
    );
    t.write(
        "proc/100/status",
        "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t0\n",
    );
    t.write("proc/100/cmdline", "worker\0--busy\0");
    // The agent's memory cgroup (v2, limited, with pressure files): read each cycle.
    t.write("proc/self/cgroup", "0::/agent\n");
    t.write("cg/cgroup.controllers", "memory\n");
    t.write("cg/agent/memory.max", "1073741824\n");
    t.write("cg/agent/memory.current", "104857600\n");
    t.write("cg/agent/memory.stat", "anon 1\ninactive_file 4096\n");
    t.write(
        "cg/agent/memory.pressure",
        "some avg10=0.50 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    );
    // The mount table: the watched paths lie on local filesystems, asked directly.
    t.write(
        "proc/self/mountinfo",
        format!(
            "1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw\n\
             2 1 0:45 / /mnt/nfs rw,relatime shared:3 - nfs4 srv:/export rw\n\
             3 1 0:46 / {} rw,relatime - xfs /dev/sdb1 rw\n",
            t.path().display()
        ),
    );
    // One audited user, whose history exists and does not grow.
    t.write(
        "etc/passwd",
        format!("root:x:0:0:root:{}:/bin/sh\n", t.join("root").display()),
    );
    t.write("root/.bash_history", "ls\n");
    for d in ["logs", "tmp", "var/tmp"] {
        std::fs::create_dir_all(t.join(d)).expect("cleanup dirs");
    }
    let p = |r: &str| t.join(r).display().to_string();
    let text = format!(
        "[agent]\nlog_file = {}\nsyslog = no\nstate_dir = {}\nmetrics_file = {}\nstatus_file = {}\n{agent}\n\
         [paths]\nproc = {}\npasswd = {}\ncgroup = {}\n[disk]\nmounts = {}\n[audit]\nbash_history = yes\nusers = root\nlog_file = {}\n\
         [thresholds]\n{thresholds}\n\
         [alert]\ncommand = /bin/true\nmin_level = critical\n\
         [task.never]\ncommand = /bin/true\nwhen_cpu_below = 0\n\
         [cleanup.logs]\npaths = {}\nmatch = *.gz\n[cleanup.tmp]\npaths = {} {}\nrecursive = yes\n\
         [relief]\nenabled = yes\n",
        p("agent.log"),
        p("state"),
        p("metrics.prom"),
        p("agent.status"),
        p("proc"),
        p("etc/passwd"),
        p("cg"),
        p(""),
        p("audit.log"),
        p("logs"),
        p("tmp"),
        p("var/tmp"),
    );
    let cfg = Config::parse(Path::new("alloc.ini"), &text).expect("valid config");
    let opts = Options {
        config: t.join("alloc.ini"),
        explicit: true,
        dry_run: false,
        log_level: None,
    };
    let mut a = Agent::new(opts, cfg, false);
    a.take_lock().expect("lock");
    a
}

/// Runs cycles with the CPU counters moving on in between, as on a live host.
fn cycles(t: &TempDir, a: &mut Agent, from: u64, n: u64) -> u64 {
    let mut total = 0;
    for i in from..from + n {
        t.write("proc/stat", proc_stat(100 * i, 900 * i));
        total += allocations(|| a.cycle(None));
    }
    total
}

#[test]
fn a_cycle_without_a_scan_allocates_nothing() {
    let t = TempDir::new("alloc");
    let mut a = agent(
        &t,
        "disk_warn = 100\ndisk_crit = 100\ninode_warn = 100\ninode_crit = 100",
        "",
    );
    cycles(&t, &mut a, 1, 5);
    assert_eq!(cycles(&t, &mut a, 6, 200), 0);
    assert!(
        t.read("agent.log")
            .contains("event=sample cpu=10.0 mem=50.0")
    );
    assert!(t.read("agent.log").contains(" cgroup_psi_memory=0.50"));
    assert!(!t.read("agent.log").contains("event=top"));
    assert!(
        !t.read("agent.log").contains("event=error"),
        "{}",
        t.read("agent.log")
    );
    // The status file was written by the cycles counted.
    assert!(
        t.read("agent.status")
            .contains("\nline SYSTEM-AGENT OK - all checks ok | cpu=10.0%;"),
        "{}",
        t.read("agent.status")
    );
    // The audit looked at the history every cycle (its offset is saved).
    assert!(
        t.read("state/audit").contains(" 3 root\n"),
        "{}",
        t.read("state/audit")
    );
}

#[test]
fn a_cycle_with_a_scan_allocates_nothing_either() {
    let t = TempDir::new("alloc-scan");
    let mut a = agent(
        &t,
        "cpu_warn = 0\ndisk_warn = 100\ndisk_crit = 100\ninode_warn = 100\ninode_crit = 100",
        "",
    );
    cycles(&t, &mut a, 1, 5);
    assert_eq!(cycles(&t, &mut a, 6, 200), 0);
    assert!(
        t.read("agent.log")
            .contains("event=top by=cpu rank=1 pid=100 uid=0 user=root name=worker")
    );
}

/// Busy and idle cycles in turn under `for_cycles = 3`: the hysteresis counters
/// change every cycle and never reach a transition, so the service rewrites its
/// state file each cycle. That write allocated a path each time (a 10,000-cycle
/// soak at 5,000 processes saw the heap creep by 28 KiB).
#[test]
fn rewriting_the_state_file_each_cycle_allocates_nothing() {
    let t = TempDir::new("alloc-state");
    let mut a = agent(
        &t,
        "cpu_warn = 50\ncpu_crit = 100\nfor_cycles = 3\ndisk_warn = 100\ndisk_crit = 100\ninode_warn = 100\ninode_crit = 100",
        "",
    );
    let (mut busy, mut idle, mut total) = (0, 0, 0);
    let mut states = std::collections::HashSet::new();
    for i in 1..=205 {
        let (b, d) = if i % 2 == 0 { (90, 10) } else { (10, 90) };
        busy += b;
        idle += d;
        t.write("proc/stat", proc_stat(busy, idle));
        let n = allocations(|| a.cycle(None));
        if i > 5 {
            total += n;
            states.insert(t.read("state/state"));
        }
    }
    assert_eq!(total, 0);
    // Rewritten every cycle: each one saved a different state (its time and counters).
    assert_eq!(states.len(), 200);
    assert!(!t.read("agent.log").contains("event=alert"));
}

#[test]
fn the_systemd_watchdog_ping_of_each_cycle_allocates_nothing() {
    use std::os::unix::net::UnixDatagram;
    use system_agent::log::{Level, Logger, Target};
    use system_agent::notify::Notify;
    let t = TempDir::new("alloc-notify");
    let sock = UnixDatagram::bind(t.join("notify")).unwrap();
    let mut log = Logger::new(&Target {
        level: Level::Info,
        file: Some(t.join("agent.log")),
        mode: 0o640,
        syslog: None,
        format: system_agent::config::LogFormat::Logfmt,
    });
    let mut n = Notify::new(
        Some(t.join("notify").as_os_str()),
        Some(1_000_000),
        &mut log,
    );
    n.cycled(&mut log);
    sock.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    let mut got = Vec::new();
    for _ in 0..200 {
        let count = allocations(|| {
            n.cycled(&mut log);
            n.keep_alive(&mut log, u64::MAX);
        });
        assert_eq!(count, 0);
        while let Ok(len) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..len]).into_owned());
        }
    }
    // The first cycle's READY=1 and ping, then two pings per round.
    assert_eq!(got.len(), 2 + 200 * 2);
    assert_eq!(got[0], "READY=1");
    assert!(got[1..].iter().all(|m| m == "WATCHDOG=1"), "{got:?}");
    assert_eq!(t.read("agent.log"), "");
}

#[test]
fn logging_json_lines_allocates_nothing_either() {
    let t = TempDir::new("alloc-json");
    let mut a = agent(
        &t,
        "cpu_warn = 0\ndisk_warn = 100\ndisk_crit = 100\ninode_warn = 100\ninode_crit = 100",
        "log_format = json",
    );
    cycles(&t, &mut a, 1, 5);
    assert_eq!(cycles(&t, &mut a, 6, 200), 0);
    let log = t.read("agent.log");
    assert!(
        log.contains(r#","event":"sample","cpu":10.0,"mem":50.0"#),
        "{log}"
    );
    assert!(
        log.contains(
            r#","event":"top","by":"cpu","rank":1,"pid":100,"uid":0,"user":"root","name":"worker""#
        ),
        "{log}"
    );
}

#[test]
fn a_memory_relief_check_between_cycles_allocates_nothing() {
    use system_agent::features::relief::decide::Limits;
    use system_agent::features::relief::watch::Host;
    let t = TempDir::new("alloc-relief");
    t.write("proc/meminfo", proc_meminfo(50));
    t.write(
        "proc/pressure/memory",
        "some avg10=1.00 avg60=0.50 avg300=0.10 total=12345
         full avg10=0.50 avg60=0.20 avg300=0.10 total=2345
",
    );
    let cfg = Config::default().relief;
    let mut host = Host::new(&t.join("proc"));
    let mut check = || {
        let m = host.meminfo().expect("meminfo");
        let l = Limits::of(&cfg, &m);
        let psi = host.psi_full();
        (l.short(&m, psi, false), l.next_check_ms(&m, 100, true))
    };
    let warm = check();
    let mut seen = Vec::with_capacity(1000);
    let count = allocations(|| {
        for _ in 0..1000 {
            seen.push(check());
        }
    });
    assert_eq!(count, 0);
    // Half of 1 GiB available, 5% the limit: not short, checked again in 79 ms.
    assert_eq!(warm, (None, (524_288 - 52_428) / 6000));
    assert!(seen.iter().all(|s| *s == warm));
}
