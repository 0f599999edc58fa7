//! The escaping of a log value, character by character: every Unicode scalar value
//! is escaped exactly when Python's `unicodedata` calls it a control, format
//! character or separator (or it is `"` or `\`) and decodes to itself in go-logfmt,
//! and every byte that is not UTF-8 on its own reads as U+FFFD in Go and as itself
//! in Python.

mod common;

use common::logfmt::*;
use common::*;

#[test]
fn every_character_and_byte_round_trips_through_go_logfmt() {
    let t = TempDir::new("logfmt-chars");
    let check = build_checker(&t);
    let chars: Vec<char> = (0..=0x10_ffff).filter_map(char::from_u32).collect();
    // Escaped exactly when Unicode says it is a control, format or separator.
    let must = must_escape();
    let mut out = String::new();
    let wrong: Vec<String> = chars
        .iter()
        .filter(|&&c| {
            out.clear();
            system_agent::log::push_value(&mut out, c.to_string().as_bytes());
            let escaped = out != c.to_string() && out != format!("\"{c}\"");
            escaped != must[c as usize]
        })
        .map(|&c| format!("U+{:04X}", c as u32))
        .collect();
    assert_eq!(
        wrong,
        Vec::<String>::new(),
        "escaped when it should not be, or not when it should"
    );
    // Every character decodes to itself in go-logfmt.
    let mut data = String::new();
    let values: Vec<String> = chars.chunks(256).map(|c| c.iter().collect()).collect();
    for v in &values {
        data.push_str("ts=0 level=info event=chars v=");
        system_agent::log::push_value(&mut data, v.as_bytes());
        data.push('\n');
    }
    let lines = decode(&check, "every character", data.as_bytes());
    assert_eq!(lines.len(), values.len());
    for (l, v) in lines.iter().zip(&values) {
        assert_eq!(
            l.get("v"),
            Some(v.as_bytes()),
            "{}",
            String::from_utf8_lossy(&l.raw)
        );
    }
    // Every byte that is not UTF-8 on its own: U+FFFD in Go, itself in Python.
    let bad: Vec<u8> = (0x80..=0xffu8).flat_map(|b| [b, b'.']).collect();
    let mut line = String::from("ts=0 level=info event=bytes v=");
    system_agent::log::push_value(&mut line, &bad);
    line.push('\n');
    let lines = decode(&check, "bytes", line.as_bytes());
    check_fields(&t, &lines, &[("bytes", "v", bad)]);
}
