//! SIGUSR1: the running service says how it is, without a reload and without
//! moving its next cycle: one `event=status` line for the agent, one per metric
//! (its value, level, threshold and hysteresis count), and one per feature (its
//! own timers and counts, `Feature::status`), which also writes the status file
//! again.

use super::Agent;
use crate::config::value::fmt_duration;
use crate::judge::{self, Metric};
use crate::log::{Level, Logger};
use crate::signals::Signals;
use crate::sys;

impl Agent {
    /// The `event=status` lines; `next` is when the next cycle is due (monotonic ns).
    pub(super) fn log_status(&mut self, signals: &Signals, next: u64) {
        let next_in = next.saturating_sub(sys::monotonic_ns()) as f64 / 1e9;
        self.log
            .event(Level::Info, "status")
            .str("overall", judge::overall(&self.metrics).name())
            .u64("cycles", self.stats.cycles)
            .str("interval", &fmt_duration(self.cfg.agent.interval))
            .num("next_cycle_in", next_in, 1)
            .i64("pid", sys::getpid() as i64)
            .emit();
        let n = self.cfg.thresholds.for_cycles;
        for m in &self.metrics {
            metric_line(&mut self.log, m, n);
        }
        self.each_feature(Some(signals), |f, cx| f.status(cx));
    }
}

/// `metric=disk mount=/ value=96 level=critical state=warning threshold=95 held=2
/// for_cycles=3`: this cycle's reading and level, the level reported after
/// hysteresis, and how many cycles the reading has held its level by the count
/// that decides (toward a change, or keeping the reported one).
fn metric_line(log: &mut Logger, m: &Metric, for_cycles: u32) {
    let e = log
        .event(Level::Info, "status")
        .str("metric", m.kind.name())
        .opt("mount", m.mount_text());
    let e = match m.value {
        Some(v) => e.num("value", v, m.kind.decimals()),
        None => e,
    };
    let e = e
        .str("level", m.raw.name())
        .str("state", m.hyst.reported().name());
    let e = match m.threshold(m.raw) {
        Some(t) => e.float("threshold", t),
        None => e,
    };
    let e = match m.hyst.held(m.raw) {
        Some(h) => e.u64("held", u64::from(h)),
        None => e,
    };
    let e = e.u64("for_cycles", u64::from(for_cycles));
    let error = (!m.error.is_empty()).then_some(m.error.as_str());
    e.opt("error", error).emit();
}
