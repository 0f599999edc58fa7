//! The built-in defaults are the shipped etc/system_agent.ini: its fixed sections
//! without its example rules, what an empty file gives, the keys of
//! `config::SECTIONS` in file order, the defaults printed as INI and read back, and
//! every key documented there with its default (set otherwise only where it says).

mod common;

use common::config::*;
use system_agent::config::{self, Action, Config};

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

/// `c` as if it had been built in (for comparing a parsed config with another).
fn unfiled(c: Config) -> Config {
    Config { file: None, ..c }
}

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
