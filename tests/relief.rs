//! Memory relief against real memory and real processes, and what it adds to the
//! status line and the metrics file.
//!
//! The hogs are scripts/bench.d/hog.py (the bench runs the same one): a process
//! that allocates and touches memory, then waits. The scenarios run in a private
//! PID namespace (tests/common/reaper.rs: the script is PID 1, the agent sees and
//! can signal only what the script starts); their memory limit is set "just under
//! this machine's current MemAvailable", so a hog of a few hundred MB crosses it
//! (capped at 1.5 GiB, never near exhausting the machine). The hog is started
//! small first and waits for a go, so whatever else moves this machine's memory
//! meanwhile, it is among the candidates from the start. Nothing asserts how
//! long a step took: "between cycles" is counted in cycles (`interval = 10s`: the
//! relief line comes after the first cycle's sample line and before a second).
//!
//! The scenarios need root (unshare, setpriv); the PSI one also a memory cgroup
//! (v1, for the limit) and the cgroup v2 hierarchy (for its memory.pressure), and
//! is skipped with a message where the machine does not allow them.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const HOG: &str = include_str!("../scripts/bench.d/hog.py");

/// How the scenarios start hogs; after PRELUDE (tests/common/reaper.rs).
const HOGS: &str = r#"
mkdir -p "$T/run" && chmod 1777 "$T/run"
# fixed NAME UID MIB: a hog holding MIB, ready when this returns (P[NAME] its pid).
declare -A P
fixed() {
    local name=$1 u=$2 mib=$3
    if [ "$u" = 0 ]; then /usr/bin/python3 "$T/hog.py" "$name" "$T/run/$name" fixed "$mib" &
    else as "$u" /usr/bin/python3 "$T/hog.py" "$name" "$T/run/$name" fixed "$mib" & fi
    P[$name]=$!; out "$name" $!
    poll grep_out "$name" ready || problem "$name not ready"
}
grep_out() { [ -e "$T/run/$1" ] && [[ "$(<"$T/run/$1")" == *"$2"* ]]; }
# limit: LIM = this machine's MemAvailable now, less 200 MiB, into agent.ini.
limit() {
    local k v _
    while read -r k v _; do [ "$k" = MemAvailable: ] && LIM=$((v - 204800)); done </proc/meminfo
    out limit_kib "$LIM"
    sed -i "s/@LIMIT@/${LIM}K/" "$T/agent.ini"
}
# hog UID [ignore-term]: the hog that crosses LIM once $T/run/go exists.
hog() {
    as "$1" /usr/bin/python3 "$T/hog.py" hog "$T/run/hog" below "$LIM" 1536 "$T/run/go" ${2:-} &
    H=$!; out hog $H
    poll grep_out hog waiting || problem "hog not started"
}
"#;

/// A scenario with the hog, `agent.ini` for this machine's /proc with a 10 s
/// cycle, `[relief]` on (`relief` are its lines besides `enabled` and the
/// limit), `[reaper] protect = keeper`.
/// One real-memory scenario at a time: each sets its limit just under this
/// machine's MemAvailable, which another's hog would push below it.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn scenario(tag: &str, relief: &str) -> Option<Scenario> {
    let s = Scenario::new(&format!("relief-{tag}"), &[])?;
    s.h.write("hog.py", HOG);
    let extra = format!(
        "[reaper]\nprotect = keeper\n\n[relief]\nenabled = yes\n\
         mem_available_below = @LIMIT@\n{relief}\n"
    );
    s.h.config(Ini {
        agent: "interval = 10s\ntop = 0",
        thresholds: "cpu_warn = 100\ncpu_crit = 100\nmem_warn = 100\nmem_crit = 100",
        real_proc: true,
        extra: &extra,
        ..Ini::default()
    });
    Some(s)
}

/// Runs `body` after the scenario helpers and `HOGS` in the scenario `tag` (see
/// `scenario`); `None` when skipped. What a hog does is judged by MemAvailable
/// alone: the PSI trigger is there, but only a full stall of the whole 2 s
/// window would fire it (this machine's own stalls, other tests' or builds',
/// must not choose the hog before it crossed).
fn with_hogs(tag: &str, relief: &str, body: &str) -> Option<Outcome> {
    let s = scenario(tag, &format!("psi_memory_full_above = 100\n{relief}"))?;
    Some(s.run(&format!("{HOGS}\n{body}")))
}

/// The lines of `event` without `ts=`, and without the figures that depend on
/// this machine (rss, oom_score, the memory and PSI figures, how long it took).
fn lines(log: &str, event: &str) -> Vec<String> {
    let varies = [
        "rss=",
        "oom_score=",
        "mem_available=",
        "swap_free=",
        "psi_full=",
        "after=",
    ];
    log.lines()
        .filter(|l| l.contains(&format!(" event={event} ")))
        .map(|l| {
            let rest = l.split_once(' ').map_or("", |(_, r)| r);
            rest.split(' ')
                .filter(|kv| !varies.iter().any(|v| kv.starts_with(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Asserts the `event` lines of the scenario's log (see `lines`) are `want`.
fn expect_lines(o: &Outcome, event: &str, want: &[String]) {
    assert_eq!(lines(&o.log, event), want, "{}", o.context);
}

/// The relief line of the hog `pid` (bob's) sent `action` for MemAvailable.
fn hog_line(pid: i32, action: &str) -> String {
    format!(
        "level=warn event=relief pid={pid} name=hog user=bob reason=mem_available action={action}"
    )
}

/// The relief_done line of the hog `pid`, which exited after `signal`.
fn done_line(pid: i32, signal: &str) -> String {
    format!("level=info event=relief_done pid={pid} name=hog signal={signal} exited=yes")
}

/// How many `event=sample` lines come before the first line with `needle`.
fn samples_before(log: &str, needle: &str) -> usize {
    log.lines()
        .take_while(|l| !l.contains(needle))
        .filter(|l| l.contains(" event=sample "))
        .count()
}

/// A field of the first line with `needle`.
fn field(log: &str, needle: &str, key: &str) -> String {
    let line = log.lines().find(|l| l.contains(needle)).unwrap_or("");
    let want = format!("{key}=");
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(&want))
        .unwrap_or("")
        .to_string()
}

// 1. The status line and the metrics file.

#[test]
fn relief_adds_memory_available_and_psi_to_the_status_line_and_metrics_file() {
    let h = Host::new("relief-report");
    h.write(
        "proc/pressure/memory",
        "some avg10=3.00 avg60=1.00 avg300=0.50 total=1234\n\
         full avg10=1.25 avg60=0.50 avg300=0.10 total=567\n",
    );
    std::fs::create_dir_all(h.path("textfile")).unwrap();
    let agent = format!("metrics_file = {}", h.p("textfile/m.prom"));
    let extra = "[relief]\nenabled = yes\nmem_available_below = 10%\n";
    let cfg = h.config(Ini {
        agent: &agent,
        extra,
        ..Ini::default()
    });
    let run = h.once_seeded(&cfg, &[]);
    // 50% of 1 GiB available; its limit 10% of it; full stall 1.25% against 10%.
    assert_eq!(
        run.out,
        "SYSTEM-AGENT OK - all checks ok | cpu=10.0%;80;90 mem=50.0%;85;95 load1=0.52 \
         mem_available=536870912B;;107373568: psi_memory_full=1.25%;;10\n",
        "{}",
        run.err
    );
    let text = h.read("textfile/m.prom");
    assert!(
        text.contains(
            "# HELP system_agent_memory_available_bytes MemAvailable: memory available for new \
             work without swapping.\n# TYPE system_agent_memory_available_bytes gauge\n\
             system_agent_memory_available_bytes 536870912\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "system_agent_pressure_avg10_ratio{resource=\"memory\",kind=\"full\"} 0.0125\n"
        ),
        "{text}"
    );
    // Memory is not short: nothing chosen.
    assert_eq!(h.count(" event=relief"), 0, "{}", h.log());
}

#[test]
fn a_once_run_on_a_directory_that_is_not_the_agents_procfs_only_reports() {
    let h = Host::new("relief-fixture");
    h.mem(99);
    bloat(&h);
    let extra = "[reaper]\nscope = all\n\n[relief]\nenabled = yes\n";
    let cfg = h.config(Ini::extra(extra));
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(run.code, 2, "{}{}", run.out, run.err);
    let rss = 200_000 * page_size();
    let log = h.log();
    assert_eq!(
        lines(&log, "relief"),
        [format!(
            "level=warn event=relief pid=4321 name=bloat user=alice reason=mem_available \
             action=log log_only=\"not the agent's own procfs: not a procfs (filesystem type {})\"",
            fs_type(h.t.path())
        )],
        "{log}"
    );
    assert_eq!(field(&log, " event=relief ", "rss"), rss.to_string());
    assert_eq!(field(&log, " event=relief ", "oom_score"), "901");
    // 1% of 1 GiB available.
    assert_eq!(
        field(&log, " event=relief ", "mem_available"),
        (10486u64 * 1024).to_string()
    );
}

#[test]
fn a_reload_that_turns_relief_on_arms_it_and_says_why_there_is_no_trigger() {
    let h = Host::new("relief-reload");
    bloat(&h);
    let off = h.config(Ini::extra("[reaper]\nscope = all\n"));
    let svc = h.spawn(&off);
    h.wait_cycles(2);
    h.config(Ini::extra(
        "[reaper]\nscope = all\n\n[relief]\nenabled = yes\nmem_available_below = 100%\n",
    ));
    svc.signal(libc::SIGHUP);
    h.must_see(" event=relief ", 1);
    let log = h.log();
    let start = log.lines().next().unwrap_or("");
    assert!(!start.contains(" relief="), "{start}");
    // No PSI in the fixture: said once, then MemAvailable is read instead.
    assert_eq!(
        h.events(" what=relief "),
        [format!(
            "level=warn event=error what=relief error=\"cannot open {}: No such file or \
             directory\" effect=\"MemAvailable read every check_interval at the latest\"",
            h.p("proc/pressure/memory")
        )]
    );
    let relief = h.events(" event=relief ");
    assert!(relief[0].starts_with("level=warn event=relief pid=4321 name=bloat user=alice "));
    assert!(relief[0].contains(" reason=mem_available action=log log_only="));
    drop(svc);
}

/// A fixture process of alice's, `bloat` (4321): 200,000 pages resident,
/// `oom_score` 901.
fn bloat(h: &Host) {
    h.process(
        4321,
        "4321 (bloat) R 1 4321 4321 0 -1 0 0 0 0 0 50 5 0 0 20 0 1 0 5000 900000000 200000 0 0\n"
            .to_string(),
        "Name:\tbloat\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n",
        "bloat\0--big\0",
    );
    h.write("proc/4321/oom_score", "901\n");
    h.write("proc/4321/oom_score_adj", "0\n");
}

fn page_size() -> u64 {
    // SAFETY: sysconf with a valid name only reads a system value.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as u64 }
}

/// `fstatfs` type of `p` as the agent prints it (`0xef53`).
fn fs_type(p: &Path) -> String {
    let c = cstr(p);
    // SAFETY: a zeroed statfs is a valid out-buffer; `c` is a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut st) }, 0);
    format!("{:#x}", st.f_type as u64)
}

// 2. Real memory, real processes: the service between cycles.

#[test]
fn a_hog_below_the_limit_is_stopped_between_cycles_and_the_protected_survive() {
    let _serial = serial();
    let body = r#"
fixed bigavoid 1000 400
fixed keeper 1000 400
fixed rootbig 0 400
limit
hog 1001
agent_bg
poll logged "event=sample" || problem no_first_cycle
touch "$T/run/go"
poll dead "$H"
status hog_status "$H"
poll logged "event=relief_done" || problem no_relief_done
for k in bigavoid keeper rootbig; do record "alive_$k" "${P[$k]}"; done
stop_agent
for k in bigavoid keeper rootbig; do kill -KILL "${P[$k]}"; done
"#;
    let Some(o) = with_hogs("hog", "avoid = bigavoid\ngrace = 5s\n", body) else {
        return;
    };
    let hog = o.pid("hog");
    o.expect("hog_status", "143");
    for k in ["bigavoid", "keeper", "rootbig"] {
        o.expect(&format!("alive_{k}"), "yes");
    }
    o.expect("agent_rc", "0");
    let log = &o.log;
    expect_lines(&o, "relief", &[hog_line(hog, "term")]);
    expect_lines(&o, "relief_done", &[done_line(hog, "term")]);
    // Woken between the first cycle and the second.
    assert_eq!(samples_before(log, " event=relief "), 1, "{}", o.context);
    // It watched with the kernel's trigger where this kernel has PSI.
    let watch = field(log, " event=start ", "relief");
    let want = if Path::new("/proc/pressure/memory").exists() {
        "psi"
    } else {
        "poll"
    };
    assert_eq!(watch, want, "{}", o.context);
    // The memory figures were those that made it short.
    let limit: u64 = o.get("limit_kib").parse().unwrap();
    let seen: u64 = field(log, " event=relief ", "mem_available")
        .parse()
        .unwrap();
    assert!(seen < limit * 1024, "{seen} {limit}\n{}", o.context);
}

#[test]
fn without_psi_a_hog_that_ignores_sigterm_is_killed_after_grace() {
    let _serial = serial();
    let body = r#"
# A kernel without PSI, as the agent sees it.
mount -t tmpfs none /proc/pressure
limit
hog 1001 ignore-term
agent_bg
poll logged "event=sample" || problem no_first_cycle
touch "$T/run/go"
poll logged "action=kill" || problem no_kill
poll dead "$H"
status hog_status "$H"
poll logged "event=relief_done" || problem no_relief_done
stop_agent
"#;
    let Some(o) = with_hogs("grace", "grace = 1s\n", body) else {
        return;
    };
    let hog = o.pid("hog");
    o.expect("hog_status", "137");
    let log = &o.log;
    let kill = format!(
        "level=warn event=relief pid={hog} name=hog reason=\"still running 1s after SIGTERM\" \
         action=kill"
    );
    expect_lines(&o, "relief", &[hog_line(hog, "term"), kill]);
    expect_lines(&o, "relief_done", &[done_line(hog, "kill")]);
    assert_eq!(samples_before(log, " event=relief "), 1, "{}", o.context);
    assert_eq!(field(log, " event=start ", "relief"), "poll");
    assert!(
        log.contains(
            " relief=poll relief_no_trigger=\"cannot open /proc/pressure/memory: No such file or directory\" "
        ),
        "{}",
        o.context
    );
}

#[test]
fn a_once_run_stops_the_hog_and_sees_it_exit() {
    let _serial = serial();
    let body = r#"
limit
hog 1001
touch "$T/run/go"
poll grep_out hog crossed || problem not_crossed
once; out rc $?
poll dead "$H"
status hog_status "$H"
"#;
    let Some(o) = with_hogs("once", "", body) else {
        return;
    };
    o.expect_nagios("rc");
    o.expect("hog_status", "143");
    let hog = o.pid("hog");
    expect_lines(&o, "relief", &[hog_line(hog, "term")]);
    // The run waited for the exit.
    expect_lines(&o, "relief_done", &[done_line(hog, "term")]);
}

// 3. Real memory stalls: the PSI trigger.

/// A memory cgroup (v1, limited to 100 MiB) and a cgroup v2 group of the same
/// name, removed on drop (once the PID namespace, and every process in them, is
/// gone).
struct Groups {
    v1: PathBuf,
    v2: PathBuf,
}

impl Groups {
    fn new(name: &str) -> Option<Groups> {
        let v1 = Path::new("/sys/fs/cgroup/memory").join(name);
        let v2 = Path::new("/sys/fs/cgroup/unified").join(name);
        let made = std::fs::create_dir(&v1)
            .and_then(|()| std::fs::write(v1.join("memory.limit_in_bytes"), "104857600"))
            .and_then(|()| std::fs::create_dir(&v2));
        let g = Groups { v1, v2 };
        match made {
            Ok(()) if g.v2.join("memory.pressure").exists() => Some(g),
            Ok(()) => None,
            Err(e) => {
                eprintln!("relief psi test: skipped, no memory cgroup here ({e})");
                None
            }
        }
    }
}

impl Drop for Groups {
    fn drop(&mut self) {
        for g in [&self.v2, &self.v1] {
            if g.exists() && !wait_for(LIMIT, || std::fs::remove_dir(g).is_ok()) {
                eprintln!("could not remove {}", g.display());
            }
        }
    }
}

/// Writes a 600 MiB file, then reads it again and again: inside a group limited
/// to 100 MiB, its page cache is reclaimed as fast as it is made, and the reads
/// stall on memory (what PSI counts as memory stall).
const STRESS: &str = r#"import ctypes, os, sys
ctypes.CDLL(None).prctl(15, b"stress", 0, 0, 0)
path = sys.argv[1]
block = b"\x01" * (1 << 20)
with open(path, "wb") as f:
    for _ in range(600):
        f.write(block)
for _ in range(50):
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass
"#;

#[test]
fn a_psi_trigger_wakes_relief_for_real_memory_stalls() {
    let _serial = serial();
    let Some(s) = scenario("psi", "psi_memory_full_above = 1\n") else {
        return;
    };
    let name = format!("sa-relief-{}", std::process::id());
    let Some(g) = Groups::new(&name) else {
        return;
    };
    s.h.write("stress.py", STRESS);
    // MemAvailable is never short here (1% of the machine), only the stalls count.
    let ini = s.h.read("agent.ini").replace("@LIMIT@", "1%");
    s.h.write("agent.ini", ini);
    let o = s.run(&format!(
        r#"mkdir -p "$T/run" && chmod 1777 "$T/run"
# This scenario's /proc/pressure/memory is the v2 group's: what its tasks stall.
mount --bind "{v2}/memory.pressure" /proc/pressure/memory
agent_bg
poll logged "event=sample" || problem no_first_cycle
sh -c 'echo $$ >"{v1}/cgroup.procs" && echo $$ >"{v2}/cgroup.procs" &&
       exec setpriv --reuid=1001 --regid=1001 --clear-groups /usr/bin/python3 "$0" "$1"' \
    "$T/stress.py" "$T/run/big" &
S=$!; out stress $S
poll dead $S
status stress_status $S
stop_agent
rm -f "$T/run/big"
"#,
        v1 = g.v1.display(),
        v2 = g.v2.display(),
    ));
    drop(g);
    let stress = o.pid("stress");
    o.expect("stress_status", "143");
    let log = &o.log;
    assert_eq!(
        field(log, " event=start ", "relief"),
        "psi",
        "{}",
        o.context
    );
    let line = format!(
        "level=warn event=relief pid={stress} name=stress user=bob reason=psi_trigger action=term"
    );
    expect_lines(&o, "relief", &[line]);
    // The trigger woke it between cycles: before the second sample line.
    assert_eq!(samples_before(log, " event=relief "), 1, "{}", o.context);
}
