//! Disk-full forecasts: when will a watched mount run out of space (or inodes) at
//! the rate it has been filling? Thresholds say a disk *is* at 95%; an operator
//! wants to know it *will be* full at 03:00. Pure: a mount's recent readings
//! (`Series`, one point per cycle, thinned to at most `MAX_POINTS` over the
//! window) and the free amount now give a least-squares slope and the seconds
//! until nothing is free, or `None` while it is not filling. The points are kept in
//! state_dir (`FORECAST`), so cron `--once` runs forecast too.

use crate::procfs::{fields, parse_u64};
use crate::store::{self, Kind, Stamp};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Points kept per window: the settled ones at least `window / MAX_POINTS` apart,
/// plus this cycle's reading (see `Series::record`).
pub const MAX_POINTS: usize = 120;

/// The fewest points a forecast needs.
pub const MIN_POINTS: usize = 5;

/// Their span must be at least the window divided by this.
pub const MIN_SPAN_DIVISOR: u64 = 10;

/// An ETA further away than this many windows reads as "not filling": a trend of
/// 30 minutes says nothing about the next week, and a disk that grows a few bytes
/// an hour is steady.
pub const HORIZON_WINDOWS: u64 = 100;

/// One reading of a mount: when, bytes used, inodes used (`None` on a filesystem
/// without an inode count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Point {
    /// Wall clock, ns since the epoch (so `--once` runs line up).
    pub t_ns: u64,
    pub used: u64,
    pub inodes: Option<u64>,
}

/// A mount's readings over the last window, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub points: Vec<Point>,
}

impl Default for Series {
    fn default() -> Self {
        Series::new()
    }
}

impl Series {
    /// An empty series, with room for a whole window (so recording never allocates).
    pub fn new() -> Series {
        Series {
            points: Vec::with_capacity(MAX_POINTS + 2),
        }
    }

    /// Adds this cycle's reading `p` and forgets what the window no longer holds.
    /// The newest point is always this cycle's: it replaces the previous newest
    /// while that one is less than `window / MAX_POINTS` after the point before
    /// it, so the series stays at about `MAX_POINTS` points whatever the interval.
    /// A reading older than the newest (the wall clock stepped back) starts afresh.
    pub fn record(&mut self, p: Point, window_ns: u64) {
        let pts = &mut self.points;
        if pts.last().is_some_and(|last| last.t_ns > p.t_ns) {
            pts.clear();
        }
        let oldest = p.t_ns.saturating_sub(window_ns);
        let stale = pts.iter().take_while(|q| q.t_ns < oldest).count();
        pts.drain(..stale);
        let spacing = window_ns / MAX_POINTS as u64;
        let n = pts.len();
        if n >= 2 && pts[n - 1].t_ns - pts[n - 2].t_ns < spacing {
            pts[n - 1] = p;
            return;
        }
        if pts.len() >= MAX_POINTS + 2 {
            pts.remove(0);
        }
        pts.push(p);
    }

    /// The space forecast: `free` bytes now, the points' used bytes.
    pub fn space(&self, free: u64, window_ns: u64) -> Fill {
        fill(
            self.points.iter().map(|p| (p.t_ns, p.used)),
            free,
            window_ns,
        )
    }

    /// The inode forecast: `free` inodes now (a filesystem without an inode count
    /// has no forecast).
    pub fn inodes(&self, free: u64, window_ns: u64) -> Fill {
        if self.points.iter().any(|p| p.inodes.is_none()) {
            return Fill::default();
        }
        let pts = self.points.iter();
        fill(
            pts.map(|p| (p.t_ns, p.inodes.unwrap_or(0))),
            free,
            window_ns,
        )
    }
}

/// How one quantity is filling: its rate (per second, when the points allow a
/// forecast at all) and the seconds until nothing is free (only while filling).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Fill {
    /// Units (bytes, inodes) per second, least-squares over the window.
    pub rate: Option<f64>,
    /// Seconds until nothing is free at that rate; `None` while not filling.
    pub eta_s: Option<f64>,
}

/// The least-squares slope of `(t_ns, used)` and the seconds until `free` is used
/// up at that rate. No forecast from fewer than `MIN_POINTS` points or from points
/// spanning less than a tenth of the window; not filling when the slope is not
/// positive or the ETA lies beyond `HORIZON_WINDOWS` windows.
pub fn fill(points: impl Iterator<Item = (u64, u64)> + Clone, free: u64, window_ns: u64) -> Fill {
    let Some(rate) = slope(points, window_ns) else {
        return Fill::default();
    };
    let horizon_s = (window_ns / 1_000_000_000).saturating_mul(HORIZON_WINDOWS) as f64;
    let eta_s = (rate > 0.0)
        .then(|| free as f64 / rate)
        .filter(|&eta| eta <= horizon_s);
    Fill {
        rate: Some(rate),
        eta_s,
    }
}

/// Units per second, by least squares, when the points are enough (see `fill`).
fn slope(points: impl Iterator<Item = (u64, u64)> + Clone, window_ns: u64) -> Option<f64> {
    let mut it = points.clone();
    let (t0, y0) = it.next()?;
    let (mut n, mut last) = (1usize, t0);
    for (t, _) in it {
        n += 1;
        last = t;
    }
    let span = last.saturating_sub(t0);
    if n < MIN_POINTS || span == 0 || span < window_ns / MIN_SPAN_DIVISOR {
        return None;
    }
    // Relative to the first point, so the sums keep their precision.
    let rel = |(t, y): (u64, u64)| ((t - t0) as f64 / 1e9, y as f64 - y0 as f64);
    let (mut st, mut sy) = (0.0, 0.0);
    for (t, y) in points.clone().map(rel) {
        st += t;
        sy += y;
    }
    let (mt, my) = (st / n as f64, sy / n as f64);
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (t, y) in points.map(rel) {
        sxy += (t - mt) * (y - my);
        sxx += (t - mt) * (t - mt);
    }
    (sxx > 0.0).then(|| sxy / sxx)
}

/// The points of every watched mount, for the next run.
pub const FORECAST: Kind = Kind {
    name: "forecast",
    version: 1,
    oldest: 1,
    refused: "not a version 1 forecast file",
    cap: crate::state::max::FORECAST,
    acts: false,
};

/// The most mounts a forecast file may name.
pub const MAX_MOUNTS: usize = 1024;

/// `mount PATH` then one `p T USED INODES` line per point (`-` for no inode
/// count), per mount.
pub fn format_forecast<'a>(
    out: &mut String,
    saved_ns: u64,
    series: impl Iterator<Item = (&'a Path, &'a Series)>,
) {
    let stamp = Stamp {
        saved_ns: Some(saved_ns),
        ..Stamp::default()
    };
    store::begin(out, &FORECAST, &stamp);
    for (mount, s) in series {
        if s.points.is_empty() {
            continue;
        }
        let _ = writeln!(out, "mount {}", mount.display());
        for p in &s.points {
            let _ = write!(out, "p {} {} ", p.t_ns, p.used);
            match p.inodes {
                Some(i) => {
                    let _ = writeln!(out, "{i}");
                }
                None => out.push_str("-\n"),
            }
        }
    }
    store::end(out);
}

/// The mounts and their points from a forecast file.
pub fn parse_forecast(text: &[u8]) -> Result<Vec<(PathBuf, Series)>, &'static str> {
    let (_, body) = store::open(&FORECAST, text)?;
    let mut body = body.peekable();
    store::read_stamp(&mut body, &["saved"]).map_err(|_| "bad saved line")?;
    let mut out: Vec<(PathBuf, Series)> = Vec::new();
    for line in body.filter(|l| !l.is_empty()) {
        if let Some(path) = line.strip_prefix(b"mount ") {
            let path = std::str::from_utf8(path).map_err(|_| "bad mount line")?;
            if !path.starts_with('/') {
                return Err("bad mount line");
            }
            if out.len() == MAX_MOUNTS {
                return Err("too many mounts");
            }
            // No room reserved here: a hostile file of many mount lines stays small.
            out.push((PathBuf::from(path), Series { points: Vec::new() }));
            continue;
        }
        let Some((_, series)) = out.last_mut() else {
            return Err("a point before its mount");
        };
        let point = parse_point(line).ok_or("bad point line")?;
        let pts = &mut series.points;
        if pts.len() > MAX_POINTS + 1 || pts.last().is_some_and(|q| q.t_ns > point.t_ns) {
            return Err("bad point line");
        }
        pts.push(point);
    }
    Ok(out)
}

/// `p T USED INODES`.
fn parse_point(line: &[u8]) -> Option<Point> {
    let mut f = fields(line);
    if f.next()? != b"p" {
        return None;
    }
    let t_ns = parse_u64(f.next()?)?;
    let used = parse_u64(f.next()?)?;
    let inodes = match f.next()? {
        b"-" => None,
        n => Some(parse_u64(n)?),
    };
    f.next().is_none().then_some(Point { t_ns, used, inodes })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const MIN: u64 = 60 * S;

    fn series(points: &[(u64, u64)]) -> Series {
        let mut s = Series::new();
        for &(t, used) in points {
            s.points.push(Point {
                t_ns: t * S,
                used,
                inodes: Some(used / 1000),
            });
        }
        s
    }

    /// Points (seconds, bytes used), bytes free now, the window → rate and ETA.
    #[test]
    fn a_forecast_from_the_points() {
        type Row = (&'static [(u64, u64)], u64, u64, Option<f64>, Option<f64>);
        let rows: [Row; 10] = [
            // 1,000 bytes a second, 60,000 free: a minute.
            (
                &[
                    (0, 0),
                    (60, 60_000),
                    (120, 120_000),
                    (180, 180_000),
                    (240, 240_000),
                ],
                60_000,
                30 * MIN,
                Some(1000.0),
                Some(60.0),
            ),
            // Noisy but steady growth: least squares, not the two ends.
            (
                &[(0, 100), (10, 1100), (20, 1900), (30, 3100), (40, 3900)],
                1000,
                60 * S,
                Some(96.0),
                Some(1000.0 / 96.0),
            ),
            // Steady: a rate of 0, no ETA.
            (
                &[(0, 500), (10, 500), (20, 500), (30, 500), (40, 500)],
                1000,
                60 * S,
                Some(0.0),
                None,
            ),
            // Shrinking.
            (
                &[(0, 500), (10, 400), (20, 300), (30, 200), (40, 100)],
                1000,
                60 * S,
                Some(-10.0),
                None,
            ),
            // Four points are too few.
            (
                &[(0, 0), (10, 10), (20, 20), (30, 30)],
                1000,
                60 * S,
                None,
                None,
            ),
            // Five points over less than a tenth of the window are too close.
            (
                &[(0, 0), (1, 10), (2, 20), (3, 30), (4, 40)],
                1000,
                60 * S,
                None,
                None,
            ),
            // ... and exactly a tenth is enough.
            (
                &[(0, 0), (1, 10), (2, 20), (3, 30), (6, 60)],
                1000,
                60 * S,
                Some(10.0),
                Some(100.0),
            ),
            // Full already, still filling: 0 s.
            (
                &[(0, 0), (10, 10), (20, 20), (30, 30), (40, 40)],
                0,
                60 * S,
                Some(1.0),
                Some(0.0),
            ),
            // Filling, but further away than 100 windows (6,000 s): not filling.
            (
                &[(0, 0), (10, 10), (20, 20), (30, 30), (40, 40)],
                6001,
                60 * S,
                Some(1.0),
                None,
            ),
            (
                &[(0, 0), (10, 10), (20, 20), (30, 30), (40, 40)],
                6000,
                60 * S,
                Some(1.0),
                Some(6000.0),
            ),
        ];
        for (i, (points, free, window, rate, eta)) in rows.into_iter().enumerate() {
            let f = series(points).space(free, window);
            let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) => (a - b).abs() < 1e-9 * b.abs().max(1.0),
                (a, b) => a == b,
            };
            assert!(
                close(f.rate, rate),
                "row {i}: rate {:?}, want {rate:?}",
                f.rate
            );
            assert!(
                close(f.eta_s, eta),
                "row {i}: eta {:?}, want {eta:?}",
                f.eta_s
            );
        }
    }

    #[test]
    fn inodes_alike_unless_the_filesystem_has_no_count() {
        let s = series(&[
            (0, 0),
            (10, 10_000),
            (20, 20_000),
            (30, 30_000),
            (40, 40_000),
        ]);
        assert_eq!(s.inodes(50, 60 * S).eta_s, Some(50.0));
        let mut none = s.clone();
        none.points[2].inodes = None;
        assert_eq!(none.inodes(50, 60 * S), Fill::default());
    }

    #[test]
    fn a_series_keeps_one_window_thinned_to_its_spacing() {
        let window = 120 * S; // spacing 1 s
        let mut s = Series::new();
        let cap = s.points.capacity();
        let p = |t_ms: u64| Point {
            t_ns: t_ms * 1_000_000,
            used: t_ms,
            inodes: None,
        };
        // A cycle every 400 ms for 5 minutes.
        for i in 0..750 {
            s.record(p(i * 400), window);
        }
        let ts: Vec<u64> = s.points.iter().map(|q| q.t_ns / 1_000_000).collect();
        assert_eq!(*ts.last().unwrap(), 299_600, "the newest is this cycle's");
        assert!(ts[0] >= 299_600 - 120_000, "{ts:?}");
        assert!(ts.len() <= MAX_POINTS + 2 && ts.len() >= 80, "{}", ts.len());
        for w in ts[..ts.len() - 1].windows(2) {
            assert!(
                w[1] - w[0] >= 1000,
                "settled points a spacing apart: {ts:?}"
            );
        }
        assert_eq!(s.points.capacity(), cap, "no allocation");
        // The clock stepped back: start afresh.
        s.record(p(1000), window);
        assert_eq!(s.points, [p(1000)]);
        // A long gap: everything older than the window goes.
        s.record(p(2000), window);
        s.record(p(500_000), window);
        assert_eq!(s.points, [p(500_000)]);
    }

    #[test]
    fn the_state_file_round_trips() {
        let a = series(&[(1, 10), (2, 20)]);
        let mut b = series(&[(3, 30)]);
        b.points[0].inodes = None;
        let empty = Series::new();
        let mut text = String::new();
        let all = [
            (Path::new("/"), &a),
            (Path::new("/var/log x"), &b),
            (Path::new("/e"), &empty),
        ];
        format_forecast(&mut text, 7, all.into_iter());
        assert_eq!(
            text,
            "system-agent-forecast 1\nsaved 7\nmount /\np 1000000000 10 0\np 2000000000 20 0\n\
             mount /var/log x\np 3000000000 30 -\nend\n"
        );
        let back = parse_forecast(text.as_bytes()).expect("parses");
        assert_eq!(
            back,
            [(PathBuf::from("/"), a), (PathBuf::from("/var/log x"), b)]
        );
        for bad in [
            &b"system-agent-forecast 1\nsaved 7\np 1 2 3\nend\n"[..],
            b"system-agent-forecast 1\nsaved 7\nmount x\nend\n",
            b"system-agent-forecast 1\nsaved 7\nmount /\np 1 2\nend\n",
            b"system-agent-forecast 1\nsaved 7\nmount /\np 1 2 3 4\nend\n",
            b"system-agent-forecast 1\nsaved 7\nmount /\np 5 2 3\np 4 2 3\nend\n",
            b"system-agent-forecast 1\nmount /\nend\n",
            b"system-agent-forecast 2\nsaved 7\nend\n",
        ] {
            assert!(parse_forecast(bad).is_err(), "{}", bad.escape_ascii());
        }
    }
}
