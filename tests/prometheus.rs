//! The metrics file against the programs that read it: `promtool check metrics`
//! (Debian `prometheus`) lints it, and a real node_exporter (Debian
//! `prometheus-node-exporter`), started by the test on a loopback port with only
//! its textfile collector, scrapes it over HTTP. The agent runs `--once` on a
//! fixture /proc in a temp dir; node_exporter is stopped by its pid.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const NODE_EXPORTER: &str = "/usr/bin/prometheus-node-exporter";

/// A fixture host (CPU 10% since the saved counters, memory 50%, load 0.52 on 2
/// CPUs, CPU pressure 12.34%) watching the temp dir's own filesystem; one
/// `--once` writes `textfile/system_agent.prom`.
fn metrics_file(h: &Host) -> String {
    h.write(
        "proc/pressure/cpu",
        "some avg10=12.34 avg60=1.00 avg300=0.50 total=12345\n\
         full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    );
    std::fs::create_dir_all(h.path("textfile")).unwrap();
    let agent = format!("metrics_file = {}", h.p("textfile/system_agent.prom"));
    let mount = h.t.path().display().to_string();
    let cfg = h.config(Ini {
        agent: &agent,
        mounts: &mount,
        ..Ini::default()
    });
    let run = h.once_seeded(&cfg, &[]);
    assert_eq!(run.code, 0, "{}{}", run.out, run.err);
    h.read("textfile/system_agent.prom")
}

/// `name{labels}` → value, from a Prometheus text exposition.
fn value(text: &str, series: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(str::to_string)
}

#[test]
fn names_follow_the_prometheus_conventions_and_promtool_finds_nothing() {
    let h = Host::new("prom-lint");
    let text = metrics_file(&h);
    let families: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE system_agent_"))
        .collect();
    assert_eq!(
        families,
        [
            "build_info gauge",
            "cpu_used_ratio gauge",
            "cpus gauge",
            "memory_used_ratio gauge",
            "swap_used_ratio gauge",
            "load_average gauge",
            "disk_used_ratio gauge",
            "inode_used_ratio gauge",
            "disk_size_bytes gauge",
            "disk_avail_bytes gauge",
            "pressure_avg10_ratio gauge",
            "level gauge",
            "cycles_total counter",
            "last_cycle_timestamp_seconds gauge",
            "cycle_duration_seconds gauge",
        ]
    );
    // Every family has its HELP just before its TYPE.
    for f in &families {
        let name = f.split(' ').next().unwrap();
        assert!(
            text.contains(&format!("\n# TYPE system_agent_{name} ")),
            "{name}"
        );
        let help = format!("# HELP system_agent_{name} ");
        let at = text
            .find(&help)
            .unwrap_or_else(|| panic!("no HELP for {name}"));
        let next = text[at..].lines().nth(1).unwrap();
        assert!(
            next.starts_with(&format!("# TYPE system_agent_{name} ")),
            "{next}"
        );
    }
    let version = env!("CARGO_PKG_VERSION");
    for (series, want) in [
        (
            format!("system_agent_build_info{{version=\"{version}\"}}"),
            "1",
        ),
        ("system_agent_cpu_used_ratio".to_string(), "0.1"),
        ("system_agent_memory_used_ratio".to_string(), "0.5"),
        ("system_agent_swap_used_ratio".to_string(), "0"),
        (
            "system_agent_pressure_avg10_ratio{resource=\"cpu\",kind=\"some\"}".to_string(),
            "0.1234",
        ),
    ] {
        assert_eq!(value(&text, &series).as_deref(), Some(want), "{series}");
    }
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus)");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}\n{text}");
    assert_eq!(
        (out.stdout.as_slice(), out.stderr.as_slice()),
        (&b""[..], &b""[..]),
        "{out:?}"
    );
}

/// node_exporter on a loopback port, with only the textfile collector, reading
/// `dir`; killed (by its pid) when dropped.
struct NodeExporter {
    child: Child,
    port: u16,
}

impl NodeExporter {
    fn start(dir: &Path) -> NodeExporter {
        // A port free a moment ago; if another program takes it first,
        // node_exporter exits and the next one is tried.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let mut child = Command::new(NODE_EXPORTER)
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--collector.disable-defaults")
                .arg("--collector.textfile")
                .arg(format!("--collector.textfile.directory={}", dir.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("prometheus-node-exporter (Debian package)");
            let up = wait_for(Duration::from_secs(20), || {
                get(port).is_some() || !matches!(child.try_wait(), Ok(None))
            });
            if up && matches!(child.try_wait(), Ok(None)) {
                return NodeExporter { child, port };
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("node_exporter did not start on a loopback port");
    }

    fn scrape(&self) -> String {
        get(self.port).expect("GET /metrics")
    }
}

impl Drop for NodeExporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of `GET /metrics`, if it answered 200.
fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .ok()?;
    let mut reply = String::new();
    s.read_to_string(&mut reply).ok()?;
    let (head, body) = reply.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.0 200").then(|| body.to_string())
}

#[test]
fn node_exporter_scrapes_the_metrics_file_without_error() {
    let h = Host::new("prom-scrape");
    let text = metrics_file(&h);
    let exporter = NodeExporter::start(&h.path("textfile"));
    let scraped = exporter.scrape();
    assert_eq!(
        value(&scraped, "node_textfile_scrape_error").as_deref(),
        Some("0"),
        "{scraped}"
    );
    let mount = h.t.path().display().to_string();
    let disk = |name: &str| format!("system_agent_{name}{{mount=\"{mount}\"}}");
    let version = env!("CARGO_PKG_VERSION");
    for (series, want) in [
        (
            format!("system_agent_build_info{{version=\"{version}\"}}"),
            "1",
        ),
        ("system_agent_cpu_used_ratio".to_string(), "0.1"),
        ("system_agent_memory_used_ratio".to_string(), "0.5"),
        ("system_agent_cpus".to_string(), "2"),
        (
            "system_agent_load_average{period=\"1m\"}".to_string(),
            "0.52",
        ),
        (
            "system_agent_pressure_avg10_ratio{kind=\"some\",resource=\"cpu\"}".to_string(),
            "0.1234",
        ),
        // node_exporter gives every sample of a family the same labels (an empty
        // label is no label to Prometheus).
        (
            "system_agent_level{metric=\"cpu\",mount=\"\"}".to_string(),
            "0",
        ),
        (
            format!("system_agent_level{{metric=\"disk\",mount=\"{mount}\"}}"),
            "0",
        ),
        ("system_agent_cycles_total".to_string(), "1"),
    ] {
        assert_eq!(
            value(&scraped, &series).as_deref(),
            Some(want),
            "{series}\n{scraped}"
        );
    }
    // The disk figures as the file has them (node_exporter prints large numbers
    // in Go's float format: compare as numbers).
    for name in [
        "disk_used_ratio",
        "inode_used_ratio",
        "disk_size_bytes",
        "disk_avail_bytes",
    ] {
        let series = disk(name);
        let file: f64 = value(&text, &series).unwrap().parse().unwrap();
        let got: f64 = value(&scraped, &series)
            .unwrap_or_else(|| panic!("no {series} in\n{scraped}"))
            .parse()
            .unwrap();
        assert_eq!(got, file, "{series}");
        assert!(file > 0.0, "{series}");
    }
}
