//! Child processes (tasks, the mailer, the alert command), started the careful way
//! (SPEC §6 "Children"): `fork` + `execve` of an absolute path with a fixed argv, a
//! minimal environment prepared before the fork, stdin `/dev/null` or a pipe we
//! write, stdout and stderr on pipes we drain without blocking, every other
//! descriptor closed, default signal dispositions and an empty mask (an ignored
//! SIGPIPE or SIGHUP would otherwise survive exec), its own process group (so a
//! timeout kills everything it started), `nice`, a umask and working directory of
//! its own (never the agent's, which may be anything: `/` and `022` unless a task
//! says otherwise), and optionally another user's uid, gid and groups. When the
//! child ends, whatever it left in its group is killed, so nothing it started
//! outlives it. Between `fork` and `execve` the child only makes system calls: no
//! allocation, no locks. A failed step (switching ids, `chdir`, `execve`) comes back
//! as the step and its errno on a close-on-exec pipe. The agent always reaps what it
//! started.

use crate::sys;
use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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

/// The step of `exec_child` that failed, as it reports it on its pipe.
const STEP_EXEC: i32 = 0;
const STEP_IDS: i32 = 1;
const STEP_CWD: i32 = 2;

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

fn cloexec_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

impl Child {
    /// Starts `spec`; `timeout_ns` from now the group gets SIGTERM.
    pub fn spawn(spec: &Spec, timeout_ns: u64) -> io::Result<Child> {
        let path = spec
            .argv
            .first()
            .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        let mut argv: Vec<*const libc::c_char> = spec.argv.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const libc::c_char> = spec.env.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        let devnull = sys::open(c"/dev/null", libc::O_RDWR, 0)?;
        let stdin_pipe = match spec.stdin {
            Some(_) => Some(cloexec_pipe()?),
            None => None,
        };
        let (out_r, out_w) = cloexec_pipe()?;
        let (err_r, err_w) = cloexec_pipe()?;
        let (report_r, report_w) = cloexec_pipe()?;
        let stdin_fd = stdin_pipe
            .as_ref()
            .map_or(devnull.as_raw_fd(), |(r, _)| r.as_raw_fd());
        let fds = [
            stdin_fd,
            out_w.as_raw_fd(),
            err_w.as_raw_fd(),
            report_w.as_raw_fd(),
        ];
        // SAFETY: single-threaded; the child runs only async-signal-safe calls on
        // data prepared above, then execve or _exit.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(io::Error::last_os_error());
        }
        if pid == 0 {
            // SAFETY: see above; never returns.
            unsafe { exec_child(spec, path, &argv, &envp, fds) }
        }
        drop(report_w);
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
        // The exec report: EOF means execve succeeded; 8 bytes are the failed step
        // and its errno.
        let mut report = [0u8; 8];
        // SAFETY: reads into an 8-byte stack buffer; the child writes once (less
        // than PIPE_BUF, so whole), or closes.
        let n = loop {
            let n = unsafe { libc::read(report_r.as_raw_fd(), report.as_mut_ptr().cast(), 8) };
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break n;
            }
        };
        if n == 8 {
            child.wait_blocking();
            let [s0, s1, s2, s3, e0, e1, e2, e3] = report;
            return Err(step_error(
                spec,
                i32::from_ne_bytes([s0, s1, s2, s3]),
                i32::from_ne_bytes([e0, e1, e2, e3]),
            ));
        }
        if let (Some((r, w)), Some(data)) = (stdin_pipe, &spec.stdin) {
            drop(r);
            set_nonblocking(w.as_raw_fd());
            child.stdin = Some((w, data.clone(), 0));
        }
        for fd in [&child.out, &child.err].into_iter().flatten() {
            set_nonblocking(fd.as_raw_fd());
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
            while *done < data.len() {
                // SAFETY: writes from a valid slice.
                let n = unsafe {
                    libc::write(
                        fd.as_raw_fd(),
                        data[*done..].as_ptr().cast(),
                        data.len() - *done,
                    )
                };
                if n <= 0 {
                    break;
                }
                *done += n as usize;
            }
            let finished = *done >= data.len();
            let broken = io::Error::last_os_error().raw_os_error() == Some(libc::EPIPE);
            if finished || broken {
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
                // SAFETY: reads into a stack buffer.
                let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                if n > 0 {
                    tail.push(&buf[..n as usize]);
                    continue;
                }
                if n == 0 {
                    *slot = None;
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
            && let Some(exit) = self.leader_exit(libc::WNOHANG)
        {
            self.signal_group(libc::SIGKILL);
            let mut status = 0;
            // SAFETY: reaps our own exited child.
            unsafe { libc::waitpid(self.pid, &mut status, libc::WNOHANG) };
            self.exit = Some(exit);
            self.pump();
        }
        self.exit
    }

    /// How the leader ended, if it has, leaving it unreaped (`waitid` with
    /// `WNOWAIT`); `flags` 0 waits for it.
    fn leader_exit(&self, flags: libc::c_int) -> Option<Exit> {
        // SAFETY: an all-zero siginfo_t is valid; waitid fills it in.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let r = loop {
            // SAFETY: waitid on our own child, into a valid siginfo_t.
            let r = unsafe {
                libc::waitid(
                    libc::P_PID,
                    self.pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT | flags,
                )
            };
            if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break r;
            }
        };
        // SAFETY: waitid filled in a SIGCHLD siginfo (si_pid stays 0 if nothing exited).
        let (pid, status) = unsafe { (info.si_pid(), info.si_status()) };
        if r != 0 || pid != self.pid {
            return None;
        }
        Some(if info.si_code == libc::CLD_EXITED {
            Exit::Code(status)
        } else {
            Exit::Signal(status)
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
        // SAFETY: the group of a child we started and have not reaped: its pid is
        // ours until waitpid, so the group id cannot be reused meanwhile.
        unsafe { libc::kill(-self.pid, sig) };
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
            let mut pfds: Vec<libc::pollfd> = self
                .poll_fds()
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            if pfds.is_empty() {
                // Blocks until it exits; try_wait then ends its group and reaps it.
                self.leader_exit(0);
                continue;
            }
            // SAFETY: valid pollfd array.
            unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 50) };
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

/// The error of a step the child reported: the errno alone for `execve` (as
/// `execve` itself would return it), the errno with the step's context otherwise.
fn step_error(spec: &Spec, step: i32, errno: i32) -> io::Error {
    let err = io::Error::from_raw_os_error(errno);
    let text = crate::error::errno_text(&err);
    let what = match step {
        STEP_IDS => match &spec.ids {
            Some(ids) => format!("cannot switch to uid {} gid {}", ids.uid, ids.gid),
            None => "cannot switch ids".to_string(),
        },
        STEP_CWD => format!(
            "cannot change directory to {}",
            String::from_utf8_lossy(spec.cwd.as_bytes())
        ),
        _ => return err,
    };
    io::Error::new(err.kind(), format!("{what}: {text}"))
}

/// `struct sigaction` as the kernel takes it (`rt_sigaction(2)`, 64-bit mask).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The forked child: set up, then exec. Async-signal-safe calls only.
///
/// # Safety
/// Only between `fork` and `execve`; the pointers stay valid (the parent's memory
/// is copied into the child).
unsafe fn exec_child(
    spec: &Spec,
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    fds: [RawFd; 4],
) -> ! {
    let [stdin, out, err, report] = fds;
    // Reports the step that failed and its errno (one write of 8 bytes), then exits.
    let fail = |report: RawFd, step: i32| -> ! {
        let errno = unsafe { *libc::__errno_location() };
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&step.to_ne_bytes());
        bytes[4..].copy_from_slice(&errno.to_ne_bytes());
        unsafe {
            libc::write(report, bytes.as_ptr().cast(), 8);
            libc::_exit(127)
        }
    };
    unsafe {
        // Its own process group, so a timeout can end everything it starts.
        libc::setpgid(0, 0);
        // Default dispositions for every signal (1 to 64, with the raw system call:
        // glibc's refuses the two it reserves, which stay ignored otherwise) and an
        // empty mask.
        let dfl = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        for sig in 1..=64 as libc::c_long {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8 as libc::c_long,
            );
        }
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        // stdin, stdout, stderr; the report pipe moves to 3 (close-on-exec).
        let report = if report < 3 {
            libc::fcntl(report, libc::F_DUPFD_CLOEXEC, 3)
        } else {
            report
        };
        if libc::dup2(stdin, 0) < 0 || libc::dup2(out, 1) < 0 || libc::dup2(err, 2) < 0 {
            fail(report, STEP_EXEC);
        }
        if report != 3 && libc::dup3(report, 3, libc::O_CLOEXEC) < 0 {
            fail(report, STEP_EXEC);
        }
        // Every other descriptor closed: close_range(4, ~0), or one by one.
        if libc::syscall(
            libc::SYS_close_range,
            4 as libc::c_long,
            libc::c_long::from(u32::MAX),
            0 as libc::c_long,
        ) < 0
        {
            for fd in 4..65_536 {
                libc::close(fd);
            }
        }
        libc::setpriority(libc::PRIO_PROCESS, 0, spec.nice);
        libc::umask(spec.umask as libc::mode_t);
        // Groups first (setgroups and setgid need the privilege setuid gives up).
        if let Some(ids) = &spec.ids
            && (libc::setgroups(ids.groups.len(), ids.groups.as_ptr()) < 0
                || libc::setgid(ids.gid) < 0
                || libc::setuid(ids.uid) < 0)
        {
            fail(3, STEP_IDS);
        }
        // After the switch: the user must be able to enter it without the agent's
        // privileges.
        if libc::chdir(spec.cwd.as_ptr()) < 0 {
            fail(3, STEP_CWD);
        }
        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(3, STEP_EXEC)
    }
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
