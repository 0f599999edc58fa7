//! Stand-ins for what the agent talks to: a syslog daemon (a datagram socket in the
//! temp dir), an SMTP server (`aiosmtpd` writing a Maildir on 127.0.0.1), and a
//! mailer script that keeps what it is given; and Python's strict mail parser,
//! to read what arrived as a mail reader would.

use super::{Host, LIMIT, stop_child, wait_for};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::SystemTime;

/// A syslog daemon stand-in: a datagram socket at a path in the temp dir.
pub struct Syslog {
    sock: UnixDatagram,
    /// Every datagram taken so far.
    pub got: Vec<Vec<u8>>,
}

impl Syslog {
    pub fn bind(path: &Path) -> Syslog {
        let sock = UnixDatagram::bind(path).expect("bind the syslog socket");
        sock.set_nonblocking(true).expect("non-blocking");
        Syslog {
            sock,
            got: Vec::new(),
        }
    }

    /// Takes every datagram queued now.
    pub fn drain(&mut self) {
        let mut buf = vec![0u8; 65_536];
        while let Ok(n) = self.sock.recv(&mut buf) {
            self.got.push(buf[..n].to_vec());
        }
    }

    /// The datagrams taken so far, as text.
    pub fn texts(&self) -> Vec<String> {
        self.got
            .iter()
            .map(|d| String::from_utf8_lossy(d).into_owned())
            .collect()
    }

    /// Waits (bounded) until `n` datagrams have come.
    pub fn wait_count(&mut self, n: usize) -> bool {
        wait_for(LIMIT, || {
            self.drain();
            self.got.len() >= n
        })
    }

    /// Waits (bounded) for a datagram containing `needle`; returns the first.
    pub fn wait_with(&mut self, needle: &str) -> Option<String> {
        wait_for(LIMIT, || {
            self.drain();
            self.texts().iter().any(|d| d.contains(needle))
        });
        self.texts().into_iter().find(|d| d.contains(needle))
    }

    /// `(PRI, message after "system-agent[PID]: ")` of each datagram containing
    /// `needle`.
    pub fn with(&self, needle: &str) -> Vec<(String, String)> {
        self.texts()
            .into_iter()
            .filter(|d| d.contains(needle))
            .map(|d| {
                let pri = d[..d.find('>').expect("a PRI") + 1].to_string();
                let msg = d
                    .split_once("]: ")
                    .map(|(_, m)| m.to_string())
                    .expect("an ident");
                (pri, msg)
            })
            .collect()
    }
}

pub const MSMTP: &str = "/usr/bin/msmtp";
pub const PYTHON: &str = "/usr/bin/python3";

/// A port on 127.0.0.1 that nothing listens on (just now).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a port");
    l.local_addr().expect("its address").port()
}

/// `[alert] sendmail` for msmtp to 127.0.0.1:`port`.
pub fn sendmail_to(port: u16) -> String {
    format!(
        "{MSMTP} --host=127.0.0.1 --port={port} --auth=off --tls=off --from=agent@test.invalid -t"
    )
}

/// aiosmtpd with the Maildir handler on 127.0.0.1:PORT, writing into T/Maildir;
/// stopped by its pid when dropped.
pub struct Sink {
    child: Child,
    pub port: u16,
    maildir: PathBuf,
}

impl Sink {
    pub fn start(h: &Host) -> Sink {
        let maildir = h.path("Maildir");
        for d in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(d)).expect("Maildir");
        }
        let port = free_port();
        let log = std::fs::File::create(h.path("sink.log")).expect("sink.log");
        let child = Command::new(PYTHON)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox", maildir.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start aiosmtpd");
        let mut sink = Sink {
            child,
            port,
            maildir,
        };
        let up = wait_for(LIMIT, || {
            matches!(sink.child.try_wait(), Ok(None))
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        assert!(up, "the SMTP sink did not listen: {}", h.read("sink.log"));
        sink
    }

    /// `[alert] sendmail` for msmtp into this sink.
    pub fn sendmail(&self) -> String {
        sendmail_to(self.port)
    }

    /// The messages in Maildir/new, oldest first (see `raw_mails`), as text.
    pub fn mails(&self) -> Vec<String> {
        self.raw_mails()
            .into_iter()
            .map(|m| String::from_utf8(m).expect("a UTF-8 mail"))
            .collect()
    }

    /// The messages in Maildir/new as they were stored, oldest first (names
    /// start `SECONDS.MMICROS`).
    pub fn raw_mails(&self) -> Vec<Vec<u8>> {
        let mut files: Vec<((u64, u64), PathBuf)> = std::fs::read_dir(self.maildir.join("new"))
            .expect("Maildir/new")
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let mut it = name.split('.');
                let secs = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
                let micros = it
                    .next()
                    .and_then(|s| s.strip_prefix('M'))
                    .and_then(|s| s.split('P').next())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                ((secs, micros), e.path())
            })
            .collect();
        files.sort();
        files
            .iter()
            .map(|(_, p)| std::fs::read(p).expect("a mail"))
            .collect()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        stop_child(&mut self.child);
    }
}

/// A mailer script that keeps each message (and its argv) in T/out/mail.N (argv.N);
/// returns its path.
pub fn capture_mailer(h: &Host) -> String {
    std::fs::create_dir_all(h.path("out")).expect("out dir");
    let out = h.p("out");
    h.script(
        "capture.sh",
        &format!("/bin/cat > {out}/mail.$$\nprintf '%s\\n' \"$@\" > {out}/argv.$$\n"),
    )
}

/// The messages the capture mailer kept, oldest first.
pub fn captured(h: &Host) -> Vec<String> {
    let mut files: Vec<(SystemTime, PathBuf)> = std::fs::read_dir(h.path("out"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("mail."))
                .map(|e| (e.metadata().unwrap().modified().unwrap(), e.path()))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
        .iter()
        .map(|(_, p)| std::fs::read_to_string(p).expect("a mail"))
        .collect()
}

/// A mail header's value.
pub fn header<'a>(mail: &'a str, name: &str) -> Option<&'a str> {
    let head = mail.split("\n\n").next().unwrap_or("");
    head.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// The `Subject:` of each mail, unfolded (a long one goes on over lines that
/// start with a space).
pub fn subjects(mails: &[String]) -> Vec<String> {
    mails
        .iter()
        .map(|m| {
            let head = m.split("\n\n").next().unwrap_or("");
            let mut lines = head.lines().skip_while(|l| !l.starts_with("Subject: "));
            let mut s = lines
                .next()
                .and_then(|l| l.strip_prefix("Subject: "))
                .unwrap_or("")
                .to_string();
            lines
                .take_while(|l| l.starts_with(' '))
                .for_each(|l| s.push_str(l));
            s
        })
        .collect()
}

/// The node name the agent puts in subjects and `SA_HOST` (uname's, read here
/// from the kernel's copy rather than the way the agent gets it).
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("read the host name")
        .trim_end()
        .to_string()
}

/// A mail as Python's `email` package reads it with `policy.strict`: the
/// decoded fields and text body, and every defect the parser noted on the
/// message, its parts or their headers (one per line; a defect the parser
/// raises fails `parse_strict` itself).
#[derive(Debug)]
pub struct Parsed {
    pub subject: String,
    pub key: String,
    pub from: String,
    pub to: String,
    /// `text/plain; charset=utf-8` as parsed: type, `; charset=`, charset.
    pub content_type: String,
    pub transfer_encoding: String,
    pub body: String,
    pub defects: String,
}

/// Reads stdin as a mail (`BytesParser(policy=strict)`); writes the fields of
/// `Parsed`, in its order, separated by NUL bytes.
const STRICT_PARSE: &str = r#"
import sys
from email import policy
from email.parser import BytesParser
msg = BytesParser(policy=policy.strict).parse(sys.stdin.buffer)
defects = []
for part in msg.walk():
    defects += [f"{type(d).__name__}: {d}" for d in part.defects]
    for name, value in part.items():
        defects += [f"{name}: {type(d).__name__}: {d}" for d in value.defects]
fields = [
    str(msg["Subject"]),
    str(msg["X-System-Agent-Key"]),
    str(msg["From"]),
    str(msg["To"]),
    f"{msg.get_content_type()}; charset={msg.get_content_charset()}",
    str(msg["Content-Transfer-Encoding"]),
    msg.get_content(),
    "\n".join(defects),
]
sys.stdout.buffer.write("\0".join(fields).encode("utf-8"))
"#;

/// `mail` read by Python's strict mail parser (`STRICT_PARSE`).
pub fn parse_strict(mail: &[u8]) -> Parsed {
    use std::io::Write;
    let mut py = Command::new(PYTHON)
        .args(["-c", STRICT_PARSE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python3");
    let mut stdin = py.stdin.take().expect("python's stdin");
    stdin.write_all(mail).expect("the mail to python");
    drop(stdin);
    let out = py.wait_with_output().expect("python3 ends");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the strict parser refused the mail: {err}"
    );
    let text = String::from_utf8(out.stdout).expect("UTF-8 from python");
    let f: Vec<String> = text.split('\0').map(str::to_string).collect();
    assert_eq!(f.len(), 8, "{text:?}");
    let mut f = f.into_iter();
    let mut next = || f.next().unwrap_or_default();
    Parsed {
        subject: next(),
        key: next(),
        from: next(),
        to: next(),
        content_type: next(),
        transfer_encoding: next(),
        body: next(),
        defects: next(),
    }
}
