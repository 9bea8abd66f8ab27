//! Time per assignment decision for 1,000 partitions over 100 workers, and the
//! number of partitions each membership change moves against the minimum.
//!
//! Run: cargo bench -p sawmill-coordinator --bench assign -- --warm-up-time 1 --measurement-time 3

use std::collections::BTreeMap;
use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use sawmill_coordinator::assign::{assign, min_moves, moves, Partition, WorkerId};

const PARTITIONS: i32 = 1_000;
const WORKERS: usize = 100;

fn bench_assign(c: &mut Criterion) {
    let partitions: Vec<Partition> = (0..PARTITIONS).collect();
    let workers: Vec<WorkerId> = (0..WORKERS).map(|i| format!("worker-{i:03}")).collect();
    // A settled cluster: what the coordinator holds between membership changes.
    let steady = assign(&partitions, &workers, &BTreeMap::new());

    let mut joined = workers.clone();
    joined.push(format!("worker-{WORKERS:03}"));
    // Drop a worker from the middle so the leave case is not an edge of the id order.
    let left: Vec<WorkerId> = workers
        .iter()
        .filter(|w| **w != workers[WORKERS / 2])
        .cloned()
        .collect();

    // Report moved vs. the theoretical minimum once, outside the timing loop.
    for (name, live) in [("steady", &workers), ("join", &joined), ("leave", &left)] {
        let after = assign(&partitions, live, &steady);
        let moved = moves(&steady, &after).len();
        let min = min_moves(&partitions, live, &steady);
        println!("assign/{name}: moved {moved} partitions (theoretical minimum {min})");
    }

    let mut group = c.benchmark_group("assign");
    for (name, live) in [("steady", &workers), ("join", &joined), ("leave", &left)] {
        group.bench_function(name, |b| {
            b.iter(|| assign(black_box(&partitions), black_box(live), black_box(&steady)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_assign);
criterion_main!(benches);
