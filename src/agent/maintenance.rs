//! SPEC §4 step 7, idle-time tasks: count idle cycles, start a due task as a child
//! (`child::Child`), drain it, enforce its timeout, reap it, and keep the last
//! success in state_dir.

use super::*;

impl Agent {
    /// SPEC §4 step 7: count idle cycles, watch the running task, start a due one.
    /// `--once` waits for a task it starts (within its timeout).
    pub(super) fn tasks(&mut self, signals: Option<&Signals>) {
        if !self.tasks_loaded {
            self.tasks_loaded = true;
            // The last success and idle count of the previous run or service.
            let saved = self.load_tasks();
            self.task_states = tasks::states_for(&self.cfg.tasks, &saved);
            if !self.once {
                tasks::forget_skips(&mut self.task_states);
            }
        }
        tasks::observe_cpu(
            &self.cfg.tasks,
            &mut self.task_states,
            self.reading.cpu_percent,
        );
        self.tend_task();
        let now = sys::realtime_ns();
        tasks::forget_future(&mut self.task_states, now);
        if self.running.is_none()
            && let Some(i) = tasks::next(&self.cfg.tasks, &self.task_states, now)
        {
            self.start_task(i);
        }
        if self.once {
            while let Some(r) = &self.running {
                if stopping(signals) {
                    self.stop_task();
                    break;
                }
                let fds: Vec<i32> = r.child.poll_fds().collect();
                wait_children(signals, &fds);
                self.tend_task();
            }
            self.save_tasks();
        }
    }

    /// Reports a task that cannot run, once per config load (and once across cron
    /// runs); it is tried again like a failed run.
    pub(super) fn skip_task(&mut self, i: usize, why: &str) {
        let st = &mut self.task_states[i];
        st.last_attempt_ns = sys::realtime_ns();
        if st.skipped != why {
            st.skipped = why.to_string();
            self.log
                .event(Level::Warn, "task_skipped")
                .str("name", &st.name)
                .str("reason", why)
                .emit();
        }
    }

    pub(super) fn start_task(&mut self, i: usize) {
        let t = self.cfg.tasks[i].clone();
        let prog = Path::new(&t.command[0]);
        let runnable = std::fs::metadata(prog).is_ok_and(|m| {
            use std::os::unix::fs::PermissionsExt;
            m.is_file() && m.permissions().mode() & 0o111 != 0
        });
        if !runnable {
            return self.skip_task(
                i,
                &format!("{} is missing or not executable", prog.display()),
            );
        }
        let ids = match self.task_ids(t.user.as_deref()) {
            Ok(ids) => ids,
            Err(why) => return self.skip_task(i, &why),
        };
        let argv: Option<Vec<std::ffi::CString>> = t
            .command
            .iter()
            .map(|a| std::ffi::CString::new(a.as_str()).ok())
            .collect();
        let Some(argv) = argv else {
            return self.skip_task(i, "the command contains a NUL byte");
        };
        if self.cfg.agent.dry_run {
            // Decided and logged, not run; counted as done, so it is not decided
            // again every cycle.
            self.log
                .event(Level::Info, "task_start")
                .str("name", &t.name)
                .opt("user", t.user.as_deref())
                .str("command", &crate::config::value::fmt_command(&t.command))
                .str("dry_run", "yes")
                .emit();
            let now = sys::realtime_ns();
            self.task_states[i].last_attempt_ns = now;
            self.task_states[i].last_success_ns = now;
            return;
        }
        let Ok(cwd) = std::ffi::CString::new(t.cwd.as_os_str().as_bytes()) else {
            return self.skip_task(i, "the cwd contains a NUL byte");
        };
        let spec = child::Spec {
            ids,
            nice: t.nice,
            cwd,
            umask: t.umask,
            ..child::Spec::new(argv)
        };
        self.task_states[i].last_attempt_ns = sys::realtime_ns();
        match Child::spawn(&spec, t.timeout.as_nanos() as u64) {
            Ok(c) => {
                self.task_states[i].skipped.clear();
                self.log
                    .event(Level::Info, "task_start")
                    .str("name", &t.name)
                    .i64("pid", c.pid as i64)
                    .opt("user", t.user.as_deref())
                    .str("command", &crate::config::value::fmt_command(&t.command))
                    .emit();
                self.running = Some(RunningTask {
                    name: t.name.clone(),
                    timeout: t.timeout,
                    child: c,
                });
            }
            Err(e) => {
                self.log
                    .error(Level::Error, "task", crate::error::errno_text(&e))
                    .str("name", &t.name)
                    .emit();
            }
        }
        if !self.once {
            self.save_tasks();
        }
    }

    /// The ids a task with `user` runs with (`None`: the agent's own), or why it
    /// cannot run. The user's groups come from `[paths] group`, read now, before the
    /// fork; a missing file (a minimal chroot) means no supplementary groups.
    fn task_ids(&self, user: Option<&str>) -> Result<Option<child::Ids>, String> {
        let Some(u) = user else { return Ok(None) };
        let Some(user) = self.users.by_name(u) else {
            let passwd = self.cfg.paths.passwd.display();
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
        let path = &self.cfg.paths.group;
        let mut buf = Vec::new();
        let groups = match crate::files::read_file(path, true, crate::files::ACCOUNTS_MAX, &mut buf)
        {
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

    /// Drains the running task's output, enforces its timeout, and reaps it when
    /// it has exited (`task_done`). Called each cycle and on every wake-up.
    pub(super) fn tend_task(&mut self) {
        let Some(r) = &mut self.running else { return };
        r.child.pump();
        let now = sys::monotonic_ns();
        if r.child.enforce_timeout(now) {
            let after = crate::config::value::fmt_duration(r.timeout);
            self.log
                .event(Level::Warn, "task_timeout")
                .str("name", &r.name)
                .i64("pid", r.child.pid as i64)
                .str("after", &after)
                .str("action", "SIGTERM to its process group, SIGKILL 5s later")
                .emit();
        }
        let Some(exit) = r.child.try_wait() else {
            return;
        };
        let Some(r) = self.running.take() else { return };
        self.log_task_done(&r, exit, None);
        if let Some(s) = self.task_states.iter_mut().find(|s| s.name == r.name)
            && exit.success()
            && r.child.term_sent_ns.is_none()
        {
            s.last_success_ns = sys::realtime_ns();
        }
        if !self.once {
            self.save_tasks();
        }
    }

    pub(super) fn log_task_done(&mut self, r: &RunningTask, exit: child::Exit, note: Option<&str>) {
        let secs = sys::monotonic_ns().saturating_sub(r.child.started_ns) as f64 / 1e9;
        let stderr = r.child.stderr.text();
        let clean = exit.success() && stderr.is_empty() && r.child.term_sent_ns.is_none();
        let exit_text = exit.to_string();
        let e = self
            .log
            .event(if clean { Level::Info } else { Level::Warn }, "task_done")
            .str("name", &r.name)
            .str("exit", &exit_text)
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

    /// Stops a running task with the agent (SPEC §1: reap every child before exit).
    pub(super) fn stop_task(&mut self) {
        if let Some(mut r) = self.running.take() {
            r.child.stop(1000);
            let exit = r.child.exit.unwrap_or(child::Exit::Signal(libc::SIGKILL));
            self.log_task_done(&r, exit, Some("stopped with the agent"));
            self.save_tasks();
        }
    }

    pub(super) fn load_tasks(&mut self) -> Vec<tasks::TaskState> {
        self.store
            .load(&tasks::KIND, &mut self.log, tasks::parse)
            .unwrap_or_default()
    }

    pub(super) fn save_tasks(&mut self) {
        if !self.actor() || self.task_states.is_empty() {
            return;
        }
        let states = &self.task_states;
        self.store.save(&tasks::KIND, &mut self.log, |out| {
            tasks::format(out, states)
        });
    }
}

/// A task's child, by task name (the config may change while it runs).
pub(super) struct RunningTask {
    pub(super) name: String,
    /// Its timeout when it started (a reload may change or remove the task).
    pub(super) timeout: std::time::Duration,
    pub(super) child: Child,
}
