//! An alert as its routes carry it: the mail (RFC 5322, for `[alert] sendmail`)
//! and the `SA_*` variables (for `[alert] command`). Nothing from the host
//! (names, paths, values) can put a CR or LF into a header; `mime` encodes what
//! is not ASCII, so the message is 7-bit with short lines.

use super::decide::Notice;
use super::mime;
use crate::judge::{Kind, Status};
use std::fmt::Write as _;

/// Replaces what could end or extend a header line (CR, LF, other controls).
pub fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `disk /var 96%`, `cpu 93.1%`, `load 0.52 on 2 cpus` (the host's load, as the
/// status line says it).
pub fn describe(n: &Notice) -> String {
    let what = match &n.mount {
        Some(m) => format!("{} {m}", n.kind.name()),
        None => n.kind.name().to_string(),
    };
    let value = match (n.value, n.kind, n.host_load) {
        (Some(_), Kind::Load, Some((one, cpus))) => {
            let s = if cpus == 1 { "" } else { "s" };
            format!(" {one:.2} on {cpus} cpu{s}")
        }
        (Some(v), Kind::Load, None) => format!(" {v:.2} per cpu"),
        (Some(v), k, _) if k.is_eta() => format!(" full in {}", crate::timefmt::fmt_span(v as u64)),
        (Some(v), k, _) => format!(" {v:.prec$}%", prec = k.decimals()),
        (None, _, _) => " unknown".to_string(),
    };
    format!("{what}{value}")
}

pub fn subject(n: &Notice, host: &str) -> String {
    let word = match (n.recovery, n.reminder) {
        (true, _) => "RECOVERED".to_string(),
        (false, true) => format!("{} (still)", n.level.nagios()),
        (false, false) => n.level.nagios().to_string(),
    };
    let limit = n
        .threshold
        .map(|t| format!(" (threshold {})", threshold(n, t)))
        .unwrap_or_default();
    header_safe(&format!(
        "[system-agent] {host} {word}: {}{limit}",
        describe(n)
    ))
}

/// A limit as configured; a load limit is per CPU, and says so where the value
/// shown is the host's.
fn threshold(n: &Notice, t: f64) -> String {
    match n.host_load {
        Some(_) => format!("{t} per cpu"),
        None => format!("{t}"),
    }
}

/// The whole mail: headers (every value made header-safe and encoded when not
/// ASCII), a blank line, the body (UTF-8, quoted-printable).
/// `top` is this cycle's process list, if it made one; `seq` tells apart the
/// messages one process sends in the same nanosecond (distinct Message-IDs).
#[allow(clippy::too_many_arguments)]
pub fn message(
    n: &Notice,
    host: &str,
    from: &str,
    to: &[String],
    now_ns: u64,
    pid: u32,
    seq: u64,
    top: &[String],
) -> String {
    let mut m = String::new();
    let mut date = String::new();
    crate::timefmt::rfc5322(now_ns, &mut date);
    mime::addresses(&mut m, "From", &[from]);
    mime::addresses(&mut m, "To", to);
    mime::unstructured(&mut m, "Subject", &subject(n, host));
    let _ = write!(m, "Date: {date}\r\n");
    let _ = write!(
        m,
        "Message-ID: <{now_ns}.{pid}.{seq}@{}>\r\n",
        id_host(host)
    );
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n");
    m.push_str("Content-Transfer-Encoding: quoted-printable\r\n");
    m.push_str("Auto-Submitted: auto-generated\r\n");
    mime::unstructured(&mut m, "X-System-Agent-Key", &n.key);
    m.push_str("\r\n");
    mime::quoted_printable(&mut m, &body(n, host, now_ns, top));
    m
}

/// The host name as a Message-ID's right side (a dot-atom): its ASCII letters,
/// digits and `-`, in its non-empty labels; `localhost` when none is left.
fn id_host(host: &str) -> String {
    let mut out = String::new();
    for label in host.split('.') {
        let label = label
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '-');
        let at = out.len();
        out.push('.');
        out.extend(label);
        if out.len() == at + 1 {
            out.truncate(at);
        }
    }
    match out.strip_prefix('.') {
        Some(id) => id.to_string(),
        None => "localhost".to_string(),
    }
}

/// The mail's text: one line per field (a value's controls made spaces), then
/// the reminder note and this cycle's top processes.
pub fn body(n: &Notice, host: &str, now_ns: u64, top: &[String]) -> String {
    let mut body = String::new();
    let mut when = String::new();
    crate::timefmt::rfc3339_millis(now_ns, &mut when);
    let _ = writeln!(body, "Host:      {}", header_safe(host));
    let _ = writeln!(body, "Metric:    {}", header_safe(&describe(n)));
    let _ = writeln!(
        body,
        "Level:     {} (was {})",
        n.level.nagios(),
        n.previous.nagios()
    );
    if let Some(t) = n.threshold {
        let _ = writeln!(body, "Threshold: {}", threshold(n, t));
    }
    let _ = writeln!(body, "Time:      {when}");
    if n.reminder {
        body.push_str("\nThis level still holds; the next reminder comes after the cooldown.\n");
    }
    if !top.is_empty() {
        body.push_str("\nTop processes:\n");
        for line in top {
            let _ = writeln!(body, "  {}", header_safe(line));
        }
    }
    body
}

/// `SA_*` variables for `[alert] command`.
pub fn env(n: &Notice, host: &str) -> Vec<(String, String)> {
    let fmt = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    let mut out = vec![
        (
            "SA_LEVEL".to_string(),
            if n.level == Status::Ok {
                "OK"
            } else {
                n.level.nagios()
            }
            .to_string(),
        ),
        ("SA_METRIC".to_string(), n.kind.name().to_string()),
        ("SA_VALUE".to_string(), fmt(n.value)),
        ("SA_THRESHOLD".to_string(), fmt(n.threshold)),
        ("SA_HOST".to_string(), host.to_string()),
        ("SA_MESSAGE".to_string(), subject(n, host)),
        ("SA_PREVIOUS".to_string(), n.previous.nagios().to_string()),
        (
            "SA_REMINDER".to_string(),
            if n.reminder { "yes" } else { "no" }.to_string(),
        ),
    ];
    if let Some(m) = &n.mount {
        out.push(("SA_MOUNT".to_string(), m.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::alerts::decide::Told;

    fn notice(kind: Kind, level: Status, value: Option<f64>) -> Notice {
        Notice {
            key: kind.name().into(),
            kind,
            mount: None,
            level,
            previous: Status::Ok,
            value,
            host_load: None,
            threshold: Some(90.0),
            reminder: false,
            recovery: false,
            prev: Told::default(),
        }
    }

    #[test]
    fn no_header_can_be_added_through_a_value() {
        let mut n = notice(Kind::Cpu, Status::Critical, Some(95.0));
        n.mount = Some("/x\r\nBcc: evil@example.com".into());
        let msg = message(
            &n,
            "host\nBcc: a@b",
            "agent@h",
            &["ops@h".into()],
            1,
            2,
            3,
            &["proc\nBcc: x@y".into()],
        );
        let (head, body) = msg.split_once("\r\n\r\n").unwrap();
        assert!(!head.lines().any(|l| l.starts_with("Bcc")), "{head}");
        // Ten fields (a long one folded: its next line starts with a space).
        let fields = head.lines().filter(|l| !l.starts_with(' ')).count();
        assert_eq!(fields, 10, "{head}");
        assert!(body.contains("  proc Bcc: x@y\r\n"), "{body}");
    }

    /// Whatever the values hold (non-ASCII, controls, a name whose bytes were
    /// not UTF-8 and so read as U+FFFD), every line is ASCII and within 78, the
    /// headers say how the body is encoded, and the replaced bytes show.
    #[test]
    fn every_line_is_short_ascii_whatever_the_values_hold() {
        let mut n = notice(Kind::Disk, Status::Critical, Some(96.0));
        let mount = format!("/srv/données/{}", "ü".repeat(40));
        n.key = format!("disk:{mount}");
        n.mount = Some(mount);
        let top = [format!(
            "by cpu #1: pid 7 root caf\u{FFFD} {}",
            "x=".repeat(50)
        )];
        let msg = message(&n, "hôte\r\n", "a@h", &["ops@h".into()], 1, 2, 3, &top);
        for line in msg.split("\r\n") {
            assert!(line.is_ascii() && line.len() <= 78, "{line:?} in {msg}");
            assert!(!line.contains(['\r', '\n']), "{msg:?}");
        }
        let (head, body) = msg.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("\r\nSubject: =?UTF-8?"), "{head}");
        assert!(head.contains("\r\nX-System-Agent-Key: =?UTF-8?"), "{head}");
        assert!(head.contains(
            "\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Content-Transfer-Encoding: quoted-printable\r\n"
        ));
        assert!(body.starts_with("Host:      h=C3=B4te =20\r\n"), "{body}");
        assert!(body.contains("\r\n  by cpu #1: pid 7 root caf=EF=BF=BD x=3Dx=3D"));
    }

    #[test]
    fn a_message_id_names_the_host_as_a_dot_atom() {
        let ids = ["web1.example.com", "web1..x.", "hôte.b", "日本", "", "."].map(id_host);
        assert_eq!(
            ids,
            [
                "web1.example.com",
                "web1.x",
                "hte.b",
                "localhost",
                "localhost",
                "localhost"
            ]
        );
    }

    #[test]
    fn a_load_notice_reads_as_the_status_line() {
        let mut n = notice(Kind::Load, Status::Critical, Some(0.26));
        n.threshold = Some(0.2);
        n.host_load = Some((0.52, 2));
        assert_eq!(
            subject(&n, "web1"),
            "[system-agent] web1 CRITICAL: load 0.52 on 2 cpus (threshold 0.2 per cpu)"
        );
        n.host_load = Some((1.5, 1));
        assert_eq!(describe(&n), "load 1.50 on 1 cpu");
        let body = body(&n, "web1", 0, &[]);
        assert!(body.contains("\nThreshold: 0.2 per cpu\n"), "{body}");
    }

    #[test]
    fn the_subject_names_the_metric_its_value_and_the_limit() {
        let mut n = notice(Kind::Disk, Status::Ok, Some(80.0));
        n.mount = Some("/var".into());
        n.recovery = true;
        assert_eq!(
            subject(&n, "web1"),
            "[system-agent] web1 RECOVERED: disk /var 80% (threshold 90)"
        );
        let mut n = notice(Kind::Load, Status::Warning, Some(2.1));
        n.reminder = true;
        n.threshold = None;
        assert_eq!(
            subject(&n, "web1"),
            "[system-agent] web1 WARNING (still): load 2.10 per cpu"
        );
        assert_eq!(
            describe(&notice(Kind::Cpu, Status::Critical, None)),
            "cpu unknown"
        );
    }
}
