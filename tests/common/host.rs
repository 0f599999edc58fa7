//! The fixture host every integration test runs the built binary against: a private
//! temp dir with a fixture `/proc` (stat, meminfo, loadavg), a passwd, a state dir
//! and an `agent.ini` built from the parts a test cares about; bounded `--once` runs,
//! services stopped by pid when dropped, and the log read back as events.

use super::{TempDir, bin, proc_meminfo, proc_stat, section, signal, wait_exit, wait_for};
use std::cell::Cell;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long any bounded wait may take before the test gives up: far beyond what a
/// step needs, so a loaded machine does not fail a test, yet a hang (the failure
/// some tests look for) does not stall the suite.
pub const LIMIT: Duration = Duration::from_secs(30);

/// The boot time every fixture `/proc/stat` and saved state carries.
pub const BTIME: u64 = 1_700_000_000;

/// The fixture `/proc/loadavg`.
pub const LOADAVG: &str = "0.52 0.58 0.59 1/467 12345\n";

/// The fixture passwd: root, alice (1000) and bob (1001).
pub const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
    alice:x:1000:1000::/home/alice:/bin/bash\n\
    bob:x:1001:1001::/home/bob:/bin/sh\n";

/// Nanoseconds since the epoch, now.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_nanos() as u64
}

/// Seconds since the epoch, now.
pub fn now_s() -> i64 {
    (now_ns() / 1_000_000_000) as i64
}

/// A fixture host in a private temp dir: `proc/stat` (CPU counters 100 busy, 900
/// idle), `proc/meminfo` (50% used), `proc/loadavg`, `etc/passwd`; log, state and
/// config in the same dir.
pub struct Host {
    pub t: TempDir,
    /// The `[agent] interval` of the configs it writes.
    interval: &'static str,
    /// When set, each `--once` run first moves the CPU counters on by 1,000 ticks,
    /// 10% busy, so every run reads the CPU at exactly 10% and none pauses to
    /// sample it twice.
    ticking: bool,
    ticks: Cell<u64>,
}

impl Host {
    pub fn new(tag: &str) -> Host {
        let t = TempDir::new(tag);
        // Tasks may run as other users: they must be able to reach their files.
        std::fs::set_permissions(t.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod the temp dir");
        t.write("proc/stat", proc_stat(100, 900));
        t.write("proc/meminfo", proc_meminfo(50));
        t.write("proc/loadavg", LOADAVG);
        t.write("etc/passwd", PASSWD);
        Host {
            t,
            interval: "100ms",
            ticking: false,
            ticks: Cell::new(1),
        }
    }

    /// The same host with `interval` in the configs it writes.
    pub fn interval(mut self, interval: &'static str) -> Host {
        self.interval = interval;
        self
    }

    /// The same host with CPU counters saved a minute ago and moving on before each
    /// `--once` run (see `ticking`).
    pub fn ticking(mut self) -> Host {
        self.ticking = true;
        self.seed_cpu(0, 0, Duration::from_secs(60));
        self
    }

    /// The path of `rel` in the temp dir, as text.
    pub fn p(&self, rel: &str) -> String {
        self.t.join(rel).display().to_string()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.t.join(rel)
    }

    /// Writes a file (creating parent dirs) and returns its path.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        self.t.write(rel, data)
    }

    /// A file's text, or "" when it cannot be read.
    pub fn read(&self, rel: &str) -> String {
        self.t.read(rel)
    }

    /// Replaces `etc/passwd`.
    pub fn passwd(&self, text: &str) {
        self.t.write("etc/passwd", text);
    }

    /// Memory in use, `pct` percent of 1 GiB (see `proc_meminfo`).
    pub fn mem(&self, pct: u64) {
        self.t.write("proc/meminfo", proc_meminfo(pct));
    }

    /// Memory in use, exactly `pct` percent (of 1,000,000 kB).
    pub fn mem_exact(&self, pct: u64) {
        let avail = 1_000_000 - pct * 10_000;
        self.t.write(
            "proc/meminfo",
            format!(
                "MemTotal:        1000000 kB\nMemFree:         {avail} kB\nMemAvailable:    {avail} kB\n\
                 Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n"
            ),
        );
    }

    /// Saves CPU counters in state_dir as an earlier run would have, `age` ago.
    pub fn seed_cpu(&self, busy: u64, idle: u64, age: Duration) {
        let saved = now_ns() - age.as_nanos() as u64;
        self.t.write(
            "state/state",
            format!("system-agent-state 1\nsaved {saved}\nbtime {BTIME}\ncpu {busy} 0 0 {idle} 0 0 0 0\nend\n"),
        );
    }

    /// Saves per-process CPU counters (`PID START TICKS` lines) as a run 100 s ago
    /// would have.
    pub fn seed_procs(&self, records: &str) {
        let saved = now_ns() - 100_000_000_000;
        self.t.write(
            "state/procs",
            format!("system-agent-procs 1\nsaved {saved}\nbtime {BTIME}\n{records}end\n"),
        );
    }

    /// A fixture process: `proc/PID/stat`, `status` and `cmdline`.
    pub fn process(&self, pid: u32, stat: String, status: &str, cmdline: impl AsRef<[u8]>) {
        self.t.write(&format!("proc/{pid}/stat"), stat);
        self.t.write(&format!("proc/{pid}/status"), status);
        self.t.write(&format!("proc/{pid}/cmdline"), cmdline);
    }

    /// Moves `proc/stat` on by 1,000 ticks, 10% of them busy.
    pub fn tick(&self) {
        let n = self.ticks.get() + 1;
        self.ticks.set(n);
        self.t.write("proc/stat", proc_stat(100 * n, 900 * n));
    }

    /// A `#!/bin/sh` script, mode 0755; returns its path.
    pub fn script(&self, rel: &str, body: &str) -> String {
        let p = self.t.write(rel, format!("#!/bin/sh\n{body}"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        p.display().to_string()
    }

    /// Writes `agent.ini` from `ini` and returns its path.
    pub fn config(&self, ini: Ini) -> PathBuf {
        self.config_as("agent.ini", ini)
    }

    /// Writes the config named `name` from `ini` and returns its path.
    pub fn config_as(&self, name: &str, ini: Ini) -> PathBuf {
        let p = |rel: &str| self.p(rel);
        let agent = section(
            &[
                ("interval", self.interval.to_string()),
                ("log_file", p("agent.log")),
                ("syslog", "no".to_string()),
                ("state_dir", p("state")),
                ("status_file", p("agent.status")),
            ],
            ini.agent,
        );
        let proc = if ini.real_proc {
            String::new()
        } else {
            format!("proc = {}\n", p("proc"))
        };
        let thresholds = match ini.thresholds {
            "" => String::new(),
            t => format!("[thresholds]\n{t}\n\n"),
        };
        let audit = match ini.audit {
            None => "bash_history = no\n".to_string(),
            Some(over) => section(
                &[
                    ("bash_history", "yes".to_string()),
                    ("users", "all".to_string()),
                    ("log_file", p("audit.log")),
                    ("syslog_facility", "authpriv".to_string()),
                    ("max_bytes", "1M".to_string()),
                ],
                over,
            ),
        };
        let paths = match ini.paths {
            "" => String::new(),
            p => format!("{p}\n"),
        };
        let text = format!(
            "[agent]\n{agent}\n[paths]\n{proc}passwd = {passwd}\ngroup = {group}\n{paths}\n{thresholds}\
             [disk]\nmounts = {mounts}\n{disk}\n[audit]\n{audit}\n{extra}",
            passwd = p("etc/passwd"),
            group = p("etc/group"),
            mounts = ini.mounts,
            disk = match ini.disk {
                "" => String::new(),
                d => format!("{d}\n"),
            },
            extra = ini.extra,
        );
        self.t.write(name, text)
    }

    /// One `--once` run with `args`, bounded; it must end with a Nagios status
    /// (0-3), not a crash.
    pub fn once(&self, cfg: &Path, args: &[&str]) -> Run {
        if self.ticking {
            self.tick();
        }
        let mut all = vec!["-c", cfg.to_str().expect("a UTF-8 path"), "--once"];
        all.extend_from_slice(args);
        run_bounded(&all).survived()
    }

    /// `once` after CPU counters saved a minute ago at 0 busy, 0 idle: on the
    /// fixture's counters (100, 900) the CPU reads 10%.
    pub fn once_seeded(&self, cfg: &Path, args: &[&str]) -> Run {
        self.seed_cpu(0, 0, Duration::from_secs(60));
        self.once(cfg, args)
    }

    /// The service on `cfg`, stopped by pid when dropped.
    pub fn spawn(&self, cfg: &Path) -> Service {
        self.spawn_with(cfg, &[])
    }

    /// The service on `cfg` with more arguments (stdout and stderr piped).
    pub fn spawn_with(&self, cfg: &Path, args: &[&str]) -> Service {
        let mut cmd = Command::new(bin());
        cmd.arg("-c")
            .arg(cfg)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        Service::start(cmd)
    }

    /// The main log ("" before there is one); it must be UTF-8.
    pub fn log(&self) -> String {
        String::from_utf8(std::fs::read(self.t.join("agent.log")).unwrap_or_default())
            .expect("the log is UTF-8")
    }

    /// The main log's lines containing `needle`, without `ts=…`.
    pub fn events(&self, needle: &str) -> Vec<String> {
        events(&self.log(), needle)
    }

    /// How many lines of the main log contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }

    /// How many cycles the log shows (its `event=sample` lines).
    pub fn cycles(&self) -> usize {
        self.count(" event=sample ")
    }

    /// Waits (bounded) until `n` lines of the main log contain `needle`.
    pub fn wait_events(&self, needle: &str, n: usize) -> bool {
        wait_for(LIMIT, || self.count(needle) >= n)
    }

    /// Waits (bounded) until a line of the main log contains `needle`.
    pub fn wait_log(&self, needle: &str) -> bool {
        self.wait_events(needle, 1)
    }

    /// `wait_events`, failing the test with the log when the wait runs out.
    pub fn must_see(&self, needle: &str, n: usize) {
        assert!(
            self.wait_events(needle, n),
            "want {n} lines with {needle:?}:\n{}",
            self.log()
        );
    }

    /// Waits for `n` more cycles of a running service; fails the test if they do
    /// not come.
    pub fn wait_cycles(&self, n: usize) {
        let seen = self.cycles();
        assert!(
            wait_for(LIMIT, || self.cycles() >= seen + n),
            "the loop stalled: {}",
            self.log()
        );
    }
}

/// The parts of an `agent.ini` that differ between tests; `Host::config` adds the
/// fixture's paths. Lines in `agent` and `audit` replace or add keys.
#[derive(Default, Clone, Copy)]
pub struct Ini<'a> {
    /// `[agent]` lines over interval, log_file, syslog = no, state_dir and
    /// status_file.
    pub agent: &'a str,
    /// The `[thresholds]` body; no such section when empty.
    pub thresholds: &'a str,
    /// The `[disk] mounts` value.
    pub mounts: &'a str,
    /// Further `[disk]` lines (`forecast_window = ...`).
    pub disk: &'a str,
    /// `Some(lines)`: the audit on (users all, `T/audit.log`, authpriv, 1M) with
    /// these lines over that; `None`: `bash_history = no`.
    pub audit: Option<&'a str>,
    /// Read this machine's `/proc` (no `[paths] proc`).
    pub real_proc: bool,
    /// Further `[paths]` lines (`cgroup = ...`).
    pub paths: &'a str,
    /// Further sections, as written.
    pub extra: &'a str,
}

impl<'a> Ini<'a> {
    /// Just `[agent]` lines.
    pub fn agent(agent: &'a str) -> Ini<'a> {
        Ini {
            agent,
            ..Ini::default()
        }
    }

    /// Just further sections.
    pub fn extra(extra: &'a str) -> Ini<'a> {
        Ini {
            extra,
            ..Ini::default()
        }
    }
}

/// One bounded run of the binary.
pub struct Run {
    pub status: ExitStatus,
    /// The exit code, -1 after a signal.
    pub code: i32,
    pub out: String,
    pub err: String,
    pub pid: u32,
    /// The wall clock just before the start and just after the end.
    pub start_ns: u64,
    pub end_ns: u64,
}

impl Run {
    /// The run, checked to have ended with a Nagios status (0-3), not a crash.
    pub fn survived(self) -> Run {
        assert!(
            (0..=3).contains(&self.code),
            "system-agent crashed: {}\nstdout: {}\nstderr: {}",
            self.status,
            self.out,
            self.err
        );
        self
    }
}

/// Runs the binary with `args`; kills it and fails the test when it has not ended
/// within `LIMIT` (a hang is the failure some tests look for).
pub fn run_bounded(args: &[&str]) -> Run {
    let mut cmd = Command::new(bin());
    cmd.args(args);
    run_command(cmd)
}

/// Runs `cmd` (stdin from /dev/null, output captured), bounded as `run_bounded`.
pub fn run_command(mut cmd: Command) -> Run {
    let start_ns = now_ns();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn system-agent");
    let pid = child.id();
    // Read both pipes while waiting: a chatty run must not block on a full pipe.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(child.stdout.take().map(|r| Box::new(r) as _));
    let err = drain(child.stderr.take().map(|r| Box::new(r) as _));
    let status = wait_exit(&mut child, LIMIT);
    Run {
        status,
        code: status.code().unwrap_or(-1),
        out: out.join().expect("stdout reader"),
        err: err.join().expect("stderr reader"),
        pid,
        start_ns,
        end_ns: now_ns(),
    }
}

/// A running service this test started: SIGTERM, then SIGKILL, by its pid when
/// dropped (a test that failed before stopping it).
pub struct Service(pub Child);

impl Service {
    /// Starts `cmd` as it is set up.
    pub fn start(mut cmd: Command) -> Service {
        Service(cmd.spawn().expect("spawn system-agent"))
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    pub fn signal(&self, sig: i32) {
        signal(&self.0, sig);
    }

    /// SIGTERM and a bounded wait for the exit; returns its code (-1 after a signal).
    pub fn stop(mut self) -> i32 {
        self.signal(libc::SIGTERM);
        wait_exit(&mut self.0, LIMIT).code().unwrap_or(-1)
    }

    /// A bounded wait for an exit the test brought about.
    pub fn wait(mut self) -> ExitStatus {
        wait_exit(&mut self.0, LIMIT)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

/// Ends a child this test started: SIGTERM by pid, up to 3 s, then SIGKILL and up
/// to 5 s more to reap it. Never waits longer: a child stuck in the kernel (on a
/// stopped FUSE daemon, say) must not keep a failing test from cleaning up.
pub fn stop_child(child: &mut Child) {
    fn exited(child: &mut Child) -> bool {
        matches!(child.try_wait(), Ok(Some(_)))
    }
    if exited(child) {
        return;
    }
    signal(child, libc::SIGTERM);
    if !wait_for(Duration::from_secs(3), || exited(child)) {
        let _ = child.kill();
        wait_for(Duration::from_secs(5), || exited(child));
    }
}

/// A log line without its leading `ts=… ` (checked to be there).
pub fn body(line: &str) -> String {
    assert!(line.starts_with("ts="), "not a log line: {line:?}");
    line.split_once(' ')
        .map(|(_, rest)| rest.to_string())
        .unwrap_or_default()
}

/// Lines of `log` containing `needle`, without `ts=…`.
pub fn events(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(body)
        .collect()
}

/// The value of an unquoted `key=value` field of a line.
pub fn field(line: &str, key: &str) -> Option<String> {
    line.split(' ')
        .find_map(|f| f.strip_prefix(&format!("{key}=")))
        .map(str::to_string)
}

/// How many cycles (`event=sample` lines) the log shows after the first line
/// containing `from`, up to the first line after it containing `to`: a bound on
/// how long something took that no load can break, since cycles never come closer
/// together than the interval.
pub fn samples_between(log: &str, from: &str, to: &str) -> usize {
    let lines: Vec<&str> = log.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(from))
        .unwrap_or_else(|| panic!("no {from:?} in\n{log}"));
    let end = start
        + 1
        + lines[start + 1..]
            .iter()
            .position(|l| l.contains(to))
            .unwrap_or_else(|| panic!("no {to:?} after {from:?} in\n{log}"));
    lines[start + 1..end]
        .iter()
        .filter(|l| l.contains(" event=sample "))
        .count()
}

/// Milliseconds since the epoch of a log line's `ts=2026-11-26T12:11:46.845Z`.
pub fn ts_ms(line: &str) -> i64 {
    let ts = line
        .strip_prefix("ts=")
        .and_then(|r| r.get(..23))
        .unwrap_or_else(|| panic!("no ts in {line}"));
    let n = |r: std::ops::Range<usize>| ts[r].parse::<i64>().expect("ts digits");
    // Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
    // days_from_civil).
    let (m, d) = (n(5..7), n(8..10));
    let y = n(0..4) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + n(11..13)) * 60 + n(14..16)) * 60_000 + n(17..19) * 1000 + n(20..23)
}

/// The `ts_ms` of the first line of `log` containing `needle`.
pub fn first_ts_ms(log: &str, needle: &str) -> i64 {
    ts_ms(
        log.lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in\n{log}")),
    )
}

/// The raw log line (with ts) of the only line containing `needle`.
pub fn one_line<'a>(log: &'a str, needle: &str) -> &'a str {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(lines.len(), 1, "lines with {needle:?}\n{log}");
    lines[0]
}

/// The label the agent gives a mount in metric names: its path without the
/// outer slashes, other characters than letters and digits as `_`.
pub fn mount_label(mount: &str) -> String {
    mount
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// A fixture `/proc/PID/stat` with the fields the agent reads in their places.
pub fn pid_stat(
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
