//! Every `unsafe` libc call the agent makes, wrapped so the rest of the code sees
//! `io::Result` and owned descriptors. Nothing here decides anything; it only asks the
//! kernel and reports errno faithfully. Each `unsafe` block says why it is sound
//! (`// SAFETY:`); the rest of the crate has none (`#![deny(unsafe_code)]`).
//!
//! By topic: descriptors, reads and writes, time, ids, capabilities and signals
//! here; files and directories in `fs.rs`; child processes, and the code that runs
//! in them between `fork` and `execve`, in `child.rs`. Callers name them all
//! `sys::NAME`.

#![allow(unsafe_code)]
#![deny(clippy::undocumented_unsafe_blocks)]

mod child;
mod fs;

pub use child::*;
pub use fs::*;

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

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
            // SAFETY: the kernel just returned this descriptor to us.
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
            // SAFETY: the kernel just returned this descriptor to us.
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
            // SAFETY: the kernel just returned this descriptor to us.
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
    fill(buf, 4096, |at, spare, len| {
        // SAFETY: writes at most `spare` bytes at `at`, inside the vector's spare
        // capacity (see `fill`).
        unsafe { libc::pread(fd, at.cast(), spare, len as libc::off_t) }
    })
}

/// Reads an fd from its current position to its end into `buf` (cleared first), for
/// a freshly opened /proc or regular file (a short read means the end).
pub fn read_all(fd: RawFd, buf: &mut Vec<u8>) -> io::Result<usize> {
    // SAFETY: as in `pread_all`.
    fill(buf, 1024, |at, spare, _| unsafe {
        libc::read(fd, at.cast(), spare)
    })
}

/// Fills `buf` (cleared first, at least `first` bytes reserved) with what `read`
/// gives, called with where to write, how much room there is and how much was
/// read so far, until a read returns 0 or less than the room it had (a short read
/// of a /proc or regular file means its end: the read that would return 0 is
/// saved, one syscall per file on every scan).
fn fill(
    buf: &mut Vec<u8>,
    first: usize,
    mut read: impl FnMut(*mut u8, usize, usize) -> libc::ssize_t,
) -> io::Result<usize> {
    buf.clear();
    if buf.capacity() < first {
        buf.reserve(first);
    }
    loop {
        let len = buf.len();
        if len == buf.capacity() {
            buf.reserve(len);
        }
        let spare = buf.capacity() - len;
        // SAFETY: `len` is within the allocation.
        let at = unsafe { buf.as_mut_ptr().add(len) };
        match cvt_size(read(at, spare, len)) {
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

/// One `read(2)` into `buf` (retried on EINTR): how much it read, 0 at the end.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // SAFETY: reads at most `buf.len()` bytes into `buf`.
        let r = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        match cvt_size(r) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// Fills `buf` from `offset` on with `pread(2)`; returns how many bytes were read
/// (fewer when the file ends, shrank meanwhile, or a read failed).
pub fn pread_full(fd: RawFd, buf: &mut [u8], offset: u64) -> usize {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: reads into the unfilled tail of `buf`.
        let n = unsafe {
            libc::pread(
                fd,
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
                (offset + got as u64) as libc::off_t,
            )
        };
        if n <= 0 {
            break;
        }
        got += n as usize;
    }
    got
}

/// Makes `fd` non-blocking (`O_NONBLOCK`), a descriptor we own.
pub fn set_nonblocking(fd: RawFd) {
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let fl = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Opens `path` (without blocking) and reads it whole into `buf`: a small /proc
/// file, read once.
pub fn read_path(path: &CStr, buf: &mut Vec<u8>) -> io::Result<()> {
    let fd = open(path, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
    read_all(fd.as_raw_fd(), buf).map(drop)
}

/// `read_path` of `path` under the open directory `dir` (`openat`), so a path
/// swapped above `dir` cannot redirect the read.
pub fn read_at(dir: RawFd, path: &CStr, buf: &mut Vec<u8>) -> io::Result<()> {
    let fd = openat(dir, path, libc::O_RDONLY | libc::O_NONBLOCK)?;
    read_all(fd.as_raw_fd(), buf).map(drop)
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

/// Sets the mode of an open file to exactly `mode` (`fchmod(2)`), whatever the
/// umask took away when it was created.
pub fn fchmod(fd: RawFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor the caller owns.
    cvt(unsafe { libc::fchmod(fd, mode) }).map(drop)
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

/// A close-on-exec, non-blocking pipe: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for two descriptors.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    // SAFETY: the kernel just returned this descriptor to us.
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

/// Gives the heap's free pages back to the kernel (glibc's `malloc_trim`). A
/// vector that grows leaves its old, smaller buffer behind as free heap, still
/// resident; after a scan that grew its records this returns that memory.
pub fn release_free_heap() {
    // SAFETY: malloc_trim only walks and trims the allocator's own free lists.
    unsafe { libc::malloc_trim(0) };
}

/// The host name from `uname(2)` (not from NSS, which a static binary cannot use).
pub fn hostname() -> String {
    // SAFETY: zeroed utsname is a valid out-parameter.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: a valid out-parameter.
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

/// `poll(2)` on `fds` for up to `timeout_ms`; EINTR (a signal) returns early as 0.
pub fn poll(fds: &mut [libc::pollfd], timeout_ms: i32) -> usize {
    // SAFETY: a valid, exclusively borrowed pollfd array.
    let r = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
    r.max(0) as usize
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
