//! The per-process /proc parsers (`PID/stat`, `PID/status`, `PID/cmdline`) against
//! files captured from a real host and hand-made ones: names with parentheses,
//! spaces, newlines and bytes that are not UTF-8, kernel threads, zombies, command
//! lines a process rewrote, and damaged files. Every field is asserted exactly.

#[path = "common/fixtures.rs"]
mod fixtures;

use fixtures::*;
use system_agent::procfs::pid::{
    PF_KTHREAD, PidStat, PidStatus, cmdline_args, cmdline_display, parse_pid_stat, parse_pid_status,
};

// ---------------------------------------------------------------------------------
// /proc/PID/stat

/// A process started by the capture script: state R, parent 23959, nothing else set.
fn capture(pid: i32, name: &'static [u8], starttime: u64, rss_pages: u64) -> PidStat<'static> {
    PidStat {
        pid,
        name,
        state: b'R',
        ppid: 23959,
        pgrp: 23959,
        flags: 4194304,
        utime: 0,
        stime: 0,
        starttime,
        rss_pages,
        num_threads: 1,
    }
}

#[test]
fn pid_stat_init() {
    let p = parse_pid_stat(PID_INIT).unwrap();
    assert_eq!(
        p,
        PidStat {
            pid: 1,
            name: b"process_api",
            state: b'S',
            ppid: 0,
            pgrp: 0,
            flags: 4194560,
            utime: 33,
            stime: 68,
            starttime: 5,
            rss_pages: 2835,
            num_threads: 11,
        }
    );
    assert!(!p.is_kernel_thread());
    assert_eq!(p.cpu_ticks(), 101);
}

#[test]
fn pid_stat_kernel_threads() {
    let kthreadd = parse_pid_stat(PID_KTHREADD).unwrap();
    assert_eq!(
        kthreadd,
        PidStat {
            pid: 2,
            name: b"kthreadd",
            state: b'S',
            ppid: 0,
            pgrp: 0,
            flags: 2129984,
            utime: 0,
            stime: 0,
            starttime: 5,
            rss_pages: 0,
            num_threads: 1,
        }
    );
    assert_eq!(kthreadd.flags & PF_KTHREAD, PF_KTHREAD);
    assert!(kthreadd.is_kernel_thread());
    let kworker = parse_pid_stat(PID_KWORKER).unwrap();
    assert_eq!(
        kworker,
        PidStat {
            pid: 9,
            name: b"kworker/0:0-events",
            state: b'I',
            ppid: 2,
            pgrp: 0,
            flags: 69238880,
            utime: 0,
            stime: 0,
            starttime: 5,
            rss_pages: 0,
            num_threads: 1,
        }
    );
    assert!(kworker.is_kernel_thread());
    // The flag decides, not the parent: in a PID namespace pid 2 and its children
    // are ordinary processes.
    let by_flag = PidStat { ppid: 1, ..kworker };
    let child_of_2 = PidStat {
        flags: 0,
        ..kworker
    };
    assert!(by_flag.is_kernel_thread());
    assert!(!child_of_2.is_kernel_thread());
}

#[test]
fn pid_stat_zombie() {
    let z = parse_pid_stat(PID_ZOMBIE).unwrap();
    assert_eq!(
        z,
        PidStat {
            pid: 24642,
            name: b"perl",
            state: b'Z',
            ppid: 24641,
            pgrp: 24626,
            flags: 4227148,
            utime: 0,
            stime: 0,
            starttime: 114680,
            rss_pages: 0,
            num_threads: 1,
        }
    );
    assert!(!z.is_kernel_thread());
}

#[test]
fn pid_stat_names_with_parentheses_spaces_newlines_and_bytes() {
    // Each name was written to /proc/self/comm by a real process, then its stat read.
    let cases: [(&[u8], PidStat); 7] = [
        (PID_PAREN, capture(23963, b"(a) (b)", 113318, 1388)),
        (PID_FAKE, capture(23964, b"x) S 1 2 (y", 113320, 1370)),
        (PID_NEWLINE, capture(23965, b"a\nb)", 113320, 1328)),
        (PID_NONUTF8, capture(23966, b"\xff\xfe(\x80)", 113320, 1374)),
        (PID_OPEN2, capture(23967, b"((", 113320, 1395)),
        (PID_CLOSE1, capture(23968, b")", 113321, 1355)),
        // "a b c d e f g h i j ..." cut by the kernel to 15 bytes.
        (PID_LONG, capture(23969, b"a b c d e f g h", 113321, 1386)),
    ];
    for (file, want) in cases {
        assert_eq!(parse_pid_stat(file), Ok(want), "{}", file.escape_ascii());
        assert!(!want.is_kernel_thread());
    }
}

#[test]
fn pid_stat_truncated_empty_garbage() {
    let few = err("fewer than 24 fields");
    assert_eq!(parse_pid_stat(PID_TRUNC), few);
    // Cut inside the name: the last ')' is inside the name, the rest is too short.
    assert_eq!(parse_pid_stat(&PID_PAREN[..12]), few);
    assert_eq!(
        parse_pid_stat(&PID_PAREN[..9]),
        err("no ')' after the name")
    );
    assert_eq!(
        parse_pid_stat(&PID_INIT[..1]),
        err("no '(' before the name")
    );
    assert_eq!(parse_pid_stat(EMPTY), err("no '(' before the name"));
    // 24 fields exactly (cut after rss) is enough.
    let upto_rss = 95;
    assert!(PID_INIT[..upto_rss].ends_with(b" 38297600 2835"));
    assert_eq!(
        parse_pid_stat(&PID_INIT[..upto_rss]).map(|p| p.rss_pages),
        Ok(2835)
    );
    assert_eq!(parse_pid_stat(&PID_INIT[..upto_rss - 5]), few);
    // The random bytes hold a '(' (at 56) and a later ')': what precedes is no pid.
    assert_eq!(parse_pid_stat(GARBAGE), err("pid is not a number"));
}

#[test]
fn pid_stat_bad_fields() {
    let tail = b" S 1 1 0 0 -1 4194304 0 0 0 0 7 3 0 0 20 0 1 0 4242 5566 -5 0";
    let with = |head: &[u8]| [head, &tail[..]].concat();
    // A negative rss (seen on some kernels) is clamped to 0.
    assert_eq!(
        parse_pid_stat(&with(b"77 (x)")).map(|p| (p.pid, p.rss_pages, p.utime, p.stime)),
        Ok((77, 0, 7, 3))
    );
    assert_eq!(parse_pid_stat(b"5 )x( S"), err("')' before '('"));
    assert_eq!(parse_pid_stat(&with(b"x (a)")), err("pid is not a number"));
    assert_eq!(
        parse_pid_stat(&with(b"2147483648 (a)")),
        err("pid is not a number")
    );
    assert_eq!(
        parse_pid_stat(&with(b"99999999999999999999999 (a)")),
        err("pid is not a number")
    );
    assert_eq!(
        parse_pid_stat(b"1 (a) SS 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0"),
        err("state is not one letter")
    );
    assert_eq!(
        parse_pid_stat(b"1 (a) 5 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0"),
        err("state is not one letter")
    );
    assert_eq!(
        parse_pid_stat(b"1 (a) S 1 1 0 0 -1 0 0 0 0 0 x 0 0 0 20 0 1 0 0 0 0"),
        err("a numeric field is not a number")
    );
    assert_eq!(
        parse_pid_stat(
            b"1 (a) S 1 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999 0 0"
        ),
        err("a numeric field is not a number")
    );
}

#[test]
fn pid_stat_out_of_range_ppid_is_an_error() {
    // 4294967298 would wrap to 2 with a plain cast; ppid and pgrp are range-checked.
    let line = b"5 (a) S 4294967298 1 0 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 0 0 0";
    assert_eq!(
        parse_pid_stat(line),
        err("a process id field is out of range")
    );
}

// ---------------------------------------------------------------------------------
// /proc/PID/status

#[test]
fn pid_status_real_files() {
    // `setpriv --ruid 1000 --euid 1001 --rgid 100 --egid 101 cat /proc/self/status`.
    assert_eq!(
        parse_pid_status(STATUS_SETPRIV),
        Ok(PidStatus {
            uid: [1000, 1001, 1001, 1001],
            gid: [100, 101, 101, 101],
            cap_eff: 0,
        })
    );
    // A zombie child of a root process: no Vm* lines, full capability set.
    assert_eq!(
        parse_pid_status(STATUS_ZOMBIE),
        Ok(PidStatus {
            uid: [0; 4],
            gid: [0; 4],
            cap_eff: 0x0000_01ff_feff_ffff,
        })
    );
}

#[test]
fn pid_status_truncated_empty_garbage() {
    assert_eq!(
        parse_pid_status(STATUS_TRUNC),
        err("id line has fewer than 4 ids")
    );
    // Cut before the Gid line; then before the CapEff line.
    assert_eq!(parse_pid_status(&STATUS_ZOMBIE[..98]), err("no Gid line"));
    assert_eq!(
        parse_pid_status(&STATUS_ZOMBIE[..300]),
        err("no CapEff line")
    );
    assert_eq!(parse_pid_status(EMPTY), err("no Uid line"));
    assert_eq!(parse_pid_status(GARBAGE), err("no Uid line"));
}

#[test]
fn pid_status_bad_values() {
    let with = |uid: &str, cap: &str| format!("Uid:\t{uid}\nGid:\t0\t0\t0\t0\nCapEff:\t{cap}\n");
    let parse = |s: String| parse_pid_status(s.as_bytes());
    assert_eq!(
        parse(with("4294967295\t0\t0\t0", "ffffffffffffffff")),
        Ok(PidStatus {
            uid: [u32::MAX, 0, 0, 0],
            gid: [0; 4],
            cap_eff: u64::MAX,
        })
    );
    assert_eq!(
        parse(with("4294967296\t0\t0\t0", "0")),
        err("id is not a number")
    );
    assert_eq!(parse(with("-1\t0\t0\t0", "0")), err("id is not a number"));
    assert_eq!(
        parse(with("0\t0\t0", "0")),
        err("id line has fewer than 4 ids")
    );
    assert_eq!(parse(with("0\t0\t0\t0", "")), err("CapEff is not hex"));
    assert_eq!(parse(with("0\t0\t0\t0", "0x1f")), err("CapEff is not hex"));
    assert_eq!(
        parse(with("0\t0\t0\t0", "1ffffffffffffffff")),
        err("CapEff is not hex")
    );
    // Extra ids (none today) are ignored; upper-case hex is hex.
    assert_eq!(
        parse(with("1\t2\t3\t4\t5", "0000001FFFFFFFFF")),
        Ok(PidStatus {
            uid: [1, 2, 3, 4],
            gid: [0; 4],
            cap_eff: 0x1f_ffff_ffff,
        })
    );
}

// ---------------------------------------------------------------------------------
// /proc/PID/cmdline

fn args(buf: &[u8]) -> Vec<&[u8]> {
    cmdline_args(buf).collect()
}

fn display(buf: &[u8]) -> Vec<u8> {
    let mut out = b"left over from the last process".to_vec();
    cmdline_display(buf, &mut out);
    out
}

#[test]
fn cmdline_real_files() {
    assert_eq!(args(CMD_CAT), [&b"cat"[..], b"/proc/self/cmdline"]);
    assert_eq!(display(CMD_CAT), b"cat /proc/self/cmdline");
    // Kernel threads and zombies have an empty cmdline.
    for empty in [CMD_KTHREAD, CMD_ZOMBIE] {
        assert_eq!(args(empty), Vec::<&[u8]>::new());
        assert_eq!(display(empty), b"");
    }
    // perl's `$0 = "worker: idle (3 jobs)"`: one argument with spaces and parentheses.
    assert_eq!(args(CMD_REWRITTEN), [&b"worker: idle (3 jobs)"[..]]);
    assert_eq!(display(CMD_REWRITTEN), b"worker: idle (3 jobs)");
}

#[test]
fn cmdline_rewritten_by_the_process() {
    // nginx-style: the title overwrites argv and leaves no NUL at all.
    assert_eq!(args(CMD_NO_NUL), [&b"nginx: worker process"[..]]);
    assert_eq!(display(CMD_NO_NUL), b"nginx: worker process");
    // sshd-style setproctitle pads the old argv area with NULs; each extra NUL is an
    // empty argument, and the display drops the trailing blanks they would make.
    assert_eq!(
        args(CMD_PADDED),
        [&b"sshd: alice [priv]"[..], b"", b"", b"", b"", b""]
    );
    assert_eq!(display(CMD_PADDED), b"sshd: alice [priv]");
}

#[test]
fn cmdline_edge_cases() {
    assert_eq!(args(b"\0"), Vec::<&[u8]>::new());
    assert_eq!(args(b"\0\0"), [&b""[..], b""]);
    assert_eq!(args(b"a\0\0b"), [&b"a"[..], b"", b"b"]);
    assert_eq!(display(b"a\0\0b\0"), b"a  b");
    assert_eq!(args(b"\xff\n\0"), [&b"\xff\n"[..]]);
    assert_eq!(
        display(GARBAGE).len(),
        GARBAGE.len() - usize::from(GARBAGE.ends_with(b"\0"))
    );
}

#[test]
fn a_zombie_is_state_z_with_one_thread() {
    assert!(parse_pid_stat(PID_ZOMBIE).unwrap().is_zombie());
    // A live group whose main thread exited: state Z, two threads.
    let defunct_leader = b"4 (victim) Z 3 4 4 0 -1 4194560 0 0 0 0 1 1 0 0 20 0 2 0 100 0 0";
    let st = parse_pid_stat(defunct_leader).unwrap();
    assert_eq!((st.state, st.num_threads), (b'Z', 2));
    assert!(!st.is_zombie());
    assert!(!parse_pid_stat(PID_INIT).unwrap().is_zombie());
}
