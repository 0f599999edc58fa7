//! Judging on fixed readings: levels and labels, the hysteresis that turns
//! `for_cycles` levels into alert and recovered transitions, and time left
//! (lower is worse).

use super::*;
use Status::*;

fn run(n: u32, raws: &[Status]) -> Vec<Option<(Status, Status)>> {
    let mut h = Hysteresis::default();
    raws.iter().map(|&r| h.observe(r, n)).collect()
}

#[test]
fn alert_on_the_nth_cycle_and_recover_likewise() {
    assert_eq!(
        run(3, &[Critical, Critical, Critical, Ok, Ok, Ok]),
        vec![
            None,
            None,
            Some((Ok, Critical)),
            None,
            None,
            Some((Critical, Ok))
        ]
    );
}

#[test]
fn a_broken_run_starts_over() {
    assert_eq!(
        run(3, &[Warning, Warning, Ok, Warning, Warning, Warning])
            .iter()
            .flatten()
            .count(),
        1
    );
    assert_eq!(
        run(3, &[Warning, Warning, Ok, Warning, Warning, Warning])[5],
        Some((Ok, Warning))
    );
}

#[test]
fn mixed_warning_and_critical_count_as_warning() {
    assert_eq!(
        run(3, &[Warning, Critical, Critical]),
        vec![None, None, Some((Ok, Warning))]
    );
    assert_eq!(
        run(2, &[Critical, Critical, Warning, Warning, Ok, Ok]),
        vec![
            None,
            Some((Ok, Critical)),
            None,
            Some((Critical, Warning)),
            None,
            Some((Warning, Ok))
        ]
    );
}

#[test]
fn held_counts_toward_the_next_change() {
    let mut h = Hysteresis::default();
    let mut seen = Vec::new();
    for raw in [
        Warning, Warning, Warning, Critical, Unknown, Ok, Warning, Warning, Ok,
    ] {
        h.observe(raw, 3);
        seen.push((h.reported(), h.held(raw)));
    }
    assert_eq!(
        seen,
        vec![
            (Ok, Some(1)),
            (Ok, Some(2)),
            (Warning, Some(3)),
            (Warning, Some(1)),
            (Warning, None),
            (Warning, Some(1)),
            (Warning, Some(1)),
            (Warning, Some(2)),
            (Warning, Some(1)),
        ]
    );
    // Down from CRITICAL, a WARNING reading counts toward WARNING.
    let mut h = Hysteresis::default();
    for raw in [Critical, Critical, Critical, Warning, Warning] {
        h.observe(raw, 3);
    }
    assert_eq!((h.reported(), h.held(Warning)), (Critical, Some(2)));
}

#[test]
fn unknown_neither_counts_nor_breaks_a_run() {
    assert_eq!(
        run(2, &[Critical, Unknown, Critical]),
        vec![None, None, Some((Ok, Critical))]
    );
}

#[test]
fn n_of_one_follows_the_reading() {
    assert_eq!(
        run(1, &[Warning, Critical, Ok]),
        vec![
            Some((Ok, Warning)),
            Some((Warning, Critical)),
            Some((Critical, Ok))
        ]
    );
}

#[test]
fn levels_and_labels() {
    let l = Limits {
        warn: Some(80.0),
        crit: Some(90.0),
    };
    assert_eq!(level(79.9, l), Ok);
    assert_eq!(level(80.0, l), Warning);
    assert_eq!(level(90.0, l), Critical);
    assert_eq!(level(1e9, Limits::default()), Ok);
    assert_eq!(mount_label(std::path::Path::new("/")), "root");
    assert_eq!(mount_label(std::path::Path::new("/var/log/")), "var_log");
    assert_eq!(Status::worst(Unknown, Warning), Warning);
    assert_eq!(Status::worst(Ok, Unknown), Unknown);
    assert_eq!(Status::worst(Critical, Unknown), Critical);
}

/// A reading in → each metric's value and raw level out. Per row: CPU %, memory
/// %, load per CPU, / and /data as (used %, inodes used %); `None` where that
/// source could not be read (no load: nothing could be read at all).
#[test]
fn a_reading_judged() {
    type Disk = Option<(u32, Option<u32>)>;
    type Row = (
        Option<f64>,
        Option<f64>,
        Option<f64>,
        Disk,
        Disk,
        &'static str,
    );
    let rows: [Row; 4] = [
        (
            Some(12.34),
            Some(85.0),
            Some(0.5),
            Some((96, Some(3))),
            Some((50, None)),
            "cpu=12.3 ok, mem=85 warning, swap=0 ok, load=0.5 ok, disk_root=96 critical, \
             disk_data=50 ok, inode_root=3 ok, inode_data=0 ok",
        ),
        (
            Some(95.0),
            Some(99.96),
            Some(1.0),
            Some((85, Some(97))),
            None,
            "cpu=95 critical, mem=100 critical, swap=0 ok, load=1 warning, \
             disk_root=85 warning, disk_data=U unknown, inode_root=97 critical, \
             inode_data=U unknown",
        ),
        // No earlier CPU counters; a meminfo whose MemTotal is 0.
        (
            None,
            None,
            Some(0.0),
            Some((0, Some(0))),
            Some((0, Some(0))),
            "cpu=U unknown, mem=U unknown, swap=0 ok, load=0 ok, disk_root=0 ok, \
             disk_data=0 ok, inode_root=0 ok, inode_data=0 ok",
        ),
        (
            None,
            None,
            None,
            None,
            None,
            "cpu=U unknown, mem=U unknown, swap=U unknown, load=U unknown, \
             disk_root=U unknown, disk_data=U unknown, inode_root=U unknown, \
             inode_data=U unknown",
        ),
    ];
    let cfg = judged_config();
    for (i, (cpu, mem, load, root, data, want)) in rows.into_iter().enumerate() {
        let mut r = Reading::new(&cfg.disk.mounts);
        fill(&mut r, load.is_some(), [root, data]);
        (r.cpu_percent, r.mem_percent, r.load_per_cpu) = (cpu, mem, load);
        let mut metrics = metrics_for(&cfg);
        judge(&r, &mut metrics);
        assert_eq!(judged(&metrics), want, "row {i}");
        let unknown = metrics.iter().filter(|m| m.raw == Unknown);
        assert!(unknown.clone().all(|m| !m.error.is_empty()), "row {i}");
    }
    let mut metrics = metrics_for(&cfg);
    judge(&Reading::new(&[]), &mut metrics);
    assert_eq!(metrics[4].error, "not sampled", "a mount the Reading lacks");
}

/// A mount's time left, lower is worse: warn at 6 h or less, crit at 1 h or
/// less, OK (no value) while not filling, unknown while it cannot be read.
#[test]
fn a_time_left_is_judged_lower_is_worse() {
    let mut cfg = Config::default();
    cfg.disk.mounts = vec!["/".into()];
    let mut r = Reading::new(&cfg.disk.mounts);
    let mut metrics = metrics_for(&cfg);
    let kinds: Vec<&str> = metrics.iter().map(|m| m.label.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "cpu",
            "mem",
            "disk_root",
            "inode_root",
            "eta_root",
            "inode_eta_root"
        ]
    );
    let rows = [
        (
            Some(3600.4),
            None,
            "eta_root=3600 critical, inode_eta_root=U ok",
        ),
        (
            Some(3601.0),
            Some(21_600.0),
            "eta_root=3601 warning, inode_eta_root=21600 warning",
        ),
        (
            Some(21_601.0),
            Some(0.0),
            "eta_root=21601 ok, inode_eta_root=0 critical",
        ),
        (None, None, "eta_root=U ok, inode_eta_root=U ok"),
    ];
    for (space, inodes, want) in rows {
        fill(&mut r, true, [Some((50, Some(50))), None]);
        r.disks[0].space.eta_s = space;
        r.disks[0].inodes.eta_s = inodes;
        judge(&r, &mut metrics);
        assert_eq!(judged(&metrics[4..]), want);
    }
    fill(&mut r, true, [None, None]);
    judge(&r, &mut metrics);
    assert_eq!(
        judged(&metrics[4..]),
        "eta_root=U unknown, inode_eta_root=U unknown"
    );
    // Off when the window is 0 or both limits are empty.
    cfg.disk.forecast_window = std::time::Duration::ZERO;
    assert_eq!(metrics_for(&cfg).len(), 4);
    cfg.disk.forecast_window = std::time::Duration::from_secs(60);
    cfg.thresholds.disk_eta = Limits::default();
    assert_eq!(metrics_for(&cfg).len(), 5);
}

/// Every metric on: swap and load limited, two mounts (no forecasts: see
/// `a_time_left_is_judged_lower_is_worse`).
fn judged_config() -> Config {
    let mut cfg = Config::default();
    cfg.thresholds.disk_eta = Limits::default();
    cfg.thresholds.inode_eta = Limits::default();
    let limits = |warn, crit| Limits { warn, crit };
    cfg.thresholds.swap = limits(Some(50.0), Some(80.0));
    cfg.thresholds.load = limits(Some(1.0), None);
    cfg.disk.mounts = vec!["/".into(), "/data".into()];
    cfg
}

/// The host's sources read (or all failed), and the two mounts' figures.
fn fill(r: &mut Reading, read: bool, disks: [Option<(u32, Option<u32>)>; 2]) {
    use crate::error::Error;
    use crate::sample::DiskUsage;
    let failed = || Error::io("read", "/x", std::io::Error::from_raw_os_error(libc::EIO));
    r.host.stat = if read {
        Result::Ok(Default::default())
    } else {
        Err(failed())
    };
    r.host.mem = if read {
        Result::Ok(Default::default())
    } else {
        Err(failed())
    };
    r.host.load = if read {
        Result::Ok(Default::default())
    } else {
        Err(failed())
    };
    r.swap_percent = read.then_some(0.0);
    for (d, figures) in r.disks.iter_mut().zip(disks) {
        d.usage = match figures {
            Some((used, inodes)) => Result::Ok(DiskUsage {
                used_percent: used,
                inode_percent: inodes,
                ..DiskUsage::default()
            }),
            None => Err(failed()),
        };
    }
}

/// `label=value level, ...` (`U` for no value).
fn judged(metrics: &[Metric]) -> String {
    let one = |m: &Metric| match m.value {
        Some(v) => format!("{}={v} {}", m.label, m.raw.name()),
        None => format!("{}=U {}", m.label, m.raw.name()),
    };
    metrics.iter().map(one).collect::<Vec<_>>().join(", ")
}
