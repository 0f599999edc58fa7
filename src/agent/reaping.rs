//! The reaper's side of the cycle: decide with `reaper::decide`,
//! signal through a pidfd, escalate SIGTERM to SIGKILL after `grace`, and keep the
//! state clocks and pending signals in state_dir between `--once` runs.
//!
//! Nothing is signalled unless `[paths] proc` is proven, this cycle, to be the
//! agent's own procfs (`ownproc`); otherwise every decision is logged as
//! `action = log` would log it, with `log_only=` saying why, and the refusal itself
//! is logged once. Each `reap` line follows a signal that was sent; a pid that now
//! names another process gets `reap_failed reason="pid reused"` instead.

use super::*;
use crate::effects::NotSent;
use crate::ownproc::{self, OwnProc};

/// `effect=` of the line that says `[paths] proc` is not the agent's own procfs.
const REFUSED_EFFECT: &str = "signals nothing, only logs what the rules select";
/// `log_only=` of each decision logged instead of carried out, for that reason.
const LOG_ONLY: &str = "[paths] proc is not the agent's own procfs";

impl Agent {
    /// Escalates pending SIGTERMs, then acts on what the rules select.
    pub(super) fn reap(&mut self) {
        if !self.actor() || !self.cfg.reaper.enabled || self.cfg.reap.is_empty() {
            return;
        }
        if let Err(e) = self.scan.this_cycle(self.once) {
            self.log.error(Level::Error, "scan", e).emit();
            return;
        }
        let now = sys::realtime_ns();
        if self.once {
            self.load_reaper();
        }
        let own = self.own_proc();
        self.escalate(now, own.as_ref());
        self.reaper_clock.observe(self.scan.scanner.procs(), now);
        let procs = self.scan.scanner.procs();
        self.settled.retain(|k| {
            procs
                .binary_search_by_key(&k.0, |p| p.pid)
                .is_ok_and(|i| procs[i].start == k.1)
        });
        let facts = reaper::Facts {
            now_ns: now,
            btime: self.reading.btime.unwrap_or(0),
            ticks_per_sec: self.reading.ticks_per_sec,
            self_pid: sys::getpid(),
        };
        let plan = reaper::Plan {
            cfg: &self.cfg.reaper,
            rules: &self.cfg.reap,
            facts,
            clock: &self.reaper_clock,
            users: &self.users,
        };
        let scanner = &self.scan.scanner;
        let Some(dir) = scanner.dir() else {
            return;
        };
        let mut details = reaper::ProcDetails::new(dir);
        let decisions = plan.run(scanner.procs(), |p| scanner.name(p), &mut details);
        for d in decisions {
            self.act(&d, now, own.as_ref());
        }
    }

    /// The proof that the directory the scan read is the agent's own procfs, this
    /// cycle. Without it the reaper only logs, and says why once: after a start or
    /// a reload, and when the reason changes.
    fn own_proc(&mut self) -> Option<OwnProc> {
        let dir = self.scan.scanner.dir()?;
        match ownproc::prove(dir, sys::getpid(), &mut self.buf) {
            Ok(own) => {
                self.proc_refused = None;
                Some(own)
            }
            Err(why) => {
                let why = why.to_string();
                if self.proc_refused.as_deref() != Some(why.as_str()) {
                    self.log
                        .error(Level::Warn, "reaper", &why)
                        .path("path", &self.cfg.paths.proc)
                        .str("effect", REFUSED_EFFECT)
                        .emit();
                    self.proc_refused = Some(why);
                }
                None
            }
        }
    }

    /// Carries out one decision (unless dry-run, already done, or `own` is missing:
    /// then it is only logged), and logs what was done.
    pub(super) fn act(&mut self, d: &reaper::Decision, now: u64, own: Option<&OwnProc>) {
        let key = (d.pid, d.start);
        if self.settled.contains(&key) || self.pending.iter().any(|p| (p.pid, p.start) == key) {
            return;
        }
        let dry_run = self.cfg.agent.dry_run;
        let Some(own) = own else {
            // A pid read there may name any process here.
            self.log_reap(d, "log", None, dry_run, Some(LOG_ONLY));
            self.settled.push(key);
            return;
        };
        let (target, target_start, sig) = match d.act {
            reaper::Act::Term => (d.pid, d.start, Some(libc::SIGTERM)),
            reaper::Act::Kill => (d.pid, d.start, Some(libc::SIGKILL)),
            reaper::Act::Log => (d.pid, d.start, None),
            reaper::Act::SigchldParent | reaper::Act::KillParent => {
                // Only on account of a zombie that is still one now.
                if !reaper::still_zombie(own, d.pid, d.start) {
                    return;
                }
                let procs = self.scan.scanner.procs();
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
        // A zombie's parent is named as the target.
        let shown = (target != d.pid).then_some(target);
        let (Some(sig), false) = (sig, dry_run) else {
            self.log_reap(d, d.act.name(), shown, dry_run, None);
            self.settled.push(key);
            return;
        };
        match reaper::signal(own, target, target_start, sig) {
            Ok(pidfd) => {
                self.log_reap(d, d.act.name(), shown, false, None);
                if d.act != reaper::Act::Term {
                    self.settled.push(key);
                    return;
                }
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
            Err(NotSent::Gone) => {}
            Err(why) => {
                self.settled.push(key);
                self.log_not_sent(d.pid, d.rule, d.act.name(), shown, &why);
            }
        }
    }

    /// SIGKILL for every SIGTERM that `grace` did not end. A SIGTERM stamped later
    /// than `now` (the wall clock was set back) waits a whole `grace` from now.
    pub(super) fn escalate(&mut self, now: u64, own: Option<&OwnProc>) {
        let grace = self.cfg.reaper.grace.as_nanos() as u64;
        let mut still = Vec::new();
        for mut p in std::mem::take(&mut self.pending) {
            if !p.alive(own) {
                // Done with: it exited (if its parent leaves a zombie, that is the
                // parent's to reap, not a new process to act on).
                self.settled.push((p.pid, p.start));
                continue;
            }
            p.sent_ns = p.sent_ns.min(now);
            if now - p.sent_ns < grace {
                still.push(p);
                continue;
            }
            self.settled.push((p.pid, p.start));
            match p.kill(own) {
                Ok(()) => self.log_escalated(&p, grace),
                Err(NotSent::Gone) => {}
                Err(why) => self.log_not_sent(p.pid, p.rule, "kill", None, &why),
            }
        }
        self.pending = still;
    }

    fn log_escalated(&mut self, p: &reaper::Pending, grace: u64) {
        let rule = self
            .cfg
            .reap
            .get(p.rule)
            .map_or("?", |r| r.name.as_str())
            .to_string();
        let after = crate::timefmt::fmt_age(grace / 1_000_000_000);
        let name = self.proc_name(p.pid);
        self.log
            .event(Level::Warn, "reap")
            .i64("pid", p.pid as i64)
            .bytes("name", &name)
            .str("action", "kill")
            .str("rule", &rule)
            .str("reason", &format!("still running {after} after SIGTERM"))
            .emit();
    }

    /// This boot, for the reaper's state: `[paths] proc`'s
    /// `sys/kernel/random/boot_id`, else the boot time of its `stat`.
    fn boot_id(&self) -> Option<String> {
        let path = self.cfg.paths.proc.join("sys/kernel/random/boot_id");
        let mut id = Vec::new();
        let id = crate::files::read_file(&path, true, 64, &mut id)
            .map(|_| id)
            .ok();
        reaper::boot_token(id.as_deref(), self.reading.btime)
    }

    /// `--once`: the state clocks and pending SIGTERMs of the previous run, when it
    /// was in this boot (pids and start times begin anew with each).
    pub(super) fn load_reaper(&mut self) {
        let loaded = self
            .store
            .load(&state::REAPER, &mut self.log, state::parse_reaper);
        let Some(r) = loaded else {
            return;
        };
        let r = r.of_boot(self.boot_id().as_deref());
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
            boot: self.boot_id(),
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
        self.store.save(&state::REAPER, &mut self.log, |out| {
            state::format_reaper(out, &r)
        });
    }

    pub(super) fn proc_name(&self, pid: i32) -> Vec<u8> {
        let procs = self.scan.scanner.procs();
        procs
            .binary_search_by_key(&pid, |p| p.pid)
            .map(|i| self.scan.scanner.name(&procs[i]).to_vec())
            .unwrap_or_default()
    }

    /// `reap`: a decision carried out (or, with `action = log`, `dry_run` or
    /// `log_only`, only reported).
    pub(super) fn log_reap(
        &mut self,
        d: &reaper::Decision,
        action: &str,
        target: Option<i32>,
        dry_run: bool,
        log_only: Option<&str>,
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
        let age = crate::timefmt::fmt_age(d.age_s);
        let level = if action == reaper::Act::Log.name() {
            Level::Info
        } else {
            Level::Warn
        };
        let e = self
            .log
            .event(level, "reap")
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
        e.opt("dry_run", dry_run.then_some("yes"))
            .opt("log_only", log_only)
            .emit();
    }

    /// `reap_failed`: a signal that was not sent, and why: the kernel's errno, or
    /// `reason="pid reused"` when the pid names another process by now.
    fn log_not_sent(
        &mut self,
        pid: i32,
        rule: usize,
        action: &str,
        target: Option<i32>,
        why: &NotSent,
    ) {
        let name = self.proc_name(pid);
        let rule = self
            .cfg
            .reap
            .get(rule)
            .map_or("?", |r| r.name.as_str())
            .to_string();
        let level = match why {
            NotSent::Reused => Level::Warn,
            _ => Level::Error,
        };
        let e = self
            .log
            .event(level, "reap_failed")
            .i64("pid", pid as i64)
            .bytes("name", &name)
            .str("action", action)
            .str("rule", &rule);
        let e = match target {
            Some(t) => e.i64("target", t as i64),
            None => e,
        };
        match why {
            NotSent::Failed(err) => e
                .str("errno", &crate::error::errno_name(err))
                .str("error", &crate::error::errno_text(err))
                .emit(),
            _ => e.str("reason", "pid reused").emit(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;

    /// A private temp dir, removed on drop.
    struct Tmp(PathBuf);

    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let p = std::env::temp_dir().join(format!("sa-unit-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).expect("create temp dir");
            Tmp(p)
        }

        fn p(&self, rel: &str) -> String {
            self.0.join(rel).display().to_string()
        }
    }

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// An agent on the real /proc whose log and state stay in `t`, with one rule
    /// `v` (the decisions below are made by hand).
    fn agent(t: &Tmp) -> Agent {
        let text = format!(
            "[agent]\nlog_file = {}\nsyslog = no\nstate_dir = {}\n\
             [disk]\nmounts =\n[audit]\nbash_history = no\n\
             [reaper]\nenabled = yes\n[reap.v]\nmatch = sleep\nuser = root\naction = term\n",
            t.p("agent.log"),
            t.p("state"),
        );
        let cfg = Config::parse(Path::new("unit.ini"), &text).expect("valid config");
        let opts = Options {
            config: t.0.join("unit.ini"),
            explicit: true,
            dry_run: false,
            log_level: None,
        };
        Agent::new(opts, cfg, false)
    }

    /// The `reap` and `reap_failed` lines of the log, without `ts=`.
    fn reap_lines(t: &Tmp) -> Vec<String> {
        std::fs::read_to_string(t.0.join("agent.log"))
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains(" event=reap"))
            .map(|l| l.split_once(' ').map_or("", |(_, r)| r).to_string())
            .collect()
    }

    #[test]
    fn a_pid_whose_start_time_changed_is_not_signalled_and_says_so() {
        // The decision names this test's own child with a start time one tick off,
        // as when the pid was reused between the scan and the signal.
        let t = Tmp::new("reused");
        let mut a = agent(&t);
        let mut child = std::process::Command::new("sleep")
            .arg("100")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id() as i32;
        a.scan.scanner.scan(0).expect("scan /proc");
        let procs = a.scan.scanner.procs();
        let i = procs
            .binary_search_by_key(&pid, |p| p.pid)
            .expect("child in the scan");
        let d = reaper::Decision {
            pid,
            start: procs[i].start + 1,
            ppid: sys::getpid(),
            uid: 0,
            state: b'S',
            zombie: false,
            age_s: 0,
            rule: 0,
            act: reaper::Act::Term,
            reason: "name sleep".into(),
        };
        let own = ownproc::prove(
            a.scan.scanner.dir().expect("scanned"),
            sys::getpid(),
            &mut Vec::new(),
        )
        .expect("this process's /proc is its own");
        a.act(&d, 0, Some(&own));
        // A fatal signal sets the exit status when it is sent: had the SIGTERM gone
        // out, the child would show it rather than our SIGKILL.
        child.kill().expect("kill our child");
        let status = child.wait().expect("wait for our child");
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        assert_eq!(
            reap_lines(&t),
            vec![format!(
                "level=warn event=reap_failed pid={pid} name=sleep action=term rule=v reason=\"pid reused\""
            )]
        );
    }
}
