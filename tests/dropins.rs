//! The drop-in directory: after the main file, every `*.ini` of
//! `<main file without .ini>.d/` in byte order of name; a key set again overrides,
//! a section may be continued in a later file, errors name the drop-in's
//! FILE:LINE, `--check-config` prints where each key was set (and its output reads
//! back), a SIGHUP rereads them all, and the files whose owner and mode decide the
//! capabilities include every drop-in and the directory. Files only in the tests'
//! own temp dirs; signals only to the agent these tests started.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use system_agent::config::{Config, Origin};

fn load(path: &Path, must_exist: bool) -> Result<Config, Vec<String>> {
    Config::load(path, must_exist).map_err(|e| e.iter().map(ToString::to_string).collect())
}

fn at(path: PathBuf, line: usize) -> Option<Origin> {
    Some(Origin::Line(path, line))
}

#[test]
fn dropins_follow_the_main_file_in_byte_order_and_override_it() {
    let t = TempDir::new("dropins-order");
    let main = t.write(
        "agent.ini",
        "[agent]\ntop = 1\ninterval = 5s\n\n[cleanup.app]\npaths = /srv/app\n",
    );
    // Byte order: "10-a" before "9-z" (not numeric order), "B" before "a".
    let a = t.write(
        "agent.d/10-a.ini",
        "[agent]\ntop = 2\n\n[cleanup.app]\nolder_than = 1d\n",
    );
    let z = t.write("agent.d/9-z.ini", "; last\n[agent]\ntop = 3\n");
    let b = t.write("agent.d/B.ini", "[task.x]\ncommand = /bin/true\n");
    // Not drop-ins: hidden, another suffix, a backup, a package manager's copy.
    for name in [".hidden.ini", "x.conf", "a.ini~", "a.ini.dpkg-old"] {
        t.write(&format!("agent.d/{name}"), "[agent]\ntop = 99\n");
    }
    let c = load(&main, true).unwrap();
    assert_eq!(c.file, Some(main.clone()));
    assert_eq!(c.agent.top, 3);
    assert_eq!(c.agent.interval, Duration::from_secs(5));
    assert_eq!(c.cleanup.len(), 1, "{:?}", c.cleanup);
    assert_eq!(c.cleanup[0].paths, [PathBuf::from("/srv/app")]);
    assert_eq!(c.cleanup[0].older_than, Duration::from_secs(86_400));
    assert_eq!(c.tasks[0].command, ["/bin/true"]);
    let read: Vec<&Path> = c.origins.dropins.iter().map(|s| s.path.as_path()).collect();
    let dir = t.join("agent.d");
    assert_eq!(read, [dir.as_path(), &a, &z, &b]);
    assert_eq!(c.origins.of("agent", "top").cloned(), at(z, 3));
    assert_eq!(
        c.origins.of("agent", "interval").cloned(),
        at(main.clone(), 3)
    );
    assert_eq!(c.origins.of("cleanup.app", "paths").cloned(), at(main, 6));
    assert_eq!(c.origins.of("cleanup.app", "older_than").cloned(), at(a, 5));
    assert_eq!(c.origins.of("agent", "log_file"), None);
}

#[test]
fn errors_name_the_dropin_and_its_line_in_file_order() {
    let t = TempDir::new("dropins-errors");
    let main = t.write("agent.ini", "[agent]\ntop = 500\n");
    t.write("agent.d/a.ini", "[agent]\n\ninterval = soon\n[bogus]\n");
    t.write(
        "agent.d/b.ini",
        "[agent]\ntop = 2\ntop = 3\n[thresholds]\ncpu_crit = 50\n",
    );
    t.write("agent.d/c.ini", "[agent\n");
    let d = t.join("agent.d").display().to_string();
    let m = main.display();
    // Lines that do not parse are reported alone (as for one file).
    assert_eq!(
        load(&main, true).unwrap_err(),
        [format!("{d}/c.ini:1: section header without a closing ]")]
    );
    t.write("agent.d/c.ini", "[agent]\nlog_level = loud\n");
    assert_eq!(
        load(&main, true).unwrap_err(),
        [
            format!(
                "{m}:2: agent.top: invalid number \"500\" (expected a whole number from 0 to 100)"
            ),
            format!(
                "{d}/a.ini:3: agent.interval: invalid duration \"soon\" (expected a whole number \
                 with ms, s, m, h or d, e.g. 30s)"
            ),
            format!("{d}/a.ini:4: [bogus]: unknown section"),
            format!("{d}/b.ini:3: agent.top: key repeated (first on line 2)"),
            format!("{d}/b.ini:5: thresholds.cpu_crit: 50 is below thresholds.cpu_warn (80)"),
            format!(
                "{d}/c.ini:2: agent.log_level: invalid log level \"loud\" (expected debug, \
                 info, warn or error)"
            ),
        ]
    );
}

#[test]
fn a_section_given_twice_in_one_file_is_an_error_but_not_across_files() {
    let t = TempDir::new("dropins-twice");
    let main = t.write(
        "agent.ini",
        "[task.x]\ncommand = /bin/true\n[agent]\ntop = 1\n",
    );
    t.write(
        "agent.d/a.ini",
        "[agent]\ntop = 2\n[task.x]\nevery = 1h\n[agent]\n",
    );
    let d = t.join("agent.d").display().to_string();
    assert_eq!(
        load(&main, true).unwrap_err(),
        [format!(
            "{d}/a.ini:5: [agent]: section repeated (first on line 1)"
        )]
    );
    t.write("agent.d/a.ini", "[agent]\ntop = 2\n[task.x]\nevery = 1h\n");
    let c = load(&main, true).unwrap();
    assert_eq!((c.agent.top, c.tasks.len()), (2, 1));
    assert_eq!(c.tasks[0].every, Duration::from_secs(3600));
}

#[test]
fn a_rule_is_checked_as_a_whole_where_it_is_first_named() {
    let t = TempDir::new("dropins-rule");
    let main = t.write("agent.ini", "[agent]\n\n[task.x]\nevery = 1h\n");
    t.write("agent.d/a.ini", "[task.x]\nnice = 5\n");
    assert_eq!(
        load(&main, true).unwrap_err(),
        [format!(
            "{}:3: task.x.command: a task needs a command",
            main.display()
        )]
    );
    t.write("agent.d/b.ini", "[task.x]\ncommand = /bin/true\n");
    let c = load(&main, true).unwrap();
    assert_eq!((c.tasks[0].nice, c.tasks[0].command.len()), (5, 1));
}

#[test]
fn without_the_main_file_the_dropins_change_the_defaults() {
    let t = TempDir::new("dropins-nomain");
    let main = t.join("agent.ini");
    assert_eq!(load(&main, false).unwrap(), Config::default());
    t.write("agent.d/a.ini", "[agent]\ntop = 7\n");
    let c = load(&main, false).unwrap();
    assert_eq!(c.file, None);
    assert_eq!(c.agent.top, 7);
    let sources: Vec<&Path> = c.sources().into_iter().map(|(p, _)| p).collect();
    assert_eq!(sources, [t.join("agent.d"), t.join("agent.d/a.ini")]);
    // With -c the main file must exist.
    assert_eq!(
        load(&main, true).unwrap_err(),
        [format!(
            "{}: cannot read: No such file or directory",
            main.display()
        )]
    );
}

#[test]
fn what_cannot_be_read_is_an_error_naming_it() {
    let t = TempDir::new("dropins-unreadable");
    let main = t.write("agent.ini", "[agent]\n");
    t.write("agent.d", "not a directory\n");
    let d = t.join("agent.d").display().to_string();
    assert_eq!(
        load(&main, true).unwrap_err(),
        [format!("{d}: cannot read: Not a directory")]
    );
    std::fs::remove_file(t.join("agent.d")).unwrap();
    std::fs::create_dir_all(t.join("agent.d/sub.ini")).unwrap();
    t.write("agent.d/bad.ini", b"[agent]\ntop = \xff\n");
    let fifo = t.join("agent.d/fifo.ini");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid C string; a FIFO in our own temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    assert_eq!(
        load(&main, true).unwrap_err(),
        [
            format!("{d}/bad.ini:2: not valid UTF-8"),
            format!("{d}/fifo.ini: cannot read: a FIFO, not a regular file"),
            format!("{d}/sub.ini: cannot read: Is a directory"),
        ]
    );
}

#[test]
fn sources_carry_the_owner_and_mode_of_every_file_read() {
    let t = TempDir::new("dropins-modes");
    let main = t.write("agent.ini", "[agent]\n");
    let a = t.write("agent.d/a.ini", "[agent]\n");
    let set = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    set(&main, 0o640);
    set(&a, 0o664);
    set(&t.join("agent.d"), 0o750);
    let c = load(&main, true).unwrap();
    let uid = owner(&main);
    let modes: Vec<(PathBuf, Option<(u32, u32)>)> = c
        .sources()
        .into_iter()
        .map(|(p, o)| (p.to_path_buf(), o.map(|(u, m)| (u, m & 0o7777))))
        .collect();
    assert_eq!(
        modes,
        [
            (main, Some((uid, 0o640))),
            (t.join("agent.d"), Some((uid, 0o750))),
            (a, Some((uid, 0o664))),
        ]
    );
}

/// The owner of `p`, as this test sees it.
fn owner(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().uid()
}

#[test]
fn check_config_says_where_each_key_was_set_and_reads_back() {
    let t = TempDir::new("dropins-check");
    let main = t.write("agent.ini", "[agent]\ntop = 1\n\n[disk]\nmounts = /\n");
    t.write(
        "agent.d/app.ini",
        "[agent]\ntop = 2\n\n[cleanup.app]\npaths = /srv/app\nwhen = always\n",
    );
    let out = run(&["-c", main.to_str().unwrap(), "--check-config", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let dir = t.join("agent.d");
    let (m, d) = (main.display(), dir.display());
    for part in [
        format!("; effective configuration from {m}\n; drop-in {d}/app.ini\n[agent]\n"),
        "\n; default\ninterval = 10s\n".to_string(),
        "\n; from --dry-run\ndry_run = yes\n".to_string(),
        format!("\n; from {d}/app.ini:2\ntop = 2\n"),
        format!("\n[disk]\n; from {m}:5\nmounts = /\n"),
        format!("\n[cleanup.app]\n; from {d}/app.ini:5\npaths = /srv/app\n; default\nmatch = *\n"),
        format!("\n; from {d}/app.ini:6\nwhen = always\n"),
    ] {
        assert!(text.contains(&part), "{part:?} in\n{text}");
    }
    // Every key has its comment line; the whole reads back as the same config.
    let lines: Vec<&str> = text.lines().skip(2).filter(|l| !l.is_empty()).collect();
    for pair in lines
        .split(|l| l.starts_with('['))
        .flat_map(|s| s.chunks(2))
    {
        assert!(
            pair[0].starts_with("; ") && !pair[1].starts_with(';'),
            "{pair:?}"
        );
    }
    let again = t.write("printed.ini", &text);
    let mut want = load(&main, true).unwrap();
    want.agent.dry_run = true;
    assert_eq!(
        load(&again, true).unwrap(),
        Config {
            file: Some(again),
            ..want
        }
    );
}

#[test]
fn a_newline_in_a_dropin_name_cannot_break_the_printed_config() {
    let t = TempDir::new("dropins-name");
    let main = t.write("agent.ini", "[agent]\n");
    t.write("agent.d/x\n[bogus].ini", "[agent]\ntop = 4\n");
    let out = run(&["-c", main.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let d = t.join("agent.d").display().to_string();
    assert!(
        text.contains(&format!("\n; drop-in {d}/x\\n[bogus].ini\n")),
        "{text}"
    );
    assert!(
        text.contains(&format!("\n; from {d}/x\\n[bogus].ini:2\ntop = 4\n")),
        "{text}"
    );
    let again = t.write("printed.ini", &text);
    assert_eq!(load(&again, true).map(|c| c.agent.top), Ok(4));
}

#[test]
fn sighup_rereads_the_dropins_and_names_their_keys() {
    let h = Host::new("dropins-reload").interval("200ms");
    let t = &h.t;
    let cfg = h.config(Ini::default());
    let log = || h.log();
    let agent = h.spawn(&cfg);
    assert!(
        wait_for(LIMIT, || log().contains(" event=sample ")),
        "{}",
        log()
    );
    t.write("agent.d/10-mem.ini", "[thresholds]\nmem_warn = 40\n\n[task.x]\ncommand = /bin/true\nevery = 1h\nidle_cycles = 9\n");
    agent.signal(libc::SIGHUP);
    assert!(
        wait_for(LIMIT, || log().contains(" event=reload ")),
        "{}",
        log()
    );
    let reload = log()
        .lines()
        .find(|l| l.contains(" event=reload "))
        .unwrap()
        .to_string();
    assert!(
        reload.ends_with(&format!(
            " level=info event=reload config={} changed=\"thresholds.mem_warn task.x.command \
             task.x.every task.x.when_cpu_below task.x.idle_cycles task.x.timeout task.x.nice \
             task.x.user task.x.cwd task.x.umask\"",
            cfg.display()
        )),
        "{reload}"
    );
    assert!(
        wait_for(LIMIT, || log().contains(" event=alert metric=mem ")),
        "{}",
        log()
    );
    // A bad drop-in: named with its line, and the old configuration kept.
    t.write("agent.d/20-bad.ini", "[agent]\n\ntop = many\n");
    agent.signal(libc::SIGHUP);
    assert!(
        wait_for(LIMIT, || log().contains(" event=config_error ")),
        "{}",
        log()
    );
    let error = log()
        .lines()
        .find(|l| l.contains(" event=config_error "))
        .unwrap()
        .to_string();
    assert!(
        error.ends_with(&format!(
            " level=error event=config_error file={} line=3 key=agent.top error=\"invalid number \
             \\\"many\\\" (expected a whole number from 0 to 100)\" effect=\"kept the old configuration\"",
            t.join("agent.d/20-bad.ini").display()
        )),
        "{error}"
    );
    // Removing a drop-in takes its keys back to the main file's (or default) values.
    std::fs::remove_file(t.join("agent.d/20-bad.ini")).unwrap();
    std::fs::remove_file(t.join("agent.d/10-mem.ini")).unwrap();
    agent.signal(libc::SIGHUP);
    assert!(
        wait_for(LIMIT, || log().matches(" event=reload ").count() == 2),
        "{}",
        log()
    );
    let last = log()
        .lines()
        .rfind(|l| l.contains(" event=reload "))
        .unwrap()
        .to_string();
    assert!(
        last.contains(" changed=\"thresholds.mem_warn task.x.command "),
        "{last}"
    );
    assert_eq!(agent.stop(), 0);
}

#[test]
fn more_than_a_thousand_dropins_is_an_error() {
    let t = TempDir::new("dropins-many");
    let main = t.write("agent.ini", "[agent]\n");
    for i in 0..1000 {
        t.write(&format!("agent.d/{i:04}.ini"), "");
    }
    t.write("agent.d/other.conf", "");
    assert_eq!(load(&main, true).map(|c| c.origins.dropins.len()), Ok(1001));
    t.write("agent.d/1000.ini", "");
    assert_eq!(
        load(&main, true).unwrap_err(),
        [format!(
            "{}: cannot read: more than 1000 files to read",
            t.join("agent.d").display()
        )]
    );
}
