//! A hung FUSE mount must not stall the agent. Each test mounts a bindfs of its own
//! temp dir inside a private mount namespace, and hangs it by stopping the bindfs
//! daemon (SIGSTOP: every call on the mount then waits, as on a dead NFS server).
//! The daemon's pid comes from the namespace shell this test started (checked to be
//! that shell's child), never from a name; at the end it gets SIGCONT and the mount
//! is unmounted. The agent runs inside the namespace with `nsenter`, always with a
//! bounded wait, and is killed if it does not finish: without the prober, its first
//! `statvfs` of the mount blocks for as long as the daemon is stopped.

mod common;

use common::*;
use std::path::Path;
use std::process::Stdio;

/// A bindfs mount of `T/src` on `T/mnt` in a private mount namespace, held by a
/// shell this test started; its bindfs daemon runs in the foreground as the
/// shell's child. When dropped: SIGCONT, unmount, done.
struct Fuse {
    ns: MountNs,
    daemon: i32,
}

impl Fuse {
    fn new(h: &Host) -> Fuse {
        std::fs::create_dir_all(h.path("src")).expect("src dir");
        std::fs::create_dir_all(h.path("mnt")).expect("mnt dir");
        let setup = format!(
            "src='{src}'; mnt='{mnt}'\n\
             bindfs -f \"$src\" \"$mnt\" &\ndaemon=$!\necho \"daemon $daemon\"\n\
             i=0; until grep -q \" $mnt \" /proc/self/mountinfo; do i=$((i+1)); [ $i -lt 600 ]; sleep 0.05; done",
            src = h.p("src"),
            mnt = h.p("mnt"),
        );
        let teardown = "kill -CONT $daemon 2>/dev/null || true\n\
                        fusermount -u \"$mnt\" 2>/dev/null || umount -l \"$mnt\"\nwait\n";
        let ns = MountNs::with_teardown(&setup, teardown);
        let daemon: i32 = ns
            .said
            .iter()
            .find_map(|l| l.strip_prefix("daemon "))
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("no daemon pid from the namespace shell: {:?}", ns.said));
        let fuse = Fuse { ns, daemon };
        assert_eq!(
            parent_of(daemon),
            Some(fuse.ns.shell.id() as i32),
            "the daemon is the namespace shell's child"
        );
        fuse
    }

    /// SIGSTOP or SIGCONT to the bindfs daemon (our shell's child, checked again).
    fn signal_daemon(&self, sig: i32) {
        assert_eq!(parent_of(self.daemon), Some(self.ns.shell.id() as i32));
        // SAFETY: kill(2) on the daemon this test's shell started.
        assert_eq!(unsafe { libc::kill(self.daemon, sig) }, 0);
    }

    /// The agent, run inside the namespace (its stdout kept).
    fn agent(&self, cfg: &Path, once: bool) -> Service {
        let mut args = vec!["-c", cfg.to_str().expect("a UTF-8 path")];
        if once {
            args.push("--once");
        }
        let mut c = self.ns.command(&args);
        c.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        Service::start(c)
    }
}

impl Drop for Fuse {
    fn drop(&mut self) {
        // SAFETY: as in `signal_daemon`; a daemon already gone makes it fail harmlessly.
        unsafe { libc::kill(self.daemon, libc::SIGCONT) };
    }
}

/// Waits (bounded) for the agent to exit and returns its exit code and stdout;
/// fails the test if it does not exit in time.
fn finish(mut agent: Service, what: &str) -> (i32, String) {
    if !wait_for(LIMIT, || matches!(agent.0.try_wait(), Ok(Some(_)))) {
        panic!("{what}: still running after {LIMIT:?}, stalled by the hung mount");
    }
    let mut out = String::new();
    if let Some(mut o) = agent.0.stdout.take() {
        std::io::Read::read_to_string(&mut o, &mut out).expect("stdout");
    }
    let code = agent.0.wait().expect("reap").code().unwrap_or(-1);
    (code, out)
}

/// A fixture host (CPU 10%, memory 50%) with `proc/self` pointing at the real one
/// (so the agent reads its own mountinfo, in the namespace), and a config watching
/// the mount (disk and inode limits at 100% and no time-left limits, so only a
/// failed reading is not OK), with `extra` sections.
fn host(tag: &str, extra: impl FnOnce(&Host) -> String) -> (Host, std::path::PathBuf) {
    let h = Host::new(tag).interval("200ms");
    h.write("proc/stat", proc_stat(200, 1800));
    h.seed_cpu(100, 900, std::time::Duration::from_secs(60));
    std::os::unix::fs::symlink("/proc/self", h.path("proc/self")).expect("proc/self");
    let extra = extra(&h);
    let mounts = h.p("mnt");
    let cfg = h.config(Ini {
        thresholds: "disk_warn = 100\ndisk_crit = 100\ninode_warn = 100\ninode_crit = 100\n\
                     disk_eta_warn =\ndisk_eta_crit =\ninode_eta_warn =\ninode_eta_crit =",
        mounts: &mounts,
        extra: &extra,
        ..Ini::default()
    });
    (h, cfg)
}

fn rule(h: &Host) -> String {
    format!(
        "[cleanup.onfuse]\npaths = {}\nwhen = always\nolder_than = 0s\n",
        h.p("mnt")
    )
}

/// The one error line of a reading of the hung mount at `mnt`, and its reason.
fn hung(mnt: &str) -> (String, String) {
    let why = format!("cannot statvfs {mnt}: no answer within 1s from the fuse mount");
    let line = format!("level=error event=error what=sample error=\"{why}\"");
    (line, why)
}

/// The one error line of the cleanup rule `onfuse` over the hung mount at `mnt`.
fn not_entered(mnt: &str) -> String {
    format!(
        "level=warn event=error what=cleanup rule=onfuse path={mnt} error=\"no answer within 1s from the fuse mount; not entered this cycle\""
    )
}

#[test]
fn once_reports_a_hung_mount_as_unknown_and_skips_cleanup_there() {
    let (h, cfg) = host("mounts-once", rule);
    let fuse = Fuse::new(&h);
    h.write("src/old.log", "x");
    fuse.signal_daemon(libc::SIGSTOP);
    let (code, out) = finish(fuse.agent(&cfg, true), "--once");
    let mnt = h.p("mnt");
    let (error, why) = hung(&mnt);
    let l = mount_label(&mnt);
    assert_eq!(
        out,
        format!(
            "SYSTEM-AGENT UNKNOWN - disk {mnt} unknown ({why}), inodes {mnt} unknown ({why}) \
             | cpu=10.0%;80;90 mem=50.0%;85;95 disk_{l}=U;100;100 load1=0.52 inode_{l}=U;100;100\n"
        )
    );
    assert_eq!(code, 3);
    assert!(h.path("src/old.log").exists());
    assert_eq!(h.events("event=error"), vec![error, not_entered(&mnt)]);
    // Answering again, the mount is read and the rule enters it.
    fuse.signal_daemon(libc::SIGCONT);
    h.write("proc/stat", proc_stat(300, 2700));
    let (code, out) = finish(fuse.agent(&cfg, true), "--once after SIGCONT");
    assert!(
        out.starts_with("SYSTEM-AGENT OK - all checks ok | cpu=10.0%;80;90 mem=50.0%;85;95 "),
        "{out}"
    );
    assert!(!out.contains("=U"), "{out}");
    assert_eq!(code, 0);
    assert!(!h.path("src/old.log").exists(), "{}", h.log());
}

/// How many `event=sample` lines follow the first line containing `after`.
fn samples_after(h: &Host, after: &str, also: &str) -> usize {
    let log = h.log();
    let from = &log[log.find(after).unwrap_or(0)..];
    events(from, "event=sample")
        .iter()
        .filter(|s| s.contains(also))
        .count()
}

#[test]
fn the_service_keeps_cycling_while_a_mount_hangs_and_stops_on_sigterm() {
    let (h, cfg) = host("mounts-service", rule);
    let fuse = Fuse::new(&h);
    let agent = fuse.agent(&cfg, false);
    let sampled = format!(" disk_{}=", mount_label(&h.p("mnt")));
    assert!(
        wait_for(LIMIT, || h.log().contains(&sampled)),
        "{}",
        h.log()
    );
    fuse.signal_daemon(libc::SIGSTOP);
    let mnt = h.p("mnt");
    let (error, _) = hung(&mnt);
    assert!(
        wait_for(LIMIT, || h.log().contains(&error)),
        "no error line: {}",
        h.log()
    );
    // Cycles go on: five more samples after the first hung one, each without the mount.
    assert!(
        wait_for(LIMIT, || samples_after(&h, &error, "") >= 5),
        "{}",
        h.log()
    );
    assert_eq!(h.events("event=error what=sample"), vec![error]);
    assert_eq!(
        h.events("event=error what=cleanup"),
        vec![not_entered(&mnt)]
    );
    agent.signal(libc::SIGTERM);
    let (code, _) = finish(agent, "the service after SIGTERM");
    assert_eq!(code, 0);
    assert!(
        h.log().contains(" event=stop reason=SIGTERM "),
        "{}",
        h.log()
    );
}

#[test]
fn a_mount_that_answers_again_is_logged_once_and_read_again() {
    let (h, cfg) = host("mounts-recover", |_| String::new());
    let fuse = Fuse::new(&h);
    fuse.signal_daemon(libc::SIGSTOP);
    let agent = fuse.agent(&cfg, false);
    let (error, why) = hung(&h.p("mnt"));
    assert!(wait_for(LIMIT, || h.log().contains(&error)), "{}", h.log());
    fuse.signal_daemon(libc::SIGCONT);
    let recovered = format!("level=info event=error what=sample status=recovered error=\"{why}\"");
    assert!(
        wait_for(LIMIT, || h.log().contains(&recovered)),
        "{}",
        h.log()
    );
    let sampled = format!(" disk_{}=", mount_label(&h.p("mnt")));
    assert!(
        wait_for(LIMIT, || samples_after(&h, &recovered, &sampled) >= 2),
        "{}",
        h.log()
    );
    agent.signal(libc::SIGTERM);
    let (code, _) = finish(agent, "the service after SIGTERM");
    assert_eq!(code, 0);
    assert_eq!(
        h.events("event=error"),
        vec![error, recovered],
        "{}",
        h.log()
    );
}
