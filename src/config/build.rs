//! Raw sections → typed `Config`: each entry read by its key's declaration, and
//! the checks no single key can make (repeated sections and keys, unknown ones
//! with a hint, rule names, a rule without its required key, a warn limit above
//! its crit). Every error is collected; none stops the others.
//!
//! The files (layers: the main file, then its drop-ins) are read in order over the
//! defaults, so a key set again in a later file overrides the earlier value, and a
//! `[PREFIX.NAME]` rule continued in a later file is one rule, read from all its
//! parts. Within one file, a section or key given twice is still an error.

use super::origin::{Origin, Origins};
use super::rules::Complete;
use super::source::Layer;
use super::table::{Key, Rule, Section, Written};
use super::{
    Agent, Alert, Audit, CleanupRule, Config, ConfigError, Disk, Paths, RULE_SECTIONS, RawSection,
    ReapRule, Reaper, Relief, SECTIONS, Task, Thresholds, lower_is_worse, value,
};
use std::path::Path;

/// Reads `layers` over the defaults; every error at once, in file order.
pub fn build(layers: &[Layer]) -> Result<Config, Vec<ConfigError>> {
    let mut cfg = Config::default();
    let mut b = Builder {
        layers,
        at: 0,
        errors: Vec::new(),
        origins: Origins::default(),
    };
    let mut rules: Vec<Parts> = Vec::new();
    for (i, layer) in layers.iter().enumerate() {
        b.at = i;
        b.check_duplicates(&layer.sections);
        for s in &layer.sections {
            match rule_name(&s.name) {
                Some(_) => match rules.iter_mut().find(|p| p.name == s.name) {
                    Some(p) => p.parts.push((i, s)),
                    None => rules.push(Parts {
                        name: &s.name,
                        parts: vec![(i, s)],
                    }),
                },
                None => b.section(s, &mut cfg),
            }
        }
    }
    for r in &rules {
        b.rule_section(r, &mut cfg);
    }
    b.check_limits(&cfg.thresholds);
    // The checks run in passes; report in file order (stable, so same-line
    // errors keep their order).
    b.errors.sort_by_key(|(layer, e)| (*layer, e.line));
    if b.errors.is_empty() {
        cfg.origins = b.origins;
        Ok(cfg)
    } else {
        Err(b.errors.into_iter().map(|(_, e)| e).collect())
    }
}

/// A `[PREFIX.NAME]` section's name split in two, when it is one.
fn rule_name(section: &str) -> Option<(&str, &str)> {
    section
        .split_once('.')
        .filter(|(prefix, _)| RULE_SECTIONS.iter().any(|(p, _)| p == prefix))
}

/// One rule's sections, from every file that has it: (layer, section), in order.
struct Parts<'a> {
    name: &'a str,
    parts: Vec<(usize, &'a RawSection)>,
}

/// Collects errors while typed values are filled in.
struct Builder<'a> {
    layers: &'a [Layer],
    /// The layer being read: errors name its file.
    at: usize,
    /// Each error with its layer, to sort them in file order.
    errors: Vec<(usize, ConfigError)>,
    origins: Origins,
}

impl Builder<'_> {
    fn error(&mut self, line: usize, key: &str, message: &str) {
        let file = self.layers.get(self.at).map_or(Path::new(""), |l| &l.path);
        self.errors
            .push((self.at, ConfigError::at(file, line, key, message)));
    }

    /// One fixed or unknown section, into its part of `cfg`.
    fn section(&mut self, s: &RawSection, cfg: &mut Config) {
        match s.name.as_str() {
            Agent::NAME => self.keys(s, &mut cfg.agent),
            Paths::NAME => self.keys(s, &mut cfg.paths),
            Thresholds::NAME => self.keys(s, &mut cfg.thresholds),
            Disk::NAME => self.keys(s, &mut cfg.disk),
            Reaper::NAME => self.keys(s, &mut cfg.reaper),
            Relief::NAME => self.keys(s, &mut cfg.relief),
            Audit::NAME => self.keys(s, &mut cfg.audit),
            Alert::NAME => self.keys(s, &mut cfg.alert),
            _ => self.unknown_section(s),
        }
    }

    /// A `[PREFIX.NAME]` rule, from all its parts, into its list in `cfg`.
    fn rule_section(&mut self, r: &Parts, cfg: &mut Config) {
        match rule_name(r.name) {
            Some((CleanupRule::NAME, name)) => self.rule(r, name, &mut cfg.cleanup),
            Some((ReapRule::NAME, name)) => self.rule(r, name, &mut cfg.reap),
            Some((Task::NAME, name)) => self.rule(r, name, &mut cfg.tasks),
            _ => {}
        }
    }

    /// Each entry of `s` read into `target` by its key's declaration; where each
    /// value was set is noted.
    fn keys<T: Section>(&mut self, s: &RawSection, target: &mut T) {
        for e in &s.entries {
            let w = Written {
                key: &e.key,
                value: &e.value,
                raw: &e.raw,
            };
            let read = match Key::find(T::KEYS, &e.key) {
                Some(key) => (key.read)(target, w).map(|()| key.name),
                None => Err(unknown_key(T::NAME, &e.key)),
            };
            match read {
                Ok(key) => {
                    let origin = Origin::Line(self.layers[self.at].path.clone(), e.line);
                    self.origins.set(&s.name, key, origin);
                }
                Err(msg) => self.error(e.line, &format!("{}.{}", s.name, e.key), &msg),
            }
        }
    }

    /// A `[PREFIX.NAME]` rule read from each of its parts in turn: added to
    /// `rules` when it has no error. Errors of the rule as a whole are reported
    /// where it is first named.
    fn rule<T: Rule + Complete>(&mut self, r: &Parts, name: &str, rules: &mut Vec<T>) {
        let (first_layer, first) = r.parts[0];
        self.at = first_layer;
        if !self.rule_name(first, name) {
            return;
        }
        let mut rule = T::named(name);
        let before = self.errors.len();
        for &(layer, s) in &r.parts {
            self.at = layer;
            self.keys(s, &mut rule);
        }
        self.at = first_layer;
        if self.errors.len() == before
            && let Some((key, msg)) = rule.missing()
        {
            let key = match key {
                "" => format!("[{}]", r.name),
                key => format!("{}.{key}", r.name),
            };
            self.error(first.line, &key, msg);
        }
        if self.errors.len() == before {
            rules.push(rule);
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

    /// A warn limit above its crit limit is an error reported where crit was set
    /// (or warn, when crit is the default).
    fn check_limits(&mut self, t: &Thresholds) {
        for (warn, crit, l) in t.limits() {
            // A limit that is itself invalid was reported already; comparing the
            // default in its place would report a value that is not in the file.
            let bad = |k: &str| {
                self.errors
                    .iter()
                    .any(|(_, e)| e.key == format!("thresholds.{k}"))
            };
            if bad(warn) || bad(crit) {
                continue;
            }
            // A time left is worse when lower: its warn level is the larger.
            let lower = lower_is_worse(warn.trim_end_matches("_warn"));
            if let (Some(w), Some(c)) = (l.warn, l.crit)
                && (if lower { w < c } else { w > c })
            {
                let show = |v: f64| match lower {
                    true => value::fmt_duration(std::time::Duration::from_secs_f64(v)),
                    false => v.to_string(),
                };
                let (w, c) = (show(w), show(c));
                let (below, above) = if lower {
                    ("above", "below")
                } else {
                    ("below", "above")
                };
                let (at, key, msg) = match self.set_at(crit) {
                    Some(at) => (at, crit, format!("{c} is {below} thresholds.{warn} ({w})")),
                    None => (
                        self.set_at(warn).unwrap_or((0, 0)),
                        warn,
                        format!("{w} is {above} thresholds.{crit} ({c})"),
                    ),
                };
                self.at = at.0;
                self.error(at.1, &format!("thresholds.{key}"), &msg);
            }
        }
    }

    /// (layer, line) where `[thresholds] key` was last set; `None`: its default.
    fn set_at(&self, key: &str) -> Option<(usize, usize)> {
        match self.origins.of(Thresholds::NAME, key)? {
            Origin::Line(path, line) => {
                let layer = self.layers.iter().rposition(|l| l.path == *path)?;
                Some((layer, *line))
            }
            Origin::Option(_) => None,
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
