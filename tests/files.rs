//! The files the agent opens, against hostile names: the config (a FIFO, a huge
//! file), log files (a symlink, a FIFO, a directory others may write, someone
//! else's file), atomic writes (names planted where the temporary file goes, stale
//! temporary files), state files (a FIFO, a huge file, a symlink, a directory), a
//! `state_dir` others may write; outputs that fail are reported once, not every
//! cycle; a log line cut short by a full disk is not continued by the next one.
//! Files are written only inside each test's own temp dir; signals go only to
//! children these tests started.

mod common;

use common::*;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A fixture host (see tests/cli.rs): /proc files, passwd, 100ms cycles.
struct Host {
    t: TempDir,
}

impl Host {
    fn new(tag: &str) -> Host {
        let t = TempDir::new(tag);
        t.write("proc/stat", proc_stat(100, 900));
        t.write("proc/meminfo", proc_meminfo(50));
        t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
        t.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
        Host { t }
    }

    fn p(&self, rel: &str) -> String {
        self.t.join(rel).display().to_string()
    }

    fn config(&self, agent: &str, extra: &str) -> PathBuf {
        fixture_ini(&self.t, "100ms", agent, extra)
    }

    fn log(&self) -> String {
        self.t.read("agent.log")
    }

    fn count(&self, needle: &str) -> usize {
        self.log().lines().filter(|l| l.contains(needle)).count()
    }
}

/// Runs the binary with `args`, killed (and the test failed) after 20 s: a hang
/// is the failure some of these tests look for.
fn run_bounded(args: &[&str]) -> (i32, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn system-agent");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    let mut out = String::new();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut out).unwrap();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code().unwrap_or(-1), out, err)
}

/// What `--once` exits with on these fixtures: their /proc/stat never moves, so
/// the CPU reads as unknown.
const UNKNOWN: i32 = 3;

fn once(cfg: &Path) -> (i32, String, String) {
    run_bounded(&["-c", cfg.to_str().unwrap(), "--once"])
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path in the test's own temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    // SAFETY: always succeeds.
    unsafe { libc::geteuid() == 0 }
}

/// The lines of `text` containing `needle`, without their `ts=... ` prefix.
fn events(text: &str, needle: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.contains(needle))
        .map(|l| {
            l.split_once(' ')
                .map(|(_, r)| r.to_string())
                .unwrap_or_default()
        })
        .collect()
}

/// A running service; killed if a test fails before stopping it.
struct Service(Child);

impl Service {
    fn spawn(cfg: &Path) -> Service {
        Service(spawn(&["-c", cfg.to_str().unwrap()]))
    }

    fn stop(mut self) -> i32 {
        signal(&self.0, libc::SIGTERM);
        wait_exit(&mut self.0, Duration::from_secs(10))
            .code()
            .unwrap_or(-1)
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

// --- the config -------------------------------------------------------------------

#[test]
fn a_config_that_is_a_fifo_is_refused_without_waiting_for_a_writer() {
    let h = Host::new("cfg-fifo");
    let fifo = h.t.join("fifo.ini");
    mkfifo(&fifo);
    let want = format!(
        "{}: cannot read: a FIFO, not a regular file\n",
        fifo.display()
    );
    let (code, _, err) = run_bounded(&["-c", fifo.to_str().unwrap(), "--check-config"]);
    assert_eq!((code, err.as_str()), (78, want.as_str()));
    let (code, out, err) = once(&fifo);
    assert_eq!((code, err.as_str()), (3, want.as_str()));
    assert!(
        out.starts_with("SYSTEM-AGENT UNKNOWN - invalid configuration: "),
        "{out}"
    );
}

#[test]
fn a_config_over_one_mebibyte_is_refused_naming_the_file() {
    let h = Host::new("cfg-big");
    // Comments only: valid INI, but no config is this large.
    let line = format!("# {}\n", "x".repeat(1021));
    let path = h.t.write("big.ini", line.repeat(1024) + "#\n");
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(size, 1024 * 1024 + 2);
    let (code, out, err) = run_bounded(&["-c", path.to_str().unwrap(), "--check-config"]);
    assert_eq!(
        (code, err),
        (
            78,
            format!(
                "{}: cannot read: {size} bytes, over the 1048576-byte limit\n",
                path.display()
            )
        ),
        "{out}"
    );
}

// --- log files --------------------------------------------------------------------

/// The one stderr line of a log file that is refused or fails.
fn log_file_error(path: &str, rest: &str) -> String {
    format!("level=error event=error what=log_file path={path} {rest} note=retrying")
}

#[test]
fn a_log_file_that_is_a_symlink_is_not_followed_and_said_once_on_stderr_and_syslog() {
    let h = Host::new("log-symlink");
    let victim = h.t.write("victim", "untouched\n");
    std::fs::create_dir(h.t.join("logs")).unwrap();
    std::os::unix::fs::symlink(&victim, h.t.join("logs/agent.log")).unwrap();
    let sock_path = h.t.join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_nonblocking(true).unwrap();
    let cfg = h.config(
        &format!(
            "log_file = {}\nsyslog = yes\nsyslog_socket = {}",
            h.p("logs/agent.log"),
            sock_path.display()
        ),
        "",
    );
    let (code, _, err) = once(&cfg);
    assert_eq!(code, UNKNOWN, "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    let path = h.p("logs/agent.log");
    let want = log_file_error(&path, "error=\"a symbolic link, not a regular file\"");
    assert_eq!(events(&err, "event="), vec![want.clone()], "{err}");
    let mut said = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = sock.recv(&mut buf) {
        let d = String::from_utf8_lossy(&buf[..n]).into_owned();
        if d.contains("what=log_file") {
            said.push(d);
        }
    }
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(said[0].ends_with(&format!(": {want}")), "{said:?}");
}

#[test]
fn a_log_file_that_is_a_fifo_is_refused_without_waiting_for_a_reader() {
    let h = Host::new("log-fifo");
    mkfifo(&h.t.join("agent.log"));
    let (code, _, err) = once(&h.config("", ""));
    assert_eq!(code, UNKNOWN, "{err}");
    let want = log_file_error(&h.p("agent.log"), "error=\"a FIFO, not a regular file\"");
    assert_eq!(events(&err, "event="), vec![want]);
}

#[test]
fn a_log_directory_others_may_write_is_refused() {
    let h = Host::new("log-dir");
    let dir = h.t.join("logs");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o775);
    let cfg = h.config(&format!("log_file = {}", h.p("logs/agent.log")), "");
    let (code, _, err) = once(&cfg);
    assert_eq!(code, UNKNOWN, "{err}");
    assert!(!dir.join("agent.log").exists());
    let why = format!(
        "error=\"{} is writable by group or others (mode 775)\"",
        dir.display()
    );
    assert_eq!(
        events(&err, "event="),
        vec![log_file_error(&h.p("logs/agent.log"), &why)]
    );
}

#[test]
fn a_log_directory_below_one_others_may_write_is_refused_unless_that_one_is_sticky() {
    let h = Host::new("log-parent");
    let open = h.t.join("open");
    std::fs::create_dir_all(open.join("logs")).unwrap();
    chmod(&open, 0o777);
    let log = h.p("open/logs/agent.log");
    let cfg = h.config(&format!("log_file = {log}"), "");
    let (code, _, err) = once(&cfg);
    assert_eq!(code, UNKNOWN, "{err}");
    assert!(!Path::new(&log).exists());
    let why = format!(
        "error=\"{} is writable by group or others and not sticky (mode 777)\"",
        open.display()
    );
    assert_eq!(events(&err, "event="), vec![log_file_error(&log, &why)]);
    // Sticky, as /tmp is: no one can rename what is not theirs there.
    chmod(&open, 0o1777);
    let (code, _, err) = once(&cfg);
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains(" event=sample ")
    );
    // Root's, writable by its group only, as Ubuntu's /var/log (root:syslog 0775).
    std::fs::remove_file(&log).unwrap();
    chmod(&open, 0o775);
    let (code, _, err) = once(&cfg);
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    assert!(
        std::fs::read_to_string(&log)
            .unwrap()
            .contains(" event=sample ")
    );
}

#[test]
fn a_log_file_of_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to give a file away");
        return;
    }
    let h = Host::new("log-owner");
    let log = h.t.write("agent.log", "");
    std::os::unix::fs::chown(&log, Some(65534), None).unwrap();
    let (code, _, err) = once(&h.config("", ""));
    assert_eq!(code, UNKNOWN, "{err}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    let why = format!(
        "error=\"{} is owned by uid 65534, not root\"",
        log.display()
    );
    assert_eq!(
        events(&err, "event="),
        vec![log_file_error(&h.p("agent.log"), &why)]
    );
}

// --- atomic writes ----------------------------------------------------------------

#[test]
fn a_fifo_planted_where_the_metrics_file_was_written_first_cannot_block() {
    let h = Host::new("tmp-fifo");
    std::fs::create_dir(h.t.join("m")).unwrap();
    mkfifo(&h.t.join("m/m.prom.tmp"));
    let cfg = h.config(&format!("metrics_file = {}", h.p("m/m.prom")), "");
    let (code, _, err) = once(&cfg);
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    assert!(
        h.t.read("m/m.prom")
            .contains("\nsystem_agent_cycles_total 1\n")
    );
    let names: Vec<_> = std::fs::read_dir(h.t.join("m"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left behind: {names:?}");
}

#[test]
fn a_hard_link_planted_where_a_state_file_was_written_first_is_left_alone() {
    let h = Host::new("tmp-link");
    let victim = h.t.write("victim", "precious\n");
    std::fs::create_dir(h.t.join("state")).unwrap();
    std::fs::hard_link(&victim, h.t.join("state/state.tmp")).unwrap();
    let (code, _, err) = once(&h.config("", ""));
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(
        h.t.read("state/state")
            .starts_with("system-agent-state 1\n")
    );
}

#[test]
fn temporary_files_a_crash_left_are_removed_at_start_and_only_ours() {
    let h = Host::new("tmp-stale");
    let hex = "0123456789abcdef";
    let stale = [
        format!("state/.state.sa-tmp-{hex}"),
        format!("state/.alerts.sa-tmp-{hex}"),
        format!("m/.m.prom.sa-tmp-{hex}"),
    ];
    let kept = [
        "state/notes.tmp".to_string(),
        format!("state/.state.sa-tmp-{}", &hex[1..]),
        format!("m/.other.prom.sa-tmp-{hex}"),
        "m/m.prom.tmp".to_string(),
    ];
    for f in stale.iter().chain(&kept) {
        h.t.write(f, "x");
    }
    let foreign =
        h.t.write(&format!("m/.m.prom.sa-tmp-{}", "f".repeat(16)), "x");
    if is_root() {
        std::os::unix::fs::chown(&foreign, Some(65534), None).unwrap();
    }
    let cfg = h.config(&format!("metrics_file = {}", h.p("m/m.prom")), "");
    let (code, _, err) = once(&cfg);
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    for f in &stale {
        assert!(!h.t.join(f).exists(), "{f} should be gone");
    }
    for f in &kept {
        assert!(h.t.join(f).exists(), "{f} should be kept");
    }
    assert_eq!(foreign.exists(), is_root(), "another user's file is kept");
}

// --- state files ------------------------------------------------------------------

fn state_error(path: &str, error: &str) -> String {
    format!(
        "level=warn event=error what=state error={error} path={path} effect=\"starting fresh; the file will be replaced\""
    )
}

#[test]
fn a_state_file_that_is_a_fifo_neither_hangs_once_nor_the_service() {
    let h = Host::new("state-fifo");
    std::fs::create_dir(h.t.join("state")).unwrap();
    mkfifo(&h.t.join("state/state"));
    let cfg = h.config("", "");
    let (code, _, err) = once(&cfg);
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    assert_eq!(
        events(&h.log(), "event=error"),
        vec![state_error(
            &h.p("state/state"),
            "\"a FIFO, not a regular file\""
        )]
    );
    assert!(
        h.t.read("state/state")
            .starts_with("system-agent-state 1\n")
    );
    // The service, too, starts and cycles.
    std::fs::remove_file(h.t.join("state/state")).unwrap();
    mkfifo(&h.t.join("state/state"));
    let agent = Service::spawn(&cfg);
    assert!(
        wait_for(Duration::from_secs(10), || h.count("event=sample") >= 3),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_state_file_over_its_cap_is_refused_unread() {
    let h = Host::new("state-big");
    std::fs::create_dir(h.t.join("state")).unwrap();
    let f = std::fs::File::create(h.t.join("state/state")).unwrap();
    f.set_len(100 << 20).unwrap(); // sparse: costs no disk
    let (code, _, err) = once(&h.config("", ""));
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    assert_eq!(
        events(&h.log(), "event=error"),
        vec![state_error(
            &h.p("state/state"),
            "\"104857600 bytes, over the 65536-byte limit\""
        )]
    );
    assert!(std::fs::metadata(h.t.join("state/state")).unwrap().len() < 4096);
}

#[test]
fn a_state_file_that_is_a_symlink_is_not_followed() {
    let h = Host::new("state-link");
    let elsewhere =
        h.t.write("elsewhere", "system-agent-state 1\nsaved 1\nbtime 1\nend\n");
    std::fs::create_dir(h.t.join("state")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, h.t.join("state/state")).unwrap();
    let (code, _, err) = once(&h.config("", ""));
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    assert_eq!(
        events(&h.log(), "event=error"),
        vec![state_error(
            &h.p("state/state"),
            "\"a symbolic link, not a regular file\""
        )]
    );
    assert!(
        !std::fs::symlink_metadata(h.t.join("state/state"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn a_state_file_that_cannot_be_read_is_said_so() {
    let h = Host::new("state-dir-entry");
    std::fs::create_dir_all(h.t.join("state/tasks")).unwrap();
    let cfg = h.config("", "[task.t]\ncommand = /bin/true\nwhen_cpu_below = 0\n");
    let (code, _, err) = once(&cfg);
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    let lines = events(&h.log(), "what=state");
    assert_eq!(
        lines[0],
        state_error(&h.p("state/tasks"), "\"Is a directory\""),
        "{lines:?}"
    );
}

#[test]
fn a_state_dir_others_may_write_is_refused() {
    let h = Host::new("state-open");
    let dir = h.t.join("state");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o777);
    let cfg = h.config("", "");
    let why = format!(
        "refused {}: {} is writable by group or others (mode 777)",
        dir.display(),
        dir.display()
    );
    let (code, _, err) = run_bounded(&["-c", cfg.to_str().unwrap()]);
    assert_eq!(
        (code, err),
        (1, format!("system-agent: cannot start: {why}\n"))
    );
    // `--once` still checks, with its actions off, and says why.
    let (code, out, err) = once(&cfg);
    assert_eq!((code, err.as_str()), (UNKNOWN, ""), "{out}");
    let start = events(&h.log(), "event=start");
    assert_eq!(start.len(), 1, "{}", h.log());
    assert!(
        start[0].ends_with(&format!(" actions=off actions_off=\"{why}\"")),
        "{}",
        start[0]
    );
    assert!(!dir.join("state").exists());
}

// --- failing outputs are reported once --------------------------------------------

#[test]
fn a_missing_metrics_directory_is_reported_once_and_so_is_its_recovery() {
    let h = Host::new("metrics-dir");
    let prom = h.p("nodir/m.prom");
    let cfg = h.config(&format!("metrics_file = {prom}"), "");
    let agent = Service::spawn(&cfg);
    assert!(
        wait_for(Duration::from_secs(10), || h.count("event=sample") >= 6),
        "{}",
        h.log()
    );
    std::fs::create_dir(h.t.join("nodir")).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || h.count("status=recovered") == 1),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
    let lines = events(&h.log(), "what=metrics_file");
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        format!(
            "level=error event=error what=metrics_file path={prom} errno=ENOENT error=\"No such file or directory\" note=retrying"
        )
    );
    let failed: u64 = lines[1]
        .strip_prefix(&format!(
            "level=warn event=error what=metrics_file status=recovered path={prom} failed="
        ))
        .unwrap_or_else(|| panic!("{}", lines[1]))
        .parse()
        .unwrap();
    assert!(failed >= 5, "{failed}");
    assert!(
        h.t.read("nodir/m.prom")
            .contains("system_agent_cycles_total ")
    );
}

#[test]
fn a_state_path_that_is_a_directory_is_reported_once_and_so_is_its_recovery() {
    let h = Host::new("state-isdir");
    std::fs::create_dir_all(h.t.join("state/state")).unwrap();
    // A level that changes, so the service wants to write its state each cycle.
    let cfg = h.config(
        "",
        "[thresholds]\nmem_warn = 10\nmem_crit = 90\nfor_cycles = 1000\n",
    );
    let agent = Service::spawn(&cfg);
    assert!(
        wait_for(Duration::from_secs(10), || h.count("event=sample") >= 6),
        "{}",
        h.log()
    );
    std::fs::remove_dir(h.t.join("state/state")).unwrap();
    assert!(
        wait_for(Duration::from_secs(10), || h.count("status=recovered") == 1),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
    let path = h.p("state/state");
    let lines = events(&h.log(), "what=state");
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0], state_error(&path, "\"Is a directory\""));
    assert_eq!(
        lines[1],
        format!(
            "level=error event=error what=state path={path} errno=EISDIR error=\"Is a directory\" note=retrying"
        )
    );
    let recovered =
        format!("level=warn event=error what=state status=recovered path={path} failed=");
    assert!(lines[2].starts_with(&recovered), "{lines:?}");
}

// --- a full disk ------------------------------------------------------------------

/// `cmd` with a file size limit of `limit` bytes (soft; the hard limit stays
/// unlimited so it can be raised again) and SIGXFSZ ignored: a write past the
/// limit is cut short there, and the next fails with EFBIG, as on a full disk.
fn with_file_size_limit(cmd: &mut Command, limit: u64) {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let rl = libc::rlimit {
                rlim_cur: limit,
                rlim_max: libc::RLIM_INFINITY,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn raise_file_size_limit(child: &Child) {
    let rl = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit on our own child, with a valid rlimit.
    let r = unsafe {
        libc::prlimit(
            child.id() as libc::pid_t,
            libc::RLIMIT_FSIZE,
            &rl,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
}

/// Every line of `log` after `from` bytes is one whole event.
fn whole_lines_after(log: &str, from: usize) -> Vec<&str> {
    let lines: Vec<&str> = log[from..].lines().collect();
    for l in &lines {
        assert!(
            l.starts_with("ts=") && l.matches(" level=").count() == 1,
            "{l:?} in\n{log}"
        );
    }
    lines
}

#[test]
fn a_line_cut_short_by_a_full_disk_is_ended_not_continued_by_the_next() {
    let h = Host::new("short-write");
    let earlier = "ts=2026-01-01T00:00:00.000Z level=info event=earlier\n".repeat(20);
    h.t.write("agent.log", &earlier);
    let cfg = h.config("", "");
    let err_path = h.t.join("stderr");
    let mut cmd = Command::new(bin());
    cmd.args(["-c", cfg.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap());
    // The first line (the start event) gets 30 bytes in; then the disk is "full".
    with_file_size_limit(&mut cmd, earlier.len() as u64 + 30);
    let mut agent = Service(cmd.spawn().expect("spawn"));
    let stderr = || std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        wait_for(Duration::from_secs(10), || stderr()
            .contains("what=log_file")),
        "{}",
        h.log()
    );
    raise_file_size_limit(&agent.0);
    // The file's own failure and recovery are told on the other sinks (stderr).
    assert!(
        wait_for(Duration::from_secs(10), || stderr()
            .contains("status=recovered")),
        "{}",
        h.log()
    );
    signal(&agent.0, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut agent.0, Duration::from_secs(10)).code(),
        Some(0)
    );
    let told = events(&stderr(), "event=");
    assert_eq!(told.len(), 2, "{told:?}");
    assert_eq!(
        told[0],
        log_file_error(&h.p("agent.log"), "errno=EFBIG error=\"File too large\"")
    );
    let recovered = format!(
        "level=warn event=error what=log_file status=recovered path={} lost=",
        h.p("agent.log")
    );
    assert!(told[1].starts_with(&recovered), "{told:?}");
    let log = h.log();
    let cut_at = earlier.len() + 30;
    assert!(log.starts_with(&earlier));
    assert!(log[earlier.len()..].starts_with("ts="), "{log}");
    assert_eq!(
        &log[cut_at..cut_at + 1],
        "\n",
        "the cut line is ended:\n{log}"
    );
    let lines = whole_lines_after(&log, cut_at + 1);
    assert!(lines.last().unwrap().contains(" event=stop "), "{log}");
}

#[test]
fn a_line_an_earlier_run_left_cut_short_is_ended_before_the_next() {
    let h = Host::new("short-once");
    let cut = "ts=2026-01-01T00:00:00.000Z level=info event=sam";
    h.t.write("agent.log", cut);
    let (code, _, err) = once(&h.config("", ""));
    assert_eq!((code, err.as_str()), (UNKNOWN, ""));
    let log = h.log();
    assert!(log.starts_with(&format!("{cut}\n")), "{log}");
    let lines = whole_lines_after(&log, cut.len() + 1);
    assert!(lines[0].contains(" event=sample "), "{log}");
}

#[test]
fn a_log_file_that_cannot_be_written_is_reported_once_on_stderr() {
    let h = Host::new("full");
    // The log is past the file size limit: every write fails (EFBIG), as on a full
    // disk, while the small metrics file still shows the cycles go on.
    h.t.write("agent.log", "ts=0 level=info event=earlier\n".repeat(400));
    let cfg = h.config(&format!("metrics_file = {}", h.p("m.prom")), "");
    let mut cmd = Command::new(bin());
    cmd.args(["-c", cfg.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    with_file_size_limit(&mut cmd, 8192);
    let mut agent = Service(cmd.spawn().expect("spawn"));
    let mut stderr = agent.0.stderr.take().unwrap();
    let cycles = || {
        h.t.read("m.prom")
            .contains("\nsystem_agent_cycles_total 4\n")
    };
    assert!(
        wait_for(Duration::from_secs(10), cycles),
        "{}",
        h.t.read("m.prom")
    );
    signal(&agent.0, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut agent.0, Duration::from_secs(10)).code(),
        Some(0)
    );
    let mut err = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut err).unwrap();
    assert_eq!(
        events(&err, "event="),
        vec![log_file_error(
            &h.p("agent.log"),
            "errno=EFBIG error=\"File too large\""
        )],
        "{err}"
    );
}

/// An untrusted `[paths] proc` tree: FIFOs where a process's `stat`, `status` and
/// `cmdline` would be, and where `/proc/meminfo` would be. The process scan (run
/// because memory is high) and the host sample skip or report them, never wait.
#[test]
fn fifos_in_a_fixture_proc_tree_never_block_the_scan_or_the_sample() {
    let h = Host::new("proc-fifos");
    h.t.write("proc/meminfo", proc_meminfo(97));
    for f in ["stat", "status", "cmdline"] {
        std::fs::create_dir_all(h.t.join("proc/4242")).unwrap();
        mkfifo(&h.t.join(&format!("proc/4242/{f}")));
    }
    let cfg = h.config("top = 3", "");
    let (code, out, err) = once(&cfg);
    assert_eq!(code, 2, "{out}{err}");
    assert!(
        out.starts_with("SYSTEM-AGENT CRITICAL - mem 97.0%"),
        "{out}"
    );
    std::fs::remove_file(h.t.join("proc/meminfo")).unwrap();
    mkfifo(&h.t.join("proc/meminfo"));
    let (code, out, err) = once(&cfg);
    assert_eq!(code, UNKNOWN, "{out}{err}");
    assert!(out.contains("mem unknown (cannot read "), "{out}");
}
