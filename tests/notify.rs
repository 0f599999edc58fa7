//! The systemd notify protocol, against the built binary run as a service with
//! `NOTIFY_SOCKET` naming a datagram socket this test binds in its own temp dir
//! (or in the abstract namespace, under a name of its own): the exact messages and
//! their order (`READY=1` after the first cycle, `WATCHDOG=1` each cycle,
//! `RELOADING=1` with `MONOTONIC_USEC=` and `READY=1` around a SIGHUP, `STOPPING=1`
//! at SIGTERM), nothing from `--once`, one log line when the socket is gone, and
//! no `NOTIFY_SOCKET` in a child's environment. Signals go only to the agents
//! these tests started.

mod common;

use common::*;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const BTIME: u64 = 1_700_000_000;
/// `WATCHDOG_USEC` for the tests: a minute, so every ping comes from a cycle.
const WATCHDOG_USEC: &str = "60000000";

/// A fixture host (proc/{stat,meminfo,loadavg}, etc/passwd) and its agent.ini:
/// 200 ms cycles, log and state in the temp dir, no syslog, disks or audit, and
/// `extra` sections.
fn host(tag: &str, extra: &str) -> (TempDir, PathBuf) {
    let t = TempDir::new(tag);
    t.write("proc/stat", proc_stat(100, 900));
    t.write("proc/meminfo", proc_meminfo(50));
    t.write("proc/loadavg", "0.52 0.58 0.59 1/467 12345\n");
    t.write("etc/passwd", "root:x:0:0:root:/root:/bin/bash\n");
    let p = |rel: &str| t.join(rel).display().to_string();
    let ini = format!(
        "[agent]\ninterval = 200ms\nlog_file = {log}\nsyslog = no\nstate_dir = {state}\n\
         status_file = {status}\n\n\
         [paths]\nproc = {proc}\npasswd = {passwd}\n\n[disk]\nmounts =\n\n\
         [audit]\nbash_history = no\n\n{extra}",
        log = p("agent.log"),
        state = p("state"),
        status = p("agent.status"),
        proc = p("proc"),
        passwd = p("etc/passwd"),
    );
    let cfg = t.write("agent.ini", ini);
    (t, cfg)
}

/// The agent with exactly these notify variables (none inherited from whatever
/// runs the tests).
fn spawn_with(cfg: &Path, extra: &[&str], env: &[(&str, &str)]) -> Agent {
    let mut cmd = Command::new(bin());
    cmd.arg("-c")
        .arg(cfg)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for k in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    Agent(cmd.spawn().expect("spawn system-agent"))
}

/// A running agent; killed if a test fails before it stops.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// The datagrams a socket receives, read as they come (bounded waits).
struct Inbox {
    sock: UnixDatagram,
    got: Vec<String>,
}

impl Inbox {
    fn new(sock: UnixDatagram) -> Inbox {
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        Inbox {
            sock,
            got: Vec::new(),
        }
    }

    /// Receives until a message starts with `prefix`; panics after 5 s of quiet.
    fn until(&mut self, prefix: &str) -> String {
        let mut buf = [0u8; 512];
        loop {
            let n = match self.sock.recv(&mut buf) {
                Ok(n) => n,
                Err(e) => panic!("no {prefix:?} ({e}); received {:?}", self.got),
            };
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            self.got.push(msg.clone());
            if msg.starts_with(prefix) {
                return msg;
            }
        }
    }

    /// Nothing more is waiting.
    fn empty(&self) -> bool {
        self.sock.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 512];
        self.sock.recv(&mut buf).is_err()
    }
}

fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime fills the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1000
}

/// The log lines holding `needle`, without their timestamps.
fn events(t: &TempDir, needle: &str) -> Vec<String> {
    t.read("agent.log")
        .lines()
        .filter(|l| l.contains(needle))
        .map(|l| l.split_once(' ').map(|x| x.1).unwrap_or("").to_string())
        .collect()
}

fn stop(mut agent: Agent) -> i32 {
    signal(&agent.0, libc::SIGTERM);
    let st = wait_exit(&mut agent.0, Duration::from_secs(5));
    st.code().unwrap_or(-1)
}

#[test]
fn the_service_tells_systemd_ready_reloading_alive_and_stopping() {
    let (t, cfg) = host("notify", "");
    let sock = t.join("notify");
    let mut inbox = Inbox::new(UnixDatagram::bind(&sock).unwrap());
    let env = [
        ("NOTIFY_SOCKET", sock.to_str().unwrap()),
        ("WATCHDOG_USEC", WATCHDOG_USEC),
    ];
    let agent = spawn_with(&cfg, &[], &env);

    // Ready once the first cycle has run (its sample line is written).
    assert_eq!(inbox.until(""), "READY=1");
    assert!(
        !events(&t, "event=sample").is_empty(),
        "{}",
        t.read("agent.log")
    );
    inbox.until("WATCHDOG=1");
    inbox.until("WATCHDOG=1");

    let before = monotonic_us();
    signal(&agent.0, libc::SIGHUP);
    let reloading = inbox.until("RELOADING=1");
    let after = monotonic_us();
    inbox.until("READY=1");
    inbox.until("WATCHDOG=1");
    let code = stop(agent);
    assert_eq!(code, 0, "{}", t.read("agent.log"));
    inbox.until("STOPPING=1");
    assert!(inbox.empty(), "after STOPPING=1: {:?}", inbox.got);

    // RELOADING=1 carries the monotonic time it was sent at.
    let usec: u64 = reloading
        .strip_prefix("RELOADING=1\nMONOTONIC_USEC=")
        .unwrap_or_else(|| panic!("{reloading:?}"))
        .parse()
        .unwrap();
    assert!(
        before <= usec && usec <= after,
        "{before} <= {usec} <= {after}"
    );

    // The exact sequence: one WATCHDOG=1 per cycle before the reload and after it.
    let log = t.read("agent.log");
    let reload_at = log.find("event=reload ").expect("event=reload");
    let cycles_before = log[..reload_at].matches("event=sample").count();
    let cycles = log.matches("event=sample").count();
    assert!(cycles_before >= 2 && cycles > cycles_before, "{log}");
    let mut want = vec!["READY=1".to_string()];
    want.extend(std::iter::repeat_n("WATCHDOG=1".to_string(), cycles_before));
    want.push(reloading.clone());
    want.push("READY=1".to_string());
    want.extend(std::iter::repeat_n(
        "WATCHDOG=1".to_string(),
        cycles - cycles_before,
    ));
    want.push("STOPPING=1".to_string());
    assert_eq!(inbox.got, want);
    let stop_line = events(&t, "event=stop");
    assert_eq!(
        stop_line,
        [format!(
            "level=info event=stop reason=SIGTERM cycles={cycles}"
        )]
    );
    assert_eq!(
        events(&t, "event=reload"),
        [format!(
            "level=info event=reload config={} changed=none",
            cfg.display()
        )]
    );
    assert_eq!(events(&t, "what=notify"), Vec::<String>::new());
}

/// Saves CPU counters in state_dir as a run a minute ago would have (so the first
/// cycle reads 10% CPU, idle enough for a task).
fn seed_cpu(t: &TempDir) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
    let saved = now.as_nanos() as u64 - 60_000_000_000;
    t.write(
        "state/state",
        format!("system-agent-state 1\nsaved {saved}\nbtime {BTIME}\ncpu 0 0 0 0 0 0 0 0\nend\n"),
    );
}

#[test]
fn an_abstract_socket_without_a_watchdog_hears_ready_and_stopping_and_no_child_sees_it() {
    let (t, cfg) = host(
        "notify-abstract",
        "[task.env]\ncommand = /bin/sh -c \"env >&2\"\nidle_cycles = 1\nwhen_cpu_below = 100\n",
    );
    seed_cpu(&t);
    let name = format!("sa-test-notify-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let mut inbox = Inbox::new(UnixDatagram::bind_addr(&addr).unwrap());
    let agent = spawn_with(&cfg, &[], &[("NOTIFY_SOCKET", &format!("@{name}"))]);
    assert_eq!(inbox.until(""), "READY=1");
    assert!(
        wait_for(Duration::from_secs(5), || !events(&t, "event=task_done")
            .is_empty()),
        "{}",
        t.read("agent.log")
    );
    assert_eq!(stop(agent), 0);
    inbox.until("STOPPING=1");
    assert!(inbox.empty());
    assert_eq!(inbox.got, ["READY=1", "STOPPING=1"]);
    // The task's environment is the minimal one: no NOTIFY_SOCKET.
    let done = events(&t, "event=task_done name=env");
    assert_eq!(done.len(), 1, "{}", t.read("agent.log"));
    assert!(
        done[0].contains(" stderr_tail=\"PATH=/usr/sbin:/usr/bin:/sbin:/bin\\nLANG=C\\n")
            && !done[0].contains("NOTIFY"),
        "{}",
        done[0]
    );
}

#[test]
fn a_socket_that_is_gone_is_logged_once_and_the_service_runs_on() {
    let (t, cfg) = host("notify-gone", "");
    let sock = t.join("no-such-socket");
    let env = [
        ("NOTIFY_SOCKET", sock.to_str().unwrap()),
        ("WATCHDOG_USEC", WATCHDOG_USEC),
    ];
    let agent = spawn_with(&cfg, &[], &env);
    assert!(
        wait_for(Duration::from_secs(5), || events(&t, "event=sample").len()
            >= 3),
        "{}",
        t.read("agent.log")
    );
    assert_eq!(stop(agent), 0);
    assert_eq!(
        events(&t, "what=notify"),
        [format!(
            "level=warn event=error what=notify error=\"cannot send READY=1 to {}: No such file or \
             directory\" errno=ENOENT effect=\"systemd is not told; later failures are not logged\"",
            sock.display()
        )]
    );
}

#[test]
fn a_one_shot_tells_systemd_nothing() {
    let (t, cfg) = host("notify-once", "");
    seed_cpu(&t);
    let sock = t.join("notify");
    let inbox = Inbox::new(UnixDatagram::bind(&sock).unwrap());
    let env = [
        ("NOTIFY_SOCKET", sock.to_str().unwrap()),
        ("WATCHDOG_USEC", WATCHDOG_USEC),
    ];
    let mut agent = spawn_with(&cfg, &["--once"], &env);
    let st = wait_exit(&mut agent.0, Duration::from_secs(5));
    assert_eq!(st.code(), Some(0), "{}", t.read("agent.log"));
    assert_eq!(events(&t, "event=sample").len(), 1);
    assert!(inbox.empty());
}
