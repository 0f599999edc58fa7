//! The `--once` status line on judged hosts: the worst items first, long lines cut
//! without losing the state, and perfdata for load, time left and memory relief.

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
