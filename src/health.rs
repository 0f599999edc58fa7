//! How each output is doing — the log file, syslog, the metrics file, each state
//! file — so that an output that starts failing is reported once, and once more
//! when it works again, with how many writes failed meanwhile; never once per cycle
//! (a missing metrics directory, a full disk, a state path that is a directory).

use crate::error::errno_text;
use crate::files::{AtomicFile, Why};
use crate::log::Logger;
use std::path::{Path, PathBuf};

/// A change of an output's health, to report once.
#[derive(Debug)]
pub enum Problem {
    Failed {
        target: PathBuf,
        /// The errno, when a system call failed (rather than a refusal).
        errno: Option<i32>,
        error: String,
    },
    Recovered {
        target: PathBuf,
        /// Writes (log lines, file replacements) lost while it failed.
        count: u64,
        /// The field that carries `count`: `lost` (log lines) or `failed` (files).
        unit: &'static str,
    },
}

/// Failing or not, what was lost meanwhile, and the change not yet reported.
pub struct Health {
    target: PathBuf,
    unit: &'static str,
    failing: bool,
    count: u64,
    pending: Option<Problem>,
}

impl Health {
    /// `unit` names the count in the recovery line (`lost` or `failed`).
    pub fn new(target: &Path, unit: &'static str) -> Health {
        Health {
            target: target.to_path_buf(),
            unit,
            failing: false,
            count: 0,
            pending: None,
        }
    }

    pub fn failing(&self) -> bool {
        self.failing
    }

    /// The output fails: the first failure of an episode is kept to be reported
    /// (`error` is only built then).
    pub fn fail_with(&mut self, errno: Option<i32>, error: impl FnOnce() -> String) {
        if !self.failing {
            self.failing = true;
            self.pending = Some(Problem::Failed {
                target: self.target.clone(),
                errno,
                error: error(),
            });
        }
    }

    pub fn fail_io(&mut self, err: &std::io::Error) {
        self.fail_with(err.raw_os_error(), || errno_text(err));
    }

    pub fn fail_why(&mut self, why: &Why) {
        self.fail_with(why.errno().and_then(|e| e.raw_os_error()), || {
            why.to_string()
        });
    }

    /// A write was not delivered (counted) without a new reason.
    pub fn count_lost(&mut self) {
        self.count += 1;
    }

    /// A write could not be delivered: the failure to report, if it is new.
    pub fn lose_io(&mut self, err: &std::io::Error) -> Option<Problem> {
        self.count += 1;
        self.fail_io(err);
        self.pending.take()
    }

    pub fn lose_why(&mut self, why: &Why) -> Option<Problem> {
        self.count += 1;
        self.fail_why(why);
        self.pending.take()
    }

    /// A write was delivered: the recovery to report, if it was failing.
    pub fn delivered(&mut self) -> Option<Problem> {
        if !self.failing {
            return None;
        }
        self.failing = false;
        self.pending = None;
        Some(Problem::Recovered {
            target: self.target.clone(),
            count: std::mem::take(&mut self.count),
            unit: self.unit,
        })
    }

    /// The change not yet reported, if any.
    pub fn take(&mut self) -> Option<Problem> {
        self.pending.take()
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_and_a_recovery_are_each_reported_once() {
        let mut h = Health::new(Path::new("/x/m.prom"), "failed");
        let e = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert!(matches!(
            h.lose_io(&e),
            Some(Problem::Failed { errno: Some(libc::ENOENT), ref error, .. }) if error == "No such file or directory"
        ));
        for _ in 0..27 {
            assert!(h.lose_io(&e).is_none());
        }
        assert!(matches!(
            h.delivered(),
            Some(Problem::Recovered {
                count: 28,
                unit: "failed",
                ..
            })
        ));
        assert!(h.delivered().is_none());
        assert!(h.lose_io(&e).is_some(), "a new episode is reported again");
    }
}
