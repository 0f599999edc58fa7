//! Per-process files: `/proc/PID/stat`, `/proc/PID/status`, `/proc/PID/cmdline`.
//!
//! The name in `stat` is whatever the process chose (up to 15 bytes for user processes,
//! longer for some kernel threads) and may contain spaces, parentheses and any byte
//! but NUL, so the parser takes the first `(` and the *last* `)`:
//!
//! ```text
//! 1234 (a) (b)) S 1 1234 1234 0 -1 4194560 98 0 0 0 7 3 0 0 20 0 1 0 4242 5566 123 ...
//! ```

use super::{ParseError, fields, lines, parse_i64, parse_u64};

/// `PF_KTHREAD` in the `flags` field: a kernel thread.
pub const PF_KTHREAD: u64 = 0x0020_0000;

/// The fields of `/proc/PID/stat` the agent uses. `name` borrows from the buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PidStat<'a> {
    pub pid: i32,
    pub name: &'a [u8],
    /// One letter: R S D T t Z X I ...
    pub state: u8,
    pub ppid: i32,
    pub pgrp: i32,
    pub flags: u64,
    /// User and system CPU time in clock ticks.
    pub utime: u64,
    pub stime: u64,
    /// Start time in clock ticks after boot.
    pub starttime: u64,
    /// Resident set in pages (can read negative on some kernels; clamped to 0).
    pub rss_pages: u64,
    /// Threads in the group. A group whose main thread exited shows state `Z`
    /// while its other threads run: only `Z` with one thread is a zombie.
    pub num_threads: u64,
}

impl PidStat<'_> {
    /// By `PF_KTHREAD` alone (reliable since 2.6.27): in a PID namespace, pid 2 and
    /// its children are ordinary processes.
    pub fn is_kernel_thread(&self) -> bool {
        self.flags & PF_KTHREAD != 0
    }

    /// A zombie: exited, waiting for its parent (not a live group whose main
    /// thread alone has exited).
    pub fn is_zombie(&self) -> bool {
        self.state == b'Z' && self.num_threads <= 1
    }

    pub fn cpu_ticks(&self) -> u64 {
        self.utime.saturating_add(self.stime)
    }
}

/// The last `byte` in `s`, looked for eight bytes at a time: the name's closing
/// parenthesis sits near the start of a stat line of some 300 bytes, and a scan
/// looks for it once per process (a byte-by-byte `rposition` was a third of the
/// parse).
fn rfind_byte(s: &[u8], byte: u8) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGH: u64 = u64::from_ne_bytes([0x80; 8]);
    let pattern = ONES.wrapping_mul(byte as u64);
    let mut end = s.len();
    while let Some(chunk) = end.checked_sub(8).map(|start| &s[start..end]) {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        // A zero byte in `x` is a match; this is nonzero exactly when there is one.
        let x = u64::from_ne_bytes(word) ^ pattern;
        if x.wrapping_sub(ONES) & !x & HIGH != 0 {
            break;
        }
        end -= 8;
    }
    s[..end].iter().rposition(|&c| c == byte)
}

pub fn parse_pid_stat(buf: &[u8]) -> Result<PidStat<'_>, ParseError> {
    let open = buf
        .iter()
        .position(|&c| c == b'(')
        .ok_or(ParseError("no '(' before the name"))?;
    let close = rfind_byte(buf, b')').ok_or(ParseError("no ')' after the name"))?;
    if close < open {
        return Err(ParseError("')' before '('"));
    }
    let pid = parse_i64(buf[..open].trim_ascii())
        .and_then(|p| i32::try_from(p).ok())
        .ok_or(ParseError("pid is not a number"))?;
    let name = &buf[open + 1..close];
    // Fields from 3 (state) on; index 0 here is field 3.
    // The fields by hand rather than with `fields`: a scan parses one line per
    // process, and this loop takes half the time of `split` + `filter`.
    let mut f = [&b""[..]; 22];
    let mut n = 0;
    let mut rest = &buf[close + 1..];
    while n < f.len() {
        let Some(start) = rest.iter().position(|c| !c.is_ascii_whitespace()) else {
            break;
        };
        rest = &rest[start..];
        let end = rest
            .iter()
            .position(u8::is_ascii_whitespace)
            .unwrap_or(rest.len());
        f[n] = &rest[..end];
        rest = &rest[end..];
        n += 1;
    }
    if n < f.len() {
        return Err(ParseError("fewer than 24 fields"));
    }
    let num = |i: usize| parse_u64(f[i]).ok_or(ParseError("a numeric field is not a number"));
    let int = |i: usize| parse_i64(f[i]).ok_or(ParseError("a numeric field is not a number"));
    let id = |i: usize| {
        parse_i64(f[i])
            .and_then(|v| i32::try_from(v).ok())
            .ok_or(ParseError("a process id field is out of range"))
    };
    let state = match f[0] {
        [c] if c.is_ascii_alphabetic() => *c,
        _ => return Err(ParseError("state is not one letter")),
    };
    Ok(PidStat {
        pid,
        name,
        state,
        ppid: id(1)?,
        pgrp: id(2)?,
        flags: num(6)?,
        utime: num(11)?,
        stime: num(12)?,
        starttime: num(19)?,
        rss_pages: int(21)?.max(0) as u64,
        num_threads: num(17)?,
    })
}

/// The fields of `/proc/PID/status` the agent uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PidStatus {
    /// Real, effective, saved and filesystem uid.
    pub uid: [u32; 4],
    pub gid: [u32; 4],
    /// Effective capabilities (`CapEff`), a bit per capability.
    pub cap_eff: u64,
}

pub fn parse_pid_status(buf: &[u8]) -> Result<PidStatus, ParseError> {
    let mut st = PidStatus::default();
    let (mut uid, mut gid, mut cap) = (false, false, false);
    for line in lines(buf) {
        if let Some(rest) = line.strip_prefix(b"Uid:") {
            st.uid = parse_ids(rest)?;
            uid = true;
        } else if let Some(rest) = line.strip_prefix(b"Gid:") {
            st.gid = parse_ids(rest)?;
            gid = true;
        } else if let Some(rest) = line.strip_prefix(b"CapEff:") {
            st.cap_eff = parse_hex(rest.trim_ascii()).ok_or(ParseError("CapEff is not hex"))?;
            cap = true;
        }
    }
    match (uid, gid, cap) {
        (true, true, true) => Ok(st),
        (false, _, _) => Err(ParseError("no Uid line")),
        (_, false, _) => Err(ParseError("no Gid line")),
        _ => Err(ParseError("no CapEff line")),
    }
}

/// In how many PID namespaces the process has a pid, counted from the namespace of
/// the procfs that was read down to the process's own: the fields of `NSpid` in
/// `/proc/PID/status` (Linux 4.1+). One when that procfs is of the process's own
/// namespace. `None` without an `NSpid` line (no PID namespaces: there is only one).
///
/// ```text
/// NSpid:  27062  1      (tab-separated)
/// ```
pub fn nspid_levels(buf: &[u8]) -> Option<usize> {
    lines(buf)
        .find_map(|line| line.strip_prefix(b"NSpid:"))
        .map(|rest| fields(rest).count())
}

fn parse_ids(rest: &[u8]) -> Result<[u32; 4], ParseError> {
    let mut ids = [0u32; 4];
    let mut it = fields(rest);
    for id in &mut ids {
        let f = it
            .next()
            .ok_or(ParseError("id line has fewer than 4 ids"))?;
        *id = parse_u64(f)
            .and_then(|v| u32::try_from(v).ok())
            .ok_or(ParseError("id is not a number"))?;
    }
    Ok(ids)
}

fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() || s.len() > 16 {
        return None;
    }
    s.iter().try_fold(0u64, |v, &c| {
        Some(v << 4 | (c as char).to_digit(16)? as u64)
    })
}

/// The arguments of `/proc/PID/cmdline`: NUL-separated, usually NUL-terminated, empty
/// for kernel threads and zombies. A process may rewrite it (no final NUL, spaces
/// instead of NULs); that is returned as one argument.
pub fn cmdline_args(buf: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = buf.strip_suffix(b"\0").unwrap_or(buf);
    let empty = body.is_empty();
    body.split(|&c| c == 0).filter(move |_| !empty)
}

/// Writes the command line with spaces between arguments, as `ps` shows it, without
/// the trailing blanks of a title padded with NULs (sshd does that).
pub fn cmdline_display(buf: &[u8], out: &mut Vec<u8>) {
    out.clear();
    for (i, arg) in cmdline_args(buf).enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        out.extend_from_slice(arg);
    }
    while out.last() == Some(&b' ') {
        out.pop();
    }
}

#[cfg(test)]
mod tests {
    use super::rfind_byte;

    /// Every length up to a few words, the byte at every place, once or twice,
    /// with neighbours one bit away: the same answer as `rposition`.
    #[test]
    fn rfind_byte_agrees_with_rposition() {
        for len in 0..40 {
            for at in 0..=len {
                for other in [0u8, b'(', 0x28, 0x2b, 0xa9, 0xff] {
                    let mut s = vec![other; len];
                    if at < len {
                        s[at] = b')';
                    }
                    if at > 3 {
                        s[at / 2] = b')';
                    }
                    let want = s.iter().rposition(|&c| c == b')');
                    assert_eq!(
                        rfind_byte(&s, b')'),
                        want,
                        "len {len} at {at} other {other}"
                    );
                }
            }
        }
    }
}
