//! Alerts (`[alert]`): each cycle, the notices due (`decide`) go to the mailer
//! (the message of `mail` on its stdin) and/or the alert command (`SA_*`
//! variables), each a child started through `Effects`. The service never waits
//! for them, a `--once` run does (within `[alert] timeout`). A notice none of
//! whose routes worked is taken back, so it is tried again: by the service a
//! minute later, by the next `--once` run. What was told is kept in state_dir.

pub mod decide;
pub mod mail;
pub mod mime;

use super::{Cx, Feature, PollSet};
use crate::child::{self, Child};
use crate::config::Alert;
use crate::effects::Outcome;
use crate::judge::{Kind, Status};
use crate::log::Level;
use crate::sys;
use decide::{Notice, Told};
use std::ffi::CString;

pub struct Alerts {
    /// What was last told per metric key.
    told: Vec<Told>,
    /// Deliveries (mailer, command) still running.
    deliveries: Vec<Delivery>,
    /// Per notice being delivered: what was told before it, and how its routes
    /// fare; when none succeeds, the old record comes back (so it is retried).
    routes: Vec<Routes>,
    /// Mails sent by this process (tells apart Message-IDs of the same ns).
    mail_seq: u64,
    hostname: String,
    /// A change not yet written: at once in the service, at the end of a
    /// `--once` run.
    dirty: bool,
}

impl Default for Alerts {
    fn default() -> Alerts {
        Alerts {
            told: Vec::new(),
            deliveries: Vec::new(),
            routes: Vec::new(),
            mail_seq: 0,
            hostname: sys::hostname(),
            dirty: false,
        }
    }
}

/// One alert being delivered by a child (the mailer or the alert command).
struct Delivery {
    via: &'static str,
    notice: Notice,
    /// `[alert] timeout` when it started (a reload may change it).
    timeout: std::time::Duration,
    child: Child,
}

/// The routes of one notice: how many are still running, whether one worked, and
/// the record to restore if none does.
struct Routes {
    key: String,
    prev: Told,
    running: u32,
    ok: bool,
}

/// How a route went, for its `alert_sent` or `alert_failed` line.
enum Sent<'a> {
    Yes,
    DryRun,
    Failed {
        error: &'a [u8],
        exit: Option<&'a str>,
    },
}

impl Feature for Alerts {
    fn name(&self) -> &'static str {
        "alerts"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        let a = &cx.cfg.alert;
        !a.email.is_empty() || !a.command.is_empty()
    }

    /// What was told by the previous run or service.
    fn load(&mut self, cx: &mut Cx) {
        self.told = cx
            .store
            .load(&decide::KIND, cx.log, decide::parse)
            .unwrap_or_default();
    }

    /// The notices due, each handed to the mailer and/or the alert command;
    /// `--once` waits for them (within the timeout, or until SIGTERM).
    fn step(&mut self, cx: &mut Cx) {
        let a = &cx.cfg.alert;
        let now = sys::realtime_ns();
        let cooldown = a.cooldown.as_nanos() as u64;
        let mut notices = decide::decide(cx.metrics, &mut self.told, a.min_level, cooldown, now);
        let r = cx.reading;
        for n in notices.iter_mut().filter(|n| n.kind == Kind::Load) {
            n.host_load = r.load().map(|l| (l.one, r.ncpu));
        }
        for n in &notices {
            self.routes.push(Routes {
                key: n.key.clone(),
                prev: n.prev.clone(),
                running: 0,
                ok: false,
            });
            self.deliver(cx, n, now);
            self.settle(cx);
        }
        if !notices.is_empty() {
            self.changed(cx);
        }
        if cx.once {
            self.wait(cx);
            self.dirty = true;
        }
    }

    fn save(&mut self, cx: &mut Cx, _force: bool) {
        if !std::mem::take(&mut self.dirty) {
            return;
        }
        let told = &self.told;
        cx.store
            .save(&decide::KIND, cx.log, |out| decide::format(out, told));
    }

    /// `alerting=N [next_reminder_in=S] cooling=N retrying=N deliveries=N`: metrics
    /// told at a level and the soonest reminder (seconds), those whose alert
    /// waits out its `cooldown`, those waiting to retry a failed delivery, and
    /// the deliveries running.
    fn status(&mut self, cx: &mut Cx) {
        let now = sys::realtime_ns();
        let cooldown = cx.cfg.alert.cooldown.as_nanos() as u64;
        let t = decide::timers(&self.told, cooldown, now);
        let e = cx.status(self.name()).u64("alerting", t.alerting as u64);
        let e = match t.next_reminder_ns {
            Some(at) => e.u64(
                "next_reminder_in",
                at.saturating_sub(now).div_ceil(1_000_000_000),
            ),
            None => e,
        };
        e.u64("cooling", t.cooling as u64)
            .u64("retrying", t.retrying as u64)
            .u64("deliveries", self.deliveries.len() as u64)
            .emit();
    }

    fn poll(&self, set: &mut PollSet) {
        for d in &self.deliveries {
            set.add_child(&d.child);
        }
    }

    /// Drains, times out and reaps the deliveries; logs how each went.
    fn tend(&mut self, cx: &mut Cx) {
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
            self.finished(cx, &d, exit);
        }
        if self.settle(cx) {
            self.changed(cx);
        }
    }

    /// Ends the deliveries with the agent.
    fn stop(&mut self, _cx: &mut Cx) {
        for mut d in std::mem::take(&mut self.deliveries) {
            d.child.stop(500);
            if let Some(r) = self.routes_of(&d.notice.key) {
                r.running -= 1;
            }
        }
    }
}

impl Alerts {
    /// What changed is written at once by the service; a `--once` run writes it
    /// at its end.
    fn changed(&mut self, cx: &mut Cx) {
        self.dirty = true;
        if !cx.once {
            self.save(cx, false);
        }
    }

    /// `--once`: waits for the deliveries. Stopped before they finished, their
    /// notices count as not told, so the next run tries them again.
    fn wait(&mut self, cx: &mut Cx) {
        while !self.deliveries.is_empty() {
            if cx.stopping() {
                self.stop(cx);
                self.settle(cx);
                break;
            }
            let fds: Vec<i32> = self
                .deliveries
                .iter()
                .flat_map(|d| d.child.poll_fds())
                .collect();
            cx.wait_children(&fds);
            self.tend(cx);
        }
    }

    /// Hands `n` to each configured route.
    fn deliver(&mut self, cx: &mut Cx, n: &Notice, now: u64) {
        let a = &cx.cfg.alert;
        let timeout = a.timeout.as_nanos() as u64;
        if !a.email.is_empty() {
            self.mail_seq += 1;
            let spec = self.mail(cx, n, now);
            self.start(cx, "mail", n, &spec, timeout);
        }
        if !a.command.is_empty() {
            let spec = command(a, n, &self.hostname);
            self.start(cx, "command", n, &spec, timeout);
        }
    }

    /// The mailer with the message on its stdin (with this cycle's top processes).
    fn mail(&self, cx: &Cx, n: &Notice, now: u64) -> child::Spec {
        let a = &cx.cfg.alert;
        let from = a
            .from
            .clone()
            .unwrap_or_else(|| format!("system-agent@{}", self.hostname));
        let msg = mail::message(
            n,
            &self.hostname,
            &from,
            &a.email,
            now,
            std::process::id(),
            self.mail_seq,
            cx.findings.top_lines(),
        );
        child::Spec {
            stdin: Some(msg.into_bytes()),
            ..child::Spec::new(argv(&a.sendmail))
        }
    }

    /// Starts one route of the notice just decided (a dry run: decides it, and
    /// then it counts as told, as far as dry runs go: they keep their own record).
    fn start(&mut self, cx: &mut Cx, via: &'static str, n: &Notice, spec: &child::Spec, ns: u64) {
        match cx.effects.spawn(spec, ns) {
            Ok(Outcome::Done(child)) => {
                if let Some(r) = self.routes.last_mut() {
                    r.running += 1;
                }
                self.deliveries.push(Delivery {
                    via,
                    notice: n.clone(),
                    timeout: std::time::Duration::from_nanos(ns),
                    child,
                })
            }
            Ok(Outcome::DryRun) => {
                log_delivery(cx, via, n, Sent::DryRun);
                if let Some(r) = self.routes.last_mut() {
                    r.ok = true;
                }
            }
            Err(e) => {
                let error = crate::error::errno_text(&e);
                let sent = Sent::Failed {
                    error: error.as_bytes(),
                    exit: None,
                };
                log_delivery(cx, via, n, sent);
            }
        }
    }

    /// A delivery's child exited: counts and logs how it went.
    fn finished(&mut self, cx: &mut Cx, d: &Delivery, exit: child::Exit) {
        let timed_out = d.child.term_sent_ns.is_some();
        let ok = exit.success() && !timed_out;
        if let Some(r) = self.routes_of(&d.notice.key) {
            r.running -= 1;
            r.ok |= ok;
        }
        if ok {
            return log_delivery(cx, d.via, &d.notice, Sent::Yes);
        }
        let error = if timed_out {
            let after = crate::config::value::fmt_duration(d.timeout);
            format!("timed out after {after}").into_bytes()
        } else {
            d.child.stderr.text()
        };
        let exit = exit.to_string();
        let sent = Sent::Failed {
            error: &error,
            exit: Some(&exit),
        };
        log_delivery(cx, d.via, &d.notice, sent);
    }

    /// The routes of the notice for `key` that are still running.
    fn routes_of(&mut self, key: &str) -> Option<&mut Routes> {
        self.routes
            .iter_mut()
            .find(|r| r.key == key && r.running > 0)
    }

    /// Notices whose routes have all finished: if none worked, what was told
    /// before comes back, so it is tried again: by the service a minute later (not
    /// every cycle), by the next `--once` run (cron runs are that far apart).
    /// Returns whether a record was restored.
    fn settle(&mut self, cx: &Cx) -> bool {
        let now = sys::realtime_ns();
        let retry_at = if cx.once { 0 } else { now + decide::RETRY_NS };
        let mut restored = false;
        for r in std::mem::take(&mut self.routes) {
            if r.running > 0 {
                self.routes.push(r);
                continue;
            }
            if !r.ok
                && let Some(t) = self.told.iter_mut().find(|t| t.key == r.key)
            {
                *t = Told {
                    retry_at_ns: retry_at,
                    ..r.prev
                };
                restored = true;
            }
        }
        restored
    }
}

/// The alert command, with the alert in its `SA_*` variables.
fn command(a: &Alert, n: &Notice, host: &str) -> child::Spec {
    let mut env = child::base_env();
    for (k, v) in mail::env(n, host) {
        if let Ok(c) = CString::new(format!("{k}={v}")) {
            env.push(c);
        }
    }
    child::Spec {
        env,
        ..child::Spec::new(argv(&a.command))
    }
}

fn argv(words: &[String]) -> Vec<CString> {
    words
        .iter()
        .filter_map(|s| CString::new(s.as_str()).ok())
        .collect()
}

/// `alert_sent` or `alert_failed` for one route of `n`.
fn log_delivery(cx: &mut Cx, via: &str, n: &Notice, sent: Sent) {
    let (level, event) = match sent {
        Sent::Yes | Sent::DryRun => (Level::Info, "alert_sent"),
        Sent::Failed { .. } => (Level::Error, "alert_failed"),
    };
    let to = (via == "mail").then(|| cx.cfg.alert.email.join(","));
    let state = if n.level == Status::Ok {
        "recovered"
    } else {
        n.level.name()
    };
    let e = cx
        .log
        .event(level, event)
        .str("metric", n.kind.name())
        .opt("mount", n.mount.as_deref())
        .str("state", state)
        .str("via", via)
        .opt("to", to.as_deref())
        .opt("reminder", n.reminder.then_some("yes"));
    let e = match sent {
        // The mailer's stderr as it wrote it: escaping keeps any bytes recoverable.
        Sent::Failed { error, exit } => e.opt("exit", exit).bytes("error", error),
        Sent::Yes => e,
        Sent::DryRun => e.str("dry_run", "yes"),
    };
    e.emit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::effects::Action;
    use crate::features::Slot;
    use crate::features::bench::Bench;

    const BOTH: &str = "[alert]\nemail = ops@example.com\nfrom = agent@example.com\n\
        sendmail = /usr/sbin/sendmail -t -i\ncommand = /usr/local/bin/page --now\n";

    /// The CPU metric at `level`, as hysteresis reports it.
    fn cpu_at(b: &mut Bench, level: Status, value: f64) {
        let Some(m) = b.metrics.iter_mut().find(|m| m.kind == Kind::Cpu) else {
            panic!("no cpu metric");
        };
        m.value = Some(value);
        m.hyst.reported = level as u8;
    }

    /// A bench (both routes configured) after one step with the CPU at `level`.
    fn stepped(tag: &str, level: Status, value: f64) -> (Bench, Slot<Alerts>) {
        let mut b = Bench::new(tag, BOTH);
        let mut a = Slot::new(Alerts::default());
        cpu_at(&mut b, level, value);
        a.step(&mut b.cx());
        (b, a)
    }

    #[test]
    fn a_dry_run_decides_each_route_once_and_runs_nothing() {
        let (mut b, mut a) = stepped("alerts-dry", Status::Critical, 95.0);
        let mailer = ["/usr/sbin/sendmail", "-t", "-i"];
        let pager = ["/usr/local/bin/page", "--now"];
        let spawn = |argv: &[&str]| Action::Spawn {
            argv: argv.iter().map(|a| a.to_string()).collect(),
        };
        assert_eq!(b.effects.take(), [spawn(&mailer), spawn(&pager)]);
        let sent = "level=info event=alert_sent metric=cpu state=critical via";
        assert_eq!(
            b.events("alert_sent"),
            [
                format!("{sent}=mail to=ops@example.com dry_run=yes"),
                format!("{sent}=command dry_run=yes"),
            ]
        );
        // Told (as far as dry runs go): quiet through the cooldown.
        a.step(&mut b.cx());
        assert_eq!(b.effects.take(), []);
        a.save(&mut b.cx(), true);
        let saved = std::fs::read(b.dir.join("state/alerts")).expect("alerts saved");
        let told = decide::parse(&saved).expect("a valid alerts file");
        let cpu = told.iter().find(|t| t.key == "cpu");
        assert_eq!(cpu.map(|t| (t.level, t.retry_at_ns)), Some((2, 0)));
        // The return below min_level is told once, by both routes.
        cpu_at(&mut b, Status::Ok, 10.0);
        a.step(&mut b.cx());
        a.step(&mut b.cx());
        assert_eq!(b.effects.take(), [spawn(&mailer), spawn(&pager)]);
        assert_eq!(b.events("alert_sent").len(), 4);
        assert_eq!(b.events("alert_failed"), Vec::<String>::new());
    }

    #[test]
    fn below_min_level_nothing_is_decided() {
        let (mut b, _) = stepped("alerts-warn", Status::Warning, 85.0);
        assert_eq!(b.effects.take(), []);
        assert_eq!(b.events("alert_sent"), Vec::<String>::new());
    }

    /// The mail carries this cycle's top processes, as the top feature left them.
    #[test]
    fn the_mail_carries_this_cycles_top_lines() {
        let mut b = Bench::new("alerts-top", BOTH);
        b.findings
            .next_top_line()
            .push_str("by cpu #1: pid 7 root spin");
        cpu_at(&mut b, Status::Critical, 95.0);
        let mut told = Vec::new();
        let n = decide::decide(&b.metrics, &mut told, b.cfg.alert.min_level, 1, 1).remove(0);
        let a = Alerts {
            hostname: "web1".into(),
            ..Alerts::default()
        };
        let spec = a.mail(&b.cx(), &n, 1);
        let text = String::from_utf8(spec.stdin.unwrap_or_default()).unwrap_or_default();
        assert!(
            text.contains("\r\nSubject: [system-agent] web1 CRITICAL: cpu 95.0% (threshold "),
            "{text}"
        );
        assert!(
            text.ends_with("\r\nTop processes:\r\n  by cpu #1: pid 7 root spin\r\n"),
            "{text}"
        );
        b.findings.clear();
        let spec = a.mail(&b.cx(), &n, 1);
        let text = String::from_utf8(spec.stdin.unwrap_or_default()).unwrap_or_default();
        assert!(!text.contains("Top processes"), "{text}");
    }
}
