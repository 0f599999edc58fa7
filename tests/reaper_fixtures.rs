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
    log.lines()
        .filter(|l| {
            l.contains(" event=reap ")
                || l.contains(" event=reap_failed ")
                || l.contains(" what=reaper ")
        })
        .map(|l| {
            let rest = l.split_once(' ').map_or("", |(_, r)| r);
            rest.split(' ')
                .map(|w| if w.starts_with("age=") { "age=*" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
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
    let log = t.read("agent.log");
    assert_eq!(
        end(child),
        Some(libc::SIGKILL),
        "the agent signalled it\n{log}"
    );
    assert!(out.status.code().is_some(), "{out:?}");
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
    let log = t.read("agent.log");
    assert_eq!(
        end(child),
        Some(libc::SIGKILL),
        "the agent signalled it\n{log}"
    );
    assert!(out.status.code().is_some(), "{out:?}");
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
