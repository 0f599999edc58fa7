//! The agent's own memory cgroup, read each cycle: inside a container or a
//! memory-limited service, `/proc/meminfo` shows the host's memory, and the
//! limit that binds is the group's (or a group's above it). At start and on each
//! reload the group is found from `<proc>/self/cgroup` under `[paths] cgroup`
//! (v2 there or in `unified/`, v1 in `memory/`; a group path missing there is a
//! container that sees only its own group: the mount itself); then each cycle
//! reads, through kept-open files, the limit of each level from the group up and,
//! where one is set, what the group uses of it: its usage without the inactive
//! page cache (what the kernel drops before it fails an allocation). The tightest
//! level wins. A v2 group's pressure files (PSI) are read too, where present.

use crate::error::Error;
use crate::procfs::cgroup::{inactive_file, parse_limit, parse_self_cgroup, parse_usage};
use crate::procfs::pressure::{Pressure, parse_pressure};
use crate::sample::{PRESSURE_KINDS, ProcFile};
use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

/// Levels read above the group, at most (a hierarchy is rarely deeper than 5).
const MAX_LEVELS: usize = 16;

/// What the group uses of its memory this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupMem {
    /// Bytes in use without the inactive page cache, at the level whose limit is
    /// the tightest (the group's own when none has a limit).
    pub used: u64,
    /// That level's limit; `None` when no level has one.
    pub limit: Option<u64>,
}

/// One level of the hierarchy, from the group up: its three files.
struct Level {
    limit: ProcFile,
    usage: ProcFile,
    stat: ProcFile,
}

/// The agent's memory group, found once per configuration.
pub struct Cgroup {
    /// `v1 /sys/fs/cgroup/memory/x` (for the start line), or why none was found.
    pub found: Result<String, String>,
    levels: Vec<Level>,
    /// A v2 group's `cpu.pressure`, `memory.pressure`, `io.pressure` (not the
    /// hierarchy's root, whose figures are the host's).
    pressure: [Option<ProcFile>; 3],
    buf: Vec<u8>,
}

impl Cgroup {
    /// No group looked for (`mem_scope = host`).
    pub fn none() -> Cgroup {
        Cgroup {
            found: Err("not looked for (mem_scope = host)".to_string()),
            levels: Vec::new(),
            pressure: [None, None, None],
            buf: Vec::new(),
        }
    }

    /// Finds the agent's group from `<proc_root>/self/cgroup` under `root`.
    pub fn new(proc_root: &Path, root: &Path) -> Cgroup {
        let mut g = Cgroup {
            found: Err(String::new()),
            levels: Vec::new(),
            pressure: [None, None, None],
            buf: Vec::with_capacity(4096),
        };
        let path = proc_root.join("self/cgroup");
        let text = match std::fs::read(&path) {
            Ok(t) => t,
            Err(e) => {
                g.found = Err(Error::io("read", &path, e).to_string());
                return g;
            }
        };
        let own = match parse_self_cgroup(&text) {
            Ok(own) => own,
            Err(e) => {
                g.found = Err(Error::parse(&path, e).to_string());
                return g;
            }
        };
        let v2_base = [root.to_path_buf(), root.join("unified")]
            .into_iter()
            .find(|b| b.join("cgroup.controllers").exists());
        let v2 = v2_base
            .as_ref()
            .zip(own.v2)
            .map(|(b, p)| (b, group_dir(b, p)));
        if let Some((base, dir)) = &v2 {
            if dir != *base {
                g.pressure =
                    PRESSURE_KINDS.map(|k| ProcFile::open_now(dir.join(format!("{k}.pressure"))));
            }
            g.levels = levels(base, dir, ["memory.max", "memory.current", "memory.stat"]);
            if !g.levels.is_empty() {
                g.found = Ok(format!("v2 {}", dir.display()));
                return g;
            }
        }
        let v1 = own.memory_v1.map(|p| (root.join("memory"), p));
        if let Some((base, p)) = v1.filter(|(b, _)| b.is_dir()) {
            let dir = group_dir(&base, p);
            let files = [
                "memory.limit_in_bytes",
                "memory.usage_in_bytes",
                "memory.stat",
            ];
            g.levels = levels(&base, &dir, files);
            if !g.levels.is_empty() {
                g.found = Ok(format!("v1 {}", dir.display()));
                return g;
            }
        }
        g.found = Err(format!(
            "no memory cgroup of the agent's under {} (per {})",
            root.display(),
            path.display()
        ));
        g
    }

    /// This cycle's figures into `mem` and `pressure`. Without a group nothing is
    /// touched (what was set when it was not found stays).
    pub fn sample(
        &mut self,
        mem: &mut Result<GroupMem, Error>,
        pressure: &mut [Option<Pressure>; 3],
    ) {
        for (slot, file) in pressure.iter_mut().zip(&mut self.pressure) {
            *slot = file
                .as_mut()
                .and_then(|f| f.parse(&mut self.buf, parse_pressure).ok());
        }
        if !self.levels.is_empty() {
            *mem = self.read();
        }
    }

    /// The tightest level's figures (the used share of its limit is the largest),
    /// or the group's own usage when no level has a limit.
    fn read(&mut self) -> Result<GroupMem, Error> {
        let mut best: Option<(f64, GroupMem)> = None;
        for i in 0..self.levels.len() {
            let Some(limit) = self.levels[i].limit.parse(&mut self.buf, parse_limit)? else {
                continue;
            };
            let used = self.used(i)?;
            let share = used as f64 / limit.max(1) as f64;
            if best.is_none_or(|(b, _)| share > b) {
                let limit = Some(limit);
                best = Some((share, GroupMem { used, limit }));
            }
        }
        match best {
            Some((_, g)) => Ok(g),
            None => Ok(GroupMem {
                used: self.used(0)?,
                limit: None,
            }),
        }
    }

    /// Level `i`'s usage without its inactive page cache.
    fn used(&mut self, i: usize) -> Result<u64, Error> {
        let level = &mut self.levels[i];
        let usage = level.usage.parse(&mut self.buf, parse_usage)?;
        let cache = inactive_file(level.stat.read(&mut self.buf)?);
        Ok(usage.saturating_sub(cache))
    }
}

/// The group `path` (from `/proc/self/cgroup`) under the hierarchy mounted at
/// `base`; `base` itself when it has no such directory (a container whose
/// cgroup mount is its own group) or the path is not plain (`..`).
fn group_dir(base: &Path, path: &[u8]) -> PathBuf {
    let rel = Path::new(OsStr::from_bytes(path));
    let plain = rel
        .components()
        .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
    let dir = base.join(rel.strip_prefix("/").unwrap_or(rel));
    if plain && dir.is_dir() {
        dir
    } else {
        base.to_path_buf()
    }
}

/// The levels from `dir` up to `base` that have all three `files` (limit, usage,
/// stat): the group and the groups above it.
fn levels(base: &Path, dir: &Path, files: [&str; 3]) -> Vec<Level> {
    let mut out = Vec::new();
    let mut d = dir.to_path_buf();
    for _ in 0..MAX_LEVELS {
        if files.iter().all(|f| d.join(f).exists()) {
            let [limit, usage, stat] = files.map(|f| ProcFile::new(d.join(f)));
            out.push(Level { limit, usage, stat });
        }
        if d == base || !d.pop() || !d.starts_with(base) {
            break;
        }
    }
    out
}

/// Why `mem` could not be judged against the group: none was found.
pub fn not_found(why: &str) -> Error {
    Error::io(
        "find",
        "the agent's memory cgroup",
        io::Error::other(why.to_string()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::bench::temp_dir;

    /// A fixture host: `proc/self/cgroup` and a cgroup tree, each file as given.
    fn tree(tag: &str, files: &[(&str, &str)]) -> PathBuf {
        let t = temp_dir(&format!("cgroup-{tag}"));
        for (rel, text) in files {
            let p = t.join(rel);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("dirs");
            std::fs::write(p, text).expect("a fixture file");
        }
        t
    }

    fn group(t: &Path) -> (Cgroup, Result<GroupMem, Error>) {
        let mut g = Cgroup::new(&t.join("proc"), &t.join("cg"));
        let mut mem = Err(not_found("not read"));
        g.sample(&mut mem, &mut [None, None, None]);
        (g, mem)
    }

    #[test]
    fn a_v2_group_and_the_tightest_level_above_it() {
        let t = tree(
            "v2",
            &[
                ("proc/self/cgroup", "0::/system.slice/agent.service\n"),
                ("cg/cgroup.controllers", "cpu memory\n"),
                ("cg/system.slice/memory.max", "1000000\n"),
                ("cg/system.slice/memory.current", "600000\n"),
                ("cg/system.slice/memory.stat", "inactive_file 100000\n"),
                ("cg/system.slice/agent.service/memory.max", "max\n"),
                ("cg/system.slice/agent.service/memory.current", "300000\n"),
                (
                    "cg/system.slice/agent.service/memory.stat",
                    "inactive_file 0\n",
                ),
                (
                    "cg/system.slice/agent.service/memory.pressure",
                    "some avg10=1.50 avg60=0.00 avg300=0.00 total=1\n\
                     full avg10=0.50 avg60=0.00 avg300=0.00 total=1\n",
                ),
            ],
        );
        let (mut g, mem) = group(&t);
        let dir = t.join("cg/system.slice/agent.service");
        assert_eq!(g.found, Ok(format!("v2 {}", dir.display())));
        // The slice's limit binds: 500,000 of 1,000,000 without its cache.
        let want = GroupMem {
            used: 500_000,
            limit: Some(1_000_000),
        };
        assert_eq!(mem.ok(), Some(want));
        // The service's own limit, tighter in share, wins once set.
        std::fs::write(dir.join("memory.max"), "400000\n").expect("write");
        let mut mem = Err(not_found("x"));
        let mut psi = [None, None, None];
        g.sample(&mut mem, &mut psi);
        let want = GroupMem {
            used: 300_000,
            limit: Some(400_000),
        };
        assert_eq!(mem.ok(), Some(want));
        assert_eq!(psi[1].map(|p| p.some.avg10), Some(1.5));
        assert!(psi[0].is_none(), "no cpu.pressure there");
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn a_v1_memory_group_beside_a_v2_hierarchy_without_the_controller() {
        let t = tree(
            "v1",
            &[
                ("proc/self/cgroup", "4:memory:/jobs/a\n1:cpu:/\n0::/\n"),
                ("cg/unified/cgroup.controllers", "hugetlb\n"),
                (
                    "cg/unified/cpu.pressure",
                    "some avg10=9.00 avg60=0 avg300=0 total=1\n",
                ),
                ("cg/memory/memory.limit_in_bytes", "9223372036854771712\n"),
                ("cg/memory/memory.usage_in_bytes", "9000000\n"),
                ("cg/memory/memory.stat", "total_inactive_file 0\n"),
                ("cg/memory/jobs/a/memory.limit_in_bytes", "104857600\n"),
                ("cg/memory/jobs/a/memory.usage_in_bytes", "62914560\n"),
                (
                    "cg/memory/jobs/a/memory.stat",
                    "inactive_file 1\ntotal_inactive_file 10485760\n",
                ),
            ],
        );
        let (g, mem) = group(&t);
        let dir = t.join("cg/memory/jobs/a");
        assert_eq!(g.found, Ok(format!("v1 {}", dir.display())));
        let want = GroupMem {
            used: 52_428_800,
            limit: Some(104_857_600),
        };
        assert_eq!(mem.ok(), Some(want));
        assert!(
            g.pressure.iter().all(Option::is_none),
            "the v2 root is the host's"
        );
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn a_container_sees_its_own_group_at_the_mount_without_a_limit() {
        let t = tree(
            "container",
            &[
                ("proc/self/cgroup", "0::/docker/0123abcd\n"),
                ("cg/cgroup.controllers", "memory\n"),
                ("cg/memory.max", "max\n"),
                ("cg/memory.current", "2000\n"),
                ("cg/memory.stat", "inactive_file 500\n"),
            ],
        );
        let (g, mem) = group(&t);
        assert_eq!(g.found, Ok(format!("v2 {}", t.join("cg").display())));
        let want = GroupMem {
            used: 1500,
            limit: None,
        };
        assert_eq!(mem.ok(), Some(want));
        let _ = std::fs::remove_dir_all(&t);
    }

    #[test]
    fn no_group_says_why_and_a_vanished_one_is_an_error() {
        let t = tree("none", &[("proc/self/cgroup", "0::/a/../../etc\n")]);
        let (g, mem) = group(&t);
        let why = g.found.expect_err("no group");
        assert!(
            why.starts_with("no memory cgroup of the agent's under "),
            "{why}"
        );
        assert_eq!(
            mem.err().map(|e| e.to_string()),
            Some("cannot find the agent's memory cgroup: not read".to_string()),
            "left as it was"
        );
        let (g, _) = group(&t.join("missing"));
        assert!(g.found.is_err_and(|e| e.starts_with("cannot read ")));
        let t2 = tree(
            "gone",
            &[
                ("proc/self/cgroup", "0::/\n"),
                ("cg/cgroup.controllers", "memory\n"),
                ("cg/memory.max", "100\n"),
                ("cg/memory.current", "50\n"),
                ("cg/memory.stat", "\n"),
            ],
        );
        let (mut g, mem) = group(&t2);
        assert_eq!(mem.ok().map(|m| m.used), Some(50));
        std::fs::write(t2.join("cg/memory.current"), "gone\n").expect("write");
        let mut mem = Ok(GroupMem {
            used: 0,
            limit: None,
        });
        g.sample(&mut mem, &mut [None, None, None]);
        assert!(mem.is_err_and(|e| e.to_string().contains("memory.current")));
        let _ = std::fs::remove_dir_all(&t);
        let _ = std::fs::remove_dir_all(&t2);
    }
}
