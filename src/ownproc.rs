//! Proof that `[paths] proc` is the agent's own procfs, before the reaper may signal.
//!
//! The reaper decides from `<proc>/PID/*` and then signals that pid number in the
//! agent's own PID namespace. Read anywhere else, the same number names another
//! process: a plain directory can say anything (a real root process described as
//! `nobody`'s `victimproc`), and another namespace's procfs numbers its processes its
//! own way. So a signal needs a directory that is a procfs (`fstatfs` type
//! `PROC_SUPER_MAGIC`; only the kernel makes one) whose `self` is the agent, and in
//! which the agent has exactly one pid (`NSpid`): the procfs of its own namespace.
//! The checks run on an open descriptor and the proof is a duplicate of it, so the
//! path cannot be swapped between the proof and the reads a signal relies on.

use crate::error::errno_text;
use crate::procfs::parse_u64;
use crate::procfs::pid::{nspid_levels, parse_pid_stat};
use crate::sys;
use std::fmt;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

/// `f_type` of a procfs (`PROC_SUPER_MAGIC` in `linux/magic.h`).
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// A directory proven to be the agent's own procfs. Only `prove` makes one, and
/// every read the reaper bases a signal on goes through it.
#[derive(Debug)]
pub struct OwnProc {
    fd: OwnedFd,
}

impl OwnProc {
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The start time of `pid` now, read through this proven procfs, and whether
    /// it is a zombie; `None` when it is gone (or cannot be read).
    pub fn start_time(&self, pid: i32) -> Option<(u64, bool)> {
        let mut path = Vec::with_capacity(24);
        let c = sys::cpath(&mut path, &[pid.to_string().as_bytes(), b"/stat"]).ok()?;
        let mut bytes = Vec::new();
        sys::read_at(self.fd(), c, &mut bytes).ok()?;
        parse_pid_stat(&bytes)
            .ok()
            .map(|s| (s.starttime, s.is_zombie()))
    }
}

/// Why a directory is not the agent's own procfs.
#[derive(Debug)]
pub enum Refusal {
    Statfs(io::Error),
    NotProcfs(i64),
    /// No readable `self`: the agent is not in the procfs's PID namespace.
    NoSelf(io::Error),
    /// `self` names another pid (the agent's pid in that namespace), or no pid.
    OtherSelf {
        named: Option<u64>,
        agent: i32,
    },
    Status(io::Error),
    /// The agent has a pid in this many namespaces from the procfs's down to its own.
    Ancestor(usize),
    Dup(io::Error),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not the agent's own procfs: ")?;
        match self {
            Refusal::Statfs(e) => write!(f, "cannot statfs it: {}", errno_text(e)),
            Refusal::NotProcfs(t) => {
                write!(f, "not a procfs (filesystem type {:#x})", *t as u64)
            }
            Refusal::NoSelf(e) => write!(
                f,
                "no self link ({}): another PID namespace's procfs",
                errno_text(e)
            ),
            Refusal::OtherSelf {
                named: Some(n),
                agent,
            } => write!(
                f,
                "its self is pid {n}, the agent is {agent}: another PID namespace's procfs"
            ),
            Refusal::OtherSelf { named: None, .. } => f.write_str("its self link names no pid"),
            Refusal::Status(e) => write!(f, "cannot read self/status: {}", errno_text(e)),
            Refusal::Ancestor(n) => write!(
                f,
                "the agent has pids in {n} PID namespaces from it: an ancestor PID namespace's procfs"
            ),
            Refusal::Dup(e) => write!(f, "cannot duplicate its descriptor: {}", errno_text(e)),
        }
    }
}

/// What the proof looks at, read from the directory.
pub struct Evidence<'a> {
    pub fs_type: i64,
    /// The target of `self`.
    pub self_link: io::Result<&'a [u8]>,
    /// `nspid_levels` of `self/status` (read only when `self` is the agent).
    pub nspid: Option<usize>,
}

/// The verdict on the evidence (pure): the checks in order, the first failing one
/// is the reason.
pub fn judge(ev: Evidence<'_>, agent: i32) -> Result<(), Refusal> {
    if ev.fs_type != PROC_SUPER_MAGIC {
        return Err(Refusal::NotProcfs(ev.fs_type));
    }
    let named = ev.self_link.map_err(Refusal::NoSelf).map(parse_u64)?;
    if named != u64::try_from(agent).ok() {
        return Err(Refusal::OtherSelf { named, agent });
    }
    match ev.nspid {
        Some(n) if n != 1 => Err(Refusal::Ancestor(n)),
        _ => Ok(()),
    }
}

/// Proves that the open directory `dir` is the procfs of the agent's (`agent` is its
/// pid) own PID namespace; `buf` is scratch space for `self/status`.
pub fn prove(dir: BorrowedFd<'_>, agent: i32, buf: &mut Vec<u8>) -> Result<OwnProc, Refusal> {
    let dir = dir.as_raw_fd();
    let fs_type = sys::fstatfs_type(dir).map_err(Refusal::Statfs)?;
    if fs_type != PROC_SUPER_MAGIC {
        // Nothing in a directory that anyone may have written is read.
        return Err(Refusal::NotProcfs(fs_type));
    }
    let mut link = [0u8; 32];
    let self_link = sys::readlinkat(dir, c"self", &mut link);
    let agent_self = self_link
        .as_ref()
        .is_ok_and(|l| parse_u64(l) == u64::try_from(agent).ok());
    let nspid = if agent_self {
        sys::read_at(dir, c"self/status", buf).map_err(Refusal::Status)?;
        nspid_levels(buf)
    } else {
        None
    };
    judge(
        Evidence {
            fs_type,
            self_link,
            nspid,
        },
        agent,
    )?;
    let fd = sys::dup(dir).map_err(Refusal::Dup)?;
    Ok(OwnProc { fd })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::os::fd::AsFd;
    use std::os::unix::ffi::OsStrExt;

    fn ev(fs_type: i64, link: &[u8], nspid: Option<usize>) -> Evidence<'_> {
        Evidence {
            fs_type,
            self_link: Ok(link),
            nspid,
        }
    }

    fn why(r: Result<(), Refusal>) -> String {
        r.err().map(|e| e.to_string()).unwrap_or_default()
    }

    #[test]
    fn only_the_procfs_of_the_agents_own_namespace_passes() {
        assert!(judge(ev(PROC_SUPER_MAGIC, b"42", Some(1)), 42).is_ok());
        // A kernel without PID namespaces has no NSpid line (and one namespace).
        assert!(judge(ev(PROC_SUPER_MAGIC, b"42", None), 42).is_ok());
        assert_eq!(
            why(judge(ev(0xef53, b"42", Some(1)), 42)),
            "not the agent's own procfs: not a procfs (filesystem type 0xef53)"
        );
        assert_eq!(
            why(judge(ev(PROC_SUPER_MAGIC, b"4242", Some(2)), 42)),
            "not the agent's own procfs: its self is pid 4242, the agent is 42: another PID namespace's procfs"
        );
        assert_eq!(
            why(judge(ev(PROC_SUPER_MAGIC, b"x", None), 42)),
            "not the agent's own procfs: its self link names no pid"
        );
        // The agent's pid there happens to equal its own: NSpid tells.
        assert_eq!(
            why(judge(ev(PROC_SUPER_MAGIC, b"42", Some(2)), 42)),
            "not the agent's own procfs: the agent has pids in 2 PID namespaces from it: an ancestor PID namespace's procfs"
        );
        let gone = Evidence {
            fs_type: PROC_SUPER_MAGIC,
            self_link: Err(io::Error::from_raw_os_error(libc::ENOENT)),
            nspid: None,
        };
        assert_eq!(
            why(judge(gone, 42)),
            "not the agent's own procfs: no self link (No such file or directory): another PID namespace's procfs"
        );
    }

    #[test]
    fn nspid_counts_the_namespaces_from_the_procfs_down() {
        let status = b"Name:\tsleep\nNStgid:\t27062\t1\nNSpid:\t27062\t1\nNSpgid:\t27062\t1\n";
        assert_eq!(nspid_levels(status), Some(2));
        assert_eq!(nspid_levels(b"Name:\tsleep\nNSpid:\t1\n"), Some(1));
        assert_eq!(nspid_levels(b"Name:\tsleep\nPid:\t1\n"), None);
    }

    fn prove_path(path: &std::path::Path) -> Result<OwnProc, Refusal> {
        let c = CString::new(path.as_os_str().as_bytes()).expect("path without NUL");
        let dir = sys::open(&c, libc::O_RDONLY | libc::O_DIRECTORY, 0).expect("open dir");
        prove(dir.as_fd(), sys::getpid(), &mut Vec::new())
    }

    #[test]
    fn this_processes_proc_is_proven_and_a_lookalike_directory_is_not() {
        assert!(prove_path(std::path::Path::new("/proc")).is_ok());
        // Inside procfs, but not its root: no `self` there.
        let sys_dir = prove_path(std::path::Path::new("/proc/sys")).err();
        assert!(matches!(sys_dir, Some(Refusal::NoSelf(_))), "{sys_dir:?}");
        // A directory with a `self` link naming this process.
        let t = std::env::temp_dir().join(format!("sa-unit-ownproc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&t);
        std::fs::create_dir_all(&t).expect("temp dir");
        std::os::unix::fs::symlink(sys::getpid().to_string(), t.join("self")).expect("link");
        let fake = prove_path(&t).err();
        let _ = std::fs::remove_dir_all(&t);
        assert!(matches!(fake, Some(Refusal::NotProcfs(_))), "{fake:?}");
    }
}
