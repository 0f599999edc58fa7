//! The shared harness's own arithmetic, checked: the helpers other tests use to
//! read log times and to count cycles must be right for those tests to mean
//! anything.

mod common;

use common::*;

#[test]
fn log_times_read_back_as_the_milliseconds_they_print() {
    for secs in [0, 951_782_400, 1_700_000_000, 4_102_444_800] {
        let line = format!("ts={} level=info event=x", rfc3339(secs));
        assert_eq!(ts_ms(&line), secs as i64 * 1000, "{line}");
    }
    assert_eq!(
        ts_ms("ts=2026-11-26T23:59:59.999Z level=info") + 1,
        ts_ms("ts=2026-11-27T00:00:00.000Z level=info"),
        "across midnight"
    );
}

#[test]
fn samples_between_counts_the_cycles_after_one_line_up_to_the_next() {
    let log = "ts=1 level=info event=sample a\n\
               ts=2 level=warn event=reap action=term\n\
               ts=3 level=info event=sample b\n\
               ts=4 level=info event=sample c\n\
               ts=5 level=warn event=reap action=kill\n\
               ts=6 level=info event=sample d\n";
    assert_eq!(samples_between(log, " action=term", " action=kill"), 2);
    assert_eq!(samples_between(log, " event=sample a", " action=term"), 0);
    let missing = std::panic::catch_unwind(|| samples_between(log, " action=kill", " action=term"));
    assert!(missing.is_err(), "no kill after a term: no count");
}

#[test]
fn events_drop_the_time_and_refuse_what_is_not_a_log_line() {
    let log = "ts=1 level=info event=a x=1\nts=2 level=info event=b\n";
    assert_eq!(events(log, "event=a"), vec!["level=info event=a x=1"]);
    assert!(std::panic::catch_unwind(|| events("garbage event=a", "event=a")).is_err());
    assert_eq!(
        field("level=info event=a x=1 y=2", "y").as_deref(),
        Some("2")
    );
}
