//! The fixed-seed fuzz engine shared by `tests/fuzz_parsers.rs` (every parser),
//! `tests/fuzz_config.rs` (the config) and `tests/fuzz_state.rs` (state files as
//! the agent reads them):
//! SplitMix64, and mutations that matter to line- and field-based text formats.
//! `scripts/fuzz` runs them long by setting `SA_FUZZ_ROUNDS`.
#![allow(dead_code)]

/// Inputs per fuzz target: 20,000 in `cargo test`; `scripts/fuzz` sets
/// `SA_FUZZ_ROUNDS` (a million by default) for a long run with the same seeds.
pub fn rounds() -> usize {
    std::env::var("SA_FUZZ_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// SplitMix64: tiny, fast, and the same sequence on every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn pick<'a, T: ?Sized>(&mut self, items: &[&'a T]) -> &'a T {
        items[self.below(items.len())]
    }
}

/// Bytes that matter to some parser: delimiters, signs, overflowing numbers, keys.
pub const TOKENS: &[&[u8]] = &[
    b"(",
    b")",
    b") ",
    b" (",
    b"\0",
    b"\n",
    b"\r\n",
    b" ",
    b"\t",
    b":",
    b"=",
    b".",
    b"-",
    b"0",
    b"99999999999999999999999",
    b"18446744073709551615",
    b"18446744073709551616",
    b"4294967296",
    b"2147483648",
    b"-9223372036854775808",
    b"\xff\xfe",
    "é".as_bytes(),
    b"#",
    b"+",
    b";",
    b"[",
    b"]",
    b"\"",
    b"'",
    b"\\",
    b"cpu ",
    b"cpu0 ",
    b"btime ",
    b"MemTotal:",
    b"MemAvailable:",
    b"MemFree:",
    b"SwapTotal:",
    b"some ",
    b"full ",
    b"avg10=",
    b"total=",
    b"Uid:",
    b"Gid:",
    b"CapEff:",
    b"saved ",
    b"metric ",
    b"system-agent-state 1\n",
    b"system-agent-procs 1\n",
];

/// Overwrites `out` with `seed` changed by one to four random edits.
pub fn mutate(rng: &mut Rng, seed: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(seed);
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        let at = rng.below(len + 1);
        match rng.below(10) {
            0 if len > 0 => out[at.min(len - 1)] = rng.next() as u8,
            1 if len > 0 => out[at.min(len - 1)] ^= 1 << rng.below(8),
            2 => out.insert(at, rng.next() as u8),
            3 | 4 => {
                let t = rng.pick(TOKENS);
                out.splice(at..at, t.iter().copied());
            }
            5 => {
                let end = (at + 1 + rng.below(16)).min(len);
                out.drain(at.min(end)..end);
            }
            6 => out.truncate(at),
            7 => duplicate_line(rng, out),
            8 if rng.below(4) == 0 => {
                // Repeat a short piece many times: long lines, many fields.
                let end = (at + 1 + rng.below(12)).min(len);
                let piece = out[at.min(end)..end].repeat(rng.below(400));
                out.splice(end..end, piece);
            }
            8 => replace_number(rng, out, at),
            _ => {
                // Splice a piece of the input into another place of itself.
                let from = rng.below(len + 1);
                let end = (from + rng.below(64)).min(len);
                let piece = out[from..end].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, piece);
            }
        }
    }
}

/// Copies one line (with its newline) to the start of another line.
fn duplicate_line(rng: &mut Rng, out: &mut Vec<u8>) {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            out.iter()
                .enumerate()
                .filter(|(_, c)| **c == b'\n')
                .map(|(i, _)| i + 1),
        )
        .filter(|&i| i <= out.len())
        .collect();
    let from = starts[rng.below(starts.len())];
    let end = out[from..]
        .iter()
        .position(|&c| c == b'\n')
        .map_or(out.len(), |i| from + i + 1);
    let line = out[from..end].to_vec();
    let to = starts[rng.below(starts.len())];
    out.splice(to..to, line);
}

/// Replaces the run of digits at or after `at` with an extreme number.
fn replace_number(rng: &mut Rng, out: &mut Vec<u8>, at: usize) {
    let Some(start) = out
        .iter()
        .skip(at)
        .position(u8::is_ascii_digit)
        .map(|i| at + i)
    else {
        return;
    };
    let end = out[start..]
        .iter()
        .position(|c| !c.is_ascii_digit())
        .map_or(out.len(), |i| start + i);
    let big: &[&[u8]] = &[
        b"99999999999999999999999",
        b"18446744073709551616",
        b"18446744073709551615",
        b"4294967296",
        b"0",
        b"-1",
        b"00000000000000000000000000001",
    ];
    let n = rng.pick(big);
    out.splice(start..end, n.iter().copied());
}
