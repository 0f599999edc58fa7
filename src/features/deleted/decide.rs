//! What the deleted-open scan does with what it found, as pure decisions: which
//! files are kept while a scan goes on (the largest, a bounded number), which of
//! them are told this cycle (the largest not told yet in this episode of the
//! mount being full, at most `TELL_PER_CYCLE`), and whose holder may have them
//! truncated (a configured name, never a process the reaper never touches).

use crate::glob::{self, Glob};

/// Files kept per scan: the largest this many.
pub const MAX_FOUND: usize = 4096;

/// `deleted_open` lines per cycle, at most.
pub const TELL_PER_CYCLE: usize = 10;

/// One descriptor of a process that holds a deleted file on a watched mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub pid: i32,
    pub fd: u32,
    pub dev: u64,
    pub ino: u64,
    /// The space it holds: its allocated blocks, in bytes.
    pub bytes: u64,
    /// Which watched mount it is on (an index into the mounts at warn).
    pub mount: usize,
    /// Its process in this cycle's scan (an index).
    pub proc: usize,
}

impl Found {
    /// The file, whoever holds it.
    pub fn file(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

/// Keeps `f` among `found` when there is room or it is larger than the smallest
/// kept, so memory stays bounded whatever a host holds open.
pub fn keep(found: &mut Vec<Found>, f: Found) {
    if found.len() < MAX_FOUND {
        found.push(f);
        return;
    }
    let smallest = found
        .iter()
        .enumerate()
        .min_by_key(|(_, g)| g.bytes)
        .map(|(i, g)| (i, g.bytes));
    if let Some((i, bytes)) = smallest
        && f.bytes > bytes
    {
        found[i] = f;
    }
}

/// The files to tell now: the largest first, each file once (the first holder
/// found of it), none of those in `told`, at most `TELL_PER_CYCLE`. `found` is
/// sorted, largest first.
pub fn to_tell(found: &mut [Found], told: &[(u64, u64)]) -> Vec<Found> {
    found.sort_by(|a, b| {
        b.bytes
            .cmp(&a.bytes)
            .then(a.pid.cmp(&b.pid))
            .then(a.fd.cmp(&b.fd))
    });
    let mut out: Vec<Found> = Vec::new();
    for f in found.iter() {
        if out.len() == TELL_PER_CYCLE {
            break;
        }
        if !told.contains(&f.file()) && !out.iter().any(|o| o.file() == f.file()) {
            out.push(*f);
        }
    }
    out
}

/// Who holds a file: enough to decide whether it may be truncated.
#[derive(Debug, Clone, Copy)]
pub struct Holder<'a> {
    pub pid: i32,
    pub name: &'a [u8],
    pub kthread: bool,
}

/// Whether the file a process holds may be truncated: its name matches
/// `[disk] truncate_deleted`, and it is none of those the reaper never touches
/// (`protected`: PID 1, the agent and its ancestors; kernel threads; names in
/// `[reaper] protect`).
pub fn may_truncate(h: Holder, allowed: &[Glob], protect: &[Glob], protected: &[i32]) -> bool {
    glob::any(allowed, h.name)
        && !h.kthread
        && !protected.contains(&h.pid)
        && !glob::any(protect, h.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(pid: i32, ino: u64, bytes: u64) -> Found {
        Found {
            pid,
            fd: 3,
            dev: 1,
            ino,
            bytes,
            mount: 0,
            proc: 0,
        }
    }

    #[test]
    fn the_largest_not_told_yet_ten_at_most_each_file_once() {
        let mut all: Vec<Found> = (1..=14)
            .map(|i| found(i, i as u64, i as u64 * 100))
            .collect();
        // A second holder of the largest file.
        all.push(found(99, 14, 1400));
        let told = [(1, 13)];
        let tell = to_tell(&mut all, &told);
        let pairs: Vec<(i32, u64)> = tell.iter().map(|f| (f.pid, f.bytes)).collect();
        assert_eq!(
            pairs,
            [
                (14, 1400),
                (12, 1200),
                (11, 1100),
                (10, 1000),
                (9, 900),
                (8, 800),
                (7, 700),
                (6, 600),
                (5, 500),
                (4, 400)
            ]
        );
    }

    #[test]
    fn memory_stays_bounded_keeping_the_largest() {
        let mut kept = Vec::new();
        for i in 0..(MAX_FOUND as u64 + 10) {
            keep(&mut kept, found(i as i32, i, i));
        }
        assert_eq!(kept.len(), MAX_FOUND);
        assert!(kept.iter().all(|f| f.bytes >= 10), "the 10 smallest went");
        keep(&mut kept, found(1, 1, 0));
        assert!(!kept.iter().any(|f| f.bytes == 0));
    }

    #[test]
    fn only_named_holders_the_reaper_may_touch() {
        let allowed = [Glob::new("rsyslogd"), Glob::new("java*")];
        let protect = [Glob::new("java-critical")];
        let protected = [1, 4242, 4000];
        let h = |pid, name: &'static str, kthread| Holder {
            pid,
            name: name.as_bytes(),
            kthread,
        };
        let rows = [
            (h(500, "rsyslogd", false), true),
            (h(501, "javaapp", false), true),
            (h(502, "nginx", false), false),
            (h(1, "rsyslogd", false), false),
            (h(4242, "rsyslogd", false), false),
            (h(4000, "java", false), false),
            (h(503, "java-critical", false), false),
            (h(2, "rsyslogd", true), false),
        ];
        for (holder, want) in rows {
            assert_eq!(
                may_truncate(holder, &allowed, &protect, &protected),
                want,
                "{holder:?}"
            );
        }
        assert!(!may_truncate(h(500, "rsyslogd", false), &[], &[], &[]));
    }
}
