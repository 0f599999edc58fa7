//! The configuration contract: every key of `config::SECTIONS` with its valid forms
//! and exact typed value, every error with its exact text and line, defaults (those
//! the shipped etc/system_agent.ini documents), the printed effective config
//! (`--check-config`), and the binary's exit codes for valid, invalid and missing files.

mod common;

use common::{TempDir as Tmp, run};
use std::path::{Path, PathBuf};
use std::time::Duration;
use system_agent::config::{
    self, Action, Config, ConfigError, Facility, Limits, LogFormat, ProcState, Scope, When,
};
use system_agent::glob::Glob;
use system_agent::log::Level;

const FILE: &str = "/etc/a.ini";

fn parse(text: &str) -> Result<Config, Vec<String>> {
    Config::parse(Path::new(FILE), text).map_err(|e| e.iter().map(ToString::to_string).collect())
}

fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("{text:?} should parse, got {e:#?}"))
}

fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(c) => panic!("{text:?} should fail, got {c:#?}"),
        Err(e) => e,
    }
}

/// `[section]` on line 1 and `key = value` on line 2.
fn set(section: &str, key: &str, value: &str) -> Result<Config, Vec<String>> {
    parse(&format!("[{section}]\n{key} = {value}\n"))
}

fn val(section: &str, key: &str, value: &str) -> Config {
    set(section, key, value).unwrap_or_else(|e| panic!("{key} = {value:?}: {e:#?}"))
}

/// The one error for `key = value` (on line 2).
fn bad(section: &str, key: &str, value: &str) -> String {
    match set(section, key, value) {
        Ok(c) => panic!("{key} = {value:?} should fail, got {c:#?}"),
        Err(e) => {
            assert_eq!(e.len(), 1, "{key} = {value:?}: {e:#?}");
            e.into_iter().next().unwrap()
        }
    }
}

/// Each of `values` for `section.key` is the one error `message(value)` (on line 2).
fn rejects(section: &str, key: &str, values: &[&str], message: impl Fn(&str) -> String) {
    for v in values {
        assert_eq!(
            bad(section, key, v),
            format!("/etc/a.ini:2: {section}.{key}: {}", message(v)),
            "{section}.{key} = {v:?}"
        );
    }
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn limits(w: f64, c: f64) -> Limits {
    Limits {
        warn: Some(w),
        crit: Some(c),
    }
}

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

/// `c` as if it had been built in (for comparing a parsed config with another).
fn unfiled(c: Config) -> Config {
    Config { file: None, ..c }
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("utf-8 output")
}

/// The shipped etc/system_agent.ini, which documents every key with its default.
fn shipped() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/system_agent.ini");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Keys the shipped file sets, on purpose, to something else than their default:
/// (section, the shipped line, the line of the default).
const SHIPPED_NOT_DEFAULT: &[(&str, &str, &str)] = &[
    // Memory relief first says what it would choose before it is let act.
    ("[relief]", "action = log", "action = term"),
];

/// The shipped file with the lines of `SHIPPED_NOT_DEFAULT` set to the defaults.
fn shipped_defaults() -> String {
    let mut out = String::new();
    let mut section = "";
    for line in shipped().lines() {
        if line.starts_with('[') {
            section = line;
        }
        let line = SHIPPED_NOT_DEFAULT
            .iter()
            .find(|(s, shipped, _)| *s == section && *shipped == line)
            .map_or(line, |(_, _, default)| default);
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn shipped_ini_sets_on_purpose_only_the_keys_it_says() {
    let text = shipped();
    for (section, line, _) in SHIPPED_NOT_DEFAULT {
        let name = section.trim_matches(['[', ']']);
        assert!(
            documented(&text, name).iter().any(|l| l == line),
            "etc/system_agent.ini: {section} should set \"{line}\""
        );
    }
    let c = ok(&text);
    assert!(!c.relief.enabled);
    assert_eq!(c.relief.action, Action::Log);
}

/// The shipped file's settings in its fixed sections (not its example rules),
/// comments dropped: what `to_ini()` prints for the built-in defaults.
fn default_ini() -> String {
    let mut out = String::new();
    let mut keep = false;
    for line in shipped_defaults().lines() {
        if line.starts_with('[') {
            keep = !line.contains('.');
            if keep && !out.is_empty() {
                out.push('\n');
            }
        } else if line.is_empty() || line.starts_with([';', '#']) {
            continue;
        }
        if keep {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// The lines that document section `name` in the shipped file: those under
/// `[agent]`, or for `cleanup.NAME` those from where `[cleanup.NAME]` is first
/// named to the next section or `; ---` rule.
fn documented(text: &str, name: &str) -> Vec<String> {
    let header = format!("[{name}]");
    let start = match name.ends_with(".NAME") {
        true => text.lines().position(|l| l.contains(&header)),
        false => text.lines().position(|l| l == header),
    };
    let start = start.unwrap_or_else(|| panic!("{header} in etc/system_agent.ini"));
    text.lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with('[') && !l.starts_with("; ---"))
        .map(str::to_owned)
        .collect()
}

/// `ini` as `--check-config` prints it: each key after a comment saying where it
/// was set: `; from FILE:LINE` for a key whose line in `file` is found under its
/// section there, `; from OPTION` for one `options` names (`agent.dry_run`), else
/// `; default`.
fn with_origins(ini: &str, file: Option<&Path>, options: &[(&str, &str)]) -> String {
    let key_of = |line: &str| {
        line.split(['=', ':'])
            .next()
            .unwrap_or("")
            .trim()
            .to_string()
    };
    let mut set: Vec<(String, usize)> = Vec::new();
    let mut section = String::new();
    let text = file
        .map(|f| std::fs::read_to_string(f).expect("the file"))
        .unwrap_or_default();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[') {
            section = name.split(']').next().unwrap_or("").to_string();
        } else if !line.is_empty() && !line.starts_with([';', '#']) {
            set.push((format!("{section}.{}", key_of(line)), i + 1));
        }
    }
    let mut out = String::new();
    for line in ini.lines() {
        if let Some(name) = line.strip_prefix('[') {
            section = name.trim_end_matches(']').to_string();
        } else if !line.is_empty() {
            let key = format!("{section}.{}", key_of(line));
            let origin = match options.iter().find(|(k, _)| *k == key) {
                Some((_, option)) => format!("; from {option}"),
                None => match set.iter().rev().find(|(k, _)| *k == key) {
                    Some((_, n)) => format!("; from {}:{n}", file.unwrap().display()),
                    None => "; default".to_string(),
                },
            };
            out.push_str(&origin);
            out.push('\n');
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `to_ini()` of tests/fixtures/config/full.ini.
const FULL_INI: &str = "\
[agent]
interval = 1500ms
log_file = /var/log/my agent/agent.log
log_level = debug
log_format = json
syslog = no
syslog_socket = /run/systemd/journal/dev-log
syslog_facility = local3
state_dir = /srv/state#1
metrics_file = /var/lib/node_exporter/system_agent.prom
status_file = /run/aion/agent.status
dry_run = yes
top = 12

[paths]
proc = /host/proc
passwd = /host/etc/passwd
group = /host/etc/group
cgroup = /host/sys/fs/cgroup

[thresholds]
cpu_warn = 70.5
cpu_crit = 99.9
mem_warn = 0
mem_crit = 100
swap_warn = 50
swap_crit = 75
load_warn = 1.5
load_crit = 4
disk_warn = 90
disk_crit = 90
inode_warn = 33.25
inode_crit = 97.5
disk_eta_warn = 2h
disk_eta_crit = 30m
inode_eta_warn = 1d
inode_eta_crit =
for_cycles = 1000
mem_scope = cgroup

[disk]
mounts = / /home /var /srv
forecast_window = 2h
truncate_deleted = rsyslogd java*

[reaper]
enabled = yes
grace = 30s
protect = sshd systemd*
scope = all

[relief]
enabled = yes
mem_available_below = 512M
swap_free_below = 2.5%
psi_memory_full_above =
pick = rss
prefer = stress* make
avoid = postgres
user = alice bob
action = kill
grace = 2s
min_interval = 1m
check_interval = 250ms

[audit]
bash_history = no
users = alice bob
log_file = /srv/log/audit.log
syslog_facility = local5
max_bytes = 64K

[alert]
email = ops@example.com oncall@example.com
from = agent@example.com
sendmail = /usr/bin/msmtp -t
command = /usr/local/bin/page --urgent
min_level = warning
cooldown = 15m
timeout = 10s

[task.mandb]
command = /usr/bin/mandb -q
every = 12h
when_cpu_below = 15.5
idle_cycles = 5
timeout = 10m
nice = 19
user = man
cwd = /var/cache/man
umask = 027

[cleanup.tmp]
paths = /tmp /var/tmp
match = *.tmp core.*
older_than = 2d
when = always
recursive = yes
remove_empty_dirs = yes
protect = keep-*

[reap.hogs]
match = stress* yes
cmdline = *--forever *
user = alice bob
state = running stopped
older_than = 1h
in_state_for = 5m
cpu_over = 10m
action = kill
";

// ---------------------------------------------------------------- defaults

#[test]
fn default_config_is_the_shipped_ini_without_its_rules() {
    let c = Config::default();
    assert_eq!(c.file, None);
    let shipped = ok(&shipped_defaults());
    assert_eq!(
        (
            shipped.cleanup.len(),
            shipped.tasks.len(),
            shipped.reap.len()
        ),
        (2, 1, 0)
    );
    let rules_dropped = Config {
        cleanup: Vec::new(),
        tasks: Vec::new(),
        ..unfiled(shipped)
    };
    assert_eq!(rules_dropped, c);
}

#[test]
fn empty_or_comment_only_file_gives_the_defaults() {
    for text in [
        "",
        "\n\n",
        "; nothing\n# here\n",
        "[agent]\n[paths]\n[thresholds]\n[disk]\n",
    ] {
        let c = ok(text);
        assert_eq!(c.file, Some(p(FILE)));
        assert_eq!(unfiled(c), Config::default(), "{text:?}");
    }
}

#[test]
fn sections_list_every_key_in_file_order() {
    // The keys of the shipped file's fixed sections, in its order.
    let mut expected: Vec<(String, Vec<String>)> = Vec::new();
    for line in default_ini().lines() {
        if let Some(name) = line.strip_prefix('[') {
            expected.push((name.trim_end_matches(']').to_string(), Vec::new()));
        } else if let (Some((key, _)), Some((_, keys))) =
            (line.split_once(" ="), expected.last_mut())
        {
            keys.push(key.to_string());
        }
    }
    let sections: Vec<(String, Vec<String>)> = config::SECTIONS
        .iter()
        .map(|(s, keys)| (s.to_string(), keys.iter().map(|k| k.to_string()).collect()))
        .collect();
    assert_eq!(sections, expected);
    let from_sections: Vec<(&str, &str)> = config::SECTIONS
        .iter()
        .flat_map(|(s, keys)| keys.iter().map(move |k| (*s, *k)))
        .collect();
    let entries = Config::default().entries();
    let from_entries: Vec<(&str, &str)> =
        entries.iter().map(|(s, k, _)| (s.as_str(), *k)).collect();
    assert_eq!(from_entries, from_sections);
}

#[test]
fn defaults_print_as_fixed_ini() {
    assert_eq!(Config::default().to_ini(), default_ini());
}

#[test]
fn printed_defaults_parse_back_to_the_defaults() {
    assert_eq!(unfiled(ok(&default_ini())), Config::default());
}

#[test]
fn shipped_ini_documents_every_key_with_its_default() {
    let text = shipped_defaults();
    for k in config::keys() {
        let want = match k.default {
            "" => format!("{} =", k.key),
            d => format!("{} = {d}", k.key),
        };
        let lines = documented(&text, &k.section);
        // A fixed section sets the key; a rule's key is shown in a comment
        // (`;   key = default   what it means`).
        let found = match k.section.ends_with(".NAME") {
            false => lines.contains(&want),
            true => lines
                .iter()
                .filter_map(|l| l.strip_prefix(";   "))
                .any(|l| l == want || l.starts_with(&format!("{want} "))),
        };
        assert!(
            found,
            "etc/system_agent.ini: [{}] should show \"{want}\"",
            k.section
        );
    }
    // And a rule's comment names no key the rule does not have.
    for (prefix, keys) in config::RULE_SECTIONS {
        for line in documented(&text, &format!("{prefix}.NAME")) {
            let Some((key, _)) = line.strip_prefix(";   ").and_then(|l| l.split_once(" =")) else {
                continue;
            };
            if key.bytes().all(|c| c.is_ascii_lowercase() || c == b'_') {
                assert!(keys.contains(&key), "[{prefix}.NAME] documents {key}");
            }
        }
    }
}

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

#[test]
fn a_key_in_the_wrong_section_says_where_it_belongs() {
    assert_eq!(
        errors("[paths]\ninterval = 10s\n"),
        ["/etc/a.ini:2: paths.interval: unknown key \"interval\" (it belongs in [agent])"]
    );
}

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

// ---------------------------------------------------------------- printing, round trips

#[test]
fn to_ini_prints_every_key_with_its_normalised_value() {
    assert_eq!(
        Config::load(&fixture("full.ini"), true).unwrap().to_ini(),
        FULL_INI
    );
}

#[test]
fn to_ini_uses_the_shortest_exact_duration() {
    for (v, printed) in [
        ("10000ms", "10s"),
        ("120", "2m"),
        ("90s", "90s"),
        ("60m", "1h"),
        ("1440m", "1d"),
        ("10ms", "10ms"),
        ("61001ms", "61001ms"),
    ] {
        let ini = val("agent", "interval", v).to_ini();
        assert!(
            ini.contains(&format!("\ninterval = {printed}\n")),
            "{v} → {ini}"
        );
    }
}

#[test]
fn to_ini_round_trips_non_default_configs() {
    let texts = [
        std::fs::read_to_string(fixture("full.ini")).unwrap(),
        "[agent]\ninterval = 61001ms\nlog_file =\nlog_level = warning\nsyslog_facility = kern\n\
         [thresholds]\nswap_warn = 0.1\nswap_crit = 12.345678901234567\nload_crit = 0.3\n\
         cpu_warn = 33.333333333333336\n"
            .to_string(),
        "[agent]\ninterval = 24h\nmetrics_file = /run/sa/m.prom\ntop = 0\n\
         state_dir = \"/srv/with space/and#hash\"\n\
         [thresholds]\nload_warn = 10000\nfor_cycles = 1\ndisk_warn = 0\ndisk_crit = 0\n\
         [disk]\nmounts = /a,/b\n"
            .to_string(),
        "[paths]\nproc = /C:\\x\npasswd = /etc/\\*\n".to_string(),
    ];
    for text in texts {
        let c = ok(&text);
        let printed = c.to_ini();
        let again = ok(&printed);
        assert_eq!(again, c, "{text}\n→\n{printed}");
        assert_eq!(again.to_ini(), printed);
    }
}

#[test]
fn to_ini_round_trips_values_that_need_quoting() {
    for text in [
        "[agent]\nlog_file = \"/var/log/a ; b.log\"\n",
        "[agent]\nmetrics_file = \"/m #1.prom\"\n",
        "[agent]\nstate_dir = \"/srv/x\\\\\"\n",
    ] {
        let c = ok(text);
        assert_eq!(parse(&c.to_ini()), Ok(c), "{text}");
    }
}

#[test]
fn changed_keys_is_empty_for_equal_configs() {
    assert!(
        Config::default()
            .changed_keys(&Config::default())
            .is_empty()
    );
    let same = ok(
        "[agent]\ninterval = 10000ms\nlog_level = INFO\nsyslog = on\n\
                   syslog_facility = LOG_DAEMON\n[thresholds]\ncpu_warn = 80%\n\
                   [disk]\nmounts = \"/,\"\n",
    );
    assert!(same.changed_keys(&Config::default()).is_empty());
    // The file a config came from is not a setting.
    assert!(ok("").changed_keys(&Config::default()).is_empty());
}

#[test]
fn changed_keys_lists_exactly_the_differing_keys_in_file_order() {
    let c = ok("[disk]\nmounts = / /var\n\
                [thresholds]\nswap_warn = 50\ncpu_crit = 91\n\
                [agent]\nsyslog_facility = local0\ninterval = 5s\nmetrics_file = /m\n\
                status_file =\n[paths]\nproc = /proc\n");
    let want = [
        "agent.interval",
        "agent.syslog_facility",
        "agent.metrics_file",
        "agent.status_file",
        "thresholds.cpu_crit",
        "thresholds.swap_warn",
        "disk.mounts",
    ];
    assert_eq!(c.changed_keys(&Config::default()), want);
    assert_eq!(Config::default().changed_keys(&c), want);
    let full = Config::load(&fixture("full.ini"), true).unwrap();
    // Every key differs; the rules exist only in the file, so each of their keys
    // counts, in both directions.
    let keys = |prefix: &str| {
        config::RULE_SECTIONS
            .iter()
            .find(|(p, _)| *p == prefix)
            .unwrap()
            .1
    };
    let rules = [
        ("task.mandb", keys("task")),
        ("cleanup.tmp", keys("cleanup")),
        ("reap.hogs", keys("reap")),
    ];
    let all: Vec<String> = config::SECTIONS
        .iter()
        .copied()
        .chain(rules)
        .flat_map(|(s, keys)| keys.iter().map(move |k| format!("{s}.{k}")))
        .collect();
    assert_eq!(full.changed_keys(&Config::default()), all);
    assert_eq!(Config::default().changed_keys(&full), all);
}

// ---------------------------------------------------------------- the binary

#[test]
fn check_config_prints_the_effective_config_of_a_valid_file() {
    let path = fixture("full.ini");
    let out = run(&["--check-config", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!(
            "; effective configuration from {}\n{}",
            path.display(),
            with_origins(FULL_INI, Some(&path), &[])
        )
    );
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn check_config_fills_in_defaults() {
    let tmp = Tmp::new("check-empty");
    let path = tmp.write("a.ini", "; nothing set\n");
    let out = run(&["--config", path.to_str().unwrap(), "--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!(
            "; effective configuration from {}\n{}",
            path.display(),
            with_origins(&default_ini(), None, &[])
        )
    );
}

#[test]
fn check_config_shows_command_line_overrides() {
    let tmp = Tmp::new("check-override");
    let path = tmp.write("a.ini", "[agent]\nlog_level = debug\n");
    let arg = format!("--config={}", path.display());
    let out = run(&["--check-config", &arg, "--dry-run", "--log-level", "error"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let want = default_ini()
        .replace("log_level = info", "log_level = error")
        .replace("dry_run = no", "dry_run = yes");
    let options = [
        ("agent.log_level", "--log-level"),
        ("agent.dry_run", "--dry-run"),
    ];
    let want = with_origins(&want, Some(&path), &options);
    assert_eq!(
        text(&out.stdout),
        format!("; effective configuration from {}\n{want}", path.display())
    );
}

#[test]
fn check_config_of_an_invalid_file_prints_each_error_and_exits_78() {
    let tmp = Tmp::new("check-bad");
    let path = tmp.write(
        "bad.ini",
        "[agent]\ninterval = 10x\ntop = 101\n[bogus]\nx = 1\n[thresholds]\ncpu_warn = 95\n",
    );
    let out = run(&["--check-config", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert_eq!(text(&out.stdout), "");
    let f = path.display();
    assert_eq!(
        text(&out.stderr),
        format!(
            "{f}:2: agent.interval: invalid duration \"10x\" (expected a whole number with ms, s, m, h or d, e.g. 30s)\n\
             {f}:3: agent.top: invalid number \"101\" (expected a whole number from 0 to 100)\n\
             {f}:4: [bogus]: unknown section\n\
             {f}:7: thresholds.cpu_warn: 95 is above thresholds.cpu_crit (90)\n"
        )
    );
}

#[test]
fn check_config_of_a_missing_file_exits_78() {
    let tmp = Tmp::new("check-missing");
    let path = tmp.join("nope.ini");
    let out = run(&["--check-config", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}: cannot read: No such file or directory\n",
            path.display()
        )
    );
}

#[test]
fn check_config_of_a_not_utf8_file_exits_78() {
    let tmp = Tmp::new("check-utf8");
    let path = tmp.write("a.ini", b"[agent]\n\xc3\x28 = 1\n");
    let out = run(&["--check-config", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert_eq!(
        text(&out.stderr),
        format!("{}:2: not valid UTF-8\n", path.display())
    );
}

#[test]
fn check_config_without_c_and_no_default_file_uses_built_in_defaults() {
    if Path::new(config::DEFAULT_PATH).exists() {
        eprintln!("skipped: {} exists on this host", config::DEFAULT_PATH);
        return;
    }
    let out = run(&["--check-config"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!(
            "; effective configuration from built-in defaults (/etc/aion/system_agent.ini not found)\n{}",
            with_origins(&default_ini(), None, &[])
        )
    );
}

#[test]
fn once_with_an_invalid_config_is_unknown() {
    let tmp = Tmp::new("once-bad");
    let path = tmp.write(
        "bad.ini",
        "[agent]\ntop = 1\nintervall = 5s\ndry_run = maybe\n",
    );
    let out = run(&["--once", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let f = path.display();
    assert_eq!(
        text(&out.stdout),
        format!(
            "SYSTEM-AGENT UNKNOWN - invalid configuration: {f}:3: agent.intervall: unknown key \"intervall\" (did you mean \"interval\"?)\n"
        )
    );
    assert_eq!(
        text(&out.stderr),
        format!(
            "{f}:3: agent.intervall: unknown key \"intervall\" (did you mean \"interval\"?)\n\
             {f}:4: agent.dry_run: invalid boolean \"maybe\" (expected yes/no/true/false/on/off/1/0)\n"
        )
    );
}

#[test]
fn once_with_a_missing_config_is_unknown() {
    let tmp = Tmp::new("once-missing");
    let path = tmp.join("nope.ini");
    let out = run(&["-c", path.to_str().unwrap(), "--once"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        text(&out.stdout),
        format!(
            "SYSTEM-AGENT UNKNOWN - invalid configuration: {}: cannot read: No such file or directory\n",
            path.display()
        )
    );
}

#[test]
fn service_with_an_invalid_config_exits_78() {
    let tmp = Tmp::new("service-bad");
    let path = tmp.write("bad.ini", "[agent]\ninterval = 0\n");
    let out = run(&["-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(78), "{out:?}");
    assert_eq!(text(&out.stdout), "");
    assert_eq!(
        text(&out.stderr),
        format!(
            "{}:2: agent.interval: interval \"0\" out of range (expected 10ms to 24h)\n",
            path.display()
        )
    );
}

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

// ---------------------------------------------------------------- command lines

/// The argv of `command = VALUE` in each command key.
fn argvs(value: &str) -> [Vec<String>; 3] {
    let c = ok(&format!(
        "[alert]\nsendmail = {value}\ncommand = {value}\n[task.x]\ncommand = {value}\n"
    ));
    [
        c.alert.sendmail.clone(),
        c.alert.command.clone(),
        c.tasks[0].command.clone(),
    ]
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

#[test]
fn commands_take_quoted_words_in_every_command_key() {
    for (value, want) in [
        (
            "\"/opt/my tool/x\" --flag 'a b'",
            &["/opt/my tool/x", "--flag", "a b"][..],
        ),
        (
            "/usr/bin/find /var/tmp -name \"*.tmp\"",
            &["/usr/bin/find", "/var/tmp", "-name", "*.tmp"],
        ),
        (
            "'/opt/my tool/x' \"a 'b'\" 'c \"d\"'",
            &["/opt/my tool/x", "a 'b'", "c \"d\""],
        ),
        // Backslashes: outside quotes the next character is literal; in "..."
        // only \" and \\ are escapes; in '...' nothing is.
        (
            "/bin/a b\\ c \\\"d\\\" e\\\\f \\'g",
            &["/bin/a", "b c", "\"d\"", "e\\f", "'g"],
        ),
        (
            "/bin/a \"x\\\"y\" \"p\\\\q\" \"r\\ts\" 'u\\v'",
            &["/bin/a", "x\"y", "p\\q", "r\\ts", "u\\v"],
        ),
        // Empty words, and quotes joining parts of one word.
        ("/bin/a \"\" '' x\"y z\"'!'", &["/bin/a", "", "", "xy z!"]),
        ("/bin/a --opt=\"a b\"", &["/bin/a", "--opt=a b"]),
        // Comments: a ; or # that starts a word; kept inside a word or quotes.
        (
            "/usr/sbin/sendmail -t -i      ; or e.g. /usr/bin/msmtp -t",
            &["/usr/sbin/sendmail", "-t", "-i"],
        ),
        (
            "/bin/a b#c \"d ;e\" 'f #g' # note",
            &["/bin/a", "b#c", "d ;e", "f #g"],
        ),
        ("/bin/a \\;b \\#c", &["/bin/a", ";b", "#c"]),
        // Blanks of any width, tabs too.
        ("/bin/a \t b", &["/bin/a", "b"]),
    ] {
        let want = words(want);
        assert_eq!(argvs(value), [want.clone(), want.clone(), want], "{value}");
    }
}

#[test]
fn command_quoting_errors_name_file_line_and_key() {
    for (value, message) in [
        (
            "/bin/echo \"abc",
            "unterminated \" quote (close it, or escape it as \\\")",
        ),
        (
            "/bin/echo it's",
            "unterminated ' quote (close it, or escape it as \\')",
        ),
        (
            "/bin/echo \"a\\\"",
            "unterminated \" quote (close it, or escape it as \\\")",
        ),
        // A quote that opens the value is checked as the line is read.
        ("\"/opt/my tool/x --flag", "unterminated \" quote"),
        ("'/opt/x\\' y", "unterminated ' quote"),
        ("\"/opt/x\"\"y", "unterminated \" quote"),
        (
            "\"my tool\" x",
            "the program must be an absolute path: \"my tool\"",
        ),
        ("; only a comment", "a command is required"),
    ] {
        for (section, key) in [
            ("alert", "sendmail"),
            ("alert", "command"),
            ("task.x", "command"),
        ] {
            assert_eq!(
                bad(section, key, value),
                format!("/etc/a.ini:2: {section}.{key}: {message}"),
                "{value}"
            );
        }
    }
    // An empty alert command is none; an empty quoted one too.
    assert!(val("alert", "command", "").alert.command.is_empty());
    assert!(val("alert", "command", "\"\"").alert.command.is_empty());
}

#[test]
fn commands_print_back_to_the_same_words() {
    let input = "[alert]\nsendmail = \"/opt/my mailer/send\" -f 'ops team' ; comment\n\
                command = /bin/page \"\" 'a\"b' \"c\\\\d\" e\\;f #g\n\
                [task.find]\ncommand = /usr/bin/find /var/tmp -name \"*.tmp\" -newer \"/a b/#c\"\n";
    let c = ok(input);
    let ini = c.to_ini();
    for line in [
        "\nsendmail = \"/opt/my mailer/send\" -f \"ops team\"\n",
        "\ncommand = /bin/page \"\" \"a\\\"b\" \"c\\\\d\" \"e;f\"\n",
        "\ncommand = /usr/bin/find /var/tmp -name *.tmp -newer \"/a b/#c\"\n",
    ] {
        assert!(ini.contains(line), "{line:?} in\n{ini}");
    }
    assert_eq!(
        c.alert.command,
        words(&["/bin/page", "", "a\"b", "c\\d", "e;f"])
    );
    assert_eq!(parse(&ini), Ok(c.clone()));
    // --check-config prints the same, and its output loads to the same config.
    let tmp = Tmp::new("check-commands");
    let path = tmp.write("a.ini", input);
    let out = run(&["--check-config", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let printed = text(&out.stdout);
    let keys: String = printed
        .lines()
        .filter(|l| !l.starts_with(';'))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_eq!(keys, ini, "{printed}");
    let again = tmp.write("b.ini", &printed);
    let reloaded = Config::load(&again, true).unwrap();
    assert_eq!(
        (reloaded.alert, reloaded.tasks),
        (c.alert.clone(), c.tasks.clone())
    );
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
