//! The INI syntax as the agent reads it: sections and keys (unknown ones named, with
//! a hint when close), repeats, malformed lines, quotes, comments, backslashes,
//! separators, CRLF and indentation; every error at once in line order, with its
//! fields; and `Config::load` of a file, a missing one, a directory, invalid UTF-8.

mod common;

use common::TempDir as Tmp;
use common::config::*;
use std::path::Path;
use system_agent::config::{Config, ConfigError, Facility, LogFormat};
use system_agent::log::Level;

// ---------------------------------------------------------------- structure

#[test]
fn unknown_section_is_named_with_a_hint_when_close() {
    assert_eq!(
        errors("[threshold]\ncpu_warn = 50\n"),
        ["/etc/a.ini:1: [threshold]: unknown section (did you mean [thresholds]?)"]
    );
    assert_eq!(
        errors("; x\n[Agent]\ninterval = 5s\n"),
        ["/etc/a.ini:2: [Agent]: unknown section (did you mean [agent]?)"]
    );
    assert_eq!(
        errors("[disks]\n"),
        ["/etc/a.ini:1: [disks]: unknown section (did you mean [disk]?)"]
    );
}

#[test]
fn unknown_section_without_a_close_name_has_no_hint() {
    assert_eq!(
        errors("[agent]\ntop = 3\n\n[frobnicator]\nwhatever = 1\nother = 2\n"),
        ["/etc/a.ini:4: [frobnicator]: unknown section"]
    );
}

#[test]
fn unknown_key_is_named_with_a_hint_when_close() {
    assert_eq!(
        errors("[agent]\nintervall = 5s\n"),
        ["/etc/a.ini:2: agent.intervall: unknown key \"intervall\" (did you mean \"interval\"?)"]
    );
    assert_eq!(
        bad("agent", "Interval", "5s"),
        "/etc/a.ini:2: agent.Interval: unknown key \"Interval\" (did you mean \"interval\"?)"
    );
    assert_eq!(
        bad("agent", "dry run", "yes"),
        "/etc/a.ini:2: agent.dry run: unknown key \"dry run\" (did you mean \"dry_run\"?)"
    );
    assert_eq!(
        bad("thresholds", "cpu_warm", "50"),
        "/etc/a.ini:2: thresholds.cpu_warm: unknown key \"cpu_warm\" (did you mean \"cpu_warn\"?)"
    );
    assert_eq!(
        bad("paths", "prc", "/proc"),
        "/etc/a.ini:2: paths.prc: unknown key \"prc\" (did you mean \"proc\"?)"
    );
    assert_eq!(
        bad("disk", "mount", "/"),
        "/etc/a.ini:2: disk.mount: unknown key \"mount\" (did you mean \"mounts\"?)"
    );
}

#[test]
fn unknown_key_without_a_close_name_has_no_hint() {
    assert_eq!(
        bad("agent", "frobnicate", "1"),
        "/etc/a.ini:2: agent.frobnicate: unknown key \"frobnicate\""
    );
    assert_eq!(
        bad("thresholds", "colour", "red"),
        "/etc/a.ini:2: thresholds.colour: unknown key \"colour\""
    );
}

#[test]
fn a_key_in_the_wrong_section_says_where_it_belongs() {
    assert_eq!(
        errors("[paths]\ninterval = 10s\n"),
        ["/etc/a.ini:2: paths.interval: unknown key \"interval\" (it belongs in [agent])"]
    );
}

#[test]
fn key_outside_any_section_is_an_error() {
    assert_eq!(
        errors("; header\ninterval = 5s\n[agent]\ntop = 3\n"),
        ["/etc/a.ini:2: interval: key outside any [section]"]
    );
}

#[test]
fn repeated_section_names_the_first_line() {
    assert_eq!(
        errors("[agent]\ntop = 1\n[paths]\nproc = /p\n[agent]\ndry_run = yes\n"),
        ["/etc/a.ini:5: [agent]: section repeated (first on line 1)"]
    );
}

#[test]
fn repeated_key_names_the_first_line() {
    assert_eq!(
        errors("[agent]\ntop = 1\n; again\ntop = 1\n"),
        ["/etc/a.ini:4: agent.top: key repeated (first on line 2)"]
    );
    assert_eq!(
        errors("[disk]\nmounts = /\n[disk]\nmounts = /var\n"),
        [
            "/etc/a.ini:3: [disk]: section repeated (first on line 1)",
            "/etc/a.ini:4: disk.mounts: key repeated (first on line 2)",
        ]
    );
}

#[test]
fn line_without_equals_sign_is_an_error() {
    assert_eq!(
        errors("[agent]\ndry_run\n"),
        ["/etc/a.ini:2: expected \"key = value\" or \"[section]\", found \"dry_run\""]
    );
    assert_eq!(
        errors("[agent]\n  interval 10s  \n"),
        ["/etc/a.ini:2: expected \"key = value\" or \"[section]\", found \"interval 10s\""]
    );
}

#[test]
fn malformed_section_headers_and_missing_keys_are_errors() {
    assert_eq!(
        errors("[agent\ntop = 1\n"),
        [
            "/etc/a.ini:1: section header without a closing ]",
            "/etc/a.ini:2: top: key outside any [section]",
        ]
    );
    assert_eq!(errors("[]\n"), ["/etc/a.ini:1: empty section name"]);
    assert_eq!(
        errors("[agent] top = 1\n"),
        ["/etc/a.ini:1: unexpected text after [agent]: \"top = 1\""]
    );
    assert_eq!(
        errors("[agent]\n= 5\n"),
        ["/etc/a.ini:2: missing key before '='"]
    );
}

#[test]
fn section_header_may_carry_a_comment_and_inner_spaces() {
    let c = ok("[ agent ] ; main\ntop = 1\n[disk] # watched\nmounts = /var\n");
    assert_eq!(c.agent.top, 1);
    assert_eq!(c.disk.mounts, [p("/var")]);
}

#[test]
fn unterminated_quotes_are_errors() {
    assert_eq!(
        errors("[agent]\nlog_file = \"/var/log/x.log\n"),
        ["/etc/a.ini:2: agent.log_file: unterminated \" quote"]
    );
    assert_eq!(
        errors("[agent]\nlog_file = '/var/log/x.log\n"),
        ["/etc/a.ini:2: agent.log_file: unterminated ' quote"]
    );
    assert_eq!(
        errors("[agent]\nlog_file = \"/var/log/x.log\\\"\n"),
        ["/etc/a.ini:2: agent.log_file: unterminated \" quote"]
    );
}

#[test]
fn trailing_backslash_is_an_error() {
    assert_eq!(
        errors("[agent]\nstate_dir = /srv/x\\\ntop = 1\n"),
        [
            "/etc/a.ini:2: agent.state_dir: a line may not end with \\ (continuation lines are not supported)"
        ]
    );
}

#[test]
fn backslashes_are_taken_verbatim() {
    let c = ok(
        "[agent]\nstate_dir = /srv/C:\\x\nlog_file = /var/log/\\*.log\n\
                metrics_file = \"/m\\n\\t.prom\"\n",
    );
    assert_eq!(c.agent.state_dir, p("/srv/C:\\x"));
    assert_eq!(c.agent.log_file, Some(p("/var/log/\\*.log")));
    assert_eq!(c.agent.metrics_file, Some(p("/m\\n\\t.prom")));
    assert_eq!(
        bad("agent", "state_dir", "C:\\x"),
        "/etc/a.ini:2: agent.state_dir: not an absolute path: \"C:\\x\""
    );
    assert_eq!(
        bad("agent", "interval", "\\*"),
        "/etc/a.ini:2: agent.interval: invalid duration \"\\*\" (expected a whole number with ms, s, m, h or d, e.g. 30s)"
    );
}

#[test]
fn inline_comments_after_whitespace_are_stripped() {
    let c = ok("[agent]\nlog_file = /var/log/a.log ; semicolon\n\
                metrics_file = /var/m.prom\t# hash\ntop = 7 ;\n");
    assert_eq!(c.agent.log_file, Some(p("/var/log/a.log")));
    assert_eq!(c.agent.metrics_file, Some(p("/var/m.prom")));
    assert_eq!(c.agent.top, 7);
    assert_eq!(
        errors("[agent]\ninterval = 5s#x\n"),
        [
            "/etc/a.ini:2: agent.interval: invalid duration \"5s#x\" (expected a whole number with ms, s, m, h or d, e.g. 30s)"
        ]
    );
}

#[test]
fn comment_characters_inside_a_word_are_kept() {
    let c = ok(
        "[agent]\nlog_file = /var/log/a#b.log\nstate_dir = /srv/a;b\n\
                metrics_file = /m=1.prom\n",
    );
    assert_eq!(c.agent.log_file, Some(p("/var/log/a#b.log")));
    assert_eq!(c.agent.state_dir, p("/srv/a;b"));
    assert_eq!(c.agent.metrics_file, Some(p("/m=1.prom")));
    assert_eq!(
        bad("agent", "top", "5;x"),
        "/etc/a.ini:2: agent.top: invalid number \"5;x\" (expected a whole number from 0 to 100)"
    );
}

#[test]
fn quoted_values_keep_spaces_and_comment_characters() {
    let c = ok("[agent]\nlog_file = \"/var/log/my agent.log\" ; comment\n\
                state_dir = '/srv/my state'\nmetrics_file = \"/m ; not # a comment\"\n");
    assert_eq!(c.agent.log_file, Some(p("/var/log/my agent.log")));
    assert_eq!(c.agent.state_dir, p("/srv/my state"));
    assert_eq!(c.agent.metrics_file, Some(p("/m ; not # a comment")));
    assert_eq!(
        bad("agent", "log_file", "\" /leading-space\""),
        "/etc/a.ini:2: agent.log_file: not an absolute path: \" /leading-space\""
    );
}

#[test]
fn colon_is_accepted_as_separator() {
    let c = ok("[agent]\ntop: 9\nsyslog_socket : /run/log\n");
    assert_eq!(c.agent.top, 9);
    assert_eq!(c.agent.syslog_socket, p("/run/log"));
}

#[test]
fn crlf_line_endings_parse_and_keep_line_numbers() {
    let c = ok("[agent]\r\ninterval = 5s\r\nlog_file =\r\n\r\n[disk]\r\nmounts = / /var\r\n");
    assert_eq!(c.agent.interval, secs(5));
    assert_eq!(c.agent.log_file, None);
    assert_eq!(c.disk.mounts, [p("/"), p("/var")]);
    assert_eq!(
        errors("; x\r\n[agent]\r\ninterval = 5s\r\ntop = x\r\n"),
        ["/etc/a.ini:4: agent.top: invalid number \"x\" (expected a whole number from 0 to 100)"]
    );
}

#[test]
fn indented_keys_sections_and_comments_are_fine() {
    let c = ok("  [agent]\n\tinterval = 5s\n   ; a comment\n\t# another = 1\n    top = 7\n");
    assert_eq!(c.agent.interval, secs(5));
    assert_eq!(c.agent.top, 7);
    assert_eq!(
        errors("[agent]\n\n    top = 500\n"),
        ["/etc/a.ini:3: agent.top: invalid number \"500\" (expected a whole number from 0 to 100)"]
    );
}

#[test]
fn every_bad_value_is_reported_at_once_in_line_order() {
    assert_eq!(
        errors(
            "; several mistakes\n\
             [agent]\n\
             interval = 10x\n\
             intervall = 5s\n\
             top = 101\n\
             log_file = relative.log\n\
             [thresholds]\n\
             cpu_warn = abc\n\
             for_cycles = 0\n\
             [disk]\n\
             mounts = home\n"
        ),
        [
            "/etc/a.ini:3: agent.interval: invalid duration \"10x\" (expected a whole number with ms, s, m, h or d, e.g. 30s)",
            "/etc/a.ini:4: agent.intervall: unknown key \"intervall\" (did you mean \"interval\"?)",
            "/etc/a.ini:5: agent.top: invalid number \"101\" (expected a whole number from 0 to 100)",
            "/etc/a.ini:6: agent.log_file: not an absolute path: \"relative.log\"",
            "/etc/a.ini:8: thresholds.cpu_warn: invalid percentage \"abc\" (expected 0-100, optionally with %)",
            "/etc/a.ini:9: thresholds.for_cycles: invalid number \"0\" (expected a whole number from 1 to 1000)",
            "/etc/a.ini:11: disk.mounts: not an absolute path: \"home\"",
        ]
    );
}

#[test]
fn every_malformed_line_is_reported_at_once_in_line_order() {
    assert_eq!(
        errors("[agent]\nnovalue\ntop = 1\nlog_file = \"/x\n[paths\nproc = /p\\\n"),
        [
            "/etc/a.ini:2: expected \"key = value\" or \"[section]\", found \"novalue\"",
            "/etc/a.ini:4: agent.log_file: unterminated \" quote",
            "/etc/a.ini:5: section header without a closing ]",
            "/etc/a.ini:6: agent.proc: a line may not end with \\ (continuation lines are not supported)",
        ]
    );
}

#[test]
fn errors_from_all_checks_come_in_line_order() {
    assert_eq!(
        errors("[thresholds]\ncpu_warn = 95\n[agent]\ntop = x\ntop = 5\n"),
        [
            "/etc/a.ini:2: thresholds.cpu_warn: 95 is above thresholds.cpu_crit (90)",
            "/etc/a.ini:4: agent.top: invalid number \"x\" (expected a whole number from 0 to 100)",
            "/etc/a.ini:5: agent.top: key repeated (first on line 4)",
        ]
    );
}

#[test]
fn error_fields_and_display() {
    let e = Config::parse(Path::new("/x/b.ini"), "[agent]\ntop = x\n").unwrap_err();
    assert_eq!(
        e,
        [ConfigError {
            file: p("/x/b.ini"),
            line: 2,
            key: "agent.top".to_string(),
            message: "invalid number \"x\" (expected a whole number from 0 to 100)".to_string(),
        }]
    );
    let whole = ConfigError::at(
        Path::new("/x/b.ini"),
        0,
        "",
        "cannot read: Permission denied",
    );
    assert_eq!(
        whole.to_string(),
        "/x/b.ini: cannot read: Permission denied"
    );
    let no_key = ConfigError::at(Path::new("/x/b.ini"), 7, "", "empty section name");
    assert_eq!(no_key.to_string(), "/x/b.ini:7: empty section name");
}

// ---------------------------------------------------------------- Config::load

#[test]
fn load_reads_a_valid_file() {
    let path = fixture("full.ini");
    let c = Config::load(&path, true).unwrap();
    assert_eq!(c.file, Some(path));
    assert_eq!(c.agent.interval, ms(1500));
    assert_eq!(c.agent.log_file, Some(p("/var/log/my agent/agent.log")));
    assert_eq!(c.agent.log_level, Level::Debug);
    assert_eq!(c.agent.log_format, LogFormat::Json);
    assert!(!c.agent.syslog);
    assert_eq!(c.agent.syslog_socket, p("/run/systemd/journal/dev-log"));
    assert_eq!(
        c.agent.syslog_facility,
        Facility {
            name: "local3",
            code: 19 << 3
        }
    );
    assert_eq!(c.agent.state_dir, p("/srv/state#1"));
    assert_eq!(
        c.agent.metrics_file,
        Some(p("/var/lib/node_exporter/system_agent.prom"))
    );
    assert!(c.agent.dry_run);
    assert_eq!(c.agent.top, 12);
    assert_eq!(c.paths.proc, p("/host/proc"));
    assert_eq!(c.paths.passwd, p("/host/etc/passwd"));
    assert_eq!(c.paths.group, p("/host/etc/group"));
    let t = &c.thresholds;
    assert_eq!(t.cpu, limits(70.5, 99.9));
    assert_eq!(t.mem, limits(0.0, 100.0));
    assert_eq!(t.swap, limits(50.0, 75.0));
    assert_eq!(t.load, limits(1.5, 4.0));
    assert_eq!(t.disk, limits(90.0, 90.0));
    assert_eq!(t.inode, limits(33.25, 97.5));
    assert_eq!(t.for_cycles, 1000);
    assert_eq!(c.disk.mounts, [p("/"), p("/home"), p("/var"), p("/srv")]);
}

#[test]
fn load_reports_the_line_of_invalid_utf8() {
    let tmp = Tmp::new("utf8");
    let path = tmp.write("a.ini", b"[agent]\ntop = 5\nlog_file = /var/log/\xff.log\n");
    let e = Config::load(&path, true).unwrap_err();
    assert_eq!(
        e.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!("{}:3: not valid UTF-8", path.display())]
    );
    let path = tmp.write("b.ini", b"\xfe[agent]\n");
    assert_eq!(
        Config::load(&path, false).unwrap_err()[0].to_string(),
        format!("{}:1: not valid UTF-8", path.display())
    );
}

#[test]
fn load_of_a_missing_file_that_must_exist_is_an_error() {
    let tmp = Tmp::new("missing");
    let path = tmp.join("nope.ini");
    let e = Config::load(&path, true).unwrap_err();
    assert_eq!(
        e.iter().map(ToString::to_string).collect::<Vec<_>>(),
        [format!(
            "{}: cannot read: No such file or directory",
            path.display()
        )]
    );
    assert_eq!((e[0].line, e[0].key.as_str()), (0, ""));
}

#[test]
fn load_of_a_missing_optional_file_gives_the_defaults() {
    let tmp = Tmp::new("optional");
    let c = Config::load(&tmp.join("nope.ini"), false).unwrap();
    assert_eq!(c, Config::default());
    assert_eq!(c.file, None);
}

#[test]
fn load_of_a_directory_is_an_error_even_when_optional() {
    let tmp = Tmp::new("dir");
    for must_exist in [true, false] {
        assert_eq!(
            Config::load(&tmp.0, must_exist).unwrap_err()[0].to_string(),
            format!("{}: cannot read: Is a directory", tmp.0.display())
        );
    }
}

#[test]
fn load_reports_errors_with_the_real_path() {
    let tmp = Tmp::new("errpath");
    let path = tmp.write("bad.ini", "[agent]\n\ninterval = 10x\n");
    assert_eq!(
        Config::load(&path, false).unwrap_err()[0].to_string(),
        format!(
            "{}:3: agent.interval: invalid duration \"10x\" (expected a whole number with ms, s, m, h or d, e.g. 30s)",
            path.display()
        )
    );
}
