//! The agent: one cycle (SPEC §4) and the two ways to run it — the service loop and
//! the `--once` check. Single-threaded and synchronous: the loop sleeps in `poll` on
//! the signal pipe (and the output of its children) until the next cycle is due, so
//! signals act at once and a slow cycle skips missed slots instead of bursting.
//!
//! ```text
//! sample → judge (levels, hysteresis → alert/recovered) → log sample
//!        → top processes (when cpu or mem ≥ warn) → reaper (reaping.rs)
//!        → cleanup → audit (history.rs) → tasks (maintenance.rs)
//!        → alerts (alerting.rs) → metrics file → state
//! ```
//!
//! Each step's decisions are pure functions in its own module (`reaper`, `cleanup`,
//! `audit`, `tasks`, `alerts`); the files here apply them and log what was done.

mod alerting;
mod history;
mod maintenance;
mod reaping;

use crate::alerts;
use crate::audit;
use crate::child::{self, Child};
use crate::cleanup;
use crate::config::Config;
use crate::error::Error;
use crate::health::Output;
use crate::judge::{self, Kind, Metric, Status};
use crate::log::{Level, Logger, Target};
use crate::mounts::Mounts;
use crate::passwd::{self, Users, parse_passwd};
use crate::policy;
use crate::procfs::pid::{cmdline_display, parse_pid_status};
use crate::procfs::stat::CpuTimes;
use crate::reading::Reading;
use crate::reaper;
use crate::report;
use crate::sample::Sampler;
use crate::scan::Scanner;
use crate::signals::Signals;
use crate::state;
use crate::store::Store;
use crate::sys;
use crate::tasks;
use alerting::{Delivery, Outcome};
use maintenance::RunningTask;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Command-line settings that outlive reloads.
#[derive(Debug, Clone)]
pub struct Options {
    pub config: PathBuf,
    /// `-c` given: the file must exist.
    pub explicit: bool,
    pub dry_run: bool,
    pub log_level: Option<Level>,
}

impl Options {
    pub fn load(&self) -> Result<Config, Vec<crate::config::ConfigError>> {
        let mut cfg = Config::load(&self.config, self.explicit)?;
        if self.dry_run {
            cfg.agent.dry_run = true;
        }
        if let Some(l) = self.log_level {
            cfg.agent.log_level = l;
        }
        Ok(cfg)
    }
}

/// How long the second of two back-to-back samples waits (CPU% needs a window); also
/// the shortest window saved per-process counters may give.
const SHORT_WINDOW_MS: u64 = 250;

/// The fewest clock ticks (summed over CPUs) that saved /proc/stat counters must be
/// behind the current ones to give a meaningful CPU% (1 tick = 10 ms of one CPU).
const MIN_WINDOW_TICKS: u64 = 50;

/// How much of a command line a `top` event shows.
const CMDLINE_MAX: usize = 256;

pub struct Agent {
    opts: Options,
    cfg: Config,
    log: Logger,
    sampler: Sampler,
    /// The watched mounts, probed so that a hung one cannot stall the cycle.
    mounts: Mounts,
    scanner: Scanner,
    metrics: Vec<Metric>,
    /// This cycle's sample and everything derived from it.
    reading: Reading,
    users: Users,
    ticks_per_sec: u64,
    page_size: u64,
    /// state_dir, and its lock: holding it, the agent may act and write state.
    store: Store,
    actions_off: Option<String>,
    /// Why the capabilities were dropped at start, for the start event.
    caps_dropped: Option<String>,
    metrics_file: Option<Output>,
    /// The hysteresis lines last written, so the service writes state only on change.
    written: String,
    scratch: String,
    /// Last error text per sample source (empty: fine), so a failing source is
    /// logged once, not every cycle.
    source_errors: Vec<String>,
    top_idx: Vec<usize>,
    /// The cycle whose process scan `scanner` holds, so steps share one scan.
    scanned_cycle: Option<u64>,
    reaper_clock: reaper::StateClock,
    pending: Vec<reaper::Pending>,
    /// Processes already dealt with (killed, signalled, logged, or a signal that
    /// failed): not acted on or reported again while they exist. A SIGTERM waits in
    /// `pending` instead, for its escalation.
    settled: Vec<(i32, u64)>,
    /// Per cleanup rule, what it remembers until the next configuration load.
    cleanup_memory: Vec<cleanup::Memory>,
    /// Why `[paths] proc` was last refused as the agent's own procfs (the reaper
    /// then only logs), so that is said once, not every cycle.
    proc_refused: Option<String>,
    /// Per task (config order): last success, last start, idle cycles.
    task_states: Vec<tasks::TaskState>,
    tasks_loaded: bool,
    /// The task running now, if any (at most one).
    running: Option<RunningTask>,
    /// Tasks reported as skipped since the config was loaded (once per load).
    /// What was last told per metric key (alerts), loaded lazily from state_dir.
    told: Vec<alerts::Told>,
    told_loaded: bool,
    /// Alert deliveries (mailer, command) still running.
    deliveries: Vec<Delivery>,
    /// Per notice being delivered: what was told before it, and how its routes
    /// fare; when none succeeds, the old record comes back (so it is retried).
    outcomes: Vec<Outcome>,
    mail_seq: u64,
    /// This cycle's top processes, one line each, for alert mails: the first
    /// `last_top_n` of `last_top` (whose strings are reused).
    last_top: Vec<String>,
    last_top_n: usize,
    hostname: String,
    /// The audit trail's own log (file and syslog facility), when auditing.
    audit_log: Option<Logger>,
    audit_targets: Vec<audit::Target>,
    /// Per user: where reading their history stands, loaded from state_dir once.
    hist: Vec<audit::HistState>,
    hist_loaded: bool,
    /// The last refusal logged per user, so it is not logged every cycle.
    /// The history state as last written.
    hist_written: String,
    cmd: Vec<u8>,
    buf: Vec<u8>,
    path_buf: Vec<u8>,
    cycles: u64,
    last_cycle_seconds: f64,
    once: bool,
}

impl Agent {
    /// Builds the agent from a valid config. Opening sinks and files never fails
    /// here: what does not work is reported in the start event.
    pub fn new(opts: Options, cfg: Config, once: bool) -> Agent {
        // Before anything the config names is opened: until the config is known
        // to be root's, what it names is opened with the caller's rights only.
        let caps_dropped = guard_capabilities(&cfg);
        let log = Logger::new(&Target::from_config(&cfg));
        let mut agent = Agent {
            sampler: Sampler::new(&cfg.paths.proc),
            mounts: Mounts::default(),
            scanner: Scanner::new(&cfg.paths.proc),
            metrics: judge::metrics_for(&cfg),
            reading: Reading::new(&cfg.disk.mounts),
            users: Users::default(),
            ticks_per_sec: sys::clock_ticks(),
            page_size: sys::page_size(),
            store: Store::new(&cfg.agent.state_dir, cfg.agent.dry_run),
            actions_off: None,
            caps_dropped,
            metrics_file: None,
            written: String::new(),
            scratch: String::with_capacity(4096),
            source_errors: Vec::new(),
            top_idx: Vec::new(),
            scanned_cycle: None,
            reaper_clock: reaper::StateClock::default(),
            pending: Vec::new(),
            settled: Vec::new(),
            cleanup_memory: Vec::new(),
            proc_refused: None,
            task_states: Vec::new(),
            tasks_loaded: false,
            running: None,
            told: Vec::new(),
            told_loaded: false,
            deliveries: Vec::new(),
            outcomes: Vec::new(),
            mail_seq: 0,
            last_top: Vec::new(),
            last_top_n: 0,
            hostname: sys::hostname(),
            audit_log: None,
            audit_targets: Vec::new(),
            hist: Vec::new(),
            hist_loaded: false,
            hist_written: String::new(),
            cmd: Vec::with_capacity(CMDLINE_MAX),
            buf: Vec::with_capacity(4096),
            path_buf: Vec::with_capacity(64),
            cycles: 0,
            last_cycle_seconds: 0.0,
            once,
            opts,
            cfg,
            log,
        };
        agent.load_users();
        agent.load_audit_targets();
        agent.open_audit_log();
        agent.open_files();
        agent.configure_mounts();
        agent
    }

    /// Finds the mount of every watched path (`[disk] mounts`, cleanup paths); one
    /// line when the mount table cannot be read.
    fn configure_mounts(&mut self) {
        let paths: Vec<&Path> = self
            .cfg
            .cleanup
            .iter()
            .flat_map(|r| r.paths.iter().map(PathBuf::as_path))
            .collect();
        let problem = self
            .mounts
            .configure(&self.cfg.paths.proc, &self.cfg.disk.mounts, &paths);
        if let Some(why) = problem {
            self.log
                .error(Level::Warn, "mounts", &why)
                .str(
                    "effect",
                    "filesystem types unknown: every mount is asked directly until one is slow",
                )
                .emit();
        }
    }

    fn load_users(&mut self) {
        let path = &self.cfg.paths.passwd;
        match crate::files::read_file(path, true, crate::files::ACCOUNTS_MAX, &mut self.buf) {
            Ok(_) => self.users = Users::new(parse_passwd(&self.buf)),
            Err(why) => {
                self.users = Users::default();
                self.log
                    .error(Level::Warn, "passwd", Error::file(path, why))
                    .str("effect", "user names shown as uids")
                    .emit();
            }
        }
    }

    /// The metrics file (kept, with its health, while its path stays the same).
    fn open_files(&mut self) {
        let path = self.cfg.agent.metrics_file.as_deref();
        if self.metrics_file.as_ref().map(Output::path) == path {
            return;
        }
        self.metrics_file = match path.map(|p| Output::new("metrics_file", p, 0o644)) {
            None => None,
            Some(Ok(o)) => Some(o),
            Some(Err(why)) => {
                let err = Error::file(path.unwrap_or(Path::new("")), why);
                self.log.error(Level::Error, "metrics_file", err).emit();
                None
            }
        };
    }

    /// At start, once the lock is ours: temporary files a crash left behind, in
    /// state_dir and beside the metrics file.
    fn remove_stale_temps(&mut self) {
        self.store.remove_stale_temps(&mut self.log);
        let metrics = self.cfg.agent.metrics_file.as_deref();
        if let Some((dir, name)) = metrics.and_then(|p| Some((p.parent()?, p.file_name()?)))
            && let Err(why) = crate::files::remove_stale_temps(dir, Some(name.as_bytes()))
            && !why.is_missing()
        {
            let err = Error::file(dir, why);
            self.log.error(Level::Warn, "metrics_file", err).emit();
        }
    }

    /// Takes the state_dir lock. `Err` is a reason the service cannot start; for
    /// `--once` every problem only turns actions off.
    pub fn take_lock(&mut self) -> Result<(), String> {
        let dir = self.cfg.agent.state_dir.clone();
        let pid = (!self.once).then(sys::getpid);
        match self.store.lock(&dir, pid) {
            Ok(()) => {
                self.remove_stale_temps();
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                self.actions_off = Some(why.clone());
                Err(why)
            }
        }
    }

    fn actor(&self) -> bool {
        self.store.locked()
    }

    pub fn log_start(&mut self, level: Level) {
        if !self.log.enabled(level) {
            return;
        }
        let caps = self.capabilities();
        let cfg_name = match &self.cfg.file {
            Some(p) => p.display().to_string(),
            None => "built-in defaults".to_string(),
        };
        let syslog = self.log.syslog_status();
        let pressure = self.sampler.pressure_available();
        let actions = if self.actor() { "on" } else { "off" };
        let interval = crate::config::value::fmt_duration(self.cfg.agent.interval);
        let dry_run = if self.cfg.agent.dry_run { "yes" } else { "no" };
        let users = self.users.len() as u64;
        let caps_now = sys::effective_capabilities().unwrap_or(0);
        let limited = policy::privilege_limits(sys::getuid(), caps_now, &self.cfg).join("; ");
        let limited = (!limited.is_empty()).then_some(limited);
        let pidfd = (self.cfg.reaper.enabled && !self.cfg.reap.is_empty()).then(|| {
            if reaper::pidfd_supported() {
                "yes"
            } else {
                "no (start-time check, then kill)"
            }
        });
        self.log
            .event(level, "start")
            .str("version", env!("CARGO_PKG_VERSION"))
            .str("config", &cfg_name)
            .str("mode", if self.once { "once" } else { "service" })
            .i64("pid", sys::getpid() as i64)
            .u64("uid", sys::getuid() as u64)
            .str("interval", &interval)
            .str("dry_run", dry_run)
            .str("syslog", &syslog)
            .str("pressure", &pressure)
            .str("caps", &caps)
            .opt("caps_dropped", self.caps_dropped.as_deref())
            .opt("limited", limited.as_deref())
            .opt("pidfd", pidfd)
            .u64("users", users)
            .str("actions", actions)
            .opt("actions_off", self.actions_off.as_deref())
            .emit();
    }

    /// Effective capabilities of this process, by name, from /proc/self/status.
    fn capabilities(&mut self) -> String {
        const NAMES: [(u32, &str); 9] = [
            (0, "cap_chown"),
            (1, "cap_dac_override"),
            (2, "cap_dac_read_search"),
            (3, "cap_fowner"),
            (5, "cap_kill"),
            (6, "cap_setgid"),
            (7, "cap_setuid"),
            (19, "cap_sys_ptrace"),
            (23, "cap_sys_nice"),
        ];
        let path = self.cfg.paths.proc.join("self/status");
        let status = std::ffi::CString::new(path.as_os_str().as_bytes())
            .ok()
            .and_then(|c| read_file(&c, &mut self.buf).ok())
            .and_then(|()| parse_pid_status(&self.buf).ok());
        match status {
            None => format!("unknown (cannot read {})", path.display()),
            Some(s) => {
                let names: Vec<&str> = NAMES
                    .iter()
                    .filter(|(bit, _)| s.cap_eff >> bit & 1 == 1)
                    .map(|(_, n)| *n)
                    .collect();
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(",")
                }
            }
        }
    }

    /// Restores hysteresis and, when recent, the CPU counters from state_dir.
    fn restore_state(&mut self) {
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

    /// Makes sure the first cycle has a previous CPU reading to compare with: the one
    /// saved in state_dir when enough CPU time has passed since (a cron run a minute
    /// later), otherwise a reading now and a short pause.
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

    /// One cycle, SPEC §4 steps 1–3 and 9 (actions slot in between).
    pub fn cycle(&mut self, signals: Option<&Signals>) {
        let started = sys::monotonic_ns();
        // Alert mails carry only this cycle's process list.
        self.last_top_n = 0;
        self.reading.wall_ns = sys::realtime_ns();
        self.reading.mono_ns = started;
        self.sampler.sample(&mut self.reading.host);
        self.mounts
            .sample(&mut self.reading.disks, &mut self.log, &|| {
                stopping(signals)
            });
        self.reading.derive();
        judge::judge(&self.reading, &mut self.metrics);
        if self.actor() {
            self.transitions();
        }
        report::sample_line(&mut self.log, &self.reading, &self.metrics);
        self.log_source_errors();
        if self.actor() && self.needs_scan() {
            self.top(signals);
        }
        if self.actor() && self.cfg.reaper.enabled && !self.cfg.reap.is_empty() {
            self.reap();
        }
        if self.actor() && !self.cfg.cleanup.is_empty() {
            self.cleanup(signals);
        }
        if self.actor() && self.cfg.audit.bash_history {
            self.audit();
        }
        if self.actor() && (!self.cfg.tasks.is_empty() || self.running.is_some()) {
            self.tasks(signals);
        }
        if self.actor() && (!self.cfg.alert.email.is_empty() || !self.cfg.alert.command.is_empty())
        {
            self.alerts(signals);
        }
        self.cycles += 1;
        if self.actor() {
            self.write_metrics();
            if !self.once {
                self.save_state(false);
            }
        }
        self.last_cycle_seconds = sys::monotonic_ns().saturating_sub(started) as f64 / 1e9;
    }

    /// Hysteresis → `alert` and `recovered` events.
    fn transitions(&mut self) {
        let n = self.cfg.thresholds.for_cycles;
        for i in 0..self.metrics.len() {
            let raw = self.metrics[i].raw;
            let Some((from, to)) = self.metrics[i].hyst.observe(raw, n) else {
                continue;
            };
            let m = &self.metrics[i];
            let decimals = m.kind.decimals();
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
            let e = e.opt("mount", m.mount_text()).num("value", value, decimals);
            let e = match m.threshold(to) {
                Some(t) => e.display("threshold", crate::config::value::fmt_number(t)),
                None => e,
            };
            e.str("previous", from.name()).emit();
        }
    }

    /// A sample source that fails is logged when it starts failing or its error
    /// changes, not every cycle, and once more when it works again (a hung mount
    /// that answers: `status=recovered` with the error that ended).
    fn log_source_errors(&mut self) {
        let n = 3 + self.reading.disks.len();
        self.source_errors.resize(n, String::new());
        for i in 0..n {
            let err = match i {
                0 => self.reading.host.stat.as_ref().err(),
                1 => self.reading.host.mem.as_ref().err(),
                2 => self.reading.host.load.as_ref().err(),
                _ => self.reading.disks[i - 3].usage.as_ref().err(),
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

    /// SPEC §4 step 5: every cleanup rule, within one budget per cycle (half the
    /// interval, at most 2 s, and 500,000 directory entries), stopped by SIGTERM.
    fn cleanup(&mut self, signals: Option<&Signals>) {
        let stop = || signals.is_some_and(|s| s.stop_requested().is_some());
        let window =
            (self.cfg.agent.interval / 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let mut budget = cleanup::Budget::new(
            sys::monotonic_ns() + window.as_nanos() as u64,
            500_000,
            &stop,
        );
        let now_s = (sys::realtime_ns() / 1_000_000_000) as i64;
        let dry_run = self.cfg.agent.dry_run;
        self.cleanup_memory
            .resize_with(self.cfg.cleanup.len(), Default::default);
        for (rule, memory) in self.cfg.cleanup.iter().zip(&mut self.cleanup_memory) {
            let mut ctx = cleanup::Ctx {
                now_s,
                dry_run,
                disk_warn: self.cfg.thresholds.disk.warn,
                log: &mut self.log,
                budget: &mut budget,
                memory,
                path_buf: &mut self.path_buf,
                mounts: &mut self.mounts,
            };
            let sum = cleanup::run(rule, &mut ctx);
            if sum.errors == 0 {
                memory.last_error.clear();
            }
            let spent = budget.spent;
            let mount = memory.new_mount.take();
            if sum.files > 0 || sum.new_error || spent.is_some() || mount.is_some() {
                let mut e = self
                    .log
                    .event(Level::Info, "cleanup_done")
                    .str("rule", &rule.name)
                    .u64("files", sum.files)
                    .u64("bytes", sum.bytes)
                    .u64("errors", sum.errors)
                    .opt("budget_spent", spent);
                if let Some(m) = &mount {
                    // A mount point in the tree, not entered: told once per load.
                    e = e.bytes("skipped_mount", m);
                }
                e.opt("dry_run", dry_run.then_some("yes")).emit();
            }
            if spent.is_some() {
                break;
            }
        }
    }

    fn needs_scan(&self) -> bool {
        self.cfg.agent.top > 0
            && self.metrics.iter().any(|m| {
                matches!(m.kind, Kind::Cpu | Kind::Mem)
                    && matches!(m.raw, Status::Warning | Status::Critical)
            })
    }

    /// Scans processes and logs the top N by CPU% over the window and by RSS.
    fn top(&mut self, signals: Option<&Signals>) {
        let clock = if self.once {
            sys::realtime_ns
        } else {
            sys::monotonic_ns
        };
        if self.scanner.prev_at_ns.is_none() {
            if self.once {
                self.load_procs();
            }
            if self.scanner.prev_at_ns.is_none() {
                if let Err(e) = self.scanner.scan(clock()) {
                    self.log.error(Level::Error, "scan", e).emit();
                    return;
                }
                pause(signals, SHORT_WINDOW_MS);
            }
        }
        if let Err(e) = self.scanner.scan(clock()) {
            self.log.error(Level::Error, "scan", e).emit();
            return;
        }
        self.scanned_cycle = Some(self.cycles);
        self.last_top_n = 0;
        let n = self.cfg.agent.top as usize;
        let window = self.scanner.window_ns().unwrap_or(0) as f64 / 1e9;
        let mut idx = std::mem::take(&mut self.top_idx);
        self.scanner
            .top_by(n, |s, p| s.ticks_since_prev(p), &mut idx);
        for (rank, &i) in idx.iter().enumerate() {
            self.log_top("cpu", rank + 1, i, window);
        }
        self.scanner.top_by(n, |_, p| p.rss_pages, &mut idx);
        for (rank, &i) in idx.iter().enumerate() {
            self.log_top("rss", rank + 1, i, window);
        }
        self.top_idx = idx;
        if self.once {
            self.save_procs();
        }
    }

    fn log_top(&mut self, by: &str, rank: usize, i: usize, window: f64) {
        let p = *self.scanner.get(i);
        let mut digits = [0u8; 20];
        let pid = decimal(p.pid as u64, &mut digits);
        let root = self.cfg.paths.proc.as_os_str().as_bytes();
        // The owner and command line; a process that exited meanwhile is skipped.
        let Ok(path) = sys::cpath(&mut self.path_buf, &[root, b"/", pid, b"/status"]) else {
            return;
        };
        let uid = match read_file(path, &mut self.buf).map(|()| parse_pid_status(&self.buf)) {
            Ok(Ok(s)) => s.uid[0],
            _ => return,
        };
        self.cmd.clear();
        if let Ok(path) = sys::cpath(&mut self.path_buf, &[root, b"/", pid, b"/cmdline"])
            && read_file(path, &mut self.buf).is_ok()
        {
            cmdline_display(&self.buf[..self.buf.len().min(CMDLINE_MAX)], &mut self.cmd);
        }
        let cpu = self
            .scanner
            .cpu_percent(&p, self.ticks_per_sec)
            .unwrap_or(0.0);
        // Kept for alert mails, in reused strings (this is the scan's hot path).
        let alerting = !self.cfg.alert.email.is_empty() || !self.cfg.alert.command.is_empty();
        if alerting && self.last_top_n < 2 * self.cfg.agent.top as usize {
            if self.last_top_n == self.last_top.len() {
                self.last_top.push(String::new());
            }
            let line = &mut self.last_top[self.last_top_n];
            self.last_top_n += 1;
            line.clear();
            let rss_mib = p.rss_pages.saturating_mul(self.page_size) as f64 / 1048576.0;
            let _ = write!(line, "by {by} #{rank}: pid {} ", p.pid);
            match self.users.name(uid) {
                Some(u) => line.push_str(u),
                None => {
                    let _ = write!(line, "{uid}");
                }
            }
            line.push(' ');
            line.push_str(&String::from_utf8_lossy(self.scanner.name(&p)));
            let _ = write!(line, ": cpu {cpu:.1}%, rss {rss_mib:.1} MiB");
        }
        self.log
            .event(Level::Info, "top")
            .str("by", by)
            .u64("rank", rank as u64)
            .i64("pid", p.pid as i64)
            .u64("uid", uid as u64)
            .opt("user", self.users.name(uid))
            .bytes("name", self.scanner.name(&p))
            .num("cpu", cpu, 1)
            .u64("rss", p.rss_pages.saturating_mul(self.page_size))
            .num("window", window, 1)
            .bytes("cmd", &self.cmd)
            .emit();
    }

    /// Per-process ticks from the previous `--once`, when recent and from this boot.
    fn load_procs(&mut self) {
        let procs = self
            .store
            .load(&state::PROCS, &mut self.log, state::parse_procs);
        if let Some((saved, btime, procs)) = procs {
            let window = SHORT_WINDOW_MS * 1_000_000..=state::RECENT_NS;
            let fresh = sys::realtime_ns()
                .checked_sub(saved)
                .is_some_and(|a| window.contains(&a));
            if fresh && Some(btime) == self.reading.btime {
                self.scanner.set_prev(procs, saved);
            }
        }
    }

    fn save_procs(&mut self) {
        let Some(btime) = self.reading.btime else {
            return;
        };
        let ticks: Vec<_> = self
            .scanner
            .procs()
            .iter()
            .map(|p| crate::scan::PrevTicks {
                pid: p.pid,
                start: p.start,
                ticks: p.ticks,
            })
            .collect();
        let at = self.scanner.at_ns;
        self.store.save(&state::PROCS, &mut self.log, |out| {
            state::format_procs(out, at, btime, &ticks)
        });
    }

    fn write_metrics(&mut self) {
        let Some(file) = &mut self.metrics_file else {
            return;
        };
        let extra = report::Extra {
            cycles: self.cycles,
            cycle_seconds: self.last_cycle_seconds,
        };
        report::prometheus(&mut self.scratch, &self.metrics, &self.reading, &extra);
        file.write(self.scratch.as_bytes(), false, &mut self.log);
    }

    /// Writes state_dir/state: always when `force` (stop, `--once`), otherwise only
    /// when the hysteresis counters changed, so a steady service does no disk I/O.
    fn save_state(&mut self, force: bool) {
        if !self.actor() {
            return;
        }
        self.scratch.clear();
        state::format_metrics(&mut self.scratch, &self.metrics);
        if !force && self.scratch == self.written {
            return;
        }
        std::mem::swap(&mut self.written, &mut self.scratch);
        state::format_state(
            &mut self.scratch,
            sys::realtime_ns(),
            self.reading.btime.unwrap_or(0),
            self.reading.cpu_base.as_ref(),
            &self.metrics,
        );
        if !self
            .store
            .save_text(&state::STATE, &mut self.log, &self.scratch)
        {
            // Written again next cycle: the failure is reported once, not each time.
            self.written.clear();
        }
    }

    /// SIGHUP: a valid file replaces the config and says what changed; an invalid one
    /// is reported and the agent goes on with the old one. Log files are reopened in
    /// both cases (logrotate relies on it).
    fn reload(&mut self) {
        match self.opts.load() {
            Ok(new) => {
                let changed = new.changed_keys(&self.cfg);
                // Before the new config's files are opened (see `Agent::new`).
                let dropped = guard_capabilities(&new);
                if new.agent.state_dir != self.cfg.agent.state_dir
                    && let Err(why) = self.relock(&new.agent.state_dir)
                {
                    // The old config's capabilities again (unless they are gone).
                    guard_capabilities(&self.cfg);
                    self.log.reopen(&Target::from_config(&self.cfg));
                    self.open_audit_log();
                    self.log
                        .event(Level::Error, "config_error")
                        .str("key", "agent.state_dir")
                        .str("error", &why)
                        .str("effect", "kept the old configuration")
                        .emit();
                    return;
                }
                // Pending SIGTERMs follow their rule by name; errors start afresh.
                for p in &mut self.pending {
                    let name = self.cfg.reap.get(p.rule).map(|r| r.name.clone());
                    p.rule = name
                        .and_then(|n| new.reap.iter().position(|r| r.name == n))
                        .unwrap_or(usize::MAX);
                }
                self.pending.retain(|p| p.rule != usize::MAX);
                self.cleanup_memory.clear();
                self.proc_refused = None;
                tasks::forget_skips(&mut self.task_states);
                self.task_states = tasks::states_for(&new.tasks, &self.task_states);
                let old = std::mem::replace(&mut self.cfg, new);
                self.store.set_dry_run(self.cfg.agent.dry_run);
                self.log.reopen(&Target::from_config(&self.cfg));
                if let Some(why) = dropped {
                    self.log
                        .error(Level::Warn, "capabilities", &why)
                        .str("effect", "dropped all capabilities")
                        .emit();
                }
                if old.paths.proc != self.cfg.paths.proc {
                    self.sampler = Sampler::new(&self.cfg.paths.proc);
                }
                self.configure_mounts();
                if old.paths.proc != self.cfg.paths.proc {
                    self.scanner = Scanner::new(&self.cfg.paths.proc);
                }
                let mut metrics = judge::metrics_for(&self.cfg);
                judge::carry_over(&self.metrics, &mut metrics);
                self.reading.watch(&self.cfg.disk.mounts);
                self.metrics = metrics;
                self.load_users();
                // Refusals are reported afresh under the new configuration.
                for h in &mut self.hist {
                    h.refused.clear();
                }
                self.load_audit_targets();
                self.open_audit_log();
                self.open_files();
                let changed = if changed.is_empty() {
                    "none".to_string()
                } else {
                    changed.join(" ")
                };
                let name = self.config_name();
                self.log
                    .event(Level::Info, "reload")
                    .str("config", &name)
                    .str("changed", &changed)
                    .emit();
            }
            Err(errors) => {
                self.log.reopen(&Target::from_config(&self.cfg));
                self.open_audit_log();
                for e in &errors {
                    self.log
                        .event(Level::Error, "config_error")
                        .path("file", &e.file)
                        .u64("line", e.line as u64)
                        .str("key", &e.key)
                        .str("error", &e.message)
                        .str("effect", "kept the old configuration")
                        .emit();
                }
            }
        }
    }

    fn relock(&mut self, dir: &Path) -> Result<(), String> {
        self.store
            .lock(dir, Some(sys::getpid()))
            .map_err(|e| e.to_string())?;
        self.written.clear();
        Ok(())
    }

    fn config_name(&self) -> String {
        self.opts.config.display().to_string()
    }

    /// The service: cycles until SIGTERM/SIGINT; exit status 0.
    pub fn run_service(&mut self, signals: &Signals) {
        self.restore_state();
        self.prime_cpu(Some(signals));
        let mut next = sys::monotonic_ns();
        let reason = loop {
            if let Some(sig) = signals.stop_requested() {
                break sig;
            }
            if signals.take_hup() {
                self.reload();
            }
            let now = sys::monotonic_ns();
            if now >= next {
                self.cycle(Some(signals));
                let interval = self.cfg.agent.interval.as_nanos().max(1) as u64;
                next = now + interval;
                let after = sys::monotonic_ns();
                if after >= next {
                    // A slow cycle: skip the slots it overran instead of bursting.
                    next += (after - next) / interval * interval + interval;
                }
                continue;
            }
            // Wake for the next cycle, a signal (SIGCHLD included), the running
            // task's output, or its timeout.
            let mut until = next;
            let mut fds = [0; 7];
            let mut n = 0;
            let children = self
                .running
                .iter()
                .map(|r| &r.child)
                .chain(self.deliveries.iter().map(|d| &d.child));
            for c in children {
                until = until.min(c.next_deadline().unwrap_or(u64::MAX));
                for fd in c.poll_fds() {
                    if n < fds.len() {
                        fds[n] = fd;
                        n += 1;
                    }
                }
            }
            signals.wait_or(until.saturating_sub(now).div_ceil(1_000_000), &fds[..n]);
            self.tend_task();
            self.tend_deliveries();
        };
        self.stop_task();
        self.stop_deliveries();
        self.mounts.finish();
        self.save_state(true);
        self.log
            .event(Level::Info, "stop")
            .str("reason", reason)
            .u64("cycles", self.cycles)
            .emit();
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
            self.save_reaper();
        }
        if let Some(sig) = signals.and_then(|s| s.stop_requested()) {
            self.log
                .event(Level::Info, "stop")
                .str("reason", sig)
                .u64("cycles", self.cycles)
                .emit();
        }
        let mut line = String::new();
        let status = report::status_line(&mut line, &self.metrics, &self.reading);
        out!("{line}");
        status
    }
}

/// Narrows the effective capabilities of an agent that is not root to what the
/// configured features use, once the config is known to be root's (see
/// `policy::may_keep_capabilities`, judged on the descriptor the config was read
/// from); otherwise drops them all, and returns why. Until then (see `cli::main` and
/// `Config::load`) none is in effect.
fn guard_capabilities(cfg: &Config) -> Option<String> {
    let uid = sys::getuid();
    let verdict = policy::may_keep_capabilities(uid, cfg.file.as_deref(), cfg.file_owner);
    match verdict {
        Ok(()) if uid == 0 => None,
        Ok(()) => {
            let _ = sys::set_effective_capabilities(policy::needed_capabilities(cfg));
            None
        }
        Err(_) if !any_permitted() => None,
        Err(why) => match sys::drop_capabilities() {
            Ok(()) => Some(why),
            Err(e) => Some(format!(
                "{why}; dropping them failed: {}",
                crate::error::errno_text(&e)
            )),
        },
    }
}

/// Whether this process holds any capability it could raise.
fn any_permitted() -> bool {
    sys::permitted_capabilities().unwrap_or(0) != 0
}

/// Whether SIGTERM or SIGINT arrived.
fn stopping(signals: Option<&Signals>) -> bool {
    signals.is_some_and(|s| s.stop_requested().is_some())
}

/// `--once` waiting for its children: up to 100 ms, waking for their output, their
/// exit (SIGCHLD) or a stop signal.
fn wait_children(signals: Option<&Signals>, fds: &[std::os::fd::RawFd]) {
    match signals {
        Some(s) => s.wait_or(100, fds),
        None => {
            let mut pfds: Vec<libc::pollfd> = fds
                .iter()
                .map(|&fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect();
            // SAFETY: a valid pollfd array (possibly empty: then a 100 ms sleep).
            unsafe { libc::poll(pfds.as_mut_ptr(), pfds.len() as libc::nfds_t, 100) };
        }
    }
}

/// Waits `ms`, waking early for a signal when running as a service.
fn pause(signals: Option<&Signals>, ms: u64) {
    match signals {
        Some(s) => {
            let until = sys::monotonic_ns() + ms * 1_000_000;
            loop {
                let now = sys::monotonic_ns();
                if now >= until || s.stop_requested().is_some() {
                    break;
                }
                s.wait((until - now).div_ceil(1_000_000));
            }
        }
        None => std::thread::sleep(std::time::Duration::from_millis(ms)),
    }
}

/// `n` in decimal, written into `buf` without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
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

fn read_file(path: &std::ffi::CStr, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let fd = sys::open(path, libc::O_RDONLY | libc::O_NONBLOCK, 0)?;
    sys::read_all(std::os::fd::AsRawFd::as_raw_fd(&fd), buf).map(drop)
}
