//! Disk-full forecasts on real filesystems: a small tmpfs in a private mount
//! namespace (held by a shell this test started; the agent runs inside with
//! `nsenter`), filled by this test in chunks it counts. The ETA the agent logs
//! is checked against the fill rate the test produced, by the test's own count
//! of bytes per time, never against how long anything took.

mod common;

use common::*;
use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// A tmpfs of `size` on `T/mnt` in a private mount namespace.
fn tmpfs(h: &Host, size: &str) -> MountNs {
    std::fs::create_dir_all(h.path("mnt")).expect("mnt dir");
    MountNs::new(&format!(
        "mount -t tmpfs -o size={size} tmpfs '{}'",
        h.p("mnt")
    ))
}

/// Bytes available to users on the filesystem holding `p`.
fn avail(p: &Path) -> u64 {
    let c = cstr(p);
    // SAFETY: a zeroed statvfs is a valid out-parameter; the path is NUL-terminated.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    assert_eq!(
        unsafe { libc::statvfs(c.as_ptr(), &mut st) },
        0,
        "statvfs {p:?}"
    );
    st.f_bavail * st.f_frsize
}

/// The least-squares slope (bytes a second) of `(ns, bytes)` records.
fn slope(records: &[(u64, u64)]) -> f64 {
    let n = records.len() as f64;
    let t0 = records[0].0;
    let pts: Vec<(f64, f64)> = records
        .iter()
        .map(|&(t, b)| ((t - t0) as f64 / 1e9, b as f64))
        .collect();
    let mt = pts.iter().map(|p| p.0).sum::<f64>() / n;
    let mb = pts.iter().map(|p| p.1).sum::<f64>() / n;
    let sxy: f64 = pts.iter().map(|p| (p.0 - mt) * (p.1 - mb)).sum();
    let sxx: f64 = pts.iter().map(|p| (p.0 - mt) * (p.0 - mt)).sum();
    sxy / sxx
}

/// Appends `chunk` bytes to `file`; returns the total written.
fn append(file: &Path, chunk: usize) -> u64 {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
        .expect("open the fill file");
    f.write_all(&vec![b'x'; chunk]).expect("write a chunk");
    f.metadata().expect("its size").len()
}

const NO_ALERTS_BUT_ETA: &str = "disk_warn = 100\ndisk_crit = 100\ninode_warn = 100\n\
    inode_crit = 100\nfor_cycles = 1\ndisk_eta_warn = 15s\ndisk_eta_crit = 10s";

/// The service at a 100 ms interval on a 100 MiB tmpfs: steady, no ETA; filled
/// at about 5 MB a second, a `disk_eta` alert at crit well before it is full,
/// whose ETA is within 30% of what the test's own fill rate gives; shrinking,
/// the ETA clears (`recovered`).
#[test]
fn a_filling_tmpfs_alerts_at_crit_with_an_eta_near_the_truth() {
    if !is_root() {
        eprintln!("skipped: needs root (a tmpfs in a private mount namespace)");
        return;
    }
    let h = Host::new("forecast-service").interval("100ms");
    let ns = tmpfs(&h, "100m");
    let mnt = h.p("mnt");
    let cfg = h.config(Ini {
        thresholds: NO_ALERTS_BUT_ETA,
        mounts: &mnt,
        disk: "forecast_window = 6s",
        ..Ini::default()
    });
    let file = ns.inside(&h.path("mnt/fill"));
    let free0 = avail(&ns.inside(&h.path("mnt")));
    let agent = ns.spawn(&cfg);
    // Steady: cycles over more than a tenth of the window, and no time left.
    h.wait_cycles(20);
    let label = mount_label(&mnt);
    let eta_field = format!(" eta_{label}=");
    assert!(!h.log().contains(&eta_field), "{}", h.log());
    assert!(!h.log().contains("metric=disk_eta"), "{}", h.log());
    // Filling: 512 KiB every 100 ms, each write counted with when it was done.
    let crit = "event=alert metric=disk_eta state=critical";
    let mut records: Vec<(u64, u64)> = Vec::new();
    let start = Instant::now();
    while h.count(crit) == 0 && start.elapsed() < LIMIT {
        let written = append(&file, 512 << 10);
        records.push((now_ns(), written));
        assert!(written < free0, "full before any crit alert:\n{}", h.log());
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = h.log();
    let alert = one_line(&log, crit);
    let at_ns = ts_ms(alert) as u64 * 1_000_000;
    let eta: f64 = field(&body(alert), "value")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {alert}"));
    // The truth: what is free at the alert over the rate of the last window, both
    // from the test's own count.
    let window: Vec<(u64, u64)> = records
        .iter()
        .copied()
        .filter(|&(t, _)| t <= at_ns && t + 6_000_000_000 >= at_ns)
        .collect();
    assert!(window.len() >= 10, "{window:?}\n{log}");
    let written = window.last().map_or(0, |r| r.1);
    let truth = (free0 - written) as f64 / slope(&window);
    eprintln!("the agent's ETA {eta} s, the test's {truth:.1} s");
    assert!(
        (eta - truth).abs() <= 0.3 * truth,
        "ETA {eta} s against {truth:.1} s (free {} of {free0} bytes)\n{log}",
        free0 - written
    );
    assert!(written < free0, "the alert came before the disk was full");
    assert!(
        log.lines()
            .any(|l| l.contains(" event=sample ") && l.contains(&eta_field)),
        "{log}"
    );
    // Shrinking: the time left clears.
    let recovered = "event=recovered metric=disk_eta";
    let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    let mut len = f.metadata().unwrap().len();
    let start = Instant::now();
    while h.count(recovered) == 0 && start.elapsed() < LIMIT && len > 0 {
        len = len.saturating_sub(1 << 20);
        f.set_len(len).expect("shrink");
        std::thread::sleep(Duration::from_millis(100));
    }
    h.must_see(recovered, 1);
    assert_eq!(agent.stop(), 0);
}

/// `--once` runs about 100 ms apart, 512 KiB written before each: from the fifth
/// run on, the readings saved by the earlier runs make a forecast (five readings
/// over a tenth of the 2 s window); without the saved readings there is none. A `disk_filling` cleanup rule acts only once the disk is filling.
#[test]
fn once_runs_forecast_from_the_readings_saved_in_state_dir() {
    if !is_root() {
        eprintln!("skipped: needs root (a tmpfs in a private mount namespace)");
        return;
    }
    let h = Host::new("forecast-once");
    std::os::unix::fs::symlink("/proc/self", h.path("proc/self")).expect("proc/self");
    let ns = tmpfs(&h, "64m");
    let mnt = h.p("mnt");
    let junk = ns.inside(&h.path("mnt/junk"));
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("old.tmp"), vec![b'x'; 1 << 20]).unwrap();
    let week = std::time::SystemTime::now() - Duration::from_secs(7 * 86_400);
    std::fs::File::open(junk.join("old.tmp"))
        .and_then(|f| f.set_modified(week))
        .expect("date it");
    let rule =
        format!("[cleanup.junk]\npaths = {mnt}/junk\nwhen = disk_filling\nolder_than = 1d\n");
    let cfg = h.config(Ini {
        thresholds: "disk_warn = 100\ndisk_crit = 100",
        mounts: &mnt,
        disk: "forecast_window = 2s",
        extra: &rule,
        ..Ini::default()
    });
    let file = ns.inside(&h.path("mnt/fill"));
    let label = mount_label(&mnt);
    let unknown = format!(" eta_{label}=U;");
    let mut runs: Vec<Run> = Vec::new();
    for _ in 0..20 {
        append(&file, 512 << 10);
        h.tick();
        runs.push(ns.once(&cfg, &[]));
        if runs.last().is_some_and(|r| !r.out.contains(&unknown)) {
            break;
        }
        // (Pacing the runs, so that five span a tenth of the window.)
        std::thread::sleep(Duration::from_millis(100));
    }
    let last = runs.last().unwrap();
    assert!(
        runs.len() >= 5,
        "no forecast from fewer than 5 readings: {:?}",
        runs[0].out
    );
    assert!(
        last.out.contains(&format!(" eta_{label}=")) && !last.out.contains(&unknown),
        "{}",
        last.out
    );
    assert!(
        last.out.contains(&format!("disk {mnt} full in ")),
        "{}",
        last.out
    );
    assert_eq!(last.code, 2, "{}", last.out);
    // The rule waited for the forecast, then removed the old file.
    let removed = h.events("event=cleanup rule=junk");
    assert_eq!(removed.len(), 1, "{}", h.log());
    assert!(!junk.join("old.tmp").exists());
    let before: usize = runs[..runs.len() - 1]
        .iter()
        .map(|r| r.out.matches(" full in ").count())
        .sum();
    assert_eq!(before, 0);
    let saved = h.read("state/forecast");
    assert!(
        saved.starts_with("system-agent-forecast 1\nsaved "),
        "{saved}"
    );
    assert!(saved.contains(&format!("\nmount {mnt}\np ")), "{saved}");
    // Without the saved readings, no forecast.
    std::fs::remove_file(h.path("state/forecast")).unwrap();
    append(&file, 512 << 10);
    h.tick();
    let fresh = ns.once(&cfg, &[]);
    assert!(fresh.out.contains(&unknown), "{}", fresh.out);
}
