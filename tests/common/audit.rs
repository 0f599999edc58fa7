//! The shell-history audit seen from outside: a host whose passwd names accounts
//! with homes in the temp dir (test uids 4001… that need not exist on this
//! machine), histories written as bash writes them, the audit log read back, and
//! the exact lines the agent logs for a command, a refusal or a skip.

use super::{Host, Ini, LIMIT, Run, Service, Syslog, body, chown, wait_for};
use std::cell::RefCell;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// One passwd entry of the fixture: name, uid, shell. The home is `T/home/NAME`.
pub type Account<'a> = (&'a str, u32, &'a str);

/// The one account most tests need.
pub const ALICE: &[Account] = &[("alice", 4001, "/bin/bash")];

/// A fixture host with the audit on: its accounts' homes (mode 0700, theirs) are
/// in the temp dir; the CPU counters move on every run. Everything `Host` does it
/// does too.
pub struct Audited {
    pub h: Host,
    uids: RefCell<Vec<(String, u32)>>,
}

impl std::ops::Deref for Audited {
    type Target = Host;
    fn deref(&self) -> &Host {
        &self.h
    }
}

impl Audited {
    pub fn new(tag: &str, accounts: &[Account]) -> Audited {
        let a = Audited {
            h: Host::new(&format!("audit-{tag}")).ticking(),
            uids: RefCell::new(Vec::new()),
        };
        a.passwd("");
        for &(name, uid, shell) in accounts {
            a.add_account(name, uid, shell);
        }
        a
    }

    /// A host with `ALICE`, whose history holds `history`.
    pub fn alice(tag: &str, history: &[u8]) -> Audited {
        let a = Audited::new(tag, ALICE);
        a.replace_hist("alice", history);
        a
    }

    /// Adds an account to passwd (and makes its home), as `useradd` would on a
    /// host the agent already audits.
    pub fn add_user(&self, name: &str, uid: u32) {
        self.add_account(name, uid, "/bin/bash");
    }

    fn add_account(&self, name: &str, uid: u32, shell: &str) {
        let home = self.home(name);
        std::fs::create_dir_all(&home).unwrap();
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o700)).unwrap();
        chown(&home, uid);
        let passwd = self.read("etc/passwd");
        self.passwd(&format!(
            "{passwd}{name}:x:{uid}:{uid}::{}:{shell}\n",
            home.display()
        ));
        self.uids.borrow_mut().push((name.to_string(), uid));
    }

    /// The accounts, in passwd order.
    pub fn users(&self) -> Vec<(String, u32)> {
        self.uids.borrow().clone()
    }

    pub fn uid(&self, user: &str) -> u32 {
        self.uids
            .borrow()
            .iter()
            .find(|u| u.0 == user)
            .expect("a fixture user")
            .1
    }

    pub fn home(&self, user: &str) -> PathBuf {
        self.path(&format!("home/{user}"))
    }

    pub fn hist(&self, user: &str) -> PathBuf {
        self.home(user).join(".bash_history")
    }

    /// A path in the user's home to build a file at before renaming it into place,
    /// so the agent never sees it half made (say, still root's).
    pub fn staging(&self, user: &str) -> PathBuf {
        self.home(user).join(".staging")
    }

    /// Moves what is at `staging(user)` into place as the history, `uid`'s.
    pub fn install(&self, user: &str, uid: u32) {
        chown(&self.staging(user), uid);
        std::fs::rename(self.staging(user), self.hist(user)).unwrap();
    }

    /// Replaces the history by a new file (a new inode) with `data`, owned by the user.
    pub fn replace_hist(&self, user: &str, data: &[u8]) {
        let s = self.staging(user);
        std::fs::write(&s, data).unwrap();
        std::fs::set_permissions(&s, std::fs::Permissions::from_mode(0o600)).unwrap();
        self.install(user, self.uid(user));
    }

    /// Appends to the history, as bash with histappend does (same inode).
    pub fn append(&self, user: &str, data: &[u8]) {
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.hist(user))
            .unwrap();
        f.write_all(data).unwrap();
    }

    /// Rewrites the history in place (O_TRUNC, same inode), as bash without
    /// histappend did.
    pub fn rewrite(&self, user: &str, data: &[u8]) {
        let ino = std::fs::metadata(self.hist(user)).unwrap().ino();
        std::fs::write(self.hist(user), data).unwrap();
        assert_eq!(std::fs::metadata(self.hist(user)).unwrap().ino(), ino);
    }

    /// agent.ini: `agent` lines replace or add `[agent]` keys, `audit` lines
    /// replace or add `[audit]` keys.
    pub fn config(&self, agent: &str, audit: &str) -> PathBuf {
        self.h.config(Ini {
            agent,
            audit: Some(audit),
            ..Ini::default()
        })
    }

    /// The service on a config with `audit` lines, once its first look at
    /// `users` is done; and that config.
    pub fn serve(&self, audit: &str, users: &[&str]) -> (PathBuf, Service) {
        let cfg = self.config("", audit);
        let agent = self.spawn(&cfg);
        self.wait_seen(users);
        (cfg, agent)
    }

    /// `n` more cycles of `agent`, then a clean stop.
    pub fn stop_after(&self, agent: Service, n: usize) {
        self.wait_cycles(n);
        assert_eq!(agent.stop(), 0);
    }

    /// One `--once` run (bounded: a FIFO or device must never block a run).
    pub fn once(&self, cfg: &Path) -> Run {
        self.h.once(cfg, &[])
    }

    pub fn audit_raw(&self) -> Vec<u8> {
        std::fs::read(self.path("audit.log")).unwrap_or_default()
    }

    /// The audit log's lines, each checked to start with `ts=` and to be UTF-8.
    pub fn audit_lines(&self) -> Vec<String> {
        let text = String::from_utf8(self.audit_raw()).expect("the audit log is UTF-8");
        let lines: Vec<String> = text.lines().map(str::to_string).collect();
        for l in &lines {
            assert!(l.starts_with("ts="), "a forged or broken line: {l:?}");
        }
        lines
    }

    /// The audit log's lines without `ts=…`.
    pub fn history(&self) -> Vec<String> {
        self.audit_lines().iter().map(|l| body(l)).collect()
    }

    /// `history`, sorted.
    pub fn sorted_history(&self) -> Vec<String> {
        let mut v = self.history();
        v.sort();
        v
    }

    /// Main-log lines of `event=error what=audit`, without `ts=…`.
    pub fn audit_errors(&self) -> Vec<String> {
        self.events(" event=error what=audit ")
    }

    /// No `what=audit` error in the main log.
    pub fn assert_no_errors(&self) {
        assert_eq!(self.audit_errors(), Vec::<String>::new(), "{}", self.log());
    }

    /// The same, sorted.
    pub fn sorted_errors(&self) -> Vec<String> {
        let mut v = self.audit_errors();
        v.sort();
        v
    }

    pub fn wait_history(&self, n: usize) {
        assert!(
            wait_for(LIMIT, || self.history().len() >= n),
            "want {n} history lines: {:?}\n{}",
            self.history(),
            self.log()
        );
    }

    /// Waits until state_dir/audit names each user (their first look is done).
    pub fn wait_seen(&self, users: &[&str]) {
        let ok = wait_for(LIMIT, || {
            let s = self.read("state/audit");
            users.iter().all(|u| s.contains(&format!(" {u}\n")))
        });
        assert!(
            ok,
            "state: {:?}\nlog: {}",
            self.read("state/audit"),
            self.log()
        );
    }

    /// The line for a history that grew by `grew` bytes in one cycle, more than
    /// `max`, of which the first `skipped` were passed over.
    pub fn skip_line(&self, user: &str, grew: u64, max: u64, skipped: u64, effect: &str) -> String {
        format!(
            "level=warn event=error what=audit error=\"grew by {grew} bytes, more than max_bytes ({max})\" user={user} path={} skipped={skipped} effect=\"{effect}\"",
            self.hist(user).display()
        )
    }

    pub fn error_line(&self, user: &str, why: &str) -> String {
        format!(
            "level=warn event=error what=audit error=\"{why}\" user={user} path={} effect=\"nothing copied\"",
            self.hist(user).display()
        )
    }

    /// `hist_line` of each command, all the user's.
    pub fn hist_lines(&self, user: &str, cmds: &[&str]) -> Vec<String> {
        let uid = self.uid(user);
        cmds.iter().map(|c| hist_line(user, uid, c)).collect()
    }
}

/// `level=info event=history user=USER uid=UID cmd=CMD` (CMD as logged).
pub fn hist_line(user: &str, uid: u32, cmd: &str) -> String {
    format!("level=info event=history user={user} uid={uid} cmd={cmd}")
}

/// RFC 3339 with milliseconds, UTC, for whole seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.000Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A secret no audit may copy.
pub const MARKER: &str = "CANARY-7f3a9c-SHADOW";

/// T/secret: root's, mode 0600, lines that would pass as commands.
pub fn canary(h: &Host) -> PathBuf {
    let p = h.write(
        "secret",
        format!("root:$6${MARKER}$hash:19000:0:99999:7:::\necho {MARKER}\n"),
    );
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    chown(&p, 0);
    p
}

/// Neither the audit log nor the main log nor syslog holds the secret.
pub fn assert_no_canary(a: &Audited, syslog: &Syslog) {
    let audit = String::from_utf8_lossy(&a.audit_raw()).into_owned();
    assert!(
        !audit.contains(MARKER),
        "the audit log holds the secret: {audit}"
    );
    assert!(!a.log().contains(MARKER), "{}", a.log());
    for d in syslog.texts() {
        assert!(!d.contains(MARKER), "{d}");
    }
}
