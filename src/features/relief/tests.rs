//! Memory relief's step on a bench `Cx`, whose effects only record: what it would
//! signal on this host's /proc when memory is short (this test's own child, by a
//! name `prefer` gives first), once per `min_interval`; `action = log`; memory
//! that is not short; and a directory that is not the agent's own procfs.

use super::*;
use crate::effects::Action as Asked;
use crate::features::Slot;
use crate::features::bench::Bench;
use std::path::Path;
use std::process::{Child, Command};

/// A copy of sleep named `name` in `dir`, started (the name is its comm), and
/// running: relief passes over a process without resident memory, as one is
/// right after its exec.
fn sleeper(dir: &Path, name: &str) -> Child {
    let bin = dir.join(name);
    std::fs::copy("/bin/sleep", &bin).expect("copy sleep");
    let child = Command::new(&bin).arg("100").spawn().expect("spawn");
    let statm = format!("/proc/{}/statm", child.id());
    let resident = || {
        let text = std::fs::read_to_string(&statm).unwrap_or_default();
        text.split(' ').nth(1).and_then(|r| r.parse::<u64>().ok())
    };
    for _ in 0..10_000 {
        if resident().is_some_and(|r| r > 0) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    child
}

/// `[relief]` on, memory short whatever the host has (below 100%), this test's
/// user allowed, `prefer = NAME`, and `more`.
fn ini(name: &str, more: &str) -> String {
    let user = if sys::getuid() == 0 {
        "user = root\n"
    } else {
        ""
    };
    format!(
        "[relief]\nenabled = yes\nmem_available_below = 100%\nprefer = {name}\n\
         min_interval = 1h\n{user}{more}"
    )
}

/// The Reading's memory: 1000 KiB, `avail` of them available, no swap.
fn memory(b: &mut Bench, avail: u64) {
    b.reading.host.mem = Ok(Meminfo {
        total_kb: 1000,
        available_kb: avail,
        swap_total_kb: 0,
        swap_free_kb: 0,
    });
}

fn step(b: &mut Bench, slot: &mut Slot<Relief>) {
    slot.step(&mut b.cx());
}

/// A relief line without the parts that vary by host (user, rss, oom_score, and
/// psi_full, read from this host's /proc/pressure/memory).
fn shape(line: &str) -> String {
    let varies = ["user=", "rss=", "oom_score=", "psi_full="];
    line.split(' ')
        .filter(|kv| !varies.iter().any(|v| kv.starts_with(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Memory short on a bench with `more` in `[relief]` and this test's own sleeper,
/// preferred, among the candidates; `steps` steps. Returns the sleeper's pid and
/// name, what the effects were asked, and the relief lines (`shape`).
fn short(tag: &str, more: &str, steps: usize) -> (i32, String, Vec<Asked>, Vec<String>) {
    let name = format!("{tag}{}", std::process::id());
    let mut b = Bench::new(&format!("relief-{tag}"), &ini(&name, more));
    let mut child = sleeper(&b.dir, &name);
    memory(&mut b, 10);
    let mut slot = Slot::new(Relief::default());
    slot.f.arm(&b.cfg, true);
    for _ in 0..steps {
        step(&mut b, &mut slot);
    }
    let asked = b.effects.take();
    let _ = child.kill();
    let _ = child.wait();
    let lines = b.events("relief").iter().map(|l| shape(l)).collect();
    (child.id() as i32, name, asked, lines)
}

/// The relief line `short` gives for `action`, in a dry run.
fn relief_line(pid: i32, name: &str, action: &str) -> String {
    format!(
        "level=warn event=relief pid={pid} name={name} mem_available=10240 swap_free=0 \
         reason=mem_available action={action} dry_run=yes"
    )
}

#[test]
fn memory_short_chooses_the_preferred_process_once_per_min_interval() {
    let (pid, name, asked, lines) = short("rlf", "", 2);
    let term = Asked::Signal {
        pid,
        sig: libc::SIGTERM,
    };
    assert_eq!(asked, [term]);
    assert_eq!(lines, [relief_line(pid, &name, "term")]);
}

#[test]
fn action_log_only_says_what_it_would_choose() {
    let (pid, name, asked, lines) = short("rlg", "action = log\n", 1);
    assert_eq!(asked, []);
    assert_eq!(lines, [relief_line(pid, &name, "log")]);
}

#[test]
fn memory_that_is_not_short_chooses_nothing_and_sets_the_next_check() {
    let mut b = Bench::new(
        "relief-fine",
        "[relief]\nenabled = yes\nmem_available_below = 50%\n",
    );
    memory(&mut b, 600);
    let mut slot = Slot::new(Relief::default());
    slot.f.arm(&b.cfg, false);
    let before = sys::monotonic_ns();
    step(&mut b, &mut slot);
    assert_eq!(b.effects.take(), []);
    assert!(b.events("relief").is_empty());
    // 100 KiB above the limit: the next check at the soonest allowed.
    let wait = slot.f.next_check - before;
    assert!(wait >= decide::MIN_CHECK_MS * 1_000_000, "{wait}");
    assert!(wait < 100 * 1_000_000, "{wait}");
}

#[test]
fn a_directory_that_is_not_the_agents_procfs_is_only_reported() {
    let b0 = crate::features::bench::temp_dir("relief-fixture");
    let proc = b0.join("proc");
    let files = [
        (
            "400/stat",
            "400 (bloat) S 1 400 400 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5000 100000000 20000 0 0\n",
        ),
        (
            "400/status",
            "Name:\tbloat\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n",
        ),
        ("400/oom_score", "812\n"),
        ("400/oom_score_adj", "0\n"),
        ("400/cmdline", "bloat\0"),
    ];
    for (rel, text) in files {
        let p = proc.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }
    let cfg = format!(
        "[paths]\nproc = {}\n[reaper]\nscope = all\n[relief]\nenabled = yes\n\
         mem_available_below = 100%\n",
        proc.display()
    );
    let mut b = Bench::new("relief-notproc", &cfg);
    memory(&mut b, 10);
    let mut slot = Slot::new(Relief::default());
    slot.f.arm(&b.cfg, true);
    step(&mut b, &mut slot);
    let _ = std::fs::remove_dir_all(&b0);
    assert_eq!(b.effects.take(), []);
    let lines = b.events("relief");
    assert_eq!(lines.len(), 1, "{lines:?}");
    let rss = 20000 * b.reading.page_size;
    assert!(
        lines[0].starts_with(&format!(
            "level=warn event=relief pid=400 name=bloat user=1000 rss={rss} oom_score=812 \
             mem_available=10240 swap_free=0 reason=mem_available action=log dry_run=yes \
             log_only=\"not the agent's own procfs: not a procfs"
        )),
        "{lines:?}"
    );
}
