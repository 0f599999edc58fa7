//! `/proc/stat`: the aggregate CPU counters, the number of CPUs and the boot time.
//!
//! ```text
//! cpu  10132153 290696 3084719 46828483 16683 0 25195 0 175628 0
//! cpu0 1393280 32966 572056 13343292 6130 0 17875 0 23933 0
//! intr 114930548 113199788 3 0 5 263 0 4 [... thousands more ...]
//! btime 1062191376
//! ```

use super::{ParseError, fields, lines, parse_u64};

/// Cumulative CPU time in clock ticks, summed over all CPUs. Guest time is already
/// included in user and nice, so it is not added again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    pub fn total(&self) -> u64 {
        self.busy()
            .saturating_add(self.idle)
            .saturating_add(self.iowait)
    }

    /// Everything but idle and iowait, as `top` and psutil count "used".
    pub fn busy(&self) -> u64 {
        self.user
            .saturating_add(self.nice)
            .saturating_add(self.system)
            .saturating_add(self.irq)
            .saturating_add(self.softirq)
            .saturating_add(self.steal)
    }

    /// CPU used between two readings, in percent; `None` when no time passed or the
    /// counters went backwards (a reboot, or counters from another host).
    pub fn used_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total().checked_sub(earlier.total())?;
        let busy = self.busy().checked_sub(earlier.busy())?;
        if total == 0 || busy > total {
            return None;
        }
        // busy <= total, but the division can round a hair above 100 (found by
        // scripts/fuzz: 100.00000000000001).
        Some((busy as f64 * 100.0 / total as f64).min(100.0))
    }

    pub fn as_array(&self) -> [u64; 8] {
        [
            self.user,
            self.nice,
            self.system,
            self.idle,
            self.iowait,
            self.irq,
            self.softirq,
            self.steal,
        ]
    }

    pub fn from_array(a: [u64; 8]) -> CpuTimes {
        CpuTimes {
            user: a[0],
            nice: a[1],
            system: a[2],
            idle: a[3],
            iowait: a[4],
            irq: a[5],
            softirq: a[6],
            steal: a[7],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub cpu: CpuTimes,
    /// Number of `cpuN` lines: the CPUs online now.
    pub ncpu: u32,
    /// Boot time in seconds since the epoch, if the line is there.
    pub btime: Option<u64>,
}

pub fn parse_stat(buf: &[u8]) -> Result<Stat, ParseError> {
    let mut stat = Stat::default();
    let mut seen_cpu = false;
    for line in lines(buf) {
        if let Some(rest) = line.strip_prefix(b"cpu") {
            match rest.first() {
                Some(b' ') => {
                    stat.cpu = parse_cpu_line(rest)?;
                    seen_cpu = true;
                }
                Some(c) if c.is_ascii_digit() => stat.ncpu += 1,
                _ => {}
            }
        } else if let Some(rest) = line.strip_prefix(b"btime ") {
            stat.btime = parse_u64(rest.trim_ascii());
        }
    }
    if !seen_cpu {
        return Err(ParseError("no aggregate \"cpu\" line"));
    }
    if stat.ncpu == 0 {
        return Err(ParseError("no \"cpuN\" lines"));
    }
    Ok(stat)
}

fn parse_cpu_line(rest: &[u8]) -> Result<CpuTimes, ParseError> {
    // Old kernels print only the first four to seven columns; missing ones are zero.
    let mut a = [0u64; 8];
    let mut n = 0;
    for f in fields(rest) {
        if n == a.len() {
            break;
        }
        a[n] = parse_u64(f).ok_or(ParseError("cpu line has a non-numeric field"))?;
        n += 1;
    }
    if n < 4 {
        return Err(ParseError("cpu line has fewer than 4 fields"));
    }
    Ok(CpuTimes::from_array(a))
}
