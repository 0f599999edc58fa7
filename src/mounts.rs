//! Watched filesystems, asked in a way that a hung one never stalls the loop.
//!
//! `statvfs` on a dead NFS or CIFS server or on a stopped FUSE daemon blocks until
//! it answers, perhaps forever and uninterruptibly, and in a single-threaded agent
//! sampling, cleanup, the reaper and alerts would all stall with it. So a mount of a
//! network or FUSE type (`HUNG_PRONE`, the type read from `<proc>/self/mountinfo`),
//! or any mount whose `statvfs` once took longer than `PROBE_DEADLINE`, is asked by
//! a forked prober child (`sys::statvfs_in_child`). The cycle waits for the answer
//! on a pipe up to the deadline; past it, the mount reads as unknown this cycle and
//! the child gets SIGKILL, which ends it as soon as the call returns. The child is
//! never waited for: it is reaped with `WNOHANG` in a later cycle, and until then no
//! second prober is started for that mount, so a mount that stays hung costs one
//! stuck child, not one per cycle. Local mounts are asked directly, as before: no
//! fork, no allocation.
//!
//! Cleanup asks here too (`check`) before it enters a rule's path: opening a
//! directory on a hung mount blocks just the same.

use crate::config::value::fmt_duration;
use crate::error::{Error, errno_text};
use crate::log::{Level, Logger};
use crate::procfs::mountinfo::mount_holding;
use crate::reading::DiskReading;
use crate::sample::DiskUsage;
use crate::sys::{self, FsStats, ProbeReply};
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long a cycle waits for probers to answer (all of one cycle wait together,
/// so several hung mounts cost this once). Well inside the default 10 s interval
/// and the 2 s in which the service must stop; a shorter interval makes a cycle
/// with a hung mount this long, and the loop skips the slots it overran.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(1);

/// Filesystem types whose calls wait on a server or a userspace daemon, and so
/// block for as long as that is gone: network and cluster filesystems, FUSE (each
/// `fuse.NAME` subtype too: sshfs, s3fs, rclone, gvfs...), hypervisor shares, and
/// autofs (asking it mounts what it stands for, often over the network).
const HUNG_PRONE: [&str; 30] = [
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "smb",
    "ncpfs",
    "ncp",
    "fuse",
    "fuseblk",
    "sshfs",
    "9p",
    "ceph",
    "glusterfs",
    "afs",
    "davfs",
    "coda",
    "lustre",
    "gpfs",
    "ocfs2",
    "gfs2",
    "beegfs",
    "orangefs",
    "pvfs2",
    "cvmfs",
    "virtiofs",
    "vboxsf",
    "vmhgfs",
    "prl_fs",
    "autofs",
];

/// Whether a filesystem type is one whose calls may hang (`HUNG_PRONE`).
pub fn hung_prone(fstype: &[u8]) -> bool {
    fstype.starts_with(b"fuse.") || HUNG_PRONE.iter().any(|t| t.as_bytes() == fstype)
}

/// What a probed mount said this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    Stats(FsStats),
    /// `statvfs` failed with this errno: the mount answered, with an error.
    Failed(i32),
    /// No prober could be started (the fork failed with this errno).
    NoProber(i32),
    /// The prober died without answering.
    Silent,
    /// No answer within the deadline, or the previous prober is still stuck.
    Hung,
}

/// A prober child that has not been reaped.
struct Prober {
    pid: libc::pid_t,
    reply: OwnedFd,
    deadline_ns: u64,
    /// Past its deadline: sent SIGKILL, waiting to be reaped.
    killed: bool,
}

/// One mount holding watched paths.
struct Mount {
    /// The mount point, or the watched path itself when the mount table is unknown.
    point: PathBuf,
    /// Its type from mountinfo (empty when unknown).
    fstype: String,
    /// A direct `statvfs` here once took longer than `PROBE_DEADLINE`.
    slow: bool,
    /// What a prober asks about: the first watched path on this mount.
    target: CString,
    prober: Option<Prober>,
    /// This cycle's answer, when `asked` is this cycle.
    answer: Answer,
    asked: u64,
}

impl Mount {
    /// Asked through a prober rather than directly.
    fn probed(&self) -> bool {
        self.slow || hung_prone(self.fstype.as_bytes())
    }

    /// `no answer within 1s from the fuse mount` (`... at /mnt/x` when `path`, the
    /// watched path, is below the mount point).
    fn no_answer(&self, path: &Path) -> String {
        let mut s = format!(
            "no answer within {} from the ",
            fmt_duration(PROBE_DEADLINE)
        );
        if !self.fstype.is_empty() {
            s.push_str(&self.fstype);
            s.push(' ');
        }
        s.push_str("mount");
        if self.point != path {
            s.push_str(" at ");
            s.push_str(&self.point.to_string_lossy());
        }
        s
    }
}

/// A watched path and the mount that holds it.
struct Watched {
    path: PathBuf,
    c: CString,
    mount: usize,
}

impl Watched {
    fn new(p: &Path) -> Watched {
        Watched {
            path: p.to_path_buf(),
            c: CString::new(p.as_os_str().as_bytes()).unwrap_or_default(),
            mount: 0,
        }
    }
}

/// Whether cleanup may enter a path this cycle.
#[derive(Debug, PartialEq, Eq)]
pub enum Check {
    /// On a local mount: go ahead (and ask it directly).
    Local,
    /// A probed mount answered (with its figures, or with an error).
    Answered(Option<FsStats>),
    /// A probed mount did not answer: stay out; why.
    Hung(String),
}

/// Every watched path (`[disk] mounts`, cleanup paths) by mount, with the probers.
pub struct Mounts {
    table_path: PathBuf,
    /// `<proc>/self/mountinfo`, kept open: re-read when the kernel says the mount
    /// table changed (a network filesystem mounted over a watched path later).
    table: Option<OwnedFd>,
    buf: Vec<u8>,
    mounts: Vec<Mount>,
    /// `[disk] mounts`, in config order.
    disks: Vec<Watched>,
    /// Cleanup rule paths.
    paths: Vec<Watched>,
    /// Probers that answered, or whose mount is no longer watched: reaped as they
    /// end, never waited for.
    reaping: Vec<libc::pid_t>,
    pfds: Vec<libc::pollfd>,
    cycle: u64,
}

impl Default for Mounts {
    fn default() -> Self {
        Mounts {
            table_path: PathBuf::new(),
            table: None,
            buf: Vec::new(),
            mounts: Vec::new(),
            disks: Vec::new(),
            paths: Vec::new(),
            reaping: Vec::new(),
            pfds: Vec::new(),
            cycle: 1,
        }
    }
}

impl Mounts {
    /// Reads the mount table and finds the mount of every watched path (at start
    /// and on reload; a prober still stuck stays with its mount). Returns why the
    /// mount table could not be read, when there is something to watch: then
    /// mounts are asked directly until one is slow.
    pub fn configure(
        &mut self,
        proc_root: &Path,
        disks: &[PathBuf],
        paths: &[&Path],
    ) -> Option<String> {
        let table_path = proc_root.join("self/mountinfo");
        if table_path != self.table_path {
            self.table = None;
            self.table_path = table_path;
        }
        let mut problem = None;
        if self.table.is_none() {
            let opened = CString::new(self.table_path.as_os_str().as_bytes())
                .map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))
                .and_then(|c| sys::open(&c, libc::O_RDONLY | libc::O_NONBLOCK, 0));
            match opened {
                Ok(fd) => self.table = Some(fd),
                Err(e) => problem = Some(Error::io("open", &self.table_path, e)),
            }
        }
        self.buf.clear();
        if let Some(fd) = &self.table
            && let Err(e) = sys::pread_all(fd.as_raw_fd(), &mut self.buf)
        {
            problem = Some(Error::io("read", &self.table_path, e));
            self.buf.clear();
        }
        self.disks = disks.iter().map(|p| Watched::new(p)).collect();
        self.paths = paths.iter().map(|p| Watched::new(p)).collect();
        self.classify();
        let watching = !self.disks.is_empty() || !self.paths.is_empty();
        problem.filter(|_| watching).map(|e| e.to_string())
    }

    /// Finds each watched path's mount in `buf`, keeping what is known of mounts
    /// that stay (a stuck prober, a slow past).
    fn classify(&mut self) {
        let mut old = std::mem::take(&mut self.mounts);
        for w in self.disks.iter_mut().chain(self.paths.iter_mut()) {
            w.mount = find_or_add(&mut self.mounts, &mut old, &self.buf, &w.path, &w.c);
        }
        for m in old {
            if let Some(p) = m.prober {
                sys::kill_child(p.pid, libc::SIGKILL);
                self.reaping.push(p.pid);
            }
        }
    }

    /// One cycle's disk readings into `out`, each found by its mount among the
    /// `[disk] mounts` given to `configure` (one not given is "not watched").
    /// Probed mounts are asked all at once and waited for together; `stop`
    /// (SIGTERM) ends the wait early. A direct `statvfs` that takes longer than
    /// `PROBE_DEADLINE` is logged, and that mount is probed from then on.
    pub fn sample(&mut self, out: &mut [DiskReading], log: &mut Logger, stop: &dyn Fn() -> bool) {
        self.cycle += 1;
        self.reap();
        self.refresh();
        let mut probing = false;
        for i in 0..self.disks.len() {
            let m = self.disks[i].mount;
            if self.mounts[m].probed() {
                self.ask(m);
                probing = true;
            }
        }
        if probing {
            self.wait(stop);
        }
        for d in out {
            d.usage = match self.disks.iter().position(|w| w.path == d.mount) {
                Some(i) => self.disk(i, log),
                None => Err(Error::io(
                    "statvfs",
                    &d.mount,
                    io::Error::other("not watched"),
                )),
            };
        }
    }

    fn disk(&mut self, i: usize, log: &mut Logger) -> Result<DiskUsage, Error> {
        let w = &self.disks[i];
        let mount = &mut self.mounts[w.mount];
        if mount.probed() && mount.asked == self.cycle {
            let err = match mount.answer {
                Answer::Stats(s) => return Ok(DiskUsage::from_stats(&s)),
                Answer::Failed(e) => io::Error::from_raw_os_error(e),
                Answer::NoProber(e) => io::Error::other(format!(
                    "cannot start a prober: {}",
                    errno_text(&io::Error::from_raw_os_error(e))
                )),
                Answer::Silent => io::Error::other("the prober ended without an answer"),
                Answer::Hung => io::Error::new(io::ErrorKind::TimedOut, mount.no_answer(&w.path)),
            };
            return Err(Error::io("statvfs", &w.path, err));
        }
        let t0 = sys::monotonic_ns();
        let r = sys::statvfs(&w.c);
        let took = sys::monotonic_ns().saturating_sub(t0);
        if took >= PROBE_DEADLINE.as_nanos() as u64 {
            mount.slow = true;
            log.error(
                Level::Warn,
                "mounts",
                format_args!("statvfs took {:.1}s", took as f64 / 1e9),
            )
            .path("path", &w.path)
            .str("effect", "asked in a child process from now on")
            .emit();
        }
        r.map(|s| DiskUsage::from_stats(&s))
            .map_err(|e| Error::io("statvfs", &w.path, e))
    }

    /// Whether cleanup may enter `path` (one of the cleanup paths given to
    /// `configure`) this cycle: a probed mount is asked now unless it was this
    /// cycle already, and waited for up to the deadline.
    pub fn check(&mut self, path: &Path, stop: &dyn Fn() -> bool) -> Check {
        let Some(m) = self.paths.iter().find(|w| w.path == path).map(|w| w.mount) else {
            return Check::Local;
        };
        if !self.mounts[m].probed() {
            return Check::Local;
        }
        self.ask(m);
        self.wait(stop);
        let mount = &self.mounts[m];
        match mount.answer {
            Answer::Stats(s) => Check::Answered(Some(s)),
            Answer::Hung => Check::Hung(mount.no_answer(path) + "; not entered this cycle"),
            _ => Check::Answered(None),
        }
    }

    /// The first watched mount (`[disk] mounts`) on the same mount as `path` (a
    /// cleanup path given to `configure`): whose forecast tells how fast `path`'s
    /// filesystem fills.
    pub fn disk_on_same_mount(&self, path: &Path) -> Option<&Path> {
        let m = self.paths.iter().find(|w| w.path == path)?.mount;
        self.disks
            .iter()
            .find(|d| d.mount == m)
            .map(|d| d.path.as_path())
    }

    /// Whether the watched mount `path` (of `[disk] mounts`) is asked through a
    /// prober (a network or FUSE mount, or one that was once slow): what could
    /// block is not asked anything else.
    pub fn probed_disk(&self, path: &Path) -> bool {
        self.disks
            .iter()
            .find(|d| d.path == path)
            .is_some_and(|d| self.mounts[d.mount].probed())
    }

    /// At exit: reaps the probers that have ended, and waits for none (a child
    /// stuck in the kernel cannot be; it has had SIGKILL and dies when its call
    /// returns, reaped by whoever inherits it).
    pub fn finish(&mut self) {
        self.reap();
    }

    /// Starts a prober for mount `m`, once per cycle; while the previous one is
    /// stuck, the mount is hung and no other is started.
    fn ask(&mut self, m: usize) {
        let mount = &mut self.mounts[m];
        if mount.asked == self.cycle {
            return;
        }
        mount.asked = self.cycle;
        mount.answer = Answer::Hung;
        if mount.prober.is_some() {
            return;
        }
        match sys::statvfs_in_child(&mount.target) {
            Ok((pid, reply)) => {
                mount.prober = Some(Prober {
                    pid,
                    reply,
                    deadline_ns: sys::monotonic_ns() + PROBE_DEADLINE.as_nanos() as u64,
                    killed: false,
                });
            }
            Err(e) => mount.answer = Answer::NoProber(e.raw_os_error().unwrap_or(0)),
        }
    }

    /// Collects the answers of the probers started this cycle, polling their
    /// pipes until each has answered or passed its deadline (then it gets SIGKILL
    /// and stays, unreaped, with its mount).
    fn wait(&mut self, stop: &dyn Fn() -> bool) {
        loop {
            let now = sys::monotonic_ns();
            let stopping = stop();
            let mut until = u64::MAX;
            self.pfds.clear();
            for mount in &mut self.mounts {
                let Some(p) = mount.prober.as_mut().filter(|p| !p.killed) else {
                    continue;
                };
                let reply = sys::probe_reply(p.reply.as_raw_fd());
                if reply == ProbeReply::Pending {
                    if now >= p.deadline_ns || stopping {
                        sys::kill_child(p.pid, libc::SIGKILL);
                        p.killed = true;
                    } else {
                        until = until.min(p.deadline_ns);
                        self.pfds.push(libc::pollfd {
                            fd: p.reply.as_raw_fd(),
                            events: libc::POLLIN,
                            revents: 0,
                        });
                    }
                    continue;
                }
                mount.answer = match reply {
                    ProbeReply::Stats(s) => Answer::Stats(s),
                    ProbeReply::Failed(e) => Answer::Failed(e),
                    _ => Answer::Silent,
                };
                self.reaping.push(p.pid);
                mount.prober = None;
            }
            if self.pfds.is_empty() {
                break;
            }
            let ms = until.saturating_sub(now).div_ceil(1_000_000);
            sys::poll(&mut self.pfds, ms.min(i32::MAX as u64) as i32);
        }
        self.reap();
    }

    /// Reaps, without waiting, every prober that has ended.
    fn reap(&mut self) {
        self.reaping.retain(|&pid| !sys::reap_nohang(pid));
        for m in &mut self.mounts {
            if m.prober
                .as_ref()
                .is_some_and(|p| p.killed && sys::reap_nohang(p.pid))
            {
                m.prober = None;
            }
        }
    }

    /// Re-reads the mount table when the kernel says it changed.
    fn refresh(&mut self) {
        let Some(fd) = &self.table else { return };
        if sys::mount_table_changed(fd.as_raw_fd())
            && sys::pread_all(fd.as_raw_fd(), &mut self.buf).is_ok()
        {
            self.classify();
        }
    }
}

/// The index in `mounts` of the mount holding `path` (per `table`, mountinfo's
/// text, empty when unknown), added if new, with what `old` knew of it.
fn find_or_add(
    mounts: &mut Vec<Mount>,
    old: &mut Vec<Mount>,
    table: &[u8],
    path: &Path,
    c: &CString,
) -> usize {
    // Without empty or `.` components or a trailing slash, as mountinfo has them.
    let norm: PathBuf = path.components().collect();
    let (point, fstype) = match mount_holding(table, norm.as_os_str().as_bytes()) {
        Some(line) => (
            PathBuf::from(OsString::from_vec(line.point.decoded())),
            String::from_utf8_lossy(&line.fstype.decoded()).into_owned(),
        ),
        None => (norm, String::new()),
    };
    if let Some(i) = mounts.iter().position(|m| m.point == point) {
        return i;
    }
    let was = old
        .iter()
        .position(|m| m.point == point && m.fstype == fstype)
        .map(|i| old.swap_remove(i));
    let (slow, prober) = match was {
        Some(m) => (m.slow, m.prober),
        None => (false, None),
    };
    mounts.push(Mount {
        point,
        fstype,
        slow,
        target: c.clone(),
        prober,
        answer: Answer::Hung,
        asked: 0,
    });
    mounts.len() - 1
}

#[cfg(test)]
mod tests;
