//! The shell-history audit against hostile history files, through the built
//! binary: symlinks and hard links to root's secret, FIFOs, devices, directories,
//! 10 GiB sparse files, someone else's file; `max_bytes` and padding; and every
//! way to dodge the audit by being refused at the first look. Every home, history,
//! canary secret and the passwd the agent reads live in this test's own temp dir;
//! files belong to test uids (4001…) that need not exist on the host. Signals go
//! only to children these tests started.

mod common;

use common::*;

// ---------------------------------------------------------------------------
// 1. Nothing but the user's own regular file is ever copied.

/// Makes the history of each user of the hostile test (but `grow`'s, `fine`'s) the
/// file it is named for, each as its user could: through the staging name, so
/// the agent never sees it half made.
fn plant_hostile_histories(h: &Audited, secret: &std::path::Path) {
    let line = format!("echo {MARKER}\n");
    // A symlink to root's secret.
    std::os::unix::fs::symlink(secret, h.staging("sym")).unwrap();
    h.install("sym", 4001);
    // A hard link to root's secret (protected_hardlinks aside): root's, two links.
    std::fs::hard_link(secret, h.hist("hard")).unwrap();
    // A hard link to a file the user owns: two links.
    let notes = h.home("twolinks").join("notes");
    std::fs::write(&notes, &line).unwrap();
    chown(&notes, 4003);
    std::fs::hard_link(&notes, h.hist("twolinks")).unwrap();
    // A FIFO nobody writes to: opening or reading it must not block the loop.
    mkfifo(&h.staging("fifo"));
    h.install("fifo", 4004);
    // A character device (1:3, /dev/null's numbers).
    mknod(
        &h.staging("dev"),
        libc::S_IFCHR | 0o600,
        libc::makedev(1, 3),
    );
    h.install("dev", 4005);
    // A directory.
    std::fs::create_dir(h.staging("dir")).unwrap();
    h.install("dir", 4006);
    // A 10 GiB sparse file with the secret near its end, appearing at once.
    let ten_gib = |f: std::fs::File| {
        const TEN_GIB: u64 = 10 << 30;
        f.set_len(TEN_GIB).unwrap();
        let at = TEN_GIB - line.len() as u64;
        std::os::unix::fs::FileExt::write_all_at(&f, line.as_bytes(), at).unwrap();
    };
    ten_gib(std::fs::File::create(h.staging("sparse")).unwrap());
    h.install("sparse", 4007);
    // A known file that grows to 10 GiB at once.
    ten_gib(
        std::fs::OpenOptions::new()
            .write(true)
            .open(h.hist("grow"))
            .unwrap(),
    );
    // Someone else's file.
    std::fs::write(h.staging("other"), &line).unwrap();
    h.install("other", 4001);
}

#[test]
fn hostile_history_files_are_refused_once_and_nothing_is_copied() {
    let users: &[Account] = &[
        ("sym", 4001, "/bin/bash"),
        ("hard", 4002, "/bin/bash"),
        ("twolinks", 4003, "/bin/bash"),
        ("fifo", 4004, "/bin/bash"),
        ("dev", 4005, "/bin/bash"),
        ("dir", 4006, "/bin/bash"),
        ("sparse", 4007, "/bin/bash"),
        ("grow", 4008, "/bin/bash"),
        ("other", 4009, "/bin/bash"),
        ("fine", 4010, "/bin/bash"),
    ];
    let h = Audited::new("attacks", users);
    let secret = canary(&h);
    let mut syslog = Syslog::bind(&h.path("log.sock"));
    // Most files do not exist at the first look, so what appears later would be
    // read from its start: the most a check could leak.
    h.replace_hist("grow", b"ls\n");
    h.replace_hist("fine", b"");
    let cfg = h.config(
        &format!("syslog = yes\nsyslog_socket = {}", h.p("log.sock")),
        "",
    );
    let agent = h.spawn(&cfg);
    let names: Vec<&str> = users.iter().map(|u| u.0).collect();
    h.wait_seen(&names);

    plant_hostile_histories(&h, &secret);
    // Meanwhile a well-behaved user goes on being audited.
    h.append("fine", b"echo still-audited\n");

    let want_errors = {
        let mut v = vec![
            h.error_line("sym", "is a symlink"),
            h.error_line("hard", "is owned by uid 0, not 4002 (hard)"),
            h.error_line("twolinks", "has 2 links (a hard link is not read)"),
            h.error_line("fifo", "is not a regular file"),
            h.error_line("dev", "is not a regular file"),
            h.error_line("dir", "is not a regular file"),
            // Only the last max_bytes are read: no whole line there (it began in
            // the zeros), so the whole growth is passed over.
            h.skip_line(
                "sparse",
                10737418240,
                1048576,
                10737418240,
                "nothing copied",
            ),
            h.skip_line("grow", 10737418237, 1048576, 10737418237, "nothing copied"),
            h.error_line("other", "is owned by uid 4001, not 4009 (other)"),
        ];
        v.sort();
        v
    };
    let ok = wait_for(LIMIT, || {
        syslog.drain();
        h.audit_errors().len() >= want_errors.len()
    });
    assert!(ok, "{}", h.log());
    // The loop keeps cycling (a FIFO did not block it), and says each thing once.
    h.stop_after(agent, 5);
    syslog.drain();
    assert_eq!(h.sorted_errors(), want_errors);
    // Only the well-behaved user's command may be in the audit log (see
    // `a_refusal_that_ends_and_returns` for the exact trail).
    let fine = hist_line("fine", 4010, "\"echo still-audited\"");
    assert!(h.history().iter().all(|l| *l == fine), "{:?}", h.history());
    assert_no_canary(&h, &syslog);
    // The refusals reach syslog under the agent's own facility (daemon.warning).
    let mut on_syslog: Vec<String> = syslog
        .with(" what=audit ")
        .into_iter()
        .map(|(pri, msg)| format!("{pri} {msg}"))
        .collect();
    on_syslog.sort();
    let want_syslog: Vec<String> = want_errors.iter().map(|e| format!("<28> {e}")).collect();
    assert_eq!(on_syslog, want_syslog);

    // A cron run facing the same files does not block either, and copies nothing.
    h.once(&cfg);
    syslog.drain();
    assert!(h.history().iter().all(|l| *l == fine), "{:?}", h.history());
    assert_no_canary(&h, &syslog);
}

#[test]
fn a_refusal_that_ends_and_returns_is_logged_again() {
    let h = Audited::new(
        "episode",
        &[("sym", 4001, "/bin/bash"), ("fine", 4010, "/bin/bash")],
    );
    let secret = canary(&h);
    h.replace_hist("fine", b"");
    let (_, agent) = h.serve("", &["sym", "fine"]);
    std::os::unix::fs::symlink(&secret, h.staging("sym")).unwrap();
    std::fs::rename(h.staging("sym"), h.hist("sym")).unwrap();
    h.append("fine", b"echo still-audited\n");
    assert!(wait_for(LIMIT, || !h.audit_errors().is_empty()));
    h.wait_history(1);
    h.wait_cycles(3);
    assert_eq!(h.audit_errors(), vec![h.error_line("sym", "is a symlink")]);

    // The refusal ends (a regular file of the user's own): what it holds is read;
    // the same refusal again is a new episode, logged again.
    h.replace_hist("sym", b"fixed\n");
    h.wait_history(2);
    std::os::unix::fs::symlink(&secret, h.staging("sym")).unwrap();
    std::fs::rename(h.staging("sym"), h.hist("sym")).unwrap();
    assert!(wait_for(LIMIT, || h.audit_errors().len() >= 2));
    h.stop_after(agent, 3);
    assert_eq!(
        h.audit_errors(),
        vec![
            h.error_line("sym", "is a symlink"),
            h.error_line("sym", "is a symlink")
        ]
    );
    assert_eq!(
        h.history(),
        vec![
            hist_line("fine", 4010, "\"echo still-audited\""),
            hist_line("sym", 4001, "fixed")
        ]
    );
    assert!(!String::from_utf8_lossy(&h.audit_raw()).contains(MARKER));
}

#[test]
fn a_replaced_history_that_is_a_symlink_is_refused() {
    // The file was known (an offset is kept), then the user swaps in a symlink and a
    // hard link to root's secret: a new inode would be read from its start.
    let h = Audited::new(
        "swap",
        &[("alice", 4001, "/bin/bash"), ("bob", 4002, "/bin/bash")],
    );
    let secret = canary(&h);
    h.replace_hist("alice", b"ls\n");
    h.replace_hist("bob", b"ls\n");
    let cfg = h.config("", "");
    h.once(&cfg);
    std::os::unix::fs::symlink(&secret, h.staging("alice")).unwrap();
    std::fs::rename(h.staging("alice"), h.hist("alice")).unwrap();
    std::fs::remove_file(h.hist("bob")).unwrap();
    std::fs::hard_link(&secret, h.hist("bob")).unwrap();
    h.once(&cfg);
    let mut errors = h.audit_errors();
    errors.sort();
    assert_eq!(
        errors,
        vec![
            h.error_line("alice", "is a symlink"),
            h.error_line("bob", "is owned by uid 0, not 4002 (bob)"),
        ]
    );
    assert_eq!(h.history(), Vec::<String>::new());
    assert!(!String::from_utf8_lossy(&h.audit_raw()).contains(MARKER));
    assert!(!h.log().contains(MARKER));
}

#[test]
fn a_refusal_is_reported_once_across_cron_runs() {
    let h = Audited::new("cron-refusal", ALICE);
    let secret = canary(&h);
    let cfg = h.config("", "");
    h.once(&cfg);
    std::os::unix::fs::symlink(&secret, h.hist("alice")).unwrap();
    h.once(&cfg);
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(
        h.audit_errors(),
        vec![h.error_line("alice", "is a symlink")]
    );
}

// ---------------------------------------------------------------------------
// 2. Limits: max_bytes, and padding that hides nothing after it.

#[test]
fn max_bytes_is_a_limit_per_file_per_cycle() {
    let h = Audited::alice("max", b"");
    let cfg = h.config("", "max_bytes = 1K");
    h.once(&cfg);
    // Exactly max_bytes: read.
    let exact = format!("echo {}\n", "a".repeat(1024 - 6));
    assert_eq!(exact.len(), 1024);
    h.append("alice", exact.as_bytes());
    h.once(&cfg);
    assert_eq!(
        h.history(),
        vec![hist_line(
            "alice",
            4001,
            &format!("\"{}\"", exact.trim_end())
        )]
    );
    // One byte more: only the last 1,024 bytes are read, which hold no whole
    // line, so nothing is copied, and that is said once.
    let over = format!("echo {}\n", "b".repeat(1025 - 6));
    h.append("alice", over.as_bytes());
    h.once(&cfg);
    assert_eq!(h.history().len(), 1);
    assert_eq!(
        h.audit_errors(),
        vec![h.skip_line("alice", 1025, 1024, 1025, "nothing copied")]
    );
    // What comes after is read again.
    h.append("alice", b"next\n");
    h.once(&cfg);
    assert_eq!(
        h.history(),
        h.hist_lines("alice", &[&format!("\"{}\"", exact.trim_end()), "next"])
    );
    assert_eq!(h.audit_errors().len(), 1);
}

#[test]
fn padding_hides_nothing_after_it() {
    let h = Audited::alice("padding", b"");
    let cfg = h.config("", "max_bytes = 1K");
    h.once(&cfg);
    // One 5,001-byte line, then the commands: the window of the last 1,024 bytes
    // begins inside the padding, so the copy starts at its end.
    let pad = format!(": {}\n", "x".repeat(4998));
    assert_eq!(pad.len(), 5001);
    h.append("alice", format!("{pad}id\nwhoami\n").as_bytes());
    h.once(&cfg);
    assert_eq!(h.history(), h.hist_lines("alice", &["id", "whoami"]));
    assert_eq!(
        h.audit_errors(),
        vec![h.skip_line("alice", 5011, 1024, 5001, "copied the last lines only")]
    );

    // The window begins exactly at a line's start: that line is whole, and copied.
    let pad = format!(": {}\n", "y".repeat(2997));
    let long = format!("echo {}\n", "z".repeat(1024 - 3 - 6));
    let cmds = format!("id\n{long}");
    assert_eq!(cmds.len(), 1024);
    h.append("alice", format!("{pad}{cmds}").as_bytes());
    h.once(&cfg);
    h.append("alice", b"next\n");
    h.once(&cfg);
    let long_cmd = format!("\"{}\"", long.trim_end());
    assert_eq!(
        h.history()[2..],
        [
            hist_line("alice", 4001, "id"),
            hist_line("alice", 4001, &long_cmd),
            hist_line("alice", 4001, "next"),
        ]
    );
    assert_eq!(
        h.audit_errors()[1..],
        [h.skip_line("alice", 4024, 1024, 3000, "copied the last lines only")]
    );
}

// ---------------------------------------------------------------------------
// 3. The audit cannot be dodged: only what was readable at the host's first audit
//    run may be skipped; every history refused then is read from its start.

#[test]
fn a_history_refused_at_its_first_look_is_read_from_its_start_once_fixed() {
    // Say `sudo -s` left a root-owned history at the host's first audit run; once
    // it is the user's again, all it holds is copied: the user may have typed into
    // it meanwhile, and only what was readable at the first run may be skipped.
    let h = Audited::new("first-refused", ALICE);
    std::fs::write(h.hist("alice"), b"before\n").unwrap();
    let cfg = h.config("", "");
    h.once(&cfg);
    let why = "is owned by uid 0, not 4001 (alice)";
    assert_eq!(h.audit_errors(), vec![h.error_line("alice", why)]);
    h.append("alice", b"typed-while-refused\n");
    chown(&h.hist("alice"), 4001);
    h.once(&cfg);
    assert_eq!(
        h.history(),
        h.hist_lines("alice", &["before", "typed-while-refused"])
    );
    h.append("alice", b"after\n");
    h.once(&cfg);
    assert_eq!(h.history().len(), 3);
    assert_eq!(h.history()[2], hist_line("alice", 4001, "after"));
    assert_eq!(h.audit_errors(), vec![h.error_line("alice", why)]);
}

/// alice's history, made by `bad` and refused at the host's first audit run for
/// `why`, becomes a regular file of hers by `fix` (given the config): two runs
/// later all it holds (`cmds`) is copied, and the refusal was said once.
fn refused_then_regular(
    tag: &str,
    why: &str,
    bad: impl FnOnce(&Audited),
    fix: impl FnOnce(&Audited, &std::path::Path),
    cmds: &[&str],
) {
    let h = Audited::new(tag, ALICE);
    bad(&h);
    let cfg = h.config("", "");
    h.once(&cfg);
    fix(&h, &cfg);
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(h.history(), h.hist_lines("alice", cmds));
    assert_eq!(h.audit_errors(), vec![h.error_line("alice", why)]);
}

#[test]
fn a_symlinked_history_made_regular_is_read_from_its_start() {
    // alice's history is a symlink to a file of hers at the first run (refused), so
    // bash writes her commands there; then she moves that file into place.
    let notes = |h: &Audited| h.home("alice").join("notes");
    let bad = |h: &Audited| {
        std::fs::write(notes(h), b"").unwrap();
        chown(&notes(h), 4001);
        std::os::unix::fs::symlink(notes(h), h.hist("alice")).unwrap();
        chown(&h.hist("alice"), 4001);
    };
    let fix = |h: &Audited, cfg: &std::path::Path| {
        std::fs::write(notes(h), b"curl-payload\nrun-payload\n").unwrap();
        h.once(cfg);
        std::fs::rename(notes(h), h.hist("alice")).unwrap();
    };
    let cmds = ["curl-payload", "run-payload"];
    refused_then_regular("sym-regular", "is a symlink", bad, fix, &cmds);
}

#[test]
fn a_fifo_history_made_regular_is_read_from_its_start() {
    let bad = |h: &Audited| {
        mkfifo(&h.hist("alice"));
        chown(&h.hist("alice"), 4001);
    };
    let fix = |h: &Audited, _: &std::path::Path| h.replace_hist("alice", b"first\nsecond\n");
    let why = "is not a regular file";
    refused_then_regular("fifo-regular", why, bad, fix, &["first", "second"]);
}

#[test]
fn a_history_with_two_links_left_with_one_is_read_from_its_start() {
    let h = Audited::alice("links-one", b"typed-while-linked\n");
    let other = h.home("alice").join("other");
    std::fs::hard_link(h.hist("alice"), &other).unwrap();
    let cfg = h.config("", "");
    h.once(&cfg);
    std::fs::remove_file(&other).unwrap();
    h.once(&cfg);
    assert_eq!(h.history(), h.hist_lines("alice", &["typed-while-linked"]));
    assert_eq!(
        h.audit_errors(),
        vec![h.error_line("alice", "has 2 links (a hard link is not read)")]
    );
}
