//! The safe walk of a cleanup rule's directories: it finds what `select` says
//! the rule removes, and removes that and nothing else, ever.
//!
//! How it stays inside the rule:
//! - Every directory is opened relative to its parent's descriptor with
//!   `O_NOFOLLOW | O_DIRECTORY` (the rule's own path component by component from
//!   `/`), and checked to be the directory `fstatat` just saw, on the root's device
//!   and mount: a symlink, a directory swapped in between listing and descent, or a
//!   bind or tmpfs mount inside the tree is never entered (the first mount met is
//!   told once per configuration load, on the rule's `cleanup_done` line).
//! - Entries are examined with `fstatat(AT_SYMLINK_NOFOLLOW)` and removed with
//!   `unlinkat` on the parent's descriptor (through `Effects`, which in a dry run
//!   only records it), right after a second `fstatat` shows the same inode: a name
//!   can only ever be removed from the directory we hold. Only regular files and
//!   symlinks themselves go (and empty directories when asked); never sockets,
//!   FIFOs or devices; never the always-spared names or `protect`.
//! - Nothing under a root is ever opened for writing, renamed, chowned or chmodded.
//! - The walk is iterative, at most `MAX_DEPTH` levels deep, with a small buffer per
//!   level, and stops at a per-cycle entry and time budget or a stop signal; for
//!   `when = disk_high` or `disk_filling` it keeps only the `MAX_CANDIDATES`
//!   oldest files, so memory
//!   stays bounded however large the tree.

use super::select::{self, Candidate, Candidates, Gate, MAX_DEPTH, Seen, Verdict};
use super::{Budget, Memory, filling_rate};
use crate::config::{CleanupRule, When};
use crate::effects::{Effects, Outcome};
use crate::error::{errno_name, errno_text};
use crate::log::{Level, Logger};
use crate::mounts::{Check, Mounts};
use crate::reading::DiskReading;
use crate::sys::{self, DirStream, EntryStat, FsStats};
use crate::timefmt::fmt_age;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One rule's run this cycle: the rule, what the cycle's rules share, and what it
/// did.
pub struct Ctx<'a, 'b> {
    pub rule: &'a CleanupRule,
    pub now_s: i64,
    /// `[thresholds] disk_warn`.
    pub disk_warn: Option<f64>,
    /// `when = disk_filling`: this cycle's watched mounts, whose forecasts say how
    /// fast the mount holding a rule path fills, and the time left from which it
    /// counts as filling (`[thresholds] disk_eta_warn`, else crit).
    pub disks: &'a [DiskReading],
    pub eta_warn: Option<f64>,
    pub log: &'a mut Logger,
    pub effects: &'a mut dyn Effects,
    pub budget: &'a mut Budget<'b>,
    pub memory: &'a mut Memory,
    /// Scratch for a NUL-terminated path, so the common case (a `disk_high` rule
    /// with the disk below `disk_warn`) costs one `statvfs` and no allocation.
    pub path_buf: &'a mut Vec<u8>,
    /// Which mounts answer: a rule path on a hung one is not entered.
    pub mounts: &'a mut Mounts,
    pub sum: Summary,
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

/// Runs the rule over all its paths.
pub fn run(ctx: &mut Ctx) {
    for path in &ctx.rule.paths {
        if ctx.budget.spent.is_some() {
            break;
        }
        run_path(path, ctx);
    }
}

fn run_path(root_path: &Path, ctx: &mut Ctx) {
    // On a network or FUSE mount, opening the path could block as long as the
    // server or daemon is gone: the mount is asked in a child first.
    let probed = match ctx.mounts.check(root_path, ctx.budget.stop) {
        Check::Hung(why) => {
            report(ctx, root_path.as_os_str().as_bytes(), "", &why);
            return;
        }
        Check::Answered(st) => Some(st),
        Check::Local => None,
    };
    let when = ctx.rule.when;
    if when == When::DiskHigh && known_low(probed, root_path, ctx) {
        return;
    }
    let gate = match when {
        When::Always => Gate::Always,
        When::DiskHigh => Gate::High(ctx.disk_warn),
        When::DiskFilling => match (filling_rate(ctx.mounts, ctx.disks, root_path), ctx.eta_warn) {
            (Some(rate), Some(limit)) => Gate::Filling { rate, limit },
            _ => return,
        },
    };
    let root = match Root::open(root_path) {
        Ok(r) => r,
        Err(e) => {
            let hint = matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)).then_some(
                " (a cleanup path may not pass through a symlink: name the real directory)",
            );
            let text = format!("{}{}", errno_text(&e), hint.unwrap_or(""));
            report(
                ctx,
                root_path.as_os_str().as_bytes(),
                &errno_name(&e),
                &text,
            );
            return;
        }
    };
    if gate != Gate::Always && !root.calls_for(gate, 0) {
        return;
    }
    let mut walk = Walk {
        root_path,
        root,
        rel: Vec::new(),
        frames: Vec::new(),
        candidates: Candidates::default(),
    };
    walk.run(ctx);
    if gate != Gate::Always {
        walk.remove_oldest(ctx, gate);
    }
}

/// `disk_high`: whether the path's filesystem is below `disk_warn` by what its
/// mount's probe answered or by one `statvfs` (unknown is not low: the root, once
/// open, is asked again).
fn known_low(probed: Option<Option<FsStats>>, root_path: &Path, ctx: &mut Ctx) -> bool {
    let st = match probed {
        Some(st) => st,
        None => sys::cpath(ctx.path_buf, &[root_path.as_os_str().as_bytes()])
            .ok()
            .and_then(|c| sys::statvfs(c).ok()),
    };
    st.is_some_and(|st| !select::at_or_above(st, ctx.disk_warn, 0))
}

/// The rule's directory, opened one component at a time from `/` without following
/// any symlink, with its device and mount.
struct Root {
    fd: OwnedFd,
    dev: u64,
    mnt: Option<u64>,
}

impl Root {
    fn open(path: &Path) -> io::Result<Root> {
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
        let mut fd = sys::open(c"/", flags, 0)?;
        for comp in path
            .as_os_str()
            .as_bytes()
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty())
        {
            let name =
                CString::new(comp).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
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
    fn holds(&self, st: &EntryStat) -> bool {
        st.dev == self.dev && !st.mount_root && (self.mnt.is_none() || st.mnt_id == self.mnt)
    }

    /// Opens `name` in `dir` as a directory to descend into, only if it is the very
    /// directory `seen` was taken from and lies on the root's device and mount.
    fn open_child(&self, dir: RawFd, name: &CString, seen: &Seen) -> Option<OwnedFd> {
        let fd = sys::openat(
            dir,
            name,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        )
        .ok()?;
        let st = sys::fstat(fd.as_raw_fd()).ok()?;
        let same = st.st_dev == seen.dev && st.st_ino == seen.ino && st.st_dev == self.dev;
        let same_mount =
            self.mnt.is_none() || sys::mount_id(fd.as_raw_fd()).ok().flatten() == self.mnt;
        (same && same_mount).then_some(fd)
    }

    /// The directory `rel` below the root, each component opened with `O_NOFOLLOW`
    /// and checked to be on the root's device and mount.
    fn reopen_dir(&self, rel: &[u8]) -> Option<OwnedFd> {
        let mut fd = sys::dup(self.fd.as_raw_fd()).ok()?;
        for comp in rel.split(|&c| c == b'/').filter(|c| !c.is_empty()) {
            let name = CString::new(comp).ok()?;
            let st = sys::statx_nofollow(fd.as_raw_fd(), &name).ok()?;
            if !self.holds(&st) {
                return None;
            }
            fd = self.open_child(fd.as_raw_fd(), &name, &Seen::of(&st))?;
        }
        Some(fd)
    }

    /// Whether the filesystem holding the root still calls for removals by
    /// `gate`, counting `freed` bytes as already gone (what a dry run would have
    /// removed).
    fn calls_for(&self, gate: Gate, freed: u64) -> bool {
        sys::fstatvfs(self.fd.as_raw_fd()).is_ok_and(|st| gate.calls_for(st, freed))
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

/// One rule path being walked.
struct Walk<'p> {
    root_path: &'p Path,
    root: Root,
    /// The path below the root of the directory on top of `frames` (while an
    /// entry is examined: of the entry).
    rel: Vec<u8>,
    frames: Vec<Frame>,
    /// `disk_high`: the oldest matching files, removed after the walk.
    candidates: Candidates,
}

impl Walk<'_> {
    fn run(&mut self, ctx: &mut Ctx) {
        let Some(fd) = sys::dup(self.root.fd.as_raw_fd()).ok() else {
            return;
        };
        let root_seen = Seen {
            dev: self.root.dev,
            ino: 0,
            mtime: i64::MAX,
            size: 0,
        };
        self.frames.push(Frame {
            stream: DirStream::new(fd),
            rel_len: 0,
            seen: root_seen,
            depth: 0,
            keeps: true,
        });
        while let Some(frame) = self.frames.last_mut() {
            let dirfd = frame.stream.fd();
            let depth = frame.depth;
            let name = match frame.stream.next_name() {
                Ok(Some(n)) => n.to_vec(),
                Ok(None) => {
                    self.leave_dir(ctx);
                    continue;
                }
                Err(e) => {
                    self.unreadable(ctx, &e);
                    continue;
                }
            };
            if !ctx.budget.take() {
                return;
            }
            let gone = self.visit(ctx, dirfd, depth, &name);
            // (When `visit` pushed a subdirectory, the frame on top is that child
            // and its own outcome is settled when it is left.)
            if !gone
                && let Some(f) = self.frames.last_mut()
                && f.depth == depth
            {
                f.keeps = true;
            }
        }
    }

    /// Examines one entry of the directory on top of `frames`. Returns whether it
    /// is gone (removed, or would be in a dry run) or is a directory now being
    /// walked.
    fn visit(&mut self, ctx: &mut Ctx, dirfd: RawFd, depth: usize, name: &[u8]) -> bool {
        let rule = ctx.rule;
        if select::is_spared(name, &rule.protect) {
            return false;
        }
        let Ok(cname) = CString::new(name) else {
            return false;
        };
        let Ok(st) = sys::statx_nofollow(dirfd, &cname) else {
            return false;
        };
        if !self.root.holds(&st) {
            if select::wanted(rule, st.kind, name) {
                self.note_mount(ctx.memory, name);
            }
            return false;
        }
        let seen = Seen::of(&st);
        let entry_len = push_name(&mut self.rel, name);
        let gone = match select::verdict(rule, st.kind, name, seen.mtime, ctx.now_s) {
            Verdict::Descend => {
                if self.descend(ctx, dirfd, depth, &cname, seen, entry_len) {
                    return true;
                }
                false
            }
            Verdict::Remove => {
                remove_file(ctx, self.root_path, dirfd, &cname, &self.rel, &seen).is_some()
            }
            Verdict::Candidate => {
                let rel = self.rel.clone();
                self.candidates.keep(Candidate { seen, rel });
                false
            }
            Verdict::Keep => false,
        };
        self.rel.truncate(entry_len);
        gone
    }

    /// Enters the directory `name` (the entry at hand): true once it is on top of
    /// `frames`; false when it is too deep or not the directory `seen` describes.
    fn descend(
        &mut self,
        ctx: &mut Ctx,
        dirfd: RawFd,
        depth: usize,
        name: &CString,
        seen: Seen,
        entry_len: usize,
    ) -> bool {
        if depth + 1 > MAX_DEPTH {
            let path = full(self.root_path, &self.rel);
            let why = format!("depth cap {MAX_DEPTH} reached; not descending further");
            report(ctx, &path, "", &why);
            return false;
        }
        let Some(fd) = self.root.open_child(dirfd, name, &seen) else {
            return false;
        };
        self.frames.push(Frame {
            stream: DirStream::new(fd),
            rel_len: entry_len,
            seen,
            depth: depth + 1,
            keeps: false,
        });
        true
    }

    /// A directory that cannot be read further: reported, left, and kept.
    fn unreadable(&mut self, ctx: &mut Ctx, e: &io::Error) {
        let path = full(self.root_path, &self.rel);
        report(ctx, &path, &errno_name(e), &errno_text(e));
        if let Some(f) = self.frames.pop() {
            self.rel.truncate(f.rel_len);
        }
        if let Some(parent) = self.frames.last_mut() {
            parent.keeps = true;
        }
    }

    /// Remembers the first mount point met in the tree since the configuration
    /// was loaded, for `cleanup_done` to tell (one the rule would otherwise have
    /// entered or removed).
    fn note_mount(&self, memory: &mut Memory, name: &[u8]) {
        if memory.met_mount {
            return;
        }
        memory.met_mount = true;
        let mut path = full(self.root_path, &self.rel);
        if path.last() != Some(&b'/') {
            path.push(b'/');
        }
        path.extend_from_slice(name);
        memory.new_mount = Some(path);
    }

    /// Leaves the directory on top of `frames`: removes it if it was old and
    /// nothing in it stays (`remove_empty_dirs`); otherwise its parent keeps
    /// something.
    fn leave_dir(&mut self, ctx: &mut Ctx) {
        let Some(done) = self.frames.pop() else {
            return;
        };
        let Some(parent) = self.frames.last() else {
            return;
        };
        let rule = ctx.rule;
        let removable = !done.keeps
            && rule.remove_empty_dirs
            && select::is_old(done.seen.mtime, ctx.now_s, rule.older_than.as_secs());
        let parent_fd = parent.stream.fd();
        let gone = removable
            && remove_empty_dir(
                ctx,
                self.root_path,
                parent_fd,
                &self.rel,
                done.rel_len,
                &done.seen,
            );
        self.rel.truncate(done.rel_len);
        if !gone && let Some(parent) = self.frames.last_mut() {
            parent.keeps = true;
        }
    }

    /// `disk_high`, `disk_filling`: removes the candidates oldest first while the
    /// filesystem stays high (or filling), re-opening each one's directory from the
    /// root without following symlinks.
    fn remove_oldest(self, ctx: &mut Ctx, gate: Gate) {
        // What a dry run would have freed: it stops where the real run would.
        let mut projected = 0;
        for c in self.candidates.oldest_first() {
            if !self.root.calls_for(gate, projected) || (ctx.budget.stop)() {
                break;
            }
            let (dir, name) = match c.rel.iter().rposition(|&b| b == b'/') {
                Some(i) => (&c.rel[..i], &c.rel[i + 1..]),
                None => (&b""[..], &c.rel[..]),
            };
            let Some(dirfd) = self.root.reopen_dir(dir) else {
                continue;
            };
            let Ok(cname) = CString::new(name) else {
                continue;
            };
            let removed = remove_file(
                ctx,
                self.root_path,
                dirfd.as_raw_fd(),
                &cname,
                &c.rel,
                &c.seen,
            );
            if removed.is_some_and(|o| o.dry_run()) {
                projected += c.seen.size;
            }
        }
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

/// Removes `name` from `dir` if it is still the file `seen` described (the same
/// inode, still a regular file or symlink, on the root's mount), and logs it.
/// `Some` when it is gone (or would be, in a dry run).
fn remove_file(
    ctx: &mut Ctx,
    root_path: &Path,
    dir: RawFd,
    name: &CString,
    rel: &[u8],
    seen: &Seen,
) -> Option<Outcome<()>> {
    let now = sys::statx_nofollow(dir, name).ok()?;
    if Seen::of(&now) != *seen
        || !matches!(now.kind, libc::S_IFREG | libc::S_IFLNK)
        || now.mount_root
    {
        return None;
    }
    let path = full(root_path, rel);
    // Logged once it is done (or, in a dry run, decided): a removal that fails is
    // an error line instead, so a file that cannot go is not reported as removed
    // every cycle.
    let outcome = match ctx.effects.unlink(dir, name, 0, &path) {
        Ok(o) => o,
        Err(err) => {
            if err.raw_os_error() != Some(libc::ENOENT) {
                report(ctx, &path, &errno_name(&err), &errno_text(&err));
            }
            return None;
        }
    };
    let kind = if now.kind == libc::S_IFLNK {
        "symlink"
    } else {
        "file"
    };
    removed(ctx, &path, kind, seen.size, seen.mtime, &outcome);
    Some(outcome)
}

/// Removes an old directory that the walk left (or, in a dry run, would leave)
/// empty; returns whether it is gone.
fn remove_empty_dir(
    ctx: &mut Ctx,
    root_path: &Path,
    parent: RawFd,
    rel: &[u8],
    rel_len: usize,
    seen: &Seen,
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
    let path = full(root_path, rel);
    let outcome = match ctx
        .effects
        .unlink(parent, &cname, libc::AT_REMOVEDIR, &path)
    {
        Ok(o) => o,
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::ENOTEMPTY | libc::EEXIST | libc::ENOENT)
            ) =>
        {
            return false;
        }
        Err(e) => {
            report(ctx, &path, &errno_name(&e), &errno_text(&e));
            return false;
        }
    };
    removed(ctx, &path, "dir", 0, seen.mtime, &outcome);
    true
}

/// Logs a removal (`event=cleanup`) and counts it.
fn removed(ctx: &mut Ctx, path: &[u8], kind: &str, bytes: u64, mtime: i64, o: &Outcome<()>) {
    let age = fmt_age((ctx.now_s - mtime).max(0) as u64);
    ctx.log
        .event(Level::Info, "cleanup")
        .str("rule", &ctx.rule.name)
        .bytes("path", path)
        .str("kind", kind)
        .u64("bytes", bytes)
        .str("age", &age)
        .opt("dry_run", o.dry_run().then_some("yes"))
        .emit();
    ctx.sum.files += 1;
    ctx.sum.bytes += bytes;
}

/// Counts a problem. Only the first of a rule in a cycle is logged, and not when it
/// is the one already logged last cycle, so a tree of unreadable files is one line,
/// not thousands, and not one every cycle.
fn report(ctx: &mut Ctx, path: &[u8], errno: &str, text: &str) {
    ctx.sum.errors += 1;
    if ctx.sum.errors != 1 {
        return;
    }
    let key = format!("{} {errno} {text}", String::from_utf8_lossy(path));
    if ctx.memory.last_error == key {
        return;
    }
    ctx.memory.last_error = key;
    ctx.sum.new_error = true;
    let e = ctx
        .log
        .event(Level::Warn, "error")
        .str("what", "cleanup")
        .str("rule", &ctx.rule.name)
        .bytes("path", path);
    let e = if errno.is_empty() {
        e
    } else {
        e.str("errno", errno)
    };
    e.str("error", text).emit();
}
