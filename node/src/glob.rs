//! Glob patterns as redis matches them (`stringmatchlen`): KEYS and SCAN
//! MATCH, PSUBSCRIBE and PUBSUB CHANNELS, CONFIG GET, COMMAND LIST FILTERBY
//! PATTERN. One matcher for all of them; iterative, so a hostile pattern
//! (`*a*a*a*...`) costs at most pattern x text steps, never exponential time.

/// redis `stringmatchlen`: `*`, `?`, `[...]` (with `^` and ranges) and `\` escapes.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut p, mut s) = (0usize, 0usize);
    // Backtracking point for the last `*`: (pattern index after it, string index).
    let mut star: Option<(usize, usize)> = None;
    while s < string.len() {
        let mut matched = false;
        let mut next_p = p;
        if p < pattern.len() {
            match pattern[p] {
                b'*' => {
                    star = Some((p + 1, s));
                    p += 1;
                    continue;
                }
                b'?' => {
                    matched = true;
                    next_p = p + 1;
                }
                b'[' => {
                    let mut i = p + 1;
                    let negate = pattern.get(i) == Some(&b'^');
                    if negate {
                        i += 1;
                    }
                    let mut hit = false;
                    let c = string[s];
                    while i < pattern.len() && pattern[i] != b']' {
                        if pattern[i] == b'\\' && i + 1 < pattern.len() {
                            i += 1;
                            hit |= eq(pattern[i], c);
                            i += 1;
                        } else if i + 2 < pattern.len()
                            && pattern[i + 1] == b'-'
                            && pattern[i + 2] != b']'
                        {
                            let (mut lo, mut hi) = (pattern[i], pattern[i + 2]);
                            if lo > hi {
                                std::mem::swap(&mut lo, &mut hi);
                            }
                            let cc = if nocase { c.to_ascii_lowercase() } else { c };
                            let (l, h) = if nocase {
                                (lo.to_ascii_lowercase(), hi.to_ascii_lowercase())
                            } else {
                                (lo, hi)
                            };
                            hit |= cc >= l && cc <= h;
                            i += 3;
                        } else {
                            hit |= eq(pattern[i], c);
                            i += 1;
                        }
                    }
                    matched = hit != negate;
                    next_p = (i + 1).min(pattern.len());
                }
                b'\\' if p + 1 < pattern.len() => {
                    matched = eq(pattern[p + 1], string[s]);
                    next_p = p + 2;
                }
                c => {
                    matched = eq(c, string[s]);
                    next_p = p + 1;
                }
            }
        }
        if matched {
            p = next_p;
            s += 1;
        } else if let Some((sp, ss)) = star {
            p = sp;
            s = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn classes_ranges_escapes_and_case() {
        assert!(glob_match(b"*", b"anything", false));
        assert!(glob_match(b"*", b"", false));
        assert!(glob_match(b"cluster-*", b"cluster-enabled", false));
        assert!(!glob_match(b"cluster-?", b"cluster-ab", false));
        assert!(glob_match(b"[a-c]x", b"bx", false));
        assert!(!glob_match(b"[^a-c]x", b"bx", false));
        assert!(glob_match(b"a\\*b", b"a*b", false));
        assert!(!glob_match(b"a\\*b", b"axb", false));
        assert!(glob_match(b"CL*", b"cluster|nodes", true));
        assert!(!glob_match(b"CL*", b"cluster|nodes", false));
        assert!(glob_match(b"h*llo", b"heeeello", false));
        assert!(glob_match(b"h?llo", b"hello", false));
        assert!(glob_match(b"h[ae]llo", b"hallo", false));
        assert!(!glob_match(b"h[^e]llo", b"hello", false));
        assert!(glob_match(b"*x*y", b"abxcdxy", false));
        assert!(glob_match(b"GET", b"get", true));
        assert!(!glob_match(b"GET", b"get", false));
    }

    #[test]
    fn hostile_pattern_is_not_exponential() {
        let pattern = b"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b".to_vec();
        let text = vec![b'a'; 4000];
        assert!(!glob_match(&pattern, &text, false));
    }
}
