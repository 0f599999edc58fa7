//! What makes the alert mail readable by any mail reader, whatever a mount path,
//! a process name or a host name holds: header values that are not plain ASCII
//! go out as RFC 2047 encoded-words, every header line is folded within 78
//! characters (RFC 5322), and the UTF-8 body is quoted-printable (RFC 2045), so
//! the whole message is 7-bit with short lines. A plain ASCII value that fits is
//! written as it is. Control characters (CR and LF among them) never reach a
//! header, not even encoded: each becomes a space. Pure: text in, text out.

use std::fmt::Write as _;

/// The longest header line (RFC 5322's SHOULD), its CRLF not counted.
pub const MAX_LINE: usize = 78;

/// The longest encoded-word (RFC 2047).
pub const MAX_WORD: usize = 75;

/// The longest quoted-printable body line (RFC 2045), a soft break's `=` included.
pub const MAX_BODY_LINE: usize = 76;

/// What an encoded-word adds around its text: `=?UTF-8?Q?` and `?=`.
const WRAP: usize = "=?UTF-8?Q?".len() + "?=".len();

/// `Name: value` and its CRLF for an unstructured field (`Subject`, `X-…`): as
/// it is when plain ASCII that folds within `MAX_LINE` at its spaces, otherwise
/// (non-ASCII, spaces at either end, something that would read as an
/// encoded-word, a word too long for a line) the whole value as encoded-words.
pub fn unstructured(out: &mut String, name: &str, value: &str) {
    let value: String = value.chars().map(clean).collect();
    let start = out.len();
    let plain = value.is_ascii()
        && !value.contains("=?")
        && !value.starts_with(' ')
        && !value.ends_with(' ');
    if plain {
        let mut h = Header::new(out, name);
        for (ws, word) in pieces(&value) {
            h.put(ws, word);
        }
        if h.end() {
            return;
        }
        out.truncate(start);
    }
    let mut h = Header::new(out, name);
    h.encoded("", &value);
    h.end();
}

/// `Name: address, address` and its CRLF (`From`, `To`), folded between
/// addresses. The config takes only plain ASCII addresses (`user@host`, no
/// display name), and RFC 2047 forbids encoding one, so none is encoded.
pub fn addresses<S: AsRef<str>>(out: &mut String, name: &str, list: &[S]) {
    let mut h = Header::new(out, name);
    for (i, a) in list.iter().enumerate() {
        let comma = if i + 1 < list.len() { "," } else { "" };
        let a: String = a.as_ref().chars().map(clean).chain(comma.chars()).collect();
        h.put(if i == 0 { "" } else { " " }, &a);
    }
    h.end();
}

/// The body (lines ending in `\n`) as quoted-printable with CRLF line ends:
/// printable ASCII as it is (`=` as `=3D`), every other byte `=XX`, a space or tab
/// that ends a line encoded, and soft breaks (`=` at the end) keeping each line
/// within `MAX_BODY_LINE`.
pub fn quoted_printable(out: &mut String, text: &str) {
    for line in text.split_inclusive('\n') {
        let (body, end) = match line.strip_suffix('\n') {
            Some(body) => (body, "\r\n"),
            None => (line, ""),
        };
        let body = body.strip_suffix('\r').unwrap_or(body).as_bytes();
        let mut col = 0;
        for (i, &b) in body.iter().enumerate() {
            let last = i + 1 == body.len();
            let literal =
                (matches!(b, b'!'..=b'~') && b != b'=') || (matches!(b, b' ' | b'\t') && !last);
            let width = if literal { 1 } else { 3 };
            // Room for the soft break's `=`, unless this is the line's last piece.
            let room = if last {
                MAX_BODY_LINE
            } else {
                MAX_BODY_LINE - 1
            };
            if col + width > room {
                out.push_str("=\r\n");
                col = 0;
            }
            if literal {
                out.push(b as char);
            } else {
                let _ = write!(out, "={b:02X}");
            }
            col += width;
        }
        out.push_str(end);
    }
}

/// A control character (CR, LF, TAB, DEL, C1) as a space: it could end or extend
/// a header line, or, encoded, put a line break into a decoded value.
fn clean(c: char) -> char {
    if c.is_control() { ' ' } else { c }
}

/// `s` as (the spaces before a word, the word), the word never empty: `" a  b"`
/// is `(" ", "a")`, `("  ", "b")`. Spaces at the end are dropped.
fn pieces(s: &str) -> impl Iterator<Item = (&str, &str)> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let word_at = rest.find(|c| c != ' ')?;
        let end = rest[word_at..]
            .find(' ')
            .map_or(rest.len(), |i| word_at + i);
        let piece = (&rest[..word_at], &rest[word_at..end]);
        rest = &rest[end..];
        Some(piece)
    })
}

/// One header field being written: how long its current line is, so that each
/// piece goes on it or on a folded line (CRLF and the piece's own whitespace).
struct Header<'a> {
    out: &'a mut String,
    /// The current line's length.
    len: usize,
    /// Nothing written after `Name:` yet.
    bare: bool,
    /// A line went over `MAX_LINE` (a word longer than a line).
    over: bool,
}

impl<'a> Header<'a> {
    fn new(out: &'a mut String, name: &str) -> Header<'a> {
        out.push_str(name);
        out.push(':');
        Header {
            len: name.len() + 1,
            out,
            bare: true,
            over: false,
        }
    }

    /// `ws` and `word` on this line, or on a new one (folding before `ws`) when
    /// they do not fit here and there is whitespace to fold at. The first piece
    /// comes after the space that follows `Name:`.
    fn put(&mut self, ws: &str, word: &str) {
        let sep = if self.bare { " " } else { "" };
        let need = sep.len() + ws.len() + word.len();
        if self.len + need > MAX_LINE && !self.bare && !ws.is_empty() {
            self.out.push_str("\r\n");
            self.len = 0;
        }
        self.out.push_str(sep);
        self.out.push_str(ws);
        self.out.push_str(word);
        self.len += sep.len() + ws.len() + word.len();
        self.bare = false;
        self.over |= self.len > MAX_LINE;
    }

    /// `ws`, then `text` as encoded-words (Q, or B when that is shorter), each
    /// whole characters and at most `MAX_WORD` long, the first sized to fit this
    /// line, the next ones after a space or a fold (whitespace between
    /// encoded-words is not part of the text).
    fn encoded(&mut self, ws: &str, text: &str) {
        let b = base64_len(text.len()) < q_len(text);
        let mut rest = text;
        let mut ws = ws;
        while !rest.is_empty() {
            let sep = if self.bare { 1 } else { ws.len() };
            let here = MAX_LINE.saturating_sub(self.len + sep).min(MAX_WORD);
            let mut n = fit(rest, here.saturating_sub(WRAP), b);
            if n == 0 {
                self.out.push_str("\r\n");
                self.len = 0;
                self.bare = false;
                ws = " ";
                // A line of its own holds any character's encoding.
                let one = rest.chars().next().map_or(1, char::len_utf8);
                n = fit(rest, MAX_WORD - WRAP, b).max(one);
            }
            let mut word = String::with_capacity(MAX_WORD);
            encoded_word(&mut word, &rest[..n], b);
            self.put(ws, &word);
            rest = &rest[n..];
            ws = " ";
        }
    }

    /// Ends the field with CRLF; whether every line kept within `MAX_LINE`.
    fn end(self) -> bool {
        self.out.push_str("\r\n");
        !self.over
    }
}

/// How many bytes of `text` (whole characters) encode within `room` characters
/// (in B when `b`, else in Q).
fn fit(text: &str, room: usize, b: bool) -> usize {
    let mut len = 0;
    let mut n = 0;
    for (i, c) in text.char_indices() {
        let end = i + c.len_utf8();
        let next = if b {
            base64_len(end)
        } else {
            len + q_len(&text[i..end])
        };
        if next > room {
            break;
        }
        len = next;
        n = end;
    }
    n
}

/// `=?UTF-8?Q?…?=` or `=?UTF-8?B?…?=` of `text`.
fn encoded_word(out: &mut String, text: &str, b: bool) {
    out.push_str(if b { "=?UTF-8?B?" } else { "=?UTF-8?Q?" });
    if b {
        base64(out, text.as_bytes());
    } else {
        for &c in text.as_bytes() {
            match c {
                b' ' => out.push('_'),
                c if q_literal(c) => out.push(c as char),
                c => {
                    let _ = write!(out, "={c:02X}");
                }
            }
        }
    }
    out.push_str("?=");
}

/// Whether Q writes byte `c` as it is in unstructured text (RFC 2047): any
/// printable ASCII but `=`, `?` and `_`, and a space (as `_`). Every other byte
/// is `=XX`.
fn q_literal(c: u8) -> bool {
    c == b' ' || (c.is_ascii_graphic() && !matches!(c, b'=' | b'?' | b'_'))
}

/// The length of `text` in Q.
fn q_len(text: &str) -> usize {
    text.bytes().map(|c| if q_literal(c) { 1 } else { 3 }).sum()
}

fn base64_len(bytes: usize) -> usize {
    bytes.div_ceil(3) * 4
}

/// Standard base64 (RFC 4648) with padding.
fn base64(out: &mut String, data: &[u8]) {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject(value: &str) -> String {
        let mut out = String::new();
        unstructured(&mut out, "Subject", value);
        out
    }

    fn to(list: &[&str]) -> String {
        let mut out = String::new();
        addresses(&mut out, "To", list);
        out
    }

    fn qp(text: &str) -> String {
        let mut out = String::new();
        quoted_printable(&mut out, text);
        out
    }

    /// Every line of `text` (CRLF-separated) ASCII and within `max`.
    fn short_ascii_lines(text: &str, max: usize) {
        for line in text.split("\r\n") {
            assert!(line.is_ascii() && line.len() <= max, "{line:?} in {text}");
            assert!(!line.contains(['\r', '\n']), "{text:?}");
        }
    }

    #[test]
    fn plain_ascii_is_written_as_it_is() {
        assert_eq!(
            subject("[system-agent] web1 CRITICAL: disk /var 96% (threshold 95)"),
            "Subject: [system-agent] web1 CRITICAL: disk /var 96% (threshold 95)\r\n"
        );
        assert_eq!(
            to(&["ops@example.com", "oncall@example.com"]),
            "To: ops@example.com, oncall@example.com\r\n"
        );
    }

    #[test]
    fn plain_ascii_folds_at_spaces_within_78() {
        let value = "[system-agent] web1 CRITICAL: disk /var/lib/postgresql/16/main/pg_wal 96% \
                     (threshold 95) and more words to fold";
        let folded = subject(value);
        assert_eq!(
            folded,
            "Subject: [system-agent] web1 CRITICAL: disk /var/lib/postgresql/16/main/pg_wal\r\n \
             96% (threshold 95) and more words to fold\r\n"
        );
        short_ascii_lines(&folded, MAX_LINE);
        // Unfolding (taking out each CRLF) gives the value back, spaces and all.
        let spaced = "a  b".repeat(30);
        assert_eq!(
            subject(&spaced).replace("\r\n", ""),
            format!("Subject: {spaced}")
        );
        short_ascii_lines(&subject(&spaced), MAX_LINE);
        let list: Vec<String> = (1..=6).map(|i| format!("ops{i}@example.com")).collect();
        let list: Vec<&str> = list.iter().map(String::as_str).collect();
        assert_eq!(
            to(&list),
            "To: ops1@example.com, ops2@example.com, ops3@example.com, ops4@example.com,\r\n \
             ops5@example.com, ops6@example.com\r\n"
        );
    }

    /// RFC 2047's own example name, and a mount path, in UTF-8: Q keeps
    /// printable ASCII but `=?_`, writes a space as `_` and other bytes as `=XX`.
    #[test]
    fn non_ascii_goes_out_as_q_encoded_words() {
        assert_eq!(
            subject("Keld Jørn Simonsen"),
            "Subject: =?UTF-8?Q?Keld_J=C3=B8rn_Simonsen?=\r\n"
        );
        assert_eq!(
            subject("disk /srv/données 96% (a_b=c?)"),
            "Subject: =?UTF-8?Q?disk_/srv/donn=C3=A9es_96%_(a=5Fb=3Dc=3F)?=\r\n"
        );
    }

    /// Mostly non-ASCII text is shorter in B (base64: RFC 4648's vectors).
    #[test]
    fn mostly_non_ascii_goes_out_as_b_encoded_words() {
        assert_eq!(subject("日本語"), "Subject: =?UTF-8?B?5pel5pys6Kqe?=\r\n");
        for (data, b64) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = String::new();
            base64(&mut out, data.as_bytes());
            assert_eq!(out, b64, "{data}");
        }
    }

    /// The first encoded-word fills the first line to exactly 78; the next are
    /// exactly 75 (the encoded-word limit) on lines of their own.
    #[test]
    fn encoded_words_stop_at_75_and_lines_at_78() {
        let value = format!("é{}", "a".repeat(150));
        let a = |n: usize| "a".repeat(n);
        let expected = format!(
            "Subject: =?UTF-8?Q?=C3=A9{}?=\r\n =?UTF-8?Q?{}?=\r\n =?UTF-8?Q?{}?=\r\n",
            a(51),
            a(63),
            a(36)
        );
        assert_eq!(subject(&value), expected);
        let lines: Vec<usize> = expected.split("\r\n").map(str::len).collect();
        assert_eq!(lines, [78, 76, 49, 0]);
        // A word too long for any line (here ASCII) is encoded, so it can be split.
        assert_eq!(
            subject(&a(100)),
            format!(
                "Subject: =?UTF-8?Q?{}?=\r\n =?UTF-8?Q?{}?=\r\n",
                a(57),
                a(43)
            )
        );
    }

    /// A split never cuts a character: each word decodes to whole UTF-8.
    #[test]
    fn encoded_words_hold_whole_characters() {
        for value in ["é".repeat(100), "日本語".repeat(40), "a€".repeat(70)] {
            let out = subject(&value);
            short_ascii_lines(&out, MAX_LINE);
            let words: Vec<&str> = out
                .split([' ', '\r', '\n'])
                .filter(|w| w.starts_with("=?"))
                .collect();
            let mut back = String::new();
            for w in words {
                assert!(w.len() <= MAX_WORD, "{w}");
                back.push_str(&decode(w).unwrap_or_else(|| panic!("{w}: not whole UTF-8")));
            }
            assert_eq!(back, value);
        }
    }

    /// A decoder for the test: one encoded-word's text, if it is whole UTF-8.
    fn decode(word: &str) -> Option<String> {
        let inner = word.strip_prefix("=?UTF-8?")?.strip_suffix("?=")?;
        let (how, text) = inner.split_once('?')?;
        let bytes = match how {
            "Q" => {
                let mut out = Vec::new();
                let mut it = text.bytes();
                while let Some(c) = it.next() {
                    match c {
                        b'_' => out.push(b' '),
                        b'=' => {
                            let hex = [it.next()?, it.next()?];
                            let hex = std::str::from_utf8(&hex).ok()?;
                            out.push(u8::from_str_radix(hex, 16).ok()?);
                        }
                        c => out.push(c),
                    }
                }
                out
            }
            "B" => {
                const ABC: &str =
                    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
                let mut out = Vec::new();
                let (mut acc, mut bits) = (0u32, 0);
                for c in text.chars().filter(|&c| c != '=') {
                    acc = acc << 6 | ABC.find(c)? as u32;
                    bits += 6;
                    if bits >= 8 {
                        bits -= 8;
                        out.push((acc >> bits) as u8);
                    }
                }
                out
            }
            _ => return None,
        };
        String::from_utf8(bytes).ok()
    }

    #[test]
    fn no_control_character_reaches_a_header_even_encoded() {
        assert_eq!(
            subject("a\r\nBcc: x@y"),
            "Subject: a  Bcc: x@y\r\n",
            "plain: each control a space"
        );
        assert_eq!(
            subject("é\r\nBcc: x@y"),
            "Subject: =?UTF-8?Q?=C3=A9__Bcc:_x@y?=\r\n"
        );
        assert_eq!(
            to(&["j@x\n", "k@x\r\nBcc: e@x"]),
            "To: j@x , k@x  Bcc: e@x\r\n"
        );
    }

    /// What a reader would take for an encoded-word, or spaces it would drop at
    /// either end, is encoded so it reads back as it was.
    #[test]
    fn text_that_would_not_read_back_is_encoded() {
        let value = "disk /x=?UTF-8?Q?y?= 96%";
        let out = subject(value);
        assert_eq!(
            out,
            "Subject: =?UTF-8?B?ZGlzayAveD0/VVRGLTg/UT95Pz0gOTYl?=\r\n"
        );
        assert_eq!(decode(&out[9..out.len() - 2]).as_deref(), Some(value));
        assert_eq!(subject(" x "), "Subject: =?UTF-8?Q?_x_?=\r\n");
    }

    #[test]
    fn the_body_is_quoted_printable_with_short_lines() {
        assert_eq!(qp("Host:      web1\n"), "Host:      web1\r\n");
        assert_eq!(
            qp("Metric:    disk /srv/données 96%\n"),
            "Metric:    disk /srv/donn=C3=A9es 96%\r\n"
        );
        assert_eq!(qp("a=b\tc \nx\t\n\n"), "a=3Db\tc=20\r\nx=09\r\n\r\n");
        assert_eq!(qp("bad \u{FFFD} name\n"), "bad =EF=BF=BD name\r\n");
        // 76 characters fit a line; one more and it breaks softly after 75.
        let a76 = "a".repeat(76);
        assert_eq!(qp(&format!("{a76}\n")), format!("{a76}\r\n"));
        assert_eq!(
            qp(&format!("{a76}b\n")),
            format!("{}=\r\nab\r\n", "a".repeat(75))
        );
        // An `=XX` is never cut: it moves to the next line whole.
        let out = qp(&format!("{}é\n", "a".repeat(72)));
        assert_eq!(out, format!("{}=C3=\r\n=A9\r\n", "a".repeat(72)));
        let out = qp(&format!("{}é\n", "a".repeat(73)));
        assert_eq!(out, format!("{}=\r\n=C3=A9\r\n", "a".repeat(73)));
        let long = format!("{}\n", "é €\t=".repeat(40));
        short_ascii_lines(&qp(&long), MAX_BODY_LINE);
    }
}
