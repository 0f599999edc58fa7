//! The shell-history audit (SPEC §3 `[audit]`, §4 step 6, §6) against hostile
//! history files, through the built binary. Every home directory, history file,
//! canary secret and the passwd the agent reads live in this test's own temp dir;
//! files belong to test uids (4001…) that need not exist on the host. Signals go
//! only to children these tests started.

mod common;

use common::*;
use std::ffi::CString;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BTIME: u64 = 1_700_000_000;
const LIMIT: Duration = Duration::from_secs(5);

/// One passwd entry of the fixture: name, uid, shell. The home is `T/home/NAME`.
type Account<'a> = (&'a str, u32, &'a str);

/// A fixture host: proc/{stat,meminfo,loadavg}, a passwd whose homes lie in the
/// temp dir, a state dir, and a config writer.
struct Host {
    t: TempDir,
    uids: Vec<(String, u32)>,
    runs: AtomicU64,
}

impl Host {
    fn new(tag: &str, accounts: &[Account]) -> Host {
        let t = TempDir::new(&format!("audit-{tag}"));
        t.write("proc/stat", proc_stat(0, 0));
        t.write("proc/meminfo", proc_meminfo(50));
        t.write("proc/loadavg", "0.10 0.10 0.10 1/100 123\n");
        let mut passwd = String::new();
        for &(name, uid, shell) in accounts {
            let home = t.join(&format!("home/{name}"));
            std::fs::create_dir_all(&home).unwrap();
            std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
            chown(&home, uid);
            passwd.push_str(&format!(
                "{name}:x:{uid}:{uid}::{}:{shell}\n",
                home.display()
            ));
        }
        t.write("passwd", passwd);
        t.write(
            "state/state",
            format!(
                "system-agent-state 1\nsaved {}\nbtime {BTIME}\ncpu 0 0 0 0 0 0 0 0\nend\n",
                now_ns()
            ),
        );
        Host {
            uids: accounts.iter().map(|a| (a.0.to_string(), a.1)).collect(),
            t,
            runs: AtomicU64::new(0),
        }
    }

    fn p(&self, rel: &str) -> String {
        self.t.join(rel).display().to_string()
    }

    /// Adds an account to passwd (and makes its home), as `useradd` would on a
    /// host the agent already audits.
    fn add_user(&mut self, name: &str, uid: u32) {
        let home = self.home(name);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        chown(&home, uid);
        let mut passwd = self.t.read("passwd");
        passwd.push_str(&format!(
            "{name}:x:{uid}:{uid}::{}:/bin/bash\n",
            home.display()
        ));
        self.t.write("passwd", passwd);
        self.uids.push((name.to_string(), uid));
    }

    fn uid(&self, user: &str) -> u32 {
        self.uids
            .iter()
            .find(|u| u.0 == user)
            .expect("a fixture user")
            .1
    }

    fn home(&self, user: &str) -> PathBuf {
        self.t.join(&format!("home/{user}"))
    }

    fn hist(&self, user: &str) -> PathBuf {
        self.home(user).join(".bash_history")
    }

    /// A path in the user's home to build a file at before renaming it into place,
    /// so the agent never sees it half made (say, still root's).
    fn staging(&self, user: &str) -> PathBuf {
        self.home(user).join(".staging")
    }

    /// Replaces the history by a new file (a new inode) with `data`, owned by the user.
    fn replace_hist(&self, user: &str, data: &[u8]) {
        let s = self.staging(user);
        std::fs::write(&s, data).unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o600)).unwrap();
        chown(&s, self.uid(user));
        std::fs::rename(&s, self.hist(user)).unwrap();
    }

    /// Appends to the history, as bash with histappend does (same inode).
    fn append(&self, user: &str, data: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.hist(user))
            .unwrap();
        f.write_all(data).unwrap();
    }

    /// Rewrites the history in place (O_TRUNC, same inode), as bash without
    /// histappend did.
    fn rewrite(&self, user: &str, data: &[u8]) {
        let ino = std::fs::metadata(self.hist(user)).unwrap().ino();
        std::fs::write(self.hist(user), data).unwrap();
        assert_eq!(std::fs::metadata(self.hist(user)).unwrap().ino(), ino);
    }

    /// agent.ini: `agent` lines replace or add `[agent]` keys, `audit` lines
    /// replace or add `[audit]` keys.
    fn config(&self, agent: &str, audit: &str) -> String {
        let agent = section(
            &[
                ("interval", "100ms".to_string()),
                ("log_file", self.p("agent.log")),
                ("syslog", "no".to_string()),
                ("state_dir", self.p("state")),
            ],
            agent,
        );
        let audit = section(
            &[
                ("bash_history", "yes".to_string()),
                ("users", "all".to_string()),
                ("log_file", self.p("audit.log")),
                ("syslog_facility", "authpriv".to_string()),
                ("max_bytes", "1M".to_string()),
            ],
            audit,
        );
        let text = format!(
            "[agent]\n{agent}\n[paths]\nproc = {proc}\npasswd = {passwd}\n\n[disk]\nmounts =\n\n[audit]\n{audit}",
            proc = self.p("proc"),
            passwd = self.p("passwd"),
        );
        self.t.write("agent.ini", text).display().to_string()
    }

    /// One `--once` run (the fixture CPU counters advanced so it never pauses to
    /// sample twice); any Nagios status, but no crash.
    fn once(&self, cfg: &str) -> Output {
        let n = self.runs.fetch_add(1, Ordering::SeqCst) + 1;
        self.t.write("proc/stat", proc_stat(100 * n, 900 * n));
        let mut child = std::process::Command::new(bin())
            .args(["-c", cfg, "--once"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Bounded: a FIFO or device must never block a run.
        wait_exit(&mut child, Duration::from_secs(10));
        let out = child.wait_with_output().unwrap();
        assert!(
            matches!(out.status.code(), Some(0..=3)),
            "{:?} {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn spawn(&self, cfg: &str) -> Agent {
        Agent(spawn(&["-c", cfg]))
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&std::fs::read(self.t.join("agent.log")).unwrap_or_default())
            .into_owned()
    }

    fn audit_raw(&self) -> Vec<u8> {
        std::fs::read(self.t.join("audit.log")).unwrap_or_default()
    }

    /// The audit log's lines, each checked to start with `ts=` and to be UTF-8.
    fn audit_lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.audit_raw()).expect("the audit log is UTF-8");
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        for l in &lines {
            assert!(l.starts_with("ts="), "a forged or broken line: {l:?}");
        }
        lines
    }

    /// The audit log's lines without `ts=…`.
    fn history(&self) -> Vec<String> {
        self.audit_lines().iter().map(|l| body(l)).collect()
    }

    /// Main-log lines of `event=error what=audit`, without `ts=…`.
    fn audit_errors(&self) -> Vec<String> {
        events(&self.log(), " event=error what=audit ")
    }

    fn cycles(&self) -> usize {
        events(&self.log(), " event=sample ").len()
    }

    /// Waits for `n` more cycles of a running service.
    fn wait_cycles(&self, n: usize) {
        let start = self.cycles();
        assert!(
            wait_for(LIMIT, || self.cycles() >= start + n),
            "the loop stalled: {}",
            self.log()
        );
    }

    fn wait_history(&self, n: usize) {
        assert!(
            wait_for(LIMIT, || self.history().len() >= n),
            "want {n} history lines: {:?}\n{}",
            self.history(),
            self.log()
        );
    }

    /// Waits until state_dir/audit names each user (their first look is done).
    fn wait_seen(&self, users: &[&str]) {
        let ok = wait_for(LIMIT, || {
            let s = self.t.read("state/audit");
            users.iter().all(|u| s.contains(&format!(" {u}\n")))
        });
        assert!(
            ok,
            "state: {:?}\nlog: {}",
            self.t.read("state/audit"),
            self.log()
        );
    }

    /// The line for a history that grew by `grew` bytes in one cycle, more than
    /// `max`, of which the first `skipped` were passed over.
    fn skip_line(&self, user: &str, grew: u64, max: u64, skipped: u64, effect: &str) -> String {
        format!(
            "level=warn event=error what=audit error=\"grew by {grew} bytes, more than max_bytes ({max})\" user={user} path={} skipped={skipped} effect=\"{effect}\"",
            self.hist(user).display()
        )
    }

    fn error_line(&self, user: &str, why: &str) -> String {
        format!(
            "level=warn event=error what=audit error=\"{why}\" user={user} path={} effect=\"nothing copied\"",
            self.hist(user).display()
        )
    }
}

fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid)).unwrap();
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_encoded_bytes()).unwrap()
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// A line without its leading `ts=… `.
fn body(line: &str) -> String {
    line.split_once(' ')
        .map(|(_, r)| r.to_string())
        .unwrap_or_default()
}

/// Lines of `log` containing `needle`, without `ts=…`.
fn events(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(body)
        .collect()
}

/// `level=info event=history user=USER uid=UID cmd=CMD` (CMD as logged).
fn hist_line(user: &str, uid: u32, cmd: &str) -> String {
    format!("level=info event=history user={user} uid={uid} cmd={cmd}")
}

/// alice's `history` lines for `cmds` (as logged), in order.
fn alice(cmds: &[&str]) -> Vec<String> {
    cmds.iter().map(|c| hist_line("alice", 4001, c)).collect()
}

/// RFC 3339 with milliseconds, UTC, for whole seconds since the epoch.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
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
    fn stop(mut self) {
        signal(&self.0, libc::SIGTERM);
        let st = wait_exit(&mut self.0, LIMIT);
        assert_eq!(st.code(), Some(0));
    }
}

/// A syslog daemon stand-in: a datagram socket in the temp dir.
struct Syslog {
    sock: UnixDatagram,
    got: Vec<Vec<u8>>,
}

impl Syslog {
    fn bind(path: &Path) -> Syslog {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_nonblocking(true).unwrap();
        Syslog {
            sock,
            got: Vec::new(),
        }
    }

    /// Takes every datagram queued now.
    fn drain(&mut self) {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = self.sock.recv(&mut buf) {
            self.got.push(buf[..n].to_vec());
        }
    }

    /// `(PRI, message after "system-agent[PID]: ")` of each datagram containing `needle`.
    fn with(&self, needle: &str) -> Vec<(String, String)> {
        self.got
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .filter(|d| d.contains(needle))
            .map(|d| {
                let pri = d[..d.find('>').unwrap() + 1].to_string();
                let msg = d.split_once("]: ").map(|(_, m)| m.to_string()).unwrap();
                (pri, msg)
            })
            .collect()
    }
}

/// The smallest reproducer of the audit-log bug: one appended command, two cron runs.
#[test]
fn an_appended_command_reaches_the_audit_log() {
    let h = Host::new("smoke", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"old\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    h.append("alice", b"id\n");
    h.once(&cfg);
    // The offset moved past `id`: it was read, and must have been logged.
    assert!(h.t.read("state/audit").contains(" 7 alice\n"));
    assert_eq!(h.history(), alice(&["id"]));
}

#[test]
fn rfc3339_helper() {
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20.000Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
}

// ---------------------------------------------------------------------------
// 1. Each appended command exactly once, across cycles and restarts.

#[test]
fn appends_are_logged_once_across_cycles_and_a_restart() {
    let h = Host::new("loop", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"old-one\nold-two\n");
    let cfg = h.config("", "");
    let agent = h.spawn(&cfg);
    h.wait_seen(&["alice"]);
    h.wait_cycles(2);
    // Seen for the first time: read from its end, nothing copied.
    assert_eq!(h.history(), Vec::<String>::new());

    h.append("alice", b"ls -l\ncd /srv\n");
    h.wait_history(2);
    h.append("alice", b"make\n");
    h.wait_history(3);
    h.wait_cycles(3);
    agent.stop();

    // Typed while the agent is down.
    h.append("alice", b"sudo -i\nexit\n");
    let agent = h.spawn(&cfg);
    h.wait_history(5);
    h.append("alice", b"whoami\n");
    h.wait_history(6);
    h.wait_cycles(3);
    agent.stop();

    let want = alice(&[
        "\"ls -l\"",
        "\"cd /srv\"",
        "make",
        "\"sudo -i\"",
        "exit",
        "whoami",
    ]);
    assert_eq!(h.history(), want);
    assert_eq!(h.audit_errors(), Vec::<String>::new());
    // Not a line of the audit trail in the main log.
    assert!(!h.log().contains("event=history"), "{}", h.log());
}

#[test]
fn appends_are_logged_once_across_once_runs() {
    let h = Host::new("once", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"old-one\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    assert_eq!(h.history(), Vec::<String>::new());
    h.append("alice", b"one\ntwo\n");
    h.once(&cfg);
    h.once(&cfg);
    h.append("alice", b"three\n");
    h.once(&cfg);
    h.once(&cfg);
    let want = alice(&["one", "two", "three"]);
    assert_eq!(h.history(), want);
    assert_eq!(h.audit_errors(), Vec::<String>::new());
}

#[test]
fn a_history_created_after_the_first_look_is_read_from_its_start() {
    let h = Host::new("created", &[("alice", 4001, "/bin/bash")]);
    let cfg = h.config("", "");
    h.once(&cfg);
    assert_eq!(
        h.t.read("state/audit"),
        "system-agent-audit 2\nhist 0 0 0 alice\nend\n"
    );
    h.replace_hist("alice", b"first\nsecond\n");
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(h.history(), alice(&["first", "second"]));
}

// ---------------------------------------------------------------------------
// 2. Truncation and replacement.

#[test]
fn truncated_and_replaced_files_are_read_from_their_start_once() {
    let h = Host::new("trunc", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"a-old\nb-old\nc-old\nd-old\n");
    let cfg = h.config("", "");
    let agent = h.spawn(&cfg);
    h.wait_seen(&["alice"]);
    h.append("alice", b"appended\n");
    h.wait_history(1);

    // Rewritten shorter in place (same inode).
    h.rewrite("alice", b"short\n");
    h.wait_history(2);
    h.append("alice", b"after-trunc\n");
    h.wait_history(3);

    // Replaced: a new file renamed over it (a new inode), here even longer.
    h.replace_hist("alice", b"new-1\nnew-2\nnew-3\nnew-4\nnew-5\nnew-6\n");
    h.wait_history(9);
    h.append("alice", b"after-replace\n");
    h.wait_history(10);
    h.wait_cycles(3);
    agent.stop();

    let want = alice(&[
        "appended",
        "short",
        "after-trunc",
        "new-1",
        "new-2",
        "new-3",
        "new-4",
        "new-5",
        "new-6",
        "after-replace",
    ]);
    assert_eq!(h.history(), want);
    assert_eq!(h.audit_errors(), Vec::<String>::new());
}

// ---------------------------------------------------------------------------
// 3. Timestamps and incomplete lines.

#[test]
fn timestamps_pending_timestamps_and_partial_lines() {
    let h = Host::new("ts", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"");
    let cfg = h.config("", "");
    let agent = h.spawn(&cfg);
    h.wait_seen(&["alice"]);

    h.append("alice", b"#1700000000\nls -l\n");
    h.wait_history(1);
    // A timestamp whose command bash has not written yet: held.
    h.append("alice", b"#1700000001\n");
    h.wait_cycles(3);
    assert_eq!(h.history().len(), 1);
    h.append("alice", b"rm x\n");
    h.wait_history(2);

    // A command still being written: not logged until its newline.
    h.append("alice", b"partial");
    h.wait_cycles(3);
    assert_eq!(h.history().len(), 2);
    let before = now_ns() / 1_000_000_000;
    h.append("alice", b" done\n");
    h.wait_history(3);
    let after = now_ns() / 1_000_000_000 + 1;

    // Several timestamps and commands in one read.
    h.append("alice", b"#1700000100\nfirst\n#1700000200\nsecond\n");
    h.wait_history(5);
    h.wait_cycles(2);
    agent.stop();

    let lines = h.audit_lines();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(
        lines[0],
        "ts=2023-11-14T22:13:20.000Z level=info event=history user=alice uid=4001 cmd=\"ls -l\""
    );
    assert_eq!(
        lines[1],
        "ts=2023-11-14T22:13:21.000Z level=info event=history user=alice uid=4001 cmd=\"rm x\""
    );
    // Without a timestamp: the time it was read.
    let (ts, rest) = lines[2].split_once(' ').unwrap();
    let ts = ts.strip_prefix("ts=").unwrap();
    assert!(
        ts.len() == 24 && rfc3339(before).as_str() <= ts && ts < rfc3339(after).as_str(),
        "{ts} not in [{}, {})",
        rfc3339(before),
        rfc3339(after)
    );
    assert_eq!(
        rest,
        "level=info event=history user=alice uid=4001 cmd=\"partial done\""
    );
    assert_eq!(
        lines[3],
        "ts=2023-11-14T22:15:00.000Z level=info event=history user=alice uid=4001 cmd=first"
    );
    assert_eq!(
        lines[4],
        "ts=2023-11-14T22:16:40.000Z level=info event=history user=alice uid=4001 cmd=second"
    );
}

#[test]
fn a_pending_timestamp_survives_a_restart() {
    let h = Host::new("ts-once", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"old\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    h.append("alice", b"#1700000000\n");
    h.once(&cfg);
    h.append("alice", b"uptime\n#1700000001\nhalf");
    h.once(&cfg);
    assert_eq!(
        h.audit_lines(),
        vec!["ts=2023-11-14T22:13:20.000Z level=info event=history user=alice uid=4001 cmd=uptime"]
    );
    h.append("alice", b"-done\n");
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(
        h.audit_lines(),
        vec![
            "ts=2023-11-14T22:13:20.000Z level=info event=history user=alice uid=4001 cmd=uptime",
            "ts=2023-11-14T22:13:21.000Z level=info event=history user=alice uid=4001 cmd=half-done"
        ]
    );
}

// ---------------------------------------------------------------------------
// 4. Attacks: nothing but the user's own regular file is ever copied.

const MARKER: &str = "CANARY-7f3a9c-SHADOW";

/// T/secret: root's, mode 0600, lines that would pass as commands.
fn canary(h: &Host) -> PathBuf {
    let p = h.t.write(
        "secret",
        format!("root:$6${MARKER}$hash:19000:0:99999:7:::\necho {MARKER}\n"),
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown(&p, 0);
    p
}

fn assert_no_canary(h: &Host, syslog: &Syslog) {
    let audit = h.audit_raw();
    assert!(
        !String::from_utf8_lossy(&audit).contains(MARKER),
        "the audit log holds the secret: {}",
        String::from_utf8_lossy(&audit)
    );
    assert!(!h.log().contains(MARKER), "{}", h.log());
    for d in &syslog.got {
        assert!(
            !String::from_utf8_lossy(d).contains(MARKER),
            "{}",
            String::from_utf8_lossy(d)
        );
    }
}

#[test]
fn hostile_history_files_are_refused_once_and_nothing_is_copied() {
    let users: &[Account] = &[
        ("sym", 4001, "/bin/bash"),
        ("hard", 4002, "/bin/bash"),
        ("twolinks", 4003, "/bin/bash"),
        ("fifo", 4004, "/bin/bash"),
        ("dev", 4005, "/bin/bash"),
        ("dir", 4006, "/bin/bash"),
        ("sparse", 4007, "/bin/bash"),
        ("grow", 4008, "/bin/bash"),
        ("other", 4009, "/bin/bash"),
        ("fine", 4010, "/bin/bash"),
    ];
    let h = Host::new("attacks", users);
    let secret = canary(&h);
    let mut syslog = Syslog::bind(&h.t.join("log.sock"));
    // Most files do not exist at the first look, so what appears later would be
    // read from its start: the most a check could leak.
    h.replace_hist("grow", b"ls\n");
    h.replace_hist("fine", b"");
    let cfg = h.config(
        &format!("syslog = yes\nsyslog_socket = {}", h.p("log.sock")),
        "",
    );
    let agent = h.spawn(&cfg);
    let names: Vec<&str> = users.iter().map(|u| u.0).collect();
    h.wait_seen(&names);

    // A symlink to root's secret.
    std::os::unix::fs::symlink(&secret, h.staging("sym")).unwrap();
    chown(&h.staging("sym"), 4001);
    std::fs::rename(h.staging("sym"), h.hist("sym")).unwrap();
    // A hard link to root's secret (protected_hardlinks aside): root's, two links.
    std::fs::hard_link(&secret, h.hist("hard")).unwrap();
    // A hard link to a file the user owns: two links.
    let notes = h.home("twolinks").join("notes");
    std::fs::write(&notes, format!("echo {MARKER}\n")).unwrap();
    chown(&notes, 4003);
    std::fs::hard_link(&notes, h.hist("twolinks")).unwrap();
    // A FIFO nobody writes to: opening or reading it must not block the loop.
    let s = h.staging("fifo");
    assert_eq!(unsafe { libc::mkfifo(cstr(&s).as_ptr(), 0o600) }, 0);
    chown(&s, 4004);
    std::fs::rename(&s, h.hist("fifo")).unwrap();
    // A character device (1:3, /dev/null's numbers).
    let s = h.staging("dev");
    let dev = libc::makedev(1, 3);
    assert_eq!(
        unsafe { libc::mknod(cstr(&s).as_ptr(), libc::S_IFCHR | 0o600, dev) },
        0
    );
    chown(&s, 4005);
    std::fs::rename(&s, h.hist("dev")).unwrap();
    // A directory.
    let s = h.staging("dir");
    std::fs::create_dir(&s).unwrap();
    chown(&s, 4006);
    std::fs::rename(&s, h.hist("dir")).unwrap();
    // A 10 GiB sparse file with the secret near its end, appearing at once.
    const TEN_GIB: u64 = 10 << 30;
    let line = format!("echo {MARKER}\n");
    let s = h.staging("sparse");
    let f = std::fs::File::create(&s).unwrap();
    f.set_len(TEN_GIB).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, line.as_bytes(), TEN_GIB - line.len() as u64)
        .unwrap();
    drop(f);
    chown(&s, 4007);
    std::fs::rename(&s, h.hist("sparse")).unwrap();
    // A known file that grows to 10 GiB at once.
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(h.hist("grow"))
        .unwrap();
    f.set_len(TEN_GIB).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&f, line.as_bytes(), TEN_GIB - line.len() as u64)
        .unwrap();
    drop(f);
    // Someone else's file.
    let s = h.staging("other");
    std::fs::write(&s, format!("echo {MARKER}\n")).unwrap();
    chown(&s, 4001);
    std::fs::rename(&s, h.hist("other")).unwrap();
    // Meanwhile a well-behaved user goes on being audited.
    h.append("fine", b"echo still-audited\n");

    let want_errors = {
        let mut v = vec![
            h.error_line("sym", "is a symlink"),
            h.error_line("hard", "is owned by uid 0, not 4002 (hard)"),
            h.error_line("twolinks", "has 2 links (a hard link is not read)"),
            h.error_line("fifo", "is not a regular file"),
            h.error_line("dev", "is not a regular file"),
            h.error_line("dir", "is not a regular file"),
            // Only the last max_bytes are read: no whole line there (it began in
            // the zeros), so the whole growth is passed over.
            h.skip_line(
                "sparse",
                10737418240,
                1048576,
                10737418240,
                "nothing copied",
            ),
            h.skip_line("grow", 10737418237, 1048576, 10737418237, "nothing copied"),
            h.error_line("other", "is owned by uid 4001, not 4009 (other)"),
        ];
        v.sort();
        v
    };
    let sorted_errors = || {
        let mut v = h.audit_errors();
        v.sort();
        v
    };
    let ok = wait_for(LIMIT, || {
        syslog.drain();
        sorted_errors().len() >= want_errors.len()
    });
    assert!(ok, "{}", h.log());
    // The loop keeps cycling (a FIFO did not block it), and says each thing once.
    h.wait_cycles(5);
    agent.stop();
    syslog.drain();
    assert_eq!(sorted_errors(), want_errors);
    // Only the well-behaved user's command may be in the audit log (see
    // `a_refusal_that_ends_and_returns` for the exact trail).
    let fine = hist_line("fine", 4010, "\"echo still-audited\"");
    assert!(h.history().iter().all(|l| *l == fine), "{:?}", h.history());
    assert_no_canary(&h, &syslog);
    // The refusals reach syslog under the agent's own facility (daemon.warning).
    let on_syslog: Vec<String> = syslog
        .with(" what=audit ")
        .into_iter()
        .map(|(pri, msg)| format!("{pri} {msg}"))
        .collect();
    let mut want_syslog: Vec<String> = want_errors.iter().map(|e| format!("<28> {e}")).collect();
    let mut on_syslog_sorted = on_syslog.clone();
    on_syslog_sorted.sort();
    want_syslog.sort();
    assert_eq!(on_syslog_sorted, want_syslog);

    // A cron run facing the same files does not block either, and copies nothing.
    h.once(&cfg);
    syslog.drain();
    assert!(h.history().iter().all(|l| *l == fine), "{:?}", h.history());
    assert_no_canary(&h, &syslog);
}

#[test]
fn a_refusal_that_ends_and_returns_is_logged_again() {
    let h = Host::new(
        "episode",
        &[("sym", 4001, "/bin/bash"), ("fine", 4010, "/bin/bash")],
    );
    let secret = canary(&h);
    h.replace_hist("fine", b"");
    let cfg = h.config("", "");
    let agent = h.spawn(&cfg);
    h.wait_seen(&["sym", "fine"]);
    std::os::unix::fs::symlink(&secret, h.staging("sym")).unwrap();
    std::fs::rename(h.staging("sym"), h.hist("sym")).unwrap();
    h.append("fine", b"echo still-audited\n");
    assert!(wait_for(LIMIT, || !h.audit_errors().is_empty()));
    h.wait_history(1);
    h.wait_cycles(3);
    assert_eq!(h.audit_errors(), vec![h.error_line("sym", "is a symlink")]);

    // The refusal ends (a regular file of the user's own): what it holds is read;
    // the same refusal again is a new episode, logged again.
    h.replace_hist("sym", b"fixed\n");
    h.wait_history(2);
    std::os::unix::fs::symlink(&secret, h.staging("sym")).unwrap();
    std::fs::rename(h.staging("sym"), h.hist("sym")).unwrap();
    assert!(wait_for(LIMIT, || h.audit_errors().len() >= 2));
    h.wait_cycles(3);
    agent.stop();
    assert_eq!(
        h.audit_errors(),
        vec![
            h.error_line("sym", "is a symlink"),
            h.error_line("sym", "is a symlink")
        ]
    );
    assert_eq!(
        h.history(),
        vec![
            hist_line("fine", 4010, "\"echo still-audited\""),
            hist_line("sym", 4001, "fixed")
        ]
    );
    assert!(!String::from_utf8_lossy(&h.audit_raw()).contains(MARKER));
}

#[test]
fn a_replaced_history_that_is_a_symlink_is_refused() {
    // The file was known (an offset is kept), then the user swaps in a symlink and a
    // hard link to root's secret: a new inode would be read from its start.
    let h = Host::new(
        "swap",
        &[("alice", 4001, "/bin/bash"), ("bob", 4002, "/bin/bash")],
    );
    let secret = canary(&h);
    h.replace_hist("alice", b"ls\n");
    h.replace_hist("bob", b"ls\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    std::os::unix::fs::symlink(&secret, h.staging("alice")).unwrap();
    std::fs::rename(h.staging("alice"), h.hist("alice")).unwrap();
    std::fs::remove_file(h.hist("bob")).unwrap();
    std::fs::hard_link(&secret, h.hist("bob")).unwrap();
    h.once(&cfg);
    let mut errors = h.audit_errors();
    errors.sort();
    assert_eq!(
        errors,
        vec![
            h.error_line("alice", "is a symlink"),
            h.error_line("bob", "is owned by uid 0, not 4002 (bob)"),
        ]
    );
    assert_eq!(h.history(), Vec::<String>::new());
    assert!(!String::from_utf8_lossy(&h.audit_raw()).contains(MARKER));
    assert!(!h.log().contains(MARKER));
}

#[test]
fn max_bytes_is_a_limit_per_file_per_cycle() {
    let h = Host::new("max", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"");
    let cfg = h.config("", "max_bytes = 1K");
    h.once(&cfg);
    // Exactly max_bytes: read.
    let exact = format!("echo {}\n", "a".repeat(1024 - 6));
    assert_eq!(exact.len(), 1024);
    h.append("alice", exact.as_bytes());
    h.once(&cfg);
    assert_eq!(
        h.history(),
        vec![hist_line(
            "alice",
            4001,
            &format!("\"{}\"", exact.trim_end())
        )]
    );
    // One byte more: only the last 1,024 bytes are read, which hold no whole
    // line, so nothing is copied, and that is said once.
    let over = format!("echo {}\n", "b".repeat(1025 - 6));
    h.append("alice", over.as_bytes());
    h.once(&cfg);
    assert_eq!(h.history().len(), 1);
    assert_eq!(
        h.audit_errors(),
        vec![h.skip_line("alice", 1025, 1024, 1025, "nothing copied")]
    );
    // What comes after is read again.
    h.append("alice", b"next\n");
    h.once(&cfg);
    assert_eq!(
        h.history(),
        vec![
            hist_line("alice", 4001, &format!("\"{}\"", exact.trim_end())),
            hist_line("alice", 4001, "next")
        ]
    );
    assert_eq!(h.audit_errors().len(), 1);
}

// ---------------------------------------------------------------------------
// 5. No command can forge a line.

#[test]
fn commands_cannot_forge_lines() {
    let h = Host::new("forge", &[("mallory", 4001, "/bin/bash")]);
    h.replace_hist("mallory", b"");
    let cfg = h.config("", "");
    h.once(&cfg);
    let cases: &[(&[u8], &str)] = &[
        (
            b"echo x\" level=error event=forged",
            r#""echo x\" level=error event=forged""#,
        ),
        (
            b"echo x\\\" level=error event=forged",
            r#""echo x\\\" level=error event=forged""#,
        ),
        (
            b"echo a\\nts=2020-01-01T00:00:00.000Z level=error event=forged",
            r#""echo a\\nts=2020-01-01T00:00:00.000Z level=error event=forged""#,
        ),
        (
            b"printf '\x1b[31mred\x1b[0m'\rts=2020 level=error",
            r#""printf '\u001b[31mred\u001b[0m'\rts=2020 level=error""#,
        ),
        (b"a\tb\x7fc\x00d\x08e", r#""a\tb\u007fc\u0000d\u0008e""#),
        (b"echo \xff\xfe ok \xc3", r#""echo \udcff\udcfe ok \udcc3""#),
        (
            "echo caf\u{e9} \u{85}nel \u{2028}ls".as_bytes(),
            r#""echo café \u0085nel \u2028ls""#,
        ),
        (
            "echo \u{202e}txt.exe \u{200b}\u{e0001}".as_bytes(),
            r#""echo \u202etxt.exe \u200b\udb40\udc01""#,
        ),
        (b"x=1", r#""x=1""#),
        (b"plain", "plain"),
    ];
    let mut data = Vec::new();
    for (raw, _) in cases {
        data.extend_from_slice(raw);
        data.push(b'\n');
    }
    h.append("mallory", &data);
    h.once(&cfg);
    let want: Vec<String> = cases
        .iter()
        .map(|(_, cmd)| hist_line("mallory", 4001, cmd))
        .collect();
    // Every line starts with ts= (checked by audit_lines), one per command.
    assert_eq!(h.history(), want);
    let raw = h.audit_raw();
    assert_eq!(raw.iter().filter(|&&b| b == b'\n').count(), cases.len());
    assert!(!raw.contains(&b'\r') && !raw.contains(&0x1b));
}

// ---------------------------------------------------------------------------
// 6. The audit log's mode, and syslog.

#[test]
fn audit_log_is_0600_and_lines_go_to_syslog_as_authpriv_info() {
    let h = Host::new("sink", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"old\n");
    let mut syslog = Syslog::bind(&h.t.join("log.sock"));
    let cfg = h.config(
        &format!("syslog = yes\nsyslog_socket = {}", h.p("log.sock")),
        "",
    );
    h.once(&cfg);
    h.append("alice", b"#1700000000\nls -l\nid\n");
    h.once(&cfg);
    syslog.drain();

    let meta = std::fs::metadata(h.t.join("audit.log")).expect("the audit log exists");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.uid(), 0);

    let lines = h.audit_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        "ts=2023-11-14T22:13:20.000Z level=info event=history user=alice uid=4001 cmd=\"ls -l\""
    );
    let bodies: Vec<(String, String)> = lines
        .iter()
        .map(|l| ("<86>".to_string(), body(l)))
        .collect();
    assert_eq!(syslog.with(" event=history "), bodies);
    // And on syslog only under authpriv: the agent's own lines are daemon (3 << 3).
    assert!(
        syslog
            .with(" event=sample ")
            .iter()
            .all(|(p, _)| p == "<30>")
    );
}

#[test]
fn audit_log_is_0600_even_with_umask_0() {
    use std::os::unix::process::CommandExt;
    let h = Host::new("umask", &[("alice", 4001, "/bin/bash")]);
    let cfg = h.config("", "");
    let mut cmd = std::process::Command::new(bin());
    cmd.args(["-c", &cfg, "--once"]).stdin(Stdio::null());
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert!(matches!(out.status.code(), Some(0..=3)), "{out:?}");
    let meta = std::fs::metadata(h.t.join("audit.log")).expect("the audit log exists");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
}

// ---------------------------------------------------------------------------
// 7. Whose history is read.

fn everyone() -> Vec<Account<'static>> {
    vec![
        ("root", 0, "/bin/bash"),
        ("daemon2", 999, "/bin/bash"),
        ("alice", 4001, "/bin/bash"),
        ("bob", 4002, "/usr/bin/zsh"),
        ("svc", 4003, "/usr/sbin/nologin"),
        ("locked", 4004, "/bin/false"),
        ("old", 4005, "/sbin/nologin"),
    ]
}

/// Gives everyone a history, runs twice with an append in between; the users
/// whose command was logged.
fn audited_users(h: &Host, cfg: &str) -> Vec<String> {
    for (name, _) in &h.uids {
        h.replace_hist(name, b"before\n");
    }
    h.once(cfg);
    for (name, _) in &h.uids {
        h.append(name, format!("whoami-{name}\n").as_bytes());
    }
    h.once(cfg);
    let hist = h.history();
    for l in &hist {
        let user = l.split(" user=").nth(1).unwrap().split(' ').next().unwrap();
        let uid = h.uid(user);
        assert_eq!(*l, hist_line(user, uid, &format!("whoami-{user}")));
    }
    hist.iter()
        .map(|l| {
            l.split(" user=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn users_all_is_root_and_login_accounts_from_uid_1000() {
    let h = Host::new("all", &everyone());
    let cfg = h.config("", "users = all");
    let mut got = audited_users(&h, &cfg);
    got.sort();
    assert_eq!(got, vec!["alice", "bob", "root"]);
    assert_eq!(h.audit_errors(), Vec::<String>::new());
}

#[test]
fn users_list_audits_only_those_named() {
    let h = Host::new("named", &everyone());
    let cfg = h.config("", "users = alice");
    assert_eq!(audited_users(&h, &cfg), vec!["alice"]);
    assert_eq!(h.audit_errors(), Vec::<String>::new());
}

#[test]
fn a_listed_user_missing_from_passwd_is_reported_once() {
    let h = Host::new("ghost", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"");
    let cfg = h.config("", "users = alice, ghost");
    let agent = h.spawn(&cfg);
    h.wait_seen(&["alice"]);
    h.wait_cycles(5);
    agent.stop();
    assert_eq!(
        h.audit_errors(),
        vec![format!(
            "level=warn event=error what=audit error=\"user ghost is not in {}\"",
            h.p("passwd")
        )]
    );
    // alice, who is there, is audited all the same.
    assert!(h.t.read("state/audit").contains(" alice\n"));
}

#[test]
fn accounts_sharing_a_uid_are_each_audited() {
    let h = Host::new(
        "dupuid",
        &[
            ("root", 0, "/bin/bash"),
            ("toor", 0, "/bin/bash"),
            ("alice", 4001, "/bin/bash"),
            ("alice2", 4001, "/bin/bash"),
        ],
    );
    let cfg = h.config("", "users = all");
    let mut got = audited_users(&h, &cfg);
    got.sort();
    assert_eq!(got, vec!["alice", "alice2", "root", "toor"]);

    let h = Host::new(
        "dupuid-named",
        &[("root", 0, "/bin/bash"), ("toor", 0, "/bin/bash")],
    );
    let cfg = h.config("", "users = toor");
    assert_eq!(audited_users(&h, &cfg), vec!["toor"]);
    assert_eq!(h.audit_errors(), Vec::<String>::new());
}

#[test]
fn an_empty_shell_field_is_a_login_shell() {
    let h = Host::new("noshell", &[("carol", 4001, "")]);
    let cfg = h.config("", "users = all");
    assert_eq!(audited_users(&h, &cfg), vec!["carol"]);
}

#[test]
fn odd_timestamp_and_blank_lines() {
    let h = Host::new("ts-odd", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"");
    let cfg = h.config("", "");
    h.once(&cfg);
    h.append(
        "alice",
        b"#18446744073709551615\nbig\n#0\nzero\n#1700000000\n\n\nafter-blank\n\n#12x\n#\n#99999999999999999999\nls\r\n",
    );
    h.once(&cfg);
    let lines = h.audit_lines();
    let prefix = "level=info event=history user=alice uid=4001";
    assert_eq!(lines.len(), 7, "{lines:?}");
    // The timestamp is the user's to write: any u64 saturates, nothing crashes.
    assert_eq!(
        lines[0],
        format!("ts=2554-07-21T23:34:33.709Z {prefix} cmd=big")
    );
    assert_eq!(
        lines[1],
        format!("ts=1970-01-01T00:00:00.000Z {prefix} cmd=zero")
    );
    // Blank lines are no commands, and do not drop a pending timestamp.
    assert_eq!(
        lines[2],
        format!("ts=2023-11-14T22:13:20.000Z {prefix} cmd=after-blank")
    );
    // Not timestamps: commands (an overflowing number included), logged at read
    // time; a CRLF line ends without its CR.
    let rest: Vec<String> = lines[3..].iter().map(|l| body(l)).collect();
    assert_eq!(
        rest,
        vec![
            format!("{prefix} cmd=#12x"),
            format!("{prefix} cmd=#"),
            format!("{prefix} cmd=#99999999999999999999"),
            format!("{prefix} cmd=ls"),
        ]
    );
    h.once(&cfg);
    assert_eq!(h.audit_lines().len(), 7);
}

// ---------------------------------------------------------------------------
// 8. Sinks across reloads.

#[test]
fn sighup_reopens_the_audit_log_and_applies_a_new_user_list() {
    let h = Host::new(
        "reload",
        &[("alice", 4001, "/bin/bash"), ("bob", 4002, "/bin/bash")],
    );
    h.replace_hist("alice", b"");
    h.replace_hist("bob", b"");
    let cfg = h.config("", "users = alice");
    let agent = h.spawn(&cfg);
    h.wait_seen(&["alice"]);
    h.append("alice", b"before-rotate\n");
    h.wait_history(1);
    // logrotate: rename, then SIGHUP.
    std::fs::rename(h.t.join("audit.log"), h.t.join("audit.log.1")).unwrap();
    h.config("", "users = alice bob");
    signal(&agent.0, libc::SIGHUP);
    assert!(
        wait_for(LIMIT, || h.log().contains(" event=reload ")),
        "{}",
        h.log()
    );
    h.wait_seen(&["alice", "bob"]);
    h.append("alice", b"after-rotate\n");
    h.append("bob", b"bob-typed\n");
    h.wait_history(2);
    h.wait_cycles(3);
    agent.stop();
    let old = std::fs::read_to_string(h.t.join("audit.log.1")).unwrap();
    assert_eq!(events(&old, " event=history "), alice(&["before-rotate"]));
    let mut new = h.history();
    new.sort();
    assert_eq!(
        new,
        vec![
            hist_line("alice", 4001, "after-rotate"),
            hist_line("bob", 4002, "bob-typed")
        ]
    );
    let meta = std::fs::metadata(h.t.join("audit.log")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
}

#[test]
fn an_empty_log_file_means_syslog_only() {
    let h = Host::new("sysonly", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"");
    let mut syslog = Syslog::bind(&h.t.join("log.sock"));
    let cfg = h.config(
        &format!("syslog = yes\nsyslog_socket = {}", h.p("log.sock")),
        "log_file =\nsyslog_facility = local5",
    );
    h.once(&cfg);
    h.append("alice", b"#1700000000\nid\n");
    h.once(&cfg);
    syslog.drain();
    assert!(!h.t.join("audit.log").exists());
    // local5 = 21: <174>.
    assert_eq!(
        syslog.with(" event=history "),
        vec![("<174>".to_string(), hist_line("alice", 4001, "id"))]
    );
    assert!(!h.log().contains("event=history"), "{}", h.log());
}

#[test]
fn a_refusal_is_reported_once_across_cron_runs() {
    let h = Host::new("cron-refusal", &[("alice", 4001, "/bin/bash")]);
    let secret = canary(&h);
    let cfg = h.config("", "");
    h.once(&cfg);
    std::os::unix::fs::symlink(&secret, h.hist("alice")).unwrap();
    h.once(&cfg);
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(
        h.audit_errors(),
        vec![h.error_line("alice", "is a symlink")]
    );
}

#[test]
fn a_history_refused_at_its_first_look_is_read_from_its_start_once_fixed() {
    // Say `sudo -s` left a root-owned history at the host's first audit run; once
    // it is the user's again, all it holds is copied: the user may have typed into
    // it meanwhile, and only what was readable at the first run may be skipped.
    let h = Host::new("first-refused", &[("alice", 4001, "/bin/bash")]);
    std::fs::write(h.hist("alice"), b"before\n").unwrap();
    let cfg = h.config("", "");
    h.once(&cfg);
    let why = "is owned by uid 0, not 4001 (alice)";
    assert_eq!(h.audit_errors(), vec![h.error_line("alice", why)]);
    h.append("alice", b"typed-while-refused\n");
    chown(&h.hist("alice"), 4001);
    h.once(&cfg);
    assert_eq!(h.history(), alice(&["before", "typed-while-refused"]));
    h.append("alice", b"after\n");
    h.once(&cfg);
    assert_eq!(h.history().len(), 3);
    assert_eq!(h.history()[2], hist_line("alice", 4001, "after"));
    assert_eq!(h.audit_errors(), vec![h.error_line("alice", why)]);
}

// ---------------------------------------------------------------------------
// 9. The audit cannot be dodged: only what was readable at the host's first audit
//    run may be skipped; every history refused then, or first seen later, is read
//    from its start.

#[test]
fn a_symlinked_history_made_regular_is_read_from_its_start() {
    // alice's history is a symlink to a file of hers at the first run (refused), so
    // bash writes her commands there; then she moves that file into place.
    let h = Host::new("sym-regular", &[("alice", 4001, "/bin/bash")]);
    let notes = h.home("alice").join("notes");
    std::fs::write(&notes, b"").unwrap();
    chown(&notes, 4001);
    std::os::unix::fs::symlink(&notes, h.hist("alice")).unwrap();
    chown(&h.hist("alice"), 4001);
    let cfg = h.config("", "");
    h.once(&cfg);
    std::fs::write(&notes, b"curl-payload\nrun-payload\n").unwrap();
    h.once(&cfg);
    std::fs::rename(&notes, h.hist("alice")).unwrap();
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(h.history(), alice(&["curl-payload", "run-payload"]));
    assert_eq!(
        h.audit_errors(),
        vec![h.error_line("alice", "is a symlink")]
    );
}

#[test]
fn a_fifo_history_made_regular_is_read_from_its_start() {
    let h = Host::new("fifo-regular", &[("alice", 4001, "/bin/bash")]);
    assert_eq!(
        unsafe { libc::mkfifo(cstr(&h.hist("alice")).as_ptr(), 0o600) },
        0
    );
    chown(&h.hist("alice"), 4001);
    let cfg = h.config("", "");
    h.once(&cfg);
    h.replace_hist("alice", b"first\nsecond\n");
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(h.history(), alice(&["first", "second"]));
    assert_eq!(
        h.audit_errors(),
        vec![h.error_line("alice", "is not a regular file")]
    );
}

#[test]
fn a_history_with_two_links_left_with_one_is_read_from_its_start() {
    let h = Host::new("links-one", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"typed-while-linked\n");
    let other = h.home("alice").join("other");
    std::fs::hard_link(h.hist("alice"), &other).unwrap();
    let cfg = h.config("", "");
    h.once(&cfg);
    std::fs::remove_file(&other).unwrap();
    h.once(&cfg);
    assert_eq!(h.history(), alice(&["typed-while-linked"]));
    assert_eq!(
        h.audit_errors(),
        vec![h.error_line("alice", "has 2 links (a hard link is not read)")]
    );
}

#[test]
fn a_user_added_to_passwd_later_is_read_from_the_start() {
    let mut h = Host::new("added", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"alice-before-the-audit\n");
    let cfg = h.config("", "");
    // The host's first audit run: what alice's history holds is the past.
    h.once(&cfg);
    // bob arrives with a history already written (copied in, or typed before the
    // agent saw his account).
    h.add_user("bob", 4002);
    h.replace_hist("bob", b"bob-one\nbob-two\n");
    h.append("alice", b"alice-after\n");
    h.once(&cfg);
    h.once(&cfg);
    let mut got = h.history();
    got.sort();
    assert_eq!(
        got,
        vec![
            hist_line("alice", 4001, "alice-after"),
            hist_line("bob", 4002, "bob-one"),
            hist_line("bob", 4002, "bob-two"),
        ]
    );
    assert_eq!(h.audit_errors(), Vec::<String>::new());
}

#[test]
fn a_history_created_after_the_first_run_is_read_from_its_start_when_first_audited() {
    // bob is not audited at the host's first run; his history appears afterwards,
    // and a reload adds him: none of it is skipped.
    let h = Host::new(
        "created-later",
        &[("alice", 4001, "/bin/bash"), ("bob", 4002, "/bin/bash")],
    );
    h.replace_hist("alice", b"");
    let cfg = h.config("", "users = alice");
    let agent = h.spawn(&cfg);
    h.wait_seen(&["alice"]);
    h.replace_hist("bob", b"bob-one\nbob-two\n");
    h.wait_cycles(2);
    h.config("", "users = alice bob");
    signal(&agent.0, libc::SIGHUP);
    h.wait_seen(&["alice", "bob"]);
    h.wait_history(2);
    h.wait_cycles(3);
    agent.stop();
    assert_eq!(
        h.history(),
        vec![
            hist_line("bob", 4002, "bob-one"),
            hist_line("bob", 4002, "bob-two")
        ]
    );
}

#[test]
fn a_version_1_state_file_keeps_its_offsets_and_reads_refused_users_from_the_start() {
    let h = Host::new(
        "state-v1",
        &[("alice", 4001, "/bin/bash"), ("bob", 4002, "/bin/bash")],
    );
    h.replace_hist("alice", b"old\n");
    h.replace_hist("bob", b"bob-typed\n");
    let m = std::fs::metadata(h.hist("alice")).unwrap();
    // As the previous release wrote it: alice read up to her 4 bytes, bob refused
    // at his first look (so never read), and carol never seen.
    h.t.write(
        "state/audit",
        format!(
            "system-agent-audit 1\nhist {} {} 4 alice\nrefused bob is a symlink\nend\n",
            m.dev(),
            m.ino()
        ),
    );
    h.append("alice", b"alice-new\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    let mut got = h.history();
    got.sort();
    assert_eq!(
        got,
        vec![
            hist_line("alice", 4001, "alice-new"),
            hist_line("bob", 4002, "bob-typed"),
        ]
    );
    let state = h.t.read("state/audit");
    assert!(state.starts_with("system-agent-audit 2\n"), "{state}");
    assert!(
        state.contains(&format!("hist {} {} 14 alice\n", m.dev(), m.ino())),
        "{state}"
    );
    assert_eq!(h.audit_errors(), Vec::<String>::new());
}

#[test]
fn a_corrupt_state_file_means_every_history_is_read_from_its_start() {
    let h = Host::new("state-corrupt", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"one\ntwo\n");
    h.t.write("state/audit", "system-agent-audit 2\nhist 1 2\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(h.history(), alice(&["one", "two"]));
    // Said once, and replaced by a good one.
    let state_errors = events(&h.log(), " event=error what=state ");
    assert_eq!(state_errors.len(), 1, "{state_errors:?}");
    assert!(state_errors[0].contains(&h.p("state/audit")));
    assert!(
        h.t.read("state/audit")
            .starts_with("system-agent-audit 2\nhist ")
    );
}

// ---------------------------------------------------------------------------
// 10. Padding cannot hide what follows it.

#[test]
fn padding_hides_nothing_after_it() {
    let h = Host::new("padding", &[("alice", 4001, "/bin/bash")]);
    h.replace_hist("alice", b"");
    let cfg = h.config("", "max_bytes = 1K");
    h.once(&cfg);
    // One 5,001-byte line, then the commands: the window of the last 1,024 bytes
    // begins inside the padding, so the copy starts at its end.
    let pad = format!(": {}\n", "x".repeat(4998));
    assert_eq!(pad.len(), 5001);
    h.append("alice", format!("{pad}id\nwhoami\n").as_bytes());
    h.once(&cfg);
    assert_eq!(h.history(), alice(&["id", "whoami"]));
    assert_eq!(
        h.audit_errors(),
        vec![h.skip_line("alice", 5011, 1024, 5001, "copied the last lines only")]
    );

    // The window begins exactly at a line's start: that line is whole, and copied.
    let pad = format!(": {}\n", "y".repeat(2997));
    let long = format!("echo {}\n", "z".repeat(1024 - 3 - 6));
    let cmds = format!("id\n{long}");
    assert_eq!(cmds.len(), 1024);
    h.append("alice", format!("{pad}{cmds}").as_bytes());
    h.once(&cfg);
    h.append("alice", b"next\n");
    h.once(&cfg);
    let long_cmd = format!("\"{}\"", long.trim_end());
    assert_eq!(
        h.history()[2..],
        [
            hist_line("alice", 4001, "id"),
            hist_line("alice", 4001, &long_cmd),
            hist_line("alice", 4001, "next"),
        ]
    );
    assert_eq!(
        h.audit_errors()[1..],
        [h.skip_line("alice", 4024, 1024, 3000, "copied the last lines only")]
    );
}
