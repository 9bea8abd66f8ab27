//! The plain-consumer ceiling for benchmarks: one rdkafka consumer that only reads a topic from
//! the beginning to its current end (no parsing, no output) with the workers' fetch settings,
//! and prints lines/s. What a Sawmill cluster achieves end to end is reported as a fraction of
//! this (BENCHMARKS.md, bench/cluster.sh).
//!
//! ```text
//! cargo run --release -p sawmill-coordinator --example consume_ceiling -- BOOTSTRAP TOPIC
//! ```

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (bootstrap, topic) = match args.as_slice() {
        [_, b, t] => (b.clone(), t.clone()),
        _ => return Err("usage: consume_ceiling BOOTSTRAP TOPIC".into()),
    };
    // The same client settings as the worker's consumer (worker/src/consumer.rs).
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "sawmill-ceiling")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        .set("auto.offset.reset", "earliest")
        .set("fetch.max.bytes", "52428800")
        .set("max.partition.fetch.bytes", "8388608")
        .set("queued.max.messages.kbytes", "65536")
        .create()?;
    let md = c.fetch_metadata(Some(&topic), Duration::from_secs(10))?;
    let parts: Vec<i32> = md
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or("topic not found")?
        .partitions()
        .iter()
        .map(|p| p.id())
        .collect();
    let mut end = BTreeMap::new();
    let mut tpl = TopicPartitionList::new();
    for &p in &parts {
        let (low, high) = c.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
        if high > low {
            end.insert(p, high);
        }
        tpl.add_partition_offset(&topic, p, Offset::Offset(low))?;
    }
    let total: i64 = parts
        .iter()
        .map(|&p| {
            c.fetch_watermarks(&topic, p, Duration::from_secs(10))
                .map(|(l, h)| h - l)
        })
        .sum::<Result<i64, _>>()?;
    let started = Instant::now();
    c.assign(&tpl)?;
    let (mut lines, mut bytes) = (0u64, 0u64);
    while !end.is_empty() {
        match c.poll(Duration::from_secs(5)) {
            Some(Ok(m)) => {
                lines += 1;
                bytes += m.payload().map_or(0, |p| p.len() as u64);
                if end
                    .get(&m.partition())
                    .is_some_and(|&e| m.offset() + 1 >= e)
                {
                    end.remove(&m.partition());
                }
            }
            Some(Err(e)) => return Err(e.into()),
            None => return Err("no message for 5 s before the end offsets".into()),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ceiling: {lines} lines ({total} in topic, {:.0} MB) in {secs:.2}s = {:.0} lines/s",
        bytes as f64 / 1e6,
        lines as f64 / secs
    );
    Ok(())
}
