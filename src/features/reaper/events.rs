//! The reaper's log lines: `reap` (a decision carried out, decided in a dry run,
//! or only reported) and `reap_failed` (a signal that was not sent, and why).

use super::Pending;
use super::plan::{Act, Decision, fmt_secs};
use crate::config::ProcState;
use crate::effects::NotSent;
use crate::features::Cx;
use crate::log::Level;

/// `reap`: a decision carried out (or, with `action = log`, `dry_run` or
/// `log_only`, only reported).
pub fn reap(
    cx: &mut Cx,
    d: &Decision,
    action: &str,
    target: Option<i32>,
    dry_run: bool,
    log_only: Option<&str>,
) {
    let name = proc_name(cx, d.pid);
    let user = cx
        .users
        .name(d.uid)
        .map(str::to_owned)
        .unwrap_or_else(|| d.uid.to_string());
    // A live group whose main thread exited shows `Z` without being a zombie.
    let state = match ProcState::of_letter(d.state) {
        Some(ProcState::Zombie) if !d.zombie => "other",
        Some(s) => s.name(),
        None => "other",
    };
    let rule = rule_name(cx, d.rule);
    let age = fmt_secs(d.age_s);
    let level = if action == Act::Log.name() {
        Level::Info
    } else {
        Level::Warn
    };
    let target = target.map(|t| t.to_string());
    cx.log
        .event(level, "reap")
        .i64("pid", d.pid as i64)
        .bytes("name", &name)
        .str("user", &user)
        .str("state", state)
        .str("age", &age)
        .str("action", action)
        .str("rule", &rule)
        .str("reason", &d.reason)
        .opt("target", target.as_deref())
        .opt("dry_run", dry_run.then_some("yes"))
        .opt("log_only", log_only)
        .emit();
}

/// `reap action=kill`: a SIGTERM that `grace` did not end.
pub fn escalated(cx: &mut Cx, p: &Pending, grace_ns: u64, dry_run: bool) {
    let rule = rule_name(cx, p.rule);
    let after = fmt_secs(grace_ns / 1_000_000_000);
    let name = proc_name(cx, p.pid);
    cx.log
        .event(Level::Warn, "reap")
        .i64("pid", p.pid as i64)
        .bytes("name", &name)
        .str("action", "kill")
        .str("rule", &rule)
        .str("reason", &format!("still running {after} after SIGTERM"))
        .opt("dry_run", dry_run.then_some("yes"))
        .emit();
}

/// `reap_failed`: a signal that was not sent, and why: the kernel's errno, or
/// `reason="pid reused"` when the pid names another process by now.
pub fn not_sent(
    cx: &mut Cx,
    pid: i32,
    rule: usize,
    action: &str,
    target: Option<i32>,
    why: &NotSent,
) {
    let name = proc_name(cx, pid);
    let rule = rule_name(cx, rule);
    let level = match why {
        NotSent::Reused => Level::Warn,
        _ => Level::Error,
    };
    let target = target.map(|t| t.to_string());
    let e = cx
        .log
        .event(level, "reap_failed")
        .i64("pid", pid as i64)
        .bytes("name", &name)
        .str("action", action)
        .str("rule", &rule)
        .opt("target", target.as_deref());
    match why {
        NotSent::Failed(err) => e
            .str("errno", &crate::error::errno_name(err))
            .str("error", &crate::error::errno_text(err))
            .emit(),
        _ => e.str("reason", "pid reused").emit(),
    }
}

/// The name of process `pid` in this cycle's scan (empty when it is not there).
fn proc_name(cx: &Cx, pid: i32) -> Vec<u8> {
    let scanner = &cx.scan.scanner;
    let procs = scanner.procs();
    procs
        .binary_search_by_key(&pid, |p| p.pid)
        .map(|i| scanner.name(&procs[i]).to_vec())
        .unwrap_or_default()
}

/// The name of rule `i` (`?` when a reload removed it).
fn rule_name(cx: &Cx, i: usize) -> String {
    cx.cfg
        .reap
        .get(i)
        .map_or("?", |r| r.name.as_str())
        .to_string()
}
