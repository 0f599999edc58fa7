//! Memory limits that bind: `mem` judged against the tighter of the host and the
//! agent's own cgroup (`[thresholds] mem_scope`, `[paths] cgroup`). Fixture
//! trees for cgroup v2 and v1 (a fixture `/proc/self/cgroup` naming the group),
//! and a real v1 memory group on this machine (root only: a group of our own,
//! limited to 100 MiB, holding a 60 MiB tmpfs file in a private mount
//! namespace, removed afterwards).

mod common;

use common::*;
use std::process::Command;

/// A fixture host whose memory is 50% used, with the agent in a v2 group
/// limited to 100 MiB, using `used` MiB of it (none of it inactive cache but 2
/// MiB), `mem_scope` as given.
fn v2_host(tag: &str, used_mib: u64) -> Host {
    let h = Host::new(tag).ticking();
    h.write("proc/self/cgroup", "0::/system.slice/agent.service\n");
    h.write("cg/cgroup.controllers", "cpu io memory pids\n");
    let g = "cg/system.slice/agent.service";
    h.write(&format!("{g}/memory.max"), format!("{}\n", 100 << 20));
    h.write(
        &format!("{g}/memory.current"),
        format!("{}\n", (used_mib + 2) << 20),
    );
    h.write(
        &format!("{g}/memory.stat"),
        format!("anon 1\nfile 2\ninactive_file {}\n", 2 << 20),
    );
    h.write(
        &format!("{g}/memory.pressure"),
        "some avg10=12.50 avg60=1.00 avg300=0.00 total=1\n\
         full avg10=3.00 avg60=0.00 avg300=0.00 total=1\n",
    );
    h.write("cg/system.slice/memory.max", "max\n");
    h
}

fn config(h: &Host, scope: &str) -> std::path::PathBuf {
    let paths = format!("cgroup = {}", h.p("cg"));
    let thresholds = format!("mem_scope = {scope}");
    h.config(Ini {
        paths: &paths,
        thresholds: &thresholds,
        ..Ini::default()
    })
}

#[test]
fn mem_is_judged_against_the_tighter_of_the_host_and_a_v2_group() {
    let h = v2_host("cgroup-v2", 96);
    let run = h.once(&config(&h, "auto"), &[]);
    assert_eq!(
        run.out,
        "SYSTEM-AGENT CRITICAL - mem 96.0% (cgroup) | cpu=10.0%;80;90 mem=96.0%;85;95 load1=0.52\n"
    );
    assert_eq!(run.code, 2);
    let sample = h.events("event=sample");
    assert!(
        sample[0]
            .starts_with("level=info event=sample cpu=10.0 mem=96.0 mem_scope=cgroup swap=0.0 "),
        "{sample:?}"
    );
    assert!(
        sample[0].ends_with(" cgroup_psi_memory=12.50"),
        "{sample:?}"
    );
    // The host's figure alone, when asked.
    let run = h.once(&config(&h, "host"), &[]);
    assert_eq!(
        run.out,
        "SYSTEM-AGENT OK - all checks ok | cpu=10.0%;80;90 mem=50.0%;85;95 load1=0.52\n"
    );
    // A group using less of its limit than the host does of its memory: the host's.
    let h = v2_host("cgroup-v2-low", 30);
    let run = h.once(&config(&h, "auto"), &[]);
    assert!(run.out.contains(" mem=50.0%;85;95 "), "{}", run.out);
    assert!(!h.log().contains("mem_scope="), "{}", h.log());
    // ... unless the group is what is asked for.
    let run = h.once(&config(&h, "cgroup"), &[]);
    assert!(run.out.contains(" mem=30.0%;85;95 "), "{}", run.out);
    assert!(
        h.log().contains(" mem=30.0 mem_scope=cgroup "),
        "{}",
        h.log()
    );
}

#[test]
fn a_v1_group_binds_too_and_without_one_cgroup_scope_is_unknown() {
    let h = Host::new("cgroup-v1").ticking();
    h.write("proc/self/cgroup", "4:memory:/jobs/a\n1:cpu:/\n0::/\n");
    h.write("cg/unified/cgroup.controllers", "hugetlb\n");
    h.write("cg/memory/memory.limit_in_bytes", "9223372036854771712\n");
    h.write("cg/memory/memory.usage_in_bytes", "1\n");
    h.write("cg/memory/memory.stat", "total_inactive_file 0\n");
    h.write("cg/memory/jobs/a/memory.limit_in_bytes", "1000000\n");
    h.write("cg/memory/jobs/a/memory.usage_in_bytes", "970000\n");
    h.write(
        "cg/memory/jobs/a/memory.stat",
        "inactive_file 1\ntotal_inactive_file 10000\n",
    );
    let run = h.once(&config(&h, "auto"), &[]);
    assert_eq!(
        run.out,
        "SYSTEM-AGENT CRITICAL - mem 96.0% (cgroup) | cpu=10.0%;80;90 mem=96.0%;85;95 load1=0.52\n"
    );
    // No group where the config says: unknown under `cgroup`, the host's under `auto`.
    std::fs::remove_dir_all(h.path("cg/memory")).unwrap();
    let run = h.once(&config(&h, "cgroup"), &[]);
    let why = format!(
        "cannot find the agent's memory cgroup: no memory cgroup of the agent's under {} (per {})",
        h.p("cg"),
        h.p("proc/self/cgroup")
    );
    assert_eq!(
        run.out,
        format!(
            "SYSTEM-AGENT UNKNOWN - mem unknown ({why}) | cpu=10.0%;80;90 mem=U;85;95 load1=0.52\n"
        )
    );
    assert_eq!(run.code, 3);
    let run = h.once(&config(&h, "auto"), &[]);
    assert_eq!(run.code, 0, "{}", run.out);
}

/// A real v1 memory group of this machine, limited to 100 MiB: a shell moves
/// itself into it, writes 60 MiB into a tmpfs (charged to the group; not cache
/// the kernel could drop) in a private mount namespace, then becomes the agent.
#[test]
fn a_real_v1_memory_group_binds() {
    let base = std::path::Path::new("/sys/fs/cgroup/memory");
    if !is_root() || !base.join("memory.limit_in_bytes").exists() {
        eprintln!(
            "skipped: needs root and a cgroup v1 memory hierarchy at {}",
            base.display()
        );
        return;
    }
    let h = Host::new("cgroup-real");
    let group = base.join(format!("sa-test-{}", std::process::id()));
    let _ = std::fs::remove_dir(&group);
    std::fs::create_dir(&group).expect("create a memory group");
    let _cleanup = RemoveGroup(group.clone());
    std::fs::write(
        group.join("memory.limit_in_bytes"),
        format!("{}", 100 << 20),
    )
    .expect("set its limit");
    std::fs::create_dir_all(h.path("mnt")).unwrap();
    let cfg = h.config(Ini {
        real_proc: true,
        thresholds: "mem_warn = 50\nmem_crit = 90",
        ..Ini::default()
    });
    let script = format!(
        "set -e\necho $$ > {procs}\nmount -t tmpfs -o size=200m tmpfs {mnt}\n\
         head -c 62914560 /dev/zero > {mnt}/fill\nexec {agent} -c {cfg} --once",
        procs = group.join("cgroup.procs").display(),
        mnt = h.p("mnt"),
        agent = bin(),
        cfg = cfg.display(),
    );
    let mut cmd = Command::new("unshare");
    cmd.args(["-m", "--propagation", "private", "sh", "-c", &script]);
    let run = run_command(cmd);
    // (This machine's CPU may be busy too: only memory is looked at.)
    assert!([1, 2].contains(&run.code), "{}\n{}", run.out, run.err);
    let (text, _) = run.out.split_once(" | ").expect("perfdata");
    let pct: f64 = text
        .split(['-', ','])
        .find_map(|item| item.trim().strip_prefix("mem "))
        .and_then(|r| r.strip_suffix("% (cgroup)"))
        .unwrap_or_else(|| panic!("{}", run.out))
        .parse()
        .expect("a percentage");
    // 60 MiB of 100, and what the shell and the agent use besides.
    assert!((60.0..75.0).contains(&pct), "{}", run.out);
    let start = h.events("event=sample");
    assert!(start[0].contains(" mem_scope=cgroup "), "{start:?}");
}

/// Removes the test's memory group once its processes are gone (the namespace,
/// and the tmpfs with it, ended with the agent).
struct RemoveGroup(std::path::PathBuf);

impl Drop for RemoveGroup {
    fn drop(&mut self) {
        wait_for(LIMIT, || {
            std::fs::remove_dir(&self.0).is_ok() || !self.0.exists()
        });
    }
}
