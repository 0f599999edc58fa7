//! The limits: `[thresholds]` percentages, load and `for_cycles`; warn above crit
//! and which line is blamed; `[disk]` mounts and the perfdata labels they would
//! share; time left (lower is worse), the forecast window, truncate_deleted and
//! mem_scope.

mod common;

use common::config::*;
use std::path::PathBuf;
use system_agent::config::{self, Config, Limits};

fn pair(c: &Config, name: &str) -> Limits {
    let t = &c.thresholds;
    match name {
        "cpu" => t.cpu,
        "mem" => t.mem,
        "swap" => t.swap,
        "load" => t.load,
        "disk" => t.disk,
        "inode" => t.inode,
        _ => panic!("no pair {name}"),
    }
}

// ---------------------------------------------------------------- [thresholds]

const PERCENT_PAIRS: [&str; 5] = ["cpu", "mem", "swap", "disk", "inode"];

#[test]
fn percentages_take_0_to_100_with_or_without_percent_sign_and_decimals() {
    for name in PERCENT_PAIRS {
        for (v, n) in [
            ("0", 0.0),
            ("0%", 0.0),
            ("100", 100.0),
            ("100%", 100.0),
            ("100.0", 100.0),
            ("42", 42.0),
            ("42%", 42.0),
            ("42.5", 42.5),
            ("42.5%", 42.5),
            ("99.99", 99.99),
            (".5", 0.5),
            ("7.", 7.0),
            ("007", 7.0),
        ] {
            let c = ok(&format!(
                "[thresholds]\n{name}_warn = {v}\n{name}_crit = {v}\n"
            ));
            assert_eq!(pair(&c, name), limits(n, n), "{name} = {v}");
        }
    }
}

#[test]
fn percentages_reject_out_of_range_signs_and_non_plain_numbers() {
    assert_eq!(
        bad("thresholds", "cpu_warn", "101"),
        "/etc/a.ini:2: thresholds.cpu_warn: invalid percentage \"101\" (expected 0-100, optionally with %)"
    );
    for name in PERCENT_PAIRS {
        for level in ["warn", "crit"] {
            let key = format!("{name}_{level}");
            rejects(
                "thresholds",
                &key,
                &[
                    "101", "100.1", "101%", "-1", "-0", "+5", "inf", "nan", "NaN", "infinity",
                    "1e3", "1e1", "%", "50%%", "50 %", "%50", "fifty", "1,5", "1.2.3", ".", "0x10",
                ],
                |v| format!("invalid percentage \"{v}\" (expected 0-100, optionally with %)"),
            );
        }
    }
}

#[test]
fn required_percentages_reject_an_empty_value() {
    for key in [
        "cpu_warn",
        "cpu_crit",
        "mem_warn",
        "mem_crit",
        "disk_warn",
        "disk_crit",
        "inode_warn",
        "inode_crit",
    ] {
        rejects("thresholds", key, &[""], |v| {
            format!("invalid percentage \"{v}\" (expected 0-100, optionally with %)")
        });
    }
}

#[test]
fn swap_and_load_limits_are_off_when_empty() {
    for name in ["swap", "load"] {
        let c = ok(&format!(
            "[thresholds]\n{name}_warn =\n{name}_crit = \"\"\n"
        ));
        assert_eq!(pair(&c, name), Limits::default(), "{name}");
    }
    let c = ok("[thresholds]\nswap_warn = 60\nswap_crit =\nload_warn =\nload_crit = 3\n");
    assert_eq!(c.thresholds.swap.warn, Some(60.0));
    assert_eq!(c.thresholds.swap.crit, None);
    assert_eq!(c.thresholds.load.warn, None);
    assert_eq!(c.thresholds.load.crit, Some(3.0));
}

#[test]
fn load_takes_a_non_negative_number_per_cpu() {
    for (v, n) in [
        ("0", 0.0),
        ("1", 1.0),
        ("1.5", 1.5),
        ("0.75", 0.75),
        ("250", 250.0),
        ("10000", 10_000.0),
    ] {
        let c = ok(&format!("[thresholds]\nload_warn = {v}\nload_crit = {v}\n"));
        assert_eq!(c.thresholds.load, limits(n, n), "{v}");
    }
}

#[test]
fn load_rejects_negative_huge_and_non_plain_numbers() {
    assert_eq!(
        bad("thresholds", "load_crit", "-1"),
        "/etc/a.ini:2: thresholds.load_crit: invalid load \"-1\" (expected a number of runnable tasks per CPU, e.g. 1.5)"
    );
    for key in ["load_warn", "load_crit"] {
        rejects(
            "thresholds",
            key,
            &[
                "-1", "-0.5", "+1", "inf", "nan", "1e3", "10000.5", "2%", "abc", "1,5", ".",
            ],
            |v| {
                format!(
                    "invalid load \"{v}\" (expected a number of runnable tasks per CPU, e.g. 1.5)"
                )
            },
        );
    }
}

#[test]
fn for_cycles_takes_a_whole_number_from_1_to_1000() {
    for (v, n) in [("1", 1), ("3", 3), ("1000", 1000)] {
        assert_eq!(
            val("thresholds", "for_cycles", v).thresholds.for_cycles,
            n,
            "{v}"
        );
    }
}

#[test]
fn for_cycles_rejects_zero_out_of_range_and_non_integers() {
    assert_eq!(
        bad("thresholds", "for_cycles", "0"),
        "/etc/a.ini:2: thresholds.for_cycles: invalid number \"0\" (expected a whole number from 1 to 1000)"
    );
    rejects(
        "thresholds",
        "for_cycles",
        &["", "1001", "-1", "+3", "2.5", "1e3", "inf", "nan", "three"],
        |v| format!("invalid number \"{v}\" (expected a whole number from 1 to 1000)"),
    );
}

// ---------------------------------------------------------------- warn above crit

#[test]
fn warn_equal_to_crit_is_accepted() {
    for name in ["cpu", "mem", "swap", "load", "disk", "inode"] {
        let c = ok(&format!(
            "[thresholds]\n{name}_warn = 50\n{name}_crit = 50\n"
        ));
        assert_eq!(pair(&c, name), limits(50.0, 50.0));
    }
}

#[test]
fn warn_above_crit_is_reported_on_the_crit_line() {
    assert_eq!(
        errors("[thresholds]\ncpu_warn = 95\ncpu_crit = 90.5\n"),
        ["/etc/a.ini:3: thresholds.cpu_crit: 90.5 is below thresholds.cpu_warn (95)"]
    );
    for name in ["cpu", "mem", "swap", "load", "disk", "inode"] {
        assert_eq!(
            errors(&format!(
                "[thresholds]\n{name}_warn = 60\n{name}_crit = 50\n"
            )),
            [format!(
                "/etc/a.ini:3: thresholds.{name}_crit: 50 is below thresholds.{name}_warn (60)"
            )],
        );
        // Order in the file does not matter: still the crit line.
        assert_eq!(
            errors(&format!(
                "[thresholds]\n{name}_crit = 2.5\n\n{name}_warn = 3\n"
            )),
            [format!(
                "/etc/a.ini:2: thresholds.{name}_crit: 2.5 is below thresholds.{name}_warn (3)"
            )],
        );
    }
}

#[test]
fn warn_above_default_crit_is_reported_on_the_warn_line() {
    for (name, warn, crit) in [
        ("cpu", "95", "90"),
        ("mem", "96", "95"),
        ("disk", "95.5", "95"),
        ("inode", "100", "97"),
    ] {
        assert_eq!(
            errors(&format!(
                "[thresholds]\nfor_cycles = 2\n{name}_warn = {warn}\n"
            )),
            [format!(
                "/etc/a.ini:3: thresholds.{name}_warn: {warn} is above thresholds.{name}_crit ({crit})"
            )],
        );
    }
}

#[test]
fn crit_below_default_warn_is_reported_on_the_crit_line() {
    assert_eq!(
        errors("[thresholds]\ncpu_crit = 70\n"),
        ["/etc/a.ini:2: thresholds.cpu_crit: 70 is below thresholds.cpu_warn (80)"]
    );
    assert_eq!(
        errors("[thresholds]\ninode_crit = 89.5%\n"),
        ["/etc/a.ini:2: thresholds.inode_crit: 89.5 is below thresholds.inode_warn (90)"]
    );
}

#[test]
fn a_lone_swap_or_load_limit_has_nothing_to_exceed() {
    let c = ok("[thresholds]\nswap_warn = 100\nload_warn = 10000\n");
    assert_eq!(c.thresholds.swap.warn, Some(100.0));
    assert_eq!(c.thresholds.load.warn, Some(10_000.0));
    let c = ok("[thresholds]\nswap_crit = 0\nload_crit = 0\n");
    assert_eq!(c.thresholds.swap.crit, Some(0.0));
    assert_eq!(c.thresholds.load.crit, Some(0.0));
    ok("[thresholds]\nswap_warn = 90\nswap_crit =\n");
}

#[test]
fn invalid_crit_is_reported_once() {
    assert_eq!(
        errors("[thresholds]\ncpu_warn = 95\ncpu_crit = abc\n"),
        [
            "/etc/a.ini:3: thresholds.cpu_crit: invalid percentage \"abc\" (expected 0-100, optionally with %)"
        ]
    );
}

// ---------------------------------------------------------------- [disk]

#[test]
fn mounts_is_a_list_of_absolute_paths_separated_by_spaces_or_commas() {
    for (v, want) in [
        ("/", vec!["/"]),
        ("/ /home /var", vec!["/", "/home", "/var"]),
        ("/,/home,/var", vec!["/", "/home", "/var"]),
        ("/ , /home,,/var\t/srv", vec!["/", "/home", "/var", "/srv"]),
        ("\"/ /data\"", vec!["/", "/data"]),
    ] {
        let want: Vec<PathBuf> = want.into_iter().map(p).collect();
        assert_eq!(val("disk", "mounts", v).disk.mounts, want, "{v:?}");
    }
}

#[test]
fn mounts_rejects_a_relative_item_naming_it() {
    assert_eq!(
        bad("disk", "mounts", "/ home"),
        "/etc/a.ini:2: disk.mounts: not an absolute path: \"home\""
    );
    assert_eq!(
        bad("disk", "mounts", "/,/var,data/x"),
        "/etc/a.ini:2: disk.mounts: not an absolute path: \"data/x\""
    );
}

#[test]
fn mounts_that_would_share_a_perfdata_label_are_refused() {
    let share = |a: &str, b: &str, label: &str| {
        format!(
            "{a} and {b} would share the label {label} (disk_{label} in perfdata and the \
             sample line): watch only one of them"
        )
    };
    for (v, want) in [
        ("/x/a_b /x/a-b", share("/x/a_b", "/x/a-b", "x_a_b")),
        (
            "/ /var/log /var.log",
            share("/var/log", "/var.log", "var_log"),
        ),
        (
            "/srv/d\u{e9} /srv/d\u{e8}",
            share("/srv/d\u{e9}", "/srv/d\u{e8}", "srv_d_"),
        ),
        ("/ /home /", share("/", "/", "root")),
    ] {
        assert_eq!(
            bad("disk", "mounts", v),
            format!("/etc/a.ini:2: disk.mounts: {want}"),
            "{v:?}"
        );
    }
    // Labels that differ only in case are distinct labels.
    assert_eq!(
        val("disk", "mounts", "/A /a").disk.mounts,
        [p("/A"), p("/a")]
    );
}

#[test]
fn empty_mounts_means_no_disk_checks() {
    // Documented in etc/system_agent.ini: a chroot may have no mount worth watching.
    assert!(ok("[disk]\nmounts =\n").disk.mounts.is_empty());
}

// ------------------------------------------------- forecasts and memory limits

#[test]
fn a_time_left_warns_above_its_crit_and_reads_as_a_duration() {
    let c = ok("[thresholds]\ndisk_eta_warn = 2h\ndisk_eta_crit = 90\ninode_eta_warn =\n");
    assert_eq!(c.thresholds.disk_eta.warn, Some(7200.0));
    assert_eq!(c.thresholds.disk_eta.crit, Some(90.0));
    assert_eq!(c.thresholds.inode_eta.warn, None);
    assert_eq!(c.thresholds.inode_eta.crit, Some(3600.0));
    // Lower is worse: a crit above warn is the mistake.
    assert_eq!(
        errors("[thresholds]\ndisk_eta_crit = 7h\n"),
        ["/etc/a.ini:2: thresholds.disk_eta_crit: 7h is above thresholds.disk_eta_warn (6h)"]
    );
    assert_eq!(
        errors("[thresholds]\ninode_eta_warn = 30m\n"),
        ["/etc/a.ini:2: thresholds.inode_eta_warn: 30m is below thresholds.inode_eta_crit (1h)"]
    );
    rejects("thresholds", "disk_eta_warn", &["soon", "80%"], |v| {
        format!(
            "invalid duration \"{v}\" (expected a whole number with ms, s, m, h or d, e.g. 30s)"
        )
    });
}

#[test]
fn forecast_window_truncate_deleted_cgroup_and_mem_scope() {
    let c = ok(
        "[disk]\nforecast_window = 0\ntruncate_deleted = rsyslogd java*\n\
                [thresholds]\nmem_scope = host\n[paths]\ncgroup = /c\n",
    );
    assert!(c.disk.forecast_window.is_zero());
    let names: Vec<&str> = c.disk.truncate_deleted.iter().map(|g| g.as_str()).collect();
    assert_eq!(names, ["rsyslogd", "java*"]);
    assert_eq!(c.thresholds.mem_scope, config::MemScope::Host);
    assert_eq!(c.paths.cgroup, p("/c"));
    assert!(
        val("disk", "truncate_deleted", "no")
            .disk
            .truncate_deleted
            .is_empty()
    );
    assert_eq!(
        bad("disk", "truncate_deleted", "yes"),
        "/etc/a.ini:2: disk.truncate_deleted: invalid value \"yes\" (expected no, or process names)"
    );
    assert_eq!(
        bad("disk", "forecast_window", "8d"),
        "/etc/a.ini:2: disk.forecast_window: forecast_window \"8d\" out of range (expected 0s to 7d)"
    );
    assert_eq!(
        bad("thresholds", "mem_scope", "container"),
        "/etc/a.ini:2: thresholds.mem_scope: invalid memory scope \"container\" (expected auto, \
         host or cgroup)"
    );
    assert_eq!(
        bad("cleanup.x", "when", "disk_full"),
        "/etc/a.ini:2: cleanup.x.when: invalid when \"disk_full\" (expected disk_high, \
         disk_filling or always)"
    );
}
