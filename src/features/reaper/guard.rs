//! What the agent never signals, whatever a rule says, in one place for every
//! feature that signals processes (the reaper now, memory relief next): PID 1,
//! the agent and its ancestors, kernel threads, the names in `protect`, root's
//! processes unless a rule names `user = root`, and under `scope = root` every
//! process whose root directory is not the agent's or cannot be checked (so an
//! agent in a chroot never touches the host). Pure: the scan, the names and the
//! answers about root directories are given.

use crate::config::Scope;
use crate::glob::{self, Glob};
use crate::passwd::Users;
use crate::scan::Proc;

/// The rules, for one scan.
pub struct Guard<'a> {
    /// PID 1, the agent and its ancestors.
    pids: Vec<i32>,
    protect: &'a [Glob],
    scope: Scope,
}

impl<'a> Guard<'a> {
    /// `procs` sorted by pid; `self_pid` the agent's.
    pub fn new(procs: &[Proc], self_pid: i32, protect: &'a [Glob], scope: Scope) -> Guard<'a> {
        Guard {
            pids: protected_pids(procs, self_pid),
            protect,
            scope,
        }
    }

    /// Never touched, by what the scan shows: PID 1, the agent, its ancestors,
    /// kernel threads and protected names.
    pub fn spares(&self, p: &Proc, name: &[u8]) -> bool {
        p.kthread || self.pids.contains(&p.pid) || glob::any(self.protect, name)
    }

    /// Whether the scope lets a process be touched: under `scope = root` only when
    /// `same_root` (its root directory is the agent's; false when that cannot be
    /// checked), which is asked only then.
    pub fn in_scope(&self, same_root: impl FnOnce() -> bool) -> bool {
        self.scope == Scope::All || same_root()
    }
}

/// Whether a rule naming `names` (its `user =`) may touch a process of `uid`:
/// with no names anyone but root; otherwise the named users, root only when
/// named. A user missing from passwd matches nothing.
pub fn user_allowed(names: &[String], uid: u32, users: &Users) -> bool {
    if names.is_empty() {
        return uid != 0;
    }
    names
        .iter()
        .any(|u| users.uid_of(u) == Some(uid) || (u == "root" && uid == 0))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::passwd::parse_passwd;

    fn proc(pid: i32, ppid: i32) -> Proc {
        Proc::bare(pid, ppid, b'S', 1, 0)
    }

    #[test]
    fn ancestors_are_followed_to_the_top() {
        let procs = [proc(1, 0), proc(10, 1), proc(20, 10), proc(30, 20)];
        assert_eq!(protected_pids(&procs, 30), vec![1, 30, 20, 10]);
    }

    #[test]
    fn a_parent_loop_ends() {
        // A hostile or racing scan: 20 and 30 name each other.
        let procs = [proc(1, 0), proc(20, 30), proc(30, 20)];
        assert_eq!(protected_pids(&procs, 30), vec![1, 30, 20]);
    }

    #[test]
    fn spared_by_pid_thread_or_name() {
        let mut kthread = proc(2, 0);
        kthread.kthread = true;
        let procs = [proc(1, 0), kthread, proc(40, 1), proc(50, 40), proc(60, 1)];
        let protect = [Glob::new("sshd*")];
        let g = Guard::new(&procs, 50, &protect, Scope::Root);
        let spared: Vec<(i32, &str)> = [
            (&procs[0], "init"),
            (&procs[1], "kworker"),
            (&procs[2], "supervisord"),
            (&procs[3], "system-agent"),
            (&procs[4], "sshd-session"),
            (&procs[4], "job"),
        ]
        .into_iter()
        .filter(|(p, n)| g.spares(p, n.as_bytes()))
        .map(|(p, n)| (p.pid, n))
        .collect();
        assert_eq!(
            spared,
            [
                (1, "init"),
                (2, "kworker"),
                (40, "supervisord"),
                (50, "system-agent"),
                (60, "sshd-session")
            ]
        );
    }

    #[test]
    fn root_only_when_named_and_the_root_directory_only_under_scope_root() {
        let users = Users::new(parse_passwd(b"alice:x:1000:1000::/h:/bin/sh\n"));
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(user_allowed(&[], 1000, &users));
        assert!(!user_allowed(&[], 0, &users));
        assert!(user_allowed(&names(&["root"]), 0, &users));
        assert!(user_allowed(&names(&["alice"]), 1000, &users));
        assert!(!user_allowed(&names(&["alice"]), 1001, &users));
        assert!(!user_allowed(&names(&["bob"]), 1000, &users));
        let root = Guard::new(&[], 50, &[], Scope::Root);
        assert!(root.in_scope(|| true));
        assert!(!root.in_scope(|| false));
        let all = Guard::new(&[], 50, &[], Scope::All);
        assert!(all.in_scope(|| panic!("not asked under scope = all")));
    }
}
