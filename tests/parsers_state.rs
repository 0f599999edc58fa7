//! The files the agent keeps in `state_dir` (its state and the process ticks): the
//! exact text written and read back, and corrupt, truncated, empty and garbage
//! files and files cut mid-line, each an error, never a misread.

#[path = "common/fixtures.rs"]
mod fixtures;

use fixtures::*;
use system_agent::config::Config;
use system_agent::procfs::stat::CpuTimes;
use system_agent::scan::PrevTicks;
use system_agent::state::{format_procs, format_state, parse_procs, parse_state};

// ---------------------------------------------------------------------------------
// state_dir files

#[test]
fn state_file_exact_text_and_back() {
    let mut cfg = Config::default();
    cfg.disk.forecast_window = std::time::Duration::ZERO;
    let metrics = system_agent::judge::metrics_for(&cfg);
    let cpu = CpuTimes::from_array([1, 2, 3, 4, 5, 6, 7, 8]);
    let mut s = String::from("stale");
    format_state(&mut s, 123, 456, Some(&cpu), &metrics);
    assert_eq!(s, STATE_TEXT);
    let back = parse_state(s.as_bytes()).unwrap();
    assert_eq!((back.saved_ns, back.btime, back.cpu), (123, 456, Some(cpu)));
    let keys: Vec<&str> = back.metrics.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["cpu", "mem", "disk:/", "inode:/"]);
    assert!(back.metrics.iter().all(|(_, h)| *h == Default::default()));
    // Without CPU counters the line is left out.
    format_state(&mut s, 1, 2, None, &[]);
    assert_eq!(s, "system-agent-state 1\nsaved 1\nbtime 2\nend\n");
    assert_eq!(parse_state(s.as_bytes()).map(|b| b.cpu), Ok(None));
}

#[test]
fn state_file_hysteresis_and_odd_keys() {
    let text = "system-agent-state 1\nsaved 5\nbtime 6\n\nmetric 2 3 1 0 4294967295 disk:/mnt/my disk\nend\n";
    let back = parse_state(text.as_bytes()).unwrap();
    assert_eq!((back.saved_ns, back.btime, back.cpu), (5, 6, None));
    let (key, h) = &back.metrics[0];
    assert_eq!(key, "disk:/mnt/my disk");
    assert_eq!((h.reported, h.up, h.down), (2, [3, 1], [0, u32::MAX]));
}

#[test]
fn state_file_corrupt_truncated_empty_garbage() {
    let head = "system-agent-state 1\nsaved 1\nbtime 1\n";
    let with = |tail: &str| format!("{head}{tail}");
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (EMPTY.to_vec(), "not a version 1 state file"),
        (GARBAGE.to_vec(), "not a version 1 state file"),
        (
            b"system-agent-state 2\nsaved 1\nbtime 1\n".to_vec(),
            "not a version 1 state file",
        ),
        (
            b"system-agent-procs 1\nsaved 1\nbtime 1\n".to_vec(),
            "not a version 1 state file",
        ),
        (b"system-agent-state 1\n".to_vec(), "truncated"),
        (b"system-agent-state 1\nsaved 1\n".to_vec(), "truncated"),
        (STATE_TEXT.as_bytes()[..30].to_vec(), "truncated"),
        (
            b"system-agent-state 1\nsaved x\nbtime 1\n".to_vec(),
            "bad saved line",
        ),
        (
            b"system-agent-state 1\nsaved -1\nbtime 1\n".to_vec(),
            "bad saved line",
        ),
        (
            b"system-agent-state 1\nsaved 1\nbtime 99999999999999999999999\n".to_vec(),
            "bad btime line",
        ),
        (with("cpu 1 2 3 4 5 6 7\n").into_bytes(), "bad cpu line"),
        (with("cpu 1 2 3 4 5 6 7 8 9\n").into_bytes(), "bad cpu line"),
        (with("cpu 1 2 3 4 5 6 7 x\n").into_bytes(), "bad cpu line"),
        (with("cpu\n").into_bytes(), "bad cpu line"),
        (
            with("metric 3 0 0 0 0 cpu\n").into_bytes(),
            "bad metric line",
        ),
        (with("metric 0 0 0 0 0\n").into_bytes(), "bad metric line"),
        (with("metric 0 0 0 0 0 \n").into_bytes(), "bad metric line"),
        (
            with("metric 0 0 4294967296 0 0 cpu\n").into_bytes(),
            "bad metric line",
        ),
        (with("metric 0 0 0\n").into_bytes(), "bad metric line"),
        (
            [head.as_bytes(), b"metric 0 0 0 0 0 \xff\n"].concat(),
            "bad metric key",
        ),
        (with("Saved 1\n").into_bytes(), "unknown line"),
        (with(" saved 1\n").into_bytes(), "unknown line"),
        (with("saved\t1\n").into_bytes(), "unknown line"),
    ];
    for (text, want) in cases {
        let text = with_end(text, want);
        assert_eq!(parse_state(&text), Err(want), "{}", text.escape_ascii());
    }
    // Cut anywhere, even at a line boundary, a file lacks its `end` line.
    let full = STATE_TEXT.as_bytes();
    for cut in 1..full.len() {
        assert!(parse_state(&full[..cut]).is_err(), "cut at {cut}");
    }
    assert_eq!(
        parse_state(with("cpu 1 2 3 4 5 6 7 8\n").as_bytes()),
        Err("truncated")
    );
}

/// Completes a corrupt-file case with the `end` line, so that the error under test
/// is the one about its content, not the missing end.
fn with_end(text: Vec<u8>, want: &str) -> Vec<u8> {
    if want == "truncated" || want.starts_with("not a version") || !text.ends_with(b"\n") {
        text
    } else {
        [text, b"end\n".to_vec()].concat()
    }
}

#[test]
fn state_files_cut_mid_line_are_errors() {
    // format_state/format_procs end every line with '\n'; a file cut inside the last
    // line is accepted with a wrong value (here steal = 8 instead of 89, ticks = 6
    // instead of 61) or a wrong key ("inode:" instead of "inode:/").
    let state = "system-agent-state 1\nsaved 1\nbtime 1\ncpu 1 2 3 4 5 6 7 89\n";
    assert_eq!(
        parse_state(&state.as_bytes()[..state.len() - 2]),
        Err("truncated")
    );
    assert_eq!(
        parse_state(&STATE_TEXT.as_bytes()[..STATE_TEXT.len() - 2]),
        Err("truncated")
    );
    let procs = "system-agent-procs 1\nsaved 9\nbtime 8\n40000 5 61\n";
    assert_eq!(
        parse_procs(&procs.as_bytes()[..procs.len() - 2]),
        Err("truncated")
    );
}

#[test]
fn procs_file_exact_text_and_back() {
    let procs = [
        PrevTicks {
            pid: 1,
            start: 5,
            ticks: 101,
        },
        PrevTicks {
            pid: i32::MAX,
            start: u64::MAX,
            ticks: 0,
        },
    ];
    let mut s = String::from("stale");
    format_procs(&mut s, 9, 8, &procs);
    assert_eq!(
        s,
        "system-agent-procs 1\nsaved 9\nbtime 8\n1 5 101\n2147483647 18446744073709551615 0\nend\n"
    );
    assert_eq!(parse_procs(s.as_bytes()), Ok((9, 8, procs.to_vec())));
    format_procs(&mut s, 0, 0, &[]);
    assert_eq!(parse_procs(s.as_bytes()), Ok((0, 0, Vec::new())));
    // Blank lines and extra columns are tolerated.
    assert_eq!(
        parse_procs(b"system-agent-procs 1\nsaved 1\nbtime 2\n\n3  4\t5 6\nend\n"),
        Ok((
            1,
            2,
            vec![PrevTicks {
                pid: 3,
                start: 4,
                ticks: 5
            }]
        ))
    );
}

#[test]
fn procs_file_corrupt_truncated_empty_garbage() {
    let head = "system-agent-procs 1\nsaved 1\nbtime 1\n";
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (EMPTY.to_vec(), "not a version 1 procs file"),
        (GARBAGE.to_vec(), "not a version 1 procs file"),
        (STATE_TEXT.as_bytes().to_vec(), "not a version 1 procs file"),
        (b"system-agent-procs 1".to_vec(), "truncated"),
        (b"system-agent-procs 1\nsaved 1".to_vec(), "truncated"),
        // A final newline makes the missing line an empty one.
        (b"system-agent-procs 1\nsaved 1\n".to_vec(), "bad header"),
        (
            b"system-agent-procs 1\nbtime 1\nsaved 1\n".to_vec(),
            "bad header",
        ),
        (
            b"system-agent-procs 1\nsaved 1\nbtime x\n".to_vec(),
            "bad header",
        ),
        (format!("{head}1 2\n").into_bytes(), "bad process line"),
        (format!("{head}-1 2 3\n").into_bytes(), "bad process line"),
        (format!("{head}1 2 x\n").into_bytes(), "bad process line"),
        (
            format!("{head}1 2 99999999999999999999999\n").into_bytes(),
            "bad process line",
        ),
        (format!("{head}2147483648 2 3\n").into_bytes(), "bad pid"),
    ];
    for (text, want) in cases {
        let text = with_end(text, want);
        assert_eq!(parse_procs(&text), Err(want), "{}", text.escape_ascii());
    }
    assert_eq!(
        parse_procs(format!("{head}40000 5 61\n").as_bytes()),
        Err("truncated")
    );
    assert_eq!(
        parse_procs(format!("{head}40000 5 6").as_bytes()),
        Err("truncated")
    );
}
