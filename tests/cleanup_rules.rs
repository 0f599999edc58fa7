//! Disk cleanup rules through the built binary: always-spared names, `protect`
//! and `match`, `disk_high` on a filesystem of known size (oldest first, only
//! until below `disk_warn`), dry runs, ages, non-recursive rules, empty
//! directories, and paths that are missing or not directories. Everything happens
//! inside each test's own temp dir; mounts only in private mount namespaces.

mod common;

use common::*;
use std::path::Path;

#[test]
fn spared_and_protected_names_and_match_filter() {
    let e = cleanup_host("protect");
    let tree = e.path("tree");
    let t = |rel: &str| tree.join(rel);
    for (rel, data) in [
        (".X11-unix/X0.log", "x11"),
        (".ICE-unix/1234.log", "ice"),
        ("systemd-private-abc-chronyd.service-xyz/tmp/old.log", "sd"),
        ("app.sock", "sock as a regular file"),
        ("run.pid", "123"),
        ("db.lock", "lock"),
        ("sub/inner.pid", "456"),
        ("keep-me.log", "protected"),
        ("sub/keep-too.log", "protected too"),
        ("data.important", "protected by a second glob"),
        ("keep-dir/inner.log", "inside a protected directory"),
        ("keep-dir/deeper/more.tmp", "deeper in it"),
        ("sub/nested.lock/a.log", "inside a spared *.lock directory"),
        ("notes.txt", "not matched"),
        ("sub/README", "not matched"),
        ("x.log", "goes"),
        ("y.tmp", "goes"),
        ("sub/z.log", "goes"),
    ] {
        old_file(&t(rel), data);
    }
    for d in [
        ".X11-unix",
        ".ICE-unix",
        "systemd-private-abc-chronyd.service-xyz",
        "keep-dir",
        "sub/nested.lock",
        "sub",
    ] {
        set_mtime(&t(d), old());
    }
    let mut before = snapshot(&tree);

    let cfg = rule_t(
        &e,
        "tree",
        &format!(
            "{ALWAYS_R}\nremove_empty_dirs = yes\nmatch = *.log, *.tmp *.important\nprotect = keep-* *.important"
        ),
    );
    e.once(&cfg, &[]);

    assert_eq!(
        sorted(removed(&e)),
        sorted(vec![
            line("t", &e.p("tree/x.log"), "file", 4, "10d"),
            line("t", &e.p("tree/y.tmp"), "file", 4, "10d"),
            line("t", &e.p("tree/sub/z.log"), "file", 4, "10d"),
        ])
    );
    assert_eq!(done_lines(&e), vec![done("t", 3, 12, 0)]);
    for gone in ["x.log", "y.tmp", "sub/z.log"] {
        before.remove(gone.as_bytes());
    }
    assert_eq!(
        without_dir_times(snapshot(&tree)),
        without_dir_times(before)
    );
}

/// `df`'s used%: ⌈used × 100 ÷ (used + avail)⌉ with used = blocks − bfree.
fn df_percent(used: u64, avail: u64) -> u64 {
    (used * 100).div_ceil(used + avail)
}

fn statvfs(p: &Path) -> libc::statvfs {
    // SAFETY: zeroed statvfs is a valid out-parameter.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    check(
        unsafe { libc::statvfs(cstr(p).as_ptr(), &mut st) },
        "statvfs",
    );
    st
}

#[test]
fn disk_high_removes_exactly_the_oldest_until_below_warn() {
    let e = cleanup_host("diskhigh");
    std::fs::create_dir_all(e.path("mnt")).unwrap();
    let ns = MountNs::new(&format!("mount -t tmpfs -o size=4m tmpfs {}", e.p("mnt")));
    let mnt = ns.inside(&e.path("mnt"));
    let now = now_s();
    // 20 files of 1–4 × 40 KiB, names in an order unrelated to their ages; ages
    // 30, 29, ... days so that the log's `age` tells them apart.
    const N: usize = 20;
    let mut files: Vec<(String, u64, i64)> = (0..N)
        .map(|i| {
            let rank = (i * 7) % N; // 0 is the oldest
            let name = format!("f{i:02}.dat");
            let size = 40 * 1024 * (1 + (i as u64 * 3) % 4);
            let mtime = now - (30 - rank as i64) * DAY - 100;
            (name, size, mtime)
        })
        .collect();
    for (name, size, mtime) in &files {
        file_at(
            &mnt.join("data").join(name),
            vec![b'z'; *size as usize],
            *mtime,
        );
    }
    // Young and spared files: never candidates, whatever the disk.
    file_at(&mnt.join("data/young.dat"), vec![0u8; 81920], now - DAY);
    file_at(
        &mnt.join("data/held.lock"),
        vec![0u8; 81920],
        now - 40 * DAY,
    );
    files.sort_by_key(|f| f.2);

    let st = statvfs(&mnt);
    let frsize = st.f_frsize as u64;
    assert_eq!(st.f_bfree, st.f_bavail, "tmpfs reserves nothing");
    let (mut used, mut avail) = ((st.f_blocks - st.f_bfree) as u64, st.f_bavail as u64);
    let pct = df_percent(used, avail);
    let warn = pct - 25;
    let mut k = 0;
    while df_percent(used, avail) >= warn {
        let blocks = files[k].1.div_ceil(frsize);
        used -= blocks;
        avail += blocks;
        k += 1;
    }
    assert!(
        k > 1 && k < N - 2,
        "k = {k} of {N} at {pct}% with warn {warn}"
    );

    let cfg = cleanup_config(
        &e,
        "",
        &format!("disk_warn = {warn}"),
        &rule(
            "t",
            &e.p("mnt"),
            "when = disk_high\nrecursive = yes\nolder_than = 7d",
        ),
    );
    let want = |dry_run: bool| -> Vec<String> {
        files[..k]
            .iter()
            .map(|(name, size, mtime)| {
                let l = line(
                    "t",
                    &format!("{}/data/{name}", e.p("mnt")),
                    "file",
                    *size,
                    &format!("{}d", (now - mtime) / DAY),
                );
                if dry_run { dry(l) } else { l }
            })
            .collect()
    };
    let freed: u64 = files[..k].iter().map(|f| f.1).sum();

    // The dry run lists exactly those K, in order, and removes nothing.
    let before = snapshot(&mnt);
    e.once_in(&ns, &cfg, &["--dry-run"]);
    assert_eq!(removed(&e), want(true));
    assert_eq!(
        done_lines(&e),
        vec![done("t", k as u64, freed, 0) + " dry_run=yes"]
    );
    assert_eq!(snapshot(&mnt), before, "a dry run removes nothing");

    // The real run removes exactly the K oldest, oldest first, and stops below.
    clear_log(&e);
    e.once_in(&ns, &cfg, &[]);
    assert_eq!(removed(&e), want(false));
    assert_eq!(done_lines(&e), vec![done("t", k as u64, freed, 0)]);
    let mut left = before.clone();
    for (name, _, _) in &files[..k] {
        left.remove(format!("data/{name}").as_bytes());
    }
    assert_eq!(without_dir_times(snapshot(&mnt)), without_dir_times(left));
    let st = statvfs(&mnt);
    assert!(
        df_percent((st.f_blocks - st.f_bfree) as u64, st.f_bavail as u64) < warn,
        "below disk_warn now"
    );

    // Below the warning, a further run does nothing.
    clear_log(&e);
    e.once_in(&ns, &cfg, &[]);
    assert_eq!(removed(&e), Vec::<String>::new());
    assert_eq!(done_lines(&e), Vec::<String>::new());
}

#[test]
fn dry_run_logs_every_old_file_and_removes_nothing() {
    let e = cleanup_host("dryrun");
    let tree = e.path("tree");
    old_file(&tree.join("a.log"), "aaaa");
    old_file(&tree.join("sub/b.log"), "bb");
    old_file(&tree.join("sub/deeper/c.txt"), "c");
    file_at(&tree.join("new.log"), "new", now_s() - DAY);
    old_file(&tree.join("run.pid"), "1");
    old_symlink(&e.path("outside/target"), &tree.join("link"));
    old_file(&e.path("outside/target"), "target");
    old_dir(&tree.join("sub/empty"));
    old_dir(&tree.join("sub/deeper"));
    old_dir(&tree.join("sub"));
    let before = (snapshot(&tree), snapshot(&e.path("outside")));
    let lines = |dry_run: bool| {
        let l = vec![
            line("t", &e.p("tree/a.log"), "file", 4, "10d"),
            line("t", &e.p("tree/sub/b.log"), "file", 2, "10d"),
            line("t", &e.p("tree/sub/deeper/c.txt"), "file", 1, "10d"),
            line(
                "t",
                &e.p("tree/link"),
                "symlink",
                e.p("outside/target").len() as u64,
                "10d",
            ),
        ];
        sorted(
            l.into_iter()
                .map(|l| if dry_run { dry(l) } else { l })
                .collect(),
        )
    };
    let bytes = 4 + 2 + 1 + e.p("outside/target").len() as u64;
    let rules = rule(
        "t",
        &e.p("tree"),
        &format!("{ALWAYS_R}\nremove_empty_dirs = no"),
    );
    let same = |what: &str| {
        let now = (snapshot(&tree), snapshot(&e.path("outside")));
        assert_eq!(now, before, "{what} changed something");
    };

    // --dry-run on the command line.
    let cfg = cleanup_config(&e, "", "", &rules);
    e.once(&cfg, &["--dry-run"]);
    assert_eq!(sorted(removed(&e)), lines(true));
    assert_eq!(
        done_lines(&e),
        vec![done("t", 4, bytes, 0) + " dry_run=yes"]
    );
    same("--dry-run");

    // dry_run = yes in the config.
    clear_log(&e);
    let cfg = cleanup_config(&e, "dry_run = yes", "", &rules);
    e.once(&cfg, &[]);
    assert_eq!(sorted(removed(&e)), lines(true));
    same("dry_run = yes");

    // The real run removes exactly what the dry runs listed.
    clear_log(&e);
    let cfg = cleanup_config(&e, "", "", &rules);
    e.once(&cfg, &[]);
    assert_eq!(sorted(removed(&e)), lines(false));
    assert_eq!(done_lines(&e), vec![done("t", 4, bytes, 0)]);
}

// A dry run logs every action the real run would take, directories included: an
// old directory that is empty already is removed by the real run.
#[test]
fn dry_run_reports_the_empty_directories_a_real_run_removes() {
    let e = cleanup_host("dryempty");
    let tree = e.path("tree");
    old_dir(&tree.join("empty"));
    set_mtime(&tree, old());
    let rules = rule(
        "t",
        &e.p("tree"),
        &format!("{ALWAYS_R}\nremove_empty_dirs = yes"),
    );
    let want = line("t", &e.p("tree/empty"), "dir", 0, "10d");
    let cfg = cleanup_config(&e, "", "", &rules);
    e.once(&cfg, &["--dry-run"]);
    let dry_lines = removed(&e);
    assert!(tree.join("empty").is_dir());
    clear_log(&e);
    e.once(&cfg, &[]);
    assert_eq!(removed(&e), vec![want.clone()]);
    assert_eq!(dry_lines, vec![dry(want)]);
}

#[test]
fn ages_recursion_and_empty_directories() {
    let e = cleanup_host("ages");
    let now = now_s();
    // flat: a non-recursive rule.
    let flat = e.path("flat");
    old_file(&flat.join("old.log"), "o");
    file_at(&flat.join("future.log"), "f", now + 10 * DAY);
    file_at(&flat.join("far-future.log"), "f", i64::from(i32::MAX) + 100);
    file_at(&flat.join("new.log"), "n", now - DAY);
    file_at(&flat.join("almost.log"), "a", now - 7 * DAY + 3600);
    old_file(&flat.join("sub/inner.log"), "i");
    old_dir(&flat.join("sub"));
    old_dir(&flat.join("emptysub"));

    // tree: recursive, remove_empty_dirs.
    let tree = e.path("tree");
    old_dir(&tree.join("empty"));
    std::fs::create_dir_all(tree.join("newempty")).unwrap();
    file_at(&tree.join("full/new.log"), "n", now - DAY);
    set_mtime(&tree.join("full"), old());
    old_file(&tree.join("emptied/old.log"), "o");
    set_mtime(&tree.join("emptied"), old());
    old_dir(&tree.join("nest/inner"));
    set_mtime(&tree.join("nest"), old());
    file_at(&tree.join("future/f.log"), "f", now + DAY);
    set_mtime(&tree.join("future"), old());
    set_mtime(&tree, old());

    // emptyroot: an old, empty rule directory; oldroot: one with only old files.
    old_dir(&e.path("emptyroot"));
    old_file(&e.path("oldroot/x.log"), "x");
    set_mtime(&e.path("oldroot"), old());

    let empties = "when = always\nrecursive = yes\nolder_than = 7d\nremove_empty_dirs = yes";
    let cfg = cleanup_config(
        &e,
        "",
        "",
        &(rule("flat", &e.p("flat"), "when = always\nolder_than = 7d")
            + &rule("tree", &e.p("tree"), empties)
            + &rule(
                "roots",
                &format!("{} {}", e.p("emptyroot"), e.p("oldroot")),
                empties,
            )),
    );
    e.once(&cfg, &[]);

    assert_eq!(
        sorted(removed(&e)),
        sorted(vec![
            line("flat", &e.p("flat/old.log"), "file", 1, "10d"),
            line("tree", &e.p("tree/empty"), "dir", 0, "10d"),
            line("tree", &e.p("tree/emptied/old.log"), "file", 1, "10d"),
            line("tree", &e.p("tree/emptied"), "dir", 0, "10d"),
            line("tree", &e.p("tree/nest/inner"), "dir", 0, "10d"),
            line("tree", &e.p("tree/nest"), "dir", 0, "10d"),
            line("roots", &e.p("oldroot/x.log"), "file", 1, "10d"),
        ])
    );
    assert_eq!(
        done_lines(&e),
        vec![
            done("flat", 1, 1, 0),
            done("tree", 5, 1, 0),
            done("roots", 1, 1, 0)
        ]
    );
    assert_eq!(
        keys(&snapshot(&flat)),
        [
            "",
            "almost.log",
            "emptysub",
            "far-future.log",
            "future.log",
            "new.log",
            "sub",
            "sub/inner.log"
        ]
    );
    assert_eq!(
        keys(&snapshot(&tree)),
        [
            "",
            "full",
            "full/new.log",
            "future",
            "future/f.log",
            "newempty"
        ]
    );
    assert!(e.path("emptyroot").is_dir(), "never the rule's root");
    assert_eq!(keys(&snapshot(&e.path("oldroot"))), [""]);
}

#[test]
fn missing_and_non_directory_paths_do_not_stop_the_rule() {
    let e = cleanup_host("paths");
    old_file(&e.path("afile"), "not a directory");
    old_file(&e.path("tree/a.log"), "a");
    let cfg = cleanup_config(
        &e,
        "",
        "",
        &rule(
            "t",
            &format!("{} {} {}/", e.p("missing"), e.p("afile"), e.p("tree")),
            ALWAYS_R,
        ),
    );
    e.once(&cfg, &[]);
    assert_eq!(
        cleanup_errors(&e),
        vec![format!(
            "level=warn event=error what=cleanup rule=t path={} errno=ENOENT error=\"No such file or directory\"",
            e.p("missing")
        )],
        "the first error of the cycle"
    );
    assert_eq!(
        removed(&e),
        vec![line("t", &e.p("tree/a.log"), "file", 1, "10d")]
    );
    assert_eq!(done_lines(&e), vec![done("t", 1, 1, 2)]);
    assert!(exists(&e.path("afile")));
}
