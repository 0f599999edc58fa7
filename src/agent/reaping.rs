//! SPEC §4 step 4, the reaper's side of the cycle: decide with `reaper::decide`,
//! signal through a pidfd, escalate SIGTERM to SIGKILL after `grace`, and keep the
//! state clocks and pending signals in state_dir between `--once` runs.

use super::*;

impl Agent {
    /// SPEC §4 step 4: escalate pending SIGTERMs, then act on what the rules select.
    pub(super) fn reap(&mut self) {
        if self.scanned_cycle != Some(self.cycles) {
            let clock = if self.once {
                sys::realtime_ns()
            } else {
                sys::monotonic_ns()
            };
            if let Err(e) = self.scanner.scan(clock) {
                self.log.error(Level::Error, "scan", e).emit();
                return;
            }
            self.scanned_cycle = Some(self.cycles);
        }
        let now = sys::realtime_ns();
        if self.once {
            self.load_reaper();
        }
        self.escalate(now);
        self.reaper_clock.observe(self.scanner.procs(), now);
        let procs = self.scanner.procs();
        self.settled.retain(|k| {
            procs
                .binary_search_by_key(&k.0, |p| p.pid)
                .is_ok_and(|i| procs[i].start == k.1)
        });
        let facts = reaper::Facts {
            now_ns: now,
            btime: self.btime.unwrap_or(0),
            ticks_per_sec: self.ticks_per_sec,
            self_pid: sys::getpid(),
        };
        let plan = reaper::Plan {
            cfg: &self.cfg.reaper,
            rules: &self.cfg.reap,
            facts,
            clock: &self.reaper_clock,
            users: &self.users,
        };
        let mut details = reaper::ProcDetails::new(&self.cfg.paths.proc);
        let scanner = &self.scanner;
        let decisions = plan.run(scanner.procs(), |p| scanner.name(p), &mut details);
        for d in decisions {
            self.act(&d, now);
        }
    }

    /// Logs one decision, then carries it out (unless dry-run, or already done).
    pub(super) fn act(&mut self, d: &reaper::Decision, now: u64) {
        let key = (d.pid, d.start);
        if self.settled.contains(&key) || self.pending.iter().any(|p| (p.pid, p.start) == key) {
            return;
        }
        let (target, target_start, sig) = match d.act {
            reaper::Act::Term => (d.pid, d.start, Some(libc::SIGTERM)),
            reaper::Act::Kill => (d.pid, d.start, Some(libc::SIGKILL)),
            reaper::Act::Log => (d.pid, d.start, None),
            reaper::Act::SigchldParent | reaper::Act::KillParent => {
                // Only on account of a zombie that is still one now.
                if !reaper::still_zombie(&self.cfg.paths.proc, d.pid, d.start) {
                    return;
                }
                let procs = self.scanner.procs();
                let Ok(i) = procs.binary_search_by_key(&d.ppid, |p| p.pid) else {
                    return;
                };
                let sig = if d.act == reaper::Act::KillParent {
                    libc::SIGKILL
                } else {
                    libc::SIGCHLD
                };
                (d.ppid, procs[i].start, Some(sig))
            }
        };
        let dry_run = self.cfg.agent.dry_run;
        self.log_reap(
            "reap",
            d,
            d.act.name(),
            (target != d.pid).then_some(target),
            dry_run,
        );
        let (Some(sig), false) = (sig, dry_run) else {
            self.settled.push(key);
            return;
        };
        match reaper::signal(&self.cfg.paths.proc, target, target_start, sig) {
            Ok(pidfd) if d.act == reaper::Act::Term => {
                if matches!(d.state, b'T' | b't')
                    && let Some(fd) = &pidfd
                {
                    let _ = reaper::resume(fd);
                }
                self.pending.push(reaper::Pending {
                    pid: d.pid,
                    start: d.start,
                    rule: d.rule,
                    sent_ns: now,
                    pidfd,
                });
            }
            Ok(_) => self.settled.push(key),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => {
                self.settled.push(key);
                self.log_reap_failed(d.pid, d.rule, d.act.name(), &e);
            }
        }
    }

    /// SIGKILL for every SIGTERM that `grace` did not end.
    pub(super) fn escalate(&mut self, now: u64) {
        let grace = self.cfg.reaper.grace.as_nanos() as u64;
        let proc_root = self.cfg.paths.proc.clone();
        let mut still = Vec::new();
        for p in std::mem::take(&mut self.pending) {
            if !p.alive(&proc_root) {
                // Done with: it exited (if its parent leaves a zombie, that is the
                // parent's to reap, not a new process to act on).
                self.settled.push((p.pid, p.start));
                continue;
            }
            if now.saturating_sub(p.sent_ns) < grace {
                still.push(p);
                continue;
            }
            let rule = self
                .cfg
                .reap
                .get(p.rule)
                .map_or("?", |r| r.name.as_str())
                .to_string();
            let after = crate::cleanup::fmt_age(grace / 1_000_000_000);
            let name = self.proc_name(p.pid);
            self.log
                .event(Level::Warn, "reap")
                .i64("pid", p.pid as i64)
                .bytes("name", &name)
                .str("action", "kill")
                .str("rule", &rule)
                .str("reason", &format!("still running {after} after SIGTERM"))
                .emit();
            if let Err(e) = p.kill(&proc_root)
                && e.raw_os_error() != Some(libc::ESRCH)
            {
                self.log_reap_failed(p.pid, p.rule, "kill", &e);
            }
            self.settled.push((p.pid, p.start));
        }
        self.pending = still;
    }

    pub(super) fn reaper_path(&self) -> PathBuf {
        self.state_path("reaper")
    }

    /// `--once`: the state clocks and pending SIGTERMs of the previous run.
    pub(super) fn load_reaper(&mut self) {
        let path = self.reaper_path();
        let cap = state::max::reaper(state::pid_max(&self.cfg.paths.proc));
        let Some(r) = self.read_state(&path, cap, state::parse_reaper) else {
            return;
        };
        self.reaper_clock.since = r
            .states
            .iter()
            .map(|&(pid, start, st, since)| ((pid, start), (st, since)))
            .collect();
        self.settled = r.settled;
        for (pid, start, rule, sent_ns) in r.pending {
            if let Some(rule) = self.cfg.reap.iter().position(|x| x.name == rule) {
                self.pending.push(reaper::Pending {
                    pid,
                    start,
                    rule,
                    sent_ns,
                    pidfd: None,
                });
            }
        }
    }

    /// `--once`: what the next run needs to go on counting and escalating.
    pub(super) fn save_reaper(&mut self) {
        let on = self.cfg.reaper.enabled && !self.cfg.reap.is_empty() && self.actor();
        if !on {
            return;
        }
        let r = state::ReaperState {
            states: self
                .reaper_clock
                .since
                .iter()
                .map(|(&(pid, start), &(st, since))| (pid, start, st, since))
                .collect(),
            pending: self
                .pending
                .iter()
                .filter_map(|p| {
                    self.cfg
                        .reap
                        .get(p.rule)
                        .map(|r| (p.pid, p.start, r.name.clone(), p.sent_ns))
                })
                .collect(),
            settled: self.settled.clone(),
        };
        state::format_reaper(&mut self.scratch, &r);
        let path = self.reaper_path();
        Self::write_state(&mut self.state_files, &path, &mut self.log, &self.scratch);
    }

    pub(super) fn proc_name(&self, pid: i32) -> Vec<u8> {
        let procs = self.scanner.procs();
        procs
            .binary_search_by_key(&pid, |p| p.pid)
            .map(|i| self.scanner.name(&procs[i]).to_vec())
            .unwrap_or_default()
    }

    pub(super) fn log_reap(
        &mut self,
        event: &str,
        d: &reaper::Decision,
        action: &str,
        target: Option<i32>,
        dry_run: bool,
    ) {
        let name = self.proc_name(d.pid);
        let user = self
            .users
            .name(d.uid)
            .map(str::to_owned)
            .unwrap_or_else(|| d.uid.to_string());
        // A live group whose main thread exited shows `Z` without being a zombie.
        let state = match crate::config::ProcState::of_letter(d.state) {
            Some(crate::config::ProcState::Zombie) if !d.zombie => "other",
            Some(s) => s.name(),
            None => "other",
        };
        let rule = self
            .cfg
            .reap
            .get(d.rule)
            .map_or("?", |r| r.name.as_str())
            .to_string();
        let age = crate::cleanup::fmt_age(d.age_s);
        let level = if d.act == reaper::Act::Log {
            Level::Info
        } else {
            Level::Warn
        };
        let e = self
            .log
            .event(level, event)
            .i64("pid", d.pid as i64)
            .bytes("name", &name)
            .str("user", &user)
            .str("state", state)
            .str("age", &age)
            .str("action", action)
            .str("rule", &rule)
            .str("reason", &d.reason);
        let e = match target {
            Some(t) => e.i64("target", t as i64),
            None => e,
        };
        e.opt("dry_run", dry_run.then_some("yes")).emit();
    }

    pub(super) fn log_reap_failed(
        &mut self,
        pid: i32,
        rule: usize,
        action: &str,
        e: &std::io::Error,
    ) {
        let name = self.proc_name(pid);
        let rule = self
            .cfg
            .reap
            .get(rule)
            .map_or("?", |r| r.name.as_str())
            .to_string();
        self.log
            .event(Level::Error, "reap_failed")
            .i64("pid", pid as i64)
            .bytes("name", &name)
            .str("action", action)
            .str("rule", &rule)
            .str("errno", &crate::error::errno_name(e))
            .str("error", &crate::error::errno_text(e))
            .emit();
    }
}
