//! The one place the agent changes the host: it signals processes, removes files,
//! truncates deleted files a process still holds open, and starts children
//! (tasks, the mailer, the alert command; a mail is a spawn).
//! Features decide, ask an `Effects`, and log from the `Outcome`: `Done` with
//! what the kernel gave back, or `DryRun` when it was only recorded. So dry run
//! is decided here and nowhere else: `Real` acts, `DryRun` keeps a list of what
//! it was asked (`Action`), which is also how a test asks "what would this rule
//! remove, kill or run" against a fixture without acting.

use crate::child::{Child, Spec};
use crate::ownproc::OwnProc;
use crate::sys;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// What became of an action.
#[derive(Debug)]
pub enum Outcome<T> {
    /// Carried out; the kernel's answer.
    Done(T),
    /// A dry run: decided and recorded, not carried out.
    DryRun,
}

impl<T> Outcome<T> {
    /// For the `dry_run=yes` field of the line that reports it.
    pub fn dry_run(&self) -> bool {
        matches!(self, Outcome::DryRun)
    }
}

/// Why a signal was not sent.
#[derive(Debug)]
pub enum NotSent {
    /// The process is gone: nothing to do, nothing to report.
    Gone,
    /// The pid names another process now (another start time).
    Reused,
    /// The kernel refused (`EPERM` without `cap_kill`, ...).
    Failed(io::Error),
}

impl From<io::Error> for NotSent {
    fn from(e: io::Error) -> NotSent {
        if e.raw_os_error() == Some(libc::ESRCH) {
            NotSent::Gone
        } else {
            NotSent::Failed(e)
        }
    }
}

/// The process a signal is meant for, and how it is known to be that one still.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// The process `pid` that started at `start` (clock ticks after boot), as
    /// `own`, the agent's own procfs (proven: see `ownproc`), shows it.
    Started {
        own: &'a OwnProc,
        pid: i32,
        start: u64,
    },
    /// The process a pidfd kept from an earlier signal names (for good).
    Pinned { pidfd: &'a OwnedFd, pid: i32 },
}

impl Target<'_> {
    pub fn pid(&self) -> i32 {
        match *self {
            Target::Started { pid, .. } | Target::Pinned { pid, .. } => pid,
        }
    }
}

pub trait Effects {
    /// Sends `sig` to `to`, and only to it: a `Started` target gets a pidfd
    /// first, then its start time is read again through the proven procfs (the
    /// pidfd pins the pid, so it cannot be reused between that check and the
    /// signal), then the signal goes through the pidfd; a reused pid is
    /// `NotSent::Reused`. Gives back the pidfd, to keep for an escalation (none
    /// for a `Pinned` target, nor on kernels without pidfds, where the check is
    /// followed by `kill`).
    fn signal(&mut self, to: Target, sig: i32) -> Result<Outcome<Option<OwnedFd>>, NotSent>;

    /// Removes `name` from the directory `dir` holds (`unlinkat`; `flags`
    /// `AT_REMOVEDIR` for a directory). `path` names it in the record.
    fn unlink(
        &mut self,
        dir: RawFd,
        name: &CStr,
        flags: libc::c_int,
        path: &[u8],
    ) -> io::Result<Outcome<()>>;

    /// Truncates to 0 the file that `name` in the directory `dir` holds opens: a
    /// `PID/fd/N` link of the agent's own procfs, the one link followed. Only
    /// when `same` says the file opened is the one meant (judged by `fstat` of the
    /// opened descriptor, so nothing can be swapped in between); otherwise
    /// `ESTALE`. `path` names it in the record.
    fn truncate(
        &mut self,
        dir: RawFd,
        name: &CStr,
        same: &mut dyn FnMut(&libc::stat) -> bool,
        path: &[u8],
    ) -> io::Result<Outcome<()>>;

    /// Starts a child; `timeout_ns` from now its process group gets SIGTERM.
    fn spawn(&mut self, spec: &Spec, timeout_ns: u64) -> io::Result<Outcome<Child>>;

    /// Whether it only records. Never to decide with (an action's `Outcome` says
    /// what became of it): only for the lines of a step that asked nothing (a
    /// cleanup rule that found nothing to remove, a reaper rule with `action =
    /// log`), which a dry run marks `dry_run=yes` all the same.
    fn dry_run(&self) -> bool;
}

/// The effects of a configuration: real, or only recorded in a dry run.
pub fn for_config(dry_run: bool) -> Box<dyn Effects> {
    if dry_run {
        Box::new(DryRun::default())
    } else {
        Box::new(Real)
    }
}

/// Acts.
pub struct Real;

impl Effects for Real {
    fn signal(&mut self, to: Target, sig: i32) -> Result<Outcome<Option<OwnedFd>>, NotSent> {
        let (own, pid, start) = match to {
            Target::Pinned { pidfd, .. } => {
                sys::pidfd_send_signal(pidfd, sig)?;
                return Ok(Outcome::Done(None));
            }
            Target::Started { own, pid, start } => (own, pid, start),
        };
        match sys::pidfd_open(pid) {
            Ok(fd) => {
                same_process(own, pid, start)?;
                sys::pidfd_send_signal(&fd, sig)?;
                Ok(Outcome::Done(Some(fd)))
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOSYS) => {
                same_process(own, pid, start)?;
                sys::kill(pid, sig)?;
                Ok(Outcome::Done(None))
            }
            Err(e) => Err(e.into()),
        }
    }

    fn unlink(
        &mut self,
        dir: RawFd,
        name: &CStr,
        flags: libc::c_int,
        _path: &[u8],
    ) -> io::Result<Outcome<()>> {
        sys::unlinkat(dir, name, flags).map(Outcome::Done)
    }

    fn truncate(
        &mut self,
        dir: RawFd,
        name: &CStr,
        same: &mut dyn FnMut(&libc::stat) -> bool,
        _path: &[u8],
    ) -> io::Result<Outcome<()>> {
        let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
        let fd = sys::openat(dir, name, flags)?;
        let st = sys::fstat(fd.as_raw_fd())?;
        if !same(&st) {
            return Err(io::Error::from_raw_os_error(libc::ESTALE));
        }
        sys::ftruncate(fd.as_raw_fd()).map(Outcome::Done)
    }

    fn spawn(&mut self, spec: &Spec, timeout_ns: u64) -> io::Result<Outcome<Child>> {
        Child::spawn(spec, timeout_ns).map(Outcome::Done)
    }

    fn dry_run(&self) -> bool {
        false
    }
}

/// Whether `pid` still started at `start`, by the proven procfs.
fn same_process(own: &OwnProc, pid: i32, start: u64) -> Result<(), NotSent> {
    match own.start_time(pid) {
        Some((t, _)) if t == start => Ok(()),
        Some(_) => Err(NotSent::Reused),
        None => Err(NotSent::Gone),
    }
}

/// What a dry run was asked to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Signal {
        pid: i32,
        sig: i32,
    },
    Unlink {
        path: Vec<u8>,
        dir: bool,
    },
    /// A deleted file truncated through the holder's descriptor.
    Truncate {
        path: Vec<u8>,
    },
    /// The command line, as the child would have been started.
    Spawn {
        argv: Vec<String>,
    },
}

/// Acts on nothing; records what it was asked, the first `KEEP` actions since the
/// last `take` (a dry-run service would otherwise grow the list for ever).
#[derive(Debug, Default)]
pub struct DryRun {
    actions: Vec<Action>,
}

impl DryRun {
    pub const KEEP: usize = 4096;

    /// The actions recorded so far, which are then forgotten.
    pub fn take(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.actions)
    }

    fn record(&mut self, a: Action) {
        if self.actions.len() < Self::KEEP {
            self.actions.push(a);
        }
    }
}

impl Effects for DryRun {
    fn signal(&mut self, to: Target, sig: i32) -> Result<Outcome<Option<OwnedFd>>, NotSent> {
        let pid = to.pid();
        self.record(Action::Signal { pid, sig });
        Ok(Outcome::DryRun)
    }

    fn unlink(
        &mut self,
        _dir: RawFd,
        _name: &CStr,
        flags: libc::c_int,
        path: &[u8],
    ) -> io::Result<Outcome<()>> {
        let dir = flags & libc::AT_REMOVEDIR != 0;
        self.record(Action::Unlink {
            path: path.to_vec(),
            dir,
        });
        Ok(Outcome::DryRun)
    }

    fn truncate(
        &mut self,
        _dir: RawFd,
        _name: &CStr,
        _same: &mut dyn FnMut(&libc::stat) -> bool,
        path: &[u8],
    ) -> io::Result<Outcome<()>> {
        self.record(Action::Truncate {
            path: path.to_vec(),
        });
        Ok(Outcome::DryRun)
    }

    fn spawn(&mut self, spec: &Spec, _timeout_ns: u64) -> io::Result<Outcome<Child>> {
        let argv = spec
            .argv
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        self.record(Action::Spawn { argv });
        Ok(Outcome::DryRun)
    }

    fn dry_run(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ownproc;
    use std::ffi::CString;
    use std::os::fd::{AsFd, AsRawFd};
    use std::os::unix::process::ExitStatusExt;

    /// This process's /proc, proven its own.
    fn own_proc() -> OwnProc {
        let dir = sys::open(c"/proc", libc::O_RDONLY | libc::O_DIRECTORY, 0).expect("open /proc");
        ownproc::prove(dir.as_fd(), sys::getpid(), &mut Vec::new()).expect("our own procfs")
    }

    /// Our child `child`, by its pid and start time.
    fn started<'a>(own: &'a OwnProc, child: &std::process::Child) -> Target<'a> {
        let pid = child.id() as i32;
        let (start, _) = own.start_time(pid).expect("our child's start time");
        Target::Started { own, pid, start }
    }

    fn sleeper() -> std::process::Child {
        std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep")
    }

    /// What a signal did to our own child: the signal that ended it, if any.
    fn ended_by(mut child: std::process::Child) -> Option<i32> {
        let gone = child.try_wait().ok().flatten();
        let _ = child.kill();
        let status = gone.or_else(|| child.wait().ok());
        status
            .and_then(|s| s.signal())
            .filter(|&s| s != libc::SIGKILL)
    }

    #[test]
    fn a_dry_run_records_and_does_nothing() {
        let dir = std::env::temp_dir().join(format!("sa-effects-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        std::fs::write(dir.join("old.log"), "x").expect("a file");
        let fd = sys::open(
            &CString::new(dir.as_os_str().as_encoded_bytes()).expect("path"),
            libc::O_RDONLY | libc::O_DIRECTORY,
            0,
        )
        .expect("open the dir");
        let child = sleeper();
        let pid = child.id() as i32;
        let mut d = DryRun::default();
        let own = own_proc();
        // Another start time: a dry run checks nothing, since it sends nothing.
        let other = Target::Started {
            own: &own,
            pid,
            start: u64::MAX,
        };
        let sent = d.signal(other, libc::SIGTERM);
        assert!(matches!(sent, Ok(Outcome::DryRun)));
        assert!(d.dry_run() && !Real.dry_run());
        let gone = d.unlink(fd.as_raw_fd(), c"old.log", 0, b"/tmp/x/old.log");
        assert!(gone.is_ok_and(|o| o.dry_run()));
        let spec = Spec::new(vec![c"/usr/bin/mandb".to_owned(), c"-q".to_owned()]);
        assert!(d.spawn(&spec, 1).is_ok_and(|o| o.dry_run()));
        assert_eq!(
            d.take(),
            [
                Action::Signal {
                    pid,
                    sig: libc::SIGTERM
                },
                Action::Unlink {
                    path: b"/tmp/x/old.log".to_vec(),
                    dir: false
                },
                Action::Spawn {
                    argv: vec!["/usr/bin/mandb".into(), "-q".into()]
                },
            ]
        );
        assert!(dir.join("old.log").exists());
        assert_eq!(ended_by(child), None, "the process was not signalled");
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A file this test holds open and has deleted, truncated through its
    /// `/proc/self/fd` link only when the check on the opened file agrees.
    #[test]
    fn a_real_truncation_only_after_the_check() {
        use std::io::Write as _;
        let path = std::env::temp_dir().join(format!("sa-effects-trunc-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).expect("a file");
        f.write_all(&[b'x'; 8192]).expect("fill it");
        std::fs::remove_file(&path).expect("delete it");
        let st = sys::fstat(f.as_raw_fd()).expect("fstat");
        let proc = sys::open(c"/proc", libc::O_RDONLY | libc::O_DIRECTORY, 0).expect("/proc");
        let name = CString::new(format!("self/fd/{}", f.as_raw_fd())).expect("a name");
        let refused = Real.truncate(proc.as_raw_fd(), &name, &mut |_| false, b"x");
        assert_eq!(
            refused.err().and_then(|e| e.raw_os_error()),
            Some(libc::ESTALE)
        );
        assert_eq!(sys::fstat(f.as_raw_fd()).expect("fstat").st_size, 8192);
        let same = &mut |o: &libc::stat| o.st_ino == st.st_ino && o.st_nlink == 0;
        let done = Real.truncate(proc.as_raw_fd(), &name, same, b"x");
        assert!(matches!(done, Ok(Outcome::Done(()))), "{done:?}");
        assert_eq!(sys::fstat(f.as_raw_fd()).expect("fstat").st_size, 0);
        let mut d = DryRun::default();
        assert!(
            d.truncate(proc.as_raw_fd(), &name, same, b"/x (fd 3)")
                .is_ok_and(|o| o.dry_run())
        );
        assert_eq!(
            d.take(),
            [Action::Truncate {
                path: b"/x (fd 3)".to_vec()
            }]
        );
    }

    #[test]
    fn a_real_signal_only_after_the_check() {
        let own = own_proc();
        let child = sleeper();
        // One tick off: the pid names another process now.
        let Target::Started { pid, start, .. } = started(&own, &child) else {
            unreachable!()
        };
        let start = start + 1;
        let reused = Target::Started {
            own: &own,
            pid,
            start,
        };
        let refused = Real.signal(reused, libc::SIGTERM);
        assert!(matches!(refused, Err(NotSent::Reused)));
        assert_eq!(ended_by(child), None);
        let child = sleeper();
        let sent = Real.signal(started(&own, &child), libc::SIGTERM);
        assert!(matches!(sent, Ok(Outcome::Done(_))));
        assert_eq!(ended_by(child), Some(libc::SIGTERM));
    }

    #[test]
    fn a_kept_pidfd_signals_the_process_it_names() {
        let own = own_proc();
        let child = sleeper();
        let pid = child.id() as i32;
        let kept = Real.signal(started(&own, &child), libc::SIGCONT);
        let Ok(Outcome::Done(Some(pidfd))) = kept else {
            panic!("no pidfd kept: {kept:?}");
        };
        let pinned = Target::Pinned { pidfd: &pidfd, pid };
        assert!(matches!(
            Real.signal(pinned, libc::SIGTERM),
            Ok(Outcome::Done(None))
        ));
        assert_eq!(ended_by(child), Some(libc::SIGTERM));
    }
}
