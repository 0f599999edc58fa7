//! system-agent: a small host agent that samples /proc, judges thresholds with
//! hysteresis, logs in logfmt to a file and syslog, and (in later steps) heals.
//!
//! Layers, kept apart:
//! - **parsing** (pure, on bytes): `procfs`, `passwd`, `config`, `state` formats;
//! - **policy** (pure, on plain values): `policy`, `report`;
//! - **effects** (thin, each logged): `sys`, `sample`, `scan`, `log`, `state` files,
//!   driven by `agent`, which runs one cycle:
//!
//! ```text
//! wake (poll on the signal pipe, timeout = time to the next cycle)
//!  → sample /proc and statvfs → judge (levels, for_cycles hysteresis)
//!  → alert / recovered events → sample event → top processes if cpu/mem ≥ warn
//!  → [reaper, cleanup, audit, tasks, alert delivery: their own issues]
//!  → metrics file → state_dir
//! ```

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
pub mod alerts;
pub mod audit;
pub mod child;
pub mod cleanup;
pub mod cli;
pub mod config;
pub mod effects;
pub mod error;
pub mod escape;
pub mod features;
pub mod files;
pub mod glob;
pub mod health;
pub mod judge;
pub mod log;
pub mod mounts;
pub mod ownproc;
pub mod passwd;
pub mod policy;
pub mod procfs;
pub mod reading;
pub mod reaper;
pub mod report;
pub mod sample;
pub mod scan;
pub mod signals;
pub mod state;
pub mod store;
pub mod sys;
pub mod timefmt;
