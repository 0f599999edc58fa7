//! The config printed back: `to_ini()` with normalised values and the shortest
//! durations, round trips, `changed_keys` (what a reload reports); and the built
//! binary: `--check-config`'s effective config with where each key was set, and the
//! exit codes of `--check-config`, `--once` and the service for valid, invalid and
//! missing files.

mod common;

use common::config::*;
use common::{TempDir as Tmp, run};
use std::path::Path;
use system_agent::config::{self, Config};

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
