//! Idle-time tasks (`[task.NAME]`): each cycle counts idle cycles, looks after
//! the running task (its output, its timeout, its exit) and starts the next due
//! one (`schedule`) as a child, through `Effects`; the service never waits for
//! it, a `--once` run does (within its timeout). The last success of each task is
//! kept in state_dir.

pub mod schedule;

use super::{Cx, Feature, PollSet};
use crate::child::{self, Child};
use crate::config::Config;
use crate::config::value::{fmt_command, fmt_duration};
use crate::effects::Outcome;
use crate::log::Level;
use crate::passwd;
use crate::policy;
use crate::sys;
use schedule::TaskState;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Default)]
pub struct Tasks {
    /// Per task (config order): last success, last start, idle cycles.
    states: Vec<TaskState>,
    /// The task running now, if any (at most one).
    running: Option<RunningTask>,
    /// A change not yet written: at once in the service, at the end of a
    /// `--once` run.
    dirty: bool,
}

/// A task's child, by task name (the config may change while it runs).
struct RunningTask {
    name: String,
    /// Its timeout when it started (a reload may change or remove the task).
    timeout: std::time::Duration,
    child: Child,
}

impl Feature for Tasks {
    fn name(&self) -> &'static str {
        "tasks"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        !cx.cfg.tasks.is_empty() || self.running.is_some()
    }

    /// The last success and idle count of the previous run or service.
    fn load(&mut self, cx: &mut Cx) {
        let saved = cx.store.load(&schedule::KIND, cx.log, schedule::parse);
        self.states = schedule::states_for(&cx.cfg.tasks, &saved.unwrap_or_default());
        if !cx.once {
            schedule::forget_skips(&mut self.states);
        }
    }

    /// Counts idle cycles, watches the running task, starts a due one. `--once`
    /// waits for a task it starts (within its timeout, or until SIGTERM).
    fn step(&mut self, cx: &mut Cx) {
        schedule::observe_cpu(&cx.cfg.tasks, &mut self.states, cx.reading.cpu_percent);
        self.tend(cx);
        let now = sys::realtime_ns();
        schedule::forget_future(&mut self.states, now);
        if self.running.is_none()
            && let Some(i) = schedule::next(&cx.cfg.tasks, &self.states, now)
        {
            self.start(cx, i);
        }
        if cx.once {
            while let Some(r) = &self.running {
                if cx.stopping() {
                    self.stop(cx);
                    break;
                }
                let fds: Vec<i32> = r.child.poll_fds().collect();
                cx.wait_children(&fds);
                self.tend(cx);
            }
            self.dirty = true;
        }
    }

    /// A skipped task is tried again at once: the change may be the operator's fix.
    fn reload(&mut self, _old: &Config, new: &Config) {
        schedule::forget_skips(&mut self.states);
        self.states = schedule::states_for(&new.tasks, &self.states);
    }

    fn save(&mut self, cx: &mut Cx, _force: bool) {
        if !std::mem::take(&mut self.dirty) || self.states.is_empty() {
            return;
        }
        let states = &self.states;
        cx.store
            .save(&schedule::KIND, cx.log, |out| schedule::format(out, states));
    }

    fn poll(&self, set: &mut PollSet) {
        if let Some(r) = &self.running {
            set.add_child(&r.child);
        }
    }

    /// Drains the running task's output, enforces its timeout, and reaps it when
    /// it has exited (`task_done`). Called each cycle and on every wake-up.
    fn tend(&mut self, cx: &mut Cx) {
        let Some(r) = &mut self.running else { return };
        r.child.pump();
        if r.child.enforce_timeout(sys::monotonic_ns()) {
            cx.log
                .event(Level::Warn, "task_timeout")
                .str("name", &r.name)
                .i64("pid", r.child.pid as i64)
                .str("after", &fmt_duration(r.timeout))
                .str("action", "SIGTERM to its process group, SIGKILL 5s later")
                .emit();
        }
        let Some(exit) = r.child.try_wait() else {
            return;
        };
        let Some(r) = self.running.take() else { return };
        log_done(cx, &r, exit, None);
        if let Some(s) = self.states.iter_mut().find(|s| s.name == r.name)
            && exit.success()
            && r.child.term_sent_ns.is_none()
        {
            s.last_success_ns = sys::realtime_ns();
        }
        self.changed(cx);
    }

    /// `tasks=N [running=NAME pid=PID] [next=NAME due_in=S idle=K idle_cycles=M]`:
    /// the task running, and the one due soonest beside it (`due_in=0`: due,
    /// waiting for its idle cycles), in seconds.
    fn status(&mut self, cx: &mut Cx) {
        let now = sys::realtime_ns();
        let tasks = &cx.cfg.tasks;
        let running = self.running.as_ref();
        let next = schedule::soonest(tasks, &self.states, running.map(|r| r.name.as_str()), now);
        let e = cx.status(self.name()).u64("tasks", tasks.len() as u64);
        let e = match running {
            Some(r) => e.str("running", &r.name).i64("pid", r.child.pid as i64),
            None => e,
        };
        let e = match next {
            Some((i, at)) => e
                .str("next", &tasks[i].name)
                .u64("due_in", at.saturating_sub(now).div_ceil(1_000_000_000))
                .u64("idle", u64::from(self.states[i].idle))
                .u64("idle_cycles", u64::from(tasks[i].idle_cycles)),
            None => e,
        };
        e.emit();
    }

    /// Stops a running task with the agent: every child is reaped before exit.
    fn stop(&mut self, cx: &mut Cx) {
        if let Some(mut r) = self.running.take() {
            r.child.stop(1000);
            let exit = r.child.exit.unwrap_or(child::Exit::Signal(libc::SIGKILL));
            log_done(cx, &r, exit, Some("stopped with the agent"));
            self.dirty = true;
            self.save(cx, true);
        }
    }
}

impl Tasks {
    /// What changed is written at once by the service; a `--once` run writes it
    /// at its end.
    fn changed(&mut self, cx: &mut Cx) {
        self.dirty = true;
        if !cx.once {
            self.save(cx, false);
        }
    }

    /// Starts task `i` (or, in a dry run, decides it: then it counts as done, so
    /// it is not decided again every cycle).
    fn start(&mut self, cx: &mut Cx, i: usize) {
        let cfg = cx.cfg;
        let t = &cfg.tasks[i];
        let spec = match spec(cx, t) {
            Ok(spec) => spec,
            Err(why) => return self.skip(cx, i, &why),
        };
        let now = sys::realtime_ns();
        self.states[i].last_attempt_ns = now;
        let started = match cx.effects.spawn(&spec, t.timeout.as_nanos() as u64) {
            Ok(started) => started,
            Err(e) => {
                cx.log
                    .error(Level::Error, "task", crate::error::errno_text(&e))
                    .str("name", &t.name)
                    .emit();
                return self.changed(cx);
            }
        };
        let e = cx.log.event(Level::Info, "task_start").str("name", &t.name);
        let e = match &started {
            Outcome::Done(c) => e.i64("pid", c.pid as i64),
            Outcome::DryRun => e,
        };
        e.opt("user", t.user.as_deref())
            .str("command", &fmt_command(&t.command))
            .opt("dry_run", started.dry_run().then_some("yes"))
            .emit();
        match started {
            Outcome::Done(child) => {
                self.states[i].skipped.clear();
                let (name, timeout) = (t.name.clone(), t.timeout);
                self.running = Some(RunningTask {
                    name,
                    timeout,
                    child,
                });
            }
            Outcome::DryRun => self.states[i].last_success_ns = now,
        }
        self.changed(cx);
    }

    /// Reports a task that cannot run, once per config load (and once across cron
    /// runs); it is tried again like a failed run.
    fn skip(&mut self, cx: &mut Cx, i: usize, why: &str) {
        let st = &mut self.states[i];
        st.last_attempt_ns = sys::realtime_ns();
        if st.skipped != why {
            st.skipped = why.to_string();
            cx.log
                .event(Level::Warn, "task_skipped")
                .str("name", &st.name)
                .str("reason", why)
                .emit();
        }
    }
}

/// How task `t` is started, or why it cannot be: its program must exist and be
/// executable, its user exist (and the agent be able to switch to it).
fn spec(cx: &Cx, t: &crate::config::Task) -> Result<child::Spec, String> {
    let prog = Path::new(&t.command[0]);
    let runnable = std::fs::metadata(prog).is_ok_and(|m| {
        use std::os::unix::fs::PermissionsExt;
        m.is_file() && m.permissions().mode() & 0o111 != 0
    });
    if !runnable {
        return Err(format!("{} is missing or not executable", prog.display()));
    }
    let ids = ids(cx, t.user.as_deref())?;
    let argv: Option<Vec<CString>> = t
        .command
        .iter()
        .map(|a| CString::new(a.as_str()).ok())
        .collect();
    let argv = argv.ok_or("the command contains a NUL byte")?;
    let cwd =
        CString::new(t.cwd.as_os_str().as_bytes()).map_err(|_| "the cwd contains a NUL byte")?;
    Ok(child::Spec {
        ids,
        nice: t.nice,
        cwd,
        umask: t.umask,
        ..child::Spec::new(argv)
    })
}

/// The ids a task with `user` runs with (`None`: the agent's own), or why it
/// cannot run. The user's groups come from `[paths] group`, read now, before the
/// fork; a missing file (a minimal chroot) means no supplementary groups.
fn ids(cx: &Cx, user: Option<&str>) -> Result<Option<child::Ids>, String> {
    let Some(u) = user else { return Ok(None) };
    let Some(user) = cx.users.by_name(u) else {
        let passwd = cx.cfg.paths.passwd.display();
        return Err(format!("user {u} is not in {passwd}"));
    };
    if user.uid == sys::getuid() {
        return Ok(None);
    }
    let caps = sys::effective_capabilities().unwrap_or(0);
    let can = sys::getuid() == 0
        || ((caps >> policy::CAP_SETUID) & (caps >> policy::CAP_SETGID) & 1) == 1;
    if !can {
        return Err(format!(
            "cannot run as {u}: needs root or cap_setuid and cap_setgid"
        ));
    }
    let path = &cx.cfg.paths.group;
    let mut buf = Vec::new();
    let groups = match crate::files::read_file(path, true, crate::files::ACCOUNTS_MAX, &mut buf) {
        Ok(_) => passwd::groups_of(&passwd::parse_group(&buf), &user.name, user.gid),
        Err(why) if why.is_missing() => vec![user.gid],
        Err(why) => return Err(crate::error::Error::file(path, why).to_string()),
    };
    Ok(Some(child::Ids {
        uid: user.uid,
        gid: user.gid,
        groups,
    }))
}

/// `task_done`: how it ended, how long it ran, how much it wrote (a warning when
/// it failed or wrote to stderr: `mandb` exits 0 even when it cannot write).
fn log_done(cx: &mut Cx, r: &RunningTask, exit: child::Exit, note: Option<&str>) {
    let secs = sys::monotonic_ns().saturating_sub(r.child.started_ns) as f64 / 1e9;
    let stderr = r.child.stderr.text();
    let clean = exit.success() && stderr.is_empty() && r.child.term_sent_ns.is_none();
    let level = if clean { Level::Info } else { Level::Warn };
    let e = cx
        .log
        .event(level, "task_done")
        .str("name", &r.name)
        .str("exit", &exit.to_string())
        .num("duration", secs, 2)
        .u64("stdout_lines", r.child.stdout.lines)
        .u64("stderr_lines", r.child.stderr.lines);
    let e = if stderr.is_empty() {
        e
    } else {
        e.bytes("stderr_tail", &stderr)
    };
    e.opt("note", note).emit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Action;
    use crate::features::Slot;
    use crate::features::bench::Bench;

    const DUE: &str = "[task.index]\ncommand = /bin/true --all\nidle_cycles = 1\n";

    #[test]
    fn a_dry_run_decides_a_due_task_once_and_runs_nothing() {
        let mut b = Bench::new("tasks-dry", DUE);
        b.reading.cpu_percent = Some(5.0);
        let mut t = Slot::new(Tasks::default());
        t.step(&mut b.cx());
        assert_eq!(
            b.effects.take(),
            [Action::Spawn {
                argv: vec!["/bin/true".into(), "--all".into()]
            }]
        );
        assert_eq!(
            b.events("task_start"),
            ["level=info event=task_start name=index command=\"/bin/true --all\" dry_run=yes"]
        );
        // Counted as done: not decided again the next cycle.
        t.step(&mut b.cx());
        assert_eq!(b.effects.take(), []);
        t.save(&mut b.cx(), true);
        let saved = std::fs::read_to_string(b.dir.join("state/tasks")).expect("tasks saved");
        assert!(saved.starts_with("system-agent-tasks 1\ntask "), "{saved}");
    }

    #[test]
    fn a_busy_cpu_or_a_missing_program_starts_nothing() {
        let mut b = Bench::new("tasks-busy", DUE);
        b.reading.cpu_percent = Some(50.0);
        let mut t = Slot::new(Tasks::default());
        t.step(&mut b.cx());
        assert_eq!(b.effects.take(), []);
        let mut b = Bench::new(
            "tasks-missing",
            "[task.gone]\ncommand = /no/such/prog\nidle_cycles = 0\n",
        );
        let mut t = Slot::new(Tasks::default());
        t.step(&mut b.cx());
        t.step(&mut b.cx());
        assert_eq!(b.effects.take(), []);
        assert_eq!(
            b.events("task_skipped"),
            [
                "level=warn event=task_skipped name=gone reason=\"/no/such/prog is missing or not executable\""
            ]
        );
    }
}
