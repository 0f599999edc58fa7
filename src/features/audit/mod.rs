//! The shell-history audit (`[audit]`): each cycle, what each audited user
//! appended to `~/.bash_history`, one `history` event per command, into the audit
//! log (a logger of its own: file and syslog facility) and syslog.
//!
//! A history file is the user's to control, so it is read as hostile input: opened
//! with `O_NOFOLLOW | O_NONBLOCK` (a symlink fails, a FIFO cannot block us), then
//! used only if it is a regular file owned by that user with one link (so neither
//! a symlink nor a hard link to `/etc/shadow`, nor a device, is ever copied).
//!
//! Nor can the user dodge the audit. Offsets, inode and device live in state_dir,
//! so nothing is logged twice and nothing is skipped across restarts; a truncated
//! or replaced file is read from its start. Only the host's first audit run (no
//! audit state yet) takes the histories readable then from their end, as the past;
//! any other history the agent had not read (refused at its first look, such as a
//! symlink or a root-owned file, created later, or a user added later) is read from
//! its start once it is readable. And at most `max_bytes` are read per file per
//! cycle: from a file that grew by more (padding meant to hide what follows, a huge
//! sparse file) only the last `max_bytes` are read, from their first whole line,
//! and the bytes passed over are reported. The decisions are in `history.rs`; this
//! file opens, reads and logs.

pub mod history;

use super::{Cx, Feature};
use crate::config::Config;
use crate::files;
use crate::log::{Level, Logger};
use crate::store::Loaded;
use crate::sys;
use history::{HistState, News, Overflow, Refusal, Target};
use std::ffi::OsStr;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

#[derive(Default)]
pub struct Audit {
    /// The audit trail's own logger while `bash_history` is on.
    log: Option<Logger>,
    /// The audited users' histories, built once per passwd load.
    targets: Vec<Target>,
    /// Per user looked at, where reading stands (loaded from state_dir once).
    hist: Vec<HistState>,
    /// There was no audit state in state_dir: the host's first audit run, which
    /// takes the histories readable then from their end. Only for one step.
    first_run: bool,
    /// The state as last written (or read), so an unchanged one is not written again.
    written: String,
    scratch: String,
    buf: Vec<u8>,
}

impl Feature for Audit {
    fn name(&self) -> &'static str {
        "audit"
    }

    fn wanted(&self, cx: &Cx) -> bool {
        cx.cfg.audit.bash_history
    }

    /// Where reading stood. A state file that exists but cannot be read or parsed
    /// is not a first run: every history is then read from its start (at most
    /// `max_bytes` each), so a lost state may log some commands twice, but never
    /// hides any.
    fn load(&mut self, cx: &mut Cx) {
        // Written at the end of the first step, even with no user to audit, so the
        // next run is not a first run again.
        self.written.clear();
        match cx.store.read(&history::KIND, cx.log, history::parse) {
            Loaded::Found(hist) => {
                // What is on disk, so an unchanged state is not written again.
                history::format(&mut self.written, &hist);
                self.hist = hist;
            }
            Loaded::Missing => self.first_run = true,
            Loaded::Unusable => {}
        }
    }

    /// Each audited user's new commands, one `history` event each; the state is
    /// written when an offset moved.
    fn step(&mut self, cx: &mut Cx) {
        for i in 0..self.targets.len() {
            self.look(cx, i);
        }
        self.first_run = false;
        self.keep(cx);
    }

    /// Refusals are reported afresh under a new configuration.
    fn reload(&mut self, _old: &Config, _new: &Config) {
        for h in &mut self.hist {
            h.refused.clear();
        }
    }

    /// The audit trail's logger while `bash_history` is on; a reload (or
    /// logrotate's SIGHUP) reopens it.
    fn reopen_logs(&mut self, cfg: &Config) {
        let on = cfg.audit.bash_history;
        match (&mut self.log, on) {
            (Some(log), true) => log.reopen(&cfg.audit_log_target()),
            _ => self.log = on.then(|| Logger::new(&cfg.audit_log_target())),
        }
    }

    /// The audited users' history paths, and a line for each named user that
    /// passwd lacks (once per load).
    fn users_loaded(&mut self, cx: &mut Cx) {
        if !cx.cfg.audit.bash_history {
            self.targets.clear();
            return;
        }
        let (targets, missing) = history::targets(&cx.cfg.audit, cx.users);
        self.targets = targets;
        for name in missing {
            let why = format!("user {name} is not in {}", cx.cfg.paths.passwd.display());
            cx.log.error(Level::Warn, "audit", why).emit();
        }
    }
}

impl Audit {
    /// Writes state_dir/audit when an offset moved (not every cycle); each step
    /// does, so there is nothing left to save at the end of a run.
    fn keep(&mut self, cx: &mut Cx) {
        history::format(&mut self.scratch, &self.hist);
        if self.scratch == self.written {
            return;
        }
        std::mem::swap(&mut self.scratch, &mut self.written);
        if !cx.store.save_text(&history::KIND, cx.log, &self.written) {
            // Written again next cycle: the failure is reported once.
            self.written.clear();
        }
    }

    /// One look at target `i`'s history: its new commands logged, or its refusal
    /// (reported once while it lasts, across cron runs too: it is in state_dir).
    fn look(&mut self, cx: &mut Cx, i: usize) {
        let t = &self.targets[i];
        let j = match self.hist.iter().position(|h| h.user == t.user.name) {
            Some(j) => j,
            None => {
                self.hist.push(HistState {
                    user: t.user.name.clone(),
                    ..HistState::default()
                });
                self.hist.len() - 1
            }
        };
        let st = &mut self.hist[j];
        let path = Path::new(OsStr::from_bytes(t.path.as_bytes()));
        let max = cx.cfg.audit.max_bytes;
        match read_new(t, st, self.first_run, max, &mut self.buf) {
            Ok(news) => {
                st.refused.clear();
                if let Some(o) = news.overflow {
                    log_overflow(cx.log, &t.user.name, path, o, max);
                }
                if let Some(log) = &mut self.log {
                    log_commands(log, t, news);
                }
            }
            Err(why) if why == st.refused => {}
            Err(why) => {
                cx.log
                    .error(Level::Warn, "audit", &why)
                    .str("user", &t.user.name)
                    .path("path", path)
                    .str("effect", "nothing copied")
                    .emit();
                st.refused = why;
            }
        }
    }
}

/// Reads what the target's user appended since `st` (updated). On the host's
/// first audit run (`first_run`) a readable file is taken from its end; any other
/// file not read before is read from its start. `buf` is scratch, never grown
/// past `max_bytes + 1`.
fn read_new(
    t: &Target,
    st: &mut HistState,
    first_run: bool,
    max_bytes: u64,
    buf: &mut Vec<u8>,
) -> Result<News, Refusal> {
    // The one safe open: no symlink followed, no FIFO waited on, no device opened,
    // only a regular file kept.
    let opened = match files::open_regular_at(libc::AT_FDCWD, &t.path, false) {
        Ok(o) => o,
        Err(why) if why.is_missing() => {
            history::forget_file(st);
            return Ok(News::default());
        }
        Err(files::Why::NotRegular("a symbolic link")) => return Err("is a symlink".to_string()),
        Err(files::Why::NotRegular(_)) => return Err("is not a regular file".to_string()),
        Err(why) if why.errno().and_then(std::io::Error::raw_os_error) == Some(libc::EISDIR) => {
            return Err("is not a regular file".to_string());
        }
        Err(why) => return Err(why.to_string()),
    };
    let (fd, meta) = (opened.fd, opened.stat);
    history::refusal(meta.st_uid, meta.st_nlink, &t.user)?;
    let size = meta.st_size.max(0) as u64;
    history::rebase(st, meta.st_dev, meta.st_ino, size, first_run);
    Ok(read_tail(fd.as_raw_fd(), st, size, max_bytes, buf))
}

/// Reads the file from `st.offset` to `size`, or, when that is more than
/// `max_bytes`, only the whole lines of its last `max_bytes`.
fn read_tail(fd: RawFd, st: &mut HistState, size: u64, max_bytes: u64, buf: &mut Vec<u8>) -> News {
    let Some(from) = history::window(st, size, max_bytes) else {
        return News::default();
    };
    buf.clear();
    buf.resize((size - from) as usize, 0);
    let got = sys::pread_full(fd, buf, from);
    history::take(st, size, max_bytes, from, &buf[..got])
}

/// One `history` event per command, at the time bash recorded for it, if any.
fn log_commands(log: &mut Logger, t: &Target, news: News) {
    let now = sys::realtime_ns();
    for c in news.commands {
        let ts = c.ts.map_or(now, |s| s.saturating_mul(1_000_000_000));
        log.event_at(Level::Info, "history", ts)
            .str("user", &t.user.name)
            .u64("uid", t.user.uid as u64)
            .bytes("cmd", &c.cmd)
            .emit();
    }
}

/// A history that grew by more than `max_bytes` in one cycle: only its last
/// `max_bytes` were read, from their first whole line; says how much was passed over.
fn log_overflow(log: &mut Logger, user: &str, path: &Path, o: Overflow, max: u64) {
    let why = format!("grew by {} bytes, more than max_bytes ({max})", o.grew);
    let effect = if o.skipped == o.grew {
        "nothing copied"
    } else {
        "copied the last lines only"
    };
    log.error(Level::Warn, "audit", why)
        .str("user", user)
        .path("path", path)
        .u64("skipped", o.skipped)
        .str("effect", effect)
        .emit();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Slot;
    use crate::features::bench::Bench;
    use crate::passwd::{User, Users};
    use history::Command;
    use std::ffi::CString;
    use std::path::PathBuf;

    fn me(home: &Path) -> User {
        User {
            name: "me".into(),
            uid: sys::geteuid(),
            gid: 0,
            home: home.display().to_string(),
            shell: "/bin/sh".into(),
        }
    }

    /// A bench auditing `me` (whose home is in the bench's dir) and `ghost`
    /// (not in passwd), with the audit log beside the agent's.
    fn audit_bench(tag: &str) -> (Bench, Slot<Audit>, PathBuf) {
        let mut b = Bench::new(tag, "");
        let home = b.dir.join("home");
        std::fs::create_dir_all(&home).unwrap();
        b.cfg.audit.bash_history = true;
        b.cfg.audit.users = vec!["me".into(), "ghost".into()];
        b.cfg.audit.log_file = Some(b.dir.join("audit.log"));
        b.users = Users::new(vec![me(&home)]);
        let mut a = Slot::new(Audit::default());
        a.reopen_logs(&b.cfg);
        a.users_loaded(&mut b.cx());
        (b, a, home.join(".bash_history"))
    }

    fn append(path: &Path, text: &str) {
        use std::io::Write as _;
        let mut f = std::fs::OpenOptions::new();
        let f = f.create(true).append(true).open(path).unwrap();
        (&f).write_all(text.as_bytes()).unwrap();
    }

    /// The audit log's lines, without their timestamp.
    fn trail(b: &Bench) -> Vec<String> {
        let text = std::fs::read_to_string(b.dir.join("audit.log")).unwrap_or_default();
        text.lines()
            .map(|l| l.split_once(' ').map_or("", |(_, r)| r).to_string())
            .collect()
    }

    #[test]
    fn a_first_run_takes_the_past_then_copies_each_new_command_once() {
        let (mut b, mut a, hist) = audit_bench("audit-first");
        append(&hist, "old\n");
        a.step(&mut b.cx());
        append(&hist, "#1700000000\nid\npartial");
        a.step(&mut b.cx());
        a.step(&mut b.cx());
        let uid = sys::geteuid();
        assert_eq!(
            trail(&b),
            [format!("level=info event=history user=me uid={uid} cmd=id")]
        );
        // Copying is all it does: nothing signalled, removed or run.
        assert_eq!(b.effects.take(), []);
        assert_eq!(
            b.events("error"),
            [format!(
                "level=warn event=error what=audit error=\"user ghost is not in {}\"",
                b.cfg.paths.passwd.display()
            )]
        );
        let m = std::fs::metadata(&hist).unwrap();
        use std::os::unix::fs::MetadataExt as _;
        assert_eq!(
            std::fs::read_to_string(b.dir.join("state/audit")).unwrap(),
            format!(
                "system-agent-audit 2\nhist {} {} 19 me\nend\n",
                m.dev(),
                m.ino()
            )
        );
    }

    #[test]
    fn a_state_file_that_cannot_be_read_is_not_a_first_run() {
        let (mut b, mut a, hist) = audit_bench("audit-corrupt");
        std::fs::create_dir_all(b.dir.join("state")).unwrap();
        std::fs::write(
            b.dir.join("state/audit"),
            "system-agent-audit 2\nhist 1 2\n",
        )
        .unwrap();
        append(&hist, "one\n");
        a.step(&mut b.cx());
        let uid = sys::geteuid();
        assert_eq!(
            trail(&b),
            [format!(
                "level=info event=history user=me uid={uid} cmd=one"
            )]
        );
        // After the line for ghost, who is not in passwd.
        assert_eq!(
            b.events("error")[1..],
            [format!(
                "level=warn event=error what=state error=truncated path={} \
                 effect=\"starting fresh; the file will be replaced\"",
                b.dir.join("state/audit").display()
            )]
        );
    }

    #[test]
    fn a_refusal_is_reported_once_and_again_after_a_reload() {
        let (mut b, mut a, hist) = audit_bench("audit-refused");
        std::os::unix::fs::symlink("/etc/passwd", &hist).unwrap();
        a.step(&mut b.cx());
        a.step(&mut b.cx());
        let refused = format!(
            "level=warn event=error what=audit error=\"is a symlink\" user=me path={} \
             effect=\"nothing copied\"",
            hist.display()
        );
        assert_eq!(&b.events("error")[1..], std::slice::from_ref(&refused));
        let cfg = b.cfg.clone();
        a.reload(&cfg, &cfg);
        a.step(&mut b.cx());
        assert_eq!(b.events("error")[1..], [refused.clone(), refused]);
        assert_eq!(trail(&b), Vec::<String>::new());
    }

    #[test]
    fn a_huge_growth_reads_only_the_last_max_bytes() {
        // A 10 GiB sparse history: only its last 17 bytes (16 and the one before)
        // are read; the whole lines among them are copied, the rest passed over.
        let dir = std::env::temp_dir().join(format!("sa-audit-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(".bash_history");
        let size: u64 = 10 << 30;
        let tail = b"\npad-line\nid\npartial";
        let f = std::fs::File::create(&path).unwrap();
        f.set_len(size).unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, tail, size - tail.len() as u64).unwrap();
        drop(f);
        let t = Target {
            user: me(&dir),
            path: CString::new(path.as_os_str().as_bytes()).unwrap(),
        };
        let mut st = HistState::default();
        let mut buf = Vec::new();
        let news = read_new(&t, &mut st, false, 16, &mut buf);
        let _ = std::fs::remove_dir_all(&dir);
        let news = news.unwrap();
        assert_eq!(
            news.commands,
            vec![Command {
                ts: None,
                cmd: b"id".to_vec()
            }]
        );
        assert_eq!(
            news.overflow,
            Some(Overflow {
                grew: size,
                skipped: size - 10
            })
        );
        // `partial` waits for its newline.
        assert_eq!(st.offset, size - 7);
        assert!(buf.capacity() <= 32, "{}", buf.capacity());
    }
}
