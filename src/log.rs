//! Event lines, to the log file (or stderr) and to syslog.
//!
//! `ts=2026-11-26T10:05:00.123Z level=warn event=alert metric=cpu state=critical value=93.1 threshold=90`
//!
//! In logfmt, or in the log file as JSON Lines (`[agent] log_format = json`):
//! `{"ts":"2026-11-26T10:05:00.123Z","level":"warn","event":"alert","metric":"cpu",...}`;
//! syslog always gets logfmt. All escaping happens here (`line`), so no input (a
//! process name, a path, a command line) can forge a line. A line is built in one
//! reused buffer and written with one `write(2)`; the steady-state cycle logs
//! without allocating. A failing sink never stops the agent: it is reported once
//! (on the other sinks), retried, and its recovery is reported with how much was
//! lost.

mod line;

use crate::error::{errno_name, errno_text};
use crate::files;
use crate::health::{Health, Problem};
use crate::sys;
use line::Line;
pub use line::{push_kv, push_value};
use std::io::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    pub fn parse(v: &str) -> Result<Level, String> {
        match v.to_ascii_lowercase().as_str() {
            "debug" => Ok(Level::Debug),
            "info" => Ok(Level::Info),
            "warn" | "warning" => Ok(Level::Warn),
            "error" => Ok(Level::Error),
            _ => Err(format!(
                "invalid log level \"{v}\" (expected debug, info, warn or error)"
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }

    /// syslog severity: LOG_DEBUG 7, LOG_INFO 6, LOG_WARNING 4, LOG_ERR 3.
    fn severity(self) -> u8 {
        match self {
            Level::Debug => 7,
            Level::Info => 6,
            Level::Warn => 4,
            Level::Error => 3,
        }
    }
}

/// How the log file (and the audit log) writes an event; syslog always gets logfmt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `ts=... level=... event=... key=value`.
    Logfmt,
    /// JSON Lines: one object per event, with the same keys.
    Json,
}

impl LogFormat {
    pub const ALL: [(LogFormat, &'static str); 2] =
        [(LogFormat::Logfmt, "logfmt"), (LogFormat::Json, "json")];
}

/// Where lines go and how to reach syslog (the config builds it: `[agent]`, and
/// `[audit]` for the audit trail).
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub level: Level,
    pub file: Option<PathBuf>,
    /// Mode of a log file this creates (the audit log is 0600).
    pub mode: u32,
    /// Of the file (or stderr); syslog gets logfmt.
    pub format: LogFormat,
    pub syslog: Option<(PathBuf, u8)>,
}

pub struct Logger {
    min: Level,
    line: Line,
    file: Option<LogFile>,
    syslog: Option<Syslog>,
    /// The clock, replaceable in tests.
    pub now_ns: fn() -> u64,
}

impl Logger {
    /// Opens the sinks. Failures are not fatal: they are reported in the first lines
    /// written and retried (`status()` tells the start event what works).
    pub fn new(target: &Target) -> Logger {
        let mut log = Logger {
            min: target.level,
            line: Line::new(target.format == LogFormat::Json),
            file: target.file.as_deref().map(|p| LogFile::new(p, target.mode)),
            syslog: target.syslog.as_ref().map(|(p, f)| Syslog::new(p, *f)),
            now_ns: sys::realtime_ns,
        };
        log.report_sink_problems();
        log
    }

    /// Applies a new target (a reload) and reopens the file and syslog in any case,
    /// which is what logrotate's `postrotate` SIGHUP relies on.
    pub fn reopen(&mut self, target: &Target) {
        self.min = target.level;
        self.line.set_json(target.format == LogFormat::Json);
        match (&mut self.file, &target.file) {
            (Some(f), Some(p)) if f.path == *p => f.reopen(),
            (_, p) => self.file = p.as_deref().map(|p| LogFile::new(p, target.mode)),
        }
        match (&mut self.syslog, &target.syslog) {
            (Some(s), Some((p, fac))) if s.path == *p => {
                s.facility = *fac;
                s.reconnect();
            }
            (_, t) => self.syslog = t.as_ref().map(|(p, f)| Syslog::new(p, *f)),
        }
        self.report_sink_problems();
    }

    /// "ok", "off" or "unavailable: <reason>" for the start event.
    pub fn syslog_status(&self) -> String {
        match &self.syslog {
            None => "off".to_string(),
            Some(s) => match &s.last_error {
                None => "ok".to_string(),
                Some(e) => format!("unavailable: {e}"),
            },
        }
    }

    pub fn enabled(&self, level: Level) -> bool {
        level >= self.min
    }

    /// Starts a line; add fields and call `emit`. Below the minimum level it is a no-op.
    pub fn event(&mut self, level: Level, name: &str) -> Event<'_> {
        let now = (self.now_ns)();
        self.event_at(level, name, now)
    }

    /// An event whose `ts=` is `ts_ns` rather than now (a command's recorded time).
    pub fn event_at(&mut self, level: Level, name: &str, ts_ns: u64) -> Event<'_> {
        let on = self.enabled(level);
        if on {
            self.line.start(ts_ns, level.name(), name);
        }
        Event {
            log: self,
            level,
            on,
        }
    }

    /// `event=error what=WHAT error="..."`: a step that failed. Add fields, then emit.
    pub fn error(&mut self, level: Level, what: &str, err: impl std::fmt::Display) -> Event<'_> {
        self.event(level, "error")
            .str("what", what)
            .display("error", err)
    }

    fn write_line(&mut self, level: Level) {
        self.line.finish();
        let file_problem = match &mut self.file {
            Some(f) => f.write(self.line.for_file()),
            None => {
                let _ = sys::write_all(2, self.line.for_file());
                None
            }
        };
        let body = self.line.for_syslog();
        let syslog_problem = self
            .syslog
            .as_mut()
            .and_then(|s| s.send(level.severity(), body));
        if let Some(p) = file_problem {
            self.report("log_file", &p);
        }
        if let Some(p) = syslog_problem {
            self.report("syslog", &p);
        }
    }

    fn report_sink_problems(&mut self) {
        if let Some(p) = self.file.as_mut().and_then(|f| f.health.take()) {
            self.report("log_file", &p);
        }
        if let Some(p) = self.syslog.as_mut().and_then(|s| s.health.take()) {
            self.report("syslog", &p);
        }
    }

    /// An output failed or recovered (a sink, the metrics file, a state file): say
    /// so once per episode, on every sink but a failing one (so there is no loop).
    pub fn report(&mut self, what: &str, p: &Problem) {
        let mut line = Line::new(self.line.json());
        let now = (self.now_ns)();
        match p {
            Problem::Failed {
                target,
                errno,
                error,
            } => {
                line.start(now, Level::Error.name(), "error");
                line.text("what", what.as_bytes());
                line.text("path", target.as_os_str().as_bytes());
                if let Some(n) = errno {
                    let e = std::io::Error::from_raw_os_error(*n);
                    line.text("errno", errno_name(&e).as_bytes());
                }
                line.text("error", error.as_bytes());
                line.text("note", b"retrying");
            }
            Problem::Recovered {
                target,
                count,
                unit,
            } => {
                line.start(now, Level::Warn.name(), "error");
                line.text("what", what.as_bytes());
                line.text("status", b"recovered");
                line.text("path", target.as_os_str().as_bytes());
                line.number(unit, format_args!("{count}"));
            }
        }
        line.finish();
        let to_file = what != "log_file";
        match &mut self.file {
            Some(f) if to_file => {
                let _ = f.write(line.for_file());
            }
            _ => {
                let _ = sys::write_all(2, line.for_file());
            }
        }
        if what != "syslog"
            && let Some(s) = &mut self.syslog
        {
            let sev = match p {
                Problem::Failed { .. } => Level::Error.severity(),
                Problem::Recovered { .. } => Level::Warn.severity(),
            };
            let _ = s.send(sev, line.for_syslog());
        }
    }
}

/// One line being built. Field methods escape values; `emit` writes the line.
#[must_use = "call .emit() to write the line"]
pub struct Event<'a> {
    log: &'a mut Logger,
    level: Level,
    on: bool,
}

impl Event<'_> {
    pub fn str(self, key: &str, value: &str) -> Self {
        self.bytes(key, value.as_bytes())
    }

    /// A field that is there only when `value` is.
    pub fn opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.str(key, v),
            None => self,
        }
    }

    pub fn bytes(self, key: &str, value: &[u8]) -> Self {
        if self.on {
            self.log.line.text(key, value);
        }
        self
    }

    pub fn path(self, key: &str, value: &Path) -> Self {
        self.bytes(key, value.as_os_str().as_bytes())
    }

    pub fn u64(self, key: &str, value: u64) -> Self {
        if self.on {
            self.log.line.number(key, format_args!("{value}"));
        }
        self
    }

    pub fn i64(self, key: &str, value: i64) -> Self {
        if self.on {
            self.log.line.number(key, format_args!("{value}"));
        }
        self
    }

    /// A number with a fixed count of decimals: `value=93.1`.
    pub fn num(self, key: &str, value: f64, decimals: usize) -> Self {
        if self.on {
            self.log
                .line
                .number(key, format_args!("{value:.decimals$}"));
        }
        self
    }

    /// A number written as briefly as it reads back, as the config prints it:
    /// `threshold=90`, `threshold=85.5`.
    pub fn float(self, key: &str, value: f64) -> Self {
        if self.on {
            self.log.line.number(key, format_args!("{value}"));
        }
        self
    }

    /// Anything `Display` (durations, errors). Escaped like any value; may allocate,
    /// so keep it off the per-cycle path.
    pub fn display(self, key: &str, value: impl std::fmt::Display) -> Self {
        if self.on {
            let s = value.to_string();
            self.log.line.text(key, s.as_bytes());
        }
        self
    }

    pub fn emit(self) {
        if self.on {
            self.log.write_line(self.level);
        }
    }
}

/// The log file: opened append-only (so logrotate's copytruncate also works) the
/// safe way (`files::open_append`: a regular file of ours, in a directory only root
/// or the agent's user can write, never through a symlink), reopened on SIGHUP,
/// retried at most every 5 s while it cannot be opened. A line goes in whole with
/// one write, or what went in is ended, so the next line always starts a line.
struct LogFile {
    path: PathBuf,
    mode: u32,
    fd: Option<OwnedFd>,
    /// The file ends inside a line (a write cut short by a full disk): the next
    /// line starts with a newline.
    cut: bool,
    next_open_ns: u64,
    health: Health,
}

const RETRY_NS: u64 = 5_000_000_000;

impl LogFile {
    fn new(path: &Path, mode: u32) -> LogFile {
        let mut f = LogFile {
            path: path.to_path_buf(),
            mode,
            fd: None,
            cut: false,
            next_open_ns: 0,
            health: Health::new(path, "lost"),
        };
        f.open();
        f
    }

    fn open(&mut self) {
        self.next_open_ns = sys::monotonic_ns() + RETRY_NS;
        let mut result = files::open_append(&self.path, self.mode);
        if matches!(&result, Err(why) if why.is_missing()) {
            // The log directory is missing (a fresh host, a new chroot): make it.
            if let Some(dir) = self.path.parent() {
                let _ = std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o750)
                    .create(dir);
            }
            result = files::open_append(&self.path, self.mode);
        }
        match result {
            Ok(f) => {
                self.fd = Some(f.fd);
                self.cut = f.cut;
            }
            Err(why) => self.health.fail_why(&why),
        }
    }

    fn reopen(&mut self) {
        self.fd = None;
        self.open();
    }

    fn write(&mut self, line: &[u8]) -> Option<Problem> {
        if self.fd.is_none() && sys::monotonic_ns() >= self.next_open_ns {
            self.open();
        }
        let Some(fd) = &self.fd else {
            self.health.count_lost();
            return self.health.take();
        };
        let fd = fd.as_raw_fd();
        let lead: &[u8] = if self.cut { b"\n" } else { b"" };
        let result = if !lead.is_empty() {
            sys::writev2(fd, lead, line)
        } else {
            sys::write_once(fd, line)
        };
        match result {
            Ok(n) if n == lead.len() + line.len() => {
                self.cut = false;
                self.health.delivered()
            }
            Ok(n) => {
                // Cut short (a full disk): the part written stays (an O_APPEND file
                // cannot be taken back), and is ended here or by the next line.
                self.cut = n > lead.len() || n == 0 && self.cut;
                self.end_cut_line(fd)
            }
            Err(err) => self.health.lose_io(&err),
        }
    }

    /// After a short write: a newline ends the cut line now if there is room, so
    /// the line is lost rather than continued by the next one; an error that leaves
    /// is the reason reported.
    fn end_cut_line(&mut self, fd: std::os::fd::RawFd) -> Option<Problem> {
        if self.cut {
            match sys::write_once(fd, b"\n") {
                Ok(1) => self.cut = false,
                Ok(_) => {}
                Err(err) => return self.health.lose_io(&err),
            }
        }
        self.health.count_lost();
        self.health
            .fail_with(None, || "a line was cut short".to_string());
        self.health.take()
    }
}

/// A syslog connection through the `syslog` crate (which connects, falling back to a
/// stream socket), sending frames we format ourselves into a reused buffer. The crate
/// never reconnects and blocks when the reader stalls, so: the datagram socket is
/// non-blocking (a full queue drops the line and counts it), and a send error
/// rebuilds the connection once, then waits 5 s (or a reload) before trying again.
struct Syslog {
    path: PathBuf,
    facility: u8,
    conn: Option<syslog::Logger<syslog::LoggerBackend, ()>>,
    frame: Vec<u8>,
    pid: u32,
    next_try_ns: u64,
    last_error: Option<String>,
    health: Health,
}

const SYSLOG_RETRY_NS: u64 = 5_000_000_000;

impl Syslog {
    fn new(path: &Path, facility: u8) -> Syslog {
        let mut s = Syslog {
            path: path.to_path_buf(),
            facility,
            conn: None,
            frame: Vec::with_capacity(512),
            pid: std::process::id(),
            next_try_ns: 0,
            last_error: None,
            health: Health::new(path, "lost"),
        };
        s.reconnect();
        s
    }

    fn reconnect(&mut self) {
        self.conn = None;
        self.next_try_ns = sys::monotonic_ns() + SYSLOG_RETRY_NS;
        match syslog::unix_custom((), &self.path) {
            Ok(conn) => {
                match &conn.backend {
                    syslog::LoggerBackend::Unix(s) => {
                        let _ = s.set_nonblocking(true);
                    }
                    syslog::LoggerBackend::UnixStream(s) => {
                        let _ = s.get_ref().set_nonblocking(true);
                    }
                    _ => {}
                }
                self.conn = Some(conn);
                self.last_error = None;
            }
            Err(e) => {
                let err = syslog_io_error(e);
                self.last_error = Some(errno_text(&err));
                self.health.fail_io(&err);
            }
        }
    }

    /// `<PRI>Mmm dd hh:mm:ss system-agent[PID]: MESSAGE`, the RFC 3164 form the
    /// syslog crate writes, with a space-padded day and UTC time.
    fn format(&mut self, severity: u8, msg: &str) {
        self.frame.clear();
        let _ = write!(self.frame, "<{}>", self.facility | severity);
        crate::timefmt::syslog_stamp(sys::realtime_ns(), &mut self.frame);
        let _ = write!(self.frame, " system-agent[{}]: ", self.pid);
        self.frame.extend_from_slice(msg.as_bytes());
    }

    fn send(&mut self, severity: u8, msg: &str) -> Option<Problem> {
        if self.conn.is_none() {
            if sys::monotonic_ns() < self.next_try_ns {
                self.health.count_lost();
                return None;
            }
            self.reconnect();
        }
        self.format(severity, msg);
        let mut result = self.write_frame();
        if self.conn.is_some()
            && matches!(&result, Err(e) if e.kind() != std::io::ErrorKind::WouldBlock)
        {
            // The daemon restarted or the socket went away: rebuild once, resend.
            self.reconnect();
            result = self.write_frame();
        }
        match result {
            Ok(()) => self.health.delivered(),
            Err(e) => {
                // A stalled reader (EAGAIN) keeps its connection: the line is dropped
                // rather than stalling the loop.
                if e.kind() != std::io::ErrorKind::WouldBlock {
                    self.conn = None;
                }
                self.health.lose_io(&e)
            }
        }
    }

    fn write_frame(&mut self) -> std::io::Result<()> {
        match &mut self.conn {
            Some(c) => c.backend.write(&self.frame).map(drop),
            None => Err(std::io::Error::from_raw_os_error(libc::ENOTCONN)),
        }
    }
}

/// The errno behind a syslog crate error (it boxes an `Io` inside `Initialization`).
fn syslog_io_error(e: syslog::Error) -> std::io::Error {
    match e {
        syslog::Error::Io(io) | syslog::Error::Write(io) => io,
        syslog::Error::Initialization(inner) => match inner.downcast::<syslog::Error>() {
            Ok(e) => syslog_io_error(*e),
            Err(inner) => match inner.downcast::<std::io::Error>() {
                Ok(io) => *io,
                Err(other) => std::io::Error::other(other.to_string()),
            },
        },
    }
}
