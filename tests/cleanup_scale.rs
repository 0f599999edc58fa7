//! Disk cleanup at scale, through the built binary: 200,000 files in one
//! directory in bounded memory, and a 10,000-deep chain of directories. The work
//! is bounded by what the agent reports (files kept, removed, the depth cap), not
//! by how long it took. Everything happens inside each test's own temp dir; the
//! wide directory is on a tmpfs in a private mount namespace. The memory test makes
//! this test process a child subreaper (see `once_rss`).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Runs the agent inside `ns` and returns its peak RSS in KiB, from the rusage
/// `wait4` gives for it. The agent must not be this test process's own child: a
/// child started with posix_spawn (or fork) is charged at exec with the peak RSS of
/// the image it replaces, here the whole test harness. So a shell forks it (a copy
/// of a tiny shell) and exits, and this process, a child subreaper, reaps the
/// orphan itself.
fn once_rss(e: &Host, ns: &MountNs, cfg: &Path, extra: &[&str]) -> u64 {
    // SAFETY: prctl with integer arguments; only changes who reaps our orphans.
    check(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        "PR_SET_CHILD_SUBREAPER",
    );
    e.tick();
    let pid = ns.shell.id().to_string();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$@" </dev/null >/dev/null 2>&1 & echo $!"#)
        .args(["nsenter", "-t", &pid, "-m", "--", bin(), "-c"])
        .arg(cfg)
        .arg("--once")
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let agent: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the agent's pid");
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `agent` is our child now (we are its subreaper); WNOHANG never blocks.
    let reaped = || unsafe { libc::wait4(agent, &mut status, libc::WNOHANG, &mut ru) } == agent;
    if !wait_for(LIMIT, reaped) {
        // SAFETY: kill(2) and a blocking wait4 on our own child, which overran.
        unsafe {
            libc::kill(agent, libc::SIGKILL);
            libc::wait4(agent, &mut status, 0, &mut ru);
        }
        panic!("system-agent still ran after {LIMIT:?}");
    }
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 3,
        "system-agent crashed: status {status:#x}"
    );
    ru.ru_maxrss as u64
}

/// Checks the candidates a `disk_high` dry run over `dir` logged (`lines`) and
/// its `cleanup_done` line (`told`). When the walk saw every file within the
/// cycle's budget, they are exactly the 4096 oldest, oldest first. When the time
/// budget ran out first (a loaded machine), the agent says so, and what it kept
/// is still capped at 4096 and oldest first.
fn check_candidates(dir: &Path, lines: &[String], told: &[String]) {
    let complete = done("t", 4096, 4096, 0) + " dry_run=yes";
    if told == [complete.clone()] {
        assert_eq!(lines.len(), 4096, "the candidates are capped");
        for (i, l) in lines.iter().enumerate() {
            let path = format!("path={}/{i:06} ", dir.display());
            assert!(l.contains(&path), "#{i} is not the next oldest: {l}");
        }
        return;
    }
    let (n, bytes) = (
        lines.len(),
        lines.iter().filter(|l| l.contains(" bytes=1 ")).count(),
    );
    let cut = format!(
        "level=info event=cleanup_done rule=t files={n} bytes={bytes} errors=0 budget_spent=time dry_run=yes"
    );
    assert_eq!(told, [cut], "neither {complete} nor cut short by time");
    assert!(n <= 4096, "the candidates are capped: {n}");
    // Names are in order of creation, and so of age.
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l.split(" path=").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert!(
        names.windows(2).all(|w| w[0] < w[1]),
        "not oldest first: {names:?}"
    );
}

#[test]
fn two_hundred_thousand_files_in_bounded_memory() {
    const FILES: usize = 200_000;
    const LIMIT_KIB: u64 = 16 * 1024;
    let e = cleanup_host("wide");
    // On a tmpfs of the test's own: creating 200,000 files there takes a second.
    std::fs::create_dir_all(e.path("mnt")).unwrap();
    let ns = MountNs::new(&format!(
        "mount -t tmpfs -o size=64m,nr_inodes=300k tmpfs {mnt}\nmkdir {mnt}/wide",
        mnt = e.p("mnt")
    ));
    let dir = e.path("mnt/wide");
    let dirfd = open_dir(&ns.inside(&dir));
    let now = now_s();
    // The oldest 5,000 have distinct ages and one byte; the rest are empty, just
    // created (and old for `older_than = 0s`).
    for i in 0..FILES {
        let name = format!("{i:06}");
        if i < 5000 {
            old_file_at(dirfd, name.as_bytes(), now - 100 * DAY + i as i64 * 60);
            continue;
        }
        let n = cname(name.as_bytes());
        // SAFETY: valid descriptor and name; the new fd is closed at once.
        let fd = unsafe {
            libc::openat(
                dirfd,
                n.as_ptr(),
                libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC,
                0o644,
            )
        };
        check(fd, "create");
        unsafe { libc::close(fd) };
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(dirfd) };
    let count = || std::fs::read_dir(ns.inside(&dir)).unwrap().count();
    assert_eq!(count(), FILES);

    // disk_high, always high, dry run: the 4096 oldest, oldest first.
    let cfg = cleanup_config(
        &e,
        "",
        "disk_warn = 0",
        &rule(
            "t",
            &e.p("mnt"),
            "when = disk_high\nrecursive = yes\nolder_than = 0s",
        ),
    );
    let rss = once_rss(&e, &ns, &cfg, &["--dry-run"]);
    assert!(rss < LIMIT_KIB, "disk_high peak RSS {rss} KiB");
    check_candidates(&dir, &removed(&e), &done_lines(&e));
    assert_eq!(count(), FILES);

    // always: removes what the cycle's budget allows, in bounded memory.
    clear_log(&e);
    let cfg = rule_t(&e, "mnt", "when = always\nrecursive = yes\nolder_than = 0s");
    let rss = once_rss(&e, &ns, &cfg, &[]);
    assert!(rss < LIMIT_KIB, "always peak RSS {rss} KiB");
    let gone = removed(&e);
    let left = count();
    assert!(!gone.is_empty(), "nothing removed");
    assert_eq!(gone.len() + left, FILES, "each removal logged once");
    let told = done_lines(&e);
    let bytes = gone.iter().filter(|l| l.contains(" bytes=1 ")).count();
    let want = format!(
        "level=info event=cleanup_done rule=t files={} bytes={bytes} errors=0",
        gone.len()
    );
    assert!(
        told == [want.clone()] && left == 0 || told == [want.clone() + " budget_spent=time"],
        "{told:?} vs {want} with {left} left"
    );
}

/// `base/d/d/.../d`, `depth` levels, made relative to each previous level (the full
/// path is far beyond PATH_MAX), with an old file `old.log` at the given levels.
/// Removed level by level from the bottom when dropped.
struct Chain {
    base: PathBuf,
    depth: usize,
}

impl Chain {
    fn new(base: &Path, depth: usize, files_at: &[usize]) -> Chain {
        let mut fd = open_dir(base);
        let d = cname(b"d");
        let mut chain = Chain {
            base: base.to_path_buf(),
            depth: 0,
        };
        for level in 1..=depth {
            // SAFETY: our own descriptors and a valid name.
            unsafe {
                check(libc::mkdirat(fd, d.as_ptr(), 0o755), "mkdirat");
                let next = libc::openat(
                    fd,
                    d.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                );
                check(next, "openat");
                libc::close(fd);
                fd = next;
            }
            chain.depth = level;
            if files_at.contains(&level) {
                old_file_at(fd, b"old.log", old());
            }
        }
        // SAFETY: our own descriptor.
        unsafe { libc::close(fd) };
        chain
    }

    /// Whether the level has its `old.log`.
    fn has_file(&self, level: usize) -> bool {
        let mut fd = open_dir(&self.base);
        let d = cname(b"d");
        for _ in 0..level {
            // SAFETY: our own descriptors and a valid name.
            let next = unsafe {
                libc::openat(
                    fd,
                    d.as_ptr(),
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                )
            };
            unsafe { libc::close(fd) };
            check(next, "openat");
            fd = next;
        }
        let n = cname(b"old.log");
        // SAFETY: valid descriptor and name.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::fstatat(fd, n.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        unsafe { libc::close(fd) };
        rc == 0
    }
}

impl Drop for Chain {
    fn drop(&mut self) {
        // Go down to the bottom holding one descriptor, then back up with "..",
        // removing each level's file and then the level itself.
        let d = cname(b"d");
        let dotdot = cname(b"..");
        let file = cname(b"old.log");
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: our own descriptors and valid names throughout.
        unsafe {
            let mut fd = libc::open(cstr(&self.base).as_ptr(), flags);
            if fd < 0 {
                return;
            }
            let mut level = 0;
            loop {
                let next = libc::openat(fd, d.as_ptr(), flags);
                if next < 0 {
                    break;
                }
                libc::close(fd);
                fd = next;
                level += 1;
            }
            while level > 0 {
                libc::unlinkat(fd, file.as_ptr(), 0);
                let up = libc::openat(fd, dotdot.as_ptr(), flags);
                libc::close(fd);
                if up < 0 {
                    return;
                }
                fd = up;
                libc::unlinkat(fd, d.as_ptr(), libc::AT_REMOVEDIR);
                level -= 1;
            }
            libc::close(fd);
        }
    }
}

#[test]
fn ten_thousand_deep_chain_stops_at_the_depth_cap() {
    let e = cleanup_host("deep");
    let tree = e.path("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let chain = Chain::new(&tree, 10_000, &[3, 64, 65, 10_000]);
    assert_eq!(chain.depth, 10_000);
    old_file(&tree.join("top.log"), "t");

    let cfg = rule_t(&e, "tree", ALWAYS_R);
    e.once(&cfg, &[]);

    let at = |level: usize| -> String {
        let mut p = e.p("tree");
        for _ in 0..level {
            p.push_str("/d");
        }
        p
    };
    assert_eq!(
        sorted(removed(&e)),
        sorted(vec![
            line("t", &e.p("tree/top.log"), "file", 1, "10d"),
            line("t", &format!("{}/old.log", at(3)), "file", 1, "10d"),
            line("t", &format!("{}/old.log", at(64)), "file", 1, "10d"),
        ])
    );
    assert_eq!(
        cleanup_errors(&e),
        vec![format!(
            "level=warn event=error what=cleanup rule=t path={} error=\"depth cap 64 reached; not descending further\"",
            at(65)
        )]
    );
    // The cap counts as the rule's one error of the cycle.
    assert_eq!(done_lines(&e), vec![done("t", 3, 3, 1)]);
    assert!(!chain.has_file(3) && !chain.has_file(64));
    assert!(chain.has_file(65) && chain.has_file(10_000));

    // And again: a new run reports the cap once more (a service would not repeat
    // it while it persists), and nothing else goes.
    clear_log(&e);
    e.once(&cfg, &[]);
    assert_eq!(removed(&e), Vec::<String>::new());
    assert_eq!(cleanup_errors(&e).len(), 1);
    assert!(chain.has_file(65) && chain.has_file(10_000));
}

/// What `check_candidates` accepts when the walk was cut short by time: the
/// candidates oldest first, counted right, and no more than the cap.
#[test]
fn a_walk_cut_short_by_time_is_checked_too() {
    let dir = Path::new("/w");
    let line = |i: usize, bytes: u64| {
        format!(
            "level=info event=cleanup rule=t path=/w/{i:06} kind=file bytes={bytes} age=1d dry_run=yes"
        )
    };
    let cut = |files: usize, bytes: usize| {
        vec![format!(
            "level=info event=cleanup_done rule=t files={files} bytes={bytes} errors=0 budget_spent=time dry_run=yes"
        )]
    };
    check_candidates(dir, &[line(0, 1), line(7, 0)], &cut(2, 1));
    let refused = |lines: Vec<String>, told: Vec<String>| {
        std::panic::catch_unwind(|| check_candidates(dir, &lines, &told)).is_err()
    };
    assert!(
        refused(vec![line(7, 0), line(0, 1)], cut(2, 1)),
        "out of order"
    );
    assert!(refused(vec![line(0, 1)], cut(2, 1)), "miscounted");
    assert!(
        refused(vec![line(0, 1)], vec![done("t", 1, 1, 0)]),
        "not cut"
    );
}
