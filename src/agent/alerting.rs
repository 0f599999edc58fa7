//! The cycle's alert step: decide what to tell (`alerts::decide`), hand it to the
//! mailer and/or the alert command, and restore what was told when no route worked.

use super::*;

impl Agent {
    /// The notices due (see `alerts::decide`), each handed to the
    /// mailer and/or the alert command; `--once` waits for them (within timeout).
    pub(super) fn alerts(&mut self, signals: Option<&Signals>) {
        let a = &self.cfg.alert;
        if !self.actor() || (a.email.is_empty() && a.command.is_empty()) {
            return;
        }
        if !self.told_loaded {
            self.told_loaded = true;
            self.told = self.load_alerts();
        }
        let a = &self.cfg.alert;
        let now = sys::realtime_ns();
        let notices = alerts::decide(
            &self.metrics,
            &mut self.told,
            a.min_level,
            a.cooldown.as_nanos() as u64,
            now,
        );
        for n in &notices {
            self.outcomes.push(Outcome {
                key: n.key.clone(),
                prev: n.prev.clone(),
                running: 0,
                ok: false,
            });
            self.deliver(n, now);
            self.settle_outcomes();
        }
        if !notices.is_empty() && !self.once {
            self.save_alerts();
        }
        if self.once {
            while !self.deliveries.is_empty() {
                if stopping(signals) {
                    // Stopped before they finished: not told, so tried next run.
                    self.stop_deliveries();
                    self.settle_outcomes();
                    break;
                }
                let fds: Vec<i32> = self
                    .deliveries
                    .iter()
                    .flat_map(|d| d.child.poll_fds())
                    .collect();
                wait_children(signals, &fds);
                self.tend_deliveries();
            }
            self.save_alerts();
        }
    }

    pub(super) fn deliver(&mut self, n: &alerts::Notice, now: u64) {
        let a = self.cfg.alert.clone();
        if self.cfg.agent.dry_run {
            let vias = [
                (!a.email.is_empty()).then_some("mail"),
                (!a.command.is_empty()).then_some("command"),
            ];
            for via in vias.into_iter().flatten() {
                self.log_delivery("alert_sent", via, n, None, None, true);
            }
            // Told, as far as dry runs go (they keep their own record).
            if let Some(o) = self.outcomes.iter_mut().find(|o| o.key == n.key) {
                o.ok = true;
            }
            return;
        }
        let timeout = a.timeout.as_nanos() as u64;
        if !a.email.is_empty() {
            self.mail_seq += 1;
            let from = a
                .from
                .clone()
                .unwrap_or_else(|| format!("system-agent@{}", self.hostname));
            let msg = alerts::message(
                n,
                &self.hostname,
                &from,
                &a.email,
                now,
                std::process::id(),
                self.mail_seq,
                self.findings.top_lines(),
            );
            let argv: Vec<std::ffi::CString> = a
                .sendmail
                .iter()
                .filter_map(|s| std::ffi::CString::new(s.as_str()).ok())
                .collect();
            let spec = child::Spec {
                stdin: Some(msg.into_bytes()),
                ..child::Spec::new(argv)
            };
            self.start_delivery("mail", n, &spec, timeout);
        }
        if !a.command.is_empty() {
            let mut env = child::base_env();
            for (k, v) in alerts::env(n, &self.hostname) {
                if let Ok(c) = std::ffi::CString::new(format!("{k}={v}")) {
                    env.push(c);
                }
            }
            let argv: Vec<std::ffi::CString> = a
                .command
                .iter()
                .filter_map(|s| std::ffi::CString::new(s.as_str()).ok())
                .collect();
            let spec = child::Spec {
                env,
                ..child::Spec::new(argv)
            };
            self.start_delivery("command", n, &spec, timeout);
        }
    }

    pub(super) fn start_delivery(
        &mut self,
        via: &'static str,
        n: &alerts::Notice,
        spec: &child::Spec,
        timeout: u64,
    ) {
        match Child::spawn(spec, timeout) {
            Ok(child) => {
                if let Some(o) = self.outcomes.iter_mut().rev().find(|o| o.key == n.key) {
                    o.running += 1;
                }
                self.deliveries.push(Delivery {
                    via,
                    notice: n.clone(),
                    timeout: std::time::Duration::from_nanos(timeout),
                    child,
                })
            }
            Err(e) => self.log_delivery(
                "alert_failed",
                via,
                n,
                Some(crate::error::errno_text(&e).as_bytes()),
                None,
                false,
            ),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn log_delivery(
        &mut self,
        event: &str,
        via: &str,
        n: &alerts::Notice,
        error: Option<&[u8]>,
        exit: Option<&str>,
        dry_run: bool,
    ) {
        let level = if event == "alert_sent" {
            Level::Info
        } else {
            Level::Error
        };
        let to = (via == "mail").then(|| self.cfg.alert.email.join(","));
        let state = if n.level == Status::Ok {
            "recovered"
        } else {
            n.level.name()
        };
        let e = self
            .log
            .event(level, event)
            .str("metric", n.kind.name())
            .opt("mount", n.mount.as_deref())
            .str("state", state)
            .str("via", via)
            .opt("to", to.as_deref())
            .opt("reminder", n.reminder.then_some("yes"))
            .opt("exit", exit);
        // The mailer's stderr as it wrote it: escaping keeps any bytes recoverable.
        let e = match error {
            Some(b) => e.bytes("error", b),
            None => e,
        };
        e.opt("dry_run", dry_run.then_some("yes")).emit();
    }

    /// Drains, times out and reaps alert deliveries; logs each outcome.
    pub(super) fn tend_deliveries(&mut self) {
        let now = sys::monotonic_ns();
        let mut i = 0;
        while i < self.deliveries.len() {
            let d = &mut self.deliveries[i];
            d.child.pump();
            d.child.enforce_timeout(now);
            let Some(exit) = d.child.try_wait() else {
                i += 1;
                continue;
            };
            let d = self.deliveries.remove(i);
            let timed_out = d.child.term_sent_ns.is_some();
            if let Some(o) = self
                .outcomes
                .iter_mut()
                .find(|o| o.key == d.notice.key && o.running > 0)
            {
                o.running -= 1;
                o.ok |= exit.success() && !timed_out;
            }
            if exit.success() && !timed_out {
                self.log_delivery("alert_sent", d.via, &d.notice, None, None, false);
            } else {
                let error = if timed_out {
                    format!(
                        "timed out after {}",
                        crate::config::value::fmt_duration(d.timeout)
                    )
                    .into_bytes()
                } else {
                    d.child.stderr.text()
                };
                let exit = exit.to_string();
                self.log_delivery(
                    "alert_failed",
                    d.via,
                    &d.notice,
                    Some(&error),
                    Some(&exit),
                    false,
                );
            }
        }
        if self.settle_outcomes() && !self.once {
            self.save_alerts();
        }
    }

    /// Ends the alert children with the agent; their notices count as not told.
    pub(super) fn stop_deliveries(&mut self) {
        for mut d in std::mem::take(&mut self.deliveries) {
            d.child.stop(500);
            if let Some(o) = self
                .outcomes
                .iter_mut()
                .find(|o| o.key == d.notice.key && o.running > 0)
            {
                o.running -= 1;
            }
        }
    }

    /// Notices whose routes have all finished: if none worked, what was told
    /// before comes back, so it is tried again: by the service a minute later (not
    /// every cycle), by the next `--once` run (cron runs are that far apart).
    /// Returns whether a record was restored.
    pub(super) fn settle_outcomes(&mut self) -> bool {
        let now = sys::realtime_ns();
        let retry_at = if self.once { 0 } else { now + alerts::RETRY_NS };
        let mut restored = false;
        for o in std::mem::take(&mut self.outcomes) {
            if o.running > 0 {
                self.outcomes.push(o);
                continue;
            }
            if !o.ok
                && let Some(t) = self.told.iter_mut().find(|t| t.key == o.key)
            {
                *t = alerts::Told {
                    retry_at_ns: retry_at,
                    ..o.prev
                };
                restored = true;
            }
        }
        restored
    }

    pub(super) fn load_alerts(&mut self) -> Vec<alerts::Told> {
        self.store
            .load(&alerts::KIND, &mut self.log, alerts::parse)
            .unwrap_or_default()
    }

    pub(super) fn save_alerts(&mut self) {
        if !self.actor() {
            return;
        }
        let told = &self.told;
        self.store.save(&alerts::KIND, &mut self.log, |out| {
            alerts::format(out, told)
        });
    }
}

/// One alert being delivered by a child (the mailer or the alert command).
pub(super) struct Delivery {
    pub(super) via: &'static str,
    pub(super) notice: alerts::Notice,
    /// `[alert] timeout` when it started (a reload may change it).
    pub(super) timeout: std::time::Duration,
    pub(super) child: Child,
}

/// The routes of one notice: how many are still running, whether one worked, and
/// the record to restore if none does.
pub(super) struct Outcome {
    pub(super) key: String,
    pub(super) prev: alerts::Told,
    pub(super) running: u32,
    pub(super) ok: bool,
}
