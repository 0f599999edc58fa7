//! Telling systemd how the service is doing, so that a `Type=notify` unit is
//! active only once the first cycle has run, shows a reload while one is under
//! way, and is restarted when its loop hangs (its watchdog). The protocol (what
//! `sd_notify(3)` sends) is one datagram per message, `KEY=value` lines, to the
//! Unix socket `$NOTIFY_SOCKET` names: a path, or `@name` in the abstract
//! namespace. No library and no `unsafe`: the standard library's datagram socket
//! speaks both kinds of address.
//!
//! Without `$NOTIFY_SOCKET` (Supervisor, cron, a shell, `--once`) nothing is sent.
//! Sending never blocks (the socket is non-blocking: a message systemd has no
//! room for is dropped) and never stops the agent: the first failure is logged,
//! later ones are not. Children never see the variable: they get a minimal
//! environment of their own (`child::base_env`).

use crate::error::{errno_name, errno_text};
use crate::log::{Level, Logger};
use crate::sys;
use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The service's messages to systemd, and when the watchdog wants the next one.
pub struct Notify {
    /// The socket and where it sends to; `None`: not under systemd, or its socket
    /// cannot be used (said once).
    to: Option<Target>,
    /// The watchdog timeout (`$WATCHDOG_USEC`) in ns, when it is meant for us.
    watchdog_ns: Option<u64>,
    /// Monotonic ns of the last `WATCHDOG=1`.
    pinged: u64,
    /// `READY=1` has been sent (after the first cycle).
    ready: bool,
    /// A send failed and was logged: later failures are not.
    failed: bool,
}

struct Target {
    sock: UnixDatagram,
    addr: SocketAddr,
    /// `$NOTIFY_SOCKET` as given, for the log.
    name: String,
}

impl Notify {
    /// From the environment systemd gives a `Type=notify` service.
    pub fn from_env(log: &mut Logger) -> Notify {
        let var = |k| std::env::var_os(k);
        let watchdog = watchdog_ns(
            var("WATCHDOG_USEC").as_deref(),
            var("WATCHDOG_PID").as_deref(),
            sys::getpid(),
        );
        Notify::new(var("NOTIFY_SOCKET").as_deref(), watchdog, log)
    }

    /// Sending to `socket` (`None`: nothing is sent), with a watchdog of
    /// `watchdog_ns` when given.
    pub fn new(socket: Option<&OsStr>, watchdog_ns: Option<u64>, log: &mut Logger) -> Notify {
        let mut n = Notify {
            to: None,
            watchdog_ns,
            pinged: sys::monotonic_ns(),
            ready: false,
            failed: false,
        };
        // Empty is unset, as for sd_notify(3)'s callers that blank it.
        let Some(var) = socket.filter(|v| !v.is_empty()) else {
            return n;
        };
        let name = var.to_string_lossy().into_owned();
        match open(var) {
            Ok((sock, addr)) => n.to = Some(Target { sock, addr, name }),
            Err(e) => {
                n.failed = true;
                log_failure(log, &name, "", &e);
            }
        }
        n
    }

    /// After each cycle: `READY=1` after the first, `WATCHDOG=1` after every one.
    pub fn cycled(&mut self, log: &mut Logger) {
        if !self.ready {
            self.ready = true;
            self.send(log, "READY=1");
        }
        self.ping(log, sys::monotonic_ns());
    }

    /// Monotonic ns by which the loop must wake to keep the watchdog fed when no
    /// cycle comes sooner (an `interval` over half the watchdog timeout).
    pub fn deadline(&self) -> u64 {
        match self.watchdog_ns {
            Some(t) if self.to.is_some() => self.pinged.saturating_add(t / 2),
            _ => u64::MAX,
        }
    }

    /// Between cycles: `WATCHDOG=1` when half the watchdog timeout has passed
    /// since the last one (the loop is alive, only its cycles are far apart).
    pub fn keep_alive(&mut self, log: &mut Logger, now: u64) {
        if now >= self.deadline() {
            self.ping(log, now);
        }
    }

    /// Before a reload (once ready): `RELOADING=1` with the monotonic time, which
    /// systemd (253 and later) wants beside it to tell one reload from the next.
    pub fn reloading(&mut self, log: &mut Logger) {
        if self.ready && self.to.is_some() {
            let usec = sys::monotonic_ns() / 1000;
            self.send(log, &format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
        }
    }

    /// After a reload, whether the new configuration was taken or refused.
    pub fn reloaded(&mut self, log: &mut Logger) {
        if self.ready {
            self.send(log, "READY=1");
        }
    }

    /// When a stop was asked for, before the children are stopped.
    pub fn stopping(&mut self, log: &mut Logger) {
        self.send(log, "STOPPING=1");
    }

    fn ping(&mut self, log: &mut Logger, now: u64) {
        if self.watchdog_ns.is_some() {
            self.pinged = now;
            self.send(log, "WATCHDOG=1");
        }
    }

    fn send(&mut self, log: &mut Logger, msg: &str) {
        let Some(t) = &self.to else {
            return;
        };
        if let Err(e) = t.sock.send_to_addr(msg.as_bytes(), &t.addr)
            && !std::mem::replace(&mut self.failed, true)
        {
            log_failure(log, &t.name, msg, &e);
        }
    }
}

/// The one line about a failure (`msg` empty: the socket could not be set up).
fn log_failure(log: &mut Logger, name: &str, msg: &str, e: &io::Error) {
    let why = match msg.split('\n').next() {
        Some("") | None => format!("cannot use NOTIFY_SOCKET={name}: {}", errno_text(e)),
        Some(first) => format!("cannot send {first} to {name}: {}", errno_text(e)),
    };
    let mut ev = log.error(Level::Warn, "notify", why);
    if e.raw_os_error().is_some() {
        ev = ev.str("errno", &errno_name(e));
    }
    ev.str(
        "effect",
        "systemd is not told; later failures are not logged",
    )
    .emit();
}

/// An unbound non-blocking datagram socket (close-on-exec) and the address
/// `$NOTIFY_SOCKET` names.
fn open(var: &OsStr) -> io::Result<(UnixDatagram, SocketAddr)> {
    let addr = address(var)?;
    let sock = UnixDatagram::unbound()?;
    sock.set_nonblocking(true)?;
    Ok((sock, addr))
}

/// The address `$NOTIFY_SOCKET` names: `@name` in the abstract namespace, or an
/// absolute path; anything else (a relative path, a `vsock:` address) is refused.
pub fn address(var: &OsStr) -> io::Result<SocketAddr> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what);
    match var.as_bytes() {
        [b'@', name @ ..] if !name.is_empty() => SocketAddr::from_abstract_name(name),
        [b'/', ..] => SocketAddr::from_pathname(var),
        _ => Err(invalid("not an absolute path or @abstract name")),
    }
}

/// The watchdog timeout in ns: `$WATCHDOG_USEC`, a positive number of
/// microseconds, when `$WATCHDOG_PID` is unset or names `me` (a variable a
/// parent service passed on is not ours to answer).
pub fn watchdog_ns(usec: Option<&OsStr>, pid: Option<&OsStr>, me: i32) -> Option<u64> {
    let number = |v: &OsStr| v.to_str().and_then(|s| s.parse::<u64>().ok());
    if let Some(pid) = pid
        && number(pid) != Some(me as u64)
    {
        return None;
    }
    match number(usec?) {
        Some(us) if us > 0 => Some(us.saturating_mul(1000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    #[test]
    fn the_watchdog_is_ours_only_when_its_pid_is_unset_or_ours() {
        assert_eq!(
            watchdog_ns(Some(os("30000000")), None, 7),
            Some(30_000_000_000)
        );
        assert_eq!(
            watchdog_ns(Some(os("500")), Some(os("7")), 7),
            Some(500_000)
        );
        assert_eq!(watchdog_ns(Some(os("500")), Some(os("8")), 7), None);
        assert_eq!(watchdog_ns(Some(os("500")), Some(os("x")), 7), None);
        assert_eq!(watchdog_ns(None, Some(os("7")), 7), None);
        for bad in ["", "0", "-5", "1.5", "30s", " 30"] {
            assert_eq!(watchdog_ns(Some(os(bad)), None, 7), None, "{bad:?}");
        }
    }

    /// A socket bound in a private dir, a log file beside it, and the `Notify`
    /// that sends there (watchdog timeout 1 s).
    struct Bench {
        dir: std::path::PathBuf,
        sock: UnixDatagram,
        log: Logger,
        n: Notify,
    }

    impl Bench {
        fn new(tag: &str) -> Bench {
            let dir = std::env::temp_dir().join(format!("sa-notify-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let sock = UnixDatagram::bind(dir.join("notify")).unwrap();
            sock.set_nonblocking(true).unwrap();
            let mut log = Logger::new(&crate::log::Target {
                level: Level::Info,
                file: Some(dir.join("log")),
                mode: 0o600,
                syslog: None,
                format: crate::config::LogFormat::Logfmt,
            });
            let n = Notify::new(
                Some(dir.join("notify").as_os_str()),
                Some(1_000_000_000),
                &mut log,
            );
            Bench { dir, sock, log, n }
        }

        /// The datagrams received so far.
        fn received(&self) -> Vec<String> {
            let mut out = Vec::new();
            let mut buf = [0u8; 256];
            while let Ok(n) = self.sock.recv(&mut buf) {
                out.push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
            out
        }

        /// The log's lines without their timestamps.
        fn log(&self) -> Vec<String> {
            let text = std::fs::read_to_string(self.dir.join("log")).unwrap_or_default();
            text.lines()
                .map(|l| l.split_once(' ').unwrap().1.to_string())
                .collect()
        }
    }

    impl Drop for Bench {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    #[test]
    fn ready_after_the_first_cycle_a_ping_each_cycle_and_a_reload_between_readies() {
        let mut b = Bench::new("seq");
        // Not ready yet: a reload says nothing.
        b.n.reloading(&mut b.log);
        b.n.reloaded(&mut b.log);
        assert_eq!(b.received(), Vec::<String>::new());
        b.n.cycled(&mut b.log);
        b.n.cycled(&mut b.log);
        assert_eq!(b.received(), ["READY=1", "WATCHDOG=1", "WATCHDOG=1"]);
        let before = sys::monotonic_ns() / 1000;
        b.n.reloading(&mut b.log);
        let after = sys::monotonic_ns() / 1000;
        b.n.reloaded(&mut b.log);
        b.n.stopping(&mut b.log);
        let got = b.received();
        let usec: u64 = got[0]
            .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("{got:?}"))
            .parse()
            .unwrap();
        assert!(before <= usec && usec <= after, "{before} {usec} {after}");
        assert_eq!(got[1..], ["READY=1", "STOPPING=1"]);
        assert_eq!(b.log(), Vec::<String>::new());
    }

    #[test]
    fn between_cycles_the_watchdog_is_fed_at_half_its_timeout() {
        let mut b = Bench::new("keep");
        b.n.cycled(&mut b.log);
        let due = b.n.deadline();
        assert_eq!(due, b.n.pinged + 500_000_000);
        b.n.keep_alive(&mut b.log, due - 1);
        assert_eq!(b.received(), ["READY=1", "WATCHDOG=1"]);
        b.n.keep_alive(&mut b.log, due);
        assert_eq!(b.received(), ["WATCHDOG=1"]);
        assert_eq!(b.n.deadline(), due + 500_000_000);
        // Without a watchdog (or a socket), no deadline and no ping.
        let mut quiet = Notify::new(Some(b.dir.join("notify").as_os_str()), None, &mut b.log);
        assert_eq!(quiet.deadline(), u64::MAX);
        quiet.keep_alive(&mut b.log, u64::MAX);
        quiet.cycled(&mut b.log);
        assert_eq!(b.received(), ["READY=1"]);
        let off = Notify::new(None, Some(1_000_000_000), &mut b.log);
        assert_eq!(off.deadline(), u64::MAX);
    }

    #[test]
    fn a_failure_is_logged_once_and_the_agent_goes_on() {
        let mut b = Bench::new("fail");
        b.n.cycled(&mut b.log);
        std::fs::remove_file(b.dir.join("notify")).unwrap();
        for _ in 0..3 {
            b.n.cycled(&mut b.log);
        }
        b.n.stopping(&mut b.log);
        let path = b.dir.join("notify").display().to_string();
        assert_eq!(
            b.log(),
            [format!(
                "level=warn event=error what=notify error=\"cannot send WATCHDOG=1 to {path}: No such \
                 file or directory\" errno=ENOENT effect=\"systemd is not told; later failures are \
                 not logged\""
            )]
        );
    }

    #[test]
    fn a_socket_that_cannot_be_used_is_said_once_at_the_start() {
        let mut b = Bench::new("bad");
        let mut n = Notify::new(Some(OsStr::new("relative/notify")), Some(1), &mut b.log);
        n.cycled(&mut b.log);
        n.stopping(&mut b.log);
        // Empty is unset: nothing to say.
        let empty = Notify::new(Some(OsStr::new("")), Some(1), &mut b.log);
        assert_eq!(empty.deadline(), u64::MAX);
        assert_eq!(
            b.log(),
            [
                "level=warn event=error what=notify error=\"cannot use NOTIFY_SOCKET=relative/notify: \
              not an absolute path or @abstract name\" effect=\"systemd is not told; later \
              failures are not logged\""
            ]
        );
    }

    #[test]
    fn addresses_are_absolute_paths_or_abstract_names() {
        let a = address(os("/run/systemd/notify")).unwrap();
        assert_eq!(
            a.as_pathname(),
            Some(std::path::Path::new("/run/systemd/notify"))
        );
        let a = address(os("@/org/freedesktop/systemd1/notify/42")).unwrap();
        assert_eq!(
            a.as_abstract_name(),
            Some(&b"/org/freedesktop/systemd1/notify/42"[..])
        );
        for bad in ["", "@", "run/notify", "vsock:2:1234"] {
            let e = address(os(bad)).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{bad:?}");
        }
        let long = format!("/{}", "x".repeat(200));
        assert!(address(os(&long)).is_err());
    }
}
