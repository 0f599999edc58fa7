//! What the reaper keeps in `state_dir/reaper` from one `--once` run to the next
//! (pure: records in, text out, and back): since when each process has been in
//! its state (for `in_state_for`), the SIGTERMs waiting for `grace`, and the
//! processes already dealt with, all of one boot, since pids and start times begin
//! anew with each.
//!
//! ```text
//! system-agent-reaper 2
//! boot 2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59
//! state PID START LETTER SINCE_NS
//! pending PID START SENT_NS RULE
//! settled PID START
//! end
//! ```
//!
//! Version 1 had no boot line: it is read, and dropped by `of_boot` as of an
//! unknown boot.

use crate::procfs::{fields, parse_u64};
use crate::store::{self, Kind, Stamp};
use std::fmt::Write as _;

pub const KIND: Kind = Kind {
    name: "reaper",
    version: 2,
    oldest: 1,
    refused: "not a version 1 or 2 reaper file",
    cap: crate::state::max::REAPER,
    acts: true,
};

/// What the reaper carries from one `--once` to the next.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    /// The boot it belongs to (`boot_token`, one word).
    pub boot: Option<String>,
    /// (pid, start, state letter, since ns)
    pub states: Vec<(i32, u64, u8, u64)>,
    /// (pid, start, rule name, sent ns)
    pub pending: Vec<(i32, u64, String, u64)>,
    /// (pid, start) already dealt with.
    pub settled: Vec<(i32, u64)>,
}

impl Saved {
    /// What of it holds in boot `boot`: all when saved in that boot; nothing when
    /// saved in another, or when either boot is unknown, since pids and start times
    /// begin anew with each boot (a clock or a pending SIGTERM carried over would
    /// follow a stranger).
    pub fn of_boot(self, boot: Option<&str>) -> Saved {
        if boot.is_some() && self.boot.as_deref() == boot {
            self
        } else {
            Saved {
                boot: boot.map(str::to_string),
                ..Saved::default()
            }
        }
    }
}

/// This boot's name in the reaper's state file: the kernel's `boot_id` (a UUID)
/// when it reads as one word of hex digits and dashes, else `btime-N` from the boot
/// time; `None` when neither is known.
pub fn boot_token(boot_id: Option<&[u8]>, btime: Option<u64>) -> Option<String> {
    let id = boot_id.map(<[u8]>::trim_ascii).filter(|b| {
        !b.is_empty() && b.len() <= 64 && b.iter().all(|&c| c.is_ascii_hexdigit() || c == b'-')
    });
    match (id, btime) {
        (Some(id), _) => Some(String::from_utf8_lossy(id).into_owned()),
        (None, Some(t)) => Some(format!("btime-{t}")),
        (None, None) => None,
    }
}

pub fn format(out: &mut String, r: &Saved) {
    let stamp = Stamp {
        boot: r.boot.as_deref(),
        ..Stamp::default()
    };
    store::begin(out, &KIND, &stamp);
    for (pid, start, st, since) in &r.states {
        let _ = writeln!(out, "state {pid} {start} {} {since}", *st as char);
    }
    for (pid, start, rule, sent) in &r.pending {
        let _ = writeln!(out, "pending {pid} {start} {sent} {rule}");
    }
    for (pid, start) in &r.settled {
        let _ = writeln!(out, "settled {pid} {start}");
    }
    store::end(out);
}

pub fn parse(text: &[u8]) -> Result<Saved, &'static str> {
    let (_, body) = store::open(&KIND, text)?;
    let mut lines = body.peekable();
    let stamp = store::read_stamp(&mut lines, &[]).map_err(|_| "bad boot line")?;
    let mut r = Saved {
        boot: stamp.boot.map(str::to_string),
        ..Saved::default()
    };
    for line in lines.filter(|l| !l.is_empty()) {
        record(&mut r, line)?;
    }
    Ok(r)
}

/// One record line into `r`.
fn record(r: &mut Saved, line: &[u8]) -> Result<(), &'static str> {
    let mut f = fields(line);
    let word = f.next();
    let mut num = || f.next().and_then(parse_u64).ok_or("bad reaper line");
    let pid = match word {
        Some(b"state" | b"pending" | b"settled") => i32::try_from(num()?).map_err(|_| "bad pid")?,
        _ => return Err("unknown line"),
    };
    let start = num()?;
    match word {
        Some(b"state") => {
            let st = match f.next() {
                Some([c]) if c.is_ascii_alphabetic() => *c,
                _ => return Err("bad state letter"),
            };
            let since = f.next().and_then(parse_u64).ok_or("bad reaper line")?;
            r.states.push((pid, start, st, since));
        }
        Some(b"pending") => {
            let sent = num()?;
            let rule = f
                .next()
                .and_then(|b| std::str::from_utf8(b).ok())
                .ok_or("bad rule")?;
            r.pending.push((pid, start, rule.to_string(), sent));
        }
        _ => r.settled.push((pid, start)),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One record of each kind, of boot `boot`.
    fn saved(boot: &str) -> Saved {
        Saved {
            boot: Some(boot.into()),
            states: vec![(10, 20, b'T', 30)],
            pending: vec![(11, 21, "hogs".into(), 31)],
            settled: vec![(12, 22)],
        }
    }

    #[test]
    fn reaper_round_trip() {
        let r = saved("2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59");
        let mut s = String::new();
        format(&mut s, &r);
        assert_eq!(
            s,
            "system-agent-reaper 2\nboot 2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59\n\
             state 10 20 T 30\npending 11 21 31 hogs\nsettled 12 22\nend\n"
        );
        assert_eq!(parse(s.as_bytes()), Ok(r));
        assert!(parse(b"system-agent-reaper 2\nstate 1 2 T\nend\n").is_err());
        assert!(parse(b"system-agent-reaper 2\nstate 1 2 T 3\n").is_err());
        assert!(parse(b"system-agent-reaper 2\nboot\nend\n").is_err());
        assert!(parse(b"system-agent-reaper 3\nend\n").is_err());
        // A file from before boots were recorded: read, of no known boot.
        let v1 = parse(b"system-agent-reaper 1\nstate 10 20 T 30\nend\n");
        assert_eq!(v1.map(|r| (r.boot, r.states.len())), Ok((None, 1)));
    }

    #[test]
    fn reaper_state_holds_only_in_its_own_boot() {
        let saved = saved("a");
        assert_eq!(saved.clone().of_boot(Some("a")), saved);
        let fresh = |boot: Option<&str>| Saved {
            boot: boot.map(str::to_string),
            ..Saved::default()
        };
        assert_eq!(saved.clone().of_boot(Some("b")), fresh(Some("b")));
        assert_eq!(saved.clone().of_boot(None), fresh(None));
        let unknown = Saved {
            boot: None,
            ..saved
        };
        assert_eq!(unknown.of_boot(Some("a")), fresh(Some("a")));
    }

    #[test]
    fn the_boot_is_named_by_boot_id_else_btime() {
        let id = b"2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59\n";
        assert_eq!(
            boot_token(Some(id), Some(5)).as_deref(),
            Some("2c8e1f0a-5b1d-4e63-9d2a-7f1e0c3b4a59")
        );
        assert_eq!(boot_token(None, Some(5)).as_deref(), Some("btime-5"));
        // Not one word of hex and dashes (it goes into a line of the state file).
        assert_eq!(
            boot_token(Some(b"a b\n"), Some(5)).as_deref(),
            Some("btime-5")
        );
        assert_eq!(boot_token(Some(b"\n"), None), None);
    }
}
