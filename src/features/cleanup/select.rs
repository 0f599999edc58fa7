//! Which entries a cleanup rule removes, as pure decisions on plain values (a
//! name, its type, its modification time, a clock, a filesystem's figures), so
//! they are tested without a tree: the names always spared, what is old, what the
//! rule enters or removes, the `disk_high` candidates (the oldest, a bounded
//! number) and when a filesystem counts as high.

use crate::config::{CleanupRule, When};
use crate::glob::{self, Glob};
use crate::sample::DiskUsage;
use crate::sys::{EntryStat, FsStats};
use std::collections::BinaryHeap;

/// Names no rule may remove, nor descend into, whatever it says.
pub const ALWAYS_SPARED: [&str; 6] = [
    ".X11-unix",
    ".ICE-unix",
    "systemd-private-*",
    "*.sock",
    "*.pid",
    "*.lock",
];

/// Deepest level the walk enters below a rule's directory.
pub const MAX_DEPTH: usize = 64;

/// How many oldest files a `disk_high` pass keeps as candidates.
pub const MAX_CANDIDATES: usize = 4096;

/// Whether a file with modification time `mtime` is older than `older_than` seconds.
/// A file dated in the future is not old.
pub fn is_old(mtime: i64, now: i64, older_than: u64) -> bool {
    mtime <= now && (now - mtime) as u64 >= older_than
}

/// Whether a name is spared: always (`ALWAYS_SPARED`) or by the rule's `protect`.
pub fn is_spared(name: &[u8], protect: &[Glob]) -> bool {
    ALWAYS_SPARED
        .iter()
        .any(|g| glob::matches(g.as_bytes(), name))
        || glob::any(protect, name)
}

/// What a rule does with an entry that is not spared and lies on its root's mount.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// It stays: a socket, FIFO or device, a young or unmatched file, a directory
    /// of a rule that does not recurse.
    Keep,
    /// A directory to walk.
    Descend,
    /// An old matching file, removed now (`when = always`).
    Remove,
    /// An old matching file, a candidate for `when = disk_high`.
    Candidate,
}

/// Whether the rule would enter (a directory, when it recurses) or remove (a
/// matching file or symlink) an entry of this type (`S_IF*`) and name, whatever
/// its age.
pub fn wanted(rule: &CleanupRule, kind: u32, name: &[u8]) -> bool {
    match kind {
        libc::S_IFDIR => rule.recursive,
        libc::S_IFREG | libc::S_IFLNK => glob::any(&rule.matches, name),
        _ => false,
    }
}

/// What the rule does with an entry of this type, name and modification time at
/// `now` (seconds).
pub fn verdict(rule: &CleanupRule, kind: u32, name: &[u8], mtime: i64, now: i64) -> Verdict {
    if !wanted(rule, kind, name) {
        return Verdict::Keep;
    }
    if kind == libc::S_IFDIR {
        return Verdict::Descend;
    }
    if !is_old(mtime, now, rule.older_than.as_secs()) {
        return Verdict::Keep;
    }
    match rule.when {
        When::Always => Verdict::Remove,
        When::DiskHigh | When::DiskFilling => Verdict::Candidate,
    }
}

/// Whether a filesystem with these figures is at or above `warn` percent used,
/// counting `freed` bytes as already gone (what a dry run would have removed).
/// Never high without a limit.
pub fn at_or_above(mut st: FsStats, warn: Option<f64>, freed: u64) -> bool {
    let Some(warn) = warn else { return false };
    let blocks = freed.div_ceil(st.frsize.max(1));
    st.bfree = st.bfree.saturating_add(blocks).min(st.blocks);
    st.bavail = st.bavail.saturating_add(blocks);
    DiskUsage::from_stats(&st).used_percent as f64 >= warn
}

/// Whether a filesystem with these figures, filling at `rate` bytes a second,
/// runs out of space within `limit` seconds, counting `freed` bytes as already
/// gone (what a dry run would have removed): `when = disk_filling` removes while
/// this holds.
pub fn filling(st: FsStats, rate: f64, limit: f64, freed: u64) -> bool {
    let avail = st.bavail.saturating_mul(st.frsize).saturating_add(freed);
    rate > 0.0 && avail as f64 <= rate * limit
}

/// When a rule acts on what it found.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    /// Every candidate, now (`when = always`).
    Always,
    /// Oldest first while the filesystem is at or above this percentage.
    High(Option<f64>),
    /// Oldest first while the space left lasts at most `limit` seconds at `rate`.
    Filling { rate: f64, limit: f64 },
}

impl Gate {
    /// Whether a filesystem with these figures still calls for removals,
    /// counting `freed` bytes as already gone.
    pub fn calls_for(self, st: FsStats, freed: u64) -> bool {
        match self {
            Gate::Always => true,
            Gate::High(warn) => at_or_above(st, warn, freed),
            Gate::Filling { rate, limit } => filling(st, rate, limit, freed),
        }
    }
}

/// The identity of an entry as first seen, to check before removing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub dev: u64,
    pub ino: u64,
    pub mtime: i64,
    pub size: u64,
}

impl Seen {
    pub fn of(st: &EntryStat) -> Seen {
        Seen {
            dev: st.dev,
            ino: st.ino,
            mtime: st.mtime,
            size: st.size,
        }
    }
}

/// A `disk_high` candidate: its path below the rule's directory.
#[derive(Debug, PartialEq, Eq)]
pub struct Candidate {
    pub seen: Seen,
    pub rel: Vec<u8>,
}

impl Ord for Candidate {
    /// The heap keeps the newest on top, so it is the one dropped when full.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.seen
            .mtime
            .cmp(&other.seen.mtime)
            .then_with(|| self.rel.cmp(&other.rel))
    }
}

impl PartialOrd for Candidate {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// The `MAX_CANDIDATES` oldest candidates seen, so memory stays bounded however
/// large the tree.
#[derive(Debug, Default)]
pub struct Candidates {
    heap: BinaryHeap<Candidate>,
}

impl Candidates {
    pub fn keep(&mut self, c: Candidate) {
        if self.heap.len() < MAX_CANDIDATES {
            self.heap.push(c);
        } else if self.heap.peek().is_some_and(|newest| c < *newest) {
            self.heap.pop();
            self.heap.push(c);
        }
    }

    /// Oldest first (ties by path).
    pub fn oldest_first(self) -> Vec<Candidate> {
        self.heap.into_sorted_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rule(ini: &str) -> CleanupRule {
        let text = format!("[disk]\nmounts =\n[cleanup.t]\npaths = /srv/t\n{ini}");
        let cfg = crate::config::Config::parse(std::path::Path::new("t.ini"), &text)
            .expect("valid config");
        cfg.cleanup.into_iter().next().expect("one rule")
    }

    #[test]
    fn age_and_sparing() {
        assert!(is_old(100, 200, 100));
        assert!(!is_old(101, 200, 100));
        assert!(!is_old(300, 200, 0), "a file from the future is not old");
        assert!(is_spared(b".X11-unix", &[]));
        assert!(is_spared(b".ICE-unix", &[]));
        assert!(is_spared(b"systemd-private-abc", &[]));
        assert!(is_spared(b"app.sock", &[]));
        assert!(is_spared(b"run.pid", &[]));
        assert!(is_spared(b"db.lock", &[]));
        assert!(!is_spared(b"app.log", &[]));
        assert!(is_spared(b"keep-me", &[Glob::new("keep-*")]));
        assert!(!is_spared(b"me-keep", &[Glob::new("keep-*")]));
    }

    #[test]
    fn what_a_rule_does_with_an_entry() {
        use Verdict::*;
        let (dir, file, link) = (libc::S_IFDIR, libc::S_IFREG, libc::S_IFLNK);
        let now = 1_000_000;
        let day = 86_400;
        let always = rule("match = *.log\nolder_than = 1d\nwhen = always\nrecursive = yes\n");
        assert_eq!(always.older_than, Duration::from_secs(day as u64));
        let cases: [(u32, &[u8], i64, Verdict); 9] = [
            (file, b"a.log", now - day, Remove),
            (link, b"a.log", now - day, Remove),
            (file, b"a.log", now - day + 1, Keep),
            (file, b"a.log", now + day, Keep),
            (file, b"a.txt", now - 9 * day, Keep),
            (dir, b"young", now, Descend),
            (dir, b"a.log", now - 9 * day, Descend),
            (libc::S_IFIFO, b"a.log", now - 9 * day, Keep),
            (libc::S_IFSOCK, b"a.log", now - 9 * day, Keep),
        ];
        for (kind, name, mtime, want) in cases {
            let name_s = String::from_utf8_lossy(name);
            assert_eq!(
                verdict(&always, kind, name, mtime, now),
                want,
                "{name_s} {kind:o}"
            );
        }
        let high = rule("match = *.log\nolder_than = 1d\n");
        assert_eq!(verdict(&high, file, b"a.log", now - day, now), Candidate);
        assert_eq!(
            verdict(&high, dir, b"sub", now - day, now),
            Keep,
            "not recursive"
        );
        assert!(wanted(&high, link, b"x.log") && !wanted(&high, dir, b"sub"));
        assert!(!wanted(&high, libc::S_IFCHR, b"x.log"));
    }

    #[test]
    fn high_counts_what_a_dry_run_would_free() {
        // 100 blocks of 1 KiB, 10 free: 90% used.
        let st = FsStats {
            blocks: 100,
            bfree: 10,
            bavail: 10,
            frsize: 1024,
            ..FsStats::default()
        };
        assert!(at_or_above(st, Some(90.0), 0));
        assert!(!at_or_above(st, Some(91.0), 0));
        assert!(!at_or_above(st, None, 0), "no limit: never high");
        // One byte frees a whole block: 89% used.
        assert!(!at_or_above(st, Some(90.0), 1));
        assert!(at_or_above(st, Some(89.0), 1024));
        assert!(
            !at_or_above(st, Some(1.0), u64::MAX),
            "freed is capped at the size"
        );
    }

    #[test]
    fn filling_counts_the_time_left_and_what_a_dry_run_would_free() {
        // 10 blocks of 1 KiB free: 10,240 bytes; at 100 bytes a second, 102.4 s.
        let st = FsStats {
            blocks: 100,
            bfree: 10,
            bavail: 10,
            frsize: 1024,
            ..FsStats::default()
        };
        assert!(filling(st, 100.0, 102.4, 0));
        assert!(!filling(st, 100.0, 102.3, 0));
        assert!(filling(st, 100.0, 112.4, 1000));
        assert!(!filling(st, 100.0, 112.4, 1001));
        assert!(!filling(st, 0.0, 1e9, 0), "not filling at all");
        assert!(!filling(st, -5.0, 1e9, 0), "shrinking");
    }

    #[test]
    fn the_candidates_are_the_oldest() {
        let mut c = Candidates::default();
        let seen = |m| Seen {
            dev: 1,
            ino: m as u64,
            mtime: m,
            size: 1,
        };
        for m in (0..MAX_CANDIDATES as i64 + 100).rev() {
            c.keep(Candidate {
                seen: seen(m),
                rel: m.to_string().into_bytes(),
            });
        }
        let sorted = c.oldest_first();
        assert_eq!(sorted.len(), MAX_CANDIDATES);
        assert_eq!(sorted[0].seen.mtime, 0);
        assert_eq!(
            sorted.last().map(|c| c.seen.mtime),
            Some(MAX_CANDIDATES as i64 - 1)
        );
    }
}
