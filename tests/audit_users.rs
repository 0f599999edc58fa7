//! Whose shell history the audit reads, through the built binary: `users = all`
//! (root and login accounts from uid 1000), a list, names missing from passwd,
//! shared uids, empty shells, and accounts or histories that appear later. Every
//! home, history and the passwd the agent reads live in this test's own temp
//! dir; files belong to test uids (4001…) that need not exist on the host.

mod common;

use common::*;

fn everyone() -> Vec<Account<'static>> {
    vec![
        ("root", 0, "/bin/bash"),
        ("daemon2", 999, "/bin/bash"),
        ("alice", 4001, "/bin/bash"),
        ("bob", 4002, "/usr/bin/zsh"),
        ("svc", 4003, "/usr/sbin/nologin"),
        ("locked", 4004, "/bin/false"),
        ("old", 4005, "/sbin/nologin"),
    ]
}

/// Gives everyone a history, runs twice with an append in between; the users
/// whose command was logged (each line checked to be that user's command), sorted.
fn audited_users(h: &Audited, cfg: &std::path::Path) -> Vec<String> {
    for (name, _) in h.users() {
        h.replace_hist(&name, b"before\n");
    }
    h.once(cfg);
    for (name, _) in h.users() {
        h.append(&name, format!("whoami-{name}\n").as_bytes());
    }
    h.once(cfg);
    let user_of = |l: &str| {
        l.split(" user=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .to_string()
    };
    let hist = h.history();
    for l in &hist {
        let user = user_of(l);
        assert_eq!(
            *l,
            hist_line(&user, h.uid(&user), &format!("whoami-{user}"))
        );
    }
    let mut users: Vec<String> = hist.iter().map(|l| user_of(l)).collect();
    users.sort();
    users
}

// ---------------------------------------------------------------------------
// Whose history is read.

#[test]
fn users_all_is_root_and_login_accounts_from_uid_1000() {
    let h = Audited::new("all", &everyone());
    let cfg = h.config("", "users = all");
    assert_eq!(audited_users(&h, &cfg), vec!["alice", "bob", "root"]);
    h.assert_no_errors();
}

#[test]
fn users_list_audits_only_those_named() {
    let h = Audited::new("named", &everyone());
    let cfg = h.config("", "users = alice");
    assert_eq!(audited_users(&h, &cfg), vec!["alice"]);
    h.assert_no_errors();
}

#[test]
fn a_listed_user_missing_from_passwd_is_reported_once() {
    let h = Audited::alice("ghost", b"");
    let (_, agent) = h.serve("users = alice, ghost", &["alice"]);
    h.stop_after(agent, 5);
    assert_eq!(
        h.audit_errors(),
        vec![format!(
            "level=warn event=error what=audit error=\"user ghost is not in {}\"",
            h.p("etc/passwd")
        )]
    );
    // alice, who is there, is audited all the same.
    assert!(h.read("state/audit").contains(" alice\n"));
}

#[test]
fn accounts_sharing_a_uid_are_each_audited() {
    let h = Audited::new(
        "dupuid",
        &[
            ("root", 0, "/bin/bash"),
            ("toor", 0, "/bin/bash"),
            ("alice", 4001, "/bin/bash"),
            ("alice2", 4001, "/bin/bash"),
        ],
    );
    let cfg = h.config("", "users = all");
    assert_eq!(
        audited_users(&h, &cfg),
        vec!["alice", "alice2", "root", "toor"]
    );

    let h = Audited::new(
        "dupuid-named",
        &[("root", 0, "/bin/bash"), ("toor", 0, "/bin/bash")],
    );
    let cfg = h.config("", "users = toor");
    assert_eq!(audited_users(&h, &cfg), vec!["toor"]);
    h.assert_no_errors();
}

#[test]
fn an_empty_shell_field_is_a_login_shell() {
    let h = Audited::new("noshell", &[("carol", 4001, "")]);
    let cfg = h.config("", "users = all");
    assert_eq!(audited_users(&h, &cfg), vec!["carol"]);
}

// ---------------------------------------------------------------------------
// Accounts and histories that appear later are read from their start.

#[test]
fn a_user_added_to_passwd_later_is_read_from_the_start() {
    let h = Audited::alice("added", b"alice-before-the-audit\n");
    let cfg = h.config("", "");
    // The host's first audit run: what alice's history holds is the past.
    h.once(&cfg);
    // bob arrives with a history already written (copied in, or typed before the
    // agent saw his account).
    h.add_user("bob", 4002);
    h.replace_hist("bob", b"bob-one\nbob-two\n");
    h.append("alice", b"alice-after\n");
    h.once(&cfg);
    h.once(&cfg);
    assert_eq!(
        h.sorted_history(),
        vec![
            hist_line("alice", 4001, "alice-after"),
            hist_line("bob", 4002, "bob-one"),
            hist_line("bob", 4002, "bob-two"),
        ]
    );
    h.assert_no_errors();
}

#[test]
fn a_history_created_after_the_first_run_is_read_from_its_start_when_first_audited() {
    // bob is not audited at the host's first run; his history appears afterwards,
    // and a reload adds him: none of it is skipped.
    let h = Audited::new(
        "created-later",
        &[("alice", 4001, "/bin/bash"), ("bob", 4002, "/bin/bash")],
    );
    h.replace_hist("alice", b"");
    let (_, agent) = h.serve("users = alice", &["alice"]);
    h.replace_hist("bob", b"bob-one\nbob-two\n");
    h.wait_cycles(2);
    h.config("", "users = alice bob");
    agent.signal(libc::SIGHUP);
    h.wait_seen(&["alice", "bob"]);
    h.wait_history(2);
    h.stop_after(agent, 3);
    assert_eq!(h.history(), h.hist_lines("bob", &["bob-one", "bob-two"]));
}
