//! Memory relief's log lines: `relief` (a process chosen, and what was done to
//! it), `relief_done` (it exited, or relief stopped waiting for it, with the
//! memory available then), and `error what=relief` (a signal the kernel
//! refused, a shortage with nothing to choose, a PSI trigger lost).

use super::choose::Victim;
use super::decide::Reason;
use crate::effects::NotSent;
use crate::features::Cx;
use crate::log::{Event, Level};
use crate::procfs::meminfo::Meminfo;

/// A process chosen, with the memory figures that made it so.
pub struct Chosen {
    pub victim: Victim,
    pub name: Vec<u8>,
    pub reason: Reason,
    pub mem: Meminfo,
    /// PSI memory full avg10, when read.
    pub psi: Option<f64>,
}

/// `relief`: the process chosen and the action taken (or, with `action = log`,
/// `dry_run` or `log_only`, only reported).
pub fn relief(cx: &mut Cx, c: &Chosen, action: &str, dry_run: bool, log_only: Option<&str>) {
    let v = &c.victim;
    let user = cx
        .users
        .name(v.uid)
        .map(str::to_owned)
        .unwrap_or_else(|| v.uid.to_string());
    let rss = v.rss_pages.saturating_mul(cx.reading.page_size);
    let e = cx
        .log
        .event(Level::Warn, "relief")
        .i64("pid", v.pid as i64)
        .bytes("name", &c.name)
        .str("user", &user)
        .u64("rss", rss)
        .u64("oom_score", u64::from(v.oom_score));
    memory(e, &c.mem, c.psi)
        .str("reason", c.reason.name())
        .str("action", action)
        .opt("dry_run", dry_run.then_some("yes"))
        .opt("log_only", log_only)
        .emit();
}

/// `relief action=kill`: a SIGTERM that `grace` did not end while memory stayed
/// short.
pub fn escalated(
    cx: &mut Cx,
    pid: i32,
    name: &[u8],
    grace: &str,
    now: Option<(Meminfo, Option<f64>)>,
) {
    let e = cx
        .log
        .event(Level::Warn, "relief")
        .i64("pid", pid as i64)
        .bytes("name", name);
    let e = match &now {
        Some((m, psi)) => memory(e, m, *psi),
        None => e,
    };
    e.str("reason", &format!("still running {grace} after SIGTERM"))
        .str("action", "kill")
        .emit();
}

/// `relief_done`: the process exited (`exited=yes`), or relief stopped waiting
/// for it; `signal` is the last one sent, `after` the time from the first to its
/// exit (or to the end of the wait), and the memory figures are read as it is
/// said (once memory is no longer short, or a moment after the exit).
pub fn done(
    cx: &mut Cx,
    pid: i32,
    name: &[u8],
    signal: &str,
    exited: bool,
    after: &str,
    now: Option<Meminfo>,
) {
    let e = cx
        .log
        .event(Level::Info, "relief_done")
        .i64("pid", pid as i64)
        .bytes("name", name)
        .str("signal", signal)
        .str("exited", if exited { "yes" } else { "no" })
        .str("after", after);
    match now {
        Some(m) => e
            .u64("mem_available", m.available_kb.saturating_mul(1024))
            .u64("swap_free", m.swap_free_kb.saturating_mul(1024))
            .emit(),
        None => e.emit(),
    }
}

/// `error what=relief`: a signal that was not sent (the process's exit is not,
/// since then there is nothing left to do).
pub fn not_sent(cx: &mut Cx, pid: i32, name: &[u8], action: &str, why: &NotSent) {
    let e = cx
        .log
        .event(Level::Error, "error")
        .str("what", "relief")
        .i64("pid", pid as i64)
        .bytes("name", name)
        .str("action", action);
    match why {
        NotSent::Failed(err) => e
            .str("errno", &crate::error::errno_name(err))
            .str("error", &crate::error::errno_text(err))
            .emit(),
        _ => e.str("error", "pid reused").emit(),
    }
}

/// `error what=relief`: memory is short and no process may be chosen.
pub fn nobody(cx: &mut Cx, reason: Reason, m: &Meminfo, psi: Option<f64>) {
    let e = cx.log.error(
        Level::Warn,
        "relief",
        "memory is short, but no process may be chosen",
    );
    memory(e, m, psi).str("reason", reason.name()).emit();
}

/// `mem_available=` and `swap_free=` in bytes, and `psi_full=` when read.
fn memory<'a>(e: Event<'a>, m: &Meminfo, psi: Option<f64>) -> Event<'a> {
    let e = e
        .u64("mem_available", m.available_kb.saturating_mul(1024))
        .u64("swap_free", m.swap_free_kb.saturating_mul(1024));
    match psi {
        Some(p) => e.num("psi_full", p, 2),
        None => e,
    }
}
