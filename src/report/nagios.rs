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
mod tests {
    use super::*;
    use crate::config::{Config, Limits};
    use crate::error::Error;
    use crate::judge::{judge, metrics_for};
    use crate::procfs::loadavg::LoadAvg;
    use crate::reading::mount_label;
    use crate::sample::DiskUsage;
    use std::path::PathBuf;

    /// A host of 4 CPUs with load 6 and memory 50% used, watching `mounts`, each
    /// used `Some(percent)` or unreadable (`None`); judged against `cfg` (without
    /// forecasts: see `a_filling_disk_says_when_it_is_full`).
    fn line(mut cfg: Config, mounts: &[(String, Option<u32>)]) -> (Status, String) {
        cfg.thresholds.disk_eta = Limits::default();
        cfg.thresholds.inode_eta = Limits::default();
        line_filling(cfg, mounts, &[])
    }

    /// `line`, each mount's space running out in `etas` seconds (or not filling).
    fn line_filling(
        mut cfg: Config,
        mounts: &[(String, Option<u32>)],
        etas: &[Option<f64>],
    ) -> (Status, String) {
        cfg.disk.mounts = mounts.iter().map(|(m, _)| PathBuf::from(m)).collect();
        let mut r = Reading::new(&cfg.disk.mounts);
        for (d, eta) in r.disks.iter_mut().zip(etas) {
            d.space.eta_s = *eta;
        }
        r.host.stat = Ok(Default::default());
        r.host.mem = Ok(Default::default());
        r.host.load = Ok(LoadAvg {
            one: 6.0,
            five: 5.0,
            fifteen: 4.0,
        });
        r.ncpu = 4;
        (r.cpu_percent, r.mem_percent) = (Some(10.0), Some(50.0));
        r.load_per_cpu = Some(1.5);
        for (d, (m, used)) in r.disks.iter_mut().zip(mounts) {
            let eio = std::io::Error::from_raw_os_error(libc::EIO);
            d.usage = match used {
                Some(p) => Ok(DiskUsage {
                    used_percent: *p,
                    inode_percent: Some(1),
                    ..DiskUsage::default()
                }),
                None => Err(Error::io("statvfs", m.as_str(), eio)),
            };
        }
        let mut metrics = metrics_for(&cfg);
        judge(&r, &mut metrics);
        let mut out = String::new();
        let status = status_line(&mut out, &metrics, &r, None);
        (status, out)
    }

    fn load_limited() -> Config {
        let mut cfg = Config::default();
        cfg.thresholds.load = Limits {
            warn: Some(1.0),
            crit: Some(2.0),
        };
        cfg
    }

    #[test]
    fn load_is_the_hosts_in_the_text_as_in_perfdata() {
        let (status, out) = line(load_limited(), &[("/".into(), Some(96))]);
        assert_eq!(status, Status::Critical);
        assert_eq!(
            out,
            "SYSTEM-AGENT CRITICAL - disk / 96%, load 6.00 on 4 cpus | cpu=10.0%;80;90 \
             mem=50.0%;85;95 disk_root=96%;85;95 load1=6.00;4;8 inode_root=1%;90;97"
        );
    }

    /// Many unreadable mounts with long names, a full disk among them: the line is
    /// cut to the limit, and what stays is the state, the worst problems first, and
    /// the perfdata of the worst items.
    #[test]
    fn a_long_line_keeps_the_state_and_the_worst_items() {
        let long = "/mnt/a-rather-long-mount-point-name-as-automounters-make";
        let mut mounts: Vec<(String, Option<u32>)> =
            (0..60).map(|i| (format!("{long}/{i:02}"), None)).collect();
        mounts.insert(30, ("/full".into(), Some(99)));
        let (status, out) = line(load_limited(), &mounts);
        assert_eq!(status, Status::Critical);
        assert!(out.len() < MAX_LINE, "{} bytes", out.len());
        assert!(
            out.starts_with(
                "SYSTEM-AGENT CRITICAL - disk /full 99%, load 6.00 on 4 cpus, disk \
                 /mnt/a-rather-long-mount-point-name-as-automounters-make/00 unknown (cannot \
                 statvfs /mnt/a-rather-long-mount-point-name-as-automounters-make/00: \
                 Input/output error), disk "
            ),
            "{out}"
        );
        let (text, perf) = out.split_once(" |").unwrap();
        assert!(!perf.contains('|'), "{perf}");
        // 60 disks and 60 inodes unknown; some of them are told, the rest counted.
        let told = text.matches(" unknown (cannot statvfs ").count();
        assert!((10..120).contains(&told), "{told}: {text}");
        assert!(
            text.contains(&format!(", and {} more; ", 120 - told)),
            "{text}"
        );
        // The critical and warning items, then the unknown ones while they fit (in
        // their usual order); no room is left for the OK ones.
        let items: Vec<&str> = perf.split_whitespace().collect();
        let unknown = items.iter().filter(|i| i.contains("=U;")).count();
        assert!(unknown > 10, "{perf}");
        let worst: Vec<&str> = items
            .iter()
            .filter(|i| !i.contains("=U;"))
            .copied()
            .collect();
        assert_eq!(worst, ["disk_full=99%;85;95", "load1=6.00;4;8"], "{perf}");
        assert_eq!(
            items[0],
            format!("disk_{}_00=U;85;95", mount_label(long.as_ref()))
        );
        // cpu, mem, 61 disks, load1, 61 inodes.
        let dropped = 2 + 61 + 1 + 61 - items.len();
        assert!(
            text.ends_with(&format!(
                "; {dropped} of 125 perfdata items left out (4096-byte limit)"
            )),
            "{text}"
        );
    }

    /// A time left is told when it is at warn or worse, as a time; in perfdata it is
    /// in seconds with the ranges of a lower-is-worse value, `U` while not filling
    /// (or while its mount cannot be read: the disk says why, once).
    #[test]
    fn a_filling_disk_says_when_it_is_full() {
        let mounts = [
            ("/".to_string(), Some(50)),
            ("/var".to_string(), Some(60)),
            ("/srv".to_string(), Some(70)),
            ("/gone".to_string(), None),
        ];
        let etas = [Some(2520.4), Some(20_000.0), None, Some(1.0)];
        let (status, out) = line_filling(Config::default(), &mounts, &etas);
        assert_eq!(status, Status::Critical);
        assert_eq!(
            out,
            "SYSTEM-AGENT CRITICAL - disk / full in 42m, disk /var full in 5h33m, disk /gone \
             unknown (cannot statvfs /gone: Input/output error), inodes /gone unknown (cannot \
             statvfs /gone: Input/output error) | cpu=10.0%;80;90 mem=50.0%;85;95 \
             disk_root=50%;85;95 disk_var=60%;85;95 disk_srv=70%;85;95 disk_gone=U;85;95 \
             load1=6.00 inode_root=1%;90;97 inode_var=1%;90;97 inode_srv=1%;90;97 \
             inode_gone=U;90;97 eta_root=2520s;21600:;3600: eta_var=20000s;21600:;3600: \
             eta_srv=U;21600:;3600: eta_gone=U;21600:;3600: inode_eta_root=U;21600:;3600: \
             inode_eta_var=U;21600:;3600: inode_eta_srv=U;21600:;3600: \
             inode_eta_gone=U;21600:;3600:"
        );
    }

    /// Only OK items, too many for the line: the first ones in their usual order.
    #[test]
    fn a_long_line_of_ok_items_keeps_the_first() {
        let mounts: Vec<(String, Option<u32>)> = (0..300)
            .map(|i| (format!("/srv/{i:03}"), Some(5)))
            .collect();
        let (status, out) = line(Config::default(), &mounts);
        assert_eq!(status, Status::Ok);
        assert!(out.len() < MAX_LINE, "{} bytes", out.len());
        let (text, perf) = out.split_once(" |").unwrap();
        let kept = perf.split_whitespace().count();
        assert_eq!(
            text,
            format!(
                "SYSTEM-AGENT OK - all checks ok; {} of 603 perfdata items left out \
                 (4096-byte limit)",
                603 - kept
            )
        );
        assert!(perf.starts_with(" cpu=10.0%;80;90 mem=50.0%;85;95 disk_srv_000=5%;85;95 "));
        assert!(perf.ends_with(&format!(" disk_srv_{:03}=5%;85;95", kept - 3)));
    }

    #[test]
    fn relief_on_adds_mem_available_and_psi_memory_full() {
        use crate::procfs::meminfo::Meminfo;
        use crate::procfs::pressure::{Pressure, PressureLine};
        let mut cfg = Config::default();
        cfg.disk.mounts.clear();
        let mut r = Reading::new(&[]);
        r.host.stat = Ok(Default::default());
        r.host.mem = Ok(Meminfo {
            total_kb: 1_000_000,
            available_kb: 400_000,
            swap_total_kb: 0,
            swap_free_kb: 0,
        });
        r.host.load = Ok(LoadAvg {
            one: 0.52,
            five: 0.5,
            fifteen: 0.5,
        });
        let full = PressureLine {
            avg10: 12.5,
            ..PressureLine::default()
        };
        r.host.pressure[1] = Some(Pressure {
            some: full,
            full: Some(full),
        });
        (r.cpu_percent, r.mem_percent) = (Some(10.0), Some(60.0));
        let mut metrics = metrics_for(&cfg);
        judge(&r, &mut metrics);
        let mut out = String::new();
        let plain = "SYSTEM-AGENT OK - all checks ok | cpu=10.0%;80;90 mem=60.0%;85;95 load1=0.52";
        assert_eq!(status_line(&mut out, &metrics, &r, None), Status::Ok);
        assert_eq!(out, plain);
        status_line(&mut out, &metrics, &r, Some(&cfg.relief));
        // Its limits: 5% of MemTotal as the floor, 10% full stall as crit.
        assert_eq!(
            out,
            format!("{plain} mem_available=409600000B;;51200000: psi_memory_full=12.50%;;10")
        );
        // No PSI: no psi_memory_full; no meminfo: mem_available unknown.
        r.host.pressure[1] = None;
        r.host.mem = Err(Error::io(
            "read",
            "/proc/meminfo",
            std::io::Error::from_raw_os_error(libc::EIO),
        ));
        status_line(&mut out, &metrics, &r, Some(&cfg.relief));
        assert!(out.ends_with(" load1=0.52 mem_available=U"), "{out}");
    }

    /// One problem longer than the text may be: cut on a character boundary.
    #[test]
    fn a_problem_longer_than_the_text_is_cut() {
        let huge = format!("/{}", "é".repeat(2100));
        let (status, out) = line(Config::default(), &[(huge, None)]);
        assert_eq!(status, Status::Unknown);
        assert!(out.len() < MAX_LINE, "{} bytes", out.len());
        let (text, perf) = out.split_once(" |").unwrap();
        let (text, note) = text.split_once("; ").unwrap();
        assert!(text.ends_with("é..., and 1 more"), "{text}");
        assert!(text.len() <= MAX_TEXT, "{}", text.len());
        // The two labels of 2,105 bytes do not fit beside it; the others do.
        assert_eq!(note, "2 of 5 perfdata items left out (4096-byte limit)");
        assert_eq!(perf, " cpu=10.0%;80;90 mem=50.0%;85;95 load1=6.00");
    }
}
