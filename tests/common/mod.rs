//! The one harness every integration test shares: private temp dirs, the fixture
//! host (`host`: /proc files, passwd, config, runs and services, events), real
//! processes (`procs`), namespaces (`ns`), stand-in daemons (`sinks`), and what
//! some features need around it: alerts (`alerts`), the history audit (`audit`),
//! disk cleanup (`cleanup`: file trees with ages), the reaper's scenarios
//! (`reaper`), idle-time tasks (`tasks`). Polls are bounded, never a bare sleep;
//! no helper bounds how long something took: a limit here only stops a hang.
//! The helpers of one family of test files (`config` for tests/config_*.rs;
//! `logfmt`, the strict log readers, and `hostile`, the host that logs every event
//! with hostile input, for tests/logfmt_*.rs) are used by their path, not
//! re-exported: their short names would crowd every test.
#![allow(dead_code, unused_imports)]

pub mod alerts;
pub mod audit;
pub mod cleanup;
pub mod config;
pub mod host;
pub mod hostile;
pub mod logfmt;
pub mod ns;
pub mod procs;
pub mod reaper;
pub mod sinks;
pub mod tasks;

pub use alerts::*;
pub use audit::*;
pub use cleanup::*;
pub use host::*;
pub use ns::*;
pub use procs::*;
pub use reaper::*;
pub use sinks::*;
pub use tasks::*;

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A directory under the system temp dir, removed on drop. Every test that writes
/// files works only inside one of these.
pub struct TempDir(pub PathBuf);

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

/// Runs the binary with `args` (stdin from /dev/null, output captured); kills it
/// and fails the test when it has not ended within `LIMIT`.
pub fn run(args: &[&str]) -> Output {
    let mut child = Command::new(bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn system-agent");
    if !wait_for(LIMIT, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let out = child.wait_with_output().expect("collect output");
        panic!("system-agent {args:?} still running after {LIMIT:?}: {out:?}");
    }
    child.wait_with_output().expect("collect output")
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
    if !wait_for(limit, || matches!(child.try_wait(), Ok(Some(_)))) {
        let _ = child.kill();
        let _ = child.wait();
        panic!("child did not exit within {limit:?}");
    }
    child.wait().expect("reap the child")
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

/// A path as a C string.
pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in a path")
}

/// Gives `p` itself (not a symlink's target) to `uid`, group `uid`.
pub fn chown(p: &Path, uid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(uid))
        .unwrap_or_else(|e| panic!("chown {}: {e}", p.display()));
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

/// A FIFO at `p`, mode 0600.
pub fn mkfifo(p: &Path) {
    // SAFETY: a NUL-terminated path in the test's own temp dir.
    assert_eq!(
        unsafe { libc::mkfifo(cstr(p).as_ptr(), 0o600) },
        0,
        "mkfifo"
    );
}

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
