//! A fixture host where outside input is hostile wherever it reaches a log value
//! (quotes, `=`, newline, ESC, bytes that are not UTF-8, bidi and other format
//! characters, line separators, a character beyond the BMP), made to log every
//! stable event name; for tests/logfmt_events.rs and tests/logfmt_json.rs. The one
//! process signalled (reap_failed) runs in a private PID namespace (`unshare --pid
//! --fork --mount-proc`), where the agent, without CAP_KILL, fails to signal it.
//! Needs root (chown, unshare, setpriv).

use super::{Host, Ini, LIMIT, Scenario, chmod, chown, wait_for};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, SystemTime};

/// The stable event names (README "Events").
pub const EVENTS: [&str; 20] = [
    "start",
    "stop",
    "reload",
    "config_error",
    "sample",
    "alert",
    "recovered",
    "top",
    "cleanup",
    "cleanup_done",
    "reap",
    "reap_failed",
    "task_start",
    "task_done",
    "task_timeout",
    "task_skipped",
    "history",
    "alert_sent",
    "alert_failed",
    "error",
];

/// Hostile text that cannot hold a newline or invalid UTF-8 (a config value, a
/// passwd field, a history line once split): quotes, `=`, a backslash, ESC, a
/// right-to-left override, a line separator, a BOM, a tag character (beyond the
/// BMP), a soft hyphen and C1's NEL. It ends in a letter: a config value is trimmed.
pub const TEXT: &str =
    "q\"=\\ \u{1b}[31m \u{202e}txt.exe \u{2028}x\u{feff}\u{e0001}\u{ad}\u{85}end";

/// `TEXT` and what only bytes can be: a newline, CR, NUL-free invalid UTF-8.
pub fn bytes() -> Vec<u8> {
    let mut b = TEXT.as_bytes().to_vec();
    b.extend_from_slice(b"\nts=1 level=error event=forged\r\xff\xfe\xc3 end");
    b
}

/// A fixture host: proc with two hostile processes, a passwd whose homes lie in
/// the temp dir (one user and one home with hostile names), a cleanup tree of
/// hostile names, tasks, a failing mailer and an alert command.
pub struct Hostile {
    pub h: Host,
    /// `[agent]` lines every config of this host has (`log_format = json`).
    pub agent: String,
}

/// A process name (comm, at most 15 bytes) and a command line argument.
pub const COMM: &[u8] = b"w\"=\n\x1b\xff\xe2\x80\xae\xe2\x80\xa8";

impl Hostile {
    pub fn new() -> Hostile {
        let h = Host::new("logfmt").ticking();
        h.mem(96);
        let h = Hostile {
            h,
            agent: String::new(),
        };
        h.processes();
        h.accounts();
        h.tree();
        h.programs();
        h
    }

    fn p(&self, rel: &str) -> String {
        self.h.p(rel)
    }

    /// Two processes of alice in the fixture /proc, with hostile names and
    /// command lines, at pids no real process can have (above pid_max).
    fn processes(&self) {
        for (pid, comm) in [(4_194_400u32, COMM), (4_194_401, b"plain")] {
            let mut stat = format!("{pid} (").into_bytes();
            stat.extend_from_slice(comm);
            stat.extend_from_slice(
                format!(
                    ") S 1 {pid} {pid} 0 -1 0 0 0 0 0 500 0 0 0 20 0 1 0 5000 1000000 1000 \
                     18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
                )
                .as_bytes(),
            );
            self.h.write(&format!("proc/{pid}/stat"), stat);
            self.h.write(
                &format!("proc/{pid}/status"),
                "Name:\tw\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nCapEff:\t0\n",
            );
            let cmdline = [b"/usr/bin/w\0".as_slice(), comm, b"\0", &bytes(), b"\0"].concat();
            self.h.write(&format!("proc/{pid}/cmdline"), cmdline);
        }
    }

    /// root (home in the temp dir, no history), alice with a history, and a user
    /// with a hostile name whose history in a hostile home is a symlink (refused:
    /// `event=error what=audit`).
    fn accounts(&self) {
        let odd_home = self.h.path(&format!("home/{TEXT}"));
        let mut passwd = format!("root:x:0:0::{}:/bin/bash\n", self.p("home/root"));
        passwd.push_str(&format!(
            "alice:x:1000:1000::{}:/bin/bash\n",
            self.p("home/alice")
        ));
        passwd.push_str(&format!(
            "m{TEXT}:x:1001:1001::{}:/bin/bash\n",
            odd_home.display()
        ));
        self.h.passwd(&passwd);
        for (home, uid) in [
            (self.h.path("home/root"), 0),
            (self.h.path("home/alice"), 1000),
        ] {
            std::fs::create_dir_all(&home).expect("home");
            chown(&home, uid);
        }
        std::fs::create_dir_all(&odd_home).expect("odd home");
        chown(&odd_home, 1001);
        let hist = self.h.write("home/alice/.bash_history", "ls\n");
        chmod(&hist, 0o600);
        chown(&hist, 1000);
        std::os::unix::fs::symlink("/etc/shadow", odd_home.join(".bash_history")).expect("symlink");
    }

    /// The cleanup tree: one old file per hostile name.
    fn tree(&self) {
        let old = SystemTime::now() - Duration::from_secs(10 * 86_400);
        for name in tree_names() {
            let p = self.h.path("tree").join(std::ffi::OsStr::from_bytes(&name));
            std::fs::create_dir_all(p.parent().expect("parent")).expect("tree");
            let f = File::create(&p).expect("create a hostile name");
            f.set_modified(old).expect("set mtime");
        }
    }

    /// A task whose stderr is hostile, a task that hangs past its timeout, the
    /// mailer (fails, hostile stderr) and the alert command (succeeds).
    fn programs(&self) {
        self.h.write(
            "stderr.bin",
            [b"first line\n".as_slice(), &bytes(), b"\n"].concat(),
        );
        self.h
            .write("mailer.bin", [bytes().as_slice(), b"\n"].concat());
        let stderr = self.p("stderr.bin");
        let mailer = self.p("mailer.bin");
        self.h.script("noisy.sh", &format!("cat '{stderr}' >&2\n"));
        self.h.script("hang.sh", "exec sleep 30\n");
        self.h.script(
            "mailer.sh",
            &format!("cat >/dev/null\ncat '{mailer}' >&2\nexit 75\n"),
        );
        self.h.script("pager.sh", "exit 0\n");
    }

    /// agent.ini; `agent` lines replace or add `[agent]` keys.
    fn config(&self, agent: &str) -> std::path::PathBuf {
        let agent = format!("interval = 1h\ntop = 2\n{}\n{agent}", self.agent);
        let extra = format!(
            "[reaper]\nenabled = yes\nscope = all\n\n[reap.hostile]\nmatch = w*\naction = log\n\n\
             [cleanup.hostile]\npaths = {tree}\nmatch = *\nolder_than = 1d\nwhen = always\nrecursive = yes\n\n\
             [task.noisy]\ncommand = {noisy}\nidle_cycles = 0\n\n\
             [task.hang]\ncommand = {hang}\nidle_cycles = 0\ntimeout = 1s\n\n\
             [task.gone]\ncommand = {gone}\nidle_cycles = 0\n\n\
             [alert]\nemail = ops@example.com\nsendmail = {mailer}\ncommand = {pager}\n\
             min_level = critical\ntimeout = 10s\n",
            tree = self.p("tree"),
            noisy = self.p("noisy.sh"),
            hang = self.p("hang.sh"),
            gone = self.p("no/such/program"),
            mailer = self.p("mailer.sh"),
            pager = self.p("pager.sh"),
        );
        self.h.config(Ini {
            agent: &agent,
            thresholds: "for_cycles = 1",
            audit: Some(""),
            extra: &extra,
            ..Ini::default()
        })
    }

    /// Makes the agent log every event but reap_failed, hostile input in each.
    pub fn log_every_event(&self) {
        let h = &self.h;
        let cfg = self.config("");
        // 1. Memory critical: alert (the mailer fails, the command works), top,
        // reap, cleanup, the noisy task, the audit's first look and its refusal.
        h.once(&cfg, &[]);
        // 2. Hostile commands appended; memory back: recovered; the hanging task.
        let hist = h.path("home/alice/.bash_history");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&hist)
            .expect("history");
        std::io::Write::write_all(&mut f, &[bytes().as_slice(), b"\n"].concat()).expect("append");
        h.mem(10);
        h.once(&cfg, &[]);
        // 3. The missing task.
        h.once(&cfg, &[]);
        // 4. The service: a reload, a reload of a bad file, a stop.
        let samples = self.count("sample");
        let agent = h.spawn(&cfg);
        self.must_see("sample", samples + 1);
        self.config("top = 3");
        agent.signal(libc::SIGHUP);
        self.must_see("reload", 1);
        self.config(&format!("log_level = {TEXT}"));
        agent.signal(libc::SIGHUP);
        self.must_see("config_error", 1);
        assert_eq!(agent.stop(), 0);
    }

    /// How many `event` lines the log has, in logfmt or JSON.
    fn count(&self, event: &str) -> usize {
        let log = self.h.log();
        log.matches(&format!(" event={event} ")).count()
            + log.matches(&format!(",\"event\":\"{event}\",")).count()
    }

    fn must_see(&self, event: &str, n: usize) {
        assert!(
            wait_for(LIMIT, || self.count(event) >= n),
            "no {event} (x{n}) in\n{}",
            self.h.log()
        );
    }

    /// (event, key, the exact bytes its value must hold) for each place outside
    /// input reached.
    pub fn expected(&self) -> Vec<(&'static str, &'static str, Vec<u8>)> {
        let mut v = Vec::new();
        for name in tree_names() {
            let path = [self.p("tree").as_bytes(), b"/", &name].concat();
            v.push(("cleanup", "path", path));
        }
        let cmd = [b"/usr/bin/w ".as_slice(), COMM, b" ", &bytes()].concat();
        v.push(("top", "name", COMM.to_vec()));
        v.push(("top", "cmd", cmd));
        v.push(("reap", "name", COMM.to_vec()));
        v.push(("reap_failed", "name", VICTIM.to_vec()));
        for line in bytes().split(|&b| b == b'\n') {
            v.push(("history", "cmd", line.to_vec()));
        }
        let tail = [b"first line\n".as_slice(), &bytes()].concat();
        v.push(("task_done", "stderr_tail", tail));
        v.push(("alert_failed", "error", bytes()));
        let odd = self.h.path(&format!("home/{TEXT}/.bash_history"));
        v.push(("error", "user", format!("m{TEXT}").into_bytes()));
        v.push(("error", "path", odd.as_os_str().as_bytes().to_vec()));
        let level = format!("invalid log level \"{TEXT}\" (expected debug, info, warn or error)");
        v.push(("config_error", "error", level.into_bytes()));
        v
    }
}

/// The cleanup tree's names: each hostile piece alone, all of them together, and
/// a file in a directory with a hostile name.
pub fn tree_names() -> Vec<Vec<u8>> {
    let mut v: Vec<Vec<u8>> = [
        "quote\"".as_bytes(),
        b"k=v",
        b"new\nline",
        b"esc\x1b[0m",
        b"bad\xff\xc3",
        "rtl\u{202e}gol.exe".as_bytes(),
        "ls\u{2028}x".as_bytes(),
        "bom\u{feff}".as_bytes(),
        "tag\u{e0001}".as_bytes(),
    ]
    .iter()
    .map(|n| n.to_vec())
    .collect();
    v.push(
        bytes()
            .iter()
            .map(|&b| if b == b'/' { b'_' } else { b })
            .collect(),
    );
    v.push(b"d\n\"=\xff/in.log".to_vec());
    v
}

/// The name of the process the agent fails to signal (its comm: 15 bytes at most).
pub const VICTIM: &[u8] = b"v\"=\n\x1b\xff\xe2\x80\xae\xe2\x80\xa8";

/// `reap_failed`: in a private PID namespace, a copy of sleep named `VICTIM` runs
/// as uid 1000, and the agent runs `--once` as root without CAP_KILL
/// (`setpriv --bounding-set=-kill`), so its SIGTERM fails with EPERM. `agent`
/// lines replace or add `[agent]` keys. Returns the agent's log.
pub fn reap_failed_log(agent: &str) -> Vec<u8> {
    let s = Scenario::new("logfmt-ns", &[]).expect("checked by the caller");
    let victim = s.h.path("bin").join(std::ffi::OsStr::from_bytes(VICTIM));
    std::fs::copy("/bin/sleep", &victim).expect("copy sleep");
    let rule = "[reap.v]\nmatch = v*\naction = term\n";
    s.config(agent, "scope = all", rule);
    let o = s.run(
        r#"
for f in "$T"/bin/v*; do as 1000 "$f" 30 & V=$!; done
vcomm() { local c=; { read -r c <"/proc/$1/comm"; } 2>/dev/null; [ "${c:0:1}" = v ]; }
poll vcomm $V || problem not_started
setpriv --bounding-set=-kill "$A" -c "$T/agent.ini" --once >"$T/agent.out" 2>&1; out rc $?
"#,
    );
    // When the namespace's PID 1 (bash) exits, the kernel kills the victim.
    o.expect_nagios("rc");
    std::fs::read(s.h.path("agent.log")).unwrap_or_default()
}
