//! Reading the configuration from disk: the main file, then every `*.ini` of its
//! drop-in directory (`/etc/aion/system_agent.d/` for `/etc/aion/system_agent.ini`)
//! in byte order of name, so configuration management can add one file per
//! application instead of editing one shared file. A later file sets a key again
//! (its value wins) or continues a section; the merge itself is `build`'s.
//!
//! Every file, and the directory listing, is read by `files`: with the caller's own
//! rights (no capability in effect), without blocking (a FIFO is refused, not
//! waited on), only regular files of at most 1 MiB; so no error can quote a file
//! the caller could not read themselves. Each file's owner and mode are kept as
//! read, for the capability check.

use super::origin::Source;
use super::source::{self, Layer};
use super::{Config, ConfigError, build};
use crate::files;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The drop-in directory of the main file `main`: its path without `.ini`, then
/// `.d` (`/etc/aion/system_agent.d`; `/x/agent.conf.d` for `/x/agent.conf`).
pub fn dropin_dir(main: &Path) -> PathBuf {
    let name = main.as_os_str().as_bytes();
    let stem = name.strip_suffix(b".ini").unwrap_or(name);
    PathBuf::from(OsStr::from_bytes(&[stem, b".d"].concat()))
}

/// A drop-in: a name ending in `.ini`, not hidden (an editor's `.#a.ini` lock, a
/// half-written `.a.ini` of a tool that renames into place).
fn is_dropin(name: &[u8]) -> bool {
    name.ends_with(b".ini") && !name.starts_with(b".")
}

impl Config {
    /// Reads and validates `path` and its drop-ins. With `must_exist` false, a
    /// missing main file stands for the built-in defaults (the default path on a
    /// host that has no config yet), which its drop-ins, if any, then change.
    /// Every error of every file at once.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, Vec<ConfigError>> {
        let mut buf = Vec::new();
        let mut layers = Vec::new();
        let mut errors = Vec::new();
        let main = match files::read_config(path, &mut buf) {
            Ok(stat) => {
                read_layer(path, &buf, &mut layers, &mut errors);
                Some(stat)
            }
            Err(why) if why.is_missing() && !must_exist => None,
            Err(why) => return Err(vec![cannot_read(path, &why)]),
        };
        let dropins = read_dropins(&dropin_dir(path), &mut layers, &mut errors);
        if !errors.is_empty() {
            return Err(errors);
        }
        let mut cfg = build::build(&layers)?;
        cfg.file = main.map(|_| path.to_path_buf());
        cfg.file_owner = main.map(|st| (st.st_uid, st.st_mode));
        cfg.origins.dropins = dropins;
        Ok(cfg)
    }
}

/// Reads each drop-in of `dir` into `layers`: the directory's `Source`, then each
/// file's, in order. No directory: none.
fn read_dropins(dir: &Path, layers: &mut Vec<Layer>, errors: &mut Vec<ConfigError>) -> Vec<Source> {
    let listed = match files::open_config_dir(dir, is_dropin) {
        Ok(listed) => listed,
        Err(why) if why.is_missing() => return Vec::new(),
        Err(why) => {
            errors.push(cannot_read(dir, &why));
            return Vec::new();
        }
    };
    let mut sources = vec![Source::of(dir, &listed.stat)];
    let mut buf = Vec::new();
    for name in &listed.names {
        let path = dir.join(OsStr::from_bytes(name));
        match listed.read(name, &mut buf) {
            Ok(stat) => {
                sources.push(Source::of(&path, &stat));
                read_layer(&path, &buf, layers, errors);
            }
            Err(why) => errors.push(cannot_read(&path, &why)),
        }
    }
    sources
}

fn cannot_read(path: &Path, why: &files::Why) -> ConfigError {
    ConfigError::at(path, 0, "", &format!("cannot read: {why}"))
}

/// One file's text, split into sections and entries, or its errors.
fn read_layer(path: &Path, bytes: &[u8], layers: &mut Vec<Layer>, errors: &mut Vec<ConfigError>) {
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let line = 1 + valid.iter().filter(|&&c| c == b'\n').count();
            errors.push(ConfigError::at(path, line, "", "not valid UTF-8"));
            return;
        }
    };
    match source::parse(path, text) {
        Ok(sections) => layers.push(Layer {
            path: path.to_path_buf(),
            sections,
        }),
        Err(e) => errors.extend(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dropin_directory_is_the_main_file_without_ini_then_d() {
        let d = |p: &str| dropin_dir(Path::new(p)).display().to_string();
        assert_eq!(d("/etc/aion/system_agent.ini"), "/etc/aion/system_agent.d");
        assert_eq!(d("/x/agent.conf"), "/x/agent.conf.d");
        assert_eq!(d("/x/a.ini.ini"), "/x/a.ini.d");
    }

    #[test]
    fn dropins_are_visible_ini_files() {
        for (name, want) in [
            ("10-app.ini", true),
            ("a b.ini", true),
            ("x.ini~", false),
            ("x.ini.dpkg-old", false),
            ("x.conf", false),
            (".#x.ini", false),
            (".x.ini", false),
            ("ini", false),
        ] {
            assert_eq!(is_dropin(name.as_bytes()), want, "{name}");
        }
    }
}
