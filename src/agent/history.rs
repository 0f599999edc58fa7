//! The shell-history audit, the sixth step of a cycle: the audit log, the audited
//! users' history paths, and each cycle's new commands as `history` events.

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

    /// Each audited user's new commands, one `history` event each.
    pub(super) fn audit(&mut self) {
        if !self.actor() || !self.cfg.audit.bash_history {
            return;
        }
        // The host's first audit run is this process's first audit with no audit
        // state in state_dir: only then are the histories readable taken from
        // their end.
        let mut first_run = false;
        if !self.hist_loaded {
            self.hist_loaded = true;
            (self.hist, first_run) = self.load_hist();
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
            let path = Path::new(std::ffi::OsStr::from_bytes(t.path.as_bytes()));
            match audit::read_new(t, st, first_run, max, &mut self.buf) {
                Ok(news) => {
                    st.refused.clear();
                    if let Some(o) = news.overflow {
                        log_overflow(&mut self.log, &t.user.name, path, o, max);
                    }
                    let now = sys::realtime_ns();
                    if let Some(log) = &mut self.audit_log {
                        for c in news.commands {
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

    /// The audit state, and whether there was none yet (the host's first audit
    /// run). A state file that exists but cannot be read or parsed is not a first
    /// run: every history is then read from its start (at most `max_bytes`
    /// each), so a lost state may log some commands twice, but never hides any.
    pub(super) fn load_hist(&mut self) -> (Vec<audit::HistState>, bool) {
        let first_run = self.store.is_missing(&audit::KIND);
        let Some(hist) = self.store.load(&audit::KIND, &mut self.log, audit::parse) else {
            // Written at the end of this cycle, even with no user to audit, so the
            // next run is not a first run again.
            self.hist_written.clear();
            return (Vec::new(), first_run);
        };
        // What is on disk, so an unchanged state is not written again.
        audit::format(&mut self.hist_written, &hist);
        (hist, first_run)
    }

    /// Writes state_dir/audit when an offset moved (not every cycle).
    pub(super) fn save_hist(&mut self) {
        audit::format(&mut self.scratch, &self.hist);
        if self.scratch == self.hist_written {
            return;
        }
        std::mem::swap(&mut self.scratch, &mut self.hist_written);
        if !self
            .store
            .save_text(&audit::KIND, &mut self.log, &self.hist_written)
        {
            self.hist_written.clear();
        }
    }
}

/// A history that grew by more than `max_bytes` in one cycle: only its last
/// `max_bytes` were read, from their first whole line; says how much was passed over.
fn log_overflow(log: &mut Logger, user: &str, path: &Path, o: audit::Overflow, max: u64) {
    let why = format!("grew by {} bytes, more than max_bytes ({max})", o.grew);
    let effect = if o.skipped == o.grew {
        "nothing copied"
    } else {
        "copied the last lines only"
    };
    log.error(Level::Warn, "audit", why)
        .str("user", user)
        .path("path", path)
        .u64("skipped", o.skipped)
        .str("effect", effect)
        .emit();
}
