//! The parser fixtures of tests/fixtures/proc/ and tests/fixtures/passwd/, embedded
//! at compile time, and what several files expect of them: for tests/parsers_*.rs
//! and tests/fuzz_{parsers,config}.rs, which include this file by its path (as they
//! do the fuzz engine), without the rest of the harness.
#![allow(dead_code)]

use system_agent::procfs::ParseError;
use system_agent::procfs::stat::CpuTimes;

/// The bytes of a fixture file, embedded at compile time.
macro_rules! fx {
    ($p:literal) => {
        include_bytes!(concat!("../fixtures/", $p))
    };
}

pub const STAT: &[u8] = fx!("proc/stat.debian12");
pub const STAT_OLD4: &[u8] = fx!("proc/stat.old4col");
pub const STAT_TRUNC: &[u8] = fx!("proc/stat.truncated");
pub const MEMINFO: &[u8] = fx!("proc/meminfo.debian12");
pub const MEMINFO_OLD: &[u8] = fx!("proc/meminfo.no_available");
pub const MEMINFO_TRUNC: &[u8] = fx!("proc/meminfo.truncated");
pub const LOADAVG: &[u8] = fx!("proc/loadavg.debian12");
pub const PSI_CPU: &[u8] = fx!("proc/pressure.cpu.debian12");
pub const PSI_MEM: &[u8] = fx!("proc/pressure.memory.debian12");
pub const PSI_IO: &[u8] = fx!("proc/pressure.io.debian12");
pub const PSI_CPU_NOFULL: &[u8] = fx!("proc/pressure.cpu.no_full");
pub const PSI_TRUNC: &[u8] = fx!("proc/pressure.truncated");
pub const PID_INIT: &[u8] = fx!("proc/pid_stat.init");
pub const PID_KTHREADD: &[u8] = fx!("proc/pid_stat.kthreadd");
pub const PID_KWORKER: &[u8] = fx!("proc/pid_stat.kworker");
pub const PID_ZOMBIE: &[u8] = fx!("proc/pid_stat.zombie");
pub const PID_PAREN: &[u8] = fx!("proc/pid_stat.paren_name");
pub const PID_FAKE: &[u8] = fx!("proc/pid_stat.fake_fields");
pub const PID_NEWLINE: &[u8] = fx!("proc/pid_stat.newline");
pub const PID_NONUTF8: &[u8] = fx!("proc/pid_stat.nonutf8");
pub const PID_OPEN2: &[u8] = fx!("proc/pid_stat.open2");
pub const PID_CLOSE1: &[u8] = fx!("proc/pid_stat.close1");
pub const PID_LONG: &[u8] = fx!("proc/pid_stat.long_name");
pub const PID_TRUNC: &[u8] = fx!("proc/pid_stat.truncated");
pub const STATUS_SETPRIV: &[u8] = fx!("proc/status.setpriv");
pub const STATUS_ZOMBIE: &[u8] = fx!("proc/status.zombie");
pub const STATUS_TRUNC: &[u8] = fx!("proc/status.truncated");
pub const CMD_CAT: &[u8] = fx!("proc/cmdline.cat");
pub const CMD_KTHREAD: &[u8] = fx!("proc/cmdline.kthread");
pub const CMD_ZOMBIE: &[u8] = fx!("proc/cmdline.zombie");
pub const CMD_REWRITTEN: &[u8] = fx!("proc/cmdline.rewritten");
pub const CMD_NO_NUL: &[u8] = fx!("proc/cmdline.no_nul");
pub const CMD_PADDED: &[u8] = fx!("proc/cmdline.padded");
pub const EMPTY: &[u8] = fx!("proc/empty");
pub const GARBAGE: &[u8] = fx!("proc/garbage");
pub const PASSWD: &[u8] = fx!("passwd/passwd.debian12");
pub const PASSWD_ODD: &[u8] = fx!("passwd/passwd.odd");
pub const GROUP: &[u8] = fx!("passwd/group.debian12");
pub const GROUP_ODD: &[u8] = fx!("passwd/group.odd");
pub const MOUNTINFO_NS: &[u8] = fx!("proc/mountinfo.namespace");
pub const MOUNTINFO_NET: &[u8] = fx!("proc/mountinfo.network");
pub const MOUNTINFO_TRUNC: &[u8] = fx!("proc/mountinfo.truncated");

/// What a parser returns for the error `msg`.
pub fn err<T>(msg: &'static str) -> Result<T, ParseError> {
    Err(ParseError(msg))
}

/// The aggregate `cpu` line of `STAT`.
pub const CPU_DEBIAN12: CpuTimes = CpuTimes {
    user: 10745,
    nice: 0,
    system: 7833,
    idle: 210159,
    iowait: 238,
    irq: 0,
    softirq: 88,
    steal: 15,
};

/// A state file as the agent writes it.
pub const STATE_TEXT: &str = "system-agent-state 1\nsaved 123\nbtime 456\ncpu 1 2 3 4 5 6 7 8\n\
    metric 0 0 0 0 0 cpu\nmetric 0 0 0 0 0 mem\nmetric 0 0 0 0 0 disk:/\nmetric 0 0 0 0 0 inode:/\nend\n";
