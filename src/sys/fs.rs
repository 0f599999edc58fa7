//! Files and directories: `stat` and `statx`, `statvfs`, directories read with
//! `getdents64` or held open for `*at` calls, `unlinkat`, the lock.

#![allow(unsafe_code)]

use super::{cvt, cvt_size, open, poll};
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

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

impl FsStats {
    // The field types are u64 on x86_64 but narrower on some other targets.
    #[allow(clippy::unnecessary_cast)]
    fn of(st: &libc::statvfs) -> FsStats {
        FsStats {
            blocks: st.f_blocks as u64,
            bfree: st.f_bfree as u64,
            bavail: st.f_bavail as u64,
            files: st.f_files as u64,
            ffree: st.f_ffree as u64,
            frsize: st.f_frsize as u64,
        }
    }
}

pub fn statvfs(path: &CStr) -> io::Result<FsStats> {
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a valid out-parameter; the path or name is NUL-terminated.
    cvt(unsafe { libc::statvfs(path.as_ptr(), &mut st) })?;
    Ok(FsStats::of(&st))
}

/// `fstat(2)`: (mode, uid, nlink).
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a valid out-parameter.
    cvt(unsafe { libc::fstat(fd, &mut st) })?;
    Ok(st)
}

/// `lstat(2)`: never follows a final symlink.
pub fn lstat(path: &CStr) -> io::Result<libc::stat> {
    // SAFETY: as for fstat.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a valid out-parameter; the path or name is NUL-terminated.
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

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: never follows a final symlink.
pub fn fstatat_nofollow(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter; name is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a valid out-parameter; the path or name is NUL-terminated.
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

/// `fstatat(dir, name, 0)`: follows symlinks, `/proc/PID/root` among them.
pub fn fstatat(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: zeroed stat is a valid out-parameter; name is NUL-terminated.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a valid out-parameter; the path or name is NUL-terminated.
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, 0) })?;
    Ok(st)
}

/// The file system type (`f_type` of `fstatfs(2)`) of an open file: the magic
/// number of the file system it is on, e.g. `PROC_SUPER_MAGIC`.
pub fn fstatfs_type(fd: RawFd) -> io::Result<i64> {
    // SAFETY: zeroed statfs is a valid out-parameter; plain syscall on our fd.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above: a valid out-parameter.
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
    // SAFETY: the kernel just returned this descriptor to us.
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
    // SAFETY: as above: a valid out-parameter and a NUL-terminated name.
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
    // SAFETY: as above: a valid out-parameter and a NUL-terminated name.
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
    // SAFETY: as above: a valid out-parameter.
    cvt(unsafe { libc::fstatvfs(fd, &mut st) })?;
    Ok(FsStats::of(&st))
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
            // SAFETY: a DIR we own; errno was reset just above.
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
