//! The command line and the one exit point: argv → run → exit code.
//!
//! Exit codes. Service: 0 after SIGTERM/SIGINT, 78 (EX_CONFIG) for an invalid config,
//! 1 for any other start-up failure. `--once` and `--status`: 0 OK, 1 WARNING,
//! 2 CRITICAL, 3 UNKNOWN (including an invalid config or command line).
//! `--check-config`: 0 valid, 78 invalid.

use crate::agent::{Agent, Options};
use crate::config::{Config, DEFAULT_PATH};
use crate::log::Level;
use crate::signals::Signals;
use std::path::PathBuf;
use std::process::ExitCode;

pub const EX_CONFIG: u8 = 78;

const USAGE: &str = "\
usage: system-agent [-c PATH | --config PATH] [--once] [--dry-run] [--check-config] [--log-level LEVEL]
       system-agent --status [FILE]
       system-agent --version | --help

  -c, --config PATH    configuration file (default /etc/aion/system_agent.ini;
                       when that file is missing, built-in defaults are used)
  --once               run one cycle, print a Nagios status line, exit
                       0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN
  --dry-run            decide and log every action, perform none
  --check-config       validate, print the effective configuration, exit 0 (or 78)
  --log-level LEVEL    debug, info, warn or error (overrides [agent] log_level)
  --status [FILE]      print the running service's last status line from its
                       status file (default /var/lib/aion/system_agent.status)
                       and exit with its state; CRITICAL when it is older than
                       three intervals. Reads nothing else, holds no capability
  --version            print the version
  --help               print this help

Runs in the foreground. SIGHUP reloads the configuration and reopens log files;
SIGUSR1 logs event=status lines and rewrites the status file; SIGTERM or SIGINT
stop it (exit 0).
";

#[derive(Debug, Default)]
struct Args {
    config: Option<PathBuf>,
    once: bool,
    dry_run: bool,
    check_config: bool,
    log_level: Option<Level>,
    /// `--status`, with its FILE when given.
    status: Option<Option<PathBuf>>,
    version: bool,
    help: bool,
}

fn parse_args(args: impl IntoIterator<Item = std::ffi::OsString>) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.into_iter().peekable();
    let mut given = 0;
    while let Some(arg) = it.next() {
        given += 1;
        let arg = arg
            .into_string()
            .map_err(|a| format!("argument is not valid UTF-8: {a:?}"))?;
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => it
                    .next()
                    .and_then(|v| v.into_string().ok())
                    .ok_or(format!("{name} needs {what}")),
            }
        };
        match name.as_str() {
            "-c" | "--config" => a.config = Some(PathBuf::from(value("a path")?)),
            "--log-level" => a.log_level = Some(Level::parse(&value("a level")?)?),
            "--once" => a.once = true,
            "--dry-run" => a.dry_run = true,
            "--check-config" => a.check_config = true,
            "--status" => {
                let file = inline.clone().map(PathBuf::from).or_else(|| {
                    it.next_if(|v| !v.as_encoded_bytes().starts_with(b"-"))
                        .map(PathBuf::from)
                });
                a.status = Some(file);
            }
            "--version" | "-V" => a.version = true,
            "--help" | "-h" => a.help = true,
            _ => return Err(format!("unknown argument \"{arg}\"")),
        }
        if inline.is_some() && !matches!(name.as_str(), "--config" | "--log-level" | "--status") {
            return Err(format!("{name} takes no value"));
        }
    }
    if a.status.is_some() && given > 1 {
        return Err("--status takes no other option".to_string());
    }
    Ok(a)
}

pub fn main() -> ExitCode {
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    // A Nagios check (--once, --status) answers a bad command line as a check must.
    let check = args.iter().any(|a| {
        let a = a.as_encoded_bytes();
        a == b"--once" || a == b"--status" || a.starts_with(b"--status=")
    });
    let a = match parse_args(args) {
        Ok(a) => a,
        Err(e) => {
            err!("system-agent: {e}\n\n{USAGE}");
            if check {
                out!("SYSTEM-AGENT UNKNOWN - bad command line: {e}");
                return ExitCode::from(3);
            }
            return ExitCode::from(1);
        }
    };
    if let Some(file) = a.status {
        return status(file);
    }
    // The binary's file capabilities must never act for the user who runs it: none
    // is in effect until the config is known to be root's (`Agent::new`). Root is
    // left as it is.
    if let Err(e) = caller_rights() {
        err!("system-agent: cannot clear the effective capabilities: {e}");
        return ExitCode::from(if a.once { 3 } else { 1 });
    }
    if a.help {
        out_raw!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    if a.version {
        out!("system-agent {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let opts = Options {
        explicit: a.config.is_some(),
        config: a.config.unwrap_or_else(|| PathBuf::from(DEFAULT_PATH)),
        dry_run: a.dry_run,
        log_level: a.log_level,
    };
    if a.check_config {
        return check_config(&opts);
    }
    let cfg = match opts.load() {
        Ok(cfg) => cfg,
        Err(errors) => {
            for e in &errors {
                err!("{e}");
            }
            if a.once {
                out!(
                    "SYSTEM-AGENT UNKNOWN - invalid configuration: {}",
                    one_line(&errors[0].to_string())
                );
                return ExitCode::from(3);
            }
            return ExitCode::from(EX_CONFIG);
        }
    };
    if a.once {
        run_once(opts, cfg)
    } else {
        run_service(opts, cfg)
    }
}

/// `--status [FILE]`: every capability dropped first (root's too), then only the
/// status file read, the safe way (no symlink, no FIFO, a size cap); its line
/// printed and its state returned (see `report::status::verdict`).
fn status(file: Option<PathBuf>) -> ExitCode {
    use crate::report::status::{MAX, verdict};
    use crate::sys;
    // A stray SIGUSR1 or SIGHUP meant for the service must not end the check.
    sys::ignore_signal(libc::SIGUSR1);
    sys::ignore_signal(libc::SIGHUP);
    if let Err(e) = sys::drop_capabilities() {
        let e = crate::error::errno_text(&e);
        out!("SYSTEM-AGENT UNKNOWN - cannot drop the capabilities: {e}");
        return ExitCode::from(3);
    }
    let path = file
        .or_else(|| crate::config::Agent::default().status_file)
        .unwrap_or_default();
    let mut buf = Vec::new();
    let read = crate::files::read_file(&path, false, MAX, &mut buf)
        .map(|_| &buf[..])
        .map_err(|why| why.to_string());
    let mut line = String::new();
    let state = verdict(&mut line, &path.to_string_lossy(), read, sys::realtime_ns());
    out!("{line}");
    ExitCode::from(state as u8)
}

/// Clears the effective capabilities of a process that is not root and has any.
fn caller_rights() -> std::io::Result<()> {
    use crate::sys;
    if sys::getuid() == 0 || sys::permitted_capabilities()? == 0 {
        return Ok(());
    }
    sys::set_effective_capabilities(0)
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == '|' { '?' } else { c })
        .collect()
}

fn check_config(opts: &Options) -> ExitCode {
    match opts.load() {
        Ok(cfg) => {
            let source = match &cfg.file {
                Some(p) => p.display().to_string(),
                None => format!("built-in defaults ({} not found)", opts.config.display()),
            };
            out_raw!(
                "; effective configuration from {source}\n{}",
                cfg.to_ini_with_origins()
            );
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for e in &errors {
                err!("{e}");
            }
            ExitCode::from(EX_CONFIG)
        }
    }
}

fn run_once(opts: Options, cfg: Config) -> ExitCode {
    // SIGTERM or SIGINT (cron's, a monitor's timeout, Ctrl-C) ends a task or mailer
    // this run waits for before it exits; SIGHUP and SIGUSR1 (the service's
    // signals) change nothing in a one-shot.
    let signals = Signals::install().ok();
    crate::sys::ignore_signal(libc::SIGHUP);
    crate::sys::ignore_signal(libc::SIGUSR1);
    let mut agent = Agent::new(opts, cfg, true);
    let locked = agent.take_lock();
    // A one-shot logs its start only when something is off (cron runs it every
    // minute; the log should carry samples, not start banners).
    agent.log_start(if locked.is_ok() {
        Level::Debug
    } else {
        Level::Info
    });
    ExitCode::from(agent.run_once(signals.as_ref()) as u8)
}

fn run_service(opts: Options, cfg: Config) -> ExitCode {
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            err!("system-agent: cannot install signal handlers: {e}");
            return ExitCode::from(1);
        }
    };
    let mut agent = Agent::new(opts, cfg, false);
    if let Err(why) = agent.take_lock() {
        err!("system-agent: cannot start: {why}");
        return ExitCode::from(1);
    }
    agent.log_start(Level::Info);
    agent.run_service(&signals);
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Args, String> {
        parse_args(args.iter().map(std::ffi::OsString::from))
    }

    #[test]
    fn arguments() {
        let a = p(&[
            "-c",
            "/x.ini",
            "--once",
            "--dry-run",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(a.config, Some(PathBuf::from("/x.ini")));
        assert!(a.once && a.dry_run);
        assert_eq!(a.log_level, Some(Level::Debug));
        assert_eq!(
            p(&["--config=/y.ini"]).unwrap().config,
            Some(PathBuf::from("/y.ini"))
        );
        assert_eq!(p(&["--bogus"]).unwrap_err(), "unknown argument \"--bogus\"");
        assert_eq!(p(&["-c"]).unwrap_err(), "-c needs a path");
        assert_eq!(p(&["--once=yes"]).unwrap_err(), "--once takes no value");
        assert_eq!(
            p(&["--log-level", "loud"]).unwrap_err(),
            "invalid log level \"loud\" (expected debug, info, warn or error)"
        );
    }

    #[test]
    fn status_takes_an_optional_file_and_nothing_else() {
        assert_eq!(p(&["--status"]).unwrap().status, Some(None));
        let file = Some(Some(PathBuf::from("/run/s")));
        assert_eq!(p(&["--status", "/run/s"]).unwrap().status, file);
        assert_eq!(p(&["--status=/run/s"]).unwrap().status, file);
        let alone = "--status takes no other option";
        assert_eq!(p(&["--status", "--once"]).unwrap_err(), alone);
        assert_eq!(
            p(&["-c", "/x.ini", "--status", "/run/s"]).unwrap_err(),
            alone
        );
        assert_eq!(
            p(&["--status", "/run/s", "/run/t"]).unwrap_err(),
            "unknown argument \"/run/t\""
        );
    }
}
