//! Every `unsafe` libc call the agent makes, wrapped so the rest of the code sees
//! `io::Result` and owned descriptors. Nothing here decides anything; it only asks the
//! kernel and reports errno faithfully.

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn cvt_size(r: libc::ssize_t) -> io::Result<usize> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r as usize)
    }
}

/// `open(2)` with `O_CLOEXEC` always added.
pub fn open(path: &CStr, flags: libc::c_int, mode: libc::mode_t) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: path is NUL-terminated; the result is checked before being owned.
        let fd =
            unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC, mode as libc::c_uint) };
        match cvt(fd) {
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `openat(2)` relative to `dir`, with `O_CLOEXEC` always added.
pub fn openat(dir: RawFd, path: &CStr, flags: libc::c_int) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: as for `open`.
        let fd = unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_CLOEXEC) };
        match cvt(fd) {
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// `openat(2)` that may create: `mode` for a new file, `O_CLOEXEC` always added.
pub fn openat_mode(
    dir: RawFd,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: as for `open`.
        let fd = unsafe {
            libc::openat(
                dir,
                path.as_ptr(),
                flags | libc::O_CLOEXEC,
                mode as libc::c_uint,
            )
        };
        match cvt(fd) {
            Ok(fd) => return Ok(unsafe { OwnedFd::from_raw_fd(fd) }),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Appends to `buf` what `fd` holds from its current position, until its end or
/// until `buf` holds `max` bytes, whichever comes first; the caller tells the two
/// apart by reading one byte more than it accepts. Growth is bounded by `max`, so a
/// file that grows while it is read (or never ends) costs at most `max` bytes.
pub fn read_max(fd: RawFd, buf: &mut Vec<u8>, max: usize) -> io::Result<()> {
    while buf.len() < max {
        if buf.len() == buf.capacity() {
            buf.reserve((buf.len().max(4096)).min(max - buf.len()));
        }
        let len = buf.len();
        let spare = (buf.capacity() - len).min(max - len);
        // SAFETY: writes at most `spare` bytes into the vector's spare capacity.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().add(len).cast(), spare) };
        match cvt_size(r) {
            Ok(0) => return Ok(()),
            // SAFETY: the kernel initialised `n` more bytes.
            Ok(n) => unsafe { buf.set_len(len + n) },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One `pread(2)` of a single byte at `offset`; `None` at the end of the file.
pub fn pread_byte(fd: RawFd, offset: u64) -> io::Result<Option<u8>> {
    let mut b = 0u8;
    loop {
        // SAFETY: reads at most one byte into `b`.
        let r = unsafe { libc::pread(fd, (&mut b as *mut u8).cast(), 1, offset as libc::off_t) };
        match cvt_size(r) {
            Ok(0) => return Ok(None),
            Ok(_) => return Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads the whole file from offset 0 into `buf` (cleared first), growing it only when
/// the file is larger than any earlier read. Only for /proc and regular files, where
/// a short read means the end. `pread` at 0 makes the kernel regenerate
/// a /proc file, so one descriptor can be kept open and re-read every cycle.
pub fn pread_all(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    if buf.capacity() < 4096 {
        buf.reserve(4096);
    }
    loop {
        let len = buf.len();
        if len == buf.capacity() {
            buf.reserve(len);
        }
        let spare = buf.capacity() - len;
        // SAFETY: writes at most `spare` bytes into the vector's spare capacity.
        let r = unsafe {
            libc::pread(
                fd,
                buf.as_mut_ptr().add(len).cast(),
                spare,
                len as libc::off_t,
            )
        };
        match cvt_size(r) {
            Ok(0) => return Ok(buf.len()),
            // SAFETY: the kernel initialised `n` more bytes.
            Ok(n) => unsafe { buf.set_len(len + n) },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        // A short read of a /proc or regular file means its end: skip the read
        // that would return 0 (one syscall per file saved on every scan).
        if buf.len() < buf.capacity() {
            return Ok(buf.len());
        }
    }
}

/// Reads an fd from its current position to its end into `buf` (cleared first), for
/// a freshly opened /proc or regular file (a short read means the end).
pub fn read_all(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    buf.clear();
    if buf.capacity() < 1024 {
        buf.reserve(1024);
    }
    loop {
        let len = buf.len();
        if len == buf.capacity() {
            buf.reserve(len);
        }
        let spare = buf.capacity() - len;
        // SAFETY: as in `pread_all`.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().add(len).cast(), spare) };
        match cvt_size(r) {
            Ok(0) => return Ok(buf.len()),
            // SAFETY: the kernel initialised `n` more bytes.
            Ok(n) => unsafe { buf.set_len(len + n) },
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        if buf.len() < buf.capacity() {
            return Ok(buf.len());
        }
    }
}

/// Writes all of `data`, retrying short writes and EINTR.
pub fn write_all(fd: RawFd, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        // SAFETY: reads `data.len()` bytes from a valid slice.
        let r = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        match cvt_size(r) {
            Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// One `write(2)` (retried on EINTR): how much of `data` went in. A short count is
/// the caller's to handle (a log line is never finished later, see `log::LogFile`).
pub fn write_once(fd: RawFd, data: &[u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reads `data.len()` bytes from a valid slice.
        let r = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
        match cvt_size(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// One `writev(2)` of `a` then `b` (retried on EINTR): with `O_APPEND` both land
/// together, as one write would.
pub fn writev2(fd: RawFd, a: &[u8], b: &[u8]) -> io::Result<usize> {
    let iov = [
        libc::iovec {
            iov_base: a.as_ptr() as *mut libc::c_void,
            iov_len: a.len(),
        },
        libc::iovec {
            iov_base: b.as_ptr() as *mut libc::c_void,
            iov_len: b.len(),
        },
    ];
    loop {
        // SAFETY: two valid iovecs over live slices, only read by the kernel.
        let r = unsafe { libc::writev(fd, iov.as_ptr(), 2) };
        match cvt_size(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

/// Fills `buf` from the kernel's random pool (`getrandom(2)`, non-blocking; the raw
/// syscall, which a static build always has).
pub fn getrandom(buf: &mut [u8]) -> io::Result<()> {
    let mut done = 0;
    while done < buf.len() {
        // SAFETY: writes at most the remaining length into `buf`.
        let r = unsafe {
            libc::syscall(
                libc::SYS_getrandom,
                buf[done..].as_mut_ptr(),
                buf.len() - done,
                libc::GRND_NONBLOCK,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        done += r as usize;
    }
    Ok(())
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// This process's capability sets from `capget(2)`: (effective, permitted), one
/// bit per capability.
fn capabilities() -> io::Result<(u64, u64)> {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 takes two data structs.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | u64::from(hi) << 32;
    Ok((
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
    ))
}

/// This process's effective capabilities, one bit per capability.
pub fn effective_capabilities() -> io::Result<u64> {
    capabilities().map(|(e, _)| e)
}

/// The capabilities this process may raise (its permitted set).
pub fn permitted_capabilities() -> io::Result<u64> {
    capabilities().map(|(_, p)| p)
}

/// Narrows the effective set to `mask` (within what is permitted), leaving the
/// permitted set alone, so a reload that needs more can raise them again.
pub fn set_effective_capabilities(mask: u64) -> io::Result<()> {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: version 3 takes two data structs.
    if unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    data[0].effective = data[0].permitted & mask as u32;
    data[1].effective = data[1].permitted & (mask >> 32) as u32;
    // SAFETY: as above.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Drops every capability, effective, permitted and inheritable (`capset(2)`); the
/// process cannot get them back.
pub fn drop_capabilities() -> io::Result<()> {
    let mut hdr = CapHeader {
        version: CAP_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: version 3 takes two data structs.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Truncates a file to zero length (the offset is unchanged: use it on a descriptor
/// that has not been written through yet).
pub fn ftruncate(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    cvt(unsafe { libc::ftruncate(fd, 0) }).map(drop)
}

/// Sets a signal to be ignored (a one-shot ignores SIGHUP: it has nothing to reload,
/// and logrotate's HUP must not end it).
pub fn ignore_signal(sig: libc::c_int) {
    // SAFETY: SIG_IGN is a valid disposition for a catchable signal.
    unsafe { libc::signal(sig, libc::SIG_IGN) };
}

pub fn fsync(fd: RawFd) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    cvt(unsafe { libc::fsync(fd) }).map(drop)
}

pub fn rename(from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: both NUL-terminated.
    cvt(unsafe { libc::rename(from.as_ptr(), to.as_ptr()) }).map(drop)
}

/// `renameat(2)` within one directory held open: replaces the name `to` (never
/// following a symlink there) with the file named `from`.
pub fn renameat(dir: RawFd, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: both NUL-terminated.
    cvt(unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) }).map(drop)
}

pub fn unlink(path: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated.
    cvt(unsafe { libc::unlink(path.as_ptr()) }).map(drop)
}

/// What `statvfs(3)` says about one filesystem, widened to u64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FsStats {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub frsize: u64,
}

pub fn statvfs(path: &CStr) -> io::Result<FsStats> {
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::statvfs(path.as_ptr(), &mut st) })?;
    Ok(FsStats {
        blocks: st.f_blocks as u64,
        bfree: st.f_bfree as u64,
        bavail: st.f_bavail as u64,
        files: st.f_files as u64,
        ffree: st.f_ffree as u64,
        frsize: st.f_frsize as u64,
    })
}

/// `fstat(2)`: (mode, uid, nlink).
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// `lstat(2)`: never follows a final symlink.
pub fn lstat(path: &CStr) -> io::Result<libc::stat> {
    // SAFETY: as for fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::lstat(path.as_ptr(), &mut st) })?;
    Ok(st)
}

pub fn mkdir(path: &CStr, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: NUL-terminated.
    cvt(unsafe { libc::mkdir(path.as_ptr(), mode) }).map(drop)
}

/// Non-blocking exclusive `flock`; `Ok(false)` when another process holds it.
pub fn try_lock_exclusive(fd: RawFd) -> io::Result<bool> {
    // SAFETY: plain syscall.
    match cvt(unsafe { libc::flock(fd, libc::LOCK_EX | libc::LOCK_NB) }) {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// A close-on-exec, non-blocking pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for two descriptors.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Waits until `fd` is readable or `timeout_ms` passes; `Ok(true)` when readable.
/// EINTR counts as "woken" so the caller re-checks its signal flags.
pub fn poll_readable(fd: &impl AsRawFd, timeout_ms: i32) -> io::Result<bool> {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    match cvt(unsafe { libc::poll(&mut pfd, 1, timeout_ms) }) {
        Ok(n) => Ok(n > 0),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
        Err(e) => Err(e),
    }
}

/// Reads and discards whatever is in a non-blocking fd (the signal pipe).
pub fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    // SAFETY: reads into a stack buffer; stops on EAGAIN or EOF.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

/// Monotonic clock in nanoseconds (vDSO, no syscall, no allocation).
pub fn monotonic_ns() -> u64 {
    clock(libc::CLOCK_MONOTONIC)
}

/// Wall clock in nanoseconds since the epoch.
pub fn realtime_ns() -> u64 {
    clock(libc::CLOCK_REALTIME)
}

fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: valid out-parameter; these clocks cannot fail on Linux.
    unsafe { libc::clock_gettime(id, &mut ts) };
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

pub fn getpid() -> i32 {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() }
}

pub fn getuid() -> u32 {
    // SAFETY: always succeeds.
    unsafe { libc::getuid() }
}

/// The effective uid: whose files the agent's own are (`geteuid(2)`).
pub fn geteuid() -> u32 {
    // SAFETY: always succeeds.
    unsafe { libc::geteuid() }
}

/// Clock ticks per second for /proc times (`_SC_CLK_TCK`, 100 on Linux).
pub fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if v > 0 { v as u64 } else { 100 }
}

pub fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 { v as u64 } else { 4096 }
}

/// The host name from `uname(2)` (not from NSS, which a static binary cannot use).
pub fn hostname() -> String {
    // SAFETY: zeroed utsname is a valid out-parameter.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "localhost".to_string();
    }
    let bytes: Vec<u8> = u
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: never follows a final symlink.
pub fn fstatat_nofollow(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter; name is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// `fstatat(dir, name, 0)`: follows symlinks, `/proc/PID/root` among them.
pub fn fstatat(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter; name is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, 0) })?;
    Ok(st)
}

/// The file system type (`f_type` of `fstatfs(2)`) of an open file: the magic
/// number of the file system it is on, e.g. `PROC_SUPER_MAGIC`.
pub fn fstatfs_type(fd: RawFd) -> io::Result<i64> {
    // SAFETY: zeroed statfs is a valid out-parameter; plain syscall on our fd.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatfs(fd, &mut st) })?;
    Ok(st.f_type as i64)
}

/// The target of the symlink `name` in `dir` (`readlinkat(2)`), into `buf`; an
/// error when it does not fit (`ENAMETOOLONG`), rather than a silent truncation.
pub fn readlinkat<'a>(dir: RawFd, name: &CStr, buf: &'a mut [u8]) -> io::Result<&'a [u8]> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`; name is
    // NUL-terminated.
    let r = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = cvt_size(r)?;
    if n == buf.len() {
        return Err(io::Error::from_raw_os_error(libc::ENAMETOOLONG));
    }
    Ok(&buf[..n])
}

/// A second descriptor for the open file `fd` names, close-on-exec
/// (`F_DUPFD_CLOEXEC`): the same open directory, not a new lookup of its path.
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: plain fcntl; a non-negative result is a new descriptor we own.
    let new = cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// The mount id of an open file (`statx` `STATX_MNT_ID`, Linux 5.8+): tells a bind
/// mount of the same filesystem apart, which `st_dev` cannot. `None` where the
/// kernel does not report it.
pub fn mount_id(fd: RawFd) -> io::Result<Option<u64>> {
    // SAFETY: zeroed statx is a valid out-parameter; "" with AT_EMPTY_PATH means fd.
    // The raw syscall, not glibc's statx(), which a static build leaves unresolved.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let empty = c"";
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            fd as libc::c_long,
            empty.as_ptr(),
            libc::AT_EMPTY_PATH as libc::c_long,
            libc::STATX_MNT_ID as libc::c_long,
            &mut stx as *mut libc::statx,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id))
}

/// What `statx` says of one directory entry, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryStat {
    /// File type bits (`S_IFMT` of the mode).
    pub kind: u32,
    pub dev: u64,
    pub ino: u64,
    pub nlink: u32,
    pub size: u64,
    pub mtime: i64,
    /// `None` where the kernel does not report mount ids.
    pub mnt_id: Option<u64>,
    /// The entry is itself a mount point (a file or directory mounted over).
    pub mount_root: bool,
}

/// `statx(dir, name, AT_SYMLINK_NOFOLLOW)` with the mount id and mount-root flag,
/// which `fstatat` lacks: a file bind-mounted over a name is told apart from one
/// that belongs to the directory.
pub fn statx_nofollow(dir: RawFd, name: &CStr) -> io::Result<EntryStat> {
    // SAFETY: zeroed statx is a valid out-parameter; name is NUL-terminated. The raw
    // syscall, not glibc's statx(), which a static build leaves unresolved.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_BASIC_STATS | libc::STATX_MNT_ID;
    let r = unsafe {
        libc::syscall(
            libc::SYS_statx,
            dir as libc::c_long,
            name.as_ptr(),
            (libc::AT_SYMLINK_NOFOLLOW | libc::AT_STATX_DONT_SYNC) as libc::c_long,
            mask as libc::c_long,
            &mut stx as *mut libc::statx,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(EntryStat {
        kind: u32::from(stx.stx_mode) & libc::S_IFMT,
        dev: libc::makedev(stx.stx_dev_major, stx.stx_dev_minor),
        ino: stx.stx_ino,
        nlink: stx.stx_nlink,
        size: stx.stx_size,
        mtime: stx.stx_mtime.tv_sec,
        mnt_id: (stx.stx_mask & libc::STATX_MNT_ID != 0).then_some(stx.stx_mnt_id),
        mount_root: stx.stx_attributes_mask & (libc::STATX_ATTR_MOUNT_ROOT as u64) != 0
            && stx.stx_attributes & (libc::STATX_ATTR_MOUNT_ROOT as u64) != 0,
    })
}

/// `unlinkat(dir, name, flags)`: removes the name `name` inside the directory `dir`
/// holds, and nothing else; with `AT_REMOVEDIR`, an empty directory.
pub fn unlinkat(dir: RawFd, name: &CStr, flags: libc::c_int) -> io::Result<()> {
    // SAFETY: name is NUL-terminated.
    cvt(unsafe { libc::unlinkat(dir, name.as_ptr(), flags) }).map(drop)
}

/// `fstatvfs(2)`.
pub fn fstatvfs(fd: RawFd) -> io::Result<FsStats> {
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatvfs(fd, &mut st) })?;
    Ok(FsStats {
        blocks: st.f_blocks as u64,
        bfree: st.f_bfree as u64,
        bavail: st.f_bavail as u64,
        files: st.f_files as u64,
        ffree: st.f_ffree as u64,
        frsize: st.f_frsize as u64,
    })
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

// Integer arguments of the variadic `syscall(2)` are widened to `c_long`: the
// kernel reads whole registers.

/// `pidfd_open(2)`: a descriptor that names process `pid` for good (Linux 5.3+).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain syscall; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_long, 0 as libc::c_long) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// `pidfd_send_signal(2)`: `sig` to the process `fd` names, whatever its pid now.
pub fn pidfd_send_signal(fd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall on a pidfd we own; no siginfo.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd() as libc::c_long,
            sig as libc::c_long,
            std::ptr::null::<u8>(),
            0 as libc::c_long,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `kill(2)`: only for a pid the caller has just checked (see `effects`), or on
/// kernels without pidfds.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain syscall on integers.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
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

/// `poll(2)` on `fds` for up to `timeout_ms`; EINTR (a signal) returns early as 0.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> usize {
    // SAFETY: a valid, exclusively borrowed pollfd array.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    r.max(0) as usize
}

/// Whether the mount table changed since this mountinfo descriptor was opened or
/// last asked: the kernel flags `POLLPRI` on it then (a regular file never does).
pub fn mount_table_changed(fd: RawFd) -> bool {
    let mut pfd = [libc::pollfd {
        fd,
        events: libc::POLLPRI,
        revents: 0,
    }];
    poll(&mut pfd, 0) > 0 && pfd[0].revents & (libc::POLLPRI | libc::POLLERR) != 0
}

/// Entries of one open directory read with `getdents64` into a small buffer of its
/// own, so a deep walk holds a few KiB per level (a glibc `DIR` holds 32 KiB) and a
/// directory of a million entries streams through it.
pub struct DirStream {
    fd: OwnedFd,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
}

/// `d_type` values.
pub const DT_DIR: u8 = 4;

impl DirStream {
    pub fn new(fd: OwnedFd) -> DirStream {
        DirStream {
            fd,
            buf: vec![0; 4096],
            pos: 0,
            len: 0,
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// The next entry's name (without `.` and `..`), or `None` at the end.
    pub fn next_name(&mut self) -> io::Result<Option<&[u8]>> {
        Ok(self.next_range()?.map(|(a, b)| &self.buf[a..b]))
    }

    fn next_range(&mut self) -> io::Result<Option<(usize, usize)>> {
        loop {
            if self.pos >= self.len {
                // SAFETY: getdents64 writes at most buf.len() bytes into buf.
                let n = unsafe {
                    libc::syscall(
                        libc::SYS_getdents64,
                        self.fd.as_raw_fd() as libc::c_long,
                        self.buf.as_mut_ptr(),
                        self.buf.len(),
                    )
                };
                if n < 0 {
                    let e = io::Error::last_os_error();
                    if e.kind() == io::ErrorKind::Interrupted {
                        continue;
                    }
                    return Err(e);
                }
                if n == 0 {
                    return Ok(None);
                }
                self.pos = 0;
                self.len = n as usize;
            }
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            let rec = &self.buf[self.pos..self.len];
            if rec.len() < 19 {
                return Err(io::Error::from(io::ErrorKind::InvalidData));
            }
            let reclen = u16::from_ne_bytes([rec[16], rec[17]]) as usize;
            if reclen < 19 || reclen > rec.len() {
                return Err(io::Error::from(io::ErrorKind::InvalidData));
            }
            let start = self.pos + 19;
            self.pos += reclen;
            let raw = &self.buf[start..start + reclen - 19];
            let end = start + raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
            if matches!(&self.buf[start..end], b"." | b"..") {
                continue;
            }
            return Ok(Some((start, end)));
        }
    }
}

/// A directory stream over a kept-open directory fd, rewound for each pass, so a
/// process scan opens /proc once per agent lifetime rather than once per cycle.
pub struct Dir {
    dir: std::ptr::NonNull<libc::DIR>,
}

impl Dir {
    pub fn open(path: &CStr) -> io::Result<Dir> {
        let fd = open(path, libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
        // SAFETY: fdopendir takes ownership of the fd on success.
        let d = unsafe { libc::fdopendir(fd.as_raw_fd()) };
        match std::ptr::NonNull::new(d) {
            Some(dir) => {
                std::mem::forget(fd);
                Ok(Dir { dir })
            }
            None => Err(io::Error::last_os_error()),
        }
    }

    pub fn fd(&self) -> RawFd {
        // SAFETY: the DIR is valid for our lifetime.
        unsafe { libc::dirfd(self.dir.as_ptr()) }
    }

    /// The directory's descriptor, borrowed for no longer than the `Dir` lives.
    pub fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: the DIR owns this descriptor and closes it only when dropped,
        // which the borrow cannot outlive.
        unsafe { BorrowedFd::borrow_raw(self.fd()) }
    }

    pub fn rewind(&mut self) {
        // SAFETY: valid DIR.
        unsafe { libc::rewinddir(self.dir.as_ptr()) }
    }

    /// Calls `f` with each entry name (without `.`/`..` filtering); stops at the end
    /// of the directory or at the first error.
    pub fn for_each(&mut self, mut f: impl FnMut(&[u8])) -> io::Result<()> {
        loop {
            // SAFETY: errno is reset so end-of-directory and error can be told apart.
            unsafe { *libc::__errno_location() = 0 };
            let ent = unsafe { libc::readdir64(self.dir.as_ptr()) };
            if ent.is_null() {
                let err = io::Error::last_os_error();
                return match err.raw_os_error() {
                    Some(0) | None => Ok(()),
                    _ => Err(err),
                };
            }
            // SAFETY: d_name is NUL-terminated within the dirent.
            let name = unsafe { CStr::from_ptr((*ent).d_name.as_ptr()) };
            f(name.to_bytes());
        }
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        // SAFETY: we own the DIR.
        unsafe { libc::closedir(self.dir.as_ptr()) };
    }
}

/// Builds a NUL-terminated path in a caller-owned buffer (no allocation once grown).
pub fn cpath<'a>(buf: &'a mut Vec<u8>, parts: &[&[u8]]) -> io::Result<&'a CStr> {
    buf.clear();
    for p in parts {
        buf.extend_from_slice(p);
    }
    buf.push(0);
    CStr::from_bytes_with_nul(buf).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}
