//! `/proc/self/mountinfo` (proc(5)): which mount holds a path, and its filesystem
//! type, so that a network or FUSE filesystem can be told apart from a local one
//! before anything is asked of it.
//!
//! ```text
//! 64 43 0:40 / /srv/cap/tmpfs\040mnt rw,relatime - tmpfs none rw
//! 70 43 0:45 / /srv/cap/shared rw,relatime shared:1 - tmpfs sh rw
//! ```
//! Fields: mount id, parent id, major:minor, root, mount point, mount options, zero
//! or more optional fields, `-`, filesystem type, source, superblock options. The
//! kernel escapes space, tab, newline and backslash in paths and types as `\040`,
//! `\011`, `\012` and `\134`, so fields are separated by single spaces.

use super::{ParseError, parse_u64};

/// A field as the kernel printed it, escapes and all; decoded on demand, so
/// looking a path up allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Escaped<'a>(pub &'a [u8]);

impl<'a> Escaped<'a> {
    /// The decoded bytes: `\ooo` (three octal digits) is one byte; any other
    /// backslash stands for itself.
    pub fn bytes(self) -> impl Iterator<Item = u8> + 'a {
        let s = self.0;
        let mut i = 0;
        std::iter::from_fn(move || {
            let c = *s.get(i)?;
            if c == b'\\'
                && let Some(&[a, b, d]) = s.get(i + 1..i + 4)
                && (b'0'..=b'3').contains(&a)
                && [b, d].iter().all(|x| (b'0'..=b'7').contains(x))
            {
                i += 4;
                return Some((a - b'0') << 6 | (b - b'0') << 3 | (d - b'0'));
            }
            i += 1;
            Some(c)
        })
    }

    pub fn decoded(self) -> Vec<u8> {
        self.bytes().collect()
    }

    /// Whether this mount point holds `path` (absolute, without a trailing slash
    /// or empty components): it is `/`, the path itself, or a leading part of it
    /// that ends where a component does (`/mnt/a` holds `/mnt/a/b`, not `/mnt/ab`).
    /// Returns the decoded length of the mount point when it does.
    pub fn holds(self, path: &[u8]) -> Option<usize> {
        let mut n = 0;
        for c in self.bytes() {
            if path.get(n) != Some(&c) {
                return None;
            }
            n += 1;
        }
        let root = n == 1 && path.first() == Some(&b'/');
        (root || n == path.len() || (n > 0 && path.get(n) == Some(&b'/'))).then_some(n)
    }
}

/// One line of mountinfo: what the agent needs of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MountLine<'a> {
    pub id: u64,
    pub parent: u64,
    pub point: Escaped<'a>,
    pub fstype: Escaped<'a>,
}

pub fn parse_mountinfo_line(line: &[u8]) -> Result<MountLine<'_>, ParseError> {
    let mut f = line.split(|&c| c == b' ');
    let mut next = |what| f.next().filter(|x| !x.is_empty()).ok_or(ParseError(what));
    let id = parse_u64(next("no mount id")?).ok_or(ParseError("bad mount id"))?;
    let parent = parse_u64(next("no parent id")?).ok_or(ParseError("bad parent id"))?;
    let dev = next("no device")?;
    if !dev.contains(&b':') {
        return Err(ParseError("bad device"));
    }
    next("no root")?;
    let point = next("no mount point")?;
    if point.first() != Some(&b'/') {
        return Err(ParseError("mount point is not absolute"));
    }
    next("no mount options")?;
    // Optional fields (`shared:1`, `master:2`, ...) up to the `-` separator.
    while next("no \"-\" separator")? != b"-" {}
    let fstype = next("no filesystem type")?;
    Ok(MountLine {
        id,
        parent,
        point: Escaped(point),
        fstype: Escaped(fstype),
    })
}

/// The mount that holds `path`: the longest mount point that is a leading part of
/// it, the later line when two are equally long (a mount stacked on another at the
/// same place is listed after it and hides it). Lines that do not parse are skipped.
/// A mount hidden by a later mount over one of its parent directories is not told
/// apart (that takes the whole tree, and is rare on watched paths).
pub fn mount_holding<'a>(buf: &'a [u8], path: &[u8]) -> Option<MountLine<'a>> {
    let mut best: Option<(usize, MountLine<'a>)> = None;
    for line in super::lines(buf) {
        let Ok(m) = parse_mountinfo_line(line) else {
            continue;
        };
        if let Some(n) = m.point.holds(path)
            && best.as_ref().is_none_or(|(len, _)| n >= *len)
        {
            best = Some((n, m));
        }
    }
    best.map(|(_, m)| m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_decode_and_stray_backslashes_stay() {
        let d = |s: &[u8]| Escaped(s).decoded();
        assert_eq!(d(b"/a\\040b"), b"/a b");
        assert_eq!(d(b"/t\\011x\\012y\\134z"), b"/t\tx\ny\\z");
        assert_eq!(d(b"/a\\04"), b"/a\\04");
        assert_eq!(d(b"/a\\400"), b"/a\\400");
        assert_eq!(d(b"/a\\08x"), b"/a\\08x");
        assert_eq!(d(b"\\"), b"\\");
    }

    #[test]
    fn holds_ends_at_a_component() {
        let h = |p: &[u8], path: &[u8]| Escaped(p).holds(path);
        assert_eq!(h(b"/", b"/"), Some(1));
        assert_eq!(h(b"/", b"/var/log"), Some(1));
        assert_eq!(h(b"/mnt/a", b"/mnt/a"), Some(6));
        assert_eq!(h(b"/mnt/a", b"/mnt/a/b"), Some(6));
        assert_eq!(h(b"/mnt/a", b"/mnt/ab"), None);
        assert_eq!(h(b"/mnt/a", b"/mnt"), None);
        assert_eq!(h(b"/mnt/a\\040b", b"/mnt/a b/c"), Some(8));
        assert_eq!(h(b"/mnt/a\\040b", b"/mnt/a\\040b"), None);
    }
}
