//! Property-based fuzzing of the two places untrusted bytes enter the core: log lines, through
//! `ChunkParser`, and stored partials, through `Partial::from_bytes`. Neither may panic; every
//! line is accounted for exactly once; whatever decodes re-encodes canonically.
//!
//! The normal test suite runs a fixed number of cases per property (a few seconds). A longer
//! session by hand, in release mode for speed (failures are shrunk and printed, and their seeds
//! saved in `core/tests/fuzz.proptest-regressions`, which is replayed first on every run):
//!
//! ```text
//! PROPTEST_CASES=100000 nice cargo test --release -p sawmill-core --test fuzz
//! ```

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use arrow::array::{Array, Int64Array};
use arrow::record_batch::RecordBatch;
use proptest::prelude::*;
use proptest::sample::Index;
use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::batch::{count_lines, lines, ChunkParser, Push};
use sawmill_core::Error;

/// `default` cases, or `PROPTEST_CASES` when set (for long sessions by hand).
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

const GOOD: &[&str] = &[
    r#"199.72.81.55 - - [01/Jul/1995:00:00:01 -0400] "GET /history/apollo/ HTTP/1.0" 200 6245"#,
    r#"unicomp6.unicomp.net - - [01/Jul/1995:00:00:06 -0400] "GET /shuttle/countdown/ HTTP/1.0" 404 -"#,
    r#"h - - [31/Dec/1999:23:59:59 +0530] "POST /a b c HTTP/1.1" 500 0"#,
    r#"10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#,
    r#"h - - [01/Aug/1995:00:00:01 -0400] "-" 400 -"#,
    r#"h - - [01/Aug/1995:00:00:01 -0400] "GET /é HTTP/1.0" 404 12"#,
];

/// Pieces that sit where the parser decides things: quotes, brackets, separators, line ends,
/// NULs, invalid or cut UTF-8, long runs; and random bytes.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let token = prop::sample::select(vec![
        "\"",
        "[",
        "]",
        " ",
        "\t",
        "-",
        "\0",
        "\r",
        "\n",
        "\r\n",
        "\n\r",
        "é",
        "\\\"",
        "\"\"",
        "[01/Jul/1995:00:00:01 -0400]",
        "[99/Zzz/0000:99:99:99 +9999]",
        "\"GET / HTTP/1.0\"",
        "\"GET ",
        " 404 -",
        " 200 18446744073709551616",
        " 2OO 1",
        "HTTP/1.0\"",
    ]);
    prop_oneof![
        4 => prop::sample::select(GOOD).prop_map(|l| l.as_bytes().to_vec()),
        4 => token.prop_map(|t| t.as_bytes().to_vec()),
        2 => prop::sample::select(vec![vec![0xff], vec![0xc3], vec![0xe2, 0x82], vec![0xed, 0xa0, 0x80]]),
        3 => prop::collection::vec(any::<u8>(), 0..48),
        1 => (any::<u8>(), 0usize..70_000).prop_map(|(b, n)| vec![b; n]),
    ]
}

fn buffer() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(fragment(), 0..24).prop_map(|parts| parts.concat())
}

fn offsets(batch: &RecordBatch) -> Vec<i64> {
    let column = batch.column_by_name("offset").unwrap();
    let offsets = column.as_any().downcast_ref::<Int64Array>().unwrap();
    offsets.values().to_vec()
}

/// Parses `buf` both ways (whole buffer, line by line) and checks every line is accounted for
/// once, in the batches and in the partial alike.
fn check_parse(buf: &[u8]) -> Result<(), TestCaseError> {
    let cfg = AnalyticsConfig::default();
    let first = 7;
    let lines_in = count_lines(buf);

    let mut partial = Partial::new(&cfg);
    let mut parser = ChunkParser::new("fuzz".into(), 2);
    let pushed = parser.push_lines(buf, first, &mut partial);
    // Uncapped but for the line length: every line is taken.
    prop_assert_eq!(pushed.consumed, buf.len());
    let next = pushed.next;
    prop_assert_eq!(next - first, lines_in as i64);
    let out = parser.finish().unwrap();
    prop_assert_eq!(out.records + out.rejected, lines_in);
    prop_assert_eq!(
        (partial.records(), partial.rejects()),
        (out.records, out.rejected)
    );
    let mut seen: Vec<i64> = out.by_date.values().flat_map(offsets).collect();
    seen.extend(out.rejects.iter().flat_map(offsets));
    seen.sort_unstable();
    prop_assert_eq!(seen, (first..next).collect::<Vec<_>>());

    let mut one_by_one = Partial::new(&cfg);
    let mut parser = ChunkParser::new("fuzz".into(), 2);
    for (i, line) in lines(buf).enumerate() {
        prop_assert_eq!(
            parser.push(line, first + i as i64, &mut one_by_one),
            Push::Taken
        );
    }
    let again = parser.finish().unwrap();
    prop_assert_eq!((again.records, again.rejected), (out.records, out.rejected));
    prop_assert!(one_by_one == partial);

    let bytes = partial.to_bytes().unwrap();
    prop_assert_eq!(
        Partial::from_bytes(&bytes).unwrap().to_bytes().unwrap(),
        bytes
    );
    partial.tables();
    partial.views(5);
    Ok(())
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    Remove(Index, usize),
    /// A maximal varint, where a length or count usually is.
    BigVarint(Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::FlipBit(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        2 => (any::<Index>(), prop::collection::vec(any::<u8>(), 1..12))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        2 => (any::<Index>(), 1usize..12).prop_map(|(i, n)| Mutation::Remove(i, n)),
        2 => any::<Index>().prop_map(Mutation::BigVarint),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let len = bytes.len();
    match m {
        Mutation::FlipBit(i, bit) => bytes[i.index(len)] ^= 1 << bit,
        Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
        Mutation::Insert(i, new) => {
            let at = i.index(bytes.len() + 1);
            bytes.splice(at..at, new.iter().copied());
        }
        Mutation::Remove(i, n) => {
            let at = i.index(bytes.len());
            bytes.drain(at..(at + n).min(bytes.len()));
        }
        Mutation::BigVarint(i) => {
            let at = i.index(bytes.len());
            let varint = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
            bytes.splice(at..(at + 1).min(bytes.len()), varint);
        }
    }
}

/// The encoding of a partial of `lines`, each a valid line or a reject.
fn encoded(lines: &[Vec<u8>], reject_examples: usize) -> Vec<u8> {
    let cfg = AnalyticsConfig {
        reject_examples,
        ..AnalyticsConfig::default()
    };
    let mut partial = Partial::new(&cfg);
    let buf = lines.join(&b'\n');
    let pushed = ChunkParser::new("seed".into(), 0).push_lines(&buf, 0, &mut partial);
    assert_eq!(pushed.consumed, buf.len());
    partial.to_bytes().unwrap()
}

/// Decoding never panics; anything that decodes re-encodes to bytes that decode to the same
/// partial and re-encode identically, and can be viewed and merged.
fn check_decode(bytes: &[u8]) -> Result<(), TestCaseError> {
    let partial = match Partial::from_bytes(bytes) {
        Ok(p) => p,
        Err(Error::Corrupt { .. }) => return Ok(()),
        Err(other) => return Err(TestCaseError::fail(format!("not Corrupt: {other}"))),
    };
    let canonical = partial.to_bytes().unwrap();
    let again = Partial::from_bytes(&canonical).unwrap();
    prop_assert_eq!(again.to_bytes().unwrap(), canonical);
    prop_assert!(again == partial);
    partial.tables();
    partial.views(3);
    let mut doubled = partial.clone();
    doubled.merge(partial);
    doubled.tables();
    Ok(())
}

fn seed_lines() -> impl Strategy<Value = Vec<Vec<u8>>> {
    let line = prop_oneof![
        3 => prop::sample::select(GOOD).prop_map(|l| l.as_bytes().to_vec()),
        1 => prop::collection::vec(any::<u8>(), 0..24)
            .prop_map(|b| b.into_iter().filter(|&c| c != b'\n' && c != b'\r').collect()),
    ];
    prop::collection::vec(line, 0..12)
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn parser_accounts_for_every_line(buf in buffer()) {
        check_parse(&buf)?;
    }

    #[test]
    fn mutated_partials_never_panic_and_reencode_canonically(
        lines in seed_lines(),
        keep in 0usize..4,
        mutations in prop::collection::vec(mutation(), 0..4),
    ) {
        let mut bytes = encoded(&lines, keep);
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        check_decode(&bytes)?;
    }

    #[test]
    fn random_bytes_never_decode_wrongly(
        magic in any::<bool>(),
        tail in prop::collection::vec(any::<u8>(), 0..400),
    ) {
        let mut bytes = if magic { encoded(&[], 5)[..12].to_vec() } else { Vec::new() };
        bytes.extend(tail);
        check_decode(&bytes)?;
    }
}

#[test]
fn huge_lines_and_buffers_without_line_ends_are_accounted_for() {
    let mut endpoint = GOOD[0].replace("/history/apollo/", &"/x".repeat(1 << 19));
    check_parse(endpoint.as_bytes()).unwrap();
    endpoint.push('\0');
    check_parse(&[endpoint.as_bytes(), &[0xff; 1 << 20], b"\r\r\n\n"].concat()).unwrap();
}
