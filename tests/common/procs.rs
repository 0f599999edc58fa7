//! Looking at real processes this test started (or that the agent started for it)
//! through this machine's `/proc`, and killing what they left behind, only by pid
//! and only once the pid is checked to be still theirs.

use std::path::PathBuf;

/// (state, ppid, pgrp) of a live process, from /proc/PID/stat.
pub fn proc_stat_of(pid: i32) -> Option<(char, i32, i32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    Some((f[0].chars().next()?, f[1].parse().ok()?, f[2].parse().ok()?))
}

/// The parent pid of `pid`.
pub fn parent_of(pid: i32) -> Option<i32> {
    proc_stat_of(pid).map(|s| s.1)
}

/// Gone: no such process, a zombie (dead, waiting for init to reap it), or the
/// pid now belongs to another process group (reused).
pub fn gone(pid: i32, pgid: i32) -> bool {
    match proc_stat_of(pid) {
        None => true,
        Some((state, _, pgrp)) => state == 'Z' || pgrp != pgid,
    }
}

/// Whether `pid` exists and is not a zombie.
pub fn running(pid: i32) -> bool {
    proc_stat_of(pid).is_some_and(|s| s.0 != 'Z')
}

/// Every process whose parent is `ppid`: (pid, state).
pub fn children_of(ppid: i32) -> Vec<(i32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Some((state, parent, _)) = proc_stat_of(pid)
            && parent == ppid
        {
            out.push((pid, state));
        }
    }
    out
}

/// A process's command line, its arguments joined by spaces.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_default()
}

/// One field of /proc/PID/status, its words joined by single spaces.
pub fn status_field(pid: i32, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The open descriptors of a process: (number, what it points at).
pub fn fds_of(pid: i32) -> Vec<(i32, String)> {
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read fd dir")
        .flatten()
        .map(|e| {
            let n = e.file_name().to_str().unwrap().parse().unwrap();
            let target = std::fs::read_link(e.path())
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            (n, target)
        })
        .collect();
    fds.sort();
    fds
}

/// The pids a script wrote to a file, whitespace-separated.
pub fn pids_in(path: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// Kills, on drop, what is left of a child's process group: only processes whose
/// pid a script of the test wrote and whose group is still that child's.
pub struct Leftovers {
    pids: Vec<i32>,
    pgid: i32,
    /// Or: the file the pids are read from at drop, the group leader first.
    file: Option<PathBuf>,
}

impl Leftovers {
    pub fn new(pids: Vec<i32>, pgid: i32) -> Leftovers {
        Leftovers {
            pids,
            pgid,
            file: None,
        }
    }

    /// The pids `file` holds when the test ends; the first leads the group.
    pub fn in_file(file: PathBuf) -> Leftovers {
        Leftovers {
            pids: Vec::new(),
            pgid: 0,
            file: Some(file),
        }
    }
}

impl Drop for Leftovers {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            self.pids = pids_in(f);
            self.pgid = self.pids.first().copied().unwrap_or(0);
        }
        for &pid in &self.pids {
            if pid > 0 && !gone(pid, self.pgid) {
                // SAFETY: kill(2) on a process this test's child started, still in
                // that child's process group.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}
