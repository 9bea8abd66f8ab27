//! Unit tests of `generate.rs`: determinism, vocabulary and line shapes.

use super::*;
use std::collections::HashSet;

fn run(cfg: &GenerateConfig) -> (Vec<u8>, GenerateStats) {
    let mut out = Vec::new();
    let stats = generate(cfg, &mut out).unwrap();
    (out, stats)
}

#[test]
fn generate_is_deterministic_per_seed_with_exact_line_count() {
    let cfg = GenerateConfig {
        combined_fraction: 0.5,
        ..GenerateConfig::new(20_000, 7)
    };
    let (a, stats) = run(&cfg);
    assert_eq!(run(&cfg), (a.clone(), stats));
    assert_ne!(run(&GenerateConfig { seed: 8, ..cfg }).0, a);
    let newlines = a.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(
        (stats.lines, newlines, stats.bytes),
        (20_000, 20_000, a.len() as u64)
    );
    assert!(a.ends_with(b"\n"));
}

#[test]
fn generate_distinct_ranks_get_distinct_names() {
    let mut hosts = HashSet::new();
    for rank in 0..300_000 {
        let name = host_name(rank);
        assert!(
            !name.is_empty() && !name.contains([' ', '"', '[']),
            "{name}"
        );
        assert!(hosts.insert(name), "host of rank {rank} repeats");
    }
    let endpoints: Vec<Endpoint> = (0..60_000).map(endpoint).collect();
    let paths: HashSet<&str> = endpoints.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths.len(), endpoints.len());
    for e in &endpoints {
        assert!(e.path.starts_with('/') && !e.path.contains(['"', '\n']) && e.size > 0);
    }
    let huge = endpoints.iter().filter(|e| e.size > 1 << 31).count();
    assert!((1..=10).contains(&huge), "{huge} endpoints over 2 GiB");
}

#[test]
fn generate_small_and_invalid_configs() {
    assert_eq!(run(&GenerateConfig::new(0, 1)).1, GenerateStats::default());
    let (out, stats) = run(&GenerateConfig {
        days: 30,
        ..GenerateConfig::new(3, 1)
    });
    assert_eq!(
        (stats.lines, out.iter().filter(|&&b| b == b'\n').count()),
        (3, 3)
    );
    assert_eq!(GenerateConfig::new(3_500_000, 1).effective_days(), 64);
    for bad in [
        GenerateConfig {
            start_date: (1995, 2, 29),
            ..Default::default()
        },
        GenerateConfig {
            start_date: (1995, 13, 1),
            ..Default::default()
        },
        GenerateConfig {
            start_date: (9999, 12, 1),
            days: 40,
            ..Default::default()
        },
        GenerateConfig {
            malformed_fraction: 1.5,
            ..Default::default()
        },
        GenerateConfig {
            combined_fraction: f64::NAN,
            ..Default::default()
        },
    ] {
        let result = generate(&bad, std::io::sink());
        assert!(matches!(result, Err(Error::Config(_))), "{bad:?}");
    }
}

/// `cargo test -p sawmill-common --release generate_nasa_scale -- --ignored --nocapture`
#[test]
#[ignore = "benchmark-sized"]
fn generate_nasa_scale() {
    let started = std::time::Instant::now();
    let stats = generate(&GenerateConfig::new(3_500_000, 1995), std::io::sink()).unwrap();
    let secs = started.elapsed().as_secs_f64();
    let rate = stats.lines as f64 / secs / 1e6;
    println!("{stats:?} in {secs:.2}s: {rate:.2}M lines/s");
}

#[test]
fn generate_seq_tags_every_line_and_rejects_stay_rejects() {
    use crate::parse::parse_line;
    let tags = seq::SeqConfig { run: 42, keys: 3 };
    let base = GenerateConfig {
        combined_fraction: 0.3,
        malformed_fraction: 0.05,
        ..GenerateConfig::new(20_000, 5)
    };
    let (plain, plain_stats) = run(&base);
    let (out, stats) = run(&GenerateConfig {
        seq: Some(tags),
        ..base
    });
    assert_eq!(stats.malformed, plain_stats.malformed, "same lines, tagged");
    let (mut rejected, mut parsed) = (0u64, 0u64);
    let untagged: Vec<&[u8]> = plain.split(|&b| b == b'\n').collect();
    for (i, line) in out[..out.len() - 1].split(|&b| b == b'\n').enumerate() {
        let want = tags.of_line(i as u64);
        assert_eq!(seq::Seq::find(line), Some(want), "line {i}");
        match parse_line(line) {
            Ok(rec) => {
                parsed += 1;
                let endpoint = rec.endpoint.expect("a tagged line has an endpoint");
                assert_eq!(seq::Seq::find(endpoint), Some(want), "endpoint of line {i}");
                // Apart from the tag, the line is the untagged one.
                let mut tag = Vec::new();
                want.write(&mut tag);
                let at = memchr::memmem::find(line, &tag).unwrap();
                let without = [&line[..at - 1], &line[at + tag.len()..]].concat();
                assert_eq!(without, untagged[i], "line {i} apart from its tag");
            }
            Err(_) => {
                rejected += 1;
                assert!(
                    parse_line(untagged[i]).is_err(),
                    "line {i} rejected only when tagged"
                );
            }
        }
    }
    assert_eq!(
        rejected, stats.malformed,
        "every malformed line is still rejected"
    );
    assert_eq!(parsed + rejected, 20_000);
}
