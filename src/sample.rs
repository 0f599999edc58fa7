//! One cycle's host reading: CPU counters, memory, load and pressure here, the
//! watched mounts in `mounts.rs` (which keeps a hung one from stalling the loop).
//! The /proc files are opened once and re-read with `pread` each cycle into one
//! reused buffer, so a cycle without a process scan makes a handful of syscalls and
//! allocates nothing. Every path comes from `[paths] proc` and `[disk] mounts`.

use crate::error::Error;
use crate::procfs::ParseError;
use crate::procfs::loadavg::{LoadAvg, parse_loadavg};
use crate::procfs::meminfo::{Meminfo, parse_meminfo};
use crate::procfs::pressure::{Pressure, parse_pressure};
use crate::procfs::stat::{Stat, parse_stat};
use crate::sys;
use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// A kept-open /proc file, reopened after any error (for instance a remounted /proc).
pub struct ProcFile {
    pub path: PathBuf,
    cpath: CString,
    fd: Option<OwnedFd>,
}

impl ProcFile {
    pub fn new(path: PathBuf) -> ProcFile {
        let cpath = CString::new(path.as_os_str().as_bytes()).unwrap_or_default();
        ProcFile {
            path,
            cpath,
            fd: None,
        }
    }

    /// A file that must exist now (optional sources), or `None`.
    pub fn open_now(path: PathBuf) -> Option<ProcFile> {
        let mut f = ProcFile::new(path);
        let fd = sys::open(&f.cpath, libc::O_RDONLY | libc::O_NONBLOCK, 0).ok()?;
        f.fd = Some(fd);
        Some(f)
    }

    /// Reads the whole file into `buf`.
    pub fn read<'b>(&mut self, buf: &'b mut Vec<u8>) -> Result<&'b [u8], Error> {
        if self.fd.is_none() {
            let fd = sys::open(&self.cpath, libc::O_RDONLY | libc::O_NONBLOCK, 0)
                .map_err(|e| Error::io("open", &self.path, e))?;
            self.fd = Some(fd);
        }
        let fd = self.fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(-1);
        match sys::pread_all(fd, buf) {
            Ok(_) => Ok(buf),
            Err(e) => {
                self.fd = None;
                Err(Error::io("read", &self.path, e))
            }
        }
    }

    pub fn parse<T>(
        &mut self,
        buf: &mut Vec<u8>,
        parse: fn(&[u8]) -> Result<T, ParseError>,
    ) -> Result<T, Error> {
        let bytes = self.read(buf)?;
        parse(bytes).map_err(|e| Error::parse(&self.path, e))
    }
}

/// `df`'s view of one mount: used% rounded up, as `df` prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskUsage {
    pub used_percent: u32,
    /// `None` on filesystems without an inode count (some report 0 inodes).
    pub inode_percent: Option<u32>,
    pub avail_bytes: u64,
    pub size_bytes: u64,
    /// Bytes in use (`blocks - bfree`), what a forecast follows.
    pub used_bytes: u64,
    /// Inodes in use and free; both 0 without an inode count.
    pub inodes_used: u64,
    pub inodes_free: u64,
}

impl DiskUsage {
    /// `df`: used = blocks − bfree; percent = ⌈used × 100 ÷ (used + bavail)⌉, because
    /// the space reserved for root is neither used nor available to users.
    pub fn from_stats(s: &sys::FsStats) -> DiskUsage {
        let used = s.blocks.saturating_sub(s.bfree);
        let used_percent = ceil_percent(used, used.saturating_add(s.bavail));
        let inode_percent =
            (s.files > 0).then(|| ceil_percent(s.files.saturating_sub(s.ffree), s.files));
        DiskUsage {
            used_percent,
            inode_percent,
            avail_bytes: s.bavail.saturating_mul(s.frsize),
            size_bytes: s.blocks.saturating_mul(s.frsize),
            used_bytes: used.saturating_mul(s.frsize),
            inodes_used: s.files.saturating_sub(s.ffree),
            inodes_free: if s.files > 0 { s.ffree } else { 0 },
        }
    }
}

fn ceil_percent(part: u64, whole: u64) -> u32 {
    if whole == 0 {
        return 0;
    }
    let p = (part as u128 * 100).div_ceil(whole as u128);
    p.min(100) as u32
}

pub const PRESSURE_KINDS: [&str; 3] = ["cpu", "memory", "io"];

/// What one cycle read of /proc (the mounts are `Reading::disks`). Each part fails
/// on its own; a failure is kept with its reason.
pub struct HostSample {
    pub stat: Result<Stat, Error>,
    pub mem: Result<Meminfo, Error>,
    pub load: Result<LoadAvg, Error>,
    /// `None` where the pressure file is absent (reported once at start).
    pub pressure: [Option<Pressure>; 3],
}

pub struct Sampler {
    stat: ProcFile,
    meminfo: ProcFile,
    loadavg: ProcFile,
    pressure: [Option<ProcFile>; 3],
    buf: Vec<u8>,
}

impl Sampler {
    pub fn new(proc_root: &Path) -> Sampler {
        // Opened now: a kernel without PSI turns the pressure figures off for good.
        let pressure =
            PRESSURE_KINDS.map(|k| ProcFile::open_now(proc_root.join("pressure").join(k)));
        Sampler {
            stat: ProcFile::new(proc_root.join("stat")),
            meminfo: ProcFile::new(proc_root.join("meminfo")),
            loadavg: ProcFile::new(proc_root.join("loadavg")),
            pressure,
            buf: Vec::with_capacity(16 * 1024),
        }
    }

    /// Which pressure files exist, for the start event: `cpu,memory,io` or `none`.
    pub fn pressure_available(&self) -> String {
        let names: Vec<&str> = PRESSURE_KINDS
            .iter()
            .zip(&self.pressure)
            .filter(|(_, p)| p.is_some())
            .map(|(k, _)| *k)
            .collect();
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(",")
        }
    }

    /// Just the CPU counters (for a second sample a moment after the first).
    pub fn read_stat(&mut self) -> Result<Stat, Error> {
        self.stat.parse(&mut self.buf, parse_stat)
    }

    /// Reads the /proc figures into `out` (the disks are `Mounts::sample`'s).
    pub fn sample(&mut self, out: &mut HostSample) {
        out.stat = self.stat.parse(&mut self.buf, parse_stat);
        out.mem = self.meminfo.parse(&mut self.buf, parse_meminfo);
        out.load = self.loadavg.parse(&mut self.buf, parse_loadavg);
        for (slot, file) in out.pressure.iter_mut().zip(&mut self.pressure) {
            // A pressure file that fails to parse is treated as absent this cycle.
            *slot = file
                .as_mut()
                .and_then(|f| f.parse(&mut self.buf, parse_pressure).ok());
        }
    }
}

impl HostSample {
    pub fn empty() -> HostSample {
        let none = || Error::io("read", "", std::io::Error::from_raw_os_error(libc::ENODATA));
        HostSample {
            stat: Err(none()),
            mem: Err(none()),
            load: Err(none()),
            pressure: [None; 3],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disk_percent_matches_df() {
        // df: 1K-blocks 10255636, Used 8502532 (blocks-bfree), Available 1212396, Use% 88%
        let s = sys::FsStats {
            blocks: 10_255_636,
            bfree: 1_753_104,
            bavail: 1_212_396,
            files: 655_360,
            ffree: 400_000,
            frsize: 1024,
        };
        let d = DiskUsage::from_stats(&s);
        assert_eq!(d.used_percent, 88);
        assert_eq!(d.inode_percent, Some(39));
        assert_eq!(d.used_bytes, 8_502_532 * 1024);
        assert_eq!((d.inodes_used, d.inodes_free), (255_360, 400_000));
        assert_eq!(
            DiskUsage::from_stats(&sys::FsStats::default()),
            DiskUsage::default()
        );
        // One block used of 1000: df shows 1%, never 0%.
        let tiny = sys::FsStats {
            blocks: 1000,
            bfree: 999,
            bavail: 999,
            files: 0,
            ffree: 0,
            frsize: 4096,
        };
        assert_eq!(DiskUsage::from_stats(&tiny).used_percent, 1);
        assert_eq!(DiskUsage::from_stats(&tiny).inode_percent, None);
    }
}
