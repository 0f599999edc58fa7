//! The parsers of the host-wide /proc files (`stat`, `meminfo`, `loadavg`,
//! `pressure/*`) and the number helpers under them, against whole files captured
//! from a real host (Debian 12, Linux 6.18, 2 CPUs) and hand-made ones for old
//! kernels and damaged files. Every field a parser returns is asserted exactly.
//! Fixtures live in `tests/fixtures/proc/`; its README says where each came from.

#[path = "common/fixtures.rs"]
mod fixtures;

use fixtures::*;
use system_agent::procfs::loadavg::{LoadAvg, parse_loadavg};
use system_agent::procfs::meminfo::{Meminfo, parse_meminfo};
use system_agent::procfs::pressure::{Pressure, PressureLine, parse_pressure};
use system_agent::procfs::stat::{CpuTimes, Stat, parse_stat};
use system_agent::procfs::{parse_f64, parse_i64, parse_u64};

// ---------------------------------------------------------------------------------
// /proc/stat

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
