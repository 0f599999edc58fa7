//! The two ways to run the cycle: the service loop, which sleeps in `poll` on the
//! signal pipe and its children's output until the next cycle is due, and tells
//! systemd (when it runs under it) that it is ready, reloading, alive or stopping;
//! and the `--once` check, which runs one cycle and prints the Nagios status line.
//! Both start from what state_dir kept (hysteresis, CPU counters), so cron runs
//! count as consecutive cycles.

use super::Agent;
use crate::features::{PollSet, pause};
use crate::forecast;
use crate::judge::Status;
use crate::log::Level;
use crate::notify::Notify;
use crate::procfs::stat::CpuTimes;
use crate::reading::SHORT_WINDOW_MS;
use crate::report;
use crate::signals::Signals;
use crate::state;
use crate::sys;

/// The fewest clock ticks (summed over CPUs) that saved /proc/stat counters must be
/// behind the current ones to give a meaningful CPU% (1 tick = 10 ms of one CPU).
const MIN_WINDOW_TICKS: u64 = 50;

impl Agent {
    /// The service: cycles until SIGTERM/SIGINT; exit status 0.
    pub fn run_service(&mut self, signals: &Signals) {
        let mut notify = Notify::from_env(&mut self.log);
        self.restore_state();
        self.prime_cpu(Some(signals));
        let mut next = sys::monotonic_ns();
        let reason = loop {
            if let Some(sig) = signals.stop_requested() {
                break sig;
            }
            if signals.take_hup() {
                notify.reloading(&mut self.log);
                self.reload();
                notify.reloaded(&mut self.log);
            }
            if signals.take_usr1() {
                self.log_status(signals, next);
            }
            let now = sys::monotonic_ns();
            if now >= next {
                self.cycle(Some(signals));
                notify.cycled(&mut self.log);
                let interval = self.cfg.agent.interval.as_nanos().max(1) as u64;
                next = now + interval;
                let after = sys::monotonic_ns();
                if after >= next {
                    // A slow cycle: skip the slots it overran instead of bursting.
                    next += (after - next) / interval * interval + interval;
                }
                continue;
            }
            notify.keep_alive(&mut self.log, now);
            self.sleep(signals, now, next.min(notify.deadline()));
        };
        notify.stopping(&mut self.log);
        self.each_feature(Some(signals), |f, cx| f.stop(cx));
        self.mounts.finish();
        self.save_state(true);
        self.save_forecast(true);
        self.each_feature(Some(signals), |f, cx| f.save(cx, true));
        self.log_stop(reason);
    }

    /// Sleeps until `next` (the next cycle, or the systemd watchdog's due time), a
    /// signal (SIGCHLD included), a descriptor a feature waits on (a child's
    /// output, a PSI trigger, a victim's exit) or a feature's deadline, then lets
    /// the features look after what woke them.
    fn sleep(&mut self, signals: &Signals, now: u64, next: u64) {
        let mut set = PollSet::new(next);
        for f in self.features.all() {
            f.poll(&mut set);
        }
        let ms = set.until.saturating_sub(now).div_ceil(1_000_000);
        signals.wait_polled(ms, set.polled());
        for f in self.features.all() {
            f.woke(&set);
        }
        self.each_feature(Some(signals), |f, cx| f.tend(cx));
    }

    /// `--once`: one cycle; prints the status line and returns the Nagios status.
    /// `signals` (when they could be installed) let SIGTERM or SIGINT stop a task
    /// or mailer this run waits for, instead of leaving it behind.
    pub fn run_once(&mut self, signals: Option<&Signals>) -> Status {
        self.restore_state();
        self.prime_cpu(signals);
        self.cycle(signals);
        self.mounts.finish();
        if self.actor() {
            self.save_state(true);
            self.save_forecast(true);
            self.each_feature(signals, |f, cx| f.save(cx, true));
        }
        if let Some(sig) = signals.and_then(|s| s.stop_requested()) {
            self.log_stop(sig);
        }
        let mut line = String::new();
        let relief = self.cfg.relief.enabled.then_some(&self.cfg.relief);
        let status = report::status_line(&mut line, &self.metrics, &self.reading, relief);
        out!("{line}");
        status
    }

    fn log_stop(&mut self, reason: &str) {
        self.log
            .event(Level::Info, "stop")
            .str("reason", reason)
            .u64("cycles", self.stats.cycles)
            .emit();
    }

    /// Restores hysteresis, the forecast readings and, when recent, the CPU
    /// counters from state_dir.
    fn restore_state(&mut self) {
        self.restore_forecast();
        let Some(saved) = self
            .store
            .load(&state::STATE, &mut self.log, state::parse_state)
        else {
            return;
        };
        saved.restore(&mut self.metrics);
        self.written.clear();
        state::format_metrics(&mut self.written, &self.metrics);
        if let Ok(st) = self.sampler.read_stat() {
            self.reading.cpu_base = saved.recent_cpu(sys::realtime_ns(), st.btime);
        }
    }

    /// Each watched mount's recent readings, so a forecast goes on across restarts
    /// and `--once` runs (what lies outside the window goes at the next reading).
    fn restore_forecast(&mut self) {
        if self.reading.forecast_window_ns == 0 {
            return;
        }
        let kind = &forecast::FORECAST;
        if let Some(saved) = self
            .store
            .load(kind, &mut self.log, forecast::parse_forecast)
        {
            for (mount, series) in saved {
                self.reading.restore_series(&mount, &series.points);
            }
        }
    }

    /// Makes sure the first cycle has a previous CPU reading to compare with: the
    /// one saved in state_dir when enough CPU time has passed since (a cron run a
    /// minute later), otherwise a reading now and a short pause.
    fn prime_cpu(&mut self, signals: Option<&Signals>) {
        let Ok(st) = self.sampler.read_stat() else {
            return;
        };
        let enough =
            |prev: &CpuTimes| st.cpu.total().saturating_sub(prev.total()) >= MIN_WINDOW_TICKS;
        if self.reading.cpu_base.as_ref().is_some_and(enough) {
            return;
        }
        self.reading.cpu_base = Some(st.cpu);
        pause(signals, SHORT_WINDOW_MS);
    }
}
