//! Alert delivery through scripts in the test's temp dir as the mailer and the
//! alert command, against the built binary: hung mailers killed with their
//! process group, the command's `SA_*` environment, `min_level`, `--dry-run`,
//! flapping, clocks set back, and the service's recovery mail. (The real msmtp
//! path: alerts_mail.rs.) Every process a test starts (the agent, what a mailer
//! script forks) is stopped by its pid when the test ends, also when an
//! assertion fails.

mod common;

use common::*;

/// `[alert]` with `email = ops@example.com` and `sendmail = MAILER ARGS`.
fn mailer(mailer: &str, more: &str) -> String {
    format!("email = ops@example.com\nsendmail = {mailer}\n{more}")
}

/// A mailer script (`prelude`, then a forked sleep and a wait) that outlives its
/// 1 s timeout: `--once` returns (a run that waited for the sleep would hang),
/// logs `alert_failed` with `exit` no sooner than `at_least_ms` after the cycle
/// began (by the log's clock), and both the script and its sleep are gone.
fn hung_mailer(tag: &str, prelude: &str, exit: &str, at_least_ms: i64) {
    let h = alert_host(tag);
    let pids = h.p("pids");
    let script = h.script(
        "hang.sh",
        &format!("{prelude}/bin/sleep 1000 &\necho $$ $! > {pids}\nwait\n"),
    );
    let _forked = Leftovers::in_file(h.path("pids"));
    let alert = mailer(&format!("{script} -t"), "timeout = 1s");
    let failed = format!("exit=\"{exit}\" error=\"timed out after 1s\"");
    mail_fails(&h, &alert, &failed);
    let log = h.log();
    // From the cycle's sample line, logged before the mailer starts.
    let took = first_ts_ms(&log, "event=alert_failed") - first_ts_ms(&log, "event=sample");
    assert!(took >= at_least_ms, "{took} ms\n{log}");
    // The script and the sleep it forked are both gone (the sleep, reparented, may
    // linger as a zombie until its new parent reaps it).
    let pids = pids_in(&h.path("pids"));
    assert_eq!(pids.len(), 2, "{}", h.read("pids"));
    assert!(
        wait_for(LIMIT, || !pids.iter().any(|&p| running(p))),
        "still running: {pids:?}"
    );
}

// 1a. A mailer that hangs is killed with its process group at the timeout.
#[test]
fn a_hung_mailer_is_killed_with_its_group_at_the_timeout() {
    hung_mailer("hang", "", "signal 15", 1000);
}

// 1b. A mailer that ignores SIGTERM gets SIGKILL 5 s later; --once still returns.
#[test]
fn a_mailer_ignoring_sigterm_is_killed_5_s_later() {
    hung_mailer("hang-term", "trap '' TERM\n", "signal 9", 6000);
}

// 1c. A mailer that cannot be started is alert_failed with the reason.
#[test]
fn a_missing_mailer_is_alert_failed() {
    let h = alert_host("nomailer");
    let missing = h.p("no/such/sendmail");
    let alert = mailer(&format!("{missing} -t"), "");
    mail_fails(&h, &alert, "error=\"No such file or directory\"");
}

/// The environment dumps `env.sh` appended to T/env.out, one block per run.
fn env_blocks(h: &Host) -> Vec<Vec<String>> {
    h.read("env.out")
        .split_terminator("--\n")
        .map(|b| b.lines().map(str::to_string).collect())
        .collect()
}

fn env_script(h: &Host) -> String {
    let out = h.p("env.out");
    h.script(
        "env.sh",
        &format!("/usr/bin/tr '\\0' '\\n' < /proc/$$/environ >> {out}\necho -- >> {out}\n"),
    )
}

/// What `env.sh` prints for an alert: PATH, LANG=C and the `SA_*` variables
/// (level, metric, value, threshold, the host, the subject, the previous level,
/// not a reminder), then `more`.
fn sa_env(level: &str, value: &str, threshold: &str, subject: &str, previous: &str) -> Vec<String> {
    let host = hostname();
    let metric = subject.split(' ').next().unwrap_or_default();
    let word = if level == "OK" { "RECOVERED" } else { level };
    vec![
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        "LANG=C".into(),
        format!("SA_LEVEL={level}"),
        format!("SA_METRIC={metric}"),
        format!("SA_VALUE={value}"),
        format!("SA_THRESHOLD={threshold}"),
        format!("SA_HOST={host}"),
        format!("SA_MESSAGE=[system-agent] {host} {word}: {subject} (threshold {threshold})"),
        format!("SA_PREVIOUS={previous}"),
        "SA_REMINDER=no".into(),
    ]
}

// 2a. The alert command gets the alert in SA_* variables, PATH and LANG=C, no more.
#[test]
fn the_alert_command_gets_exactly_the_sa_variables() {
    let h = alert_host("command");
    let cmd = env_script(&h);
    h.mem_exact(96);
    let cfg = alert_config(&h, &format!("command = {cmd}"), Ini::default());
    assert_eq!(h.once(&cfg, &[]).code, 2);
    h.mem_exact(50);
    assert_eq!(h.once(&cfg, &[]).code, 0);
    assert_eq!(
        env_blocks(&h),
        vec![
            sa_env("CRITICAL", "96", "95", "mem 96.0%", "OK"),
            sa_env("OK", "50", "95", "mem 50.0%", "CRITICAL"),
        ]
    );
    assert_eq!(
        h.events("event=alert_"),
        vec![
            "level=info event=alert_sent metric=mem state=critical via=command",
            "level=info event=alert_sent metric=mem state=recovered via=command",
        ]
    );
}

// 2b. A disk alert names its mount in SA_MOUNT (and in the log).
#[test]
fn a_disk_alert_command_gets_sa_mount() {
    let h = alert_host("disk");
    let cmd = env_script(&h);
    let mount = h.p("");
    let mount = mount.trim_end_matches('/');
    let more = Ini {
        thresholds: "disk_warn = 0\ndisk_crit = 0",
        mounts: mount,
        ..Ini::default()
    };
    let cfg = alert_config(&h, &format!("command = {cmd}"), more);
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{} {}", run.out, run.err);
    let blocks = env_blocks(&h);
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    let env = &blocks[0];
    let value = env
        .iter()
        .find_map(|l| l.strip_prefix("SA_VALUE="))
        .expect("SA_VALUE")
        .to_string();
    assert!(value.parse::<u32>().is_ok_and(|v| v <= 100), "{value}");
    let subject = format!("disk {mount} {value}%");
    let mut want = sa_env("CRITICAL", &value, "0", &subject, "OK");
    want.push(format!("SA_MOUNT={mount}"));
    assert_eq!(*env, want);
    assert_eq!(
        h.events("event=alert_"),
        vec![format!(
            "level=info event=alert_sent metric=disk mount={mount} state=critical via=command"
        )]
    );
}

// 2c. SA_VALUE is the value the message shows (96.0%), not float noise.
#[test]
fn sa_value_is_the_value_the_message_shows() {
    let h = alert_host("savalue");
    let cmd = env_script(&h);
    // 1,006,632 of 1,048,576 kB: 95.99998…%, shown as 96.0%.
    h.mem(96);
    let cfg = alert_config(&h, &format!("command = {cmd}"), Ini::default());
    assert_eq!(h.once(&cfg, &[]).code, 2);
    let blocks = env_blocks(&h);
    assert_eq!(blocks.len(), 1);
    let host = hostname();
    assert!(
        blocks[0].contains(&format!(
            "SA_MESSAGE=[system-agent] {host} CRITICAL: mem 96.0% (threshold 95)"
        )),
        "{blocks:?}"
    );
    assert!(blocks[0].contains(&"SA_VALUE=96".to_string()), "{blocks:?}");
}

// 3a. min_level: a warning is not told by default, and is with min_level = warning;
//     the message the mailer gets has CRLF line ends and a fixed argv.
#[test]
fn min_level_decides_whether_a_warning_is_told() {
    let h = alert_host("minlevel");
    let capture = capture_mailer(&h);
    h.mem_exact(90);
    let alert = mailer(&format!("{capture} -t -i"), "from = agent@example.org");
    let cfg = alert_config(&h, &alert, Ini::default());
    assert_eq!(h.once(&cfg, &[]).code, 1);
    assert_eq!(captured(&h).len(), 0);
    assert_eq!(h.events("event=alert_"), Vec::<String>::new());

    let cfg = alert_config(&h, &format!("{alert}\nmin_level = warning"), Ini::default());
    assert_eq!(h.once(&cfg, &[]).code, 1);
    assert_eq!(h.once(&cfg, &[]).code, 1);
    assert_eq!(
        h.events("event=alert_"),
        vec!["level=info event=alert_sent metric=mem state=warning via=mail to=ops@example.com"]
    );
    let mails = captured(&h);
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    let host = hostname();
    let (head, body) = mail.split_once("\r\n\r\n").expect("a blank line");
    assert_eq!(
        mail.matches('\n').count(),
        mail.matches("\r\n").count(),
        "bare LF in {mail:?}"
    );
    assert_eq!(mail.matches('\r').count(), mail.matches("\r\n").count());
    let head: Vec<&str> = head.split("\r\n").collect();
    assert_eq!(head.len(), 10, "{head:?}");
    assert_eq!(head[0], "From: agent@example.org");
    assert_eq!(head[1], "To: ops@example.com");
    assert_eq!(
        head[2],
        format!("Subject: [system-agent] {host} WARNING: mem 90.0% (threshold 85)")
    );
    assert!(head[3].starts_with("Date: ") && head[3].ends_with(" +0000"));
    assert!(head[4].starts_with("Message-ID: <") && head[4].ends_with('>'));
    assert_eq!(
        head[5..].to_vec(),
        vec![
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: quoted-printable",
            "Auto-Submitted: auto-generated",
            "X-System-Agent-Key: mem",
        ]
    );
    assert!(
        body.starts_with(&format!(
            "Host:      {host}\r\nMetric:    mem 90.0%\r\nLevel:     WARNING (was OK)\r\nThreshold: 85\r\nTime:      "
        )),
        "{body:?}"
    );
    let argv = std::fs::read_dir(h.path("out"))
        .unwrap()
        .flatten()
        .find(|e| e.file_name().to_string_lossy().starts_with("argv."))
        .map(|e| std::fs::read_to_string(e.path()).unwrap());
    assert_eq!(argv.as_deref(), Some("-t\n-i\n"));
}

// 3b. With min_level = warning, a value flapping between warning and critical is
//     told once per level, not on every flap (the same alert not again within
//     cooldown).
#[test]
fn flapping_between_warning_and_critical_does_not_storm() {
    let h = alert_host("flapwc");
    let capture = capture_mailer(&h);
    let cfg = alert_config(&h, &mailer(&capture, "min_level = warning"), Ini::default());
    for pct in [96, 90, 96, 90, 96, 90] {
        h.mem_exact(pct);
        h.once(&cfg, &[]);
    }
    let mails = captured(&h);
    let subjects: Vec<&str> = mails
        .iter()
        .map(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
        })
        .collect();
    let critical = subjects
        .iter()
        .filter(|s| s.contains(" CRITICAL: "))
        .count();
    let warning = subjects.iter().filter(|s| s.contains(" WARNING: ")).count();
    assert_eq!((critical, warning <= 1), (1, true), "{subjects:#?}");
}

// 4a. --dry-run logs what it would send, with dry_run=yes, and runs nothing.
#[test]
fn dry_run_logs_the_alert_and_runs_nothing() {
    let h = alert_host("dry");
    let capture = capture_mailer(&h);
    let cmd = env_script(&h);
    h.mem_exact(96);
    let cfg = alert_config(
        &h,
        &mailer(&capture, &format!("command = {cmd}")),
        Ini::default(),
    );
    assert_eq!(h.once(&cfg, &["--dry-run"]).code, 2);
    assert_eq!(
        h.events("event=alert_"),
        vec![
            "level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com dry_run=yes",
            "level=info event=alert_sent metric=mem state=critical via=command dry_run=yes",
        ]
    );
    assert_eq!(captured(&h).len(), 0);
    assert!(!h.path("env.out").exists());
}

// 4b. A dry run tells nobody, so it must not use up the real alert's cooldown.
#[test]
fn a_dry_run_does_not_silence_the_next_real_run() {
    let h = alert_host("dryreal");
    let capture = capture_mailer(&h);
    h.mem_exact(96);
    let cfg = alert_config(&h, &mailer(&capture, ""), Ini::default());
    h.once(&cfg, &["--dry-run"]);
    h.once(&cfg, &["--dry-run"]);
    assert_eq!(captured(&h).len(), 0);
    // Dry runs remember what they logged (in their own state file): one line.
    assert_eq!(
        h.events("event=alert_"),
        vec![
            "level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com dry_run=yes"
        ]
    );
    h.once(&cfg, &[]);
    assert_eq!(captured(&h).len(), 1, "{}", h.log());
    assert!(h.path("state/alerts.dry-run").exists());
}

// 5. The service's recovery mail (a cycle without a process scan) carries no
//    process list left over from an earlier cycle.
#[test]
fn a_recovery_mail_from_the_service_has_no_stale_process_list() {
    let h = alert_host("stale");
    let capture = capture_mailer(&h);
    hostile_processes(&h);
    h.mem_exact(96);
    let cfg = alert_config(&h, &mailer(&capture, ""), Ini::agent("top = 5"));
    let agent = h.spawn(&cfg);
    h.must_see("event=alert_sent", 1);
    assert!(captured(&h)[0].contains("\r\nTop processes:\r\n"));
    h.mem_exact(50);
    assert!(
        wait_for(LIMIT, || h.events("event=alert_sent").len() == 2),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
    let recovery = &captured(&h)[1];
    assert!(recovery.contains(" RECOVERED: mem 50.0%"), "{recovery}");
    assert!(!recovery.contains("Top processes:"), "{recovery}");
}

// 6. Time going backwards: what was told at a time in the future (the clock was
//    stepped back, the state came from another host) counts as long ago, so it
//    cannot silence a new alert; the saved times are corrected.
#[test]
fn alert_times_in_the_future_do_not_silence_a_new_critical() {
    let h = alert_host("future");
    let capture = capture_mailer(&h);
    h.mem_exact(96);
    let cfg = alert_config(&h, &mailer(&capture, ""), Ini::default());
    // Recovered, told ten years ahead; a failed delivery's retry later still.
    let future = now_ns() + 10 * 365 * 86_400 * 1_000_000_000;
    h.write(
        "state/alerts",
        format!(
            "system-agent-alerts 1\ntold 0 {future} {future} {future} {} mem\nend\n",
            future + 1
        ),
    );
    let run = h.once(&cfg, &[]);
    assert_eq!(run.code, 2, "{} {}", run.out, run.err);
    assert_eq!(captured(&h).len(), 1, "{}", h.log());
    assert_eq!(
        h.events("event=alert_"),
        vec!["level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com"]
    );
    let saved = h.read("state/alerts");
    let told: Vec<&str> = saved
        .lines()
        .find(|l| l.ends_with(" mem"))
        .unwrap_or_else(|| panic!("{saved}"))
        .split(' ')
        .collect();
    let stamp = |i: usize| told[i].parse::<u64>().unwrap();
    assert_eq!((told[1], told[3], stamp(5)), ("2", "0", 0), "{saved}");
    for i in [2, 4] {
        assert!(
            (run.start_ns..=run.end_ns).contains(&stamp(i)),
            "{saved} {run_start} {run_end}",
            run_start = run.start_ns,
            run_end = run.end_ns
        );
    }
    // Told now: the next run keeps quiet for the cooldown.
    h.once(&cfg, &[]);
    assert_eq!(captured(&h).len(), 1, "{}", h.log());
}
