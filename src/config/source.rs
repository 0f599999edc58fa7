//! INI text → sections and `key = value` entries, each with its line number.
//!
//! rust-ini parses the values (quotes, inline `;`/`#` comments after whitespace) with
//! escapes off, so `C:\x` or a glob with `\` is taken as written. It does not report
//! where a key was, and it reads some malformed lines in surprising ways (a line
//! without `=` swallows the next line into its key; an indented comment becomes a
//! key), so this module first checks every line's shape itself, reports each bad
//! line by number, and hands rust-ini a normalised copy in which those quirks cannot
//! arise. The two then agree entry for entry, which is checked. Each entry also
//! keeps its value as written (`raw`), for keys that read quotes themselves: a
//! command's words (rust-ini unquotes only a value's start and cuts at `;` even
//! inside quotes later on).

use super::ConfigError;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawEntry {
    pub key: String,
    /// As rust-ini reads it: a leading quoted part unquoted, an inline comment cut.
    pub value: String,
    /// As written after the `=` (trimmed), quotes and comment included.
    pub raw: String,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawSection {
    pub name: String,
    pub line: usize,
    pub entries: Vec<RawEntry>,
}

/// One file's sections, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    pub path: PathBuf,
    pub sections: Vec<RawSection>,
}

enum Item {
    Section(String),
    /// The key and its value as written.
    Key(String, String),
}

pub fn parse(file: &Path, text: &str) -> Result<Vec<RawSection>, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut items: Vec<(usize, Item)> = Vec::new();
    let mut normalised = String::with_capacity(text.len());
    let mut section: Option<String> = None;
    for (i, raw) in text.split('\n').enumerate() {
        let n = i + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw).trim();
        match classify(line) {
            Ok(None) => normalised.push('\n'),
            Ok(Some(Item::Section(name))) => {
                section = Some(name.clone());
                normalised.push('[');
                normalised.push_str(&name);
                normalised.push_str("]\n");
                items.push((n, Item::Section(name)));
            }
            Ok(Some(Item::Key(key, _))) if section.is_none() => {
                errors.push(ConfigError::at(file, n, &key, "key outside any [section]"));
                normalised.push('\n');
            }
            Ok(Some(Item::Key(key, raw))) => {
                normalised.push_str(line);
                normalised.push('\n');
                items.push((n, Item::Key(key, raw)));
            }
            Err((key, msg)) => {
                let key = match (&section, key) {
                    (Some(s), Some(k)) => format!("{s}.{k}"),
                    (None, Some(k)) => k,
                    (_, None) => String::new(),
                };
                errors.push(ConfigError::at(file, n, &key, &msg));
                normalised.push('\n');
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let opt = ini::ParseOption {
        enabled_escape: false,
        ..Default::default()
    };
    let parsed = ini::Ini::load_from_str_opt(&normalised, opt)
        .map_err(|e| vec![ConfigError::at(file, e.line, "", &e.msg)])?;
    assemble(file, items, &parsed)
}

/// The shape of one trimmed line: blank or comment, section header, or key line.
/// An error names the key when the line has one.
fn classify(line: &str) -> Result<Option<Item>, (Option<String>, String)> {
    let bad = |msg: String| Err((None, msg));
    if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
        return Ok(None);
    }
    if let Some(rest) = line.strip_prefix('[') {
        let Some(close) = rest.find(']') else {
            return bad("section header without a closing ]".to_string());
        };
        let name = rest[..close].trim();
        let after = rest[close + 1..].trim_start();
        if name.is_empty() {
            return bad("empty section name".to_string());
        }
        if !after.is_empty() && !after.starts_with(';') && !after.starts_with('#') {
            return bad(format!("unexpected text after [{name}]: \"{after}\""));
        }
        return Ok(Some(Item::Section(name.to_string())));
    }
    let Some(sep) = line.find(['=', ':']) else {
        return bad(format!(
            "expected \"key = value\" or \"[section]\", found \"{line}\""
        ));
    };
    let key = line[..sep].trim();
    if key.is_empty() {
        return bad("missing key before '='".to_string());
    }
    let raw = line[sep + 1..].trim();
    let mut value = raw;
    while let Some(q) = value.chars().next().filter(|&c| c == '"' || c == '\'') {
        match closing_quote(&value[1..], q) {
            Some(end) => value = &value[1 + end + 1..],
            None => return Err((Some(key.to_string()), format!("unterminated {q} quote"))),
        }
    }
    // rust-ini joins the next line to one ending in `\`, unless the `\` is inside an
    // inline comment (whitespace then `;` or `#`), which it skips first.
    if line.ends_with('\\') && !has_inline_comment(value) {
        return Err((
            Some(key.to_string()),
            "a line may not end with \\ (continuation lines are not supported)".to_string(),
        ));
    }
    Ok(Some(Item::Key(key.to_string(), raw.to_string())))
}

/// Whether rust-ini (feature `inline-comment`) would cut `v` at a comment: a `;` or
/// `#` right after whitespace.
pub fn has_inline_comment(v: &str) -> bool {
    v.as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_whitespace() && matches!(w[1], b';' | b'#'))
}

/// The index of the quote that closes a quoted value, skipping `\x` pairs as
/// rust-ini does even with escapes off.
fn closing_quote(s: &str, q: char) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            c if c as char == q => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// Pairs rust-ini's sections and values, in order, with the line numbers found above.
fn assemble(
    file: &Path,
    items: Vec<(usize, Item)>,
    parsed: &ini::Ini,
) -> Result<Vec<RawSection>, Vec<ConfigError>> {
    let mut values = parsed
        .iter()
        .filter_map(|(name, props)| name.map(|n| (n, props)))
        .flat_map(|(name, props)| {
            std::iter::once((name, None))
                .chain(props.iter().map(move |(k, v)| (name, Some((k, v)))))
        });
    let mut sections: Vec<RawSection> = Vec::new();
    for (line, item) in items {
        let disagree = || vec![ConfigError::at(file, line, "", "cannot parse this line")];
        match (item, values.next()) {
            (Item::Section(name), Some((n, None))) if n == name => sections.push(RawSection {
                name,
                line,
                entries: Vec::new(),
            }),
            (Item::Key(key, raw), Some((_, Some((k, v))))) if k == key => match sections.last_mut()
            {
                Some(s) => s.entries.push(RawEntry {
                    key,
                    value: v.to_string(),
                    raw,
                    line,
                }),
                None => return Err(disagree()),
            },
            _ => return Err(disagree()),
        }
    }
    Ok(sections)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Vec<RawSection>, Vec<String>> {
        parse(Path::new("f.ini"), text).map_err(|e| e.iter().map(|e| e.to_string()).collect())
    }

    #[test]
    fn values_lines_quotes_and_comments() {
        let s = p(
            "; top\n[a]\nx = 1 ; note\n  y: C:\\temp\\x\n\n[b] # c\nz = \"  padded ; x \"\nw=a#b\n",
        )
        .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].name.as_str(), s[0].line), ("a", 2));
        assert_eq!(
            s[0].entries[0],
            RawEntry {
                key: "x".into(),
                value: "1".into(),
                raw: "1 ; note".into(),
                line: 3
            }
        );
        assert_eq!(
            s[0].entries[1],
            RawEntry {
                key: "y".into(),
                value: "C:\\temp\\x".into(),
                raw: "C:\\temp\\x".into(),
                line: 4
            }
        );
        assert_eq!((s[1].name.as_str(), s[1].line), ("b", 6));
        assert_eq!(s[1].entries[0].value, "  padded ; x ");
        assert_eq!(s[1].entries[0].raw, "\"  padded ; x \"");
        assert_eq!(s[1].entries[1].value, "a#b");
    }

    #[test]
    fn raw_keeps_every_quote_and_the_comment() {
        let s = p("[a]\nc = \"/opt/my tool/x\" --flag 'a b' ; note\nd = /x -n \"a ;b\"\n").unwrap();
        let e = &s[0].entries;
        assert_eq!(e[0].value, "/opt/my tool/x --flag 'a b'");
        assert_eq!(e[0].raw, "\"/opt/my tool/x\" --flag 'a b' ; note");
        assert_eq!(
            (e[1].value.as_str(), e[1].raw.as_str()),
            ("/x -n \"a", "/x -n \"a ;b\"")
        );
    }

    #[test]
    fn indented_comment_is_a_comment() {
        let s = p("[a]\n   ; not a key\n\tx = 1\n").unwrap();
        assert_eq!(
            s[0].entries,
            vec![RawEntry {
                key: "x".into(),
                value: "1".into(),
                raw: "1".into(),
                line: 3
            }]
        );
    }

    #[test]
    fn empty_value_and_crlf() {
        let s = p("[a]\r\nx =\r\ny = 2\r\n").unwrap();
        assert_eq!(s[0].entries[0].value, "");
        assert_eq!(
            s[0].entries[1],
            RawEntry {
                key: "y".into(),
                value: "2".into(),
                raw: "2".into(),
                line: 3
            }
        );
    }

    #[test]
    fn bad_lines_are_reported_by_number() {
        assert_eq!(
            p("[a]\nnovalue\n[b\nx = 1\n= 3\ny = \"open\n[c] junk\nz = a\\\n").unwrap_err(),
            vec![
                "f.ini:2: expected \"key = value\" or \"[section]\", found \"novalue\"",
                "f.ini:3: section header without a closing ]",
                "f.ini:5: missing key before '='",
                "f.ini:6: a.y: unterminated \" quote",
                "f.ini:7: unexpected text after [c]: \"junk\"",
                "f.ini:8: a.z: a line may not end with \\ (continuation lines are not supported)",
            ]
        );
        assert_eq!(
            p("x = 1\n").unwrap_err(),
            vec!["f.ini:1: x: key outside any [section]"]
        );
        assert_eq!(p("[]\n").unwrap_err(), vec!["f.ini:1: empty section name"]);
    }
}
