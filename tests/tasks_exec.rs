//! What an idle-time task's child gets from the built binary (exactly fds 0-2, a
//! minimal environment, default signal dispositions and mask, its own process
//! group, nice value, user and supplementary groups, `/` or its `cwd`, umask 022
//! or its own), and when a task cannot run at all (`task_skipped`, exec errors).
//!
//! Every file lives in a private temp dir; the tasks are scripts there or
//! `/bin/sleep`, `/bin/true`. Signals go only to agents these tests started.

mod common;

use common::*;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

// 1. What the child inherits.

/// How the agent is started for the exec-state tests.
#[derive(Clone, Copy)]
struct Start {
    /// Close fds 0-2 before exec.
    close_stdio: bool,
    /// Signals the agent inherits as ignored (`SIG_IGN` survives exec); every
    /// other signal is set to its default first, so the result does not depend on
    /// what the test harness ignores.
    ignored: &'static [i32],
}

/// Sets `sig`'s disposition with the raw system call: glibc's `signal` refuses
/// 32 and 33, which it reserves. Async-signal-safe.
fn set_disposition(sig: i32, handler: libc::sighandler_t) {
    #[repr(C)]
    struct KernelSigaction {
        handler: libc::sighandler_t,
        flags: libc::c_ulong,
        restorer: usize,
        mask: u64,
    }
    let act = KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: a valid kernel sigaction for SIG_DFL or SIG_IGN; no old action.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigaction,
            sig as libc::c_long,
            &act as *const KernelSigaction,
            std::ptr::null::<KernelSigaction>(),
            8 as libc::c_long,
        )
    };
}

/// Starts `--once` with an extra inheritable descriptor (fd 9, no close-on-exec),
/// and the signal dispositions and stdio of `how`.
fn spawn_once(cfg: &Path, leak: &Path, how: Start) -> Child {
    use std::os::unix::io::AsRawFd;
    let file = std::fs::File::create(leak).unwrap();
    let raw = file.as_raw_fd();
    let mut cmd = Command::new(bin());
    cmd.args(["-c", cfg.to_str().unwrap(), "--once"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: only dup2, close and rt_sigaction (async-signal-safe) between fork
    // and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(raw, 9) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            for sig in 1..=64 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    set_disposition(sig, libc::SIG_DFL);
                }
            }
            for &sig in how.ignored {
                set_disposition(sig, libc::SIG_IGN);
            }
            if how.close_stdio {
                libc::close(0);
                libc::close(1);
                libc::close(2);
            }
            Ok(())
        });
    }
    let child = cmd.spawn().unwrap();
    drop(file);
    child
}

/// Runs the `probe` task (`/bin/sleep 2` as daemon, nice 7) from a `--once`
/// started as `how`; `look` sees the task from outside while it runs.
fn probe<T>(tag: &str, how: Start, look: impl FnOnce(&Host, i32, i32) -> T) -> (Host, T) {
    let h = task_host(tag);
    let keys = "idle_cycles = 0\nnice = 7\nuser = daemon\ntimeout = 10s";
    let cfg = h.config(Ini::extra(&task("probe", "/bin/sleep 2", keys)));
    h.seed_cpu(0, 0, std::time::Duration::from_secs(60));
    let mut agent = spawn_once(&cfg, &h.path("leak"), how);
    h.must_see("event=task_start", 1);
    let task = started_pid(&h, "probe");
    let seen = look(&h, agent.id() as i32, task);
    let st = wait_exit(&mut agent, LIMIT);
    assert_eq!(st.code(), Some(0));
    (h, seen)
}

/// Looks at a running task from outside: descriptors, exec environment, signal
/// mask and dispositions, process group, nice value and ids.
fn check_exec_state(h: &Host, agent: i32, task: i32) {
    let fds = fds_of(task);
    let numbers: Vec<i32> = fds.iter().map(|f| f.0).collect();
    assert_eq!(numbers, vec![0, 1, 2], "{fds:?}");
    assert_eq!(fds[0].1, "/dev/null");
    assert!(
        fds[1].1.starts_with("pipe:[") && fds[2].1.starts_with("pipe:["),
        "{fds:?}"
    );
    assert_ne!(fds[1].1, fds[2].1, "stdout and stderr are separate pipes");
    assert_eq!(
        std::fs::read(format!("/proc/{task}/environ")).unwrap(),
        b"PATH=/usr/sbin:/usr/bin:/sbin:/bin\0LANG=C\0"
    );
    assert_eq!(status_field(task, "SigBlk"), "0000000000000000");
    assert_eq!(status_field(task, "SigIgn"), "0000000000000000");
    assert_eq!(status_field(task, "Uid"), "1 1 1 1", "user = daemon");
    assert_eq!(status_field(task, "Gid"), "1 1 1 1");
    assert_eq!(status_field(task, "Groups"), "1");
    let stat = std::fs::read_to_string(format!("/proc/{task}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    assert_eq!(f[2], task.to_string(), "its own process group");
    assert_eq!(f[16], "7", "nice");
    assert_eq!(
        std::fs::read_link(format!("/proc/{task}/exe")).unwrap(),
        std::fs::canonicalize("/bin/sleep").unwrap()
    );
    // The test is meaningful: the agent holds more, and ignores signals.
    let mine = fds_of(agent);
    assert!(mine.iter().any(|f| f.0 == 9), "{mine:?}");
    assert!(
        mine.iter().any(|f| f.1 == h.p("agent.log")),
        "{mine:?} {}",
        h.p("agent.log")
    );
    // SIGUSR1 (10), SIGALRM (14), SIGTTOU (22) and 40 come from the test, SIGHUP,
    // SIGPIPE from the agent itself.
    let ign = u64::from_str_radix(&status_field(agent, "SigIgn"), 16).unwrap();
    for sig in [1, 10, 13, 14, 22, 40] {
        assert_eq!(ign >> (sig - 1) & 1, 1, "signal {sig} in {ign:x}");
    }
}

#[test]
fn the_child_gets_exactly_fds_0_to_2_the_minimal_env_and_default_signals() {
    let how = Start {
        close_stdio: false,
        // Ignored by the agent (besides what it ignores itself): never by its child.
        ignored: &[libc::SIGUSR1, libc::SIGALRM, libc::SIGTTOU, 40],
    };
    let (h, task) = probe("exec", how, |h, agent, task| {
        check_exec_state(h, agent, task);
        task
    });
    assert_eq!(
        h.events("event=task_start"),
        vec![format!(
            "level=info event=task_start name=probe pid={task} user=daemon command=\"/bin/sleep 2\""
        )]
    );
    assert_eq!(
        without_duration(&h.events("event=task_done")[0]).0,
        "level=info event=task_done name=probe exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );
}

#[test]
fn an_agent_started_with_fds_0_to_2_closed_still_gives_its_child_0_to_2() {
    let how = Start {
        close_stdio: true,
        ignored: &[],
    };
    let (_, fds) = probe("exec-closed", how, |_, _, task| fds_of(task));
    let numbers: Vec<i32> = fds.iter().map(|f| f.0).collect();
    assert_eq!(numbers, vec![0, 1, 2], "{fds:?}");
    assert_eq!(fds[0].1, "/dev/null", "{fds:?}");
}

#[test]
fn the_child_gets_default_dispositions_for_every_signal() {
    let how = Start {
        close_stdio: false,
        ignored: &[32, 33, 34, 63, 64],
    };
    let (_, ign) = probe("exec-rt", how, |_, _, task| status_field(task, "SigIgn"));
    assert_eq!(ign, "0000000000000000");
}

// 2. Children start clean: their own working directory and umask.

/// Runs `--once` from `cwd` with umask `mask` (the agent's, which its children
/// must not inherit); returns its exit code.
fn once_from(h: &Host, cfg: &Path, cwd: &Path, mask: libc::mode_t) -> i32 {
    h.seed_cpu(0, 0, std::time::Duration::from_secs(60));
    let mut cmd = Command::new(bin());
    cmd.args(["-c", cfg.to_str().unwrap(), "--once"])
        .current_dir(cwd);
    // SAFETY: umask(2) only, async-signal-safe, between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(mask);
            Ok(())
        });
    }
    run_command(cmd).code
}

#[test]
fn tasks_the_mailer_and_the_alert_command_start_in_root_with_umask_022() {
    let h = task_host("cwd-umask");
    // The agent runs from a world-writable directory with umask 0000.
    let open = h.path("world-writable");
    std::fs::create_dir(&open).unwrap();
    chmod(&open, 0o777);
    let work = h.path("work");
    std::fs::create_dir(&work).unwrap();
    std::fs::create_dir(h.path("out")).unwrap();
    // Each child writes where it runs and its umask to out/NAME (a new file, so
    // its mode shows the umask too).
    let report = h.script(
        "report.sh",
        &format!(
            "/bin/cat > /dev/null\n{{ pwd -P; grep '^Umask:' /proc/self/status; }} > {}/$1\n",
            h.p("out")
        ),
    );
    h.mem(96);
    let cfg = h.config(Ini {
        thresholds: "for_cycles = 1",
        extra: &format!(
            "[alert]\nemail = ops@example.com\nsendmail = {report} mail\ncommand = {report} command\n\n{}\n{}",
            task("plain", &format!("{report} task"), "idle_cycles = 0"),
            task(
                "custom",
                &format!("{report} custom"),
                &format!("idle_cycles = 0\ncwd = {}\numask = 027", work.display())
            ),
        ),
        ..Ini::default()
    });
    let read = |name: &str| {
        let p = h.path("out").join(name);
        let mode = std::fs::metadata(&p).map(|m| m.mode() & 0o777).unwrap_or(0);
        (h.read(&format!("out/{name}")), format!("{mode:o}"))
    };
    let clean = ("/\nUmask:\t0022\n".to_string(), "644".to_string());
    // The first run starts task plain (one task a run) and tells the alert.
    assert_eq!(once_from(&h, &cfg, &open, 0), 2, "{}", h.log());
    for name in ["task", "mail", "command"] {
        assert_eq!(read(name), clean, "{name}: {}", h.log());
    }
    // The second starts task custom, in its cwd with its umask.
    assert_eq!(once_from(&h, &cfg, &open, 0), 2, "{}", h.log());
    let work = std::fs::canonicalize(&work).unwrap();
    assert_eq!(
        read("custom"),
        (
            format!("{}\nUmask:\t0027\n", work.display()),
            "640".to_string()
        ),
        "{}",
        h.log()
    );
    assert_eq!(std::fs::read_dir(&open).unwrap().count(), 0);
}

/// The service on `h` with task `name` that fails to start with error `error`:
/// logged once as an error, no `task_` event, no child left; not retried every
/// cycle.
fn cannot_start(h: &Host, name: &str, command: &str, keys: &str, error: &str) {
    let cfg = h.config(Ini::extra(&task(
        name,
        command,
        &format!("idle_cycles = 0\n{keys}"),
    )));
    let agent = h.spawn(&cfg);
    h.must_see("what=task", 1);
    assert_eq!(
        h.events("what=task"),
        vec![format!(
            "level=error event=error what=task error=\"{error}\" name={name}"
        )]
    );
    assert_eq!(h.events("event=task_"), Vec::<String>::new());
    // Not retried every cycle (a failed attempt waits min(1h, every)).
    h.wait_cycles(5);
    assert_eq!(h.events("what=task").len(), 1);
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_task_cwd_it_cannot_enter_is_an_error_and_leaves_no_child() {
    let h = task_host("cwd-missing");
    let missing = h.p("no/such/dir");
    cannot_start(
        &h,
        "lost",
        "/bin/true",
        &format!("cwd = {missing}"),
        &format!("cannot change directory to {missing}: No such file or directory"),
    );
}

#[test]
fn a_program_that_cannot_be_executed_is_an_error_and_leaves_no_child() {
    // Executable, but neither ELF nor a script with `#!`: execve fails (ENOEXEC).
    let h = task_host("enoexec");
    let bad = h.write("bad", "not a program\n");
    chmod(&bad, 0o755);
    cannot_start(
        &h,
        "bad",
        &bad.display().to_string(),
        "",
        "Exec format error",
    );
}

// 3. A task's user gets its supplementary groups from [paths] group.

/// Runs task `who` as user `probe` (uid 4242, gid 4343: ids this host need not
/// have) with `group` as `[paths] group`; returns its `Uid:`, `Gid:` and `Groups:`
/// lines (groups sorted), or the log when it did not run.
fn ids_of_task(h: &Host, group: &str) -> Result<Vec<String>, String> {
    h.passwd("root:x:0:0:root:/root:/bin/bash\nprobe:x:4242:4343::/nonexistent:/bin/sh\n");
    let out = h.path("out");
    std::fs::create_dir_all(&out).unwrap();
    std::os::unix::fs::chown(&out, Some(4242), Some(4343)).unwrap();
    let script = h.script(
        "ids.sh",
        &format!(
            "grep -E '^(Uid|Gid|Groups):' /proc/self/status > {}/ids\n",
            out.display()
        ),
    );
    let cfg = h.config(Ini::extra(&task(
        "who",
        &script,
        "idle_cycles = 0\nuser = probe",
    )));
    // [paths] group as given (the fixture's etc/group by default).
    let text = std::fs::read_to_string(&cfg).unwrap();
    let fixture = format!("\ngroup = {}\n", h.p("etc/group"));
    assert!(text.contains(&fixture), "{text}");
    std::fs::write(
        &cfg,
        text.replace(&fixture, &format!("\ngroup = {group}\n")),
    )
    .unwrap();
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    let text = h.read("out/ids");
    if text.is_empty() {
        return Err(h.log());
    }
    Ok(text
        .lines()
        .map(|l| {
            let (key, v) = l.split_once(':').unwrap();
            let mut ids: Vec<u32> = v.split_whitespace().map(|n| n.parse().unwrap()).collect();
            if key == "Groups" {
                ids.sort_unstable();
            }
            let ids: Vec<String> = ids.iter().map(u32::to_string).collect();
            format!("{key}: {}", ids.join(" "))
        })
        .collect())
}

/// `Uid:`, `Gid:` and then `groups` as `ids_of_task` gives them for `probe`.
fn probe_ids(groups: &str) -> Result<Vec<String>, String> {
    Ok(vec![
        "Uid: 4242 4242 4242 4242".to_string(),
        "Gid: 4343 4343 4343 4343".to_string(),
        format!("Groups: {groups}"),
    ])
}

#[test]
fn a_task_user_gets_its_supplementary_groups_from_the_group_file() {
    let h = task_host("groups");
    let group = h.write(
        "etc/group",
        "root:x:0:\nprimary:x:4343:\nlow:x:77:other,probe\nhigh:x:5001:probe\n\
         notmine:x:5002:other,probe2\n# comment:x:5003:probe\nbroken:x:probe\nalso:x:5004:probe,\n",
    );
    assert_eq!(
        ids_of_task(&h, &group.display().to_string()),
        probe_ids("77 4343 5001 5004")
    );
}

#[test]
fn without_a_group_file_a_task_user_gets_only_its_primary_group() {
    let h = task_host("groups-none");
    assert_eq!(
        ids_of_task(&h, &h.p("etc/no-group-file")),
        probe_ids("4343")
    );
}

#[test]
fn an_unreadable_group_file_skips_the_task() {
    let h = task_host("groups-bad");
    // A directory: read(2) fails with EISDIR, whoever reads it.
    let dir = h.path("etc/group.d");
    std::fs::create_dir_all(&dir).unwrap();
    let log = ids_of_task(&h, &dir.display().to_string()).unwrap_err();
    assert_eq!(
        events(&log, "event=task_"),
        vec![format!(
            "level=warn event=task_skipped name=who reason=\"cannot read {}: Is a directory\"",
            dir.display()
        )]
    );
}

// 4. task_skipped.

#[test]
fn a_task_that_cannot_run_is_skipped_once_per_config_load() {
    let h = task_host("skip");
    let missing = h.p("no/such/program");
    let cfg = h.config(Ini::extra(&format!(
        "{}\n{}",
        task(
            "gone",
            &format!("{missing} --flag"),
            "every = 1s\nidle_cycles = 0"
        ),
        task(
            "who",
            "/bin/true",
            "every = 1s\nidle_cycles = 0\nuser = nosuchuser"
        ),
    )));
    let agent = h.spawn(&cfg);
    let gone = format!(
        "level=warn event=task_skipped name=gone reason=\"{missing} is missing or not executable\""
    );
    let who = format!(
        "level=warn event=task_skipped name=who reason=\"user nosuchuser is not in {}\"",
        h.p("etc/passwd")
    );
    h.must_see("event=task_skipped", 2);
    // Both would be due again every second: still reported once (25 cycles of
    // 100 ms later).
    h.wait_cycles(25);
    assert_eq!(
        h.events("event=task_skipped"),
        vec![gone.clone(), who.clone()]
    );
    assert_eq!(h.events("event=task_start"), Vec::<String>::new());
    // A reload (same file) is a new config load: once more each.
    agent.signal(libc::SIGHUP);
    h.must_see("event=reload", 1);
    h.must_see("event=task_skipped", 4);
    h.wait_cycles(25);
    let mut got = h.events("event=task_skipped");
    got[2..].sort();
    assert_eq!(got, vec![gone.clone(), who.clone(), gone, who]);
    assert_eq!(h.events("event=task_start"), Vec::<String>::new());
    assert_eq!(children_of(agent.pid()), vec![]);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn an_agent_that_cannot_switch_users_skips_the_task() {
    let h = task_host("skip-nonroot");
    // The agent runs as nobody, without capabilities: its log and state are nobody's.
    let nobody = 65_534;
    std::fs::create_dir(h.path("state")).unwrap();
    chmod(&h.path("state"), 0o700);
    std::os::unix::fs::chown(h.path("state"), Some(nobody), Some(nobody)).unwrap();
    let log = h.write("agent.log", "");
    std::os::unix::fs::chown(&log, Some(nobody), Some(nobody)).unwrap();
    let marker = h.p("ran");
    let script = h.script("work.sh", &format!("touch {marker}\n"));
    let cfg = h.config(Ini::extra(&task(
        "as-daemon",
        &script,
        "idle_cycles = 0\nuser = daemon",
    )));
    let mut cmd = Command::new(bin());
    cmd.args(["-c", cfg.to_str().unwrap(), "--once"])
        .uid(nobody)
        .gid(nobody);
    let run = run_command(cmd);
    assert_eq!(
        h.events("event=task_"),
        vec![
            "level=warn event=task_skipped name=as-daemon reason=\"cannot run as daemon: needs root or cap_setuid and cap_setgid\""
                .to_string()
        ],
        "{}{}",
        h.log(),
        run.err
    );
    assert!(!Path::new(&marker).exists());
}

#[test]
fn a_reload_that_adds_the_missing_user_runs_the_task_at_once() {
    // every = 1h: without the reload, the skipped task would wait an hour.
    let h = task_host("skip-fix");
    std::fs::create_dir(h.path("carol")).unwrap();
    std::os::unix::fs::chown(h.path("carol"), Some(4001), Some(4001)).unwrap();
    let marker = h.p("carol/ran");
    let script = h.script("work.sh", &format!("touch {marker}\n"));
    let keys = "every = 1h\nidle_cycles = 0\nuser = carol";
    let cfg = h.config(Ini::extra(&task("who", &script, keys)));
    let agent = h.spawn(&cfg);
    h.must_see("event=task_skipped", 1);
    let passwd = h.read("etc/passwd");
    h.passwd(&format!(
        "{passwd}carol:x:4001:4001::/nonexistent:/bin/sh\n"
    ));
    agent.signal(libc::SIGHUP);
    h.must_see("event=task_done", 1);
    let done = h.events("event=task_done");
    assert_eq!(
        without_duration(&done[0]).0,
        "level=info event=task_done name=who exit=0 duration=D stdout_lines=0 stderr_lines=0"
    );
    let st = std::fs::metadata(&marker).unwrap();
    assert_eq!((st.uid(), st.gid()), (4001, 4001));
    assert_eq!(h.events("event=task_skipped").len(), 1);
    assert_eq!(agent.stop(), 0);
}

#[test]
fn a_skipped_task_is_reported_once_across_cron_runs_and_again_by_a_service_start() {
    let h = task_host("skip-cron");
    let missing = h.p("no/such/program");
    let keys = "every = 10ms\nidle_cycles = 0";
    let cfg = h.config(Ini::extra(&task("gone", &missing, keys)));
    let line = format!(
        "level=warn event=task_skipped name=gone reason=\"{missing} is missing or not executable\""
    );
    let mut attempts: Vec<u64> = Vec::new();
    for _ in 0..3 {
        if let Some(&last) = attempts.last() {
            // Due again: more than `every` since the last try (runs can be that quick).
            assert!(wait_for(LIMIT, || now_ns() - last > 20_000_000));
        }
        let run = h.once_seeded(&cfg, &[]);
        assert_eq!(run.code, 0, "{}{}", run.out, run.err);
        attempts.push(task_state(&h, "gone").unwrap().1);
    }
    // Each run tried it (the attempt moved on); only the first reported it.
    assert!(attempts.windows(2).all(|w| w[1] > w[0]), "{attempts:?}");
    assert_eq!(h.events("event=task_skipped"), vec![line.clone()]);
    // A service start is a new configuration: tried at once, reported once more.
    let agent = h.spawn(&cfg);
    h.must_see("event=task_skipped", 2);
    h.wait_cycles(5);
    assert_eq!(agent.stop(), 0);
    assert_eq!(h.events("event=task_skipped"), vec![line.clone(), line]);
}
