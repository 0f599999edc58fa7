//! `/etc/passwd` and `/etc/group` parsed by hand (`[paths] passwd`, `[paths] group`),
//! never through NSS: a static binary in a chroot has no NSS modules, and tests
//! point it at fixture files.
//!
//! ```text
//! root:x:0:0:root:/root:/bin/bash
//! man:x:6:12:man:/var/cache/man:/usr/sbin/nologin
//! ```

use crate::procfs::{lines, parse_u64};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
    pub shell: String,
}

/// All well-formed entries, in file order. Malformed lines, comments and NIS `+`/`-`
/// lines are skipped: one bad line must not hide every other user.
pub fn parse_passwd(buf: &[u8]) -> Vec<User> {
    lines(buf).filter_map(parse_line).collect()
}

/// The `:`-separated fields of an entry line, or `None` for a blank line, a
/// comment or a NIS `+`/`-` line.
fn fields(line: &[u8]) -> Option<impl Iterator<Item = &[u8]>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() || matches!(line[0], b'#' | b'+' | b'-') {
        return None;
    }
    Some(line.split(|&c| c == b':'))
}

fn parse_line(line: &[u8]) -> Option<User> {
    let mut f = fields(line)?;
    let name = f.next()?;
    let _password = f.next()?;
    let uid = u32::try_from(parse_u64(f.next()?)?).ok()?;
    let gid = u32::try_from(parse_u64(f.next()?)?).ok()?;
    let _gecos = f.next()?;
    let home = f.next()?;
    let shell = f.next()?;
    if f.next().is_some() || name.is_empty() {
        return None;
    }
    let text = |b: &[u8]| std::str::from_utf8(b).ok().map(str::to_owned);
    Some(User {
        name: text(name)?,
        uid,
        gid,
        home: text(home)?,
        shell: text(shell)?,
    })
}

/// The accounts, in file order, with a uid index for log lines; built once per load.
#[derive(Debug, Clone, Default)]
pub struct Users {
    entries: Vec<User>,
    /// (uid, index of the first entry with it), sorted by uid.
    by_uid: Vec<(u32, usize)>,
}

impl Users {
    pub fn new(entries: Vec<User>) -> Users {
        let mut by_uid: Vec<(u32, usize)> = entries
            .iter()
            .enumerate()
            .map(|(i, u)| (u.uid, i))
            .collect();
        // The first entry for a uid wins, as getpwuid does (the sort is stable).
        by_uid.sort_by_key(|&(uid, _)| uid);
        by_uid.dedup_by_key(|&mut (uid, _)| uid);
        Users { entries, by_uid }
    }

    pub fn name(&self, uid: u32) -> Option<&str> {
        let i = self.by_uid.binary_search_by_key(&uid, |&(u, _)| u).ok()?;
        Some(&self.entries[self.by_uid[i].1].name)
    }

    /// The uid of a user name (the first entry with that name).
    pub fn uid_of(&self, name: &str) -> Option<u32> {
        self.by_name(name).map(|u| u.uid)
    }

    /// The first entry with that name, as getpwnam does.
    pub fn by_name(&self, name: &str) -> Option<&User> {
        self.entries.iter().find(|u| u.name == name)
    }

    /// Every entry, in file order: accounts sharing a uid (a `toor` beside `root`)
    /// are each there.
    pub fn all(&self) -> &[User] {
        &self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// One group: `adm:x:4:syslog,alice`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub name: String,
    pub gid: u32,
    /// User names listed as members, as written.
    pub members: Vec<String>,
}

/// All well-formed group entries, in file order; malformed lines, comments and NIS
/// `+`/`-` lines are skipped, as in `parse_passwd`.
pub fn parse_group(buf: &[u8]) -> Vec<Group> {
    lines(buf).filter_map(parse_group_line).collect()
}

fn parse_group_line(line: &[u8]) -> Option<Group> {
    let mut f = fields(line)?;
    let name = f.next()?;
    let _password = f.next()?;
    let gid = u32::try_from(parse_u64(f.next()?)?).ok()?;
    let members = f.next()?;
    if f.next().is_some() || name.is_empty() {
        return None;
    }
    let members = std::str::from_utf8(members).ok()?;
    Some(Group {
        name: std::str::from_utf8(name).ok()?.to_string(),
        gid,
        members: members
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

/// The groups a process of `user` (primary group `gid`) gets, as `initgroups` gives
/// them: `gid` first, then every group listing `user` as a member, each id once,
/// in file order.
pub fn groups_of(groups: &[Group], user: &str, gid: u32) -> Vec<u32> {
    let mut out = vec![gid];
    for g in groups {
        if g.members.iter().any(|m| m == user) && !out.contains(&g.gid) {
            out.push(g.gid);
        }
    }
    out
}
