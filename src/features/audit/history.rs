//! The audit's decisions, on plain values (no file is opened here): whose history
//! is read and where, how appended bytes split into commands, where reading
//! stands in a file (offsets that survive restarts, a replaced or truncated file
//! read from its start, at most `max_bytes` per look), and the records of
//! `state_dir/audit`.

use crate::config::Audit;
use crate::passwd::{User, Users};
use crate::procfs::{fields, parse_u64};
use crate::store::{self, Kind, Stamp};
use std::ffi::CString;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Where reading one user's history stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistState {
    pub user: String,
    /// Device and inode of the file read; (0, 0) while none was (absent, or
    /// refused): whatever file is found then is read from its start.
    pub dev: u64,
    pub ino: u64,
    pub offset: u64,
    /// The last refusal reported for this user, kept in state_dir so cron runs
    /// report it once, as the service does; empty when the last look went well.
    pub refused: String,
}

/// One command, with the time bash recorded for it (`#1700000000` lines, written
/// when HISTTIMEFORMAT is set), if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub ts: Option<u64>,
    pub cmd: Vec<u8>,
}

/// The users whose history is read: the named ones (a name missing from passwd is
/// returned in the second list), or root and every account with uid >= 1000 and a
/// login shell.
pub fn audited<'a>(cfg: &Audit, users: &'a Users) -> (Vec<&'a User>, Vec<String>) {
    if cfg.users.is_empty() {
        // An empty shell field means /bin/sh (passwd(5)).
        let login = |u: &&User| {
            let s = u.shell.as_str();
            !s.ends_with("/nologin") && !s.ends_with("/false")
        };
        return (
            users
                .all()
                .iter()
                .filter(|u| (u.uid == 0 || u.uid >= 1000) && login(u))
                .collect(),
            Vec::new(),
        );
    }
    let mut found = Vec::new();
    let mut missing = Vec::new();
    for name in &cfg.users {
        match users.by_name(name) {
            Some(u) => found.push(u),
            None => missing.push(name.clone()),
        }
    }
    (found, missing)
}

/// Splits complete lines into commands. Returns them and how many bytes were used:
/// a final timestamp line waits for its command, and a line without its newline
/// waits for the rest.
pub fn parse_commands(data: &[u8]) -> (Vec<Command>, usize) {
    let mut out = Vec::new();
    let mut used = 0;
    let mut pending: Option<u64> = None;
    let mut pos = 0;
    while let Some(nl) = data[pos..].iter().position(|&c| c == b'\n') {
        let line = &data[pos..pos + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        pos += nl + 1;
        match line.strip_prefix(b"#").and_then(parse_u64) {
            Some(ts) => pending = Some(ts),
            None if line.is_empty() => {
                if pending.is_none() {
                    used = pos;
                }
            }
            None => {
                out.push(Command {
                    ts: pending.take(),
                    cmd: line.to_vec(),
                });
                used = pos;
            }
        }
    }
    // A pending timestamp lies after `used`: it is read again with its command.
    (out, used)
}

/// Why a history file was not read.
pub type Refusal = String;

/// One audited user and the path of their history, built once per passwd load so
/// a cycle that finds nothing new allocates nothing.
#[derive(Debug, Clone)]
pub struct Target {
    pub user: User,
    pub path: CString,
}

/// The targets for the audited users (`audited`), and the names missing from passwd.
pub fn targets(cfg: &Audit, users: &Users) -> (Vec<Target>, Vec<String>) {
    let (found, missing) = audited(cfg, users);
    let mut targets: Vec<Target> = Vec::with_capacity(found.len());
    for u in found {
        let path = Path::new(&u.home).join(".bash_history");
        let Ok(path) = CString::new(path.as_os_str().as_bytes()) else {
            continue;
        };
        // Two accounts sharing a home share one file: it is read once, for the
        // first (and a name listed twice is one user).
        if targets
            .iter()
            .any(|t| t.path == path || t.user.name == u.name)
        {
            continue;
        }
        targets.push(Target {
            user: u.clone(),
            path,
        });
    }
    (targets, missing)
}

/// What one look at a history found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct News {
    pub commands: Vec<Command>,
    /// When the file grew by more than `max_bytes` since the last look: by how
    /// much, and how many of those bytes were passed over (all of them when the
    /// last `max_bytes` hold no whole line).
    pub overflow: Option<Overflow>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow {
    pub grew: u64,
    pub skipped: u64,
}

/// The history is gone: a file found later is new, even on a reused inode
/// number (the refusal last reported stands).
pub fn forget_file(st: &mut HistState) {
    if st.dev != 0 || st.ino != 0 || st.offset != 0 {
        *st = HistState {
            user: std::mem::take(&mut st.user),
            refused: std::mem::take(&mut st.refused),
            ..HistState::default()
        };
    }
}

/// Why a regular file owned by `uid` with `nlink` links is not `user`'s history
/// to copy: another owner, or a hard link (perhaps to a file not theirs).
pub fn refusal(uid: u32, nlink: u64, user: &User) -> Result<(), Refusal> {
    if uid != user.uid {
        return Err(format!(
            "is owned by uid {uid}, not {} ({})",
            user.uid, user.name
        ));
    }
    if nlink != 1 {
        return Err(format!("has {nlink} links (a hard link is not read)"));
    }
    Ok(())
}

/// Where reading stands in the file found (`dev`, `ino`, `size`): a file not read
/// before (new, replaced, refused until now) or truncated is read from its start,
/// but on the host's first audit run from its end: the past.
pub fn rebase(st: &mut HistState, dev: u64, ino: u64, size: u64, first_run: bool) {
    if st.dev != dev || st.ino != ino || size < st.offset {
        st.dev = dev;
        st.ino = ino;
        st.offset = if first_run { size } else { 0 };
    }
}

/// Where to read from, up to `size`: `st.offset`, or, when more than `max_bytes`
/// were appended, the byte before the last `max_bytes` (the newline it may hold
/// says the window begins with a whole line). `None` when nothing was appended.
pub fn window(st: &HistState, size: u64, max_bytes: u64) -> Option<u64> {
    let new = size.saturating_sub(st.offset);
    match new {
        0 => None,
        n if n > max_bytes => Some(size - max_bytes - 1),
        _ => Some(st.offset),
    }
}

/// The commands in `bytes`, read from `from` (see `window`) up to `size` (or
/// less, when the file shrank meanwhile), and where reading now stands: past the
/// last whole command. Of a window past the limit only the whole lines count; the
/// bytes passed over are told in `overflow`.
pub fn take(st: &mut HistState, size: u64, max_bytes: u64, from: u64, bytes: &[u8]) -> News {
    let new = size.saturating_sub(st.offset);
    let start = if new > max_bytes {
        first_whole_line(bytes)
    } else {
        0
    };
    let overflow = (new > max_bytes).then(|| Overflow {
        grew: new,
        skipped: (from + start as u64).saturating_sub(st.offset),
    });
    let (commands, used) = parse_commands(&bytes[start..]);
    st.offset = from + (start + used) as u64;
    News { commands, overflow }
}

/// Where the first whole line of `window` begins: just after its first newline
/// (its first byte lies before the part to copy), or its end when it has none.
pub fn first_whole_line(window: &[u8]) -> usize {
    window
        .iter()
        .position(|&c| c == b'\n')
        .map_or(window.len(), |i| i + 1)
}

/// The audit state file, `state_dir/audit`. Version 2 names every user looked
/// at (`hist DEV INO OFFSET USER`, 0 0 0 while no file was read) and the refusal
/// last reported (`refused USER REASON`). Version 1, of the release that took a
/// history refused at its first look from its end once readable, loads as is: its
/// offsets stand, and a user it names only in a `refused` line (never read) is
/// read from the start, as version 2 does. The store owns the file; its records
/// are formatted here.
pub const KIND: Kind = Kind {
    name: "audit",
    version: 2,
    oldest: 1,
    refused: "not a version 1 or 2 audit file",
    cap: crate::state::max::AUDIT,
    acts: false,
};

pub fn format(out: &mut String, states: &[HistState]) {
    store::begin(out, &KIND, &Stamp::default());
    for s in states {
        let _ = writeln!(out, "hist {} {} {} {}", s.dev, s.ino, s.offset, s.user);
        if !s.refused.is_empty() {
            // A reason is one line of our own making.
            let why = s.refused.replace('\n', " ");
            let _ = writeln!(out, "refused {} {why}", s.user);
        }
    }
    store::end(out);
}

pub fn parse(text: &[u8]) -> Result<Vec<HistState>, &'static str> {
    let (_, body) = store::open(&KIND, text)?;
    let mut out: Vec<HistState> = Vec::new();
    for line in body.filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix(b"refused ") {
            let text = std::str::from_utf8(rest).map_err(|_| "bad refused line")?;
            let (user, why) = text.split_once(' ').ok_or("bad refused line")?;
            // A user is one word, as on `hist` lines (found by scripts/fuzz).
            if user.is_empty() {
                return Err("bad refused line");
            }
            match out.iter_mut().find(|s| s.user == user) {
                Some(s) => s.refused = why.to_string(),
                None => out.push(HistState {
                    user: user.to_string(),
                    refused: why.to_string(),
                    ..HistState::default()
                }),
            }
            continue;
        }
        let rest = line.strip_prefix(b"hist ").ok_or("unknown line")?;
        let mut f = fields(rest);
        let mut num = || f.next().and_then(parse_u64).ok_or("bad hist line");
        let (dev, ino, offset) = (num()?, num()?, num()?);
        let user = f
            .next()
            .and_then(|u| std::str::from_utf8(u).ok())
            .ok_or("bad hist line")?;
        out.push(HistState {
            user: user.to_string(),
            dev,
            ino,
            offset,
            refused: String::new(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmds(data: &[u8]) -> (Vec<(Option<u64>, String)>, usize) {
        let (c, used) = parse_commands(data);
        (
            c.into_iter()
                .map(|c| (c.ts, String::from_utf8(c.cmd).unwrap()))
                .collect(),
            used,
        )
    }

    #[test]
    fn commands_timestamps_and_partial_lines() {
        assert_eq!(
            cmds(b"ls\ncd /\n"),
            (vec![(None, "ls".into()), (None, "cd /".into())], 8)
        );
        assert_eq!(
            cmds(b"#1700000000\nls -l\n#1700000001\nrm x\n"),
            (
                vec![
                    (Some(1_700_000_000), "ls -l".into()),
                    (Some(1_700_000_001), "rm x".into())
                ],
                35
            )
        );
        // A command still being written, and a timestamp waiting for its command.
        assert_eq!(cmds(b"ls\npartial"), (vec![(None, "ls".into())], 3));
        assert_eq!(cmds(b"ls\n#1700000000\n"), (vec![(None, "ls".into())], 3));
        assert_eq!(cmds(b"#notatime\n"), (vec![(None, "#notatime".into())], 10));
    }

    #[test]
    fn state_round_trips() {
        let s = vec![
            HistState {
                user: "alice".into(),
                dev: 1,
                ino: 2,
                offset: 3,
                refused: "has 2 links (a hard link is not read)".into(),
            },
            HistState {
                user: "bob".into(),
                refused: "is a symlink".into(),
                ..HistState::default()
            },
        ];
        let mut t = String::new();
        format(&mut t, &s);
        assert_eq!(
            t,
            "system-agent-audit 2\nhist 1 2 3 alice\n\
             refused alice has 2 links (a hard link is not read)\n\
             hist 0 0 0 bob\nrefused bob is a symlink\nend\n"
        );
        assert_eq!(parse(t.as_bytes()), Ok(s));
        assert!(parse(b"system-agent-audit 2\nhist 1 2 alice\nend\n").is_err());
        assert!(parse(b"system-agent-audit 3\nend\n").is_err());
    }

    #[test]
    fn a_version_1_file_loads_with_its_offsets() {
        // A user named only as refused was never read: nothing of theirs is known,
        // so their file is read from its start, like any file not read before.
        let v1 = b"system-agent-audit 1\nhist 1 2 3 alice\nrefused bob is a symlink\nend\n";
        assert_eq!(
            parse(v1),
            Ok(vec![
                HistState {
                    user: "alice".into(),
                    dev: 1,
                    ino: 2,
                    offset: 3,
                    refused: String::new(),
                },
                HistState {
                    user: "bob".into(),
                    refused: "is a symlink".into(),
                    ..HistState::default()
                },
            ])
        );
    }

    #[test]
    fn the_first_whole_line_of_a_window() {
        // The window's first byte lies before the part to copy.
        assert_eq!(first_whole_line(b"\nid\n"), 1);
        assert_eq!(first_whole_line(b"xpad\nid\n"), 5);
        assert_eq!(first_whole_line(b"no newline at all"), 17);
        assert_eq!(first_whole_line(b"tail\n"), 5);
        assert_eq!(first_whole_line(b""), 0);
    }

    fn alice() -> User {
        User {
            name: "alice".into(),
            uid: 4001,
            gid: 4001,
            home: "/home/alice".into(),
            shell: "/bin/bash".into(),
        }
    }

    #[test]
    fn only_a_file_of_the_user_with_one_link_is_read() {
        assert_eq!(refusal(4001, 1, &alice()), Ok(()));
        assert_eq!(
            refusal(0, 1, &alice()),
            Err("is owned by uid 0, not 4001 (alice)".into())
        );
        assert_eq!(
            refusal(4001, 2, &alice()),
            Err("has 2 links (a hard link is not read)".into())
        );
    }

    #[test]
    fn a_new_replaced_or_truncated_file_is_read_from_its_start() {
        let at = |offset| HistState {
            user: "alice".into(),
            dev: 1,
            ino: 2,
            offset,
            refused: String::new(),
        };
        // The same file, grown: reading goes on where it stood.
        let mut st = at(10);
        rebase(&mut st, 1, 2, 30, false);
        assert_eq!(st, at(10));
        // Truncated, or another inode: from the start.
        rebase(&mut st, 1, 2, 4, false);
        assert_eq!(st, at(0));
        let mut st = at(10);
        rebase(&mut st, 1, 3, 30, false);
        assert_eq!((st.ino, st.offset), (3, 0));
        // On the host's first audit run, what a file holds is the past.
        let mut st = HistState::default();
        rebase(&mut st, 1, 2, 30, true);
        assert_eq!((st.dev, st.ino, st.offset), (1, 2, 30));
        // Gone: whatever is found next is new; the refusal reported stands.
        let mut st = HistState {
            refused: "is a symlink".into(),
            ..at(10)
        };
        forget_file(&mut st);
        assert_eq!(
            st,
            HistState {
                user: "alice".into(),
                refused: "is a symlink".into(),
                ..HistState::default()
            }
        );
    }

    #[test]
    fn a_window_past_max_bytes_keeps_its_whole_lines_and_says_what_it_passed_over() {
        let mut st = HistState {
            offset: 100,
            ..HistState::default()
        };
        assert_eq!(window(&st, 100, 19), None);
        assert_eq!(window(&st, 119, 19), Some(100));
        // 50 appended, more than 19: the 19 last, and the byte before them.
        assert_eq!(window(&st, 150, 19), Some(130));
        let news = take(&mut st, 150, 19, 130, b"long-line\nid\npartial");
        assert_eq!(
            news,
            News {
                commands: vec![Command {
                    ts: None,
                    cmd: b"id".to_vec()
                }],
                overflow: Some(Overflow {
                    grew: 50,
                    skipped: 40
                }),
            }
        );
        // `partial` waits for its newline.
        assert_eq!(st.offset, 143);
        assert_eq!(window(&st, 151, 19), Some(143));
        let news = take(&mut st, 151, 19, 143, b"partial\n");
        assert_eq!(
            (news.commands.len(), news.overflow, st.offset),
            (1, None, 151)
        );
    }
}
