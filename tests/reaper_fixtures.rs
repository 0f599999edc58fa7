//! The reaper over `/proc` trees that are not the agent's own (a fixture directory,
//! another PID namespace's procfs): it decides and logs, but never signals, since a
//! pid number read there may name any process of the agent's own namespace; and
//! the clocks it keeps in state_dir across boots and a clock set back.
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
fn victim(h: &Host, name: &str) -> Child {
    let exe = h.path(&format!("bin/{name}"));
    std::fs::create_dir_all(h.path("bin")).expect("mkdir bin");
    std::fs::copy("/bin/sleep", &exe).expect("copy sleep");
    // Another test thread's fork can hold the copy's descriptor open for a moment
    // (until its exec closes it), so exec may say ETXTBSY: try again, bounded.
    for _ in 0..100 {
        match Command::new(&exe).arg("1000").stdin(Stdio::null()).spawn() {
            Ok(child) => return child,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => panic!("spawn the victim: {e}"),
        }
    }
    panic!("spawn the victim: text file busy 100 times")
}

/// Ends the victim with SIGKILL and returns the signal that ended it: a fatal
/// signal fixes the exit status when it is sent, so SIGKILL here means the agent
/// sent no SIGTERM before.
fn end(mut child: Child) -> Option<i32> {
    let _ = child.kill();
    child.wait().expect("wait for the victim").signal()
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

const EFFECT: &str = "effect=\"signals nothing, only logs what the rules select\"";
const LOG_ONLY: &str = "log_only=\"[paths] proc is not the agent's own procfs\"";

/// A host with 1 s cycles, and the `[reaper]` sections with `rule` as `[reap.v]`.
fn reaper_host(tag: &str, rule: &str) -> (Host, String) {
    let h = Host::new(tag).interval("1s");
    (h, format!("[reaper]\nenabled = yes\n\n[reap.v]\n{rule}"))
}

#[test]
fn a_fixture_tree_naming_a_real_process_gets_it_logged_not_signalled() {
    // The tree says the test's child is nobody's `victimproc`, with its real start
    // time, so a start-time check read from the same tree passes: only the proof
    // that the tree is the agent's own procfs keeps the child alive.
    let (h, extra) = reaper_host("reap-fixture", "match = victimproc\naction = term\n");
    h.passwd(PASSWD);
    let child = victim(&h, "victimproc");
    let pid = child.id();
    let real = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("child's stat");
    // The fields after the name and the state, which may still be R just after
    // the spawn: the tree says S.
    let after_state = real
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().split_once(' '))
        .expect("stat has a name and a state")
        .1;
    h.write(
        &format!("proc/{pid}/stat"),
        format!("{pid} (victimproc) S {after_state}"),
    );
    h.write(
        &format!("proc/{pid}/status"),
        "Name:\tvictimproc\nUid:\t65534\t65534\t65534\t65534\nGid:\t65534\t65534\t65534\t65534\nCapEff:\t0000000000000000\n",
    );
    std::os::unix::fs::symlink("/", h.path(&format!("proc/{pid}/root"))).expect("root link");
    let cfg = h.config(Ini::extra(&extra));
    h.once(&cfg, &[]);
    let log = h.log();
    assert_eq!(
        end(child),
        Some(libc::SIGKILL),
        "the agent signalled it\n{log}"
    );
    assert_eq!(
        reaper_lines(&log),
        vec![
            format!(
                "level=warn event=error what=reaper error=\"not the agent's own procfs: not a procfs (filesystem type 0x{})\" path={} {EFFECT}",
                fs_type(h.t.path()),
                h.p("proc"),
            ),
            format!(
                "{} {LOG_ONLY}",
                reap(
                    pid as i32,
                    "victimproc",
                    "nobody",
                    "sleeping",
                    "log",
                    "v",
                    "name victimproc"
                )
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
    let rule = "match = victimns\nuser = root\naction = term\n";
    let (h, extra) = reaper_host("reap-foreign-ns", rule);
    h.passwd(PASSWD);
    let child = victim(&h, "victimns");
    let pid = child.id();
    let cfg = h.config(Ini {
        agent: "top = 0",
        real_proc: true,
        extra: &extra,
        ..Ini::default()
    });
    let mut cmd = Command::new("unshare");
    cmd.args(["--pid", "--fork", "--kill-child", bin(), "-c"])
        .arg(&cfg)
        .arg("--once");
    let run = run_command(cmd);
    let log = h.log();
    assert_eq!(
        end(child),
        Some(libc::SIGKILL),
        "the agent signalled it\n{log}"
    );
    assert!(run.status.code().is_some(), "{}", run.status);
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
    let reason = "name victimns";
    assert_eq!(
        lines[1],
        format!(
            "{} {LOG_ONLY}",
            reap(
                pid as i32, "victimns", "root", "sleeping", "log", "v", reason
            )
        ),
        "{log}"
    );
}

const BOOT: &str = "2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59";
const OTHER_BOOT: &str = "9f0e4d2c-1b3a-4c5d-8e7f-6a5b4c3d2e1f";
const HOUR_NS: u64 = 3600 * 1_000_000_000;

/// A fixture tree with one process, 300 `victimproc` of alice, stopped (start time
/// 5000), and a rule that logs it once it has been seen stopped for an hour. With
/// `boot_id` false the tree has no `sys/kernel/random/boot_id`.
fn stopped_fixture(tag: &str, boot_id: bool) -> Host {
    let rule = "match = victimproc\nstate = stopped\nin_state_for = 1h\naction = log\n";
    let (h, extra) = reaper_host(tag, rule);
    h.write(
        "proc/300/stat",
        "300 (victimproc) T 1 300 300 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 1000000 300 0 0\n",
    );
    h.write(
        "proc/300/status",
        "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n",
    );
    std::os::unix::fs::symlink("/", h.path("proc/300/root")).expect("root link");
    if boot_id {
        h.write("proc/sys/kernel/random/boot_id", format!("{BOOT}\n"));
    }
    h.config(Ini::extra(&extra));
    h
}

/// One `--once` run with `saved` as the reaper's state file; returns its reap
/// lines, the state file it left, and the run (its wall clock before and after).
fn once_with_state(h: &Host, saved: &str) -> (Vec<String>, String, Run) {
    let _ = std::fs::remove_file(h.path("agent.log"));
    h.write("state/reaper", saved);
    let run = h.once(&h.path("agent.ini"), &[]);
    (reap_lines(&h.log()), h.read("state/reaper"), run)
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

/// A run with `saved` keeps the clock `since` (of boot `boot`): process 300 is
/// logged, and settled in the file.
fn assert_clock_kept(h: &Host, saved: &str, boot: &str, since: u64) {
    let (lines, file, _) = once_with_state(h, saved);
    assert_eq!(lines, vec![LOGGED_300.to_string()]);
    assert_eq!(since_of_300(&file, boot, true), since);
}

/// A run with `saved` starts the clock of process 300 anew, now (and in this
/// boot, `boot`): it is not reported yet.
fn assert_clock_restarted(h: &Host, saved: &str, boot: &str) {
    let (lines, file, run) = once_with_state(h, saved);
    assert_eq!(lines, Vec::<String>::new());
    let since = since_of_300(&file, boot, false);
    let (before, after) = (run.start_ns, run.end_ns);
    assert!(
        (before..=after).contains(&since),
        "{since} {before} {after}"
    );
}

/// A reaper state file of `boot` with the clock of process 300 at `since`, and
/// `more` records.
fn reaper_state(boot: &str, since: u64, more: &str) -> String {
    format!("system-agent-reaper 2\nboot {boot}\nstate 300 5000 T {since}\n{more}end\n")
}

#[test]
fn reaper_clocks_of_this_boot_are_kept_and_of_another_dropped() {
    let h = stopped_fixture("reap-boot", true);
    // Seen stopped two hours ago in this boot: logged now.
    let two_hours_ago = now_ns() - 2 * HOUR_NS;
    assert_clock_kept(
        &h,
        &reaper_state(BOOT, two_hours_ago, ""),
        BOOT,
        two_hours_ago,
    );
    // The same clock and the process settled, but in another boot: pid 300 with
    // start time 5000 is not the same process, so its clock starts now and it is
    // not reported yet.
    let saved = reaper_state(OTHER_BOOT, two_hours_ago, "settled 300 5000\n");
    assert_clock_restarted(&h, &saved, BOOT);
}

#[test]
fn without_a_boot_id_the_boot_time_names_the_boot() {
    let h = stopped_fixture("reap-btime", false);
    let two_hours_ago = now_ns() - 2 * HOUR_NS;
    // `btime 1700000000` in the fixture's stat.
    let boot = "btime-1700000000";
    assert_clock_kept(
        &h,
        &reaper_state(boot, two_hours_ago, ""),
        boot,
        two_hours_ago,
    );
    let saved = reaper_state("btime-1699999999", two_hours_ago, "");
    assert_clock_restarted(&h, &saved, boot);
}

#[test]
fn a_reaper_clock_from_the_future_restarts_now_and_is_corrected() {
    // Stamped a year ahead (the wall clock was set back since): the clock
    // restarts now, in the file too, rather than reading zero for a year.
    let h = stopped_fixture("reap-future", true);
    let next_year = now_ns() + 365 * 24 * HOUR_NS;
    assert_clock_restarted(&h, &reaper_state(BOOT, next_year, ""), BOOT);
}
