//! Pure parsers for the /proc files the agent reads. Each takes the bytes of one file
//! and returns plain numbers; none opens a file, allocates per call, or can panic on
//! any input (see the randomized tests in `tests/fuzz_parsers.rs`). Reading is
//! elsewhere (`sample.rs`, `scan.rs`), so every parser is tested on fixture files.

pub mod cgroup;
pub mod loadavg;
pub mod meminfo;
pub mod mountinfo;
pub mod pid;
pub mod pressure;
pub mod stat;

use std::fmt;

/// Why some bytes are not the file we expected. Static, so parsing never allocates;
/// the reader adds the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError(pub &'static str);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for ParseError {}

/// Parses an unsigned decimal with no sign, spaces or overflow.
pub fn parse_u64(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in s {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add((c - b'0') as u64)?;
    }
    Some(v)
}

/// Parses a decimal that may start with `-` (some /proc fields are signed).
pub fn parse_i64(s: &[u8]) -> Option<i64> {
    match s.split_first() {
        Some((b'-', rest)) => {
            let v = parse_u64(rest)?;
            if v == 1 << 63 {
                Some(i64::MIN)
            } else {
                i64::try_from(v).ok().map(|v| -v)
            }
        }
        _ => parse_u64(s).and_then(|v| i64::try_from(v).ok()),
    }
}

/// Parses a plain non-negative decimal fraction such as `0.52` or `12` (the forms the
/// kernel prints in loadavg and pressure files); anything else is `None`. The
/// checked text is handed to the standard library's correctly rounded parser.
pub fn parse_f64(s: &[u8]) -> Option<f64> {
    let (int, frac) = match s.iter().position(|&c| c == b'.') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &b""[..]),
    };
    let digits = |d: &[u8]| d.iter().all(u8::is_ascii_digit);
    if int.is_empty() || int.len() > 20 || frac.len() > 9 || !digits(int) || !digits(frac) {
        return None;
    }
    std::str::from_utf8(s).ok()?.parse().ok()
}

/// Splits on ASCII whitespace without allocating.
pub fn fields(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|c| c.is_ascii_whitespace())
        .filter(|f| !f.is_empty())
}

/// Lines of a file, without the newline.
pub fn lines(s: &[u8]) -> impl Iterator<Item = &[u8]> {
    s.split(|&c| c == b'\n')
}
