//! State files as the agent reads them (`files::read_file` with each format's cap,
//! then the format's parser), against hostile files in `state_dir`: mutated and
//! random contents, FIFOs, symlinks to `/dev/zero`, sparse files of any size up to
//! a terabyte, files just under and just over the cap. None may panic or hang (an
//! alarm kills a stuck run), and the whole test process stays under 8 MiB of
//! memory (its peak RSS, `VmHWM`). This file holds one test, so the process is
//! this test alone. Rounds: `SA_FUZZ_ROUNDS` / 10 (`scripts/fuzz`), 2,000 by
//! default.

mod common;
#[path = "common/fuzz.rs"]
mod fuzz_engine;

use common::TempDir;
use fuzz_engine::{Rng, mutate, rounds};
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use system_agent::features::alerts::decide as alerts;
use system_agent::features::audit::history as audit;
use system_agent::features::reaper::records as reaper;
use system_agent::features::tasks::schedule as tasks;
use system_agent::files;
use system_agent::state::{self, max};

/// One format: its name in state_dir, its cap, a valid file, and its parser.
struct Format {
    name: &'static str,
    cap: u64,
    seed: &'static [u8],
    parse: fn(&[u8]) -> bool,
}

const FORMATS: &[Format] = &[
    Format {
        name: "state",
        cap: max::STATE,
        seed: b"system-agent-state 1\nsaved 123\nbtime 456\ncpu 1 2 3 4 5 6 7 8\n\
                metric 2 3 3 0 0 cpu\nmetric 0 0 0 3 3 disk:/var\nend\n",
        parse: |b| state::parse_state(b).is_ok(),
    },
    Format {
        name: "procs",
        cap: max::PROCS,
        seed: b"system-agent-procs 1\nsaved 9\nbtime 8\n1 5 101\n4242 77 9\nend\n",
        parse: |b| state::parse_procs(b).is_ok(),
    },
    Format {
        name: "reaper",
        cap: max::REAPER,
        seed: b"system-agent-reaper 2\nboot 0b5e3c4d\nstate 10 20 T 30\n\
                pending 11 21 31 hogs\nsettled 12 22\nend\n",
        parse: |b| reaper::parse(b).is_ok(),
    },
    Format {
        name: "tasks",
        cap: max::TASKS,
        seed: b"system-agent-tasks 1\ntask 5 6 2 mandb\nskipped mandb why\nend\n",
        parse: |b| tasks::parse(b).is_ok(),
    },
    Format {
        name: "alerts",
        cap: max::ALERTS,
        seed: b"system-agent-alerts 1\ntold 2 3 4 5 6 disk:/var\nend\n",
        parse: |b| alerts::parse(b).is_ok(),
    },
    Format {
        name: "audit",
        cap: max::AUDIT,
        seed: b"system-agent-audit 2\nhist 1 2 3 alice\nrefused bob is a symlink\nend\n",
        parse: |b| audit::parse(b).is_ok(),
    },
    Format {
        name: "forecast",
        cap: max::FORECAST,
        seed: b"system-agent-forecast 1\nsaved 9\nmount /\np 1 2 3\np 5 6 -\nend\n",
        parse: |b| system_agent::forecast::parse_forecast(b).is_ok(),
    },
];

/// Peak resident memory of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The seed's last record line (the one before `end`).
trait LastRecord<'a> {
    fn last_chunk_before_end(self, seed: &'a [u8]) -> &'a [u8];
}

impl<'a, I: Iterator<Item = &'a [u8]>> LastRecord<'a> for I {
    fn last_chunk_before_end(self, _seed: &'a [u8]) -> &'a [u8] {
        self.filter(|l| *l != b"end\n").last().unwrap_or(b"x\n")
    }
}

fn mkfifo(p: &Path) {
    let c = CString::new(p.as_os_str().as_bytes()).unwrap();
    // SAFETY: a NUL-terminated path inside the test's temp dir.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Puts something hostile (or just mutated) at `path`.
fn plant(rng: &mut Rng, f: &Format, path: &Path, bytes: &mut Vec<u8>) {
    let _ = std::fs::remove_file(path);
    match rng.below(20) {
        0 => mkfifo(path),
        1 => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        2 => {
            // Sparse, of any size up to a terabyte: never read whole.
            let file = std::fs::File::create(path).unwrap();
            file.set_len(rng.next() % (1 << 40)).unwrap();
        }
        3 => {
            // Real bytes, right at the cap or one over it (written in pieces: the
            // test itself holds no more than the agent would).
            use std::io::Write as _;
            // A well-formed file as long as the cap allows: a record line repeated,
            // between the seed's header and its `end` line.
            let size = f.cap + rng.below(2) as u64;
            let mut lines = f.seed.split_inclusive(|&c| c == b'\n');
            let header = lines.next().unwrap_or_default();
            let record = lines.last_chunk_before_end(f.seed);
            let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
            out.write_all(header).unwrap();
            let mut written = header.len() as u64 + 4;
            while written + record.len() as u64 <= size {
                out.write_all(record).unwrap();
                written += record.len() as u64;
            }
            out.write_all(&b"end\n"[..(size - written + 4).min(4) as usize])
                .unwrap();
            out.flush().unwrap();
        }
        _ => {
            mutate(rng, f.seed, bytes);
            std::fs::write(path, &*bytes).unwrap();
        }
    }
}

#[test]
fn fuzz_state_files_as_read_from_state_dir() {
    let rounds = (rounds() / 10).max(200);
    let t = TempDir::new("fuzz-state");
    let mut rng = Rng(21);
    let mut planted = Vec::new();
    let mut buf = Vec::new();
    let (mut parsed, mut refused) = (0, 0);
    for round in 0..rounds {
        let f = &FORMATS[round % FORMATS.len()];
        let path = t.join(f.name);
        plant(&mut rng, f, &path, &mut planted);
        // A hang (a blocking open or read) is killed here, failing the test.
        // SAFETY: alarm(2) has no preconditions.
        unsafe { libc::alarm(30) };
        match files::read_file(&path, false, f.cap, &mut buf) {
            Ok(_) => {
                assert!(buf.len() as u64 <= f.cap, "{} read past its cap", f.name);
                if (f.parse)(&buf) {
                    parsed += 1;
                }
            }
            Err(why) => {
                assert!(!why.to_string().is_empty());
                refused += 1;
            }
        }
        // What the agent holds between reads: only what it parsed, not the bytes.
        buf = Vec::new();
    }
    // SAFETY: as above; cancels the alarm.
    unsafe { libc::alarm(0) };
    assert!(
        parsed > 0 && refused > 0,
        "parsed {parsed}, refused {refused}"
    );
    let peak = peak_rss_kib();
    assert!(peak <= 8 * 1024, "peak RSS {peak} KiB, over 8 MiB");
    eprintln!("{rounds} state files: {parsed} parsed, {refused} refused; peak RSS {peak} KiB");
}
