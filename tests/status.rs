//! The service's status file and `--status`, which repeats it to a monitoring
//! system running as another user: the line and its exit status while the
//! service cycles, CRITICAL once it stops, UNKNOWN for a file that is missing,
//! unusable or not a regular file, every capability dropped first; SIGUSR1's
//! `event=status` lines; and the real NRPE server running `--status` as user
//! `nagios` for `check_nrpe`. Services, NRPE and children are this test's own,
//! stopped by pid; files live in the test's temp dirs.

mod common;

use common::*;
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `--status FILE`, bounded.
fn status(file: &Path) -> Run {
    run_bounded(&["--status", file.to_str().expect("a UTF-8 path")])
}

/// A host whose memory is at 96% (CRITICAL at once), CPU counters seeded so the
/// service's first cycle reads the CPU at 10%.
fn critical_host(tag: &str, interval: &'static str) -> Host {
    let h = Host::new(tag).interval(interval);
    h.mem(96);
    h.seed_cpu(0, 0, Duration::from_secs(60));
    h
}

/// `SYSTEM-AGENT CRITICAL - no cycle for Ns (is the service running?)`.
fn is_stale_line(out: &str) -> bool {
    out.strip_prefix("SYSTEM-AGENT CRITICAL - no cycle for ")
        .and_then(|r| r.strip_suffix("s (is the service running?)\n"))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[test]
fn status_repeats_the_services_line_then_turns_critical_when_it_stops() {
    // Cycles a second apart: fresh for three seconds, so a loaded machine does not
    // make the line stale between the file's write and the check.
    let h = critical_host("status-service", "1s");
    let cfg = h.config(Ini::agent("top = 0"));
    let agent = h.spawn(&cfg);
    let file = h.path("agent.status");
    // From the second cycle on the line stays the same (the fixture's CPU
    // counters stand still); the third's sample line follows the second's file.
    h.wait_cycles(3);
    let text = h.read("agent.status");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("line "))
        .expect("a line record")
        .to_string();
    assert!(
        line.starts_with("SYSTEM-AGENT CRITICAL - mem 96.0%"),
        "{text}"
    );
    assert!(text.starts_with("system-agent-status 1\nsaved "), "{text}");
    assert!(
        text.contains("\ninterval 1000000000\nstate 2\nline "),
        "{text}"
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o644);

    let run = status(&file);
    assert_eq!(
        (run.out, run.code, run.err),
        (format!("{line}\n"), 2, String::new())
    );

    assert_eq!(agent.stop(), 0);
    // Stale after three intervals without a cycle.
    let mut last = String::new();
    let stale = wait_for(LIMIT, || {
        let run = status(&file);
        last = format!("{} {}", run.code, run.out);
        run.code == 2 && is_stale_line(&run.out)
    });
    assert!(stale, "never stale: {last}");
}

#[test]
fn the_status_file_is_readable_by_all_whatever_the_umask() {
    use std::os::unix::process::CommandExt;
    let h = critical_host("status-umask", "200ms");
    let cfg = h.config(Ini::default());
    let mut cmd = Command::new(bin());
    cmd.arg("-c")
        .arg(&cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0o077);
            Ok(())
        });
    }
    let agent = Service::start(cmd);
    h.wait_cycles(1);
    let file = h.path("agent.status");
    assert!(wait_for(LIMIT, || file.exists()), "{}", h.log());
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o644);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_one_shot_leaves_the_status_file_to_the_service() {
    let h = critical_host("status-once", "200ms");
    let cfg = h.config(Ini::default());
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{}", run.out);
    assert!(!h.path("agent.status").exists());
}

#[test]
fn a_missing_unusable_or_odd_status_file_is_unknown() {
    let h = Host::new("status-bad");
    let p = |rel: &str| h.p(rel);
    let unknown = |file: &str, what: &str, why: &str| {
        format!("SYSTEM-AGENT UNKNOWN - {what} {file}: {why}\n")
    };
    let cases = [
        (
            p("missing"),
            unknown(
                &p("missing"),
                "cannot read status file",
                "No such file or directory",
            ),
        ),
        (
            h.write("garbage", "hello\n").display().to_string(),
            unknown(
                &p("garbage"),
                "unusable status file",
                "not a version 1 status file",
            ),
        ),
        (
            h.write("cut", "system-agent-status 1\nsaved 1\n")
                .display()
                .to_string(),
            unknown(&p("cut"), "unusable status file", "truncated"),
        ),
        (
            h.write("big", vec![b'x'; 20_000]).display().to_string(),
            unknown(
                &p("big"),
                "cannot read status file",
                "20000 bytes, over the 16384-byte limit",
            ),
        ),
        (
            p("proc"),
            unknown(&p("proc"), "cannot read status file", "Is a directory"),
        ),
    ];
    for (file, want) in cases {
        let run = status(Path::new(&file));
        assert_eq!((run.out, run.code), (want, 3), "{file}");
    }
    // A FIFO is not opened for reading (nothing blocks), a symlink not followed.
    mkfifo(&h.path("fifo"));
    let run = status(&h.path("fifo"));
    let want = unknown(
        &p("fifo"),
        "cannot read status file",
        "a FIFO, not a regular file",
    );
    assert_eq!((run.out, run.code), (want, 3));
    std::os::unix::fs::symlink(h.path("garbage"), h.path("link")).unwrap();
    let run = status(&h.path("link"));
    let want = unknown(
        &p("link"),
        "cannot read status file",
        "a symbolic link, not a regular file",
    );
    assert_eq!((run.out, run.code), (want, 3));
    // A bad command line is UNKNOWN too, as a check's must be.
    let run = run_bounded(&["--status", "--once"]);
    assert_eq!(
        (run.out.as_str(), run.code),
        (
            "SYSTEM-AGENT UNKNOWN - bad command line: --status takes no other option\n",
            3
        )
    );
}

#[test]
fn status_without_a_file_reads_the_default_path() {
    let default = Path::new("/var/lib/aion/system_agent.status");
    if default.exists() {
        eprintln!("skipped: {} exists on this host", default.display());
        return;
    }
    let run = run_bounded(&["--status"]);
    assert_eq!(
        (run.out.as_str(), run.code),
        (
            "SYSTEM-AGENT UNKNOWN - cannot read status file /var/lib/aion/system_agent.status: \
             No such file or directory\n",
            3
        )
    );
}

/// A fresh status file's text with this line and state.
fn fresh(line: &str, state: u8) -> String {
    format!(
        "system-agent-status 1\nsaved {}\ninterval 60000000000\nstate {state}\nline {line}\nend\n",
        now_ns()
    )
}

#[test]
fn status_drops_every_capability_before_it_reads() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let h = Host::new("status-caps");
    // A file only its owner (nobody) may read: root reads it only through
    // CAP_DAC_OVERRIDE or CAP_DAC_READ_SEARCH, which --status must not hold.
    let file = h.write(
        "private.status",
        fresh("SYSTEM-AGENT OK - all checks ok", 0),
    );
    chown(&file, 65534);
    chmod(&file, 0o600);
    let denied = format!(
        "SYSTEM-AGENT UNKNOWN - cannot read status file {}: Permission denied\n",
        file.display()
    );
    let run = status(&file);
    assert_eq!(
        (run.out.as_str(), run.code),
        (denied.as_str(), 3),
        "as root"
    );

    // A copy of the binary with the agent's file capabilities, run by nagios.
    let copy = h.path("bin/system-agent");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(bin(), &copy).unwrap();
    chmod(&copy, 0o755);
    let caps = "cap_kill,cap_dac_read_search,cap_dac_override,cap_fowner+ep";
    let set = Command::new("setcap").arg(caps).arg(&copy).status();
    if !set.is_ok_and(|s| s.success()) {
        eprintln!("skipped the file-capability half: setcap failed here");
        return;
    }
    chown(&file, 0);
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nagios", "--regid=nagios", "--clear-groups", "--"])
        .arg(&copy)
        .arg("--status")
        .arg(&file);
    let run = run_command(cmd);
    assert_eq!(
        (run.out.as_str(), run.code),
        (denied.as_str(), 3),
        "as nagios: {}",
        run.err
    );
}

#[test]
fn sigusr1_logs_status_lines_and_rewrites_the_file_without_a_cycle() {
    let h = critical_host("status-usr1", "1h");
    let cfg = h.config(Ini {
        agent: "top = 0",
        extra: "[alert]\ncommand = /bin/true\n\n\
                [task.never]\ncommand = /bin/true\nwhen_cpu_below = 0\n",
        ..Ini::default()
    });
    let agent = h.spawn(&cfg);
    h.must_see(" event=sample ", 1);
    let file = h.path("agent.status");
    assert!(wait_for(LIMIT, || file.exists()), "{}", h.log());
    let before = h.read("agent.status");
    std::fs::remove_file(&file).unwrap();

    agent.signal(libc::SIGUSR1);
    h.must_see("event=status feature=status_file", 1);
    assert_eq!(
        h.read("agent.status"),
        before,
        "the same cycle's file, again"
    );
    let lines: Vec<String> = h
        .events(" event=status ")
        .into_iter()
        .map(|l| match l.split_once(" next_cycle_in=") {
            // The agent's line: when the next cycle comes depends on the clock.
            Some((head, tail)) => {
                let rest = tail.split_once(' ').map_or("", |(_, r)| r);
                format!("{head} next_cycle_in=* {rest}")
            }
            None => l,
        })
        .collect();
    let pid = agent.pid();
    let path = h.p("agent.status");
    assert_eq!(
        lines,
        vec![
            format!(
                "level=info event=status overall=critical cycles=1 interval=1h next_cycle_in=* pid={pid}"
            ),
            "level=info event=status metric=cpu value=10.0 level=ok state=ok threshold=80 held=1 for_cycles=3".into(),
            "level=info event=status metric=mem value=96.0 level=critical state=ok threshold=95 held=1 for_cycles=3".into(),
            "level=info event=status feature=top active=no".into(),
            "level=info event=status feature=relief active=no".into(),
            "level=info event=status feature=reaper active=no".into(),
            "level=info event=status feature=cleanup active=no".into(),
            "level=info event=status feature=deleted_open active=no".into(),
            "level=info event=status feature=audit active=no".into(),
            "level=info event=status feature=tasks active=yes tasks=1 next=never due_in=0 idle=0 idle_cycles=3".into(),
            "level=info event=status feature=alerts active=yes alerting=0 cooling=0 retrying=0 deliveries=0".into(),
            "level=info event=status feature=metrics_file active=no".into(),
            format!("level=info event=status feature=status_file active=yes path={path} written=yes"),
        ],
        "{}",
        h.log()
    );
    // No cycle ran for it (the next is an hour away), and nothing was reloaded.
    assert_eq!(h.cycles(), 1);
    assert_eq!(h.count(" event=reload "), 0);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn sigusr1_neither_skips_nor_adds_cycles_and_a_one_shot_ignores_it() {
    let h = Host::new("status-usr1-loop").interval("100ms");
    let cfg = h.config(Ini::default());
    let agent = h.spawn(&cfg);
    h.wait_cycles(2);
    for n in 1..=3 {
        agent.signal(libc::SIGUSR1);
        h.must_see("event=status feature=status_file", n);
        h.wait_cycles(2);
    }
    assert_eq!(agent.stop(), 0);

    // A --once run waiting for its task: SIGUSR1 (meant for the service) does not
    // end it.
    let flag = h.path("release");
    let task = h.script(
        "task.sh",
        &format!("while [ ! -e {} ]; do sleep 0.05; done\n", flag.display()),
    );
    let cfg = h.config(Ini::extra(&format!(
        "[task.wait]\ncommand = {task}\nidle_cycles = 0\nwhen_cpu_below = 100\n"
    )));
    let mut once = Command::new(bin())
        .args(["-c", cfg.to_str().unwrap(), "--once"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    h.must_see(" event=task_start name=wait", 1);
    signal(&once, libc::SIGUSR1);
    std::fs::write(&flag, "").unwrap();
    let exit = wait_exit(&mut once, LIMIT);
    assert!(exit.code().is_some(), "ended by a signal: {exit}");
    h.must_see(" event=task_done name=wait exit=0", 1);
}

/// The NRPE server on a loopback port, from a config of this test's own, run
/// in the foreground as this test's child; stopped by its pid when dropped.
struct Nrpe {
    child: Child,
    port: u16,
}

impl Nrpe {
    /// Serves `command[system_agent]=COMMAND` as user nagios, without SSL.
    fn start(dir: &Path, command: &str) -> Nrpe {
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let cfg = dir.join("nrpe.cfg");
            std::fs::write(
                &cfg,
                format!(
                    "server_address=127.0.0.1\nserver_port={port}\nallowed_hosts=127.0.0.1\n\
                     nrpe_user=nagios\nnrpe_group=nagios\ndont_blame_nrpe=0\n\
                     command_timeout=30\ncommand[system_agent]={command}\n"
                ),
            )
            .unwrap();
            let mut child = Command::new("/usr/sbin/nrpe")
                .args(["-c", cfg.to_str().unwrap(), "-f", "-n"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("nrpe (Debian package nagios-nrpe-server)");
            let up = wait_for(LIMIT, || {
                TcpStream::connect(("127.0.0.1", port)).is_ok()
                    || !matches!(child.try_wait(), Ok(None))
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return Nrpe { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("nrpe did not start on a loopback port");
    }

    /// `check_nrpe -c system_agent`: its output and exit code.
    fn check(&self) -> (String, i32) {
        let mut cmd = Command::new("/usr/lib/nagios/plugins/check_nrpe");
        cmd.args([
            "-H",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-n",
            "-c",
            "system_agent",
        ]);
        let run = run_command(cmd);
        (run.out, run.code)
    }
}

impl Drop for Nrpe {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

#[test]
fn nrpe_runs_status_as_nagios_and_reports_the_service() {
    if !is_root() {
        eprintln!("skipped: NRPE switches to user nagios, which needs root");
        return;
    }
    let h = critical_host("status-nrpe", "1s");
    let cfg = h.config(Ini::agent("top = 0"));
    // What scripts/install ships for nagios: a copy of the binary anyone may run,
    // without file capabilities.
    let copy = h.path("bin/system-agent-status");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    std::fs::copy(bin(), &copy).unwrap();
    chmod(&copy, 0o755);
    let file = h.path("agent.status");
    let nrpe = Nrpe::start(
        h.path("").as_path(),
        &format!("{} --status {}", copy.display(), file.display()),
    );
    // Not running yet: no status file.
    let (out, code) = nrpe.check();
    assert_eq!(code, 3, "{out}");
    assert!(
        out.starts_with("SYSTEM-AGENT UNKNOWN - cannot read status file "),
        "{out}"
    );

    let agent = h.spawn(&cfg);
    // The line is the same from the second cycle on (see above).
    h.wait_cycles(3);
    let (out, code) = nrpe.check();
    assert_eq!(code, 2, "{out}");
    assert!(
        out.starts_with("SYSTEM-AGENT CRITICAL - mem 96.0%"),
        "{out}"
    );
    // Through NRPE, the service's own line (the same from its second cycle on).
    let text = h.read("agent.status");
    assert!(text.contains(&format!("\nline {out}")), "{out}\n{text}");

    assert_eq!(agent.stop(), 0);
    let mut last = String::new();
    let stale = wait_for(LIMIT, || {
        let (out, code) = nrpe.check();
        last = format!("{code} {out}");
        code == 2 && is_stale_line(&out)
    });
    assert!(stale, "never stale through NRPE: {last}");
}
