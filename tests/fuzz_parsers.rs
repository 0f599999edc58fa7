//! Every byte parser (the /proc files, mountinfo, passwd and group, the state files
//! and each feature's, shell histories, command words, globs) fed thousands of
//! random and mutated inputs from a fixed-seed PRNG: none may panic, and what parses
//! must hold what the format promises and write back to what parses the same.
//! `scripts/fuzz` runs these long (`SA_FUZZ_ROUNDS`).

#[path = "common/fixtures.rs"]
mod fixtures;
#[path = "common/fuzz.rs"]
mod fuzz_engine;

use fixtures::*;
use fuzz_engine::{Rng, mutate, rounds};
use std::panic::{AssertUnwindSafe, catch_unwind};
use system_agent::passwd::{Users, groups_of, parse_group, parse_passwd};
use system_agent::procfs::loadavg::parse_loadavg;
use system_agent::procfs::meminfo::parse_meminfo;
use system_agent::procfs::mountinfo::{mount_holding, parse_mountinfo_line};
use system_agent::procfs::pid::{cmdline_args, cmdline_display, parse_pid_stat, parse_pid_status};
use system_agent::procfs::pressure::parse_pressure;
use system_agent::procfs::stat::parse_stat;
use system_agent::procfs::{parse_f64, parse_i64, parse_u64};
use system_agent::scan::PrevTicks;
use system_agent::state::{format_procs, parse_procs, parse_state};

// ---------------------------------------------------------------------------------
// Randomized: thousands of random and mutated inputs, no panic allowed.

/// An input for one round: mostly a mutated seed, sometimes plain random bytes.
fn input(rng: &mut Rng, seeds: &[&[u8]], out: &mut Vec<u8>) {
    match rng.below(10) {
        0 => {
            out.clear();
            let alphabet = b"0123456789 ()\n\0:=.-abcdefSZR#+[]";
            for _ in 0..rng.below(200) {
                let c = rng.next() as usize;
                out.push(alphabet[c % alphabet.len()]);
            }
        }
        1 => {
            out.clear();
            for _ in 0..rng.below(300) {
                out.push(rng.next() as u8);
            }
        }
        2 => {
            // Any fixture, even one meant for another parser.
            let seed = rng.pick(ALL_SEEDS);
            mutate(rng, seed, out);
        }
        _ => {
            let seed = rng.pick(seeds);
            mutate(rng, seed, out);
        }
    }
}

const ALL_SEEDS: &[&[u8]] = &[
    STAT,
    STAT_OLD4,
    MEMINFO,
    MEMINFO_OLD,
    LOADAVG,
    PSI_CPU,
    PSI_CPU_NOFULL,
    PID_INIT,
    PID_PAREN,
    PID_NEWLINE,
    STATUS_SETPRIV,
    CMD_CAT,
    CMD_PADDED,
    PASSWD_ODD,
    STATE_TEXT.as_bytes(),
    GARBAGE,
];

/// Runs `check` on `rounds()` inputs derived from `seeds`; a panic fails the test and
/// shows the input. `check` says whether the input parsed, and both outcomes must
/// have happened (so the mutations reach past the first error).
fn fuzz(seed: u64, seeds: &[&[u8]], mut check: impl FnMut(&[u8]) -> bool) {
    let mut rng = Rng(seed);
    let mut buf = Vec::new();
    let (mut ok, mut bad) = (0, 0);
    let rounds = rounds();
    for round in 0..rounds {
        input(&mut rng, seeds, &mut buf);
        match catch_unwind(AssertUnwindSafe(|| check(&buf))) {
            Ok(true) => ok += 1,
            Ok(false) => bad += 1,
            Err(_) => panic!(
                "round {round} panicked on input b\"{}\"",
                buf.escape_ascii()
            ),
        }
    }
    assert!(ok >= rounds / 50, "only {ok} of {rounds} inputs parsed");
    assert!(bad >= rounds / 50, "only {bad} of {rounds} inputs failed");
}

fn percent_ok(p: f64) -> bool {
    (0.0..=100.0).contains(&p)
}

#[test]
fn fuzz_stat() {
    let seeds = [STAT, STAT_OLD4, STAT_TRUNC, b"cpu  1 2 3 4\ncpu0 1 2 3 4\n"];
    let mut prev = CPU_DEBIAN12;
    fuzz(1, &seeds, |b| match parse_stat(b) {
        Ok(s) => {
            assert!(s.ncpu >= 1);
            let _ = (s.cpu.total(), s.cpu.busy());
            for (a, b) in [(s.cpu, prev), (prev, s.cpu)] {
                if let Some(p) = a.used_percent_since(&b) {
                    assert!(percent_ok(p), "{p}");
                }
            }
            prev = s.cpu;
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_meminfo() {
    let seeds = [MEMINFO, MEMINFO_OLD, MEMINFO_TRUNC];
    fuzz(2, &seeds, |b| match parse_meminfo(b) {
        Ok(m) => {
            assert!(m.available_kb <= m.total_kb);
            assert!(m.used_percent().is_none_or(percent_ok));
            assert!(percent_ok(m.swap_used_percent()));
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_loadavg_and_pressure() {
    let seeds = [LOADAVG, b"12.50 101.00 3.07 9/1234 55\n"];
    fuzz(3, &seeds, |b| match parse_loadavg(b) {
        Ok(l) => {
            assert!(l.one >= 0.0 && l.five >= 0.0 && l.fifteen >= 0.0);
            true
        }
        Err(_) => false,
    });
    let seeds = [PSI_CPU, PSI_MEM, PSI_IO, PSI_CPU_NOFULL, PSI_TRUNC];
    fuzz(4, &seeds, |b| match parse_pressure(b) {
        Ok(p) => {
            let s = p.some;
            assert!(s.avg10 >= 0.0 && s.avg60 >= 0.0 && s.avg300 >= 0.0);
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_mountinfo() {
    let seeds = [MOUNTINFO_NS, MOUNTINFO_NET, MOUNTINFO_TRUNC];
    fuzz(12, &seeds, |b| {
        for path in [&b"/"[..], b"/srv/cap/fuse/x", b"/mnt/nfs", b""] {
            if let Some(m) = mount_holding(b, path) {
                assert!(m.point.holds(path).is_some());
                assert!(m.point.decoded().len() <= path.len().max(1));
            }
        }
        let first = b.split(|&c| c == b'\n').next().unwrap_or_default();
        parse_mountinfo_line(first).is_ok()
    });
}

#[test]
fn fuzz_pid_stat() {
    let seeds = [
        PID_INIT,
        PID_KTHREADD,
        PID_KWORKER,
        PID_ZOMBIE,
        PID_PAREN,
        PID_FAKE,
        PID_NEWLINE,
        PID_NONUTF8,
        PID_OPEN2,
        PID_CLOSE1,
        PID_LONG,
        PID_TRUNC,
    ];
    fuzz(5, &seeds, |b| match parse_pid_stat(b) {
        Ok(p) => {
            // The name lies between the first '(' and the last ')'.
            let open = b.iter().position(|&c| c == b'(').unwrap();
            let close = b.iter().rposition(|&c| c == b')').unwrap();
            assert_eq!(p.name, &b[open + 1..close]);
            assert!(p.state.is_ascii_alphabetic());
            let _ = (p.is_kernel_thread(), p.cpu_ticks());
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_pid_status_and_cmdline() {
    let seeds = [STATUS_SETPRIV, STATUS_ZOMBIE, STATUS_TRUNC];
    fuzz(6, &seeds, |b| parse_pid_status(b).is_ok());
    let seeds = [CMD_CAT, CMD_REWRITTEN, CMD_NO_NUL, CMD_PADDED, CMD_KTHREAD];
    let mut out = Vec::new();
    fuzz(7, &seeds, |b| {
        let n = cmdline_args(b).count();
        cmdline_display(b, &mut out);
        // Display is the arguments joined by single spaces, without trailing blanks.
        let body = b.strip_suffix(b"\0").unwrap_or(b);
        let mut joined: Vec<u8> = body
            .iter()
            .map(|&c| if c == 0 { b' ' } else { c })
            .collect();
        while joined.last() == Some(&b' ') {
            joined.pop();
        }
        assert_eq!(out, joined);
        n > 1
    });
}

#[test]
fn fuzz_passwd() {
    let seeds = [PASSWD, PASSWD_ODD];
    fuzz(8, &seeds, |b| {
        let users = parse_passwd(b);
        for u in &users {
            assert!(!u.name.is_empty());
            assert!(!(u.name.contains(':') || u.home.contains(':') || u.shell.contains(':')));
            assert!(!u.name.contains('\n'));
        }
        let first_of = |uid: u32| users.iter().find(|u| u.uid == uid).map(|u| u.name.clone());
        let probe: Vec<u32> = users.iter().map(|u| u.uid).take(4).collect();
        let lookup = Users::new(users.clone());
        for uid in probe {
            assert_eq!(lookup.name(uid).map(str::to_owned), first_of(uid));
        }
        !users.is_empty()
    });
}

#[test]
fn fuzz_group() {
    let seeds = [GROUP, GROUP_ODD];
    fuzz(9, &seeds, |b| {
        let groups = parse_group(b);
        for g in &groups {
            assert!(!g.name.is_empty() && !g.name.contains(':') && !g.name.contains('\n'));
            for m in &g.members {
                assert!(!m.is_empty() && !m.contains(',') && !m.contains(':'));
            }
        }
        if let Some(g) = groups.iter().find(|g| !g.members.is_empty()) {
            let ids = groups_of(&groups, &g.members[0], 5);
            assert_eq!(ids[0], 5);
            assert!(ids.contains(&g.gid));
            let mut sorted = ids.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), ids.len(), "{ids:?}");
        }
        !groups.is_empty()
    });
}

#[test]
fn fuzz_state_and_procs() {
    let mut procs_text = String::new();
    let ticks = [PrevTicks {
        pid: 1,
        start: 5,
        ticks: 101,
    }; 3];
    format_procs(&mut procs_text, 9, 8, &ticks);
    let procs_text = procs_text.into_bytes();
    let with_metric = b"system-agent-state 1\nsaved 5\nbtime 6\nmetric 2 3 1 0 7 disk:/x y\nend\n";
    fuzz(9, &[STATE_TEXT.as_bytes(), with_metric], |b| {
        parse_state(b).is_ok()
    });
    let mut again = String::new();
    fuzz(10, &[&procs_text[..]], |b| match parse_procs(b) {
        Ok((saved, btime, procs)) => {
            // What parses writes back to a file that parses the same.
            format_procs(&mut again, saved, btime, &procs);
            assert_eq!(parse_procs(again.as_bytes()), Ok((saved, btime, procs)));
            true
        }
        Err(_) => false,
    });
}

#[test]
fn fuzz_number_helpers() {
    let seeds: [&[u8]; 6] = [
        b"0",
        b"18446744073709551615",
        b"-9223372036854775807",
        b"0.52",
        b"100.00",
        b"123456789.123456789",
    ];
    fuzz(11, &seeds, |b| {
        let u = parse_u64(b);
        let i = parse_i64(b);
        let f = parse_f64(b);
        if let Some(u) = u {
            // Whatever parse_u64 takes, the other two read the same way.
            assert_eq!(i, i64::try_from(u).ok());
            assert_eq!(f, Some(u as f64));
        }
        if let Some(f) = f {
            assert!(f >= 0.0 && f.is_finite());
        }
        u.is_some() || i.is_some() || f.is_some()
    });
}

/// Each feature's state file: what parses writes back to a file that parses the
/// same (so a saved file is never misread by the next run).
#[test]
fn fuzz_feature_state_files() {
    use system_agent::features::alerts::decide as alerts;
    use system_agent::features::audit::history as audit;
    use system_agent::features::reaper::records as reaper;
    use system_agent::features::tasks::schedule as tasks;
    use system_agent::forecast;
    let reaper = b"system-agent-reaper 2\nboot 0b5e3c4d-aaaa\nstate 10 20 T 30\n\
        pending 11 21 31 hogs\nsettled 12 22\nend\n";
    let mut again = String::new();
    fuzz(
        13,
        &[reaper, b"system-agent-reaper 1\nstate 1 2 S 3\nend\n"],
        |b| match reaper::parse(b) {
            Ok(r) => {
                reaper::format(&mut again, &r);
                let back = reaper::parse(again.as_bytes()).expect("reparse");
                assert_eq!(back, r, "written back as {again:?}");
                true
            }
            Err(_) => false,
        },
    );
    let tasks_text =
        b"system-agent-tasks 1\ntask 5 6 2 mandb\nskipped mandb /usr/bin/mandb is missing\nend\n";
    fuzz(14, &[tasks_text], |b| match tasks::parse(b) {
        Ok(t) => {
            tasks::format(&mut again, &t);
            assert_eq!(tasks::parse(again.as_bytes()).as_ref(), Ok(&t));
            true
        }
        Err(_) => false,
    });
    let alerts_text = b"system-agent-alerts 1\ntold 2 3 4 5 6 disk:/var\ntold 0 0 0 0 0 cpu\nend\n";
    fuzz(15, &[alerts_text], |b| match alerts::parse(b) {
        Ok(t) => {
            alerts::format(&mut again, &t);
            assert_eq!(alerts::parse(again.as_bytes()).as_ref(), Ok(&t));
            true
        }
        Err(_) => false,
    });
    let forecast_text = b"system-agent-forecast 1\nsaved 9\nmount /\np 1 2 3\np 5 6 -\n\
        mount /var/log\np 7 8 9\nend\n";
    fuzz(20, &[forecast_text], |b| {
        match forecast::parse_forecast(b) {
            Ok(f) => {
                let all = f.iter().map(|(m, s)| (m.as_path(), s));
                forecast::format_forecast(&mut again, 9, all);
                let back = forecast::parse_forecast(again.as_bytes()).expect("reparse");
                let kept: Vec<_> = f
                    .into_iter()
                    .filter(|(_, s)| !s.points.is_empty())
                    .collect();
                assert_eq!(back, kept, "written back as {again:?}");
                true
            }
            Err(_) => false,
        }
    });
    let audit_text = b"system-agent-audit 2\nhist 1 2 3 alice\nhist 0 0 0 bob\n\
        refused bob is a symlink\nend\n";
    fuzz(
        16,
        &[audit_text, b"system-agent-audit 1\nhist 1 2 3 alice\nend\n"],
        |b| {
            match audit::parse(b) {
                Ok(h) => {
                    audit::format(&mut again, &h);
                    // A version 1 file is read into version 2 records; those round-trip.
                    let back = audit::parse(again.as_bytes()).expect("reparse");
                    audit::format(&mut String::new(), &back);
                    true
                }
                Err(_) => false,
            }
        },
    );
}

/// Shell histories: every complete command is taken once, `used` never passes the
/// input, and what is left is at most one partial line (and its timestamp).
#[test]
fn fuzz_history_commands() {
    use system_agent::features::audit::history::parse_commands;
    let seeds: [&[u8]; 3] = [
        b"ls\ncd /\n",
        b"#1700000000\nls -l\n#1700000001\nrm x\npartial",
        b"\n\n#12\n\r\n",
    ];
    fuzz(17, &seeds, |b| {
        let (cmds, used) = parse_commands(b);
        assert!(used <= b.len());
        assert!(
            !b[used..].contains(&b'\n') || b[used..].starts_with(b"#"),
            "left {:?}",
            &b[used..]
        );
        for c in &cmds {
            assert!(!c.cmd.contains(&b'\n'));
        }
        !cmds.is_empty()
    });
}

/// Command lines: a list of words that parses is printed back to the same words;
/// globs never panic and `*` matches anything.
#[test]
fn fuzz_command_words_and_globs() {
    use system_agent::config::value::{fmt_command, words};
    use system_agent::glob::{Glob, matches};
    let seeds: [&[u8]; 4] = [
        b"/usr/bin/mandb -q",
        b"\"/opt/my tool/x\" --flag 'a b' c\\ d",
        b"/usr/bin/find /var/tmp -name \"*.tmp\" ; note",
        b"/bin/x \"unclosed",
    ];
    fuzz(18, &seeds, |b| {
        let text = String::from_utf8_lossy(b);
        match words(&text) {
            Ok(argv) => {
                let printed = fmt_command(&argv);
                assert_eq!(
                    words(&printed).as_ref(),
                    Ok(&argv),
                    "printed as {printed:?}"
                );
                true
            }
            Err(e) => {
                assert!(!e.is_empty());
                false
            }
        }
    });
    let globs: [&[u8]; 4] = [b"*.log", b"[!a-z]?x*", b"\\*[", b"a*b*c*d"];
    fuzz(19, &globs, |b| {
        let (p, s) = b.split_at(b.len() / 2);
        assert!(matches(b"*", s));
        // A pattern without special bytes matches exactly itself.
        if !p.iter().any(|c| b"*?[\\".contains(c)) {
            assert!(matches(p, p));
        }
        Glob::new(&String::from_utf8_lossy(p)).matches(s)
    });
}
