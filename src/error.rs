//! Runtime errors that name their place: the operation, the path, the errno text.
//! Config errors have their own type (`config::ConfigError`) with file and line.

use crate::procfs::ParseError;
use std::fmt;
use std::io;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// A system call on a path failed: `cannot read /proc/stat: Permission denied`.
    Io {
        op: &'static str,
        path: PathBuf,
        err: io::Error,
    },
    /// A file was read but is not what we expected: `bad /proc/stat: no "cpuN" lines`.
    Parse { path: PathBuf, err: ParseError },
    /// A file or directory opened the safe way (`files`) failed or was refused:
    /// `refused /var/lib/x/state: a FIFO, not a regular file`.
    File { path: PathBuf, why: Why },
}

impl Error {
    pub fn io(op: &'static str, path: impl Into<PathBuf>, err: io::Error) -> Error {
        Error::Io {
            op,
            path: path.into(),
            err,
        }
    }

    pub fn parse(path: impl Into<PathBuf>, err: ParseError) -> Error {
        Error::Parse {
            path: path.into(),
            err,
        }
    }

    pub fn file(path: impl Into<PathBuf>, why: Why) -> Error {
        Error::File {
            path: path.into(),
            why,
        }
    }

    /// True when a file vanished: for /proc/PID files that is a process that exited.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::Io { err, .. } if matches!(err.raw_os_error(), Some(libc::ENOENT | libc::ESRCH)))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { op, path, err } => {
                write!(f, "cannot {op} {}: {}", path.display(), errno_text(err))
            }
            Error::Parse { path, err } => write!(f, "bad {}: {err}", path.display()),
            Error::File {
                path,
                why: Why::Sys(op, err),
            } => write!(f, "cannot {op} {}: {}", path.display(), errno_text(err)),
            Error::File { path, why } => write!(f, "refused {}: {why}", path.display()),
        }
    }
}

impl std::error::Error for Error {}

/// `No such file or directory`, without Rust's ` (os error 2)` suffix.
pub fn errno_text(e: &io::Error) -> String {
    let s = e.to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The errno symbol for log fields (`errno=ENOENT`), or the number.
pub fn errno_name(e: &io::Error) -> String {
    let n = e.raw_os_error().unwrap_or(0);
    let name = match n {
        libc::EPERM => "EPERM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EINTR => "EINTR",
        libc::EIO => "EIO",
        libc::EBADF => "EBADF",
        libc::EAGAIN => "EAGAIN",
        libc::ENOMEM => "ENOMEM",
        libc::EACCES => "EACCES",
        libc::EEXIST => "EEXIST",
        libc::ENOTDIR => "ENOTDIR",
        libc::EISDIR => "EISDIR",
        libc::EINVAL => "EINVAL",
        libc::EMFILE => "EMFILE",
        libc::ENOSPC => "ENOSPC",
        libc::EROFS => "EROFS",
        libc::EPIPE => "EPIPE",
        libc::ELOOP => "ELOOP",
        libc::ECONNREFUSED => "ECONNREFUSED",
        libc::EDQUOT => "EDQUOT",
        libc::EBUSY => "EBUSY",
        libc::ENOTEMPTY => "ENOTEMPTY",
        libc::EXDEV => "EXDEV",
        libc::EFBIG => "EFBIG",
        libc::ENXIO => "ENXIO",
        _ => return n.to_string(),
    };
    name.to_string()
}

/// Why a file or directory was not used.
#[derive(Debug)]
pub enum Why {
    /// A system call failed: `op` is what was being done (open, stat, read, ...).
    Sys(&'static str, io::Error),
    /// What is there is not a regular file: "a FIFO", "a symbolic link", ...
    NotRegular(&'static str),
    /// Larger than the cap (as `fstat` said, or as it grew while read).
    TooBig { size: u64, cap: u64 },
    /// Owned or writable by someone it must not be: a sentence that names the file
    /// or directory at fault, its owner or mode.
    Untrusted(String),
    /// A directory holds more entries to read than the cap.
    TooMany(usize),
}

impl Why {
    pub fn errno(&self) -> Option<&io::Error> {
        match self {
            Why::Sys(_, e) => Some(e),
            _ => None,
        }
    }

    /// Nothing by that name (`ENOENT`): for an optional file, not an error.
    pub fn is_missing(&self) -> bool {
        self.errno().and_then(io::Error::raw_os_error) == Some(libc::ENOENT)
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Why::Sys(_, e) => f.write_str(&errno_text(e)),
            Why::NotRegular(kind) => write!(f, "{kind}, not a regular file"),
            Why::TooBig { size, cap } => write!(f, "{size} bytes, over the {cap}-byte limit"),
            Why::Untrusted(s) => f.write_str(s),
            Why::TooMany(cap) => write!(f, "more than {cap} files to read"),
        }
    }
}
