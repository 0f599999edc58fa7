//! Private namespaces a test makes so it can mount and signal without touching
//! this machine: a mount namespace held by a shell this test started (the agent
//! runs inside with `nsenter`), and a PID namespace a scenario script runs in as
//! PID 1, which dies with it.

use super::{LIMIT, Run, Service, TempDir, bin, run_command, wait_for};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::time::Duration;

/// A shell holding a private mount namespace: it runs `setup` (mounts), prints
/// `ready`, waits for a line or the end of its stdin (when dropped), then runs
/// `teardown` and exits, and the namespace with it.
pub struct MountNs {
    pub shell: Child,
    stdin: Option<ChildStdin>,
    /// What `setup` printed before `ready`.
    pub said: Vec<String>,
}

impl MountNs {
    pub fn new(setup: &str) -> MountNs {
        MountNs::with_teardown(setup, "")
    }

    pub fn with_teardown(setup: &str, teardown: &str) -> MountNs {
        let script = format!("set -e\n{setup}\necho ready\nread -r _ || true\n{teardown}");
        let mut shell = Command::new("unshare")
            .args(["-m", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn unshare");
        let stdin = shell.stdin.take();
        let mut out = BufReader::new(shell.stdout.take().expect("stdout"));
        let mut said = Vec::new();
        loop {
            let mut line = String::new();
            if out.read_line(&mut line).unwrap_or(0) == 0 {
                let out = shell.wait_with_output().expect("wait unshare");
                panic!(
                    "namespace setup failed after {said:?}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            if line == "ready\n" {
                break;
            }
            said.push(line.trim_end().to_string());
        }
        MountNs { shell, stdin, said }
    }

    /// `p` as seen inside the namespace.
    pub fn inside(&self, p: &Path) -> PathBuf {
        let mut q = PathBuf::from(format!("/proc/{}/root", self.shell.id()));
        q.push(p.strip_prefix("/").expect("an absolute path"));
        q
    }

    /// The binary with `args`, inside the namespace (nsenter execs it: the child is
    /// the agent).
    pub fn command(&self, args: &[&str]) -> Command {
        let pid = self.shell.id().to_string();
        let mut c = Command::new("nsenter");
        c.args(["-t", &pid, "-m", "--", bin()]).args(args);
        c
    }

    /// The service on `cfg` inside the namespace, its output discarded.
    pub fn spawn(&self, cfg: &Path) -> Service {
        let mut c = self.command(&["-c", cfg.to_str().expect("a UTF-8 path")]);
        c.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        Service::start(c)
    }

    /// One bounded `--once` run on `cfg` inside the namespace.
    pub fn once(&self, cfg: &Path, args: &[&str]) -> Run {
        let mut all = vec!["-c", cfg.to_str().expect("a UTF-8 path"), "--once"];
        all.extend_from_slice(args);
        run_command(self.command(&all))
    }
}

impl Drop for MountNs {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"done\n");
        }
        if !wait_for(LIMIT, || matches!(self.shell.try_wait(), Ok(Some(_)))) {
            let _ = self.shell.kill();
        }
        let _ = self.shell.wait();
    }
}

/// Runs `script` (a file) with bash as PID 1 of a new PID namespace with its own
/// /proc, with `A` the agent binary and `T` the temp dir in its environment, its
/// output in T/scenario.stdout and T/scenario.stderr. `None` when it overran
/// `limit`: then it was killed with SIGKILL, and the whole namespace with it.
pub fn in_pid_ns(t: &TempDir, script: &Path, limit: Duration) -> Option<ExitStatus> {
    let stdout = std::fs::File::create(t.join("scenario.stdout")).expect("stdout file");
    let stderr = std::fs::File::create(t.join("scenario.stderr")).expect("stderr file");
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--mount-proc", "--kill-child", "bash"])
        .arg(script)
        .env("A", bin())
        .env("T", t.path())
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .expect("spawn unshare");
    if wait_for(limit, || matches!(child.try_wait(), Ok(Some(_)))) {
        return Some(child.wait().expect("reap unshare"));
    }
    // SIGKILL to unshare; --kill-child takes PID 1, and so the namespace, with it.
    let _ = child.kill();
    let _ = child.wait();
    None
}
