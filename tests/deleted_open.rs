//! Deleted but open files on a full disk, for real: a scenario runs as PID 1 of
//! a private PID namespace (so the agent sees, and may act on, only what it
//! starts) with a private mount namespace, mounts a 64 MiB tmpfs, starts
//! `logholder` (a copy of sleep) holding a 50 MB file it then deletes, fills the
//! tmpfs to 90%, and runs the agent `--once` on it. `statvfs` (`stat -f`)
//! before and after says whether the space came back.

mod common;

use common::*;

/// The scenario: the held file, the fill, one `--once`, the space available
/// before and after (bytes), and the holder's pid.
const BODY: &str = r#"
mkdir -p "$T/mnt"
mount -t tmpfs -o size=64m tmpfs "$T/mnt" || problem mount
head -c 52428800 /dev/zero > "$T/mnt/app.log"
"$T/bin/logholder" 1000 3<"$T/mnt/app.log" &
H=$!
out holder "$H"
poll comm_is "$H" logholder || problem holder
rm "$T/mnt/app.log"
head -c 8388608 /dev/zero > "$T/mnt/other"
avail() { set -- $(stat -f -c '%a %S' "$T/mnt"); echo $(($1 * $2)); }
out before "$(avail)"
once
out after "$(avail)"
kill "$H"
"#;

/// Runs the scenario with `[disk] truncate_deleted = names`; `None` when skipped
/// (not root).
fn scenario(tag: &str, names: &str) -> Option<(Scenario, Outcome)> {
    let s = Scenario::new(tag, &["logholder"])?;
    let (mnt, disk) = (s.h.p("mnt"), format!("truncate_deleted = {names}"));
    s.h.config(Ini {
        agent: "top = 0",
        thresholds: "cpu_warn = 100\ncpu_crit = 100\nmem_warn = 100\nmem_crit = 100",
        real_proc: true,
        mounts: &mnt,
        disk: &disk,
        ..Ini::default()
    });
    let o = s.run(BODY);
    Some((s, o))
}

fn num(o: &Outcome, key: &str) -> u64 {
    o.out
        .get(key)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key}: {}", o.context))
}

#[test]
fn a_held_deleted_file_is_named_and_truncated_when_its_holder_is_allowed() {
    let Some((s, o)) = scenario("deleted-truncate", "logholder") else {
        return;
    };
    let (pid, mnt) = (num(&o, "holder"), s.h.p("mnt"));
    let path = format!("{mnt}/app.log");
    let told = events(&o.log, "event=deleted_open");
    assert_eq!(
        told,
        [format!(
            "level=warn event=deleted_open mount={mnt} pid={pid} name=logholder user=root fd=3 \
             bytes=52428800 path={path}"
        )],
        "{}",
        o.context
    );
    let cleaned = events(&o.log, "event=cleanup ");
    assert_eq!(
        cleaned,
        [format!(
            "level=info event=cleanup kind=deleted_open mount={mnt} pid={pid} name=logholder \
             fd=3 bytes=52428800 path={path}"
        )],
        "{}",
        o.context
    );
    // The space came back: the tmpfs gave the 50 MB pages back.
    let (before, after) = (num(&o, "before"), num(&o, "after"));
    assert!(
        after >= before + 52_428_800,
        "{before} -> {after}\n{}",
        o.context
    );
}

#[test]
fn a_holder_not_named_is_told_of_but_its_file_is_left_alone() {
    let Some((s, o)) = scenario("deleted-refused", "rsyslogd java*") else {
        return;
    };
    let pid = num(&o, "holder");
    let told = events(&o.log, "event=deleted_open");
    assert_eq!(told.len(), 1, "{}", o.context);
    assert!(
        told[0].contains(&format!(
            " pid={pid} name=logholder user=root fd=3 bytes=52428800 "
        )),
        "{}",
        o.context
    );
    assert!(events(&o.log, "event=cleanup ").is_empty(), "{}", o.context);
    let (before, after) = (num(&o, "before"), num(&o, "after"));
    assert!(
        after < before + 1_048_576,
        "{before} -> {after}\n{}",
        o.context
    );
    let _ = s;
}
