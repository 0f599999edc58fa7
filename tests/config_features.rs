//! The feature sections: `[cleanup.NAME]` and `[reap.NAME]` rules, `[reaper]`,
//! `[task.NAME]`, `[audit]`, `[alert]` and `[relief]`: each key's default, its valid
//! forms and exact value, and each mistake's exact error.

mod common;

use common::config::*;
use std::time::Duration;
use system_agent::config::{self, Action, Config, ProcState, Scope, When};
use system_agent::glob::Glob;

// ---------------------------------------------------------------- rules: cleanup, reaper

#[test]
fn cleanup_rule_defaults_and_every_key() {
    let c = ok("[cleanup.logs]\npaths = /var/log/aion\n");
    let r = &c.cleanup[0];
    assert_eq!(r.name, "logs");
    assert_eq!(r.paths, vec![p("/var/log/aion")]);
    assert_eq!(r.matches, vec![Glob::new("*")]);
    assert_eq!(r.older_than, Duration::from_secs(7 * 86_400));
    assert_eq!(r.when, When::DiskHigh);
    assert!(!r.recursive && !r.remove_empty_dirs && r.protect.is_empty());
    let c = ok(
        "[cleanup.t]\npaths = /tmp, /var/tmp\nmatch = *.tmp core.*\nolder_than = 12h\nwhen = always\n\
                recursive = yes\nremove_empty_dirs = on\nprotect = keep-*\n",
    );
    let r = &c.cleanup[0];
    assert_eq!(r.paths, vec![p("/tmp"), p("/var/tmp")]);
    assert_eq!(r.matches, vec![Glob::new("*.tmp"), Glob::new("core.*")]);
    assert_eq!(r.older_than, Duration::from_secs(12 * 3600));
    assert_eq!(r.when, When::Always);
    assert!(r.recursive && r.remove_empty_dirs);
    assert_eq!(r.protect, vec![Glob::new("keep-*")]);
    // Several rules keep file order.
    let c = ok("[cleanup.b]\npaths = /b\n[cleanup.a]\npaths = /a\n");
    assert_eq!(
        c.cleanup
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>(),
        ["b", "a"]
    );
}

#[test]
fn cleanup_rule_errors() {
    assert_eq!(
        errors("[cleanup.x]\nmatch = *\n"),
        ["/etc/a.ini:1: cleanup.x.paths: a cleanup rule needs paths"]
    );
    assert_eq!(
        bad("cleanup.x", "paths", "/"),
        "/etc/a.ini:2: cleanup.x.paths: refusing to clean / (name the directories to clean)"
    );
    assert_eq!(
        bad("cleanup.x", "paths", "/tmp tmp"),
        "/etc/a.ini:2: cleanup.x.paths: not an absolute path: \"tmp\""
    );
    let with_paths = |k: &str, v: &str| errors(&format!("[cleanup.x]\n{k} = {v}\npaths = /tmp\n"));
    assert_eq!(
        with_paths("when", "sometimes"),
        [
            "/etc/a.ini:2: cleanup.x.when: invalid when \"sometimes\" (expected disk_high, disk_filling or always)"
        ]
    );
    assert_eq!(
        with_paths("match", ""),
        ["/etc/a.ini:2: cleanup.x.match: at least one glob is required (* for any)"]
    );
    assert_eq!(
        with_paths("older_than", "a week"),
        [
            "/etc/a.ini:2: cleanup.x.older_than: invalid duration \"a week\" (expected a whole number with ms, s, m, h or d, e.g. 30s)"
        ]
    );
    assert_eq!(
        with_paths("recursive", "deep"),
        [
            "/etc/a.ini:2: cleanup.x.recursive: invalid boolean \"deep\" (expected yes/no/true/false/on/off/1/0)"
        ]
    );
    assert_eq!(
        with_paths("older", "1d"),
        ["/etc/a.ini:2: cleanup.x.older: unknown key \"older\" (did you mean \"older_than\"?)"]
    );
    assert_eq!(
        errors("[cleanup]\npaths = /tmp\n"),
        ["/etc/a.ini:1: [cleanup]: unknown section (rules need a name: [cleanup.NAME])"]
    );
    assert_eq!(
        errors("[cleanup.my rule]\npaths = /tmp\n"),
        ["/etc/a.ini:1: [cleanup.my rule]: a rule name needs letters, digits, '_', '-' or '.'"]
    );
    assert_eq!(
        errors("[cleanup.a]\npaths = /a\n[cleanup.a]\npaths = /b\n"),
        [
            "/etc/a.ini:3: [cleanup.a]: section repeated (first on line 1)",
            "/etc/a.ini:4: cleanup.a.paths: key repeated (first on line 2)",
        ]
    );
}

#[test]
fn reaper_and_reap_rules() {
    let c = ok("[reaper]\nenabled = yes\ngrace = 30s\nprotect = sshd, systemd*\nscope = all\n");
    assert!(c.reaper.enabled);
    assert_eq!(c.reaper.grace, Duration::from_secs(30));
    assert_eq!(
        c.reaper.protect,
        vec![Glob::new("sshd"), Glob::new("systemd*")]
    );
    assert_eq!(c.reaper.scope, Scope::All);
    let c = ok("[reap.hogs]\nmatch = stress*\n");
    let r = &c.reap[0];
    assert_eq!((r.name.as_str(), r.action), ("hogs", Action::Term));
    assert!(r.users.is_empty() && r.states.is_empty() && r.cmdline.is_none());
    assert_eq!(
        (r.older_than, r.in_state_for, r.cpu_over),
        (None, None, None)
    );
    let c = ok(
        "[reap.x]\ncmdline = \"/usr/bin/python3 *train*\"\nuser = alice, root\nstate = stopped zombie\n\
                older_than = 1h\nin_state_for = 5m\ncpu_over = 10m\naction = log\n",
    );
    let r = &c.reap[0];
    assert!(r.matches.is_empty());
    assert_eq!(r.cmdline, Some(Glob::new("/usr/bin/python3 *train*")));
    assert_eq!(r.users, ["alice", "root"]);
    assert_eq!(r.states, vec![ProcState::Stopped, ProcState::Zombie]);
    assert_eq!(r.older_than, Some(Duration::from_secs(3600)));
    assert_eq!(r.in_state_for, Some(Duration::from_secs(300)));
    assert_eq!(r.cpu_over, Some(Duration::from_secs(600)));
    assert_eq!(r.action, Action::Log);
}

#[test]
fn reaper_errors() {
    assert_eq!(
        bad("reaper", "scope", "host"),
        "/etc/a.ini:2: reaper.scope: invalid scope \"host\" (expected root or all)"
    );
    assert_eq!(
        bad("reaper", "enabled", "maybe"),
        "/etc/a.ini:2: reaper.enabled: invalid boolean \"maybe\" (expected yes/no/true/false/on/off/1/0)"
    );
    assert_eq!(
        errors("[reap.x]\naction = kill\n"),
        [
            "/etc/a.ini:1: [reap.x]: a reap rule needs match or cmdline (match = * to name every process)"
        ]
    );
    let with_match = |k: &str, v: &str| errors(&format!("[reap.x]\n{k} = {v}\nmatch = *\n"));
    assert_eq!(
        with_match("state", "running dead"),
        [
            "/etc/a.ini:2: reap.x.state: invalid state \"dead\" (expected running, sleeping, disk-sleep, stopped or zombie)"
        ]
    );
    assert_eq!(
        with_match("action", "stop"),
        ["/etc/a.ini:2: reap.x.action: invalid action \"stop\" (expected term, kill or log)"]
    );
    assert_eq!(
        with_match("cpu_over", "lots"),
        [
            "/etc/a.ini:2: reap.x.cpu_over: invalid duration \"lots\" (expected a whole number with ms, s, m, h or d, e.g. 30s)"
        ]
    );
    assert_eq!(
        errors("[reapr]\nenabled = yes\n"),
        ["/etc/a.ini:1: [reapr]: unknown section (did you mean [reaper]?)"]
    );
}

// ---------------------------------------------------------------- tasks, audit, alerts

#[test]
fn task_defaults_and_every_key() {
    let c = ok("[task.mandb]\ncommand = /usr/bin/mandb -q\n");
    let t = &c.tasks[0];
    assert_eq!(
        (t.name.as_str(), t.command.clone()),
        (
            "mandb",
            vec!["/usr/bin/mandb".to_string(), "-q".to_string()]
        )
    );
    assert_eq!(t.every, Duration::from_secs(86_400));
    assert_eq!((t.when_cpu_below, t.idle_cycles, t.nice), (20.0, 3, 10));
    assert_eq!(t.timeout, Duration::from_secs(1800));
    assert_eq!(t.user, None);
    assert_eq!((t.cwd.clone(), t.umask), (p("/"), 0o022));
    let c = ok(
        "[task.x]\ncommand = /bin/true\nevery = 1h\nwhen_cpu_below = 50%\nidle_cycles = 0\ntimeout = 5s\nnice = -5\nuser = man\ncwd = /var/tmp\numask = 077\n",
    );
    let t = &c.tasks[0];
    assert_eq!(
        (t.every, t.when_cpu_below, t.idle_cycles, t.timeout, t.nice),
        (
            Duration::from_secs(3600),
            50.0,
            0,
            Duration::from_secs(5),
            -5
        )
    );
    assert_eq!(t.user.as_deref(), Some("man"));
    assert_eq!((t.cwd.clone(), t.umask), (p("/var/tmp"), 0o077));
    for (v, mask, printed) in [
        ("0", 0, "000"),
        ("7", 0o7, "007"),
        ("22", 0o22, "022"),
        ("027", 0o27, "027"),
        ("0027", 0o27, "027"),
        ("777", 0o777, "777"),
        ("0777", 0o777, "777"),
    ] {
        let c = ok(&format!("[task.x]\ncommand = /bin/true\numask = {v}\n"));
        assert_eq!(c.tasks[0].umask, mask, "{v}");
        assert!(
            c.to_ini().contains(&format!("\numask = {printed}\n")),
            "{v}"
        );
    }
}

#[test]
fn task_errors() {
    assert_eq!(
        errors("[task.x]\nevery = 1h\n"),
        ["/etc/a.ini:1: task.x.command: a task needs a command"]
    );
    let with_cmd =
        |k: &str, v: &str| errors(&format!("[task.x]\n{k} = {v}\ncommand = /bin/true\n"));
    assert_eq!(
        errors("[task.x]\ncommand = mandb -q\n"),
        ["/etc/a.ini:2: task.x.command: the program must be an absolute path: \"mandb\""]
    );
    assert_eq!(
        with_cmd("nice", "20"),
        ["/etc/a.ini:2: task.x.nice: invalid nice \"20\" (expected -20 to 19)"]
    );
    assert_eq!(
        with_cmd("timeout", "0"),
        ["/etc/a.ini:2: task.x.timeout: invalid duration \"0\" (must be more than 0)"]
    );
    assert_eq!(
        with_cmd("when_cpu_below", "120"),
        [
            "/etc/a.ini:2: task.x.when_cpu_below: invalid percentage \"120\" (expected 0-100, optionally with %)"
        ]
    );
    assert_eq!(
        with_cmd("cwd", "var/tmp"),
        ["/etc/a.ini:2: task.x.cwd: not an absolute path: \"var/tmp\""]
    );
    assert_eq!(
        with_cmd("cwd", ""),
        ["/etc/a.ini:2: task.x.cwd: a path is required"]
    );
    for v in ["", "8", "1000", "0x1f", "-22", "u=rwx", "00777", "2 2"] {
        assert_eq!(
            with_cmd("umask", v),
            [format!(
                "/etc/a.ini:2: task.x.umask: invalid umask \"{v}\" (expected octal digits up to 777, e.g. 027)"
            )],
            "{v}"
        );
    }
    assert_eq!(
        with_cmd("idle", "3"),
        ["/etc/a.ini:2: task.x.idle: unknown key \"idle\" (did you mean \"idle_cycles\"?)"]
    );
}

#[test]
fn audit_and_alert_keys() {
    let c = ok(
        "[audit]\nbash_history = no\nusers = alice bob\nlog_file =\nsyslog_facility = local5\nmax_bytes = 64K\n",
    );
    let a = &c.audit;
    assert!(!a.bash_history);
    assert_eq!(a.users, ["alice", "bob"]);
    assert_eq!(a.log_file, None);
    assert_eq!((a.syslog_facility.name, a.max_bytes), ("local5", 64 * 1024));
    assert!(ok("[audit]\nusers = all\n").audit.users.is_empty());
    let c = ok(
        "[alert]\nemail = a@x.org, b@y.org\nfrom = me@z.org\ncommand = /bin/page -u\nmin_level = warning\ncooldown = 15m\ntimeout = 10s\n",
    );
    let al = &c.alert;
    assert_eq!(al.email, ["a@x.org", "b@y.org"]);
    assert_eq!(al.from.as_deref(), Some("me@z.org"));
    assert_eq!(al.command, ["/bin/page", "-u"]);
    assert_eq!(al.min_level, config::AlertLevel::Warning);
    assert_eq!(
        (al.cooldown, al.timeout),
        (Duration::from_secs(900), Duration::from_secs(10))
    );
    assert_eq!(
        Config::default().alert.sendmail,
        ["/usr/sbin/sendmail", "-t", "-i"]
    );
}

#[test]
fn audit_and_alert_errors() {
    assert_eq!(
        bad("audit", "users", ""),
        "/etc/a.ini:2: audit.users: a list of users, or all, is required"
    );
    assert_eq!(
        bad("audit", "max_bytes", "0"),
        "/etc/a.ini:2: audit.max_bytes: invalid size \"0\" (must be more than 0)"
    );
    assert_eq!(
        bad("audit", "max_bytes", "1X"),
        "/etc/a.ini:2: audit.max_bytes: invalid size \"1X\" (expected a whole number of bytes with K, M, G or T, e.g. 100M)"
    );
    // No address can smuggle a header: CR, LF, commas, angle brackets are refused.
    assert_eq!(
        bad("alert", "email", "ops@x.org,evil"),
        "/etc/a.ini:2: alert.email: invalid address \"evil\" (expected user@host)"
    );
    assert_eq!(
        bad("alert", "from", "<a@b>"),
        "/etc/a.ini:2: alert.from: invalid address \"<a@b>\" (expected user@host)"
    );
    assert_eq!(
        bad("alert", "min_level", "info"),
        "/etc/a.ini:2: alert.min_level: invalid level \"info\" (expected warning or critical)"
    );
    assert_eq!(
        bad("alert", "sendmail", "sendmail -t"),
        "/etc/a.ini:2: alert.sendmail: the program must be an absolute path: \"sendmail\""
    );
}

// ---------------------------------------------------------------- [relief]

#[test]
fn relief_amounts_are_a_percentage_or_a_size() {
    use system_agent::config::MemAmount;
    for (v, want) in [
        ("5%", MemAmount::Percent(5.0)),
        ("5", MemAmount::Percent(5.0)),
        ("2.5%", MemAmount::Percent(2.5)),
        ("0", MemAmount::Percent(0.0)),
        ("512M", MemAmount::Bytes(512 << 20)),
        ("2G", MemAmount::Bytes(2 << 30)),
        ("64k", MemAmount::Bytes(64 << 10)),
    ] {
        let c = val("relief", "mem_available_below", v);
        assert_eq!(c.relief.mem_available_below, want, "{v}");
        let c = val("relief", "swap_free_below", v);
        assert_eq!(c.relief.swap_free_below, Some(want), "{v}");
    }
    assert_eq!(
        val("relief", "swap_free_below", "").relief.swap_free_below,
        None
    );
    rejects(
        "relief",
        "mem_available_below",
        &["", "101%", "-5%", "5 %", "1.5G", "12X", "lots"],
        |v| {
            format!(
                "invalid amount \"{v}\" (expected a percentage such as 5% or a size such as 512M)"
            )
        },
    );
    // A percentage is of the total; a size is itself, in KiB as meminfo counts.
    assert_eq!(MemAmount::Percent(5.0).kib(24_000_000), 1_200_000);
    assert_eq!(MemAmount::Bytes(512 << 20).kib(24_000_000), 512 << 10);
}

#[test]
fn relief_keys_and_their_ranges() {
    use system_agent::config::Pick;
    let c = ok(
        "[relief]\nenabled = yes\npick = rss\nprefer = a*, b\navoid = c\n\
                user = alice\naction = kill\npsi_memory_full_above = 25%\n",
    );
    let r = &c.relief;
    assert!(r.enabled);
    assert_eq!((r.pick, r.action), (Pick::Rss, Action::Kill));
    let globs = |g: &[Glob]| -> Vec<String> { g.iter().map(|g| g.as_str().to_string()).collect() };
    assert_eq!(globs(&r.prefer), ["a*", "b"]);
    assert_eq!(globs(&r.avoid), ["c"]);
    assert_eq!(r.users, ["alice"]);
    assert_eq!(r.psi_memory_full_above, Some(25.0));
    let d = Config::default().relief;
    assert!(!d.enabled);
    assert_eq!((d.pick, d.action), (Pick::OomScore, Action::Term));
    assert_eq!(d.psi_memory_full_above, Some(10.0));
    assert_eq!((d.grace, d.min_interval), (secs(5), secs(10)));
    assert_eq!(d.check_interval, ms(100));
    assert_eq!(
        val("relief", "psi_memory_full_above", "")
            .relief
            .psi_memory_full_above,
        None
    );
    rejects("relief", "pick", &["largest"], |v| {
        format!("invalid pick \"{v}\" (expected oom_score or rss)")
    });
    rejects("relief", "action", &["stop"], |v| {
        format!("invalid action \"{v}\" (expected term, kill or log)")
    });
    assert_eq!(
        val("relief", "check_interval", "10ms")
            .relief
            .check_interval,
        ms(10)
    );
    assert_eq!(
        val("relief", "check_interval", "10s").relief.check_interval,
        secs(10)
    );
    for v in ["5ms", "11s"] {
        assert!(
            bad("relief", "check_interval", v).starts_with("/etc/a.ini:2: relief.check_interval: "),
            "{v}"
        );
    }
}
