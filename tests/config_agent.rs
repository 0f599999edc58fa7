//! The `[agent]` and `[paths]` keys: every valid form of each with its exact typed
//! value, and every bad value's exact error on its line: interval (units and
//! range), log, metrics and status files, log level and format, booleans, required
//! paths, syslog facility, top.

mod common;

use common::config::*;
use system_agent::config::{Config, Facility, LogFormat};
use system_agent::log::Level;

// ---------------------------------------------------------------- [agent] interval

#[test]
fn interval_takes_every_unit_and_bare_seconds() {
    for (v, d) in [
        ("500ms", ms(500)),
        ("10ms", ms(10)),
        ("1500ms", ms(1500)),
        ("30s", secs(30)),
        ("5m", secs(300)),
        ("2h", secs(7200)),
        ("24h", secs(86_400)),
        ("1d", secs(86_400)),
        ("1440m", secs(86_400)),
        ("86400", secs(86_400)),
        ("15", secs(15)),
        ("007s", secs(7)),
    ] {
        assert_eq!(val("agent", "interval", v).agent.interval, d, "{v}");
    }
}

#[test]
fn interval_rejects_malformed_durations() {
    assert_eq!(
        bad("agent", "interval", "10x"),
        "/etc/a.ini:2: agent.interval: invalid duration \"10x\" (expected a whole number with ms, s, m, h or d, e.g. 30s)"
    );
    rejects(
        "agent",
        "interval",
        &[
            "",
            "1.5s",
            "-5s",
            "+5s",
            "10 s",
            "s",
            "ms",
            "10S",
            "10MS",
            "5sec",
            "1e3",
            "inf",
            "nan",
            "NaN",
            "5m30s",
            "0x10",
            "99999999999999999999",
            "9999999999999999d",
        ],
        |v| {
            format!(
                "invalid duration \"{v}\" (expected a whole number with ms, s, m, h or d, e.g. 30s)"
            )
        },
    );
}

#[test]
fn interval_outside_10ms_to_24h_is_a_range_error() {
    assert_eq!(
        bad("agent", "interval", "9ms"),
        "/etc/a.ini:2: agent.interval: interval \"9ms\" out of range (expected 10ms to 24h)"
    );
    rejects(
        "agent",
        "interval",
        &[
            "0",
            "0s",
            "0ms",
            "86401",
            "86400001ms",
            "25h",
            "1441m",
            "2d",
            "7d",
        ],
        |v| format!("interval \"{v}\" out of range (expected 10ms to 24h)"),
    );
}

// ---------------------------------------------------------------- [agent] other keys

#[test]
fn log_file_and_metrics_file_take_an_absolute_path_or_empty_for_off() {
    for key in ["log_file", "metrics_file", "status_file"] {
        let get = |c: &Config| match key {
            "log_file" => c.agent.log_file.clone(),
            "status_file" => c.agent.status_file.clone(),
            _ => c.agent.metrics_file.clone(),
        };
        assert_eq!(get(&val("agent", key, "")), None, "{key}");
        assert_eq!(get(&val("agent", key, "\"\"")), None, "{key}");
        assert_eq!(
            get(&val("agent", key, "/var/tmp/x.log")),
            Some(p("/var/tmp/x.log")),
            "{key}"
        );
        assert_eq!(get(&val("agent", key, "/")), Some(p("/")), "{key}");
    }
}

#[test]
fn log_file_and_metrics_file_reject_relative_paths() {
    assert_eq!(
        bad("agent", "log_file", "agent.log"),
        "/etc/a.ini:2: agent.log_file: not an absolute path: \"agent.log\""
    );
    for key in ["log_file", "metrics_file", "status_file"] {
        rejects(
            "agent",
            key,
            &["x.log", "./x.log", "../x", "~/x.log", "var/log/x"],
            |v| format!("not an absolute path: \"{v}\""),
        );
    }
}

#[test]
fn log_level_takes_the_four_levels_in_any_case() {
    for (v, l) in [
        ("debug", Level::Debug),
        ("DEBUG", Level::Debug),
        ("info", Level::Info),
        ("Info", Level::Info),
        ("warn", Level::Warn),
        ("WARN", Level::Warn),
        ("warning", Level::Warn),
        ("error", Level::Error),
        ("eRRoR", Level::Error),
    ] {
        assert_eq!(val("agent", "log_level", v).agent.log_level, l, "{v}");
    }
}

#[test]
fn log_level_rejects_other_words() {
    assert_eq!(
        bad("agent", "log_level", "loud"),
        "/etc/a.ini:2: agent.log_level: invalid log level \"loud\" (expected debug, info, warn or error)"
    );
    rejects(
        "agent",
        "log_level",
        &["", "trace", "err", "critical", "3"],
        |v| format!("invalid log level \"{v}\" (expected debug, info, warn or error)"),
    );
}

#[test]
fn log_format_takes_logfmt_or_json() {
    assert_eq!(Config::default().agent.log_format, LogFormat::Logfmt);
    for (v, f) in [("logfmt", LogFormat::Logfmt), ("json", LogFormat::Json)] {
        assert_eq!(val("agent", "log_format", v).agent.log_format, f, "{v}");
    }
    rejects(
        "agent",
        "log_format",
        &["", "JSON", "jsonl", "text", "syslog"],
        |v| format!("invalid log format \"{v}\" (expected logfmt or json)"),
    );
}

#[test]
fn booleans_take_yes_no_true_false_on_off_1_0_in_any_case() {
    let cases = [
        ("yes", true),
        ("YES", true),
        ("Yes", true),
        ("true", true),
        ("TRUE", true),
        ("True", true),
        ("on", true),
        ("ON", true),
        ("1", true),
        ("no", false),
        ("NO", false),
        ("No", false),
        ("false", false),
        ("FALSE", false),
        ("off", false),
        ("Off", false),
        ("0", false),
    ];
    for (v, b) in cases {
        assert_eq!(val("agent", "syslog", v).agent.syslog, b, "syslog = {v}");
        assert_eq!(val("agent", "dry_run", v).agent.dry_run, b, "dry_run = {v}");
    }
}

#[test]
fn booleans_reject_other_words() {
    assert_eq!(
        bad("agent", "dry_run", "maybe"),
        "/etc/a.ini:2: agent.dry_run: invalid boolean \"maybe\" (expected yes/no/true/false/on/off/1/0)"
    );
    for key in ["syslog", "dry_run"] {
        rejects(
            "agent",
            key,
            &["", "y", "n", "2", "-1", "enabled", "yes please", "01"],
            |v| format!("invalid boolean \"{v}\" (expected yes/no/true/false/on/off/1/0)"),
        );
    }
}

#[test]
fn required_paths_take_absolute_paths() {
    for (section, key) in [
        ("agent", "syslog_socket"),
        ("agent", "state_dir"),
        ("paths", "proc"),
        ("paths", "passwd"),
        ("paths", "group"),
    ] {
        let c = val(section, key, "/chroot/some dir/x");
        let got = match key {
            "syslog_socket" => c.agent.syslog_socket,
            "state_dir" => c.agent.state_dir,
            "proc" => c.paths.proc,
            "passwd" => c.paths.passwd,
            _ => c.paths.group,
        };
        assert_eq!(got, p("/chroot/some dir/x"), "{key}");
    }
}

#[test]
fn required_paths_reject_empty_and_relative_values() {
    assert_eq!(
        bad("agent", "state_dir", ""),
        "/etc/a.ini:2: agent.state_dir: a path is required"
    );
    assert_eq!(
        bad("paths", "proc", "proc"),
        "/etc/a.ini:2: paths.proc: not an absolute path: \"proc\""
    );
    for (section, key) in [
        ("agent", "syslog_socket"),
        ("agent", "state_dir"),
        ("paths", "proc"),
        ("paths", "passwd"),
        ("paths", "group"),
    ] {
        rejects(section, key, &["", "\"\""], |_| {
            "a path is required".to_string()
        });
        rejects(section, key, &["dev/log", "./x", "~/x", "C:\\x"], |v| {
            format!("not an absolute path: \"{v}\"")
        });
    }
}

#[test]
fn syslog_facility_takes_names_with_or_without_log_prefix_in_any_case() {
    for (v, name, code) in [
        ("daemon", "daemon", 3 << 3),
        ("kern", "kern", 0),
        ("user", "user", 1 << 3),
        ("auth", "auth", 4 << 3),
        ("authpriv", "authpriv", 10 << 3),
        ("AuthPriv", "authpriv", 10 << 3),
        ("cron", "cron", 9 << 3),
        ("local0", "local0", 16 << 3),
        ("LOG_LOCAL0", "local0", 16 << 3),
        ("log_daemon", "daemon", 3 << 3),
        ("local7", "local7", 23 << 3),
    ] {
        assert_eq!(
            val("agent", "syslog_facility", v).agent.syslog_facility,
            Facility { name, code },
            "{v}"
        );
    }
}

#[test]
fn syslog_facility_rejects_unknown_names() {
    assert_eq!(
        bad("agent", "syslog_facility", "local8"),
        "/etc/a.ini:2: agent.syslog_facility: invalid syslog facility \"local8\" (expected e.g. daemon, authpriv, local0)"
    );
    rejects(
        "agent",
        "syslog_facility",
        &["", "daemons", "LOG_", "3", "local 0"],
        |v| format!("invalid syslog facility \"{v}\" (expected e.g. daemon, authpriv, local0)"),
    );
}

#[test]
fn top_takes_a_whole_number_from_0_to_100() {
    for (v, n) in [("0", 0), ("1", 1), ("5", 5), ("100", 100), ("007", 7)] {
        assert_eq!(val("agent", "top", v).agent.top, n, "{v}");
    }
}

#[test]
fn top_rejects_out_of_range_and_non_integers() {
    assert_eq!(
        bad("agent", "top", "101"),
        "/etc/a.ini:2: agent.top: invalid number \"101\" (expected a whole number from 0 to 100)"
    );
    rejects(
        "agent",
        "top",
        &[
            "",
            "-1",
            "+5",
            "5.0",
            "1e3",
            "inf",
            "nan",
            "five",
            "5%",
            "0x10",
            "99999999999999999999",
        ],
        |v| format!("invalid number \"{v}\" (expected a whole number from 0 to 100)"),
    );
}
