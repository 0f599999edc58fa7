//! The files the agent replaces whole each time it writes them (the metrics file,
//! the state files), each with its health: written through the one safe atomic
//! replace (`files::AtomicFile`), a failure is logged once when it starts and once
//! when it ends (`health::Health`), never every cycle.

use crate::files::{AtomicFile, Why};
use crate::health::Health;
use crate::log::Logger;
use std::path::Path;

/// A file the agent replaces whole (the metrics file, a state file), with its
/// health: `what` is the `what=` of its error lines.
pub struct Output {
    what: &'static str,
    file: AtomicFile,
    health: Health,
}

impl Output {
    pub fn new(what: &'static str, path: &Path, mode: libc::mode_t) -> Result<Output, Why> {
        Ok(Output {
            what,
            file: AtomicFile::new(path, mode)?,
            health: Health::new(path, "failed"),
        })
    }

    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// Replaces the file with `data` (fsync'd when `sync`); a failure is reported
    /// when it starts, and the recovery when it ends. Returns whether it worked.
    pub fn write(&mut self, data: &[u8], sync: bool, log: &mut Logger) -> bool {
        let problem = match self.file.write(data, sync) {
            Ok(()) => self.health.delivered(),
            Err(why) => self.health.lose_why(&why),
        };
        if let Some(p) = &problem {
            log.report(self.what, p);
        }
        !self.health.failing()
    }
}

/// The outputs of one kind (the state files), found by path and made on first use,
/// so each keeps its health from one write to the next.
pub struct Outputs {
    what: &'static str,
    mode: libc::mode_t,
    list: Vec<Output>,
}

impl Outputs {
    pub fn new(what: &'static str, mode: libc::mode_t) -> Outputs {
        Outputs {
            what,
            mode,
            list: Vec::new(),
        }
    }

    /// Replaces the file at `path` with `data` (see `Output::write`).
    pub fn write(&mut self, path: &Path, data: &[u8], sync: bool, log: &mut Logger) -> bool {
        let i = match self.list.iter().position(|o| o.path() == path) {
            Some(i) => i,
            None => match Output::new(self.what, path, self.mode) {
                Ok(o) => {
                    self.list.push(o);
                    self.list.len() - 1
                }
                Err(why) => {
                    let err = crate::error::Error::file(path, why);
                    log.error(crate::log::Level::Error, self.what, err).emit();
                    return false;
                }
            },
        };
        self.list[i].write(data, sync, log)
    }
}
