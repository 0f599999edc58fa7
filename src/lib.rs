//! system-agent: a small host agent that samples /proc, judges thresholds with
//! hysteresis, logs in logfmt to a file and syslog, and heals (cleanup, reaper,
//! idle-time tasks), audits shell histories and mails alerts.
//!
//! Layers, kept apart:
//! - **parsing** (pure, on bytes): `procfs`, `passwd`, `config`, the state file
//!   formats (`state`, each feature's records);
//! - **policy** (pure, on plain values and a clock): `judge`, `forecast`,
//!   `policy`, `report`, and each feature's decisions
//!   (`features::tasks::schedule`, `features::reaper::plan`,
//!   `features::alerts::decide`, ...);
//! - **effects** (thin, each logged): reading the host (`sample`, `mounts`,
//!   `cgroup`, `scan`), `log`, `store` (state_dir), `effects` (signal, unlink, spawn; the
//!   one place dry run is decided), `notify` (what the service tells systemd),
//!   and `sys`, the only module with `unsafe`.
//!
//! The agent (`agent`) runs one cycle (`Agent::cycle`), the same in the service
//! loop and in a `--once` run:
//!
//! ```text
//! wake (poll on the signal pipe, children and a PSI trigger, timeout = time to
//!       the next cycle or to a feature's deadline)
//!  → sample /proc and statvfs into the Reading → judge (levels, hysteresis)
//!  → alert / recovered events → sample event
//!  → top → relief → reaper → cleanup → deleted-open files → audit → tasks
//!  → alerts → metrics file → status file → state_dir
//! ```
//!
//! Each step after the sample line is a feature that owns its state
//! (`features`, which says how one is added).

#![deny(unsafe_code)]

/// Writes a line to stdout or stderr, ignoring failure: `println!` panics when the
/// stream is closed (`>&-` in a cron line), and nothing may panic on outside input.
macro_rules! out {
    ($($arg:tt)*) => {{ use std::io::Write as _; let _ = writeln!(std::io::stdout(), $($arg)*); }};
}
macro_rules! out_raw {
    ($($arg:tt)*) => {{ use std::io::Write as _; let _ = write!(std::io::stdout(), $($arg)*); }};
}
macro_rules! err {
    ($($arg:tt)*) => {{ use std::io::Write as _; let _ = writeln!(std::io::stderr(), $($arg)*); }};
}

pub mod agent;
pub mod cgroup;
pub mod child;
pub mod cli;
pub mod config;
pub mod effects;
pub mod error;
pub mod escape;
pub mod features;
pub mod files;
pub mod forecast;
pub mod glob;
pub mod health;
pub mod judge;
pub mod log;
pub mod mounts;
pub mod notify;
pub mod outputs;
pub mod ownproc;
pub mod passwd;
pub mod policy;
pub mod procfs;
pub mod reading;
pub mod report;
pub mod sample;
pub mod scan;
pub mod signals;
pub mod state;
pub mod store;
pub mod sys;
pub mod timefmt;
