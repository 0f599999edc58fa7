//! The built binary against fixture /proc trees in private temp dirs: the `--once`
//! status line and exit codes, the service loop, SIGHUP reloads, the lock, syslog,
//! log reopening, the metrics file and state. Signals go only to children these
//! tests started; files are written only inside their own temp dirs.

mod common;

use common::*;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BTIME: u64 = 1_700_000_000;

/// A fixture host: proc/{stat,meminfo,loadavg}, etc/passwd, a state dir, a config.
struct Host {
    t: TempDir,
}

impl Host {
    fn new(tag: &str) -> Host {
        let t = TempDir::new(tag);
        t.write("proc/stat", proc_stat(100, 900));
        t.write("proc/meminfo", proc_meminfo(50));
        t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
        t.write(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/sh\n",
        );
        Host { t }
    }

    fn p(&self, rel: &str) -> String {
        self.t.join(rel).display().to_string()
    }

    /// agent.ini on the fixture tree (see `fixture_ini`), 200ms cycles.
    fn config(&self, agent: &str, extra: &str) -> PathBuf {
        fixture_ini(&self.t, "200ms", agent, extra)
    }

    /// Saves CPU counters in state_dir as an earlier run would have, `age` ago.
    fn seed_cpu(&self, busy: u64, idle: u64, age: Duration) {
        let saved = now_ns() - age.as_nanos() as u64;
        self.t.write(
            "state/state",
            format!("system-agent-state 1\nsaved {saved}\nbtime {BTIME}\ncpu {busy} 0 0 {idle} 0 0 0 0\nend\n"),
        );
    }

    fn log(&self) -> String {
        self.t.read("agent.log")
    }

    fn once(&self, cfg: &Path) -> (i32, String, String) {
        let out = run(&["-c", cfg.to_str().unwrap(), "--once"]);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn spawn(&self, cfg: &Path) -> Agent {
        Agent(spawn(&["-c", cfg.to_str().unwrap()]))
    }

    fn wait_log(&self, needle: &str) -> bool {
        wait_for(Duration::from_secs(5), || self.log().contains(needle))
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A running service; killed if a test fails before stopping it.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Agent {
    fn stop(mut self) -> (i32, Duration) {
        let start = std::time::Instant::now();
        signal(&self.0, libc::SIGTERM);
        let st = wait_exit(&mut self.0, Duration::from_secs(5));
        (st.code().unwrap_or(-1), start.elapsed())
    }
}

/// Lines of `log` containing `needle`, with the `ts=... ` prefix removed.
fn events(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(|l| {
            l.split_once(' ')
                .map(|(_, rest)| rest.to_string())
                .unwrap_or_default()
        })
        .collect()
}

#[test]
fn once_ok() {
    let h = Host::new("ok");
    let cfg = h.config("", "");
    h.seed_cpu(0, 0, Duration::from_secs(60));
    let (code, out, err) = h.once(&cfg);
    assert_eq!(
        out, "SYSTEM-AGENT OK - all checks ok | cpu=10.0%;80;90 mem=50.0%;85;95 load1=0.52\n",
        "{err}"
    );
    assert_eq!(code, 0);
    assert_eq!(err, "");
    assert_eq!(
        events(&h.log(), "event=sample"),
        vec![
            "level=info event=sample cpu=10.0 mem=50.0 swap=0.0 load1=0.52 load5=0.58 load15=0.59"
        ]
    );
}

#[test]
fn state_dir_is_created_private() {
    let h = Host::new("statedir");
    let cfg = h.config(&format!("state_dir = {}", h.p("var/lib/agent")), "");
    h.once(&cfg);
    let mode = |p: &str| {
        std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(h.t.join(p)).unwrap().permissions(),
        )
    };
    assert_eq!(mode("var/lib/agent") & 0o777, 0o700);
    assert_eq!(mode("var/lib/agent/lock") & 0o777, 0o600);
    assert_eq!(mode("var/lib/agent/state") & 0o777, 0o600);
}

#[test]
fn once_warning() {
    let h = Host::new("warn");
    h.t.write("proc/meminfo", proc_meminfo(90));
    let cfg = h.config("top = 0", "[thresholds]\nload_warn = 0.2\n");
    h.seed_cpu(0, 0, Duration::from_secs(60));
    let (code, out, _) = h.once(&cfg);
    assert_eq!(
        out,
        "SYSTEM-AGENT WARNING - mem 90.0%, load 0.52 on 2 cpus | cpu=10.0%;80;90 mem=90.0%;85;95 load1=0.52;0.4;\n"
    );
    assert_eq!(code, 1);
}

#[test]
fn once_critical() {
    let h = Host::new("crit");
    h.t.write("proc/stat", proc_stat(950, 50));
    h.t.write("proc/meminfo", proc_meminfo(90));
    let cfg = h.config("top = 0", "");
    h.seed_cpu(0, 0, Duration::from_secs(60));
    let (code, out, _) = h.once(&cfg);
    assert_eq!(
        out,
        "SYSTEM-AGENT CRITICAL - cpu 95.0%, mem 90.0% | cpu=95.0%;80;90 mem=90.0%;85;95 load1=0.52\n"
    );
    assert_eq!(code, 2);
}

#[test]
fn once_unknown_when_proc_stat_is_unreadable() {
    let h = Host::new("unknown");
    std::fs::remove_file(h.t.join("proc/stat")).unwrap();
    let cfg = h.config("", "");
    let (code, out, _) = h.once(&cfg);
    assert_eq!(
        out,
        format!(
            "SYSTEM-AGENT UNKNOWN - cpu unknown (cannot open {}: No such file or directory) | cpu=U;80;90 mem=50.0%;85;95 load1=0.52\n",
            h.p("proc/stat")
        )
    );
    assert_eq!(code, 3);
    assert_eq!(
        events(&h.log(), "event=error"),
        vec![format!(
            "level=error event=error what=sample error=\"cannot open {}: No such file or directory\"",
            h.p("proc/stat")
        )]
    );
}

#[test]
fn once_disk_percent_is_what_df_prints() {
    let h = Host::new("disk");
    let mount = h.p("");
    let cfg = h.config("", "[thresholds]\ndisk_warn = 0\ninode_warn = 0\n");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("mounts =\n", &format!("mounts = {mount}\n")),
    )
    .unwrap();
    h.seed_cpu(0, 0, Duration::from_secs(60));
    let df = std::process::Command::new("df")
        .args(["--output=pcent,ipcent", &mount])
        .output()
        .unwrap();
    let df = String::from_utf8_lossy(&df.stdout);
    let row: Vec<&str> = df.lines().nth(1).unwrap().split_whitespace().collect();
    let (code, out, _) = h.once(&cfg);
    let label = policy_label(&mount);
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
    assert_eq!(code, 1);
}

/// Fifty mounts that cannot be read made a line of 12 KB, of which Nagios keeps
/// the first 8 KB (perfdata lost): the line stays within 4,096 bytes, keeps the
/// state and the worst items, and says what it left out.
#[test]
fn once_line_stays_within_4096_bytes() {
    let h = Host::new("long");
    h.t.write("proc/meminfo", proc_meminfo(96));
    let gone: Vec<String> = (0..50)
        .map(|i| h.p(&format!("an-automounted-share-that-is-not-there-{i:02}")))
        .collect();
    let cfg = h.config("top = 0", "");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("mounts =\n", &format!("mounts = {}\n", gone.join(" "))),
    )
    .unwrap();
    h.seed_cpu(0, 0, Duration::from_secs(60));
    let (code, out, err) = h.once(&cfg);
    assert_eq!(code, 2, "{err}");
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
    let h = Host::new("cycles");
    let cfg = h.config("top = 0", "[thresholds]\nfor_cycles = 3\n");
    h.t.write("proc/meminfo", proc_meminfo(96));
    for run in 1..=6u64 {
        if run == 4 {
            h.t.write("proc/meminfo", proc_meminfo(50));
        }
        // Time passes between cron runs: the CPU counters move on.
        h.t.write("proc/stat", proc_stat(100 * run, 900 * run));
        let (code, _, err) = h.once(&cfg);
        assert_eq!(code, if run <= 3 { 2 } else { 0 }, "run {run}: {err}");
        let alerts = events(&h.log(), "event=alert");
        let recovered = events(&h.log(), "event=recovered");
        assert_eq!(alerts.len(), usize::from(run >= 3), "run {run}");
        assert_eq!(recovered.len(), usize::from(run >= 6), "run {run}");
    }
    assert_eq!(
        events(&h.log(), "event=alert"),
        vec![
            "level=warn event=alert metric=mem state=critical value=96.0 threshold=95 previous=ok"
        ]
    );
    assert_eq!(
        events(&h.log(), "event=recovered"),
        vec!["level=info event=recovered metric=mem value=50.0 threshold=85 previous=critical"]
    );
    // Each run after the first computed CPU% from the counters the last one saved.
    assert_eq!(events(&h.log(), "event=sample cpu=10.0").len(), 5);
}

#[test]
fn service_samples_reloads_and_stops_on_sigterm() {
    let h = Host::new("loop");
    let cfg = h.config("", "[thresholds]\nfor_cycles = 1\n");
    let agent = h.spawn(&cfg);
    assert!(
        wait_for(Duration::from_secs(5), || events(&h.log(), "event=sample")
            .len()
            >= 3),
        "{}",
        h.log()
    );
    let start = events(&h.log(), "event=start");
    assert_eq!(start.len(), 1);
    assert!(start[0].starts_with(&format!(
        "level=info event=start version={} config={} mode=service pid={} uid=",
        env!("CARGO_PKG_VERSION"),
        h.p("agent.ini"),
        agent.0.id()
    )));
    assert!(
        start[0].contains(" interval=200ms dry_run=no syslog=off pressure=none caps="),
        "{}",
        start[0]
    );
    assert!(start[0].ends_with(" users=3 actions=on"), "{}", start[0]);

    // A valid change: applied, and named.
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replace("for_cycles = 1", "for_cycles = 1\nmem_warn = 40"),
    )
    .unwrap();
    signal(&agent.0, libc::SIGHUP);
    assert!(h.wait_log("event=reload"), "{}", h.log());
    assert_eq!(
        events(&h.log(), "event=reload"),
        vec![format!(
            "level=info event=reload config={} changed=thresholds.mem_warn",
            h.p("agent.ini")
        )]
    );
    assert!(h.wait_log("event=alert"), "{}", h.log());
    assert_eq!(
        events(&h.log(), "event=alert"),
        vec!["level=warn event=alert metric=mem state=warning value=50.0 threshold=40 previous=ok"]
    );

    // A broken file: reported, and the old values stay in force.
    std::fs::write(&cfg, "[agent]\ninterval = soon\n").unwrap();
    signal(&agent.0, libc::SIGHUP);
    assert!(h.wait_log("event=config_error"), "{}", h.log());
    assert_eq!(
        events(&h.log(), "event=config_error"),
        vec![format!(
            "level=error event=config_error file={} line=2 key=agent.interval error=\"invalid duration \\\"soon\\\" \
             (expected a whole number with ms, s, m, h or d, e.g. 30s)\" effect=\"kept the old configuration\"",
            h.p("agent.ini")
        )]
    );
    h.t.write("proc/meminfo", proc_meminfo(30));
    assert!(h.wait_log("event=recovered"), "{}", h.log());
    assert_eq!(
        events(&h.log(), "event=recovered"),
        vec!["level=info event=recovered metric=mem value=30.0 threshold=40 previous=warning"]
    );

    let (code, took) = agent.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let stop = events(&h.log(), "event=stop");
    assert_eq!(stop.len(), 1);
    assert!(
        stop[0].starts_with("level=info event=stop reason=SIGTERM cycles="),
        "{}",
        stop[0]
    );
}

#[test]
fn the_lock_file_names_the_service_for_pkill_and_only_while_it_runs() {
    let h = Host::new("pidfile");
    let cfg = h.config("", "");
    let agent = h.spawn(&cfg);
    assert!(h.wait_log("event=sample"), "{}", h.log());
    let lock = h.p("state/lock");
    assert_eq!(h.t.read("state/lock"), format!("{}\n", agent.0.id()));
    // What the shipped logrotate postrotate runs.
    let pkill = |sig: &str| {
        std::process::Command::new("pkill")
            .args([sig, "-L", "-F", &lock])
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(pkill("-HUP"), Some(0));
    assert!(h.wait_log("event=reload"), "{}", h.log());
    assert_eq!(agent.stop().0, 0);
    // The pid stays in the file, but no process holds the lock: pkill refuses.
    assert_eq!(pkill("-0"), Some(1));
    // A one-shot takes the lock without naming itself, and ignores SIGHUP.
    h.once(&cfg);
    assert_eq!(h.t.read("state/lock"), "");
}

#[test]
fn sigint_stops_too() {
    let h = Host::new("sigint");
    let cfg = h.config("interval = 1h", "");
    let mut agent = h.spawn(&cfg);
    assert!(h.wait_log("event=sample"), "{}", h.log());
    signal(&agent.0, libc::SIGINT);
    let st = wait_exit(&mut agent.0, Duration::from_secs(2));
    assert_eq!(st.code(), Some(0));
    assert_eq!(
        events(&h.log(), "event=stop"),
        vec!["level=info event=stop reason=SIGINT cycles=1"]
    );
}

#[test]
fn once_while_the_service_runs_reports_but_does_not_act() {
    let h = Host::new("lock");
    let cfg = h.config("", "");
    let agent = h.spawn(&cfg);
    assert!(h.wait_log("event=sample"), "{}", h.log());
    let (code, out, _) = h.once(&cfg);
    assert!(out.starts_with("SYSTEM-AGENT "), "{out}");
    assert!(out.ends_with(" mem=50.0%;85;95 load1=0.52\n"), "{out}");
    assert!([0, 3].contains(&code), "{code}");
    let starts = events(&h.log(), "mode=once");
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
    let out = run(&["-c", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "system-agent: cannot start: another instance holds {}\n",
            h.p("state/lock")
        )
    );
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn syslog_datagrams_carry_ident_facility_and_severity() {
    let h = Host::new("syslog");
    let sock_path = h.t.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    h.t.write("proc/meminfo", proc_meminfo(90));
    let cfg = h.config(
        &format!(
            "syslog = yes\nsyslog_socket = {}\nsyslog_facility = local3\ntop = 0",
            sock_path.display()
        ),
        "[thresholds]\nfor_cycles = 1\n",
    );
    h.seed_cpu(0, 0, Duration::from_secs(60));
    let child = spawn(&["-c", cfg.to_str().unwrap(), "--once"]);
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if got.len() == 2 {
            break;
        }
    }
    // <PRI>Mmm dd hh:mm:ss system-agent[PID]: MESSAGE; local3 = 19, warning = 4, info = 6.
    let strip = |s: &str| (s[..5].to_string(), s[5 + 16..].to_string());
    assert_eq!(got.len(), 2, "{got:?}");
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
    let h = Host::new("nosyslog");
    let missing = h.p("no/such.sock");
    let cfg = h.config(&format!("syslog = yes\nsyslog_socket = {missing}"), "");
    let agent = h.spawn(&cfg);
    assert!(
        wait_for(Duration::from_secs(5), || events(&h.log(), "event=sample")
            .len()
            >= 3),
        "{}",
        h.log()
    );
    assert_eq!(
        events(&h.log(), "event=error"),
        vec![format!(
            "level=error event=error what=syslog path={missing} errno=ENOENT error=\"No such file or directory\" note=retrying"
        )]
    );
    assert!(
        events(&h.log(), "event=start")[0]
            .contains(" syslog=\"unavailable: No such file or directory\" ")
    );
    // The syslog daemon comes up; a reload connects to it.
    std::fs::create_dir_all(h.t.join("no")).unwrap();
    let sock = UnixDatagram::bind(&missing).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    signal(&agent.0, libc::SIGHUP);
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("a datagram after the reload");
    let got = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(got.contains("]: level=info event=reload "), "{got}");
    assert_eq!(agent.stop().0, 0);
}

/// Receives datagrams until one contains `needle` or 10 s pass (the agent retries a
/// lost syslog socket every 5 s).
fn recv_until(sock: &UnixDatagram, needle: &str) -> Option<String> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut buf = [0u8; 4096];
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(n) = sock.recv(&mut buf) {
            let s = String::from_utf8_lossy(&buf[..n]).into_owned();
            if s.contains(needle) {
                return Some(s);
            }
        }
    }
    None
}

#[test]
fn a_restarted_syslog_daemon_is_reconnected_without_a_reload() {
    let h = Host::new("syslog-restart");
    let path = h.t.join("log.sock");
    let first = UnixDatagram::bind(&path).unwrap();
    let cfg = h.config(
        &format!("syslog = yes\nsyslog_socket = {}", path.display()),
        "",
    );
    let agent = h.spawn(&cfg);
    assert!(recv_until(&first, "event=sample").is_some());
    // The daemon restarts: a new socket takes the path (atomically, so the test
    // has no window without a socket), then the old one closes.
    let second = UnixDatagram::bind(h.t.join("log.sock.new")).unwrap();
    std::fs::rename(h.t.join("log.sock.new"), &path).unwrap();
    drop(first);
    assert!(recv_until(&second, "event=sample").is_some(), "{}", h.log());
    assert!(!h.log().contains("event=error"), "{}", h.log());
    assert_eq!(agent.stop().0, 0);
}

#[test]
fn a_hung_syslog_daemon_does_not_stall_the_loop() {
    let h = Host::new("syslog-hung");
    let path = h.t.join("log.sock");
    // Bound but never read: its queue fills after a few datagrams.
    let _hung = UnixDatagram::bind(&path).unwrap();
    let cfg = h.config(
        &format!(
            "interval = 10ms\nsyslog = yes\nsyslog_socket = {}",
            path.display()
        ),
        "",
    );
    let agent = h.spawn(&cfg);
    assert!(
        wait_for(Duration::from_secs(10), || events(&h.log(), "event=sample")
            .len()
            >= 100),
        "{}",
        h.log()
    );
    let (code, took) = agent.stop();
    assert_eq!(code, 0);
    assert!(took < Duration::from_secs(2));
    // Reported once, not once per dropped line.
    let errors = events(&h.log(), "what=syslog");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains(" errno=EAGAIN "), "{errors:?}");
}

#[test]
fn renamed_log_file_is_reopened_on_sighup() {
    let h = Host::new("rotate");
    let cfg = h.config("", "");
    let agent = h.spawn(&cfg);
    assert!(h.wait_log("event=sample"), "{}", h.log());
    std::fs::rename(h.t.join("agent.log"), h.t.join("agent.log.1")).unwrap();
    signal(&agent.0, libc::SIGHUP);
    assert!(h.wait_log("event=reload"), "new file: {}", h.log());
    assert!(h.wait_log("event=sample"), "{}", h.log());
    let old = h.t.read("agent.log.1");
    assert!(!old.contains("event=reload"), "{old}");
    assert!(old.contains("event=start"));
    assert_eq!(agent.stop().0, 0);
    assert!(h.log().contains("event=stop"));
}

#[test]
fn metrics_file_is_prometheus_text() {
    let h = Host::new("metrics");
    let prom = h.p("metrics.prom");
    let cfg = h.config(&format!("metrics_file = {prom}"), "");
    h.seed_cpu(0, 0, Duration::from_secs(60));
    assert_eq!(h.once(&cfg).0, 0);
    let text = h.t.read("metrics.prom");
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
    assert!(!h.t.join("metrics.prom.tmp").exists());
}

#[test]
fn corrupt_state_is_reported_and_replaced() {
    let h = Host::new("corrupt");
    let cfg = h.config("", "");
    h.t.write("state/state", "system-agent-state 1\nsaved 12\n");
    h.once(&cfg);
    assert_eq!(
        events(&h.log(), "event=error"),
        vec![format!(
            "level=warn event=error what=state error=truncated path={} effect=\"starting fresh; the file will be replaced\"",
            h.p("state/state")
        )]
    );
    assert!(
        h.t.read("state/state")
            .starts_with("system-agent-state 1\nsaved ")
    );
}

/// `/proc/PID/stat` with the fields the agent reads in their places.
fn pid_stat(
    pid: u32,
    name: &str,
    ppid: u32,
    flags: u64,
    ticks: u64,
    start: u64,
    rss: u64,
) -> String {
    format!(
        "{pid} ({name}) S {ppid} {pid} {pid} 0 -1 {flags} 0 0 0 0 {ticks} 0 0 0 20 0 1 0 {start} 1000000 {rss} \
         18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
    )
}

#[test]
fn top_processes_by_cpu_and_rss() {
    let h = Host::new("top");
    h.t.write("proc/meminfo", proc_meminfo(90));
    h.t.write(
        "proc/100/stat",
        pid_stat(100, "bash", 1, 0, 600, 5000, 1000),
    );
    h.t.write(
        "proc/100/status",
        "Name:\tbash\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n",
    );
    h.t.write("proc/100/cmdline", "bash\0-c\0loop\0");
    h.t.write(
        "proc/101/stat",
        pid_stat(101, "my (odd) name", 1, 0, 100, 6000, 2000),
    );
    h.t.write(
        "proc/101/status",
        "Name:\todd\nUid:\t1001\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t0\n",
    );
    h.t.write("proc/101/cmdline", "/usr/bin/odd\0--flag\nforged=1\0");
    // A kernel thread is never listed.
    h.t.write(
        "proc/2/stat",
        pid_stat(2, "kthreadd", 0, 0x0020_0040, 9999, 1, 0),
    );
    let cfg = h.config("", "");
    h.seed_cpu(0, 0, Duration::from_secs(60));
    let saved = now_ns() - 100_000_000_000;
    h.t.write(
        "state/procs",
        format!(
            "system-agent-procs 1\nsaved {saved}\nbtime {BTIME}\n100 5000 100\n101 6000 0\nend\n"
        ),
    );
    assert_eq!(h.once(&cfg).0, 1);
    let page = 4096; // the page size of the machines we run on
    let bash = format!(
        "pid=100 uid=1000 user=alice name=bash cpu=5.0 rss={} window=100.0 cmd=\"bash -c loop\"",
        1000 * page
    );
    let odd = format!(
        "pid=101 uid=1001 user=bob name=\"my (odd) name\" cpu=1.0 rss={} window=100.0 cmd=\"/usr/bin/odd --flag\\nforged=1\"",
        2000 * page
    );
    assert_eq!(
        events(&h.log(), "event=top"),
        vec![
            format!("level=info event=top by=cpu rank=1 {bash}"),
            format!("level=info event=top by=cpu rank=2 {odd}"),
            format!("level=info event=top by=rss rank=1 {odd}"),
            format!("level=info event=top by=rss rank=2 {bash}"),
        ]
    );
    // The counters are saved for the next run.
    assert!(
        h.t.read("state/procs")
            .ends_with("\n2 1 9999\n100 5000 600\n101 6000 100\nend\n"),
        "{}",
        h.t.read("state/procs")
    );
}
