//! The agent's own control group and the memory figures of a group: inside a
//! container or a memory-limited service, `/proc/meminfo` shows the host's
//! memory, and the limit that binds is the group's. These parse
//! `/proc/self/cgroup` (which group, in which hierarchy) and the cgroup files of
//! a memory group, v2 (`memory.max`, `memory.current`, `memory.stat`) and v1
//! (`memory.limit_in_bytes`, `memory.usage_in_bytes`, `memory.stat`).

use super::{ParseError, fields, lines, parse_u64};

/// Where the agent's group is, per `/proc/self/cgroup`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SelfCgroup<'a> {
    /// The path in the v2 hierarchy (`0::/system.slice/x.service`).
    pub v2: Option<&'a [u8]>,
    /// The path in the v1 hierarchy of the memory controller (`4:memory:/x`).
    pub memory_v1: Option<&'a [u8]>,
}

/// `/proc/self/cgroup`: one `ID:CONTROLLERS:PATH` line per hierarchy.
///
/// ```text
/// 4:memory:/process_api/d4fc5a5e
/// 1:cpu:/
/// 0::/
/// ```
pub fn parse_self_cgroup(buf: &[u8]) -> Result<SelfCgroup<'_>, ParseError> {
    let mut out = SelfCgroup::default();
    for line in lines(buf).filter(|l| !l.is_empty()) {
        let mut parts = line.splitn(3, |&c| c == b':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(ParseError("not ID:CONTROLLERS:PATH lines"));
        };
        if !path.starts_with(b"/") {
            return Err(ParseError("a group path that is not absolute"));
        }
        if id == b"0" && controllers.is_empty() {
            out.v2 = Some(path);
        } else if controllers.split(|&c| c == b',').any(|c| c == b"memory") {
            out.memory_v1 = Some(path);
        }
    }
    Ok(out)
}

/// v1 writes "no limit" as the largest page count in bytes (9223372036854771712
/// with 4 KiB pages): anything from 2^62 on is no limit.
const V1_UNLIMITED: u64 = 1 << 62;

/// `memory.max` (`max` or bytes) or `memory.limit_in_bytes`: the limit, `None`
/// for none.
pub fn parse_limit(buf: &[u8]) -> Result<Option<u64>, ParseError> {
    match fields(buf).next() {
        Some(b"max") => Ok(None),
        Some(n) => match parse_u64(n) {
            Some(n) if n >= V1_UNLIMITED => Ok(None),
            Some(n) => Ok(Some(n)),
            None => Err(ParseError("not a number of bytes or max")),
        },
        None => Err(ParseError("empty")),
    }
}

/// `memory.current` or `memory.usage_in_bytes`: bytes charged to the group.
pub fn parse_usage(buf: &[u8]) -> Result<u64, ParseError> {
    fields(buf)
        .next()
        .and_then(parse_u64)
        .ok_or(ParseError("not a number of bytes"))
}

/// The page cache the group could drop at once, from `memory.stat`: v1's
/// `total_inactive_file` (its whole subtree, as `usage_in_bytes` counts it), else
/// `inactive_file` (v2's figures are of the subtree already). 0 when absent.
pub fn inactive_file(stat: &[u8]) -> u64 {
    let mut v2 = None;
    for line in lines(stat) {
        let mut f = fields(line);
        match (f.next(), f.next().and_then(parse_u64)) {
            (Some(b"total_inactive_file"), Some(n)) => return n,
            (Some(b"inactive_file"), Some(n)) => v2 = Some(n),
            _ => {}
        }
    }
    v2.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_cgroup_v1_hybrid_and_v2() {
        let hybrid = b"9:name=systemd:/\n4:memory:/process_api/d4fc5a5e\n\
                       3:cpu,cpuacct:/x\n0::/\n";
        assert_eq!(
            parse_self_cgroup(hybrid),
            Ok(SelfCgroup {
                v2: Some(b"/"),
                memory_v1: Some(b"/process_api/d4fc5a5e"),
            })
        );
        let v2 = b"0::/system.slice/system-agent.service\n";
        assert_eq!(
            parse_self_cgroup(v2).map(|c| (c.v2, c.memory_v1)),
            Ok((Some(&b"/system.slice/system-agent.service"[..]), None))
        );
        // Co-mounted controllers; a path with a colon in it.
        let co = b"5:cpu,memory:/a:b\n";
        assert_eq!(
            parse_self_cgroup(co).map(|c| c.memory_v1),
            Ok(Some(&b"/a:b"[..]))
        );
        assert_eq!(parse_self_cgroup(b""), Ok(SelfCgroup::default()));
        assert!(parse_self_cgroup(b"garbage\n").is_err());
        assert!(parse_self_cgroup(b"0::relative\n").is_err());
    }

    #[test]
    fn memory_files() {
        assert_eq!(parse_limit(b"max\n"), Ok(None));
        assert_eq!(parse_limit(b"104857600\n"), Ok(Some(104_857_600)));
        assert_eq!(parse_limit(b"9223372036854771712\n"), Ok(None));
        assert!(parse_limit(b"").is_err());
        assert!(parse_limit(b"-1\n").is_err());
        assert_eq!(parse_usage(b"3076096\n"), Ok(3_076_096));
        assert!(parse_usage(b"max\n").is_err());
        let v1 = b"cache 45056\nrss 0\ninactive_file 4096\nhierarchical_memory_limit 9223372036854771712\n\
                   total_cache 90112\ntotal_inactive_file 45056\n";
        assert_eq!(inactive_file(v1), 45_056);
        let v2 = b"anon 1000\nfile 9000\nactive_file 1000\ninactive_file 8000\n";
        assert_eq!(inactive_file(v2), 8000);
        assert_eq!(inactive_file(b"anon 1\n"), 0);
    }
}
