//! What the config tests (tests/config_*.rs) share: `Config::parse` of a text as
//! `/etc/a.ini`, with its errors as strings (`ok`, `errors`, `val`, `bad`,
//! `rejects`), short constructors for the values a config holds, the fixture
//! configs, and the shipped etc/system_agent.ini with the defaults it documents.

use std::path::{Path, PathBuf};
use std::time::Duration;
use system_agent::config::{Config, Limits};

pub const FILE: &str = "/etc/a.ini";

pub fn parse(text: &str) -> Result<Config, Vec<String>> {
    Config::parse(Path::new(FILE), text).map_err(|e| e.iter().map(ToString::to_string).collect())
}

pub fn ok(text: &str) -> Config {
    parse(text).unwrap_or_else(|e| panic!("{text:?} should parse, got {e:#?}"))
}

pub fn errors(text: &str) -> Vec<String> {
    match parse(text) {
        Ok(c) => panic!("{text:?} should fail, got {c:#?}"),
        Err(e) => e,
    }
}

/// `[section]` on line 1 and `key = value` on line 2.
pub fn set(section: &str, key: &str, value: &str) -> Result<Config, Vec<String>> {
    parse(&format!("[{section}]\n{key} = {value}\n"))
}

pub fn val(section: &str, key: &str, value: &str) -> Config {
    set(section, key, value).unwrap_or_else(|e| panic!("{key} = {value:?}: {e:#?}"))
}

/// The one error for `key = value` (on line 2).
pub fn bad(section: &str, key: &str, value: &str) -> String {
    match set(section, key, value) {
        Ok(c) => panic!("{key} = {value:?} should fail, got {c:#?}"),
        Err(e) => {
            assert_eq!(e.len(), 1, "{key} = {value:?}: {e:#?}");
            e.into_iter().next().unwrap()
        }
    }
}

/// Each of `values` for `section.key` is the one error `message(value)` (on line 2).
pub fn rejects(section: &str, key: &str, values: &[&str], message: impl Fn(&str) -> String) {
    for v in values {
        assert_eq!(
            bad(section, key, v),
            format!("/etc/a.ini:2: {section}.{key}: {}", message(v)),
            "{section}.{key} = {v:?}"
        );
    }
}

pub fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn limits(w: f64, c: f64) -> Limits {
    Limits {
        warn: Some(w),
        crit: Some(c),
    }
}

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(name)
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8(b.to_vec()).expect("utf-8 output")
}

/// The shipped etc/system_agent.ini, which documents every key with its default.
pub fn shipped() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/system_agent.ini");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Keys the shipped file sets, on purpose, to something else than their default:
/// (section, the shipped line, the line of the default).
pub const SHIPPED_NOT_DEFAULT: &[(&str, &str, &str)] = &[
    // Memory relief first says what it would choose before it is let act.
    ("[relief]", "action = log", "action = term"),
];

/// The shipped file with the lines of `SHIPPED_NOT_DEFAULT` set to the defaults.
pub fn shipped_defaults() -> String {
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

/// The shipped file's settings in its fixed sections (not its example rules),
/// comments dropped: what `to_ini()` prints for the built-in defaults.
pub fn default_ini() -> String {
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
