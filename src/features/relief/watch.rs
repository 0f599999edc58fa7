//! What memory relief reads from the host: `meminfo` and `pressure/memory`
//! through kept-open descriptors (one `pread` each, parsed in place: a check
//! between cycles allocates nothing), the kernel's PSI trigger on
//! `pressure/memory` (`Trigger`), and the facts `choose` asks of a candidate
//! (`ProcFacts`), read from the directory the process scan read.

use super::choose::{Facts, Oom};
use crate::error::{Error, errno_text};
use crate::features::reaper::details::ProcDetails;
use crate::features::reaper::plan::Details;
use crate::procfs::meminfo::{Meminfo, parse_meminfo};
use crate::procfs::pressure::parse_pressure;
use crate::sample::ProcFile;
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The window of the PSI trigger: the shortest a process without
/// `CAP_SYS_RESOURCE` may ask for is a multiple of 2 s (the kernel refuses
/// others with EINVAL), and a trigger fires as soon as the stall within the
/// window reaches its threshold, so a longer one would not react sooner.
pub const TRIGGER_WINDOW_US: u64 = 2_000_000;

/// `[paths] proc`'s `meminfo` and `pressure/memory`, kept open.
pub struct Host {
    meminfo: ProcFile,
    /// `None` on a kernel without PSI.
    pressure: Option<ProcFile>,
    buf: Vec<u8>,
}

impl Host {
    pub fn new(proc_root: &Path) -> Host {
        Host {
            meminfo: ProcFile::new(proc_root.join("meminfo")),
            pressure: ProcFile::open_now(proc_root.join("pressure/memory")),
            buf: Vec::with_capacity(4096),
        }
    }

    /// /proc/meminfo now: one `pread`, no allocation once the buffer has grown.
    pub fn meminfo(&mut self) -> Result<Meminfo, Error> {
        self.meminfo.parse(&mut self.buf, parse_meminfo)
    }

    /// PSI memory full avg10 now, when the kernel has PSI.
    pub fn psi_full(&mut self) -> Option<f64> {
        let p = self.pressure.as_mut()?.parse(&mut self.buf, parse_pressure);
        p.ok()?.full.map(|f| f.avg10)
    }
}

/// A PSI trigger: the kernel makes its descriptor report `POLLPRI` when memory
/// full stall within `TRIGGER_WINDOW_US` reaches the threshold it was given.
pub struct Trigger {
    fd: OwnedFd,
}

impl Trigger {
    /// Registers `full <share of the window> <window>` on `path` (a
    /// `pressure/memory` file: the host's, or a cgroup's `memory.pressure`).
    /// `Err` says why not, for the start event.
    pub fn register(path: &Path, full_percent: f64) -> Result<Trigger, String> {
        let c = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("{} has a NUL byte", path.display()))?;
        let fd = sys::open(&c, libc::O_RDWR | libc::O_NONBLOCK, 0)
            .map_err(|e| format!("cannot open {}: {}", path.display(), errno_text(&e)))?;
        let line = trigger_line(full_percent);
        match sys::write_all(fd.as_raw_fd(), line.as_bytes()) {
            Ok(()) => Ok(Trigger { fd }),
            Err(e) => Err(format!(
                "{} refused the trigger \"{}\": {}",
                path.display(),
                line.trim_end(),
                errno_text(&e)
            )),
        }
    }

    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// The line that registers a trigger for `full_percent` of full stall, in µs of
/// the window (at least 1: the kernel refuses 0). It ends in a newline: the
/// kernel reads at most what was written and puts its NUL on the last byte.
pub fn trigger_line(full_percent: f64) -> String {
    let window = TRIGGER_WINDOW_US as f64;
    let stall = (window * full_percent / 100.0).round().clamp(1.0, window);
    format!("full {} {TRIGGER_WINDOW_US}\n", stall as u64)
}

/// `Facts` read from the directory the process scan read: owner and root
/// directory as the reaper reads them (`ProcDetails`), `oom_score` and
/// `oom_score_adj`.
pub struct ProcFacts<'a> {
    details: ProcDetails<'a>,
    dir: BorrowedFd<'a>,
    path: Vec<u8>,
    buf: Vec<u8>,
}

impl<'a> ProcFacts<'a> {
    pub fn new(dir: BorrowedFd<'a>) -> ProcFacts<'a> {
        ProcFacts {
            details: ProcDetails::new(dir),
            dir,
            path: Vec::new(),
            buf: Vec::new(),
        }
    }

    /// The number in `PID/file` (`-1000`, `667`).
    fn number(&mut self, pid: i32, file: &[u8]) -> Option<i64> {
        let pid = pid.to_string();
        let c = sys::cpath(&mut self.path, &[pid.as_bytes(), b"/", file]).ok()?;
        sys::read_at(self.dir.as_raw_fd(), c, &mut self.buf).ok()?;
        std::str::from_utf8(&self.buf).ok()?.trim().parse().ok()
    }
}

impl Facts for ProcFacts<'_> {
    fn uid(&mut self, pid: i32) -> Option<u32> {
        self.details.uid(pid)
    }

    fn same_root(&mut self, pid: i32) -> bool {
        self.details.same_root(pid)
    }

    fn oom(&mut self, pid: i32) -> Option<Oom> {
        let adj = i32::try_from(self.number(pid, b"oom_score_adj")?).ok()?;
        let score = u32::try_from(self.number(pid, b"oom_score")?).ok()?;
        Some(Oom { score, adj })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn the_trigger_line_is_the_share_of_a_two_second_window() {
        assert_eq!(trigger_line(10.0), "full 200000 2000000\n");
        assert_eq!(trigger_line(2.5), "full 50000 2000000\n");
        assert_eq!(trigger_line(0.0), "full 1 2000000\n");
        assert_eq!(trigger_line(100.0), "full 2000000 2000000\n");
    }

    #[test]
    fn this_hosts_meminfo_and_this_processes_oom_figures() {
        let mut host = Host::new(Path::new("/proc"));
        let m = host.meminfo().expect("/proc/meminfo");
        assert!(m.total_kb > 0 && m.available_kb <= m.total_kb, "{m:?}");
        let dir = sys::open(c"/proc", libc::O_RDONLY | libc::O_DIRECTORY, 0).expect("/proc");
        let mut facts = ProcFacts::new(dir.as_fd());
        let me = sys::getpid();
        let adj = std::fs::read_to_string("/proc/self/oom_score_adj").expect("adj");
        let oom = facts.oom(me).expect("our own oom figures");
        assert_eq!(oom.adj.to_string(), adj.trim());
        assert!(oom.score <= 2000, "{oom:?}");
        assert_eq!(facts.uid(me), Some(sys::getuid()));
        assert!(facts.oom(i32::MAX).is_none(), "no such process");
    }

    #[test]
    fn a_trigger_where_the_kernel_offers_one_and_why_not_elsewhere() {
        let missing = Trigger::register(Path::new("/nonexistent/pressure/memory"), 10.0);
        let why = missing.err().unwrap_or_default();
        assert_eq!(
            why,
            "cannot open /nonexistent/pressure/memory: No such file or directory"
        );
        // /proc/pressure/memory takes a 2 s window from anyone (where PSI is on).
        if Path::new("/proc/pressure/memory").exists() {
            let t = Trigger::register(Path::new("/proc/pressure/memory"), 10.0);
            let t = t.unwrap_or_else(|why| panic!("{why}"));
            let mut pfd = [libc::pollfd {
                fd: t.fd(),
                events: libc::POLLPRI,
                revents: 0,
            }];
            // Nothing stalls this host for 200 ms now: no event, no error.
            let _ = sys::poll(&mut pfd, 0);
            assert_eq!(pfd[0].revents & (libc::POLLERR | libc::POLLNVAL), 0);
        }
    }
}
