//! Memory relief (`[relief]`): when memory runs short, stop one process before the
//! host thrashes and the kernel's OOM killer has to act, and never a process the
//! operator protected.
//!
//! Each cycle judges the Reading (`decide`: MemAvailable, free swap, PSI memory
//! full avg10). Between cycles the loop sleeps in one `poll` on the signal pipe,
//! the children's descriptors and, where the kernel offers one, a PSI trigger on
//! `pressure/memory` (`watch::Trigger`): a trigger that fires wakes relief at
//! once. MemAvailable is read again (one `pread`, no allocation) as soon as
//! memory filling at the fastest could have reached the limit, and without a
//! trigger every `check_interval` at the latest. `watch` says which way it
//! watches, for the start event.
//!
//! When memory is short it chooses one process (`choose`, which never picks what
//! the reaper's `guard` spares) and signals it through `cx.effects`, as the reaper
//! does: a pidfd, and the start time read again through the proven procfs
//! (`ownproc`), so a reused pid is never hit. A SIGTERM becomes a SIGKILL after
//! `grace` when the process still runs and memory is still short; its exit (its
//! pidfd turning readable wakes the loop) is told by `relief_done`, with the
//! memory available then. At most one process per `min_interval`. A `--once`
//! run sees its one choice through (grace and exit) before it ends.

pub mod choose;
pub mod decide;
mod events;
pub mod watch;

use super::{Cx, Feature, PollSet};
use crate::config::{Action, Config};
use crate::effects::{NotSent, Outcome, Target};
use crate::ownproc::{self, OwnProc};
use crate::procfs::meminfo::Meminfo;
use crate::reading::Reading;
use crate::sample::PRESSURE_KINDS;
use crate::sys;
use choose::Choice;
use decide::{Limits, Reason};
use events::Chosen;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;
use watch::{Host, ProcFacts, Trigger};

/// How long, at most, `relief_done` waits after the exit for memory to be no
/// longer short, so that it tells the memory the exit gave back.
const SETTLE_MS: u64 = 1000;

/// How relief watches memory between cycles.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Watch {
    /// Not enabled.
    #[default]
    Off,
    /// A `--once` run: in its one cycle.
    Once,
    /// Woken by the kernel's PSI trigger; MemAvailable read as the fill rate needs.
    Psi,
    /// MemAvailable read every `check_interval` at the latest; why no trigger.
    Poll(String),
}

#[derive(Default)]
pub struct Relief {
    host: Option<Host>,
    trigger: Option<Trigger>,
    watch: Watch,
    /// The PSI trigger could not be had after a reload, or failed: said at the
    /// next step.
    announce: Option<String>,
    /// When the next check between cycles is due (monotonic ns; 0: none yet).
    next_check: u64,
    /// The trigger fired on the last wake-up.
    fired: bool,
    /// When a process was last chosen, or a choice tried (monotonic ns), for
    /// `min_interval`.
    last_choice: Option<u64>,
    /// The process signalled, until it exits or relief stops waiting for it.
    pending: Option<Pending>,
    /// Memory is short and nothing may be chosen: said once per shortage.
    told_none: bool,
    buf: Vec<u8>,
}

/// A process signalled, waited for.
struct Pending {
    pid: i32,
    start: u64,
    name: Vec<u8>,
    /// When the first signal went out (monotonic ns).
    sent: u64,
    /// The end of `grace` after a SIGTERM (then SIGKILL), or after a SIGKILL the
    /// end of the wait for its exit.
    deadline: u64,
    /// The signal last sent.
    sig: i32,
    /// When it was seen to have exited (monotonic ns).
    exited: Option<u64>,
    pidfd: Option<OwnedFd>,
    /// On kernels without pidfds: the proven procfs, to tell that it still runs.
    own: Option<OwnProc>,
}

/// Where a check takes its process scan from.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// The cycle's, shared with the other steps.
    Cycle,
    /// A new one (between cycles).
    Now,
}

impl Feature for Relief {
    fn name(&self) -> &'static str {
        "relief"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        cx.cfg.relief.enabled || self.pending.is_some()
    }

    /// The cycle's check, on the Reading; a `--once` run then sees its choice
    /// through.
    fn step(&mut self, cx: &mut Cx) {
        let now = sys::monotonic_ns();
        self.tend_pending(cx, now);
        if let Some(why) = self.announce.take() {
            let effect = "MemAvailable read every check_interval at the latest";
            let e = cx.log.error(crate::log::Level::Warn, "relief", &why);
            e.str("effect", effect).emit();
        }
        if !cx.cfg.relief.enabled {
            return;
        }
        if let Some(mem) = cx.reading.mem().copied() {
            let psi = memory_full_avg10(cx.reading);
            self.check(cx, &mem, psi, false, now, Scan::Cycle);
        }
        if cx.once {
            self.see_through(cx);
        }
    }

    fn reload(&mut self, old: &Config, new: &Config) {
        if old.relief == new.relief && old.paths.proc == new.paths.proc {
            return;
        }
        self.arm(new, false);
        if let Watch::Poll(why) = &self.watch
            && new.relief.psi_memory_full_above.is_some()
        {
            self.announce = Some(why.clone());
        }
    }

    fn poll(&self, set: &mut PollSet) {
        if let Some(t) = &self.trigger {
            set.add_urgent(t.fd());
        }
        if self.next_check > 0 && self.host.is_some() {
            set.until = set.until.min(self.next_check);
        }
        if let Some(p) = &self.pending {
            if let Some(fd) = &p.pidfd {
                set.add_fd(fd.as_raw_fd());
            }
            set.until = set.until.min(p.deadline);
        }
    }

    /// A trigger that fired; one that reports an error is dropped (a poll on it
    /// would return at once, for ever) and relief reads MemAvailable instead.
    fn woke(&mut self, set: &PollSet) {
        let Some(t) = &self.trigger else { return };
        let r = set.revents(t.fd());
        if r & (libc::POLLERR | libc::POLLHUP | libc::POLLNVAL) != 0 {
            self.trigger = None;
            let why = "the PSI trigger reported an error".to_string();
            self.watch = Watch::Poll(why.clone());
            self.announce = Some(why);
        } else if r & libc::POLLPRI != 0 {
            self.fired = true;
        }
    }

    /// The agent stops: the process signalled is told of as it is now.
    fn stop(&mut self, cx: &mut Cx) {
        let now = sys::monotonic_ns();
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if p.exited.is_none() && !p.alive() {
            p.exited = Some(now);
        }
        let mem = self.host.as_mut().and_then(|h| h.meminfo().ok());
        self.done(cx, now, mem);
    }

    /// Between cycles: the process signalled, then a check when the trigger fired
    /// or one is due.
    fn tend(&mut self, cx: &mut Cx) {
        if !cx.store.locked() {
            return;
        }
        let now = sys::monotonic_ns();
        self.tend_pending(cx, now);
        let fired = std::mem::take(&mut self.fired);
        let due = self.next_check != 0 && now >= self.next_check;
        if !cx.cfg.relief.enabled || !(fired || due) {
            return;
        }
        let Some(host) = self.host.as_mut() else {
            return;
        };
        match host.meminfo() {
            Ok(mem) => self.check(cx, &mem, None, fired, now, Scan::Now),
            // The cycle reports a meminfo that cannot be read.
            Err(_) => self.next_check = now + nanos(cx.cfg.relief.check_interval),
        }
    }
}

impl Relief {
    /// Opens what relief reads and, for the service, registers the PSI trigger;
    /// at start (before the start event, which says how it watches) and after a
    /// reload that changed `[relief]` or `[paths] proc`.
    pub fn arm(&mut self, cfg: &Config, once: bool) {
        self.trigger = None;
        self.next_check = 0;
        self.fired = false;
        if !cfg.relief.enabled {
            self.watch = Watch::Off;
            return;
        }
        self.host = Some(Host::new(&cfg.paths.proc));
        self.watch = match cfg.relief.psi_memory_full_above {
            _ if once => Watch::Once,
            None => Watch::Poll("psi_memory_full_above is off".to_string()),
            Some(p) => match Trigger::register(&cfg.paths.proc.join("pressure/memory"), p) {
                Ok(t) => {
                    self.trigger = Some(t);
                    Watch::Psi
                }
                Err(why) => Watch::Poll(why),
            },
        };
    }

    /// For the start event: `relief=` (psi, poll or once) and, when it reads
    /// MemAvailable without a trigger, why (`None` when not enabled).
    pub fn watching(&self) -> Option<(&'static str, Option<&str>)> {
        match &self.watch {
            Watch::Off => None,
            Watch::Once => Some(("once", None)),
            Watch::Psi => Some(("psi", None)),
            Watch::Poll(why) => Some(("poll", Some(why))),
        }
    }

    /// Judges `mem` (and PSI), schedules the next check between cycles, and when
    /// memory is short and a choice is allowed, makes one.
    fn check(
        &mut self,
        cx: &mut Cx,
        mem: &Meminfo,
        psi: Option<f64>,
        fired: bool,
        now: u64,
        scan: Scan,
    ) {
        let cfg = &cx.cfg.relief;
        let limits = Limits::of(cfg, mem);
        let check_ms = cfg.check_interval.as_millis() as u64;
        let wait_ms = limits.next_check_ms(mem, check_ms, self.trigger.is_some());
        self.next_check = now + wait_ms * 1_000_000;
        let Some(reason) = limits.short(mem, psi, fired) else {
            self.told_none = false;
            return;
        };
        let min = nanos(cfg.min_interval);
        let recent = self
            .last_choice
            .is_some_and(|t| now.saturating_sub(t) < min);
        if self.pending.is_some() || recent {
            return;
        }
        let psi = psi.or_else(|| self.host.as_mut().and_then(Host::psi_full));
        self.relieve(cx, reason, mem, psi, now, scan);
    }

    /// Chooses a process and acts on it (or only says so).
    fn relieve(
        &mut self,
        cx: &mut Cx,
        reason: Reason,
        mem: &Meminfo,
        psi: Option<f64>,
        now: u64,
        scan: Scan,
    ) {
        let scanned = match scan {
            Scan::Cycle => cx.scan.this_cycle(cx.once).map(drop),
            Scan::Now => cx.scan.scan_now(cx.once).map(drop),
        };
        // What follows counts as a choice for `min_interval`, whatever comes of it:
        // a shortage that lasts does not rescan /proc every check.
        self.last_choice = Some(now);
        if let Err(e) = scanned {
            cx.log.error(crate::log::Level::Error, "scan", e).emit();
            return;
        }
        let scanner = &cx.scan.scanner;
        let Some(dir) = scanner.dir() else { return };
        let choice = Choice {
            cfg: &cx.cfg.relief,
            reaper: &cx.cfg.reaper,
            users: cx.users,
            self_pid: sys::getpid(),
        };
        let mut facts = ProcFacts::new(dir);
        let Some(victim) = choice.run(scanner.procs(), |p| scanner.name(p), &mut facts) else {
            if !self.told_none {
                events::nobody(cx, reason, mem, psi);
                self.told_none = true;
            }
            return;
        };
        let name = scanner.name(&scanner.procs()[victim.index]).to_vec();
        // Signalled in the agent's own namespace: only a pid read from its own procfs.
        let own = ownproc::prove(dir, sys::getpid(), &mut self.buf);
        let chosen = Chosen {
            victim,
            name,
            reason,
            mem: *mem,
            psi,
        };
        match (cx.cfg.relief.action, own) {
            (Action::Log, _) => {
                let dry_run = cx.effects.dry_run();
                events::relief(cx, &chosen, "log", dry_run, None);
            }
            (_, Err(why)) => {
                let dry_run = cx.effects.dry_run();
                events::relief(cx, &chosen, "log", dry_run, Some(&why.to_string()));
            }
            (action, Ok(own)) => self.signal(cx, chosen, action, own, now),
        }
    }

    /// Sends the action's signal to the process chosen; a SIGTERM (or a SIGKILL,
    /// for its exit) is then waited for.
    fn signal(&mut self, cx: &mut Cx, c: Chosen, action: Action, own: OwnProc, now: u64) {
        let sig = match action {
            Action::Kill => libc::SIGKILL,
            _ => libc::SIGTERM,
        };
        let (pid, start) = (c.victim.pid, c.victim.start);
        match cx.effects.signal(
            Target::Started {
                own: &own,
                pid,
                start,
            },
            sig,
        ) {
            Ok(sent) => {
                events::relief(cx, &c, action.name(), sent.dry_run(), None);
                if let Outcome::Done(pidfd) = sent {
                    let own = pidfd.is_none().then_some(own);
                    self.pending = Some(Pending {
                        pid,
                        start,
                        name: c.name,
                        sent: now,
                        deadline: now + nanos(cx.cfg.relief.grace),
                        sig,
                        exited: None,
                        pidfd,
                        own,
                    });
                }
            }
            Err(NotSent::Gone) => {
                // It exited meanwhile: look again at once.
                self.last_choice = None;
                self.next_check = now;
            }
            Err(why) => events::not_sent(cx, pid, &c.name, action.name(), &why),
        }
    }

    /// The process signalled: once it exited, `relief_done` as soon as memory is
    /// no longer short, or `SETTLE_MS` later (the kernel gives a large process's
    /// memory back over a moment, and a second choice meanwhile would be one too
    /// many). Still running after a SIGTERM's `grace`: a SIGKILL while memory is
    /// still short, otherwise relief stops waiting; after a SIGKILL's, it stops.
    fn tend_pending(&mut self, cx: &mut Cx, now: u64) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        if p.exited.is_none() && !p.alive() {
            // Its pidfd stays readable now: it is polled no more.
            (p.exited, p.pidfd, p.own) = (Some(now), None, None);
            p.deadline = now + SETTLE_MS * 1_000_000;
        }
        let (exited, due, term) = (
            p.exited.is_some(),
            now >= p.deadline,
            p.sig == libc::SIGTERM,
        );
        if !exited && !due {
            return;
        }
        let now_mem = self.host.as_mut().and_then(|h| {
            let m = h.meminfo().ok()?;
            Some((m, h.psi_full()))
        });
        let short = now_mem.is_some_and(|(m, psi)| {
            let limits = Limits::of(&cx.cfg.relief, &m);
            limits.short(&m, psi, false).is_some()
        });
        let mem = now_mem.map(|(m, _)| m);
        match exited {
            true if short && !due => {}
            false if short && term => self.escalate(cx, now, now_mem),
            _ => self.done(cx, now, mem),
        }
    }

    /// SIGKILL to the process a SIGTERM did not end within `grace`.
    fn escalate(&mut self, cx: &mut Cx, now: u64, now_mem: Option<(Meminfo, Option<f64>)>) {
        let Some(p) = self.pending.as_mut() else {
            return;
        };
        let grace = cx.cfg.relief.grace;
        let target = match (&p.pidfd, &p.own) {
            (Some(pidfd), _) => Target::Pinned { pidfd, pid: p.pid },
            (None, Some(own)) => Target::Started {
                own,
                pid: p.pid,
                start: p.start,
            },
            (None, None) => return self.done(cx, now, now_mem.map(|m| m.0)),
        };
        match cx.effects.signal(target, libc::SIGKILL) {
            Ok(_) => {
                let after = crate::config::value::fmt_duration(grace);
                events::escalated(cx, p.pid, &p.name, &after, now_mem);
                p.sig = libc::SIGKILL;
                p.deadline = now + nanos(grace.max(Duration::from_secs(1)));
            }
            Err(NotSent::Gone) => p.deadline = now,
            Err(why) => {
                events::not_sent(cx, p.pid, &p.name, "kill", &why);
                self.done(cx, now, now_mem.map(|m| m.0));
            }
        }
    }

    /// `relief_done` with the memory `mem` read now, and the wait is over.
    fn done(&mut self, cx: &mut Cx, now: u64, mem: Option<Meminfo>) {
        let Some(p) = self.pending.take() else { return };
        let signal = if p.sig == libc::SIGKILL {
            "kill"
        } else {
            "term"
        };
        let end = p.exited.unwrap_or(now);
        let after = Duration::from_millis(end.saturating_sub(p.sent) / 1_000_000);
        let after = crate::config::value::fmt_duration(after);
        let exited = p.exited.is_some();
        events::done(cx, p.pid, &p.name, signal, exited, &after, mem);
    }

    /// `--once`: waits for the process it signalled (its exit, or `grace` and
    /// the SIGKILL after it), waking for a stop signal.
    fn see_through(&mut self, cx: &mut Cx) {
        while let Some(p) = &self.pending {
            if cx.stopping() {
                break;
            }
            let fd = p.pidfd.as_ref().map(AsRawFd::as_raw_fd);
            cx.wait_children(fd.as_slice());
            self.tend_pending(cx, sys::monotonic_ns());
        }
    }
}

impl Pending {
    /// Still running? Through the pidfd (readable once it exited), or by its start
    /// time in the proven procfs.
    fn alive(&self) -> bool {
        match (&self.pidfd, &self.own) {
            (Some(fd), _) => !sys::poll_readable(fd, 0).unwrap_or(true),
            (None, Some(own)) => own.start_time(self.pid) == Some((self.start, false)),
            (None, None) => false,
        }
    }
}

/// PSI memory full avg10 in the Reading, where the kernel has PSI.
fn memory_full_avg10(r: &Reading) -> Option<f64> {
    let i = PRESSURE_KINDS.iter().position(|k| *k == "memory")?;
    r.host.pressure[i]?.full.map(|f| f.avg10)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests;
