//! Strict readers of the agent's log lines, for tests/logfmt_*.rs: go-logfmt, the
//! decoder go-kit, Prometheus and Loki's `| logfmt` use (tests/logfmt/check.go,
//! built into a temp dir from Debian's golang-go and
//! golang-github-go-logfmt-logfmt-dev), where any decode error fails; each field's
//! literal as written; and Python's `json.loads(v).encode('utf-8',
//! 'surrogateescape')`, which must give back a value's exact bytes, as README tells
//! operators.

use super::TempDir;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One decoded line: its raw bytes and its fields as go-logfmt decoded them.
pub struct Line {
    pub raw: Vec<u8>,
    pub fields: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Line {
    pub fn get(&self, key: &str) -> Option<&[u8]> {
        self.fields
            .iter()
            .find(|(k, _)| k == key.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    pub fn event(&self) -> &[u8] {
        self.get("event").unwrap_or_default()
    }
}

/// Builds tests/logfmt/check.go into `t` (offline, from Debian's Go packages).
pub fn build_checker(t: &TempDir) -> PathBuf {
    let out = t.join("check");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/logfmt/check.go");
    let built = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&out)
        .arg(&src)
        .env("GO111MODULE", "off")
        .env("GOPATH", "/usr/share/gocode")
        .env("GOCACHE", t.join("gocache"))
        .env("GOFLAGS", "")
        .output()
        .expect("go runs (Debian package golang-go)");
    assert!(
        built.status.success(),
        "go build {}: {}",
        src.display(),
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

pub fn unhex(h: &[u8]) -> Vec<u8> {
    let d = |c: u8| (c as char).to_digit(16).expect("hex digit") as u8;
    h.chunks(2).map(|p| d(p[0]) << 4 | d(p[1])).collect()
}

/// Decodes `data` strictly with the checker: every line must decode, and be one
/// record that starts with `ts`, `level`, `event`.
pub fn decode(check: &Path, what: &str, data: &[u8]) -> Vec<Line> {
    let mut child = Command::new(check)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the checker");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = data.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let out = child.wait_with_output().expect("checker output");
    let _ = writer.join();
    assert!(
        out.status.success(),
        "go-logfmt rejects {what}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(data)
    );
    // Whole lines only: strip the last newline, then one record per line.
    let lines_of = |b: &[u8]| -> Vec<Vec<u8>> {
        match b.strip_suffix(b"\n") {
            Some(b) => b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect(),
            None => Vec::new(),
        }
    };
    assert!(
        data.is_empty() || data.ends_with(b"\n"),
        "{what} ends with a newline"
    );
    let (raws, records) = (lines_of(data), lines_of(&out.stdout));
    assert_eq!(records.len(), raws.len(), "one record per line of {what}");
    let lines: Vec<Line> = raws
        .into_iter()
        .zip(&records)
        .map(|(raw, rec)| Line {
            raw,
            fields: rec
                .split(|&b| b == b' ')
                .filter(|f| !f.is_empty())
                .map(|f| {
                    let (k, v) = f.split_at(f.iter().position(|&b| b == b':').expect(":"));
                    (unhex(k), unhex(&v[1..]))
                })
                .collect(),
        })
        .collect();
    for l in &lines {
        let keys: Vec<&[u8]> = l.fields.iter().take(3).map(|f| f.0.as_slice()).collect();
        assert_eq!(
            keys,
            [b"ts".as_slice(), b"level", b"event"],
            "a broken or forged line in {what}: {:?}",
            String::from_utf8_lossy(&l.raw)
        );
    }
    lines
}

/// The value of `key` in a raw line as written: a quoted literal, or a bare value
/// put in quotes (bare values hold no `"` or `\`), so `json.loads` reads either.
pub fn literal(raw: &[u8], key: &str) -> Option<Vec<u8>> {
    literals(raw)
        .into_iter()
        .find(|(k, _, _)| k == key.as_bytes())
        .map(|(_, v, _)| v)
}

/// One field of a raw line as written: key, literal (as `literal` gives it),
/// whether the value was bare.
pub type Literal = (Vec<u8>, Vec<u8>, bool);

/// Every field of a raw line as written.
pub fn literals(raw: &[u8]) -> Vec<Literal> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < raw.len() {
        let Some(eq) = raw[i..].iter().position(|&b| b == b'=').map(|p| i + p) else {
            break;
        };
        let k = &raw[i..eq];
        let mut j = eq + 1;
        let bare = raw.get(j) != Some(&b'"');
        let value = if !bare {
            j += 1;
            while raw[j] != b'"' {
                j += if raw[j] == b'\\' { 2 } else { 1 };
            }
            j += 1;
            raw[eq + 1..j].to_vec()
        } else {
            j += raw[j..]
                .iter()
                .position(|&b| b == b' ')
                .unwrap_or(raw.len() - j);
            [b"\"", &raw[eq + 1..j], b"\""].concat()
        };
        out.push((k.to_vec(), value, bare));
        i = j + 1;
    }
    out
}

/// What Go makes of `b`: each byte that is not UTF-8 (each `\udcHH`) as U+FFFD.
pub fn go_view(b: &[u8]) -> Vec<u8> {
    let mut s = String::new();
    for chunk in b.utf8_chunks() {
        s.push_str(chunk.valid());
        for _ in chunk.invalid() {
            s.push('\u{fffd}');
        }
    }
    s.into_bytes()
}

/// What `python3 -c code args…` prints; it must succeed.
pub fn python(code: &str, args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Python's reading of each literal: `json.loads(v).encode('utf-8', 'surrogateescape')`.
pub fn python_recover(t: &TempDir, literals: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut data = Vec::new();
    for l in literals {
        data.extend_from_slice(l);
        data.push(b'\n');
    }
    let file = t.write("literals", data);
    let out = python(
        "import json, sys\n\
         for l in open(sys.argv[1], encoding='utf-8'):\n\
         \x20   print(json.loads(l).encode('utf-8', 'surrogateescape').hex())\n",
        &[file.as_os_str()],
    );
    let hex: Vec<Vec<u8>> = out.split(|&b| b == b'\n').map(unhex).collect();
    hex[..literals.len()].to_vec()
}

/// Asserts that some `event` line has `key` decoded to `want` (as Go shows it),
/// and that Python recovers `want`'s exact bytes from its literal.
pub fn check_fields(t: &TempDir, lines: &[Line], wanted: &[(&str, &str, Vec<u8>)]) {
    let mut literals = Vec::new();
    for (event, key, want) in wanted {
        let seen: Vec<&Line> = lines
            .iter()
            .filter(|l| l.event() == event.as_bytes() && l.get(key).is_some())
            .collect();
        let hit = seen.iter().find(|l| l.get(key) == Some(&go_view(want)[..]));
        let Some(hit) = hit else {
            panic!(
                "no {event} line with {key} = {:?}; decoded values: {:?}",
                String::from_utf8_lossy(want),
                seen.iter()
                    .map(|l| String::from_utf8_lossy(l.get(key).unwrap_or_default()))
                    .collect::<Vec<_>>()
            );
        };
        literals.push(literal(&hit.raw, key).expect("the field is in the raw line"));
    }
    let recovered = python_recover(t, &literals);
    for (((event, key, want), got), lit) in wanted.iter().zip(recovered).zip(&literals) {
        assert_eq!(
            got.escape_ascii().to_string(),
            want.escape_ascii().to_string(),
            "{event} {key}: what Python recovers from {}",
            String::from_utf8_lossy(lit)
        );
    }
}

/// The code points Python's `unicodedata` puts in Cc, Cf, Zl or Zp: with `"` and
/// `\`, exactly the characters the log must escape.
pub fn must_escape() -> Vec<bool> {
    let out = python(
        "import sys, unicodedata as u\n\
         for c in range(sys.maxunicode + 1):\n\
         \x20   if u.category(chr(c)) in ('Cc', 'Cf', 'Zl', 'Zp'): print(c)\n",
        &[],
    );
    let mut v = vec![false; 0x11_0000];
    for n in String::from_utf8_lossy(&out).lines() {
        v[n.parse::<usize>().expect("a code point")] = true;
    }
    v['"' as usize] = true;
    v['\\' as usize] = true;
    v
}

/// Asserts that no line holds, unescaped, a character that hides, reorders or
/// breaks text (a control, format character or line separator).
pub fn assert_nothing_raw(lines: &[Line]) {
    let must = must_escape();
    for l in lines {
        let text = std::str::from_utf8(&l.raw).expect("log lines are UTF-8");
        let raw: Vec<String> = text
            .chars()
            .filter(|&c| must[c as usize] && c != '"' && c != '\\')
            .map(|c| format!("U+{:04X}", c as u32))
            .collect();
        assert_eq!(raw, Vec::<String>::new(), "unescaped in {text}");
    }
}
