//! Sawmill's output as other tools read it: `tests/py/read_output.py` opens an embedded run's
//! output with pyarrow (records/ as a Hive-partitioned dataset, rejects/, every summary table)
//! and with duckdb, and prints what it saw as JSON. The schemas, row counts and file metadata
//! it reports must be exactly what Sawmill meant to write.

use arrow::datatypes::{DataType, Schema, TimeUnit};
use sawmill_common::embedded::input::InputSpec;
use sawmill_common::embedded::pipeline::{self, Progress, RunConfig};
use sawmill_common::storage::LocalFs;
use sawmill_core::generate::GenerateConfig;
use sawmill_core::schema;
use sawmill_core::shard::meta;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// How pyarrow prints an Arrow type, and how duckdb names the column type it maps it to.
fn type_names(t: &DataType) -> (&'static str, &'static str) {
    match t {
        DataType::Utf8 => ("string", "VARCHAR"),
        DataType::Binary => ("binary", "BLOB"),
        DataType::Boolean => ("bool", "BOOLEAN"),
        DataType::Int16 => ("int16", "SMALLINT"),
        DataType::Int32 => ("int32", "INTEGER"),
        DataType::Int64 => ("int64", "BIGINT"),
        DataType::Float64 => ("double", "DOUBLE"),
        DataType::Date32 => ("date32[day]", "DATE"),
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) if tz.as_ref() == "UTC" => {
            ("timestamp[us, tz=UTC]", "TIMESTAMP WITH TIME ZONE")
        }
        other => panic!("no expected pyarrow name for {other}"),
    }
}

/// `[[name, pyarrow type, nullable], ...]` as the script prints a schema.
fn pyarrow_schema(s: &Schema) -> Value {
    let fields = s
        .fields()
        .iter()
        .map(|f| serde_json::json!([f.name(), type_names(f.data_type()).0, f.is_nullable()]));
    Value::Array(fields.collect())
}

fn duckdb_schema(s: &Schema) -> Value {
    let fields = s
        .fields()
        .iter()
        .map(|f| serde_json::json!([f.name(), type_names(f.data_type()).1]));
    Value::Array(fields.collect())
}

/// Two real logs when the shared folder is there (the NASA head has all three reject kinds, the
/// honeypot odd requests and leading spaces); otherwise the project's sample plus a generated log.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    match sawmill_tests::real_logs("pyarrow_reads") {
        Some(files) => [
            "nasa_aug95_head_aman-panchal.log",
            "honeypot_2019_hanxen.log",
        ]
        .iter()
        .map(|n| {
            files
                .iter()
                .find(|f| f.ends_with(n))
                .expect("shared real log")
                .clone()
        })
        .collect(),
        None => {
            let generated = dir.join("generated.log");
            let f = std::fs::File::create(&generated).expect("create the generated log");
            let cfg = GenerateConfig {
                lines: 20_000,
                days: 3,
                ..Default::default()
            };
            sawmill_core::generate::generate(&cfg, f).expect("generate a log");
            vec![
                sawmill_tests::workspace().join("data/sample/nasa_aug95_head.log"),
                generated,
            ]
        }
    }
}

/// Runs the reader script; fails with the set-up hint when pyarrow or duckdb is missing.
fn read_with_python(out: &Path) -> Value {
    let script = sawmill_tests::workspace().join("tests/py/read_output.py");
    let o = Command::new("python3").arg(&script).arg(out).output();
    let hint = "pyarrow and duckdb are needed: run scripts/setup.sh --test";
    let o = o.unwrap_or_else(|e| panic!("cannot run python3 ({e}); {hint}"));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.code() != Some(3), "{stderr}; {hint}");
    assert!(o.status.success(), "{} failed: {stderr}", script.display());
    serde_json::from_slice(&o.stdout).expect("the script prints JSON")
}

#[test]
fn pyarrow_and_duckdb_read_what_sawmill_meant_to_write() {
    let dir = tempfile::tempdir().unwrap();
    let files = inputs(dir.path());
    let out = dir.path().join("out");
    let storage = Arc::new(LocalFs::create(&out).unwrap());
    let io = tokio::runtime::Runtime::new().unwrap();
    let specs: Vec<InputSpec> = files
        .iter()
        .enumerate()
        .map(|(i, f)| InputSpec::new(f, i as i32))
        .collect();
    // Small chunks: several shards per input, so the offset ranges below have seams to check.
    let cfg = RunConfig {
        chunk_bytes: 64 << 10,
        ..RunConfig::default()
    };
    let outcome = pipeline::run(&specs, storage, io.handle(), &cfg, &Progress::default()).unwrap();
    let p = &outcome.partial;
    assert!(p.rejects() > 0, "the inputs should produce rejects");
    let seen = read_with_python(&out);

    // records/: the records schema plus the Hive key, all rows, each under its own date.
    let records = &seen["records"];
    let mut expect = pyarrow_schema(&schema::records());
    expect
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(["dt", "string", true]));
    assert_eq!(
        records["schema"], expect,
        "records schema as pyarrow sees it"
    );
    assert_eq!(records["rows"], p.records(), "records rows (pyarrow)");
    let duck = &seen["duckdb"];
    assert_eq!(duck["records_rows"], p.records(), "records rows (duckdb)");
    let by_dt: u64 = duck["records_by_dt"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(
        by_dt,
        p.records(),
        "every row's date equals its dt= partition"
    );
    let mut expect = duckdb_schema(&schema::records());
    expect
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!(["dt", "DATE"]));
    assert_eq!(
        duck["records_schema"], expect,
        "records schema as duckdb sees it"
    );
    let dates = seen["records"]["dt_values"].as_array().unwrap().len();
    let daily = p
        .tables()
        .into_iter()
        .find(|(n, _)| *n == "daily_request_count")
        .unwrap()
        .1;
    assert_eq!(dates, daily.num_rows(), "one dt= partition per date");

    // rejects/
    let rejects = &seen["rejects"];
    assert_eq!(rejects["schema"], pyarrow_schema(&schema::rejects()));
    assert_eq!(rejects["rows"], p.rejects(), "rejects rows (pyarrow)");
    assert_eq!(duck["rejects_rows"], p.rejects(), "rejects rows (duckdb)");
    assert_eq!(duck["rejects_schema"], duckdb_schema(&schema::rejects()));

    // Shard metadata: version, source, and offset ranges that tile each input exactly.
    let mut ranges: BTreeMap<String, Vec<(i64, i64)>> = BTreeMap::new();
    for kind in ["records", "rejects"] {
        let shards = seen[kind]["files"].as_object().unwrap();
        assert!(!shards.is_empty());
        for (path, kv) in shards {
            let get = |k: &str| {
                kv[k]
                    .as_str()
                    .unwrap_or_else(|| panic!("{path}: no {k}"))
                    .to_string()
            };
            assert_eq!(get(meta::VERSION), sawmill_core::VERSION, "{path}");
            assert_eq!(get(meta::KIND), kind, "{path}");
            let (first, last): (i64, i64) = (
                get(meta::FIRST_OFFSET).parse().unwrap(),
                get(meta::LAST_OFFSET).parse().unwrap(),
            );
            assert!(first <= last, "{path}");
            assert!(
                path.ends_with(&format!("-{first:020}-{last:020}.parquet")),
                "{path} names its range"
            );
            if kind == "records" {
                assert!(
                    path.starts_with(&format!("records/dt={}/", get(meta::DATE))),
                    "{path}"
                );
            }
            ranges
                .entry(get(meta::SOURCE))
                .or_default()
                .push((first, last));
        }
    }
    assert_eq!(ranges.len(), files.len());
    for (spec, file) in specs.iter().zip(&files) {
        let mut r = ranges.remove(spec.source.as_ref()).unwrap();
        r.sort();
        r.dedup();
        assert!(r.len() > 1, "{}: several chunks expected", spec.source);
        let lines = sawmill_core::batch::count_lines(&std::fs::read(file).unwrap()) as i64;
        let mut next = 0;
        for (first, last) in r {
            assert_eq!(
                first, next,
                "{}: ranges leave no gap and no overlap",
                spec.source
            );
            next = last + 1;
        }
        assert_eq!(next, lines, "{}: ranges end at the last line", spec.source);
    }

    // summary/: every table, with Sawmill's schema and row count, read by both tools.
    let summary = seen["summary"].as_object().unwrap();
    let tables = p.tables();
    assert_eq!(summary.len(), tables.len(), "one file per table");
    for (name, batch) in &tables {
        let t = &summary[*name];
        assert_eq!(
            t["schema"],
            pyarrow_schema(&batch.schema()),
            "summary/{name} schema"
        );
        assert_eq!(t["rows"], batch.num_rows(), "summary/{name} rows (pyarrow)");
        assert_eq!(
            t["duckdb_rows"],
            batch.num_rows(),
            "summary/{name} rows (duckdb)"
        );
        let kv = &t["metadata"];
        assert_eq!(kv[meta::VERSION], sawmill_core::VERSION, "summary/{name}");
        assert_eq!(kv[meta::KIND], format!("summary/{name}"));
        assert_eq!(kv["sawmill.records"], p.records().to_string());
        assert_eq!(kv["sawmill.rejects"], p.rejects().to_string());
    }
}
