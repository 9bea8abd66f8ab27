//! The consumption ceiling for benchmarks: a plain rdkafka consumer with the worker's own
//! consumer settings that only reads a topic to its end offsets, doing nothing with the lines.
//!
//!   cargo run --release -p sawmill-worker --example plain_consumer -- BOOTSTRAP TOPIC [key=value...]
//!
//! Prints `lines=N bytes=B seconds=S lines_per_sec=R`.

use rdkafka::consumer::Consumer;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let bootstrap = args.next().unwrap_or_else(|| "127.0.0.1:9092".into());
    let topic = args.next().ok_or("usage: plain_consumer BOOTSTRAP TOPIC")?;
    let mut config = sawmill_worker::kafka::consumer_config(&bootstrap, "sawmill-bench-plain");
    // Extra `key=value` librdkafka settings, for tuning experiments.
    for kv in args {
        let (k, v) = kv.split_once('=').ok_or("extra arguments are key=value")?;
        config.set(k, v);
    }
    let consumer: sawmill_worker::kafka::KafkaConsumer =
        config.create_with_context(sawmill_worker::kafka::KafkaContext)?;
    let parts = sawmill_worker::kafka::topic_partitions(&consumer, &bootstrap, &topic)?;
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0i64;
    let mut ends = std::collections::BTreeMap::new();
    for &p in &parts {
        let (low, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
        tpl.add_partition_offset(&topic, p, Offset::Offset(low))?;
        remaining += high - low;
        ends.insert(p, high);
    }
    consumer.assign(&tpl)?;
    let (mut lines, mut bytes) = (0u64, 0u64);
    let start = Instant::now();
    while remaining > 0 {
        match consumer.poll(Duration::from_secs(10)) {
            Some(Ok(m)) => {
                if m.offset() < ends[&m.partition()] {
                    lines += 1;
                    bytes += m.payload().map_or(0, |p| p.len() as u64);
                    remaining -= 1;
                }
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("no message for 10 s before reaching the end offsets".into()),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "lines={lines} bytes={bytes} seconds={secs:.3} lines_per_sec={:.0}",
        lines as f64 / secs
    );
    Ok(())
}
