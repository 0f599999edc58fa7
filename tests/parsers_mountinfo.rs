//! `/proc/PID/mountinfo`: a table captured in a mount namespace, network and FUSE
//! types, the mount holding a path (escaped names decoded), and truncated, empty,
//! garbage and bad lines.

#[path = "common/fixtures.rs"]
mod fixtures;

use fixtures::*;
use system_agent::procfs::mountinfo::{Escaped, MountLine, mount_holding, parse_mountinfo_line};

// ---------------------------------------------------------------------------------
// mountinfo

fn mount(id: u64, parent: u64, point: &'static [u8], fstype: &'static [u8]) -> MountLine<'static> {
    MountLine {
        id,
        parent,
        point: Escaped(point),
        fstype: Escaped(fstype),
    }
}

/// The mount holding `path` in `table`, as (id, decoded point, decoded type).
fn holding(table: &[u8], path: &[u8]) -> Option<(u64, Vec<u8>, Vec<u8>)> {
    mount_holding(table, path).map(|m| (m.id, m.point.decoded(), m.fstype.decoded()))
}

#[test]
fn mountinfo_captured_in_a_namespace() {
    let lines: Vec<&[u8]> = MOUNTINFO_NS.split(|&c| c == b'\n').collect();
    assert_eq!(
        lines.len(),
        29,
        "28 lines and the empty one after the last newline"
    );
    for line in &lines[..28] {
        assert!(
            parse_mountinfo_line(line).is_ok(),
            "{}",
            line.escape_ascii()
        );
    }
    assert_eq!(parse_mountinfo_line(lines[28]), err("no mount id"));
    assert_eq!(
        parse_mountinfo_line(lines[0]),
        Ok(mount(43, 42, b"/", b"ext4"))
    );
    assert_eq!(
        parse_mountinfo_line(lines[19]),
        Ok(mount(63, 43, b"/srv/cap/fuse", b"fuse"))
    );
    assert_eq!(
        parse_mountinfo_line(lines[20]),
        Ok(mount(64, 43, b"/srv/cap/tmpfs\\040mnt", b"tmpfs"))
    );
    assert_eq!(
        parse_mountinfo_line(lines[27]),
        Ok(mount(71, 70, b"/srv/cap/shared/sub", b"tmpfs"))
    );
    assert_holding(
        MOUNTINFO_NS,
        &[
            ("/", 43, "/", "ext4"),
            ("/srv/cap", 43, "/", "ext4"),
            ("/srv/cap/fuse", 63, "/srv/cap/fuse", "fuse"),
            ("/srv/cap/fuse/a/b", 63, "/srv/cap/fuse", "fuse"),
            ("/srv/cap/fusex", 43, "/", "ext4"),
            ("/srv/cap/tmpfs mnt/x", 64, "/srv/cap/tmpfs mnt", "tmpfs"),
            ("/srv/cap/tmpfs", 43, "/", "ext4"),
            ("/srv/cap/tab\tx", 67, "/srv/cap/tab\tx", "tmpfs"),
            ("/srv/cap/back\\slash", 68, "/srv/cap/back\\slash", "tmpfs"),
            // Stacked: the later (upper) mount hides the one below.
            ("/srv/cap/stack", 66, "/srv/cap/stack", "tmpfs"),
            ("/srv/cap/shared/sub/f", 71, "/srv/cap/shared/sub", "tmpfs"),
            (
                "/sys/fs/cgroup/memory/x",
                51,
                "/sys/fs/cgroup/memory",
                "cgroup",
            ),
            ("/proc/self/mountinfo", 45, "/proc", "proc"),
            // A bind mount: its point, whatever directory it shows.
            ("/srv/cap/bind/f", 69, "/srv/cap/bind", "ext4"),
        ],
    );
}

/// A path, and the id, decoded mount point and type of the mount holding it.
type Holding = (&'static str, u64, &'static str, &'static str);

fn assert_holding(table: &[u8], cases: &[Holding]) {
    for &(path, id, point, fstype) in cases {
        assert_eq!(
            holding(table, path.as_bytes()),
            Some((id, point.as_bytes().to_vec(), fstype.as_bytes().to_vec())),
            "{path:?}"
        );
    }
}

#[test]
fn mountinfo_network_and_fuse_types() {
    assert_holding(
        MOUNTINFO_NET,
        &[
            ("/mnt/nfs", 40, "/mnt/nfs", "nfs4"),
            ("/mnt/nfs/projects/x", 40, "/mnt/nfs", "nfs4"),
            ("/mnt/nfs/scratch/tmp", 44, "/mnt/nfs/scratch", "tmpfs"),
            ("/srv/share one", 41, "/srv/share one", "cifs"),
            (
                "/home/alice/remote/src",
                42,
                "/home/alice/remote",
                "fuse.sshfs",
            ),
            ("/net/host/export", 43, "/net", "autofs"),
            ("/var/log", 22, "/", "ext4"),
        ],
    );
    assert_eq!(
        parse_mountinfo_line(MOUNTINFO_NET.split(|&c| c == b'\n').nth(5).unwrap()),
        Ok(mount(44, 40, b"/mnt/nfs/scratch", b"tmpfs"))
    );
}

#[test]
fn mountinfo_truncated_empty_garbage_and_bad_lines() {
    // The cut third line is skipped; the two before it still answer.
    assert_eq!(
        holding(MOUNTINFO_TRUNC, b"/proc/1"),
        Some((45, b"/proc".to_vec(), b"proc".to_vec()))
    );
    assert_eq!(
        holding(MOUNTINFO_TRUNC, b"/sys"),
        Some((43, b"/".to_vec(), b"ext4".to_vec()))
    );
    assert_eq!(holding(EMPTY, b"/"), None);
    assert_eq!(holding(GARBAGE, b"/"), None);
    assert_eq!(holding(STAT, b"/"), None);
    let cases: [(&[u8], &str); 11] = [
        (b"", "no mount id"),
        (b"x 1 0:1 / / rw - ext4 /dev/sda rw", "bad mount id"),
        (b"1 -1 0:1 / / rw - ext4 /dev/sda rw", "bad parent id"),
        (b"1 2", "no device"),
        (b"1 2 01 / / rw - ext4 /dev/sda rw", "bad device"),
        (b"1 2 0:1", "no root"),
        (b"1 2 0:1 /", "no mount point"),
        (
            b"1 2 0:1 / mnt rw - ext4 /dev/sda rw",
            "mount point is not absolute",
        ),
        (b"1 2 0:1 / /", "no mount options"),
        (
            b"1 2 0:1 / / rw shared:1 ext4 /dev/sda rw",
            "no \"-\" separator",
        ),
        (b"1 2 0:1 / / rw -", "no filesystem type"),
    ];
    for (line, want) in cases {
        assert_eq!(
            parse_mountinfo_line(line),
            err(want),
            "{}",
            line.escape_ascii()
        );
    }
    // Double spaces make an empty field; the kernel never prints one.
    assert_eq!(
        parse_mountinfo_line(b"1 2 0:1 /  / rw - ext4 /dev/sda rw"),
        err("no mount point")
    );
    // Source and superblock options may be missing: the type is enough.
    assert_eq!(
        parse_mountinfo_line(b"1 2 0:1 / /m rw - nfs"),
        Ok(mount(1, 2, b"/m", b"nfs"))
    );
}
