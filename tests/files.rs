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
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// What `--once` exits with on these fixtures: their /proc/stat never moves, so
/// the CPU reads as unknown.
const UNKNOWN: i32 = 3;

/// A `--once` run that must say nothing on stderr.
fn quiet_once(h: &Host, cfg: &Path) -> Run {
    let run = h.once(cfg, &[]);
    assert_eq!((run.code, run.err.as_str()), (UNKNOWN, ""), "{}", run.out);
    run
}

// --- the config -------------------------------------------------------------------

#[test]
fn a_config_that_is_a_fifo_is_refused_without_waiting_for_a_writer() {
    let h = Host::new("cfg-fifo");
    let fifo = h.path("fifo.ini");
    mkfifo(&fifo);
    let want = format!(
        "{}: cannot read: a FIFO, not a regular file\n",
        fifo.display()
    );
    let check = run_bounded(&["-c", fifo.to_str().unwrap(), "--check-config"]);
    assert_eq!((check.code, check.err.as_str()), (78, want.as_str()));
    let run = h.once(&fifo, &[]);
    assert_eq!((run.code, run.err.as_str()), (3, want.as_str()));
    assert!(
        run.out
            .starts_with("SYSTEM-AGENT UNKNOWN - invalid configuration: "),
        "{}",
        run.out
    );
}

#[test]
fn a_config_over_one_mebibyte_is_refused_naming_the_file() {
    let h = Host::new("cfg-big");
    // Comments only: valid INI, but no config is this large.
    let line = format!("# {}\n", "x".repeat(1021));
    let path = h.write("big.ini", line.repeat(1024) + "#\n");
    let size = std::fs::metadata(&path).unwrap().len();
    assert_eq!(size, 1024 * 1024 + 2);
    let run = run_bounded(&["-c", path.to_str().unwrap(), "--check-config"]);
    assert_eq!(
        (run.code, run.err),
        (
            78,
            format!(
                "{}: cannot read: {size} bytes, over the 1048576-byte limit\n",
                path.display()
            )
        ),
        "{}",
        run.out
    );
}

// --- log files --------------------------------------------------------------------

/// The one stderr line of a log file that is refused or fails.
fn log_file_error(path: &str, rest: &str) -> String {
    format!("level=error event=error what=log_file path={path} {rest} note=retrying")
}

/// A `--once` run whose log file `log` is refused for `why`: said once on stderr.
fn refused_log(h: &Host, cfg: &Path, log: &str, why: &str) -> Run {
    let run = h.once(cfg, &[]);
    assert_eq!(run.code, UNKNOWN, "{}", run.err);
    let want = log_file_error(log, &format!("error=\"{why}\""));
    assert_eq!(events(&run.err, "event="), vec![want], "{}", run.err);
    run
}

#[test]
fn a_log_file_that_is_a_symlink_is_not_followed_and_said_once_on_stderr_and_syslog() {
    let h = Host::new("log-symlink");
    let victim = h.write("victim", "untouched\n");
    std::fs::create_dir(h.path("logs")).unwrap();
    std::os::unix::fs::symlink(&victim, h.path("logs/agent.log")).unwrap();
    let mut sock = Syslog::bind(&h.path("log.sock"));
    let path = h.p("logs/agent.log");
    let cfg = h.config(Ini::agent(&format!(
        "log_file = {path}\nsyslog = yes\nsyslog_socket = {}",
        h.p("log.sock")
    )));
    let why = "a symbolic link, not a regular file";
    refused_log(&h, &cfg, &path, why);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched\n");
    sock.drain();
    let said: Vec<String> = sock
        .texts()
        .into_iter()
        .filter(|d| d.contains("what=log_file"))
        .collect();
    assert_eq!(said.len(), 1, "{said:?}");
    let want = log_file_error(&path, &format!("error=\"{why}\""));
    assert!(said[0].ends_with(&format!(": {want}")), "{said:?}");
}

#[test]
fn a_log_file_that_is_a_fifo_is_refused_without_waiting_for_a_reader() {
    let h = Host::new("log-fifo");
    mkfifo(&h.path("agent.log"));
    let cfg = h.config(Ini::default());
    refused_log(&h, &cfg, &h.p("agent.log"), "a FIFO, not a regular file");
}

#[test]
fn a_log_directory_others_may_write_is_refused() {
    let h = Host::new("log-dir");
    let dir = h.path("logs");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o775);
    let log = h.p("logs/agent.log");
    let cfg = h.config(Ini::agent(&format!("log_file = {log}")));
    let why = format!(
        "{} is writable by group or others (mode 775)",
        dir.display()
    );
    refused_log(&h, &cfg, &log, &why);
    assert!(!dir.join("agent.log").exists());
}

#[test]
fn a_log_directory_below_one_others_may_write_is_refused_unless_that_one_is_sticky() {
    let h = Host::new("log-parent");
    let open = h.path("open");
    std::fs::create_dir_all(open.join("logs")).unwrap();
    chmod(&open, 0o777);
    let log = h.p("open/logs/agent.log");
    let cfg = h.config(Ini::agent(&format!("log_file = {log}")));
    let why = format!(
        "{} is writable by group or others and not sticky (mode 777)",
        open.display()
    );
    refused_log(&h, &cfg, &log, &why);
    assert!(!Path::new(&log).exists());
    let logged = || {
        quiet_once(&h, &cfg);
        assert!(
            std::fs::read_to_string(&log)
                .unwrap()
                .contains(" event=sample ")
        );
    };
    // Sticky, as /tmp is: no one can rename what is not theirs there.
    chmod(&open, 0o1777);
    logged();
    // Root's, writable by its group only, as Ubuntu's /var/log (root:syslog 0775).
    std::fs::remove_file(&log).unwrap();
    chmod(&open, 0o775);
    logged();
}

#[test]
fn a_log_file_of_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to give a file away");
        return;
    }
    let h = Host::new("log-owner");
    let log = h.write("agent.log", "");
    std::os::unix::fs::chown(&log, Some(65534), None).unwrap();
    let cfg = h.config(Ini::default());
    let why = format!("{} is owned by uid 65534, not root", log.display());
    refused_log(&h, &cfg, &h.p("agent.log"), &why);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
}

// --- atomic writes ----------------------------------------------------------------

#[test]
fn a_fifo_planted_where_the_metrics_file_was_written_first_cannot_block() {
    let h = Host::new("tmp-fifo");
    std::fs::create_dir(h.path("m")).unwrap();
    mkfifo(&h.path("m/m.prom.tmp"));
    let cfg = h.config(Ini::agent(&format!("metrics_file = {}", h.p("m/m.prom"))));
    quiet_once(&h, &cfg);
    assert!(
        h.read("m/m.prom")
            .contains("\nsystem_agent_cycles_total 1\n")
    );
    let names: Vec<_> = std::fs::read_dir(h.path("m"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "no temporary file left behind: {names:?}");
}

#[test]
fn a_hard_link_planted_where_a_state_file_was_written_first_is_left_alone() {
    let h = Host::new("tmp-link");
    let victim = h.write("victim", "precious\n");
    std::fs::create_dir(h.path("state")).unwrap();
    std::fs::hard_link(&victim, h.path("state/state.tmp")).unwrap();
    quiet_once(&h, &h.config(Ini::default()));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(h.read("state/state").starts_with("system-agent-state 1\n"));
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
        h.write(f, "x");
    }
    let foreign = h.write(&format!("m/.m.prom.sa-tmp-{}", "f".repeat(16)), "x");
    if is_root() {
        std::os::unix::fs::chown(&foreign, Some(65534), None).unwrap();
    }
    let cfg = h.config(Ini::agent(&format!("metrics_file = {}", h.p("m/m.prom"))));
    quiet_once(&h, &cfg);
    for f in &stale {
        assert!(!h.path(f).exists(), "{f} should be gone");
    }
    for f in &kept {
        assert!(h.path(f).exists(), "{f} should be kept");
    }
    assert_eq!(foreign.exists(), is_root(), "another user's file is kept");
}

// --- state files ------------------------------------------------------------------

fn state_error(path: &str, error: &str) -> String {
    format!(
        "level=warn event=error what=state error={error} path={path} effect=\"starting fresh; the file will be replaced\""
    )
}

/// A quiet `--once` run that reports `state/state` unreadable for `error` (and
/// nothing else) and leaves a good one in its place.
fn refused_state(h: &Host, cfg: &Path, error: &str) {
    quiet_once(h, cfg);
    assert_eq!(
        h.events("event=error"),
        vec![state_error(&h.p("state/state"), error)]
    );
    assert!(h.read("state/state").starts_with("system-agent-state 1\n"));
}

#[test]
fn a_state_file_that_is_a_fifo_neither_hangs_once_nor_the_service() {
    let h = Host::new("state-fifo");
    std::fs::create_dir(h.path("state")).unwrap();
    mkfifo(&h.path("state/state"));
    let cfg = h.config(Ini::default());
    refused_state(&h, &cfg, "\"a FIFO, not a regular file\"");
    // The service, too, starts and cycles.
    std::fs::remove_file(h.path("state/state")).unwrap();
    mkfifo(&h.path("state/state"));
    let agent = h.spawn(&cfg);
    h.must_see("event=sample", 3);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_state_file_over_its_cap_is_refused_unread() {
    let h = Host::new("state-big");
    std::fs::create_dir(h.path("state")).unwrap();
    let f = std::fs::File::create(h.path("state/state")).unwrap();
    f.set_len(100 << 20).unwrap(); // sparse: costs no disk
    refused_state(
        &h,
        &h.config(Ini::default()),
        "\"104857600 bytes, over the 65536-byte limit\"",
    );
    assert!(std::fs::metadata(h.path("state/state")).unwrap().len() < 4096);
}

#[test]
fn a_state_file_that_is_a_symlink_is_not_followed() {
    let h = Host::new("state-link");
    let elsewhere = h.write("elsewhere", "system-agent-state 1\nsaved 1\nbtime 1\nend\n");
    std::fs::create_dir(h.path("state")).unwrap();
    std::os::unix::fs::symlink(&elsewhere, h.path("state/state")).unwrap();
    let cfg = h.config(Ini::default());
    quiet_once(&h, &cfg);
    assert_eq!(
        h.events("event=error"),
        vec![state_error(
            &h.p("state/state"),
            "\"a symbolic link, not a regular file\""
        )]
    );
    assert!(
        !std::fs::symlink_metadata(h.path("state/state"))
            .unwrap()
            .is_symlink()
    );
}

#[test]
fn a_state_file_that_cannot_be_read_is_said_so() {
    let h = Host::new("state-dir-entry");
    std::fs::create_dir_all(h.path("state/tasks")).unwrap();
    let cfg = h.config(Ini::extra(
        "[task.t]\ncommand = /bin/true\nwhen_cpu_below = 0\n",
    ));
    quiet_once(&h, &cfg);
    let lines = h.events("what=state");
    assert_eq!(
        lines[0],
        state_error(&h.p("state/tasks"), "\"Is a directory\""),
        "{lines:?}"
    );
}

#[test]
fn a_state_dir_others_may_write_is_refused() {
    let h = Host::new("state-open");
    let dir = h.path("state");
    std::fs::create_dir(&dir).unwrap();
    chmod(&dir, 0o777);
    let cfg = h.config(Ini::default());
    let why = format!(
        "refused {}: {} is writable by group or others (mode 777)",
        dir.display(),
        dir.display()
    );
    let service = run_bounded(&["-c", cfg.to_str().unwrap()]);
    assert_eq!(
        (service.code, service.err),
        (1, format!("system-agent: cannot start: {why}\n"))
    );
    // `--once` still checks, with its actions off, and says why.
    quiet_once(&h, &cfg);
    let start = h.events("event=start");
    assert_eq!(start.len(), 1, "{}", h.log());
    assert!(
        start[0].ends_with(&format!(" actions=off actions_off=\"{why}\"")),
        "{}",
        start[0]
    );
    assert!(!dir.join("state").exists());
}

// --- failing outputs are reported once --------------------------------------------

/// Runs the service on `cfg` for six cycles with an output failing, lets `fix`
/// mend it, and waits for the recovery line; returns the lines with `what`.
fn fail_then_recover(h: &Host, cfg: &Path, fix: impl FnOnce(), what: &str) -> Vec<String> {
    let agent = h.spawn(cfg);
    h.must_see("event=sample", 6);
    fix();
    assert!(
        wait_for(LIMIT, || h.count("status=recovered") == 1),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
    h.events(what)
}

#[test]
fn a_missing_metrics_directory_is_reported_once_and_so_is_its_recovery() {
    let h = Host::new("metrics-dir");
    let prom = h.p("nodir/m.prom");
    let cfg = h.config(Ini::agent(&format!("metrics_file = {prom}")));
    let fix = || std::fs::create_dir(h.path("nodir")).unwrap();
    let lines = fail_then_recover(&h, &cfg, fix, "what=metrics_file");
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
        h.read("nodir/m.prom")
            .contains("system_agent_cycles_total ")
    );
}

#[test]
fn a_state_path_that_is_a_directory_is_reported_once_and_so_is_its_recovery() {
    let h = Host::new("state-isdir");
    std::fs::create_dir_all(h.path("state/state")).unwrap();
    // A level that changes, so the service wants to write its state each cycle.
    let cfg = h.config(Ini {
        thresholds: "mem_warn = 10\nmem_crit = 90\nfor_cycles = 1000",
        ..Ini::default()
    });
    let fix = || std::fs::remove_dir(h.path("state/state")).unwrap();
    let lines = fail_then_recover(&h, &cfg, fix, "what=state");
    let path = h.p("state/state");
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

/// The service on `cfg` with a file size limit of `limit` bytes (soft; the hard
/// limit stays unlimited so it can be raised again) and SIGXFSZ ignored: a write
/// past the limit is cut short there, and the next fails with EFBIG, as on a full
/// disk. Its stderr goes to `stderr`.
fn service_with_file_size_limit(cfg: &Path, limit: u64, stderr: Stdio) -> Service {
    let mut cmd = Command::new(bin());
    cmd.arg("-c")
        .arg(cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr);
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
    Service::start(cmd)
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
    h.write("agent.log", &earlier);
    let cfg = h.config(Ini::default());
    let err_path = h.path("stderr");
    // The first line (the start event) gets 30 bytes in; then the disk is "full".
    let stderr_file = std::fs::File::create(&err_path).unwrap();
    let agent = service_with_file_size_limit(&cfg, earlier.len() as u64 + 30, stderr_file.into());
    let stderr = || std::fs::read_to_string(&err_path).unwrap_or_default();
    assert!(
        wait_for(LIMIT, || stderr().contains("what=log_file")),
        "{}",
        h.log()
    );
    raise_file_size_limit(&agent.0);
    // The file's own failure and recovery are told on the other sinks (stderr).
    assert!(
        wait_for(LIMIT, || stderr().contains("status=recovered")),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
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
    h.write("agent.log", cut);
    quiet_once(&h, &h.config(Ini::default()));
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
    h.write("agent.log", "ts=0 level=info event=earlier\n".repeat(400));
    let cfg = h.config(Ini::agent(&format!("metrics_file = {}", h.p("m.prom"))));
    let mut agent = service_with_file_size_limit(&cfg, 8192, Stdio::piped());
    let mut stderr = agent.0.stderr.take().unwrap();
    let cycles = || h.read("m.prom").contains("\nsystem_agent_cycles_total 4\n");
    assert!(wait_for(LIMIT, cycles), "{}", h.read("m.prom"));
    assert_eq!(agent.stop(), 0);
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
    h.mem(97);
    for f in ["stat", "status", "cmdline"] {
        std::fs::create_dir_all(h.path("proc/4242")).unwrap();
        mkfifo(&h.path(&format!("proc/4242/{f}")));
    }
    let cfg = h.config(Ini::agent("top = 3"));
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{}{}", run.out, run.err);
    assert!(
        run.out.starts_with("SYSTEM-AGENT CRITICAL - mem 97.0%"),
        "{}",
        run.out
    );
    std::fs::remove_file(h.path("proc/meminfo")).unwrap();
    mkfifo(&h.path("proc/meminfo"));
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, UNKNOWN, "{}{}", run.out, run.err);
    assert!(run.out.contains("mem unknown (cannot read "), "{}", run.out);
}
