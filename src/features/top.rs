//! The top processes: while CPU or memory is at or above its warning level, the
//! cycle scans the processes and logs the `[agent] top` heaviest by CPU% over the
//! window since the previous scan and by resident memory (`event=top`), and keeps
//! this cycle's lines for alert mails (`Findings`). A `--once` run measures its
//! window from the per-process ticks the previous run saved (`procs` in
//! state_dir) when they are recent and from this boot; otherwise it scans twice,
//! 250 ms apart.

use super::{Cx, Feature};
use crate::judge::{Kind, Status};
use crate::log::Level;
use crate::procfs::pid::{cmdline_display, parse_pid_status};
use crate::reading::SHORT_WINDOW_MS;
use crate::scan::{CycleScan, PrevTicks};
use crate::state::{self, PROCS};
use crate::sys;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;

/// How much of a command line a `top` event shows.
const CMDLINE_MAX: usize = 256;

#[derive(Default)]
pub struct Top {
    idx: Vec<usize>,
    cmd: Vec<u8>,
    buf: Vec<u8>,
    path: Vec<u8>,
    /// A `--once` scan whose per-process ticks the next run needs.
    unsaved: bool,
}

impl Feature for Top {
    fn name(&self) -> &'static str {
        "top"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        cx.cfg.agent.top > 0
            && cx.metrics.iter().any(|m| {
                matches!(m.kind, Kind::Cpu | Kind::Mem)
                    && matches!(m.raw, Status::Warning | Status::Critical)
            })
    }

    /// Scans the processes (after a first scan when there is no window yet) and
    /// logs the top N by CPU% over the window and by RSS.
    fn step(&mut self, cx: &mut Cx) {
        if cx.scan.scanner.prev_at_ns.is_none() && !self.first_window(cx) {
            return;
        }
        if let Err(e) = cx.scan.scan_now(cx.once) {
            cx.log.error(Level::Error, "scan", e).emit();
            return;
        }
        cx.findings.clear();
        let n = cx.cfg.agent.top as usize;
        let window = cx.scan.scanner.window_ns().unwrap_or(0) as f64 / 1e9;
        let mut idx = std::mem::take(&mut self.idx);
        cx.scan
            .scanner
            .top_by(n, |s, p| s.ticks_since_prev(p), &mut idx);
        for (rank, &i) in idx.iter().enumerate() {
            self.log_top(cx, "cpu", rank + 1, i, window);
        }
        cx.scan.scanner.top_by(n, |_, p| p.rss_pages, &mut idx);
        for (rank, &i) in idx.iter().enumerate() {
            self.log_top(cx, "rss", rank + 1, i, window);
        }
        self.idx = idx;
        self.unsaved = cx.once;
    }

    fn save(&mut self, cx: &mut Cx, _force: bool) {
        if std::mem::take(&mut self.unsaved) {
            save_procs(cx);
        }
    }
}

impl Top {
    /// Makes the scan this cycle's will be measured against: the ticks a `--once`
    /// run before saved, or a scan now and a pause. False when the scan failed.
    fn first_window(&mut self, cx: &mut Cx) -> bool {
        if cx.once {
            load_procs(cx);
            if cx.scan.scanner.prev_at_ns.is_some() {
                return true;
            }
        }
        if let Err(e) = cx.scan.scanner.scan(CycleScan::clock(cx.once)) {
            cx.log.error(Level::Error, "scan", e).emit();
            return false;
        }
        cx.pause(SHORT_WINDOW_MS);
        true
    }

    /// One `event=top` line (and, when alerts are on, its line for the mails).
    /// A process that exited meanwhile is skipped.
    fn log_top(&mut self, cx: &mut Cx, by: &str, rank: usize, i: usize, window: f64) {
        let p = *cx.scan.scanner.get(i);
        let Some(uid) = self.owner_and_cmdline(cx, p.pid) else {
            return;
        };
        let scanner = &cx.scan.scanner;
        let cpu = scanner
            .cpu_percent(&p, cx.reading.ticks_per_sec)
            .unwrap_or(0.0);
        let rss = p.rss_pages.saturating_mul(cx.reading.page_size);
        // Kept for alert mails, in reused strings (this is the scan's hot path).
        let a = &cx.cfg.alert;
        let alerting = !a.email.is_empty() || !a.command.is_empty();
        if alerting && cx.findings.top_lines().len() < 2 * cx.cfg.agent.top as usize {
            let line = cx.findings.next_top_line();
            let _ = write!(line, "by {by} #{rank}: pid {} ", p.pid);
            match cx.users.name(uid) {
                Some(u) => line.push_str(u),
                None => {
                    let _ = write!(line, "{uid}");
                }
            }
            line.push(' ');
            line.push_str(&String::from_utf8_lossy(scanner.name(&p)));
            let rss_mib = rss as f64 / 1048576.0;
            let _ = write!(line, ": cpu {cpu:.1}%, rss {rss_mib:.1} MiB");
        }
        cx.log
            .event(Level::Info, "top")
            .str("by", by)
            .u64("rank", rank as u64)
            .i64("pid", p.pid as i64)
            .u64("uid", uid as u64)
            .opt("user", cx.users.name(uid))
            .bytes("name", scanner.name(&p))
            .num("cpu", cpu, 1)
            .u64("rss", rss)
            .num("window", window, 1)
            .bytes("cmd", &self.cmd)
            .emit();
    }

    /// The owner of `pid` (from its status) and its command line (into `cmd`);
    /// `None` when it exited.
    fn owner_and_cmdline(&mut self, cx: &Cx, pid: i32) -> Option<u32> {
        let mut digits = [0u8; 20];
        let pid = decimal(pid as u64, &mut digits);
        let root = cx.cfg.paths.proc.as_os_str().as_bytes();
        let path = sys::cpath(&mut self.path, &[root, b"/", pid, b"/status"]).ok()?;
        sys::read_path(path, &mut self.buf).ok()?;
        let uid = parse_pid_status(&self.buf).ok()?.uid[0];
        self.cmd.clear();
        if let Ok(path) = sys::cpath(&mut self.path, &[root, b"/", pid, b"/cmdline"])
            && sys::read_path(path, &mut self.buf).is_ok()
        {
            cmdline_display(&self.buf[..self.buf.len().min(CMDLINE_MAX)], &mut self.cmd);
        }
        Some(uid)
    }
}

/// Per-process ticks from the previous `--once`, when recent and from this boot.
fn load_procs(cx: &mut Cx) {
    let Some((saved, btime, procs)) = cx.store.load(&PROCS, cx.log, state::parse_procs) else {
        return;
    };
    let window = SHORT_WINDOW_MS * 1_000_000..=state::RECENT_NS;
    let fresh = sys::realtime_ns()
        .checked_sub(saved)
        .is_some_and(|a| window.contains(&a));
    if fresh && Some(btime) == cx.reading.btime {
        cx.scan.scanner.set_prev(procs, saved);
    }
}

/// This scan's per-process ticks, for the next `--once`.
fn save_procs(cx: &mut Cx) {
    let Some(btime) = cx.reading.btime else {
        return;
    };
    let scanner = &cx.scan.scanner;
    let ticks: Vec<_> = scanner
        .procs()
        .iter()
        .map(|p| PrevTicks {
            pid: p.pid,
            start: p.start,
            ticks: p.ticks,
        })
        .collect();
    let at = scanner.at_ns;
    cx.store.save(&PROCS, cx.log, |out| {
        state::format_procs(out, at, btime, &ticks)
    });
}

/// `n` in decimal, written into `buf` without allocating.
pub(crate) fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}
