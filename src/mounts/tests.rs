//! Which mount types may hang, and the prober that asks `statvfs` out of the
//! loop's way.

use super::*;

#[test]
fn network_and_fuse_types_are_hung_prone() {
    for t in [
        "nfs",
        "nfs4",
        "cifs",
        "fuse",
        "fuse.sshfs",
        "fuse.rclone",
        "9p",
    ] {
        assert!(hung_prone(t.as_bytes()), "{t}");
    }
    for t in [
        "ext4", "xfs", "tmpfs", "btrfs", "overlay", "proc", "fusectl", "",
    ] {
        assert!(!hung_prone(t.as_bytes()), "{t}");
    }
}

/// Forks a prober on `path` and returns its answer, once it is reaped
/// (bounded: a local filesystem answers at once).
fn probe(path: &std::ffi::CStr) -> ProbeReply {
    let (pid, reply) = sys::statvfs_in_child(path).expect("fork a prober");
    let mut pfd = [libc::pollfd {
        fd: reply.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    }];
    for _ in 0..100 {
        if sys::poll(&mut pfd, 100) > 0 {
            break;
        }
    }
    let answer = sys::probe_reply(reply.as_raw_fd());
    let reaped = (0..500).any(|_| sys::reap_nohang(pid) || sys::poll(&mut [], 10) > 1);
    assert!(reaped, "the prober exits once it has answered");
    answer
}

#[test]
fn a_prober_answers_what_statvfs_says() {
    let want = sys::statvfs(c"/").expect("statvfs /");
    match probe(c"/") {
        ProbeReply::Stats(s) => assert_eq!(
            (s.blocks, s.files, s.frsize),
            (want.blocks, want.files, want.frsize)
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(probe(c"/no/such/dir"), ProbeReply::Failed(libc::ENOENT));
}

/// A fixture mountinfo says a temp dir is an NFS mount: it is asked through a
/// prober (which answers, the directory being local in truth), `/` directly.
#[test]
fn mounts_are_probed_by_type() {
    let dir = std::env::temp_dir().join(format!("sa-unit-mounts-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("self")).expect("temp dir");
    let table = format!(
        "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n2 1 0:45 / {} rw shared:3 - nfs4 srv:/x rw\n",
        dir.display()
    );
    std::fs::write(dir.join("self/mountinfo"), table).expect("mountinfo");
    let mut m = Mounts::default();
    let disks = [PathBuf::from("/"), dir.clone()];
    let below = dir.join("self");
    assert_eq!(m.configure(&dir, &disks, &[Path::new("/"), &below]), None);
    let kinds: Vec<(&Path, &str, bool)> = m
        .mounts
        .iter()
        .map(|m| (m.point.as_path(), m.fstype.as_str(), m.probed()))
        .collect();
    assert_eq!(
        kinds,
        [
            (Path::new("/"), "ext4", false),
            (dir.as_path(), "nfs4", true)
        ]
    );
    let mut log = Logger::new(&crate::log::Target {
        level: Level::Error,
        file: Some(dir.join("log")),
        mode: 0o600,
        format: crate::config::LogFormat::Logfmt,
        syslog: None,
    });
    let mut out = crate::reading::Reading::new(&disks).disks;
    m.sample(&mut out, &mut log, &|| false);
    let want = DiskUsage::from_stats(&sys::statvfs(c"/").expect("statvfs /"));
    assert_eq!(
        out[0].usage.as_ref().map(|d| d.size_bytes).ok(),
        Some(want.size_bytes)
    );
    assert!(out[1].usage.is_ok(), "{:?}", out[1].usage);
    assert_eq!(m.check(Path::new("/"), &|| false), Check::Local);
    // Asked once this cycle already: the answer is reused, no second prober.
    assert!(matches!(
        m.check(&below, &|| false),
        Check::Answered(Some(_))
    ));
    assert!(m.mounts.iter().all(|m| m.prober.is_none()));
    let none: &[&Path] = &[];
    let unknown = dir.join("no-proc");
    assert!(
        m.configure(&unknown, &disks, none)
            .is_some_and(|e| e.contains("mountinfo"))
    );
    assert!(m.mounts.iter().all(|m| !m.probed()));
    let _ = std::fs::remove_dir_all(&dir);
}
