//! Adversarial tests of disk cleanup, run as root against the built binary:
//! symlinks out of the tree, a directory swapped with a symlink while the agent
//! walks, bind and tmpfs mounts inside the tree, special files, hostile names and
//! hard links. (Rules and dry runs: cleanup_rules.rs; scale: cleanup_scale.rs.)
//!
//! Everything happens inside each test's own temp dir. Every canary lives in that
//! temp dir but outside the rule's directory, and must survive byte for byte with
//! the same inode and mtime. Mounts are made only inside private mount namespaces
//! (`unshare -m`) that die with the test's holder process.

mod common;

use common::*;
use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[test]
fn symlink_to_outside_file_removes_only_the_link() {
    let e = cleanup_host("symfile");
    let target = old_file(&e.path("outside/target.log"), "precious\n");
    let tree = e.path("tree");
    old_dir(&tree);
    old_symlink(&target, &tree.join("abs.log"));
    old_symlink(Path::new("../outside/target.log"), &tree.join("rel.log"));
    old_symlink(&e.path("outside/missing.log"), &tree.join("dangling.log"));
    // A fresh link is not old, whatever its target's age.
    symlink(&target, tree.join("fresh.log")).unwrap();
    let outside = snapshot(&e.path("outside"));

    let cfg = rule_t(&e, "tree", ALWAYS_R);
    e.once(&cfg, &[]);

    let abs_len = target.as_os_str().len() as u64;
    let dangling_len = e.p("outside/missing.log").len() as u64;
    let rel_len = "../outside/target.log".len() as u64;
    assert_eq!(
        sorted(removed(&e)),
        sorted(vec![
            line("t", &e.p("tree/abs.log"), "symlink", abs_len, "10d"),
            line("t", &e.p("tree/rel.log"), "symlink", rel_len, "10d"),
            line(
                "t",
                &e.p("tree/dangling.log"),
                "symlink",
                dangling_len,
                "10d"
            ),
        ])
    );
    assert_eq!(
        done_lines(&e),
        vec![done("t", 3, abs_len + rel_len + dangling_len, 0)]
    );
    assert!(!exists(&tree.join("abs.log")));
    assert!(!exists(&tree.join("rel.log")));
    assert!(!exists(&tree.join("dangling.log")));
    assert!(exists(&tree.join("fresh.log")));
    assert_eq!(
        snapshot(&e.path("outside")),
        outside,
        "the target is intact"
    );
}

#[test]
fn symlinked_directory_pointing_outside_is_never_entered() {
    let e = cleanup_host("symdir");
    old_dir(&e.path("outside/sub"));
    old_file(&e.path("outside/a.log"), "a");
    old_file(&e.path("outside/sub/b.log"), "bb");
    let tree = e.path("tree");
    old_dir(&tree);
    old_symlink(&e.path("outside"), &tree.join("oldlink"));
    symlink(e.path("outside"), tree.join("newlink")).unwrap();
    symlink("../outside/sub", tree.join("rellink")).unwrap();
    old_file(&tree.join("own.log"), "own");
    // A rule whose own directory is a symlink to the outside is refused.
    symlink(e.path("outside"), e.path("rootlink")).unwrap();
    let outside = snapshot(&e.path("outside"));

    let cfg = cleanup_config(
        &e,
        "",
        "",
        &(rule("t", &e.p("tree"), ALWAYS_R) + &rule("viaroot", &e.p("rootlink"), ALWAYS_R)),
    );
    e.once(&cfg, &[]);

    let link_len = e.p("outside").len() as u64;
    assert_eq!(
        sorted(removed(&e)),
        sorted(vec![
            line("t", &e.p("tree/oldlink"), "symlink", link_len, "10d"),
            line("t", &e.p("tree/own.log"), "file", 3, "10d"),
        ])
    );
    assert_eq!(
        cleanup_errors(&e),
        vec![format!(
            "level=warn event=error what=cleanup rule=viaroot path={} errno=ENOTDIR error=\"Not a directory (a cleanup path may not pass through a symlink: name the real directory)\"",
            e.p("rootlink")
        )]
    );
    assert_eq!(
        done_lines(&e),
        vec![done("t", 2, link_len + 3, 0), done("viaroot", 0, 0, 1)]
    );
    assert!(exists(&tree.join("newlink")) && exists(&tree.join("rellink")));
    assert!(exists(&e.path("rootlink")));
    assert_eq!(snapshot(&e.path("outside")), outside);
}

fn renameat2_exchange(a: &CString, b: &CString) -> bool {
    // SAFETY: two valid paths; RENAME_EXCHANGE swaps them atomically.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            a.as_ptr(),
            libc::AT_FDCWD,
            b.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    rc == 0
}

const RACE_FILES: usize = 8;

/// One-shot runs of the race test before its service runs.
const RUNS: usize = 100;

/// One pair of names in the rule's tree, `dir` (a real directory with old files)
/// and `link` (a fresh symlink to a directory of old canaries outside the tree),
/// exchanged over and over.
struct Swap {
    a: CString,
    b: CString,
    dirfd: libc::c_int,
}

impl Swap {
    fn new(dir: &Path, link: &Path, target: &Path) -> Swap {
        std::fs::create_dir_all(dir).unwrap();
        symlink(target, link).unwrap();
        let dirfd = open_dir(dir);
        Swap {
            a: cstr(dir),
            b: cstr(link),
            dirfd,
        }
    }

    fn refill(&self, mtime: i64) {
        for i in 0..RACE_FILES {
            old_file_at(self.dirfd, format!("f{i}.log").as_bytes(), mtime);
        }
    }
}

impl Drop for Swap {
    fn drop(&mut self) {
        // SAFETY: our own descriptor.
        unsafe { libc::close(self.dirfd) };
    }
}

fn race_canaries(dir: &Path) {
    for i in 0..RACE_FILES {
        old_file(&dir.join(format!("f{i}.log")), format!("canary {i}\n"));
    }
    old_file(&dir.join("deeper/g.log"), "deeper canary\n");
}

#[test]
fn directory_swapped_with_symlink_while_walking_never_escapes() {
    let e = cleanup_host("race");
    // Canaries: what the symlinks point at, all old and matching.
    race_canaries(&e.path("outside/a"));
    race_canaries(&e.path("outside/b"));
    race_canaries(&e.path("outside/c"));
    let outside = snapshot(&e.path("outside"));

    // Rule t: a subdirectory swapped with a symlink to outside/a.
    old_dir(&e.path("tree"));
    let sub = Swap::new(
        &e.path("tree/sw"),
        &e.path("tree/swlink"),
        &e.path("outside/a"),
    );
    // Rule u: the rule's own directory swapped with a symlink to outside/b.
    let top = Swap::new(&e.path("root2"), &e.path("root2link"), &e.path("outside/b"));
    // Rule h (disk_high, always high): candidates re-opened from the root after the
    // walk, while a subdirectory swaps with a symlink to outside/c.
    old_dir(&e.path("tree3"));
    let hi = Swap::new(
        &e.path("tree3/sw"),
        &e.path("tree3/swlink"),
        &e.path("outside/c"),
    );
    let swaps = [sub, top, hi];
    let mtime = old();
    for s in &swaps {
        s.refill(mtime);
    }

    let keys = "recursive = yes\nolder_than = 1d";
    let cfg = cleanup_config(
        &e,
        "interval = 10ms",
        "disk_warn = 0",
        &(rule("t", &e.p("tree"), &format!("when = always\n{keys}"))
            + &rule("u", &e.p("root2"), &format!("when = always\n{keys}"))
            + &rule("h", &e.p("tree3"), &format!("when = disk_high\n{keys}"))),
    );

    let stop = Arc::new(AtomicBool::new(false));
    let exchanged = Arc::new(AtomicU64::new(0));
    let swapper = {
        let (stop, exchanged) = (stop.clone(), exchanged.clone());
        std::thread::spawn(move || {
            let mut n = 0u64;
            let mut rounds = 0u64;
            while !stop.load(Ordering::Relaxed) {
                for s in &swaps {
                    if renameat2_exchange(&s.a, &s.b) {
                        n += 1;
                    }
                }
                rounds += 1;
                if rounds.is_multiple_of(64) {
                    for s in &swaps {
                        s.refill(mtime);
                    }
                }
            }
            exchanged.store(n, Ordering::SeqCst);
            swaps
        })
    };

    // Many one-shot runs, then the service with a 10 ms interval for 200 cycles.
    for _ in 0..RUNS {
        e.once(&cfg, &[]);
    }
    let before = e.cycles();
    let agent = e.spawn(&cfg);
    let ran = e.wait_events(" event=sample ", before + 200);
    let code = agent.stop();
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.join().expect("swapper");
    assert_eq!(code, 0, "the service stops cleanly");
    assert!(ran, "the service ran 200 cycles");

    // Nothing outside the trees was touched.
    assert_eq!(snapshot(&e.path("outside")), outside);
    // Every removal named a path inside a rule's directory, never through a link
    // (the link names themselves are fresh, so never removed).
    let log = e.log();
    let removed = events(&log, " event=cleanup ");
    let inside = |p: &str| {
        [
            format!("path={}/sw/f", e.p("tree")),
            format!("path={}/swlink/f", e.p("tree")),
            format!("path={}/f", e.p("root2")),
            format!("path={}/sw/f", e.p("tree3")),
            format!("path={}/swlink/f", e.p("tree3")),
        ]
        .iter()
        .any(|prefix| p.contains(&format!(" {prefix}")))
    };
    for l in &removed {
        assert!(inside(l), "unexpected removal: {l}");
        assert!(l.contains(" kind=file bytes=1 age=10d"), "{l}");
    }
    // The race was real: the swapper swapped all along and the agent found and
    // removed files in each swapped directory under both of its names.
    let n = exchanged.load(Ordering::SeqCst);
    assert!(n > 1000, "only {n} exchanges");
    for needle in [
        format!("path={}/sw/f", e.p("tree")),
        format!("path={}/swlink/f", e.p("tree")),
        format!("path={}/f", e.p("root2")),
        format!("path={}/sw/f", e.p("tree3")),
    ] {
        assert!(
            removed.iter().any(|l| l.contains(&needle)),
            "no removal under {needle} in {RUNS} runs"
        );
    }
    // Of each pair, one name is still the directory and the other the symlink.
    for s in &swaps {
        let (a, b) = (
            entry(Path::new(OsStr::from_bytes(s.a.as_bytes()))).unwrap(),
            entry(Path::new(OsStr::from_bytes(s.b.as_bytes()))).unwrap(),
        );
        let mut kinds = [a.kind, b.kind];
        kinds.sort();
        assert_eq!(kinds, ["dir", "symlink"]);
    }
    // Losing a race is not an error worth a line.
    assert!(
        !log.contains(" event=error what=cleanup rule=t "),
        "rule t never fails: {log}"
    );
}

#[test]
fn bind_and_tmpfs_mounts_inside_the_tree_are_not_entered() {
    let e = cleanup_host("mounts");
    // The bind source lies outside the tree, in the temp dir.
    old_file(&e.path("bindsrc/a.log"), "bind a\n");
    old_file(&e.path("bindsrc/sub/b.log"), "bind b\n");
    let tree = e.path("tree");
    old_dir(&tree.join("bindmnt"));
    old_dir(&tree.join("tmpfsmnt"));
    old_file(&tree.join("plain.log"), "plain");
    set_mtime(&tree.join("bindmnt"), old());
    set_mtime(&tree.join("tmpfsmnt"), old());
    set_mtime(&tree, old());
    let bindsrc = snapshot(&e.path("bindsrc"));

    let ns = MountNs::new(&format!(
        "mount --bind {src} {tree}/bindmnt\nmount -t tmpfs -o size=1m tmpfs {tree}/tmpfsmnt",
        src = e.p("bindsrc"),
        tree = e.p("tree"),
    ));
    let tmpfs = ns.inside(&tree.join("tmpfsmnt"));
    old_file(&tmpfs.join("t.log"), "tmpfs t\n");
    old_file(&tmpfs.join("deep/u.log"), "tmpfs u\n");
    set_mtime(&tmpfs.join("deep"), old());
    set_mtime(&tmpfs, old());
    let in_tmpfs = snapshot(&tmpfs);
    let bind_seen = snapshot(&ns.inside(&tree.join("bindmnt")));
    assert_eq!(bind_seen, bindsrc, "the bind mount shows the source");

    let cfg = rule_t(&e, "tree", &format!("{ALWAYS_R}\nremove_empty_dirs = yes"));
    e.once_in(&ns, &cfg, &[]);

    assert_eq!(
        removed(&e),
        vec![line("t", &e.p("tree/plain.log"), "file", 5, "10d")]
    );
    // Said once, naming the first mount met (the directory order decides which).
    let told = |m: &str| format!("{} skipped_mount={}", done("t", 1, 5, 0), e.p(m));
    let done_lines = done_lines(&e);
    assert!(
        done_lines == [told("tree/bindmnt")] || done_lines == [told("tree/tmpfsmnt")],
        "{done_lines:?}"
    );
    assert_eq!(snapshot(&tmpfs), in_tmpfs, "the tmpfs is untouched");
    assert_eq!(snapshot(&e.path("bindsrc")), bindsrc, "the bind source too");
    assert!(exists(&ns.inside(&tree.join("bindmnt/a.log"))));
    drop(ns);
    assert!(tree.join("bindmnt").is_dir() && tree.join("tmpfsmnt").is_dir());
}

// A mount inside a cleanup tree is not entered, and the rule says so once per
// configuration load (start, reload, each cron run), not every cycle.
#[test]
fn a_mount_inside_the_tree_is_told_once_per_configuration_load() {
    let e = cleanup_host("mount-told");
    let tree = e.path("tree");
    old_dir(&tree.join("mnt"));
    old_file(&tree.join("plain.log"), "plain");
    set_mtime(&tree.join("mnt"), old());
    let ns = MountNs::new(&format!(
        "mount -t tmpfs -o size=1m tmpfs {}",
        tree.join("mnt").display()
    ));
    let inside = ns.inside(&tree.join("mnt/t.log"));
    old_file(&inside, "tmpfs t\n");
    let cfg = cleanup_config(
        &e,
        "interval = 100ms",
        "",
        &rule(
            "t",
            &e.p("tree"),
            &format!("{ALWAYS_R}\nremove_empty_dirs = yes"),
        ),
    );
    let agent = ns.spawn(&cfg);
    e.must_see(" event=sample ", 5);
    agent.signal(libc::SIGHUP);
    e.must_see(" event=reload ", 1);
    e.must_see(" event=sample ", e.cycles() + 5);
    assert_eq!(agent.stop(), 0);
    e.once_in(&ns, &cfg, &[]);

    let told = |files, bytes| {
        format!(
            "{} skipped_mount={}",
            done("t", files, bytes, 0),
            e.p("tree/mnt")
        )
    };
    assert_eq!(done_lines(&e), vec![told(1, 5), told(0, 0), told(0, 0)]);
    assert_eq!(
        removed(&e),
        vec![line("t", &e.p("tree/plain.log"), "file", 5, "10d")]
    );
    assert_eq!(cleanup_errors(&e), Vec::<String>::new());
    assert_eq!(std::fs::read(&inside).unwrap(), b"tmpfs t\n");
}

// A regular file bind-mounted over a name in the tree lives on another mount: it is
// not the rule's to remove. The agent should pass it by, as it passes directory
// mounts by, rather than decide to remove it (a dry run says it would) and then
// fail every cycle with EBUSY (the kernel keeps mount points).
#[test]
fn file_bind_mount_in_the_tree_is_passed_by() {
    let e = cleanup_host("filemount");
    let src = old_file(&e.path("outside/secret.log"), "secret\n");
    let tree = e.path("tree");
    old_file(&tree.join("over.log"), "");
    let before = snapshot(&e.path("outside"));
    let ns = MountNs::new(&format!(
        "mount --bind {} {}",
        src.display(),
        tree.join("over.log").display()
    ));
    let cfg = rule_t(&e, "tree", ALWAYS_R);
    e.once_in(&ns, &cfg, &["--dry-run"]);
    let dry_run = removed(&e);
    clear_log(&e);
    e.once_in(&ns, &cfg, &[]);
    assert_eq!(snapshot(&e.path("outside")), before);
    assert!(exists(&ns.inside(&tree.join("over.log"))));
    assert_eq!(dry_run, Vec::<String>::new(), "the dry run");
    assert_eq!(removed(&e), Vec::<String>::new());
    assert_eq!(cleanup_errors(&e), Vec::<String>::new());
}

#[test]
fn fifos_sockets_and_devices_are_never_removed() {
    let e = cleanup_host("special");
    let tree = e.path("tree");
    old_dir(&tree.join("sub"));
    mknod(&tree.join("fifo"), libc::S_IFIFO | 0o600, 0);
    let listener = UnixListener::bind(tree.join("socket")).expect("bind socket");
    mknod(
        &tree.join("chardev"),
        libc::S_IFCHR | 0o600,
        libc::makedev(1, 3),
    );
    mknod(
        &tree.join("sub/blockdev"),
        libc::S_IFBLK | 0o600,
        libc::makedev(1, 3),
    );
    mknod(&tree.join("sub/fifo.log"), libc::S_IFIFO | 0o600, 0);
    for n in ["fifo", "socket", "chardev", "sub/blockdev", "sub/fifo.log"] {
        set_mtime(&tree.join(n), old());
    }
    old_file(&tree.join("sub/plain"), "p");
    let mut before = snapshot(&tree);

    let cfg = rule_t(&e, "tree", ALWAYS_R);
    e.once(&cfg, &[]);

    assert_eq!(
        removed(&e),
        vec![line("t", &e.p("tree/sub/plain"), "file", 1, "10d")]
    );
    assert_eq!(done_lines(&e), vec![done("t", 1, 1, 0)]);
    before.remove(&b"sub/plain"[..]);
    assert_eq!(
        without_dir_times(snapshot(&tree)),
        without_dir_times(before)
    );
    drop(listener);
}

#[test]
fn hostile_names_are_removed_and_logged_on_one_line_each() {
    let e = cleanup_host("names");
    let tree = e.path("tree");
    old_dir(&tree);
    // (name, how it appears inside the quoted path value)
    let names: &[(&[u8], &str)] = &[
        (b"new\nline.log", "new\\nline.log"),
        (b"with space.log", "with space.log"),
        (b"q\"uote.log", "q\\\"uote.log"),
        (b"k=v.log", "k=v.log"),
        (b"back\\slash.log", "back\\\\slash.log"),
        (b"tab\tcr\r.log", "tab\\tcr\\r.log"),
        (b"bad\xff\xfe.log", "bad\\udcff\\udcfe.log"),
        (b"esc\x1b[31m\x7f.log", "esc\\u001b[31m\\u007f.log"),
        (b"caf\xc3\xa9.log", "caf\u{e9}.log"),
        (b"c1\xc2\x85ls\xe2\x80\xa8.log", "c1\\u0085ls\\u2028.log"),
        ("rtl\u{202e}gol.exe".as_bytes(), "rtl\\u202egol.exe"),
        (
            "tag\u{e0001}\u{feff}.log".as_bytes(),
            "tag\\udb40\\udc01\\ufeff.log",
        ),
        (
            b"x\nts=2026-01-01T00:00:00.000Z level=info event=cleanup rule=evil path=etc",
            "x\\nts=2026-01-01T00:00:00.000Z level=info event=cleanup rule=evil path=etc",
        ),
        (b" ", " "),
        (b"-", "-"),
    ];
    for (name, _) in names {
        old_file(&tree.join(OsStr::from_bytes(name)), "x");
    }
    // A hostile directory name with a file in it.
    let dir = tree.join(OsStr::from_bytes(b"d\n\"=\xff"));
    old_file(&dir.join("in.log"), "x");

    let cfg = rule_t(&e, "tree", ALWAYS_R);
    e.once(&cfg, &[]);

    let log = e.log();
    for l in log.lines() {
        assert!(l.starts_with("ts="), "a forged or broken line: {l:?}");
    }
    let mut want: Vec<String> = names
        .iter()
        .map(|(_, esc)| {
            if *esc == "-" {
                line("t", &e.p("tree/-"), "file", 1, "10d")
            } else {
                format!(
                    "level=info event=cleanup rule=t path=\"{}/{esc}\" kind=file bytes=1 age=10d",
                    e.p("tree")
                )
            }
        })
        .collect();
    want.push(format!(
        "level=info event=cleanup rule=t path=\"{}/d\\n\\\"=\\udcff/in.log\" kind=file bytes=1 age=10d",
        e.p("tree")
    ));
    assert_eq!(sorted(removed(&e)), sorted(want));
    assert_eq!(
        done_lines(&e),
        vec![done("t", names.len() as u64 + 1, names.len() as u64 + 1, 0)]
    );
    let left = keys(&snapshot(&tree));
    assert_eq!(left, vec!["".to_string(), "d\n\"=\u{fffd}".to_string()]);
}

#[test]
fn hard_link_to_outside_file_removes_only_the_name_in_the_tree() {
    let e = cleanup_host("hardlink");
    let data = b"shared inode\n".repeat(100);
    let outside = old_file(&e.path("outside/data.bin"), &data);
    let tree = e.path("tree");
    old_dir(&tree);
    std::fs::hard_link(&outside, tree.join("link.bin")).unwrap();
    let before = entry(&outside).unwrap();
    assert_eq!(before.nlink, 2);

    let cfg = rule_t(&e, "tree", ALWAYS_R);
    e.once(&cfg, &[]);

    assert_eq!(
        removed(&e),
        vec![line(
            "t",
            &e.p("tree/link.bin"),
            "file",
            data.len() as u64,
            "10d"
        )]
    );
    assert!(!exists(&tree.join("link.bin")));
    let after = entry(&outside).unwrap();
    assert_eq!(after.nlink, 1);
    assert_eq!(
        Entry { nlink: 2, ..after },
        before,
        "same inode, mtime and content"
    );
}
