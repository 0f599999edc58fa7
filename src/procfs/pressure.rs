//! `/proc/pressure/{cpu,memory,io}` (PSI, Linux 4.20+; absent on older kernels or when
//! disabled, which only turns the pressure figures off).
//!
//! ```text
//! some avg10=0.00 avg60=0.12 avg300=0.05 total=123456
//! full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//! ```

use super::{ParseError, fields, lines, parse_f64, parse_u64};

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PressureLine {
    pub avg10: f64,
    pub avg60: f64,
    pub avg300: f64,
    /// Total stall time in microseconds.
    pub total_us: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Pressure {
    pub some: PressureLine,
    /// Missing from `cpu` on kernels before 5.13.
    pub full: Option<PressureLine>,
}

pub fn parse_pressure(buf: &[u8]) -> Result<Pressure, ParseError> {
    let mut some = None;
    let mut full = None;
    for line in lines(buf) {
        let mut it = fields(line);
        let slot = match it.next() {
            Some(b"some") => &mut some,
            Some(b"full") => &mut full,
            _ => continue,
        };
        let mut p = PressureLine::default();
        // One bit per field: each must appear, and a repeat is an error.
        let mut seen = 0u8;
        for kv in it {
            let Some(eq) = kv.iter().position(|&c| c == b'=') else {
                return Err(ParseError("pressure field without '='"));
            };
            let (k, v) = (&kv[..eq], &kv[eq + 1..]);
            let bad = ParseError("pressure value is not a number");
            let bit = match k {
                b"avg10" => {
                    p.avg10 = parse_f64(v).ok_or(bad)?;
                    1
                }
                b"avg60" => {
                    p.avg60 = parse_f64(v).ok_or(bad)?;
                    2
                }
                b"avg300" => {
                    p.avg300 = parse_f64(v).ok_or(bad)?;
                    4
                }
                b"total" => {
                    p.total_us = parse_u64(v).ok_or(bad)?;
                    8
                }
                _ => continue,
            };
            if seen & bit != 0 {
                return Err(ParseError("pressure field repeated"));
            }
            seen |= bit;
        }
        if seen != 0b1111 {
            return Err(ParseError(
                "pressure line lacks avg10, avg60, avg300 or total",
            ));
        }
        *slot = Some(p);
    }
    Ok(Pressure {
        some: some.ok_or(ParseError("no \"some\" line"))?,
        full,
    })
}
