//! A file a feature replaces whole each cycle at a path from the config (the
//! metrics file, the status file), for readers that run as other users: written
//! mode 0644 through `outputs::Output` (a temporary file renamed over it, so a
//! reader never sees half a file; a failure reported when it starts and when it
//! ends), kept open while the path stays the same, and the temporary files a
//! crash left beside it removed before the first write.

use crate::error::Error;
use crate::log::{Level, Logger};
use crate::outputs::Output;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

pub struct OutFile {
    /// The `what=` of its error lines: the config key.
    what: &'static str,
    /// The file with its health, kept while its path stays the same.
    output: Option<Output>,
    /// The path was tried (a path that cannot be used is reported once).
    opened: bool,
}

impl OutFile {
    pub const fn new(what: &'static str) -> OutFile {
        OutFile {
            what,
            output: None,
            opened: false,
        }
    }

    /// Removes the temporary files a crash left beside `path`.
    pub fn remove_stale_temps(&self, path: Option<&Path>, log: &mut Logger) {
        if let Some((dir, name)) = path.and_then(|p| Some((p.parent()?, p.file_name()?)))
            && let Err(why) = crate::files::remove_stale_temps(dir, Some(name.as_bytes()))
            && !why.is_missing()
        {
            log.error(Level::Warn, self.what, Error::file(dir, why))
                .emit();
        }
    }

    /// Replaces the file at `path` with `data`; returns whether it was written.
    pub fn write(&mut self, path: &Path, data: &[u8], log: &mut Logger) -> bool {
        if !self.opened {
            self.opened = true;
            self.output = match Output::new(self.what, path, 0o644) {
                Ok(o) => Some(o),
                Err(why) => {
                    log.error(Level::Error, self.what, Error::file(path, why))
                        .emit();
                    None
                }
            };
        }
        match &mut self.output {
            Some(file) => file.write(data, false, log),
            None => false,
        }
    }

    /// A new configuration: another path is another file (with a health of its own).
    pub fn reload(&mut self, path: Option<&Path>) {
        if self.output.as_ref().map(Output::path) != path {
            self.output = None;
            self.opened = false;
        }
    }
}
