//! Alert mail end to end: the built binary against fixture /proc trees, mailing
//! through the real `msmtp` into an `aiosmtpd` Maildir sink on 127.0.0.1 (RECIPES
//! "msmtp"): every header and the top processes, the cooldown across `--once`
//! runs, reminders from the service, an MTA that is down and comes back, one
//! Message-ID per message, and a non-ASCII mount's mail as Python's strict mail
//! parser reads it. Every process a test starts (the sink, the agent, the
//! namespace's shell) is stopped by its pid when the test ends, also when an
//! assertion fails.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// `date -u` (an oracle independent of the agent's own time formatting).
fn date(ns: u64, format: &str) -> String {
    let out = Command::new("/usr/bin/date")
        .env("LC_ALL", "C")
        .args(["-u", "-d", &format!("@{}", ns / 1_000_000_000), format])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim_end()
        .to_string()
}

/// `email = …` and `sendmail` into `sink`, then `more` lines.
fn mail_to(sink: &Sink, email: &str, more: &str) -> String {
    format!("email = {email}\nsendmail = {}\n{more}", sink.sendmail())
}

/// The send time in a Message-ID `<NS.PID.SEQ@HOST>`.
fn message_ns(id: &str) -> u64 {
    id.strip_prefix('<')
        .and_then(|s| s.split('.').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("Message-ID {id}"))
}

// 1. The real mail path: agent → msmtp → SMTP → aiosmtpd → Maildir.
#[test]
fn a_critical_mail_goes_through_msmtp_with_every_header_and_the_top_processes() {
    let h = alert_host("mail");
    let sink = Sink::start(&h);
    h.mem_exact(96);
    hostile_processes(&h);
    let cfg = alert_config(
        &h,
        &mail_to(&sink, "ops@example.com", ""),
        Ini::agent("top = 5"),
    );
    let run = h.once(&cfg, &[]);
    assert_eq!(
        run.out, "SYSTEM-AGENT CRITICAL - mem 96.0% | cpu=10.0%;80;90 mem=96.0%;85;95 load1=0.52\n",
        "{}",
        run.err
    );
    assert_eq!((run.code, run.err.as_str()), (2, ""));
    assert_eq!(
        h.events("event=alert_"),
        vec!["level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com"]
    );
    let mails = sink.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];

    // The time stamps: Message-ID <NS.PID.SEQ@HOST>, with NS from this run.
    let host = hostname();
    let id = header(mail, "Message-ID").expect("Message-ID");
    let ns = message_ns(id);
    assert!((run.start_ns..=run.end_ns).contains(&ns), "{id}");
    let id_host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    assert_eq!(id, format!("<{ns}.{}.1@{id_host}>", run.pid));
    let peer = header(mail, "X-Peer").expect("X-Peer");
    assert!(peer.starts_with("('127.0.0.1', "), "{peer}");

    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let mib = |pages: u64| format!("{:.1}", (pages * page) as f64 / 1048576.0);
    let x = format!("pid 100 alice x Bcc: x@y: cpu 5.0%, rss {} MiB", mib(1000));
    let bash = format!("pid 101 root bash: cpu 1.0%, rss {} MiB", mib(2000));
    let expected = format!(
        "From: system-agent@{host}\n\
         To: ops@example.com\n\
         Subject: [system-agent] {host} CRITICAL: mem 96.0% (threshold 95)\n\
         Date: {date}\n\
         Message-ID: {id}\n\
         MIME-Version: 1.0\n\
         Content-Type: text/plain; charset=utf-8\n\
         Content-Transfer-Encoding: quoted-printable\n\
         Auto-Submitted: auto-generated\n\
         X-System-Agent-Key: mem\n\
         X-Peer: {peer}\n\
         X-MailFrom: agent@test.invalid\n\
         X-RcptTo: ops@example.com\n\
         \n\
         Host:      {host}\n\
         Metric:    mem 96.0%\n\
         Level:     CRITICAL (was OK)\n\
         Threshold: 95\n\
         Time:      {time}.{millis:03}Z\n\
         \n\
         Top processes:\n  \
         by cpu #1: {x}\n  \
         by cpu #2: {bash}\n  \
         by rss #1: {bash}\n  \
         by rss #2: {x}\n",
        date = date(ns, "+%a, %d %b %Y %H:%M:%S +0000"),
        time = date(ns, "+%Y-%m-%dT%H:%M:%S"),
        millis = ns / 1_000_000 % 1000,
    );
    assert_eq!(*mail, expected);
    // Spelled out: the newline in the process name forged no header, the sink saw
    // one recipient, and the name is in the body on one line.
    let head = mail.split("\n\n").next().unwrap();
    assert!(
        !head
            .lines()
            .any(|l| l.to_ascii_lowercase().starts_with("bcc")),
        "{head}"
    );
    assert_eq!(header(mail, "X-RcptTo"), Some("ops@example.com"));
    assert!(mail.contains("\n  by cpu #1: pid 100 alice x Bcc: x@y: cpu "));
}

// 2. Told once, quiet through the cooldown, the recovery once, no flapping storm;
//    kept in state_dir across --once runs.
#[test]
fn cooldown_holds_across_once_runs_and_the_recovery_is_told_once() {
    let h = alert_host("cooldown");
    let sink = Sink::start(&h);
    let alert = mail_to(
        &sink,
        "ops@example.com, oncall@example.com",
        "cooldown = 1h",
    );
    let cfg = alert_config(&h, &alert, Ini::default());
    let host = hostname();
    let to = "to=ops@example.com,oncall@example.com";
    h.mem_exact(96);
    for run in 1..=10 {
        assert_eq!(h.once(&cfg, &[]).code, 2, "run {run}");
        assert_eq!(sink.mails().len(), 1, "run {run}");
    }
    assert_eq!(
        h.events("event=alert_"),
        vec![format!(
            "level=info event=alert_sent metric=mem state=critical via=mail {to}"
        )]
    );
    let mail = &sink.mails()[0];
    for name in ["To", "X-RcptTo"] {
        assert_eq!(
            header(mail, name),
            Some("ops@example.com, oncall@example.com")
        );
    }

    h.mem_exact(50);
    for run in 1..=4 {
        assert_eq!(h.once(&cfg, &[]).code, 0, "recovered run {run}");
    }
    let mails = sink.mails();
    assert_eq!(
        subjects(&mails),
        vec![
            format!("[system-agent] {host} CRITICAL: mem 96.0% (threshold 95)"),
            format!("[system-agent] {host} RECOVERED: mem 50.0% (threshold 95)"),
        ]
    );
    assert!(
        mails[1].contains("\nLevel:     OK (was CRITICAL)\n"),
        "{}",
        mails[1]
    );
    assert!(!mails[1].contains("Top processes:"), "{}", mails[1]);

    // Flapping back to critical within the cooldown (and down again): nothing more.
    for (run, pct) in [96, 96, 50, 96, 50].into_iter().enumerate() {
        h.mem_exact(pct);
        h.once(&cfg, &[]);
        assert_eq!(sink.mails().len(), 2, "flap run {run}");
    }
    assert_eq!(
        h.events("event=alert_"),
        vec![
            format!("level=info event=alert_sent metric=mem state=critical via=mail {to}"),
            format!("level=info event=alert_sent metric=mem state=recovered via=mail {to}"),
        ]
    );
}

// 3. While the level holds, a reminder every cooldown (service loop).
#[test]
fn the_service_reminds_every_cooldown_while_the_level_holds() {
    let h = alert_host("remind");
    let sink = Sink::start(&h);
    h.mem_exact(96);
    let alert = mail_to(&sink, "ops@example.com", "cooldown = 2s");
    let cfg = alert_config(&h, &alert, Ini::default());
    let agent = h.spawn(&cfg);
    // The first mail at once, then a reminder every cooldown. A mail reaches the
    // sink before its mailer exits and is logged: wait for both.
    assert!(
        wait_for(LIMIT, || {
            sink.mails().len() >= 3 && h.events("event=alert_").len() >= 3
        }),
        "{}",
        h.log()
    );
    assert_eq!(agent.stop(), 0);
    // A slow machine may have sent a fourth by the time the agent stopped.
    let mails: Vec<String> = sink.mails().into_iter().take(3).collect();
    let host = hostname();
    let first = format!("[system-agent] {host} CRITICAL: mem 96.0% (threshold 95)");
    let still = format!("[system-agent] {host} CRITICAL (still): mem 96.0% (threshold 95)");
    assert_eq!(subjects(&mails), vec![first, still.clone(), still]);
    let sent = "level=info event=alert_sent metric=mem state=critical via=mail to=ops@example.com";
    let sent_lines = h.events("event=alert_");
    assert_eq!(
        sent_lines[..3],
        [
            sent.to_string(),
            format!("{sent} reminder=yes"),
            format!("{sent} reminder=yes"),
        ]
    );
    // Never sooner than the cooldown (the Message-IDs carry the send times).
    let times: Vec<u64> = mails
        .iter()
        .map(|m| message_ns(header(m, "Message-ID").unwrap()))
        .collect();
    for w in times.windows(2) {
        let gap = Duration::from_nanos(w[1] - w[0]);
        assert!(gap >= Duration::from_secs(2), "{gap:?}");
    }
    assert!(
        mails[1]
            .contains("\nThis level still holds; the next reminder comes after the cooldown.\n")
    );
}

// 4. msmtp with the sink down: EX_TEMPFAIL and msmtp's own words in error=.
#[test]
fn msmtp_with_the_sink_down_is_alert_failed_exit_75() {
    let h = alert_host("down");
    let port = free_port();
    let alert = format!("email = ops@example.com\nsendmail = {}", sendmail_to(port));
    let failed = format!(
        "exit=75 error=\"msmtp: cannot connect to 127.0.0.1, port {port}: Connection refused\\n\
         msmtp: could not send mail\""
    );
    mail_fails(&h, &alert, &failed);
}

// Two alerts in one cycle are two messages, each with its own Message-ID.
#[test]
fn two_alerts_in_one_cycle_have_distinct_message_ids() {
    let h = alert_host("msgid");
    let sink = Sink::start(&h);
    h.mem_exact(96);
    let more = Ini {
        // load1 0.52 on 2 CPUs is 0.26 per CPU: critical too.
        thresholds: "load_warn = 0.1\nload_crit = 0.2",
        ..Ini::default()
    };
    let cfg = alert_config(&h, &mail_to(&sink, "ops@example.com", ""), more);
    assert_eq!(h.once(&cfg, &[]).code, 2);
    let mails = sink.mails();
    let mut keys: Vec<&str> = mails
        .iter()
        .map(|m| header(m, "X-System-Agent-Key").unwrap())
        .collect();
    keys.sort();
    assert_eq!(keys, vec!["load", "mem"]);
    // The load as the status line says it: the host's, on its CPUs.
    let host = hostname();
    let mut said = subjects(&mails);
    said.sort();
    assert_eq!(
        said,
        [
            format!("[system-agent] {host} CRITICAL: load 0.52 on 2 cpus (threshold 0.2 per cpu)"),
            format!("[system-agent] {host} CRITICAL: mem 96.0% (threshold 95)"),
        ]
    );
    let ids: Vec<&str> = mails
        .iter()
        .map(|m| header(m, "Message-ID").unwrap())
        .collect();
    assert_ne!(ids[0], ids[1], "RFC 5322 §3.6.4: a Message-ID is unique");
}

// A delivery that failed (the MTA was down: EX_TEMPFAIL) is tried again on the
// next cycle instead of being counted as told for the whole cooldown.
#[test]
fn a_failed_delivery_is_retried_on_the_next_run() {
    let h = alert_host("retry");
    h.mem_exact(96);
    let alert = |port: u16| format!("email = ops@example.com\nsendmail = {}", sendmail_to(port));
    let cfg = alert_config(&h, &alert(free_port()), Ini::default());
    h.once(&cfg, &[]);
    assert_eq!(h.events("event=alert_failed").len(), 1, "{}", h.log());
    // The MTA is back.
    let sink = Sink::start(&h);
    let cfg = alert_config(&h, &alert(sink.port), Ini::default());
    h.once(&cfg, &[]);
    assert_eq!(sink.mails().len(), 1, "{}", h.log());
    assert_eq!(h.events("event=alert_sent").len(), 1, "{}", h.log());
}

// A mount named `données` (a 1 MiB tmpfs, 250 of its 256 pages filled, in a
// private mount namespace) and a process whose name is not UTF-8: the mail goes
// through msmtp and aiosmtpd, and Python's strict parser reads exactly the text
// meant, without a defect, from a message whose every line is ASCII within 78.
#[test]
fn a_non_ascii_mount_mail_is_7_bit_and_parses_strictly_to_the_text_meant() {
    let h = alert_host("utf8");
    let sink = Sink::start(&h);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64;
    let mount = h.p("données");
    std::fs::create_dir_all(&mount).unwrap();
    let ns = MountNs::new(&format!(
        "mount -t tmpfs -o size={} tmpfs '{mount}'\n\
         head -c {} /dev/zero > '{mount}/fill'",
        256 * page,
        250 * page
    ));
    // Memory at its warning level: the top processes are listed, nothing mailed.
    h.mem_exact(90);
    let mut stat = pid_stat(100, "@", 1, 0, 600, 5000, 1000).into_bytes();
    let at = stat.iter().position(|&b| b == b'@').unwrap();
    stat.splice(at..=at, b"caf\xe9 cr\xc3\xa8me".iter().copied());
    h.write("proc/100/stat", stat);
    h.write(
        "proc/100/status",
        "Name:\tcaf\\351 cr\u{e8}me\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nCapEff:\t0\n",
    );
    h.write("proc/100/cmdline", "x\0");
    h.seed_procs("100 5000 100\n");
    let more = Ini {
        agent: "top = 5",
        mounts: &mount,
        ..Ini::default()
    };
    let cfg = alert_config(&h, &mail_to(&sink, "ops@example.com", ""), more);
    h.tick();
    let run = ns.once(&cfg, &[]);
    let said = format!("SYSTEM-AGENT CRITICAL - disk {mount} 98%, mem 90.0% | ");
    assert!(run.out.starts_with(&said), "{}{}", run.out, run.err);
    let sent = h.events("event=alert_");
    assert_eq!(sent.len(), 1, "{sent:?}");
    let (head, tail) = (
        "level=info event=alert_sent metric=disk mount=",
        " state=critical via=mail to=ops@example.com",
    );
    assert!(
        sent[0].starts_with(head) && sent[0].ends_with(tail),
        "{sent:?}"
    );
    let raw = sink.raw_mails();
    assert_eq!(raw.len(), 1);
    for line in raw[0].split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        assert!(line.is_ascii() && line.len() <= 78, "{text:?}");
    }

    let mail = parse_strict(&raw[0]);
    let host = hostname();
    assert_eq!(
        mail.subject,
        format!("[system-agent] {host} CRITICAL: disk {mount} 98% (threshold 95)")
    );
    assert_eq!(mail.key, format!("disk:{mount}"));
    assert_eq!(
        (mail.from, mail.to),
        (format!("system-agent@{host}"), "ops@example.com".into())
    );
    assert_eq!(mail.content_type, "text/plain; charset=utf-8");
    assert_eq!(mail.transfer_encoding, "quoted-printable");
    assert_eq!(mail.defects, "");
    let text = String::from_utf8_lossy(&raw[0]);
    let ns_sent = message_ns(header(&text, "Message-ID").expect("Message-ID"));
    let mib = format!("{:.1}", (1000 * page) as f64 / 1048576.0);
    let proc = format!("pid 100 root caf\u{FFFD} cr\u{e8}me: cpu 5.0%, rss {mib} MiB");
    assert_eq!(
        mail.body,
        format!(
            "Host:      {host}\n\
             Metric:    disk {mount} 98%\n\
             Level:     CRITICAL (was OK)\n\
             Threshold: 95\n\
             Time:      {time}.{millis:03}Z\n\
             \n\
             Top processes:\n  \
             by cpu #1: {proc}\n  \
             by rss #1: {proc}\n",
            time = date(ns_sent, "+%Y-%m-%dT%H:%M:%S"),
            millis = ns_sent / 1_000_000 % 1000,
        )
    );
}
