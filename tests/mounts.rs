//! A hung FUSE mount must not stall the agent. Each test mounts a bindfs of its own
//! temp dir inside a private mount namespace, and hangs it by stopping the bindfs
//! daemon (SIGSTOP: every call on the mount then waits, as on a dead NFS server).
//! The daemon's pid comes from the namespace shell this test started (checked to be
//! that shell's child), never from a name; at the end it gets SIGCONT and the mount
//! is unmounted. The agent runs inside the namespace with `nsenter`, always with a
//! bounded wait, and is killed if it does not finish: without the prober, its first
//! `statvfs` of the mount blocks for as long as the daemon is stopped.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long any one step may take before the test gives up: far beyond what it
/// needs (about a second), so a busy machine does not fail it, yet a stalled agent
/// does not hang the suite.
const LIMIT: Duration = Duration::from_secs(30);

/// A bindfs mount of `t/src` on `t/mnt` in a private mount namespace, held by a
/// shell this test started; its bindfs daemon runs in the foreground as the
/// shell's child.
struct Fuse {
    shell: Child,
    stdin: Option<ChildStdin>,
    daemon: i32,
}

impl Fuse {
    fn new(t: &TempDir) -> Fuse {
        std::fs::create_dir_all(t.join("src")).expect("src dir");
        std::fs::create_dir_all(t.join("mnt")).expect("mnt dir");
        // On a line from the test (or its stdin closing): SIGCONT, unmount, done.
        let script = format!(
            "set -e\nsrc='{src}'; mnt='{mnt}'\n\
             bindfs -f \"$src\" \"$mnt\" &\ndaemon=$!\necho \"daemon $daemon\"\n\
             i=0; until grep -q \" $mnt \" /proc/self/mountinfo; do i=$((i+1)); [ $i -lt 600 ]; sleep 0.05; done\n\
             echo ready\nread -r _ || true\nkill -CONT $daemon 2>/dev/null || true\n\
             fusermount -u \"$mnt\" 2>/dev/null || umount -l \"$mnt\"\nwait\n",
            src = t.join("src").display(),
            mnt = t.join("mnt").display(),
        );
        let mut shell = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn unshare");
        let stdin = shell.stdin.take();
        let mut out = BufReader::new(shell.stdout.take().expect("stdout"));
        let mut line = String::new();
        let _ = out.read_line(&mut line);
        let daemon: i32 = line
            .strip_prefix("daemon ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no daemon pid from the namespace shell: {line:?}"));
        line.clear();
        let _ = out.read_line(&mut line);
        assert_eq!(line, "ready\n", "bindfs did not mount");
        let fuse = Fuse {
            shell,
            stdin,
            daemon,
        };
        assert_eq!(
            parent_of(daemon),
            Some(fuse.shell.id() as i32),
            "the daemon is the namespace shell's child"
        );
        fuse
    }

    /// SIGSTOP or SIGCONT to the bindfs daemon (our shell's child, checked again).
    fn signal_daemon(&self, sig: i32) {
        assert_eq!(parent_of(self.daemon), Some(self.shell.id() as i32));
        // SAFETY: kill(2) on the daemon this test's shell started.
        assert_eq!(unsafe { libc::kill(self.daemon, sig) }, 0);
    }

    /// The agent, run inside the namespace.
    fn agent(&self, cfg: &str, once: bool) -> Agent {
        let pid = self.shell.id().to_string();
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid, "-m", "--", bin(), "-c", cfg]);
        if once {
            c.arg("--once");
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("nsenter system-agent");
        Agent(Some(child))
    }
}

/// The agent (nsenter execs it, so this is its pid); killed if a test fails
/// before it exits.
struct Agent(Option<Child>);

impl Agent {
    fn signal(&self, sig: i32) {
        if let Some(c) = &self.0 {
            signal(c, sig);
        }
    }

    /// Waits (bounded) for the agent to exit and returns its exit code and stdout;
    /// fails the test if it does not exit in time.
    fn finish(mut self, what: &str) -> (i32, String) {
        let mut child = self.0.take().expect("running");
        if !wait_for(LIMIT, || matches!(child.try_wait(), Ok(Some(_)))) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {LIMIT:?}, stalled by the hung mount");
        }
        let out = child.wait_with_output().expect("output");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code().unwrap_or(-1), stdout)
    }
}

impl Drop for Agent {
    /// SIGKILL, and a bounded wait: an agent stuck in a call the stopped daemon
    /// already took dies only once the daemon goes on (when `Fuse` is dropped).
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = c.kill();
            wait_for(Duration::from_secs(5), || {
                matches!(c.try_wait(), Ok(Some(_)))
            });
        }
    }
}

impl Drop for Fuse {
    fn drop(&mut self) {
        // SAFETY: as in `signal_daemon`; a daemon already gone makes it fail harmlessly.
        unsafe { libc::kill(self.daemon, libc::SIGCONT) };
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
        if !wait_for(LIMIT, || matches!(self.shell.try_wait(), Ok(Some(_)))) {
            let _ = self.shell.kill();
        }
        let _ = self.shell.wait();
    }
}

/// The parent pid of `pid`, from `/proc/PID/stat`.
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(1)?.parse().ok()
}

/// A fixture host: proc/{stat,meminfo,loadavg} (CPU 10%, memory 50%), `proc/self`
/// pointing at the real one (so the agent reads its own mountinfo, in the
/// namespace), CPU counters saved a minute ago, and a config watching the mount
/// (disk and inode limits at 100%, so only a failed reading is not OK), with
/// `extra` sections.
fn host(t: &TempDir, extra: &str) -> String {
    t.write("proc/stat", proc_stat(200, 1800));
    t.write("proc/meminfo", proc_meminfo(50));
    t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
    std::os::unix::fs::symlink("/proc/self", t.join("proc/self")).expect("proc/self");
    t.write("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let saved = now.as_nanos() - Duration::from_secs(60).as_nanos();
    t.write(
        "state/state",
        format!(
            "system-agent-state 1\nsaved {saved}\nbtime 1700000000\ncpu 100 0 0 900 0 0 0 0\nend\n"
        ),
    );
    let p = |rel: &str| t.join(rel).display().to_string();
    let extra = format!(
        "[thresholds]\ndisk_warn = 100\ndisk_crit = 100\ninode_warn = 100\ninode_crit = 100\n\n{extra}"
    );
    let cfg = fixture_ini(t, "200ms", "", &extra);
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("mounts =\n", &format!("mounts = {}\n", p("mnt")));
    std::fs::write(&cfg, text).unwrap();
    cfg.display().to_string()
}

fn label(t: &TempDir) -> String {
    t.join("mnt")
        .display()
        .to_string()
        .trim_matches('/')
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Lines of `log` containing `needle`, without `ts=…`.
fn events(log: &str, needle: &str) -> Vec<String> {
    log.lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.split_once(' ').map_or("", |(_, r)| r).to_string())
        .collect()
}

fn log(t: &TempDir) -> String {
    t.read("agent.log")
}

fn rule(t: &TempDir) -> String {
    format!(
        "[cleanup.onfuse]\npaths = {}\nwhen = always\nolder_than = 0s\n",
        t.join("mnt").display()
    )
}

#[test]
fn once_reports_a_hung_mount_as_unknown_and_skips_cleanup_there() {
    let t = TempDir::new("mounts-once");
    let cfg = host(&t, &rule(&t));
    let fuse = Fuse::new(&t);
    t.write("src/old.log", "x");
    fuse.signal_daemon(libc::SIGSTOP);
    let (code, out) = fuse.agent(&cfg, true).finish("--once");
    let mnt = t.join("mnt").display().to_string();
    let why = format!("cannot statvfs {mnt}: no answer within 1s from the fuse mount");
    let l = label(&t);
    assert_eq!(
        out,
        format!(
            "SYSTEM-AGENT UNKNOWN - disk {mnt} unknown ({why}), inodes {mnt} unknown ({why}) \
             | cpu=10.0%;80;90 mem=50.0%;85;95 disk_{l}=U;100;100 load1=0.52 inode_{l}=U;100;100\n"
        )
    );
    assert_eq!(code, 3);
    assert!(t.join("src/old.log").exists());
    assert_eq!(
        events(&log(&t), "event=error"),
        vec![
            format!("level=error event=error what=sample error=\"{why}\""),
            format!(
                "level=warn event=error what=cleanup rule=onfuse path={mnt} error=\"no answer within 1s from the fuse mount; not entered this cycle\""
            ),
        ]
    );
    // Answering again, the mount is read and the rule enters it.
    fuse.signal_daemon(libc::SIGCONT);
    t.write("proc/stat", proc_stat(300, 2700));
    let (code, out) = fuse.agent(&cfg, true).finish("--once after SIGCONT");
    assert!(
        out.starts_with("SYSTEM-AGENT OK - all checks ok | cpu=10.0%;80;90 mem=50.0%;85;95 "),
        "{out}"
    );
    assert!(!out.contains("=U"), "{out}");
    assert_eq!(code, 0);
    assert!(!t.join("src/old.log").exists(), "{}", log(&t));
}

#[test]
fn the_service_keeps_cycling_while_a_mount_hangs_and_stops_on_sigterm() {
    let t = TempDir::new("mounts-service");
    let cfg = host(&t, &rule(&t));
    let fuse = Fuse::new(&t);
    let agent = fuse.agent(&cfg, false);
    let l = label(&t);
    let sampled = format!(" disk_{l}=");
    assert!(
        wait_for(LIMIT, || log(&t).contains(&sampled)),
        "{}",
        log(&t)
    );
    fuse.signal_daemon(libc::SIGSTOP);
    let mnt = t.join("mnt").display().to_string();
    let why = format!("cannot statvfs {mnt}: no answer within 1s from the fuse mount");
    let error = format!("level=error event=error what=sample error=\"{why}\"");
    assert!(
        wait_for(LIMIT, || log(&t).contains(&error)),
        "no error line: {}",
        log(&t)
    );
    // Cycles go on: five more samples after the first hung one, each without the mount.
    let hung_samples = || {
        let log = log(&t);
        let after = &log[log.find(&error).unwrap_or(0)..];
        events(after, "event=sample").len()
    };
    assert!(wait_for(LIMIT, || hung_samples() >= 5), "{}", log(&t));
    assert_eq!(events(&log(&t), "event=error what=sample"), vec![error]);
    assert_eq!(
        events(&log(&t), "event=error what=cleanup"),
        vec![format!(
            "level=warn event=error what=cleanup rule=onfuse path={mnt} error=\"no answer within 1s from the fuse mount; not entered this cycle\""
        )]
    );
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish("the service after SIGTERM");
    assert_eq!(code, 0);
    assert!(
        log(&t).contains(" event=stop reason=SIGTERM "),
        "{}",
        log(&t)
    );
}

#[test]
fn a_mount_that_answers_again_is_logged_once_and_read_again() {
    let t = TempDir::new("mounts-recover");
    let cfg = host(&t, "");
    let fuse = Fuse::new(&t);
    fuse.signal_daemon(libc::SIGSTOP);
    let agent = fuse.agent(&cfg, false);
    let mnt = t.join("mnt").display().to_string();
    let why = format!("cannot statvfs {mnt}: no answer within 1s from the fuse mount");
    let error = format!("level=error event=error what=sample error=\"{why}\"");
    assert!(wait_for(LIMIT, || log(&t).contains(&error)), "{}", log(&t));
    fuse.signal_daemon(libc::SIGCONT);
    let recovered = format!("level=info event=error what=sample status=recovered error=\"{why}\"");
    assert!(
        wait_for(LIMIT, || log(&t).contains(&recovered)),
        "{}",
        log(&t)
    );
    let l = label(&t);
    let sampled = format!(" disk_{l}=");
    let read_again = || {
        let log = log(&t);
        let after = &log[log.find(&recovered).unwrap_or(0)..];
        events(after, "event=sample")
            .iter()
            .filter(|s| s.contains(&sampled))
            .count()
    };
    assert!(wait_for(LIMIT, || read_again() >= 2), "{}", log(&t));
    agent.signal(libc::SIGTERM);
    let (code, _) = agent.finish("the service after SIGTERM");
    assert_eq!(code, 0);
    assert_eq!(
        events(&log(&t), "event=error"),
        vec![error, recovered],
        "{}",
        log(&t)
    );
}
