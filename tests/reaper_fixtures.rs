//! The reaper over `/proc` trees that are not the agent's own (a fixture directory,
//! another PID namespace's procfs): it decides and logs, but never signals, since a
//! pid number read there may name any process of the agent's own namespace.
//!
//! The only processes involved are this test's own children (a copy of sleep named
//! `victimproc`), so even a reaper that did signal could hit nothing else.

mod common;

use common::*;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, Stdio};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
    nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";

/// A copy of sleep named `name`, started as this test's child. Each test has its
/// own name: a reaper reading this machine's /proc sees every test's processes.
fn victim(t: &TempDir, name: &str) -> Child {
    let exe = t.join(&format!("bin/{name}"));
    std::fs::create_dir_all(t.join("bin")).expect("mkdir bin");
    std::fs::copy("/bin/sleep", &exe).expect("copy sleep");
    Command::new(&exe)
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()
        .expect("spawn the victim")
}

/// Ends the victim with SIGKILL and returns the signal that ended it: a fatal
/// signal fixes the exit status when it is sent, so SIGKILL here means the agent
/// sent no SIGTERM before.
fn end(mut child: Child) -> Option<i32> {
    let _ = child.kill();
    child.wait().expect("wait for the victim").signal()
}

/// The log of a run `out` that ended on its own and left `child` alone (ended
/// here with SIGKILL; see `end`).
fn unsignalled(t: &TempDir, child: Child, out: &std::process::Output) -> String {
    let log = t.read("agent.log");
    assert_eq!(
        end(child),
        Some(libc::SIGKILL),
        "the agent signalled it\n{log}"
    );
    assert!(out.status.code().is_some(), "{out:?}");
    log
}

/// The host file system type of `path` in hex, as `stat -f` prints it.
fn fs_type(path: &std::path::Path) -> String {
    let out = Command::new("stat")
        .args(["-f", "-c", "%t"])
        .arg(path)
        .output()
        .expect("run stat -f");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The reaper's lines in the log (its `reap`, `reap_failed` and `what=reaper`
/// lines), without `ts=` and with `age=*`.
fn reaper_lines(log: &str) -> Vec<String> {
    log_lines(log, |l| {
        l.contains(" event=reap ")
            || l.contains(" event=reap_failed ")
            || l.contains(" what=reaper ")
    })
}

const EFFECT: &str = "effect=\"signals nothing, only logs what the rules select\"";
const LOG_ONLY: &str = "log_only=\"[paths] proc is not the agent's own procfs\"";

#[test]
fn a_fixture_tree_naming_a_real_process_gets_it_logged_not_signalled() {
    // The tree says the test's child is nobody's `victimproc`, with its real start
    // time, so a start-time check read from the same tree passes: only the proof
    // that the tree is the agent's own procfs keeps the child alive.
    let t = TempDir::new("reap-fixture");
    let child = victim(&t, "victimproc");
    let pid = child.id();
    let real = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("child's stat");
    // The fields after the name and the state, which may still be R just after
    // the spawn: the tree says S.
    let after_state = real
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().split_once(' '))
        .expect("stat has a name and a state")
        .1;
    t.write(
        &format!("proc/{pid}/stat"),
        format!("{pid} (victimproc) S {after_state}"),
    );
    t.write(
        &format!("proc/{pid}/status"),
        "Name:\tvictimproc\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000000000\n",
    );
    std::os::unix::fs::symlink("/", t.join(&format!("proc/{pid}/root"))).expect("root link");
    t.write("proc/stat", proc_stat(100, 900));
    t.write("proc/meminfo", proc_meminfo(50));
    t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
    t.write("etc/passwd", PASSWD);
    let ini = fixture_ini(
        &t,
        "1s",
        "",
        "[reaper]\nenabled = yes\n\n[reap.v]\nmatch = victimproc\naction = term\n",
    );
    let out = run(&["-c", ini.to_str().expect("utf-8 path"), "--once"]);
    let log = unsignalled(&t, child, &out);
    assert_eq!(
        reaper_lines(&log),
        vec![
            format!(
                "level=warn event=error what=reaper error=\"not the agent's own procfs: not a procfs (filesystem type 0x{})\" path={} {EFFECT}",
                fs_type(t.path()),
                t.join("proc").display(),
            ),
            format!(
                "level=info event=reap pid={pid} name=victimproc user=nobody state=sleeping age=* action=log rule=v reason=\"name victimproc\" {LOG_ONLY}"
            ),
        ],
        "{log}"
    );
}

#[test]
fn another_pid_namespaces_procfs_gets_logged_not_signalled() {
    // The agent runs as PID 1 of a new PID namespace but reads this machine's
    // /proc: the pids it sees there are not its namespace's.
    if !is_root() {
        eprintln!("skipped: needs root (unshare --pid)");
        return;
    }
    let t = TempDir::new("reap-foreign-ns");
    let child = victim(&t, "victimns");
    let pid = child.id();
    t.write("etc/passwd", PASSWD);
    let text = format!(
        "[agent]\ninterval = 1s\nlog_file = {}\nsyslog = no\nstate_dir = {}\ntop = 0\n\n\
         [paths]\npasswd = {}\n\n[disk]\nmounts =\n\n[audit]\nbash_history = no\n\n\
         [reaper]\nenabled = yes\n\n[reap.v]\nmatch = victimns\nuser = root\naction = term\n",
        t.join("agent.log").display(),
        t.join("state").display(),
        t.join("etc/passwd").display(),
    );
    let ini = t.write("agent.ini", text);
    let out = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child", bin(), "-c"])
        .arg(&ini)
        .arg("--once")
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");
    let log = unsignalled(&t, child, &out);
    let lines = reaper_lines(&log);
    assert_eq!(lines.len(), 2, "{log}");
    let (head, tail) = (
        "level=warn event=error what=reaper error=\"not the agent's own procfs: its self is pid ",
        format!(", the agent is 1: another PID namespace's procfs\" path=/proc {EFFECT}"),
    );
    assert!(
        lines[0].starts_with(head) && lines[0].ends_with(&tail),
        "{log}"
    );
    assert_eq!(
        lines[1],
        format!(
            "level=info event=reap pid={pid} name=victimns user=root state=sleeping age=* action=log rule=v reason=\"name victimns\" {LOG_ONLY}"
        ),
        "{log}"
    );
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

const BOOT: &str = "2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59";
const OTHER_BOOT: &str = "9f0e4d2c-1b3a-4c5d-8e7f-6a5b4c3d2e1f";
const HOUR_NS: u64 = 3600 * 1_000_000_000;

/// A fixture tree with one process, 300 `victimproc` of alice, stopped (start time
/// 5000), and a rule that logs it once it has been seen stopped for an hour. With
/// `boot_id` false the tree has no `sys/kernel/random/boot_id`.
fn stopped_fixture(tag: &str, boot_id: bool) -> TempDir {
    let t = TempDir::new(tag);
    t.write(
        "proc/300/stat",
        "300 (victimproc) T 1 300 300 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 1000000 300 0 0\n",
    );
    t.write(
        "proc/300/status",
        "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n",
    );
    std::os::unix::fs::symlink("/", t.join("proc/300/root")).expect("root link");
    t.write("proc/stat", proc_stat(100, 900));
    t.write("proc/meminfo", proc_meminfo(50));
    t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
    if boot_id {
        t.write("proc/sys/kernel/random/boot_id", format!("{BOOT}\n"));
    }
    t.write(
        "etc/passwd",
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
    );
    fixture_ini(
        &t,
        "1s",
        "",
        "[reaper]\nenabled = yes\n\n\
         [reap.v]\nmatch = victimproc\nstate = stopped\nin_state_for = 1h\naction = log\n",
    );
    t
}

fn wall_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

/// One `--once` run with `saved` as the reaper's state file; returns its reaper
/// lines, the state file it left, and the wall clock just before and after it.
fn once_with_state(t: &TempDir, saved: &str) -> (Vec<String>, String, u64, u64) {
    let _ = std::fs::remove_file(t.join("agent.log"));
    t.write("state/reaper", saved);
    let before = wall_ns();
    let out = run(&["-c", t.join("agent.ini").to_str().expect("utf-8"), "--once"]);
    let after = wall_ns();
    assert!(out.status.code().is_some(), "{out:?}");
    let lines = reaper_lines(&t.read("agent.log"))
        .into_iter()
        .filter(|l| !l.contains(" what=reaper "))
        .collect();
    (lines, t.read("state/reaper"), before, after)
}

/// The `since` of process 300 in a saved reaper file that must otherwise be
/// exactly `boot BOOT`, that one clock, and process 300 settled when `settled`.
fn since_of_300(file: &str, boot: &str, settled: bool) -> u64 {
    let lines: Vec<&str> = file.lines().collect();
    let since = lines
        .get(2)
        .and_then(|l| l.strip_prefix("state 300 5000 T "))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no clock for 300 in\n{file}"));
    let mut want = vec![
        "system-agent-reaper 2".to_string(),
        format!("boot {boot}"),
        format!("state 300 5000 T {since}"),
    ];
    if settled {
        want.push("settled 300 5000".into());
    }
    want.push("end".into());
    assert_eq!(lines, want, "{file}");
    since
}

const LOGGED_300: &str = "level=info event=reap pid=300 name=victimproc user=alice state=stopped age=* action=log rule=v reason=\"name victimproc, state stopped, in state 2h >= 1h\" log_only=\"[paths] proc is not the agent's own procfs\"";

/// A reaper file of boot `boot` in which process 300 (start time 5000) has been
/// stopped since `since`, and `more` records.
fn saved(boot: &str, since: u64, more: &str) -> String {
    format!("system-agent-reaper 2\nboot {boot}\nstate 300 5000 T {since}\n{more}end\n")
}

/// A run with `saved` reports 300 and keeps its clock at `since`, in boot `boot`.
fn keeps_the_clock(t: &TempDir, saved: &str, boot: &str, since: u64) {
    let (lines, file, _, _) = once_with_state(t, saved);
    assert_eq!(lines, vec![LOGGED_300.to_string()]);
    assert_eq!(since_of_300(&file, boot, true), since);
}

/// A run with `saved` reports nothing and starts 300's clock afresh during the
/// run, in boot `boot`.
fn restarts_the_clock(t: &TempDir, saved: &str, boot: &str) {
    let (lines, file, before, after) = once_with_state(t, saved);
    assert_eq!(lines, Vec::<String>::new());
    let since = since_of_300(&file, boot, false);
    assert!(
        (before..=after).contains(&since),
        "{since} {before} {after}"
    );
}

#[test]
fn reaper_clocks_of_this_boot_are_kept_and_of_another_dropped() {
    let t = stopped_fixture("reap-boot", true);
    // Seen stopped two hours ago in this boot: logged now.
    let two_hours_ago = wall_ns() - 2 * HOUR_NS;
    keeps_the_clock(&t, &saved(BOOT, two_hours_ago, ""), BOOT, two_hours_ago);
    // The same clock and the process settled, but in another boot: pid 300 with
    // start time 5000 is not the same process, so its clock starts now and it is
    // not reported yet.
    let other = saved(OTHER_BOOT, two_hours_ago, "settled 300 5000\n");
    restarts_the_clock(&t, &other, BOOT);
}

#[test]
fn without_a_boot_id_the_boot_time_names_the_boot() {
    let t = stopped_fixture("reap-btime", false);
    let two_hours_ago = wall_ns() - 2 * HOUR_NS;
    // `btime 1700000000` in the fixture's stat.
    let boot = "btime-1700000000";
    keeps_the_clock(&t, &saved(boot, two_hours_ago, ""), boot, two_hours_ago);
    let other = saved("btime-1699999999", two_hours_ago, "");
    restarts_the_clock(&t, &other, boot);
}

#[test]
fn a_reaper_clock_from_the_future_restarts_now_and_is_corrected() {
    // Stamped a year ahead (the wall clock was set back since): the clock
    // restarts now, in the file too, rather than reading zero for a year.
    let t = stopped_fixture("reap-future", true);
    let next_year = wall_ns() + 365 * 24 * HOUR_NS;
    restarts_the_clock(&t, &saved(BOOT, next_year, ""), BOOT);
}
