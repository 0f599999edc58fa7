//! Who may keep which capabilities: a config only root can write keeps the file
//! capabilities its features use, anything else drops them; and what a missing
//! capability limits, for the start event. Pure: the agent applies the verdicts.

use crate::config::Config;

/// Whether a process that is not root may keep the file capabilities it was started
/// with, given the config it runs: only when that file is root's and nobody else can
/// write it, so the capabilities act on root's rules and never on a file that group
/// aion (or a compromised aion) wrote. Built-in defaults are safe.
pub fn may_keep_capabilities(
    uid: u32,
    file: Option<&std::path::Path>,
    owner: Option<(u32, u32)>,
) -> Result<(), String> {
    let Some(path) = file else { return Ok(()) };
    match owner {
        _ if uid == 0 => Ok(()),
        Some((0, mode)) if mode & 0o022 == 0 => Ok(()),
        Some((0, mode)) => Err(format!(
            "{} is writable by group or others (mode {:o})",
            path.display(),
            mode & 0o7777
        )),
        Some((o, _)) => Err(format!("{} is owned by uid {o}, not root", path.display())),
        None => Err(format!("the owner of {} is unknown", path.display())),
    }
}

/// Capability bits (linux/capability.h).
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_KILL: u32 = 5;
pub const CAP_SETGID: u32 = 6;
pub const CAP_SETUID: u32 = 7;

/// The capabilities the configured features use: the effective set a non-root
/// agent keeps (the others stay permitted but off, until a reload needs them).
pub fn needed_capabilities(cfg: &Config) -> u64 {
    let bit = |b: u32| 1u64 << b;
    let mut m = 0;
    if cfg.reaper.enabled && !cfg.reap.is_empty() || relief_signals(cfg) {
        m |= bit(CAP_KILL);
    }
    if !cfg.cleanup.is_empty() {
        m |= bit(CAP_DAC_OVERRIDE) | bit(CAP_FOWNER) | bit(CAP_DAC_READ_SEARCH);
    }
    if cfg.audit.bash_history {
        m |= bit(CAP_DAC_READ_SEARCH);
    }
    if cfg.tasks.iter().any(|t| t.user.is_some()) {
        m |= bit(CAP_SETUID) | bit(CAP_SETGID);
    }
    m
}

/// Whether memory relief is on and may signal (not only log).
fn relief_signals(cfg: &Config) -> bool {
    cfg.relief.enabled && cfg.relief.action != crate::config::Action::Log
}

/// For a process that is not root, which configured features its missing
/// capabilities limit, and how: what `event=start` reports as `limited=`.
pub fn privilege_limits(uid: u32, caps: u64, cfg: &Config) -> Vec<String> {
    if uid == 0 {
        return Vec::new();
    }
    let missing = |bits: &[(u32, &'static str)]| -> Vec<&'static str> {
        bits.iter()
            .filter(|(b, _)| caps >> b & 1 == 0)
            .map(|(_, n)| *n)
            .collect()
    };
    let mut out = Vec::new();
    if cfg.reaper.enabled && !cfg.reap.is_empty() {
        let m = missing(&[(CAP_KILL, "cap_kill")]);
        if !m.is_empty() {
            out.push(format!(
                "reaper: no {}, signals only uid {uid}'s processes",
                m.join(",")
            ));
        }
    }
    if relief_signals(cfg) {
        let m = missing(&[(CAP_KILL, "cap_kill")]);
        if !m.is_empty() {
            out.push(format!(
                "relief: no {}, signals only uid {uid}'s processes",
                m.join(",")
            ));
        }
    }
    for t in &cfg.tasks {
        let Some(user) = &t.user else { continue };
        let m = missing(&[(CAP_SETUID, "cap_setuid"), (CAP_SETGID, "cap_setgid")]);
        if !m.is_empty() {
            out.push(format!(
                "task {}: no {}, cannot run as {user}",
                t.name,
                m.join(",")
            ));
        }
    }
    if cfg.audit.bash_history {
        let m = missing(&[(CAP_DAC_READ_SEARCH, "cap_dac_read_search")]);
        if !m.is_empty() {
            out.push(format!(
                "audit: no {}, reads only uid {uid}'s history",
                m.join(",")
            ));
        }
    }
    if !cfg.cleanup.is_empty() {
        let m = missing(&[
            (CAP_DAC_OVERRIDE, "cap_dac_override"),
            (CAP_FOWNER, "cap_fowner"),
            (CAP_DAC_READ_SEARCH, "cap_dac_read_search"),
        ]);
        if !m.is_empty() {
            out.push(format!(
                "cleanup: no {}, reads and removes only what uid {uid} may",
                m.join(",")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_only_with_a_config_only_root_can_write() {
        let p = Some(std::path::Path::new("/etc/aion/a.ini"));
        assert!(may_keep_capabilities(100, p, Some((0, 0o100640))).is_ok());
        assert!(may_keep_capabilities(100, None, None).is_ok());
        assert!(may_keep_capabilities(0, p, Some((100, 0o100666))).is_ok());
        assert_eq!(
            may_keep_capabilities(100, p, Some((100, 0o100600))),
            Err("/etc/aion/a.ini is owned by uid 100, not root".to_string())
        );
        assert_eq!(
            may_keep_capabilities(100, p, Some((0, 0o100664))),
            Err("/etc/aion/a.ini is writable by group or others (mode 664)".to_string())
        );
    }

    #[test]
    fn memory_relief_that_signals_needs_cap_kill() {
        let kill = 1u64 << CAP_KILL;
        let mut cfg = Config::default();
        assert_eq!(needed_capabilities(&cfg) & kill, 0);
        cfg.relief.enabled = true;
        assert_eq!(needed_capabilities(&cfg) & kill, kill);
        let line = "relief: no cap_kill, signals only uid 100's processes".to_string();
        assert!(privilege_limits(100, 0, &cfg).contains(&line));
        assert!(!privilege_limits(100, kill, &cfg).contains(&line));
        assert!(privilege_limits(0, 0, &cfg).is_empty());
        // Only logging signals nothing.
        cfg.relief.action = crate::config::Action::Log;
        assert_eq!(needed_capabilities(&cfg) & kill, 0);
        assert!(!privilege_limits(100, 0, &cfg).contains(&line));
    }
}
