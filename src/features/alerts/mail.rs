//! An alert as its routes carry it: the mail (RFC 5322, for `[alert] sendmail`)
//! and the `SA_*` variables (for `[alert] command`). Nothing from the host
//! (names, paths, values) can put a CR or LF into a header.

use super::decide::Notice;
use crate::judge::{Kind, Status};
use std::fmt::Write as _;

/// Replaces what could end or extend a header line (CR, LF, other controls).
pub fn header_safe(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `disk /var 96%`, `cpu 93.1%`, `load 2.10 per cpu`.
pub fn describe(n: &Notice) -> String {
    let what = match &n.mount {
        Some(m) => format!("{} {m}", n.kind.name()),
        None => n.kind.name().to_string(),
    };
    let value = match (n.value, n.kind) {
        (Some(v), Kind::Load) => format!(" {v:.2} per cpu"),
        (Some(v), k) if k.is_eta() => format!(" full in {}", crate::timefmt::fmt_span(v as u64)),
        (Some(v), k) => format!(" {v:.prec$}%", prec = k.decimals()),
        (None, _) => " unknown".to_string(),
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
        .map(|t| format!(" (threshold {t})"))
        .unwrap_or_default();
    header_safe(&format!(
        "[system-agent] {host} {word}: {}{limit}",
        describe(n)
    ))
}

/// The whole mail: headers (every value made header-safe), a blank line, the body.
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
    let _ = write!(m, "From: {}\r\n", header_safe(from));
    let _ = write!(m, "To: {}\r\n", header_safe(&to.join(", ")));
    let _ = write!(m, "Subject: {}\r\n", subject(n, host));
    let _ = write!(m, "Date: {date}\r\n");
    let id_host: String = host
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-'))
        .collect();
    let _ = write!(m, "Message-ID: <{now_ns}.{pid}.{seq}@{id_host}>\r\n");
    m.push_str("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n");
    m.push_str("Auto-Submitted: auto-generated\r\n");
    let _ = write!(m, "X-System-Agent-Key: {}\r\n\r\n", header_safe(&n.key));
    let mut body = String::new();
    let mut when = String::new();
    crate::timefmt::rfc3339_millis(now_ns, &mut when);
    let _ = writeln!(body, "Host:      {host}");
    let _ = writeln!(body, "Metric:    {}", describe(n));
    let _ = writeln!(
        body,
        "Level:     {} (was {})",
        n.level.nagios(),
        n.previous.nagios()
    );
    if let Some(t) = n.threshold {
        let _ = writeln!(body, "Threshold: {t}");
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
    m.push_str(&body.replace('\n', "\r\n"));
    m
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
        assert_eq!(head.lines().count(), 10, "{head}");
        assert!(body.contains("  proc Bcc: x@y\r\n"), "{body}");
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
