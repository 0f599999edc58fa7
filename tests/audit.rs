//! The shell-history audit through the built binary: each appended command
//! exactly once, in order, across cycles, restarts and cron runs; truncated and
//! replaced files; timestamps; forged lines; the audit log's mode, syslog and
//! reopening; old and corrupt state files. (Hostile files: audit_attacks.rs;
//! whose history: audit_users.rs.) Every home, history and the passwd the agent
//! reads live in this test's own temp dir; files belong to test uids (4001…)
//! that need not exist on the host. Signals go only to children these tests
//! started.

mod common;

use common::*;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::process::Command;

// ---------------------------------------------------------------------------
// 1. Each appended command exactly once, across cycles, restarts and cron runs.

/// The smallest reproducer of the audit-log bug: one appended command, two cron runs.
#[test]
fn an_appended_command_reaches_the_audit_log() {
    let h = Audited::alice("smoke", b"old\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    h.append("alice", b"id\n");
    h.once(&cfg);
    // The offset moved past `id`: it was read, and must have been logged.
    assert!(h.read("state/audit").contains(" 7 alice\n"));
    assert_eq!(h.history(), h.hist_lines("alice", &["id"]));
}

#[test]
fn rfc3339_helper() {
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20.000Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00.000Z");
}

#[test]
fn appends_are_logged_once_across_cycles_and_a_restart() {
    let h = Audited::alice("loop", b"old-one\nold-two\n");
    let (cfg, agent) = h.serve("", &["alice"]);
    h.wait_cycles(2);
    // Seen for the first time: read from its end, nothing copied.
    assert_eq!(h.history(), Vec::<String>::new());

    h.append("alice", b"ls -l\ncd /srv\n");
    h.wait_history(2);
    h.append("alice", b"make\n");
    h.wait_history(3);
    h.stop_after(agent, 3);

    // Typed while the agent is down.
    h.append("alice", b"sudo -i\nexit\n");
    let agent = h.spawn(&cfg);
    h.wait_history(5);
    h.append("alice", b"whoami\n");
    h.wait_history(6);
    h.stop_after(agent, 3);

    let want = h.hist_lines(
        "alice",
        &[
            "\"ls -l\"",
            "\"cd /srv\"",
            "make",
            "\"sudo -i\"",
            "exit",
            "whoami",
        ],
    );
    assert_eq!(h.history(), want);
    h.assert_no_errors();
    // Not a line of the audit trail in the main log.
    assert!(!h.log().contains("event=history"), "{}", h.log());
}

#[test]
fn appends_are_logged_once_across_once_runs() {
    let h = Audited::alice("once", b"old-one\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    assert_eq!(h.history(), Vec::<String>::new());
    h.append("alice", b"one\ntwo\n");
    h.once(&cfg);
    h.once(&cfg);
    h.append("alice", b"three\n");
    h.once(&cfg);
    h.once(&cfg);
    let want = h.hist_lines("alice", &["one", "two", "three"]);
    assert_eq!(h.history(), want);
    h.assert_no_errors();
}

#[test]
fn a_history_created_after_the_first_look_is_read_from_its_start() {
    let h = Audited::new("created", ALICE);
    let cfg = h.config("", "");
    h.once(&cfg);
    assert_eq!(
        h.read("state/audit"),
        "system-agent-audit 2\nhist 0 0 0 alice\nend\n"
    );
    h.replace_hist("alice", b"first\nsecond\n");
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(h.history(), h.hist_lines("alice", &["first", "second"]));
}

// ---------------------------------------------------------------------------
// 2. Truncation and replacement.

#[test]
fn truncated_and_replaced_files_are_read_from_their_start_once() {
    let h = Audited::alice("trunc", b"a-old\nb-old\nc-old\nd-old\n");
    let (_, agent) = h.serve("", &["alice"]);
    h.append("alice", b"appended\n");
    h.wait_history(1);

    // Rewritten shorter in place (same inode).
    h.rewrite("alice", b"short\n");
    h.wait_history(2);
    h.append("alice", b"after-trunc\n");
    h.wait_history(3);

    // Replaced: a new file renamed over it (a new inode), here even longer.
    h.replace_hist("alice", b"new-1\nnew-2\nnew-3\nnew-4\nnew-5\nnew-6\n");
    h.wait_history(9);
    h.append("alice", b"after-replace\n");
    h.wait_history(10);
    h.stop_after(agent, 3);

    let want = h.hist_lines(
        "alice",
        &[
            "appended",
            "short",
            "after-trunc",
            "new-1",
            "new-2",
            "new-3",
            "new-4",
            "new-5",
            "new-6",
            "after-replace",
        ],
    );
    assert_eq!(h.history(), want);
    h.assert_no_errors();
}

// ---------------------------------------------------------------------------
// 3. Timestamps and incomplete lines.

#[test]
fn timestamps_pending_timestamps_and_partial_lines() {
    let h = Audited::alice("ts", b"");
    let (_, agent) = h.serve("", &["alice"]);

    h.append("alice", b"#1700000000\nls -l\n");
    h.wait_history(1);
    // A timestamp whose command bash has not written yet: held.
    h.append("alice", b"#1700000001\n");
    h.wait_cycles(3);
    assert_eq!(h.history().len(), 1);
    h.append("alice", b"rm x\n");
    h.wait_history(2);

    // A command still being written: not logged until its newline.
    h.append("alice", b"partial");
    h.wait_cycles(3);
    assert_eq!(h.history().len(), 2);
    let before = now_ns() / 1_000_000_000;
    h.append("alice", b" done\n");
    h.wait_history(3);
    let after = now_ns() / 1_000_000_000 + 1;

    // Several timestamps and commands in one read.
    h.append("alice", b"#1700000100\nfirst\n#1700000200\nsecond\n");
    h.wait_history(5);
    h.stop_after(agent, 2);

    let lines = h.audit_lines();
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert_eq!(
        lines[0],
        "ts=2023-11-14T22:13:20.000Z level=info event=history user=alice uid=4001 cmd=\"ls -l\""
    );
    assert_eq!(
        lines[1],
        "ts=2023-11-14T22:13:21.000Z level=info event=history user=alice uid=4001 cmd=\"rm x\""
    );
    // Without a timestamp: the time it was read.
    let (ts, rest) = lines[2].split_once(' ').unwrap();
    let ts = ts.strip_prefix("ts=").unwrap();
    assert!(
        ts.len() == 24 && rfc3339(before).as_str() <= ts && ts < rfc3339(after).as_str(),
        "{ts} not in [{}, {})",
        rfc3339(before),
        rfc3339(after)
    );
    assert_eq!(
        rest,
        "level=info event=history user=alice uid=4001 cmd=\"partial done\""
    );
    assert_eq!(
        lines[3],
        "ts=2023-11-14T22:15:00.000Z level=info event=history user=alice uid=4001 cmd=first"
    );
    assert_eq!(
        lines[4],
        "ts=2023-11-14T22:16:40.000Z level=info event=history user=alice uid=4001 cmd=second"
    );
}

#[test]
fn a_pending_timestamp_survives_a_restart() {
    let h = Audited::alice("ts-once", b"old\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    h.append("alice", b"#1700000000\n");
    h.once(&cfg);
    h.append("alice", b"uptime\n#1700000001\nhalf");
    h.once(&cfg);
    assert_eq!(
        h.audit_lines(),
        vec!["ts=2023-11-14T22:13:20.000Z level=info event=history user=alice uid=4001 cmd=uptime"]
    );
    h.append("alice", b"-done\n");
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(
        h.audit_lines(),
        vec![
            "ts=2023-11-14T22:13:20.000Z level=info event=history user=alice uid=4001 cmd=uptime",
            "ts=2023-11-14T22:13:21.000Z level=info event=history user=alice uid=4001 cmd=half-done"
        ]
    );
}

#[test]
fn odd_timestamp_and_blank_lines() {
    let h = Audited::alice("ts-odd", b"");
    let cfg = h.config("", "");
    h.once(&cfg);
    h.append(
        "alice",
        b"#18446744073709551615\nbig\n#0\nzero\n#1700000000\n\n\nafter-blank\n\n#12x\n#\n#99999999999999999999\nls\r\n",
    );
    h.once(&cfg);
    let lines = h.audit_lines();
    let prefix = "level=info event=history user=alice uid=4001";
    assert_eq!(lines.len(), 7, "{lines:?}");
    // The timestamp is the user's to write: any u64 saturates, nothing crashes.
    assert_eq!(
        lines[0],
        format!("ts=2554-07-21T23:34:33.709Z {prefix} cmd=big")
    );
    assert_eq!(
        lines[1],
        format!("ts=1970-01-01T00:00:00.000Z {prefix} cmd=zero")
    );
    // Blank lines are no commands, and do not drop a pending timestamp.
    assert_eq!(
        lines[2],
        format!("ts=2023-11-14T22:13:20.000Z {prefix} cmd=after-blank")
    );
    // Not timestamps: commands (an overflowing number included), logged at read
    // time; a CRLF line ends without its CR.
    let rest: Vec<String> = lines[3..].iter().map(|l| body(l)).collect();
    assert_eq!(
        rest,
        vec![
            format!("{prefix} cmd=#12x"),
            format!("{prefix} cmd=#"),
            format!("{prefix} cmd=#99999999999999999999"),
            format!("{prefix} cmd=ls"),
        ]
    );
    h.once(&cfg);
    assert_eq!(h.audit_lines().len(), 7);
}

// ---------------------------------------------------------------------------
// 4. No command can forge a line.

#[test]
fn commands_cannot_forge_lines() {
    let h = Audited::new("forge", &[("mallory", 4001, "/bin/bash")]);
    h.replace_hist("mallory", b"");
    let cfg = h.config("", "");
    h.once(&cfg);
    let cases: &[(&[u8], &str)] = &[
        (
            b"echo x\" level=error event=forged",
            r#""echo x\" level=error event=forged""#,
        ),
        (
            b"echo x\\\" level=error event=forged",
            r#""echo x\\\" level=error event=forged""#,
        ),
        (
            b"echo a\\nts=2020-01-01T00:00:00.000Z level=error event=forged",
            r#""echo a\\nts=2020-01-01T00:00:00.000Z level=error event=forged""#,
        ),
        (
            b"printf '\x1b[31mred\x1b[0m'\rts=2020 level=error",
            r#""printf '\u001b[31mred\u001b[0m'\rts=2020 level=error""#,
        ),
        (b"a\tb\x7fc\x00d\x08e", r#""a\tb\u007fc\u0000d\u0008e""#),
        (b"echo \xff\xfe ok \xc3", r#""echo \udcff\udcfe ok \udcc3""#),
        (
            "echo caf\u{e9} \u{85}nel \u{2028}ls".as_bytes(),
            r#""echo café \u0085nel \u2028ls""#,
        ),
        (
            "echo \u{202e}txt.exe \u{200b}\u{e0001}".as_bytes(),
            r#""echo \u202etxt.exe \u200b\udb40\udc01""#,
        ),
        (b"x=1", r#""x=1""#),
        (b"plain", "plain"),
    ];
    let mut data = Vec::new();
    for (raw, _) in cases {
        data.extend_from_slice(raw);
        data.push(b'\n');
    }
    h.append("mallory", &data);
    h.once(&cfg);
    let want: Vec<String> = cases
        .iter()
        .map(|(_, cmd)| hist_line("mallory", 4001, cmd))
        .collect();
    // Every line starts with ts= (checked by audit_lines), one per command.
    assert_eq!(h.history(), want);
    let raw = h.audit_raw();
    assert_eq!(raw.iter().filter(|&&b| b == b'\n').count(), cases.len());
    assert!(!raw.contains(&b'\r') && !raw.contains(&0x1b));
}

// ---------------------------------------------------------------------------
// 5. The audit log's mode, syslog, and sinks across reloads.

#[test]
fn audit_log_is_0600_and_lines_go_to_syslog_as_authpriv_info() {
    let h = Audited::alice("sink", b"old\n");
    let mut syslog = Syslog::bind(&h.path("log.sock"));
    let cfg = h.config(
        &format!("syslog = yes\nsyslog_socket = {}", h.p("log.sock")),
        "",
    );
    h.once(&cfg);
    h.append("alice", b"#1700000000\nls -l\nid\n");
    h.once(&cfg);
    syslog.drain();

    let meta = std::fs::metadata(h.path("audit.log")).expect("the audit log exists");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
    assert_eq!(meta.uid(), 0);

    let lines = h.audit_lines();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        lines[0],
        "ts=2023-11-14T22:13:20.000Z level=info event=history user=alice uid=4001 cmd=\"ls -l\""
    );
    let bodies: Vec<(String, String)> = lines
        .iter()
        .map(|l| ("<86>".to_string(), body(l)))
        .collect();
    assert_eq!(syslog.with(" event=history "), bodies);
    // And on syslog only under authpriv: the agent's own lines are daemon (3 << 3).
    assert!(
        syslog
            .with(" event=sample ")
            .iter()
            .all(|(p, _)| p == "<30>")
    );
}

#[test]
fn audit_log_is_0600_even_with_umask_0() {
    use std::os::unix::process::CommandExt;
    let h = Audited::new("umask", ALICE);
    let cfg = h.config("", "");
    h.tick();
    let mut cmd = Command::new(bin());
    cmd.arg("-c").arg(&cfg).arg("--once");
    // SAFETY: umask(2) is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::umask(0);
            Ok(())
        });
    }
    let run = run_command(cmd);
    assert!((0..=3).contains(&run.code), "{} {}", run.status, run.err);
    let meta = std::fs::metadata(h.path("audit.log")).expect("the audit log exists");
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
}

#[test]
fn sighup_reopens_the_audit_log_and_applies_a_new_user_list() {
    let h = Audited::new(
        "reload",
        &[("alice", 4001, "/bin/bash"), ("bob", 4002, "/bin/bash")],
    );
    h.replace_hist("alice", b"");
    h.replace_hist("bob", b"");
    let (_, agent) = h.serve("users = alice", &["alice"]);
    h.append("alice", b"before-rotate\n");
    h.wait_history(1);
    // logrotate: rename, then SIGHUP.
    std::fs::rename(h.path("audit.log"), h.path("audit.log.1")).unwrap();
    h.config("", "users = alice bob");
    agent.signal(libc::SIGHUP);
    assert!(
        wait_for(LIMIT, || h.log().contains(" event=reload ")),
        "{}",
        h.log()
    );
    h.wait_seen(&["alice", "bob"]);
    h.append("alice", b"after-rotate\n");
    h.append("bob", b"bob-typed\n");
    h.wait_history(2);
    h.stop_after(agent, 3);
    let old = std::fs::read_to_string(h.path("audit.log.1")).unwrap();
    assert_eq!(
        events(&old, " event=history "),
        h.hist_lines("alice", &["before-rotate"])
    );
    assert_eq!(
        h.sorted_history(),
        vec![
            hist_line("alice", 4001, "after-rotate"),
            hist_line("bob", 4002, "bob-typed")
        ]
    );
    let meta = std::fs::metadata(h.path("audit.log")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600);
}

#[test]
fn an_empty_log_file_means_syslog_only() {
    let h = Audited::alice("sysonly", b"");
    let mut syslog = Syslog::bind(&h.path("log.sock"));
    let cfg = h.config(
        &format!("syslog = yes\nsyslog_socket = {}", h.p("log.sock")),
        "log_file =\nsyslog_facility = local5",
    );
    h.once(&cfg);
    h.append("alice", b"#1700000000\nid\n");
    h.once(&cfg);
    syslog.drain();
    assert!(!h.path("audit.log").exists());
    // local5 = 21: <174>.
    assert_eq!(
        syslog.with(" event=history "),
        vec![("<174>".to_string(), hist_line("alice", 4001, "id"))]
    );
    assert!(!h.log().contains("event=history"), "{}", h.log());
}

// ---------------------------------------------------------------------------
// 6. State files of earlier releases, and corrupt ones.

#[test]
fn a_version_1_state_file_keeps_its_offsets_and_reads_refused_users_from_the_start() {
    let h = Audited::new(
        "state-v1",
        &[("alice", 4001, "/bin/bash"), ("bob", 4002, "/bin/bash")],
    );
    h.replace_hist("alice", b"old\n");
    h.replace_hist("bob", b"bob-typed\n");
    let m = std::fs::metadata(h.hist("alice")).unwrap();
    // As the previous release wrote it: alice read up to her 4 bytes, bob refused
    // at his first look (so never read), and carol never seen.
    h.write(
        "state/audit",
        format!(
            "system-agent-audit 1\nhist {} {} 4 alice\nrefused bob is a symlink\nend\n",
            m.dev(),
            m.ino()
        ),
    );
    h.append("alice", b"alice-new\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    assert_eq!(
        h.sorted_history(),
        vec![
            hist_line("alice", 4001, "alice-new"),
            hist_line("bob", 4002, "bob-typed"),
        ]
    );
    let state = h.read("state/audit");
    assert!(state.starts_with("system-agent-audit 2\n"), "{state}");
    assert!(
        state.contains(&format!("hist {} {} 14 alice\n", m.dev(), m.ino())),
        "{state}"
    );
    h.assert_no_errors();
}

#[test]
fn a_corrupt_state_file_means_every_history_is_read_from_its_start() {
    let h = Audited::alice("state-corrupt", b"one\ntwo\n");
    h.write("state/audit", "system-agent-audit 2\nhist 1 2\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(h.history(), h.hist_lines("alice", &["one", "two"]));
    // Said once, and replaced by a good one.
    let state_errors = events(&h.log(), " event=error what=state ");
    assert_eq!(state_errors.len(), 1, "{state_errors:?}");
    assert!(state_errors[0].contains(&h.p("state/audit")));
    assert!(
        h.read("state/audit")
            .starts_with("system-agent-audit 2\nhist ")
    );
}
