//! Crafted partials: counts that overflow, lengths beyond the input, ids out of range. Each is
//! refused as corrupt, never wraps, panics or allocates what the input does not hold.

use super::*;
use crate::parse::parse_line;

fn at(offset: i64) -> Position {
    Position {
        partition: 0,
        offset,
    }
}

/// A partial of real lines: every breakdown consistent.
fn observed(lines: &[&str]) -> Partial {
    let mut p = Partial::new(&AnalyticsConfig::default());
    for (offset, line) in lines.iter().enumerate() {
        let rec = parse_line(line.as_bytes()).expect("test lines parse");
        p.observe(&rec, at(offset as i64));
    }
    p
}

const LINE_A: &str = r#"a - - [01/Jul/1995:00:00:01 -0400] "GET /x HTTP/1.0" 200 10"#;
const LINE_B: &str = r#"b - - [01/Jul/1995:00:00:02 -0400] "GET /x HTTP/1.0" 200 20"#;

fn assert_corrupt(bytes: &[u8], case: &str) {
    match Partial::from_bytes(bytes) {
        Err(Error::Corrupt { .. }) => {}
        other => panic!("{case}: expected a corrupt partial, got {other:?}"),
    }
}

/// An empty partial's bytes up to (not including) the host section, written field by field.
fn header() -> Writer {
    let mut w = Writer(Vec::new());
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&VERSION.to_le_bytes());
    w.u8(1);
    w.len(5);
    // records, rejects, five null counts, size count, sum, sum_sq (hi, lo), min, max.
    for _ in 0..13 {
        w.u64(0);
    }
    w.len(0);
    for _ in 0..48 {
        w.u64(0);
    }
    w
}

/// No hosts, no endpoints, a zero null endpoint: what precedes the days.
fn header_to_days() -> Writer {
    let mut w = header();
    w.len(0);
    w.len(0);
    for _ in 0..8 {
        w.u64(0);
    }
    w
}

fn finish_after_days(mut w: Writer) -> Vec<u8> {
    w.len(0);
    for _ in RejectReason::ALL {
        w.u64(0);
        w.len(0);
    }
    w.0
}

#[test]
fn hand_written_empty_partial_matches_the_encoder() {
    let mut w = header_to_days();
    w.len(0);
    let bytes = finish_after_days(w);
    let empty = Partial::new(&AnalyticsConfig::default());
    assert_eq!(bytes, empty.to_bytes().unwrap());
    assert_eq!(Partial::from_bytes(&bytes).unwrap(), empty);
}

#[test]
fn counts_whose_sum_wraps_to_the_total_are_refused() {
    // Two hosts whose counts wrap around to the record total (1): the wrapping check let this in.
    let mut p = observed(&[LINE_A, LINE_B]);
    p.records = 1;
    p.status[200] = 1;
    p.hourly[0] = 1;
    p.days[0].requests = 1;
    p.hosts.val_mut(0).count = u64::MAX;
    p.hosts.val_mut(1).count = 2;
    p.endpoints.val_mut(0).weekday = [0, 0, 0, 0, 0, 0, 1];
    p.sizes.count = 1;
    assert_corrupt(&encode(&p), "host counts wrapping to the total");

    // Endpoint counts that overflow when a view adds up the weekdays.
    let mut p = observed(&[LINE_A]);
    p.endpoints.val_mut(0).weekday = [u64::MAX, 2, 0, 0, 0, 0, 0];
    assert_corrupt(&encode(&p), "weekday counts overflowing");

    // Day byte totals that overflow 128 bits.
    let mut p = observed(&[
        LINE_A,
        r#"a - - [02/Jul/1995:00:00:01 -0400] "GET /x HTTP/1.0" 200 1"#,
    ]);
    p.days[0].bytes = u128::MAX;
    p.days[1].bytes = 12;
    p.sizes.sum = 11;
    assert_corrupt(&encode(&p), "day bytes overflowing");
}

#[test]
fn inconsistent_totals_are_refused() {
    type Damage = fn(&mut Partial);
    let cases: [(&str, Damage); 6] = [
        ("hourly", |p| p.hourly[3] += 1),
        ("status", |p| p.status[200] += 1),
        ("404 rows", |p| p.hourly_404[0] += 1),
        ("nulls", |p| p.nulls.host = 5),
        ("size bounds", |p| p.sizes.sum = 1000),
        ("reject examples", |p| {
            p.reject_stats[0]
                .examples
                .push((at(1), Box::from(&b"x"[..])))
        }),
    ];
    for (case, damage) in cases {
        let mut p = observed(&[LINE_A, LINE_B]);
        assert!(Partial::from_bytes(&encode(&p)).is_ok());
        damage(&mut p);
        assert_corrupt(&encode(&p), case);
    }
}

#[test]
fn repeated_status_counts_are_refused_not_added() {
    let mut w = header();
    // Replace the empty status list: 200 twice, each near u64::MAX (adding them overflowed).
    w.0.truncate(w.0.len() - 49);
    w.len(2);
    for _ in 0..2 {
        w.u64(200);
        w.u64(u64::MAX);
    }
    for _ in 0..48 {
        w.u64(0);
    }
    assert_corrupt(&w.0, "repeated status");
}

#[test]
fn lengths_beyond_the_input_are_refused_before_allocating() {
    let mut w = header();
    w.len(usize::MAX);
    assert_corrupt(&w.0, "host count");

    let mut w = header();
    w.len(1);
    w.u64(u64::MAX);
    assert_corrupt(&w.0, "host key length");

    // A day count that would allocate gigabytes, then one a little beyond the input.
    for days in [u64::MAX / 2, 1 << 30, 3] {
        let mut w = header_to_days();
        w.u64(days);
        assert_corrupt(&finish_after_days(w), "day count");
    }

    // A varint longer than 128 bits.
    let mut w = header();
    w.0.extend_from_slice(&[0xff; 20]);
    assert_corrupt(&w.0, "long varint");
}

#[test]
fn ids_out_of_range_are_refused() {
    let mut w = header_to_days();
    w.len(1);
    // date, requests, bytes, 404s, then one host id where there are no hosts.
    for v in [0, 1, 0, 0, 1, 5] {
        w.u64(v);
    }
    assert_corrupt(&finish_after_days(w), "day host id");
}

#[test]
fn merging_near_max_counts_saturates_instead_of_panicking() {
    let mut p = observed(&[LINE_A]);
    let big = u64::MAX - 1;
    p.records = big;
    p.nulls.endpoint = big;
    p.status[200] = big;
    p.hourly[0] = big;
    p.days[0].requests = big;
    p.days[0].bytes = u128::MAX - 1;
    p.hosts.val_mut(0).count = big;
    p.endpoints.val_mut(0).weekday[6] = big;
    p.sizes.count = big;
    p.sizes.sum = u128::MAX - 1;
    p.reject_stats[0].count = big;
    let mut merged = p.clone();
    merged.merge(p);
    assert_eq!(merged.records(), u64::MAX);
    assert_eq!(merged.days[0].bytes, u128::MAX);
    assert_eq!(merged.reject_counts()[0].1, u64::MAX);
    // The documented choice: a saturated partial is no longer consistent and does not decode.
    assert_corrupt(&encode(&merged), "saturated merge");
}

/// `p`'s encoding as version 1 wrote it: the same layout without the `line_too_long` slot.
fn as_version_1(p: &Partial) -> Vec<u8> {
    assert_eq!(p.reject_stats[RejectReason::LineTooLong as usize].count, 0);
    let mut bytes = encode(p);
    bytes[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&1u32.to_le_bytes());
    // The last slot of an unused reason is two zero varints: its count and its examples.
    assert_eq!(bytes[bytes.len() - 2..], [0, 0]);
    bytes.truncate(bytes.len() - 2);
    bytes
}

#[test]
fn version_1_partials_still_decode_and_merge_with_version_2() {
    let mut old = observed(&[LINE_A, LINE_B]);
    old.observe_reject(RejectReason::NoHost, b"[x", at(2));
    let v1 = as_version_1(&old);
    assert_eq!(Partial::from_bytes(&v1).unwrap(), old);

    let mut new = Partial::new(&AnalyticsConfig::default());
    new.observe_reject(RejectReason::LineTooLong, b"xxxx", at(3));
    let v2 = new.to_bytes().unwrap();
    assert_eq!(v2[MAGIC.len()..MAGIC.len() + 4], 2u32.to_le_bytes());
    let mut merged = Partial::from_bytes(&v1).unwrap();
    merged.merge(Partial::from_bytes(&v2).unwrap());
    assert_eq!(
        merged.reject_counts(),
        vec![(RejectReason::NoHost, 1), (RejectReason::LineTooLong, 1)]
    );
    // Re-encoded, it is version 2 and round-trips.
    assert_eq!(
        Partial::from_bytes(&merged.to_bytes().unwrap()).unwrap(),
        merged
    );

    // A version-1 partial with a ninth slot has trailing bytes; version 3 is unknown.
    let mut long_v1 = encode(&old);
    long_v1[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&1u32.to_le_bytes());
    assert_corrupt(&long_v1, "version 1 with nine reject slots");
    let mut v3 = v2.clone();
    v3[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&3u32.to_le_bytes());
    assert_corrupt(&v3, "version 3");
}
