//! The deleted-open step over real processes of this test, with effects that
//! only record.

use super::*;
use crate::effects::Action;
use crate::features::bench::Bench;
use crate::glob::Glob;
use crate::judge::metrics_for;
use crate::reading::Reading;
use std::io::Write as _;

/// A child of this test (`sleep`) holding, as its stdin, a 1 MiB file in the
/// bench's dir that is then deleted.
fn holder(b: &Bench) -> std::process::Child {
    let path = b.dir.join("held.log");
    let mut f = std::fs::File::create(&path).expect("a file");
    f.write_all(&vec![b'x'; 1 << 20]).expect("fill it");
    f.sync_all().expect("sync");
    let child = std::process::Command::new("sleep")
        .arg("100")
        .stdin(std::fs::File::open(&path).expect("open it"))
        .spawn()
        .expect("spawn sleep");
    std::fs::remove_file(&path).expect("delete it");
    child
}

/// A bench watching its own dir's filesystem (no passwd: users by uid),
/// truncating `names`.
fn bench(tag: &str, names: &str) -> Bench {
    let mut b = Bench::new(tag, "");
    b.cfg.disk.mounts = vec![b.dir.clone()];
    b.cfg.disk.truncate_deleted = crate::config::value::list(names)
        .iter()
        .map(|g| Glob::new(g))
        .collect();
    b.metrics = metrics_for(&b.cfg);
    b.reading = Reading::new(&b.cfg.disk.mounts);
    b
}

fn at(b: &mut Bench, level: Status) {
    for m in b.metrics.iter_mut().filter(|m| m.kind == Kind::Disk) {
        m.raw = level;
    }
}

/// The lines and actions about our child alone (other processes of this
/// machine may hold deleted files of their own).
fn ours(b: &mut Bench, pid: u32) -> (Vec<String>, Vec<Action>) {
    let needle = format!(" pid={pid} ");
    let mut lines = b.events("deleted_open");
    lines.extend(b.events("cleanup"));
    lines.retain(|l| l.contains(&needle));
    (lines, b.effects.take())
}

#[test]
fn a_held_deleted_file_is_told_once_per_episode_and_truncated_when_named() {
    let mut b = bench("deleted", "sleep");
    let mut child = holder(&b);
    let pid = child.id();
    let mut feature = DeletedOpen::default();
    // Below disk_warn: nothing looked at.
    at(&mut b, Status::Ok);
    feature.step(&mut b.cx());
    assert_eq!(ours(&mut b, pid), (vec![], vec![]));
    at(&mut b, Status::Warning);
    feature.step(&mut b.cx());
    let (lines, actions) = ours(&mut b, pid);
    let path = b.dir.join("held.log").display().to_string();
    let mount = b.dir.display().to_string();
    assert_eq!(
        lines,
        [
            format!(
                "level=warn event=deleted_open mount={mount} pid={pid} name=sleep user=0 \
                 fd=0 bytes=1048576 path={path}"
            ),
            format!(
                "level=info event=cleanup kind=deleted_open mount={mount} pid={pid} \
                 name=sleep fd=0 bytes=1048576 path={path} dry_run=yes"
            ),
        ]
    );
    let wanted = Action::Truncate {
        path: path.clone().into_bytes(),
    };
    assert!(actions.contains(&wanted), "{actions:?}");
    assert_eq!(
        feature
            .largest()
            .iter()
            .filter(|h| h.pid == pid as i32)
            .count(),
        1
    );
    // Still full, a pass later: told already, truncated already.
    feature.passed_ns = None;
    feature.step(&mut b.cx());
    assert_eq!(ours(&mut b, pid).0.len(), 2);
    assert!(!b.effects.take().contains(&wanted));
    // Below, then full again: a new episode tells it again.
    at(&mut b, Status::Ok);
    feature.step(&mut b.cx());
    at(&mut b, Status::Critical);
    feature.step(&mut b.cx());
    assert_eq!(ours(&mut b, pid).0.len(), 4);
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn other_names_are_told_but_never_truncated() {
    let mut b = bench("deleted-other", "rsyslogd java*");
    let mut child = holder(&b);
    let pid = child.id();
    let mut feature = DeletedOpen::default();
    at(&mut b, Status::Critical);
    feature.step(&mut b.cx());
    let (lines, actions) = ours(&mut b, pid);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].starts_with("level=warn event=deleted_open "),
        "{lines:?}"
    );
    let path = b.dir.join("held.log").display().to_string().into_bytes();
    assert!(!actions.contains(&Action::Truncate { path }), "{actions:?}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn the_status_lists_deleted_files_held_open_even_below_disk_warn() {
    let mut b = bench("deleted-status", "");
    let mut child = holder(&b);
    let pid = child.id();
    let mut feature = DeletedOpen::default();
    at(&mut b, Status::Ok);
    feature.step(&mut b.cx());
    feature.status(&mut b.cx());
    let path = b.dir.join("held.log").display().to_string();
    let mount = b.dir.display().to_string();
    let lines = b.events("status");
    let ours: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains(&format!(" pid={pid} ")))
        .collect();
    assert_eq!(
        ours,
        [&format!(
            "level=info event=status feature=deleted_open mount={mount} pid={pid} name=sleep \
             fd=0 bytes=1048576 path={path}"
        )]
    );
    assert!(
        lines[0].starts_with(
            "level=info event=status feature=deleted_open active=yes full_mounts=0 files="
        ),
        "{lines:?}"
    );
    // A status neither tells nor truncates.
    assert_eq!(b.events("deleted_open"), Vec::<String>::new());
    assert_eq!(b.effects.take(), vec![]);
    let _ = child.kill();
    let _ = child.wait();
}
