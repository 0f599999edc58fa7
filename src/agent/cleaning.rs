//! Disk cleanup, the cycle's cleanup step (its rules and the safe walk are in
//! `cleanup.rs`): every `[cleanup.NAME]` rule within one budget per cycle (half
//! the interval, at most 2 s, and 500,000 directory entries), stopped by SIGTERM.

use super::Agent;
use crate::cleanup;
use crate::features::stopping;
use crate::log::Level;
use crate::signals::Signals;
use crate::sys;
use std::time::Duration;

impl Agent {
    pub(super) fn cleanup(&mut self, signals: Option<&Signals>) {
        if !self.actor() || self.cfg.cleanup.is_empty() {
            return;
        }
        let stop = || stopping(signals);
        let window =
            (self.cfg.agent.interval / 2).clamp(Duration::from_millis(100), Duration::from_secs(2));
        let mut budget = cleanup::Budget::new(
            sys::monotonic_ns() + window.as_nanos() as u64,
            500_000,
            &stop,
        );
        let now_s = (sys::realtime_ns() / 1_000_000_000) as i64;
        let dry_run = self.cfg.agent.dry_run;
        self.cleanup_memory
            .resize_with(self.cfg.cleanup.len(), Default::default);
        for (rule, memory) in self.cfg.cleanup.iter().zip(&mut self.cleanup_memory) {
            let mut ctx = cleanup::Ctx {
                now_s,
                dry_run,
                disk_warn: self.cfg.thresholds.disk.warn,
                log: &mut self.log,
                budget: &mut budget,
                memory,
                path_buf: &mut self.path_buf,
                mounts: &mut self.mounts,
            };
            let sum = cleanup::run(rule, &mut ctx);
            if sum.errors == 0 {
                memory.last_error.clear();
            }
            let spent = budget.spent;
            let mount = memory.new_mount.take();
            if sum.files > 0 || sum.new_error || spent.is_some() || mount.is_some() {
                let mut e = self
                    .log
                    .event(Level::Info, "cleanup_done")
                    .str("rule", &rule.name)
                    .u64("files", sum.files)
                    .u64("bytes", sum.bytes)
                    .u64("errors", sum.errors)
                    .opt("budget_spent", spent);
                if let Some(m) = &mount {
                    // A mount point in the tree, not entered: told once per load.
                    e = e.bytes("skipped_mount", m);
                }
                e.opt("dry_run", dry_run.then_some("yes")).emit();
            }
            if spent.is_some() {
                break;
            }
        }
    }
}
