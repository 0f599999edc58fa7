//! The reaper's step on a bench `Cx`: what it would signal (`effects::DryRun`)
//! against a fixture tree and against this test's own child, and what it does
//! when a pid is reused between the scan and the signal.

use super::*;
use crate::effects::{Action, Real};
use crate::features::Slot;
use crate::features::bench::Bench;
use std::os::unix::process::ExitStatusExt;

/// `user = root` when the tests run as root (a rule touches root's processes only
/// when it names root), nothing otherwise.
fn user_line() -> &'static str {
    if sys::getuid() == 0 {
        "user = root\n"
    } else {
        ""
    }
}

fn sleeper(arg: &str) -> std::process::Child {
    std::process::Command::new("sleep")
        .arg(arg)
        .spawn()
        .expect("spawn sleep")
}

/// A tree where process 300, alice's `victimproc`, is stopped: no procfs, so
/// nothing it names may be signalled.
fn fixture(b: &Bench) {
    let w = |rel: &str, text: &str| {
        let p = b.dir.join(rel);
        std::fs::create_dir_all(p.parent().expect("a parent")).expect("fixture dir");
        std::fs::write(p, text).expect("fixture file");
    };
    w(
        "proc/300/stat",
        "300 (victimproc) T 1 300 300 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 1000000 300 0 0\n",
    );
    w(
        "proc/300/status",
        "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n",
    );
    std::os::unix::fs::symlink("/", b.dir.join("proc/300/root")).expect("root link");
}

#[test]
fn a_fixture_tree_is_only_reported_and_nothing_is_signalled() {
    let dir = std::env::temp_dir().join(format!("sa-bench-reap-tree-{}", std::process::id()));
    let ini = format!(
        "[paths]\nproc = {}\n[reaper]\nenabled = yes\n\
         [reap.v]\nmatch = victimproc\nstate = stopped\naction = kill\n",
        dir.join("proc").display()
    );
    let mut b = Bench::new("reap-tree", &ini);
    fixture(&b);
    // Started 5000 ticks (50 s) after a boot 1000 s ago: 950 s old.
    let now_s = sys::realtime_ns() / 1_000_000_000;
    b.reading.btime = Some(now_s - 1000);
    b.reading.ticks_per_sec = 100;
    let mut r = Slot::new(Reaper::default());
    r.step(&mut b.cx());
    r.step(&mut b.cx());
    assert_eq!(b.effects.take(), []);
    assert_eq!(
        b.events("reap"),
        [
            "level=info event=reap pid=300 name=victimproc user=1000 state=stopped age=15m \
             action=log rule=v reason=\"name victimproc, state stopped\" dry_run=yes \
             log_only=\"[paths] proc is not the agent's own procfs\""
        ]
    );
    let refusals = b.events("error");
    assert_eq!(refusals.len(), 1, "said once: {refusals:?}");
    assert!(
        refusals[0].contains(" what=reaper error=\"not the agent's own procfs: not a procfs"),
        "{refusals:?}"
    );
    // A `--once` run keeps it settled for the next.
    r.save(&mut b.cx(), true);
    let saved = std::fs::read_to_string(b.dir.join("state/reaper")).expect("reaper saved");
    assert!(saved.starts_with("system-agent-reaper 2\n"), "{saved}");
    assert!(saved.ends_with("\nsettled 300 5000\nend\n"), "{saved}");
}

#[test]
fn a_dry_run_on_our_own_procfs_decides_the_signal_and_sends_none() {
    let token = format!("86400.{}", std::process::id());
    let ini = format!(
        "[reaper]\nenabled = yes\n[reap.v]\nmatch = sleep\ncmdline = sleep {token}\n{}",
        user_line()
    );
    let mut b = Bench::new("reap-dry", &ini);
    let mut child = sleeper(&token);
    let pid = child.id() as i32;
    let mut r = Slot::new(Reaper::default());
    r.step(&mut b.cx());
    // Settled: not decided again the next cycle.
    r.step(&mut b.cx());
    let gone = child.try_wait().expect("try_wait");
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(gone, None, "the child was signalled");
    assert_eq!(
        b.effects.take(),
        [Action::Signal {
            pid,
            sig: libc::SIGTERM
        }]
    );
    // The bench knows no users: the owner shows as a uid. The age depends on
    // the boot time, which the bench leaves unknown.
    let uid = sys::getuid();
    assert_eq!(
        b.events("reap")
            .iter()
            .map(|l| any_age(l))
            .collect::<Vec<_>>(),
        [format!(
            "level=warn event=reap pid={pid} name=sleep user={uid} state=sleeping age=* \
             action=term rule=v reason=\"name sleep, cmdline sleep {token}\" dry_run=yes"
        )]
    );
}

/// `line` with its `age=` value as `*`.
fn any_age(line: &str) -> String {
    let words: Vec<&str> = line
        .split(' ')
        .map(|w| if w.starts_with("age=") { "age=*" } else { w })
        .collect();
    words.join(" ")
}

#[test]
fn a_pid_whose_start_time_changed_is_not_signalled_and_says_so() {
    // The decision names this test's own child with a start time one tick off,
    // as when the pid was reused between the scan and the signal.
    let ini = format!(
        "[reaper]\nenabled = yes\n[reap.v]\nmatch = sleep\n{}action = term\n",
        user_line()
    );
    let mut b = Bench::new("reap-reused", &ini);
    let mut child = sleeper("100");
    let pid = child.id() as i32;
    b.scan.scanner.scan(0).expect("scan /proc");
    let procs = b.scan.scanner.procs();
    let i = procs
        .binary_search_by_key(&pid, |p| p.pid)
        .expect("child in the scan");
    let d = Decision {
        pid,
        start: procs[i].start + 1,
        ppid: sys::getpid(),
        uid: 0,
        state: b'S',
        zombie: false,
        age_s: 0,
        rule: 0,
        act: Act::Term,
        reason: "name sleep".into(),
    };
    let own = crate::ownproc::prove(
        b.scan.scanner.dir().expect("scanned"),
        sys::getpid(),
        &mut Vec::new(),
    )
    .expect("this process's /proc is its own");
    let mut real = Real;
    let mut cx = b.cx();
    cx.effects = &mut real;
    Reaper::default().act(&mut cx, &d, 0, Some(&own));
    // A fatal signal sets the exit status when it is sent: had the SIGTERM gone
    // out, the child would show it rather than our SIGKILL.
    child.kill().expect("kill our child");
    let status = child.wait().expect("wait for our child");
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(
        b.events("reap_failed"),
        [format!(
            "level=warn event=reap_failed pid={pid} name=sleep action=term rule=v reason=\"pid reused\""
        )]
    );
}
