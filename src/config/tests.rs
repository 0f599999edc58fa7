//! The key declarations themselves: each key named once with a one-line description,
//! its default read and printed back, and the reference generated from them.

use super::table::{Rule, Written};
use super::*;

/// Each key's value in `s`, printed and read back into `s`, leaves it as it was;
/// `exact`: it also prints as the declared default (`s` holds the defaults).
fn round_trips<T: Section + PartialEq + Clone + fmt::Debug>(s: &T, exact: bool) {
    for k in T::KEYS {
        let printed = (k.print)(s);
        if exact {
            assert_eq!(printed, k.default, "{}.{}", T::NAME, k.name);
        }
        if printed.is_empty() {
            continue; // unset: the empty value, which some kinds refuse to read
        }
        let mut again = s.clone();
        let w = Written {
            key: k.name,
            value: &printed,
            raw: &printed,
        };
        assert_eq!((k.read)(&mut again, w), Ok(()), "{}.{}", T::NAME, k.name);
        assert_eq!(&again, s, "{}.{} = {printed}", T::NAME, k.name);
    }
}

#[test]
fn every_default_reads_and_prints_back() {
    let c = Config::default();
    round_trips(&c.agent, true);
    round_trips(&c.paths, true);
    round_trips(&c.thresholds, true);
    round_trips(&c.disk, true);
    round_trips(&c.reaper, true);
    round_trips(&c.relief, true);
    round_trips(&c.audit, true);
    round_trips(&c.alert, true);
    // A rule's defaults may print shorter (`every = 24h` prints as `1d`).
    round_trips(&CleanupRule::named("x"), false);
    round_trips(&Task::named("x"), false);
    round_trips(&ReapRule::named("x"), false);
    assert_eq!(Task::named("x").umask, crate::child::DEFAULT_UMASK);
}

#[test]
fn every_key_is_named_once_and_described_in_one_line() {
    for (section, names) in SECTIONS.iter().chain(RULE_SECTIONS) {
        for (i, n) in names.iter().enumerate() {
            assert!(!names[..i].contains(n), "{section}.{n} declared twice");
        }
    }
    let all = keys();
    let count: usize = SECTIONS
        .iter()
        .chain(RULE_SECTIONS)
        .map(|(_, k)| k.len())
        .sum();
    assert_eq!(all.len(), count);
    for k in &all {
        let (s, key, doc) = (&k.section, k.key, k.doc);
        assert!(
            doc.ends_with('.') && !doc.contains(['\n', '\t']),
            "{s}.{key}: {doc:?}"
        );
    }
}

#[test]
fn reference_lists_each_section_and_key_with_default_and_description() {
    let text = reference();
    assert!(
        text.starts_with(
            "[agent]\n\
             interval = 10s\n\
             \tTime between cycles, 10ms to 24h (a slow cycle skips, it never bursts).\n\
             log_file = /var/log/aion/system_agent.log\n"
        ),
        "{text}"
    );
    for part in [
        "\n\n[thresholds]\ncpu_warn = 80\n\
         \tWarn level of CPU busy time over the interval, percent of all CPUs.\n",
        "\nswap_warn =\n\tWarn level of swap in use, percent. Empty: not judged.\n",
        "\n\n[task.NAME]\ncommand =\n\tRequired: an absolute program path",
        "\nevery = 24h\n\tHow often it is due, since its last success.\n",
        "\nsendmail = /usr/sbin/sendmail -t -i\n",
    ] {
        assert!(text.contains(part), "{part:?} in\n{text}");
    }
    let headers: Vec<&str> = text.lines().filter(|l| l.starts_with('[')).collect();
    assert_eq!(
        headers,
        [
            "[agent]",
            "[paths]",
            "[thresholds]",
            "[disk]",
            "[reaper]",
            "[relief]",
            "[audit]",
            "[alert]",
            "[cleanup.NAME]",
            "[task.NAME]",
            "[reap.NAME]",
        ]
    );
    // Each key: its `key = default` line, then its description.
    let lines: Vec<&str> = text.lines().collect();
    let mut n = 0;
    for k in keys() {
        let line = match k.default {
            "" => format!("{} =", k.key),
            d => format!("{} = {d}", k.key),
        };
        let at = lines[n..].iter().position(|l| *l == line).map(|i| n + i);
        let at = at.unwrap_or_else(|| panic!("{line:?} in order in\n{text}"));
        assert_eq!(lines[at + 1], format!("\t{}", k.doc));
        n = at + 2;
    }
    assert_eq!(lines.len(), headers.len() * 2 - 1 + keys().len() * 2);
}
