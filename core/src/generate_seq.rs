//! Sequence tags: `sawmill-seq=<run>.<key>.<n>` in a generated line, so a checker can tell which
//! generated line a published row (or a rejected line's raw bytes) came from, whatever offset it
//! landed at. Parsed records keep the tag in the endpoint's query string; rejected lines keep it
//! somewhere in their raw bytes.

/// The query parameter (and the marker in rejected lines) that carries the tag.
pub const PARAM: &str = "sawmill-seq=";

/// Which generated line: producer `run`, partition `key` and the line's number `n` within the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Seq {
    pub run: u64,
    pub key: u32,
    pub n: u64,
}

/// How tags are assigned: line `i` (0-based) of run `run` gets key `i % keys` and `n = i / keys`,
/// so each key's lines are numbered 0, 1, 2... without a gap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeqConfig {
    pub run: u64,
    /// At least 1.
    pub keys: u32,
}

impl SeqConfig {
    /// The tag of line `i`.
    pub fn of_line(&self, i: u64) -> Seq {
        let keys = u64::from(self.keys.max(1));
        Seq {
            run: self.run,
            key: (i % keys) as u32,
            n: i / keys,
        }
    }
}

impl Seq {
    /// Appends `sawmill-seq=<run>.<key>.<n>`.
    pub fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(PARAM.as_bytes());
        buf.extend_from_slice(format!("{}.{}.{}", self.run, self.key, self.n).as_bytes());
    }

    /// The first well-formed tag in `bytes` (an endpoint or a raw line), if any.
    pub fn find(bytes: &[u8]) -> Option<Seq> {
        let mut rest = bytes;
        while let Some(at) = memchr::memmem::find(rest, PARAM.as_bytes()) {
            rest = &rest[at + PARAM.len()..];
            if let Some(seq) = Self::parse_value(rest) {
                return Some(seq);
            }
        }
        None
    }

    /// `<run>.<key>.<n>` at the start of `v`, ended by anything but a digit.
    fn parse_value(v: &[u8]) -> Option<Seq> {
        let mut parts = [0u64; 3];
        let mut i = 0;
        for (k, part) in parts.iter_mut().enumerate() {
            let start = i;
            while let Some(d) = v.get(i).filter(|b| b.is_ascii_digit()) {
                *part = part.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                i += 1;
            }
            if i == start || (k < 2 && v.get(i) != Some(&b'.')) {
                return None;
            }
            i += usize::from(k < 2);
        }
        Some(Seq {
            run: parts[0],
            key: u32::try_from(parts[1]).ok()?,
            n: parts[2],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn a_written_tag_is_found_again(run: u64, key: u32, n: u64, pre in "[ -~]{0,20}", post in "[^0-9][ -~]{0,20}") {
            let seq = Seq { run, key, n };
            let mut buf = pre.clone().into_bytes();
            seq.write(&mut buf);
            buf.extend_from_slice(post.as_bytes());
            // A tag-like prefix in `pre` that is not a whole tag must not hide the real one.
            let found = Seq::find(&buf);
            if !pre.contains(PARAM) {
                prop_assert_eq!(found, Some(seq));
            }
        }
    }

    #[test]
    fn malformed_tags_are_not_tags() {
        for bad in [
            "sawmill-seq=1.2",
            "sawmill-seq=.1.2",
            "sawmill-seq=1..2",
            "sawmill-seq=1.99999999999.2",
            "sawmill-seq=",
            "x",
        ] {
            assert_eq!(Seq::find(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(
            Seq::find(b"/a?sawmill-seq=1.2&sawmill-seq=3.4.5 HTTP"),
            Some(Seq {
                run: 3,
                key: 4,
                n: 5
            })
        );
    }

    #[test]
    fn keys_number_their_lines_without_gaps() {
        let cfg = SeqConfig { run: 9, keys: 3 };
        let tags: Vec<Seq> = (0..7).map(|i| cfg.of_line(i)).collect();
        assert_eq!(
            tags[4],
            Seq {
                run: 9,
                key: 1,
                n: 1
            }
        );
        assert_eq!(
            tags[6],
            Seq {
                run: 9,
                key: 0,
                n: 2
            }
        );
        assert_eq!(SeqConfig { run: 1, keys: 0 }.of_line(5).key, 0);
    }
}
