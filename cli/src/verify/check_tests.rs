use super::*;
use proptest::prelude::*;

const GOOD: &[u8] =
    b"host1 - - [01/Jul/1995:00:00:01 -0400] \"GET /a.gif?sawmill-seq=1.0.0 HTTP/1.0\" 200 6245";
const OTHER: &[u8] = b"host2 - - [01/Jul/1995:00:00:02 -0400] \"GET /b.gif HTTP/1.0\" 404 -";
const BAD: &[u8] = b"garbage sawmill-seq=1.0.2";

/// A partition of three messages at offsets 10..13: GOOD, OTHER, BAD.
fn topic() -> PartitionCheck {
    let mut p = PartitionCheck::new(10, 13);
    for (o, line) in [(10, GOOD), (11, OTHER), (12, BAD)] {
        p.message(o, line_fingerprint(line));
    }
    p
}

fn good_row() -> u64 {
    Row::Record {
        host: "host1",
        // 1995-07-01 04:00:01 UTC
        timestamp_micros: 804_571_201 * 1_000_000,
        endpoint: Some("/a.gif?sawmill-seq=1.0.0"),
        status: 200,
        content_size: Some(6245),
    }
    .fingerprint()
}

fn all_rows(p: &mut PartitionCheck) {
    p.row(10, good_row());
    p.row(11, line_fingerprint(OTHER));
    p.row(
        12,
        Row::Reject {
            reason: sawmill_core::parse::parse_line(BAD).unwrap_err().as_str(),
            raw: BAD,
        }
        .fingerprint(),
    );
}

#[test]
fn exactly_once_passes() {
    let mut p = topic();
    all_rows(&mut p);
    let r = p.report(0);
    assert!(r.passed(), "{r:?}");
    assert_eq!((r.messages, r.rows), (3, 3));
}

#[test]
fn a_row_built_from_columns_matches_its_line() {
    assert_eq!(good_row(), line_fingerprint(GOOD));
    assert_ne!(good_row(), line_fingerprint(OTHER));
}

#[test]
fn lost_line_is_detected() {
    let mut p = topic();
    p.row(10, good_row());
    p.row(12, line_fingerprint(BAD));
    let r = p.report(4);
    assert_eq!((r.lost, r.lost_examples.clone()), (1, vec![11]));
    assert!(!r.passed());
}

#[test]
fn duplicated_row_is_detected() {
    let mut p = topic();
    all_rows(&mut p);
    p.row(11, line_fingerprint(OTHER));
    p.row(11, line_fingerprint(OTHER));
    let r = p.report(0);
    assert_eq!((r.duplicated, r.lost, r.rows), (1, 0, 5));
    assert_eq!(r.duplicated_examples, vec![11]);
    assert!(!r.passed());
}

#[test]
fn out_of_range_rows_are_detected() {
    let mut p = topic();
    all_rows(&mut p);
    p.row(13, good_row());
    p.row(9, good_row());
    let r = p.report(0);
    assert_eq!(r.out_of_range, 2);
    assert_eq!(r.out_of_range_examples, vec![13, 9]);
    assert!(!r.passed());
    // A partition the topic does not have: every row is out of range.
    let mut none = PartitionCheck::new(0, 0);
    none.row(0, good_row());
    assert_eq!(none.report(7).out_of_range, 1);
}

#[test]
fn row_not_in_the_topic_is_detected() {
    let mut p = topic();
    p.row(10, line_fingerprint(OTHER)); // another line's content at offset 10
    p.row(11, line_fingerprint(OTHER));
    p.row(12, line_fingerprint(BAD));
    let r = p.report(0);
    assert_eq!((r.mismatched, r.lost), (1, 0));
    assert_eq!(r.mismatched_examples, vec![10]);
    // An offset with no message (a transaction marker) holds no row either.
    let mut gap = PartitionCheck::new(0, 2);
    gap.message(0, line_fingerprint(GOOD));
    gap.row(0, line_fingerprint(GOOD));
    gap.row(1, line_fingerprint(GOOD));
    let r = gap.report(0);
    assert_eq!((r.mismatched, r.messages, r.lost), (1, 1, 0));
}

#[test]
fn a_changed_field_changes_the_fingerprint() {
    let base = Row::Record {
        host: "h",
        timestamp_micros: 1,
        endpoint: Some("/"),
        status: 200,
        content_size: Some(1),
    };
    let Row::Record {
        host,
        timestamp_micros,
        endpoint,
        status,
        content_size,
    } = base
    else {
        unreachable!()
    };
    let variants = [
        Row::Record {
            host: "g",
            timestamp_micros,
            endpoint,
            status,
            content_size,
        },
        Row::Record {
            host,
            timestamp_micros: 2,
            endpoint,
            status,
            content_size,
        },
        Row::Record {
            host,
            timestamp_micros,
            endpoint: None,
            status,
            content_size,
        },
        Row::Record {
            host,
            timestamp_micros,
            endpoint,
            status: 404,
            content_size,
        },
        Row::Record {
            host,
            timestamp_micros,
            endpoint,
            status,
            content_size: None,
        },
        Row::Reject {
            reason: "truncated",
            raw: b"h",
        },
    ];
    for v in variants {
        assert_ne!(v.fingerprint(), base.fingerprint(), "{v:?}");
    }
}

#[test]
fn seq_tally_counts_gaps_and_duplicates() {
    let mut t = SeqTally::default();
    for line in [
        "a sawmill-seq=1.0.0",
        "sawmill-seq=1.0.2",
        "x?sawmill-seq=1.0.2",
        "no tag",
        "sawmill-seq=1.1.0",
    ] {
        t.line(line.as_bytes());
    }
    assert_eq!(t.untagged, 1);
    let r = t.report();
    assert_eq!(r.len(), 2);
    assert_eq!(
        (
            r[0].key,
            r[0].distinct,
            r[0].max_n,
            r[0].gaps,
            r[0].duplicated
        ),
        (0, 2, 2, 1, 1)
    );
    assert_eq!((r[1].key, r[1].gaps, r[1].duplicated), (1, 0, 0));
}

proptest! {
    /// Whatever rows are published (each offset 0..n times, some outside the range), the counts
    /// are exactly what was done.
    #[test]
    fn counts_are_exact(copies in proptest::collection::vec(0u8..4, 1..200), outside in 0u64..5) {
        let n = copies.len() as i64;
        let mut p = PartitionCheck::new(100, 100 + n);
        for o in 0..n {
            p.message(100 + o, line_fingerprint(format!("line {o}").as_bytes()));
        }
        for (o, &c) in copies.iter().enumerate() {
            for _ in 0..c {
                p.row(100 + o as i64, line_fingerprint(format!("line {o}").as_bytes()));
            }
        }
        for k in 0..outside {
            p.row(100 + n + k as i64, 1);
        }
        let r = p.report(0);
        prop_assert_eq!(r.lost, copies.iter().filter(|&&c| c == 0).count() as u64);
        prop_assert_eq!(r.duplicated, copies.iter().filter(|&&c| c > 1).count() as u64);
        prop_assert_eq!(r.out_of_range, outside);
        prop_assert_eq!(r.mismatched, 0);
        prop_assert_eq!(r.passed(), copies.iter().all(|&c| c == 1) && outside == 0);
    }
}
