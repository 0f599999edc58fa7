//! `/proc/meminfo`: total and available memory, and swap.
//!
//! ```text
//! MemTotal:       24603328 kB
//! MemFree:        23431016 kB
//! MemAvailable:   23816460 kB
//! Buffers:           31172 kB
//! Cached:           667396 kB
//! SwapTotal:             0 kB
//! SwapFree:              0 kB
//! ```

use super::{ParseError, fields, lines, parse_u64};

/// Sizes in KiB, as the kernel prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Meminfo {
    pub total_kb: u64,
    /// `MemAvailable`, or on kernels before 3.14 `MemFree + Buffers + Cached`.
    pub available_kb: u64,
    pub swap_total_kb: u64,
    pub swap_free_kb: u64,
}

impl Meminfo {
    pub fn used_percent(&self) -> Option<f64> {
        if self.total_kb == 0 {
            return None;
        }
        let used = self.total_kb.saturating_sub(self.available_kb);
        Some(used as f64 * 100.0 / self.total_kb as f64)
    }

    /// Swap in use in percent; 0 on a host without swap.
    pub fn swap_used_percent(&self) -> f64 {
        if self.swap_total_kb == 0 {
            return 0.0;
        }
        let used = self.swap_total_kb.saturating_sub(self.swap_free_kb);
        used as f64 * 100.0 / self.swap_total_kb as f64
    }
}

pub fn parse_meminfo(buf: &[u8]) -> Result<Meminfo, ParseError> {
    let (mut total, mut avail, mut free, mut buffers, mut cached) = (None, None, None, None, None);
    let (mut swap_total, mut swap_free) = (None, None);
    for line in lines(buf) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            continue;
        };
        let slot = match &line[..colon] {
            b"MemTotal" => &mut total,
            b"MemAvailable" => &mut avail,
            b"MemFree" => &mut free,
            b"Buffers" => &mut buffers,
            b"Cached" => &mut cached,
            b"SwapTotal" => &mut swap_total,
            b"SwapFree" => &mut swap_free,
            _ => continue,
        };
        let value = fields(&line[colon + 1..]).next().and_then(parse_u64);
        *slot = Some(value.ok_or(ParseError("meminfo value is not a number"))?);
    }
    let total_kb = total.ok_or(ParseError("no MemTotal line"))?;
    let available_kb = match avail {
        Some(a) => a,
        None => free
            .ok_or(ParseError("neither MemAvailable nor MemFree"))?
            .saturating_add(buffers.unwrap_or(0))
            .saturating_add(cached.unwrap_or(0)),
    };
    Ok(Meminfo {
        total_kb,
        available_kb: available_kb.min(total_kb),
        swap_total_kb: swap_total.unwrap_or(0),
        swap_free_kb: swap_free.unwrap_or(0),
    })
}
