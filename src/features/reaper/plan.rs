//! Which processes the reaper's rules select, and why (pure): from one process
//! scan, the rules and a few facts, asking `Details` only for what a rule needs
//! (owner, command line, root directory), cheapest test first. What is never
//! selected, whatever a rule says, is `guard`'s to decide; how long a process has
//! been in its state is the `StateClock`'s.

use super::guard::{self, Guard};
use crate::config::{Action, ProcState, ReapRule, Reaper as ReaperConfig};
use crate::passwd::Users;
use crate::scan::Proc;
use std::collections::HashMap;
use std::time::Duration;

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

/// `3d`, `5h`, `12m`, `40s`.
pub fn fmt_secs(s: u64) -> String {
    crate::timefmt::fmt_age(s)
}

/// A rule's minimum `min` (when it has one) against the seconds `value` gives:
/// `None` when under it; otherwise the reason, `what 2h >= 1h`, in `why`.
fn at_least(
    why: &mut Vec<String>,
    what: &str,
    min: Option<Duration>,
    value: impl FnOnce() -> u64,
) -> Option<()> {
    let Some(min) = min else {
        return Some(());
    };
    let v = value();
    if v < min.as_secs() {
        return None;
    }
    why.push(format!(
        "{what} {} >= {}",
        fmt_secs(v),
        fmt_secs(min.as_secs())
    ));
    Some(())
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
        let guard = Guard::new(
            procs,
            self.facts.self_pid,
            &self.cfg.protect,
            self.cfg.scope,
        );
        let mut out = Vec::new();
        for p in procs {
            if guard.spares(p, name(p)) {
                continue;
            }
            for (ri, rule) in self.rules.iter().enumerate() {
                let Some(reason) = self.matches(&guard, rule, p, name(p), details) else {
                    continue;
                };
                let uid = details.uid(p.pid).unwrap_or(u32::MAX);
                let act = self.act(&guard, rule, p, procs, &name, details);
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

    /// What `rule`'s action comes to for `p`: for a zombie, a signal to its
    /// parent when that may be touched, otherwise only a report.
    fn act<'p>(
        &self,
        guard: &Guard,
        rule: &ReapRule,
        p: &Proc,
        procs: &'p [Proc],
        name: &impl Fn(&'p Proc) -> &'p [u8],
        details: &mut dyn Details,
    ) -> Act {
        match (p.zombie, rule.action) {
            (_, Action::Log) => Act::Log,
            (false, Action::Term) => Act::Term,
            (false, Action::Kill) => Act::Kill,
            (true, action) => {
                let Ok(i) = procs.binary_search_by_key(&p.ppid, |q| q.pid) else {
                    return Act::Log;
                };
                let parent = &procs[i];
                if !self.parent_allowed(guard, rule, parent, name(parent), details) {
                    Act::Log
                } else if action == Action::Kill {
                    Act::KillParent
                } else {
                    Act::SigchldParent
                }
            }
        }
    }

    /// The reason `rule` selects `p`, or `None`. Cheap tests (from the scan) first.
    fn matches(
        &self,
        guard: &Guard,
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
        let facts = &self.facts;
        at_least(&mut why, "age", rule.older_than, || facts.age_s(p))?;
        let cpu = || p.ticks / facts.ticks_per_sec.max(1);
        at_least(&mut why, "cpu", rule.cpu_over, cpu)?;
        let held = || self.clock.in_state_s(p, facts.now_ns);
        at_least(&mut why, "in state", rule.in_state_for, held)?;
        let uid = details.uid(p.pid)?;
        if !guard::user_allowed(&rule.users, uid, self.users) {
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
        if !guard.in_scope(|| details.same_root(who)) {
            return None;
        }
        Some(why.join(", "))
    }

    /// Whether a zombie's parent may be signalled: not protected, and allowed by the
    /// same user and scope rules as any process.
    fn parent_allowed(
        &self,
        guard: &Guard,
        rule: &ReapRule,
        parent: &Proc,
        name: &[u8],
        details: &mut dyn Details,
    ) -> bool {
        !guard.spares(parent, name)
            && details
                .uid(parent.pid)
                .is_some_and(|uid| guard::user_allowed(&rule.users, uid, self.users))
            && guard.in_scope(|| details.same_root(parent.pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Scope};
    use crate::glob::Glob;
    use crate::passwd::parse_passwd;

    struct Fake {
        uids: HashMap<i32, u32>,
        cmd: HashMap<i32, Vec<u8>>,
        outside: Vec<i32>,
    }

    impl Fake {
        /// Processes owned as `uids` says, without command lines, all in our root.
        fn owned(uids: &[(i32, u32)]) -> Fake {
            Fake {
                uids: uids.iter().copied().collect(),
                cmd: HashMap::new(),
                outside: Vec::new(),
            }
        }
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
        let users = Users::new(parse_passwd(b"alice:x:1000:1000::/h:/bin/sh\n"));
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
        ];
        let mut fake = Fake {
            outside: vec![80],
            ..Fake::owned(&uids)
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
        let mut fake = Fake::owned(&[(1, 0), (60, 1000), (61, 1000), (62, 1000)]);
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
        let cmd = [(60, b"job --forever".to_vec()), (61, b"job".to_vec())];
        let mut fake = Fake {
            cmd: cmd.into_iter().collect(),
            ..Fake::owned(&[(60, 1000), (61, 1000)])
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
}
