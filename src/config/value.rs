//! The value syntax every key shares: durations, sizes, percentages, booleans,
//! lists, absolute paths and command lines. Each parser returns the exact message an
//! operator sees after `FILE:LINE: section.key: `.

use std::path::PathBuf;
use std::time::Duration;

/// `500ms 30s 5m 2h 7d`; a bare number is seconds.
pub fn duration(v: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid duration \"{v}\" (expected a whole number with ms, s, m, h or d, e.g. 30s)"
        )
    };
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = v[..digits].parse().map_err(|_| bad())?;
    let ms_per = match &v[digits..] {
        "ms" => 1,
        "" | "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(bad()),
    };
    n.checked_mul(ms_per)
        .map(Duration::from_millis)
        .ok_or_else(bad)
}

/// The shortest exact spelling: `10s`, `500ms`, `5m`, `7d`.
pub fn fmt_duration(d: Duration) -> String {
    let ms = d.as_millis();
    for (unit, per) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
    ] {
        if ms != 0 && ms.is_multiple_of(per) {
            return format!("{}{unit}", ms / per);
        }
    }
    if ms == 0 {
        "0s".to_string()
    } else {
        format!("{ms}ms")
    }
}

/// `512K 100M 2G 1T` (powers of 1024); a bare number is bytes.
pub fn size(v: &str) -> Result<u64, String> {
    let bad = || {
        format!(
            "invalid size \"{v}\" (expected a whole number of bytes with K, M, G or T, e.g. 100M)"
        )
    };
    let digits = v.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 {
        return Err(bad());
    }
    let n: u64 = v[..digits].parse().map_err(|_| bad())?;
    let shift = match &v[digits..] {
        "" => 0,
        "K" | "k" => 10,
        "M" | "m" => 20,
        "G" | "g" => 30,
        "T" | "t" => 40,
        _ => return Err(bad()),
    };
    n.checked_mul(1u64 << shift).ok_or_else(bad)
}

pub fn fmt_size(n: u64) -> String {
    for (unit, shift) in [("T", 40), ("G", 30), ("M", 20), ("K", 10)] {
        if n != 0 && n.is_multiple_of(1u64 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

/// `0`–`100`, decimals allowed, optional `%`.
pub fn percent(v: &str) -> Result<f64, String> {
    let num = v.strip_suffix('%').unwrap_or(v);
    match plain_number(num) {
        Some(p) if p <= 100.0 => Ok(p),
        _ => Err(format!(
            "invalid percentage \"{v}\" (expected 0-100, optionally with %)"
        )),
    }
}

/// A load average per CPU: a non-negative number such as `1.5`.
pub fn load(v: &str) -> Result<f64, String> {
    match plain_number(v) {
        Some(l) if l <= 10_000.0 => Ok(l),
        _ => Err(format!(
            "invalid load \"{v}\" (expected a number of runnable tasks per CPU, e.g. 1.5)"
        )),
    }
}

/// Digits with at most one `.`; no sign, exponent, `inf` or `nan`.
fn plain_number(s: &str) -> Option<f64> {
    let ok = !s.is_empty()
        && s.bytes().all(|c| c.is_ascii_digit() || c == b'.')
        && s.bytes().filter(|&c| c == b'.').count() <= 1
        && s.bytes().any(|c| c.is_ascii_digit());
    if ok { s.parse().ok() } else { None }
}

pub fn fmt_number(f: f64) -> String {
    format!("{f}")
}

pub fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "yes" | "true" | "on" | "1" => Ok(true),
        "no" | "false" | "off" | "0" => Ok(false),
        _ => Err(format!(
            "invalid boolean \"{v}\" (expected yes/no/true/false/on/off/1/0)"
        )),
    }
}

pub fn fmt_bool(b: bool) -> String {
    if b { "yes" } else { "no" }.to_string()
}

/// A whole number in `lo..=hi`.
pub fn integer(v: &str, lo: u64, hi: u64) -> Result<u64, String> {
    match v.parse::<u64>() {
        Ok(n) if (lo..=hi).contains(&n) && v.bytes().all(|c| c.is_ascii_digit()) => Ok(n),
        _ => Err(format!(
            "invalid number \"{v}\" (expected a whole number from {lo} to {hi})"
        )),
    }
}

/// A command line's words, split as `sh` splits them but with no expansion at all:
/// blanks separate words; `'...'` keeps what it holds as written; `"..."` too, but
/// `\"` and `\\` in it stand for `"` and `\`; elsewhere a `\` makes the next
/// character part of the word (`\ `, `\"`, `\;`); a `;` or `#` that starts a word
/// starts a comment. `raw` is the value as written on its line.
pub fn words(raw: &str) -> Result<Vec<String>, String> {
    let unterminated =
        |q: char| format!("unterminated {q} quote (close it, or escape it as \\{q})");
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_ascii_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
                continue;
            }
            ';' | '#' if !in_word => break,
            '\'' => loop {
                match chars.next().ok_or_else(|| unterminated('\''))? {
                    '\'' => break,
                    c => word.push(c),
                }
            },
            '"' => loop {
                match chars.next().ok_or_else(|| unterminated('"'))? {
                    '"' => break,
                    '\\' => match chars.next().ok_or_else(|| unterminated('"'))? {
                        c @ ('"' | '\\') => word.push(c),
                        c => {
                            word.push('\\');
                            word.push(c);
                        }
                    },
                    c => word.push(c),
                }
            },
            '\\' => word.push(chars.next().unwrap_or('\\')),
            c => word.push(c),
        }
        in_word = true;
    }
    if in_word {
        out.push(word);
    }
    Ok(out)
}

/// `argv` as a command line that `words` splits back into `argv`: a word with a
/// blank, a quote, a backslash, `;` or `#` (or an empty one) in double quotes.
pub fn fmt_command(argv: &[String]) -> String {
    let quote = |w: &String| {
        let special = |c: char| c.is_whitespace() || matches!(c, '"' | '\'' | '\\' | ';' | '#');
        if !w.is_empty() && !w.chars().any(special) {
            return w.clone();
        }
        format!("\"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""))
    };
    argv.iter().map(quote).collect::<Vec<_>>().join(" ")
}

/// Items separated by spaces or commas.
pub fn list(v: &str) -> Vec<String> {
    v.split(|c: char| c == ',' || c.is_ascii_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

pub fn path(v: &str) -> Result<PathBuf, String> {
    if v.starts_with('/') {
        Ok(PathBuf::from(v))
    } else if v.is_empty() {
        Err("a path is required".to_string())
    } else {
        Err(format!("not an absolute path: \"{v}\""))
    }
}

pub fn fmt_path(p: &std::path::Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Edit distance, for "did you mean" hints.
pub fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// The closest candidate, if it is close enough to be a typo or a shortening
/// (`older` for `older_than`).
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|&(d, c)| d <= 2.max(c.len() / 3) || (word.len() >= 3 && c.starts_with(word)))
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c)
}
