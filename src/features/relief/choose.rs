//! Which process memory relief stops (pure): from one process scan, the
//! `[relief]` keys and the facts that cost a read (`Facts`: owner, root
//! directory, the kernel's OOM figures), asked for only when the cheaper tests
//! leave a process in the running.
//!
//! Never a process the reaper never touches (`reaper::guard`: PID 1, the agent
//! and its ancestors, kernel threads, `[reaper] protect`, processes outside
//! `[reaper] scope`), nor one of a user `user` does not allow (anyone but root
//! by default), nor one the kernel's OOM killer is told never to kill
//! (`oom_score_adj` -1000), nor a zombie or a process without memory. Among the
//! rest, names in `prefer` come first and names in `avoid` last (a name in both
//! counts as neither); within that, the highest `oom_score` (`pick = oom_score`,
//! the process the kernel would kill) or the largest resident set (`pick =
//! rss`), the other figure breaking ties, then the youngest.

use crate::config::{Pick, Reaper, Relief};
use crate::features::reaper::guard::{Guard, user_allowed};
use crate::glob;
use crate::passwd::Users;
use crate::scan::Proc;

/// `oom_score_adj` of a process the kernel's OOM killer never kills.
pub const OOM_SCORE_ADJ_MIN: i32 = -1000;

/// The kernel's OOM figures of a process (`/proc/PID/oom_score`, `oom_score_adj`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Oom {
    pub score: u32,
    pub adj: i32,
}

/// Per-process facts that cost a read; `None` (or `false`) when they cannot be
/// read, which leaves the process out.
pub trait Facts {
    /// Real uid.
    fn uid(&mut self, pid: i32) -> Option<u32>;
    /// Whether its root directory is the agent's.
    fn same_root(&mut self, pid: i32) -> bool;
    fn oom(&mut self, pid: i32) -> Option<Oom>;
}

/// The process chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Victim {
    /// Its place in the scan.
    pub index: usize,
    pub pid: i32,
    pub start: u64,
    pub uid: u32,
    pub rss_pages: u64,
    pub oom_score: u32,
}

/// Everything the choice depends on besides the scan.
pub struct Choice<'a> {
    pub cfg: &'a Relief,
    /// `protect` and `scope`, which relief honours as the reaper does.
    pub reaper: &'a Reaper,
    pub users: &'a Users,
    pub self_pid: i32,
}

impl Choice<'_> {
    /// The process to stop in one scan (`procs` sorted by pid; `name` gives each
    /// name), if any may be.
    pub fn run<'p>(
        &self,
        procs: &'p [Proc],
        name: impl Fn(&'p Proc) -> &'p [u8],
        facts: &mut dyn Facts,
    ) -> Option<Victim> {
        let guard = Guard::new(
            procs,
            self.self_pid,
            &self.reaper.protect,
            self.reaper.scope,
        );
        let mut best: Option<(Rank, Victim)> = None;
        for (index, p) in procs.iter().enumerate() {
            let name = name(p);
            if p.zombie || p.rss_pages == 0 || guard.spares(p, name) {
                continue;
            }
            let tier = self.tier(name);
            // A worse tier than the best so far cannot win: no need to read more.
            if best.as_ref().is_some_and(|(r, _)| r.tier_order > tier) {
                continue;
            }
            let Some(uid) = facts.uid(p.pid) else {
                continue;
            };
            if !user_allowed(&self.cfg.users, uid, self.users)
                || !guard.in_scope(|| facts.same_root(p.pid))
            {
                continue;
            }
            let Some(oom) = facts.oom(p.pid).filter(|o| o.adj > OOM_SCORE_ADJ_MIN) else {
                continue;
            };
            let rank = self.rank(tier, p, oom.score);
            if best.as_ref().is_none_or(|(b, _)| rank > *b) {
                let v = Victim {
                    index,
                    pid: p.pid,
                    start: p.start,
                    uid,
                    rss_pages: p.rss_pages,
                    oom_score: oom.score,
                };
                best = Some((rank, v));
            }
        }
        best.map(|(_, v)| v)
    }

    /// 2 for a name in `prefer`, 0 for one in `avoid`, 1 otherwise (and for one in
    /// both): the higher, the sooner chosen.
    fn tier(&self, name: &[u8]) -> u8 {
        let prefer = glob::any(&self.cfg.prefer, name);
        let avoid = glob::any(&self.cfg.avoid, name);
        match (prefer, avoid) {
            (true, false) => 2,
            (false, true) => 0,
            _ => 1,
        }
    }

    fn rank(&self, tier_order: u8, p: &Proc, oom_score: u32) -> Rank {
        let (first, second) = match self.cfg.pick {
            Pick::OomScore => (u64::from(oom_score), p.rss_pages),
            Pick::Rss => (p.rss_pages, u64::from(oom_score)),
        };
        Rank {
            tier_order,
            first,
            second,
            start: p.start,
            pid: p.pid,
        }
    }
}

/// How a candidate ranks: the greatest wins (fields compared in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    tier_order: u8,
    first: u64,
    second: u64,
    /// The youngest first, on a tie.
    start: u64,
    pid: i32,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Scope};
    use crate::glob::Glob;
    use crate::passwd::parse_passwd;
    use std::collections::HashMap;

    /// The facts of each pid: (uid, same root, oom_score, oom_score_adj), and
    /// which pids were asked about.
    #[derive(Default)]
    struct Fake {
        facts: HashMap<i32, (u32, bool, u32, i32)>,
        asked: Vec<i32>,
    }

    impl Facts for Fake {
        fn uid(&mut self, pid: i32) -> Option<u32> {
            self.asked.push(pid);
            self.facts.get(&pid).map(|f| f.0)
        }
        fn same_root(&mut self, pid: i32) -> bool {
            self.facts.get(&pid).is_some_and(|f| f.1)
        }
        fn oom(&mut self, pid: i32) -> Option<Oom> {
            let f = self.facts.get(&pid)?;
            Some(Oom {
                score: f.2,
                adj: f.3,
            })
        }
    }

    /// A process: pid, name, rss pages; its facts: uid, oom_score, adj (same
    /// root unless `chrooted`).
    struct P(i32, &'static str, u64, u32, u32, i32);

    struct Host {
        procs: Vec<Proc>,
        names: HashMap<i32, &'static str>,
        fake: Fake,
    }

    fn host(ps: &[P], chrooted: &[i32]) -> Host {
        let mut h = Host {
            procs: vec![Proc::bare(1, 0, b'S', 1, 0)],
            names: HashMap::from([(1, "init")]),
            fake: Fake::default(),
        };
        h.procs[0].rss_pages = 100_000;
        h.fake.facts.insert(1, (1000, true, 999, 0));
        for &P(pid, name, rss, uid, score, adj) in ps {
            let mut p = Proc::bare(pid, 1, b'S', pid as u64 * 10, 0);
            p.rss_pages = rss;
            h.procs.push(p);
            h.names.insert(pid, name);
            let root = !chrooted.contains(&pid);
            h.fake.facts.insert(pid, (uid, root, score, adj));
        }
        h
    }

    fn choose(h: &mut Host, cfg: &Relief, reaper: &Reaper) -> Option<i32> {
        let users = Users::new(parse_passwd(
            b"root:x:0:0::/:/bin/sh\nalice:x:1000:1000::/h:/bin/sh\nbob:x:1001:1001::/h:/bin/sh\n",
        ));
        let c = Choice {
            cfg,
            reaper,
            users: &users,
            self_pid: 50,
        };
        let names = &h.names;
        c.run(&h.procs, |p| names[&p.pid].as_bytes(), &mut h.fake)
            .map(|v| v.pid)
    }

    fn globs(g: &[&str]) -> Vec<Glob> {
        g.iter().map(|g| Glob::new(g)).collect()
    }

    #[test]
    fn the_highest_oom_score_or_the_largest_rss() {
        let c = Config::default();
        let ps = [
            P(10, "small", 100, 1000, 300, 0),
            P(20, "big", 5000, 1000, 200, 0),
            P(30, "scored", 1000, 1001, 800, 0),
        ];
        let mut h = host(&ps, &[]);
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(30));
        let mut rss = c.relief.clone();
        rss.pick = Pick::Rss;
        assert_eq!(choose(&mut h, &rss, &c.reaper), Some(20));
        // A tie on the score: the larger; on both: the youngest.
        let mut h = host(
            &[P(10, "a", 100, 1000, 500, 0), P(20, "b", 200, 1000, 500, 0)],
            &[],
        );
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(20));
        let mut h = host(
            &[P(20, "a", 100, 1000, 5, 0), P(10, "b", 100, 1000, 5, 0)],
            &[],
        );
        h.procs.sort_by_key(|p| p.pid);
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(20));
    }

    #[test]
    fn never_what_the_reaper_spares_nor_root_nor_oom_score_adj_min() {
        let mut c = Config::default();
        c.reaper.protect = globs(&["sshd*"]);
        let ps = [
            P(40, "supervisord", 9000, 1000, 990, 0), // the agent's parent
            P(50, "system-agent", 9000, 1000, 990, 0),
            P(60, "sshd-session", 9000, 1000, 990, 0),
            P(70, "rootjob", 9000, 0, 990, 0),
            P(80, "pinned", 9000, 1000, 990, -1000),
            P(90, "zombie", 9000, 1000, 990, 0),
            P(95, "nomem", 0, 1000, 990, 0),
            P(99, "hog", 10, 1001, 1, 0),
        ];
        let mut h = host(&ps, &[]);
        h.procs.iter_mut().for_each(|p| match p.pid {
            50 => p.ppid = 40,
            90 => p.zombie = true,
            _ => {}
        });
        let mut kthread = Proc::bare(2, 0, b'S', 1, 0);
        (kthread.kthread, kthread.rss_pages) = (true, 9000);
        h.procs.insert(1, kthread);
        h.names.insert(2, "kworker");
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(99));
        // Root's only when `user` names root; then named users only.
        let mut root = c.relief.clone();
        root.users = vec!["root".into()];
        assert_eq!(choose(&mut h, &root, &c.reaper), Some(70));
        let mut alice = c.relief.clone();
        alice.users = vec!["alice".into()];
        assert_eq!(choose(&mut h, &alice, &c.reaper), None);
        // Nothing left: no victim.
        let mut h = host(&[P(70, "rootjob", 9000, 0, 990, 0)], &[]);
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), None);
    }

    #[test]
    fn under_scope_root_another_root_directory_is_out_of_reach() {
        let c = Config::default();
        let ps = [
            P(10, "inside", 100, 1000, 100, 0),
            P(20, "outside", 9000, 1000, 900, 0),
        ];
        let mut h = host(&ps, &[20]);
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(10));
        let mut all = c.reaper.clone();
        all.scope = Scope::All;
        assert_eq!(choose(&mut h, &c.relief, &all), Some(20));
    }

    #[test]
    fn prefer_wins_and_avoid_only_when_nothing_else_is_left() {
        let mut c = Config::default();
        c.relief.prefer = globs(&["hog*"]);
        c.relief.avoid = globs(&["postgres", "both"]);
        let ps = [
            P(10, "hog", 10, 1000, 1, 0),
            P(20, "postgres", 9000, 1000, 999, 0),
            P(30, "editor", 500, 1000, 500, 0),
        ];
        let mut h = host(&ps, &[]);
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(10));
        // Once a preferred one is found, the names of a worse tier are not read.
        assert_eq!(h.fake.asked, [10]);
        let mut h = host(&ps[1..], &[]);
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(30));
        let mut h = host(&ps[1..2], &[]);
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(20));
        // A name in both lists counts as neither.
        c.relief.prefer = globs(&["hog*", "both"]);
        let mut h = host(
            &[
                P(10, "both", 10, 1000, 999, 0),
                P(20, "hogger", 10, 1000, 1, 0),
            ],
            &[],
        );
        assert_eq!(choose(&mut h, &c.relief, &c.reaper), Some(20));
    }
}
