//! SPEC §4 step 6, the shell-history audit: the audit log, the audited users'
//! history paths, and each cycle's new commands as `history` events.

use super::*;

impl Agent {
    /// The audit trail's own logger while `bash_history` is on; a reload (or
    /// logrotate's SIGHUP) reopens it.
    pub(super) fn open_audit_log(&mut self) {
        let on = self.cfg.audit.bash_history;
        match (&mut self.audit_log, on) {
            (Some(log), true) => log.reopen(&Target::audit(&self.cfg)),
            _ => self.audit_log = on.then(|| Logger::new(&Target::audit(&self.cfg))),
        }
    }

    /// The audited users' history paths, and a line for each named user that
    /// passwd lacks (once per load).
    pub(super) fn load_audit_targets(&mut self) {
        if !self.cfg.audit.bash_history {
            self.audit_targets.clear();
            return;
        }
        let (targets, missing) = audit::targets(&self.cfg.audit, &self.users);
        self.audit_targets = targets;
        for name in missing {
            let why = format!("user {name} is not in {}", self.cfg.paths.passwd.display());
            self.log.error(Level::Warn, "audit", why).emit();
        }
    }

    /// SPEC §4 step 6: each audited user's new commands, one `history` event each.
    pub(super) fn audit(&mut self) {
        if !self.hist_loaded {
            self.hist_loaded = true;
            self.hist = self.load_hist();
        }
        let max = self.cfg.audit.max_bytes;
        for i in 0..self.audit_targets.len() {
            let t = &self.audit_targets[i];
            let st = match self.hist.iter().position(|h| h.user == t.user.name) {
                Some(j) => j,
                None => {
                    self.hist.push(audit::HistState {
                        user: t.user.name.clone(),
                        ..Default::default()
                    });
                    self.hist.len() - 1
                }
            };
            let st = &mut self.hist[st];
            match audit::read_new(t, st, max, &mut self.buf) {
                Ok(cmds) => {
                    st.refused.clear();
                    let now = sys::realtime_ns();
                    if let Some(log) = &mut self.audit_log {
                        for c in cmds {
                            let ts = c.ts.map_or(now, |s| s.saturating_mul(1_000_000_000));
                            log.event_at(Level::Info, "history", ts)
                                .str("user", &t.user.name)
                                .u64("uid", t.user.uid as u64)
                                .bytes("cmd", &c.cmd)
                                .emit();
                        }
                    }
                }
                // Reported once while it lasts, across cron runs too (state_dir).
                Err(why) if why == st.refused => {}
                Err(why) => {
                    let path = Path::new(std::ffi::OsStr::from_bytes(t.path.as_bytes()));
                    self.log
                        .error(Level::Warn, "audit", &why)
                        .str("user", &t.user.name)
                        .path("path", path)
                        .str("effect", "nothing copied")
                        .emit();
                    st.refused = why;
                }
            }
        }
        self.save_hist();
    }

    pub(super) fn hist_path(&self) -> PathBuf {
        self.cfg.agent.state_dir.join("audit")
    }

    pub(super) fn load_hist(&mut self) -> Vec<audit::HistState> {
        let path = self.hist_path();
        let hist = self
            .read_state(&path, state::max::AUDIT, audit::parse)
            .unwrap_or_default();
        // What is on disk, so an unchanged state is not written again.
        audit::format(&mut self.hist_written, &hist);
        hist
    }

    /// Writes state_dir/audit when an offset moved (not every cycle).
    pub(super) fn save_hist(&mut self) {
        audit::format(&mut self.scratch, &self.hist);
        if self.scratch == self.hist_written {
            return;
        }
        std::mem::swap(&mut self.scratch, &mut self.hist_written);
        let path = self.hist_path();
        if !Self::write_state(
            &mut self.state_files,
            &path,
            &mut self.log,
            &self.hist_written,
        ) {
            self.hist_written.clear();
        }
    }
}
