//! The kinds of values keys declare: each binds a parser of `value` to its range
//! and message and to the printer that writes the value back, so that a key's
//! declaration names its kind once and reading, printing and the reference follow.

use super::table::{Kind, Written};
use super::{Facility, value};
use crate::glob::Glob;
use crate::log::Level;
use std::path::PathBuf;
use std::time::Duration;

/// A duration: `500ms 30s 5m 2h 7d`.
pub struct Time;

impl Kind<Duration> for Time {
    fn read(&self, w: Written) -> Result<Duration, String> {
        value::duration(w.value)
    }

    fn print(&self, d: &Duration) -> String {
        value::fmt_duration(*d)
    }
}

/// A duration from `.0` to `.1` (both written as a user would).
pub struct TimeIn(pub &'static str, pub &'static str);

impl Kind<Duration> for TimeIn {
    fn read(&self, w: Written) -> Result<Duration, String> {
        let d = value::duration(w.value)?;
        match (value::duration(self.0), value::duration(self.1)) {
            (Ok(lo), Ok(hi)) if lo <= d && d <= hi => Ok(d),
            _ => Err(format!(
                "{} \"{}\" out of range (expected {} to {})",
                w.key, w.value, self.0, self.1
            )),
        }
    }

    fn print(&self, d: &Duration) -> String {
        Time.print(d)
    }
}

/// A duration of more than 0 (a deadline).
pub struct TimeOver0;

impl Kind<Duration> for TimeOver0 {
    fn read(&self, w: Written) -> Result<Duration, String> {
        match value::duration(w.value)? {
            d if d.is_zero() => Err(format!(
                "invalid duration \"{}\" (must be more than 0)",
                w.value
            )),
            d => Ok(d),
        }
    }

    fn print(&self, d: &Duration) -> String {
        Time.print(d)
    }
}

/// A size of more than 0: `512K 100M 2G`.
pub struct BytesOver0;

impl Kind<u64> for BytesOver0 {
    fn read(&self, w: Written) -> Result<u64, String> {
        match value::size(w.value)? {
            0 => Err(format!(
                "invalid size \"{}\" (must be more than 0)",
                w.value
            )),
            n => Ok(n),
        }
    }

    fn print(&self, n: &u64) -> String {
        value::fmt_size(*n)
    }
}

/// `yes`/`no` and their synonyms.
pub struct Flag;

impl Kind<bool> for Flag {
    fn read(&self, w: Written) -> Result<bool, String> {
        value::boolean(w.value)
    }

    fn print(&self, b: &bool) -> String {
        value::fmt_bool(*b)
    }
}

/// A whole number from `.0` to `.1`.
pub struct Int(pub u32, pub u32);

impl Kind<u32> for Int {
    fn read(&self, w: Written) -> Result<u32, String> {
        value::integer(w.value, self.0.into(), self.1.into()).map(|n| n as u32)
    }

    fn print(&self, n: &u32) -> String {
        n.to_string()
    }
}

/// A nice value, `-20` to `19`.
pub struct Nice;

impl Kind<i32> for Nice {
    fn read(&self, w: Written) -> Result<i32, String> {
        match w.value.parse::<i32>() {
            Ok(n) if (-20..=19).contains(&n) => Ok(n),
            _ => Err(format!("invalid nice \"{}\" (expected -20 to 19)", w.value)),
        }
    }

    fn print(&self, n: &i32) -> String {
        n.to_string()
    }
}

/// An octal file mode creation mask: `027`, `0022`, `7` (at most `777`).
pub struct Umask;

impl Kind<u32> for Umask {
    fn read(&self, w: Written) -> Result<u32, String> {
        let v = w.value;
        let octal = !v.is_empty() && v.len() <= 4 && v.bytes().all(|c| (b'0'..=b'7').contains(&c));
        match u32::from_str_radix(v, 8) {
            Ok(m) if octal && m <= 0o777 => Ok(m),
            _ => Err(format!(
                "invalid umask \"{v}\" (expected octal digits up to 777, e.g. 027)"
            )),
        }
    }

    fn print(&self, m: &u32) -> String {
        format!("{m:03o}")
    }
}

/// `0`–`100`, decimals allowed, optional `%`.
pub struct Percent;

impl Kind<f64> for Percent {
    fn read(&self, w: Written) -> Result<f64, String> {
        value::percent(w.value)
    }

    fn print(&self, p: &f64) -> String {
        value::fmt_number(*p)
    }
}

/// A load average per CPU, such as `1.5`.
pub struct Load;

impl Kind<f64> for Load {
    fn read(&self, w: Written) -> Result<f64, String> {
        value::load(w.value)
    }

    fn print(&self, l: &f64) -> String {
        value::fmt_number(*l)
    }
}

/// A value that must be given (its kind reads an empty one), kept as `Some`.
pub struct Required<K>(pub K);

impl<T, K: Kind<T>> Kind<Option<T>> for Required<K> {
    fn read(&self, w: Written) -> Result<Option<T>, String> {
        self.0.read(w).map(Some)
    }

    fn print(&self, v: &Option<T>) -> String {
        v.as_ref().map(|v| self.0.print(v)).unwrap_or_default()
    }
}

/// A value, or empty for none.
pub struct Optional<K>(pub K);

impl<T, K: Kind<T>> Kind<Option<T>> for Optional<K> {
    fn read(&self, w: Written) -> Result<Option<T>, String> {
        if w.value.is_empty() {
            Ok(None)
        } else {
            self.0.read(w).map(Some)
        }
    }

    fn print(&self, v: &Option<T>) -> String {
        v.as_ref().map(|v| self.0.print(v)).unwrap_or_default()
    }
}

/// Any text, as written.
pub struct Text;

impl Kind<String> for Text {
    fn read(&self, w: Written) -> Result<String, String> {
        Ok(w.value.to_string())
    }

    fn print(&self, s: &String) -> String {
        s.clone()
    }
}

/// Words separated by spaces or commas.
pub struct Words;

impl Kind<Vec<String>> for Words {
    fn read(&self, w: Written) -> Result<Vec<String>, String> {
        Ok(value::list(w.value))
    }

    fn print(&self, words: &Vec<String>) -> String {
        words.join(" ")
    }
}

/// An absolute path.
pub struct AbsPath;

impl Kind<PathBuf> for AbsPath {
    fn read(&self, w: Written) -> Result<PathBuf, String> {
        value::path(w.value)
    }

    fn print(&self, p: &PathBuf) -> String {
        value::fmt_path(p)
    }
}

/// Absolute paths separated by spaces or commas; empty: none.
pub struct AbsPaths;

impl Kind<Vec<PathBuf>> for AbsPaths {
    fn read(&self, w: Written) -> Result<Vec<PathBuf>, String> {
        value::list(w.value)
            .iter()
            .map(|p| value::path(p))
            .collect()
    }

    fn print(&self, paths: &Vec<PathBuf>) -> String {
        let paths: Vec<String> = paths.iter().map(|p| value::fmt_path(p)).collect();
        paths.join(" ")
    }
}

/// One glob, as written.
pub struct Pattern;

impl Kind<Glob> for Pattern {
    fn read(&self, w: Written) -> Result<Glob, String> {
        Ok(Glob::new(w.value))
    }

    fn print(&self, g: &Glob) -> String {
        g.as_str().to_string()
    }
}

/// Globs separated by spaces or commas; empty: none.
pub struct Globs;

impl Kind<Vec<Glob>> for Globs {
    fn read(&self, w: Written) -> Result<Vec<Glob>, String> {
        Ok(value::list(w.value).iter().map(|g| Glob::new(g)).collect())
    }

    fn print(&self, globs: &Vec<Glob>) -> String {
        let globs: Vec<&str> = globs.iter().map(Glob::as_str).collect();
        globs.join(" ")
    }
}

/// At least one glob (a rule that matches nothing is a typo).
pub struct SomeGlobs;

impl Kind<Vec<Glob>> for SomeGlobs {
    fn read(&self, w: Written) -> Result<Vec<Glob>, String> {
        match Globs.read(w)? {
            g if g.is_empty() => Err("at least one glob is required (* for any)".to_string()),
            g => Ok(g),
        }
    }

    fn print(&self, globs: &Vec<Glob>) -> String {
        Globs.print(globs)
    }
}

/// A command line, as written: an absolute program path and its arguments, split
/// into words by `value::words` (quotes and backslashes as in sh, no shell).
pub struct Command;

impl Kind<Vec<String>> for Command {
    const VERBATIM: bool = true;

    fn read(&self, w: Written) -> Result<Vec<String>, String> {
        let argv = value::words(w.raw)?;
        match argv.first() {
            None => Err("a command is required".to_string()),
            Some(p) if !p.starts_with('/') => {
                Err(format!("the program must be an absolute path: \"{p}\""))
            }
            Some(_) => Ok(argv),
        }
    }

    fn print(&self, argv: &Vec<String>) -> String {
        value::fmt_command(argv)
    }
}

/// A command line, or empty for none.
pub struct MaybeCommand;

impl Kind<Vec<String>> for MaybeCommand {
    const VERBATIM: bool = true;

    fn read(&self, w: Written) -> Result<Vec<String>, String> {
        if w.value.is_empty() {
            Ok(Vec::new())
        } else {
            Command.read(w)
        }
    }

    fn print(&self, argv: &Vec<String>) -> String {
        Command.print(argv)
    }
}

/// One of a few words, each standing for a `T` (`ALL` of the enum).
pub struct Choice<T: 'static> {
    /// What the message calls the value: `invalid scope "host"`.
    pub what: &'static str,
    pub names: &'static [(T, &'static str)],
}

impl<T: Copy + PartialEq> Choice<T> {
    fn find(&self, word: &str) -> Result<T, String> {
        match self.names.iter().find(|(_, n)| *n == word) {
            Some((t, _)) => Ok(*t),
            None => Err(format!(
                "invalid {} \"{word}\" (expected {})",
                self.what,
                self.expected()
            )),
        }
    }

    /// `a, b or c`.
    fn expected(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(|(_, n)| *n).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }

    fn name(&self, t: &T) -> &'static str {
        self.names
            .iter()
            .find(|(n, _)| n == t)
            .map_or("?", |(_, name)| name)
    }
}

impl<T: Copy + PartialEq> Kind<T> for Choice<T> {
    fn read(&self, w: Written) -> Result<T, String> {
        self.find(w.value)
    }

    fn print(&self, t: &T) -> String {
        self.name(t).to_string()
    }
}

/// Any number of `Choice` words, separated by spaces or commas.
pub struct Choices<T: 'static>(pub Choice<T>);

impl<T: Copy + PartialEq> Kind<Vec<T>> for Choices<T> {
    fn read(&self, w: Written) -> Result<Vec<T>, String> {
        value::list(w.value)
            .iter()
            .map(|w| self.0.find(w))
            .collect()
    }

    fn print(&self, ts: &Vec<T>) -> String {
        let names: Vec<&str> = ts.iter().map(|t| self.0.name(t)).collect();
        names.join(" ")
    }
}

/// `debug info warn error`, any case.
pub struct LogLevel;

impl Kind<Level> for LogLevel {
    fn read(&self, w: Written) -> Result<Level, String> {
        Level::parse(w.value)
    }

    fn print(&self, l: &Level) -> String {
        l.name().to_string()
    }
}

/// A syslog facility: `daemon`, `LOG_LOCAL0`, any case.
pub struct SyslogFacility;

impl Kind<Facility> for SyslogFacility {
    fn read(&self, w: Written) -> Result<Facility, String> {
        Facility::parse(w.value)
    }

    fn print(&self, f: &Facility) -> String {
        f.name.to_string()
    }
}
