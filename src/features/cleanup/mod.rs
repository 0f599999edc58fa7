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
use crate::sys;
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
