//! With `log_format = json`, the events of the hostile host (tests/common/hostile.rs)
//! as JSON Lines, read strictly by Python's `json` module, must hold exactly the
//! fields of the logfmt line syslog got for each (syslog keeps logfmt): the same
//! keys in the same order, numbers as JSON numbers, strings with the exact bytes (a
//! test syslog daemon on a stream socket in the temp dir receives them). A reload
//! switches the format between two whole lines. Files live in the tests' own temp
//! dirs. The hostile host needs root; as another user that test is skipped with a
//! message.

mod common;

use common::hostile::*;
use common::logfmt::*;
use common::*;
use std::io::Read as _;
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A syslog daemon on a stream socket (the syslog crate falls back to one when a
/// datagram cannot connect, and a stream loses nothing to a short queue): each
/// connection is read to its end; connections are kept in the order they came, so
/// the messages of one logger are in the order it sent them.
struct SyslogStream {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<Vec<u8>>>,
}

impl SyslogStream {
    fn listen(path: &Path) -> SyslogStream {
        let listener = UnixListener::bind(path).expect("bind the syslog socket");
        listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut readers = Vec::new();
            loop {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).expect("blocking");
                        let limit = Some(Duration::from_secs(60));
                        conn.set_read_timeout(limit).expect("timeout");
                        readers.push(std::thread::spawn(move || {
                            let mut data = Vec::new();
                            let _ = conn.read_to_end(&mut data);
                            data
                        }));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if stopped.load(Ordering::SeqCst) {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            readers
                .into_iter()
                .map(|r| r.join().expect("reader"))
                .collect()
        });
        SyslogStream { stop, thread }
    }

    /// Once every sender is gone: for each of `facilities` (as `<PRI>` has them),
    /// the body of each of its messages, in order.
    fn bodies_by(self, facilities: &[u8]) -> Vec<Vec<Vec<u8>>> {
        self.stop.store(true, Ordering::SeqCst);
        let conns = self.thread.join().expect("the syslog thread");
        let mut out = vec![Vec::new(); facilities.len()];
        for msg in conns.iter().flat_map(|c| c.split(|&b| b == 0)) {
            if msg.is_empty() {
                continue;
            }
            let text = String::from_utf8_lossy(msg);
            let pri: u8 = text[1..text.find('>').expect("<PRI>")]
                .parse()
                .expect("PRI");
            let at = msg.windows(3).position(|w| w == b"]: ").expect("]: ") + 3;
            if let Some(i) = facilities.iter().position(|&f| f == pri >> 3) {
                out[i].push(msg[at..].to_vec());
            }
        }
        out
    }
}

/// A value of a JSON line as Python's `json` module reads it.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    /// The number as written.
    Num(String),
    /// The string's bytes, recovered with `surrogateescape`.
    Str(Vec<u8>),
}

/// One JSON line: its raw bytes and its fields, in order.
struct Record {
    raw: Vec<u8>,
    fields: Vec<(String, Json)>,
}

impl Record {
    fn get(&self, key: &str) -> Option<&Json> {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn event(&self) -> Vec<u8> {
        match self.get("event") {
            Some(Json::Str(e)) => e.clone(),
            _ => Vec::new(),
        }
    }
}

/// Reads JSON Lines strictly with Python's `json` module: each line one object
/// (`{` to `}`, valid UTF-8), no key twice, no `NaN` or `Infinity`, only strings
/// and numbers, `ts`, `level`, `event` first.
const JSON_SCRIPT: &str = r#"
import json, sys
class Num(str): pass
def pairs(ps):
    keys = [k for k, _ in ps]
    if len(set(keys)) != len(keys): raise ValueError("a key twice: %r" % keys)
    return ps
def const(c): raise ValueError("not JSON: " + c)
def hx(s): return s.encode("utf-8", "surrogateescape").hex()
data = open(sys.argv[1], "rb").read()
assert data == b"" or data.endswith(b"\n"), "no newline at the end"
for n, raw in enumerate(data.split(b"\n")[:-1], 1):
    assert raw.startswith(b"{") and raw.endswith(b"}"), "line %d: %r" % (n, raw)
    rec = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs,
                     parse_int=Num, parse_float=Num, parse_constant=const)
    assert [k for k, _ in rec[:3]] == ["ts", "level", "event"], "line %d: %r" % (n, raw)
    out = []
    for k, v in rec:
        if isinstance(v, Num): out.append(hx(k) + ":n" + hx(v))
        elif isinstance(v, str): out.append(hx(k) + ":s" + hx(v))
        else: raise ValueError("line %d: %s is %r" % (n, k, v))
    print(" ".join(out))
"#;

fn json_records(t: &TempDir, what: &str, data: &[u8]) -> Vec<Record> {
    let file = t.write("records.jsonl", data);
    let out = Command::new("python3")
        .args(["-c", JSON_SCRIPT])
        .arg(&file)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "Python's json rejects {what}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let raws = data.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let text = String::from_utf8(out.stdout).expect("hex");
    let recs: Vec<Record> = raws
        .zip(text.lines())
        .map(|(raw, l)| Record {
            raw: raw.to_vec(),
            fields: l
                .split(' ')
                .map(|f| {
                    let (k, v) = f.split_once(':').expect("key:value");
                    let key = String::from_utf8(unhex(k.as_bytes())).expect("a UTF-8 key");
                    let value = match v.split_at(1) {
                        ("n", h) => Json::Num(String::from_utf8(unhex(h.as_bytes())).expect("num")),
                        (_, h) => Json::Str(unhex(h.as_bytes())),
                    };
                    (key, value)
                })
                .collect(),
        })
        .collect();
    assert_eq!(
        recs.len(),
        text.lines().count(),
        "one record per line of {what}"
    );
    recs
}

/// Asserts that each JSON record has the fields of the logfmt line syslog got for
/// the same event: the same keys in the same order after `ts`, each number the
/// bare logfmt value, each string the exact bytes the logfmt value holds.
fn same_fields(t: &TempDir, check: &Path, what: &str, recs: &[Record], bodies: &[Vec<u8>]) {
    assert_eq!(
        recs.len(),
        bodies.len(),
        "{what}: as many JSON lines as syslog lines"
    );
    let lines: Vec<u8> = bodies
        .iter()
        .flat_map(|b| [b"ts=0 ".as_slice(), b, b"\n"].concat())
        .collect();
    decode(check, &format!("syslog lines for {what}"), &lines);
    let fields: Vec<Vec<Literal>> = bodies.iter().map(|b| literals(b)).collect();
    let all: Vec<Vec<u8>> = fields.iter().flatten().map(|(_, l, _)| l.clone()).collect();
    let mut values = python_recover(t, &all).into_iter();
    for ((rec, logfmt), body) in recs.iter().zip(&fields).zip(bodies) {
        let ctx = || {
            format!(
                "{what}:\n{}\n{}",
                String::from_utf8_lossy(&rec.raw),
                String::from_utf8_lossy(body)
            )
        };
        let Some(Json::Str(ts)) = rec.get("ts") else {
            panic!("no ts: {}", ctx())
        };
        assert!(is_timestamp(ts), "{}", ctx());
        let keys: Vec<&[u8]> = rec.fields[1..].iter().map(|(k, _)| k.as_bytes()).collect();
        let want: Vec<&[u8]> = logfmt.iter().map(|(k, _, _)| k.as_slice()).collect();
        assert_eq!(keys, want, "{}", ctx());
        for ((key, json), (_, _, bare)) in rec.fields[1..].iter().zip(logfmt) {
            let value = values.next().expect("a recovered value");
            match json {
                Json::Num(n) => assert!(*bare && n.as_bytes() == value, "{key}: {}", ctx()),
                Json::Str(s) => assert_eq!(
                    s.escape_ascii().to_string(),
                    value.escape_ascii().to_string(),
                    "{key}: {}",
                    ctx()
                ),
            }
        }
    }
}

/// `2026-11-26T10:05:00.123Z`.
fn is_timestamp(ts: &[u8]) -> bool {
    let shape = b"dddd-dd-ddTdd:dd:dd.dddZ";
    ts.len() == shape.len()
        && ts.iter().zip(shape).all(|(&c, &s)| match s {
            b'd' => c.is_ascii_digit(),
            s => c == s,
        })
}

#[test]
fn json_lines_hold_the_logfmt_fields_numbers_as_numbers() {
    if !is_root() {
        eprintln!("JSON log events: skipped, needs root (chown, unshare --pid, setpriv)");
        return;
    }
    let mut hostile = Hostile::new();
    let check = build_checker(&hostile.h.t);
    let sock = hostile.h.path("syslog.sock");
    let syslog = SyslogStream::listen(&sock);
    hostile.agent = format!(
        "log_format = json\nsyslog = yes\nsyslog_socket = {}",
        sock.display()
    );
    hostile.log_every_event();
    let ns_log = reap_failed_log(&hostile.agent);
    let h = &hostile.h;
    let read = |rel: &str| std::fs::read(h.t.join(rel)).unwrap_or_default();
    let agent_log = [read("agent.log"), ns_log].concat();
    let audit_log = read("audit.log");
    let agent = json_records(&h.t, "agent.log", &agent_log);
    let audit = json_records(&h.t, "audit.log", &audit_log);
    let (daemon, authpriv) = (3, 10);
    let conns = syslog.bodies_by(&[daemon, authpriv]);
    same_fields(&h.t, &check, "agent.log", &agent, &conns[0]);
    same_fields(&h.t, &check, "audit.log", &audit, &conns[1]);

    let all: Vec<&Record> = agent.iter().chain(&audit).collect();
    let missing: Vec<&str> = EVENTS
        .iter()
        .filter(|e| !all.iter().any(|r| r.event() == e.as_bytes()))
        .copied()
        .collect();
    assert_eq!(missing, Vec::<&str>::new(), "never logged as JSON");
    // Hostile input, byte for byte.
    for (event, key, want) in hostile.expected() {
        let hit = all
            .iter()
            .any(|r| r.event() == event.as_bytes() && r.get(key) == Some(&Json::Str(want.clone())));
        assert!(
            hit,
            "no {event} line with {key} = {:?}",
            String::from_utf8_lossy(&want)
        );
    }
    let raw: Vec<Line> = all
        .iter()
        .map(|r| Line {
            raw: r.raw.clone(),
            fields: Vec::new(),
        })
        .collect();
    assert_nothing_raw(&raw);
    // Numbers are JSON numbers, other values strings.
    for (event, key, number) in [
        ("sample", "cpu", true),
        ("sample", "load1", true),
        ("start", "pid", true),
        ("start", "version", false),
        ("alert", "value", true),
        ("alert", "threshold", true),
        ("config_error", "line", true),
        ("stop", "cycles", true),
        ("stop", "reason", false),
    ] {
        let values: Vec<&Json> = all
            .iter()
            .filter(|r| r.event() == event.as_bytes())
            .filter_map(|r| r.get(key))
            .collect();
        assert!(!values.is_empty(), "no {event} line with {key}");
        for v in values {
            assert_eq!(matches!(v, Json::Num(_)), number, "{event} {key} = {v:?}");
        }
    }
}

#[test]
fn a_reload_switches_the_log_format() {
    let h = Host::new("json-reload").interval("200ms");
    let cfg = h.config(Ini::default());
    let agent = h.spawn(&cfg);
    h.must_see(" event=sample ", 1);
    h.config(Ini::agent("log_format = json"));
    agent.signal(libc::SIGHUP);
    let reload = format!(
        r#","level":"info","event":"reload","config":"{}","changed":"agent.log_format"}}"#,
        cfg.display()
    );
    h.must_see(&reload, 1);
    h.must_see(r#","level":"info","event":"sample","#, 1);
    assert_eq!(agent.stop(), 0);
    // Every line is whole: logfmt up to the reload, JSON from it on.
    let text = h.log();
    let at = text.find(&reload).expect("the reload line");
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    assert!(
        text[..start].lines().all(|l| l.starts_with("ts=")),
        "{text}"
    );
    assert!(
        text[start..]
            .lines()
            .all(|l| l.starts_with("{\"ts\":\"") && l.ends_with('}')),
        "{text}"
    );
}
