//! The agent: what every step shares (the config, the loggers, state_dir and its
//! lock, the samplers, the Reading and the judged metrics, the effects) and the
//! features, driven in `cycle.rs` by one short function that names the steps in
//! order; `run.rs` runs it as the service loop or as one `--once` check;
//! `reload.rs` takes a new configuration on SIGHUP, and `status.rs` says how it
//! is on SIGUSR1. Single-threaded and synchronous: the loop sleeps in `poll` on
//! the signal pipe (and the output of its children) until the next cycle is due,
//! so signals act at once and a slow cycle skips missed slots instead of
//! bursting.
//!
//! Each feature lives in `features/` (see its doc for how one is added); the
//! loop drives them all through the `Feature` trait.

mod cycle;
mod reload;
mod run;
mod status;

use crate::cgroup::{self, Cgroup};
use crate::config::{Config, MemScope, Origin};
use crate::effects::{self, Effects};
use crate::error::Error;
use crate::features::alerts::Alerts;
use crate::features::audit::Audit;
use crate::features::cleanup::Cleanup;
use crate::features::deleted::DeletedOpen;
use crate::features::metrics::MetricsFile;
use crate::features::reaper::{self, Reaper};
use crate::features::relief::Relief;
use crate::features::status::StatusFile;
use crate::features::tasks::Tasks;
use crate::features::top::Top;
use crate::features::{Cx, Feature, Findings, Slot, Stats};
use crate::judge::{self, Metric};
use crate::log::{Level, Logger};
use crate::mounts::Mounts;
use crate::passwd::{Users, parse_passwd};
use crate::policy;
use crate::procfs::pid::parse_pid_status;
use crate::reading::Reading;
use crate::sample::Sampler;
use crate::scan::CycleScan;
use crate::signals::Signals;
use crate::store::Store;
use crate::sys;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

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
            let by = Origin::Option("--dry-run");
            cfg.origins.set("agent", "dry_run", by);
        }
        if let Some(l) = self.log_level {
            cfg.agent.log_level = l;
            let by = Origin::Option("--log-level");
            cfg.origins.set("agent", "log_level", by);
        }
        Ok(cfg)
    }
}

/// The features that live in `features/`, each in its slot, in cycle order.
#[derive(Default)]
pub struct Features {
    pub top: Slot<Top>,
    pub relief: Slot<Relief>,
    pub reaper: Slot<Reaper>,
    pub cleanup: Slot<Cleanup>,
    pub deleted: Slot<DeletedOpen>,
    pub audit: Slot<Audit>,
    pub tasks: Slot<Tasks>,
    pub alerts: Slot<Alerts>,
    pub metrics_file: Slot<MetricsFile>,
    pub status_file: Slot<StatusFile>,
}

impl Features {
    /// Every feature, for what applies to all: reload, save, poll, tend, stop,
    /// status.
    pub fn all(&mut self) -> [&mut Slot<dyn Feature>; 10] {
        [
            &mut self.top,
            &mut self.relief,
            &mut self.reaper,
            &mut self.cleanup,
            &mut self.deleted,
            &mut self.audit,
            &mut self.tasks,
            &mut self.alerts,
            &mut self.metrics_file,
            &mut self.status_file,
        ]
    }
}

impl<F: Default> Default for Slot<F> {
    fn default() -> Self {
        Slot::new(F::default())
    }
}

pub struct Agent {
    opts: Options,
    cfg: Config,
    log: Logger,
    sampler: Sampler,
    /// The agent's own memory cgroup (none found under `mem_scope = host`).
    cgroup: Cgroup,
    /// The watched mounts, probed so that a hung one cannot stall the cycle.
    mounts: Mounts,
    /// The cycle's process scan, shared by the steps that need one.
    scan: CycleScan,
    /// This cycle's sample and everything derived from it.
    reading: Reading,
    metrics: Vec<Metric>,
    users: Users,
    /// state_dir, and its lock: holding it, the agent may act and write state.
    store: Store,
    /// Real, or only recorded in a dry run.
    effects: Box<dyn Effects>,
    /// What one feature tells another within a cycle.
    findings: Findings,
    features: Features,
    stats: Stats,
    once: bool,
    actions_off: Option<String>,
    /// Why the capabilities were dropped at start, for the start event.
    caps_dropped: Option<String>,
    /// The hysteresis lines last written, so the service writes state only on change.
    written: String,
    /// When the service last wrote the forecast readings (wall ns).
    forecast_saved_ns: u64,
    scratch: String,
    /// Last error text per sample source (empty: fine), so a failing source is
    /// logged once, not every cycle.
    source_errors: Vec<String>,
    buf: Vec<u8>,
}

impl Agent {
    /// Builds the agent from a valid config. Opening sinks and files never fails
    /// here: what does not work is reported in the start event.
    pub fn new(opts: Options, cfg: Config, once: bool) -> Agent {
        // Before anything the config names is opened: until the config is known
        // to be root's, what it names is opened with the caller's rights only.
        let caps_dropped = guard_capabilities(&cfg);
        let log = Logger::new(&cfg.log_target());
        let mut agent = Agent {
            sampler: Sampler::new(&cfg.paths.proc),
            cgroup: Cgroup::none(),
            mounts: Mounts::default(),
            scan: CycleScan::new(&cfg.paths.proc),
            reading: Reading::new(&cfg.disk.mounts),
            metrics: judge::metrics_for(&cfg),
            users: Users::default(),
            store: Store::new(&cfg.agent.state_dir, cfg.agent.dry_run),
            effects: effects::for_config(cfg.agent.dry_run),
            findings: Findings::default(),
            features: Features::default(),
            stats: Stats::default(),
            once,
            actions_off: None,
            caps_dropped,
            written: String::new(),
            forecast_saved_ns: 0,
            scratch: String::with_capacity(4096),
            source_errors: Vec::new(),
            buf: Vec::with_capacity(4096),
            opts,
            cfg,
            log,
        };
        agent.reading.forecast_window_ns = agent.cfg.disk.forecast_window.as_nanos() as u64;
        agent.configure_cgroup();
        agent.load_users();
        agent.features.relief.f.arm(&agent.cfg, once);
        for f in agent.features.all() {
            f.reopen_logs(&agent.cfg);
        }
        agent.configure_mounts();
        agent
    }

    /// What a feature's step may use, beside the features themselves.
    fn split<'a>(&'a mut self, signals: Option<&'a Signals>) -> (&'a mut Features, Cx<'a>) {
        let cx = Cx {
            cfg: &self.cfg,
            log: &mut self.log,
            reading: &self.reading,
            metrics: &self.metrics,
            scan: &mut self.scan,
            mounts: &mut self.mounts,
            users: &self.users,
            store: &mut self.store,
            effects: &mut *self.effects,
            findings: &mut self.findings,
            stats: self.stats,
            once: self.once,
            signals,
        };
        (&mut self.features, cx)
    }

    /// Runs `f` on every feature, each with its `Cx`.
    fn each_feature(
        &mut self,
        signals: Option<&Signals>,
        mut f: impl FnMut(&mut Slot<dyn Feature>, &mut Cx),
    ) {
        let (features, mut cx) = self.split(signals);
        for slot in features.all() {
            f(slot, &mut cx);
        }
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

    /// Finds the agent's memory cgroup (unless `mem_scope = host`); under
    /// `mem_scope = cgroup`, one line when there is none.
    fn configure_cgroup(&mut self) {
        let cfg = &self.cfg;
        self.reading.mem_setting = cfg.thresholds.mem_scope;
        self.cgroup = match cfg.thresholds.mem_scope {
            MemScope::Host => Cgroup::none(),
            _ => Cgroup::new(&cfg.paths.proc, &cfg.paths.cgroup),
        };
        self.reading.cgroup = Err(cgroup::not_found(match &self.cgroup.found {
            Ok(_) => "not read yet",
            Err(why) => why,
        }));
        if let (MemScope::Cgroup, Err(why)) = (cfg.thresholds.mem_scope, &self.cgroup.found) {
            self.log
                .error(Level::Warn, "cgroup", why)
                .str("effect", "mem is unknown")
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
        self.each_feature(None, |f, cx| f.users_loaded(cx));
    }

    /// Takes the state_dir lock (then removes the temporary files a crash left
    /// there). `Err` is a reason the service cannot start; for `--once` every
    /// problem only turns actions off.
    pub fn take_lock(&mut self) -> Result<(), String> {
        let dir = self.cfg.agent.state_dir.clone();
        let pid = (!self.once).then(sys::getpid);
        match self.store.lock(&dir, pid) {
            Ok(()) => {
                self.store.remove_stale_temps(&mut self.log);
                Ok(())
            }
            Err(e) => {
                let why = e.to_string();
                self.actions_off = Some(why.clone());
                Err(why)
            }
        }
    }

    /// Holding the lock: the agent may act and write state.
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
        let interval = crate::config::value::fmt_duration(self.cfg.agent.interval);
        let caps_now = sys::effective_capabilities().unwrap_or(0);
        let limited = policy::privilege_limits(sys::getuid(), caps_now, &self.cfg).join("; ");
        let limited = (!limited.is_empty()).then_some(limited);
        let actions = if self.actor() { "on" } else { "off" };
        let pidfd = (self.cfg.reaper.enabled && !self.cfg.reap.is_empty()).then(|| {
            if reaper::pidfd_supported() {
                "yes"
            } else {
                "no (start-time check, then kill)"
            }
        });
        let relief = self.features.relief.f.watching();
        self.log
            .event(level, "start")
            .str("version", env!("CARGO_PKG_VERSION"))
            .str("config", &cfg_name)
            .str("mode", if self.once { "once" } else { "service" })
            .i64("pid", sys::getpid() as i64)
            .u64("uid", sys::getuid() as u64)
            .str("interval", &interval)
            .str("dry_run", if self.cfg.agent.dry_run { "yes" } else { "no" })
            .str("syslog", &syslog)
            .str("pressure", &pressure)
            .opt("cgroup", self.cgroup.found.as_deref().ok())
            .str("caps", &caps)
            .opt("caps_dropped", self.caps_dropped.as_deref())
            .opt("limited", limited.as_deref())
            .opt("pidfd", pidfd)
            .opt("relief", relief.map(|r| r.0))
            .opt("relief_no_trigger", relief.and_then(|r| r.1))
            .u64("users", self.users.len() as u64)
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
            .and_then(|c| sys::read_path(&c, &mut self.buf).ok())
            .and_then(|()| parse_pid_status(&self.buf).ok());
        let Some(s) = status else {
            return format!("unknown (cannot read {})", path.display());
        };
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

/// Narrows the effective capabilities of an agent that is not root to what the
/// configured features use, once the config is known to be root's: the main file,
/// the drop-in directory and each drop-in (see `policy::may_keep_capabilities`,
/// judged on the descriptors they were read from); otherwise drops them all, and
/// returns why. Until then (see `cli::main` and `Config::load`) none is in effect.
fn guard_capabilities(cfg: &Config) -> Option<String> {
    let uid = sys::getuid();
    let verdict = cfg
        .sources()
        .into_iter()
        .try_for_each(|(path, owner)| policy::may_keep_capabilities(uid, Some(path), owner));
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
