//! Features: what the agent does with a cycle's Reading beyond judging it (the
//! top processes, memory relief, the reaper, cleanup, the shell-history audit,
//! the idle-time tasks, alerts, the metrics and status files). Each lives in one
//! place and owns its state: what it remembers between cycles, its pure
//! decisions, and its step. The loop (`agent`) drives every feature through one
//! small trait, `Feature`, and hands it a `Cx`: everything a step may use, and
//! nothing else.
//!
//! # Adding a feature, say `[foo]`
//!
//! 1. **Files.** `features/foo.rs`, or a folder `features/foo/` when it has pure
//!    decisions worth their own file: `mod.rs` (the state and the step) and
//!    `decide.rs` or similar (pure functions of plain values and a clock, with
//!    their unit tests, and the format of its state file). See `tasks/`
//!    (`schedule.rs` is the pure part) and `top.rs`.
//! 2. **The trait.** `impl Feature for Foo`: `wanted` (is there work this cycle:
//!    configured, or a child still running), `step` (the cycle's work), and as
//!    needed `load` (restore what was saved; called once, right before its first
//!    step), `save` (persist what changed), `reload` (a new config was accepted:
//!    carry state over by name, forget what no longer applies), `reopen_logs`
//!    (a log of its own, reopened on every SIGHUP: `audit/`), `users_loaded`
//!    (what it derives from passwd), `poll` / `woke` / `tend` / `stop` for
//!    children it runs or descriptors it waits on between cycles (`relief/`: a
//!    PSI trigger and the pidfd of a process it signalled), and `status` (its
//!    `event=status` line on SIGUSR1: its timers and counts). A feature is only
//!    stepped while the agent holds the state_dir lock.
//! 3. **Cx.** A step reads `cx.cfg`, `cx.reading` and `cx.metrics`, logs with
//!    `cx.log`, shares the cycle's process scan (`cx.scan.this_cycle`), asks
//!    `cx.mounts` whether a path's mount answers, names users with `cx.users`,
//!    tells later features what it found in `cx.findings` (the top lines alert
//!    mails carry), and waits with
//!    `cx.pause` / `cx.wait_children` (which wake for SIGTERM).
//! 4. **The store.** Its state file is a `store::Kind` (name, version, oldest
//!    version still read, size cap, whether a dry run keeps its own copy); it
//!    formats and parses only its records (`store::begin` / `store::end`,
//!    `store::open` / `store::read_stamp` do the rest), and loads and saves
//!    through `cx.store`, which owns the paths, the lock, the caps and the
//!    dry-run copies.
//! 5. **Effects.** It never signals, unlinks or spawns itself, and never looks at
//!    `dry_run`: it asks `cx.effects` and logs from the `Outcome` (`Done`, or
//!    `DryRun`: then `dry_run=yes`; a line for a decision that asked nothing of
//!    it, like the reaper's `action = log`, asks `cx.effects.dry_run()`). A unit
//!    test gives it an `effects::DryRun` and reads back what it would have done
//!    (see `reaper/tests.rs`).
//! 6. **The cycle.** One field in `agent::Features`, one entry in
//!    `Features::all` (reload, save, poll, tend and stop go through it), and one
//!    line in `Agent::cycle` at its place in the order: sample → judge →
//!    transitions → sample line → top → relief → reaper → cleanup → deleted-open
//!    files → audit → tasks → alerts → metrics file → status file → state.

pub mod alerts;
pub mod audit;
pub mod cleanup;
pub mod deleted;
pub mod metrics;
mod outfile;
pub mod reaper;
pub mod relief;
pub mod status;
pub mod tasks;
pub mod top;

use crate::config::Config;
use crate::effects::Effects;
use crate::judge::Metric;
use crate::log::{Event, Level, Logger};
use crate::mounts::Mounts;
use crate::passwd::Users;
use crate::reading::Reading;
use crate::scan::CycleScan;
use crate::signals::Signals;
use crate::store::Store;
use crate::sys;
use std::os::fd::RawFd;

/// One feature, as the loop drives it.
pub trait Feature {
    fn name(&self) -> &'static str;

    /// Whether this cycle has work for it (configured, or a child still running).
    fn wanted(&self, _cx: &Cx) -> bool {
        true
    }

    /// Restores what it saved: called once, right before its first step.
    fn load(&mut self, _cx: &mut Cx) {}

    /// One cycle's work.
    fn step(&mut self, cx: &mut Cx);

    /// A new configuration was accepted: carry state over by name, forget what no
    /// longer applies.
    fn reload(&mut self, _old: &Config, _new: &Config) {}

    /// Persists what it must: `force` at the end of a `--once` run and when the
    /// service stops; otherwise only what changed.
    fn save(&mut self, _cx: &mut Cx, _force: bool) {}

    /// The agent (re)opens its log files: at start and on every SIGHUP, whether
    /// the new configuration was taken or not (logrotate relies on it).
    fn reopen_logs(&mut self, _cfg: &Config) {}

    /// The users were read from passwd: at start and with each new configuration.
    fn users_loaded(&mut self, _cx: &mut Cx) {}

    /// Its running children: descriptors to wake for and the next deadline.
    fn poll(&self, _set: &mut PollSet) {}

    /// What its descriptors in `set` reported on the wake-up just ended (read
    /// before `tend`; for a descriptor whose event is used up by the poll that
    /// reports it, as a PSI trigger's is).
    fn woke(&mut self, _set: &PollSet) {}

    /// Looks after its children after a wake-up (output, timeouts, exits).
    fn tend(&mut self, _cx: &mut Cx) {}

    /// The agent stops: ends its children.
    fn stop(&mut self, _cx: &mut Cx) {}

    /// SIGUSR1: one `event=status feature=NAME` line (`Cx::status`) with what it
    /// keeps between cycles (timers, counts), when it has work.
    fn status(&mut self, cx: &mut Cx) {
        cx.status(self.name()).emit();
    }
}

/// A feature and whether it has loaded what it saved (so it is loaded once, right
/// before its first step, and never saves state it has not read).
pub struct Slot<F: ?Sized> {
    loaded: bool,
    pub f: F,
}

impl<F> Slot<F> {
    pub fn new(f: F) -> Slot<F> {
        Slot { loaded: false, f }
    }
}

impl<F: Feature + ?Sized> Slot<F> {
    pub fn step(&mut self, cx: &mut Cx) {
        if !self.f.wanted(cx) {
            return;
        }
        if !self.loaded {
            self.loaded = true;
            self.f.load(cx);
        }
        self.f.step(cx);
    }

    pub fn save(&mut self, cx: &mut Cx, force: bool) {
        if self.loaded {
            self.f.save(cx, force);
        }
    }

    pub fn reload(&mut self, old: &Config, new: &Config) {
        self.f.reload(old, new);
    }

    pub fn reopen_logs(&mut self, cfg: &Config) {
        self.f.reopen_logs(cfg);
    }

    pub fn users_loaded(&mut self, cx: &mut Cx) {
        self.f.users_loaded(cx);
    }

    pub fn poll(&self, set: &mut PollSet) {
        self.f.poll(set);
    }

    pub fn woke(&mut self, set: &PollSet) {
        self.f.woke(set);
    }

    pub fn tend(&mut self, cx: &mut Cx) {
        self.f.tend(cx);
    }

    pub fn stop(&mut self, cx: &mut Cx) {
        self.f.stop(cx);
    }

    /// Its `status` line; `active=no` when it has no work, and no more than
    /// `active=yes` before it has loaded what it saved.
    pub fn status(&mut self, cx: &mut Cx) {
        match (self.f.wanted(cx), self.loaded) {
            (true, true) => self.f.status(cx),
            (true, false) => cx.status(self.f.name()).emit(),
            (false, _) => cx
                .log
                .event(Level::Info, "status")
                .str("feature", self.f.name())
                .str("active", "no")
                .emit(),
        }
    }
}

/// What a step may use.
pub struct Cx<'a> {
    pub cfg: &'a Config,
    pub log: &'a mut Logger,
    pub reading: &'a Reading,
    pub metrics: &'a [Metric],
    /// The cycle's process scan, shared (see `CycleScan`).
    pub scan: &'a mut CycleScan,
    /// The watched mounts: whether a path's mount answers (see `Mounts::check`).
    pub mounts: &'a mut Mounts,
    pub users: &'a Users,
    pub store: &'a mut Store,
    pub effects: &'a mut dyn Effects,
    pub findings: &'a mut Findings,
    /// The agent's own figures (for the metrics file).
    pub stats: Stats,
    /// A `--once` run: one cycle, which waits for the children it starts.
    pub once: bool,
    /// SIGTERM and SIGINT, when they could be installed.
    pub signals: Option<&'a Signals>,
}

impl Cx<'_> {
    /// Whether SIGTERM or SIGINT arrived.
    pub fn stopping(&self) -> bool {
        stopping(self.signals)
    }

    /// Waits `ms`, waking early for SIGTERM or SIGINT.
    pub fn pause(&self, ms: u64) {
        pause(self.signals, ms);
    }

    /// The start of a feature's `event=status` line: `feature=NAME active=yes`.
    pub fn status(&mut self, name: &str) -> Event<'_> {
        self.log
            .event(Level::Info, "status")
            .str("feature", name)
            .str("active", "yes")
    }

    /// `--once` waiting for its children (see `wait_children`).
    pub fn wait_children(&self, fds: &[RawFd]) {
        wait_children(self.signals, fds);
    }
}

/// The proof that the directory the cycle's scan read is the agent's own procfs,
/// for a feature that signals or acts on the processes it lists. Without it, one
/// line says why (`what=` the feature, `effect=` what it then does not do), once
/// until the reason changes: `refused` keeps the reason last said.
pub fn own_proc(
    cx: &mut Cx,
    what: &str,
    effect: &str,
    refused: &mut Option<String>,
    buf: &mut Vec<u8>,
) -> Option<crate::ownproc::OwnProc> {
    let dir = cx.scan.scanner.dir()?;
    match crate::ownproc::prove(dir, sys::getpid(), buf) {
        Ok(own) => {
            *refused = None;
            Some(own)
        }
        Err(why) => {
            let why = why.to_string();
            if refused.as_deref() != Some(why.as_str()) {
                cx.log
                    .error(crate::log::Level::Warn, what, &why)
                    .path("path", &cx.cfg.paths.proc)
                    .str("effect", effect)
                    .emit();
                *refused = Some(why);
            }
            None
        }
    }
}

/// Whether SIGTERM or SIGINT arrived.
pub fn stopping(signals: Option<&Signals>) -> bool {
    signals.is_some_and(|s| s.stop_requested().is_some())
}

/// `--once` waiting for its children: up to 100 ms, waking for their output,
/// their exit (SIGCHLD) or a stop signal.
pub fn wait_children(signals: Option<&Signals>, fds: &[RawFd]) {
    match signals {
        Some(s) => s.wait_or(100, fds),
        None => {
            let mut set = PollSet::new(u64::MAX);
            fds.iter().for_each(|&fd| set.add_fd(fd));
            set.wait(100);
        }
    }
}

/// Waits `ms`, waking early for a stop signal when there are signals.
pub fn pause(signals: Option<&Signals>, ms: u64) {
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

/// The agent's own figures.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stats {
    /// Cycles run since start, the current one included once it has run.
    pub cycles: u64,
    /// How long the previous cycle took.
    pub last_cycle_seconds: f64,
}

/// What one feature tells another within a cycle.
#[derive(Default)]
pub struct Findings {
    /// This cycle's top processes, one line each, for alert mails: the first
    /// `top_n` of `top` (whose strings are reused, so the scan's hot path does
    /// not allocate).
    top: Vec<String>,
    top_n: usize,
}

impl Findings {
    /// A new cycle: nothing found yet.
    pub fn clear(&mut self) {
        self.top_n = 0;
    }

    pub fn top_lines(&self) -> &[String] {
        &self.top[..self.top_n]
    }

    /// A line to write the next top process into (cleared).
    pub fn next_top_line(&mut self) -> &mut String {
        if self.top_n == self.top.len() {
            self.top.push(String::new());
        }
        self.top_n += 1;
        let line = &mut self.top[self.top_n - 1];
        line.clear();
        line
    }
}

/// What the service loop sleeps on between cycles: the descriptors of running
/// children (their output), of a victim waiting to exit (its pidfd) and of a PSI
/// trigger, and the earliest deadline among their owners; after the sleep, what
/// each descriptor reported.
pub struct PollSet {
    pfds: [libc::pollfd; 7],
    n: usize,
    /// Monotonic ns to wake at, at the latest.
    pub until: u64,
}

impl PollSet {
    pub fn new(until: u64) -> PollSet {
        let none = libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        };
        PollSet {
            pfds: [none; 7],
            n: 0,
            until,
        }
    }

    /// A child's output descriptors and its next deadline (timeout, or the
    /// SIGKILL after it).
    pub fn add_child(&mut self, c: &crate::child::Child) {
        self.until = self.until.min(c.next_deadline().unwrap_or(u64::MAX));
        c.poll_fds().for_each(|fd| self.add_fd(fd));
    }

    /// A descriptor to wake for when it is readable (beyond the first seven, the
    /// deadline still holds).
    pub fn add_fd(&mut self, fd: RawFd) {
        self.add(fd, libc::POLLIN);
    }

    /// A descriptor to wake for when it has urgent data (`POLLPRI`: a PSI trigger
    /// that fired).
    pub fn add_urgent(&mut self, fd: RawFd) {
        self.add(fd, libc::POLLPRI);
    }

    fn add(&mut self, fd: RawFd, events: i16) {
        if self.n < self.pfds.len() {
            self.pfds[self.n] = libc::pollfd {
                fd,
                events,
                revents: 0,
            };
            self.n += 1;
        }
    }

    /// The descriptors, for `poll(2)`, which leaves each one's `revents`.
    pub fn polled(&mut self) -> &mut [libc::pollfd] {
        &mut self.pfds[..self.n]
    }

    /// What `fd` reported in the last poll (0: nothing, or not in the set).
    pub fn revents(&self, fd: RawFd) -> i16 {
        self.pfds[..self.n]
            .iter()
            .find(|p| p.fd == fd)
            .map_or(0, |p| p.revents)
    }

    /// Sleeps up to `ms` or until a descriptor is ready (no signal pipe).
    fn wait(&mut self, ms: i32) {
        sys::poll(self.polled(), ms);
    }
}

/// A `Cx` for unit tests of a feature's step: the config given, the log and
/// state_dir in a temp dir of its own (the store locked), the real /proc, and
/// effects that only record (`DryRun`), so a test asks what a step would do.
#[cfg(test)]
pub mod bench {
    use super::*;
    use crate::effects::DryRun;
    use std::path::PathBuf;

    /// A private temp dir for a test, empty (what a previous run left is gone).
    pub fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("sa-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    pub struct Bench {
        pub dir: PathBuf,
        pub cfg: Config,
        pub log: Logger,
        pub reading: Reading,
        pub metrics: Vec<Metric>,
        pub scan: CycleScan,
        pub mounts: Mounts,
        pub users: Users,
        pub store: Store,
        pub effects: DryRun,
        pub findings: Findings,
        pub once: bool,
    }

    impl Bench {
        /// `ini` is the config beyond `[agent]`'s log and state (and no audit).
        pub fn new(tag: &str, ini: &str) -> Bench {
            let dir = temp_dir(&format!("bench-{tag}"));
            let text = format!(
                "[agent]\nlog_file = {}\nsyslog = no\nstate_dir = {}\n[disk]\nmounts =\n\
                 [audit]\nbash_history = no\n{ini}",
                dir.join("agent.log").display(),
                dir.join("state").display(),
            );
            let cfg =
                Config::parse(std::path::Path::new("bench.ini"), &text).expect("valid config");
            let mut store = Store::new(&cfg.agent.state_dir, cfg.agent.dry_run);
            if store.lock(&cfg.agent.state_dir, None).is_err() {
                panic!("cannot lock {}", cfg.agent.state_dir.display());
            }
            Bench {
                log: Logger::new(&cfg.log_target()),
                reading: Reading::new(&cfg.disk.mounts),
                metrics: crate::judge::metrics_for(&cfg),
                scan: CycleScan::new(&cfg.paths.proc),
                mounts: Mounts::default(),
                users: Users::default(),
                store,
                effects: DryRun::default(),
                findings: Findings::default(),
                once: true,
                dir,
                cfg,
            }
        }

        pub fn cx(&mut self) -> Cx<'_> {
            Cx {
                cfg: &self.cfg,
                log: &mut self.log,
                reading: &self.reading,
                metrics: &self.metrics,
                scan: &mut self.scan,
                mounts: &mut self.mounts,
                users: &self.users,
                store: &mut self.store,
                effects: &mut self.effects,
                findings: &mut self.findings,
                stats: Stats::default(),
                once: self.once,
                signals: None,
            }
        }

        /// The log's `event=NAME` lines, without their timestamp.
        pub fn events(&self, name: &str) -> Vec<String> {
            let text = std::fs::read_to_string(self.dir.join("agent.log")).unwrap_or_default();
            let want = format!(" event={name} ");
            text.lines()
                .filter(|l| l.contains(&want) || l.ends_with(&want[..want.len() - 1]))
                .map(|l| l.split_once(' ').map_or("", |(_, r)| r).to_string())
                .collect()
        }
    }

    impl Drop for Bench {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
