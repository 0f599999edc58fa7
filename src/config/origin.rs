//! Where a configuration came from: the drop-ins read after the main file (with the
//! owner and mode each had when read, which decide whether the agent may keep its
//! capabilities) and where each key's value was set, which `--check-config` prints
//! above the key. It is not part of the configuration's value: two configurations
//! with the same values are equal (`==`) wherever they were read from, and a reload
//! that only moves a key to another file changes nothing.

use super::{Config, Setting, needs_quotes};
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where one key's value was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of a file.
    Line(PathBuf, usize),
    /// A command-line option (`--dry-run`).
    Option(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Line(path, line) => write!(f, "{}:{line}", escaped(path)),
            Origin::Option(option) => f.write_str(option),
        }
    }
}

/// A file or directory read, with what `fstat` said of the descriptor read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub path: PathBuf,
    pub uid: u32,
    pub mode: u32,
}

impl Source {
    pub fn of(path: &Path, st: &libc::stat) -> Source {
        Source {
            path: path.to_path_buf(),
            uid: st.st_uid,
            mode: st.st_mode,
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct Origins {
    /// The drop-in directory, when there is one, then each drop-in read, in order.
    pub dropins: Vec<Source>,
    /// (section, key, where): the last place each key was set.
    set: Vec<(String, &'static str, Origin)>,
}

impl PartialEq for Origins {
    /// Always: where values came from is not part of a configuration's value.
    fn eq(&self, _: &Origins) -> bool {
        true
    }
}

impl Origins {
    /// `section.key` was set at `origin`, over wherever it was set before.
    pub fn set(&mut self, section: &str, key: &'static str, origin: Origin) {
        match self
            .set
            .iter_mut()
            .find(|(s, k, _)| s == section && *k == key)
        {
            Some(slot) => slot.2 = origin,
            None => self.set.push((section.to_string(), key, origin)),
        }
    }

    /// Where `section.key` was last set; `None`: it has its default.
    pub fn of(&self, section: &str, key: &str) -> Option<&Origin> {
        self.set
            .iter()
            .find(|(s, k, _)| s == section && *k == key)
            .map(|(_, _, o)| o)
    }
}

impl Config {
    /// Every file read and the drop-in directory, with owner uid and mode as read:
    /// the main file (when there was one) first, then the directory and each
    /// drop-in. The agent keeps its capabilities only when all are root's and
    /// writable by no one else.
    pub fn sources(&self) -> Vec<(&Path, Option<(u32, u32)>)> {
        let main = self.file.as_deref().map(|p| (p, self.file_owner));
        let dropins = self.origins.dropins.iter();
        main.into_iter()
            .chain(dropins.map(|s| (s.path.as_path(), Some((s.uid, s.mode)))))
            .collect()
    }

    /// The effective configuration as `to_ini` prints it, each key after a comment
    /// saying where it was set (`; from FILE:LINE`, `; from --dry-run`) or that
    /// it has its default (`; default`), after one `; drop-in FILE` line per
    /// drop-in read. Comments on lines of their own, so it reads back the same.
    pub fn to_ini_with_origins(&self) -> String {
        self.render_ini(true)
    }

    /// The effective configuration as INI text, with each key's origin when
    /// `origins` (see `to_ini_with_origins`).
    pub(super) fn render_ini(&self, origins: bool) -> String {
        let mut out = String::new();
        if origins {
            for s in self.origins.dropins.iter().skip(1) {
                out.push_str(&format!("; drop-in {}\n", escaped(&s.path)));
            }
        }
        let mut current = String::new();
        for s in self.settings() {
            if s.section != current {
                if !current.is_empty() {
                    out.push('\n');
                }
                out.push_str(&format!("[{}]\n", s.section));
                current = s.section.clone();
            }
            if origins {
                match self.origins.of(&s.section, s.key) {
                    Some(origin) => out.push_str(&format!("; from {origin}\n")),
                    None => out.push_str("; default\n"),
                }
            }
            out.push_str(&setting_line(&s));
        }
        out
    }
}

/// `key = value` and a newline, quoted when the value would not read back the same.
pub(super) fn setting_line(s: &Setting) -> String {
    let (key, value) = (s.key, &s.value);
    if value.is_empty() {
        format!("{key} =\n")
    } else if needs_quotes(value) && !s.verbatim {
        format!("{key} = \"{value}\"\n")
    } else {
        format!("{key} = {value}\n")
    }
}

/// A path as a comment may hold it: escaped as log values are, so that a newline
/// in a name cannot end the comment.
fn escaped(path: &Path) -> String {
    let mut out = String::new();
    crate::escape::json_body(&mut out, path.as_os_str().as_bytes());
    out
}
