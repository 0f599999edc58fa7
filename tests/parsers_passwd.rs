//! The `/etc/passwd` and `/etc/group` parsers against the files of a real host
//! (Debian 12) and hand-made odd ones: the lines skipped, the first entry for a uid
//! winning, a user's groups, and cut, empty and garbage files. Fixtures live in
//! `tests/fixtures/passwd/`; its README says where each came from.

#[path = "common/fixtures.rs"]
mod fixtures;

use fixtures::*;
use system_agent::passwd::{Group, User, Users, groups_of, parse_group, parse_passwd};

// ---------------------------------------------------------------------------------
// /etc/passwd

fn user(name: &str, uid: u32, gid: u32, home: &str, shell: &str) -> User {
    User {
        name: name.into(),
        uid,
        gid,
        home: home.into(),
        shell: shell.into(),
    }
}

#[test]
fn passwd_debian12() {
    let nologin = "/usr/sbin/nologin";
    assert_eq!(
        parse_passwd(PASSWD),
        vec![
            user("root", 0, 0, "/root", "/bin/bash"),
            user("daemon", 1, 1, "/usr/sbin", nologin),
            user("bin", 2, 2, "/bin", nologin),
            user("sys", 3, 3, "/dev", nologin),
            user("sync", 4, 65534, "/bin", "/bin/sync"),
            user("games", 5, 60, "/usr/games", nologin),
            user("man", 6, 12, "/var/cache/man", nologin),
            user("lp", 7, 7, "/var/spool/lpd", nologin),
            user("mail", 8, 8, "/var/mail", nologin),
            user("news", 9, 9, "/var/spool/news", nologin),
            user("uucp", 10, 10, "/var/spool/uucp", nologin),
            user("proxy", 13, 13, "/bin", nologin),
            user("www-data", 33, 33, "/var/www", nologin),
            user("backup", 34, 34, "/var/backups", nologin),
            user("list", 38, 38, "/var/list", nologin),
            user("irc", 39, 39, "/run/ircd", nologin),
            user("_apt", 42, 65534, "/nonexistent", nologin),
            user("nobody", 65534, 65534, "/nonexistent", nologin),
            user("cloudsdk", 1000, 1000, "/home/cloudsdk", "/bin/bash"),
            user("systemd-network", 998, 998, "/", nologin),
            user("systemd-timesync", 997, 997, "/", nologin),
            user("messagebus", 100, 102, "/nonexistent", nologin),
            user("polkitd", 996, 996, "/nonexistent", nologin),
            user("postgres", 101, 104, "/var/lib/postgresql", "/bin/bash"),
        ]
    );
    let users = Users::new(parse_passwd(PASSWD));
    assert_eq!((users.len(), users.is_empty()), (24, false));
    assert_eq!(users.name(0), Some("root"));
    assert_eq!(users.name(6), Some("man"));
    assert_eq!(users.name(65534), Some("nobody"));
    assert_eq!(users.name(1001), None);
}

#[test]
fn passwd_odd_lines() {
    // Skipped: the comment, the NIS +/- lines, a short and a long line, uid or gid
    // above u32 or negative or with a space, an empty or non-UTF-8 name, the blank line.
    assert_eq!(
        parse_passwd(PASSWD_ODD),
        vec![
            user("root", 0, 0, "/root", "/bin/bash"),
            user("daemon", 1, 1, "/usr/sbin", "/usr/sbin/nologin"),
            user("alice", 1000, 1000, "/home/alice", "/bin/bash"),
            user("toor", 0, 0, "/root", "/bin/sh"),
            user(
                "max",
                u32::MAX,
                u32::MAX,
                "/nonexistent",
                "/usr/sbin/nologin"
            ),
            user("bob", 1010, 1010, "", ""),
            user("dave", 1011, 1011, "/home/dave", "/usr/bin/zsh"),
            user("dave2", 1011, 1011, "/home/dave2", "/bin/sh"),
            user("last", 1012, 1012, "/home/last", "/bin/sh"),
        ]
    );
}

#[test]
fn passwd_users_first_entry_for_a_uid_wins() {
    let users = Users::new(parse_passwd(PASSWD_ODD));
    // Every entry is kept (the audit reads a toor beside root); names go by uid.
    assert_eq!(users.len(), 9);
    let all: Vec<&str> = users.all().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(
        all,
        [
            "root", "daemon", "alice", "toor", "max", "bob", "dave", "dave2", "last"
        ]
    );
    assert_eq!(users.name(0), Some("root"));
    assert_eq!(users.name(1011), Some("dave"));
    assert_eq!(users.name(u32::MAX), Some("max"));
    assert_eq!(users.name(1010), Some("bob"));
    // Rejected lines give no name.
    for uid in [1001, 1002, 1006, 1007, 1008, 1009] {
        assert_eq!(users.name(uid), None, "uid {uid}");
    }
    let none = Users::new(Vec::new());
    assert_eq!((none.len(), none.is_empty(), none.name(0)), (0, true, None));
    assert!(Users::default().is_empty());
}

#[test]
fn passwd_truncated_empty_garbage() {
    // Cut inside the last line's gecos field: that line is dropped, the rest kept.
    let cut = PASSWD.len() - 40;
    assert!(PASSWD[..cut].ends_with(b":PostgreSQL adminis"));
    let users = parse_passwd(&PASSWD[..cut]);
    assert_eq!(users.len(), 23);
    assert_eq!(users[22].name, "polkitd");
    assert_eq!(parse_passwd(EMPTY), Vec::new());
    assert_eq!(parse_passwd(GARBAGE), Vec::new());
    // A whole CRLF file.
    let crlf = b"root:x:0:0:root:/root:/bin/bash\r\nman:x:6:12::/var/cache/man:/bin/false\r\n";
    assert_eq!(
        parse_passwd(crlf),
        vec![
            user("root", 0, 0, "/root", "/bin/bash"),
            user("man", 6, 12, "/var/cache/man", "/bin/false"),
        ]
    );
}

// ---------------------------------------------------------------------------------
// /etc/group

fn group(name: &str, gid: u32, members: &[&str]) -> Group {
    Group {
        name: name.into(),
        gid,
        members: members.iter().map(|m| m.to_string()).collect(),
    }
}

#[test]
fn group_debian12() {
    let groups = parse_group(GROUP);
    assert_eq!(groups.len(), 48);
    assert_eq!(groups[0], group("root", 0, &[]));
    assert_eq!(groups[4], group("adm", 4, &["cloudsdk"]));
    assert_eq!(groups[37], group("nogroup", 65534, &[]));
    assert_eq!(groups[47], group("postgres", 104, &[]));
    // As initgroups: the primary group first, then each group naming the user.
    assert_eq!(
        groups_of(&groups, "cloudsdk", 1000),
        [1000, 4, 20, 24, 25, 27, 29, 30, 44, 46, 101, 1001]
    );
    assert_eq!(groups_of(&groups, "postgres", 104), [104, 103]);
    assert_eq!(groups_of(&groups, "man", 12), [12]);
    // A user no group names, with a primary group missing from the file.
    assert_eq!(groups_of(&groups, "nosuchuser", 4242), [4242]);
    // Members are names, not prefixes.
    assert_eq!(groups_of(&groups, "cloud", 1000), [1000]);
}

#[test]
fn group_odd_lines() {
    // Skipped: the comment, the NIS +/- lines, a short and a long line, a gid above
    // u32 or negative or with a space, an empty or non-UTF-8 name, a non-UTF-8
    // member list, the blank line.
    assert_eq!(
        parse_group(GROUP_ODD),
        vec![
            group("root", 0, &[]),
            group("adm", 4, &["syslog", "alice"]),
            group("crlf", 1005, &["alice", "bob"]),
            group("max", u32::MAX, &["alice"]),
            group("trailing", 1008, &["alice", "bob"]),
            group("space", 1009, &[" alice", "bob "]),
            group("dup", 4, &["alice"]),
            group("empty", 1010, &[]),
            group("nopass", 1011, &["alice"]),
            group("last", 1012, &["alice"]),
        ]
    );
    let groups = parse_group(GROUP_ODD);
    // Each gid once (adm and dup are both 4), the primary first even when listed.
    assert_eq!(
        groups_of(&groups, "alice", 1008),
        [1008, 4, 1005, u32::MAX, 1011, 1012]
    );
    assert_eq!(groups_of(&groups, "bob", 7), [7, 1005, 1008]);
    assert_eq!(groups_of(&groups, "syslog", 4), [4]);
}

#[test]
fn group_truncated_empty_garbage() {
    // Without its final newline, the last line still counts.
    let groups = parse_group(&GROUP[..GROUP.len() - 1]);
    assert_eq!(groups.len(), 48);
    // Cut inside a member list: that line keeps what it had, the rest is gone.
    let cut = GROUP.len() - "postgres:x:104:\n".len() - 5;
    assert!(GROUP[..cut].ends_with(b":103:post"));
    let groups = parse_group(&GROUP[..cut]);
    assert_eq!(groups.len(), 47);
    assert_eq!(groups[46], group("ssl-cert", 103, &["post"]));
    assert_eq!(parse_group(EMPTY), Vec::new());
    assert_eq!(parse_group(GARBAGE), Vec::new());
    assert_eq!(groups_of(&[], "alice", 1000), [1000]);
}
