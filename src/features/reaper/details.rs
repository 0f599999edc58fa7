//! The per-process facts a reaper rule may need beyond the scan (`plan::Details`:
//! owner, command line, root directory), read from the `[paths] proc` directory
//! the scan read, through its open descriptor, and only when a rule asks.

use super::plan::Details;
use crate::sys;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Reads what `Details` asks from the open `[paths] proc` directory the scan read.
pub struct ProcDetails<'a> {
    dir: BorrowedFd<'a>,
    buf: Vec<u8>,
    path: Vec<u8>,
    uids: HashMap<i32, Option<u32>>,
    self_root: Option<(u64, u64)>,
    self_mountinfo: Option<Vec<u8>>,
}

impl<'a> ProcDetails<'a> {
    /// `dir`: the scan's /proc directory.
    pub fn new(dir: BorrowedFd<'a>) -> ProcDetails<'a> {
        let self_root = sys::lstat(c"/").ok().map(|st| (st.st_dev, st.st_ino));
        ProcDetails {
            dir,
            buf: Vec::new(),
            path: Vec::new(),
            uids: HashMap::new(),
            self_root,
            self_mountinfo: None,
        }
    }

    fn read(&mut self, pid: &str, file: &str) -> Option<&[u8]> {
        let c = sys::cpath(&mut self.path, &[pid.as_bytes(), b"/", file.as_bytes()]).ok()?;
        sys::read_at(self.dir.as_raw_fd(), c, &mut self.buf).ok()?;
        Some(&self.buf)
    }
}

impl Details for ProcDetails<'_> {
    fn uid(&mut self, pid: i32) -> Option<u32> {
        if let Some(&u) = self.uids.get(&pid) {
            return u;
        }
        let uid = self
            .read(&pid.to_string(), "status")
            .and_then(|b| crate::procfs::pid::parse_pid_status(b).ok())
            .map(|s| s.uid[0]);
        self.uids.insert(pid, uid);
        uid
    }

    fn cmdline(&mut self, pid: i32) -> Option<Vec<u8>> {
        let raw = self.read(&pid.to_string(), "cmdline")?.to_vec();
        let mut out = Vec::new();
        crate::procfs::pid::cmdline_display(&raw, &mut out);
        Some(out)
    }

    /// `stat` of `/proc/PID/root` against our `/` when allowed (root, or the same
    /// user); otherwise the process's `mountinfo`, which shows mounts relative to
    /// its root, against ours (readable without ptrace access).
    fn same_root(&mut self, pid: i32) -> bool {
        let link = sys::cpath(&mut self.path, &[pid.to_string().as_bytes(), b"/root"]);
        if let Ok(st) = link.and_then(|c| sys::fstatat(self.dir.as_raw_fd(), c)) {
            return self.self_root == Some((st.st_dev, st.st_ino));
        }
        if self.self_mountinfo.is_none() {
            self.self_mountinfo = self.read("self", "mountinfo").map(<[u8]>::to_vec);
        }
        let Some(mine) = self.self_mountinfo.clone() else {
            return false;
        };
        self.read(&pid.to_string(), "mountinfo")
            .is_some_and(|theirs| theirs == mine.as_slice())
    }
}
