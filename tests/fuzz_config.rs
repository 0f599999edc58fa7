//! `Config::parse` fed thousands of random INI files, built from real and made-up
//! sections, keys and values (and mutations of the shipped file) by a fixed-seed
//! PRNG: none may panic, every error has a text, and a config that parses prints
//! back (plain, and as `--check-config` shows it) to the same config. `scripts/fuzz`
//! runs it long (`SA_FUZZ_ROUNDS`).

#[path = "common/fixtures.rs"]
mod fixtures;
#[path = "common/fuzz.rs"]
mod fuzz_engine;

use fixtures::*;
use fuzz_engine::{Rng, mutate, rounds};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use system_agent::config::{Config, SECTIONS};

// Config::parse: random INI built from real and made-up sections, keys and values.

const VALUES: &[&str] = &[
    "",
    "10s",
    "500ms",
    "9ms",
    "24h",
    "25h",
    "7d",
    "0",
    "1",
    "100",
    "100%",
    "101",
    "85.5",
    "-1",
    "1.5",
    "1e3",
    "nan",
    "99999999999999999999999",
    "18446744073709551615ms",
    "18446744073709551615d",
    "2G",
    "yes",
    "no",
    "ON",
    "maybe",
    "debug",
    "warning",
    "LOG_DAEMON",
    "local7",
    "authpriv",
    "kern",
    "/",
    "/var/log/aion/x.log",
    "relative/path",
    "/a,/b /c",
    "/a, b",
    "\"/quoted path\"",
    "'single'",
    "\"unterminated",
    "\"a\\\"b\"",
    "\"/a\\\\\"",
    "value ; comment",
    "value # comment",
    "a;b",
    "a#b",
    "é",
    "\u{202e}",
    "\\",
    "C:\\x",
    "=",
    "a = b",
    "[x]",
    // Command lines (alert.sendmail, alert.command): quotes, escapes, comments.
    "\"/opt/my tool/x\" --flag 'a b'",
    "/usr/bin/find /var/tmp -name \"*.tmp\"",
    "/bin/echo \"x ;y\" 'z #w' ; comment",
    "/bin/a \"\" '' \\; \\\\ \"b\\\\\" \"c\\d\"",
    "/bin/a it's",
    "/bin/a\u{a0}b \"\u{a0}\" \"\t\"",
    "'/bin/x'\"y\"z",
];

/// One line of a random config file.
fn ini_line(rng: &mut Rng, out: &mut String) {
    let sections: Vec<&str> = SECTIONS.iter().map(|(s, _)| *s).collect();
    let keys: Vec<&str> = SECTIONS
        .iter()
        .flat_map(|(_, k)| k.iter().copied())
        .collect();
    let odd = [
        "",
        " ",
        "x",
        "agnet",
        "tresholds",
        "a b",
        "é",
        "[",
        "]",
        "=",
        ";",
    ];
    let key = match rng.below(8) {
        0 => rng.pick(&odd),
        _ => rng.pick(&keys),
    };
    let value = rng.pick(VALUES);
    match rng.below(12) {
        0 => out.push_str(&format!("[{}]", rng.pick(&sections))),
        1 => out.push_str(&format!("[{}]", rng.pick(&odd))),
        2 => out.push_str(&format!("  [ {} ]  ; c", rng.pick(&sections))),
        3 => out.push_str("; a comment"),
        4 => out.push_str("   # indented comment = 1"),
        5 => {}
        6 => out.push_str(&format!("{key}: {value}")),
        7 => out.push_str(&format!("\t{key}={value} \\")),
        8 => out.push_str(&format!("{key} = {value}\r")),
        9 => out.push_str(key),
        _ => out.push_str(&format!("{key} = {value}")),
    }
    out.push('\n');
}

#[test]
fn fuzz_config_parse() {
    let file = Path::new("/etc/aion/system_agent.ini");
    let shipped =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/etc/system_agent.ini"))
            .unwrap_or_default();
    let default_ini = Config::default().to_ini();
    let mut rng = Rng(12);
    let mut text = String::new();
    let mut bytes = Vec::new();
    let (mut ok, mut bad) = (0, 0);
    for round in 0..rounds() {
        text.clear();
        match rng.below(4) {
            0 => {
                let seed = rng.pick(&[shipped.as_bytes(), default_ini.as_bytes(), GARBAGE]);
                mutate(&mut rng, seed, &mut bytes);
                text.push_str(&String::from_utf8_lossy(&bytes));
            }
            1 => {
                // Valid sections and keys, random values: reaches every value parser.
                let (section, keys) = SECTIONS[rng.below(SECTIONS.len())];
                text.push_str(&format!("[{section}]\n"));
                for _ in 0..1 + rng.below(4) {
                    let key = keys[rng.below(keys.len())];
                    text.push_str(&format!("{key} = {}\n", rng.pick(VALUES)));
                }
            }
            _ => {
                for _ in 0..rng.below(12) {
                    ini_line(&mut rng, &mut text);
                }
            }
        }
        let run = || match Config::parse(file, &text) {
            Ok(cfg) => {
                // The effective config printed back loads to the same config.
                let again = Config::parse(file, &cfg.to_ini()).map(|c| Config {
                    file: cfg.file.clone(),
                    ..c
                });
                assert_eq!(again.as_ref(), Ok(&cfg), "printed back as {}", cfg.to_ini());
                // So does the --check-config form, each key under its origin.
                let annotated = cfg.to_ini_with_origins();
                let again = Config::parse(file, &annotated);
                assert_eq!(again.as_ref(), Ok(&cfg), "printed back as {annotated}");
                let _ = cfg.changed_keys(&Config::default());
                true
            }
            Err(errors) => {
                assert!(!errors.is_empty());
                for e in &errors {
                    assert!(!e.to_string().is_empty());
                }
                false
            }
        };
        match catch_unwind(AssertUnwindSafe(run)) {
            Ok(true) => ok += 1,
            Ok(false) => bad += 1,
            Err(_) => panic!("round {round} panicked on config {text:?}"),
        }
    }
    assert!(
        ok >= rounds() / 50 && bad >= rounds() / 50,
        "ok {ok}, errors {bad}"
    );
}
