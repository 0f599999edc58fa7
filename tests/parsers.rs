//! The pure parsers (`procfs`, `passwd`, `state`, and `Config::parse` for robustness)
//! against whole files captured from a real host (Debian 12, Linux 6.18, 2 CPUs) and
//! hand-made ones for old kernels, odd process names and damaged files. Every field a
//! parser returns is asserted exactly. The last part feeds thousands of random and
//! mutated inputs to every parser with a fixed-seed PRNG: none may panic.
//!
//! Fixtures live in `tests/fixtures/proc/` and `tests/fixtures/passwd/`; their
//! READMEs say where each file came from.

#[path = "common/fuzz.rs"]
mod fuzz_engine;

use fuzz_engine::{Rng, mutate, rounds};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use system_agent::config::{Config, SECTIONS};
use system_agent::passwd::{Group, User, Users, groups_of, parse_group, parse_passwd};
use system_agent::procfs::loadavg::{LoadAvg, parse_loadavg};
use system_agent::procfs::meminfo::{Meminfo, parse_meminfo};
use system_agent::procfs::mountinfo::{Escaped, MountLine, mount_holding, parse_mountinfo_line};
use system_agent::procfs::pid::{
    PF_KTHREAD, PidStat, PidStatus, cmdline_args, cmdline_display, parse_pid_stat, parse_pid_status,
};
use system_agent::procfs::pressure::{Pressure, PressureLine, parse_pressure};
use system_agent::procfs::stat::{CpuTimes, Stat, parse_stat};
use system_agent::procfs::{ParseError, parse_f64, parse_i64, parse_u64};
use system_agent::scan::PrevTicks;
use system_agent::state::{format_procs, format_state, parse_procs, parse_state};

/// The bytes of a fixture file, embedded at compile time.
macro_rules! fx {
    ($p:literal) => {
        include_bytes!(concat!("fixtures/", $p))
    };
}

const STAT: &[u8] = fx!("proc/stat.debian12");
const STAT_OLD4: &[u8] = fx!("proc/stat.old4col");
const STAT_TRUNC: &[u8] = fx!("proc/stat.truncated");
const MEMINFO: &[u8] = fx!("proc/meminfo.debian12");
const MEMINFO_OLD: &[u8] = fx!("proc/meminfo.no_available");
const MEMINFO_TRUNC: &[u8] = fx!("proc/meminfo.truncated");
const LOADAVG: &[u8] = fx!("proc/loadavg.debian12");
const PSI_CPU: &[u8] = fx!("proc/pressure.cpu.debian12");
const PSI_MEM: &[u8] = fx!("proc/pressure.memory.debian12");
const PSI_IO: &[u8] = fx!("proc/pressure.io.debian12");
const PSI_CPU_NOFULL: &[u8] = fx!("proc/pressure.cpu.no_full");
const PSI_TRUNC: &[u8] = fx!("proc/pressure.truncated");
const PID_INIT: &[u8] = fx!("proc/pid_stat.init");
const PID_KTHREADD: &[u8] = fx!("proc/pid_stat.kthreadd");
const PID_KWORKER: &[u8] = fx!("proc/pid_stat.kworker");
const PID_ZOMBIE: &[u8] = fx!("proc/pid_stat.zombie");
const PID_PAREN: &[u8] = fx!("proc/pid_stat.paren_name");
const PID_FAKE: &[u8] = fx!("proc/pid_stat.fake_fields");
const PID_NEWLINE: &[u8] = fx!("proc/pid_stat.newline");
const PID_NONUTF8: &[u8] = fx!("proc/pid_stat.nonutf8");
const PID_OPEN2: &[u8] = fx!("proc/pid_stat.open2");
const PID_CLOSE1: &[u8] = fx!("proc/pid_stat.close1");
const PID_LONG: &[u8] = fx!("proc/pid_stat.long_name");
const PID_TRUNC: &[u8] = fx!("proc/pid_stat.truncated");
const STATUS_SETPRIV: &[u8] = fx!("proc/status.setpriv");
const STATUS_ZOMBIE: &[u8] = fx!("proc/status.zombie");
const STATUS_TRUNC: &[u8] = fx!("proc/status.truncated");
const CMD_CAT: &[u8] = fx!("proc/cmdline.cat");
const CMD_KTHREAD: &[u8] = fx!("proc/cmdline.kthread");
const CMD_ZOMBIE: &[u8] = fx!("proc/cmdline.zombie");
const CMD_REWRITTEN: &[u8] = fx!("proc/cmdline.rewritten");
const CMD_NO_NUL: &[u8] = fx!("proc/cmdline.no_nul");
const CMD_PADDED: &[u8] = fx!("proc/cmdline.padded");
const EMPTY: &[u8] = fx!("proc/empty");
const GARBAGE: &[u8] = fx!("proc/garbage");
const PASSWD: &[u8] = fx!("passwd/passwd.debian12");
const PASSWD_ODD: &[u8] = fx!("passwd/passwd.odd");
const GROUP: &[u8] = fx!("passwd/group.debian12");
const GROUP_ODD: &[u8] = fx!("passwd/group.odd");
const MOUNTINFO_NS: &[u8] = fx!("proc/mountinfo.namespace");
const MOUNTINFO_NET: &[u8] = fx!("proc/mountinfo.network");
const MOUNTINFO_TRUNC: &[u8] = fx!("proc/mountinfo.truncated");

fn err<T>(msg: &'static str) -> Result<T, ParseError> {
    Err(ParseError(msg))
}

// ---------------------------------------------------------------------------------
// /proc/stat

const CPU_DEBIAN12: CpuTimes = CpuTimes {
    user: 10745,
    nice: 0,
    system: 7833,
    idle: 210159,
    iowait: 238,
    irq: 0,
    softirq: 88,
    steal: 15,
};

#[test]
fn stat_debian12() {
    assert_eq!(
        parse_stat(STAT),
        Ok(Stat {
            cpu: CPU_DEBIAN12,
            ncpu: 2,
            btime: Some(1795689469),
        })
    );
    // guest and guest_nice (the 9th and 10th columns) are inside user and nice already.
    assert_eq!(CPU_DEBIAN12.busy(), 10745 + 7833 + 88 + 15);
    assert_eq!(CPU_DEBIAN12.total(), 18681 + 210159 + 238);
    assert_eq!(
        CPU_DEBIAN12.as_array(),
        [10745, 0, 7833, 210159, 238, 0, 88, 15]
    );
    assert_eq!(CpuTimes::from_array(CPU_DEBIAN12.as_array()), CPU_DEBIAN12);
}

#[test]
fn stat_old_kernel_with_four_columns() {
    assert_eq!(
        parse_stat(STAT_OLD4),
        Ok(Stat {
            cpu: CpuTimes {
                user: 1397,
                nice: 2,
                system: 1268,
                idle: 89627,
                ..CpuTimes::default()
            },
            ncpu: 2,
            btime: Some(1062191376),
        })
    );
}

#[test]
fn stat_with_seven_and_nine_columns() {
    // 2.6.0-2.6.10 print 7 columns; 2.6.24-2.6.32 print 9 (guest, no guest_nice).
    let seven = parse_stat(b"cpu  1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\n").unwrap();
    assert_eq!(seven.cpu.as_array(), [1, 2, 3, 4, 5, 6, 7, 0]);
    let nine = parse_stat(b"cpu  1 2 3 4 5 6 7 8 9\ncpu0 1 2 3 4 5 6 7 8 9\n").unwrap();
    assert_eq!(nine.cpu.as_array(), [1, 2, 3, 4, 5, 6, 7, 8]);
    // Columns past the eighth are never looked at, whatever they hold.
    let junk = parse_stat(b"cpu  1 2 3 4 5 6 7 8 x y\ncpu0 0 0 0 0\n").unwrap();
    assert_eq!(junk.cpu.as_array(), [1, 2, 3, 4, 5, 6, 7, 8]);
}

#[test]
fn stat_truncated_file() {
    // Cut inside the cpu0 line: the aggregate is whole, one CPU was seen, no btime.
    assert_eq!(
        parse_stat(STAT_TRUNC),
        Ok(Stat {
            cpu: CPU_DEBIAN12,
            ncpu: 1,
            btime: None,
        })
    );
    // Cut inside the aggregate line.
    assert_eq!(
        parse_stat(&STAT[..15]),
        err("cpu line has fewer than 4 fields")
    );
    // Cut right after the aggregate line.
    assert_eq!(parse_stat(&STAT[..41]), err("no \"cpuN\" lines"));
    assert_eq!(parse_stat(&STAT[..3]), err("no aggregate \"cpu\" line"));
}

#[test]
fn stat_empty_garbage_and_bad_lines() {
    assert_eq!(parse_stat(EMPTY), err("no aggregate \"cpu\" line"));
    assert_eq!(parse_stat(GARBAGE), err("no aggregate \"cpu\" line"));
    assert_eq!(
        parse_stat(b"cpu  1 2 x 4\ncpu0 1 2 3 4\n"),
        err("cpu line has a non-numeric field")
    );
    assert_eq!(
        parse_stat(b"cpu  1 2 -3 4\ncpu0 1 2 3 4\n"),
        err("cpu line has a non-numeric field")
    );
    assert_eq!(
        parse_stat(b"cpu  1 2 99999999999999999999999 4\ncpu0 1 2 3 4\n"),
        err("cpu line has a non-numeric field")
    );
    assert_eq!(
        parse_stat(b"cpu  1 2 3\ncpu0 1 2 3 4\n"),
        err("cpu line has fewer than 4 fields")
    );
    // Lines that only start like "cpu" are neither the aggregate nor a CPU.
    assert_eq!(
        parse_stat(b"cpu  1 2 3 4\ncpux 1 2 3 4\ncpu\n"),
        err("no \"cpuN\" lines")
    );
    // A btime that is not a number is left out, not an error.
    assert_eq!(
        parse_stat(b"cpu  1 2 3 4\ncpu0 1 2 3 4\nbtime soon\n").map(|s| s.btime),
        Ok(None)
    );
    assert_eq!(
        parse_stat(b"cpu  1 2 3 4\ncpu0 1 2 3 4\nbtime  42 \n").map(|s| s.btime),
        Ok(Some(42))
    );
}

#[test]
fn cpu_percent_between_two_real_readings() {
    // The aggregate line of the same host, captured a little earlier.
    let earlier = CpuTimes::from_array([10578, 0, 7752, 204541, 235, 0, 87, 15]);
    // busy +249 (user 167, system 81, softirq 1); idle +5618; iowait +3.
    assert_eq!(
        CPU_DEBIAN12.used_percent_since(&earlier),
        Some(249.0 * 100.0 / 5870.0)
    );
    assert_eq!(CPU_DEBIAN12.used_percent_since(&CPU_DEBIAN12), None);
    // Counters that went backwards: a reboot, or another host's counters.
    assert_eq!(earlier.used_percent_since(&CPU_DEBIAN12), None);
}

#[test]
fn cpu_percent_edge_cases() {
    let at = |a: [u64; 8]| CpuTimes::from_array(a);
    let base = at([100, 0, 100, 1000, 10, 0, 0, 0]);
    // All busy, all idle.
    assert_eq!(
        at([150, 0, 150, 1000, 10, 0, 0, 0]).used_percent_since(&base),
        Some(100.0)
    );
    assert_eq!(
        at([100, 0, 100, 1100, 10, 0, 0, 0]).used_percent_since(&base),
        Some(0.0)
    );
    // iowait may step back a little on a real kernel; the total still grew.
    assert_eq!(
        at([110, 0, 100, 1100, 7, 0, 0, 0]).used_percent_since(&base),
        Some(10.0 * 100.0 / 107.0)
    );
    // Idle went back, so busy grew more than the total: refused.
    assert_eq!(
        at([110, 0, 100, 995, 10, 0, 0, 0]).used_percent_since(&base),
        None
    );
    // Sums saturate instead of overflowing.
    let max = at([u64::MAX; 8]);
    assert_eq!((max.busy(), max.total()), (u64::MAX, u64::MAX));
    assert_eq!(max.used_percent_since(&max), None);
    assert_eq!(CpuTimes::default().total(), 0);
}

// ---------------------------------------------------------------------------------
// /proc/meminfo

#[test]
fn meminfo_debian12() {
    let m = parse_meminfo(MEMINFO).unwrap();
    assert_eq!(
        m,
        Meminfo {
            total_kb: 24731708,
            available_kb: 24382464,
            swap_total_kb: 0,
            swap_free_kb: 0,
        }
    );
    assert_eq!(
        m.used_percent(),
        Some((24731708 - 24382464) as f64 * 100.0 / 24731708.0)
    );
    assert_eq!(m.swap_used_percent(), 0.0);
}

#[test]
fn meminfo_before_linux_3_14_uses_free_buffers_cached() {
    let m = parse_meminfo(MEMINFO_OLD).unwrap();
    assert_eq!(
        m,
        Meminfo {
            total_kb: 1922080,
            available_kb: 158024 + 112460 + 998932,
            swap_total_kb: 4194300,
            swap_free_kb: 4128760,
        }
    );
    assert_eq!(
        m.used_percent(),
        Some((1922080 - 1269416) as f64 * 100.0 / 1922080.0)
    );
    assert_eq!(
        m.swap_used_percent(),
        (4194300 - 4128760) as f64 * 100.0 / 4194300.0
    );
}

#[test]
fn meminfo_truncated_empty_garbage() {
    // Cut right after "MemAvailable:".
    assert_eq!(
        parse_meminfo(MEMINFO_TRUNC),
        err("meminfo value is not a number")
    );
    // Cut before the MemAvailable line: the fallback with only MemFree.
    assert_eq!(
        parse_meminfo(&MEMINFO[..56]),
        Ok(Meminfo {
            total_kb: 24731708,
            available_kb: 23506128,
            swap_total_kb: 0,
            swap_free_kb: 0,
        })
    );
    assert_eq!(
        parse_meminfo(&MEMINFO[..28]),
        err("neither MemAvailable nor MemFree")
    );
    assert_eq!(parse_meminfo(&MEMINFO[..8]), err("no MemTotal line"));
    assert_eq!(parse_meminfo(EMPTY), err("no MemTotal line"));
    assert_eq!(parse_meminfo(GARBAGE), err("no MemTotal line"));
}

#[test]
fn meminfo_odd_values() {
    // More available than total (seen in containers with a faked MemTotal): clamped.
    let m = parse_meminfo(b"MemTotal: 100 kB\nMemAvailable: 150 kB\n").unwrap();
    assert_eq!(m.available_kb, 100);
    assert_eq!(m.used_percent(), Some(0.0));
    // Fallback sums saturate.
    let m = parse_meminfo(b"MemTotal: 100 kB\nMemFree: 18446744073709551615 kB\nCached: 9 kB\n");
    assert_eq!(m.map(|m| m.available_kb), Ok(100));
    // A zero total has no percentage; free swap above total swap reads 0 %.
    let m = parse_meminfo(b"MemTotal: 0 kB\nMemFree: 0 kB\nSwapTotal: 5 kB\nSwapFree: 9 kB\n");
    let m = m.unwrap();
    assert_eq!((m.used_percent(), m.swap_used_percent()), (None, 0.0));
    for bad in [
        &b"MemTotal: -1 kB\nMemFree: 1 kB\n"[..],
        b"MemTotal: 99999999999999999999999 kB\nMemFree: 1 kB\n",
        b"MemTotal:\nMemFree: 1 kB\n",
        b"MemTotal: 1 kB\nMemFree: 1 kB\nCached: lots\n",
    ] {
        assert_eq!(parse_meminfo(bad), err("meminfo value is not a number"));
    }
    // Keys are exact: "MemTotal " or "memtotal" is not MemTotal.
    assert_eq!(
        parse_meminfo(b"memtotal: 1 kB\nMemTotal : 1 kB\nMemFree: 1 kB\n"),
        err("no MemTotal line")
    );
}

// ---------------------------------------------------------------------------------
// /proc/loadavg

#[test]
fn loadavg_debian12() {
    assert_eq!(
        parse_loadavg(LOADAVG),
        Ok(LoadAvg {
            one: 0.08,
            five: 0.27,
            fifteen: 0.17,
        })
    );
    assert_eq!(
        parse_loadavg(b"12.50 101.00 3.07 9/1234 55\n"),
        Ok(LoadAvg {
            one: 12.5,
            five: 101.0,
            fifteen: 3.07,
        })
    );
}

#[test]
fn loadavg_truncated_empty_garbage() {
    let three = err("expected three load averages");
    assert_eq!(parse_loadavg(&LOADAVG[..8]), three);
    assert_eq!(parse_loadavg(EMPTY), three);
    assert_eq!(parse_loadavg(GARBAGE), three);
    assert_eq!(parse_loadavg(b"0.1 0.2 -0.3 1/2 3\n"), three);
    assert_eq!(parse_loadavg(b"0.1 0.2 nan 1/2 3\n"), three);
    // Cut after "0.": read as 0 (the kernel always prints two decimals).
    assert_eq!(
        parse_loadavg(&LOADAVG[..12]),
        Ok(LoadAvg {
            one: 0.08,
            five: 0.27,
            fifteen: 0.0,
        })
    );
}

// ---------------------------------------------------------------------------------
// /proc/pressure/*

fn psi(avg10: f64, avg60: f64, avg300: f64, total_us: u64) -> PressureLine {
    PressureLine {
        avg10,
        avg60,
        avg300,
        total_us,
    }
}

#[test]
fn pressure_debian12() {
    assert_eq!(
        parse_pressure(PSI_CPU),
        Ok(Pressure {
            some: psi(0.68, 0.51, 0.53, 6357268),
            full: Some(psi(0.0, 0.0, 0.0, 0)),
        })
    );
    assert_eq!(
        parse_pressure(PSI_MEM),
        Ok(Pressure {
            some: psi(0.0, 0.0, 0.0, 0),
            full: Some(psi(0.0, 0.0, 0.0, 0)),
        })
    );
    assert_eq!(
        parse_pressure(PSI_IO),
        Ok(Pressure {
            some: psi(0.0, 0.0, 0.0, 1567210),
            full: Some(psi(0.0, 0.0, 0.0, 1515121)),
        })
    );
}

#[test]
fn pressure_cpu_before_linux_5_13_has_no_full_line() {
    assert_eq!(
        parse_pressure(PSI_CPU_NOFULL),
        Ok(Pressure {
            some: psi(1.53, 0.87, 0.32, 183839475),
            full: None,
        })
    );
}

#[test]
fn pressure_truncated_empty_garbage() {
    assert_eq!(parse_pressure(PSI_TRUNC), err("pressure field without '='"));
    // Cut after "avg300=": the value is missing.
    assert_eq!(
        parse_pressure(&PSI_CPU[..34]),
        err("pressure value is not a number")
    );
    // Cut before "total=": a field is missing.
    assert_eq!(
        parse_pressure(&PSI_CPU[..38]),
        err("pressure line lacks avg10, avg60, avg300 or total")
    );
    assert_eq!(parse_pressure(EMPTY), err("no \"some\" line"));
    assert_eq!(parse_pressure(GARBAGE), err("no \"some\" line"));
    assert_eq!(parse_pressure(&PSI_CPU[53..]), err("no \"some\" line"));
    // Fields the kernel may add later are skipped; order does not matter.
    assert_eq!(
        parse_pressure(b"some total=5 avg300=0.30 new=x avg60=0.60 avg10=0.10\n"),
        Ok(Pressure {
            some: psi(0.1, 0.6, 0.3, 5),
            full: None,
        })
    );
}

#[test]
fn pressure_line_with_256_known_fields_does_not_panic() {
    // A field counter in a u8 would overflow here (a panic in debug builds).
    let line = format!("some{}\n", " avg10=0.00".repeat(256));
    assert_eq!(
        parse_pressure(line.as_bytes()),
        err("pressure field repeated")
    );
}

#[test]
fn pressure_line_needs_each_field_once() {
    // Four avg10 fields must not count as the four fields.
    assert_eq!(
        parse_pressure(b"some avg10=1.00 avg10=2.00 avg10=3.00 avg10=4.00\n"),
        err("pressure field repeated")
    );
    assert_eq!(
        parse_pressure(b"some avg10=1.00 avg60=2.00 total=3\n"),
        err("pressure line lacks avg10, avg60, avg300 or total")
    );
}

// ---------------------------------------------------------------------------------
// /proc/PID/stat

/// A process started by the capture script: state R, parent 23959, nothing else set.
fn capture(pid: i32, name: &'static [u8], starttime: u64, rss_pages: u64) -> PidStat<'static> {
    PidStat {
        pid,
        name,
        state: b'R',
        ppid: 23959,
        pgrp: 23959,
        flags: 4194304,
        utime: 0,
        stime: 0,
        starttime,
        rss_pages,
        num_threads: 1,
    }
}

#[test]
fn pid_stat_init() {
    let p = parse_pid_stat(PID_INIT).unwrap();
    assert_eq!(
        p,
        PidStat {
            pid: 1,
            name: b"process_api",
            state: b'S',
            ppid: 0,
            pgrp: 0,
            flags: 4194560,
            utime: 33,
            stime: 68,
            starttime: 5,
            rss_pages: 2835,
            num_threads: 11,
        }
    );
    assert!(!p.is_kernel_thread());
    assert_eq!(p.cpu_ticks(), 101);
}

#[test]
fn pid_stat_kernel_threads() {
    let kthreadd = parse_pid_stat(PID_KTHREADD).unwrap();
    assert_eq!(
        kthreadd,
        PidStat {
            pid: 2,
            name: b"kthreadd",
            state: b'S',
            ppid: 0,
            pgrp: 0,
            flags: 2129984,
            utime: 0,
            stime: 0,
            starttime: 5,
            rss_pages: 0,
            num_threads: 1,
        }
    );
    assert_eq!(kthreadd.flags & PF_KTHREAD, PF_KTHREAD);
    assert!(kthreadd.is_kernel_thread());
    let kworker = parse_pid_stat(PID_KWORKER).unwrap();
    assert_eq!(
        kworker,
        PidStat {
            pid: 9,
            name: b"kworker/0:0-events",
            state: b'I',
            ppid: 2,
            pgrp: 0,
            flags: 69238880,
            utime: 0,
            stime: 0,
            starttime: 5,
            rss_pages: 0,
            num_threads: 1,
        }
    );
    assert!(kworker.is_kernel_thread());
    // The flag decides, not the parent: in a PID namespace pid 2 and its children
    // are ordinary processes.
    let by_flag = PidStat { ppid: 1, ..kworker };
    let child_of_2 = PidStat {
        flags: 0,
        ..kworker
    };
    assert!(by_flag.is_kernel_thread());
    assert!(!child_of_2.is_kernel_thread());
}

#[test]
fn pid_stat_zombie() {
    let z = parse_pid_stat(PID_ZOMBIE).unwrap();
    assert_eq!(
        z,
        PidStat {
            pid: 24642,
            name: b"perl",
            state: b'Z',
            ppid: 24641,
            pgrp: 24626,
            flags: 4227148,
            utime: 0,
            stime: 0,
            starttime: 114680,
            rss_pages: 0,
            num_threads: 1,
        }
    );
    assert!(!z.is_kernel_thread());
}

#[test]
fn pid_stat_names_with_parentheses_spaces_newlines_and_bytes() {
    // Each name was written to /proc/self/comm by a real process, then its stat read.
    let cases: [(&[u8], PidStat); 7] = [
        (PID_PAREN, capture(23963, b"(a) (b)", 113318, 1388)),
        (PID_FAKE, capture(23964, b"x) S 1 2 (y", 113320, 1370)),
        (PID_NEWLINE, capture(23965, b"a\nb)", 113320, 1328)),
        (PID_NONUTF8, capture(23966, b"\xff\xfe(\x80)", 113320, 1374)),
        (PID_OPEN2, capture(23967, b"((", 113320, 1395)),
        (PID_CLOSE1, capture(23968, b")", 113321, 1355)),
        // "a b c d e f g h i j ..." cut by the kernel to 15 bytes.
        (PID_LONG, capture(23969, b"a b c d e f g h", 113321, 1386)),
    ];
    for (file, want) in cases {
        assert_eq!(parse_pid_stat(file), Ok(want), "{}", file.escape_ascii());
        assert!(!want.is_kernel_thread());
    }
}

#[test]
fn pid_stat_truncated_empty_garbage() {
    let few = err("fewer than 24 fields");
    assert_eq!(parse_pid_stat(PID_TRUNC), few);
    // Cut inside the name: the last ')' is inside the name, the rest is too short.
    assert_eq!(parse_pid_stat(&PID_PAREN[..12]), few);
    assert_eq!(
        parse_pid_stat(&PID_PAREN[..9]),
        err("no ')' after the name")
    );
    assert_eq!(
        parse_pid_stat(&PID_INIT[..1]),
        err("no '(' before the name")
    );
    assert_eq!(parse_pid_stat(EMPTY), err("no '(' before the name"));
    // 24 fields exactly (cut after rss) is enough.
    let upto_rss = 95;
    assert!(PID_INIT[..upto_rss].ends_with(b" 38297600 2835"));
    assert_eq!(
        parse_pid_stat(&PID_INIT[..upto_rss]).map(|p| p.rss_pages),
        Ok(2835)
    );
    assert_eq!(parse_pid_stat(&PID_INIT[..upto_rss - 5]), few);
    // The random bytes hold a '(' (at 56) and a later ')': what precedes is no pid.
    assert_eq!(parse_pid_stat(GARBAGE), err("pid is not a number"));
}

#[test]
fn pid_stat_bad_fields() {
    let tail = b" S 1 1 0 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 1 0 4242 5566 -5 0";
    let with = |head: &[u8]| [head, &tail[..]].concat();
    // A negative rss (seen on some kernels) is clamped to 0.
    assert_eq!(
        parse_pid_stat(&with(b"77 (x)")).map(|p| (p.pid, p.rss_pages, p.utime, p.stime)),
        Ok((77, 0, 7, 3))
    );
    assert_eq!(parse_pid_stat(b"5 )x( S"), err("')' before '('"));
    assert_eq!(parse_pid_stat(&with(b"x (a)")), err("pid is not a number"));
    assert_eq!(
        parse_pid_stat(&with(b"2147483648 (a)")),
        err("pid is not a number")
    );
    assert_eq!(
        parse_pid_stat(&with(b"99999999999999999999999 (a)")),
        err("pid is not a number")
    );
    assert_eq!(
        parse_pid_stat(b"1 (a) SS 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0"),
        err("state is not one letter")
    );
    assert_eq!(
        parse_pid_stat(b"1 (a) 5 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0"),
        err("state is not one letter")
    );
    assert_eq!(
        parse_pid_stat(b"1 (a) S 1 1 0 0 -1 0 0 0 0 0 x 0 0 0 20 0 1 0 0 0 0"),
        err("a numeric field is not a number")
    );
    assert_eq!(
        parse_pid_stat(
            b"1 (a) S 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999 0 0"
        ),
        err("a numeric field is not a number")
    );
}

#[test]
fn pid_stat_out_of_range_ppid_is_an_error() {
    // 4294967298 would wrap to 2 with a plain cast; ppid and pgrp are range-checked.
    let line = b"5 (a) S 4294967298 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0";
    assert_eq!(
        parse_pid_stat(line),
        err("a process id field is out of range")
    );
}

// ---------------------------------------------------------------------------------
// /proc/PID/status

#[test]
fn pid_status_real_files() {
    // `setpriv --ruid 1000 --euid 1001 --rgid 100 --egid 101 cat /proc/self/status`.
    assert_eq!(
        parse_pid_status(STATUS_SETPRIV),
        Ok(PidStatus {
            uid: [1000, 1001, 1001, 1001],
            gid: [100, 101, 101, 101],
            cap_eff: 0,
        })
    );
    // A zombie child of a root process: no Vm* lines, full capability set.
    assert_eq!(
        parse_pid_status(STATUS_ZOMBIE),
        Ok(PidStatus {
            uid: [0; 4],
            gid: [0; 4],
            cap_eff: 0x0000_01ff_feff_ffff,
        })
    );
}

#[test]
fn pid_status_truncated_empty_garbage() {
    assert_eq!(
        parse_pid_status(STATUS_TRUNC),
        err("id line has fewer than 4 ids")
    );
    // Cut before the Gid line; then before the CapEff line.
    assert_eq!(parse_pid_status(&STATUS_ZOMBIE[..98]), err("no Gid line"));
    assert_eq!(
        parse_pid_status(&STATUS_ZOMBIE[..300]),
        err("no CapEff line")
    );
    assert_eq!(parse_pid_status(EMPTY), err("no Uid line"));
    assert_eq!(parse_pid_status(GARBAGE), err("no Uid line"));
}

#[test]
fn pid_status_bad_values() {
    let with = |uid: &str, cap: &str| format!("Uid:\t{uid}\nGid:\t0\t0\t0\t0\nCapEff:\t{cap}\n");
    let parse = |s: String| parse_pid_status(s.as_bytes());
    assert_eq!(
        parse(with("4294967295\t0\t0\t0", "ffffffffffffffff")),
        Ok(PidStatus {
            uid: [u32::MAX, 0, 0, 0],
            gid: [0; 4],
            cap_eff: u64::MAX,
        })
    );
    assert_eq!(
        parse(with("4294967296\t0\t0\t0", "0")),
        err("id is not a number")
    );
    assert_eq!(parse(with("-1\t0\t0\t0", "0")), err("id is not a number"));
    assert_eq!(
        parse(with("0\t0\t0", "0")),
        err("id line has fewer than 4 ids")
    );
    assert_eq!(parse(with("0\t0\t0\t0", "")), err("CapEff is not hex"));
    assert_eq!(parse(with("0\t0\t0\t0", "0x1f")), err("CapEff is not hex"));
    assert_eq!(
        parse(with("0\t0\t0\t0", "1ffffffffffffffff")),
        err("CapEff is not hex")
    );
    // Extra ids (none today) are ignored; upper-case hex is hex.
    assert_eq!(
        parse(with("1\t2\t3\t4\t5", "0000001FFFFFFFFF")),
        Ok(PidStatus {
            uid: [1, 2, 3, 4],
            gid: [0; 4],
            cap_eff: 0x1f_ffff_ffff,
        })
    );
}

// ---------------------------------------------------------------------------------
// /proc/PID/cmdline

fn args(buf: &[u8]) -> Vec<&[u8]> {
    cmdline_args(buf).collect()
}

fn display(buf: &[u8]) -> Vec<u8> {
    let mut out = b"left over from the last process".to_vec();
    cmdline_display(buf, &mut out);
    out
}

#[test]
fn cmdline_real_files() {
    assert_eq!(args(CMD_CAT), [&b"cat"[..], b"/proc/self/cmdline"]);
    assert_eq!(display(CMD_CAT), b"cat /proc/self/cmdline");
    // Kernel threads and zombies have an empty cmdline.
    for empty in [CMD_KTHREAD, CMD_ZOMBIE] {
        assert_eq!(args(empty), Vec::<&[u8]>::new());
        assert_eq!(display(empty), b"");
    }
    // perl's `$0 = "worker: idle (3 jobs)"`: one argument with spaces and parentheses.
    assert_eq!(args(CMD_REWRITTEN), [&b"worker: idle (3 jobs)"[..]]);
    assert_eq!(display(CMD_REWRITTEN), b"worker: idle (3 jobs)");
}

#[test]
fn cmdline_rewritten_by_the_process() {
    // nginx-style: the title overwrites argv and leaves no NUL at all.
    assert_eq!(args(CMD_NO_NUL), [&b"nginx: worker process"[..]]);
    assert_eq!(display(CMD_NO_NUL), b"nginx: worker process");
    // sshd-style setproctitle pads the old argv area with NULs; each extra NUL is an
    // empty argument, and the display drops the trailing blanks they would make.
    assert_eq!(
        args(CMD_PADDED),
        [&b"sshd: alice [priv]"[..], b"", b"", b"", b"", b""]
    );
    assert_eq!(display(CMD_PADDED), b"sshd: alice [priv]");
}

#[test]
fn cmdline_edge_cases() {
    assert_eq!(args(b"\0"), Vec::<&[u8]>::new());
    assert_eq!(args(b"\0\0"), [&b""[..], b""]);
    assert_eq!(args(b"a\0\0b"), [&b"a"[..], b"", b"b"]);
    assert_eq!(display(b"a\0\0b\0"), b"a  b");
    assert_eq!(args(b"\xff\n\0"), [&b"\xff\n"[..]]);
    assert_eq!(
        display(GARBAGE).len(),
        GARBAGE.len() - usize::from(GARBAGE.ends_with(b"\0"))
    );
}

// ---------------------------------------------------------------------------------
// /etc/passwd

fn user(name: &str, uid: u32, gid: u32, home: &str, shell: &str) -> User {
    User {
        name: name.into(),
        uid,
        gid,
        home: home.into(),
        shell: shell.into(),
    }
}

#[test]
fn passwd_debian12() {
    let nologin = "/usr/sbin/nologin";
    assert_eq!(
        parse_passwd(PASSWD),
        vec![
            user("root", 0, 0, "/root", "/bin/bash"),
            user("daemon", 1, 1, "/usr/sbin", nologin),
            user("bin", 2, 2, "/bin", nologin),
            user("sys", 3, 3, "/dev", nologin),
            user("sync", 4, 65534, "/bin", "/bin/sync"),
            user("games", 5, 60, "/usr/games", nologin),
            user("man", 6, 12, "/var/cache/man", nologin),
            user("lp", 7, 7, "/var/spool/lpd", nologin),
            user("mail", 8, 8, "/var/mail", nologin),
            user("news", 9, 9, "/var/spool/news", nologin),
            user("uucp", 10, 10, "/var/spool/uucp", nologin),
            user("proxy", 13, 13, "/bin", nologin),
            user("www-data", 33, 33, "/var/www", nologin),
            user("backup", 34, 34, "/var/backups", nologin),
            user("list", 38, 38, "/var/list", nologin),
            user("irc", 39, 39, "/run/ircd", nologin),
            user("_apt", 42, 65534, "/nonexistent", nologin),
            user("nobody", 65534, 65534, "/nonexistent", nologin),
            user("cloudsdk", 1000, 1000, "/home/cloudsdk", "/bin/bash"),
            user("systemd-network", 998, 998, "/", nologin),
            user("systemd-timesync", 997, 997, "/", nologin),
            user("messagebus", 100, 102, "/nonexistent", nologin),
            user("polkitd", 996, 996, "/nonexistent", nologin),
            user("postgres", 101, 104, "/var/lib/postgresql", "/bin/bash"),
        ]
    );
    let users = Users::new(parse_passwd(PASSWD));
    assert_eq!((users.len(), users.is_empty()), (24, false));
    assert_eq!(users.name(0), Some("root"));
    assert_eq!(users.name(6), Some("man"));
    assert_eq!(users.name(65534), Some("nobody"));
    assert_eq!(users.name(1001), None);
}

#[test]
fn passwd_odd_lines() {
    // Skipped: the comment, the NIS +/- lines, a short and a long line, uid or gid
    // above u32 or negative or with a space, an empty or non-UTF-8 name, the blank line.
    assert_eq!(
        parse_passwd(PASSWD_ODD),
        vec![
            user("root", 0, 0, "/root", "/bin/bash"),
            user("daemon", 1, 1, "/usr/sbin", "/usr/sbin/nologin"),
            user("alice", 1000, 1000, "/home/alice", "/bin/bash"),
            user("toor", 0, 0, "/root", "/bin/sh"),
            user(
                "max",
                u32::MAX,
                u32::MAX,
                "/nonexistent",
                "/usr/sbin/nologin"
            ),
            user("bob", 1010, 1010, "", ""),
            user("dave", 1011, 1011, "/home/dave", "/usr/bin/zsh"),
            user("dave2", 1011, 1011, "/home/dave2", "/bin/sh"),
            user("last", 1012, 1012, "/home/last", "/bin/sh"),
        ]
    );
}

#[test]
fn passwd_users_first_entry_for_a_uid_wins() {
    let users = Users::new(parse_passwd(PASSWD_ODD));
    // Every entry is kept (the audit reads a toor beside root); names go by uid.
    assert_eq!(users.len(), 9);
    let all: Vec<&str> = users.all().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        all,
        [
            "root", "daemon", "alice", "toor", "max", "bob", "dave", "dave2", "last"
        ]
    );
    assert_eq!(users.name(0), Some("root"));
    assert_eq!(users.name(1011), Some("dave"));
    assert_eq!(users.name(u32::MAX), Some("max"));
    assert_eq!(users.name(1010), Some("bob"));
    // Rejected lines give no name.
    for uid in [1001, 1002, 1006, 1007, 1008, 1009] {
        assert_eq!(users.name(uid), None, "uid {uid}");
    }
    let none = Users::new(Vec::new());
    assert_eq!((none.len(), none.is_empty(), none.name(0)), (0, true, None));
    assert!(Users::default().is_empty());
}

#[test]
fn passwd_truncated_empty_garbage() {
    // Cut inside the last line's gecos field: that line is dropped, the rest kept.
    let cut = PASSWD.len() - 40;
    assert!(PASSWD[..cut].ends_with(b":PostgreSQL adminis"));
    let users = parse_passwd(&PASSWD[..cut]);
    assert_eq!(users.len(), 23);
    assert_eq!(users[22].name, "polkitd");
    assert_eq!(parse_passwd(EMPTY), Vec::new());
    assert_eq!(parse_passwd(GARBAGE), Vec::new());
    // A whole CRLF file.
    let crlf = b"root:x:0:0:root:/root:/bin/bash\r\nman:x:6:12::/var/cache/man:/bin/false\r\n";
    assert_eq!(
        parse_passwd(crlf),
        vec![
            user("root", 0, 0, "/root", "/bin/bash"),
            user("man", 6, 12, "/var/cache/man", "/bin/false"),
        ]
    );
}

// ---------------------------------------------------------------------------------
// /etc/group

fn group(name: &str, gid: u32, members: &[&str]) -> Group {
    Group {
        name: name.into(),
        gid,
        members: members.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn group_debian12() {
    let groups = parse_group(GROUP);
    assert_eq!(groups.len(), 48);
    assert_eq!(groups[0], group("root", 0, &[]));
    assert_eq!(groups[4], group("adm", 4, &["cloudsdk"]));
    assert_eq!(groups[37], group("nogroup", 65534, &[]));
    assert_eq!(groups[47], group("postgres", 104, &[]));
    // As initgroups: the primary group first, then each group naming the user.
    assert_eq!(
        groups_of(&groups, "cloudsdk", 1000),
        [1000, 4, 20, 24, 25, 27, 29, 30, 44, 46, 101, 1001]
    );
    assert_eq!(groups_of(&groups, "postgres", 104), [104, 103]);
    assert_eq!(groups_of(&groups, "man", 12), [12]);
    // A user no group names, with a primary group missing from the file.
    assert_eq!(groups_of(&groups, "nosuchuser", 4242), [4242]);
    // Members are names, not prefixes.
    assert_eq!(groups_of(&groups, "cloud", 1000), [1000]);
}

#[test]
fn group_odd_lines() {
    // Skipped: the comment, the NIS +/- lines, a short and a long line, a gid above
    // u32 or negative or with a space, an empty or non-UTF-8 name, a non-UTF-8
    // member list, the blank line.
    assert_eq!(
        parse_group(GROUP_ODD),
        vec![
            group("root", 0, &[]),
            group("adm", 4, &["syslog", "alice"]),
            group("crlf", 1005, &["alice", "bob"]),
            group("max", u32::MAX, &["alice"]),
            group("trailing", 1008, &["alice", "bob"]),
            group("space", 1009, &[" alice", "bob "]),
            group("dup", 4, &["alice"]),
            group("empty", 1010, &[]),
            group("nopass", 1011, &["alice"]),
            group("last", 1012, &["alice"]),
        ]
    );
    let groups = parse_group(GROUP_ODD);
    // Each gid once (adm and dup are both 4), the primary first even when listed.
    assert_eq!(
        groups_of(&groups, "alice", 1008),
        [1008, 4, 1005, u32::MAX, 1011, 1012]
    );
    assert_eq!(groups_of(&groups, "bob", 7), [7, 1005, 1008]);
    assert_eq!(groups_of(&groups, "syslog", 4), [4]);
}

#[test]
fn group_truncated_empty_garbage() {
    // Without its final newline, the last line still counts.
    let groups = parse_group(&GROUP[..GROUP.len() - 1]);
    assert_eq!(groups.len(), 48);
    // Cut inside a member list: that line keeps what it had, the rest is gone.
    let cut = GROUP.len() - "postgres:x:104:\n".len() - 5;
    assert!(GROUP[..cut].ends_with(b":103:post"));
    let groups = parse_group(&GROUP[..cut]);
    assert_eq!(groups.len(), 47);
    assert_eq!(groups[46], group("ssl-cert", 103, &["post"]));
    assert_eq!(parse_group(EMPTY), Vec::new());
    assert_eq!(parse_group(GARBAGE), Vec::new());
    assert_eq!(groups_of(&[], "alice", 1000), [1000]);
}

#[test]
fn fuzz_group() {
    let seeds = [GROUP, GROUP_ODD];
    fuzz(9, &seeds, |b| {
        let groups = parse_group(b);
        for g in &groups {
            assert!(!g.name.is_empty() && !g.name.contains(':') && !g.name.contains('\n'));
            for m in &g.members {
                assert!(!m.is_empty() && !m.contains(',') && !m.contains(':'));
            }
        }
        if let Some(g) = groups.iter().find(|g| !g.members.is_empty()) {
            let ids = groups_of(&groups, &g.members[0], 5);
            assert_eq!(ids[0], 5);
            assert!(ids.contains(&g.gid));
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), ids.len(), "{ids:?}");
        }
        !groups.is_empty()
    });
}

// ---------------------------------------------------------------------------------
// state_dir files

const STATE_TEXT: &str = "system-agent-state 1\nsaved 123\nbtime 456\ncpu 1 2 3 4 5 6 7 8\n\
    metric 0 0 0 0 0 cpu\nmetric 0 0 0 0 0 mem\nmetric 0 0 0 0 0 disk:/\nmetric 0 0 0 0 0 inode:/\nend\n";

#[test]
fn state_file_exact_text_and_back() {
    let mut cfg = Config::default();
    cfg.disk.forecast_window = std::time::Duration::ZERO;
    let metrics = system_agent::judge::metrics_for(&cfg);
    let cpu = CpuTimes::from_array([1, 2, 3, 4, 5, 6, 7, 8]);
    let mut s = String::from("stale");
    format_state(&mut s, 123, 456, Some(&cpu), &metrics);
    assert_eq!(s, STATE_TEXT);
    let back = parse_state(s.as_bytes()).unwrap();
    assert_eq!((back.saved_ns, back.btime, back.cpu), (123, 456, Some(cpu)));
    let keys: Vec<&str> = back.metrics.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["cpu", "mem", "disk:/", "inode:/"]);
    assert!(back.metrics.iter().all(|(_, h)| *h == Default::default()));
    // Without CPU counters the line is left out.
    format_state(&mut s, 1, 2, None, &[]);
    assert_eq!(s, "system-agent-state 1\nsaved 1\nbtime 2\nend\n");
    assert_eq!(parse_state(s.as_bytes()).map(|b| b.cpu), Ok(None));
}

#[test]
fn state_file_hysteresis_and_odd_keys() {
    let text = "system-agent-state 1\nsaved 5\nbtime 6\n\nmetric 2 3 1 0 4294967295 disk:/mnt/my disk\nend\n";
    let back = parse_state(text.as_bytes()).unwrap();
    assert_eq!((back.saved_ns, back.btime, back.cpu), (5, 6, None));
    let (key, h) = &back.metrics[0];
    assert_eq!(key, "disk:/mnt/my disk");
    assert_eq!((h.reported, h.up, h.down), (2, [3, 1], [0, u32::MAX]));
}

#[test]
fn state_file_corrupt_truncated_empty_garbage() {
    let head = "system-agent-state 1\nsaved 1\nbtime 1\n";
    let with = |tail: &str| format!("{head}{tail}");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (EMPTY.to_vec(), "not a version 1 state file"),
        (GARBAGE.to_vec(), "not a version 1 state file"),
        (
            b"system-agent-state 2\nsaved 1\nbtime 1\n".to_vec(),
            "not a version 1 state file",
        ),
        (
            b"system-agent-procs 1\nsaved 1\nbtime 1\n".to_vec(),
            "not a version 1 state file",
        ),
        (b"system-agent-state 1\n".to_vec(), "truncated"),
        (b"system-agent-state 1\nsaved 1\n".to_vec(), "truncated"),
        (STATE_TEXT.as_bytes()[..30].to_vec(), "truncated"),
        (
            b"system-agent-state 1\nsaved x\nbtime 1\n".to_vec(),
            "bad saved line",
        ),
        (
            b"system-agent-state 1\nsaved -1\nbtime 1\n".to_vec(),
            "bad saved line",
        ),
        (
            b"system-agent-state 1\nsaved 1\nbtime 99999999999999999999999\n".to_vec(),
            "bad btime line",
        ),
        (with("cpu 1 2 3 4 5 6 7\n").into_bytes(), "bad cpu line"),
        (with("cpu 1 2 3 4 5 6 7 8 9\n").into_bytes(), "bad cpu line"),
        (with("cpu 1 2 3 4 5 6 7 x\n").into_bytes(), "bad cpu line"),
        (with("cpu\n").into_bytes(), "bad cpu line"),
        (
            with("metric 3 0 0 0 0 cpu\n").into_bytes(),
            "bad metric line",
        ),
        (with("metric 0 0 0 0 0\n").into_bytes(), "bad metric line"),
        (with("metric 0 0 0 0 0 \n").into_bytes(), "bad metric line"),
        (
            with("metric 0 0 4294967296 0 0 cpu\n").into_bytes(),
            "bad metric line",
        ),
        (with("metric 0 0 0\n").into_bytes(), "bad metric line"),
        (
            [head.as_bytes(), b"metric 0 0 0 0 0 \xff\n"].concat(),
            "bad metric key",
        ),
        (with("Saved 1\n").into_bytes(), "unknown line"),
        (with(" saved 1\n").into_bytes(), "unknown line"),
        (with("saved\t1\n").into_bytes(), "unknown line"),
    ];
    for (text, want) in cases {
        let text = with_end(text, want);
        assert_eq!(parse_state(&text), Err(want), "{}", text.escape_ascii());
    }
    // Cut anywhere, even at a line boundary, a file lacks its `end` line.
    let full = STATE_TEXT.as_bytes();
    for cut in 1..full.len() {
        assert!(parse_state(&full[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(
        parse_state(with("cpu 1 2 3 4 5 6 7 8\n").as_bytes()),
        Err("truncated")
    );
}

/// Completes a corrupt-file case with the `end` line, so that the error under test
/// is the one about its content, not the missing end.
fn with_end(text: Vec<u8>, want: &str) -> Vec<u8> {
    if want == "truncated" || want.starts_with("not a version") || !text.ends_with(b"\n") {
        text
    } else {
        [text, b"end\n".to_vec()].concat()
    }
}

#[test]
fn state_files_cut_mid_line_are_errors() {
    // format_state/format_procs end every line with '\n'; a file cut inside the last
    // line is accepted with a wrong value (here steal = 8 instead of 89, ticks = 6
    // instead of 61) or a wrong key ("inode:" instead of "inode:/").
    let state = "system-agent-state 1\nsaved 1\nbtime 1\ncpu 1 2 3 4 5 6 7 89\n";
    assert_eq!(
        parse_state(&state.as_bytes()[..state.len() - 2]),
        Err("truncated")
    );
    assert_eq!(
        parse_state(&STATE_TEXT.as_bytes()[..STATE_TEXT.len() - 2]),
        Err("truncated")
    );
    let procs = "system-agent-procs 1\nsaved 9\nbtime 8\n40000 5 61\n";
    assert_eq!(
        parse_procs(&procs.as_bytes()[..procs.len() - 2]),
        Err("truncated")
    );
}

#[test]
fn procs_file_exact_text_and_back() {
    let procs = [
        PrevTicks {
            pid: 1,
            start: 5,
            ticks: 101,
        },
        PrevTicks {
            pid: i32::MAX,
            start: u64::MAX,
            ticks: 0,
        },
    ];
    let mut s = String::from("stale");
    format_procs(&mut s, 9, 8, &procs);
    assert_eq!(
        s,
        "system-agent-procs 1\nsaved 9\nbtime 8\n1 5 101\n2147483647 18446744073709551615 0\nend\n"
    );
    assert_eq!(parse_procs(s.as_bytes()), Ok((9, 8, procs.to_vec())));
    format_procs(&mut s, 0, 0, &[]);
    assert_eq!(parse_procs(s.as_bytes()), Ok((0, 0, Vec::new())));
    // Blank lines and extra columns are tolerated.
    assert_eq!(
        parse_procs(b"system-agent-procs 1\nsaved 1\nbtime 2\n\n3  4\t5 6\nend\n"),
        Ok((
            1,
            2,
            vec![PrevTicks {
                pid: 3,
                start: 4,
                ticks: 5
            }]
        ))
    );
}

#[test]
fn procs_file_corrupt_truncated_empty_garbage() {
    let head = "system-agent-procs 1\nsaved 1\nbtime 1\n";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (EMPTY.to_vec(), "not a version 1 procs file"),
        (GARBAGE.to_vec(), "not a version 1 procs file"),
        (STATE_TEXT.as_bytes().to_vec(), "not a version 1 procs file"),
        (b"system-agent-procs 1".to_vec(), "truncated"),
        (b"system-agent-procs 1\nsaved 1".to_vec(), "truncated"),
        // A final newline makes the missing line an empty one.
        (b"system-agent-procs 1\nsaved 1\n".to_vec(), "bad header"),
        (
            b"system-agent-procs 1\nbtime 1\nsaved 1\n".to_vec(),
            "bad header",
        ),
        (
            b"system-agent-procs 1\nsaved 1\nbtime x\n".to_vec(),
            "bad header",
        ),
        (format!("{head}1 2\n").into_bytes(), "bad process line"),
        (format!("{head}-1 2 3\n").into_bytes(), "bad process line"),
        (format!("{head}1 2 x\n").into_bytes(), "bad process line"),
        (
            format!("{head}1 2 99999999999999999999999\n").into_bytes(),
            "bad process line",
        ),
        (format!("{head}2147483648 2 3\n").into_bytes(), "bad pid"),
    ];
    for (text, want) in cases {
        let text = with_end(text, want);
        assert_eq!(parse_procs(&text), Err(want), "{}", text.escape_ascii());
    }
    assert_eq!(
        parse_procs(format!("{head}40000 5 61\n").as_bytes()),
        Err("truncated")
    );
    assert_eq!(
        parse_procs(format!("{head}40000 5 6").as_bytes()),
        Err("truncated")
    );
}

// ---------------------------------------------------------------------------------
// mountinfo

fn mount(id: u64, parent: u64, point: &'static [u8], fstype: &'static [u8]) -> MountLine<'static> {
    MountLine {
        id,
        parent,
        point: Escaped(point),
        fstype: Escaped(fstype),
    }
}

/// The mount holding `path` in `table`, as (id, decoded point, decoded type).
fn holding(table: &[u8], path: &[u8]) -> Option<(u64, Vec<u8>, Vec<u8>)> {
    mount_holding(table, path).map(|m| (m.id, m.point.decoded(), m.fstype.decoded()))
}

#[test]
fn mountinfo_captured_in_a_namespace() {
    let lines: Vec<&[u8]> = MOUNTINFO_NS.split(|&c| c == b'\n').collect();
    assert_eq!(
        lines.len(),
        29,
        "28 lines and the empty one after the last newline"
    );
    for line in &lines[..28] {
        assert!(
            parse_mountinfo_line(line).is_ok(),
            "{}",
            line.escape_ascii()
        );
    }
    assert_eq!(parse_mountinfo_line(lines[28]), err("no mount id"));
    assert_eq!(
        parse_mountinfo_line(lines[0]),
        Ok(mount(43, 42, b"/", b"ext4"))
    );
    assert_eq!(
        parse_mountinfo_line(lines[19]),
        Ok(mount(63, 43, b"/srv/cap/fuse", b"fuse"))
    );
    assert_eq!(
        parse_mountinfo_line(lines[20]),
        Ok(mount(64, 43, b"/srv/cap/tmpfs\\040mnt", b"tmpfs"))
    );
    assert_eq!(
        parse_mountinfo_line(lines[27]),
        Ok(mount(71, 70, b"/srv/cap/shared/sub", b"tmpfs"))
    );
    assert_holding(
        MOUNTINFO_NS,
        &[
            ("/", 43, "/", "ext4"),
            ("/srv/cap", 43, "/", "ext4"),
            ("/srv/cap/fuse", 63, "/srv/cap/fuse", "fuse"),
            ("/srv/cap/fuse/a/b", 63, "/srv/cap/fuse", "fuse"),
            ("/srv/cap/fusex", 43, "/", "ext4"),
            ("/srv/cap/tmpfs mnt/x", 64, "/srv/cap/tmpfs mnt", "tmpfs"),
            ("/srv/cap/tmpfs", 43, "/", "ext4"),
            ("/srv/cap/tab\tx", 67, "/srv/cap/tab\tx", "tmpfs"),
            ("/srv/cap/back\\slash", 68, "/srv/cap/back\\slash", "tmpfs"),
            // Stacked: the later (upper) mount hides the one below.
            ("/srv/cap/stack", 66, "/srv/cap/stack", "tmpfs"),
            ("/srv/cap/shared/sub/f", 71, "/srv/cap/shared/sub", "tmpfs"),
            (
                "/sys/fs/cgroup/memory/x",
                51,
                "/sys/fs/cgroup/memory",
                "cgroup",
            ),
            ("/proc/self/mountinfo", 45, "/proc", "proc"),
            // A bind mount: its point, whatever directory it shows.
            ("/srv/cap/bind/f", 69, "/srv/cap/bind", "ext4"),
        ],
    );
}

/// A path, and the id, decoded mount point and type of the mount holding it.
type Holding = (&'static str, u64, &'static str, &'static str);

fn assert_holding(table: &[u8], cases: &[Holding]) {
    for &(path, id, point, fstype) in cases {
        assert_eq!(
            holding(table, path.as_bytes()),
            Some((id, point.as_bytes().to_vec(), fstype.as_bytes().to_vec())),
            "{path:?}"
        );
    }
}

#[test]
fn mountinfo_network_and_fuse_types() {
    assert_holding(
        MOUNTINFO_NET,
        &[
            ("/mnt/nfs", 40, "/mnt/nfs", "nfs4"),
            ("/mnt/nfs/projects/x", 40, "/mnt/nfs", "nfs4"),
            ("/mnt/nfs/scratch/tmp", 44, "/mnt/nfs/scratch", "tmpfs"),
            ("/srv/share one", 41, "/srv/share one", "cifs"),
            (
                "/home/alice/remote/src",
                42,
                "/home/alice/remote",
                "fuse.sshfs",
            ),
            ("/net/host/export", 43, "/net", "autofs"),
            ("/var/log", 22, "/", "ext4"),
        ],
    );
    assert_eq!(
        parse_mountinfo_line(MOUNTINFO_NET.split(|&c| c == b'\n').nth(5).unwrap()),
        Ok(mount(44, 40, b"/mnt/nfs/scratch", b"tmpfs"))
    );
}

#[test]
fn mountinfo_truncated_empty_garbage_and_bad_lines() {
    // The cut third line is skipped; the two before it still answer.
    assert_eq!(
        holding(MOUNTINFO_TRUNC, b"/proc/1"),
        Some((45, b"/proc".to_vec(), b"proc".to_vec()))
    );
    assert_eq!(
        holding(MOUNTINFO_TRUNC, b"/sys"),
        Some((43, b"/".to_vec(), b"ext4".to_vec()))
    );
    assert_eq!(holding(EMPTY, b"/"), None);
    assert_eq!(holding(GARBAGE, b"/"), None);
    assert_eq!(holding(STAT, b"/"), None);
    let cases: [(&[u8], &str); 11] = [
        (b"", "no mount id"),
        (b"x 1 0:1 / / rw - ext4 /dev/sda rw", "bad mount id"),
        (b"1 -1 0:1 / / rw - ext4 /dev/sda rw", "bad parent id"),
        (b"1 2", "no device"),
        (b"1 2 01 / / rw - ext4 /dev/sda rw", "bad device"),
        (b"1 2 0:1", "no root"),
        (b"1 2 0:1 /", "no mount point"),
        (
            b"1 2 0:1 / mnt rw - ext4 /dev/sda rw",
            "mount point is not absolute",
        ),
        (b"1 2 0:1 / /", "no mount options"),
        (
            b"1 2 0:1 / / rw shared:1 ext4 /dev/sda rw",
            "no \"-\" separator",
        ),
        (b"1 2 0:1 / / rw -", "no filesystem type"),
    ];
    for (line, want) in cases {
        assert_eq!(
            parse_mountinfo_line(line),
            err(want),
            "{}",
            line.escape_ascii()
        );
    }
    // Double spaces make an empty field; the kernel never prints one.
    assert_eq!(
        parse_mountinfo_line(b"1 2 0:1 /  / rw - ext4 /dev/sda rw"),
        err("no mount point")
    );
    // Source and superblock options may be missing: the type is enough.
    assert_eq!(
        parse_mountinfo_line(b"1 2 0:1 / /m rw - nfs"),
        Ok(mount(1, 2, b"/m", b"nfs"))
    );
}

// ---------------------------------------------------------------------------------
// Number helpers

#[test]
fn number_helpers() {
    assert_eq!(parse_u64(b"0"), Some(0));
    assert_eq!(parse_u64(b"007"), Some(7));
    assert_eq!(parse_u64(b"18446744073709551615"), Some(u64::MAX));
    for bad in [
        &b""[..],
        b"18446744073709551616",
        b"99999999999999999999999",
        b"000000000000000000001",
        b"+1",
        b"-1",
        b" 1",
        b"1 ",
        b"1.0",
        b"\xff",
    ] {
        assert_eq!(parse_u64(bad), None, "{}", bad.escape_ascii());
    }
    assert_eq!(parse_i64(b"-1"), Some(-1));
    assert_eq!(parse_i64(b"-0"), Some(0));
    assert_eq!(parse_i64(b"42"), Some(42));
    assert_eq!(parse_i64(b"9223372036854775807"), Some(i64::MAX));
    assert_eq!(parse_i64(b"-9223372036854775807"), Some(-i64::MAX));
    for bad in [
        &b""[..],
        b"-",
        b"--1",
        b"+1",
        b"9223372036854775808",
        b"-99999999999999999999999",
    ] {
        assert_eq!(parse_i64(bad), None, "{}", bad.escape_ascii());
    }
    assert_eq!(parse_f64(b"0.52"), Some(0.52));
    assert_eq!(parse_f64(b"12"), Some(12.0));
    assert_eq!(parse_f64(b"100.00"), Some(100.0));
    assert_eq!(parse_f64(b"1."), Some(1.0));
    assert_eq!(parse_f64(b"0.123456789"), Some(0.123456789));
    for bad in [
        &b""[..],
        b".5",
        b"1.2.3",
        b"-1",
        b"+1",
        b"1e3",
        b"nan",
        b"inf",
        b"0.1234567890",
        b"1 ",
        b"99999999999999999999999.5",
    ] {
        assert_eq!(parse_f64(bad), None, "{}", bad.escape_ascii());
    }
}

#[test]
fn parse_f64_is_correctly_rounded() {
    // `whole as f64 + frac as f64 / 10^k` rounds the fraction, then the sum: off by
    // one ulp for 1.14, 1.36, 1.39, 1.57, ... The metrics file prints load averages
    // with `{}`, so /proc/loadavg's "1.14" shows as 1.1400000000000001 there.
    assert_eq!(
        parse_loadavg(b"1.14 1.36 1.57 2/345 6789\n"),
        Ok(LoadAvg {
            one: 1.14,
            five: 1.36,
            fifteen: 1.57,
        })
    );
    for hundredths in 0..100_000u32 {
        let text = format!("{}.{:02}", hundredths / 100, hundredths % 100);
        let exact: f64 = text.parse().unwrap();
        assert_eq!(parse_f64(text.as_bytes()), Some(exact), "{text}");
    }
}

#[test]
fn parse_i64_takes_the_whole_range() {
    assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
}

// ---------------------------------------------------------------------------------
// Randomized: thousands of random and mutated inputs, no panic allowed.

/// An input for one round: mostly a mutated seed, sometimes plain random bytes.
fn input(rng: &mut Rng, seeds: &[&[u8]], out: &mut Vec<u8>) {
    match rng.below(10) {
        0 => {
            out.clear();
            let alphabet = b"0123456789 ()\n\0:=.-abcdefSZR#+[]";
            for _ in 0..rng.below(200) {
                let c = rng.next() as usize;
                out.push(alphabet[c % alphabet.len()]);
            }
        }
        1 => {
            out.clear();
            for _ in 0..rng.below(300) {
                out.push(rng.next() as u8);
            }
        }
        2 => {
            // Any fixture, even one meant for another parser.
            let seed = rng.pick(ALL_SEEDS);
            mutate(rng, seed, out);
        }
        _ => {
            let seed = rng.pick(seeds);
            mutate(rng, seed, out);
        }
    }
}

const ALL_SEEDS: &[&[u8]] = &[
    STAT,
    STAT_OLD4,
    MEMINFO,
    MEMINFO_OLD,
    LOADAVG,
    PSI_CPU,
    PSI_CPU_NOFULL,
    PID_INIT,
    PID_PAREN,
    PID_NEWLINE,
    STATUS_SETPRIV,
    CMD_CAT,
    CMD_PADDED,
    PASSWD_ODD,
    STATE_TEXT.as_bytes(),
    GARBAGE,
];

/// Runs `check` on `rounds()` inputs derived from `seeds`; a panic fails the test and
/// shows the input. `check` says whether the input parsed, and both outcomes must
/// have happened (so the mutations reach past the first error).
fn fuzz(seed: u64, seeds: &[&[u8]], mut check: impl FnMut(&[u8]) -> bool) {
    let mut rng = Rng(seed);
    let mut buf = Vec::new();
    let (mut ok, mut bad) = (0, 0);
    let rounds = rounds();
    for round in 0..rounds {
        input(&mut rng, seeds, &mut buf);
        match catch_unwind(AssertUnwindSafe(|| check(&buf))) {
            Ok(true) => ok += 1,
            Ok(false) => bad += 1,
            Err(_) => panic!(
                "round {round} panicked on input b\"{}\"",
                buf.escape_ascii()
            ),
        }
    }
    assert!(ok >= rounds / 50, "only {ok} of {rounds} inputs parsed");
    assert!(bad >= rounds / 50, "only {bad} of {rounds} inputs failed");
}

fn percent_ok(p: f64) -> bool {
    (0.0..=100.0).contains(&p)
}

#[test]
fn fuzz_stat() {
    let seeds = [STAT, STAT_OLD4, STAT_TRUNC, b"cpu  1 2 3 4\ncpu0 1 2 3 4\n"];
    let mut prev = CPU_DEBIAN12;
    fuzz(1, &seeds, |b| match parse_stat(b) {
        Ok(s) => {
            assert!(s.ncpu >= 1);
            let _ = (s.cpu.total(), s.cpu.busy());
            for (a, b) in [(s.cpu, prev), (prev, s.cpu)] {
                if let Some(p) = a.used_percent_since(&b) {
                    assert!(percent_ok(p), "{p}");
                }
            }
            prev = s.cpu;
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_meminfo() {
    let seeds = [MEMINFO, MEMINFO_OLD, MEMINFO_TRUNC];
    fuzz(2, &seeds, |b| match parse_meminfo(b) {
        Ok(m) => {
            assert!(m.available_kb <= m.total_kb);
            assert!(m.used_percent().is_none_or(percent_ok));
            assert!(percent_ok(m.swap_used_percent()));
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_loadavg_and_pressure() {
    let seeds = [LOADAVG, b"12.50 101.00 3.07 9/1234 55\n"];
    fuzz(3, &seeds, |b| match parse_loadavg(b) {
        Ok(l) => {
            assert!(l.one >= 0.0 && l.five >= 0.0 && l.fifteen >= 0.0);
            true
        }
        Err(_) => false,
    });
    let seeds = [PSI_CPU, PSI_MEM, PSI_IO, PSI_CPU_NOFULL, PSI_TRUNC];
    fuzz(4, &seeds, |b| match parse_pressure(b) {
        Ok(p) => {
            let s = p.some;
            assert!(s.avg10 >= 0.0 && s.avg60 >= 0.0 && s.avg300 >= 0.0);
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_mountinfo() {
    let seeds = [MOUNTINFO_NS, MOUNTINFO_NET, MOUNTINFO_TRUNC];
    fuzz(12, &seeds, |b| {
        for path in [&b"/"[..], b"/srv/cap/fuse/x", b"/mnt/nfs", b""] {
            if let Some(m) = mount_holding(b, path) {
                assert!(m.point.holds(path).is_some());
                assert!(m.point.decoded().len() <= path.len().max(1));
            }
        }
        let first = b.split(|&c| c == b'\n').next().unwrap_or_default();
        parse_mountinfo_line(first).is_ok()
    });
}

#[test]
fn fuzz_pid_stat() {
    let seeds = [
        PID_INIT,
        PID_KTHREADD,
        PID_KWORKER,
        PID_ZOMBIE,
        PID_PAREN,
        PID_FAKE,
        PID_NEWLINE,
        PID_NONUTF8,
        PID_OPEN2,
        PID_CLOSE1,
        PID_LONG,
        PID_TRUNC,
    ];
    fuzz(5, &seeds, |b| match parse_pid_stat(b) {
        Ok(p) => {
            // The name lies between the first '(' and the last ')'.
            let open = b.iter().position(|&c| c == b'(').unwrap();
            let close = b.iter().rposition(|&c| c == b')').unwrap();
            assert_eq!(p.name, &b[open + 1..close]);
            assert!(p.state.is_ascii_alphabetic());
            let _ = (p.is_kernel_thread(), p.cpu_ticks());
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_pid_status_and_cmdline() {
    let seeds = [STATUS_SETPRIV, STATUS_ZOMBIE, STATUS_TRUNC];
    fuzz(6, &seeds, |b| parse_pid_status(b).is_ok());
    let seeds = [CMD_CAT, CMD_REWRITTEN, CMD_NO_NUL, CMD_PADDED, CMD_KTHREAD];
    let mut out = Vec::new();
    fuzz(7, &seeds, |b| {
        let n = cmdline_args(b).count();
        cmdline_display(b, &mut out);
        // Display is the arguments joined by single spaces, without trailing blanks.
        let body = b.strip_suffix(b"\0").unwrap_or(b);
        let mut joined: Vec<u8> = body
            .iter()
            .map(|&c| if c == 0 { b' ' } else { c })
            .collect();
        while joined.last() == Some(&b' ') {
            joined.pop();
        }
        assert_eq!(out, joined);
        n > 1
    });
}

#[test]
fn fuzz_passwd() {
    let seeds = [PASSWD, PASSWD_ODD];
    fuzz(8, &seeds, |b| {
        let users = parse_passwd(b);
        for u in &users {
            assert!(!u.name.is_empty());
            assert!(!(u.name.contains(':') || u.home.contains(':') || u.shell.contains(':')));
            assert!(!u.name.contains('\n'));
        }
        let first_of = |uid: u32| users.iter().find(|u| u.uid == uid).map(|u| u.name.clone());
        let probe: Vec<u32> = users.iter().map(|u| u.uid).take(4).collect();
        let lookup = Users::new(users.clone());
        for uid in probe {
            assert_eq!(lookup.name(uid).map(str::to_owned), first_of(uid));
        }
        !users.is_empty()
    });
}

#[test]
fn fuzz_state_and_procs() {
    let mut procs_text = String::new();
    let ticks = [PrevTicks {
        pid: 1,
        start: 5,
        ticks: 101,
    }; 3];
    format_procs(&mut procs_text, 9, 8, &ticks);
    let procs_text = procs_text.into_bytes();
    let with_metric = b"system-agent-state 1\nsaved 5\nbtime 6\nmetric 2 3 1 0 7 disk:/x y\nend\n";
    fuzz(9, &[STATE_TEXT.as_bytes(), with_metric], |b| {
        parse_state(b).is_ok()
    });
    let mut again = String::new();
    fuzz(10, &[&procs_text[..]], |b| match parse_procs(b) {
        Ok((saved, btime, procs)) => {
            // What parses writes back to a file that parses the same.
            format_procs(&mut again, saved, btime, &procs);
            assert_eq!(parse_procs(again.as_bytes()), Ok((saved, btime, procs)));
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_number_helpers() {
    let seeds: [&[u8]; 6] = [
        b"0",
        b"18446744073709551615",
        b"-9223372036854775807",
        b"0.52",
        b"100.00",
        b"123456789.123456789",
    ];
    fuzz(11, &seeds, |b| {
        let u = parse_u64(b);
        let i = parse_i64(b);
        let f = parse_f64(b);
        if let Some(u) = u {
            // Whatever parse_u64 takes, the other two read the same way.
            assert_eq!(i, i64::try_from(u).ok());
            assert_eq!(f, Some(u as f64));
        }
        if let Some(f) = f {
            assert!(f >= 0.0 && f.is_finite());
        }
        u.is_some() || i.is_some() || f.is_some()
    });
}

// Config::parse: random INI built from real and made-up sections, keys and values.

const VALUES: &[&str] = &[
    "",
    "10s",
    "500ms",
    "9ms",
    "24h",
    "25h",
    "7d",
    "0",
    "1",
    "100",
    "100%",
    "101",
    "85.5",
    "-1",
    "1.5",
    "1e3",
    "nan",
    "99999999999999999999999",
    "18446744073709551615ms",
    "18446744073709551615d",
    "2G",
    "yes",
    "no",
    "ON",
    "maybe",
    "debug",
    "warning",
    "LOG_DAEMON",
    "local7",
    "authpriv",
    "kern",
    "/",
    "/var/log/aion/x.log",
    "relative/path",
    "/a,/b /c",
    "/a, b",
    "\"/quoted path\"",
    "'single'",
    "\"unterminated",
    "\"a\\\"b\"",
    "\"/a\\\\\"",
    "value ; comment",
    "value # comment",
    "a;b",
    "a#b",
    "é",
    "\u{202e}",
    "\\",
    "C:\\x",
    "=",
    "a = b",
    "[x]",
    // Command lines (alert.sendmail, alert.command): quotes, escapes, comments.
    "\"/opt/my tool/x\" --flag 'a b'",
    "/usr/bin/find /var/tmp -name \"*.tmp\"",
    "/bin/echo \"x ;y\" 'z #w' ; comment",
    "/bin/a \"\" '' \\; \\\\ \"b\\\\\" \"c\\d\"",
    "/bin/a it's",
    "/bin/a\u{a0}b \"\u{a0}\" \"\t\"",
    "'/bin/x'\"y\"z",
];

/// One line of a random config file.
fn ini_line(rng: &mut Rng, out: &mut String) {
    let sections: Vec<&str> = SECTIONS.iter().map(|(s, _)| *s).collect();
    let keys: Vec<&str> = SECTIONS
        .iter()
        .flat_map(|(_, k)| k.iter().copied())
        .collect();
    let odd = [
        "",
        " ",
        "x",
        "agnet",
        "tresholds",
        "a b",
        "é",
        "[",
        "]",
        "=",
        ";",
    ];
    let key = match rng.below(8) {
        0 => rng.pick(&odd),
        _ => rng.pick(&keys),
    };
    let value = rng.pick(VALUES);
    match rng.below(12) {
        0 => out.push_str(&format!("[{}]", rng.pick(&sections))),
        1 => out.push_str(&format!("[{}]", rng.pick(&odd))),
        2 => out.push_str(&format!("  [ {} ]  ; c", rng.pick(&sections))),
        3 => out.push_str("; a comment"),
        4 => out.push_str("   # indented comment = 1"),
        5 => {}
        6 => out.push_str(&format!("{key}: {value}")),
        7 => out.push_str(&format!("\t{key}={value} \\")),
        8 => out.push_str(&format!("{key} = {value}\r")),
        9 => out.push_str(key),
        _ => out.push_str(&format!("{key} = {value}")),
    }
    out.push('\n');
}

#[test]
fn fuzz_config_parse() {
    let file = Path::new("/etc/aion/system_agent.ini");
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/system_agent.ini"))
            .unwrap_or_default();
    let default_ini = Config::default().to_ini();
    let mut rng = Rng(12);
    let mut text = String::new();
    let mut bytes = Vec::new();
    let (mut ok, mut bad) = (0, 0);
    for round in 0..rounds() {
        text.clear();
        match rng.below(4) {
            0 => {
                let seed = rng.pick(&[shipped.as_bytes(), default_ini.as_bytes(), GARBAGE]);
                mutate(&mut rng, seed, &mut bytes);
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
            1 => {
                // Valid sections and keys, random values: reaches every value parser.
                let (section, keys) = SECTIONS[rng.below(SECTIONS.len())];
                text.push_str(&format!("[{section}]\n"));
                for _ in 0..1 + rng.below(4) {
                    let key = keys[rng.below(keys.len())];
                    text.push_str(&format!("{key} = {}\n", rng.pick(VALUES)));
                }
            }
            _ => {
                for _ in 0..rng.below(12) {
                    ini_line(&mut rng, &mut text);
                }
            }
        }
        let run = || match Config::parse(file, &text) {
            Ok(cfg) => {
                // The effective config printed back loads to the same config.
                let again = Config::parse(file, &cfg.to_ini()).map(|c| Config {
                    file: cfg.file.clone(),
                    ..c
                });
                assert_eq!(again.as_ref(), Ok(&cfg), "printed back as {}", cfg.to_ini());
                // So does the --check-config form, each key under its origin.
                let annotated = cfg.to_ini_with_origins();
                let again = Config::parse(file, &annotated);
                assert_eq!(again.as_ref(), Ok(&cfg), "printed back as {annotated}");
                let _ = cfg.changed_keys(&Config::default());
                true
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                for e in &errors {
                    assert!(!e.to_string().is_empty());
                }
                false
            }
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(true) => ok += 1,
            Ok(false) => bad += 1,
            Err(_) => panic!("round {round} panicked on config {text:?}"),
        }
    }
    assert!(
        ok >= rounds() / 50 && bad >= rounds() / 50,
        "ok {ok}, errors {bad}"
    );
}

#[test]
fn a_zombie_is_state_z_with_one_thread() {
    assert!(parse_pid_stat(PID_ZOMBIE).unwrap().is_zombie());
    // A live group whose main thread exited: state Z, two threads.
    let defunct_leader = b"4 (victim) Z 3 4 4 0 -1 4194560 0 0 0 0 1 1 0 0 20 0 2 0 100 0 0";
    let st = parse_pid_stat(defunct_leader).unwrap();
    assert_eq!((st.state, st.num_threads), (b'Z', 2));
    assert!(!st.is_zombie());
    assert!(!parse_pid_stat(PID_INIT).unwrap().is_zombie());
}

/// Each feature's state file: what parses writes back to a file that parses the
/// same (so a saved file is never misread by the next run).
#[test]
fn fuzz_feature_state_files() {
    use system_agent::features::alerts::decide as alerts;
    use system_agent::features::audit::history as audit;
    use system_agent::features::reaper::records as reaper;
    use system_agent::features::tasks::schedule as tasks;
    use system_agent::forecast;
    let reaper = b"system-agent-reaper 2\nboot 0b5e3c4d-aaaa\nstate 10 20 T 30\n\
        pending 11 21 31 hogs\nsettled 12 22\nend\n";
    let mut again = String::new();
    fuzz(
        13,
        &[reaper, b"system-agent-reaper 1\nstate 1 2 S 3\nend\n"],
        |b| match reaper::parse(b) {
            Ok(r) => {
                reaper::format(&mut again, &r);
                let back = reaper::parse(again.as_bytes()).expect("reparse");
                assert_eq!(back, r, "written back as {again:?}");
                true
            }
            Err(_) => false,
        },
    );
    let tasks_text =
        b"system-agent-tasks 1\ntask 5 6 2 mandb\nskipped mandb /usr/bin/mandb is missing\nend\n";
    fuzz(14, &[tasks_text], |b| match tasks::parse(b) {
        Ok(t) => {
            tasks::format(&mut again, &t);
            assert_eq!(tasks::parse(again.as_bytes()).as_ref(), Ok(&t));
            true
        }
        Err(_) => false,
    });
    let alerts_text = b"system-agent-alerts 1\ntold 2 3 4 5 6 disk:/var\ntold 0 0 0 0 0 cpu\nend\n";
    fuzz(15, &[alerts_text], |b| match alerts::parse(b) {
        Ok(t) => {
            alerts::format(&mut again, &t);
            assert_eq!(alerts::parse(again.as_bytes()).as_ref(), Ok(&t));
            true
        }
        Err(_) => false,
    });
    let forecast_text = b"system-agent-forecast 1\nsaved 9\nmount /\np 1 2 3\np 5 6 -\n\
        mount /var/log\np 7 8 9\nend\n";
    fuzz(20, &[forecast_text], |b| {
        match forecast::parse_forecast(b) {
            Ok(f) => {
                let all = f.iter().map(|(m, s)| (m.as_path(), s));
                forecast::format_forecast(&mut again, 9, all);
                let back = forecast::parse_forecast(again.as_bytes()).expect("reparse");
                let kept: Vec<_> = f
                    .into_iter()
                    .filter(|(_, s)| !s.points.is_empty())
                    .collect();
                assert_eq!(back, kept, "written back as {again:?}");
                true
            }
            Err(_) => false,
        }
    });
    let audit_text = b"system-agent-audit 2\nhist 1 2 3 alice\nhist 0 0 0 bob\n\
        refused bob is a symlink\nend\n";
    fuzz(
        16,
        &[audit_text, b"system-agent-audit 1\nhist 1 2 3 alice\nend\n"],
        |b| {
            match audit::parse(b) {
                Ok(h) => {
                    audit::format(&mut again, &h);
                    // A version 1 file is read into version 2 records; those round-trip.
                    let back = audit::parse(again.as_bytes()).expect("reparse");
                    audit::format(&mut String::new(), &back);
                    true
                }
                Err(_) => false,
            }
        },
    );
}

/// Shell histories: every complete command is taken once, `used` never passes the
/// input, and what is left is at most one partial line (and its timestamp).
#[test]
fn fuzz_history_commands() {
    use system_agent::features::audit::history::parse_commands;
    let seeds: [&[u8]; 3] = [
        b"ls\ncd /\n",
        b"#1700000000\nls -l\n#1700000001\nrm x\npartial",
        b"\n\n#12\n\r\n",
    ];
    fuzz(17, &seeds, |b| {
        let (cmds, used) = parse_commands(b);
        assert!(used <= b.len());
        assert!(
            !b[used..].contains(&b'\n') || b[used..].starts_with(b"#"),
            "left {:?}",
            &b[used..]
        );
        for c in &cmds {
            assert!(!c.cmd.contains(&b'\n'));
        }
        !cmds.is_empty()
    });
}

/// Command lines: a list of words that parses is printed back to the same words;
/// globs never panic and `*` matches anything.
#[test]
fn fuzz_command_words_and_globs() {
    use system_agent::config::value::{fmt_command, words};
    use system_agent::glob::{Glob, matches};
    let seeds: [&[u8]; 4] = [
        b"/usr/bin/mandb -q",
        b"\"/opt/my tool/x\" --flag 'a b' c\\ d",
        b"/usr/bin/find /var/tmp -name \"*.tmp\" ; note",
        b"/bin/x \"unclosed",
    ];
    fuzz(18, &seeds, |b| {
        let text = String::from_utf8_lossy(b);
        match words(&text) {
            Ok(argv) => {
                let printed = fmt_command(&argv);
                assert_eq!(
                    words(&printed).as_ref(),
                    Ok(&argv),
                    "printed as {printed:?}"
                );
                true
            }
            Err(e) => {
                assert!(!e.is_empty());
                false
            }
        }
    });
    let globs: [&[u8]; 4] = [b"*.log", b"[!a-z]?x*", b"\\*[", b"a*b*c*d"];
    fuzz(19, &globs, |b| {
        let (p, s) = b.split_at(b.len() / 2);
        assert!(matches(b"*", s));
        // A pattern without special bytes matches exactly itself.
        if !p.iter().any(|c| b"*?[\\".contains(c)) {
            assert!(matches(p, p));
        }
        Glob::new(&String::from_utf8_lossy(p)).matches(s)
    });
}
