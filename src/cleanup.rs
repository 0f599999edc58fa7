//! Disk cleanup (`[cleanup.NAME]`): remove old files the rules name, and
//! nothing else, ever.
//!
//! How it stays inside the rule:
//! - Every directory is opened relative to its parent's descriptor with
//!   `O_NOFOLLOW | O_DIRECTORY` (the rule's own path component by component from
//!   `/`), and checked to be the directory `fstatat` just saw, on the root's device
//!   and mount: a symlink, a directory swapped in between listing and descent, or a
//!   bind or tmpfs mount inside the tree is never entered (the first mount met is
//!   told once per configuration load, on the rule's `cleanup_done` line).
//! - Entries are examined with `fstatat(AT_SYMLINK_NOFOLLOW)` and removed with
//!   `unlinkat` on the parent's descriptor, right after a second `fstatat` shows the
//!   same inode: a name can only ever be removed from the directory we hold. Only
//!   regular files and symlinks themselves go (and empty directories when asked);
//!   never sockets, FIFOs or devices; never the always-spared names or `protect`.
//! - Nothing under a root is ever opened for writing, renamed, chowned or chmodded.
//! - The walk is iterative, at most `MAX_DEPTH` levels deep, with a small buffer per
//!   level, and stops at a per-cycle entry and time budget or a stop signal; for
//!   `when = disk_high` it keeps only the `MAX_CANDIDATES` oldest files, so memory
//!   stays bounded however large the tree.

use crate::config::{CleanupRule, When};
use crate::error::errno_text;
use crate::glob::{self, Glob};
use crate::log::{Level, Logger};
use crate::mounts::{Check, Mounts};
use crate::sample::DiskUsage;
use crate::sys::{self, DirStream};
use crate::timefmt::fmt_age;
use std::collections::BinaryHeap;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Names no rule may remove, nor descend into, whatever it says.
pub const ALWAYS_SPARED: [&str; 6] = [
    ".X11-unix",
    ".ICE-unix",
    "systemd-private-*",
    "*.sock",
    "*.pid",
    "*.lock",
];

/// Deepest level the walk enters below a rule's directory.
pub const MAX_DEPTH: usize = 64;

/// How many oldest files a `disk_high` pass keeps as candidates.
pub const MAX_CANDIDATES: usize = 4096;

/// What one cycle may spend on cleanup, over all rules.
pub struct Budget<'a> {
    pub deadline_ns: u64,
    pub entries_left: u64,
    /// True when the agent must stop (SIGTERM), so the walk ends at once.
    pub stop: &'a dyn Fn() -> bool,
    /// Why the budget ran out, once it has.
    pub spent: Option<&'static str>,
    ticks: u32,
}

impl<'a> Budget<'a> {
    pub fn new(deadline_ns: u64, entries: u64, stop: &'a dyn Fn() -> bool) -> Budget<'a> {
        Budget {
            deadline_ns,
            entries_left: entries,
            stop,
            spent: None,
            ticks: 0,
        }
    }

    /// Charges one entry; false once the budget is spent.
    fn take(&mut self) -> bool {
        if self.spent.is_some() {
            return false;
        }
        if self.entries_left == 0 {
            self.spent = Some("entries");
            return false;
        }
        self.entries_left -= 1;
        self.ticks += 1;
        if self.ticks.is_multiple_of(256) {
            if (self.stop)() {
                self.spent = Some("signal");
            } else if sys::monotonic_ns() >= self.deadline_ns {
                self.spent = Some("time");
            }
        }
        self.spent.is_none()
    }
}

/// One cycle's inputs besides the rule.
pub struct Ctx<'a, 'b> {
    pub now_s: i64,
    pub dry_run: bool,
    /// `[thresholds] disk_warn`.
    pub disk_warn: Option<f64>,
    pub log: &'a mut Logger,
    pub budget: &'a mut Budget<'b>,
    pub memory: &'a mut Memory,
    /// Scratch for a NUL-terminated path, so the common case (a `disk_high` rule
    /// with the disk below `disk_warn`) costs one `statvfs` and no allocation.
    pub path_buf: &'a mut Vec<u8>,
    /// Which mounts answer: a rule path on a hung one is not entered.
    pub mounts: &'a mut Mounts,
}

/// What a rule remembers from one cycle to the next, until the configuration is
/// loaded again.
#[derive(Debug, Default)]
pub struct Memory {
    /// The rule's first error of the previous cycle: the same error again is not
    /// logged again (a directory it may not read stays so; one line is enough).
    pub last_error: String,
    /// Whether a mount point inside the tree was met since the configuration was
    /// loaded: the first one is told (`cleanup_done skipped_mount=`), the rest not.
    pub met_mount: bool,
    /// The first mount point met, until `cleanup_done` tells it.
    pub new_mount: Option<Vec<u8>>,
}

/// What a rule did this cycle.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub files: u64,
    pub bytes: u64,
    pub errors: u64,
    /// An error not seen the cycle before was logged.
    pub new_error: bool,
}

/// The identity of an entry as first seen, to check before removing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    dev: u64,
    ino: u64,
    mtime: i64,
    size: u64,
}

impl Seen {
    fn of(st: &sys::EntryStat) -> Seen {
        Seen {
            dev: st.dev,
            ino: st.ino,
            mtime: st.mtime,
            size: st.size,
        }
    }
}

/// A `disk_high` candidate: its path below the rule's directory.
#[derive(Debug, PartialEq, Eq)]
struct Candidate {
    seen: Seen,
    rel: Vec<u8>,
}

impl Ord for Candidate {
    /// The heap keeps the newest on top, so it is the one dropped when full.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.seen
            .mtime
            .cmp(&other.seen.mtime)
            .then_with(|| self.rel.cmp(&other.rel))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// One open directory of the walk.
struct Frame {
    stream: DirStream,
    /// Length of `rel` before this directory's name (where to cut when leaving it).
    rel_len: usize,
    /// The directory as seen from its parent, for removing it when empty.
    seen: Seen,
    depth: usize,
    /// Something in it stays (kept, or not removable): it will not end up empty.
    keeps: bool,
}

/// Whether a file with modification time `mtime` is older than `older_than` seconds.
/// A file dated in the future is not old.
pub fn is_old(mtime: i64, now: i64, older_than: u64) -> bool {
    mtime <= now && (now - mtime) as u64 >= older_than
}

/// Whether a name is spared: always (`ALWAYS_SPARED`) or by the rule's `protect`.
pub fn is_spared(name: &[u8], protect: &[Glob]) -> bool {
    ALWAYS_SPARED
        .iter()
        .any(|g| glob::matches(g.as_bytes(), name))
        || glob::any(protect, name)
}

/// Runs one rule over all its paths.
pub fn run(rule: &CleanupRule, ctx: &mut Ctx) -> Summary {
    let mut sum = Summary::default();
    for path in &rule.paths {
        if ctx.budget.spent.is_some() {
            break;
        }
        run_path(rule, path, ctx, &mut sum);
    }
    sum
}

fn run_path(rule: &CleanupRule, root_path: &Path, ctx: &mut Ctx, sum: &mut Summary) {
    // On a network or FUSE mount, opening the path could block as long as the
    // server or daemon is gone: the mount is asked in a child first.
    let probed = match ctx.mounts.check(root_path, ctx.budget.stop) {
        Check::Hung(why) => {
            report(ctx, rule, root_path.as_os_str().as_bytes(), "", &why, sum);
            return;
        }
        Check::Answered(st) => Some(st),
        Check::Local => None,
    };
    if rule.when == When::DiskHigh {
        let st = match probed {
            Some(st) => st,
            None => sys::cpath(ctx.path_buf, &[root_path.as_os_str().as_bytes()])
                .ok()
                .and_then(|c| sys::statvfs(c).ok()),
        };
        if st.is_some_and(|st| !at_or_above(st, ctx.disk_warn, 0)) {
            return;
        }
    }
    let root = match open_root(root_path) {
        Ok(r) => r,
        Err(e) => {
            let hint = matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)).then_some(
                " (a cleanup path may not pass through a symlink: name the real directory)",
            );
            let text = format!("{}{}", errno_text(&e), hint.unwrap_or(""));
            report(
                ctx,
                rule,
                root_path.as_os_str().as_bytes(),
                &crate::error::errno_name(&e),
                &text,
                sum,
            );
            return;
        }
    };
    if rule.when == When::DiskHigh && !disk_high(&root, ctx.disk_warn, 0) {
        return;
    }
    let mut heap: BinaryHeap<Candidate> = BinaryHeap::new();
    walk(rule, root_path, &root, ctx, sum, &mut heap);
    if rule.when == When::DiskHigh {
        remove_oldest(rule, root_path, &root, heap.into_sorted_vec(), ctx, sum);
    }
}

/// The rule's directory, opened one component at a time from `/` without following
/// any symlink, with its device and mount.
struct Root {
    fd: OwnedFd,
    dev: u64,
    mnt: Option<u64>,
}

fn open_root(path: &Path) -> std::io::Result<Root> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    let mut fd = sys::open(c"/", flags, 0)?;
    for comp in path
        .as_os_str()
        .as_bytes()
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty())
    {
        let name =
            CString::new(comp).map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
        fd = sys::openat(fd.as_raw_fd(), &name, flags)?;
    }
    let st = sys::fstat(fd.as_raw_fd())?;
    let mnt = sys::mount_id(fd.as_raw_fd()).unwrap_or(None);
    Ok(Root {
        fd,
        dev: st.st_dev,
        mnt,
    })
}

/// Whether an entry belongs to the root's filesystem and mount: not another
/// device, not on another mount, not itself mounted over (a file or directory
/// bind-mounted onto a name in the tree).
fn on_root_mount(st: &sys::EntryStat, root: &Root) -> bool {
    st.dev == root.dev && !st.mount_root && (root.mnt.is_none() || st.mnt_id == root.mnt)
}

/// Opens `name` in `dir` as a directory to descend into, only if it is the very
/// directory `seen` was taken from and lies on the root's device and mount.
fn open_child(dir: RawFd, name: &CString, seen: &Seen, root: &Root) -> Option<OwnedFd> {
    let fd = sys::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
    )
    .ok()?;
    let st = sys::fstat(fd.as_raw_fd()).ok()?;
    let same = st.st_dev == seen.dev && st.st_ino == seen.ino && st.st_dev == root.dev;
    let same_mount = root.mnt.is_none() || sys::mount_id(fd.as_raw_fd()).ok().flatten() == root.mnt;
    (same && same_mount).then_some(fd)
}

fn walk(
    rule: &CleanupRule,
    root_path: &Path,
    root: &Root,
    ctx: &mut Ctx,
    sum: &mut Summary,
    heap: &mut BinaryHeap<Candidate>,
) {
    let older = rule.older_than.as_secs();
    let Some(fd) = sys::dup(root.fd.as_raw_fd()).ok() else {
        return;
    };
    let root_seen = Seen {
        dev: root.dev,
        ino: 0,
        mtime: i64::MAX,
        size: 0,
    };
    let mut frames = vec![Frame {
        stream: DirStream::new(fd),
        rel_len: 0,
        seen: root_seen,
        depth: 0,
        keeps: true,
    }];
    let mut rel: Vec<u8> = Vec::new();
    while let Some(frame) = frames.last_mut() {
        let dirfd = frame.stream.fd();
        let depth = frame.depth;
        let name = match frame.stream.next_name() {
            Ok(Some(n)) => n.to_vec(),
            Ok(None) => {
                leave_dir(rule, root_path, &mut frames, &mut rel, ctx, sum);
                continue;
            }
            Err(e) => {
                report(
                    ctx,
                    rule,
                    &full(root_path, &rel),
                    &crate::error::errno_name(&e),
                    &errno_text(&e),
                    sum,
                );
                if let Some(f) = frames.pop() {
                    rel.truncate(f.rel_len);
                }
                if let Some(parent) = frames.last_mut() {
                    parent.keeps = true;
                }
                continue;
            }
        };
        if !ctx.budget.take() {
            return;
        }
        let gone = visit(
            rule,
            root_path,
            root,
            dirfd,
            depth,
            &name,
            &mut rel,
            &mut frames,
            ctx,
            sum,
            heap,
            older,
        );
        if !gone && let Some(f) = frames.last_mut() {
            // (When `visit` pushed a subdirectory, the frame on top is that child
            // and its own outcome is settled when it is left.)
            if f.depth == depth {
                f.keeps = true;
            }
        }
    }
}

/// Examines one entry of the directory on top of `frames`. Returns whether it is
/// gone (removed, or would be in a dry run) or is a directory now being walked.
#[allow(clippy::too_many_arguments)]
fn visit(
    rule: &CleanupRule,
    root_path: &Path,
    root: &Root,
    dirfd: RawFd,
    depth: usize,
    name: &[u8],
    rel: &mut Vec<u8>,
    frames: &mut Vec<Frame>,
    ctx: &mut Ctx,
    sum: &mut Summary,
    heap: &mut BinaryHeap<Candidate>,
    older: u64,
) -> bool {
    if is_spared(name, &rule.protect) {
        return false;
    }
    let Ok(cname) = CString::new(name) else {
        return false;
    };
    let Ok(st) = sys::statx_nofollow(dirfd, &cname) else {
        return false;
    };
    if !on_root_mount(&st, root) {
        note_mount(rule, &st, root_path, rel, name, ctx.memory);
        return false;
    }
    let seen = Seen::of(&st);
    let entry_len = push_name(rel, name);
    let gone = match st.kind {
        libc::S_IFDIR if rule.recursive => {
            if depth + 1 > MAX_DEPTH {
                let path = full(root_path, rel);
                report(
                    ctx,
                    rule,
                    &path,
                    "",
                    &format!("depth cap {MAX_DEPTH} reached; not descending further"),
                    sum,
                );
                false
            } else if let Some(fd) = open_child(dirfd, &cname, &seen, root) {
                frames.push(Frame {
                    stream: DirStream::new(fd),
                    rel_len: entry_len,
                    seen,
                    depth: depth + 1,
                    keeps: false,
                });
                return true;
            } else {
                false
            }
        }
        libc::S_IFREG | libc::S_IFLNK
            if glob::any(&rule.matches, name) && is_old(seen.mtime, ctx.now_s, older) =>
        {
            match rule.when {
                When::Always => remove_file(rule, root_path, dirfd, &cname, rel, &seen, ctx, sum),
                When::DiskHigh => {
                    keep_oldest(
                        heap,
                        Candidate {
                            seen,
                            rel: rel.clone(),
                        },
                    );
                    false
                }
            }
        }
        // Sockets, FIFOs, devices, young or unmatched files, directories of a
        // non-recursive rule: they stay.
        _ => false,
    };
    rel.truncate(entry_len);
    gone
}

/// Remembers the first mount point met in the tree since the configuration was
/// loaded, for `cleanup_done` to tell; only one the rule would otherwise have
/// entered (a directory, when recursive) or removed (a matching file).
fn note_mount(
    rule: &CleanupRule,
    st: &sys::EntryStat,
    root_path: &Path,
    rel: &[u8],
    name: &[u8],
    memory: &mut Memory,
) {
    let would = match st.kind {
        libc::S_IFDIR => rule.recursive,
        libc::S_IFREG | libc::S_IFLNK => glob::any(&rule.matches, name),
        _ => false,
    };
    if !would || memory.met_mount {
        return;
    }
    memory.met_mount = true;
    let mut path = full(root_path, rel);
    if path.last() != Some(&b'/') {
        path.push(b'/');
    }
    path.extend_from_slice(name);
    memory.new_mount = Some(path);
}

/// Leaves the directory on top of `frames`: removes it if it was old and nothing
/// in it stays (`remove_empty_dirs`); otherwise its parent keeps something.
fn leave_dir(
    rule: &CleanupRule,
    root_path: &Path,
    frames: &mut Vec<Frame>,
    rel: &mut Vec<u8>,
    ctx: &mut Ctx,
    sum: &mut Summary,
) {
    let Some(done) = frames.pop() else { return };
    let Some(parent) = frames.last() else { return };
    let removable = !done.keeps
        && rule.remove_empty_dirs
        && is_old(done.seen.mtime, ctx.now_s, rule.older_than.as_secs());
    let gone = removable
        && remove_empty_dir(
            rule,
            root_path,
            parent.stream.fd(),
            rel,
            done.rel_len,
            &done.seen,
            ctx,
            sum,
        );
    rel.truncate(done.rel_len);
    if !gone && let Some(parent) = frames.last_mut() {
        parent.keeps = true;
    }
}

/// Appends `/name` (or `name` at the top) to `rel`; returns the length before it.
fn push_name(rel: &mut Vec<u8>, name: &[u8]) -> usize {
    let len = rel.len();
    if len > 0 {
        rel.push(b'/');
    }
    rel.extend_from_slice(name);
    len
}

fn full(root: &Path, rel: &[u8]) -> Vec<u8> {
    let mut p = root.as_os_str().as_bytes().to_vec();
    if !rel.is_empty() {
        if p.last() != Some(&b'/') {
            p.push(b'/');
        }
        p.extend_from_slice(rel);
    }
    p
}

fn keep_oldest(heap: &mut BinaryHeap<Candidate>, c: Candidate) {
    if heap.len() < MAX_CANDIDATES {
        heap.push(c);
    } else if heap.peek().is_some_and(|newest| c < *newest) {
        heap.pop();
        heap.push(c);
    }
}

/// Whether the filesystem holding `root` is at or above `disk_warn`, counting
/// `freed` bytes as already gone (what a dry run would have removed).
fn disk_high(root: &Root, warn: Option<f64>, freed: u64) -> bool {
    sys::fstatvfs(root.fd.as_raw_fd()).is_ok_and(|st| at_or_above(st, warn, freed))
}

fn at_or_above(mut st: sys::FsStats, warn: Option<f64>, freed: u64) -> bool {
    let Some(warn) = warn else { return false };
    let blocks = freed.div_ceil(st.frsize.max(1));
    st.bfree = st.bfree.saturating_add(blocks).min(st.blocks);
    st.bavail = st.bavail.saturating_add(blocks);
    DiskUsage::from_stats(&st).used_percent as f64 >= warn
}

/// `disk_high`: removes candidates oldest first while the filesystem stays high,
/// re-opening each one's directory from the root without following symlinks.
fn remove_oldest(
    rule: &CleanupRule,
    root_path: &Path,
    root: &Root,
    oldest: Vec<Candidate>,
    ctx: &mut Ctx,
    sum: &mut Summary,
) {
    let mut freed = 0;
    for c in oldest {
        if !disk_high(root, ctx.disk_warn, if ctx.dry_run { freed } else { 0 })
            || (ctx.budget.stop)()
        {
            break;
        }
        let (dir, name) = match c.rel.iter().rposition(|&b| b == b'/') {
            Some(i) => (&c.rel[..i], &c.rel[i + 1..]),
            None => (&b""[..], &c.rel[..]),
        };
        let Some(dirfd) = reopen_dir(root, dir) else {
            continue;
        };
        let Ok(cname) = CString::new(name) else {
            continue;
        };
        let before = sum.bytes;
        remove_file(
            rule,
            root_path,
            dirfd.as_raw_fd(),
            &cname,
            &c.rel,
            &c.seen,
            ctx,
            sum,
        );
        freed += sum.bytes - before;
    }
}

/// The directory `rel` below the root, each component opened with `O_NOFOLLOW` and
/// checked to be on the root's device and mount.
fn reopen_dir(root: &Root, rel: &[u8]) -> Option<OwnedFd> {
    let mut fd = sys::dup(root.fd.as_raw_fd()).ok()?;
    for comp in rel.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
        let name = CString::new(comp).ok()?;
        let st = sys::statx_nofollow(fd.as_raw_fd(), &name).ok()?;
        if !on_root_mount(&st, root) {
            return None;
        }
        fd = open_child(fd.as_raw_fd(), &name, &Seen::of(&st), root)?;
    }
    Some(fd)
}

/// Removes `name` from `dir` if it is still the file `seen` described (the same
/// inode, still a regular file or symlink, on the root's mount), and logs it.
/// Returns whether it is gone (or would be, in a dry run).
#[allow(clippy::too_many_arguments)]
fn remove_file(
    rule: &CleanupRule,
    root_path: &Path,
    dir: RawFd,
    name: &CString,
    rel: &[u8],
    seen: &Seen,
    ctx: &mut Ctx,
    sum: &mut Summary,
) -> bool {
    let Ok(now) = sys::statx_nofollow(dir, name) else {
        return false;
    };
    if Seen::of(&now) != *seen
        || !matches!(now.kind, libc::S_IFREG | libc::S_IFLNK)
        || now.mount_root
    {
        return false;
    }
    let path = full(root_path, rel);
    // Logged once it is done (or, in a dry run, decided): a removal that fails is
    // an error line instead, so a file that cannot go is not reported as removed
    // every cycle.
    if !ctx.dry_run
        && let Err(err) = sys::unlinkat(dir, name, 0)
    {
        if err.raw_os_error() != Some(libc::ENOENT) {
            report(
                ctx,
                rule,
                &path,
                &crate::error::errno_name(&err),
                &errno_text(&err),
                sum,
            );
        }
        return false;
    }
    let kind = if now.kind == libc::S_IFLNK {
        "symlink"
    } else {
        "file"
    };
    let age = fmt_age((ctx.now_s - seen.mtime).max(0) as u64);
    ctx.log
        .event(Level::Info, "cleanup")
        .str("rule", &rule.name)
        .bytes("path", &path)
        .str("kind", kind)
        .u64("bytes", seen.size)
        .str("age", &age)
        .opt("dry_run", ctx.dry_run.then_some("yes"))
        .emit();
    sum.files += 1;
    sum.bytes += seen.size;
    true
}

/// Removes an old directory that the walk left (or, in a dry run, would leave)
/// empty; returns whether it is gone.
#[allow(clippy::too_many_arguments)]
fn remove_empty_dir(
    rule: &CleanupRule,
    root_path: &Path,
    parent: RawFd,
    rel: &[u8],
    rel_len: usize,
    seen: &Seen,
    ctx: &mut Ctx,
    sum: &mut Summary,
) -> bool {
    let name = &rel[if rel_len == 0 { 0 } else { rel_len + 1 }..];
    let Ok(cname) = CString::new(name) else {
        return false;
    };
    let Ok(now) = sys::statx_nofollow(parent, &cname) else {
        return false;
    };
    if now.kind != libc::S_IFDIR || now.dev != seen.dev || now.ino != seen.ino || now.mount_root {
        return false;
    }
    if !ctx.dry_run {
        match sys::unlinkat(parent, &cname, libc::AT_REMOVEDIR) {
            Ok(()) => {}
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOTEMPTY | libc::EEXIST | libc::ENOENT)
                ) =>
            {
                return false;
            }
            Err(e) => {
                report(
                    ctx,
                    rule,
                    &full(root_path, rel),
                    &crate::error::errno_name(&e),
                    &errno_text(&e),
                    sum,
                );
                return false;
            }
        }
    }
    let path = full(root_path, rel);
    let age = fmt_age((ctx.now_s - seen.mtime).max(0) as u64);
    ctx.log
        .event(Level::Info, "cleanup")
        .str("rule", &rule.name)
        .bytes("path", &path)
        .str("kind", "dir")
        .u64("bytes", 0)
        .str("age", &age)
        .opt("dry_run", ctx.dry_run.then_some("yes"))
        .emit();
    sum.files += 1;
    true
}

/// Counts a problem. Only the first of a rule in a cycle is logged, and not when it
/// is the one already logged last cycle, so a tree of unreadable files is one line,
/// not thousands, and not one every cycle.
fn report(
    ctx: &mut Ctx,
    rule: &CleanupRule,
    path: &[u8],
    errno: &str,
    text: &str,
    sum: &mut Summary,
) {
    sum.errors += 1;
    if sum.errors != 1 {
        return;
    }
    let key = format!("{} {errno} {text}", String::from_utf8_lossy(path));
    if ctx.memory.last_error == key {
        return;
    }
    ctx.memory.last_error = key;
    sum.new_error = true;
    let e = ctx
        .log
        .event(Level::Warn, "error")
        .str("what", "cleanup")
        .str("rule", &rule.name)
        .bytes("path", path);
    let e = if errno.is_empty() {
        e
    } else {
        e.str("errno", errno)
    };
    e.str("error", text).emit();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_and_sparing() {
        assert!(is_old(100, 200, 100));
        assert!(!is_old(101, 200, 100));
        assert!(!is_old(300, 200, 0), "a file from the future is not old");
        assert!(is_spared(b".X11-unix", &[]));
        assert!(is_spared(b"systemd-private-abc", &[]));
        assert!(is_spared(b"app.sock", &[]));
        assert!(is_spared(b"run.pid", &[]));
        assert!(is_spared(b"db.lock", &[]));
        assert!(!is_spared(b"app.log", &[]));
        assert!(is_spared(b"keep-me", &[Glob::new("keep-*")]));
    }

    #[test]
    fn the_heap_keeps_the_oldest() {
        let mut heap = BinaryHeap::new();
        let seen = |m| Seen {
            dev: 1,
            ino: m as u64,
            mtime: m,
            size: 1,
        };
        for m in (0..MAX_CANDIDATES as i64 + 100).rev() {
            keep_oldest(
                &mut heap,
                Candidate {
                    seen: seen(m),
                    rel: m.to_string().into_bytes(),
                },
            );
        }
        let sorted = heap.into_sorted_vec();
        assert_eq!(sorted.len(), MAX_CANDIDATES);
        assert_eq!(sorted[0].seen.mtime, 0);
        assert_eq!(
            sorted.last().map(|c| c.seen.mtime),
            Some(MAX_CANDIDATES as i64 - 1)
        );
    }
}
