//! Every real log in `../shared/data/access-logs/`, run through the embedded pipeline and checked
//! against an independent reading of the same bytes: a strict regex written here, not Sawmill's
//! parser. The figures (status counts, requests and distinct hosts per day, 404s, content sizes)
//! must agree exactly; where the two parsers may legitimately disagree, the disagreement must be
//! one of the kinds `docs/parsing.md` documents, and every such line is accounted for.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use arrow::array::{Array, ArrowPrimitiveType, AsArray, PrimitiveArray, RecordBatch};
use arrow::datatypes::{Date32Type, Int32Type, Int64Type, TimestampMicrosecondType};
use arrow::util::display;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use regex::bytes::Regex;
use sawmill_common::embedded::input::InputSpec;
use sawmill_common::embedded::pipeline::{self, Progress, RunConfig};
use sawmill_common::storage::LocalFs;
use sawmill_core::analytics::Partial;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[path = "real_logs/reading.rs"]
mod reading;
use reading::*;

/// Lines of each kind above per file; every other file must have none. Pinned, so a parser
/// change that moves lines between kinds (or makes a new one) is seen here first.
const EXPECTED_KINDS: [(&str, &str, usize); 3] = [
    // Line 8,899 ends inside its user agent's quotes.
    ("elastic_apache_logs_2015.log", "cut_off_user_agent", 1),
    ("honeypot_2019_hanxen.log", "virtual_host_prefix", 797),
    (
        "nasa_aug95_head_aman-panchal.log",
        "fewer_than_two_tokens_before_timestamp",
        2,
    ),
];

/// Lines the strict regex reads but Sawmill rejects, each with the reason Sawmill must give.
/// Empty: the strict reading is a subset of Sawmill's on every real file.
const KNOWN_STRICT_ONLY: [(&str, i64, &str); 0] = [];

/// Every row of every Parquet file under `dir`, read with the parquet crate.
fn read_dir_batches(dir: &Path) -> Vec<(PathBuf, RecordBatch)> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    let mut entries: Vec<PathBuf> = rd.map(|e| e.unwrap().path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            out.extend(read_dir_batches(&p));
        } else if p.extension().is_some_and(|e| e == "parquet") {
            let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&p).unwrap())
                .unwrap()
                .build()
                .unwrap();
            for b in reader {
                out.push((p.clone(), b.unwrap()));
            }
        }
    }
    out
}

fn prim<'a, T: ArrowPrimitiveType>(b: &'a RecordBatch, name: &str) -> &'a PrimitiveArray<T> {
    b.column_by_name(name).unwrap().as_primitive::<T>()
}

/// A record row as Sawmill wrote it, in the same shape as [`Fields`].
fn row_fields(b: &RecordBatch, i: usize) -> Fields {
    let s = |name: &str| {
        let a = b.column_by_name(name).unwrap().as_string::<i32>();
        (!a.is_null(i)).then(|| a.value(i).to_string())
    };
    let size = prim::<Int64Type>(b, "content_size");
    Fields {
        host: s("host").unwrap().into_bytes(),
        // Arrow's own formatting of the Date32, not Sawmill's calendar code.
        date: display::array_value_to_string(prim::<Date32Type>(b, "date"), i).unwrap(),
        utc: prim::<TimestampMicrosecondType>(b, "timestamp").value(i) / 1_000_000,
        status: prim::<Int32Type>(b, "status").value(i),
        size: (!size.is_null(i)).then(|| size.value(i)),
        referer: s("referer"),
        user_agent: s("user_agent"),
    }
}

/// A summary table as `key column → value column` strings (arrow's own formatting).
fn table(p: &Partial, name: &str, key: &str, val: &str) -> BTreeMap<String, String> {
    let tables = p.tables();
    let b = &tables.iter().find(|(n, _)| *n == name).unwrap().1;
    let (k, v) = (
        b.column_by_name(key).unwrap(),
        b.column_by_name(val).unwrap(),
    );
    let fmt = |a: &dyn Array, i| display::array_value_to_string(a, i).unwrap();
    (0..b.num_rows()).map(|i| (fmt(k, i), fmt(v, i))).collect()
}

/// What the pipeline wrote, read back: each line's record fields or reject reason, by offset.
struct Written {
    records: HashMap<i64, Fields>,
    rejects: HashMap<i64, String>,
}

/// Reads records/ and rejects/ back, checking on the way that every line is there exactly once,
/// in the `dt=` directory of its date, and that rejects keep the line's bytes.
fn read_back(out: &Path, lines: &[&[u8]], name: &str) -> Written {
    let mut w = Written {
        records: HashMap::new(),
        rejects: HashMap::new(),
    };
    let mut seen: BTreeMap<i64, &str> = BTreeMap::new();
    for kind in ["records", "rejects"] {
        for (file, b) in read_dir_batches(&out.join(kind)) {
            let part = prim::<Int32Type>(&b, "partition");
            let off = prim::<Int64Type>(&b, "offset");
            for i in 0..b.num_rows() {
                assert_eq!(part.value(i), 0, "{name}: partition in {}", file.display());
                let o = off.value(i);
                let prev = seen.insert(o, kind);
                assert!(prev.is_none(), "{name}: offset {o} in {kind} and {prev:?}");
                if kind == "records" {
                    let f = row_fields(&b, i);
                    let dt = file.parent().unwrap().file_name().unwrap();
                    assert_eq!(
                        dt.to_string_lossy(),
                        format!("dt={}", f.date),
                        "{name}: {o}"
                    );
                    w.records.insert(o, f);
                } else {
                    let raw = b.column_by_name("raw").unwrap().as_binary::<i32>();
                    assert_eq!(
                        raw.value(i),
                        lines[o as usize],
                        "{name}: reject {o} raw bytes"
                    );
                    let reason = b.column_by_name("reason").unwrap().as_string::<i32>();
                    w.rejects.insert(o, reason.value(i).to_string());
                }
            }
        }
    }
    let all: Vec<i64> = (0..lines.len() as i64).collect();
    let offsets: Vec<i64> = seen.into_keys().collect();
    assert!(
        offsets == all,
        "{name}: offsets are not exactly 0..{}",
        lines.len()
    );
    w
}

/// The figures of the summary tables, computed from the independent reading.
#[derive(Default)]
struct Figures {
    status: HashMap<i32, u64>,
    per_day: HashMap<String, u64>,
    hosts_per_day: HashMap<String, BTreeSet<Vec<u8>>>,
    hosts: BTreeSet<Vec<u8>>,
    n404: u64,
    missing_sizes: u64,
    sizes: Vec<i64>,
}

impl Figures {
    fn add(&mut self, f: &Fields) {
        *self.status.entry(f.status).or_default() += 1;
        *self.per_day.entry(f.date.clone()).or_default() += 1;
        let day = self.hosts_per_day.entry(f.date.clone()).or_default();
        day.insert(f.host.clone());
        self.hosts.insert(f.host.clone());
        self.n404 += u64::from(f.status == 404);
        match f.size {
            Some(s) => self.sizes.push(s),
            None => self.missing_sizes += 1,
        }
    }

    /// Asserts Sawmill's merged tables say the same (missing sizes count as 0, the default).
    fn assert_match(&self, p: &Partial, name: &str) {
        let counts = |m: Vec<(String, u64)>| -> BTreeMap<String, String> {
            m.into_iter().map(|(k, v)| (k, v.to_string())).collect()
        };
        let status = counts(
            self.status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
        );
        assert_eq!(
            table(p, "status_count", "status", "count"),
            status,
            "{name}: status"
        );
        let per_day = counts(self.per_day.clone().into_iter().collect());
        assert_eq!(
            table(p, "daily_request_count", "date", "count"),
            per_day,
            "{name}: days"
        );
        let hosts = self.hosts_per_day.iter();
        let hosts = counts(hosts.map(|(d, h)| (d.clone(), h.len() as u64)).collect());
        assert_eq!(
            table(p, "unique_host_count", "date", "count"),
            hosts,
            "{name}: hosts/day"
        );
        let one = |t: &str, col: &str| table(p, t, col, col).into_keys().next().unwrap();
        assert_eq!(
            one("totals", "distinct_hosts"),
            self.hosts.len().to_string(),
            "{name}"
        );
        let sum: i64 = self.sizes.iter().sum();
        assert_eq!(one("totals", "bytes"), sum.to_string(), "{name}: size sum");
        assert_eq!(
            table(p, "table_404", "offset", "host").len() as u64,
            self.n404,
            "{name}"
        );
        let n = self.sizes.len() as u64 + self.missing_sizes;
        assert_eq!(
            one("content_stats", "count_content_size"),
            n.to_string(),
            "{name}"
        );
        let zero = (self.missing_sizes > 0).then_some(0);
        let min = self.sizes.iter().copied().chain(zero).min().unwrap_or(0);
        let max = self.sizes.iter().copied().chain(zero).max().unwrap_or(0);
        assert_eq!(
            one("content_stats", "min_content_size"),
            min.to_string(),
            "{name}: min"
        );
        assert_eq!(
            one("content_stats", "max_content_size"),
            max.to_string(),
            "{name}: max"
        );
        let mean: f64 = one("content_stats", "mean_content_size").parse().unwrap();
        let want = sum as f64 / n as f64;
        assert!(
            (mean - want).abs() <= 1e-9 * want.max(1.0),
            "{name}: mean {mean} != {want}"
        );
    }
}

/// Checks one file end to end; returns (lines, records, rejects, lenient kinds seen).
fn check_file(path: &Path) -> (usize, u64, u64, BTreeMap<&'static str, usize>) {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let bytes = std::fs::read(path).unwrap();
    let lines = split_lines(&bytes);

    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalFs::create(dir.path()).unwrap());
    let io = tokio::runtime::Runtime::new().unwrap();
    // Small chunks so one file becomes several shards and exactly-once is tested across them.
    let cfg = RunConfig {
        threads: 2,
        chunk_bytes: 256 << 10,
        ..RunConfig::default()
    };
    let spec = InputSpec::new(path, 0);
    let outcome = pipeline::run(&[spec], storage, io.handle(), &cfg, &Progress::default()).unwrap();
    let p = &outcome.partial;
    assert_eq!(outcome.lines as usize, lines.len(), "{name}: lines read");
    let total = p.records() + p.rejects();
    assert_eq!(total, lines.len() as u64, "{name}: records + rejects");
    let w = read_back(dir.path(), &lines, &name);
    assert_eq!(w.records.len() as u64, p.records(), "{name}: record rows");

    // The independent reading, line by line, against what Sawmill wrote for the same line.
    let strict = reading(STRICT_HEAD, QUOTED);
    let mut lenient: Vec<(&str, Regex)> = LENIENT
        .iter()
        .map(|(k, head, req)| (*k, reading(head, req)))
        .collect();
    lenient.push(("cut_off_user_agent", cut_off_user_agent()));
    let mut kinds: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unexplained = Vec::new();
    let mut figures = Figures::default();
    for (o, line) in lines.iter().enumerate() {
        let (o, text) = (o as i64, String::from_utf8_lossy(line));
        let read = strict.captures(line).and_then(|c| fields(&c));
        let f = match (read, w.records.get(&o)) {
            (Some(f), Some(got)) => {
                assert_eq!(&f, got, "{name}: line {o} read differently: {text:?}");
                f
            }
            (Some(_), None) => {
                let reason = &w.rejects[&o];
                match KNOWN_STRICT_ONLY.iter().find(|k| k.0 == name && k.1 == o) {
                    Some(k) => assert_eq!(reason, k.2, "{name}: line {o} reason"),
                    None => unexplained.push(format!("{o}: strict-valid, {reason}: {text:?}")),
                }
                continue;
            }
            (None, None) => continue,
            (None, Some(got)) => {
                let kind = lenient.iter().find_map(|(k, re)| {
                    re.captures(line).and_then(|c| fields(&c)).map(|f| (*k, f))
                });
                let Some((k, f)) = kind else {
                    unexplained.push(format!("{o}: accepted, of no documented kind: {text:?}"));
                    continue;
                };
                assert_eq!(&f, got, "{name}: line {o} ({k}) read differently");
                *kinds.entry(k).or_default() += 1;
                f
            }
        };
        figures.add(&f);
    }
    let first: Vec<&String> = unexplained.iter().take(8).collect();
    assert!(
        unexplained.is_empty(),
        "{name}: {} lines unexplained, first:\n{first:#?}",
        unexplained.len()
    );
    figures.assert_match(p, &name);
    (lines.len(), p.records(), p.rejects(), kinds)
}

#[test]
fn real_logs_agree_with_an_independent_reading() {
    let Some(files) = sawmill_tests::real_logs("real_logs_agree_with_an_independent_reading")
    else {
        return;
    };
    assert!(
        files.len() >= 10,
        "expected the shared real logs, found {files:?}"
    );
    for path in &files {
        let (lines, records, rejects, kinds) = check_file(path);
        let name = path.file_name().unwrap().to_string_lossy();
        let expected: BTreeMap<&str, usize> = EXPECTED_KINDS
            .iter()
            .filter(|k| k.0 == name)
            .map(|k| (k.1, k.2))
            .collect();
        assert_eq!(
            kinds, expected,
            "{name}: lines accepted beyond the strict reading"
        );
        eprintln!("{name}: {lines} lines = {records} records + {rejects} rejects; beyond the strict regex: {kinds:?}");
    }
}

#[test]
fn nasa_aug95_head_known_figures() {
    let path = sawmill_tests::workspace().join("data/sample/nasa_aug95_head.log");
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(LocalFs::create(dir.path()).unwrap());
    let io = tokio::runtime::Runtime::new().unwrap();
    let cfg = RunConfig::default();
    let spec = InputSpec::new(&path, 0);
    let p = pipeline::run(&[spec], storage, io.handle(), &cfg, &Progress::default())
        .unwrap()
        .partial;
    assert_eq!((p.records(), p.rejects()), (1843, 87));
    let reasons = table(&p, "reject_count", "reason", "count");
    let expect = [
        ("bad_status", "1"),
        ("no_timestamp", "38"),
        ("truncated", "48"),
    ];
    let expect = expect
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(reasons, expect);
}
