//! The process reaper (`[reaper]`, `[reap.NAME]`): stop stale or hung processes
//! the rules name, and never anything else.
//!
//! Each cycle it escalates the SIGTERMs whose `grace` ran out, notes how long
//! each process has been in its state, asks `plan` (pure) what the rules select,
//! never what `guard` spares, and carries each decision out through `cx.effects`,
//! which signals a process named by its pid and start time only after reading the
//! start time again through the agent's own procfs, with a pidfd holding the pid
//! meanwhile (`effects::Target`): a reused pid is never hit. A SIGTERM becomes a
//! SIGKILL after `grace` across cycles (the pidfd kept meanwhile), never by
//! sleeping in the loop.
//!
//! Nothing is signalled unless `[paths] proc` is proven, this cycle, to be the
//! agent's own procfs (`ownproc`), since the pids decided on are signalled in the
//! agent's own namespace; otherwise every decision is logged as `action = log`
//! would log it, with `log_only=` saying why, and the refusal itself is logged
//! once. Each `reap` line follows a signal that was sent (or, in a dry run,
//! decided); a pid that now names another process gets `reap_failed reason="pid
//! reused"` instead.
//!
//! The service keeps its clocks, pending SIGTERMs and settled processes in
//! memory; a `--once` run keeps them in `state_dir/reaper` (`records`) for the
//! next, within one boot.

pub mod details;
mod events;
pub mod guard;

pub mod plan;
pub mod records;

use super::{Cx, Feature};
use crate::config::Config;
use crate::effects::{Effects, NotSent, Outcome, Target};
use crate::log::Level;
use crate::ownproc::OwnProc;
use crate::scan::Proc;
use crate::sys;
use plan::{Act, Decision, StateClock};
use std::os::fd::OwnedFd;

/// `effect=` of the line that says `[paths] proc` is not the agent's own procfs.
const REFUSED_EFFECT: &str = "signals nothing, only logs what the rules select";
/// `log_only=` of each decision logged instead of carried out, for that reason.
const LOG_ONLY: &str = "[paths] proc is not the agent's own procfs";

#[derive(Default)]
pub struct Reaper {
    /// Since when each process has been in its state.
    clock: StateClock,
    /// SIGTERMs waiting for `grace`.
    pending: Vec<Pending>,
    /// Processes already dealt with (killed, signalled, logged, or a signal that
    /// failed): not acted on or reported again while they exist. A SIGTERM waits
    /// in `pending` instead, for its escalation.
    settled: Vec<(i32, u64)>,
    /// Why `[paths] proc` was last refused as the agent's own procfs, so that is
    /// said once, not every cycle.
    refused: Option<String>,
    buf: Vec<u8>,
}

/// A SIGTERM sent, waiting for `grace` before SIGKILL.
pub struct Pending {
    pub pid: i32,
    pub start: u64,
    pub rule: usize,
    pub sent_ns: u64,
    pub pidfd: Option<OwnedFd>,
}

impl Feature for Reaper {
    fn name(&self) -> &'static str {
        "reaper"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        cx.cfg.reaper.enabled && !cx.cfg.reap.is_empty()
    }

    /// `--once`: the clocks, pending SIGTERMs and settled processes of the
    /// previous run, when it was in this boot.
    fn load(&mut self, cx: &mut Cx) {
        if cx.once {
            self.restore(cx);
        }
    }

    /// Escalates pending SIGTERMs, then acts on what the rules select.
    fn step(&mut self, cx: &mut Cx) {
        if let Err(e) = cx.scan.this_cycle(cx.once) {
            cx.log.error(Level::Error, "scan", e).emit();
            return;
        }
        let now = sys::realtime_ns();
        let own = self.own_proc(cx);
        self.escalate(cx, now, own.as_ref());
        let procs = cx.scan.scanner.procs();
        self.clock.observe(procs, now);
        self.settled.retain(|k| {
            procs
                .binary_search_by_key(&k.0, |p| p.pid)
                .is_ok_and(|i| procs[i].start == k.1)
        });
        for d in self.decide(cx, now) {
            self.act(cx, &d, now, own.as_ref());
        }
    }

    /// Pending SIGTERMs follow their rule by name (and are dropped with it); a
    /// refusal is reported afresh.
    fn reload(&mut self, old: &Config, new: &Config) {
        for p in &mut self.pending {
            p.rule = old
                .reap
                .get(p.rule)
                .and_then(|r| new.reap.iter().position(|n| n.name == r.name))
                .unwrap_or(usize::MAX);
        }
        self.pending.retain(|p| p.rule != usize::MAX);
        self.refused = None;
    }

    /// `pending=N [next_kill_in=S] tracked=N settled=N`: SIGTERMs waiting for
    /// `grace` and when the first runs out (seconds; the SIGKILL goes at the
    /// cycle after), processes whose time in their state is being counted, and
    /// processes already dealt with.
    fn status(&mut self, cx: &mut Cx) {
        let now = sys::realtime_ns();
        let grace = cx.cfg.reaper.grace.as_nanos() as u64;
        let next = self
            .pending
            .iter()
            .map(|p| p.sent_ns.saturating_add(grace))
            .min();
        let e = cx
            .status(self.name())
            .u64("pending", self.pending.len() as u64);
        let e = match next {
            Some(at) => e.u64(
                "next_kill_in",
                at.saturating_sub(now).div_ceil(1_000_000_000),
            ),
            None => e,
        };
        e.u64("tracked", self.clock.since.len() as u64)
            .u64("settled", self.settled.len() as u64)
            .emit();
    }

    /// `--once`: what the next run needs to go on counting and escalating.
    fn save(&mut self, cx: &mut Cx, _force: bool) {
        if !cx.once {
            return;
        }
        let saved = records::Saved {
            boot: boot_id(cx),
            states: self
                .clock
                .since
                .iter()
                .map(|(&(pid, start), &(st, since))| (pid, start, st, since))
                .collect(),
            pending: self
                .pending
                .iter()
                .filter_map(|p| {
                    let rule = cx.cfg.reap.get(p.rule)?.name.clone();
                    Some((p.pid, p.start, rule, p.sent_ns))
                })
                .collect(),
            settled: self.settled.clone(),
        };
        cx.store
            .save(&records::KIND, cx.log, |out| records::format(out, &saved));
    }
}

impl Reaper {
    fn restore(&mut self, cx: &mut Cx) {
        let Some(saved) = cx.store.load(&records::KIND, cx.log, records::parse) else {
            return;
        };
        let saved = saved.of_boot(boot_id(cx).as_deref());
        self.clock.since = saved
            .states
            .iter()
            .map(|&(pid, start, st, since)| ((pid, start), (st, since)))
            .collect();
        self.settled = saved.settled;
        for (pid, start, rule, sent_ns) in saved.pending {
            if let Some(rule) = cx.cfg.reap.iter().position(|x| x.name == rule) {
                self.pending.push(Pending {
                    pid,
                    start,
                    rule,
                    sent_ns,
                    pidfd: None,
                });
            }
        }
    }

    /// What the rules select in this cycle's scan.
    fn decide(&self, cx: &Cx, now: u64) -> Vec<Decision> {
        let facts = plan::Facts {
            now_ns: now,
            btime: cx.reading.btime.unwrap_or(0),
            ticks_per_sec: cx.reading.ticks_per_sec,
            self_pid: sys::getpid(),
        };
        let plan = plan::Plan {
            cfg: &cx.cfg.reaper,
            rules: &cx.cfg.reap,
            facts,
            clock: &self.clock,
            users: cx.users,
        };
        let scanner = &cx.scan.scanner;
        let Some(dir) = scanner.dir() else {
            return Vec::new();
        };
        let mut details = details::ProcDetails::new(dir);
        plan.run(scanner.procs(), |p| scanner.name(p), &mut details)
    }

    /// The proof that the directory the scan read is the agent's own procfs, this
    /// cycle. Without it the reaper only logs, and says why once: after a start or
    /// a reload, and when the reason changes.
    fn own_proc(&mut self, cx: &mut Cx) -> Option<OwnProc> {
        crate::features::own_proc(
            cx,
            "reaper",
            REFUSED_EFFECT,
            &mut self.refused,
            &mut self.buf,
        )
    }

    /// Carries out one decision (unless already done, or `own` is missing: then
    /// it is only logged), and logs what was done.
    fn act(&mut self, cx: &mut Cx, d: &Decision, now: u64, own: Option<&OwnProc>) {
        let key = (d.pid, d.start);
        if self.settled.contains(&key) || self.pending.iter().any(|p| (p.pid, p.start) == key) {
            return;
        }
        let Some(own) = own else {
            // A pid read there may name any process here.
            let dry_run = cx.effects.dry_run();
            events::reap(cx, d, Act::Log.name(), None, dry_run, Some(LOG_ONLY));
            self.settled.push(key);
            return;
        };
        let (pid, start, sig) = match aim(cx.scan.scanner.procs(), d, own) {
            None => return,
            Some(Aim::Report) => {
                let dry_run = cx.effects.dry_run();
                events::reap(cx, d, d.act.name(), None, dry_run, None);
                self.settled.push(key);
                return;
            }
            Some(Aim::Signal { pid, start, sig }) => (pid, start, sig),
        };
        // A zombie's parent is named as the target.
        let shown = (pid != d.pid).then_some(pid);
        match cx.effects.signal(Target::Started { own, pid, start }, sig) {
            Ok(sent) => {
                events::reap(cx, d, d.act.name(), shown, sent.dry_run(), None);
                match sent {
                    Outcome::Done(pidfd) if d.act == Act::Term => self.wait(cx, d, now, pidfd),
                    _ => self.settled.push(key),
                }
            }
            Err(NotSent::Gone) => {}
            Err(why) => {
                self.settled.push(key);
                events::not_sent(cx, d.pid, d.rule, d.act.name(), shown, &why);
            }
        }
    }

    /// A SIGTERM went out: it waits for `grace`. A stopped process holds a SIGTERM
    /// pending until it runs again, so it gets a SIGCONT to handle it (as systemd
    /// does).
    fn wait(&mut self, cx: &mut Cx, d: &Decision, now: u64, pidfd: Option<OwnedFd>) {
        if matches!(d.state, b'T' | b't')
            && let Some(fd) = &pidfd
        {
            let _ = cx.effects.signal(
                Target::Pinned {
                    pidfd: fd,
                    pid: d.pid,
                },
                libc::SIGCONT,
            );
        }
        self.pending.push(Pending {
            pid: d.pid,
            start: d.start,
            rule: d.rule,
            sent_ns: now,
            pidfd,
        });
    }

    /// SIGKILL for every SIGTERM that `grace` did not end. A SIGTERM stamped later
    /// than `now` (the wall clock was set back) waits a whole `grace` from now.
    fn escalate(&mut self, cx: &mut Cx, now: u64, own: Option<&OwnProc>) {
        let grace = cx.cfg.reaper.grace.as_nanos() as u64;
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
            match p.kill(cx.effects, own) {
                Ok(sent) => events::escalated(cx, &p, grace, sent.dry_run()),
                Err(NotSent::Gone) => {}
                Err(why) => events::not_sent(cx, p.pid, p.rule, "kill", None, &why),
            }
        }
        self.pending = still;
    }
}

/// What a decision comes to now.
enum Aim {
    /// Nothing to send (`action = log`): only reported.
    Report,
    /// `sig` to the process `pid` that started at `start`.
    Signal { pid: i32, start: u64, sig: i32 },
}

/// The process a decision signals, and with what: the process itself, or for a
/// zombie its parent, only on account of a zombie that is still one now (`None`
/// when it is not, or its parent is gone from the scan).
fn aim(procs: &[Proc], d: &Decision, own: &OwnProc) -> Option<Aim> {
    let sig = match d.act {
        Act::Log => return Some(Aim::Report),
        Act::Term => libc::SIGTERM,
        Act::Kill => libc::SIGKILL,
        Act::SigchldParent => libc::SIGCHLD,
        Act::KillParent => libc::SIGKILL,
    };
    if matches!(d.act, Act::Term | Act::Kill) {
        let (pid, start) = (d.pid, d.start);
        return Some(Aim::Signal { pid, start, sig });
    }
    if own.start_time(d.pid) != Some((d.start, true)) {
        return None;
    }
    let i = procs.binary_search_by_key(&d.ppid, |p| p.pid).ok()?;
    let (pid, start) = (d.ppid, procs[i].start);
    Some(Aim::Signal { pid, start, sig })
}

impl Pending {
    /// Still alive? Through the pidfd when there is one (POLLIN once it exited);
    /// otherwise the same start time and not a zombie, by the proven procfs. With
    /// neither, it cannot be told from a reused pid: counted as gone.
    pub fn alive(&self, own: Option<&OwnProc>) -> bool {
        match (&self.pidfd, own) {
            (Some(fd), _) => !sys::poll_readable(fd, 0).unwrap_or(true),
            (None, Some(own)) => own.start_time(self.pid) == Some((self.start, false)),
            (None, None) => false,
        }
    }

    /// SIGKILL through the kept pidfd (it can only name the process we TERMed), or
    /// after the start-time check in the proven procfs.
    pub fn kill(
        &self,
        effects: &mut dyn Effects,
        own: Option<&OwnProc>,
    ) -> Result<Outcome<Option<OwnedFd>>, NotSent> {
        let (pid, start) = (self.pid, self.start);
        let to = match (&self.pidfd, own) {
            (Some(pidfd), _) => Target::Pinned { pidfd, pid },
            (None, Some(own)) => Target::Started { own, pid, start },
            (None, None) => return Err(NotSent::Gone),
        };
        effects.signal(to, libc::SIGKILL)
    }
}

/// This boot, for the reaper's state: `[paths] proc`'s
/// `sys/kernel/random/boot_id`, else the boot time of its `stat`.
fn boot_id(cx: &Cx) -> Option<String> {
    let path = cx.cfg.paths.proc.join("sys/kernel/random/boot_id");
    let mut id = Vec::new();
    let id = crate::files::read_file(&path, true, 64, &mut id)
        .map(|_| id)
        .ok();
    records::boot_token(id.as_deref(), cx.reading.btime)
}

/// Whether this kernel has pidfds (Linux 5.3+); without them the start-time check
/// followed by `kill` leaves a window of microseconds, which the start event notes.
pub fn pidfd_supported() -> bool {
    sys::pidfd_open(sys::getpid()).is_ok()
}

#[cfg(test)]
mod tests;
