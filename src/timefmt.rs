//! UTC timestamps for log lines and syslog headers, computed by hand (no time crate in
//! our own code, no allocation, no dependence on the zone files a chroot lacks), and
//! the short ages the cleanup and reaper lines show.

use std::fmt::Write;

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01
/// (Howard Hinnant's `civil_from_days`).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

struct Parts {
    year: i64,
    month: u32,
    day: u32,
    hour: u64,
    min: u64,
    sec: u64,
    millis: u64,
    weekday: usize,
}

fn parts(ns: u64) -> Parts {
    let secs = ns / 1_000_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    Parts {
        year,
        month,
        day,
        hour: rem / 3600,
        min: rem / 60 % 60,
        sec: rem % 60,
        millis: ns / 1_000_000 % 1000,
        // 1970-01-01 was a Thursday.
        weekday: ((days + 4) % 7) as usize,
    }
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];

/// `2026-11-26T10:05:00.123Z`
pub fn rfc3339_millis(ns: u64, out: &mut String) {
    let p = parts(ns);
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        p.year, p.month, p.day, p.hour, p.min, p.sec, p.millis
    );
}

/// `Nov 26 10:05:00` with the day space-padded, as RFC 3164 asks.
pub fn syslog_stamp(ns: u64, out: &mut Vec<u8>) {
    let p = parts(ns);
    let _ = std::io::Write::write_fmt(
        out,
        format_args!(
            "{} {:>2} {:02}:{:02}:{:02}",
            MONTHS[(p.month - 1) as usize],
            p.day,
            p.hour,
            p.min,
            p.sec
        ),
    );
}

/// `Thu, 26 Nov 2026 10:05:00 +0000` (RFC 5322 `Date:`).
pub fn rfc5322(ns: u64, out: &mut String) {
    let p = parts(ns);
    let _ = write!(
        out,
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
        DAYS[p.weekday],
        p.day,
        MONTHS[(p.month - 1) as usize],
        p.year,
        p.hour,
        p.min,
        p.sec
    );
}

/// `2h05m`, `42m`, `3m20s`, `40s`, `3d4h`: a time to come, to the minute above
/// an hour and to the second below.
pub fn fmt_span(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d{}h", s / 86_400, s % 86_400 / 3600),
        s if s >= 3600 => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
        s if s >= 60 && s % 60 == 0 => format!("{}m", s / 60),
        s if s >= 60 => format!("{}m{:02}s", s / 60, s % 60),
        s => format!("{s}s"),
    }
}

/// `3d`, `5h`, `12m`, `40s`: an age in its largest whole unit.
pub fn fmt_age(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3600 => format!("{}h", s / 3600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let mut s = String::new();
        rfc3339_millis(0, &mut s);
        assert_eq!(s, "1970-01-01T00:00:00.000Z");
        s.clear();
        // 2026-11-26T10:05:00.123Z
        rfc3339_millis(1_795_687_500_123_000_000, &mut s);
        assert_eq!(s, "2026-11-26T10:05:00.123Z");
        s.clear();
        // Leap day 2024-02-29T23:59:59.999Z
        rfc3339_millis(1_709_251_199_999_000_000, &mut s);
        assert_eq!(s, "2024-02-29T23:59:59.999Z");
        s.clear();
        rfc5322(1_795_687_500_123_000_000, &mut s);
        assert_eq!(s, "Thu, 26 Nov 2026 10:05:00 +0000");
        let mut b = Vec::new();
        syslog_stamp(
            1_795_687_500_123_000_000 - 25 * 86_400 * 1_000_000_000,
            &mut b,
        );
        assert_eq!(b, b"Nov  1 10:05:00");
    }

    #[test]
    fn ages_in_their_largest_whole_unit() {
        assert_eq!(fmt_age(59), "59s");
        assert_eq!(fmt_age(60 * 12 + 59), "12m");
        assert_eq!(fmt_age(3600 * 5 + 7), "5h");
        assert_eq!(fmt_age(86_400 * 3), "3d");
        let spans = [(40, "40s"), (120, "2m"), (200, "3m20s"), (3600, "1h00m")];
        for (secs, want) in spans
            .into_iter()
            .chain([(7500, "2h05m"), (273_600, "3d4h")])
        {
            assert_eq!(fmt_span(secs), want);
        }
    }
}
