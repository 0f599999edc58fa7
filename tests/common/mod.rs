//! Helpers shared by the integration tests: private temp dirs, fixture /proc trees,
//! running the built binary, and bounded polling (never a bare sleep).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A directory under the system temp dir, removed on drop. Every test that writes
/// files works only inside one of these.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("sa-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// Writes a file (creating parent dirs) and returns its path.
    pub fn write(&self, rel: &str, data: impl AsRef<[u8]>) -> PathBuf {
        let p = self.0.join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&p, data).expect("write file");
        p
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.0.join(rel)).unwrap_or_default()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_system-agent")
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run system-agent")
}

pub fn spawn(args: &[&str]) -> Child {
    Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn system-agent")
}

/// Polls `f` every 20 ms until it returns true or `limit` passes.
pub fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if f() {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a signal to a child this test started (never to anything else).
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// Waits for a child to exit within `limit`; kills it and panics otherwise.
pub fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if start.elapsed() >= limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A /proc/stat with two CPUs; `busy` and `idle` are the aggregate user and idle ticks.
pub fn proc_stat(busy: u64, idle: u64) -> String {
    format!(
        "cpu  {busy} 0 0 {idle} 0 0 0 0 0 0\ncpu0 {b0} 0 0 {i0} 0 0 0 0 0 0\ncpu1 {b1} 0 0 {i1} 0 0 0 0 0 0\n\
         intr 1 2 3\nctxt 100\nbtime 1700000000\nprocesses 10\nprocs_running 1\nprocs_blocked 0\n",
        b0 = busy / 2,
        b1 = busy - busy / 2,
        i0 = idle / 2,
        i1 = idle - idle / 2
    )
}

/// A /proc/meminfo with `used_percent` of 1 GiB in use.
pub fn proc_meminfo(used_percent: u64) -> String {
    let total = 1_048_576u64;
    let avail = total - total * used_percent / 100;
    format!(
        "MemTotal:       {total} kB\nMemFree:        {avail} kB\nMemAvailable:   {avail} kB\nBuffers:               0 kB\n\
         Cached:                0 kB\nSwapTotal:             0 kB\nSwapFree:              0 kB\n"
    )
}

/// `[section]` body: `defaults` with `over` lines (`key = value`) replacing or adding.
pub fn section(defaults: &[(&str, String)], over: &str) -> String {
    let mut keys: Vec<(String, String)> = defaults
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
    for line in over.lines().filter(|l| !l.trim().is_empty()) {
        let (k, v) = line.split_once('=').expect("key = value");
        let (k, v) = (k.trim().to_string(), v.trim().to_string());
        match keys.iter_mut().find(|(key, _)| *key == k) {
            Some(slot) => slot.1 = v,
            None => keys.push((k, v)),
        }
    }
    keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
}

/// Writes `t`/agent.ini for a fixture tree (`proc/`, `etc/passwd`, `etc/group`): log and state
/// in `t`, no syslog, no disk mounts, no audit; `agent` lines replace or add
/// `[agent]` keys, and `extra` adds sections.
pub fn fixture_ini(t: &TempDir, interval: &str, agent: &str, extra: &str) -> PathBuf {
    let p = |rel: &str| t.join(rel).display().to_string();
    let agent = section(
        &[
            ("interval", interval.to_string()),
            ("log_file", p("agent.log")),
            ("syslog", "no".to_string()),
            ("state_dir", p("state")),
        ],
        agent,
    );
    let text = format!(
        "[agent]\n{agent}\n[paths]\nproc = {proc}\npasswd = {passwd}\ngroup = {group}\n\n[disk]\nmounts =\n\n[audit]\nbash_history = no\n\n{extra}",
        proc = p("proc"),
        passwd = p("etc/passwd"),
        group = p("etc/group"),
    );
    t.write("agent.ini", text)
}

/// The lines of `log` that `keep` selects, without their `ts=` and with `age=`
/// (which depends on timing) as `age=*`.
pub fn log_lines(log: &str, keep: impl Fn(&str) -> bool) -> Vec<String> {
    log.lines()
        .filter(|l| keep(l))
        .map(|l| {
            let rest = l.split_once(' ').map_or("", |(_, r)| r);
            rest.split(' ')
                .map(|w| if w.starts_with("age=") { "age=*" } else { w })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}
