//! Disk cleanup (`[cleanup.NAME]`): remove the old files the rules name, and
//! nothing else, ever. Each cycle runs every rule within one budget (half the
//! interval, between 100 ms and 2 s, and 500,000 directory entries), ended early
//! by SIGTERM, and tells per rule what it did (`cleanup_done`). What a rule
//! removes is decided in `select` (pure); `walk` is the safe walk that finds it
//! and removes it through `cx.effects`; this module keeps what each rule
//! remembers from one cycle to the next.

pub mod select;
mod walk;

use super::{Cx, Feature, stopping};
use crate::config::Config;
use crate::log::{Level, Logger};
use crate::mounts::Mounts;
use crate::reading::DiskReading;
use crate::sys;
use std::path::Path;
use std::time::Duration;
use walk::Summary;

/// Directory entries one cycle may examine, over all rules.
const ENTRIES_PER_CYCLE: u64 = 500_000;

#[derive(Default)]
pub struct Cleanup {
    /// Per rule (config order), until the configuration is loaded again.
    memory: Vec<Memory>,
    /// Scratch for a rule path (see `walk::Ctx::path_buf`).
    path_buf: Vec<u8>,
}

/// What a rule remembers from one cycle to the next, until the configuration is
/// loaded again.
#[derive(Debug, Default)]
pub struct Memory {
    /// The rule's first error of the previous cycle: the same error again is not
    /// logged again (a directory it may not read stays so; one line is enough).
    pub last_error: String,
    /// Whether a mount point inside the tree was met since the configuration was
    /// loaded: the first one is told (`cleanup_done skipped_mount=`), the rest not.
    pub met_mount: bool,
    /// The first mount point met, until `cleanup_done` tells it.
    pub new_mount: Option<Vec<u8>>,
}

impl Feature for Cleanup {
    fn name(&self) -> &'static str {
        "cleanup"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        !cx.cfg.cleanup.is_empty()
    }

    /// Every rule in config order, until the cycle's budget is spent.
    fn step(&mut self, cx: &mut Cx) {
        let signals = cx.signals;
        let stop = move || stopping(signals);
        let window =
            (cx.cfg.agent.interval / 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let deadline = sys::monotonic_ns() + window.as_nanos() as u64;
        let mut budget = Budget::new(deadline, ENTRIES_PER_CYCLE, &stop);
        let now_s = (sys::realtime_ns() / 1_000_000_000) as i64;
        let cfg = cx.cfg;
        self.memory.resize_with(cfg.cleanup.len(), Default::default);
        for (rule, memory) in cfg.cleanup.iter().zip(&mut self.memory) {
            let mut run = walk::Ctx {
                rule,
                now_s,
                disk_warn: cfg.thresholds.disk.warn,
                disks: &cx.reading.disks,
                eta_warn: cfg
                    .thresholds
                    .disk_eta
                    .warn
                    .or(cfg.thresholds.disk_eta.crit),
                log: &mut *cx.log,
                effects: &mut *cx.effects,
                budget: &mut budget,
                memory: &mut *memory,
                path_buf: &mut self.path_buf,
                mounts: &mut *cx.mounts,
                sum: Summary::default(),
            };
            walk::run(&mut run);
            let sum = run.sum;
            if sum.errors == 0 {
                memory.last_error.clear();
            }
            let spent = budget.spent;
            let mount = memory.new_mount.take();
            if sum.files > 0 || sum.new_error || spent.is_some() || mount.is_some() {
                let dry_run = cx.effects.dry_run();
                log_done(cx.log, &rule.name, &sum, spent, mount.as_deref(), dry_run);
            }
            if spent.is_some() {
                break;
            }
        }
    }

    /// Errors are reported afresh, and the first mount point met told again.
    fn reload(&mut self, _old: &Config, _new: &Config) {
        self.memory.clear();
    }
}

/// `disk_filling`: the rate (bytes a second) at which the watched mount on the
/// same mount as `path` is filling, when its forecast says it is; `None` when it
/// is not filling or no watched mount (`[disk] mounts`) is there.
fn filling_rate(mounts: &Mounts, disks: &[DiskReading], path: &Path) -> Option<f64> {
    let mount = mounts.disk_on_same_mount(path)?;
    let d = disks.iter().find(|d| d.mount == mount)?;
    d.space.eta_s.and(d.space.rate)
}

/// What one cycle may spend on cleanup, over all rules.
pub struct Budget<'a> {
    pub deadline_ns: u64,
    pub entries_left: u64,
    /// True when the agent must stop (SIGTERM), so the walk ends at once.
    pub stop: &'a dyn Fn() -> bool,
    /// Why the budget ran out, once it has.
    pub spent: Option<&'static str>,
    ticks: u32,
}

impl<'a> Budget<'a> {
    pub fn new(deadline_ns: u64, entries: u64, stop: &'a dyn Fn() -> bool) -> Budget<'a> {
        Budget {
            deadline_ns,
            entries_left: entries,
            stop,
            spent: None,
            ticks: 0,
        }
    }

    /// Charges one entry; false once the budget is spent.
    fn take(&mut self) -> bool {
        if self.spent.is_some() {
            return false;
        }
        if self.entries_left == 0 {
            self.spent = Some("entries");
            return false;
        }
        self.entries_left -= 1;
        self.ticks += 1;
        if self.ticks.is_multiple_of(256) {
            if (self.stop)() {
                self.spent = Some("signal");
            } else if sys::monotonic_ns() >= self.deadline_ns {
                self.spent = Some("time");
            }
        }
        self.spent.is_none()
    }
}

/// A rule's `cleanup_done` line.
fn log_done(
    log: &mut Logger,
    rule: &str,
    sum: &Summary,
    spent: Option<&str>,
    mount: Option<&[u8]>,
    dry_run: bool,
) {
    let mut e = log
        .event(Level::Info, "cleanup_done")
        .str("rule", rule)
        .u64("files", sum.files)
        .u64("bytes", sum.bytes)
        .u64("errors", sum.errors)
        .opt("budget_spent", spent);
    if let Some(m) = mount {
        // A mount point in the tree, not entered: told once per load.
        e = e.bytes("skipped_mount", m);
    }
    e.opt("dry_run", dry_run.then_some("yes")).emit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Action;
    use crate::features::bench::{self, Bench};
    use std::path::{Path, PathBuf};
    use std::time::SystemTime;

    const DAY: u64 = 86_400;

    /// A fixture tree of its own, removed when dropped.
    struct Tree(PathBuf);

    impl Tree {
        /// `(path, bytes, days old)`: a file, or a directory when the path ends
        /// in `/` (dated once all is made, since its entries change its time).
        fn new(tag: &str, entries: &[(&str, usize, u64)]) -> Tree {
            let tree = Tree(bench::temp_dir(&format!("cleanup-{tag}")));
            for &(rel, len, days) in entries {
                let path = tree.0.join(rel);
                if rel.ends_with('/') {
                    std::fs::create_dir_all(&path).expect("create a dir");
                } else {
                    std::fs::write(&path, vec![b'x'; len]).expect("write a file");
                    age(&path, days);
                }
            }
            for &(rel, _, days) in entries.iter().filter(|e| e.0.ends_with('/')) {
                age(&tree.0.join(rel), days);
            }
            tree
        }

        /// A recorded action, with its path relative to the tree.
        fn show(&self, a: &Action) -> String {
            let Action::Unlink { path, dir } = a else {
                return format!("{a:?}");
            };
            let root = self.0.as_os_str().as_encoded_bytes();
            let rel = path.strip_prefix(root).unwrap_or(path);
            let kind = if *dir { "rmdir" } else { "unlink" };
            format!("{kind} {}", String::from_utf8_lossy(rel))
        }

        /// Every file and directory in it, sorted.
        fn contents(&self) -> Vec<PathBuf> {
            fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
                for e in std::fs::read_dir(dir).expect("read the tree").flatten() {
                    out.push(e.path());
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        walk(&e.path(), out);
                    }
                }
            }
            let mut out = Vec::new();
            walk(&self.0, &mut out);
            out.sort();
            out
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Sets the modification time of `path` to `days` ago.
    fn age(path: &Path, days: u64) {
        let then = SystemTime::now() - std::time::Duration::from_secs(days * DAY);
        let f = std::fs::File::open(path).expect("open to date it");
        f.set_modified(then).expect("set the mtime");
    }

    /// One cycle's step of the rule `[cleanup.t]` (`rule` beyond its paths) over
    /// the tree, with `thresholds`: what it would remove, in the order asked, and
    /// its lines (`cleanup` per removal, then `cleanup_done`).
    fn dry_step(
        tag: &str,
        tree: &Tree,
        rule: &str,
        thresholds: &str,
    ) -> (Vec<String>, Vec<String>) {
        let ini = format!(
            "[thresholds]\n{thresholds}\n[cleanup.t]\npaths = {}\n{rule}",
            tree.0.display()
        );
        let mut bench = Bench::new(tag, &ini);
        let mut cleanup = Cleanup::default();
        cleanup.step(&mut bench.cx());
        let actions = bench.effects.take().iter().map(|a| tree.show(a)).collect();
        let lines = [bench.events("cleanup"), bench.events("cleanup_done")].concat();
        (actions, lines)
    }

    #[test]
    fn a_dry_run_lists_what_a_rule_would_remove_and_removes_nothing() {
        let tree = Tree::new(
            "always",
            &[
                ("old.log", 3, 10),
                ("new.log", 1, 0),
                ("old.txt", 1, 10),
                ("old.sock", 1, 10),
                ("keep.log", 1, 10),
                ("sub/", 0, 10),
                ("sub/deep.log", 5, 10),
                ("young/", 0, 0),
                ("young/old.log", 7, 10),
            ],
        );
        let before = tree.contents();
        let rule = "match = *.log\nolder_than = 1d\nwhen = always\nrecursive = yes\n\
                    remove_empty_dirs = yes\nprotect = keep.*\n";
        let (mut actions, lines) = dry_step("cleanup-always", &tree, rule, "");
        // (In the order the directories list their entries.)
        actions.sort();
        assert_eq!(
            actions,
            [
                // `sub` is old, and the removal it would make leaves it empty.
                "rmdir /sub",
                "unlink /old.log",
                "unlink /sub/deep.log",
                "unlink /young/old.log",
            ]
        );
        let old_log = format!(
            "level=info event=cleanup rule=t path={}/old.log kind=file bytes=3 age=10d dry_run=yes",
            tree.0.display()
        );
        assert!(lines.contains(&old_log), "{lines:#?}");
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(lines.iter().all(|l| l.ends_with(" dry_run=yes")));
        assert_eq!(
            lines[4],
            "level=info event=cleanup_done rule=t files=4 bytes=15 errors=0 dry_run=yes"
        );
        assert_eq!(tree.contents(), before, "a dry run removes nothing");
    }

    #[test]
    fn a_disk_high_dry_run_would_remove_the_oldest_first() {
        let files = [
            ("b.gz", 1, 3),
            ("a.gz", 1, 2),
            ("c.gz", 1, 9),
            ("d.gz", 1, 0),
        ];
        let tree = Tree::new("high", &files);
        let rule = "match = *.gz\nolder_than = 1d\n";
        // At or above 0% used, the filesystem is always high: every old file goes,
        // oldest first.
        let (actions, lines) = dry_step("cleanup-high", &tree, rule, "disk_warn = 0");
        assert_eq!(actions, ["unlink /c.gz", "unlink /b.gz", "unlink /a.gz"]);
        assert_eq!(
            lines.last().map(String::as_str),
            Some("level=info event=cleanup_done rule=t files=3 bytes=3 errors=0 dry_run=yes")
        );
    }
}
