//! The built binary against fixture /proc trees in private temp dirs: the `--once`
//! status line and exit codes, the service loop, SIGHUP reloads, the lock, syslog,
//! log reopening, the metrics file and state. Signals go only to children these
//! tests started; files are written only inside their own temp dirs.

mod common;

use common::*;
use std::path::Path;

/// A fixture host with 200 ms cycles.
fn host(tag: &str) -> Host {
    Host::new(tag).interval("200ms")
}

#[test]
fn once_ok() {
    let h = host("ok");
    let cfg = h.config(Ini::default());
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(
        run.out, "SYSTEM-AGENT OK - all checks ok | cpu=10.0%;80;90 mem=50.0%;85;95 load1=0.52\n",
        "{}",
        run.err
    );
    assert_eq!(run.code, 0);
    assert_eq!(run.err, "");
    assert_eq!(
        h.events("event=sample"),
        vec![
            "level=info event=sample cpu=10.0 mem=50.0 swap=0.0 load1=0.52 load5=0.58 load15=0.59"
        ]
    );
}

#[test]
fn state_dir_is_created_private() {
    let h = host("statedir");
    let cfg = h.config(Ini::agent(&format!("state_dir = {}", h.p("var/lib/agent"))));
    h.once(&cfg, &[]);
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(h.path(p)).unwrap().permissions(),
        )
    };
    assert_eq!(mode("var/lib/agent") & 0o777, 0o700);
    assert_eq!(mode("var/lib/agent/lock") & 0o777, 0o600);
    assert_eq!(mode("var/lib/agent/state") & 0o777, 0o600);
}

/// The status line and exit code of one `--once` run with the CPU counters at
/// `busy`/`idle` and memory `mem`% used, `top = 0`, and `thresholds`.
fn status(tag: &str, (busy, idle): (u64, u64), mem: u64, thresholds: &str) -> (String, i32) {
    let h = host(tag);
    h.write("proc/stat", proc_stat(busy, idle));
    h.mem(mem);
    let cfg = h.config(Ini {
        agent: "top = 0",
        thresholds,
        ..Ini::default()
    });
    let run = h.once_seeded(&cfg, &[]);
    (run.out, run.code)
}

#[test]
fn once_warning() {
    assert_eq!(
        status("warn", (100, 900), 90, "load_warn = 0.2"),
        (
            "SYSTEM-AGENT WARNING - mem 90.0%, load 0.52 on 2 cpus | cpu=10.0%;80;90 mem=90.0%;85;95 load1=0.52;0.4;\n"
                .to_string(),
            1
        )
    );
}

#[test]
fn once_critical() {
    assert_eq!(
        status("crit", (950, 50), 90, ""),
        (
            "SYSTEM-AGENT CRITICAL - cpu 95.0%, mem 90.0% | cpu=95.0%;80;90 mem=90.0%;85;95 load1=0.52\n"
                .to_string(),
            2
        )
    );
}

#[test]
fn once_unknown_when_proc_stat_is_unreadable() {
    let h = host("unknown");
    std::fs::remove_file(h.path("proc/stat")).unwrap();
    let cfg = h.config(Ini::default());
    let run = h.once(&cfg, &[]);
    let why = format!(
        "cannot open {}: No such file or directory",
        h.p("proc/stat")
    );
    assert_eq!(
        run.out,
        format!(
            "SYSTEM-AGENT UNKNOWN - cpu unknown ({why}) | cpu=U;80;90 mem=50.0%;85;95 load1=0.52\n"
        )
    );
    assert_eq!(run.code, 3);
    assert_eq!(
        h.events("event=error"),
        vec![format!(
            "level=error event=error what=sample error=\"{why}\""
        )]
    );
}

#[test]
fn once_disk_percent_is_what_df_prints() {
    let h = host("disk");
    let mount = h.p("");
    let cfg = h.config(Ini {
        thresholds: "disk_warn = 0\ninode_warn = 0\ndisk_eta_warn =\ndisk_eta_crit =\n\
                     inode_eta_warn =\ninode_eta_crit =",
        mounts: &mount,
        ..Ini::default()
    });
    let df = std::process::Command::new("df")
        .args(["--output=pcent,ipcent", &mount])
        .output()
        .unwrap();
    let df = String::from_utf8_lossy(&df.stdout);
    let row: Vec<&str> = df.lines().nth(1).unwrap().split_whitespace().collect();
    let run = h.once_seeded(&cfg, &[]);
    let (out, label) = (&run.out, mount_label(&mount));
    assert!(
        out.contains(&format!(" disk_{label}={};0;95 ", row[0])),
        "{out} vs df {row:?}"
    );
    assert!(
        out.ends_with(&format!(" inode_{label}={};0;97\n", row[1])),
        "{out} vs df {row:?}"
    );
    assert!(out.starts_with(&format!(
        "SYSTEM-AGENT WARNING - disk {mount} {}, inodes {mount} {}",
        row[0], row[1]
    )));
    assert_eq!(run.code, 1);
}

/// Fifty mounts that cannot be read made a line of 12 KB, of which Nagios keeps
/// the first 8 KB (perfdata lost): the line stays within 4,096 bytes, keeps the
/// state and the worst items, and says what it left out.
#[test]
fn once_line_stays_within_4096_bytes() {
    let h = host("long");
    h.mem(96);
    let gone: Vec<String> = (0..50)
        .map(|i| h.p(&format!("an-automounted-share-that-is-not-there-{i:02}")))
        .collect();
    let mounts = gone.join(" ");
    let cfg = h.config(Ini {
        agent: "top = 0",
        mounts: &mounts,
        thresholds: "disk_eta_warn =\ndisk_eta_crit =\ninode_eta_warn =\ninode_eta_crit =",
        ..Ini::default()
    });
    let run = h.once_seeded(&cfg, &[]);
    let out = run.out;
    assert_eq!(run.code, 2, "{}", run.err);
    assert!(out.len() <= 4096, "{} bytes: {out}", out.len());
    assert_eq!(out.lines().count(), 1, "{out}");
    let why = |m: &str| format!("{m} unknown (cannot statvfs {m}: No such file or directory)");
    assert!(
        out.starts_with(&format!(
            "SYSTEM-AGENT CRITICAL - mem 96.0%, disk {}, disk {}, ",
            why(&gone[0]),
            why(&gone[1])
        )),
        "{out}"
    );
    let (text, perf) = out.split_once(" | ").unwrap();
    let told = text.matches(" unknown (cannot statvfs ").count();
    let kept = perf.split_whitespace().count();
    assert!(
        text.ends_with(&format!(
            ", and {} more; {} of 103 perfdata items left out (4096-byte limit)",
            100 - told,
            103 - kept
        )),
        "{text}"
    );
    // The critical item, then the unknown ones in their order while they fit.
    let items: Vec<&str> = perf.split_whitespace().collect();
    assert!(items.contains(&"mem=96.0%;85;95"), "{perf}");
    let first = items.iter().find(|i| i.contains("=U;"));
    let label = policy_label(&gone[0]);
    assert_eq!(
        first,
        Some(&format!("disk_{label}=U;85;95").as_str()),
        "{perf}"
    );
}

fn policy_label(mount: &str) -> String {
    mount
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

#[test]
fn for_cycles_counts_consecutive_once_runs() {
    let h = host("cycles");
    let cfg = h.config(Ini {
        agent: "top = 0",
        thresholds: "for_cycles = 3",
        ..Ini::default()
    });
    h.mem(96);
    for run in 1..=6u64 {
        if run == 4 {
            h.mem(50);
        }
        // Time passes between cron runs: the CPU counters move on.
        h.write("proc/stat", proc_stat(100 * run, 900 * run));
        let r = h.once(&cfg, &[]);
        assert_eq!(r.code, if run <= 3 { 2 } else { 0 }, "run {run}: {}", r.err);
        assert_eq!(h.count("event=alert"), usize::from(run >= 3), "run {run}");
        assert_eq!(
            h.count("event=recovered"),
            usize::from(run >= 6),
            "run {run}"
        );
    }
    assert_eq!(
        h.events("event=alert"),
        vec![
            "level=warn event=alert metric=mem state=critical value=96.0 threshold=95 previous=ok"
        ]
    );
    assert_eq!(
        h.events("event=recovered"),
        vec!["level=info event=recovered metric=mem value=50.0 threshold=85 previous=critical"]
    );
    // Each run after the first computed CPU% from the counters the last one saved.
    assert_eq!(h.count("event=sample cpu=10.0"), 5);
}

#[test]
fn service_samples_reloads_and_stops_on_sigterm() {
    let h = host("loop");
    let cfg = h.config(Ini {
        thresholds: "for_cycles = 1",
        ..Ini::default()
    });
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 3);
    let start = h.events("event=start");
    assert_eq!(start.len(), 1);
    assert!(start[0].starts_with(&format!(
        "level=info event=start version={} config={} mode=service pid={} uid=",
        env!("CARGO_PKG_VERSION"),
        h.p("agent.ini"),
        agent.pid()
    )));
    assert!(
        start[0].contains(" interval=200ms dry_run=no syslog=off pressure=none caps="),
        "{}",
        start[0]
    );
    assert!(start[0].ends_with(" users=3 actions=on"), "{}", start[0]);

    // A valid change: applied, and named.
    let text = h.read("agent.ini");
    h.write(
        "agent.ini",
        text.replace("for_cycles = 1", "for_cycles = 1\nmem_warn = 40"),
    );
    agent.signal(libc::SIGHUP);
    h.must_see("event=reload", 1);
    assert_eq!(
        h.events("event=reload"),
        vec![format!(
            "level=info event=reload config={} changed=thresholds.mem_warn",
            h.p("agent.ini")
        )]
    );
    h.must_see("event=alert", 1);
    assert_eq!(
        h.events("event=alert"),
        vec!["level=warn event=alert metric=mem state=warning value=50.0 threshold=40 previous=ok"]
    );

    // A broken file: reported, and the old values stay in force.
    h.write("agent.ini", "[agent]\ninterval = soon\n");
    agent.signal(libc::SIGHUP);
    h.must_see("event=config_error", 1);
    assert_eq!(
        h.events("event=config_error"),
        vec![format!(
            "level=error event=config_error file={} line=2 key=agent.interval error=\"invalid duration \\\"soon\\\" \
             (expected a whole number with ms, s, m, h or d, e.g. 30s)\" effect=\"kept the old configuration\"",
            h.p("agent.ini")
        )]
    );
    h.mem(30);
    h.must_see("event=recovered", 1);
    assert_eq!(
        h.events("event=recovered"),
        vec!["level=info event=recovered metric=mem value=30.0 threshold=40 previous=warning"]
    );

    assert_eq!(agent.stop(), 0);
    let stop = h.events("event=stop");
    assert_eq!(stop.len(), 1);
    assert!(
        stop[0].starts_with("level=info event=stop reason=SIGTERM cycles="),
        "{}",
        stop[0]
    );
}

#[test]
fn the_lock_file_names_the_service_for_pkill_and_only_while_it_runs() {
    let h = host("pidfile");
    let cfg = h.config(Ini::default());
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 1);
    let lock = h.p("state/lock");
    assert_eq!(h.read("state/lock"), format!("{}\n", agent.pid()));
    // What the shipped logrotate postrotate runs.
    let pkill = |sig: &str| {
        std::process::Command::new("pkill")
            .args([sig, "-L", "-F", &lock])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(pkill("-HUP"), Some(0));
    h.must_see("event=reload", 1);
    assert_eq!(agent.stop(), 0);
    // The pid stays in the file, but no process holds the lock: pkill refuses.
    assert_eq!(pkill("-0"), Some(1));
    // A one-shot takes the lock without naming itself, and ignores SIGHUP.
    h.once(&cfg, &[]);
    assert_eq!(h.read("state/lock"), "");
}

/// `sig` ends the service while its next cycle is an hour away: a stop that
/// waited for that cycle would overrun the bounded wait.
fn stops_at_once_on(tag: &str, sig: i32, name: &str) {
    let h = host(tag);
    let cfg = h.config(Ini::agent("interval = 1h"));
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 1);
    agent.signal(sig);
    assert_eq!(agent.wait().code(), Some(0));
    assert_eq!(
        h.events("event=stop"),
        vec![format!("level=info event=stop reason={name} cycles=1")]
    );
}

#[test]
fn sigint_stops_too() {
    stops_at_once_on("sigint", libc::SIGINT, "SIGINT");
}

#[test]
fn sigterm_stops_without_waiting_for_the_next_cycle() {
    stops_at_once_on("sigterm", libc::SIGTERM, "SIGTERM");
}

#[test]
fn once_while_the_service_runs_reports_but_does_not_act() {
    let h = host("lock");
    let cfg = h.config(Ini::default());
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 1);
    let run = h.once(&cfg, &[]);
    assert!(run.out.starts_with("SYSTEM-AGENT "), "{}", run.out);
    assert!(
        run.out.ends_with(" mem=50.0%;85;95 load1=0.52\n"),
        "{}",
        run.out
    );
    assert!([0, 3].contains(&run.code), "{}", run.code);
    let starts = h.events("mode=once");
    assert_eq!(starts.len(), 1, "{}", h.log());
    assert!(
        starts[0].ends_with(&format!(
            " actions=off actions_off=\"another instance holds {}\"",
            h.p("state/lock")
        )),
        "{}",
        starts[0]
    );
    // A second service cannot start: exit 1, reason on stderr.
    let second = run_bounded(&["-c", cfg.to_str().unwrap()]);
    assert_eq!(second.code, 1);
    assert_eq!(
        second.err,
        format!(
            "system-agent: cannot start: another instance holds {}\n",
            h.p("state/lock")
        )
    );
    assert_eq!(agent.stop(), 0);
}

/// `syslog = yes` to a socket at `sock`, with more `[agent]` lines.
fn syslog_to(sock: &Path, more: &str) -> String {
    format!("syslog = yes\nsyslog_socket = {}\n{more}", sock.display())
}

#[test]
fn syslog_datagrams_carry_ident_facility_and_severity() {
    let h = host("syslog");
    let mut sock = Syslog::bind(&h.path("log.sock"));
    h.mem(90);
    let cfg = h.config(Ini {
        agent: &syslog_to(&h.path("log.sock"), "syslog_facility = local3\ntop = 0"),
        thresholds: "for_cycles = 1",
        ..Ini::default()
    });
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(run.code, 1);
    assert!(sock.wait_count(2), "{:?}", sock.texts());
    // <PRI>Mmm dd hh:mm:ss system-agent[PID]: MESSAGE; local3 = 19, warning = 4, info = 6.
    let strip = |s: &str| (s[..5].to_string(), s[5 + 16..].to_string());
    let got = sock.texts();
    let pid = run.pid;
    assert_eq!(
        strip(&got[0]),
        (
            "<156>".to_string(),
            format!(
                "system-agent[{pid}]: level=warn event=alert metric=mem state=warning value=90.0 threshold=85 previous=ok"
            )
        )
    );
    assert_eq!(
        strip(&got[1]),
        (
            "<158>".to_string(),
            format!(
                "system-agent[{pid}]: level=info event=sample cpu=10.0 mem=90.0 swap=0.0 load1=0.52 load5=0.58 load15=0.59"
            )
        )
    );
}

#[test]
fn missing_syslog_socket_is_reported_once_and_the_agent_goes_on() {
    let h = host("nosyslog");
    let missing = h.path("no/such.sock");
    let cfg = h.config(Ini::agent(&syslog_to(&missing, "")));
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 3);
    assert_eq!(
        h.events("event=error"),
        vec![format!(
            "level=error event=error what=syslog path={} errno=ENOENT error=\"No such file or directory\" note=retrying",
            missing.display()
        )]
    );
    assert!(
        h.events("event=start")[0].contains(" syslog=\"unavailable: No such file or directory\" ")
    );
    // The syslog daemon comes up; a reload connects to it.
    std::fs::create_dir_all(h.path("no")).unwrap();
    let mut sock = Syslog::bind(&missing);
    agent.signal(libc::SIGHUP);
    assert!(sock.wait_count(1), "a datagram after the reload");
    let got = &sock.texts()[0];
    assert!(got.contains("]: level=info event=reload "), "{got}");
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_restarted_syslog_daemon_is_reconnected_without_a_reload() {
    let h = host("syslog-restart");
    let path = h.path("log.sock");
    let mut first = Syslog::bind(&path);
    let cfg = h.config(Ini::agent(&syslog_to(&path, "")));
    let agent = h.spawn(&cfg);
    assert!(first.wait_with("event=sample").is_some());
    // The daemon restarts: a new socket takes the path (atomically, so the test
    // has no window without a socket), then the old one closes. The agent retries
    // a lost socket every 5 s.
    let mut second = Syslog::bind(&h.path("log.sock.new"));
    std::fs::rename(h.path("log.sock.new"), &path).unwrap();
    drop(first);
    assert!(second.wait_with("event=sample").is_some(), "{}", h.log());
    assert!(!h.log().contains("event=error"), "{}", h.log());
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_hung_syslog_daemon_does_not_stall_the_loop() {
    let h = host("syslog-hung");
    let path = h.path("log.sock");
    // Bound but never read: its queue fills after a few datagrams, and a blocking
    // send would hang the loop (and the stop) for good.
    let _hung = Syslog::bind(&path);
    let cfg = h.config(Ini::agent(&syslog_to(&path, "interval = 10ms")));
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 100);
    assert_eq!(agent.stop(), 0);
    // Reported once, not once per dropped line.
    let errors = h.events("what=syslog");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains(" errno=EAGAIN "), "{errors:?}");
}

#[test]
fn renamed_log_file_is_reopened_on_sighup() {
    let h = host("rotate");
    let cfg = h.config(Ini::default());
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 1);
    std::fs::rename(h.path("agent.log"), h.path("agent.log.1")).unwrap();
    agent.signal(libc::SIGHUP);
    h.must_see("event=reload", 1);
    h.must_see("event=sample", 1);
    let old = h.read("agent.log.1");
    assert!(!old.contains("event=reload"), "{old}");
    assert!(old.contains("event=start"));
    assert_eq!(agent.stop(), 0);
    assert!(h.log().contains("event=stop"));
}

#[test]
fn metrics_file_is_prometheus_text() {
    let h = host("metrics");
    let prom = h.p("metrics.prom");
    let cfg = h.config(Ini::agent(&format!("metrics_file = {prom}")));
    assert_eq!(h.once_seeded(&cfg, &[]).code, 0);
    let text = h.read("metrics.prom");
    for want in [
        "# TYPE system_agent_cpu_used_ratio gauge\nsystem_agent_cpu_used_ratio 0.1\n",
        "# TYPE system_agent_memory_used_ratio gauge\nsystem_agent_memory_used_ratio 0.5\n",
        "system_agent_load_average{period=\"1m\"} 0.52\n",
        "system_agent_level{metric=\"cpu\"} 0\nsystem_agent_level{metric=\"mem\"} 0\n",
        "# TYPE system_agent_cycles_total counter\nsystem_agent_cycles_total 1\n",
        "# TYPE system_agent_last_cycle_timestamp_seconds gauge\nsystem_agent_last_cycle_timestamp_seconds ",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // Every sample is `name{labels} value`: no timestamps; HELP and TYPE precede it.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let name = line.split(['{', ' ']).next().unwrap();
        assert_eq!(
            line.rsplit_once('}')
                .map_or(line, |(_, v)| v)
                .split_whitespace()
                .count(),
            if line.contains('}') { 1 } else { 2 },
            "{line}"
        );
        assert!(text.contains(&format!("# TYPE {name} ")), "{line}");
    }
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&prom).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o644);
    assert!(!h.path("metrics.prom.tmp").exists());
}

#[test]
fn corrupt_state_is_reported_and_replaced() {
    let h = host("corrupt");
    let cfg = h.config(Ini::default());
    h.write("state/state", "system-agent-state 1\nsaved 12\n");
    h.once(&cfg, &[]);
    assert_eq!(
        h.events("event=error"),
        vec![format!(
            "level=warn event=error what=state error=truncated path={} effect=\"starting fresh; the file will be replaced\"",
            h.p("state/state")
        )]
    );
    assert!(
        h.read("state/state")
            .starts_with("system-agent-state 1\nsaved ")
    );
}

#[test]
fn top_processes_by_cpu_and_rss() {
    let h = host("top");
    h.mem(90);
    h.process(
        100,
        pid_stat(100, "bash", 1, 0, 600, 5000, 1000),
        "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n",
        "bash\0-c\0loop\0",
    );
    h.process(
        101,
        pid_stat(101, "my (odd) name", 1, 0, 100, 6000, 2000),
        "Name:\todd\nUid:\t1001\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t0\n",
        "/usr/bin/odd\0--flag\nforged=1\0",
    );
    // A kernel thread is never listed.
    h.write(
        "proc/2/stat",
        pid_stat(2, "kthreadd", 0, 0x0020_0040, 9999, 1, 0),
    );
    let cfg = h.config(Ini::default());
    h.seed_procs("100 5000 100\n101 6000 0\n");
    assert_eq!(h.once_seeded(&cfg, &[]).code, 1);
    let page = 4096; // the page size of the machines we run on
    let bash = format!(
        "pid=100 uid=1000 user=alice name=bash cpu=5.0 rss={} window=100.0 cmd=\"bash -c loop\"",
        1000 * page
    );
    let odd = format!(
        "pid=101 uid=1001 user=bob name=\"my (odd) name\" cpu=1.0 rss={} window=100.0 cmd=\"/usr/bin/odd --flag\\nforged=1\"",
        2000 * page
    );
    // The window is the time since the saved counters (stamped 100 s before the
    // run): at least 100 s, more by however long the run took to start.
    let tops: Vec<String> = h
        .events("event=top")
        .iter()
        .map(|line| {
            let (head, rest) = line.split_once(" window=").expect("a window field");
            let (window, tail) = rest.split_once(' ').expect("fields after the window");
            let w: f64 = window.parse().expect("a number");
            assert!(w >= 100.0, "window {w}");
            format!("{head} window=100.0 {tail}")
        })
        .collect();
    assert_eq!(
        tops,
        vec![
            format!("level=info event=top by=cpu rank=1 {bash}"),
            format!("level=info event=top by=cpu rank=2 {odd}"),
            format!("level=info event=top by=rss rank=1 {odd}"),
            format!("level=info event=top by=rss rank=2 {bash}"),
        ]
    );
    // The counters are saved for the next run.
    assert!(
        h.read("state/procs")
            .ends_with("\n2 1 9999\n100 5000 600\n101 6000 100\nend\n"),
        "{}",
        h.read("state/procs")
    );
}
