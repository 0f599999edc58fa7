//! How each output is doing — the log file, syslog, the metrics file, each state
//! file — so that an output that starts failing is reported once, and once more
//! when it works again, with how many writes failed meanwhile; never once per cycle
//! (a missing metrics directory, a full disk, a state path that is a directory).

use crate::error::Why;
use crate::error::errno_text;
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
