//! Child processes: starting them, and the code that runs in them between `fork`
//! and `execve` (or `_exit`), where only async-signal-safe system calls on memory
//! prepared before the fork are allowed: no allocation, no lock, no unwinding (the
//! agent is single-threaded, but the allocator's state in the child is whatever
//! the parent's was). Two kinds: a command run the careful way (`fork_exec`, for
//! tasks, the mailer and the alert command; `child.rs` looks after it), and the
//! statvfs prober (`statvfs_in_child`, for mounts that may hang). Also waiting for
//! and signalling children of ours, whose pids cannot be reused until reaped.

#![allow(unsafe_code)]

use super::{FsStats, cvt, pipe};
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// What a command's child sets up before it execs, all prepared before the fork.
pub struct ExecSetup<'a> {
    /// `argv[0]` is the absolute path executed.
    pub argv: &'a [CString],
    /// `KEY=value` strings: the whole environment.
    pub env: &'a [CString],
    /// Switch to this uid, gid and groups (`setgroups`) before exec.
    pub ids: Option<(u32, u32, &'a [u32])>,
    pub nice: i32,
    /// Entered after the ids are switched (so as that user).
    pub cwd: &'a CStr,
    pub umask: u32,
    /// The child's stdin, stdout and stderr.
    pub stdio: [RawFd; 3],
}

/// The step of starting a command that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStep {
    /// Before the fork (the report pipe), or the fork itself.
    Fork,
    /// Switching to the command's user.
    Ids,
    /// Entering its working directory.
    Cwd,
    /// `execve` (or setting up the descriptors just before it).
    Exec,
}

/// Starts `s.argv` as described: `fork`, then in the child its own process group,
/// default signal dispositions and an empty mask (an ignored SIGPIPE or SIGHUP
/// would otherwise survive exec), stdio, every other descriptor closed, `nice`,
/// the umask, the ids, the working directory, `execve`. The child reports a step
/// that failed and its errno on a close-on-exec pipe; end of file there means
/// `execve` succeeded. Returns the child's pid, or the failed step (the child
/// then already reaped).
pub fn fork_exec(s: &ExecSetup) -> Result<i32, (ExecStep, io::Error)> {
    let fail = |e| (ExecStep::Fork, e);
    let path = s
        .argv
        .first()
        .ok_or_else(|| fail(io::Error::from_raw_os_error(libc::EINVAL)))?;
    let mut argv: Vec<*const libc::c_char> = s.argv.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = s.env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    let (report_r, report_w) = pipe_cloexec().map_err(fail)?;
    // SAFETY: single-threaded; the child runs only async-signal-safe calls on data
    // prepared above (`s`, `argv`, `envp` stay valid: the child has a copy of the
    // parent's memory), then execve or _exit.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(fail(io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: in the child right after fork; never returns.
        unsafe { exec_child(s, path, &argv, &envp, report_w.as_raw_fd()) }
    }
    drop(report_w);
    match read_report(report_r.as_raw_fd()) {
        None => Ok(pid),
        Some((step, errno)) => {
            let mut status = 0;
            // SAFETY: waits for our own child, which exits right after reporting.
            unsafe { libc::waitpid(pid, &mut status, 0) };
            Err((step, io::Error::from_raw_os_error(errno)))
        }
    }
}

/// A close-on-exec pipe whose ends block: (read end, write end).
pub fn pipe_cloexec() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for two descriptors.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: the kernel just returned these descriptors to us.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The step and errno the child wrote, or `None` at end of file (it exec'd).
fn read_report(fd: RawFd) -> Option<(ExecStep, i32)> {
    let mut report = [0u8; 8];
    let n = loop {
        // SAFETY: reads into an 8-byte stack buffer; the child writes once (less
        // than PIPE_BUF, so whole), or closes.
        let n = unsafe { libc::read(fd, report.as_mut_ptr().cast(), 8) };
        if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break n;
        }
    };
    if n != 8 {
        return None;
    }
    let [s0, s1, s2, s3, e0, e1, e2, e3] = report;
    let step = match i32::from_ne_bytes([s0, s1, s2, s3]) {
        STEP_IDS => ExecStep::Ids,
        STEP_CWD => ExecStep::Cwd,
        _ => ExecStep::Exec,
    };
    Some((step, i32::from_ne_bytes([e0, e1, e2, e3])))
}

/// The steps as the child writes them on the report pipe.
const STEP_EXEC: i32 = 0;
const STEP_IDS: i32 = 1;
const STEP_CWD: i32 = 2;

/// `struct sigaction` as the kernel takes it (`rt_sigaction(2)`, 64-bit mask).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// The forked child of `fork_exec`: set up, then exec. Async-signal-safe calls
/// only; a failed step is written to `report` (step and errno, 8 bytes, one
/// write) before `_exit(127)`.
///
/// # Safety
/// Only between `fork` and `execve`; the pointers stay valid (the parent's memory
/// is copied into the child).
unsafe fn exec_child(
    s: &ExecSetup,
    path: &CStr,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    report: RawFd,
) -> ! {
    let [stdin, out, err] = s.stdio;
    // SAFETY: plain system calls on integers and on pointers into memory prepared
    // before the fork; nothing allocates, locks or unwinds.
    unsafe {
        // Its own process group, so a timeout can end everything it starts.
        libc::setpgid(0, 0);
        default_signals();
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
        close_fds(4, u32::MAX, -1);
        libc::setpriority(libc::PRIO_PROCESS, 0, s.nice);
        libc::umask(s.umask as libc::mode_t);
        // Groups first (setgroups and setgid need the privilege setuid gives up).
        if let Some((uid, gid, groups)) = s.ids
            && (libc::setgroups(groups.len(), groups.as_ptr()) < 0
                || libc::setgid(gid) < 0
                || libc::setuid(uid) < 0)
        {
            fail(3, STEP_IDS);
        }
        // After the switch: the user must be able to enter it without the agent's
        // privileges.
        if libc::chdir(s.cwd.as_ptr()) < 0 {
            fail(3, STEP_CWD);
        }
        libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
        fail(3, STEP_EXEC)
    }
}

/// Default dispositions for every signal (1 to 64, with the raw system call:
/// glibc's refuses the two it reserves, which stay ignored otherwise) and an
/// empty mask.
///
/// # Safety
/// Only in a forked child, before exec.
unsafe fn default_signals() {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: rt_sigaction with a valid struct and no old-action pointer; a
    // zeroed sigset is valid for sigemptyset to fill.
    unsafe {
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
    }
}

/// Writes the failed step and errno to `report` (one write of 8 bytes), then exits.
///
/// # Safety
/// Only in a forked child.
unsafe fn fail(report: RawFd, step: i32) -> ! {
    // SAFETY: errno is this thread's; write and _exit are async-signal-safe.
    unsafe {
        let errno = *libc::__errno_location();
        let mut bytes = [0u8; 8];
        bytes[..4].copy_from_slice(&step.to_ne_bytes());
        bytes[4..].copy_from_slice(&errno.to_ne_bytes());
        libc::write(report, bytes.as_ptr().cast(), 8);
        libc::_exit(127)
    }
}

/// How a child of ours ended, if it has, leaving it unreaped (`waitid` with
/// `WNOWAIT`: until it is reaped its pid, and so its process group id, cannot
/// be anyone else's). `block` waits for it. `Ok(code)` for an exit, `Err(sig)` for
/// a signal.
pub fn exited_unreaped(pid: i32, block: bool) -> Option<Result<i32, i32>> {
    let flags = libc::WEXITED | libc::WNOWAIT | if block { 0 } else { libc::WNOHANG };
    // SAFETY: an all-zero siginfo_t is valid; waitid fills it in.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let r = loop {
        // SAFETY: waitid on our own child, into a valid siginfo_t.
        let r = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
        if r == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            break r;
        }
    };
    // SAFETY: waitid filled in a SIGCHLD siginfo (si_pid stays 0 if nothing exited).
    let (who, status) = unsafe { (info.si_pid(), info.si_status()) };
    if r != 0 || who != pid {
        return None;
    }
    Some(if info.si_code == libc::CLD_EXITED {
        Ok(status)
    } else {
        Err(status)
    })
}

/// Sends `sig` to the process group of a child of ours that is not reaped yet
/// (its own group, set before exec): the group id cannot be reused meanwhile.
pub fn kill_group(pid: i32, sig: i32) {
    // SAFETY: kill(2) with plain integers.
    unsafe { libc::kill(-pid, sig) };
}

/// What a statvfs prober child (`statvfs_in_child`) has said so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeReply {
    /// Nothing yet: the call has not returned.
    Pending,
    Stats(FsStats),
    /// The call failed with this errno.
    Failed(i32),
    /// The pipe closed without an answer: the child died before it could write.
    Silent,
}

/// The prober's answer on the pipe: errno (0 for success), then the six figures.
/// 56 bytes, less than `PIPE_BUF`, so one `write` puts it there whole or not at all.
type ProbeWire = [u64; 7];

/// Forks a child that calls `statfs(path)`, writes the answer to a pipe and exits;
/// returns its pid and the pipe's non-blocking read end. The caller polls that pipe
/// with a deadline, so a filesystem that hangs (a dead NFS server, a stopped FUSE
/// daemon) stalls only the child. The child first closes every descriptor but the
/// pipe's, so a child stuck in the kernel holds no lock, log or stdout of ours.
pub fn statvfs_in_child(path: &CStr) -> io::Result<(libc::pid_t, OwnedFd)> {
    let (read, write) = pipe()?;
    // SAFETY: between fork and _exit the child only makes async-signal-safe calls
    // (close_range/close, statfs, write, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: in the child right after fork; never returns.
        unsafe { statvfs_child(path, write.as_raw_fd()) }
    }
    drop(write);
    Ok((pid, read))
}

/// The prober child: async-signal-safe calls only, then `_exit`.
///
/// # Safety
/// Only in a freshly forked child; `path` points into memory copied from the parent.
unsafe fn statvfs_child(path: &CStr, reply: RawFd) -> ! {
    // SAFETY: plain system calls on integers and on `path`, a valid C string;
    // `st` is a zeroed out-parameter. Nothing allocates, locks or unwinds.
    unsafe {
        if reply > 0 {
            close_fds(0, reply as u32 - 1, reply);
        }
        close_fds(reply as u32 + 1, u32::MAX, reply);
        // statfs(2), not glibc's statvfs(3), which may read /proc/mounts with malloc.
        let mut st: libc::statfs = std::mem::zeroed();
        let wire: ProbeWire = if libc::statfs(path.as_ptr(), &mut st) == 0 {
            let frsize = if st.f_frsize > 0 {
                st.f_frsize
            } else {
                st.f_bsize
            };
            [
                0,
                st.f_blocks as u64,
                st.f_bfree as u64,
                st.f_bavail as u64,
                st.f_files as u64,
                st.f_ffree as u64,
                frsize as u64,
            ]
        } else {
            [(*libc::__errno_location()).max(1) as u64, 0, 0, 0, 0, 0, 0]
        };
        libc::write(
            reply,
            wire.as_ptr().cast(),
            std::mem::size_of::<ProbeWire>(),
        );
        libc::_exit(0)
    }
}

/// Closes descriptors `first..=last` except `keep`: `close_range(2)`, or one
/// `close` each on kernels before 5.9 (up to 4096, far above what the agent opens).
///
/// # Safety
/// Only in a forked child that owns nothing in that range it still needs.
unsafe fn close_fds(first: u32, last: u32, keep: RawFd) {
    // SAFETY: close_range and close take plain integers.
    unsafe {
        if libc::syscall(libc::SYS_close_range, first, last, 0) == 0 {
            return;
        }
        for fd in first..=last.min(4095) {
            if fd as RawFd != keep {
                libc::close(fd as RawFd);
            }
        }
    }
}

/// Reads a prober's answer from its pipe without blocking.
pub fn probe_reply(fd: RawFd) -> ProbeReply {
    let mut wire: ProbeWire = [0; 7];
    let size = std::mem::size_of::<ProbeWire>();
    loop {
        // SAFETY: reads at most `size` bytes into `wire`.
        let n = unsafe { libc::read(fd, wire.as_mut_ptr().cast(), size) };
        if n < 0 {
            match io::Error::last_os_error().kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => return ProbeReply::Pending,
                _ => return ProbeReply::Silent,
            }
        }
        return match (n as usize == size, wire[0]) {
            (true, 0) => ProbeReply::Stats(FsStats {
                blocks: wire[1],
                bfree: wire[2],
                bavail: wire[3],
                files: wire[4],
                ffree: wire[5],
                frsize: wire[6],
            }),
            (true, errno) => ProbeReply::Failed(errno as i32),
            (false, _) => ProbeReply::Silent,
        };
    }
}

/// Sends `sig` to a child of ours that has not been reaped (so its pid cannot
/// have been reused).
pub fn kill_child(pid: libc::pid_t, sig: libc::c_int) {
    // SAFETY: kill(2) on our own unreaped child.
    unsafe { libc::kill(pid, sig) };
}

/// Reaps a child of ours if it has exited, without waiting (`WNOHANG`). True when
/// it is gone: reaped now, or not (or no longer) our child.
pub fn reap_nohang(pid: libc::pid_t) -> bool {
    let mut status = 0;
    // SAFETY: waitpid on one pid with a valid status out-parameter.
    match unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) } {
        0 => false,
        r if r > 0 => true,
        _ => io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD),
    }
}
