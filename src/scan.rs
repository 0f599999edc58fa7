//! The process scan: one pass over /proc, then `openat`/`read`/`close` of each
//! `PID/stat` relative to a kept-open /proc directory — the same syscalls as the C
//! floor in `scripts/bench`, and nothing more. Records go into reused vectors (names
//! into one byte arena), so a scan allocates nothing once they have grown. A process
//! that exits mid-scan is skipped, not reported. CPU% needs the previous scan, which
//! is kept (swapped, not copied) between scans.

use crate::error::Error;
use crate::procfs::parse_u64;
use crate::procfs::pid::parse_pid_stat;
use crate::sys;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Proc {
    pub pid: i32,
    pub ppid: i32,
    /// Clock ticks after boot; with the pid it names one process for its lifetime.
    pub start: u64,
    /// utime + stime in clock ticks.
    pub ticks: u64,
    pub rss_pages: u64,
    pub state: u8,
    pub kthread: bool,
    /// See `PidStat::is_zombie`.
    pub zombie: bool,
    name_at: u32,
    /// At most 64 (longer names are cut), so a record is 40 bytes.
    name_len: u8,
}

impl Proc {
    /// A record with no name (for tests of code that takes scans).
    pub fn bare(pid: i32, ppid: i32, state: u8, start: u64, ticks: u64) -> Proc {
        Proc {
            pid,
            ppid,
            start,
            ticks,
            state,
            zombie: state == b'Z',
            ..Proc::default()
        }
    }

    /// The state for rules: a live group whose main thread exited shows `Z` but is
    /// not a zombie, and has no state a rule can name.
    pub fn rule_state(&self) -> Option<crate::config::ProcState> {
        if self.state == b'Z' && !self.zombie {
            return None;
        }
        crate::config::ProcState::of_letter(self.state)
    }
}

/// The previous scan's counters, enough to compute CPU% (also loaded from state_dir
/// so that consecutive `--once` runs need only one scan).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrevTicks {
    pub pid: i32,
    pub start: u64,
    pub ticks: u64,
}

pub struct Scanner {
    root: PathBuf,
    croot: CString,
    dir: Option<sys::Dir>,
    procs: Vec<Proc>,
    names: Vec<u8>,
    prev: Vec<PrevTicks>,
    /// When `procs` / `prev` were read (monotonic ns, or wall ns for loaded state).
    pub at_ns: u64,
    pub prev_at_ns: Option<u64>,
    buf: Vec<u8>,
    path: Vec<u8>,
    /// The best `n` of the last `top_by`, kept for its capacity.
    order: Vec<(u64, u32)>,
}

impl Scanner {
    pub fn new(proc_root: &Path) -> Scanner {
        Scanner {
            root: proc_root.to_path_buf(),
            croot: CString::new(proc_root.as_os_str().as_bytes()).unwrap_or_default(),
            dir: None,
            procs: Vec::new(),
            names: Vec::new(),
            prev: Vec::new(),
            at_ns: 0,
            prev_at_ns: None,
            buf: Vec::with_capacity(1024),
            path: Vec::with_capacity(32),
            order: Vec::new(),
        }
    }

    pub fn procs(&self) -> &[Proc] {
        &self.procs
    }

    pub fn name(&self, p: &Proc) -> &[u8] {
        &self.names[p.name_at as usize..p.name_at as usize + p.name_len as usize]
    }

    /// The open /proc directory the last scan read (none before the first, or after
    /// a failed one), for reads that must come from the same place.
    pub fn dir(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.dir.as_ref().map(sys::Dir::as_fd)
    }

    pub fn prev(&self) -> &[PrevTicks] {
        &self.prev
    }

    /// Installs counters from an earlier run (sorted by pid), taken at `at_ns`.
    pub fn set_prev(&mut self, prev: Vec<PrevTicks>, at_ns: u64) {
        self.prev = prev;
        self.prev.sort_unstable_by_key(|p| p.pid);
        self.prev_at_ns = Some(at_ns);
    }

    /// Scans all processes; `now_ns` is the clock the CPU% window is measured on.
    /// The current records become the previous ones first.
    pub fn scan(&mut self, now_ns: u64) -> Result<(), Error> {
        let capacity = self.capacities();
        self.keep_previous();
        self.at_ns = now_ns;
        if self.dir.is_none() {
            self.dir =
                Some(sys::Dir::open(&self.croot).map_err(|e| Error::io("open", &self.root, e))?);
        }
        let Some(dir) = self.dir.as_mut() else {
            return Ok(());
        };
        dir.rewind();
        let dirfd = dir.fd();
        let (procs, names, buf, path) = (
            &mut self.procs,
            &mut self.names,
            &mut self.buf,
            &mut self.path,
        );
        let result = dir.for_each(|entry| {
            // A process that exited since the listing (ENOENT, ESRCH) is normal:
            // it is skipped.
            if let Some(p) = read_entry(dirfd, entry, path, buf, names) {
                procs.push(p);
            }
        });
        if let Err(e) = result {
            self.dir = None;
            return Err(Error::io("list", &self.root, e));
        }
        // /proc lists pids in ascending order; make sure, for the binary searches.
        if !self.procs.is_sorted_by_key(|p| p.pid) {
            self.procs.sort_unstable_by_key(|p| p.pid);
        }
        if self.capacities() != capacity {
            // The records outgrew their buffers (the first scans, or many more
            // processes): the old buffers are free heap now, but resident.
            sys::release_free_heap();
        }
        Ok(())
    }

    /// What the record buffers can hold: when a scan changes it, they grew.
    fn capacities(&self) -> [usize; 3] {
        [
            self.procs.capacity(),
            self.prev.capacity(),
            self.names.capacity(),
        ]
    }

    /// The current records become the previous ones (for CPU%), and the current
    /// ones start empty.
    fn keep_previous(&mut self) {
        if !self.procs.is_empty() {
            self.prev.clear();
            self.prev.extend(self.procs.iter().map(|p| PrevTicks {
                pid: p.pid,
                start: p.start,
                ticks: p.ticks,
            }));
            self.prev_at_ns = Some(self.at_ns);
        }
        self.procs.clear();
        self.names.clear();
    }

    /// The CPU window: time between the previous scan and this one.
    pub fn window_ns(&self) -> Option<u64> {
        self.at_ns.checked_sub(self.prev_at_ns?).filter(|&w| w > 0)
    }

    /// Clock ticks `p` used since the previous scan. A process absent from it (new,
    /// or its pid reused, told apart by the start time) counts from its start.
    pub fn ticks_since_prev(&self, p: &Proc) -> u64 {
        let before = match self.prev.binary_search_by_key(&p.pid, |q| q.pid) {
            Ok(i) if self.prev[i].start == p.start => self.prev[i].ticks,
            _ => 0,
        };
        p.ticks.saturating_sub(before)
    }

    /// CPU% of one CPU used by `p` over the window (as `top` shows it), or `None`
    /// without a previous scan.
    pub fn cpu_percent(&self, p: &Proc, ticks_per_sec: u64) -> Option<f64> {
        let window_ns = self.window_ns()?;
        let ticks = self.ticks_since_prev(p);
        Some(ticks as f64 * 100.0 * 1e9 / (window_ns as f64 * ticks_per_sec.max(1) as f64))
    }

    /// Fills `out` with the indices of the top `n` user processes (kernel threads
    /// excluded) by `key`, largest first; ties go to the lower pid. It keeps only
    /// the best `n` seen so far (n is `[agent] top`, at most 100), not a list of
    /// every process: at 5,000 processes that list was 80 KiB of resident memory.
    pub fn top_by(&mut self, n: usize, key: impl Fn(&Scanner, &Proc) -> u64, out: &mut Vec<usize>) {
        let mut best = std::mem::take(&mut self.order);
        best.clear();
        // Larger key first; on a tie the lower index (procs are sorted by pid).
        let rank = |a: &(u64, u32), b: &(u64, u32)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        for (i, p) in self.procs.iter().enumerate() {
            if p.kthread || n == 0 {
                continue;
            }
            let candidate = (key(self, p), i as u32);
            if best.len() == n
                && best
                    .last()
                    .is_some_and(|last| rank(&candidate, last).is_ge())
            {
                continue;
            }
            let at = best.partition_point(|b| rank(b, &candidate).is_lt());
            if best.len() == n {
                best.pop();
            }
            best.insert(at, candidate);
        }
        out.clear();
        out.extend(best.iter().map(|&(_, i)| i as usize));
        self.order = best;
    }

    pub fn get(&self, i: usize) -> &Proc {
        &self.procs[i]
    }
}

/// The one process scan of a cycle, shared by the steps that need one (top, the
/// reaper): made by the first that asks, reused by the others.
pub struct CycleScan {
    pub scanner: Scanner,
    /// `scanner` holds this cycle's scan.
    fresh: bool,
}

impl CycleScan {
    pub fn new(proc_root: &Path) -> CycleScan {
        CycleScan {
            scanner: Scanner::new(proc_root),
            fresh: false,
        }
    }

    /// A new cycle: the last scan is the previous one now.
    pub fn begin_cycle(&mut self) {
        self.fresh = false;
    }

    /// The clock CPU% windows are measured on: the wall clock for `--once`, whose
    /// per-process ticks are saved for the next run; monotonic otherwise.
    pub fn clock(once: bool) -> u64 {
        if once {
            sys::realtime_ns()
        } else {
            sys::monotonic_ns()
        }
    }

    /// Scans now, whether or not this cycle has a scan already.
    pub fn scan_now(&mut self, once: bool) -> Result<&Scanner, Error> {
        self.fresh = false;
        self.scanner.scan(Self::clock(once))?;
        self.fresh = true;
        Ok(&self.scanner)
    }

    /// This cycle's scan, made now unless a step made it already.
    pub fn this_cycle(&mut self, once: bool) -> Result<&Scanner, Error> {
        if self.fresh {
            return Ok(&self.scanner);
        }
        self.scan_now(once)
    }
}

/// The record of one `/proc` entry (its name appended to `names`), or `None` for
/// an entry that is not a process or a process that exited meanwhile: one
/// `openat`/`read`/`close` of `PID/stat` relative to the kept-open `/proc`.
fn read_entry(
    dirfd: std::os::fd::RawFd,
    entry: &[u8],
    path: &mut Vec<u8>,
    buf: &mut Vec<u8>,
    names: &mut Vec<u8>,
) -> Option<Proc> {
    let pid = parse_u64(entry)?;
    let cpath = sys::cpath(path, &[entry, b"/stat"]).ok()?;
    sys::read_at(dirfd, cpath, buf).ok()?;
    let st = parse_pid_stat(buf).ok()?;
    if st.pid as u64 != pid {
        return None;
    }
    let name = &st.name[..st.name.len().min(64)];
    let p = Proc {
        pid: st.pid,
        ppid: st.ppid,
        start: st.starttime,
        ticks: st.cpu_ticks(),
        rss_pages: st.rss_pages,
        state: st.state,
        kthread: st.is_kernel_thread(),
        zombie: st.is_zombie(),
        name_at: names.len() as u32,
        name_len: name.len() as u8,
    };
    names.extend_from_slice(name);
    Some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake /proc of `n` processes whose RSS repeats (so there are ties) and
    /// some kernel threads, in a fresh temp dir.
    fn fake_proc(n: u32) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sa-scan-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for pid in 1..=n {
            let d = dir.join(pid.to_string());
            std::fs::create_dir_all(&d).unwrap();
            let rss = (pid * 7919) % 13;
            let flags = if pid % 10 == 0 { 0x0020_0000 } else { 0 };
            let line = format!(
                "{pid} (p{pid}) S 1 {pid} {pid} 0 -1 {flags} 0 0 0 0 {pid} 0 0 0 20 0 1 0 {pid} 0 {rss} \
                 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
            );
            std::fs::write(d.join("stat"), line).unwrap();
        }
        dir
    }

    /// The kept-best selection gives what sorting every process gives: the
    /// largest keys first, ties to the lower pid, kernel threads left out.
    #[test]
    fn top_by_agrees_with_a_full_sort() {
        let dir = fake_proc(60);
        let mut s = Scanner::new(&dir);
        s.scan(1).unwrap();
        assert_eq!(s.procs().len(), 60);
        let mut all: Vec<(u64, usize)> = (0..s.procs().len())
            .filter(|&i| !s.get(i).kthread)
            .map(|i| (s.get(i).rss_pages, i))
            .collect();
        all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let mut out = Vec::new();
        for n in [0, 1, 5, 13, 54, 100] {
            s.top_by(n, |_, p| p.rss_pages, &mut out);
            let want: Vec<usize> = all.iter().take(n).map(|&(_, i)| i).collect();
            assert_eq!(out, want, "n = {n}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
