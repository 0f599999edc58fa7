//! Shell-style globs on bytes (names from /proc and directories need not be UTF-8):
//! `*` any run of bytes, `?` one byte, `[abc]`, `[a-z]`, `[!x]` a byte class, `\x` a
//! literal. Matching is iterative with one backtrack point, so it is linear-ish and
//! cannot recurse deeply on hostile input. A `/` is an ordinary byte here: rules
//! match single names or whole command lines.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(Vec<u8>);

impl Glob {
    /// Any text is a valid glob; an unclosed `[` matches a literal `[`.
    pub fn new(pattern: &str) -> Glob {
        Glob(pattern.as_bytes().to_vec())
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    pub fn matches(&self, s: &[u8]) -> bool {
        matches(&self.0, s)
    }
}

/// Whether any of `globs` matches `s`.
pub fn any(globs: &[Glob], s: &[u8]) -> bool {
    globs.iter().any(|g| g.matches(s))
}

pub fn matches(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    // Where to resume after the last `*`: (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi + 1, si));
                pi += 1;
                continue;
            }
            Some(b'?') => {
                pi += 1;
                si += 1;
                continue;
            }
            Some(b'[') => match class(p, pi, s[si]) {
                Some((true, next)) => {
                    pi = next;
                    si += 1;
                    continue;
                }
                None if s[si] == b'[' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                _ => {}
            },
            Some(b'\\') if pi + 1 < p.len() => {
                // An escaped byte matches only itself (a mismatch must not fall
                // through to the arm below, where `\` would match a backslash).
                let hit = p[pi + 1] == s[si];
                if hit {
                    pi += 2;
                    si += 1;
                    continue;
                }
            }
            Some(&c) if c == s[si] => {
                pi += 1;
                si += 1;
                continue;
            }
            _ => {}
        }
        // Mismatch: let the last `*` take one more byte, or fail.
        match star {
            Some((sp, ss)) => {
                pi = sp;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// Matches byte `c` against the class starting at `p[at] == '['`: `(hit, index after
/// the class)`, or `None` when the class is not closed (then `[` is literal).
fn class(p: &[u8], at: usize, c: u8) -> Option<(bool, usize)> {
    let mut i = at + 1;
    let negate = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < p.len() {
        let lo = p[i];
        if lo == b']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < p.len() && p[i + 1] == b'-' && p[i + 2] != b']' {
            hit |= (lo..=p[i + 2]).contains(&c);
            i += 3;
        } else {
            hit |= lo == c;
            i += 1;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes())
    }

    #[test]
    fn stars_and_questions() {
        assert!(m("*", ""));
        assert!(m("*", "anything at all"));
        assert!(m("*.log", "app.log"));
        assert!(!m("*.log", "app.log.1"));
        assert!(m("*.log*", "app.log.1"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("?ync", "sync"));
        assert!(!m("?ync", "ync"));
        assert!(m("systemd-private-*", "systemd-private-abc-def"));
        assert!(m(
            "/usr/bin/python* *train*",
            "/usr/bin/python3 -u train.py"
        ));
        assert!(!m("", "x"));
        assert!(m("", ""));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("[ab]x", "bx"));
        assert!(!m("[ab]x", "cx"));
        assert!(m("[a-c]", "b"));
        assert!(m("[!a-c]", "d"));
        assert!(!m("[!a-c]", "b"));
        assert!(m("[]]", "]"));
        assert!(m("[", "["));
        assert!(m("a[", "a["));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "\\"));
        assert!(!m("\\*", "x"));
        assert!(m("*\\?", "what?"));
    }

    #[test]
    fn bytes_and_hostile_patterns() {
        assert!(matches(b"*\xff*", b"a\xffb"));
        assert!(matches(b"a\nb", b"a\nb"));
        // Many stars against a long string: quadratic at worst, never exponential.
        let s = "a".repeat(10_000);
        assert!(!m(&("*a".repeat(30) + "b"), &s));
        assert!(m(&"*a".repeat(30), &s));
    }
}
