//! The `--once` status line, as the Nagios plugin guidelines want it: the state,
//! what is not OK (worst first), then perfdata, one `label=value[unit];warn;crit`
//! per metric. Labels are unique per mount (the config refuses two mounts with one
//! label) and made of letters, digits and `_`, so none needs quoting. A time left
//! (`eta_root=5400s;21600:;3600:`) is worse when lower: its limits are the ranges
//! `N:` of the guidelines (alert below N), and it is `U` while the disk is not
//! filling. Load is the
//! host's load average in the text as in perfdata. The whole line stays within
//! 4,096 bytes, what the guidelines say Nagios reads of a plugin's output: a longer
//! one keeps the state and the worst items, and says how many it left out. With
//! `[relief]` on, perfdata also shows what memory relief judges: MemAvailable in
//! bytes (its limit as the range it must stay in) and PSI memory full avg10.

use crate::config::{MemScope, Relief};
use crate::judge::{Kind, Metric, Status};
use crate::reading::Reading;
use std::fmt::Write as _;

/// The longest status line, its newline included.
const MAX_LINE: usize = 4096;

/// The most the text before ` |` may take, so that the worst items' perfdata
/// still fits after it.
const MAX_TEXT: usize = 3072;

/// Room kept for the note that says how many perfdata items were left out.
const NOTE_ROOM: usize = 64;

/// `SYSTEM-AGENT CRITICAL - disk / 96% | cpu=12.0%;80;90 mem=40.1%;85;95 disk_root=96%;85;95 load1=0.52`
///
/// The text lists the metrics that are not OK, worst first; perfdata lists cpu, mem,
/// swap (when limited), each mount's disk, load1 and each mount's inodes, then with
/// `relief` (`[relief]`, when on) mem_available and psi_memory_full. Returns the
/// overall status, whose discriminant is the exit code. `out` is cleared first and
/// its storage reused.
pub fn status_line(
    out: &mut String,
    metrics: &[Metric],
    r: &Reading,
    relief: Option<&Relief>,
) -> Status {
    let overall = crate::judge::overall(metrics);
    out.clear();
    let _ = write!(out, "SYSTEM-AGENT {} - ", overall.nagios());
    problems(out, metrics, r);
    let v = View { metrics, r, relief };
    perfdata(out, &v);
    overall
}

/// What perfdata is made of.
#[derive(Clone, Copy)]
struct View<'a> {
    metrics: &'a [Metric],
    r: &'a Reading,
    relief: Option<&'a Relief>,
}

/// The metrics that are not OK, worst first, as many as `MAX_TEXT` holds, then
/// how many more there are.
fn problems(out: &mut String, metrics: &[Metric], r: &Reading) {
    let told = |m: &&Metric| m.raw != Status::Ok && !(m.kind.is_eta() && m.raw == Status::Unknown);
    let total = metrics.iter().filter(told).count();
    if total == 0 {
        out.push_str("all checks ok");
        return;
    }
    // The time left of a mount that could not be read is not told apart: its
    // disk is, with the reason.
    let worst_first = [Status::Critical, Status::Warning, Status::Unknown]
        .into_iter()
        .flat_map(|want| metrics.iter().filter(move |m| m.raw == want).filter(told));
    for (i, m) in worst_first.enumerate() {
        let mark = out.len();
        if i > 0 {
            out.push_str(", ");
        }
        describe(out, m, r);
        if out.len() <= MAX_TEXT {
            continue;
        }
        let shown = if i == 0 {
            // Even the worst one alone is too long (a mount path of 4 KB).
            cut(out, MAX_TEXT - 32);
            out.push_str("...");
            1
        } else {
            out.truncate(mark);
            i
        };
        let _ = write!(out, ", and {} more", total - shown);
        return;
    }
}

fn describe(out: &mut String, m: &Metric, r: &Reading) {
    let what = match m.kind {
        Kind::Inode | Kind::InodeEta => "inodes",
        Kind::DiskEta => "disk",
        k => k.name(),
    };
    out.push_str(what);
    if let Some(mount) = &m.mount {
        out.push(' ');
        sanitize(out, &mount.to_string_lossy());
    }
    match (m.value, Some(&m.error).filter(|e| !e.is_empty())) {
        (Some(_), _) if m.kind == Kind::Load => {
            // The host's load average, as in perfdata; the limits are per CPU.
            let one = r.load().map_or(0.0, |l| l.one);
            let cpus = if r.ncpu == 1 { "cpu" } else { "cpus" };
            let _ = write!(out, " {one:.2} on {} {cpus}", r.ncpu);
        }
        (Some(v), _) if m.kind.is_eta() => {
            out.push_str(" full in ");
            out.push_str(&crate::timefmt::fmt_span(v as u64));
        }
        (Some(v), _) => {
            let _ = write!(out, " {v:.prec$}%", prec = m.kind.decimals());
            if m.kind == Kind::Mem && r.mem_scope == MemScope::Cgroup {
                out.push_str(" (cgroup)");
            }
        }
        (None, Some(e)) => {
            out.push_str(" unknown (");
            sanitize(out, e);
            out.push(')');
        }
        (None, None) => out.push_str(" unknown"),
    }
}

/// One status line: no line breaks, and no `|` that would start perfdata early.
pub(super) fn sanitize(out: &mut String, s: &str) {
    out.extend(
        s.chars()
            .map(|c| if c.is_control() || c == '|' { '?' } else { c }),
    );
}

/// Cuts `out` to at most `max` bytes, on a character boundary.
fn cut(out: &mut String, max: usize) {
    let mut at = max.min(out.len());
    while !out.is_char_boundary(at) {
        at -= 1;
    }
    out.truncate(at);
}

/// ` |` and the perfdata items: all of them when the line stays within
/// `MAX_LINE`; otherwise the worst first (CRITICAL, WARNING, UNKNOWN, OK) while
/// they fit, in their usual order, with a note in the text saying how many are
/// left out. Sizes are measured by writing an item and taking it back, so nothing
/// is allocated beyond `out`.
fn perfdata(out: &mut String, v: &View) {
    let (mut need, mut count) = (0, 0);
    for p in items(v) {
        need += p.len(out);
        count += 1;
    }
    let fixed = out.len() + " |".len() + "\n".len();
    let mut keep = Keep {
        room: [usize::MAX; 4],
    };
    if fixed + need > MAX_LINE {
        let room = MAX_LINE.saturating_sub(fixed + NOTE_ROOM);
        keep = Keep::worst_first(out, v, room);
        let mut probe = keep;
        let kept = items(v).filter(|p| probe.take(p.rank, p.len(out))).count();
        let _ = write!(
            out,
            "; {} of {count} perfdata items left out ({MAX_LINE}-byte limit)",
            count - kept
        );
    }
    out.push_str(" |");
    for p in items(v) {
        if keep.take(p.rank, p.len(out)) {
            p.write(out);
        }
    }
}

/// Which perfdata items stay: those of each rank, in their usual order, that fit
/// in the room that rank starts with (what the worse ranks left).
#[derive(Clone, Copy)]
struct Keep {
    room: [usize; 4],
}

impl Keep {
    /// Fills `room` with the items of the worst rank first, then the next.
    fn worst_first(out: &mut String, v: &View, mut room: usize) -> Keep {
        let mut keep = Keep { room: [0; 4] };
        for rank in (0..4u8).rev() {
            keep.room[usize::from(rank)] = room;
            for p in items(v).filter(|p| p.rank == rank) {
                let n = p.len(out);
                if n <= room {
                    room -= n;
                }
            }
        }
        keep
    }

    fn take(&mut self, rank: u8, len: usize) -> bool {
        let room = &mut self.room[usize::from(rank)];
        let fits = len <= *room;
        if fits {
            *room -= len;
        }
        fits
    }
}

/// One perfdata item, ranked by how bad its metric is (0 OK .. 3 CRITICAL).
struct Perf<'a> {
    label: &'a str,
    value: Option<f64>,
    decimals: usize,
    unit: &'static str,
    warn: Option<f64>,
    crit: Option<f64>,
    /// Lower is worse: the limits are ranges `N:` (alert below N).
    below: bool,
    rank: u8,
}

/// The items in their usual order: cpu, mem, swap, each disk, load1 (the host's
/// load average, its per-CPU limits scaled to the host), each mount's inodes, then
/// relief's figures when it is on.
fn items<'a>(v: &View<'a>) -> impl Iterator<Item = Perf<'a>> + use<'a> {
    let (metrics, r) = (v.metrics, v.r);
    let load = metrics.iter().find(|m| m.kind == Kind::Load);
    let host = |v: Option<f64>| v.map(|v| r.whole_host(v));
    let load1 = Perf {
        label: "load1",
        value: r.load().map(|l| l.one),
        decimals: 2,
        unit: "",
        warn: load.and_then(|m| host(m.limits.warn)),
        crit: load.and_then(|m| host(m.limits.crit)),
        below: false,
        rank: load.map_or(0, |m| m.raw.badness()),
    };
    let of = |m: &'a Metric| Perf {
        label: &m.label,
        value: m.value,
        decimals: m.kind.decimals(),
        unit: if m.kind.is_eta() { "s" } else { "%" },
        warn: m.limits.warn,
        crit: m.limits.crit,
        below: m.kind.is_eta(),
        rank: m.raw.badness(),
    };
    let before = metrics
        .iter()
        .filter(|m| !matches!(m.kind, Kind::Inode | Kind::Load) && !m.kind.is_eta());
    let inodes = metrics.iter().filter(|m| m.kind == Kind::Inode);
    let etas = metrics.iter().filter(|m| m.kind.is_eta());
    before
        .map(of)
        .chain(std::iter::once(load1))
        .chain(inodes.map(of))
        .chain(etas.map(of))
        .chain(v.relief.into_iter().flat_map(move |c| relief_items(c, r)))
}

/// mem_available in bytes (its limit as a floor) and, where the kernel has PSI,
/// psi_memory_full (full avg10, its limit as crit): what memory relief judges.
fn relief_items<'a>(cfg: &'a Relief, r: &'a Reading) -> impl Iterator<Item = Perf<'a>> + use<'a> {
    let mem = r.mem().copied();
    let available = Perf {
        label: "mem_available",
        value: mem.map(|m| (m.available_kb * 1024) as f64),
        decimals: 0,
        unit: "B",
        warn: None,
        crit: mem.map(|m| (cfg.mem_available_below.kib(m.total_kb) * 1024) as f64),
        below: true,
        rank: 0,
    };
    let memory = crate::sample::PRESSURE_KINDS
        .iter()
        .position(|k| *k == "memory")
        .and_then(|i| r.host.pressure[i]);
    let psi = memory.and_then(|p| p.full).map(|full| Perf {
        label: "psi_memory_full",
        value: Some(full.avg10),
        decimals: 2,
        unit: "%",
        warn: None,
        crit: cfg.psi_memory_full_above,
        below: false,
        rank: 0,
    });
    std::iter::once(available).chain(psi)
}

impl Perf<'_> {
    /// ` label=value;warn;crit`.
    fn write(&self, out: &mut String) {
        let _ = write!(out, " {}=", self.label);
        match self.value {
            Some(v) => {
                let _ = write!(out, "{v:.prec$}{}", self.unit, prec = self.decimals);
            }
            None => out.push('U'),
        }
        if self.warn.is_some() || self.crit.is_some() {
            let below = if self.below { ":" } else { "" };
            out.push(';');
            if let Some(w) = self.warn {
                push_limit(out, w);
                out.push_str(below);
            }
            out.push(';');
            if let Some(c) = self.crit {
                push_limit(out, c);
                out.push_str(below);
            }
        }
    }

    /// Its length, measured in `out`'s spare room and taken back.
    fn len(&self, out: &mut String) -> usize {
        let mark = out.len();
        self.write(out);
        let n = out.len() - mark;
        out.truncate(mark);
        n
    }
}

/// `80`, `1.5`, `3.2`: at most two decimals, no trailing zeros.
fn push_limit(out: &mut String, v: f64) {
    let start = out.len();
    let _ = write!(out, "{v:.2}");
    while out.ends_with('0') {
        out.pop();
    }
    if out.ends_with('.') {
        out.pop();
    }
    if out.len() == start {
        out.push('0');
    }
}

#[cfg(test)]
mod tests;
