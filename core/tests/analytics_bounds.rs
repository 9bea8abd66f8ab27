//! Keys and reject examples kept in the analytics are bounded: a huge URL, host or garbage line is
//! counted, but only its first bytes are kept, cut visibly.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use arrow::array::{Array, AsArray};
use arrow::datatypes::Int64Type;
use sawmill_core::analytics::{
    AnalyticsConfig, Partial, MAX_KEY_BYTES, MAX_REJECT_EXAMPLE_BYTES, TRUNCATED_MARK,
};
use sawmill_core::parse::parse_line;
use sawmill_core::record::Position;

fn observe(partial: &mut Partial, line: &str, offset: i64) {
    let pos = Position {
        partition: 0,
        offset,
    };
    match parse_line(line.as_bytes()) {
        Ok(rec) => partial.observe(&rec, pos),
        Err(reason) => partial.observe_reject(reason, line.as_bytes(), pos),
    }
}

fn line(host: &str, endpoint: &str) -> String {
    format!(r#"{host} - - [01/Jul/1995:00:00:01 -0400] "GET {endpoint} HTTP/1.0" 404 7"#)
}

/// `(key, count)` rows of a two-column summary table.
fn counted(partial: &Partial, table: &str, key: &str) -> Vec<(String, i64)> {
    let tables = partial.tables();
    let batch = &tables.iter().find(|(name, _)| *name == table).unwrap().1;
    let keys = batch.column_by_name(key).unwrap().as_string::<i32>();
    let counts = batch
        .column_by_name("count")
        .unwrap()
        .as_primitive::<Int64Type>();
    (0..batch.num_rows())
        .map(|i| (keys.value(i).to_owned(), counts.value(i)))
        .collect()
}

#[test]
fn a_one_mebibyte_endpoint_is_counted_under_a_bounded_key() {
    let huge = format!("/{}", "a".repeat(1 << 20));
    let mut partial = Partial::new(&AnalyticsConfig::default());
    observe(&mut partial, &line("h", &huge), 0);
    // Another huge URL with the same beginning is counted under the same key.
    observe(&mut partial, &line("h", &format!("{huge}b")), 1);
    observe(&mut partial, &line("h", "/short"), 2);

    let endpoints = counted(&partial, "endpoint_count", "endpoint");
    assert_eq!(endpoints.len(), 2, "one bounded key and /short");
    let (key, count) = &endpoints[0];
    assert_eq!(*count, 2);
    assert!(key.len() <= MAX_KEY_BYTES && key.len() > MAX_KEY_BYTES - 8);
    assert!(key.starts_with("/aaaa") && key.ends_with(TRUNCATED_MARK));
    assert_eq!(endpoints[1], ("/short".to_owned(), 1));
    assert_eq!(partial.records(), 3);
    // The 404 rows name the same bounded key, and the whole state stays small.
    let bytes = partial.to_bytes().unwrap();
    assert!(bytes.len() < 4 * MAX_KEY_BYTES, "{} bytes", bytes.len());
    assert_eq!(Partial::from_bytes(&bytes).unwrap(), partial);
}

#[test]
fn long_hosts_are_bounded_and_cut_between_characters() {
    let host = "é".repeat(MAX_KEY_BYTES); // twice the bound in bytes
    let mut partial = Partial::new(&AnalyticsConfig::default());
    observe(&mut partial, &line(&host, "/"), 0);
    observe(&mut partial, &line(&host, "/"), 1);
    let hosts = counted(&partial, "host_count", "host");
    assert_eq!(hosts.len(), 1);
    let (key, count) = &hosts[0];
    assert_eq!(*count, 2);
    assert!(key.len() <= MAX_KEY_BYTES);
    // Cut on a character boundary: no replacement character from a split "é".
    assert!(!key.contains('\u{fffd}'));
    assert_eq!(
        key.trim_end_matches(TRUNCATED_MARK).chars().count() * 2 + 3,
        key.len()
    );
}

#[test]
fn keys_up_to_the_bound_are_kept_whole() {
    let endpoint = format!("/{}", "b".repeat(MAX_KEY_BYTES - 1));
    let mut partial = Partial::new(&AnalyticsConfig::default());
    observe(&mut partial, &line("h", &endpoint), 0);
    assert_eq!(
        counted(&partial, "endpoint_count", "endpoint"),
        vec![(endpoint, 1)]
    );
}

#[test]
fn reject_examples_keep_a_bounded_prefix() {
    let garbage = format!("garbage {}", "x".repeat(1 << 20));
    let mut partial = Partial::new(&AnalyticsConfig::default());
    observe(&mut partial, &garbage, 0);
    assert_eq!(partial.rejects(), 1);
    let tables = partial.tables();
    let examples = &tables
        .iter()
        .find(|(name, _)| *name == "reject_examples")
        .unwrap()
        .1;
    let raw = examples.column_by_name("raw").unwrap().as_binary::<i32>();
    assert_eq!(raw.len(), 1);
    let kept = raw.value(0);
    assert!(kept.len() <= MAX_REJECT_EXAMPLE_BYTES && kept.len() > MAX_REJECT_EXAMPLE_BYTES - 8);
    assert!(kept.starts_with(b"garbage xxx"));
    assert!(kept.ends_with(TRUNCATED_MARK.as_bytes()));
}
