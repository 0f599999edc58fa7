//! Alert delivery end to end (SPEC §3 `[alert]`, §4 step 8, §6 Children and mail
//! headers): the built binary against fixture /proc trees, mailing through the real
//! `msmtp` into an `aiosmtpd` Maildir sink on 127.0.0.1 (RECIPES §5), or running
//! scripts in the test's temp dir as the mailer and the alert command. Every
//! process a test starts (the sink, the agent, what a mailer script forks) is
//! stopped by its pid when the test ends, also when an assertion fails (Drop guards).

mod common;

use common::*;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const MSMTP: &str = "/usr/bin/msmtp";
const PYTHON: &str = "/usr/bin/python3";
const BTIME: u64 = 1_700_000_000;

/// A fixture host: proc/{stat,meminfo,loadavg}, etc/passwd, a state dir.
struct Host {
    t: TempDir,
    /// CPU ticks so far: every `--once` run advances them, so CPU% is exactly 10.
    ticks: std::cell::Cell<u64>,
}

/// Config parts that differ between tests.
#[derive(Default)]
struct Cfg<'a> {
    agent: &'a str,
    thresholds: &'a str,
    alert: &'a str,
    mounts: &'a str,
}

/// One `--once` run.
struct Run {
    code: i32,
    out: String,
    err: String,
    pid: u32,
    took: Duration,
    start_ns: u64,
    end_ns: u64,
}

impl Host {
    fn new(tag: &str) -> Host {
        let t = TempDir::new(&format!("alert-{tag}"));
        t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
        t.write(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n",
        );
        let h = Host {
            t,
            ticks: std::cell::Cell::new(0),
        };
        h.mem(50);
        h.tick();
        // CPU counters an earlier run saved a minute ago: the first run needs no pause.
        let saved = now_ns() - 60_000_000_000;
        h.t.write(
            "state/state",
            format!(
                "system-agent-state 1\nsaved {saved}\nbtime {BTIME}\ncpu 0 0 0 0 0 0 0 0\nend\n"
            ),
        );
        h
    }

    fn p(&self, rel: &str) -> String {
        self.t.join(rel).display().to_string()
    }

    /// Memory in use, exactly `pct` percent (of 1,000,000 kB).
    fn mem(&self, pct: u64) {
        let avail = 1_000_000 - pct * 10_000;
        self.t.write(
            "proc/meminfo",
            format!(
                "MemTotal:        1000000 kB\nMemFree:         {avail} kB\nMemAvailable:    {avail} kB\n\
                 Buffers:               0 kB\nCached:                0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n"
            ),
        );
    }

    /// Advances /proc/stat by 1,000 ticks, 10% of them busy.
    fn tick(&self) {
        let n = self.ticks.get() + 1;
        self.ticks.set(n);
        self.t.write("proc/stat", proc_stat(100 * n, 900 * n));
    }

    fn config(&self, c: Cfg) -> PathBuf {
        let text = format!(
            "[agent]\ninterval = 100ms\nlog_file = {log}\nsyslog = no\nstate_dir = {state}\n{agent}\n\n\
             [paths]\nproc = {proc}\npasswd = {passwd}\n\n[disk]\nmounts = {mounts}\n\n[audit]\nbash_history = no\n\n\
             [thresholds]\nfor_cycles = 1\n{thresholds}\n\n[alert]\n{alert}\n",
            log = self.p("agent.log"),
            state = self.p("state"),
            proc = self.p("proc"),
            passwd = self.p("etc/passwd"),
            agent = if c.agent.is_empty() {
                "top = 0"
            } else {
                c.agent
            },
            mounts = c.mounts,
            thresholds = c.thresholds,
            alert = c.alert,
        );
        self.t.write("agent.ini", text)
    }

    /// An executable script in the temp dir; returns its path.
    fn script(&self, name: &str, body: &str) -> String {
        let p = self.t.write(name, format!("#!/bin/sh\n{body}"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    /// A mailer that keeps each message (and its argv) in T/out/mail.N (argv.N).
    fn capture_mailer(&self) -> String {
        std::fs::create_dir_all(self.t.join("out")).unwrap();
        let out = self.p("out");
        self.script(
            "capture.sh",
            &format!("/bin/cat > {out}/mail.$$\nprintf '%s\\n' \"$@\" > {out}/argv.$$\n"),
        )
    }

    /// The messages the capture mailer kept, oldest first.
    fn captured(&self) -> Vec<String> {
        let mut files: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(self.t.join("out"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.file_name().to_string_lossy().starts_with("mail."))
                    .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|(_, p)| std::fs::read_to_string(p).unwrap())
            .collect()
    }

    fn log(&self) -> String {
        self.t.read("agent.log")
    }

    /// Runs `--once` (plus `args`), waiting at most 20 s.
    fn once(&self, cfg: &Path, args: &[&str]) -> Run {
        self.tick();
        let start_ns = now_ns();
        let start = Instant::now();
        let mut child = Command::new(bin())
            .args(["-c", cfg.to_str().unwrap(), "--once"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn system-agent");
        let pid = child.id();
        let status = wait_exit(&mut child, Duration::from_secs(20));
        let took = start.elapsed();
        let read = |r: Option<&mut dyn std::io::Read>| {
            let mut s = String::new();
            if let Some(r) = r {
                r.read_to_string(&mut s).unwrap();
            }
            s
        };
        let out = read(child.stdout.as_mut().map(|r| r as &mut dyn std::io::Read));
        let err = read(child.stderr.as_mut().map(|r| r as &mut dyn std::io::Read));
        Run {
            code: status.code().unwrap_or(-1),
            out,
            err,
            pid,
            took,
            start_ns,
            end_ns: now_ns(),
        }
    }

    fn spawn(&self, cfg: &Path) -> Agent {
        Agent(spawn(&["-c", cfg.to_str().unwrap()]))
    }

    /// The fixture processes: pid 100 (alice) whose name carries a newline and a
    /// would-be header, pid 101 (root) `bash`; their counters saved 100 s ago.
    fn processes(&self) {
        let procs = [
            (100, "x\nBcc: x@y", 1000, 600, 5000, 1000),
            (101, "bash", 0, 100, 6000, 2000),
        ];
        for (pid, name, uid, ticks, start, rss) in procs {
            self.t.write(
                &format!("proc/{pid}/stat"),
                format!(
                    "{pid} ({name}) S 1 {pid} {pid} 0 -1 0 0 0 0 0 {ticks} 0 0 0 20 0 1 0 {start} 1000000 {rss} \
                     18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
                ),
            );
            self.t.write(
                &format!("proc/{pid}/status"),
                format!("Name:\t{}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nGid:\t{uid}\t{uid}\t{uid}\t{uid}\nCapEff:\t0\n", name.replace('\n', "\\n")),
            );
            self.t
                .write(&format!("proc/{pid}/cmdline"), format!("{pid}\0"));
        }
        let saved = now_ns() - 100_000_000_000;
        self.t.write(
            "state/procs",
            format!("system-agent-procs 1\nsaved {saved}\nbtime {BTIME}\n100 5000 100\n101 6000 0\nend\n"),
        );
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// The node name the agent puts in subjects and `SA_HOST` (uname, as it does).
fn hostname() -> String {
    // SAFETY: zeroed utsname is a valid out-parameter.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    assert_eq!(unsafe { libc::uname(&mut u) }, 0);
    let bytes: Vec<u8> = u
        .nodename
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8(bytes).unwrap()
}

/// `date -u` (an oracle independent of the agent's own time formatting).
fn date(ns: u64, format: &str) -> String {
    let out = Command::new("/usr/bin/date")
        .env("LC_ALL", "C")
        .args(["-u", "-d", &format!("@{}", ns / 1_000_000_000), format])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

/// Lines of `log` containing `needle`, with the `ts=... ` prefix removed.
fn events(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(|l| {
            l.split_once(' ')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// A port on 127.0.0.1 that nothing listens on (just now).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Ends a child this test started: SIGTERM by pid, up to 3 s, then SIGKILL; reaps it.
fn stop_child(child: &mut Child) {
    if let Ok(None) = child.try_wait() {
        signal(child, libc::SIGTERM);
        if !wait_for(Duration::from_secs(3), || {
            matches!(child.try_wait(), Ok(Some(_)))
        }) {
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// A running service; stopped by pid if a test fails before stopping it.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        stop_child(&mut self.0);
    }
}

impl Agent {
    fn stop(mut self) -> i32 {
        signal(&self.0, libc::SIGTERM);
        wait_exit(&mut self.0, Duration::from_secs(5))
            .code()
            .unwrap_or(-1)
    }
}

/// aiosmtpd with the Maildir handler on 127.0.0.1:PORT, writing into T/Maildir.
struct Sink {
    child: Child,
    port: u16,
    maildir: PathBuf,
}

impl Sink {
    fn start(h: &Host) -> Sink {
        let maildir = h.t.join("Maildir");
        for d in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(d)).unwrap();
        }
        let port = free_port();
        let log = std::fs::File::create(h.t.join("sink.log")).unwrap();
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox", maildir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start aiosmtpd");
        let mut sink = Sink {
            child,
            port,
            maildir,
        };
        let up = wait_for(Duration::from_secs(10), || {
            matches!(sink.child.try_wait(), Ok(None))
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "the SMTP sink did not listen: {}", h.t.read("sink.log"));
        sink
    }

    /// `[alert] sendmail` for msmtp into this sink.
    fn sendmail(&self) -> String {
        sendmail_to(self.port)
    }

    /// The messages in Maildir/new, oldest first (names start `SECONDS.MMICROS`).
    fn mails(&self) -> Vec<String> {
        let mut files: Vec<((u64, u64), PathBuf)> = std::fs::read_dir(self.maildir.join("new"))
            .unwrap()
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let mut it = name.split('.');
                let secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let micros = it
                    .next()
                    .and_then(|s| s.strip_prefix('M'))
                    .and_then(|s| s.split('P').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                ((secs, micros), e.path())
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

fn sendmail_to(port: u16) -> String {
    format!(
        "{MSMTP} --host=127.0.0.1 --port={port} --auth=off --tls=off --from=agent@test.invalid -t"
    )
}

fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    let head = mail.split("\n\n").next().unwrap_or("");
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

fn subjects(mails: &[String]) -> Vec<String> {
    mails
        .iter()
        .map(|m| header(m, "Subject").unwrap_or("").to_string())
        .collect()
}

/// A process a mailer script forked (its pid in a file): killed by pid when the
/// test ends, if it still runs and is still that `sleep`.
struct Forked(PathBuf);

impl Forked {
    fn pids(&self) -> Vec<i32> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }
}

impl Drop for Forked {
    fn drop(&mut self) {
        for pid in self.pids() {
            if running(pid) && cmdline(pid).starts_with("/bin/sleep") {
                // SAFETY: kill(2) on a sleep this test's mailer script started.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// Whether `pid` exists and is not a zombie.
fn running(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

// 1. The real mail path: agent → msmtp → SMTP → aiosmtpd → Maildir.
#[test]
fn a_critical_mail_goes_through_msmtp_with_every_header_and_the_top_processes() {
    let h = Host::new("mail");
    let sink = Sink::start(&h);
    h.mem(96);
    h.processes();
    let cfg = h.config(Cfg {
        agent: "top = 5",
        alert: &format!("email = ops@example.com\nsendmail = {}", sink.sendmail()),
        ..Cfg::default()
    });
    let run = h.once(&cfg, &[]);
    assert_eq!(
        run.out, "SYSTEM-AGENT CRITICAL - mem 96.0% | cpu=10.0%;80;90 mem=96.0%;85;95 load1=0.52\n",
        "{}",
        run.err
    );
    assert_eq!((run.code, run.err.as_str()), (2, ""));
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec!["level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com"]
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];

    // The time stamps: Message-ID <NS.PID.SEQ@HOST>, with NS from this run.
    let host = hostname();
    let id = header(mail, "Message-ID").expect("Message-ID");
    let ns: u64 = id
        .strip_prefix('<')
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("Message-ID {id}"));
    assert!((run.start_ns..=run.end_ns).contains(&ns), "{id}");
    let id_host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    assert_eq!(id, format!("<{ns}.{}.1@{id_host}>", run.pid));
    let peer = header(mail, "X-Peer").expect("X-Peer");
    assert!(peer.starts_with("('127.0.0.1', "), "{peer}");

    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let mib = |pages: u64| format!("{:.1}", (pages * page) as f64 / 1048576.0);
    let x = format!("pid 100 alice x Bcc: x@y: cpu 5.0%, rss {} MiB", mib(1000));
    let bash = format!("pid 101 root bash: cpu 1.0%, rss {} MiB", mib(2000));
    let expected = format!(
        "From: system-agent@{host}\n\
         To: ops@example.com\n\
         Subject: [system-agent] {host} CRITICAL: mem 96.0% (threshold 95)\n\
         Date: {date}\n\
         Message-ID: {id}\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: 8bit\n\
         Auto-Submitted: auto-generated\n\
         X-System-Agent-Key: mem\n\
         X-Peer: {peer}\n\
         X-MailFrom: agent@test.invalid\n\
         X-RcptTo: ops@example.com\n\
         \n\
         Host:      {host}\n\
         Metric:    mem 96.0%\n\
         Level:     CRITICAL (was OK)\n\
         Threshold: 95\n\
         Time:      {time}.{millis:03}Z\n\
         \n\
         Top processes:\n  \
         by cpu #1: {x}\n  \
         by cpu #2: {bash}\n  \
         by rss #1: {bash}\n  \
         by rss #2: {x}\n",
        date = date(ns, "+%a, %d %b %Y %H:%M:%S +0000"),
        time = date(ns, "+%Y-%m-%dT%H:%M:%S"),
        millis = ns / 1_000_000 % 1000,
    );
    assert_eq!(*mail, expected);
    // Spelled out: the newline in the process name forged no header, the sink saw
    // one recipient, and the name is in the body on one line.
    let head = mail.split("\n\n").next().unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
        "{head}"
    );
    assert_eq!(header(mail, "X-RcptTo"), Some("ops@example.com"));
    assert!(mail.contains("\n  by cpu #1: pid 100 alice x Bcc: x@y: cpu "));
}

// 2. Told once, quiet through the cooldown, the recovery once, no flapping storm;
//    kept in state_dir across --once runs.
#[test]
fn cooldown_holds_across_once_runs_and_the_recovery_is_told_once() {
    let h = Host::new("cooldown");
    let sink = Sink::start(&h);
    let cfg = h.config(Cfg {
        alert: &format!(
            "email = ops@example.com, oncall@example.com\nsendmail = {}\ncooldown = 1h",
            sink.sendmail()
        ),
        ..Cfg::default()
    });
    let host = hostname();
    let to = "to=ops@example.com,oncall@example.com";
    h.mem(96);
    for run in 1..=10 {
        assert_eq!(h.once(&cfg, &[]).code, 2, "run {run}");
        assert_eq!(sink.mails().len(), 1, "run {run}");
    }
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![format!(
            "level=info event=alert_sent metric=mem state=critical via=mail {to}"
        )]
    );
    let mail = &sink.mails()[0];
    assert_eq!(
        header(mail, "To"),
        Some("ops@example.com, oncall@example.com")
    );
    assert_eq!(
        header(mail, "X-RcptTo"),
        Some("ops@example.com, oncall@example.com")
    );

    h.mem(50);
    for run in 1..=4 {
        assert_eq!(h.once(&cfg, &[]).code, 0, "recovered run {run}");
    }
    let mails = sink.mails();
    assert_eq!(
        subjects(&mails),
        vec![
            format!("[system-agent] {host} CRITICAL: mem 96.0% (threshold 95)"),
            format!("[system-agent] {host} RECOVERED: mem 50.0% (threshold 95)"),
        ]
    );
    assert!(
        mails[1].contains("\nLevel:     OK (was CRITICAL)\n"),
        "{}",
        mails[1]
    );
    assert!(!mails[1].contains("Top processes:"), "{}", mails[1]);

    // Flapping back to critical within the cooldown (and down again): nothing more.
    for (run, pct) in [96, 96, 50, 96, 50].into_iter().enumerate() {
        h.mem(pct);
        h.once(&cfg, &[]);
        assert_eq!(sink.mails().len(), 2, "flap run {run}");
    }
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![
            format!("level=info event=alert_sent metric=mem state=critical via=mail {to}"),
            format!("level=info event=alert_sent metric=mem state=recovered via=mail {to}"),
        ]
    );
}

// 3. While the level holds, a reminder every cooldown (service loop).
#[test]
fn the_service_reminds_every_cooldown_while_the_level_holds() {
    let h = Host::new("remind");
    let sink = Sink::start(&h);
    h.mem(96);
    let cfg = h.config(Cfg {
        alert: &format!(
            "email = ops@example.com\nsendmail = {}\ncooldown = 2s",
            sink.sendmail()
        ),
        ..Cfg::default()
    });
    let agent = h.spawn(&cfg);
    // The first mail at once, then a reminder every cooldown. A mail reaches the
    // sink before its mailer exits and is logged: wait for both.
    assert!(
        wait_for(Duration::from_secs(30), || {
            sink.mails().len() >= 3 && events(&h.log(), "event=alert_").len() >= 3
        }),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
    // A slow machine may have sent a fourth by the time the agent stopped.
    let mails: Vec<String> = sink.mails().into_iter().take(3).collect();
    let host = hostname();
    let first = format!("[system-agent] {host} CRITICAL: mem 96.0% (threshold 95)");
    let still = format!("[system-agent] {host} CRITICAL (still): mem 96.0% (threshold 95)");
    assert_eq!(subjects(&mails), vec![first, still.clone(), still]);
    let sent = "level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com";
    let sent_lines = events(&h.log(), "event=alert_");
    assert_eq!(
        sent_lines[..3],
        [
            sent.to_string(),
            format!("{sent} reminder=yes"),
            format!("{sent} reminder=yes"),
        ]
    );
    // Never sooner than the cooldown (the Message-IDs carry the send times).
    let times: Vec<u64> = mails
        .iter()
        .map(|m| {
            header(m, "Message-ID").unwrap()[1..]
                .split('.')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    for w in times.windows(2) {
        let gap = Duration::from_nanos(w[1] - w[0]);
        assert!(gap >= Duration::from_secs(2), "{gap:?}");
    }
    assert!(
        mails[1]
            .contains("\nThis level still holds; the next reminder comes after the cooldown.\n")
    );
}

/// A mailer script (`prelude`, then a forked sleep and a wait) that outlives its
/// 1 s timeout: `--once` returns within `took`, logs `alert_failed` with `exit`,
/// and both the script and its sleep are gone.
fn hung_mailer(tag: &str, prelude: &str, exit: &str, took: std::ops::Range<Duration>) {
    let h = Host::new(tag);
    let pids = h.p("pids");
    let mailer = h.script(
        "hang.sh",
        &format!("{prelude}/bin/sleep 1000 &\necho $$ $! > {pids}\nwait\n"),
    );
    let forked = Forked(h.t.join("pids"));
    h.mem(96);
    let cfg = h.config(Cfg {
        alert: &format!("email = ops@example.com\nsendmail = {mailer} -t\ntimeout = 1s"),
        ..Cfg::default()
    });
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{}", run.err);
    assert!(took.contains(&run.took), "{:?}", run.took);
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![format!(
            "level=error event=alert_failed metric=mem state=critical via=mail to=ops@example.com \
             exit=\"{exit}\" error=\"timed out after 1s\""
        )]
    );
    // The script and the sleep it forked are both gone (the sleep, reparented, may
    // linger as a zombie until its new parent reaps it).
    let pids = forked.pids();
    assert_eq!(pids.len(), 2, "{}", h.t.read("pids"));
    assert!(
        wait_for(Duration::from_secs(2), || !pids.iter().any(|&p| running(p))),
        "still running: {pids:?}"
    );
}

// 4a. A mailer that hangs is killed with its process group at the timeout.
#[test]
fn a_hung_mailer_is_killed_with_its_group_at_the_timeout() {
    let s = Duration::from_secs;
    hung_mailer("hang", "", "signal 15", s(1)..s(6));
}

// 4b. A mailer that ignores SIGTERM gets SIGKILL 5 s later; --once still returns.
#[test]
fn a_mailer_ignoring_sigterm_is_killed_5_s_later() {
    let s = Duration::from_secs;
    hung_mailer("hang-term", "trap '' TERM\n", "signal 9", s(6)..s(9));
}

// 4c. msmtp with the sink down: EX_TEMPFAIL and msmtp's own words in error=.
#[test]
fn msmtp_with_the_sink_down_is_alert_failed_exit_75() {
    let h = Host::new("down");
    let port = free_port();
    h.mem(96);
    let cfg = h.config(Cfg {
        alert: &format!("email = ops@example.com\nsendmail = {}", sendmail_to(port)),
        ..Cfg::default()
    });
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{}", run.err);
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![format!(
            "level=error event=alert_failed metric=mem state=critical via=mail to=ops@example.com \
             exit=75 error=\"msmtp: cannot connect to 127.0.0.1, port {port}: Connection refused\\n\
             msmtp: could not send mail\""
        )]
    );
}

/// The environment dumps `env.sh` appended to T/env.out, one block per run.
fn env_blocks(h: &Host) -> Vec<Vec<String>> {
    h.t.read("env.out")
        .split_terminator("--\n")
        .map(|b| b.lines().map(str::to_string).collect())
        .collect()
}

fn env_script(h: &Host) -> String {
    let out = h.p("env.out");
    h.script(
        "env.sh",
        &format!("/usr/bin/tr '\\0' '\\n' < /proc/$$/environ >> {out}\necho -- >> {out}\n"),
    )
}

// 5a. The alert command gets the alert in SA_* variables, PATH and LANG=C, no more.
#[test]
fn the_alert_command_gets_exactly_the_sa_variables() {
    let h = Host::new("command");
    let cmd = env_script(&h);
    h.mem(96);
    let cfg = h.config(Cfg {
        alert: &format!("command = {cmd}"),
        ..Cfg::default()
    });
    let host = hostname();
    assert_eq!(h.once(&cfg, &[]).code, 2);
    h.mem(50);
    assert_eq!(h.once(&cfg, &[]).code, 0);
    let base = ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C"];
    let block = |lines: &[String]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(lines.iter().cloned())
            .collect()
    };
    assert_eq!(
        env_blocks(&h),
        vec![
            block(&[
                "SA_LEVEL=CRITICAL".into(),
                "SA_METRIC=mem".into(),
                "SA_VALUE=96".into(),
                "SA_THRESHOLD=95".into(),
                format!("SA_HOST={host}"),
                format!("SA_MESSAGE=[system-agent] {host} CRITICAL: mem 96.0% (threshold 95)"),
                "SA_PREVIOUS=OK".into(),
                "SA_REMINDER=no".into(),
            ]),
            block(&[
                "SA_LEVEL=OK".into(),
                "SA_METRIC=mem".into(),
                "SA_VALUE=50".into(),
                "SA_THRESHOLD=95".into(),
                format!("SA_HOST={host}"),
                format!("SA_MESSAGE=[system-agent] {host} RECOVERED: mem 50.0% (threshold 95)"),
                "SA_PREVIOUS=CRITICAL".into(),
                "SA_REMINDER=no".into(),
            ]),
        ]
    );
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![
            "level=info event=alert_sent metric=mem state=critical via=command",
            "level=info event=alert_sent metric=mem state=recovered via=command",
        ]
    );
}

// 5b. A disk alert names its mount in SA_MOUNT (and in the log).
#[test]
fn a_disk_alert_command_gets_sa_mount() {
    let h = Host::new("disk");
    let cmd = env_script(&h);
    let mount = h.p("");
    let mount = mount.trim_end_matches('/');
    let cfg = h.config(Cfg {
        thresholds: "disk_warn = 0\ndisk_crit = 0",
        alert: &format!("command = {cmd}"),
        mounts: mount,
        ..Cfg::default()
    });
    let host = hostname();
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{} {}", run.out, run.err);
    let blocks = env_blocks(&h);
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let env = &blocks[0];
    let value = env
        .iter()
        .find_map(|l| l.strip_prefix("SA_VALUE="))
        .expect("SA_VALUE")
        .to_string();
    assert!(value.parse::<u32>().is_ok_and(|v| v <= 100), "{value}");
    assert_eq!(
        *env,
        vec![
            "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            "LANG=C".into(),
            "SA_LEVEL=CRITICAL".into(),
            "SA_METRIC=disk".into(),
            format!("SA_VALUE={value}"),
            "SA_THRESHOLD=0".into(),
            format!("SA_HOST={host}"),
            format!(
                "SA_MESSAGE=[system-agent] {host} CRITICAL: disk {mount} {value}% (threshold 0)"
            ),
            "SA_PREVIOUS=OK".into(),
            "SA_REMINDER=no".into(),
            format!("SA_MOUNT={mount}"),
        ]
    );
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![format!(
            "level=info event=alert_sent metric=disk mount={mount} state=critical via=command"
        )]
    );
}

// 6a. min_level: a warning is not told by default, and is with min_level = warning;
//     the message the mailer gets has CRLF line ends and a fixed argv.
#[test]
fn min_level_decides_whether_a_warning_is_told() {
    let h = Host::new("minlevel");
    let mailer = h.capture_mailer();
    h.mem(90);
    let alert =
        format!("email = ops@example.com\nsendmail = {mailer} -t -i\nfrom = agent@example.org");
    let cfg = h.config(Cfg {
        alert: &alert,
        ..Cfg::default()
    });
    assert_eq!(h.once(&cfg, &[]).code, 1);
    assert_eq!(h.captured().len(), 0);
    assert_eq!(events(&h.log(), "event=alert_"), Vec::<String>::new());

    let cfg = h.config(Cfg {
        alert: &format!("{alert}\nmin_level = warning"),
        ..Cfg::default()
    });
    assert_eq!(h.once(&cfg, &[]).code, 1);
    assert_eq!(h.once(&cfg, &[]).code, 1);
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec!["level=info event=alert_sent metric=mem state=warning via=mail to=ops@example.com"]
    );
    let mails = h.captured();
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    let host = hostname();
    let (head, body) = mail.split_once("\r\n\r\n").expect("a blank line");
    assert_eq!(
        mail.matches('\n').count(),
        mail.matches("\r\n").count(),
        "bare LF in {mail:?}"
    );
    assert_eq!(mail.matches('\r').count(), mail.matches("\r\n").count());
    let head: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(head.len(), 10, "{head:?}");
    assert_eq!(head[0], "From: agent@example.org");
    assert_eq!(head[1], "To: ops@example.com");
    assert_eq!(
        head[2],
        format!("Subject: [system-agent] {host} WARNING: mem 90.0% (threshold 85)")
    );
    assert!(head[3].starts_with("Date: ") && head[3].ends_with(" +0000"));
    assert!(head[4].starts_with("Message-ID: <") && head[4].ends_with('>'));
    assert_eq!(
        head[5..].to_vec(),
        vec![
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: 8bit",
            "Auto-Submitted: auto-generated",
            "X-System-Agent-Key: mem",
        ]
    );
    assert!(
        body.starts_with(&format!(
            "Host:      {host}\r\nMetric:    mem 90.0%\r\nLevel:     WARNING (was OK)\r\nThreshold: 85\r\nTime:      "
        )),
        "{body:?}"
    );
    let argv = std::fs::read_dir(h.t.join("out"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("argv."))
        .map(|e| std::fs::read_to_string(e.path()).unwrap());
    assert_eq!(argv.as_deref(), Some("-t\n-i\n"));
}

// 6b. --dry-run logs what it would send, with dry_run=yes, and runs nothing.
#[test]
fn dry_run_logs_the_alert_and_runs_nothing() {
    let h = Host::new("dry");
    let mailer = h.capture_mailer();
    let cmd = env_script(&h);
    h.mem(96);
    let cfg = h.config(Cfg {
        alert: &format!("email = ops@example.com\nsendmail = {mailer}\ncommand = {cmd}"),
        ..Cfg::default()
    });
    assert_eq!(h.once(&cfg, &["--dry-run"]).code, 2);
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![
            "level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com dry_run=yes",
            "level=info event=alert_sent metric=mem state=critical via=command dry_run=yes",
        ]
    );
    assert_eq!(h.captured().len(), 0);
    assert!(!h.t.join("env.out").exists());
}

// 4d. A mailer that cannot be started is alert_failed with the reason.
#[test]
fn a_missing_mailer_is_alert_failed() {
    let h = Host::new("nomailer");
    h.mem(96);
    let missing = h.p("no/such/sendmail");
    let cfg = h.config(Cfg {
        alert: &format!("email = ops@example.com\nsendmail = {missing} -t"),
        ..Cfg::default()
    });
    assert_eq!(h.once(&cfg, &[]).code, 2);
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![
            "level=error event=alert_failed metric=mem state=critical via=mail to=ops@example.com \
             error=\"No such file or directory\""
        ]
    );
}

// Two alerts in one cycle are two messages, each with its own Message-ID.
#[test]
fn two_alerts_in_one_cycle_have_distinct_message_ids() {
    let h = Host::new("msgid");
    let sink = Sink::start(&h);
    h.mem(96);
    let cfg = h.config(Cfg {
        // load1 0.52 on 2 CPUs is 0.26 per CPU: critical too.
        thresholds: "load_warn = 0.1\nload_crit = 0.2",
        alert: &format!("email = ops@example.com\nsendmail = {}", sink.sendmail()),
        ..Cfg::default()
    });
    assert_eq!(h.once(&cfg, &[]).code, 2);
    let mails = sink.mails();
    let mut keys: Vec<&str> = mails
        .iter()
        .map(|m| header(m, "X-System-Agent-Key").unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["load", "mem"]);
    let ids: Vec<&str> = mails
        .iter()
        .map(|m| header(m, "Message-ID").unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "RFC 5322 §3.6.4: a Message-ID is unique");
}

// SA_VALUE is the value the message shows (96.0%), not float noise.
#[test]
fn sa_value_is_the_value_the_message_shows() {
    let h = Host::new("savalue");
    let cmd = env_script(&h);
    // 1,006,632 of 1,048,576 kB: 95.99998…%, shown as 96.0%.
    h.t.write("proc/meminfo", proc_meminfo(96));
    let cfg = h.config(Cfg {
        alert: &format!("command = {cmd}"),
        ..Cfg::default()
    });
    assert_eq!(h.once(&cfg, &[]).code, 2);
    let blocks = env_blocks(&h);
    assert_eq!(blocks.len(), 1);
    let host = hostname();
    assert!(
        blocks[0].contains(&format!(
            "SA_MESSAGE=[system-agent] {host} CRITICAL: mem 96.0% (threshold 95)"
        )),
        "{blocks:?}"
    );
    assert!(blocks[0].contains(&"SA_VALUE=96".to_string()), "{blocks:?}");
}

// With min_level = warning, a value flapping between warning and critical is told
// once per level, not on every flap (the same alert not again within cooldown).
#[test]
fn flapping_between_warning_and_critical_does_not_storm() {
    let h = Host::new("flapwc");
    let mailer = h.capture_mailer();
    let cfg = h.config(Cfg {
        alert: &format!("email = ops@example.com\nsendmail = {mailer}\nmin_level = warning"),
        ..Cfg::default()
    });
    for pct in [96, 90, 96, 90, 96, 90] {
        h.mem(pct);
        h.once(&cfg, &[]);
    }
    let mails = h.captured();
    let subjects: Vec<&str> = mails
        .iter()
        .map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
        })
        .collect();
    let critical = subjects
        .iter()
        .filter(|s| s.contains(" CRITICAL: "))
        .count();
    let warning = subjects.iter().filter(|s| s.contains(" WARNING: ")).count();
    assert_eq!((critical, warning <= 1), (1, true), "{subjects:#?}");
}

// A delivery that failed (the MTA was down: EX_TEMPFAIL) is tried again on the
// next cycle instead of being counted as told for the whole cooldown.
#[test]
fn a_failed_delivery_is_retried_on_the_next_run() {
    let h = Host::new("retry");
    h.mem(96);
    let port = free_port();
    let alert = |port: u16| format!("email = ops@example.com\nsendmail = {}", sendmail_to(port));
    let cfg = h.config(Cfg {
        alert: &alert(port),
        ..Cfg::default()
    });
    h.once(&cfg, &[]);
    assert_eq!(
        events(&h.log(), "event=alert_failed").len(),
        1,
        "{}",
        h.log()
    );
    // The MTA is back.
    let sink = Sink::start(&h);
    let cfg = h.config(Cfg {
        alert: &alert(sink.port),
        ..Cfg::default()
    });
    h.once(&cfg, &[]);
    assert_eq!(sink.mails().len(), 1, "{}", h.log());
    assert_eq!(events(&h.log(), "event=alert_sent").len(), 1, "{}", h.log());
}

// A dry run tells nobody, so it must not use up the real alert's cooldown.
#[test]
fn a_dry_run_does_not_silence_the_next_real_run() {
    let h = Host::new("dryreal");
    let mailer = h.capture_mailer();
    h.mem(96);
    let cfg = h.config(Cfg {
        alert: &format!("email = ops@example.com\nsendmail = {mailer}"),
        ..Cfg::default()
    });
    h.once(&cfg, &["--dry-run"]);
    h.once(&cfg, &["--dry-run"]);
    assert_eq!(h.captured().len(), 0);
    // Dry runs remember what they logged (in their own state file): one line.
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec![
            "level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com dry_run=yes"
        ]
    );
    h.once(&cfg, &[]);
    assert_eq!(h.captured().len(), 1, "{}", h.log());
    assert!(h.t.join("state/alerts.dry-run").exists());
}

// The service's recovery mail (a cycle without a process scan) carries no process
// list left over from an earlier cycle.
#[test]
fn a_recovery_mail_from_the_service_has_no_stale_process_list() {
    let h = Host::new("stale");
    let mailer = h.capture_mailer();
    h.processes();
    h.mem(96);
    let cfg = h.config(Cfg {
        agent: "top = 5",
        alert: &format!("email = ops@example.com\nsendmail = {mailer}"),
        ..Cfg::default()
    });
    let agent = h.spawn(&cfg);
    assert!(
        wait_for(Duration::from_secs(5), || h
            .log()
            .contains("event=alert_sent")),
        "{}",
        h.log()
    );
    assert!(h.captured()[0].contains("\r\nTop processes:\r\n"));
    h.mem(50);
    assert!(
        wait_for(Duration::from_secs(5), || {
            events(&h.log(), "event=alert_sent").len() == 2
        }),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
    let recovery = &h.captured()[1];
    assert!(recovery.contains(" RECOVERED: mem 50.0%"), "{recovery}");
    assert!(!recovery.contains("Top processes:"), "{recovery}");
}

// Time going backwards: what was told at a time in the future (the clock was
// stepped back, the state came from another host) counts as long ago, so it
// cannot silence a new alert; the saved times are corrected.
#[test]
fn alert_times_in_the_future_do_not_silence_a_new_critical() {
    let h = Host::new("future");
    let mailer = h.capture_mailer();
    h.mem(96);
    let cfg = h.config(Cfg {
        alert: &format!("email = ops@example.com\nsendmail = {mailer}"),
        ..Cfg::default()
    });
    // Recovered, told ten years ahead; a failed delivery's retry later still.
    let future = now_ns() + 10 * 365 * 86_400 * 1_000_000_000;
    h.t.write(
        "state/alerts",
        format!(
            "system-agent-alerts 1\ntold 0 {future} {future} {future} {} mem\nend\n",
            future + 1
        ),
    );
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{} {}", run.out, run.err);
    assert_eq!(h.captured().len(), 1, "{}", h.log());
    assert_eq!(
        events(&h.log(), "event=alert_"),
        vec!["level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com"]
    );
    let saved = h.t.read("state/alerts");
    let told: Vec<&str> = saved
        .lines()
        .find(|l| l.ends_with(" mem"))
        .unwrap_or_else(|| panic!("{saved}"))
        .split(' ')
        .collect();
    let stamp = |i: usize| told[i].parse::<u64>().unwrap();
    assert_eq!((told[1], told[3], stamp(5)), ("2", "0", 0), "{saved}");
    for i in [2, 4] {
        assert!(
            (run.start_ns..=run.end_ns).contains(&stamp(i)),
            "{saved} {run_start} {run_end}",
            run_start = run.start_ns,
            run_end = run.end_ns
        );
    }
    // Told now: the next run keeps quiet for the cooldown.
    h.once(&cfg, &[]);
    assert_eq!(h.captured().len(), 1, "{}", h.log());
}
