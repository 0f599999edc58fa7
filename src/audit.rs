//! The shell-history audit (`[audit]`, the sixth step of a cycle): each cycle,
//! what each audited user appended to `~/.bash_history`, one `history` event per
//! command, into the audit log and syslog.
//!
//! A history file is the user's to control, so it is read as hostile input: opened
//! with `O_NOFOLLOW | O_NONBLOCK` (a symlink fails, a FIFO cannot block us), then
//! used only if it is a regular file owned by that user with one link (so neither
//! a symlink nor a hard link to `/etc/shadow`, nor a device, is ever copied).
//!
//! Nor can the user dodge the audit. Offsets, inode and device live in state_dir,
//! so nothing is logged twice and nothing is skipped across restarts; a truncated
//! or replaced file is read from its start. Only the host's first audit run (no
//! audit state yet) takes the histories readable then from their end, as the past;
//! any other history the agent had not read (refused at its first look, such as a
//! symlink or a root-owned file, created later, or a user added later) is read from
//! its start once it is readable. And at most `max_bytes` are read per file per
//! cycle: from a file that grew by more (padding meant to hide what follows, a huge
//! sparse file) only the last `max_bytes` are read, from their first whole line,
//! and the bytes passed over are reported.

use crate::config::Audit;
use crate::files;
use crate::passwd::{User, Users};
use crate::procfs::{fields, lines, parse_u64};
use std::ffi::CString;
use std::fmt::Write as _;
use std::os::fd::{AsRawFd, RawFd};
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

/// Reads what the target's user appended since `st` (updated). On the host's
/// first audit run (`first_run`) a readable file is taken from its end; any other
/// file not read before is read from its start. `buf` is scratch, never grown
/// past `max_bytes + 1`.
pub fn read_new(
    t: &Target,
    st: &mut HistState,
    first_run: bool,
    max_bytes: u64,
    buf: &mut Vec<u8>,
) -> Result<News, Refusal> {
    let user = &t.user;
    // The one safe open: no symlink followed, no FIFO waited on, no device opened,
    // only a regular file kept.
    let opened = match files::open_regular_at(libc::AT_FDCWD, &t.path, false) {
        Ok(o) => o,
        Err(why) if why.is_missing() => {
            // Gone: a file found later is new, even on a reused inode number.
            if st.dev != 0 || st.ino != 0 || st.offset != 0 {
                *st = HistState {
                    user: user.name.clone(),
                    refused: std::mem::take(&mut st.refused),
                    ..HistState::default()
                };
            }
            return Ok(News::default());
        }
        Err(files::Why::NotRegular("a symbolic link")) => return Err("is a symlink".to_string()),
        Err(files::Why::NotRegular(_)) => return Err("is not a regular file".to_string()),
        Err(why) if why.errno().and_then(std::io::Error::raw_os_error) == Some(libc::EISDIR) => {
            return Err("is not a regular file".to_string());
        }
        Err(why) => return Err(why.to_string()),
    };
    let (fd, meta) = (opened.fd, opened.stat);
    if meta.st_uid != user.uid {
        return Err(format!(
            "is owned by uid {}, not {} ({})",
            meta.st_uid, user.uid, user.name
        ));
    }
    if meta.st_nlink != 1 {
        return Err(format!(
            "has {} links (a hard link is not read)",
            meta.st_nlink
        ));
    }
    let size = meta.st_size.max(0) as u64;
    if st.dev != meta.st_dev || st.ino != meta.st_ino || size < st.offset {
        // Not read before (new, replaced, refused until now) or truncated: from
        // its start, but on the host's first audit run, from its end: the past.
        st.dev = meta.st_dev;
        st.ino = meta.st_ino;
        st.offset = if first_run { size } else { 0 };
    }
    Ok(read_tail(fd.as_raw_fd(), st, size, max_bytes, buf))
}

/// Reads the file from `st.offset` to `size`, or, when that is more than
/// `max_bytes`, only the whole lines of its last `max_bytes`.
fn read_tail(fd: RawFd, st: &mut HistState, size: u64, max_bytes: u64, buf: &mut Vec<u8>) -> News {
    let new = size - st.offset;
    if new == 0 {
        return News::default();
    }
    // Past the limit, one byte before the window is read too: the newline it may
    // hold says the window begins with a whole line.
    let from = if new > max_bytes {
        size - max_bytes - 1
    } else {
        st.offset
    };
    buf.clear();
    buf.resize((size - from) as usize, 0);
    let got = crate::sys::pread_full(fd, buf, from);
    let start = if new > max_bytes {
        first_whole_line(&buf[..got])
    } else {
        0
    };
    let overflow = (new > max_bytes).then(|| Overflow {
        grew: new,
        skipped: from + start as u64 - st.offset,
    });
    let (commands, used) = parse_commands(&buf[start..got]);
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

/// The audit state file. Version 2 names every user looked at (`hist DEV INO
/// OFFSET USER`, 0 0 0 while no file was read) and the refusal last reported.
/// Version 1, of the release that took a history refused at its first look from
/// its end once readable, loads as is: its offsets stand, and a user it names only
/// in a `refused` line (never read) is read from the start, as version 2 does.
/// Where reading each user's history stands. (The store owns the file; its records are formatted here.)
pub const KIND: crate::store::Kind = crate::store::Kind {
    name: "audit",
    version: 2,
    oldest: 1,
    refused: "not a version 1 or 2 audit file",
    cap: crate::state::max::AUDIT,
    acts: false,
};

const MAGIC: &str = "system-agent-audit 2";
const MAGIC_V1: &str = "system-agent-audit 1";

pub fn format(out: &mut String, states: &[HistState]) {
    out.clear();
    let _ = writeln!(out, "{MAGIC}");
    for s in states {
        let _ = writeln!(out, "hist {} {} {} {}", s.dev, s.ino, s.offset, s.user);
        if !s.refused.is_empty() {
            // A reason is one line of our own making.
            let why = s.refused.replace('\n', " ");
            let _ = writeln!(out, "refused {} {why}", s.user);
        }
    }
    out.push_str("end\n");
}

pub fn parse(text: &[u8]) -> Result<Vec<HistState>, &'static str> {
    let body = text.strip_suffix(b"end\n").ok_or("truncated")?;
    let mut it = lines(body);
    let magic = it.next();
    if magic != Some(MAGIC.as_bytes()) && magic != Some(MAGIC_V1.as_bytes()) {
        return Err("not a version 1 or 2 audit file");
    }
    let mut out: Vec<HistState> = Vec::new();
    for line in it.filter(|l| !l.is_empty()) {
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

    #[test]
    fn a_huge_growth_reads_only_the_last_max_bytes() {
        // A 10 GiB sparse history: only its last 17 bytes (16 and the one before)
        // are read; the whole lines among them are copied, the rest passed over.
        let dir = std::env::temp_dir().join(format!("sa-audit-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".bash_history");
        let size: u64 = 10 << 30;
        let tail = b"\npad-line\nid\npartial";
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, tail, size - tail.len() as u64).unwrap();
        drop(f);
        let t = Target {
            user: User {
                name: "me".into(),
                // SAFETY: geteuid(2) cannot fail.
                uid: crate::sys::geteuid(),
                gid: 0,
                home: dir.display().to_string(),
                shell: "/bin/sh".into(),
            },
            path: CString::new(path.as_os_str().as_bytes()).unwrap(),
        };
        let mut st = HistState::default();
        let mut buf = Vec::new();
        let news = read_new(&t, &mut st, false, 16, &mut buf);
        let _ = std::fs::remove_dir_all(&dir);
        let news = news.unwrap();
        assert_eq!(
            news.commands,
            vec![Command {
                ts: None,
                cmd: b"id".to_vec()
            }]
        );
        assert_eq!(
            news.overflow,
            Some(Overflow {
                grew: size,
                skipped: size - 10
            })
        );
        // `partial` waits for its newline.
        assert_eq!(st.offset, size - 7);
        assert!(buf.capacity() <= 32, "{}", buf.capacity());
    }
}
