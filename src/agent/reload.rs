//! SIGHUP: a valid file replaces the config and says what changed; an invalid one
//! is reported and the agent goes on with the old one. Log files are reopened in
//! both cases (logrotate relies on it).

use super::{Agent, guard_capabilities};
use crate::config::{Config, ConfigError};
use crate::effects;
use crate::judge;
use crate::log::Level;
use crate::sample::Sampler;
use crate::scan::CycleScan;
use crate::sys;

impl Agent {
    pub(super) fn reload(&mut self) {
        match self.opts.load() {
            Ok(new) => self.accept(new),
            Err(errors) => self.refuse(&errors),
        }
    }

    fn accept(&mut self, new: Config) {
        let changed = new.changed_keys(&self.cfg);
        // Before the new config's files are opened (see `Agent::new`).
        let dropped = guard_capabilities(&new);
        if new.agent.state_dir != self.cfg.agent.state_dir
            && let Err(why) = self.relock(&new)
        {
            // The old config's capabilities again (unless they are gone).
            guard_capabilities(&self.cfg);
            self.reopen_logs();
            self.log
                .event(Level::Error, "config_error")
                .str("key", "agent.state_dir")
                .str("error", &why)
                .str("effect", "kept the old configuration")
                .emit();
            return;
        }
        for f in self.features.all() {
            f.reload(&self.cfg, &new);
        }
        let old = std::mem::replace(&mut self.cfg, new);
        self.reopen_logs();
        if let Some(why) = dropped {
            self.log
                .error(Level::Warn, "capabilities", &why)
                .str("effect", "dropped all capabilities")
                .emit();
        }
        self.reconfigure(&old);
        let changed = if changed.is_empty() {
            "none".to_string()
        } else {
            changed.join(" ")
        };
        let name = self.opts.config.display().to_string();
        self.log
            .event(Level::Info, "reload")
            .str("config", &name)
            .str("changed", &changed)
            .emit();
    }

    /// What the shared parts take from the new config (now `self.cfg`).
    fn reconfigure(&mut self, old: &Config) {
        let cfg = &self.cfg;
        self.store.set_dry_run(cfg.agent.dry_run);
        if old.agent.dry_run != cfg.agent.dry_run {
            self.effects = effects::for_config(cfg.agent.dry_run);
        }
        if old.paths.proc != cfg.paths.proc {
            self.sampler = Sampler::new(&cfg.paths.proc);
            self.scan = CycleScan::new(&cfg.paths.proc);
        }
        self.configure_mounts();
        let mut metrics = judge::metrics_for(&self.cfg);
        judge::carry_over(&self.metrics, &mut metrics);
        self.metrics = metrics;
        self.reading.watch(&self.cfg.disk.mounts);
        self.reading.forecast_window_ns = self.cfg.disk.forecast_window.as_nanos() as u64;
        self.configure_cgroup();
        self.load_users();
    }

    fn refuse(&mut self, errors: &[ConfigError]) {
        self.reopen_logs();
        for e in errors {
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

    fn reopen_logs(&mut self) {
        self.log.reopen(&self.cfg.log_target());
        for f in self.features.all() {
            f.reopen_logs(&self.cfg);
        }
    }

    /// The lock in the new config's state_dir (the old one is let go).
    fn relock(&mut self, new: &Config) -> Result<(), String> {
        let dir = &new.agent.state_dir;
        self.store
            .lock(dir, Some(sys::getpid()))
            .map_err(|e| e.to_string())?;
        self.written.clear();
        Ok(())
    }
}
