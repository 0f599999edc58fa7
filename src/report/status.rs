//! The status file (`[agent] status_file`) and what `--status` makes of it. The
//! service writes its last cycle's Nagios line there, with the line's state, when
//! the cycle read the host and the interval it runs at; `--status` repeats it to
//! a monitoring system that runs as another user (NRPE's `nagios`), which needs
//! neither the agent's config nor its rights, and turns a file that stopped
//! changing into CRITICAL. Pure: the file's text in, the line to print and the
//! exit status out.
//!
//! The file is of the state files' family (see `store`):
//!
//! ```text
//! system-agent-status 1
//! saved 1795687500123000000
//! interval 10000000000
//! state 2
//! line SYSTEM-AGENT CRITICAL - disk / 96% | cpu=12.0%;80;90 ...
//! end
//! ```

use super::nagios::sanitize;
use crate::judge::Status;
use crate::procfs::parse_u64;
use crate::store::{self, Kind, Stamp};
use std::fmt::Write as _;

/// The largest status file read: its line is at most 4,096 bytes.
pub const MAX: u64 = 16 << 10;

/// The longest line taken from the file (the status line's own limit).
const MAX_LINE: usize = 4095;

/// A status file older than this many intervals means the service is not cycling.
pub const STALE_INTERVALS: u64 = 3;

pub const KIND: Kind = Kind {
    name: "status",
    version: 1,
    oldest: 1,
    refused: "not a version 1 status file",
    cap: MAX,
    acts: false,
};

/// What the last cycle told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Told<'a> {
    /// Wall clock (ns) when the cycle read the host.
    pub saved_ns: u64,
    pub interval_ns: u64,
    pub state: Status,
    /// The Nagios line, without its newline.
    pub line: &'a str,
}

/// The file's text (`out` cleared first, its storage reused).
pub fn format(out: &mut String, t: &Told) {
    let stamp = Stamp {
        saved_ns: Some(t.saved_ns),
        ..Stamp::default()
    };
    store::begin(out, &KIND, &stamp);
    let _ = writeln!(out, "interval {}", t.interval_ns);
    let _ = writeln!(out, "state {}", t.state as u8);
    let _ = writeln!(out, "line {}", t.line);
    store::end(out);
}

/// The file's records, or why it cannot be used. Records of another word are
/// skipped (a later version may add some).
pub fn parse(text: &[u8]) -> Result<Told<'_>, &'static str> {
    let (_, lines) = store::open(&KIND, text)?;
    let mut lines = lines.peekable();
    let stamp = store::read_stamp(&mut lines, &["saved"]).map_err(|_| "no valid saved time")?;
    let (mut interval, mut state, mut line) = (None, None, None);
    for l in lines {
        let (word, rest) = match l.iter().position(|&b| b == b' ') {
            Some(i) => (&l[..i], &l[i + 1..]),
            None => (l, &b""[..]),
        };
        match word {
            b"interval" => {
                interval = Some(parse_u64(rest).filter(|&n| n > 0).ok_or("bad interval")?)
            }
            b"state" => {
                let n = parse_u64(rest).and_then(|n| u8::try_from(n).ok());
                state = Some(n.and_then(Status::from_u8).ok_or("bad state")?);
            }
            b"line" => line = Some(std::str::from_utf8(rest).map_err(|_| "line not UTF-8")?),
            _ => {}
        }
    }
    let (Some(interval_ns), Some(state), Some(line)) = (interval, state, line) else {
        return Err("interval, state or line missing");
    };
    let ok = line.len() <= MAX_LINE
        && !line.chars().any(char::is_control)
        && line
            .strip_prefix("SYSTEM-AGENT ")
            .and_then(|r| r.strip_prefix(state.nagios()))
            .is_some_and(|r| r.starts_with(" - "));
    if !ok {
        return Err("line is not a status line of its state");
    }
    Ok(Told {
        saved_ns: stamp.saved_ns.unwrap_or(0),
        interval_ns,
        state,
        line,
    })
}

/// What `--status` prints (into `out`, cleared first) and exits with, given the
/// file at `path` as read (`Err`: why it could not be) at `now_ns`: the line and
/// its state; CRITICAL when the last cycle is more than `STALE_INTERVALS`
/// intervals old; UNKNOWN when the file cannot be read or used, or is dated that
/// far in the future.
pub fn verdict(out: &mut String, path: &str, read: Result<&[u8], String>, now_ns: u64) -> Status {
    out.clear();
    let unknown = |out: &mut String, what: &str, why: &str| {
        out.push_str("SYSTEM-AGENT UNKNOWN - ");
        out.push_str(what);
        out.push(' ');
        sanitize(out, path);
        out.push_str(": ");
        sanitize(out, why);
        Status::Unknown
    };
    let text = match read {
        Ok(text) => text,
        Err(why) => return unknown(out, "cannot read status file", &why),
    };
    let t = match parse(text) {
        Ok(t) => t,
        Err(why) => return unknown(out, "unusable status file", why),
    };
    let limit = t.interval_ns.saturating_mul(STALE_INTERVALS);
    if t.saved_ns > now_ns.saturating_add(limit) {
        let ahead = (t.saved_ns - now_ns) / 1_000_000_000;
        let why = format!("dated {ahead}s in the future (was the clock set back?)");
        return unknown(out, "status file", &why);
    }
    let age = now_ns.saturating_sub(t.saved_ns);
    if age > limit {
        let secs = age / 1_000_000_000;
        let _ = write!(
            out,
            "SYSTEM-AGENT CRITICAL - no cycle for {secs}s (is the service running?)"
        );
        return Status::Critical;
    }
    out.push_str(t.line);
    t.state
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;
    const NOW: u64 = 1_795_687_500 * S;
    const LINE: &str = "SYSTEM-AGENT CRITICAL - disk / 96% | cpu=12.0%;80;90 disk_root=96%;85;95";

    fn file(saved_ns: u64) -> String {
        let mut out = String::new();
        let t = Told {
            saved_ns,
            interval_ns: 10 * S,
            state: Status::Critical,
            line: LINE,
        };
        format(&mut out, &t);
        out
    }

    fn check(read: Result<&[u8], String>) -> (Status, String) {
        let mut out = String::new();
        let s = verdict(&mut out, "/var/lib/aion/system_agent.status", read, NOW);
        (s, out)
    }

    #[test]
    fn the_file_is_of_the_state_family_and_reads_back() {
        let text = file(NOW);
        assert_eq!(
            text,
            format!(
                "system-agent-status 1\nsaved {NOW}\ninterval 10000000000\nstate 2\nline {LINE}\nend\n"
            )
        );
        let t = parse(text.as_bytes()).unwrap();
        assert_eq!(
            (t.saved_ns, t.interval_ns, t.state, t.line),
            (NOW, 10 * S, Status::Critical, LINE)
        );
    }

    #[test]
    fn a_fresh_file_gives_its_line_and_state() {
        // Up to three intervals old, to the nanosecond.
        for age in [0, 29 * S, 30 * S] {
            assert_eq!(
                check(Ok(file(NOW - age).as_bytes())),
                (Status::Critical, LINE.to_string())
            );
        }
    }

    #[test]
    fn a_file_older_than_three_intervals_is_critical() {
        assert_eq!(
            check(Ok(file(NOW - 30 * S - 1).as_bytes())),
            (
                Status::Critical,
                "SYSTEM-AGENT CRITICAL - no cycle for 30s (is the service running?)".to_string()
            )
        );
        assert_eq!(
            check(Ok(file(NOW - 3600 * S).as_bytes())).1,
            "SYSTEM-AGENT CRITICAL - no cycle for 3600s (is the service running?)"
        );
    }

    #[test]
    fn a_file_from_the_future_is_unknown() {
        assert_eq!(check(Ok(file(NOW + 30 * S).as_bytes())).0, Status::Critical);
        assert_eq!(
            check(Ok(file(NOW + 31 * S).as_bytes())),
            (
                Status::Unknown,
                "SYSTEM-AGENT UNKNOWN - status file /var/lib/aion/system_agent.status: \
                 dated 31s in the future (was the clock set back?)"
                    .to_string()
            )
        );
    }

    #[test]
    fn an_unreadable_file_is_unknown_with_why() {
        assert_eq!(
            check(Err("No such file or directory".to_string())),
            (
                Status::Unknown,
                "SYSTEM-AGENT UNKNOWN - cannot read status file \
                 /var/lib/aion/system_agent.status: No such file or directory"
                    .to_string()
            )
        );
    }

    #[test]
    fn garbage_is_unknown() {
        let good = file(NOW);
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "not a version 1 status file"),
            ("hello\n".into(), "not a version 1 status file"),
            (
                good.replace("status 1", "status 2"),
                "not a version 1 status file",
            ),
            (good.replace("end\n", ""), "truncated"),
            (good.replace("saved ", "saved x"), "no valid saved time"),
            (
                good.replace(&format!("saved {NOW}\n"), ""),
                "no valid saved time",
            ),
            (
                good.replace("interval 10000000000", "interval 0"),
                "bad interval",
            ),
            (good.replace("state 2", "state 4"), "bad state"),
            (good.replace("state 2", "state 256"), "bad state"),
            (
                good.replace("state 2\n", ""),
                "interval, state or line missing",
            ),
            (
                good.replace("state 2", "state 0"),
                "line is not a status line of its state",
            ),
            (
                good.replace("disk /", "disk \u{1b}[2J"),
                "line is not a status line of its state",
            ),
            (
                good.replace(LINE, "OK"),
                "line is not a status line of its state",
            ),
            (
                good.replace(LINE, &"x".repeat(5000)),
                "line is not a status line of its state",
            ),
        ];
        for (text, why) in cases {
            assert_eq!(parse(text.as_bytes()).err(), Some(why), "{text:?}");
            let (s, out) = check(Ok(text.as_bytes()));
            assert_eq!(s, Status::Unknown);
            assert_eq!(
                out,
                format!(
                    "SYSTEM-AGENT UNKNOWN - unusable status file /var/lib/aion/system_agent.status: {why}"
                )
            );
        }
        let bytes = good.replace("disk /", "disk \u{e9}").into_bytes();
        let mut latin1 = bytes.clone();
        let at = bytes.windows(2).position(|w| w == [0xc3, 0xa9]).unwrap();
        latin1.splice(at..at + 2, [0xe9]);
        assert_eq!(parse(&latin1).err(), Some("line not UTF-8"));
    }

    #[test]
    fn unknown_records_are_skipped_and_the_path_cannot_break_the_line() {
        let text = file(NOW).replace("state 2\n", "state 2\npid 77\n\n");
        assert_eq!(check(Ok(text.as_bytes())).0, Status::Critical);
        let mut out = String::new();
        verdict(&mut out, "/x\n|y", Err("gone".into()), NOW);
        assert_eq!(
            out,
            "SYSTEM-AGENT UNKNOWN - cannot read status file /x??y: gone"
        );
    }
}
