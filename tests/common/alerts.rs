//! Alert delivery seen from outside: a host whose CPU reads 10% on every run, an
//! `[alert]` config on it, and fixture processes whose names would forge mail
//! headers if they were not cleaned.

use super::{Host, Ini};
use std::path::PathBuf;

/// A fixture host for alerts: CPU counters that move on every run, memory at
/// exactly 50%.
pub fn alert_host(tag: &str) -> Host {
    let h = Host::new(&format!("alert-{tag}")).ticking();
    h.mem_exact(50);
    h
}

/// agent.ini with `[alert]` `alert`, `for_cycles = 1` (before `more.thresholds`),
/// `top = 0` unless `more.agent` says otherwise, and `more.mounts`.
pub fn alert_config(h: &Host, alert: &str, more: Ini) -> PathBuf {
    let thresholds = format!("for_cycles = 1\n{}", more.thresholds);
    let extra = format!("[alert]\n{alert}\n");
    h.config(Ini {
        agent: if more.agent.is_empty() {
            "top = 0"
        } else {
            more.agent
        },
        thresholds: &thresholds,
        extra: &extra,
        ..more
    })
}

/// The fixture processes: pid 100 (alice) whose name carries a newline and a
/// would-be header, pid 101 (root) `bash`; their counters saved 100 s ago.
pub fn hostile_processes(h: &Host) {
    let procs = [
        (100, "x\nBcc: x@y", 1000, 600, 5000, 1000),
        (101, "bash", 0, 100, 6000, 2000),
    ];
    for (pid, name, uid, ticks, start, rss) in procs {
        let ids = format!("{uid}\t{uid}\t{uid}\t{uid}");
        h.process(
            pid,
            super::pid_stat(pid, name, 1, 0, ticks, start, rss),
            &format!(
                "Name:\t{}\nUid:\t{ids}\nGid:\t{ids}\nCapEff:\t0\n",
                name.replace('\n', "\\n")
            ),
            format!("{pid}\0"),
        );
    }
    h.seed_procs("100 5000 100\n101 6000 0\n");
}

/// The `alert_failed` line of a critical `mem` alert mailed to ops@example.com,
/// ending in `rest` (`exit=… error=…`).
pub fn mail_failed(rest: &str) -> String {
    format!(
        "level=error event=alert_failed metric=mem state=critical via=mail to=ops@example.com {rest}"
    )
}

/// With memory critical, one `--once` run on `[alert]` `alert` exits 2 and logs
/// one `alert_failed` line: `mail_failed(rest)`.
pub fn mail_fails(h: &Host, alert: &str, rest: &str) {
    h.mem_exact(96);
    let cfg = alert_config(h, alert, Ini::default());
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{}", run.err);
    assert_eq!(h.events("event=alert_"), vec![mail_failed(rest)]);
}
