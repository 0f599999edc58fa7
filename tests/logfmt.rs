//! Every log line, read back by a real strict logfmt decoder: go-logfmt, the one
//! go-kit, Prometheus and Loki's `| logfmt` use (tests/logfmt/check.go, built into
//! a temp dir from Debian's golang-go and golang-github-go-logfmt-logfmt-dev). Any
//! decode error fails. The built binary is made to log every stable event name,
//! with hostile bytes (quotes, `=`, newline, ESC, bytes that are not UTF-8, bidi
//! and other format characters, line separators, a character beyond the BMP)
//! wherever outside input reaches a value; the decoded value must be the input
//! (Go shows each byte that is not UTF-8 as U+FFFD), and Python's
//! `json.loads(v).encode('utf-8', 'surrogateescape')` must give back its exact
//! bytes, as README tells operators.
//!
//! Files live in the test's own temp dirs; the one process signalled (reap_failed)
//! runs in a private PID namespace (`unshare --pid --fork --mount-proc`), where the
//! agent, without CAP_KILL, fails to signal it. Needs root (chown, unshare,
//! setpriv); as another user the event test is skipped with a message.

mod common;

use common::*;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

/// The stable event names (README "Events").
const EVENTS: [&str; 20] = [
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
const TEXT: &str = "q\"=\\ \u{1b}[31m \u{202e}txt.exe \u{2028}x\u{feff}\u{e0001}\u{ad}\u{85}end";

/// `TEXT` and what only bytes can be: a newline, CR, NUL-free invalid UTF-8.
fn bytes() -> Vec<u8> {
    let mut b = TEXT.as_bytes().to_vec();
    b.extend_from_slice(b"\nts=1 level=error event=forged\r\xff\xfe\xc3 end");
    b
}

/// One decoded line: its raw bytes and its fields as go-logfmt decoded them.
struct Line {
    raw: Vec<u8>,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Line {
    fn get(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    fn event(&self) -> &[u8] {
        self.get("event").unwrap_or_default()
    }
}

/// Builds tests/logfmt/check.go into `t` (offline, from Debian's Go packages).
fn build_checker(t: &TempDir) -> PathBuf {
    let out = t.join("check");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logfmt/check.go");
    let built = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", t.join("gocache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go runs (Debian package golang-go)");
    assert!(
        built.status.success(),
        "go build {}: {}",
        src.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

fn unhex(h: &[u8]) -> Vec<u8> {
    let d = |c: u8| (c as char).to_digit(16).expect("hex digit") as u8;
    h.chunks(2).map(|p| d(p[0]) << 4 | d(p[1])).collect()
}

/// Decodes `data` strictly with the checker: every line must decode, and be one
/// record that starts with `ts`, `level`, `event`.
fn decode(check: &Path, what: &str, data: &[u8]) -> Vec<Line> {
    let mut child = Command::new(check)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the checker");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child.wait_with_output().expect("checker output");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "go-logfmt rejects {what}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(data)
    );
    // Whole lines only: strip the last newline, then one record per line.
    let lines_of = |b: &[u8]| -> Vec<Vec<u8>> {
        match b.strip_suffix(b"\n") {
            Some(b) => b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect(),
            None => Vec::new(),
        }
    };
    assert!(
        data.is_empty() || data.ends_with(b"\n"),
        "{what} ends with a newline"
    );
    let (raws, records) = (lines_of(data), lines_of(&out.stdout));
    assert_eq!(records.len(), raws.len(), "one record per line of {what}");
    let lines: Vec<Line> = raws
        .into_iter()
        .zip(&records)
        .map(|(raw, rec)| Line {
            raw,
            fields: rec
                .split(|&b| b == b' ')
                .filter(|f| !f.is_empty())
                .map(|f| {
                    let (k, v) = f.split_at(f.iter().position(|&b| b == b':').expect(":"));
                    (unhex(k), unhex(&v[1..]))
                })
                .collect(),
        })
        .collect();
    for l in &lines {
        let keys: Vec<&[u8]> = l.fields.iter().take(3).map(|f| f.0.as_slice()).collect();
        assert_eq!(
            keys,
            [b"ts".as_slice(), b"level", b"event"],
            "a broken or forged line in {what}: {:?}",
            String::from_utf8_lossy(&l.raw)
        );
    }
    lines
}

/// The value of `key` in a raw line as written: a quoted literal, or a bare value
/// put in quotes (bare values hold no `"` or `\`), so `json.loads` reads either.
fn literal(raw: &[u8], key: &str) -> Option<Vec<u8>> {
    let mut i = 0;
    while i < raw.len() {
        let eq = i + raw[i..].iter().position(|&b| b == b'=')?;
        let k = &raw[i..eq];
        let mut j = eq + 1;
        let value = if raw.get(j) == Some(&b'"') {
            j += 1;
            while raw[j] != b'"' {
                j += if raw[j] == b'\\' { 2 } else { 1 };
            }
            j += 1;
            raw[eq + 1..j].to_vec()
        } else {
            j += raw[j..]
                .iter()
                .position(|&b| b == b' ')
                .unwrap_or(raw.len() - j);
            [b"\"", &raw[eq + 1..j], b"\""].concat()
        };
        if k == key.as_bytes() {
            return Some(value);
        }
        i = j + 1;
    }
    None
}

/// What Go makes of `b`: each byte that is not UTF-8 (each `\udcHH`) as U+FFFD.
fn go_view(b: &[u8]) -> Vec<u8> {
    let mut s = String::new();
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for _ in chunk.invalid() {
            s.push('\u{fffd}');
        }
    }
    s.into_bytes()
}

/// What `python3 -c code args…` prints; it must succeed.
fn python(code: &str, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Python's reading of each literal: `json.loads(v).encode('utf-8', 'surrogateescape')`.
fn python_recover(t: &TempDir, literals: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut data = Vec::new();
    for l in literals {
        data.extend_from_slice(l);
        data.push(b'\n');
    }
    let file = t.write("literals", data);
    let out = python(
        "import json, sys\n\
         for l in open(sys.argv[1], encoding='utf-8'):\n\
         \x20   print(json.loads(l).encode('utf-8', 'surrogateescape').hex())\n",
        &[file.as_os_str()],
    );
    let hex: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(unhex).collect();
    hex[..literals.len()].to_vec()
}

/// Asserts that some `event` line has `key` decoded to `want` (as Go shows it),
/// and that Python recovers `want`'s exact bytes from its literal.
fn check_fields(t: &TempDir, lines: &[Line], wanted: &[(&str, &str, Vec<u8>)]) {
    let mut literals = Vec::new();
    for (event, key, want) in wanted {
        let seen: Vec<&Line> = lines
            .iter()
            .filter(|l| l.event() == event.as_bytes() && l.get(key).is_some())
            .collect();
        let hit = seen.iter().find(|l| l.get(key) == Some(&go_view(want)[..]));
        let Some(hit) = hit else {
            panic!(
                "no {event} line with {key} = {:?}; decoded values: {:?}",
                String::from_utf8_lossy(want),
                seen.iter()
                    .map(|l| String::from_utf8_lossy(l.get(key).unwrap_or_default()))
                    .collect::<Vec<_>>()
            );
        };
        literals.push(literal(&hit.raw, key).expect("the field is in the raw line"));
    }
    let recovered = python_recover(t, &literals);
    for (((event, key, want), got), lit) in wanted.iter().zip(recovered).zip(&literals) {
        assert_eq!(
            got.escape_ascii().to_string(),
            want.escape_ascii().to_string(),
            "{event} {key}: what Python recovers from {}",
            String::from_utf8_lossy(lit)
        );
    }
}

/// A fixture host: proc with two hostile processes, a passwd whose homes lie in
/// the temp dir (one user and one home with hostile names), a cleanup tree of
/// hostile names, tasks, a failing mailer and an alert command.
struct Hostile {
    h: Host,
}

/// A process name (comm, at most 15 bytes) and a command line argument.
const COMM: &[u8] = b"w\"=\n\x1b\xff\xe2\x80\xae\xe2\x80\xa8";

impl Hostile {
    fn new() -> Hostile {
        let h = Host::new("logfmt").ticking();
        h.mem(96);
        let h = Hostile { h };
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
        let agent = format!("interval = 1h\ntop = 2\n{agent}");
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
    fn log_every_event(&self) {
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
        let samples = h.cycles();
        let agent = h.spawn(&cfg);
        h.must_see(" event=sample ", samples + 1);
        self.config("top = 3");
        agent.signal(libc::SIGHUP);
        h.must_see(" event=reload ", 1);
        self.config(&format!("log_level = {TEXT}"));
        agent.signal(libc::SIGHUP);
        h.must_see(" event=config_error ", 1);
        assert_eq!(agent.stop(), 0);
    }

    /// (event, key, the exact bytes its value must hold) for each place outside
    /// input reached.
    fn expected(&self) -> Vec<(&'static str, &'static str, Vec<u8>)> {
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
fn tree_names() -> Vec<Vec<u8>> {
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
const VICTIM: &[u8] = b"v\"=\n\x1b\xff\xe2\x80\xae\xe2\x80\xa8";

/// `reap_failed`: in a private PID namespace, a copy of sleep named `VICTIM` runs
/// as uid 1000, and the agent runs `--once` as root without CAP_KILL
/// (`setpriv --bounding-set=-kill`), so its SIGTERM fails with EPERM. Returns
/// the agent's log.
fn reap_failed_log() -> Vec<u8> {
    let s = Scenario::new("logfmt-ns", &[]).expect("checked by the caller");
    let victim = s.h.path("bin").join(std::ffi::OsStr::from_bytes(VICTIM));
    std::fs::copy("/bin/sleep", &victim).expect("copy sleep");
    let rule = "[reap.v]\nmatch = v*\naction = term\n";
    s.config("", "scope = all", rule);
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

/// Asserts that no line holds, unescaped, a character that hides, reorders or
/// breaks text (a control, format character or line separator).
fn assert_nothing_raw(lines: &[Line]) {
    let must = must_escape();
    for l in lines {
        let text = std::str::from_utf8(&l.raw).expect("log lines are UTF-8");
        let raw: Vec<String> = text
            .chars()
            .filter(|&c| must[c as usize] && c != '"' && c != '\\')
            .map(|c| format!("U+{:04X}", c as u32))
            .collect();
        assert_eq!(raw, Vec::<String>::new(), "unescaped in {text}");
    }
}

#[test]
fn every_event_decodes_strictly_and_keeps_hostile_bytes() {
    if !is_root() {
        eprintln!("logfmt events: skipped, needs root (chown, unshare --pid, setpriv)");
        return;
    }
    let hostile = Hostile::new();
    let h = &hostile.h;
    let check = build_checker(&h.t);
    hostile.log_every_event();
    let ns_log = reap_failed_log();
    let read = |rel: &str| std::fs::read(h.t.join(rel)).unwrap_or_default();
    let mut all = decode(&check, "agent.log", &read("agent.log"));
    all.extend(decode(&check, "audit.log", &read("audit.log")));
    all.extend(decode(&check, "the namespace's agent.log", &ns_log));
    assert_nothing_raw(&all);
    let missing: Vec<&str> = EVENTS
        .iter()
        .filter(|e| !all.iter().any(|l| l.event() == e.as_bytes()))
        .copied()
        .collect();
    assert_eq!(missing, Vec::<&str>::new(), "never logged\n{}", h.log());
    check_fields(&h.t, &all, &hostile.expected());
}

/// The code points Python's `unicodedata` puts in Cc, Cf, Zl or Zp: with `"` and
/// `\`, exactly the characters the log must escape.
fn must_escape() -> Vec<bool> {
    let out = python(
        "import sys, unicodedata as u\n\
         for c in range(sys.maxunicode + 1):\n\
         \x20   if u.category(chr(c)) in ('Cc', 'Cf', 'Zl', 'Zp'): print(c)\n",
        &[],
    );
    let mut v = vec![false; 0x11_0000];
    for n in String::from_utf8_lossy(&out).lines() {
        v[n.parse::<usize>().expect("a code point")] = true;
    }
    v['"' as usize] = true;
    v['\\' as usize] = true;
    v
}

#[test]
fn every_character_and_byte_round_trips_through_go_logfmt() {
    let t = TempDir::new("logfmt-chars");
    let check = build_checker(&t);
    let chars: Vec<char> = (0..=0x10_ffff).filter_map(char::from_u32).collect();
    // Escaped exactly when Unicode says it is a control, format or separator.
    let must = must_escape();
    let mut out = String::new();
    let wrong: Vec<String> = chars
        .iter()
        .filter(|&&c| {
            out.clear();
            system_agent::log::push_value(&mut out, c.to_string().as_bytes());
            let escaped = out != c.to_string() && out != format!("\"{c}\"");
            escaped != must[c as usize]
        })
        .map(|&c| format!("U+{:04X}", c as u32))
        .collect();
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "escaped when it should not be, or not when it should"
    );
    // Every character decodes to itself in go-logfmt.
    let mut data = String::new();
    let values: Vec<String> = chars.chunks(256).map(|c| c.iter().collect()).collect();
    for v in &values {
        data.push_str("ts=0 level=info event=chars v=");
        system_agent::log::push_value(&mut data, v.as_bytes());
        data.push('\n');
    }
    let lines = decode(&check, "every character", data.as_bytes());
    assert_eq!(lines.len(), values.len());
    for (l, v) in lines.iter().zip(&values) {
        assert_eq!(
            l.get("v"),
            Some(v.as_bytes()),
            "{}",
            String::from_utf8_lossy(&l.raw)
        );
    }
    // Every byte that is not UTF-8 on its own: U+FFFD in Go, itself in Python.
    let bad: Vec<u8> = (0x80..=0xffu8).flat_map(|b| [b, b'.']).collect();
    let mut line = String::from("ts=0 level=info event=bytes v=");
    system_agent::log::push_value(&mut line, &bad);
    line.push('\n');
    let lines = decode(&check, "bytes", line.as_bytes());
    check_fields(&t, &lines, &[("bytes", "v", bad)]);
}
