//! Child processes (tasks, the mailer, the alert command), started the careful way:
//! `fork` + `execve` of an absolute path with a fixed argv, a
//! minimal environment prepared before the fork, stdin `/dev/null` or a pipe we
//! write, stdout and stderr on pipes we drain without blocking, every other
//! descriptor closed, default signal dispositions and an empty mask (an ignored
//! SIGPIPE or SIGHUP would otherwise survive exec), its own process group (so a
//! timeout kills everything it started), `nice`, a umask and working directory of
//! its own (never the agent's, which may be anything: `/` and `022` unless a task
//! says otherwise), and optionally another user's uid, gid and groups. When the
//! child ends, whatever it left in its group is killed, so nothing it started
//! outlives it. Between `fork` and `execve` the child only makes system calls: no
//! allocation, no locks (that code is `sys::fork_exec`'s). A failed step
//! (switching ids, `chdir`, `execve`) comes back as an error naming it. The agent
//! always reaps what it started.

use crate::sys::{self, ExecStep};
use std::collections::VecDeque;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

/// Bytes of each output stream kept (the tail), and the count of lines seen.
pub const TAIL_BYTES: usize = 2048;

/// After a timeout's SIGTERM, how long before SIGKILL.
pub const KILL_AFTER_NS: u64 = 5_000_000_000;

/// What to run, prepared entirely before the fork.
pub struct Spec {
    /// `argv[0]` is the absolute path executed.
    pub argv: Vec<CString>,
    /// `KEY=value` strings: the whole environment.
    pub env: Vec<CString>,
    /// Switch to this user before exec.
    pub ids: Option<Ids>,
    pub nice: i32,
    /// Written to the child's stdin (then closed); `None`: stdin is /dev/null.
    pub stdin: Option<Vec<u8>>,
    /// The working directory, entered after the ids are switched (so as that user).
    pub cwd: CString,
    /// The file mode creation mask.
    pub umask: u32,
}

/// Another user's ids, computed before the fork (the child cannot read files).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub uid: u32,
    pub gid: u32,
    /// Every group the child gets (`setgroups`): `gid` and the user's
    /// supplementary groups, as `passwd::groups_of` lists them.
    pub groups: Vec<u32>,
}

/// A child's umask unless it asks for another: files it creates are not writable
/// by group or others, whatever umask the agent was started with.
pub const DEFAULT_UMASK: u32 = 0o022;

impl Spec {
    /// `argv` run with the minimal environment, as the agent's user, in `/` with
    /// umask `022`, nice 0 and stdin `/dev/null`.
    pub fn new(argv: Vec<CString>) -> Spec {
        Spec {
            argv,
            env: base_env(),
            ids: None,
            nice: 0,
            stdin: None,
            cwd: c"/".to_owned(),
            umask: DEFAULT_UMASK,
        }
    }
}

/// The minimal environment children get.
pub fn base_env() -> Vec<CString> {
    vec![
        c"PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_owned(),
        c"LANG=C".to_owned(),
    ]
}

/// The end of a stream: its last bytes and how many lines it had.
#[derive(Debug, Default, Clone)]
pub struct Tail {
    bytes: VecDeque<u8>,
    pub lines: u64,
    pub total: u64,
}

impl Tail {
    fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        self.lines += data.iter().filter(|&&c| c == b'\n').count() as u64;
        self.bytes.extend(data);
        while self.bytes.len() > TAIL_BYTES {
            self.bytes.pop_front();
        }
    }

    /// The kept bytes, from the first whole line when the start was cut.
    pub fn text(&self) -> Vec<u8> {
        let v: Vec<u8> = self.bytes.iter().copied().collect();
        let start = if self.total > TAIL_BYTES as u64 {
            v.iter().position(|&c| c == b'\n').map_or(0, |i| i + 1)
        } else {
            0
        };
        let mut out = v[start..].to_vec();
        while out.last() == Some(&b'\n') {
            out.pop();
        }
        out
    }
}

/// How a child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
}

impl Exit {
    pub fn success(self) -> bool {
        self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "{c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
        }
    }
}

/// A started child; dropped only after it was reaped (see `Drop`).
pub struct Child {
    pub pid: i32,
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    stdin: Option<(OwnedFd, Vec<u8>, usize)>,
    pub stdout: Tail,
    pub stderr: Tail,
    pub started_ns: u64,
    pub deadline_ns: u64,
    /// When the timeout's SIGTERM went to the group.
    pub term_sent_ns: Option<u64>,
    pub exit: Option<Exit>,
}

impl Child {
    /// Starts `spec`; `timeout_ns` from now the group gets SIGTERM.
    pub fn spawn(spec: &Spec, timeout_ns: u64) -> io::Result<Child> {
        let devnull = sys::open(c"/dev/null", libc::O_RDWR, 0)?;
        let stdin_pipe = match spec.stdin {
            Some(_) => Some(sys::pipe_cloexec()?),
            None => None,
        };
        let (out_r, out_w) = sys::pipe_cloexec()?;
        let (err_r, err_w) = sys::pipe_cloexec()?;
        let stdin_fd = stdin_pipe
            .as_ref()
            .map_or(devnull.as_raw_fd(), |(r, _)| r.as_raw_fd());
        let setup = sys::ExecSetup {
            argv: &spec.argv,
            env: &spec.env,
            ids: spec
                .ids
                .as_ref()
                .map(|i| (i.uid, i.gid, i.groups.as_slice())),
            nice: spec.nice,
            cwd: &spec.cwd,
            umask: spec.umask,
            stdio: [stdin_fd, out_w.as_raw_fd(), err_w.as_raw_fd()],
        };
        let pid = sys::fork_exec(&setup).map_err(|(step, e)| step_error(spec, step, e))?;
        drop(out_w);
        drop(err_w);
        let now = sys::monotonic_ns();
        let mut child = Child {
            pid,
            out: Some(out_r),
            err: Some(err_r),
            stdin: None,
            stdout: Tail::default(),
            stderr: Tail::default(),
            started_ns: now,
            deadline_ns: now.saturating_add(timeout_ns),
            term_sent_ns: None,
            exit: None,
        };
        if let (Some((r, w)), Some(data)) = (stdin_pipe, &spec.stdin) {
            drop(r);
            sys::set_nonblocking(w.as_raw_fd());
            child.stdin = Some((w, data.clone(), 0));
        }
        for fd in [&child.out, &child.err].into_iter().flatten() {
            sys::set_nonblocking(fd.as_raw_fd());
        }
        child.pump();
        Ok(child)
    }

    /// The descriptors to poll for (stdout and stderr while open).
    pub fn poll_fds(&self) -> impl Iterator<Item = RawFd> + '_ {
        [&self.out, &self.err]
            .into_iter()
            .flatten()
            .map(|f| f.as_raw_fd())
    }

    /// Writes what stdin still needs and drains stdout and stderr, without blocking.
    pub fn pump(&mut self) {
        if let Some((fd, data, done)) = &mut self.stdin {
            let mut broken = false;
            while *done < data.len() {
                match sys::write_once(fd.as_raw_fd(), &data[*done..]) {
                    Ok(0) => break,
                    Ok(n) => *done += n,
                    Err(e) => {
                        broken = e.raw_os_error() == Some(libc::EPIPE);
                        break;
                    }
                }
            }
            if *done >= data.len() || broken {
                self.stdin = None;
            }
        }
        for (slot, tail) in [
            (&mut self.out, &mut self.stdout),
            (&mut self.err, &mut self.stderr),
        ] {
            let Some(fd) = slot else { continue };
            let mut buf = [0u8; 4096];
            loop {
                match sys::read(fd.as_raw_fd(), &mut buf) {
                    Ok(0) => *slot = None,
                    Ok(n) => {
                        tail.push(&buf[..n]);
                        continue;
                    }
                    Err(_) => {}
                }
                break;
            }
        }
    }

    /// Reaps the child if it exited (without blocking); its exit once it has.
    /// Whatever it left in its process group is killed first: the leader is looked
    /// at without being reaped (`WNOWAIT`), so until then its pid, and so the group
    /// id, cannot belong to anyone else.
    pub fn try_wait(&mut self) -> Option<Exit> {
        if self.exit.is_none()
            && let Some(exit) = self.leader_exit(false)
        {
            self.signal_group(libc::SIGKILL);
            sys::reap_nohang(self.pid);
            self.exit = Some(exit);
            self.pump();
        }
        self.exit
    }

    /// How the leader ended, if it has, leaving it unreaped; `block` waits for it.
    fn leader_exit(&self, block: bool) -> Option<Exit> {
        sys::exited_unreaped(self.pid, block).map(|r| match r {
            Ok(code) => Exit::Code(code),
            Err(sig) => Exit::Signal(sig),
        })
    }

    /// Enforces the timeout: SIGTERM to the group at the deadline, SIGKILL to the
    /// group `KILL_AFTER_NS` later. Returns true when this call sent the SIGTERM.
    pub fn enforce_timeout(&mut self, now: u64) -> bool {
        if self.exit.is_some() || now < self.deadline_ns {
            return false;
        }
        match self.term_sent_ns {
            None => {
                self.signal_group(libc::SIGTERM);
                self.term_sent_ns = Some(now);
                true
            }
            Some(t) if now.saturating_sub(t) >= KILL_AFTER_NS => {
                self.signal_group(libc::SIGKILL);
                false
            }
            Some(_) => false,
        }
    }

    /// When to look at this child next for its timeout.
    pub fn next_deadline(&self) -> Option<u64> {
        if self.exit.is_some() {
            return None;
        }
        Some(match self.term_sent_ns {
            None => self.deadline_ns,
            Some(t) => t + KILL_AFTER_NS,
        })
    }

    /// The child's process group (its own, set before exec).
    fn signal_group(&self, sig: i32) {
        sys::kill_group(self.pid, sig);
    }

    /// Ends the child now (agent shutdown): SIGTERM to the group, up to `grace_ms`
    /// for it to exit, then SIGKILL, and reaps it.
    pub fn stop(&mut self, grace_ms: u64) {
        if self.try_wait().is_some() {
            return;
        }
        self.signal_group(libc::SIGTERM);
        let until = sys::monotonic_ns() + grace_ms * 1_000_000;
        while sys::monotonic_ns() < until {
            if self.try_wait().is_some() {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        self.signal_group(libc::SIGKILL);
        self.wait_blocking();
    }

    /// Waits for the child to exit, draining its output meanwhile.
    pub fn wait_blocking(&mut self) -> Exit {
        loop {
            if let Some(e) = self.try_wait() {
                return e;
            }
            let mut pfds = [libc::pollfd {
                fd: -1,
                events: libc::POLLIN,
                revents: 0,
            }; 2];
            let mut n = 0;
            for fd in self.poll_fds() {
                pfds[n].fd = fd;
                n += 1;
            }
            if n == 0 {
                // Blocks until it exits; try_wait then ends its group and reaps it.
                self.leader_exit(true);
                continue;
            }
            sys::poll(&mut pfds[..n], 50);
            self.pump();
        }
    }
}

impl Drop for Child {
    /// Never leave a zombie or an orphan: a child dropped unreaped is stopped.
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.stop(500);
        }
    }
}

/// The error of a step that failed: the errno alone for the fork and `execve` (as
/// `execve` itself would return it), the errno with the step's context otherwise.
fn step_error(spec: &Spec, step: ExecStep, err: io::Error) -> io::Error {
    let text = crate::error::errno_text(&err);
    let what = match step {
        ExecStep::Ids => match &spec.ids {
            Some(ids) => format!("cannot switch to uid {} gid {}", ids.uid, ids.gid),
            None => "cannot switch ids".to_string(),
        },
        ExecStep::Cwd => format!(
            "cannot change directory to {}",
            String::from_utf8_lossy(spec.cwd.as_bytes())
        ),
        ExecStep::Fork | ExecStep::Exec => return err,
    };
    io::Error::new(err.kind(), format!("{what}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(args: &[&str]) -> Spec {
        Spec::new(args.iter().map(|a| CString::new(*a).unwrap()).collect())
    }

    #[test]
    fn it_starts_in_its_own_directory_with_its_own_umask() {
        let script = "pwd -P; umask";
        let mut c = Child::spawn(&spec(&["/bin/sh", "-c", script]), u64::MAX).unwrap();
        assert_eq!(c.wait_blocking(), Exit::Code(0));
        assert_eq!(c.stdout.text(), b"/\n0022");
        let mut s = spec(&["/bin/sh", "-c", script]);
        (s.cwd, s.umask) = (c"/usr/bin".to_owned(), 0o027);
        let mut c = Child::spawn(&s, u64::MAX).unwrap();
        assert_eq!(c.wait_blocking(), Exit::Code(0));
        assert_eq!(c.stdout.text(), b"/usr/bin\n0027");
    }

    #[test]
    fn a_directory_it_cannot_enter_is_an_error_naming_it() {
        let mut s = spec(&["/bin/true"]);
        s.cwd = c"/no/such/dir".to_owned();
        let e = Child::spawn(&s, u64::MAX).err().unwrap();
        assert_eq!(
            e.to_string(),
            "cannot change directory to /no/such/dir: No such file or directory"
        );
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }

    #[test]
    fn runs_and_reports_exit_and_output() {
        let mut c = Child::spawn(
            &spec(&["/bin/sh", "-c", "echo out; echo err >&2; exit 3"]),
            u64::MAX,
        )
        .unwrap();
        assert_eq!(c.wait_blocking(), Exit::Code(3));
        assert_eq!(c.stdout.text(), b"out");
        assert_eq!((c.stderr.text(), c.stderr.lines), (b"err".to_vec(), 1));
    }

    #[test]
    fn a_missing_program_is_an_errno_not_a_child() {
        let e = Child::spawn(&spec(&["/no/such/program"]), u64::MAX)
            .err()
            .unwrap();
        assert_eq!(e.raw_os_error(), Some(libc::ENOENT));
    }

    #[test]
    fn stdin_is_written_and_the_environment_is_minimal() {
        let mut s = spec(&["/bin/sh", "-c", "cat; env | sort"]);
        s.stdin = Some(b"hello\n".to_vec());
        let mut c = Child::spawn(&s, u64::MAX).unwrap();
        assert_eq!(c.wait_blocking(), Exit::Code(0));
        let out = String::from_utf8(c.stdout.text()).unwrap();
        assert!(out.starts_with("hello\n"), "{out}");
        assert!(
            out.contains("LANG=C\nPATH=/usr/sbin:/usr/bin:/sbin:/bin"),
            "{out}"
        );
    }

    #[test]
    fn the_tail_keeps_the_last_whole_lines() {
        let mut t = Tail::default();
        for i in 0..1000 {
            t.push(format!("line {i}\n").as_bytes());
        }
        assert_eq!(t.lines, 1000);
        let text = String::from_utf8(t.text()).unwrap();
        assert!(
            text.starts_with("line ") && text.ends_with("line 999"),
            "{text}"
        );
        assert!(text.len() <= TAIL_BYTES);
    }
}
