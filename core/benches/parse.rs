//! Parsing throughput, in input bytes per second on one core: bytes → Arrow record batches
//! (`ChunkParser::parse_lines` + `finish`), the same with a `Partial` observing every record
//! (`push_lines`, what `sawmill run` and the workers do), and the bare `parse_line` and line
//! split underneath, so a regression can be placed.
//!
//! Inputs: (a) the real NASA Jul95 log from `../shared/data/access-logs/` (skipped when that
//! folder is absent) and (b) 200,000 generated NASA-format lines.
//!
//! `cargo bench -p sawmill-common --bench parse -- --warm-up-time 1 --measurement-time 5`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use sawmill_core::analytics::{AnalyticsConfig, Partial};
use sawmill_core::batch::{lines, ChunkParser};
use sawmill_core::generate::{generate, GenerateConfig};
use sawmill_core::parse::parse_line;
use std::hint::black_box;
use std::path::Path;

const NASA_JUL95: &str = "../../shared/data/access-logs/nasa_jul95_insight_fansite_lordbadri.log";

fn inputs() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let real = Path::new(env!("CARGO_MANIFEST_DIR")).join(NASA_JUL95);
    match std::fs::read(&real) {
        Ok(bytes) => out.push(("nasa_jul95", bytes)),
        Err(_) => eprintln!(
            "parse bench: skipped nasa_jul95: {} is absent",
            real.display()
        ),
    }
    let mut generated = Vec::new();
    generate(&GenerateConfig::new(200_000, 1), &mut generated).expect("generate in memory");
    out.push(("generated_200k", generated));
    out
}

fn parse(c: &mut Criterion) {
    for (name, buf) in inputs() {
        let mut g = c.benchmark_group(format!("parse/{name}"));
        g.throughput(Throughput::Bytes(buf.len() as u64));
        g.bench_function("split_lines", |b| b.iter(|| lines(black_box(&buf)).count()));
        g.bench_function("parse_line", |b| {
            b.iter(|| {
                lines(black_box(&buf))
                    .filter(|l| parse_line(l).is_ok())
                    .count()
            })
        });
        g.bench_function("arrow", |b| {
            let mut parser = ChunkParser::new("bench".into(), 0);
            b.iter(|| {
                let pushed = parser.parse_lines(black_box(&buf), 0);
                assert_eq!(pushed.consumed, buf.len(), "uncapped: the whole buffer");
                parser.finish().expect("batches")
            })
        });
        g.bench_function("arrow+partial", |b| {
            let mut parser = ChunkParser::new("bench".into(), 0);
            b.iter(|| {
                let mut partial = Partial::new(&AnalyticsConfig::default());
                let pushed = parser.push_lines(black_box(&buf), 0, &mut partial);
                assert_eq!(pushed.consumed, buf.len(), "uncapped: the whole buffer");
                (parser.finish().expect("batches"), partial)
            })
        });
        g.finish();
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
