//! Adversarial tests of disk cleanup (SPEC §3 `[cleanup.NAME]`, §6), run as root
//! against the built binary: symlinks out of the tree, a directory swapped with a
//! symlink while the agent walks, bind and tmpfs mounts inside the tree, special
//! files, hostile names, hard links, protected names, `disk_high` on a filesystem of
//! known size, 200,000 files, a 10,000-deep chain, dry runs, ages and empty dirs.
//!
//! Everything happens inside each test's own temp dir. Every canary lives in that
//! temp dir but outside the rule's directory, and must survive byte for byte with
//! the same inode and mtime. Mounts are made only inside private mount namespaces
//! (`unshare -m`) that die with the test's holder process. The memory test makes
//! this test process a child subreaper (see `once_rss`).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::ffi::{CString, OsStr};
use std::io::{BufRead, BufReader};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const DAY: i64 = 86_400;
const BTIME: u64 = 1_700_000_000;

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Ten days and a bit ago: old for `older_than = 7d`, logged as `age=10d`.
fn old() -> i64 {
    now_s() - 10 * DAY - 100
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in path")
}

fn cname(name: &[u8]) -> CString {
    CString::new(name).expect("no NUL in name")
}

fn check(rc: libc::c_int, what: &str) {
    if rc < 0 {
        panic!("{what}: {}", std::io::Error::last_os_error());
    }
}

/// Sets the atime and mtime of `p` itself (a symlink is not followed).
fn set_mtime(p: &Path, secs: i64) {
    let ts = libc::timespec {
        tv_sec: secs,
        tv_nsec: 0,
    };
    // SAFETY: valid path and two timespecs.
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            cstr(p).as_ptr(),
            [ts, ts].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc, &format!("utimensat {}", p.display()));
}

/// Writes `data` to `p` (creating parents) and dates it `mtime`.
fn file_at(p: &Path, data: impl AsRef<[u8]>, mtime: i64) -> PathBuf {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("create parent");
    }
    std::fs::write(p, data).expect("write file");
    set_mtime(p, mtime);
    p.to_path_buf()
}

fn old_file(p: &Path, data: impl AsRef<[u8]>) -> PathBuf {
    file_at(p, data, old())
}

fn old_symlink(target: &Path, link: &Path) {
    symlink(target, link).expect("symlink");
    set_mtime(link, old());
}

fn old_dir(p: &Path) {
    std::fs::create_dir_all(p).expect("mkdir");
    set_mtime(p, old());
}

fn mknod(p: &Path, mode: libc::mode_t, dev: libc::dev_t) {
    // SAFETY: valid path.
    let rc = unsafe { libc::mknod(cstr(p).as_ptr(), mode, dev) };
    check(rc, &format!("mknod {}", p.display()));
}

fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// What a test compares before and after a run: type, inode, size, mtime (to the
/// nanosecond), link count, and the content of regular files or symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    kind: &'static str,
    ino: u64,
    size: u64,
    mtime: (i64, i64),
    nlink: u64,
    data: Vec<u8>,
}

fn entry(p: &Path) -> Option<Entry> {
    let m = std::fs::symlink_metadata(p).ok()?;
    let ft = m.file_type();
    let kind = if ft.is_dir() {
        "dir"
    } else if ft.is_symlink() {
        "symlink"
    } else if ft.is_file() {
        "file"
    } else if ft.is_fifo() {
        "fifo"
    } else if ft.is_socket() {
        "socket"
    } else if ft.is_char_device() {
        "chardev"
    } else {
        "blockdev"
    };
    let data = match kind {
        "file" => std::fs::read(p).unwrap_or_default(),
        "symlink" => std::fs::read_link(p)
            .map(|t| t.into_os_string().into_vec())
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Some(Entry {
        kind,
        ino: m.ino(),
        size: m.size(),
        mtime: (m.mtime(), m.mtime_nsec()),
        nlink: m.nlink(),
        data,
    })
}

/// Every entry under `root` (and `root` itself, as ""), not following symlinks.
fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
    let mut out = BTreeMap::new();
    let mut todo = vec![(root.to_path_buf(), Vec::new())];
    while let Some((dir, rel)) = todo.pop() {
        let Some(e) = entry(&dir) else { continue };
        let is_dir = e.kind == "dir";
        out.insert(rel.clone(), e);
        if !is_dir {
            continue;
        }
        for ent in std::fs::read_dir(&dir).expect("read_dir") {
            let ent = ent.expect("dir entry");
            let mut r = rel.clone();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(ent.file_name().as_bytes());
            let p = ent.path();
            if ent.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push((p, r));
            } else if let Some(e) = entry(&p) {
                out.insert(r, e);
            }
        }
    }
    out
}

/// The snapshot with directory mtimes and sizes blanked: what must not change when
/// files are removed beside them.
fn without_dir_times(mut s: BTreeMap<Vec<u8>, Entry>) -> BTreeMap<Vec<u8>, Entry> {
    for e in s.values_mut() {
        if e.kind == "dir" {
            e.mtime = (0, 0);
            e.size = 0;
            e.nlink = 0;
        }
    }
    s
}

fn keys(s: &BTreeMap<Vec<u8>, Entry>) -> Vec<String> {
    s.keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

/// A private temp dir with a fixture /proc (so `--once` never pauses to sample the
/// CPU twice), a passwd with no real user, and a config writer.
struct Env {
    t: TempDir,
    runs: AtomicU64,
}

impl Env {
    fn new(tag: &str) -> Env {
        let t = TempDir::new(&format!("cleanup-{tag}"));
        t.write("proc/stat", proc_stat(0, 0));
        t.write("proc/meminfo", proc_meminfo(50));
        t.write("proc/loadavg", "0.10 0.10 0.10 1/100 123\n");
        t.write(
            "etc/passwd",
            format!(
                "nobody:x:65534:65534::{}:/bin/false\n",
                t.join("home").display()
            ),
        );
        t.write(
            "state/state",
            format!(
                "system-agent-state 1\nsaved {}\nbtime {BTIME}\ncpu 0 0 0 0 0 0 0 0\nend\n",
                now_ns()
            ),
        );
        Env {
            t,
            runs: AtomicU64::new(0),
        }
    }

    fn p(&self, rel: &str) -> String {
        self.t.join(rel).display().to_string()
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.t.join(rel)
    }

    /// agent.ini with `agent` lines added to `[agent]`, `thresholds` lines in
    /// `[thresholds]`, then `rules` (whole `[cleanup.NAME]` sections).
    fn config(&self, agent: &str, thresholds: &str, rules: &str) -> String {
        let text = format!(
            "[agent]\nlog_file = {log}\nsyslog = no\nstate_dir = {state}\n{agent}\n\n\
             [paths]\nproc = {proc}\npasswd = {passwd}\n\n[thresholds]\n{thresholds}\n\n\
             [disk]\nmounts =\n[audit]\nbash_history = no\n\n{rules}\n",
            log = self.p("agent.log"),
            state = self.p("state"),
            proc = self.p("proc"),
            passwd = self.p("etc/passwd"),
        );
        self.t.write("agent.ini", text).display().to_string()
    }

    /// Advances the fixture CPU counters so the saved reading is a full window old.
    fn bump(&self) {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        self.t.write("proc/stat", proc_stat(100 * n, 900 * n));
    }

    fn cmd_once(&self, cfg: &str, extra: &[&str]) -> Command {
        self.bump();
        let mut c = Command::new(bin());
        c.args(["-c", cfg, "--once"]).args(extra);
        c
    }

    /// One `--once` run; it may report any Nagios status but must not crash.
    fn once(&self, cfg: &str, extra: &[&str]) -> Output {
        let out = self
            .cmd_once(cfg, extra)
            .stdin(Stdio::null())
            .output()
            .expect("run system-agent");
        assert_survived(&out);
        out
    }

    fn log(&self) -> String {
        String::from_utf8(std::fs::read(self.t.join("agent.log")).unwrap_or_default())
            .expect("the log is valid UTF-8")
    }

    fn clear_log(&self) {
        let _ = std::fs::remove_file(self.t.join("agent.log"));
    }

    /// `event=cleanup` lines, without `ts=`.
    fn removed(&self) -> Vec<String> {
        events(&self.log(), " event=cleanup ")
    }

    fn done(&self) -> Vec<String> {
        events(&self.log(), " event=cleanup_done ")
    }

    fn errors(&self) -> Vec<String> {
        events(&self.log(), " event=error what=cleanup ")
    }
}

/// Exit 0–3 is a Nagios status; a signal death or anything else is a crash.
fn assert_survived(out: &Output) {
    match out.status.code() {
        Some(0..=3) => {}
        _ => panic!(
            "system-agent crashed: {:?}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Lines of `log` containing `needle`, with the `ts=... ` prefix removed.
fn events(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(|l| {
            assert!(l.starts_with("ts="), "not a log line: {l:?}");
            l.split_once(' ').map(|(_, r)| r.to_string()).unwrap()
        })
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The exact `event=cleanup` line for a bare path.
fn line(rule: &str, path: &str, kind: &str, bytes: u64, age: &str) -> String {
    format!("level=info event=cleanup rule={rule} path={path} kind={kind} bytes={bytes} age={age}")
}

fn dry(l: String) -> String {
    l + " dry_run=yes"
}

fn done(rule: &str, files: u64, bytes: u64, errors: u64) -> String {
    format!("level=info event=cleanup_done rule={rule} files={files} bytes={bytes} errors={errors}")
}

fn rule(name: &str, paths: &str, keys: &str) -> String {
    format!("[cleanup.{name}]\npaths = {paths}\n{keys}\n\n")
}

const ALWAYS_R: &str = "when = always\nrecursive = yes\nolder_than = 7d";

/// A shell holding a private mount namespace with some mounts in it, kept alive
/// until dropped (its `cat` ends when stdin closes). The test reaches the mounts via
/// `/proc/PID/root/...` and runs the agent inside with `nsenter`.
struct Ns {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Ns {
    fn new(mounts: &str) -> Ns {
        let script = format!("set -e\n{mounts}\necho ready\nexec cat >/dev/null");
        let mut child = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare");
        let stdin = child.stdin.take();
        let mut first = String::new();
        let _ = BufReader::new(child.stdout.take().unwrap()).read_line(&mut first);
        if first != "ready\n" {
            let out = child.wait_with_output().expect("wait unshare");
            panic!(
                "namespace setup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ns { child, stdin }
    }

    /// `p` as seen inside the namespace.
    fn inside(&self, p: &Path) -> PathBuf {
        let mut q = PathBuf::from(format!("/proc/{}/root", self.child.id()));
        q.push(p.strip_prefix("/").unwrap());
        q
    }

    /// The service inside the namespace (nsenter execs it: the child is the agent).
    fn spawn(&self, cfg: &str) -> Child {
        let pid = self.child.id().to_string();
        Command::new("nsenter")
            .args(["-t", &pid, "-m", "--", bin(), "-c", cfg])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsenter system-agent")
    }

    fn once(&self, env: &Env, cfg: &str, extra: &[&str]) -> Output {
        env.bump();
        let pid = self.child.id().to_string();
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-m", "--", bin(), "-c", cfg, "--once"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("nsenter system-agent");
        assert_survived(&out);
        out
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------
// 1. Symlinks to files outside the tree.

#[test]
fn symlink_to_outside_file_removes_only_the_link() {
    let e = Env::new("symfile");
    let target = old_file(&e.path("outside/target.log"), "precious\n");
    let tree = e.path("tree");
    old_dir(&tree);
    old_symlink(&target, &tree.join("abs.log"));
    old_symlink(Path::new("../outside/target.log"), &tree.join("rel.log"));
    old_symlink(&e.path("outside/missing.log"), &tree.join("dangling.log"));
    // A fresh link is not old, whatever its target's age.
    symlink(&target, tree.join("fresh.log")).unwrap();
    let outside = snapshot(&e.path("outside"));

    let cfg = e.config("", "", &rule("t", &e.p("tree"), ALWAYS_R));
    e.once(&cfg, &[]);

    let abs_len = target.as_os_str().len() as u64;
    let dangling_len = e.p("outside/missing.log").len() as u64;
    let rel_len = "../outside/target.log".len() as u64;
    assert_eq!(
        sorted(e.removed()),
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
        e.done(),
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

// ---------------------------------------------------------------------------
// 2. A symlinked directory inside the tree, and a rule whose own path is a symlink.

#[test]
fn symlinked_directory_pointing_outside_is_never_entered() {
    let e = Env::new("symdir");
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

    let cfg = e.config(
        "",
        "",
        &(rule("t", &e.p("tree"), ALWAYS_R) + &rule("viaroot", &e.p("rootlink"), ALWAYS_R)),
    );
    e.once(&cfg, &[]);

    let link_len = e.p("outside").len() as u64;
    assert_eq!(
        sorted(e.removed()),
        sorted(vec![
            line("t", &e.p("tree/oldlink"), "symlink", link_len, "10d"),
            line("t", &e.p("tree/own.log"), "file", 3, "10d"),
        ])
    );
    assert_eq!(
        e.errors(),
        vec![format!(
            "level=warn event=error what=cleanup rule=viaroot path={} errno=ENOTDIR error=\"Not a directory (a cleanup path may not pass through a symlink: name the real directory)\"",
            e.p("rootlink")
        )]
    );
    assert_eq!(
        e.done(),
        vec![done("t", 2, link_len + 3, 0), done("viaroot", 0, 0, 1)]
    );
    assert!(exists(&tree.join("newlink")) && exists(&tree.join("rellink")));
    assert!(exists(&e.path("rootlink")));
    assert_eq!(snapshot(&e.path("outside")), outside);
}

// ---------------------------------------------------------------------------
// 3. A directory swapped with a symlink to the outside while the agent walks.

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

fn open_dir(p: &Path) -> libc::c_int {
    // SAFETY: valid path.
    let fd = unsafe {
        libc::open(
            cstr(p).as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    check(fd, &format!("open {}", p.display()));
    fd
}

/// Creates the old file `name` in the directory `dir` holds, wherever it is now.
fn old_file_at(dir: libc::c_int, name: &[u8], mtime: i64) {
    let n = cname(name);
    // SAFETY: valid descriptor and name; the new fd is closed below.
    let fd = unsafe {
        libc::openat(
            dir,
            n.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        return;
    }
    let ts = libc::timespec {
        tv_sec: mtime,
        tv_nsec: 0,
    };
    // SAFETY: our own fd.
    unsafe {
        libc::write(fd, b"x".as_ptr().cast(), 1);
        libc::futimens(fd, [ts, ts].as_ptr());
        libc::close(fd);
    }
}

const RACE_FILES: usize = 8;

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
    let e = Env::new("race");
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
    let cfg = e.config(
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

    // Many one-shot runs, then the service with a 10 ms interval.
    let start = Instant::now();
    let mut runs = 0;
    while runs < 200 && start.elapsed() < Duration::from_secs(8) {
        e.once(&cfg, &[]);
        runs += 1;
    }
    let mut agent = spawn(&["-c", &cfg]);
    let cycles = |log: &str| log.matches(" event=sample ").count();
    let before = cycles(&e.log());
    let ran = wait_for(Duration::from_secs(10), || cycles(&e.log()) >= before + 200);
    signal(&agent, libc::SIGTERM);
    let st = wait_exit(&mut agent, Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    let swaps = swapper.join().expect("swapper");
    assert_eq!(st.code(), Some(0), "the service stops cleanly");
    assert!(ran, "the service ran 200 cycles within 10 s");

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
            "no removal under {needle} in {runs} runs"
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

// ---------------------------------------------------------------------------
// 4. Bind and tmpfs mounts inside the tree.

#[test]
fn bind_and_tmpfs_mounts_inside_the_tree_are_not_entered() {
    let e = Env::new("mounts");
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

    let ns = Ns::new(&format!(
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

    let cfg = e.config(
        "",
        "",
        &rule(
            "t",
            &e.p("tree"),
            &format!("{ALWAYS_R}\nremove_empty_dirs = yes"),
        ),
    );
    ns.once(&e, &cfg, &[]);

    assert_eq!(
        e.removed(),
        vec![line("t", &e.p("tree/plain.log"), "file", 5, "10d")]
    );
    // Said once, naming the first mount met (the directory order decides which).
    let told = |m: &str| format!("{} skipped_mount={}", done("t", 1, 5, 0), e.p(m));
    let done_lines = e.done();
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
    let e = Env::new("mount-told");
    let tree = e.path("tree");
    old_dir(&tree.join("mnt"));
    old_file(&tree.join("plain.log"), "plain");
    set_mtime(&tree.join("mnt"), old());
    let ns = Ns::new(&format!(
        "mount -t tmpfs -o size=1m tmpfs {}",
        tree.join("mnt").display()
    ));
    let inside = ns.inside(&tree.join("mnt/t.log"));
    old_file(&inside, "tmpfs t\n");
    let cfg = e.config(
        "interval = 100ms",
        "",
        &rule(
            "t",
            &e.p("tree"),
            &format!("{ALWAYS_R}\nremove_empty_dirs = yes"),
        ),
    );
    let mut agent = ns.spawn(&cfg);
    let cycles = |n: usize| {
        let ok = wait_for(Duration::from_secs(10), || {
            e.log().matches(" event=sample ").count() >= n
        });
        assert!(ok, "{}", e.log());
    };
    cycles(5);
    signal(&agent, libc::SIGHUP);
    assert!(wait_for(Duration::from_secs(10), || e
        .log()
        .contains(" event=reload ")));
    let reloaded = e.log().matches(" event=sample ").count();
    cycles(reloaded + 5);
    signal(&agent, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut agent, Duration::from_secs(5)).code(),
        Some(0)
    );
    ns.once(&e, &cfg, &[]);

    let told = |files, bytes| {
        format!(
            "{} skipped_mount={}",
            done("t", files, bytes, 0),
            e.p("tree/mnt")
        )
    };
    assert_eq!(e.done(), vec![told(1, 5), told(0, 0), told(0, 0)]);
    assert_eq!(
        e.removed(),
        vec![line("t", &e.p("tree/plain.log"), "file", 5, "10d")]
    );
    assert_eq!(e.errors(), Vec::<String>::new());
    assert_eq!(std::fs::read(&inside).unwrap(), b"tmpfs t\n");
}

// A regular file bind-mounted over a name in the tree lives on another mount: it is
// not the rule's to remove. The agent should pass it by, as it passes directory
// mounts by, rather than decide to remove it (a dry run says it would) and then
// fail every cycle with EBUSY (the kernel keeps mount points).
#[test]
fn file_bind_mount_in_the_tree_is_passed_by() {
    let e = Env::new("filemount");
    let src = old_file(&e.path("outside/secret.log"), "secret\n");
    let tree = e.path("tree");
    old_file(&tree.join("over.log"), "");
    let before = snapshot(&e.path("outside"));
    let ns = Ns::new(&format!(
        "mount --bind {} {}",
        src.display(),
        tree.join("over.log").display()
    ));
    let cfg = e.config("", "", &rule("t", &e.p("tree"), ALWAYS_R));
    ns.once(&e, &cfg, &["--dry-run"]);
    let dry_run = e.removed();
    e.clear_log();
    ns.once(&e, &cfg, &[]);
    assert_eq!(snapshot(&e.path("outside")), before);
    assert!(exists(&ns.inside(&tree.join("over.log"))));
    assert_eq!(dry_run, Vec::<String>::new(), "the dry run");
    assert_eq!(e.removed(), Vec::<String>::new());
    assert_eq!(e.errors(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// 5. FIFOs, sockets and device nodes.

#[test]
fn fifos_sockets_and_devices_are_never_removed() {
    let e = Env::new("special");
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

    let cfg = e.config("", "", &rule("t", &e.p("tree"), ALWAYS_R));
    e.once(&cfg, &[]);

    assert_eq!(
        e.removed(),
        vec![line("t", &e.p("tree/sub/plain"), "file", 1, "10d")]
    );
    assert_eq!(e.done(), vec![done("t", 1, 1, 0)]);
    before.remove(&b"sub/plain"[..]);
    assert_eq!(
        without_dir_times(snapshot(&tree)),
        without_dir_times(before)
    );
    drop(listener);
}

// ---------------------------------------------------------------------------
// 6. Hostile names.

#[test]
fn hostile_names_are_removed_and_logged_on_one_line_each() {
    let e = Env::new("names");
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

    let cfg = e.config("", "", &rule("t", &e.p("tree"), ALWAYS_R));
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
    assert_eq!(sorted(e.removed()), sorted(want));
    assert_eq!(
        e.done(),
        vec![done("t", names.len() as u64 + 1, names.len() as u64 + 1, 0)]
    );
    let left = keys(&snapshot(&tree));
    assert_eq!(left, vec!["".to_string(), "d\n\"=\u{fffd}".to_string()]);
}

// ---------------------------------------------------------------------------
// 7. A hard link to an outside file.

#[test]
fn hard_link_to_outside_file_removes_only_the_name_in_the_tree() {
    let e = Env::new("hardlink");
    let data = b"shared inode\n".repeat(100);
    let outside = old_file(&e.path("outside/data.bin"), &data);
    let tree = e.path("tree");
    old_dir(&tree);
    std::fs::hard_link(&outside, tree.join("link.bin")).unwrap();
    let before = entry(&outside).unwrap();
    assert_eq!(before.nlink, 2);

    let cfg = e.config("", "", &rule("t", &e.p("tree"), ALWAYS_R));
    e.once(&cfg, &[]);

    assert_eq!(
        e.removed(),
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

// ---------------------------------------------------------------------------
// 8. Always-spared names, `protect`, and `match`.

#[test]
fn spared_and_protected_names_and_match_filter() {
    let e = Env::new("protect");
    let tree = e.path("tree");
    let t = |rel: &str| tree.join(rel);
    for (rel, data) in [
        (".X11-unix/X0.log", "x11"),
        (".ICE-unix/1234.log", "ice"),
        ("systemd-private-abc-chronyd.service-xyz/tmp/old.log", "sd"),
        ("app.sock", "sock as a regular file"),
        ("run.pid", "123"),
        ("db.lock", "lock"),
        ("sub/inner.pid", "456"),
        ("keep-me.log", "protected"),
        ("sub/keep-too.log", "protected too"),
        ("data.important", "protected by a second glob"),
        ("keep-dir/inner.log", "inside a protected directory"),
        ("keep-dir/deeper/more.tmp", "deeper in it"),
        ("sub/nested.lock/a.log", "inside a spared *.lock directory"),
        ("notes.txt", "not matched"),
        ("sub/README", "not matched"),
        ("x.log", "goes"),
        ("y.tmp", "goes"),
        ("sub/z.log", "goes"),
    ] {
        old_file(&t(rel), data);
    }
    for d in [
        ".X11-unix",
        ".ICE-unix",
        "systemd-private-abc-chronyd.service-xyz",
        "keep-dir",
        "sub/nested.lock",
        "sub",
    ] {
        set_mtime(&t(d), old());
    }
    let mut before = snapshot(&tree);

    let cfg = e.config(
        "",
        "",
        &rule(
            "t",
            &e.p("tree"),
            &format!(
                "{ALWAYS_R}\nremove_empty_dirs = yes\nmatch = *.log, *.tmp *.important\nprotect = keep-* *.important"
            ),
        ),
    );
    e.once(&cfg, &[]);

    assert_eq!(
        sorted(e.removed()),
        sorted(vec![
            line("t", &e.p("tree/x.log"), "file", 4, "10d"),
            line("t", &e.p("tree/y.tmp"), "file", 4, "10d"),
            line("t", &e.p("tree/sub/z.log"), "file", 4, "10d"),
        ])
    );
    assert_eq!(e.done(), vec![done("t", 3, 12, 0)]);
    for gone in ["x.log", "y.tmp", "sub/z.log"] {
        before.remove(gone.as_bytes());
    }
    assert_eq!(
        without_dir_times(snapshot(&tree)),
        without_dir_times(before)
    );
}

// ---------------------------------------------------------------------------
// 9. disk_high: oldest first, only until below disk_warn; the dry run projects.

/// `df`'s used%: ⌈used × 100 ÷ (used + avail)⌉ with used = blocks − bfree.
fn df_percent(used: u64, avail: u64) -> u64 {
    (used * 100).div_ceil(used + avail)
}

fn statvfs(p: &Path) -> libc::statvfs {
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    check(
        unsafe { libc::statvfs(cstr(p).as_ptr(), &mut st) },
        "statvfs",
    );
    st
}

#[test]
fn disk_high_removes_exactly_the_oldest_until_below_warn() {
    let e = Env::new("diskhigh");
    std::fs::create_dir_all(e.path("mnt")).unwrap();
    let ns = Ns::new(&format!("mount -t tmpfs -o size=4m tmpfs {}", e.p("mnt")));
    let mnt = ns.inside(&e.path("mnt"));
    let now = now_s();
    // 20 files of 1–4 × 40 KiB, names in an order unrelated to their ages; ages
    // 30, 29, ... days so that the log's `age` tells them apart.
    const N: usize = 20;
    let mut files: Vec<(String, u64, i64)> = (0..N)
        .map(|i| {
            let rank = (i * 7) % N; // 0 is the oldest
            let name = format!("f{i:02}.dat");
            let size = 40 * 1024 * (1 + (i as u64 * 3) % 4);
            let mtime = now - (30 - rank as i64) * DAY - 100;
            (name, size, mtime)
        })
        .collect();
    for (name, size, mtime) in &files {
        file_at(
            &mnt.join("data").join(name),
            vec![b'z'; *size as usize],
            *mtime,
        );
    }
    // Young and spared files: never candidates, whatever the disk.
    file_at(&mnt.join("data/young.dat"), vec![0u8; 81920], now - DAY);
    file_at(
        &mnt.join("data/held.lock"),
        vec![0u8; 81920],
        now - 40 * DAY,
    );
    files.sort_by_key(|f| f.2);

    let st = statvfs(&mnt);
    let frsize = st.f_frsize as u64;
    assert_eq!(st.f_bfree, st.f_bavail, "tmpfs reserves nothing");
    let (mut used, mut avail) = ((st.f_blocks - st.f_bfree) as u64, st.f_bavail as u64);
    let pct = df_percent(used, avail);
    let warn = pct - 25;
    let mut k = 0;
    while df_percent(used, avail) >= warn {
        let blocks = files[k].1.div_ceil(frsize);
        used -= blocks;
        avail += blocks;
        k += 1;
    }
    assert!(
        k > 1 && k < N - 2,
        "k = {k} of {N} at {pct}% with warn {warn}"
    );

    let cfg = e.config(
        "",
        &format!("disk_warn = {warn}"),
        &rule(
            "t",
            &e.p("mnt"),
            "when = disk_high\nrecursive = yes\nolder_than = 7d",
        ),
    );
    let want = |dry_run: bool| -> Vec<String> {
        files[..k]
            .iter()
            .map(|(name, size, mtime)| {
                let l = line(
                    "t",
                    &format!("{}/data/{name}", e.p("mnt")),
                    "file",
                    *size,
                    &format!("{}d", (now - mtime) / DAY),
                );
                if dry_run { dry(l) } else { l }
            })
            .collect()
    };
    let freed: u64 = files[..k].iter().map(|f| f.1).sum();

    // The dry run lists exactly those K, in order, and removes nothing.
    let before = snapshot(&mnt);
    ns.once(&e, &cfg, &["--dry-run"]);
    assert_eq!(e.removed(), want(true));
    assert_eq!(
        e.done(),
        vec![done("t", k as u64, freed, 0) + " dry_run=yes"]
    );
    assert_eq!(snapshot(&mnt), before, "a dry run removes nothing");

    // The real run removes exactly the K oldest, oldest first, and stops below.
    e.clear_log();
    ns.once(&e, &cfg, &[]);
    assert_eq!(e.removed(), want(false));
    assert_eq!(e.done(), vec![done("t", k as u64, freed, 0)]);
    let mut left = before.clone();
    for (name, _, _) in &files[..k] {
        left.remove(format!("data/{name}").as_bytes());
    }
    assert_eq!(without_dir_times(snapshot(&mnt)), without_dir_times(left));
    let st = statvfs(&mnt);
    assert!(
        df_percent((st.f_blocks - st.f_bfree) as u64, st.f_bavail as u64) < warn,
        "below disk_warn now"
    );

    // Below the warning, a further run does nothing.
    e.clear_log();
    ns.once(&e, &cfg, &[]);
    assert_eq!(e.removed(), Vec::<String>::new());
    assert_eq!(e.done(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// 10. 200,000 files in one directory, in bounded memory.

/// Runs the agent inside `ns` and returns its peak RSS in KiB, from the rusage
/// `wait4` gives for it. The agent must not be this test process's own child: a
/// child started with posix_spawn (or fork) is charged at exec with the peak RSS of
/// the image it replaces, here the whole test harness. So a shell forks it (a copy
/// of a tiny shell) and exits, and this process, a child subreaper, reaps the
/// orphan itself.
fn once_rss(e: &Env, ns: &Ns, cfg: &str, extra: &[&str]) -> u64 {
    // SAFETY: prctl with integer arguments; only changes who reaps our orphans.
    check(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        "PR_SET_CHILD_SUBREAPER",
    );
    e.bump();
    let pid = ns.child.id().to_string();
    let out = Command::new("sh")
        .arg("-c")
        .arg(r#""$0" "$@" </dev/null >/dev/null 2>&1 & echo $!"#)
        .args([
            "nsenter",
            "-t",
            &pid,
            "-m",
            "--",
            bin(),
            "-c",
            cfg,
            "--once",
        ])
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    let agent: i32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("the agent's pid");
    let mut status = 0;
    // SAFETY: zeroed rusage is a valid out-parameter; `agent` is our child now.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    check(
        unsafe { libc::wait4(agent, &mut status, 0, &mut ru) },
        "wait4",
    );
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) <= 3,
        "system-agent crashed: status {status:#x}"
    );
    ru.ru_maxrss as u64
}

#[test]
fn two_hundred_thousand_files_in_bounded_memory() {
    const FILES: usize = 200_000;
    const LIMIT_KIB: u64 = 16 * 1024;
    let e = Env::new("wide");
    // On a tmpfs of the test's own: creating 200,000 files there takes a second.
    std::fs::create_dir_all(e.path("mnt")).unwrap();
    let ns = Ns::new(&format!(
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
    let cfg = e.config(
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
    assert_eq!(
        e.done(),
        vec![done("t", 4096, 4096, 0) + " dry_run=yes"],
        "the walk saw every file within the cycle's budget, kept 4096"
    );
    let removed = e.removed();
    assert_eq!(removed.len(), 4096, "the candidates are capped");
    for (i, l) in removed.iter().enumerate() {
        let path = format!("path={}/{i:06} ", dir.display());
        assert!(l.contains(&path), "#{i} is not the next oldest: {l}");
    }
    assert_eq!(count(), FILES);

    // always: removes what the cycle's budget allows, in bounded memory.
    e.clear_log();
    let cfg = e.config(
        "",
        "",
        &rule(
            "t",
            &e.p("mnt"),
            "when = always\nrecursive = yes\nolder_than = 0s",
        ),
    );
    let rss = once_rss(&e, &ns, &cfg, &[]);
    assert!(rss < LIMIT_KIB, "always peak RSS {rss} KiB");
    let removed = e.removed();
    let left = count();
    assert!(!removed.is_empty(), "nothing removed");
    assert_eq!(removed.len() + left, FILES, "each removal logged once");
    let done = e.done();
    let bytes = removed.iter().filter(|l| l.contains(" bytes=1 ")).count();
    let want = format!(
        "level=info event=cleanup_done rule=t files={} bytes={bytes} errors=0",
        removed.len()
    );
    assert!(
        done == [want.clone()] && left == 0 || done == [want.clone() + " budget_spent=time"],
        "{done:?} vs {want} with {left} left"
    );
}

// ---------------------------------------------------------------------------
// 11. A 10,000-deep chain of directories.

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
    let e = Env::new("deep");
    let tree = e.path("tree");
    std::fs::create_dir_all(&tree).unwrap();
    let chain = Chain::new(&tree, 10_000, &[3, 64, 65, 10_000]);
    assert_eq!(chain.depth, 10_000);
    old_file(&tree.join("top.log"), "t");

    let cfg = e.config("", "", &rule("t", &e.p("tree"), ALWAYS_R));
    e.once(&cfg, &[]);

    let at = |level: usize| -> String {
        let mut p = e.p("tree");
        for _ in 0..level {
            p.push_str("/d");
        }
        p
    };
    assert_eq!(
        sorted(e.removed()),
        sorted(vec![
            line("t", &e.p("tree/top.log"), "file", 1, "10d"),
            line("t", &format!("{}/old.log", at(3)), "file", 1, "10d"),
            line("t", &format!("{}/old.log", at(64)), "file", 1, "10d"),
        ])
    );
    assert_eq!(
        e.errors(),
        vec![format!(
            "level=warn event=error what=cleanup rule=t path={} error=\"depth cap 64 reached; not descending further\"",
            at(65)
        )]
    );
    // The cap counts as the rule's one error of the cycle.
    assert_eq!(e.done(), vec![done("t", 3, 3, 1)]);
    assert!(!chain.has_file(3) && !chain.has_file(64));
    assert!(chain.has_file(65) && chain.has_file(10_000));

    // And again: a new run reports the cap once more (a service would not repeat
    // it while it persists), and nothing else goes.
    e.clear_log();
    e.once(&cfg, &[]);
    assert_eq!(e.removed(), Vec::<String>::new());
    assert_eq!(e.errors().len(), 1);
    assert!(chain.has_file(65) && chain.has_file(10_000));
}

// ---------------------------------------------------------------------------
// 12. Dry runs.

#[test]
fn dry_run_logs_every_old_file_and_removes_nothing() {
    let e = Env::new("dryrun");
    let tree = e.path("tree");
    old_file(&tree.join("a.log"), "aaaa");
    old_file(&tree.join("sub/b.log"), "bb");
    old_file(&tree.join("sub/deeper/c.txt"), "c");
    file_at(&tree.join("new.log"), "new", now_s() - DAY);
    old_file(&tree.join("run.pid"), "1");
    old_symlink(&e.path("outside/target"), &tree.join("link"));
    old_file(&e.path("outside/target"), "target");
    old_dir(&tree.join("sub/empty"));
    old_dir(&tree.join("sub/deeper"));
    old_dir(&tree.join("sub"));
    let before = (snapshot(&tree), snapshot(&e.path("outside")));
    let lines = |dry_run: bool| {
        let l = vec![
            line("t", &e.p("tree/a.log"), "file", 4, "10d"),
            line("t", &e.p("tree/sub/b.log"), "file", 2, "10d"),
            line("t", &e.p("tree/sub/deeper/c.txt"), "file", 1, "10d"),
            line(
                "t",
                &e.p("tree/link"),
                "symlink",
                e.p("outside/target").len() as u64,
                "10d",
            ),
        ];
        sorted(
            l.into_iter()
                .map(|l| if dry_run { dry(l) } else { l })
                .collect(),
        )
    };
    let bytes = 4 + 2 + 1 + e.p("outside/target").len() as u64;
    let rules = rule(
        "t",
        &e.p("tree"),
        &format!("{ALWAYS_R}\nremove_empty_dirs = no"),
    );
    let same = |what: &str| {
        let now = (snapshot(&tree), snapshot(&e.path("outside")));
        assert_eq!(now, before, "{what} changed something");
    };

    // --dry-run on the command line.
    let cfg = e.config("", "", &rules);
    e.once(&cfg, &["--dry-run"]);
    assert_eq!(sorted(e.removed()), lines(true));
    assert_eq!(e.done(), vec![done("t", 4, bytes, 0) + " dry_run=yes"]);
    same("--dry-run");

    // dry_run = yes in the config.
    e.clear_log();
    let cfg = e.config("dry_run = yes", "", &rules);
    e.once(&cfg, &[]);
    assert_eq!(sorted(e.removed()), lines(true));
    same("dry_run = yes");

    // The real run removes exactly what the dry runs listed.
    e.clear_log();
    let cfg = e.config("", "", &rules);
    e.once(&cfg, &[]);
    assert_eq!(sorted(e.removed()), lines(false));
    assert_eq!(e.done(), vec![done("t", 4, bytes, 0)]);
}

// A dry run logs every action the real run would take, directories included: an
// old directory that is empty already is removed by the real run.
#[test]
fn dry_run_reports_the_empty_directories_a_real_run_removes() {
    let e = Env::new("dryempty");
    let tree = e.path("tree");
    old_dir(&tree.join("empty"));
    set_mtime(&tree, old());
    let rules = rule(
        "t",
        &e.p("tree"),
        &format!("{ALWAYS_R}\nremove_empty_dirs = yes"),
    );
    let want = line("t", &e.p("tree/empty"), "dir", 0, "10d");
    let cfg = e.config("", "", &rules);
    e.once(&cfg, &["--dry-run"]);
    let dry_lines = e.removed();
    assert!(tree.join("empty").is_dir());
    e.clear_log();
    e.once(&cfg, &[]);
    assert_eq!(e.removed(), vec![want.clone()]);
    assert_eq!(dry_lines, vec![dry(want)]);
}

// ---------------------------------------------------------------------------
// 13. Ages, non-recursive rules, and empty directories.

#[test]
fn ages_recursion_and_empty_directories() {
    let e = Env::new("ages");
    let now = now_s();
    // flat: a non-recursive rule.
    let flat = e.path("flat");
    old_file(&flat.join("old.log"), "o");
    file_at(&flat.join("future.log"), "f", now + 10 * DAY);
    file_at(&flat.join("far-future.log"), "f", i64::from(i32::MAX) + 100);
    file_at(&flat.join("new.log"), "n", now - DAY);
    file_at(&flat.join("almost.log"), "a", now - 7 * DAY + 3600);
    old_file(&flat.join("sub/inner.log"), "i");
    old_dir(&flat.join("sub"));
    old_dir(&flat.join("emptysub"));

    // tree: recursive, remove_empty_dirs.
    let tree = e.path("tree");
    old_dir(&tree.join("empty"));
    std::fs::create_dir_all(tree.join("newempty")).unwrap();
    file_at(&tree.join("full/new.log"), "n", now - DAY);
    set_mtime(&tree.join("full"), old());
    old_file(&tree.join("emptied/old.log"), "o");
    set_mtime(&tree.join("emptied"), old());
    old_dir(&tree.join("nest/inner"));
    set_mtime(&tree.join("nest"), old());
    file_at(&tree.join("future/f.log"), "f", now + DAY);
    set_mtime(&tree.join("future"), old());
    set_mtime(&tree, old());

    // emptyroot: an old, empty rule directory; oldroot: one with only old files.
    old_dir(&e.path("emptyroot"));
    old_file(&e.path("oldroot/x.log"), "x");
    set_mtime(&e.path("oldroot"), old());

    let empties = "when = always\nrecursive = yes\nolder_than = 7d\nremove_empty_dirs = yes";
    let cfg = e.config(
        "",
        "",
        &(rule("flat", &e.p("flat"), "when = always\nolder_than = 7d")
            + &rule("tree", &e.p("tree"), empties)
            + &rule(
                "roots",
                &format!("{} {}", e.p("emptyroot"), e.p("oldroot")),
                empties,
            )),
    );
    e.once(&cfg, &[]);

    assert_eq!(
        sorted(e.removed()),
        sorted(vec![
            line("flat", &e.p("flat/old.log"), "file", 1, "10d"),
            line("tree", &e.p("tree/empty"), "dir", 0, "10d"),
            line("tree", &e.p("tree/emptied/old.log"), "file", 1, "10d"),
            line("tree", &e.p("tree/emptied"), "dir", 0, "10d"),
            line("tree", &e.p("tree/nest/inner"), "dir", 0, "10d"),
            line("tree", &e.p("tree/nest"), "dir", 0, "10d"),
            line("roots", &e.p("oldroot/x.log"), "file", 1, "10d"),
        ])
    );
    assert_eq!(
        e.done(),
        vec![
            done("flat", 1, 1, 0),
            done("tree", 5, 1, 0),
            done("roots", 1, 1, 0)
        ]
    );
    assert_eq!(
        keys(&snapshot(&flat)),
        [
            "",
            "almost.log",
            "emptysub",
            "far-future.log",
            "future.log",
            "new.log",
            "sub",
            "sub/inner.log"
        ]
    );
    assert_eq!(
        keys(&snapshot(&tree)),
        [
            "",
            "full",
            "full/new.log",
            "future",
            "future/f.log",
            "newempty"
        ]
    );
    assert!(e.path("emptyroot").is_dir(), "never the rule's root");
    assert_eq!(keys(&snapshot(&e.path("oldroot"))), [""]);
}

// ---------------------------------------------------------------------------
// A rule's paths that are missing or not directories are errors, not crashes, and
// do not stop the rule's other paths.

#[test]
fn missing_and_non_directory_paths_do_not_stop_the_rule() {
    let e = Env::new("paths");
    old_file(&e.path("afile"), "not a directory");
    old_file(&e.path("tree/a.log"), "a");
    let cfg = e.config(
        "",
        "",
        &rule(
            "t",
            &format!("{} {} {}/", e.p("missing"), e.p("afile"), e.p("tree")),
            ALWAYS_R,
        ),
    );
    e.once(&cfg, &[]);
    assert_eq!(
        e.errors(),
        vec![format!(
            "level=warn event=error what=cleanup rule=t path={} errno=ENOENT error=\"No such file or directory\"",
            e.p("missing")
        )],
        "the first error of the cycle"
    );
    assert_eq!(
        e.removed(),
        vec![line("t", &e.p("tree/a.log"), "file", 1, "10d")]
    );
    assert_eq!(e.done(), vec![done("t", 1, 1, 2)]);
    assert!(exists(&e.path("afile")));
}
