//! Who is told what, and when (pure). From each metric's reported level (after
//! hysteresis) and what was last told for it, `decide` returns the notices to
//! send. A level at or above `min_level` is told once, then reminded every
//! `cooldown` while it holds; the return below it is told once. The same alert is
//! not repeated sooner than `cooldown`, not even after a recovery, so a flapping
//! metric cannot storm. What was told is the record of `state_dir/alerts`
//! (formatted and parsed here), so restarts and cron runs keep it.

use crate::config::AlertLevel;
use crate::judge::{Kind, Metric, Status};
use crate::procfs::{fields, parse_u64};
use crate::store::{self, Kind as StoreKind, Stamp};
use std::fmt::Write as _;

/// What was last told for one metric key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Told {
    pub key: String,
    /// 0: nothing (or its recovery), 1: warning, 2: critical.
    pub level: u8,
    /// Wall clock (ns) of the last notice for this key.
    pub at_ns: u64,
    /// Wall clock (ns) of the last alert at each level (warning, critical).
    pub alert_at_ns: [u64; 2],
    /// After a delivery that failed, nothing is tried for this key before then.
    pub retry_at_ns: u64,
}

/// How long after a failed delivery the next try may come.
pub const RETRY_NS: u64 = 60_000_000_000;

impl Told {
    /// A time later than this record could have been written at `now_ns` (the
    /// clock was stepped back, or the state came from another host or boot) counts
    /// as long ago: it is forgotten (0, never), here and so in the next save.
    /// Otherwise it would silence a new alert until the clock caught up. A retry
    /// is legitimately up to `RETRY_NS` ahead.
    pub fn forget_future(&mut self, now_ns: u64) {
        let past = |at: u64, latest: u64| if at > latest { 0 } else { at };
        self.at_ns = past(self.at_ns, now_ns);
        for at in &mut self.alert_at_ns {
            *at = past(*at, now_ns);
        }
        self.retry_at_ns = past(self.retry_at_ns, now_ns.saturating_add(RETRY_NS));
    }
}

/// One thing to tell about a metric: an alert, a reminder, or a recovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub key: String,
    pub kind: Kind,
    pub mount: Option<String>,
    /// The metric's level now (for a recovery: below `min_level`, OK or not).
    pub level: Status,
    pub previous: Status,
    pub value: Option<f64>,
    /// For a load notice, the host's 1-minute load average and its CPU count
    /// (`value` and `threshold` are per CPU), so the mail reads as the status
    /// line does: `load 0.52 on 2 cpus`. Filled in by the step from the Reading.
    pub host_load: Option<(f64, u32)>,
    pub threshold: Option<f64>,
    pub reminder: bool,
    /// The level fell below `min_level`.
    pub recovery: bool,
    /// The record before this notice changed it: what comes back if no route
    /// delivers it.
    pub prev: Told,
}

fn at_least(level: Status, min: AlertLevel) -> bool {
    match min {
        AlertLevel::Warning => matches!(level, Status::Warning | Status::Critical),
        AlertLevel::Critical => level == Status::Critical,
    }
}

fn status_of(level: u8) -> Status {
    match level {
        1 => Status::Warning,
        2 => Status::Critical,
        _ => Status::Ok,
    }
}

/// The notices due now, updating `told` as if they were sent (and forgetting
/// times in the future, see `Told::forget_future`).
pub fn decide(
    metrics: &[Metric],
    told: &mut Vec<Told>,
    min: AlertLevel,
    cooldown_ns: u64,
    now_ns: u64,
) -> Vec<Notice> {
    for t in told.iter_mut() {
        t.forget_future(now_ns);
    }
    let mut out = Vec::new();
    for m in metrics {
        let i = match told.iter().position(|t| t.key == m.key) {
            Some(i) => i,
            None => {
                told.push(Told {
                    key: m.key.clone(),
                    ..Told::default()
                });
                told.len() - 1
            }
        };
        let t = &mut told[i];
        if now_ns >= t.retry_at_ns {
            out.extend(decide_one(m, t, min, cooldown_ns, now_ns));
        }
    }
    out
}

/// The notice due now for one metric, if any, updating its record `t`.
fn decide_one(
    m: &Metric,
    t: &mut Told,
    min: AlertLevel,
    cooldown_ns: u64,
    now_ns: u64,
) -> Option<Notice> {
    let level = m.hyst.reported();
    let previous = status_of(t.level);
    // Built only when told (a cycle with nothing to tell allocates nothing).
    let notice = |reminder: bool, recovery: bool, prev: Told| Notice {
        key: m.key.clone(),
        kind: m.kind,
        mount: m.mount_text().map(str::to_owned),
        level,
        previous,
        value: m.value,
        host_load: None,
        threshold: m.threshold(if recovery { previous } else { level }),
        reminder,
        recovery,
        prev,
    };
    if at_least(level, min) {
        let slot = if level == Status::Critical { 1 } else { 0 };
        let since_same = now_ns.saturating_sub(t.alert_at_ns[slot]);
        let recently = t.alert_at_ns[slot] != 0 && since_same < cooldown_ns;
        let holding = t.level == level as u8;
        // Still holding: a reminder every cooldown. A new or changed level: not
        // the same alert again within cooldown (so flapping cannot storm).
        let send = if holding {
            now_ns.saturating_sub(t.at_ns) >= cooldown_ns
        } else {
            !recently
        };
        if !send {
            return None;
        }
        let n = notice(holding, false, t.clone());
        t.level = level as u8;
        t.at_ns = now_ns;
        t.alert_at_ns[slot] = now_ns;
        Some(n)
    } else if t.level != 0 {
        let n = notice(false, true, t.clone());
        t.level = 0;
        t.at_ns = now_ns;
        Some(n)
    } else {
        None
    }
}

/// What the records hold at a time, for the `event=status` line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Timers {
    /// Metrics told at a level (not recovered since).
    pub alerting: usize,
    /// The soonest reminder of those (wall clock ns).
    pub next_reminder_ns: Option<u64>,
    /// Metrics with an alert sent within `cooldown`: the same alert again waits.
    pub cooling: usize,
    /// Metrics whose last delivery failed, waiting to try again.
    pub retrying: usize,
}

/// What `told` holds at `now_ns` with this `cooldown_ns`.
pub fn timers(told: &[Told], cooldown_ns: u64, now_ns: u64) -> Timers {
    let mut out = Timers::default();
    for t in told {
        if t.level != 0 {
            out.alerting += 1;
            let at = t.at_ns.saturating_add(cooldown_ns);
            out.next_reminder_ns = Some(out.next_reminder_ns.map_or(at, |n| n.min(at)));
        }
        let recent = |at: u64| at != 0 && at <= now_ns && now_ns - at < cooldown_ns;
        if t.alert_at_ns.iter().any(|&at| recent(at)) {
            out.cooling += 1;
        }
        if t.retry_at_ns > now_ns {
            out.retrying += 1;
        }
    }
    out
}

/// What was told per metric key, and when. A dry run keeps its own (it tells
/// nobody, so it must not use up the real alert's cooldown).
pub const KIND: StoreKind = StoreKind {
    name: "alerts",
    version: 1,
    oldest: 1,
    refused: "not a version 1 alerts file",
    cap: crate::state::max::ALERTS,
    acts: true,
};

/// `told LEVEL AT_NS WARNING_AT_NS CRITICAL_AT_NS RETRY_AT_NS KEY`, one per key.
pub fn format(out: &mut String, told: &[Told]) {
    store::begin(out, &KIND, &Stamp::default());
    for t in told {
        let _ = writeln!(
            out,
            "told {} {} {} {} {} {}",
            t.level, t.at_ns, t.alert_at_ns[0], t.alert_at_ns[1], t.retry_at_ns, t.key
        );
    }
    store::end(out);
}

pub fn parse(text: &[u8]) -> Result<Vec<Told>, &'static str> {
    let (_, body) = store::open(&KIND, text)?;
    let mut out = Vec::new();
    for line in body.filter(|l| !l.is_empty()) {
        let rest = line.strip_prefix(b"told ").ok_or("unknown line")?;
        let mut f = fields(rest);
        let mut num = || f.next().and_then(parse_u64).ok_or("bad told line");
        let level = u8::try_from(num()?)
            .ok()
            .filter(|&l| l <= 2)
            .ok_or("bad level")?;
        let (at_ns, w, c, retry_at_ns) = (num()?, num()?, num()?, num()?);
        let key = f
            .next()
            .and_then(|k| std::str::from_utf8(k).ok())
            .ok_or("bad key")?;
        out.push(Told {
            key: key.to_string(),
            level,
            at_ns,
            alert_at_ns: [w, c],
            retry_at_ns,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::judge::Hysteresis;

    const MIN: u64 = 60_000_000_000;

    fn cpu(level: Status, value: f64) -> Vec<Metric> {
        let mut m = crate::judge::metrics_for(&Config::default());
        m.truncate(1);
        m[0].value = Some(value);
        m[0].hyst = Hysteresis {
            reported: level as u8,
            ..Hysteresis::default()
        };
        m
    }

    fn levels(n: &[Notice]) -> Vec<(Status, bool)> {
        n.iter().map(|n| (n.level, n.reminder)).collect()
    }

    /// `decide` at minute `t` with a cooldown of an hour, keeping what was told:
    /// the notices as (level, reminder, recovery).
    fn hourly(min: AlertLevel) -> impl FnMut(&[Metric], u64) -> Vec<(Status, bool, bool)> {
        let mut told = Vec::new();
        move |m, t| {
            let notices = decide(m, &mut told, min, 60 * MIN, t * MIN);
            notices
                .iter()
                .map(|n| (n.level, n.reminder, n.recovery))
                .collect()
        }
    }

    #[test]
    fn told_once_reminded_every_cooldown_recovered_once() {
        let (crit, ok) = (cpu(Status::Critical, 95.0), cpu(Status::Ok, 10.0));
        let mut d = hourly(AlertLevel::Critical);
        assert_eq!(d(&crit, 1), [(Status::Critical, false, false)]);
        for t in 2..61 {
            assert_eq!(d(&crit, t), [], "minute {t}");
        }
        assert_eq!(d(&crit, 61), [(Status::Critical, true, false)]);
        assert_eq!(d(&ok, 62), [(Status::Ok, false, true)]);
        assert_eq!(d(&ok, 63), []);
        // Flapping back within the cooldown: not told again, and so no recovery.
        assert_eq!(d(&crit, 64), []);
        assert_eq!(d(&ok, 65), []);
        assert_eq!(d(&crit, 122), [(Status::Critical, false, false)]);
    }

    #[test]
    fn flapping_between_levels_does_not_storm_and_a_recovery_keeps_its_level() {
        let (crit, warn) = (cpu(Status::Critical, 96.0), cpu(Status::Warning, 90.0));
        let mut d = hourly(AlertLevel::Warning);
        assert_eq!(d(&crit, 1), [(Status::Critical, false, false)]);
        assert_eq!(d(&warn, 2), [(Status::Warning, false, false)]);
        for t in 3..10 {
            let m = if t % 2 == 1 { &crit } else { &warn };
            assert_eq!(d(m, t), [], "minute {t}");
        }
        // With min_level = critical, dropping to warning is a recovery at warning.
        let mut told = Vec::new();
        decide(&crit, &mut told, AlertLevel::Critical, MIN, 1);
        let n = decide(&warn, &mut told, AlertLevel::Critical, MIN, 2);
        assert_eq!(
            (n[0].level, n[0].previous, n[0].recovery),
            (Status::Warning, Status::Critical, true)
        );
    }

    #[test]
    fn below_min_level_is_not_told() {
        let mut told = Vec::new();
        let warn = cpu(Status::Warning, 85.0);
        assert_eq!(
            decide(&warn, &mut told, AlertLevel::Critical, MIN, 1),
            vec![]
        );
        assert_eq!(
            levels(&decide(&warn, &mut told, AlertLevel::Warning, MIN, 2)),
            vec![(Status::Warning, false)]
        );
    }

    /// Times in the future count as long ago (and are saved so); a retry may be
    /// up to `RETRY_NS` ahead. (stored told, now) → (sent, told after).
    #[test]
    fn times_in_the_future_count_as_long_ago() {
        let told = |level, at, w, c, retry| Told {
            key: "cpu".into(),
            level,
            at_ns: at,
            alert_at_ns: [w, c],
            retry_at_ns: retry,
        };
        let now = 1000 * MIN;
        let later = now + 10 * MIN;
        let retry = now + RETRY_NS;
        let rows = [
            // A critical alert "just" told, in the future: a new one goes out.
            (told(0, later, 0, later, 0), true, told(2, now, 0, now, 0)),
            (told(0, 0, 0, now + 1, 0), true, told(2, now, 0, now, 0)),
            // Still critical since a notice in the future: a reminder is due.
            (told(2, later, 0, later, 0), true, told(2, now, 0, now, 0)),
            // A retry far ahead is forgotten; one within RETRY_NS still waits.
            (told(0, 0, 0, 0, retry + 1), true, told(2, now, 0, now, 0)),
            (told(0, 0, 0, 0, retry), false, told(0, 0, 0, 0, retry)),
            // A warning time in the future is corrected too, without a notice.
            (told(2, now, later, now, 0), false, told(2, now, 0, now, 0)),
            // The past is kept: told a minute ago, quiet for the cooldown.
            (
                told(2, now - MIN, 5, now - MIN, 0),
                false,
                told(2, now - MIN, 5, now - MIN, 0),
            ),
        ];
        for (i, (before, sent, after)) in rows.into_iter().enumerate() {
            let mut t = vec![before];
            let n = decide(
                &cpu(Status::Critical, 95.0),
                &mut t,
                AlertLevel::Critical,
                60 * MIN,
                now,
            );
            assert_eq!((n.len(), &t[0]), (usize::from(sent), &after), "row {i}");
        }
    }

    #[test]
    fn timers_say_who_is_reminded_when_and_who_waits() {
        const M: u64 = 60_000_000_000;
        let told = |level, at_ns, alert_at_ns, retry_at_ns| Told {
            key: "k".into(),
            level,
            at_ns,
            alert_at_ns,
            retry_at_ns,
        };
        let records = [
            told(2, 100 * M, [10 * M, 100 * M], 0),
            told(1, 80 * M, [80 * M, 0], 130 * M),
            told(0, 90 * M, [20 * M, 50 * M], 0),
            told(0, 0, [0, 0], 0),
        ];
        assert_eq!(
            timers(&records, 60 * M, 129 * M),
            Timers {
                alerting: 2,
                next_reminder_ns: Some(140 * M),
                cooling: 2,
                retrying: 1,
            }
        );
        assert_eq!(timers(&[], 60 * M, 129 * M), Timers::default());
    }

    #[test]
    fn state_round_trips() {
        let told = vec![Told {
            key: "disk:/var".into(),
            level: 2,
            at_ns: 3,
            alert_at_ns: [4, 5],
            retry_at_ns: 6,
        }];
        let mut s = String::new();
        format(&mut s, &told);
        assert_eq!(parse(s.as_bytes()), Ok(told));
        assert!(parse(b"system-agent-alerts 1\ntold 9 1 1 1 0 cpu\nend\n").is_err());
    }
}
