//! One cycle, the agent's whole job once: read the host into the Reading, judge
//! it, tell what changed, log the sample, then let each feature act on it in a
//! fixed order, and keep what the next cycle (or the next `--once` run) needs.

use super::{Agent, Features};
use crate::config::MemScope;
use crate::features::{Feature, Slot};
use crate::forecast;
use crate::judge::{self, Kind, Status};
use crate::log::Level;
use crate::report;
use crate::signals::Signals;
use crate::state;
use crate::sys;
use std::fmt::Write as _;

/// How often the service writes the forecast readings: a crash loses at most
/// this much of a forecast's window (a stop writes them too).
const FORECAST_SAVE_NS: u64 = 10 * 60 * 1_000_000_000;

impl Agent {
    /// One cycle. Every step that acts (all but reading, judging and the sample
    /// line) runs only while the agent holds the state_dir lock, and only when
    /// there is something for it to do.
    pub fn cycle(&mut self, signals: Option<&Signals>) {
        let started = self.begin_cycle();
        self.read_host(signals);
        judge::judge(&self.reading, &mut self.metrics);
        self.transitions();
        report::sample_line(&mut self.log, &self.reading, &self.metrics);
        self.log_source_errors();
        self.step(signals, |f| &mut f.top);
        self.step(signals, |f| &mut f.relief);
        self.step(signals, |f| &mut f.reaper);
        self.step(signals, |f| &mut f.cleanup);
        self.step(signals, |f| &mut f.deleted);
        self.step(signals, |f| &mut f.audit);
        self.step(signals, |f| &mut f.tasks);
        self.step(signals, |f| &mut f.alerts);
        self.stats.cycles += 1;
        self.step(signals, |f| &mut f.metrics_file);
        self.step(signals, |f| &mut f.status_file);
        self.keep_state();
        self.end_cycle(started);
    }

    /// A new cycle: nothing scanned or found yet. Returns when it started.
    fn begin_cycle(&mut self) -> u64 {
        self.scan.begin_cycle();
        self.findings.clear();
        sys::monotonic_ns()
    }

    fn end_cycle(&mut self, started: u64) {
        let took = sys::monotonic_ns().saturating_sub(started);
        self.stats.last_cycle_seconds = took as f64 / 1e9;
    }

    /// Samples /proc and the watched mounts into the Reading, and derives from it.
    fn read_host(&mut self, signals: Option<&Signals>) {
        self.reading.wall_ns = sys::realtime_ns();
        self.reading.mono_ns = sys::monotonic_ns();
        self.sampler.sample(&mut self.reading.host);
        let r = &mut self.reading;
        self.cgroup.sample(&mut r.cgroup, &mut r.cgroup_pressure);
        let stop = || crate::features::stopping(signals);
        self.mounts
            .sample(&mut self.reading.disks, &mut self.log, &stop);
        self.reading.derive();
    }

    /// One feature's step, when the agent may act.
    fn step(
        &mut self,
        signals: Option<&Signals>,
        pick: fn(&mut Features) -> &mut Slot<dyn Feature>,
    ) {
        if !self.actor() {
            return;
        }
        let (features, mut cx) = self.split(signals);
        pick(features).step(&mut cx);
    }

    /// Hysteresis → `alert` and `recovered` events (by the actor only: a
    /// `--once` beside the service leaves them to it).
    fn transitions(&mut self) {
        if !self.actor() {
            return;
        }
        let n = self.cfg.thresholds.for_cycles;
        for m in &mut self.metrics {
            let Some((from, to)) = m.hyst.observe(m.raw, n) else {
                continue;
            };
            let value = m.value.unwrap_or(0.0);
            let e = if to == Status::Ok {
                self.log
                    .event(Level::Info, "recovered")
                    .str("metric", m.kind.name())
            } else {
                self.log
                    .event(Level::Warn, "alert")
                    .str("metric", m.kind.name())
                    .str("state", to.name())
            };
            let cgroup = m.kind == Kind::Mem && self.reading.mem_scope == MemScope::Cgroup;
            let e = e
                .opt("mount", m.mount_text())
                .opt("scope", cgroup.then_some("cgroup"))
                .num("value", value, m.kind.decimals());
            let e = match m.threshold(to) {
                Some(t) => e.float("threshold", t),
                None => e,
            };
            e.str("previous", from.name()).emit();
        }
    }

    /// A sample source that fails is logged when it starts failing or its error
    /// changes, not every cycle, and once more when it works again (a hung mount
    /// that answers: `status=recovered` with the error that ended).
    fn log_source_errors(&mut self) {
        let n = 4 + self.reading.disks.len();
        self.source_errors.resize(n, String::new());
        let group = self.cgroup.found.is_ok();
        for i in 0..n {
            let r = &self.reading;
            let err = match i {
                0 => r.host.stat.as_ref().err(),
                1 => r.host.mem.as_ref().err(),
                2 => r.host.load.as_ref().err(),
                // A group that was found, and can no longer be read.
                3 => r.cgroup.as_ref().err().filter(|_| group),
                _ => r.disks[i - 4].usage.as_ref().err(),
            };
            let Some(e) = err else {
                if !self.source_errors[i].is_empty() {
                    self.log
                        .event(Level::Info, "error")
                        .str("what", "sample")
                        .str("status", "recovered")
                        .str("error", &self.source_errors[i])
                        .emit();
                    self.source_errors[i].clear();
                }
                continue;
            };
            self.scratch.clear();
            let _ = write!(self.scratch, "{e}");
            if self.source_errors[i] != self.scratch {
                self.log.error(Level::Error, "sample", &self.scratch).emit();
                self.source_errors[i].clone_from(&self.scratch);
            }
        }
    }

    /// The service writes state_dir/state when the hysteresis counters changed
    /// (a steady service does no disk I/O but the forecast readings, every
    /// `FORECAST_SAVE_NS`); a `--once` run writes both at its end.
    fn keep_state(&mut self) {
        if !self.once {
            self.save_state(false);
            self.save_forecast(false);
        }
    }

    /// Writes state_dir/forecast (each watched mount's recent readings): always
    /// when `force`, otherwise when the last write is `FORECAST_SAVE_NS` old.
    pub(super) fn save_forecast(&mut self, force: bool) {
        let now = sys::realtime_ns();
        let due = now.saturating_sub(self.forecast_saved_ns) >= FORECAST_SAVE_NS;
        if !self.actor() || self.reading.forecast_window_ns == 0 || !(force || due) {
            return;
        }
        self.forecast_saved_ns = now;
        let disks = &self.reading.disks;
        self.store.save(&forecast::FORECAST, &mut self.log, |out| {
            let series = disks.iter().map(|d| (d.mount.as_path(), &d.series));
            forecast::format_forecast(out, now, series);
        });
    }

    /// Writes state_dir/state: always when `force`, otherwise only when the
    /// hysteresis counters changed.
    pub(super) fn save_state(&mut self, force: bool) {
        if !self.actor() {
            return;
        }
        self.scratch.clear();
        state::format_metrics(&mut self.scratch, &self.metrics);
        if !force && self.scratch == self.written {
            return;
        }
        std::mem::swap(&mut self.written, &mut self.scratch);
        let r = &self.reading;
        let (btime, cpu) = (r.btime.unwrap_or(0), r.cpu_base.as_ref());
        let now = sys::realtime_ns();
        state::format_state(&mut self.scratch, now, btime, cpu, &self.metrics);
        if !self
            .store
            .save_text(&state::STATE, &mut self.log, &self.scratch)
        {
            // Written again next cycle: the failure is reported once, not each time.
            self.written.clear();
        }
    }
}
