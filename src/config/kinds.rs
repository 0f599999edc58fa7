//! The kinds of values keys declare: each binds a parser of `value` to its range
//! and message and to the printer that writes the value back, so that a key's
//! declaration names its kind once and reading, printing and the reference follow.

use super::table::{Kind, Written};
use super::{Facility, value};
use crate::glob::Glob;
use crate::log::Level;
use crate::reading::mount_label;
use std::path::PathBuf;
use std::time::Duration;

/// Declares kinds that are unit structs: `Name: T = |w| read, |v| print;`.
macro_rules! kinds {
    ($($(#[$doc:meta])* $K:ident: $T:ty = |$w:ident| $read:expr, |$v:ident| $print:expr;)*) => {
        $(
            $(#[$doc])*
            pub struct $K;

            impl Kind<$T> for $K {
                fn read(&self, $w: Written) -> Result<$T, String> {
                    $read
                }

                fn print(&self, $v: &$T) -> String {
                    $print
                }
            }
        )*
    };
}

kinds! {
    /// A duration: `500ms 30s 5m 2h 7d`.
    Time: Duration = |w| value::duration(w.value), |d| value::fmt_duration(*d);

    /// A duration of more than 0 (a deadline).
    TimeOver0: Duration = |w| match value::duration(w.value)? {
        d if d.is_zero() => Err(format!("invalid duration \"{}\" (must be more than 0)", w.value)),
        d => Ok(d),
    }, |d| value::fmt_duration(*d);

    /// A size of more than 0: `512K 100M 2G`.
    BytesOver0: u64 = |w| match value::size(w.value)? {
        0 => Err(format!("invalid size \"{}\" (must be more than 0)", w.value)),
        n => Ok(n),
    }, |n| value::fmt_size(*n);

    /// `yes`/`no` and their synonyms.
    Flag: bool = |w| value::boolean(w.value), |b| value::fmt_bool(*b);

    /// A nice value, `-20` to `19`.
    Nice: i32 = |w| match w.value.parse::<i32>() {
        Ok(n) if (-20..=19).contains(&n) => Ok(n),
        _ => Err(format!("invalid nice \"{}\" (expected -20 to 19)", w.value)),
    }, |n| n.to_string();

    /// An octal file mode creation mask: `027`, `0022`, `7` (at most `777`).
    Umask: u32 = |w| umask(w.value), |m| format!("{m:03o}");

    /// `0`–`100`, decimals allowed, optional `%`.
    Percent: f64 = |w| value::percent(w.value), |p| value::fmt_number(*p);

    /// A duration as seconds (a limit compared with a time in seconds): `6h`.
    Seconds: f64 = |w| value::duration(w.value).map(|d| d.as_secs_f64()),
        |s| value::fmt_duration(Duration::from_secs_f64(*s));

    /// A load average per CPU, such as `1.5`.
    Load: f64 = |w| value::load(w.value), |l| value::fmt_number(*l);

    /// Any text, as written.
    Text: String = |w| Ok(w.value.to_string()), |s| s.clone();

    /// Words separated by spaces or commas.
    Words: Vec<String> = |w| Ok(value::list(w.value)), |words| words.join(" ");

    /// An absolute path.
    AbsPath: PathBuf = |w| value::path(w.value), |p| value::fmt_path(p);

    /// Absolute paths separated by spaces or commas; empty: none.
    AbsPaths: Vec<PathBuf> = |w| value::list(w.value).iter().map(|p| value::path(p)).collect(),
        |paths| paths.iter().map(|p| value::fmt_path(p)).collect::<Vec<_>>().join(" ");

    /// Watched mounts: absolute paths, each with a label of its own (see `distinct`).
    Mounts: Vec<PathBuf> = |w| distinct(AbsPaths.read(w)?), |paths| AbsPaths.print(paths);

    /// One glob, as written.
    Pattern: Glob = |w| Ok(Glob::new(w.value)), |g| g.as_str().to_string();

    /// Globs separated by spaces or commas; empty: none.
    Globs: Vec<Glob> = |w| Ok(value::list(w.value).iter().map(|g| Glob::new(g)).collect()),
        |globs| globs.iter().map(Glob::as_str).collect::<Vec<_>>().join(" ");

    /// At least one glob (a rule that matches nothing is a typo).
    SomeGlobs: Vec<Glob> = |w| match Globs.read(w)? {
        g if g.is_empty() => Err("at least one glob is required (* for any)".to_string()),
        g => Ok(g),
    }, |globs| Globs.print(globs);

    /// `debug info warn error`, any case.
    LogLevel: Level = |w| Level::parse(w.value), |l| l.name().to_string();

    /// A syslog facility: `daemon`, `LOG_LOCAL0`, any case.
    SyslogFacility: Facility = |w| Facility::parse(w.value), |f| f.name.to_string();
}

/// Mounts whose labels differ: the label (`/var/log` → `var_log`) names the mount in
/// perfdata (`disk_var_log`) and in the `sample` line, so two mounts that share one
/// (`/x/a_b` and `/x/a-b`, or one listed twice) would be told apart nowhere.
fn distinct(mounts: Vec<PathBuf>) -> Result<Vec<PathBuf>, String> {
    for (i, m) in mounts.iter().enumerate() {
        let label = mount_label(m);
        if let Some(other) = mounts[..i].iter().find(|o| mount_label(o) == label) {
            return Err(format!(
                "{} and {} would share the label {label} (disk_{label} in perfdata and the \
                 sample line): watch only one of them",
                value::fmt_path(other),
                value::fmt_path(m),
            ));
        }
    }
    Ok(mounts)
}

/// An octal umask of at most 4 digits, up to `777`.
fn umask(v: &str) -> Result<u32, String> {
    let octal = !v.is_empty() && v.len() <= 4 && v.bytes().all(|c| (b'0'..=b'7').contains(&c));
    match u32::from_str_radix(v, 8) {
        Ok(m) if octal && m <= 0o777 => Ok(m),
        _ => Err(format!(
            "invalid umask \"{v}\" (expected octal digits up to 777, e.g. 027)"
        )),
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
}

impl<T: Copy + PartialEq> Kind<T> for Choice<T> {
    fn read(&self, w: Written) -> Result<T, String> {
        self.find(w.value)
    }

    fn print(&self, t: &T) -> String {
        super::word(self.names, t).to_string()
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
        let names: Vec<&str> = ts.iter().map(|t| super::word(self.0.names, t)).collect();
        names.join(" ")
    }
}
