//! Every log line, read back by a real strict logfmt decoder (go-logfmt, see
//! tests/common/logfmt.rs): the built binary is made to log every stable event name
//! with hostile bytes wherever outside input reaches a value
//! (tests/common/hostile.rs). Any decode error fails; the decoded value must be the
//! input (Go shows each byte that is not UTF-8 as U+FFFD), Python must recover its
//! exact bytes, and no line may hold a control, format character or line separator
//! unescaped. Files live in the test's own temp dirs. Needs root; as another user
//! the test is skipped with a message.

mod common;

use common::hostile::*;
use common::logfmt::*;
use common::*;

#[test]
fn every_event_decodes_strictly_and_keeps_hostile_bytes() {
    if !is_root() {
        eprintln!("logfmt events: skipped, needs root (chown, unshare --pid, setpriv)");
        return;
    }
    let hostile = Hostile::new();
    let h = &hostile.h;
    let check = build_checker(&h.t);
    hostile.log_every_event();
    let ns_log = reap_failed_log("");
    let read = |rel: &str| std::fs::read(h.t.join(rel)).unwrap_or_default();
    let mut all = decode(&check, "agent.log", &read("agent.log"));
    all.extend(decode(&check, "audit.log", &read("audit.log")));
    all.extend(decode(&check, "the namespace's agent.log", &ns_log));
    assert_nothing_raw(&all);
    let missing: Vec<&str> = EVENTS
        .iter()
        .filter(|e| !all.iter().any(|l| l.event() == e.as_bytes()))
        .copied()
        .collect();
    assert_eq!(missing, Vec::<&str>::new(), "never logged\n{}", h.log());
    check_fields(&h.t, &all, &hostile.expected());
}
