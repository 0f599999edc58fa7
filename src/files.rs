//! One safe way to open the files the agent reads and writes, because every name in
//! a directory someone else can write is hostile: a symlink to `/etc/shadow`, a hard
//! link to root's shell rc file, a FIFO that blocks `open` forever, a 100 MB file or
//! `/dev/zero`. Everything here opens without blocking (`O_NONBLOCK`), refuses what
//! is not a regular file, bounds what it reads, and judges the descriptor it opened
//! (`fstat`), never the name:
//!
//! - `open_regular_at` / `read_file`: a file to read (the config and its drop-ins,
//!   state files, and the audit's histories), with a size cap; `read_config` and
//!   `open_config_dir` for the configuration, with the caller's rights;
//! - `trusted_dir`: a directory the agent's own files may live in (owned by root or
//!   the agent's user, writable by no one else, and so every directory above it);
//! - `open_append`: a log file, opened relative to its trusted directory;
//! - `AtomicFile`: a file replaced whole, through a temporary file nobody else can
//!   have planted;
//! - `with_caller_rights`: the capabilities off while a path the caller named is
//!   opened, so the file capabilities never read a file for the caller.

use crate::sys;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The largest configuration file read (the main file, and each drop-in).
pub const CONFIG_MAX: u64 = 1 << 20;

/// The largest `[paths] passwd` or `[paths] group` file read (a directory of
/// 100,000 accounts is about 10 MiB).
pub const ACCOUNTS_MAX: u64 = 32 << 20;

pub use crate::error::Why;

/// A regular file opened for reading, with what `fstat` said of that descriptor.
pub struct Opened {
    pub fd: OwnedFd,
    pub stat: libc::stat,
}

/// Opens `name` (relative to `dir`, or absolute; `libc::AT_FDCWD` for the current
/// directory) for reading: `O_NONBLOCK` so a FIFO cannot hang the agent,
/// `O_NOCTTY`, and `O_NOFOLLOW` unless `follow`; then only a regular file is kept
/// (a directory reads as `EISDIR`, as `read(2)` would say).
pub fn open_regular_at(dir: RawFd, name: &CStr, follow: bool) -> Result<Opened, Why> {
    let mut flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    if !follow {
        flags |= libc::O_NOFOLLOW;
        // A look first, so a device, FIFO or socket is never even opened (opening a
        // device can have effects of its own); the opened descriptor still decides.
        if let Ok(st) = sys::fstatat_nofollow(dir, name) {
            regular(&st)?;
        }
    }
    let fd = sys::openat(dir, name, flags).map_err(|e| open_error(e, follow))?;
    let stat = sys::fstat(fd.as_raw_fd()).map_err(|e| Why::Sys("stat", e))?;
    regular(&stat)?;
    Ok(Opened { fd, stat })
}

/// `ELOOP` under `O_NOFOLLOW` is a symlink at the last component.
fn open_error(e: io::Error, follow: bool) -> Why {
    if !follow && e.raw_os_error() == Some(libc::ELOOP) {
        Why::NotRegular("a symbolic link")
    } else {
        Why::Sys("open", e)
    }
}

fn regular(st: &libc::stat) -> Result<(), Why> {
    match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => Ok(()),
        libc::S_IFDIR => Err(Why::Sys("read", io::Error::from_raw_os_error(libc::EISDIR))),
        libc::S_IFIFO => Err(Why::NotRegular("a FIFO")),
        libc::S_IFSOCK => Err(Why::NotRegular("a socket")),
        libc::S_IFCHR => Err(Why::NotRegular("a character device")),
        libc::S_IFBLK => Err(Why::NotRegular("a block device")),
        libc::S_IFLNK => Err(Why::NotRegular("a symbolic link")),
        _ => Err(Why::NotRegular("of an unknown type")),
    }
}

/// Reads the whole of an opened file into `buf` (cleared first), refusing one of
/// more than `cap` bytes, whether `fstat` said so or it grew while being read: at
/// most `cap + 1` bytes are ever held.
pub fn read_capped(o: &Opened, cap: u64, buf: &mut Vec<u8>) -> Result<(), Why> {
    let size = o.stat.st_size.max(0) as u64;
    if size > cap {
        return Err(Why::TooBig { size, cap });
    }
    buf.clear();
    let limit = usize::try_from(cap.saturating_add(1)).unwrap_or(usize::MAX);
    sys::read_max(o.fd.as_raw_fd(), buf, limit).map_err(|e| Why::Sys("read", e))?;
    if buf.len() as u64 > cap {
        return Err(Why::TooBig {
            size: buf.len() as u64,
            cap,
        });
    }
    Ok(())
}

/// `open_regular_at` and `read_capped` by path: the file's bytes in `buf` and its
/// `fstat`.
pub fn read_file(
    path: &Path,
    follow: bool,
    cap: u64,
    buf: &mut Vec<u8>,
) -> Result<libc::stat, Why> {
    let c = cstring(path)?;
    let o = open_regular_at(libc::AT_FDCWD, &c, follow)?;
    read_capped(&o, cap, buf)?;
    Ok(o.stat)
}

/// Reads a configuration file (the main file, or a drop-in) the one way: with the
/// caller's rights (`with_caller_rights`), following a symlink as the caller may,
/// without blocking, a regular file of at most `CONFIG_MAX` bytes. The drop-ins are
/// listed and read the same way (`open_config_dir`).
pub fn read_config(path: &Path, buf: &mut Vec<u8>) -> Result<libc::stat, Why> {
    with_caller_rights(|| read_file(path, true, CONFIG_MAX, buf))
        .unwrap_or_else(|e| Err(Why::Sys("drop the capabilities to read", e)))
}

/// The most drop-ins read from one directory, so that a directory of a million
/// names cannot make the agent hold them all.
pub const DROPINS_MAX: usize = 1000;

/// A drop-in directory, opened with the caller's rights: what `fstat` said of it,
/// and the names of the files to read in it, in byte order.
pub struct ConfigDir {
    dir: sys::DirStream,
    pub stat: libc::stat,
    pub names: Vec<Vec<u8>>,
}

/// Opens the drop-in directory `path` as `read_config` opens the main file (with
/// the caller's rights, following a symlink as the caller may) and lists the names
/// `keep` accepts, sorted byte-wise; more than `DROPINS_MAX` of them is an error.
pub fn open_config_dir(path: &Path, keep: impl Fn(&[u8]) -> bool) -> Result<ConfigDir, Why> {
    let list = || {
        let c = cstring(path)?;
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NONBLOCK;
        let fd = sys::open(&c, flags, 0).map_err(|e| Why::Sys("open", e))?;
        let stat = sys::fstat(fd.as_raw_fd()).map_err(|e| Why::Sys("stat", e))?;
        let mut dir = sys::DirStream::new(fd);
        let mut names = Vec::new();
        while let Some(name) = dir.next_name().map_err(|e| Why::Sys("read", e))? {
            if keep(name) {
                if names.len() == DROPINS_MAX {
                    return Err(Why::TooMany(DROPINS_MAX));
                }
                names.push(name.to_vec());
            }
        }
        names.sort();
        Ok(ConfigDir { dir, stat, names })
    };
    with_caller_rights(list).unwrap_or_else(|e| Err(Why::Sys("drop the capabilities to read", e)))
}

impl ConfigDir {
    /// Reads the drop-in `name` of this directory (through the descriptor listed,
    /// so it is the directory judged) as `read_config` reads the main file.
    pub fn read(&self, name: &[u8], buf: &mut Vec<u8>) -> Result<libc::stat, Why> {
        let read = || {
            let c = CString::new(name)
                .map_err(|_| Why::Sys("use", io::Error::from_raw_os_error(libc::EINVAL)))?;
            let o = open_regular_at(self.dir.fd(), &c, true)?;
            read_capped(&o, CONFIG_MAX, buf)?;
            Ok(o.stat)
        };
        with_caller_rights(read)
            .unwrap_or_else(|e| Err(Why::Sys("drop the capabilities to read", e)))
    }
}

pub fn cstring(p: &Path) -> Result<CString, Why> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Why::Sys("use", io::Error::from_raw_os_error(libc::EINVAL)))
}

/// Runs `f` with the effective capabilities cleared (the permitted set is kept), so
/// that what `f` opens, it opens with the caller's own rights: a user who may run
/// the binary cannot make its `cap_dac_read_search` read a file for them. The
/// capabilities in effect before are restored afterwards; root (uid 0) is left as
/// it is. Fails, without running `f`, when they cannot be cleared.
pub fn with_caller_rights<T>(f: impl FnOnce() -> T) -> io::Result<T> {
    if sys::getuid() == 0 {
        return Ok(f());
    }
    let before = sys::effective_capabilities()?;
    if before != 0 {
        sys::set_effective_capabilities(0)?;
    }
    let out = f();
    if before != 0 {
        let _ = sys::set_effective_capabilities(before);
    }
    Ok(out)
}

const DIR_FLAGS: libc::c_int = libc::O_PATH | libc::O_DIRECTORY;

/// Opens the directory `path` (`O_PATH`) and checks that the agent's own files are
/// safe in it: it and every directory above it, up to `/`, are owned by root or by
/// the agent's user (the effective uid); it is writable by no one else (no group or
/// other write bit); and each directory above it is writable by no one else unless
/// it is sticky (as `/tmp` is). The walk goes up from the opened directory through
/// `..`, so a symlink in `path` is judged by where it leads, and a directory swapped
/// in after the check is not the one returned.
pub fn trusted_dir(path: &Path) -> Result<OwnedFd, Why> {
    let c = cstring(path)?;
    let dir = sys::open(&c, DIR_FLAGS, 0).map_err(|e| Why::Sys("open", e))?;
    let st = sys::fstat(dir.as_raw_fd()).map_err(|e| Why::Sys("stat", e))?;
    let euid = sys::geteuid();
    if let Some(why) = untrusted(&st, euid, false) {
        return Err(Why::Untrusted(format!("{} {why}", path.display())));
    }
    let mut cur = sys::openat(dir.as_raw_fd(), c".", DIR_FLAGS).map_err(|e| Why::Sys("open", e))?;
    let mut cur_st = st;
    for depth in 1.. {
        let up = sys::openat(cur.as_raw_fd(), c"..", DIR_FLAGS).map_err(|e| Why::Sys("open", e))?;
        let up_st = sys::fstat(up.as_raw_fd()).map_err(|e| Why::Sys("stat", e))?;
        if (up_st.st_dev, up_st.st_ino) == (cur_st.st_dev, cur_st.st_ino) {
            break; // `/` (or the root of a chroot) is its own parent
        }
        if let Some(why) = untrusted(&up_st, euid, true) {
            let name = dir_name(&up, path, depth);
            return Err(Why::Untrusted(format!("{name} {why}")));
        }
        if depth > 4096 {
            return Err(Why::Sys("walk", io::Error::from_raw_os_error(libc::ELOOP)));
        }
        cur = up;
        cur_st = up_st;
    }
    Ok(dir)
}

/// Why a directory cannot be trusted, if it cannot (the predicate of a sentence
/// whose subject is the directory): its owner, or who may write it.
/// Above the agent's own directory, a sticky one (`/tmp`) is fine: no one can rename
/// what is not theirs; so is one of root's that root made group-writable (Ubuntu's
/// `/var/log` is `root:syslog 0775`): whoever is in that group could only move
/// directories around, and none they could put in place passes the check of the
/// agent's own directory (owned by root or the agent, writable by no one else).
fn untrusted(st: &libc::stat, euid: u32, above: bool) -> Option<String> {
    let mode = st.st_mode & 0o7777;
    if st.st_uid != 0 && st.st_uid != euid {
        return Some(owner_text(st.st_uid, euid));
    }
    let sticky = mode & libc::S_ISVTX != 0;
    let roots_group_dir = above && st.st_uid == 0 && mode & 0o002 == 0;
    if mode & 0o022 != 0 && !(above && sticky) && !roots_group_dir {
        let other = if above { " and not sticky" } else { "" };
        return Some(format!(
            "is writable by group or others{other} (mode {mode:o})"
        ));
    }
    None
}

fn owner_text(uid: u32, euid: u32) -> String {
    if euid == 0 {
        format!("is owned by uid {uid}, not root")
    } else {
        format!("is owned by uid {uid}, not root or uid {euid}")
    }
}

/// A name for a directory found by walking up: its path from `/proc/self/fd` where
/// /proc is there, else `path` with as many `/..` as it is levels up.
fn dir_name(fd: &OwnedFd, path: &Path, depth: usize) -> String {
    let link = format!("/proc/self/fd/{}", fd.as_raw_fd());
    match std::fs::read_link(link) {
        Ok(p) if p.is_absolute() => p.display().to_string(),
        _ => format!("{}{}", path.display(), "/..".repeat(depth)),
    }
}

/// The checks `open_append` makes of a log file it opened: a regular file owned by
/// the agent's user or root.
fn own_regular(path: &Path, st: &libc::stat) -> Result<(), Why> {
    regular(st)?;
    let euid = sys::geteuid();
    if st.st_uid != 0 && st.st_uid != euid {
        let who = owner_text(st.st_uid, euid);
        return Err(Why::Untrusted(format!("{} {who}", path.display())));
    }
    Ok(())
}

/// A log file opened for appending.
pub struct Appending {
    pub fd: OwnedFd,
    /// The file does not end with a newline (a line was cut short, by a full disk
    /// or a crash): the next line must start with one.
    pub cut: bool,
}

/// Opens the log file `path` for appending, creating it with `mode`: in a directory
/// that `trusted_dir` accepts, relative to that directory's descriptor, without
/// following a symlink (`O_NOFOLLOW`) or blocking (`O_NONBLOCK`), and only a regular
/// file owned by the agent's user or root. A missing directory is `ENOENT`.
pub fn open_append(path: &Path, mode: u32) -> Result<Appending, Why> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Why::Sys("open", io::Error::from_raw_os_error(libc::EISDIR)));
    };
    let dir = trusted_dir(dir)?;
    let name = cstring(Path::new(name))?;
    let flags =
        libc::O_APPEND | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    // Read access too, to see whether the file ends with a newline; a file the
    // agent may only write is still written.
    let (fd, readable) = match sys::openat_mode(dir.as_raw_fd(), &name, flags | libc::O_RDWR, mode)
    {
        Ok(fd) => (fd, true),
        Err(e) if e.raw_os_error() == Some(libc::EACCES) => {
            let fd = sys::openat_mode(dir.as_raw_fd(), &name, flags | libc::O_WRONLY, mode)
                .map_err(|e| open_error(e, false))?;
            (fd, false)
        }
        Err(e) => return Err(open_error(e, false)),
    };
    let st = sys::fstat(fd.as_raw_fd()).map_err(|e| Why::Sys("stat", e))?;
    own_regular(path, &st)?;
    let size = st.st_size.max(0) as u64;
    let cut = readable
        && size > 0
        && matches!(sys::pread_byte(fd.as_raw_fd(), size - 1), Ok(Some(b)) if b != b'\n');
    Ok(Appending { fd, cut })
}

/// The marker in the name of a temporary file: `.NAME.sa-tmp-` and 16 hex digits.
const TMP_MARK: &[u8] = b".sa-tmp-";
const TMP_HEX: usize = 16;

/// A file replaced whole on each write: the data goes to a new temporary file in the
/// same directory, created exclusively (`O_EXCL`, so nothing planted under its name
/// is ever opened, not even a symlink or FIFO), without blocking, under a name from
/// the kernel's random pool, relative to the directory's descriptor, with exactly
/// its mode (whatever the umask); then it is fsync'd (on request) and renamed over
/// the file. The names are built once, so a
/// write in the cycle does not allocate.
pub struct AtomicFile {
    pub path: PathBuf,
    dir: CString,
    name: CString,
    /// `.NAME.sa-tmp-XXXXXXXXXXXXXXXX\0`, its hex digits drawn anew each write.
    tmp: Vec<u8>,
    mode: libc::mode_t,
}

impl AtomicFile {
    pub fn new(path: &Path, mode: libc::mode_t) -> Result<AtomicFile, Why> {
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(Why::Sys("use", io::Error::from_raw_os_error(libc::EISDIR)));
        };
        let mut tmp = Vec::with_capacity(name.len() + TMP_MARK.len() + TMP_HEX + 2);
        tmp.push(b'.');
        tmp.extend_from_slice(name.as_bytes());
        tmp.extend_from_slice(TMP_MARK);
        tmp.extend_from_slice(&[b'0'; TMP_HEX]);
        tmp.push(0);
        Ok(AtomicFile {
            dir: cstring(dir)?,
            name: cstring(Path::new(name))?,
            path: path.to_path_buf(),
            tmp,
            mode,
        })
    }

    pub fn write(&mut self, data: &[u8], sync: bool) -> Result<(), Why> {
        let dir = sys::open(&self.dir, DIR_FLAGS, 0).map_err(|e| Why::Sys("open", e))?;
        let dir = dir.as_raw_fd();
        let fd = self.create_temp(dir)?;
        let tmp = CStr::from_bytes_with_nul(&self.tmp).map_err(|_| Why::Sys("use", einval()))?;
        // Its mode whatever the umask: a 0644 file is for readers of other users.
        let mut result = sys::fchmod(fd.as_raw_fd(), self.mode).map_err(|e| Why::Sys("chmod", e));
        if result.is_ok() {
            result = sys::write_all(fd.as_raw_fd(), data).map_err(|e| Why::Sys("write", e));
        }
        if sync && result.is_ok() {
            result = sys::fsync(fd.as_raw_fd()).map_err(|e| Why::Sys("write", e));
        }
        drop(fd);
        let result = result
            .and_then(|()| sys::renameat(dir, tmp, &self.name).map_err(|e| Why::Sys("rename", e)));
        if result.is_err() {
            let _ = sys::unlinkat(dir, tmp, 0);
        }
        result
    }

    /// A new temporary file under a fresh random name; a name that exists already
    /// (planted, or a coincidence) is never opened: another name is drawn.
    fn create_temp(&mut self, dir: RawFd) -> Result<OwnedFd, Why> {
        let flags = libc::O_WRONLY
            | libc::O_CREAT
            | libc::O_EXCL
            | libc::O_NOFOLLOW
            | libc::O_NONBLOCK
            | libc::O_NOCTTY;
        let mut last = einval();
        for _ in 0..8 {
            self.draw_name();
            let tmp =
                CStr::from_bytes_with_nul(&self.tmp).map_err(|_| Why::Sys("use", einval()))?;
            match sys::openat_mode(dir, tmp, flags, self.mode) {
                Ok(fd) => return Ok(fd),
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => last = e,
                Err(e) => return Err(Why::Sys("create", e)),
            }
        }
        Err(Why::Sys("create", last))
    }

    fn draw_name(&mut self) {
        let mut r = [0u8; TMP_HEX / 2];
        if sys::getrandom(&mut r).is_err() {
            // No random pool yet (early boot): still unique, and O_EXCL keeps it safe.
            let t = sys::monotonic_ns() ^ (u64::from(sys::getpid() as u32) << 40);
            r = t.to_le_bytes();
        }
        let at = self.tmp.len() - 1 - TMP_HEX;
        for (i, b) in r.iter().enumerate() {
            self.tmp[at + 2 * i] = HEX[usize::from(b >> 4)];
            self.tmp[at + 2 * i + 1] = HEX[usize::from(b & 15)];
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn einval() -> io::Error {
    io::Error::from_raw_os_error(libc::EINVAL)
}

/// Whether `entry` names one of our temporary files (`.NAME.sa-tmp-` and 16 hex
/// digits), for `NAME` = `name` when given, any name otherwise.
pub fn is_temp_name(entry: &[u8], name: Option<&[u8]>) -> bool {
    let Some(rest) = entry.strip_prefix(b".") else {
        return false;
    };
    if rest.len() < TMP_MARK.len() + TMP_HEX + 1 {
        return false;
    }
    let (stem, hex) = rest.split_at(rest.len() - TMP_HEX);
    let Some(base) = stem.strip_suffix(TMP_MARK) else {
        return false;
    };
    hex.iter().all(|c| HEX.contains(c)) && !base.is_empty() && name.is_none_or(|n| n == base)
}

/// Removes the temporary files a crash left in `dir` (for the file `name`, or for
/// any file): only regular files of ours by name and owned by the agent's user.
/// Returns how many were removed.
pub fn remove_stale_temps(dir: &Path, name: Option<&[u8]>) -> Result<u64, Why> {
    let c = cstring(dir)?;
    let fd =
        sys::open(&c, libc::O_RDONLY | libc::O_DIRECTORY, 0).map_err(|e| Why::Sys("open", e))?;
    let mut stream = sys::DirStream::new(fd);
    let euid = sys::geteuid();
    let mut removed = 0;
    let mut name_buf = Vec::new();
    while let Some(entry) = stream.next_name().map_err(|e| Why::Sys("read", e))? {
        if !is_temp_name(entry, name) {
            continue;
        }
        name_buf.clear();
        name_buf.extend_from_slice(entry);
        name_buf.push(0);
        let Ok(cname) = CStr::from_bytes_with_nul(&name_buf) else {
            continue;
        };
        let ours = sys::fstatat_nofollow(stream.fd(), cname)
            .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG && st.st_uid == euid);
        if ours && sys::unlinkat(stream.fd(), cname, 0).is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised_exactly() {
        let n = Some(&b"metrics.prom"[..]);
        assert!(is_temp_name(b".metrics.prom.sa-tmp-0123456789abcdef", n));
        assert!(is_temp_name(b".state.sa-tmp-0123456789abcdef", None));
        assert!(!is_temp_name(b".state.sa-tmp-0123456789abcdef", n));
        assert!(!is_temp_name(b".metrics.prom.sa-tmp-0123456789abcdeF", n));
        assert!(!is_temp_name(b".metrics.prom.sa-tmp-0123456789abcde", n));
        assert!(!is_temp_name(b"metrics.prom.sa-tmp-0123456789abcdef", n));
        assert!(!is_temp_name(b"..sa-tmp-0123456789abcdef", None));
        assert!(!is_temp_name(b"metrics.prom.tmp", None));
    }

    #[test]
    fn refusals_say_what_was_found() {
        assert_eq!(
            Why::NotRegular("a FIFO").to_string(),
            "a FIFO, not a regular file"
        );
        assert_eq!(
            Why::TooBig { size: 5, cap: 4 }.to_string(),
            "5 bytes, over the 4-byte limit"
        );
        assert_eq!(owner_text(1000, 0), "is owned by uid 1000, not root");
        assert_eq!(
            owner_text(1000, 105),
            "is owned by uid 1000, not root or uid 105"
        );
    }
}
