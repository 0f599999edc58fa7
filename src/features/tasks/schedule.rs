//! When a `[task.NAME]` runs, decided on counters and a clock (pure): a task is
//! due `every` after its last success, and starts once the CPU has been below
//! `when_cpu_below` for `idle_cycles` cycles; at most one runs at a time. Its
//! counters are the records of `state_dir/tasks` (formatted here), so cron runs
//! count as consecutive cycles and a restart does not rerun a finished task.

use crate::config::Task;
use crate::procfs::{fields, parse_u64};
use crate::store::{self, Kind, Stamp};
use std::fmt::Write as _;
use std::time::Duration;

/// After a failed run, the next try waits this long (or `every`, if shorter).
pub const RETRY_AFTER: Duration = Duration::from_secs(3600);

/// What the agent remembers of one task.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskState {
    pub name: String,
    /// Wall clock (ns) of the last run that exited 0; 0: never.
    pub last_success_ns: u64,
    /// Wall clock (ns) of the last start; 0: never.
    pub last_attempt_ns: u64,
    /// Consecutive cycles with the CPU below `when_cpu_below`.
    pub idle: u32,
    /// Why the task could not be started (a missing program or user), as last
    /// reported; empty once it starts. Kept so cron runs report it once.
    pub skipped: String,
}

/// A new configuration (a reload, a service start): a skipped task is tried again
/// at once and, if it still cannot run, reported once more: the change may be the
/// operator's fix.
pub fn forget_skips(states: &mut [TaskState]) {
    for s in states.iter_mut().filter(|s| !s.skipped.is_empty()) {
        s.skipped.clear();
        s.last_attempt_ns = s.last_success_ns;
    }
}

/// The state of each task, in config order, carrying over what `saved` knew of
/// tasks with the same name.
pub fn states_for(tasks: &[Task], saved: &[TaskState]) -> Vec<TaskState> {
    tasks
        .iter()
        .map(|t| {
            saved
                .iter()
                .find(|s| s.name == t.name)
                .cloned()
                .unwrap_or(TaskState {
                    name: t.name.clone(),
                    ..TaskState::default()
                })
        })
        .collect()
}

/// One cycle's CPU reading: idle cycles count up while below each task's limit.
/// An unknown reading is not idle.
pub fn observe_cpu(tasks: &[Task], states: &mut [TaskState], cpu: Option<f64>) {
    for (t, s) in tasks.iter().zip(states) {
        s.idle = match cpu {
            Some(c) if c < t.when_cpu_below => s.idle.saturating_add(1).min(t.idle_cycles.max(1)),
            _ => 0,
        };
    }
}

/// A time after `now_ns` (the clock was stepped back, or the state came from
/// another host) counts as never: otherwise the task would wait until the clock
/// caught up, perhaps for years.
fn past(at_ns: u64, now_ns: u64) -> u64 {
    if at_ns > now_ns { 0 } else { at_ns }
}

/// Rewrites times in the future as never (see `past`), so the next save corrects
/// the state file.
pub fn forget_future(states: &mut [TaskState], now_ns: u64) {
    for s in states {
        s.last_success_ns = past(s.last_success_ns, now_ns);
        s.last_attempt_ns = past(s.last_attempt_ns, now_ns);
    }
}

/// Whether `t` is due at `now_ns` (wall clock): never succeeded, or `every` since
/// its last success; and not retried sooner than `RETRY_AFTER` (or `every`) after
/// a failed start. A time in the future counts as never.
pub fn is_due(t: &Task, s: &TaskState, now_ns: u64) -> bool {
    now_ns >= due_at(t, s, now_ns)
}

/// When `t` is due (wall clock ns), as `is_due` decides at `now_ns`: `every`
/// after its last success (never succeeded: at once), and not before
/// `RETRY_AFTER` (or `every`) after a failed start.
pub fn due_at(t: &Task, s: &TaskState, now_ns: u64) -> u64 {
    let (success, attempt) = (
        past(s.last_success_ns, now_ns),
        past(s.last_attempt_ns, now_ns),
    );
    let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    let after_success = match success {
        0 => 0,
        at => at.saturating_add(ns(t.every)),
    };
    let after_failure = if attempt > success {
        attempt.saturating_add(ns(t.every.min(RETRY_AFTER)))
    } else {
        0
    };
    after_success.max(after_failure)
}

/// The task due soonest, but `running` (by name), if any: its index and when it
/// is due.
pub fn soonest(
    tasks: &[Task],
    states: &[TaskState],
    running: Option<&str>,
    now_ns: u64,
) -> Option<(usize, u64)> {
    tasks
        .iter()
        .zip(states)
        .enumerate()
        .filter(|(_, (t, _))| Some(t.name.as_str()) != running)
        .map(|(i, (t, s))| (i, due_at(t, s, now_ns)))
        .min_by_key(|&(_, at)| at)
}

/// The first task that is due and has had its idle cycles, if any.
pub fn next(tasks: &[Task], states: &[TaskState], now_ns: u64) -> Option<usize> {
    tasks
        .iter()
        .zip(states)
        .position(|(t, s)| s.idle >= t.idle_cycles && is_due(t, s, now_ns))
}

/// The last success, start and idle count of each task, and why one was skipped.
/// A dry run keeps its own (what it decided counts as done for it alone).
pub const KIND: Kind = Kind {
    name: "tasks",
    version: 1,
    oldest: 1,
    refused: "not a version 1 tasks file",
    cap: crate::state::max::TASKS,
    acts: true,
};

/// `task SUCCESS_NS ATTEMPT_NS IDLE NAME`, and `skipped NAME REASON` for a task
/// that could not start.
pub fn format(out: &mut String, states: &[TaskState]) {
    store::begin(out, &KIND, &Stamp::default());
    for s in states {
        let _ = writeln!(
            out,
            "task {} {} {} {}",
            s.last_success_ns, s.last_attempt_ns, s.idle, s.name
        );
        if !s.skipped.is_empty() {
            // A reason is one line of our own making.
            let _ = writeln!(out, "skipped {} {}", s.name, s.skipped.replace('\n', " "));
        }
    }
    store::end(out);
}

pub fn parse(text: &[u8]) -> Result<Vec<TaskState>, &'static str> {
    let (_, body) = store::open(&KIND, text)?;
    let mut out = Vec::new();
    for line in body.filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix(b"skipped ") {
            let text = std::str::from_utf8(rest).map_err(|_| "bad skipped line")?;
            let (name, why) = text.split_once(' ').ok_or("bad skipped line")?;
            let s: &mut TaskState = out
                .iter_mut()
                .find(|s: &&mut TaskState| s.name == name)
                .ok_or("skipped line without its task line")?;
            s.skipped = why.to_string();
            continue;
        }
        let rest = line.strip_prefix(b"task ").ok_or("unknown line")?;
        let mut f = fields(rest);
        let mut num = || f.next().and_then(parse_u64).ok_or("bad task line");
        let (last_success_ns, last_attempt_ns) = (num()?, num()?);
        let idle = u32::try_from(num()?).map_err(|_| "bad task line")?;
        let name = f
            .next()
            .and_then(|n| std::str::from_utf8(n).ok())
            .ok_or("bad task line")?;
        out.push(TaskState {
            name: name.to_string(),
            last_success_ns,
            last_attempt_ns,
            idle,
            skipped: String::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(every_s: u64, below: f64, idle: u32) -> Task {
        Task {
            name: "t".into(),
            command: vec!["/bin/true".into()],
            every: Duration::from_secs(every_s),
            when_cpu_below: below,
            idle_cycles: idle,
            timeout: Duration::from_secs(60),
            nice: 10,
            user: None,
            cwd: "/".into(),
            umask: 0o022,
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn idle_cycles_then_due_then_not_again_before_every() {
        let tasks = [task(3600, 20.0, 3)];
        let mut st = states_for(&tasks, &[]);
        for cpu in [Some(5.0), Some(5.0)] {
            observe_cpu(&tasks, &mut st, cpu);
            assert_eq!(next(&tasks, &st, 1000 * S), None);
        }
        observe_cpu(&tasks, &mut st, Some(50.0));
        assert_eq!(st[0].idle, 0, "a busy cycle starts the count over");
        for _ in 0..3 {
            observe_cpu(&tasks, &mut st, Some(19.9));
        }
        assert_eq!(next(&tasks, &st, 1000 * S), Some(0));
        st[0].last_attempt_ns = 1000 * S;
        st[0].last_success_ns = 1000 * S;
        assert_eq!(next(&tasks, &st, 4599 * S), None);
        assert_eq!(next(&tasks, &st, 4600 * S), Some(0));
        observe_cpu(&tasks, &mut st, None);
        assert_eq!(
            next(&tasks, &st, 9000 * S),
            None,
            "an unknown CPU is not idle"
        );
    }

    #[test]
    fn a_failed_run_is_retried_after_an_hour_or_every() {
        let t = task(86_400, 20.0, 0);
        let s = TaskState {
            name: "t".into(),
            last_success_ns: 0,
            last_attempt_ns: 1000 * S,
            idle: 0,
            skipped: String::new(),
        };
        assert!(!is_due(&t, &s, 4599 * S));
        assert!(is_due(&t, &s, 4600 * S));
        let short = task(60, 20.0, 0);
        assert!(is_due(&short, &s, 1060 * S));
    }

    #[test]
    fn due_at_is_when_is_due_turns_true() {
        let tasks = [task(3600, 20.0, 0), task(60, 20.0, 0)];
        let rows = [
            (0, 0),
            (1000 * S, 1000 * S),
            (0, 1000 * S),
            (1000 * S, 2000 * S),
        ];
        for (success, attempt) in rows {
            for t in &tasks {
                let s = TaskState {
                    last_success_ns: success,
                    last_attempt_ns: attempt,
                    ..TaskState::default()
                };
                let now = 5000 * S;
                let at = due_at(t, &s, now);
                for probe in [at.saturating_sub(1), at, at + 1] {
                    let probe = probe.max(attempt);
                    assert_eq!(
                        is_due(t, &s, probe),
                        probe >= at,
                        "{success} {attempt} {probe}"
                    );
                }
            }
        }
        // Never run: due at once; run a minute ago: due `every` after; failed
        // a minute ago: an hour after (or `every`, if shorter).
        let s = |success, attempt| TaskState {
            last_success_ns: success,
            last_attempt_ns: attempt,
            ..TaskState::default()
        };
        assert_eq!(due_at(&tasks[0], &s(0, 0), 100 * S), 0);
        assert_eq!(due_at(&tasks[0], &s(40 * S, 40 * S), 100 * S), 3640 * S);
        assert_eq!(due_at(&tasks[0], &s(0, 40 * S), 100 * S), 3640 * S);
        assert_eq!(due_at(&tasks[1], &s(0, 40 * S), 100 * S), 100 * S);
        let mut named = tasks.clone();
        named[1].name = "u".into();
        let states = [s(40 * S, 40 * S), s(0, 0)];
        assert_eq!(soonest(&named, &states, None, 100 * S), Some((1, 0)));
        assert_eq!(
            soonest(&named, &states, Some("u"), 100 * S),
            Some((0, 3640 * S))
        );
    }

    /// Times in the future count as never, in the decision and in the state saved
    /// next. (last success, last attempt) at 1000 s → (due, corrected).
    #[test]
    fn times_in_the_future_count_as_never() {
        let t = task(3600, 20.0, 0);
        let rows = [
            ((2000 * S, 2000 * S), true, (0, 0)),
            ((0, 1001 * S), true, (0, 0)),
            ((999 * S, 2000 * S), false, (999 * S, 0)),
            ((2000 * S, 999 * S), false, (0, 999 * S)),
            ((1000 * S, 1000 * S), false, (1000 * S, 1000 * S)),
        ];
        for (i, ((success, attempt), due, corrected)) in rows.into_iter().enumerate() {
            let mut st = [TaskState {
                name: "t".into(),
                last_success_ns: success,
                last_attempt_ns: attempt,
                ..TaskState::default()
            }];
            assert_eq!(is_due(&t, &st[0], 1000 * S), due, "row {i}");
            forget_future(&mut st, 1000 * S);
            let got = (st[0].last_success_ns, st[0].last_attempt_ns);
            assert_eq!(got, corrected, "row {i}");
            assert_eq!(is_due(&t, &st[0], 1000 * S), due, "row {i}, corrected");
        }
    }

    #[test]
    fn state_round_trips_and_follows_names() {
        let mut st = vec![TaskState {
            name: "mandb".into(),
            last_success_ns: 5,
            last_attempt_ns: 6,
            idle: 2,
            skipped: String::new(),
        }];
        let mut text = String::new();
        format(&mut text, &st);
        assert_eq!(text, "system-agent-tasks 1\ntask 5 6 2 mandb\nend\n");
        assert_eq!(parse(text.as_bytes()), Ok(st.clone()));
        assert!(parse(b"system-agent-tasks 1\ntask 5 6 2 mandb\n").is_err());
        let mut t = task(1, 1.0, 1);
        t.name = "mandb".into();
        assert_eq!(states_for(&[t], &st), st);

        st[0].skipped = "/usr/bin/mandb is missing or not executable".into();
        format(&mut text, &st);
        assert_eq!(
            text,
            "system-agent-tasks 1\ntask 5 6 2 mandb\n\
             skipped mandb /usr/bin/mandb is missing or not executable\nend\n"
        );
        assert_eq!(parse(text.as_bytes()), Ok(st.clone()));
        assert!(parse(b"system-agent-tasks 1\nskipped x why\nend\n").is_err());
        // A new configuration retries it at once.
        forget_skips(&mut st);
        assert_eq!((st[0].skipped.as_str(), st[0].last_attempt_ns), ("", 5));
    }
}
