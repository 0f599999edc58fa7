//! Disk cleanup seen from outside: a host for cleanup rules, the lines a rule
//! logs, and file trees with ages (files, links, directories and special files
//! dated in the past, made through paths or through a held directory descriptor),
//! with snapshots (type, inode, size, mtime, links, content) to prove what a run
//! left untouched.

use super::{Host, Ini, MountNs, Run, cstr, events, now_s};
use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, symlink};
use std::path::{Path, PathBuf};

pub const DAY: i64 = 86_400;

/// Ten days and a bit ago: old for `older_than = 7d`, logged as `age=10d`.
pub fn old() -> i64 {
    now_s() - 10 * DAY - 100
}

pub fn cname(name: &[u8]) -> CString {
    CString::new(name).expect("no NUL in name")
}

pub fn check(rc: libc::c_int, what: &str) {
    if rc < 0 {
        panic!("{what}: {}", std::io::Error::last_os_error());
    }
}

/// Sets the atime and mtime of `p` itself (a symlink is not followed).
pub fn set_mtime(p: &Path, secs: i64) {
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
pub fn file_at(p: &Path, data: impl AsRef<[u8]>, mtime: i64) -> PathBuf {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("create parent");
    }
    std::fs::write(p, data).expect("write file");
    set_mtime(p, mtime);
    p.to_path_buf()
}

pub fn old_file(p: &Path, data: impl AsRef<[u8]>) -> PathBuf {
    file_at(p, data, old())
}

pub fn old_symlink(target: &Path, link: &Path) {
    symlink(target, link).expect("symlink");
    set_mtime(link, old());
}

pub fn old_dir(p: &Path) {
    std::fs::create_dir_all(p).expect("mkdir");
    set_mtime(p, old());
}

pub fn mknod(p: &Path, mode: libc::mode_t, dev: libc::dev_t) {
    // SAFETY: valid path.
    let rc = unsafe { libc::mknod(cstr(p).as_ptr(), mode, dev) };
    check(rc, &format!("mknod {}", p.display()));
}

pub fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// What a test compares before and after a run: type, inode, size, mtime (to the
/// nanosecond), link count, and the content of regular files or symlinks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: &'static str,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub nlink: u64,
    pub data: Vec<u8>,
}

pub fn entry(p: &Path) -> Option<Entry> {
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
pub fn snapshot(root: &Path) -> BTreeMap<Vec<u8>, Entry> {
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
pub fn without_dir_times(mut s: BTreeMap<Vec<u8>, Entry>) -> BTreeMap<Vec<u8>, Entry> {
    for e in s.values_mut() {
        if e.kind == "dir" {
            e.mtime = (0, 0);
            e.size = 0;
            e.nlink = 0;
        }
    }
    s
}

pub fn keys(s: &BTreeMap<Vec<u8>, Entry>) -> Vec<String> {
    s.keys()
        .map(|k| String::from_utf8_lossy(k).into_owned())
        .collect()
}

pub fn open_dir(p: &Path) -> libc::c_int {
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
pub fn old_file_at(dir: libc::c_int, name: &[u8], mtime: i64) {
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

/// A fixture host for cleanup: the default 10 s interval (the cleanup budget is
/// half of it, at most 2 s), CPU counters that move on every run, and a passwd
/// with no real user.
pub fn cleanup_host(tag: &str) -> Host {
    let h = Host::new(&format!("cleanup-{tag}"))
        .interval("10s")
        .ticking();
    h.passwd(&format!(
        "nobody:x:65534:65534::{}:/bin/false\n",
        h.p("home")
    ));
    h
}

/// agent.ini with `agent` lines, `thresholds` lines and `rules` (whole
/// `[cleanup.NAME]` sections).
pub fn cleanup_config(h: &Host, agent: &str, thresholds: &str, rules: &str) -> PathBuf {
    h.config(Ini {
        agent,
        thresholds,
        extra: rules,
        ..Ini::default()
    })
}

/// agent.ini with one rule `t` over T/`rel` with `keys`.
pub fn rule_t(h: &Host, rel: &str, keys: &str) -> PathBuf {
    cleanup_config(h, "", "", &rule("t", &h.p(rel), keys))
}

/// `[cleanup.NAME]` with `paths` and `keys` lines.
pub fn rule(name: &str, paths: &str, keys: &str) -> String {
    format!("[cleanup.{name}]\npaths = {paths}\n{keys}\n\n")
}

/// Old files under a tree, whatever the disk.
pub const ALWAYS_R: &str = "when = always\nrecursive = yes\nolder_than = 7d";

/// The `event=cleanup` lines of the main log.
pub fn removed(h: &Host) -> Vec<String> {
    h.events(" event=cleanup ")
}

/// The `event=cleanup_done` lines of the main log.
pub fn done_lines(h: &Host) -> Vec<String> {
    h.events(" event=cleanup_done ")
}

/// The `event=error what=cleanup` lines of the main log.
pub fn cleanup_errors(h: &Host) -> Vec<String> {
    h.events(" event=error what=cleanup ")
}

/// Forgets the main log (the next run starts a new one).
pub fn clear_log(h: &Host) {
    let _ = std::fs::remove_file(h.path("agent.log"));
}

pub fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// The exact `event=cleanup` line for a bare path.
pub fn line(rule: &str, path: &str, kind: &str, bytes: u64, age: &str) -> String {
    format!("level=info event=cleanup rule={rule} path={path} kind={kind} bytes={bytes} age={age}")
}

pub fn dry(l: String) -> String {
    l + " dry_run=yes"
}

/// The exact `event=cleanup_done` line.
pub fn done(rule: &str, files: u64, bytes: u64, errors: u64) -> String {
    format!("level=info event=cleanup_done rule={rule} files={files} bytes={bytes} errors={errors}")
}

impl Host {
    /// `once`, run inside the mount namespace `ns`.
    pub fn once_in(&self, ns: &MountNs, cfg: &Path, args: &[&str]) -> Run {
        self.tick();
        ns.once(cfg, args).survived()
    }
}
