//! `sawmill run` and `sawmill generate` as a user runs them: the built binary, real arguments,
//! exit codes and messages.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const SAWMILL: &str = env!("CARGO_BIN_EXE_sawmill");

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample/nasa_aug95_head.log")
}

fn sawmill(args: &[&str]) -> Output {
    Command::new(SAWMILL)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run the sawmill binary")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// "processed N lines (X MB) / R rejected" from the run's summary line, without its timings.
fn totals(stdout: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.starts_with("processed "))
        .unwrap_or_else(|| panic!("no 'processed' line in:\n{stdout}"));
    let (lines, rest) = line.split_once(" in ").unwrap();
    let rejected = rest
        .split_once("lines/s, ")
        .unwrap()
        .1
        .split_once(';')
        .unwrap()
        .0;
    format!("{lines} / {rejected}")
}

/// The sample compressed by gzip(1) rather than Sawmill's own encoder, so the reader meets a
/// real gzip file.
fn gzip_sample(dir: &Path) -> PathBuf {
    let gz = dir.join("nasa_aug95_head.log.gz");
    let zipped = Command::new("gzip")
        .arg("-c")
        .arg(sample())
        .output()
        .expect("gzip(1) is installed");
    assert!(zipped.status.success());
    std::fs::write(&gz, &zipped.stdout).unwrap();
    gz
}

/// Files under `dir`, recursively.
fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().path())
                .map(|p| if p.is_dir() { count_files(&p) } else { 1 })
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn run_on_the_sample_prints_the_tables() {
    let out = tempfile::tempdir().unwrap();
    let o = sawmill(&[
        "run",
        sample().to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
    ]);
    let stdout = text(&o.stdout);
    assert!(
        o.status.success(),
        "exit {:?}\n{}",
        o.status,
        text(&o.stderr)
    );
    assert_eq!(
        totals(&stdout),
        "processed 1930 lines (0.2 MB) / 87 rejected",
        "{stdout}"
    );
    for title in [
        "Totals",
        "Requests by status",
        "Top hosts",
        "Requests per day",
        "Rejected lines by reason",
    ] {
        assert!(stdout.contains(title), "no {title:?} table in:\n{stdout}");
    }
    // The headline tables hold the sample's known figures.
    assert!(stdout.contains("| truncated    | 48    |"), "{stdout}");
    assert!(out.path().join("summary/totals.parquet").is_file());
    assert!(out.path().join("records/dt=1995-08-01").is_dir());
}

#[test]
fn missing_input_fails_naming_the_path() {
    let out = tempfile::tempdir().unwrap();
    let missing = out.path().join("no-such-dir/absent.log");
    let o = sawmill(&[
        "run",
        missing.to_str().unwrap(),
        "--out",
        out.path().join("o").to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");
    assert!(stderr.contains("cannot read input"), "{stderr}");
}

#[test]
fn unwritable_output_fails_clearly() {
    let o = sawmill(&[
        "run",
        sample().to_str().unwrap(),
        "--out",
        "/proc/sawmill-x",
    ]);
    assert!(!o.status.success());
    let stderr = text(&o.stderr);
    assert!(
        stderr.contains("cannot write output at /proc/sawmill-x"),
        "{stderr}"
    );
    assert!(
        o.stdout.is_empty(),
        "nothing is reported as processed: {}",
        text(&o.stdout)
    );
}

#[test]
fn stdin_and_gzip_give_the_same_totals_as_the_plain_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let plain = sawmill(&["run", sample().to_str().unwrap(), "--out", &out("plain")]);
    assert!(plain.status.success(), "{}", text(&plain.stderr));
    let expect = totals(&text(&plain.stdout));

    let mut child = Command::new(SAWMILL)
        .args(["run", "-", "--out", &out("stdin")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(sample()).unwrap())
        .unwrap();
    let piped = child.wait_with_output().unwrap();
    assert!(piped.status.success(), "{}", text(&piped.stderr));
    assert_eq!(totals(&text(&piped.stdout)), expect);
    // Rows read from stdin are named after it.
    let shards: Vec<String> = std::fs::read_dir(dir.path().join("stdin/rejects"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        shards.iter().all(|s| s.starts_with("stdin-p00000-")),
        "{shards:?}"
    );

    let gz = gzip_sample(dir.path());
    let g = sawmill(&["run", gz.to_str().unwrap(), "--out", &out("gz")]);
    assert!(g.status.success(), "{}", text(&g.stderr));
    assert_eq!(totals(&text(&g.stdout)), expect);
    // Same source name (the stem without .log.gz), so the same shard names as the plain run.
    assert_eq!(
        count_files(&dir.path().join("gz")),
        count_files(&dir.path().join("plain"))
    );
}

#[test]
fn a_second_run_replaces_the_first() {
    let out = tempfile::tempdir().unwrap();
    let sample = sample();
    let args = [
        "run",
        sample.to_str().unwrap(),
        "--out",
        out.path().to_str().unwrap(),
        "--chunk-mib",
        "1",
    ];
    let first = sawmill(&args);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let files = count_files(out.path());
    assert!(
        files > 15,
        "records, rejects and 15 summary tables, got {files}"
    );
    // A stray file of the user's own is left alone.
    std::fs::write(out.path().join("notes.txt"), "mine").unwrap();
    let second = sawmill(&args);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert!(text(&second.stderr).contains(&format!("replacing the previous run's {files} files")));
    assert_eq!(count_files(out.path()), files + 1);
    assert!(count_files(&out.path().join("_staging")) == 0);
}

#[test]
fn generate_is_deterministic_for_a_seed() {
    let dir = tempfile::tempdir().unwrap();
    let gen = |name: &str, seed: &str| {
        let p = dir.path().join(name);
        let o = sawmill(&[
            "generate",
            "--lines",
            "1000",
            "--seed",
            seed,
            "--out",
            p.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        std::fs::read(p).unwrap()
    };
    let (a, b, c) = (gen("a.log", "3"), gen("b.log", "3"), gen("c.log", "4"));
    assert_eq!(a, b);
    assert_ne!(a, c, "another seed gives another file");
    assert_eq!(a.iter().filter(|&&b| b == b'\n').count(), 1000);
}

#[test]
fn gzip_input_past_max_decompressed_bytes_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let gz = gzip_sample(dir.path());
    let size = std::fs::metadata(sample()).unwrap().len().to_string();
    let out = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let run = |cap: &str, n: &str| {
        let gz = gz.to_str().unwrap();
        sawmill(&["run", gz, "--out", &out(n), "--max-decompressed-bytes", cap])
    };

    let capped = run("100000", "capped");
    assert!(!capped.status.success(), "{}", text(&capped.stdout));
    let stderr = text(&capped.stderr);
    assert!(
        stderr.contains(&format!("cannot read input {}", gz.display())),
        "{stderr}"
    );
    assert!(stderr.contains("--max-decompressed-bytes"), "{stderr}");

    // Up to the cap is fine: the whole sample decompresses to exactly its size.
    let fits = run(&size, "fits");
    assert!(fits.status.success(), "{}", text(&fits.stderr));
    assert!(
        text(&fits.stdout).contains("processed 1930 lines"),
        "{}",
        text(&fits.stdout)
    );
}
