//! One event being written: always as a logfmt line (the log file's default form,
//! and syslog's in any case), and, for a log in JSON Lines (`[agent] log_format =
//! json`), as one JSON object with the same keys in the same order, `ts`, `level`
//! and `event` first. A number is a JSON number when its text is one (so `NaN`
//! stays a string); every other value is a JSON string whose body is the quoted
//! logfmt value's, from the same escaper (`escape::json_body`), so the two forms
//! cannot disagree, and bytes that are not UTF-8 stay recoverable (`\udcHH`).
//!
//! Both are built in buffers reused from one event to the next: the steady cycle
//! logs without allocating in either form.

use crate::escape;
use std::fmt::{self, Write as _};

pub struct Line {
    logfmt: String,
    /// Where `level=` starts in `logfmt`: syslog gets the line without our timestamp.
    body_at: usize,
    json: String,
    /// The JSON object is built too.
    json_on: bool,
}

impl Line {
    pub fn new(json: bool) -> Line {
        Line {
            logfmt: String::with_capacity(512),
            body_at: 0,
            json: String::with_capacity(if json { 640 } else { 0 }),
            json_on: json,
        }
    }

    /// Builds the JSON object from the next event on (or stops).
    pub fn set_json(&mut self, on: bool) {
        self.json_on = on;
    }

    pub fn json(&self) -> bool {
        self.json_on
    }

    /// Starts an event: `ts=... level=... event=...`.
    pub fn start(&mut self, ts_ns: u64, level: &str, event: &str) {
        self.logfmt.clear();
        self.logfmt.push_str("ts=");
        crate::timefmt::rfc3339_millis(ts_ns, &mut self.logfmt);
        self.logfmt.push(' ');
        self.body_at = self.logfmt.len();
        self.logfmt.push_str("level=");
        self.logfmt.push_str(level);
        self.logfmt.push_str(" event=");
        self.logfmt.push_str(event);
        if self.json_on {
            self.json.clear();
            self.json.push_str("{\"ts\":\"");
            crate::timefmt::rfc3339_millis(ts_ns, &mut self.json);
            self.json.push('"');
            self.json_field("level", level.as_bytes());
            self.json_field("event", event.as_bytes());
        }
    }

    /// A field whose value is text (or bytes): quoted and escaped where needed.
    pub fn text(&mut self, key: &str, value: &[u8]) {
        push_kv(&mut self.logfmt, key, value);
        if self.json_on {
            self.json_field(key, value);
        }
    }

    /// A field whose value is a number, as `value` formats it: a JSON number when
    /// that text is one, else a string.
    pub fn number(&mut self, key: &str, value: fmt::Arguments) {
        self.logfmt.push(' ');
        self.logfmt.push_str(key);
        self.logfmt.push('=');
        let at = self.logfmt.len();
        let _ = self.logfmt.write_fmt(value);
        if self.json_on {
            let text = &self.logfmt[at..];
            if is_json_number(text) {
                self.json.push(',');
                push_json_string(&mut self.json, key.as_bytes());
                self.json.push(':');
                self.json.push_str(text);
            } else {
                push_json_field(&mut self.json, key, text.as_bytes());
            }
        }
    }

    /// Ends the event: each form gets its newline.
    pub fn finish(&mut self) {
        self.logfmt.push('\n');
        if self.json_on {
            self.json.push_str("}\n");
        }
    }

    /// The finished line for the log file (or stderr): JSON or logfmt.
    pub fn for_file(&self) -> &[u8] {
        match self.json_on {
            true => self.json.as_bytes(),
            false => self.logfmt.as_bytes(),
        }
    }

    /// The finished logfmt line without its timestamp and newline, for syslog.
    pub fn for_syslog(&self) -> &str {
        let end = self.logfmt.len().saturating_sub(1).max(self.body_at);
        &self.logfmt[self.body_at..end]
    }

    fn json_field(&mut self, key: &str, value: &[u8]) {
        push_json_field(&mut self.json, key, value);
    }
}

/// `,"key":"value"`.
fn push_json_field(out: &mut String, key: &str, value: &[u8]) {
    out.push(',');
    push_json_string(out, key.as_bytes());
    out.push(':');
    push_json_string(out, value);
}

fn push_json_string(out: &mut String, value: &[u8]) {
    out.push('"');
    escape::json_body(out, value);
    out.push('"');
}

/// Whether `s` is a number as JSON writes one: `-?(0|[1-9][0-9]*)(\.[0-9]+)?
/// ([eE][+-]?[0-9]+)?`.
fn is_json_number(s: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    match digits(&b[i..]) {
        0 => return false,
        n if n > 1 && b[i] == b'0' => return false,
        n => i += n,
    }
    if b.get(i) == Some(&b'.') {
        match digits(&b[i + 1..]) {
            0 => return false,
            n => i += 1 + n,
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        match digits(&b[i..]) {
            0 => return false,
            n => i += n,
        }
    }
    i == b.len()
}

/// ` key=value`, quoting and escaping the value when needed.
pub fn push_kv(out: &mut String, key: &str, value: &[u8]) {
    out.push(' ');
    out.push_str(key);
    out.push('=');
    push_value(out, value);
}

/// A value is written bare when it is non-empty printable ASCII without `"`, `=` or
/// `\`; otherwise it is quoted, its body escaped JSON-style by `escape::json_body`
/// (controls, line separators and format characters as `\uXXXX`, bytes that are
/// not UTF-8 as `\udcHH`). So one event is always exactly one line, which strict
/// logfmt decoders read and in which no character hides or reorders text.
pub fn push_value(out: &mut String, value: &[u8]) {
    let bare = !value.is_empty()
        && value
            .iter()
            .all(|&c| (0x21..0x7f).contains(&c) && !matches!(c, b'"' | b'=' | b'\\'));
    if bare {
        // SAFETY-free: printable ASCII is valid UTF-8.
        out.push_str(std::str::from_utf8(value).unwrap_or_default());
        return;
    }
    out.push('"');
    escape::json_body(out, value);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(b: &[u8]) -> String {
        let mut s = String::new();
        push_value(&mut s, b);
        s
    }

    #[test]
    fn values_are_quoted_and_escaped_so_no_line_can_be_forged() {
        assert_eq!(v(b"cpu"), "cpu");
        assert_eq!(v(b"/var/log"), "/var/log");
        assert_eq!(v(b""), "\"\"");
        assert_eq!(v(b"a b"), "\"a b\"");
        assert_eq!(v(b"a=b"), "\"a=b\"");
        assert_eq!(v(b"say \"hi\""), "\"say \\\"hi\\\"\"");
        assert_eq!(v(b"C:\\x"), "\"C:\\\\x\"");
        assert_eq!(
            v(b"x\nts=1 level=error event=forged"),
            "\"x\\nts=1 level=error event=forged\""
        );
        assert_eq!(v(b"a\rb\tc\x1b[31m\x7f"), r#""a\rb\tc\u001b[31m\u007f""#);
        assert_eq!(v(b"\xff\xfe ok"), r#""\udcff\udcfe ok""#);
        assert_eq!(v("caf\u{e9}".as_bytes()), "\"caf\u{e9}\"");
        assert_eq!(v("a\u{2028}b\u{85}".as_bytes()), r#""a\u2028b\u0085""#);
        assert_eq!(
            v("x\u{202e}\u{feff}\u{e0001}".as_bytes()),
            r#""x\u202e\ufeff\udb40\udc01""#
        );
        // Non-ASCII is always quoted, even when nothing in it is escaped.
        assert_eq!(v("\u{e9}".as_bytes()), "\"\u{e9}\"");
    }

    /// An event with every kind of field, in both forms.
    fn event(json: bool) -> Line {
        let mut l = Line::new(json);
        l.start(1_764_410_700_123_000_000, "warn", "alert");
        l.text("metric", b"cpu");
        l.number("value", format_args!("{:.1}", 93.14));
        l.number("pid", format_args!("{}", -7));
        l.number("ratio", format_args!("{:.2}", f64::NAN));
        l.text("path", b"/x/a b\n\"q\"\xff");
        l.text("empty", b"");
        l.finish();
        l
    }

    #[test]
    fn json_has_the_logfmt_keys_in_order_numbers_as_numbers() {
        let l = event(true);
        assert_eq!(
            std::str::from_utf8(l.for_file()),
            Ok(concat!(
                r#"{"ts":"2025-11-29T10:05:00.123Z","level":"warn","event":"alert","#,
                r#""metric":"cpu","value":93.1,"pid":-7,"ratio":"NaN","#,
                r#""path":"/x/a b\n\"q\"\udcff","empty":""}"#,
                "\n"
            ))
        );
        assert_eq!(
            l.for_syslog(),
            r#"level=warn event=alert metric=cpu value=93.1 pid=-7 ratio=NaN path="/x/a b\n\"q\"\udcff" empty="""#
        );
        // Without JSON, the file gets the logfmt line.
        let l = event(false);
        assert_eq!(
            std::str::from_utf8(l.for_file()),
            Ok(concat!(
                "ts=2025-11-29T10:05:00.123Z ",
                r#"level=warn event=alert metric=cpu value=93.1 pid=-7 ratio=NaN path="/x/a b\n\"q\"\udcff" empty="""#,
                "\n"
            ))
        );
    }

    #[test]
    fn only_json_numbers_are_written_as_numbers() {
        for ok in ["0", "-0", "12", "93.1", "-0.5", "1e5", "2.5E-3", "10e+2"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "+1", "NaN", "inf", "-inf", "1e", "1e+", "0x10", "1 ",
            "1.2.3",
        ] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
