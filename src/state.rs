//! The formats of the agent's own files in `state_dir` (the store, `store.rs`,
//! reads and writes them): `state`, the CPU counters and hysteresis counters that
//! let consecutive cron runs count as consecutive cycles; `procs`, the per-process
//! CPU ticks of the last scan, for the next `--once`'s CPU% window. Pure: bytes
//! in, records out.

use crate::judge::{Hysteresis, Metric};
use crate::procfs::stat::CpuTimes;
use crate::procfs::{fields, parse_u64};
use crate::scan::PrevTicks;
use crate::store::{self, Kind, Stamp, StampError};
use std::fmt::Write as _;

/// Hysteresis per metric and the last CPU counters.
pub const STATE: Kind = Kind {
    name: "state",
    version: 1,
    oldest: 1,
    refused: "not a version 1 state file",
    cap: max::STATE,
    acts: false,
};

/// Per-process CPU ticks for the next `--once`.
pub const PROCS: Kind = Kind {
    name: "procs",
    version: 1,
    oldest: 1,
    refused: "not a version 1 procs file",
    cap: max::PROCS,
    acts: false,
};

/// Saved counters are "recent" (usable for a CPU% window) up to this age.
pub const RECENT_NS: u64 = 15 * 60 * 1_000_000_000;

/// The most each state file may hold, from its format, with room to spare: a larger
/// file is refused unread (and replaced), so reading state costs bounded memory.
/// What a file parses into can be several times its size (a six-byte `procs` line
/// becomes a 24-byte record), so the caps are set so that reading and parsing any
/// state file, however hostile, keeps the whole agent under 8 MiB (`scripts/fuzz`
/// checks it on files right at each cap), while leaving room for far more than a
/// real file holds.
pub mod max {
    /// `state`: a few header lines and one line per metric (4, plus 2 per watched
    /// mount: hundreds of mounts).
    pub const STATE: u64 = 64 << 10;
    /// `tasks`: per configured task two lines (three numbers, its name, a reason).
    pub const TASKS: u64 = 64 << 10;
    /// `alerts`: one line per metric key (five numbers and the key).
    pub const ALERTS: u64 = 64 << 10;
    /// `audit`: per audited account an offset line and perhaps a refusal line:
    /// thousands of accounts.
    pub const AUDIT: u64 = 512 << 10;
    /// `procs`: a header and one `pid start ticks` line per process, about 25 bytes
    /// each: 20,000 processes. A host with more starts its CPU% window afresh each
    /// `--once` run instead (two readings 250 ms apart).
    pub const PROCS: u64 = 512 << 10;
    /// `reaper`: per process at most a state line (about 30 bytes), a settled line
    /// and a pending line: thousands of processes being watched.
    pub const REAPER: u64 = 512 << 10;
    /// `forecast`: per watched mount a `mount` line and up to 122 points of about
    /// 45 bytes: some 5 KiB a mount, dozens of mounts.
    pub const FORECAST: u64 = 256 << 10;
}

/// What `state_dir/state` holds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Saved {
    /// Wall clock of the save, ns since the epoch.
    pub saved_ns: u64,
    /// Boot time the counters belong to (`btime` of /proc/stat).
    pub btime: u64,
    pub cpu: Option<CpuTimes>,
    /// Hysteresis per metric key.
    pub metrics: Vec<(String, Hysteresis)>,
}

impl Saved {
    /// CPU counters usable as the previous sample now: same boot and recent.
    pub fn recent_cpu(&self, now_ns: u64, btime: Option<u64>) -> Option<CpuTimes> {
        let fresh = now_ns
            .checked_sub(self.saved_ns)
            .is_some_and(|age| age <= RECENT_NS);
        (fresh && btime == Some(self.btime)).then_some(self.cpu?)
    }

    pub fn restore(&self, metrics: &mut [Metric]) {
        for m in metrics {
            if let Some((_, h)) = self.metrics.iter().find(|(k, _)| *k == m.key) {
                m.hyst = *h;
            }
        }
    }
}

/// Serialises the state. `cpu` is the latest counter reading.
pub fn format_state(
    out: &mut String,
    saved_ns: u64,
    btime: u64,
    cpu: Option<&CpuTimes>,
    metrics: &[Metric],
) {
    let stamp = Stamp {
        saved_ns: Some(saved_ns),
        btime: Some(btime),
        boot: None,
    };
    store::begin(out, &STATE, &stamp);
    if let Some(c) = cpu {
        out.push_str("cpu");
        for v in c.as_array() {
            let _ = write!(out, " {v}");
        }
        out.push('\n');
    }
    format_metrics(out, metrics);
    store::end(out);
}

/// The hysteresis lines alone: what the service compares to decide whether its state
/// changed and needs writing.
pub fn format_metrics(out: &mut String, metrics: &[Metric]) {
    for m in metrics {
        let h = &m.hyst;
        let _ = writeln!(
            out,
            "metric {} {} {} {} {} {}",
            h.reported, h.up[0], h.up[1], h.down[0], h.down[1], m.key
        );
    }
}

/// Parses `state_dir/state`; `Err` says what is wrong with it.
pub fn parse_state(text: &[u8]) -> Result<Saved, &'static str> {
    let (_, body) = store::open(&STATE, text)?;
    let mut it = body.peekable();
    let stamp = store::read_stamp(&mut it, &["saved", "btime"]).map_err(|e| match e {
        StampError::Bad("saved") => "bad saved line",
        StampError::Bad(_) => "bad btime line",
        StampError::Missing(_) => "truncated",
    })?;
    let mut s = Saved {
        saved_ns: stamp.saved_ns.unwrap_or(0),
        btime: stamp.btime.unwrap_or(0),
        ..Saved::default()
    };
    for line in it.filter(|l| !l.is_empty()) {
        let (word, rest) = split_word(line);
        match word {
            b"cpu" => s.cpu = Some(parse_cpu(rest)?),
            b"metric" => s.metrics.push(parse_metric(rest)?),
            _ => return Err("unknown line"),
        }
    }
    Ok(s)
}

/// `cpu` and the eight counters.
fn parse_cpu(rest: &[u8]) -> Result<CpuTimes, &'static str> {
    let mut a = [0u64; 8];
    let mut n = 0;
    for f in fields(rest) {
        *a.get_mut(n).ok_or("bad cpu line")? = parse_u64(f).ok_or("bad cpu line")?;
        n += 1;
    }
    if n != 8 {
        return Err("bad cpu line");
    }
    Ok(CpuTimes::from_array(a))
}

/// `metric`, the five counters and the key (which may hold blanks).
fn parse_metric(mut rest: &[u8]) -> Result<(String, Hysteresis), &'static str> {
    let mut nums = [0u32; 5];
    for n in &mut nums {
        let (w, r) = split_word(rest);
        *n = parse_u64(w)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or("bad metric line")?;
        rest = r;
    }
    let key = std::str::from_utf8(rest).map_err(|_| "bad metric key")?;
    if nums[0] > 2 || key.is_empty() {
        return Err("bad metric line");
    }
    let h = Hysteresis {
        reported: nums[0] as u8,
        up: [nums[1], nums[2]],
        down: [nums[3], nums[4]],
    };
    Ok((key.to_string(), h))
}

fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&c| c == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b""[..]),
    }
}

/// Per-process CPU ticks for the next `--once`: `pid start ticks` per line.
pub fn format_procs(out: &mut String, saved_ns: u64, btime: u64, procs: &[PrevTicks]) {
    let stamp = Stamp {
        saved_ns: Some(saved_ns),
        btime: Some(btime),
        boot: None,
    };
    store::begin(out, &PROCS, &stamp);
    for p in procs {
        let _ = writeln!(out, "{} {} {}", p.pid, p.start, p.ticks);
    }
    store::end(out);
}

/// `(saved_ns, btime, ticks)` from a procs file.
pub fn parse_procs(text: &[u8]) -> Result<(u64, u64, Vec<PrevTicks>), &'static str> {
    let (_, body) = store::open(&PROCS, text)?;
    let mut it = body.peekable();
    let stamp = store::read_stamp(&mut it, &["saved", "btime"]).map_err(|_| "bad header")?;
    let mut procs = Vec::new();
    for line in it.filter(|l| !l.is_empty()) {
        let mut f = fields(line);
        let mut next = || f.next().and_then(parse_u64).ok_or("bad process line");
        let pid = i32::try_from(next()?).map_err(|_| "bad pid")?;
        procs.push(PrevTicks {
            pid,
            start: next()?,
            ticks: next()?,
        });
    }
    Ok((stamp.saved_ns.unwrap_or(0), stamp.btime.unwrap_or(0), procs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn state_round_trips() {
        let mut metrics = crate::judge::metrics_for(&Config::default());
        metrics[0].hyst = Hysteresis {
            reported: 2,
            up: [3, 3],
            down: [0, 0],
        };
        let cpu = CpuTimes::from_array([1, 2, 3, 4, 5, 6, 7, 8]);
        let mut s = String::new();
        format_state(&mut s, 123, 456, Some(&cpu), &metrics);
        let back = parse_state(s.as_bytes()).unwrap();
        assert_eq!((back.saved_ns, back.btime, back.cpu), (123, 456, Some(cpu)));
        assert_eq!(back.metrics[0], ("cpu".to_string(), metrics[0].hyst));
        assert_eq!(back.metrics.len(), metrics.len());
        assert_eq!(back.recent_cpu(123 + RECENT_NS, Some(456)), Some(cpu));
        assert_eq!(back.recent_cpu(124 + RECENT_NS, Some(456)), None);
        assert_eq!(back.recent_cpu(200, Some(457)), None);
    }

    #[test]
    fn corrupt_state_is_an_error_not_a_panic() {
        for bad in [
            &b""[..],
            b"garbage",
            b"system-agent-state 1\nsaved 1\n",
            b"system-agent-state 1\nsaved x\nbtime 1\n",
            b"system-agent-state 1\nsaved 1\nbtime 1\ncpu 1 2\n",
            b"system-agent-state 1\nsaved 1\nbtime 1\nmetric 9 0 0 0 0 cpu\n",
            b"system-agent-state 1\nsaved 1\nbtime 1\nmetric 1 0 0\n",
        ] {
            assert!(
                parse_state(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn procs_round_trip() {
        let p = vec![
            PrevTicks {
                pid: 1,
                start: 2,
                ticks: 3,
            },
            PrevTicks {
                pid: 40000,
                start: 5,
                ticks: 6,
            },
        ];
        let mut s = String::new();
        format_procs(&mut s, 9, 8, &p);
        assert_eq!(parse_procs(s.as_bytes()).unwrap(), (9, 8, p));
        assert!(parse_procs(b"system-agent-procs 1\nsaved 9\n").is_err());
        assert!(parse_procs(b"system-agent-procs 1\nsaved 9\nbtime 8\n1 2\n").is_err());
    }
}
