//! `state_dir`: the lock that makes one instance the actor, and the files that let a
//! restart or the next cron `--once` continue where the last one stopped (CPU
//! counters, hysteresis counters, per-process CPU ticks). Files are versioned text,
//! written atomically (`files::AtomicFile`: temp file, fsync, rename) and read
//! within a cap per format (`max`); a corrupt, truncated or refused file is
//! reported and replaced, never fatal.

use crate::error::Error;
use crate::files;
use crate::judge::{Hysteresis, Metric};
use crate::procfs::stat::CpuTimes;
use crate::procfs::{fields, lines, parse_u64};
use crate::scan::PrevTicks;
use crate::sys;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;

const STATE_MAGIC: &str = "system-agent-state 1";
const PROCS_MAGIC: &str = "system-agent-procs 1";

/// Saved counters are "recent" (usable for a CPU% window) up to this age.
pub const RECENT_NS: u64 = 15 * 60 * 1_000_000_000;

/// The exclusive lock on `state_dir/lock`, held for the life of the process.
pub struct Lock {
    _fd: OwnedFd,
}

pub enum LockOutcome {
    Acquired(Lock),
    /// Another instance (the service) holds it: observe, do not act.
    Busy,
}

/// Creates `state_dir` (mode 0700, and its parents 0755) if needed, checks it can
/// be trusted (`files::trusted_dir`: owned by root or the agent's user, writable by
/// no one else, nor any directory above it unless sticky) and takes the lock, so a
/// `state_dir` that someone else could write is refused, not used.
///
/// The lock file then holds `pid` (the service's), or nothing (a one-shot), so
/// `pkill -HUP -L -F state_dir/lock` signals the running service and nothing else:
/// `-L` refuses a pid file that no live process holds locked.
pub fn lock(dir: &Path, pid: Option<i32>) -> Result<LockOutcome, Error> {
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
        return Err(Error::io(
            "use",
            dir,
            std::io::Error::from_raw_os_error(libc::ENOTDIR),
        ));
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
            Ok(LockOutcome::Acquired(Lock { _fd: fd }))
        }
        Ok(false) => Ok(LockOutcome::Busy),
        Err(e) => Err(Error::io("lock", &path, e)),
    }
}

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
}

/// Removes the temporary files a crash left in `state_dir` (see
/// `files::remove_stale_temps`; `state_dir` holds only the agent's files).
pub fn remove_stale_temps(dir: &Path) -> Result<u64, Error> {
    files::remove_stale_temps(dir, None).map_err(|why| Error::file(dir, why))
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
    out.clear();
    let _ = writeln!(out, "{STATE_MAGIC}\nsaved {saved_ns}\nbtime {btime}");
    if let Some(c) = cpu {
        out.push_str("cpu");
        for v in c.as_array() {
            let _ = write!(out, " {v}");
        }
        out.push('\n');
    }
    format_metrics(out, metrics);
    out.push_str(END);
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
    if !text.starts_with(STATE_MAGIC.as_bytes()) {
        return Err("not a version 1 state file");
    }
    let mut it = lines(complete(text)?);
    if it.next() != Some(STATE_MAGIC.as_bytes()) {
        return Err("not a version 1 state file");
    }
    let mut s = Saved::default();
    let (mut saw_saved, mut saw_btime) = (false, false);
    for line in it {
        if line.is_empty() {
            continue;
        }
        let (word, rest) = split_word(line);
        match word {
            b"saved" => {
                s.saved_ns = parse_u64(rest).ok_or("bad saved line")?;
                saw_saved = true;
            }
            b"btime" => {
                s.btime = parse_u64(rest).ok_or("bad btime line")?;
                saw_btime = true;
            }
            b"cpu" => {
                let mut a = [0u64; 8];
                let mut n = 0;
                for f in fields(rest) {
                    *a.get_mut(n).ok_or("bad cpu line")? = parse_u64(f).ok_or("bad cpu line")?;
                    n += 1;
                }
                if n != 8 {
                    return Err("bad cpu line");
                }
                s.cpu = Some(CpuTimes::from_array(a));
            }
            b"metric" => {
                let mut nums = [0u32; 5];
                let mut rest = rest;
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
                s.metrics.push((key.to_string(), h));
            }
            _ => return Err("unknown line"),
        }
    }
    if !(saw_saved && saw_btime) {
        return Err("truncated");
    }
    Ok(s)
}

fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    match line.iter().position(|&c| c == b' ') {
        Some(i) => (&line[..i], &line[i + 1..]),
        None => (line, &b""[..]),
    }
}

/// Per-process CPU ticks for the next `--once`: `pid start ticks` per line.
pub fn format_procs(out: &mut String, saved_ns: u64, btime: u64, procs: &[PrevTicks]) {
    out.clear();
    let _ = writeln!(out, "{PROCS_MAGIC}\nsaved {saved_ns}\nbtime {btime}");
    for p in procs {
        let _ = writeln!(out, "{} {} {}", p.pid, p.start, p.ticks);
    }
    out.push_str(END);
}

/// The last line of every state file: a file without it was cut short.
const END: &str = "end\n";

/// The body of a complete file (without its `end` line), or "truncated".
fn complete(text: &[u8]) -> Result<&[u8], &'static str> {
    match text.strip_suffix(END.as_bytes()) {
        Some(body) if body.is_empty() || body.ends_with(b"\n") => Ok(body),
        _ => Err("truncated"),
    }
}

/// `(saved_ns, btime, ticks)` from a procs file.
pub fn parse_procs(text: &[u8]) -> Result<(u64, u64, Vec<PrevTicks>), &'static str> {
    if !text.starts_with(PROCS_MAGIC.as_bytes()) {
        return Err("not a version 1 procs file");
    }
    let mut it = lines(complete(text)?);
    if it.next() != Some(PROCS_MAGIC.as_bytes()) {
        return Err("not a version 1 procs file");
    }
    let mut num = |word: &[u8]| -> Result<u64, &'static str> {
        let line = it.next().ok_or("truncated")?;
        let rest = line.strip_prefix(word).ok_or("bad header")?;
        parse_u64(rest).ok_or("bad header")
    };
    let saved = num(b"saved ")?;
    let btime = num(b"btime ")?;
    let mut procs = Vec::new();
    for line in it {
        if line.is_empty() {
            continue;
        }
        let mut f = fields(line);
        let mut next = || f.next().and_then(parse_u64).ok_or("bad process line");
        let pid = i32::try_from(next()?).map_err(|_| "bad pid")?;
        procs.push(PrevTicks {
            pid,
            start: next()?,
            ticks: next()?,
        });
    }
    Ok((saved, btime, procs))
}

const REAPER_MAGIC: &str = "system-agent-reaper 2";
/// Without the boot line: read, and dropped by `of_boot` as of an unknown boot.
const REAPER_MAGIC_V1: &str = "system-agent-reaper 1";

/// What the reaper carries from one `--once` to the next: since when each process
/// has been in its state (`in_state_for`), and the SIGTERMs waiting for `grace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReaperState {
    /// The boot it belongs to (`reaper::boot_token`, one word).
    pub boot: Option<String>,
    /// (pid, start, state letter, since ns)
    pub states: Vec<(i32, u64, u8, u64)>,
    /// (pid, start, rule name, sent ns)
    pub pending: Vec<(i32, u64, String, u64)>,
    /// (pid, start) already dealt with.
    pub settled: Vec<(i32, u64)>,
}

pub fn format_reaper(out: &mut String, r: &ReaperState) {
    out.clear();
    let _ = writeln!(out, "{REAPER_MAGIC}");
    if let Some(boot) = &r.boot {
        let _ = writeln!(out, "boot {boot}");
    }
    for (pid, start, st, since) in &r.states {
        let _ = writeln!(out, "state {pid} {start} {} {since}", *st as char);
    }
    for (pid, start, rule, sent) in &r.pending {
        let _ = writeln!(out, "pending {pid} {start} {sent} {rule}");
    }
    for (pid, start) in &r.settled {
        let _ = writeln!(out, "settled {pid} {start}");
    }
    out.push_str(END);
}

pub fn parse_reaper(text: &[u8]) -> Result<ReaperState, &'static str> {
    let first = lines(text).next().unwrap_or_default();
    if first != REAPER_MAGIC.as_bytes() && first != REAPER_MAGIC_V1.as_bytes() {
        return Err("not a version 1 or 2 reaper file");
    }
    let mut r = ReaperState::default();
    for line in lines(complete(text)?).skip(1) {
        if line.is_empty() {
            continue;
        }
        let mut f = fields(line);
        let word = f.next();
        let mut num = || f.next().and_then(parse_u64).ok_or("bad reaper line");
        match word {
            Some(b"boot") => {
                let boot = f
                    .next()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or("bad boot line")?;
                r.boot = Some(boot.to_string());
            }
            Some(b"state") => {
                let pid = i32::try_from(num()?).map_err(|_| "bad pid")?;
                let start = num()?;
                let st = match f.next() {
                    Some([c]) if c.is_ascii_alphabetic() => *c,
                    _ => return Err("bad state letter"),
                };
                let since = f.next().and_then(parse_u64).ok_or("bad reaper line")?;
                r.states.push((pid, start, st, since));
            }
            Some(b"pending") => {
                let pid = i32::try_from(num()?).map_err(|_| "bad pid")?;
                let start = num()?;
                let sent = num()?;
                let rule = f
                    .next()
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .ok_or("bad rule")?;
                r.pending.push((pid, start, rule.to_string(), sent));
            }
            Some(b"settled") => {
                let pid = i32::try_from(num()?).map_err(|_| "bad pid")?;
                r.settled.push((pid, num()?));
            }
            _ => return Err("unknown line"),
        }
    }
    Ok(r)
}

impl ReaperState {
    /// What of it holds in boot `boot`: all when saved in that boot; nothing when
    /// saved in another, or when either boot is unknown, since pids and start times
    /// begin anew with each boot (a clock or a pending SIGTERM carried over would
    /// follow a stranger).
    pub fn of_boot(self, boot: Option<&str>) -> ReaperState {
        if boot.is_some() && self.boot.as_deref() == boot {
            self
        } else {
            ReaperState {
                boot: boot.map(str::to_string),
                ..ReaperState::default()
            }
        }
    }
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
    fn reaper_round_trip() {
        let r = ReaperState {
            boot: Some("2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59".into()),
            states: vec![(10, 20, b'T', 30)],
            pending: vec![(11, 21, "hogs".into(), 31)],
            settled: vec![(12, 22)],
        };
        let mut s = String::new();
        format_reaper(&mut s, &r);
        assert_eq!(
            s,
            "system-agent-reaper 2\nboot 2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59\n\
             state 10 20 T 30\npending 11 21 31 hogs\nsettled 12 22\nend\n"
        );
        assert_eq!(parse_reaper(s.as_bytes()), Ok(r));
        assert!(parse_reaper(b"system-agent-reaper 2\nstate 1 2 T\nend\n").is_err());
        assert!(parse_reaper(b"system-agent-reaper 2\nstate 1 2 T 3\n").is_err());
        assert!(parse_reaper(b"system-agent-reaper 2\nboot\nend\n").is_err());
        assert!(parse_reaper(b"system-agent-reaper 3\nend\n").is_err());
        // A file from before boots were recorded: read, of no known boot.
        let v1 = parse_reaper(b"system-agent-reaper 1\nstate 10 20 T 30\nend\n");
        assert_eq!(v1.map(|r| (r.boot, r.states.len())), Ok((None, 1)));
    }

    #[test]
    fn reaper_state_holds_only_in_its_own_boot() {
        let saved = ReaperState {
            boot: Some("a".into()),
            states: vec![(10, 20, b'T', 30)],
            pending: vec![(11, 21, "hogs".into(), 31)],
            settled: vec![(12, 22)],
        };
        assert_eq!(saved.clone().of_boot(Some("a")), saved);
        let fresh = |boot: Option<&str>| ReaperState {
            boot: boot.map(str::to_string),
            ..ReaperState::default()
        };
        assert_eq!(saved.clone().of_boot(Some("b")), fresh(Some("b")));
        assert_eq!(saved.clone().of_boot(None), fresh(None));
        let unknown = ReaperState {
            boot: None,
            ..saved
        };
        assert_eq!(unknown.of_boot(Some("a")), fresh(Some("a")));
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
