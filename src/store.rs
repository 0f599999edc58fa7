//! The one owner of `state_dir`, where a restart or the next cron `--once` finds
//! what the last run knew (CPU and hysteresis counters, per-process ticks, what
//! each feature did). Everything about those files is decided here, once:
//!
//! - the lock that makes one instance the actor (only the lock holder writes);
//! - the trusted-directory check (`files::trusted_dir`), so a `state_dir` someone
//!   else could write is refused, not used;
//! - reading the safe way (`files::read_file`: no symlink, no FIFO, no more than
//!   the kind's cap), a corrupt or refused file reported once and replaced;
//! - writing atomically (`files::AtomicFile` through `outputs::Outputs`, so a
//!   failing file is reported when it starts failing and when it recovers);
//! - the dry-run copies: what a dry run decided is kept in `NAME.dry-run`, so dry
//!   cron runs are as calm as real ones, yet a real run never takes it as done;
//! - one format family. Every file is text:
//!
//! ```text
//! system-agent-<kind> <version>
//! saved <wall ns>           (the kinds that need them, in this order)
//! btime <boot time, s>
//! boot <boot id>
//! <records: one per line, a word then fields; names and free text last>
//! end
//! ```
//!
//! The store writes and checks the first line (the kind, a version it reads), the
//! stamp lines and the `end` line (a file without it was cut short); each feature
//! formats and parses only its records, in pure functions of its own.

use crate::error::Error;
use crate::files;
use crate::log::{Level, Logger};
use crate::outputs::Outputs;
use crate::procfs::{lines, parse_u64};
use crate::sys;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

/// One kind of file in `state_dir`.
pub struct Kind {
    /// Its file name, and its word in the first line.
    pub name: &'static str,
    /// The version written; every version from `oldest` on is read.
    pub version: u32,
    pub oldest: u32,
    /// Why a file of another kind or version is refused.
    pub refused: &'static str,
    /// The most it may hold (see `state::max`).
    pub cap: u64,
    /// It records actions: a dry run keeps its own copy, `NAME.dry-run`.
    pub acts: bool,
}

/// What `Store::read` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Loaded<T> {
    /// The file, parsed.
    Found(T),
    /// No file: nothing of this kind was ever saved here.
    Missing,
    /// A file that was refused or could not be parsed (it was logged).
    Unusable,
}

/// The stamp lines of a file: when it was saved and the boot it belongs to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamp<'a> {
    pub saved_ns: Option<u64>,
    /// Boot time (`btime` of /proc/stat), seconds since the epoch.
    pub btime: Option<u64>,
    /// The boot id (one word).
    pub boot: Option<&'a str>,
}

/// The last line of every file.
const END: &str = "end\n";

/// Starts a file of `kind`: its first line and the stamp lines given.
pub fn begin(out: &mut String, kind: &Kind, stamp: &Stamp) {
    out.clear();
    let _ = writeln!(out, "system-agent-{} {}", kind.name, kind.version);
    if let Some(s) = stamp.saved_ns {
        let _ = writeln!(out, "saved {s}");
    }
    if let Some(b) = stamp.btime {
        let _ = writeln!(out, "btime {b}");
    }
    if let Some(b) = stamp.boot {
        let _ = writeln!(out, "boot {b}");
    }
}

/// Ends a file begun with `begin`.
pub fn end(out: &mut String) {
    out.push_str(END);
}

/// The version of a file of `kind` and its lines after the first (without the
/// `end` line), or why it is refused: `kind.refused` when the first line is not
/// this kind at a version read, "truncated" without the `end` line.
pub fn open<'a>(
    kind: &Kind,
    text: &'a [u8],
) -> Result<(u32, impl Iterator<Item = &'a [u8]>), &'static str> {
    let first = lines(text).next().unwrap_or_default();
    let version = first
        .strip_prefix(b"system-agent-")
        .and_then(|r| r.strip_prefix(kind.name.as_bytes()))
        .and_then(|r| r.strip_prefix(b" "))
        .and_then(parse_u64)
        .filter(|v| (kind.oldest as u64..=kind.version as u64).contains(v))
        .ok_or(kind.refused)?;
    let body = match text.strip_suffix(END.as_bytes()) {
        Some(body) if body.is_empty() || body.ends_with(b"\n") => body,
        _ => return Err("truncated"),
    };
    Ok((version as u32, lines(body).skip(1)))
}

/// What is wrong with the stamp lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StampError {
    /// The line of this word is malformed.
    Bad(&'static str),
    /// The line of this word, which the kind needs, is not there.
    Missing(&'static str),
}

/// Reads the stamp lines at the start of `lines` (each optional, in the order
/// `begin` writes them, blank lines skipped), then checks that those in `needs`
/// were there. Leaves `lines` at the first record.
pub fn read_stamp<'a, I>(
    lines: &mut std::iter::Peekable<I>,
    needs: &[&'static str],
) -> Result<Stamp<'a>, StampError>
where
    I: Iterator<Item = &'a [u8]>,
{
    let mut stamp = Stamp::default();
    let mut next = |word: &'static str| -> Option<&'a [u8]> {
        while lines.next_if(|l| l.is_empty()).is_some() {}
        let line = lines.peek()?;
        let rest = line.strip_prefix(word.as_bytes())?.strip_prefix(b" ")?;
        lines.next();
        Some(rest)
    };
    let number = |word, rest| parse_u64(rest).ok_or(StampError::Bad(word));
    if let Some(rest) = next("saved") {
        stamp.saved_ns = Some(number("saved", rest)?);
    }
    if let Some(rest) = next("btime") {
        stamp.btime = Some(number("btime", rest)?);
    }
    if let Some(rest) = next("boot") {
        let word = std::str::from_utf8(rest).ok();
        let word = word.filter(|w| !w.is_empty() && !w.contains([' ', '\t']));
        stamp.boot = Some(word.ok_or(StampError::Bad("boot"))?);
    }
    for &word in needs {
        let there = match word {
            "saved" => stamp.saved_ns.is_some(),
            "btime" => stamp.btime.is_some(),
            _ => stamp.boot.is_some(),
        };
        if !there {
            return Err(StampError::Missing(word));
        }
    }
    Ok(stamp)
}

/// The exclusive lock on `state_dir/lock`, held for the life of the process.
struct Lock {
    _fd: OwnedFd,
}

/// Why the lock was not taken.
pub enum NotLocked {
    /// Another instance (the service) holds it: observe, do not act.
    Busy(PathBuf),
    Failed(Error),
}

impl std::fmt::Display for NotLocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotLocked::Busy(path) => write!(f, "another instance holds {}", path.display()),
            NotLocked::Failed(e) => e.fmt(f),
        }
    }
}

pub struct Store {
    dir: PathBuf,
    dry_run: bool,
    lock: Option<Lock>,
    /// Each file with its health, so a failing one is reported once.
    files: Outputs,
    /// The text being written (its storage reused).
    text: String,
    /// The path of the file being written (its storage reused).
    path_buf: PathBuf,
}

impl Store {
    pub fn new(dir: &Path, dry_run: bool) -> Store {
        Store {
            dir: dir.to_path_buf(),
            dry_run,
            lock: None,
            files: Outputs::new("state", 0o600),
            text: String::new(),
            path_buf: PathBuf::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether this instance holds the lock: it may act and write state.
    pub fn locked(&self) -> bool {
        self.lock.is_some()
    }

    /// A new configuration's dry-run setting (the directory changes by `lock`).
    pub fn set_dry_run(&mut self, dry_run: bool) {
        self.dry_run = dry_run;
    }

    /// Takes the lock in `dir` (creating it if need be), which then becomes the
    /// store's directory; the lock file holds `pid` (the service's) or nothing (a
    /// one-shot), so `pkill -HUP -L -F state_dir/lock` signals the running service
    /// and nothing else. On failure the store keeps its directory and its lock.
    pub fn lock(&mut self, dir: &Path, pid: Option<i32>) -> Result<(), NotLocked> {
        let lock = take_lock(dir, pid).map_err(NotLocked::Failed)?;
        let lock = lock.ok_or_else(|| NotLocked::Busy(dir.join("lock")))?;
        self.lock = Some(lock);
        self.dir = dir.to_path_buf();
        Ok(())
    }

    /// The path of a file of `kind`: its dry-run copy in a dry run, when it
    /// records actions.
    pub fn path(&self, kind: &Kind) -> PathBuf {
        let mut path = PathBuf::new();
        self.path_into(kind, &mut path);
        path
    }

    /// `path` into `buf`, reusing its storage.
    fn path_into(&self, kind: &Kind, buf: &mut PathBuf) {
        buf.as_mut_os_string().clear();
        buf.push(&self.dir);
        buf.push(kind.name);
        if kind.acts && self.dry_run {
            buf.as_mut_os_string().push(".dry-run");
        }
    }

    /// A file of `kind` parsed by `parse`, or why there is none: no file at all
    /// (nothing was ever saved), or one refused (not a regular file, a symlink,
    /// over the cap) or that cannot be parsed, which is logged and replaced by the
    /// next save.
    pub fn read<T, E: std::fmt::Display>(
        &self,
        kind: &Kind,
        log: &mut Logger,
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Loaded<T> {
        let path = self.path(kind);
        let mut bytes = Vec::new();
        let why = match files::read_file(&path, false, kind.cap, &mut bytes) {
            Ok(_) => match parse(&bytes) {
                Ok(v) => return Loaded::Found(v),
                Err(why) => why.to_string(),
            },
            Err(why) if why.is_missing() => return Loaded::Missing,
            Err(why) => why.to_string(),
        };
        log.error(Level::Warn, "state", why)
            .path("path", &path)
            .str("effect", "starting fresh; the file will be replaced")
            .emit();
        Loaded::Unusable
    }

    /// `read`, for a kind that starts fresh alike with no file and a bad one.
    pub fn load<T, E: std::fmt::Display>(
        &self,
        kind: &Kind,
        log: &mut Logger,
        parse: impl FnOnce(&[u8]) -> Result<T, E>,
    ) -> Option<T> {
        match self.read(kind, log, parse) {
            Loaded::Found(v) => Some(v),
            Loaded::Missing | Loaded::Unusable => None,
        }
    }

    /// Replaces the file of `kind` with what `format` writes (mode 0600, fsync'd):
    /// only by the lock holder. A failure is logged when it starts, the recovery
    /// when it ends. Returns whether the file was written.
    pub fn save(
        &mut self,
        kind: &Kind,
        log: &mut Logger,
        format: impl FnOnce(&mut String),
    ) -> bool {
        let mut text = std::mem::take(&mut self.text);
        format(&mut text);
        let written = self.save_text(kind, log, &text);
        self.text = text;
        written
    }

    /// `save` of a text the caller made (and keeps, to compare with the next).
    pub fn save_text(&mut self, kind: &Kind, log: &mut Logger, text: &str) -> bool {
        if !self.locked() {
            return false;
        }
        // The path in a kept buffer: the service rewrites `state` whenever a
        // hysteresis counter moves, and a cycle allocates nothing.
        let mut path = std::mem::take(&mut self.path_buf);
        self.path_into(kind, &mut path);
        let written = self.files.write(&path, text.as_bytes(), true, log);
        self.path_buf = path;
        written
    }

    /// Once the lock is ours: removes the temporary files a crash left behind
    /// (see `files::remove_stale_temps`; `state_dir` holds only the agent's files).
    pub fn remove_stale_temps(&self, log: &mut Logger) {
        if let Err(why) = files::remove_stale_temps(&self.dir, None) {
            log.error(Level::Warn, "state_dir", Error::file(&self.dir, why))
                .emit();
        }
    }
}

/// Creates `dir` (mode 0700, and its parents 0755) if needed, checks it can be
/// trusted (`files::trusted_dir`: owned by root or the agent's user, writable by
/// no one else, nor any directory above it unless sticky) and takes the lock;
/// `None` when another process holds it.
fn take_lock(dir: &Path, pid: Option<i32>) -> Result<Option<Lock>, Error> {
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| Error::io("create", parent, e))?;
    }
    let cdir = files::cstring(dir).map_err(|why| Error::file(dir, why))?;
    match sys::mkdir(&cdir, 0o700) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
        Err(e) => return Err(Error::io("create", dir, e)),
    }
    // A symlink named as state_dir is not followed: the lock would be elsewhere.
    let st = sys::lstat(&cdir).map_err(|e| Error::io("stat", dir, e))?;
    if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
        let not_dir = std::io::Error::from_raw_os_error(libc::ENOTDIR);
        return Err(Error::io("use", dir, not_dir));
    }
    let dirfd = files::trusted_dir(dir).map_err(|why| Error::file(dir, why))?;
    let path = dir.join("lock");
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY;
    let fd = sys::openat_mode(dirfd.as_raw_fd(), c"lock", flags, 0o600)
        .map_err(|e| Error::io("open", &path, e))?;
    match sys::try_lock_exclusive(fd.as_raw_fd()) {
        Ok(true) => {
            let text = pid.map(|p| format!("{p}\n")).unwrap_or_default();
            sys::ftruncate(fd.as_raw_fd())
                .and_then(|()| sys::write_all(fd.as_raw_fd(), text.as_bytes()))
                .map_err(|e| Error::io("write", &path, e))?;
            Ok(Some(Lock { _fd: fd }))
        }
        Ok(false) => Ok(None),
        Err(e) => Err(Error::io("lock", &path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOTE: Kind = Kind {
        name: "note",
        version: 3,
        oldest: 2,
        refused: "not a version 2 or 3 note file",
        cap: 1024,
        acts: true,
    };

    fn parse(text: &[u8]) -> Result<(u32, Stamp<'_>, Vec<&[u8]>), String> {
        let (version, lines) = open(&NOTE, text).map_err(str::to_string)?;
        let mut lines = lines.peekable();
        let stamp = read_stamp(&mut lines, &["saved"]).map_err(|e| format!("{e:?}"))?;
        Ok((version, stamp, lines.collect()))
    }

    #[test]
    fn one_format_family() {
        let mut out = String::from("stale");
        let stamp = Stamp {
            saved_ns: Some(5),
            btime: None,
            boot: Some("0b5e"),
        };
        begin(&mut out, &NOTE, &stamp);
        out.push_str("note 1 first\n");
        end(&mut out);
        assert_eq!(
            out,
            "system-agent-note 3\nsaved 5\nboot 0b5e\nnote 1 first\nend\n"
        );
        assert_eq!(
            parse(out.as_bytes()),
            Ok((3, stamp, vec![&b"note 1 first"[..], b""]))
        );
        // An older version still read; blank lines between stamp lines skipped.
        let old = b"system-agent-note 2\n\nsaved 1\nx\nend\n";
        assert_eq!(
            parse(old).map(|(v, s, _)| (v, s.saved_ns)),
            Ok((2, Some(1)))
        );
        for (text, want) in [
            (
                &b"system-agent-note 1\nsaved 1\nend\n"[..],
                "not a version 2 or 3 note file",
            ),
            (
                b"system-agent-note 4\nsaved 1\nend\n",
                "not a version 2 or 3 note file",
            ),
            (
                b"system-agent-notes 3\nsaved 1\nend\n",
                "not a version 2 or 3 note file",
            ),
            (b"", "not a version 2 or 3 note file"),
            (b"system-agent-note 3\nsaved 1\n", "truncated"),
            (b"system-agent-note 3\nsaved 1\nend", "truncated"),
            (b"system-agent-note 3\nsaved 1end\n", "truncated"),
            (b"system-agent-note 3\nsaved x\nend\n", "Bad(\"saved\")"),
            (
                b"system-agent-note 3\nsaved 1\nboot a b\nend\n",
                "Bad(\"boot\")",
            ),
            (
                b"system-agent-note 3\nboot a\nsaved 1\nend\n",
                "Missing(\"saved\")",
            ),
            (b"system-agent-note 3\nend\n", "Missing(\"saved\")"),
        ] {
            assert_eq!(
                parse(text).map(drop),
                Err(want.to_string()),
                "{}",
                text.escape_ascii()
            );
        }
    }

    #[test]
    fn a_dry_run_keeps_its_own_copy_of_what_records_actions() {
        let mut s = Store::new(Path::new("/state"), true);
        let plain = Kind {
            acts: false,
            ..NOTE
        };
        assert_eq!(s.path(&NOTE), Path::new("/state/note.dry-run"));
        assert_eq!(s.path(&plain), Path::new("/state/note"));
        s.set_dry_run(false);
        assert_eq!(s.path(&NOTE), Path::new("/state/note"));
    }

    #[test]
    fn a_read_tells_no_file_from_one_that_cannot_be_read() {
        let dir = std::env::temp_dir().join(format!("sa-store-read-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let target = crate::log::Target {
            level: Level::Info,
            file: Some(dir.join("log")),
            mode: 0o600,
            syslog: None,
            format: crate::config::LogFormat::Logfmt,
        };
        let mut log = Logger::new(&target);
        let s = Store::new(&dir, false);
        let kind = Kind {
            acts: false,
            ..NOTE
        };
        let version = |b: &[u8]| open(&kind, b).map(|(v, _)| v);
        assert_eq!(s.read(&kind, &mut log, version), Loaded::Missing);
        std::fs::write(dir.join("note"), "system-agent-note 3\nend\n").unwrap();
        assert_eq!(s.read(&kind, &mut log, version), Loaded::Found(3));
        assert_eq!(s.load(&kind, &mut log, version), Some(3));
        std::fs::write(dir.join("note"), "system-agent-note 3\n").unwrap();
        assert_eq!(s.read(&kind, &mut log, version), Loaded::Unusable);
        std::fs::remove_file(dir.join("note")).unwrap();
        std::os::unix::fs::symlink(dir.join("gone"), dir.join("note")).unwrap();
        assert_eq!(s.read(&kind, &mut log, version), Loaded::Unusable);
        assert_eq!(s.load(&kind, &mut log, version), None);
        let logged = std::fs::read_to_string(dir.join("log")).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        // Each file there that could not be used is said; no file is not.
        assert_eq!(
            logged.matches(" event=error what=state ").count(),
            3,
            "{logged}"
        );
    }
}
