//! Deleted but open files: the classic full-disk puzzle, where `df` says full and
//! `du` finds nothing, because a process holds a deleted log open. While a
//! watched mount is at `disk_warn` or worse, this looks through every process's
//! `/proc/PID/fd` for regular files on that filesystem with no link left, and
//! logs the largest (`event=deleted_open`, once per file while the mount stays
//! full, at most `TELL_PER_CYCLE` a cycle). With `[disk] truncate_deleted`, a
//! holder whose name it lists (and that the reaper may touch) has such a file
//! truncated to 0 through that very descriptor (`event=cleanup
//! kind=deleted_open`), through `cx.effects`.
//!
//! The look costs a pass over `/proc`, so it is made only while a mount is full,
//! at most once every `RESCAN_NS` (at once when a mount becomes full), and at most
//! `FDS_PER_CYCLE` descriptors a cycle: a longer pass goes on where it stopped in
//! the next cycle. Truncation needs `[paths] proc` to be the agent's own procfs
//! (`ownproc`), so the one link it follows is a kernel's `fd` link; it checks on
//! the opened descriptor that the file is still the same deleted inode.

pub mod decide;

use super::top::decimal;
use super::{Cx, Feature};
use crate::config::Config;
use crate::effects::Outcome;
use crate::error::{errno_name, errno_text};
use crate::features::reaper::guard::protected_pids;
use crate::judge::{Kind, Status};
use crate::log::Level;
use crate::ownproc::OwnProc;
use crate::procfs::parse_u64;
use crate::procfs::pid::parse_pid_status;
use crate::sys::{self, DirStream};
use decide::{Found, Holder, keep, may_truncate, to_tell};
use std::ffi::CString;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A complete pass is made at most this often while a mount stays full.
pub const RESCAN_NS: u64 = 60 * 1_000_000_000;

/// Descriptors examined per cycle, at most.
pub const FDS_PER_CYCLE: u64 = 50_000;

/// Truncations per cycle, at most.
const TRUNCATE_PER_CYCLE: usize = 64;

/// Files remembered per episode of a mount being full, at most.
const TOLD_MAX: usize = 4096;

/// A watched mount at `disk_warn` or worse, and what was done about it since.
struct Episode {
    mount: PathBuf,
    dev: u64,
    /// Files told (`deleted_open`), and files truncated, as (dev, inode).
    told: Vec<(u64, u64)>,
    truncated: Vec<(u64, u64)>,
    /// It became full this cycle: a pass is due at once.
    new: bool,
}

/// One of the largest files found by the last pass, for a status report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    pub mount: PathBuf,
    pub pid: i32,
    pub name: Vec<u8>,
    pub fd: u32,
    pub bytes: u64,
    pub path: Vec<u8>,
}

#[derive(Default)]
pub struct DeletedOpen {
    episodes: Vec<Episode>,
    /// The pid a pass cut short goes on from; `None`: the next pass starts anew.
    resume: Option<i32>,
    /// When the last pass ended (monotonic ns).
    passed_ns: Option<u64>,
    found: Vec<Found>,
    /// Processes whose descriptors could not be read this episode (no right to).
    denied: u64,
    denied_told: bool,
    /// Why `[paths] proc` was refused for truncation, once said.
    refused: Option<String>,
    largest: Vec<Held>,
    path: Vec<u8>,
    buf: Vec<u8>,
}

impl Feature for DeletedOpen {
    fn name(&self) -> &'static str {
        "deleted_open"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        !cx.cfg.disk.mounts.is_empty()
    }

    fn step(&mut self, cx: &mut Cx) {
        self.track(cx);
        if self.episodes.is_empty() {
            return;
        }
        let fresh = self.episodes.iter().any(|e| e.new);
        let now = sys::monotonic_ns();
        let recent = self
            .passed_ns
            .is_some_and(|t| now.saturating_sub(t) < RESCAN_NS);
        if !fresh && self.resume.is_none() && recent {
            return;
        }
        if fresh {
            self.resume = None;
        }
        self.pass(cx);
    }

    /// SIGUSR1: how many watched mounts are full, and a look of its own over
    /// every watched local mount, full or not, listing the largest deleted files
    /// still held open there (one line each; nothing told or truncated).
    fn status(&mut self, cx: &mut Cx) {
        let mut look = DeletedOpen::default();
        for m in &cx.cfg.disk.mounts {
            if cx.mounts.probed_disk(m) {
                continue;
            }
            if let Some(dev) = device(m, &mut look.path) {
                look.episodes.push(Episode {
                    mount: m.clone(),
                    dev,
                    told: Vec::new(),
                    truncated: Vec::new(),
                    new: false,
                });
            }
        }
        if !look.episodes.is_empty() && cx.scan.this_cycle(cx.once).is_ok() {
            look.find(cx);
            look.keep_largest(cx);
        }
        cx.status(self.name())
            .u64("full_mounts", self.episodes.len() as u64)
            .u64("files", look.largest.len() as u64)
            .emit();
        for h in &look.largest {
            cx.log
                .event(Level::Info, "status")
                .str("feature", "deleted_open")
                .path("mount", &h.mount)
                .i64("pid", h.pid as i64)
                .bytes("name", &h.name)
                .u64("fd", h.fd as u64)
                .u64("bytes", h.bytes)
                .bytes("path", &h.path)
                .emit();
        }
    }

    /// A new configuration: its mounts are looked at afresh.
    fn reload(&mut self, _old: &Config, _new: &Config) {
        *self = DeletedOpen::default();
    }
}

impl DeletedOpen {
    /// The largest files the last pass found (at most `TELL_PER_CYCLE`), for a
    /// status report.
    pub fn largest(&self) -> &[Held] {
        &self.largest
    }

    /// Follows which watched mounts are at `disk_warn` or worse: one that gets
    /// there starts an episode (its device read once), one back below ends it
    /// (and what was told of it is forgotten). A mount that could not be read
    /// this cycle stays as it was. Network and FUSE mounts are left out: asking
    /// them could block, and their deleted files keep a name (`.nfsXXXX`).
    fn track(&mut self, cx: &mut Cx) {
        for e in &mut self.episodes {
            e.new = false;
        }
        for m in cx.metrics.iter().filter(|m| m.kind == Kind::Disk) {
            let Some(mount) = m.mount.as_deref() else {
                continue;
            };
            let at = self.episodes.iter().position(|e| e.mount == mount);
            match (m.raw, at) {
                (Status::Ok, Some(i)) => {
                    self.episodes.remove(i);
                }
                (Status::Warning | Status::Critical, None) if !cx.mounts.probed_disk(mount) => {
                    if let Some(dev) = device(mount, &mut self.path) {
                        self.episodes.push(Episode {
                            mount: mount.to_path_buf(),
                            dev,
                            told: Vec::new(),
                            truncated: Vec::new(),
                            new: true,
                        });
                    }
                }
                _ => {}
            }
        }
        if self.episodes.is_empty() {
            self.resume = None;
            self.passed_ns = None;
            self.denied = 0;
            self.denied_told = false;
        }
    }

    /// One pass (or the part of it this cycle's bound allows): find, tell, truncate.
    fn pass(&mut self, cx: &mut Cx) {
        if let Err(e) = cx.scan.this_cycle(cx.once) {
            cx.log.error(Level::Error, "scan", e).emit();
            return;
        }
        self.found.clear();
        self.find(cx);
        self.tell(cx);
        if !cx.cfg.disk.truncate_deleted.is_empty() {
            self.truncate(cx);
        }
        self.keep_largest(cx);
        if self.denied > 0 && !self.denied_told && sys::geteuid() != 0 {
            self.denied_told = true;
            cx.log
                .error(
                    Level::Warn,
                    "deleted_open",
                    format_args!(
                        "cannot look into the descriptors of {} processes of other users",
                        self.denied
                    ),
                )
                .str(
                    "effect",
                    "their deleted but open files are not seen (that needs root or cap_sys_ptrace)",
                )
                .emit();
        }
    }

    /// Looks through the descriptors of this cycle's processes, from where the
    /// last pass stopped, up to `FDS_PER_CYCLE` of them.
    fn find(&mut self, cx: &mut Cx) {
        let scanner = &cx.scan.scanner;
        let Some(dir) = scanner.dir().map(|d| d.as_raw_fd()) else {
            return;
        };
        let procs = scanner.procs();
        let from = self
            .resume
            .map_or(0, |pid| procs.partition_point(|p| p.pid < pid));
        let mut budget = FDS_PER_CYCLE;
        self.resume = None;
        for (i, p) in procs.iter().enumerate().skip(from) {
            if budget == 0 || cx.stopping() {
                self.resume = Some(p.pid);
                break;
            }
            if p.kthread {
                continue;
            }
            budget = budget.saturating_sub(self.look_into(dir, i, p.pid));
        }
        if self.resume.is_none() {
            self.passed_ns = Some(sys::monotonic_ns());
        }
    }

    /// The deleted files on a full mount that process `pid` (the scan's `i`th)
    /// holds open, into `found`. Returns how many descriptors it has.
    fn look_into(&mut self, dir: RawFd, i: usize, pid: i32) -> u64 {
        let mut digits = [0u8; 20];
        let pid_s = decimal(pid as u64, &mut digits);
        let Ok(fds) = sys::cpath(&mut self.path, &[pid_s, b"/fd"]) else {
            return 0;
        };
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK;
        let fd_dir = match sys::openat(dir, fds, flags) {
            Ok(fd) => fd,
            Err(e) => {
                if e.raw_os_error() == Some(libc::EACCES) {
                    self.denied += 1;
                }
                return 0;
            }
        };
        let mut stream = DirStream::new(fd_dir);
        let (mut n, mut denied) = (0, false);
        while let Ok(Some(name)) = stream.next_name() {
            n += 1;
            let (Some(fd), Ok(cname)) = (parse_u64(name), CString::new(name)) else {
                continue;
            };
            // Following a descriptor's link takes the right to trace its process.
            let st = match sys::fstatat(stream.fd(), &cname) {
                Ok(st) => st,
                Err(e) => {
                    denied |= e.raw_os_error() == Some(libc::EACCES);
                    continue;
                }
            };
            let deleted = st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_nlink == 0;
            let on = self.episodes.iter().position(|e| e.dev == st.st_dev);
            if let (true, Some(mount)) = (deleted, on) {
                let f = Found {
                    pid,
                    fd: fd as u32,
                    dev: st.st_dev,
                    ino: st.st_ino,
                    bytes: (st.st_blocks as u64).saturating_mul(512),
                    mount,
                    proc: i,
                };
                keep(&mut self.found, f);
            }
        }
        self.denied += u64::from(denied);
        n
    }

    /// `deleted_open` for the largest files not told yet in their episode.
    fn tell(&mut self, cx: &mut Cx) {
        let told: Vec<(u64, u64)> = self
            .episodes
            .iter()
            .flat_map(|e| e.told.iter().copied())
            .collect();
        for f in to_tell(&mut self.found, &told) {
            let scanner = &cx.scan.scanner;
            let name = scanner.name(scanner.get(f.proc)).to_vec();
            let uid = self.owner(cx, f.pid);
            let path = self.target(cx, &f);
            let e = &mut self.episodes[f.mount];
            if e.told.len() < TOLD_MAX {
                e.told.push(f.file());
            }
            let mut line = cx
                .log
                .event(Level::Warn, "deleted_open")
                .path("mount", &e.mount)
                .i64("pid", f.pid as i64)
                .bytes("name", &name);
            line = match (uid, uid.and_then(|u| cx.users.name(u))) {
                (_, Some(user)) => line.str("user", user),
                (Some(uid), None) => line.u64("user", uid as u64),
                (None, None) => line,
            };
            line.u64("fd", f.fd as u64)
                .u64("bytes", f.bytes)
                .bytes("path", &path)
                .emit();
        }
    }

    /// Truncates the files whose holders `[disk] truncate_deleted` names (each once
    /// per episode), when `[paths] proc` is proven the agent's own.
    fn truncate(&mut self, cx: &mut Cx) {
        let Some(own) = self.own_proc(cx) else {
            return;
        };
        let procs = cx.scan.scanner.procs();
        let protected = protected_pids(procs, sys::getpid());
        let (allowed, protect) = (&cx.cfg.disk.truncate_deleted, &cx.cfg.reaper.protect);
        let mut done = 0;
        let found = std::mem::take(&mut self.found);
        for f in &found {
            if done == TRUNCATE_PER_CYCLE {
                break;
            }
            let scanner = &cx.scan.scanner;
            let p = scanner.get(f.proc);
            let holder = Holder {
                pid: f.pid,
                name: scanner.name(p),
                kthread: p.kthread,
            };
            let e = &self.episodes[f.mount];
            if f.bytes == 0
                || e.truncated.contains(&f.file())
                || !may_truncate(holder, allowed, protect, &protected)
            {
                continue;
            }
            done += 1;
            let name = holder.name.to_vec();
            self.truncate_one(cx, &own, f, &name);
        }
        self.found = found;
    }

    /// Truncates one file through its holder's descriptor, and says so.
    fn truncate_one(&mut self, cx: &mut Cx, own: &OwnProc, f: &Found, name: &[u8]) {
        let path = self.target(cx, f);
        let mut digits = [0u8; 20];
        let mut fd_digits = [0u8; 20];
        let pid_s = decimal(f.pid as u64, &mut digits);
        let fd_s = decimal(f.fd as u64, &mut fd_digits);
        let link = sys::cpath(&mut self.path, &[pid_s, b"/fd/", fd_s]).map(|c| c.to_owned());
        let Ok(link) = link else { return };
        let same = &mut |st: &libc::stat| {
            st.st_mode & libc::S_IFMT == libc::S_IFREG
                && st.st_nlink == 0
                && (st.st_dev, st.st_ino) == f.file()
        };
        let e = &mut self.episodes[f.mount];
        e.truncated.push(f.file());
        match cx.effects.truncate(own.fd(), &link, same, &path) {
            Ok(outcome) => {
                cx.log
                    .event(Level::Info, "cleanup")
                    .str("kind", "deleted_open")
                    .path("mount", &e.mount)
                    .i64("pid", f.pid as i64)
                    .bytes("name", name)
                    .u64("fd", f.fd as u64)
                    .u64("bytes", f.bytes)
                    .bytes("path", &path)
                    .opt(
                        "dry_run",
                        matches!(outcome, Outcome::DryRun).then_some("yes"),
                    )
                    .emit();
            }
            // The process exited or closed it meanwhile: nothing to do.
            Err(err) if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)) => {}
            Err(err) => {
                let why = match err.raw_os_error() {
                    Some(libc::ESTALE) => {
                        "it is no longer the deleted file that was found".to_string()
                    }
                    _ => errno_text(&err),
                };
                cx.log
                    .error(Level::Warn, "deleted_open", &why)
                    .str("errno", &errno_name(&err))
                    .i64("pid", f.pid as i64)
                    .u64("fd", f.fd as u64)
                    .bytes("path", &path)
                    .str("effect", "not truncated")
                    .emit();
            }
        }
    }

    /// The proof that the scan's directory is the agent's own procfs; without it
    /// nothing is truncated, and that is said once.
    fn own_proc(&mut self, cx: &mut Cx) -> Option<OwnProc> {
        let effect = "nothing is truncated";
        crate::features::own_proc(cx, "deleted_open", effect, &mut self.refused, &mut self.buf)
    }

    /// The real uid of `pid`, from its status (`None` once it exited).
    fn owner(&mut self, cx: &Cx, pid: i32) -> Option<u32> {
        let dir = cx.scan.scanner.dir()?.as_raw_fd();
        let mut digits = [0u8; 20];
        let pid_s = decimal(pid as u64, &mut digits);
        let path = sys::cpath(&mut self.path, &[pid_s, b"/status"]).ok()?;
        let fd = sys::openat(dir, path, libc::O_RDONLY | libc::O_NONBLOCK).ok()?;
        sys::read_all(fd.as_raw_fd(), &mut self.buf).ok()?;
        parse_pid_status(&self.buf).ok().map(|s| s.uid[0])
    }

    /// Where the file was (the `fd` link's target, without ` (deleted)`).
    fn target(&mut self, cx: &Cx, f: &Found) -> Vec<u8> {
        let mut digits = [0u8; 20];
        let mut fd_digits = [0u8; 20];
        let pid_s = decimal(f.pid as u64, &mut digits);
        let fd_s = decimal(f.fd as u64, &mut fd_digits);
        let mut link = [0u8; 4096];
        let dir = cx.scan.scanner.dir().map(|d| d.as_raw_fd());
        let target = dir.and_then(|dir| {
            let name = sys::cpath(&mut self.path, &[pid_s, b"/fd/", fd_s]).ok()?;
            sys::readlinkat(dir, name, &mut link).ok()
        });
        let t = target.unwrap_or_default();
        t.strip_suffix(b" (deleted)").unwrap_or(t).to_vec()
    }

    /// Keeps the largest files of this pass for a status report.
    fn keep_largest(&mut self, cx: &mut Cx) {
        self.largest.clear();
        let mut found = std::mem::take(&mut self.found);
        for f in to_tell(&mut found, &[]) {
            let scanner = &cx.scan.scanner;
            let name = scanner.name(scanner.get(f.proc)).to_vec();
            let path = self.target(cx, &f);
            self.largest.push(Held {
                mount: self.episodes[f.mount].mount.clone(),
                pid: f.pid,
                name,
                fd: f.fd,
                bytes: f.bytes,
                path,
            });
        }
        self.found = found;
    }
}

/// The device of a watched mount (`stat`, following a final symlink as the
/// mount's own reading does).
fn device(mount: &Path, buf: &mut Vec<u8>) -> Option<u64> {
    let c = sys::cpath(buf, &[mount.as_os_str().as_bytes()]).ok()?;
    sys::fstatat(libc::AT_FDCWD, c).ok().map(|st| st.st_dev)
}

#[cfg(test)]
mod tests;
