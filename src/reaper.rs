//! The process reaper (`[reaper]`, `[reap.NAME]`): stop stale or hung
//! processes the rules name, and never anything else.
//!
//! `plan` is pure: from one process scan, the rules and a few facts it decides what
//! to do and why, asking `Details` only for what a rule needs (owner, command line,
//! root directory), cheapest test first. Never chosen, whatever a rule says: PID 1,
//! the agent, its ancestors, kernel threads, names in `[reaper] protect`, root's
//! processes unless the rule names `user = root`, and under `scope = root` every
//! process whose root directory is not the agent's or cannot be checked.
//!
//! `signal` is the effect, and needs an `OwnProc`: proof that `[paths] proc` is the
//! agent's own procfs (see `ownproc`), since the pid numbers it decided on are
//! signalled in the agent's own namespace. It opens a pidfd, re-reads the start time
//! through that proven procfs and signals through the pidfd only when it still
//! matches, so a reused PID is never hit, and says which it was (`NotSent`). A
//! SIGTERM is escalated to SIGKILL after `grace` across cycles (the pidfd kept open
//! meanwhile), never by sleeping in the loop.

use crate::config::{Action, ProcState, ReapRule, Reaper as ReaperConfig, Scope};
use crate::effects::{Effects, NotSent, Outcome, Real};
use crate::glob;
use crate::ownproc::OwnProc;
use crate::passwd::Users;
use crate::procfs::pid::parse_pid_stat;
use crate::scan::Proc;
use crate::sys;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// What is true of the host at this cycle.
#[derive(Debug, Clone, Copy)]
pub struct Facts {
    pub now_ns: u64,
    /// Boot time, seconds since the epoch.
    pub btime: u64,
    pub ticks_per_sec: u64,
    pub self_pid: i32,
}

impl Facts {
    /// Seconds since process `p` started.
    pub fn age_s(&self, p: &Proc) -> u64 {
        let now_s = self.now_ns / 1_000_000_000;
        let started = self.btime + p.start / self.ticks_per_sec.max(1);
        now_s.saturating_sub(started)
    }
}

/// Per-process facts that cost a read, asked for only when a rule needs them.
pub trait Details {
    /// Real uid (`/proc/PID/status`).
    fn uid(&mut self, pid: i32) -> Option<u32>;
    /// The command line, arguments joined by spaces.
    fn cmdline(&mut self, pid: i32) -> Option<Vec<u8>>;
    /// Whether the process's root directory is the agent's; false when it cannot
    /// be checked.
    fn same_root(&mut self, pid: i32) -> bool;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Term,
    Kill,
    Log,
    /// A zombie: tell its parent (SIGCHLD) to reap it.
    SigchldParent,
    /// A zombie under `action = kill`: end its parent.
    KillParent,
}

impl Act {
    pub fn name(self) -> &'static str {
        match self {
            Act::Term => "term",
            Act::Kill => "kill",
            Act::Log => "log",
            Act::SigchldParent => "sigchld",
            Act::KillParent => "kill_parent",
        }
    }
}

/// One process a rule selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub pid: i32,
    pub start: u64,
    pub ppid: i32,
    pub uid: u32,
    pub state: u8,
    pub zombie: bool,
    pub age_s: u64,
    pub rule: usize,
    pub act: Act,
    pub reason: String,
}

/// How long each process has been in its current state, keyed by pid and start
/// time (so a reused pid starts afresh): `in_state_for`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StateClock {
    pub since: HashMap<(i32, u64), (u8, u64)>,
}

impl StateClock {
    /// Records this scan: a process seen in a new state starts its clock now;
    /// processes that are gone are forgotten. A clock that started after `now_ns`
    /// (the wall clock was set back since) restarts now: it may count late, never
    /// early.
    pub fn observe(&mut self, procs: &[Proc], now_ns: u64) {
        let mut next = HashMap::with_capacity(procs.len());
        for p in procs {
            let key = (p.pid, p.start);
            let since = match self.since.get(&key) {
                Some(&(state, since)) if same_state(state, p.state) => since.min(now_ns),
                _ => now_ns,
            };
            next.insert(key, (p.state, since));
        }
        self.since = next;
    }

    /// Seconds `p` has been in its current state.
    pub fn in_state_s(&self, p: &Proc, now_ns: u64) -> u64 {
        self.since.get(&(p.pid, p.start)).map_or(0, |&(_, since)| {
            now_ns.saturating_sub(since) / 1_000_000_000
        })
    }
}

fn same_state(a: u8, b: u8) -> bool {
    a == b || ProcState::of_letter(a).is_some_and(|s| ProcState::of_letter(b) == Some(s))
}

/// PID 1, the agent and its ancestors, by the scan's parent links.
pub fn protected_pids(procs: &[Proc], self_pid: i32) -> Vec<i32> {
    let mut out = vec![1, self_pid];
    let mut pid = self_pid;
    for _ in 0..procs.len() {
        let Ok(i) = procs.binary_search_by_key(&pid, |p| p.pid) else {
            break;
        };
        let ppid = procs[i].ppid;
        if ppid <= 1 || out.contains(&ppid) {
            break;
        }
        out.push(ppid);
        pid = ppid;
    }
    out
}

/// `3d`, `5h`, `12m`, `40s`.
fn fmt_secs(s: u64) -> String {
    crate::timefmt::fmt_age(s)
}

/// Everything that decides, from the scan, which processes the rules select.
pub struct Plan<'a> {
    pub cfg: &'a ReaperConfig,
    pub rules: &'a [ReapRule],
    pub facts: Facts,
    pub clock: &'a StateClock,
    pub users: &'a Users,
}

impl Plan<'_> {
    /// The decisions for one scan (`procs` sorted by pid; `name` gives each name).
    pub fn run<'p>(
        &self,
        procs: &'p [Proc],
        name: impl Fn(&'p Proc) -> &'p [u8],
        details: &mut dyn Details,
    ) -> Vec<Decision> {
        let protected = protected_pids(procs, self.facts.self_pid);
        let mut out = Vec::new();
        for p in procs {
            if p.kthread || protected.contains(&p.pid) || glob::any(&self.cfg.protect, name(p)) {
                continue;
            }
            for (ri, rule) in self.rules.iter().enumerate() {
                let Some(reason) = self.matches(rule, p, name(p), details) else {
                    continue;
                };
                let uid = details.uid(p.pid).unwrap_or(u32::MAX);
                let act = match (p.zombie, rule.action) {
                    (_, Action::Log) => Act::Log,
                    (false, Action::Term) => Act::Term,
                    (false, Action::Kill) => Act::Kill,
                    (true, action) => match procs.binary_search_by_key(&p.ppid, |q| q.pid) {
                        Ok(i)
                            if self.parent_allowed(
                                rule,
                                &procs[i],
                                name(&procs[i]),
                                &protected,
                                details,
                            ) =>
                        {
                            if action == Action::Kill {
                                Act::KillParent
                            } else {
                                Act::SigchldParent
                            }
                        }
                        _ => Act::Log,
                    },
                };
                out.push(Decision {
                    pid: p.pid,
                    start: p.start,
                    ppid: p.ppid,
                    uid,
                    state: p.state,
                    zombie: p.zombie,
                    age_s: self.facts.age_s(p),
                    rule: ri,
                    act,
                    reason,
                });
                break;
            }
        }
        out
    }

    /// The reason `rule` selects `p`, or `None`. Cheap tests (from the scan) first.
    fn matches(
        &self,
        rule: &ReapRule,
        p: &Proc,
        name: &[u8],
        details: &mut dyn Details,
    ) -> Option<String> {
        let mut why: Vec<String> = Vec::new();
        if !rule.matches.is_empty() {
            let g = rule.matches.iter().find(|g| g.matches(name))?;
            why.push(format!("name {}", g.as_str()));
        }
        if !rule.states.is_empty() {
            let st = p.rule_state()?;
            if !rule.states.contains(&st) {
                return None;
            }
            why.push(format!("state {}", st.name()));
        }
        if let Some(min) = rule.older_than {
            let age = self.facts.age_s(p);
            if age < min.as_secs() {
                return None;
            }
            why.push(format!(
                "age {} >= {}",
                fmt_secs(age),
                fmt_secs(min.as_secs())
            ));
        }
        if let Some(min) = rule.cpu_over {
            let cpu = p.ticks / self.facts.ticks_per_sec.max(1);
            if cpu < min.as_secs() {
                return None;
            }
            why.push(format!(
                "cpu {} >= {}",
                fmt_secs(cpu),
                fmt_secs(min.as_secs())
            ));
        }
        if let Some(min) = rule.in_state_for {
            let held = self.clock.in_state_s(p, self.facts.now_ns);
            if held < min.as_secs() {
                return None;
            }
            why.push(format!(
                "in state {} >= {}",
                fmt_secs(held),
                fmt_secs(min.as_secs())
            ));
        }
        let uid = details.uid(p.pid)?;
        if !self.user_allowed(rule, uid) {
            return None;
        }
        if let Some(g) = &rule.cmdline {
            let cmd = details.cmdline(p.pid)?;
            if !g.matches(&cmd) {
                return None;
            }
            why.push(format!("cmdline {}", g.as_str()));
        }
        // A zombie has no root directory left; its parent's decides (and is the
        // one that will be signalled).
        let who = if p.zombie { p.ppid } else { p.pid };
        if self.cfg.scope == Scope::Root && !details.same_root(who) {
            return None;
        }
        Some(why.join(", "))
    }

    /// `user =` empty: anyone but root; otherwise the named users (`root` only when
    /// named). A user missing from passwd matches nothing.
    fn user_allowed(&self, rule: &ReapRule, uid: u32) -> bool {
        if rule.users.is_empty() {
            return uid != 0;
        }
        rule.users
            .iter()
            .any(|u| self.users.uid_of(u) == Some(uid) || (u == "root" && uid == 0))
    }

    /// Whether a zombie's parent may be signalled: not protected, and allowed by the
    /// same user and scope rules as any process.
    fn parent_allowed(
        &self,
        rule: &ReapRule,
        parent: &Proc,
        name: &[u8],
        protected: &[i32],
        details: &mut dyn Details,
    ) -> bool {
        !parent.kthread
            && !protected.contains(&parent.pid)
            && !glob::any(&self.cfg.protect, name)
            && details
                .uid(parent.pid)
                .is_some_and(|uid| self.user_allowed(rule, uid))
            && (self.cfg.scope == Scope::All || details.same_root(parent.pid))
    }
}

/// This boot's name in the reaper's state file: the kernel's `boot_id` (a UUID)
/// when it reads as one word of hex digits and dashes, else `btime-N` from the boot
/// time; `None` when neither is known.
pub fn boot_token(boot_id: Option<&[u8]>, btime: Option<u64>) -> Option<String> {
    let id = boot_id.map(<[u8]>::trim_ascii).filter(|b| {
        !b.is_empty() && b.len() <= 64 && b.iter().all(|&c| c.is_ascii_hexdigit() || c == b'-')
    });
    match (id, btime) {
        (Some(id), _) => Some(String::from_utf8_lossy(id).into_owned()),
        (None, Some(t)) => Some(format!("btime-{t}")),
        (None, None) => None,
    }
}

/// Reads what `Details` asks from the open `[paths] proc` directory the scan read.
pub struct ProcDetails<'a> {
    dir: BorrowedFd<'a>,
    buf: Vec<u8>,
    path: Vec<u8>,
    uids: HashMap<i32, Option<u32>>,
    self_root: Option<(u64, u64)>,
    self_mountinfo: Option<Vec<u8>>,
}

impl<'a> ProcDetails<'a> {
    /// `dir`: the scan's /proc directory.
    pub fn new(dir: BorrowedFd<'a>) -> ProcDetails<'a> {
        let self_root = sys::lstat(c"/").ok().map(|st| (st.st_dev, st.st_ino));
        ProcDetails {
            dir,
            buf: Vec::new(),
            path: Vec::new(),
            uids: HashMap::new(),
            self_root,
            self_mountinfo: None,
        }
    }

    fn read(&mut self, pid: &str, file: &str) -> Option<&[u8]> {
        let c = sys::cpath(&mut self.path, &[pid.as_bytes(), b"/", file.as_bytes()]).ok()?;
        let fd = sys::openat(self.dir.as_raw_fd(), c, libc::O_RDONLY | libc::O_NONBLOCK).ok()?;
        sys::read_all(fd.as_raw_fd(), &mut self.buf).ok()?;
        Some(&self.buf)
    }
}

impl Details for ProcDetails<'_> {
    fn uid(&mut self, pid: i32) -> Option<u32> {
        if let Some(&u) = self.uids.get(&pid) {
            return u;
        }
        let uid = self
            .read(&pid.to_string(), "status")
            .and_then(|b| crate::procfs::pid::parse_pid_status(b).ok())
            .map(|s| s.uid[0]);
        self.uids.insert(pid, uid);
        uid
    }

    fn cmdline(&mut self, pid: i32) -> Option<Vec<u8>> {
        let raw = self.read(&pid.to_string(), "cmdline")?.to_vec();
        let mut out = Vec::new();
        crate::procfs::pid::cmdline_display(&raw, &mut out);
        Some(out)
    }

    /// `stat` of `/proc/PID/root` against our `/` when allowed (root, or the same
    /// user); otherwise the process's `mountinfo`, which shows mounts relative to
    /// its root, against ours (readable without ptrace access).
    fn same_root(&mut self, pid: i32) -> bool {
        let link = sys::cpath(&mut self.path, &[pid.to_string().as_bytes(), b"/root"]);
        if let Ok(st) = link.and_then(|c| sys::fstatat(self.dir.as_raw_fd(), c)) {
            return self.self_root == Some((st.st_dev, st.st_ino));
        }
        if self.self_mountinfo.is_none() {
            self.self_mountinfo = self.read("self", "mountinfo").map(<[u8]>::to_vec);
        }
        let Some(mine) = self.self_mountinfo.clone() else {
            return false;
        };
        self.read(&pid.to_string(), "mountinfo")
            .is_some_and(|theirs| theirs == mine.as_slice())
    }
}

/// Whether this kernel has pidfds (Linux 5.3+); without them the start-time check
/// followed by `kill` leaves a window of microseconds, which the start event notes.
pub fn pidfd_supported() -> bool {
    sys::pidfd_open(sys::getpid()).is_ok()
}

/// The start time of `pid` now, from the proven procfs, and whether it is a zombie.
fn start_time(own: &OwnProc, pid: i32) -> Option<(u64, bool)> {
    let mut path = Vec::with_capacity(24);
    let c = sys::cpath(&mut path, &[pid.to_string().as_bytes(), b"/stat"]).ok()?;
    let fd = sys::openat(own.fd(), c, libc::O_RDONLY | libc::O_NONBLOCK).ok()?;
    let mut bytes = Vec::new();
    sys::read_all(fd.as_raw_fd(), &mut bytes).ok()?;
    parse_pid_stat(&bytes)
        .ok()
        .map(|s| (s.starttime, s.is_zombie()))
}

/// Whether `pid` still started at `start`, by the proven procfs.
fn same_process(own: &OwnProc, pid: i32, start: u64) -> Result<(), NotSent> {
    match start_time(own, pid) {
        Some((t, _)) if t == start => Ok(()),
        Some(_) => Err(NotSent::Reused),
        None => Err(NotSent::Gone),
    }
}

/// Signals process `pid` only if it is still the one that started at `start`:
/// pidfd first, then the start time from the proven procfs (a pidfd names one
/// process for good), then the signal through the pidfd (`effects::Real`).
/// Returns the pidfd, to keep for an escalation.
pub fn signal(own: &OwnProc, pid: i32, start: u64, sig: i32) -> Result<Option<OwnedFd>, NotSent> {
    let same = &mut || same_process(own, pid, start);
    match Real.signal(pid, sig, same)? {
        Outcome::Done(fd) => Ok(fd),
        Outcome::DryRun => Ok(None),
    }
}

/// Whether `pid` is still the zombie that started at `start` (checked again right
/// before its parent is signalled on its account).
pub fn still_zombie(own: &OwnProc, pid: i32, start: u64) -> bool {
    start_time(own, pid) == Some((start, true))
}

/// Sends SIGCONT through a pidfd: a stopped process holds a SIGTERM pending until
/// it runs again, so it gets to handle it (as systemd does).
pub fn resume(pidfd: &OwnedFd) -> std::io::Result<()> {
    sys::pidfd_send_signal(pidfd, libc::SIGCONT)
}

/// A SIGTERM sent, waiting for `grace` before SIGKILL.
pub struct Pending {
    pub pid: i32,
    pub start: u64,
    pub rule: usize,
    pub sent_ns: u64,
    pub pidfd: Option<OwnedFd>,
}

impl Pending {
    /// Still alive? Through the pidfd when there is one (POLLIN once it exited);
    /// otherwise the same start time and not a zombie, by the proven procfs. With
    /// neither, it cannot be told from a reused pid: counted as gone.
    pub fn alive(&self, own: Option<&OwnProc>) -> bool {
        match (&self.pidfd, own) {
            (Some(fd), _) => !sys::poll_readable(fd, 0).unwrap_or(true),
            (None, Some(own)) => start_time(own, self.pid) == Some((self.start, false)),
            (None, None) => false,
        }
    }

    /// SIGKILL through the kept pidfd (it can only name the process we TERMed), or
    /// after the start-time check in the proven procfs.
    pub fn kill(&self, own: Option<&OwnProc>) -> Result<(), NotSent> {
        match (&self.pidfd, own) {
            (Some(fd), _) => Ok(sys::pidfd_send_signal(fd, libc::SIGKILL)?),
            (None, Some(own)) => signal(own, self.pid, self.start, libc::SIGKILL).map(drop),
            (None, None) => Err(NotSent::Gone),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::glob::Glob;
    use std::time::Duration;

    struct Fake {
        uids: HashMap<i32, u32>,
        cmd: HashMap<i32, Vec<u8>>,
        outside: Vec<i32>,
    }

    impl Details for Fake {
        fn uid(&mut self, pid: i32) -> Option<u32> {
            self.uids.get(&pid).copied()
        }
        fn cmdline(&mut self, pid: i32) -> Option<Vec<u8>> {
            self.cmd.get(&pid).cloned()
        }
        fn same_root(&mut self, pid: i32) -> bool {
            !self.outside.contains(&pid)
        }
    }

    fn proc(pid: i32, ppid: i32, state: u8, start: u64, ticks: u64) -> Proc {
        // `bare` counts a `Z` as a zombie (one thread).
        Proc::bare(pid, ppid, state, start, ticks)
    }

    fn rule(name: &str, action: Action) -> ReapRule {
        ReapRule {
            name: "r".into(),
            matches: vec![Glob::new(name)],
            cmdline: None,
            users: Vec::new(),
            states: Vec::new(),
            older_than: None,
            in_state_for: None,
            cpu_over: None,
            action,
        }
    }

    fn plan(
        rules: &[ReapRule],
        procs: &[Proc],
        names: &[(i32, &str)],
        fake: &mut Fake,
        clock: &StateClock,
    ) -> Vec<(i32, Act)> {
        let cfg = Config::default().reaper;
        let cfg = ReaperConfig {
            scope: Scope::Root,
            ..cfg
        };
        let users = Users::new(vec![crate::passwd::User {
            name: "alice".into(),
            uid: 1000,
            gid: 1000,
            home: "/h".into(),
            shell: "/bin/sh".into(),
        }]);
        let facts = Facts {
            now_ns: 1_000_000 * 1_000_000_000,
            btime: 999_000,
            ticks_per_sec: 100,
            self_pid: 50,
        };
        let p = Plan {
            cfg: &cfg,
            rules,
            facts,
            clock,
            users: &users,
        };
        let name = |pr: &Proc| {
            names
                .iter()
                .find(|(pid, _)| *pid == pr.pid)
                .map_or(&b""[..], |(_, n)| n.as_bytes())
        };
        p.run(procs, name, fake)
            .into_iter()
            .map(|d| (d.pid, d.act))
            .collect()
    }

    #[test]
    fn never_pid1_self_ancestors_root_or_outside() {
        // 1 init, 40 supervisor (parent of 50, the agent), 60 alice's job, 70 root's
        // job, 80 alice's job outside our root.
        let procs = [
            proc(1, 0, b'S', 1, 0),
            proc(40, 1, b'S', 2, 0),
            proc(50, 40, b'S', 3, 0),
            proc(60, 1, b'R', 4, 0),
            proc(70, 1, b'R', 5, 0),
            proc(80, 1, b'R', 6, 0),
        ];
        let names: Vec<(i32, &str)> = procs.iter().map(|p| (p.pid, "x")).collect();
        let uids = [
            (1, 0),
            (40, 1000),
            (50, 1000),
            (60, 1000),
            (70, 0),
            (80, 1000),
        ]
        .into_iter()
        .collect();
        let mut fake = Fake {
            uids,
            cmd: HashMap::new(),
            outside: vec![80],
        };
        let got = plan(
            &[rule("*", Action::Kill)],
            &procs,
            &names,
            &mut fake,
            &StateClock::default(),
        );
        assert_eq!(got, vec![(60, Act::Kill)]);
        let mut root_rule = rule("*", Action::Kill);
        root_rule.users = vec!["root".into()];
        let got = plan(
            &[root_rule],
            &procs,
            &names,
            &mut fake,
            &StateClock::default(),
        );
        assert_eq!(got, vec![(70, Act::Kill)]);
    }

    #[test]
    fn zombies_signal_their_parent() {
        let procs = [
            proc(1, 0, b'S', 1, 0),
            proc(60, 1, b'S', 4, 0),
            proc(61, 60, b'Z', 5, 0),
            proc(62, 1, b'Z', 6, 0),
        ];
        let names = [(1, "init"), (60, "parent"), (61, "zomb"), (62, "zomb")];
        let uids = [(1, 0), (60, 1000), (61, 1000), (62, 1000)]
            .into_iter()
            .collect();
        let mut fake = Fake {
            uids,
            cmd: HashMap::new(),
            outside: vec![],
        };
        let clock = StateClock::default();
        let got = plan(
            &[rule("zomb", Action::Term)],
            &procs,
            &names,
            &mut fake,
            &clock,
        );
        // 62's parent is PID 1: never signalled, so only logged.
        assert_eq!(got, vec![(61, Act::SigchldParent), (62, Act::Log)]);
        let got = plan(
            &[rule("zomb", Action::Kill)],
            &procs,
            &names,
            &mut fake,
            &clock,
        );
        assert_eq!(got, vec![(61, Act::KillParent), (62, Act::Log)]);
    }

    #[test]
    fn criteria_all_must_hold() {
        let procs = [proc(60, 1, b'T', 100, 700), proc(61, 1, b'R', 100, 700)];
        let names = [(60, "job"), (61, "job")];
        let uids = [(60, 1000), (61, 1000)].into_iter().collect();
        let cmd = [(60, b"job --forever".to_vec()), (61, b"job".to_vec())]
            .into_iter()
            .collect();
        let mut fake = Fake {
            uids,
            cmd,
            outside: vec![],
        };
        let mut r = rule("job", Action::Term);
        r.states = vec![ProcState::Stopped];
        r.cpu_over = Some(Duration::from_secs(5));
        r.cmdline = Some(Glob::new("*--forever*"));
        r.in_state_for = Some(Duration::from_secs(60));
        let mut clock = StateClock::default();
        // Seen stopped only now: not yet.
        clock.observe(&procs, 1_000_000 * 1_000_000_000);
        assert_eq!(
            plan(std::slice::from_ref(&r), &procs, &names, &mut fake, &clock),
            vec![]
        );
        // Stopped since two minutes ago.
        let mut c2 = StateClock::default();
        c2.observe(&procs, (1_000_000 - 120) * 1_000_000_000);
        assert_eq!(
            plan(std::slice::from_ref(&r), &procs, &names, &mut fake, &c2),
            vec![(60, Act::Term)]
        );
        r.users = vec!["alice".into()];
        assert_eq!(
            plan(std::slice::from_ref(&r), &procs, &names, &mut fake, &c2),
            vec![(60, Act::Term)]
        );
        r.users = vec!["bob".into()];
        assert_eq!(plan(&[r], &procs, &names, &mut fake, &c2), vec![]);
    }

    #[test]
    fn a_state_clock_from_the_future_restarts_now() {
        // Saved at 1000 s; the wall clock was set back to 400 s since. Counting
        // restarts at 400 s, so the process is held from then, not from 1000 s (a
        // later start that would read 0 until then, and a corrected file).
        let procs = [proc(60, 1, b'T', 100, 0), proc(61, 1, b'T', 100, 0)];
        let s = |n: u64| n * 1_000_000_000;
        let mut clock = StateClock::default();
        clock.since.insert((60, 100), (b'T', s(1000)));
        clock.since.insert((61, 100), (b'T', s(300)));
        clock.observe(&procs, s(400));
        assert_eq!(clock.since[&(60, 100)], (b'T', s(400)));
        assert_eq!(clock.since[&(61, 100)], (b'T', s(300)));
        assert_eq!(clock.in_state_s(&procs[0], s(460)), 60);
        assert_eq!(clock.in_state_s(&procs[1], s(460)), 160);
    }

    #[test]
    fn the_boot_is_named_by_boot_id_else_btime() {
        let id = b"2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59\n";
        assert_eq!(
            boot_token(Some(id), Some(5)).as_deref(),
            Some("2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59")
        );
        assert_eq!(boot_token(None, Some(5)).as_deref(), Some("btime-5"));
        // Not one word of hex and dashes (it goes into a line of the state file).
        assert_eq!(
            boot_token(Some(b"a b\n"), Some(5)).as_deref(),
            Some("btime-5")
        );
        assert_eq!(boot_token(Some(b"\n"), None), None);
    }

    #[test]
    fn ancestors_are_followed_to_the_top() {
        let procs = [
            proc(1, 0, b'S', 1, 0),
            proc(10, 1, b'S', 1, 0),
            proc(20, 10, b'S', 1, 0),
            proc(30, 20, b'S', 1, 0),
        ];
        assert_eq!(protected_pids(&procs, 30), vec![1, 30, 20, 10]);
    }
}
