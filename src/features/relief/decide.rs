//! When memory is short, and when to look again (pure): /proc/meminfo's figures
//! and PSI's against the `[relief]` limits, on plain values.
//!
//! Memory is short while MemAvailable is below `mem_available_below` and, when
//! `swap_free_below` is set, free swap is below it too (as earlyoom judges: while
//! swap is free, the kernel can still make room); or while PSI memory full stall
//! is above `psi_memory_full_above`: its 10 s average in a cycle, or between
//! cycles the kernel's trigger, which fires when the stall within its 2 s window
//! reaches that share.
//!
//! Between cycles MemAvailable is read again as soon as memory filling at the
//! fastest rate expected could have reached the limit: a host far from it is left
//! alone, one close to it is looked at often (every 10 ms at the most).

use crate::config::Relief;
use crate::procfs::meminfo::Meminfo;

/// The fastest memory is expected to fill, KiB per ms (about 6 GiB/s, earlyoom's
/// figure, seen with `stress -m 4`), and swap (800 MiB/s).
pub const MEM_FILL_KIB_PER_MS: u64 = 6000;
pub const SWAP_FILL_KIB_PER_MS: u64 = 800;

/// The soonest the next check may be due: a host hovering just above the limit
/// costs at most 100 reads of meminfo a second.
pub const MIN_CHECK_MS: u64 = 10;

/// Why memory is short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// MemAvailable (and free swap, when limited) below the limit.
    MemAvailable,
    /// PSI memory full avg10 above the limit, in a cycle's reading.
    PsiFull,
    /// The kernel's PSI trigger fired: full stall of that share within its window.
    PsiTrigger,
}

impl Reason {
    pub fn name(self) -> &'static str {
        match self {
            Reason::MemAvailable => "mem_available",
            Reason::PsiFull => "psi_full",
            Reason::PsiTrigger => "psi_trigger",
        }
    }
}

/// The limits for this host's totals, in KiB (the unit of /proc/meminfo).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub mem_kb: u64,
    /// `None`: free swap is not looked at.
    pub swap_kb: Option<u64>,
    /// PSI memory full, percent; `None`: off.
    pub psi_full: Option<f64>,
}

impl Limits {
    /// The limits of `cfg` for the totals in `m`.
    pub fn of(cfg: &Relief, m: &Meminfo) -> Limits {
        Limits {
            mem_kb: cfg.mem_available_below.kib(m.total_kb),
            swap_kb: cfg.swap_free_below.map(|s| s.kib(m.swap_total_kb)),
            psi_full: cfg.psi_memory_full_above,
        }
    }

    /// Whether MemAvailable is below its limit, and free swap too when limited (a
    /// host without swap has none free).
    pub fn mem_short(&self, m: &Meminfo) -> bool {
        let swap_short = match self.swap_kb {
            None => true,
            Some(limit) => m.swap_total_kb == 0 || m.swap_free_kb < limit,
        };
        m.available_kb < self.mem_kb && swap_short
    }

    /// Why memory is short, if it is: `psi_full_avg10` is PSI memory full avg10
    /// when read, `fired` that the kernel's trigger fired.
    pub fn short(&self, m: &Meminfo, psi_full_avg10: Option<f64>, fired: bool) -> Option<Reason> {
        if self.mem_short(m) {
            return Some(Reason::MemAvailable);
        }
        let limit = self.psi_full?;
        if fired {
            return Some(Reason::PsiTrigger);
        }
        psi_full_avg10
            .filter(|&v| v > limit)
            .map(|_| Reason::PsiFull)
    }

    /// Milliseconds to the next check: while memory is short, `check_ms`;
    /// otherwise the time memory filling at the fastest takes to reach the limit
    /// (both limits, when swap is limited), at least `MIN_CHECK_MS`, and with no
    /// PSI trigger to wake the agent at most `check_ms`.
    pub fn next_check_ms(&self, m: &Meminfo, check_ms: u64, trigger: bool) -> u64 {
        if self.mem_short(m) {
            return check_ms;
        }
        let mem = m.available_kb.saturating_sub(self.mem_kb) / MEM_FILL_KIB_PER_MS;
        let swap = match self.swap_kb {
            Some(limit) if m.swap_total_kb > 0 => {
                m.swap_free_kb.saturating_sub(limit) / SWAP_FILL_KIB_PER_MS
            }
            _ => 0,
        };
        let ms = mem.max(swap).max(MIN_CHECK_MS);
        if trigger { ms } else { ms.min(check_ms) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, MemAmount};

    const GIB: u64 = 1 << 20;

    fn mem(total_gib: u64, avail_kb: u64, swap_total_kb: u64, swap_free_kb: u64) -> Meminfo {
        Meminfo {
            total_kb: total_gib * GIB,
            available_kb: avail_kb,
            swap_total_kb,
            swap_free_kb,
        }
    }

    #[test]
    fn limits_are_taken_of_the_totals() {
        let mut cfg = Config::default().relief;
        let m = mem(24, 0, 8 * GIB, 0);
        assert_eq!(
            Limits::of(&cfg, &m),
            Limits {
                mem_kb: 1_258_291,
                swap_kb: None,
                psi_full: Some(10.0)
            }
        );
        cfg.mem_available_below = MemAmount::Bytes(512 << 20);
        cfg.swap_free_below = Some(MemAmount::Percent(25.0));
        cfg.psi_memory_full_above = None;
        let l = Limits::of(&cfg, &m);
        assert_eq!(
            (l.mem_kb, l.swap_kb, l.psi_full),
            (512 << 10, Some(2 * GIB), None)
        );
    }

    #[test]
    fn memory_is_short_below_the_limit_and_swap_only_when_limited() {
        let l = Limits {
            mem_kb: 1000,
            swap_kb: None,
            psi_full: None,
        };
        assert!(l.mem_short(&mem(1, 999, 0, 0)));
        assert!(
            !l.mem_short(&mem(1, 1000, 0, 0)),
            "at the limit is not below it"
        );
        // Swap not looked at: free swap does not matter.
        assert!(l.mem_short(&mem(1, 999, 5000, 5000)));
        let with_swap = Limits {
            swap_kb: Some(100),
            ..l
        };
        assert!(!with_swap.mem_short(&mem(1, 999, 5000, 100)));
        assert!(with_swap.mem_short(&mem(1, 999, 5000, 99)));
        assert!(
            with_swap.mem_short(&mem(1, 999, 0, 0)),
            "no swap: none free"
        );
        assert!(!with_swap.mem_short(&mem(1, 1000, 0, 0)));
    }

    #[test]
    fn the_reason_is_memory_first_then_the_trigger_then_the_average() {
        let l = Limits {
            mem_kb: 1000,
            swap_kb: None,
            psi_full: Some(10.0),
        };
        let (low, fine) = (mem(1, 10, 0, 0), mem(1, 5000, 0, 0));
        assert_eq!(l.short(&low, Some(50.0), true), Some(Reason::MemAvailable));
        assert_eq!(l.short(&fine, Some(0.0), true), Some(Reason::PsiTrigger));
        assert_eq!(l.short(&fine, Some(10.5), false), Some(Reason::PsiFull));
        assert_eq!(l.short(&fine, Some(10.0), false), None, "at the limit");
        assert_eq!(l.short(&fine, None, false), None);
        let off = Limits {
            psi_full: None,
            ..l
        };
        assert_eq!(off.short(&fine, Some(99.0), true), None);
        assert_eq!(
            [Reason::MemAvailable, Reason::PsiFull, Reason::PsiTrigger].map(Reason::name),
            ["mem_available", "psi_full", "psi_trigger"]
        );
    }

    #[test]
    fn the_next_check_comes_before_the_fastest_fill_could_reach_the_limit() {
        let l = Limits {
            mem_kb: GIB,
            swap_kb: None,
            psi_full: Some(10.0),
        };
        // 22 GiB above the limit: 3.8 s at 6 GiB/s; with a trigger nothing sooner,
        // without one every check_interval.
        let far = mem(24, 23 * GIB, 0, 0);
        assert_eq!(l.next_check_ms(&far, 100, true), 22 * GIB / 6000);
        assert_eq!(l.next_check_ms(&far, 100, false), 100);
        // 240 MiB above it: 40 ms, sooner than check_interval either way.
        let near = mem(24, GIB + 240 * 1024, 0, 0);
        assert_eq!(l.next_check_ms(&near, 100, true), 40);
        assert_eq!(l.next_check_ms(&near, 100, false), 40);
        // Just above: no sooner than 10 ms. Short: every check_interval.
        assert_eq!(
            l.next_check_ms(&mem(24, GIB + 1, 0, 0), 100, true),
            MIN_CHECK_MS
        );
        assert_eq!(l.next_check_ms(&mem(24, GIB - 1, 0, 0), 250, true), 250);
        // Swap limited: both must fall, so the later of the two.
        let swapped = Limits {
            swap_kb: Some(GIB),
            ..l
        };
        let m = mem(24, GIB + 240 * 1024, 4 * GIB, 2 * GIB);
        assert_eq!(swapped.next_check_ms(&m, 100, true), GIB / 800);
    }
}
