//! Raw sections → typed `Config`: each entry read by its key's declaration, and
//! the checks no single key can make (repeated sections and keys, unknown ones
//! with a hint, rule names, a rule without its required key, a warn limit above
//! its crit). Every error is collected; none stops the others.

use super::rules::Complete;
use super::table::{Key, Rule, Section, Written};
use super::{
    Agent, Alert, Audit, CleanupRule, Config, ConfigError, Disk, Paths, RULE_SECTIONS, RawSection,
    ReapRule, Reaper, SECTIONS, Task, Thresholds, value,
};
use std::path::Path;

/// Reads `sections` over the defaults; every error at once, in file order.
pub fn build(file: &Path, sections: &[RawSection]) -> Result<Config, Vec<ConfigError>> {
    let mut cfg = Config {
        file: Some(file.to_path_buf()),
        ..Config::default()
    };
    let mut b = Builder {
        file,
        errors: Vec::new(),
    };
    b.check_duplicates(sections);
    for s in sections {
        b.section(s, &mut cfg);
    }
    b.check_limits(sections, &cfg.thresholds);
    // The checks run in passes; report in file order (stable, so same-line
    // errors keep their order).
    b.errors.sort_by_key(|e| e.line);
    if b.errors.is_empty() {
        Ok(cfg)
    } else {
        Err(b.errors)
    }
}

/// Collects errors while typed values are filled in.
struct Builder<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
}

impl Builder<'_> {
    fn error(&mut self, line: usize, key: &str, message: &str) {
        self.errors
            .push(ConfigError::at(self.file, line, key, message));
    }

    /// One section, into its part of `cfg`.
    fn section(&mut self, s: &RawSection, cfg: &mut Config) {
        match s.name.as_str() {
            Agent::NAME => self.keys(s, &mut cfg.agent),
            Paths::NAME => self.keys(s, &mut cfg.paths),
            Thresholds::NAME => self.keys(s, &mut cfg.thresholds),
            Disk::NAME => self.keys(s, &mut cfg.disk),
            Reaper::NAME => self.keys(s, &mut cfg.reaper),
            Audit::NAME => self.keys(s, &mut cfg.audit),
            Alert::NAME => self.keys(s, &mut cfg.alert),
            other => match other.split_once('.') {
                Some((CleanupRule::NAME, name)) => self.rule(s, name, &mut cfg.cleanup),
                Some((ReapRule::NAME, name)) => self.rule(s, name, &mut cfg.reap),
                Some((Task::NAME, name)) => self.rule(s, name, &mut cfg.tasks),
                _ => self.unknown_section(s),
            },
        }
    }

    /// Each entry of `s` read into `target` by its key's declaration.
    fn keys<T: Section>(&mut self, s: &RawSection, target: &mut T) {
        for e in &s.entries {
            let w = Written {
                key: &e.key,
                value: &e.value,
                raw: &e.raw,
            };
            let read = match Key::find(T::KEYS, &e.key) {
                Some(key) => (key.read)(target, w),
                None => Err(unknown_key(T::NAME, &e.key)),
            };
            if let Err(msg) = read {
                self.error(e.line, &format!("{}.{}", s.name, e.key), &msg);
            }
        }
    }

    /// A `[PREFIX.NAME]` section: added to `rules` when it has no error.
    fn rule<T: Rule + Complete>(&mut self, s: &RawSection, name: &str, rules: &mut Vec<T>) {
        if !self.rule_name(s, name) {
            return;
        }
        let mut r = T::named(name);
        let before = self.errors.len();
        self.keys(s, &mut r);
        if self.errors.len() == before
            && let Some((key, msg)) = r.missing()
        {
            let key = match key {
                "" => format!("[{}]", s.name),
                key => format!("{}.{key}", s.name),
            };
            self.error(s.line, &key, msg);
        }
        if self.errors.len() == before {
            rules.push(r);
        }
    }

    /// A rule's name: letters, digits, `_`, `-`, `.`; it appears in events.
    fn rule_name(&mut self, s: &RawSection, name: &str) -> bool {
        let ok = !name.is_empty()
            && name
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"_-.".contains(&c));
        if !ok {
            let msg = "a rule name needs letters, digits, '_', '-' or '.'";
            self.error(s.line, &format!("[{}]", s.name), msg);
        }
        ok
    }

    /// A repeated section or key is an error: which one would win is a guess.
    fn check_duplicates(&mut self, sections: &[RawSection]) {
        let mut seen_sections: Vec<(&str, usize)> = Vec::new();
        let mut seen_keys: Vec<(&str, &str, usize)> = Vec::new();
        for s in sections {
            if let Some(&(_, first)) = seen_sections.iter().find(|(n, _)| *n == s.name) {
                self.error(
                    s.line,
                    &format!("[{}]", s.name),
                    &format!("section repeated (first on line {first})"),
                );
            } else {
                seen_sections.push((&s.name, s.line));
            }
            for e in &s.entries {
                if let Some(&(_, _, first)) = seen_keys
                    .iter()
                    .find(|(sn, k, _)| *sn == s.name && *k == e.key)
                {
                    self.error(
                        e.line,
                        &format!("{}.{}", s.name, e.key),
                        &format!("key repeated (first on line {first})"),
                    );
                } else {
                    seen_keys.push((&s.name, &e.key, e.line));
                }
            }
        }
    }

    fn unknown_section(&mut self, s: &RawSection) {
        let name = s.name.as_str();
        let rules = RULE_SECTIONS.iter().map(|(p, _)| *p);
        let msg = if rules.clone().any(|p| p == name) {
            format!("unknown section (rules need a name: [{name}.NAME])")
        } else {
            let known = SECTIONS
                .iter()
                .map(|(n, _)| n.to_string())
                .chain(rules.map(|p| format!("{p}.NAME")));
            let known: Vec<String> = known.collect();
            match value::nearest(name, known.iter().map(String::as_str)) {
                Some(n) => format!("unknown section (did you mean [{n}]?)"),
                None => "unknown section".to_string(),
            }
        };
        self.error(s.line, &format!("[{name}]"), &msg);
    }

    /// A warn limit above its crit limit is an error reported on the crit line (or
    /// the warn line when crit is the default).
    fn check_limits(&mut self, sections: &[RawSection], t: &Thresholds) {
        let line_of = |key: &str| {
            sections
                .iter()
                .filter(|s| s.name == Thresholds::NAME)
                .flat_map(|s| &s.entries)
                .find(|e| e.key == key)
                .map(|e| e.line)
        };
        for (warn, crit, l) in t.limits() {
            // A limit that is itself invalid was reported already; comparing the
            // default in its place would report a value that is not in the file.
            let bad = |k: &str| {
                self.errors
                    .iter()
                    .any(|e| e.key == format!("thresholds.{k}"))
            };
            if bad(warn) || bad(crit) {
                continue;
            }
            if let (Some(w), Some(c)) = (l.warn, l.crit)
                && w > c
            {
                let (line, key, msg) = match line_of(crit) {
                    Some(line) => (line, crit, format!("{c} is below thresholds.{warn} ({w})")),
                    None => (
                        line_of(warn).unwrap_or(0),
                        warn,
                        format!("{w} is above thresholds.{crit} ({c})"),
                    ),
                };
                self.error(line, &format!("thresholds.{key}"), &msg);
            }
        }
    }
}

/// "unknown key", with the nearest key of `section` when one is close, or the
/// section the key belongs in.
fn unknown_key(section: &str, key: &str) -> String {
    let known = SECTIONS
        .iter()
        .chain(RULE_SECTIONS)
        .find(|(s, _)| *s == section)
        .map(|(_, k)| *k)
        .unwrap_or(&[]);
    if let Some(k) = value::nearest(key, known.iter().copied()) {
        return format!("unknown key \"{key}\" (did you mean \"{k}\"?)");
    }
    match SECTIONS
        .iter()
        .find(|(s, keys)| *s != section && keys.contains(&key))
    {
        Some((s, _)) => format!("unknown key \"{key}\" (it belongs in [{s}])"),
        None => format!("unknown key \"{key}\""),
    }
}
