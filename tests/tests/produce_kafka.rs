//! `sawmill produce` against a real broker. The broker tests run with the `services` feature
//! (`scripts/test.sh`) and read it from `SAWMILL_KAFKA`; the unreachable-broker test needs no
//! broker and always runs, as does the pure test of line splitting across blocks.

use indicatif::ProgressBar;
use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use sawmill_cli::produce::{complete_prefix, produce, ProduceArgs, SpreadMode, TopicSetup};
use sawmill_core::batch::lines;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn broker() -> String {
    sawmill_tests::service("SAWMILL_KAFKA")
}

fn real_log(name: &str) -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/access-logs")
        .join(name);
    if !p.exists() {
        eprintln!("skipped: {} is absent", p.display());
        return None;
    }
    Some(p)
}

fn unique_topic(name: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("sawmill-test-{name}-{}-{nanos}", std::process::id())
}

/// The file's lines without line ends, split independently of the code under test
/// (these fixtures use `\n` or `\r\n`, no bare `\r`).
fn expected_lines(data: &[u8]) -> Vec<Vec<u8>> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    data.split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
        .collect()
}

/// Every message value in the topic: all partitions assigned from the beginning, read up to
/// their high watermarks, no consumer group commits.
fn consume_all(broker: &str, topic: &str) -> Vec<Vec<u8>> {
    consume_by_partition(broker, topic)
        .into_values()
        .flatten()
        .collect()
}

/// Every message value in the topic by partition, each in offset order.
fn consume_by_partition(broker: &str, topic: &str) -> BTreeMap<i32, Vec<Vec<u8>>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .set("group.id", "sawmill-produce-test")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let partitions: Vec<i32> = md.topics()[0].partitions().iter().map(|p| p.id()).collect();
    assert!(!partitions.is_empty(), "topic {topic} has no partitions");
    let mut tpl = TopicPartitionList::new();
    let mut remaining = 0i64;
    for &p in &partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("offset");
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .expect("watermarks");
        remaining += high - low;
    }
    consumer.assign(&tpl).expect("assign");
    let mut values: BTreeMap<i32, Vec<Vec<u8>>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while remaining > 0 {
        assert!(
            Instant::now() < deadline,
            "timed out with {remaining} messages left to consume"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m.expect("consume");
            let value = m.payload().unwrap_or_default().to_vec();
            values.entry(m.partition()).or_default().push(value);
            remaining -= 1;
        }
    }
    // Nothing beyond the watermarks read above: the producer has finished.
    assert!(
        consumer.poll(Duration::from_millis(500)).is_none(),
        "more messages than the watermarks said"
    );
    values
}

fn delete_topic(broker: &str, topic: &str) {
    let admin: Result<AdminClient<DefaultClientContext>, _> = ClientConfig::new()
        .set("bootstrap.servers", broker)
        .create();
    if let Ok(admin) = admin {
        let _ = futures::executor::block_on(admin.delete_topics(&[topic], &AdminOptions::new()));
    }
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn produces_a_real_crlf_log_exactly_once_per_line() {
    let broker = broker();
    let Some(file) = real_log("monitorware_2004_access_log.log") else {
        return;
    };
    let topic = unique_topic("crlf");
    let mut cfg = ProduceArgs::new(&broker, &topic, &file);
    cfg.reset = true;
    cfg.partitions = 3;
    let report = produce(&cfg, &ProgressBar::hidden()).expect("produce");

    let mut expected = expected_lines(&std::fs::read(&file).expect("read fixture"));
    assert_eq!(
        (report.topic, report.partitions),
        (TopicSetup::Recreated, 3)
    );
    assert_eq!(report.read, expected.len() as u64);
    assert_eq!(report.sent, report.read);
    assert_eq!(report.acked, report.read);

    let mut got = consume_all(&broker, &topic);
    assert_eq!(got.len(), expected.len());
    assert!(
        got.iter()
            .all(|v| !v.contains(&b'\r') && !v.contains(&b'\n')),
        "line ends leaked into values"
    );
    got.sort();
    expected.sort();
    assert!(
        got == expected,
        "the topic's values differ from the file's lines"
    );

    // --reset really starts over: a second run leaves one copy, not two.
    let mut cfg = cfg.clone();
    cfg.limit = 10;
    produce(&cfg, &ProgressBar::hidden()).expect("produce again");
    assert_eq!(consume_all(&broker, &topic).len(), 10);
    delete_topic(&broker, &topic);
}

/// Partitions hold numbers of lines at most `stride` apart.
fn assert_level(got: &BTreeMap<i32, Vec<Vec<u8>>>, stride: u64, when: &str) {
    let held: Vec<usize> = got.values().map(Vec::len).collect();
    let (lo, hi) = (held.iter().min(), held.iter().max());
    assert!(
        hi.unwrap_or(&0) - lo.unwrap_or(&0) <= stride as usize,
        "{when}, partitions hold {held:?} lines: more than a stride ({stride}) apart"
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn even_spread_gives_partitions_equal_shares_in_file_order() {
    let broker = broker();
    let Some(file) = real_log("weblog_1geek0_2015.log") else {
        return;
    };
    let expected = expected_lines(&std::fs::read(&file).expect("read fixture"));
    let topic = unique_topic("spread");
    let mut cfg = ProduceArgs::new(&broker, &topic, &file);
    cfg.reset = true;
    cfg.partitions = 4;
    cfg.spread_stride = 500;
    let report = produce(&cfg, &ProgressBar::hidden()).expect("produce");
    assert_eq!(report.acked, expected.len() as u64);

    let got = consume_by_partition(&broker, &topic);
    assert_eq!(got.len(), 4, "every partition got lines");
    assert_level(&got, cfg.spread_stride, "after the first run");
    // Each partition's lines are in file order (a subsequence of the file), and together they
    // are the file's lines, each once.
    for (p, values) in &got {
        let mut rest = expected.iter();
        for (n, v) in values.iter().enumerate() {
            assert!(
                rest.any(|l| l == v),
                "partition {p}: message {n} is not in file order"
            );
        }
    }
    let mut all: Vec<&Vec<u8>> = got.values().flatten().collect();
    let mut want: Vec<&Vec<u8>> = expected.iter().collect();
    all.sort();
    want.sort();
    assert!(all == want, "the topic's lines differ from the file's");

    // A run into the existing topic counts what it holds: after one partition got 1,200 more
    // lines (librdkafka's partitioner, pinned by -X), the next even run fills the others first
    // and leaves the topic level again.
    let mut pinned = cfg.clone();
    pinned.reset = false;
    pinned.spread = SpreadMode::Sticky;
    pinned.limit = 1200;
    // murmur2 maps every keyless message to one partition.
    pinned
        .connection
        .kafka_property
        .push("partitioner=murmur2".into());
    produce(&pinned, &ProgressBar::hidden()).expect("produce pinned");
    let mut more = cfg.clone();
    more.reset = false;
    more.limit = 6000;
    produce(&more, &ProgressBar::hidden()).expect("produce more");
    let got = consume_by_partition(&broker, &topic);
    assert_level(&got, cfg.spread_stride, "after the pinned and the even run");
    let held: usize = got.values().map(Vec::len).sum();
    assert_eq!(held, expected.len() + 7200);
    delete_topic(&broker, &topic);
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn limit_sends_exactly_that_many_lines_via_the_cli() {
    let broker = broker();
    let Some(file) = real_log("nasa_jul95_insight_fansite_lordbadri.log") else {
        return;
    };
    let topic = unique_topic("limit");
    let out = Command::new(sawmill_tests::bin("sawmill"))
        .args([
            "produce",
            "--bootstrap-servers",
            &broker,
            "--topic",
            &topic,
            "--limit",
            "100",
        ])
        .arg("--file")
        .arg(&file)
        .env("SAWMILL_PARTITIONS", "2")
        .output()
        .expect("run sawmill");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sawmill produce failed: {stderr}");
    assert!(
        stderr.contains("does not exist; creating it"),
        "no creation notice: {stderr}"
    );
    assert!(
        stderr.contains("read 100 lines, sent 100, acknowledged 100, failed 0"),
        "{stderr}"
    );

    let values = consume_all(&broker, &topic);
    assert_eq!(values.len(), 100);
    let expected = expected_lines(&std::fs::read(&file).expect("read fixture"));
    let mut first: Vec<Vec<u8>> = expected[..100].to_vec();
    let mut got = values;
    first.sort();
    got.sort();
    assert!(
        got == first,
        "the topic does not hold the file's first 100 lines"
    );
    delete_topic(&broker, &topic);
}

#[test]
fn unreachable_broker_fails_fast_with_a_clear_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("one.log");
    std::fs::write(
        &file,
        "127.0.0.1 - - [01/Jan/2024:00:00:00 +0000] \"GET / HTTP/1.1\" 200 1\n",
    )
    .expect("write");
    let start = Instant::now();
    let out = Command::new(sawmill_tests::bin("sawmill"))
        .args([
            "produce",
            "--bootstrap-servers",
            "127.0.0.1:1",
            "--topic",
            "never",
        ])
        .arg("--file")
        .arg(&file)
        .output()
        .expect("run sawmill");
    let took = start.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "succeeded against 127.0.0.1:1");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    assert!(
        stderr.contains("cannot reach Kafka at 127.0.0.1:1"),
        "{stderr}"
    );
    assert!(stderr.contains("check --bootstrap-servers"), "{stderr}");
}

/// Splits `data` into blocks of `block` bytes, carrying partial lines the way `produce` does.
fn split_in_blocks(data: &[u8], block: usize) -> Vec<Vec<u8>> {
    let (mut out, mut buf) = (Vec::new(), Vec::new());
    let mut chunks = data.chunks(block);
    loop {
        let next = chunks.next();
        buf.extend_from_slice(next.unwrap_or_default());
        let end = if next.is_none() {
            buf.len()
        } else {
            complete_prefix(&buf)
        };
        out.extend(lines(&buf[..end]).map(<[u8]>::to_vec));
        buf.drain(..end);
        if next.is_none() {
            return out;
        }
    }
}

#[test]
fn block_boundaries_give_the_same_lines_as_one_buffer() {
    let data: &[u8] = b"a\r\nbb\rccc\n\ndd\r\n\r\reee\r\n\r\nf\rg";
    let whole: Vec<Vec<u8>> = lines(data).map(<[u8]>::to_vec).collect();
    for block in 1..=data.len() {
        assert_eq!(split_in_blocks(data, block), whole, "block size {block}");
    }
    assert_eq!(
        complete_prefix(b"abc\r"),
        0,
        "a trailing \\r may be half of \\r\\n"
    );
    assert_eq!(complete_prefix(b"x\nabc\r"), 2);
    assert_eq!(complete_prefix(b"x\r\r"), 2);
    assert_eq!(complete_prefix(b"x\r\nab"), 3);
    assert_eq!(complete_prefix(b""), 0);
}

/// Line numbers (1-based) of the 2 MB lines in [`oversized_fixture`].
const OVERSIZED_AT: [usize; 3] = [4, 11, 19];

/// 20 ordinary lines with three 2 MB lines among them (each of one repeated letter), as the
/// file's lines.
fn oversized_fixture() -> Vec<Vec<u8>> {
    (1..=20)
        .map(|n| match OVERSIZED_AT.iter().position(|&at| at == n) {
            Some(i) => vec![b'a' + i as u8; 2_000_000],
            None => format!(
                "127.0.0.1 - - [01/Jan/2024:00:00:{n:02} +0000] \"GET /{n} HTTP/1.1\" 200 1"
            )
            .into_bytes(),
        })
        .collect()
}

/// Runs `sawmill produce --oversized mode` on [`oversized_fixture`] into a new topic; returns
/// the exit code, stderr and the topic's values (sorted).
fn produce_oversized(mode: &str) -> (Option<i32>, String, Vec<Vec<u8>>) {
    let broker = broker();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("oversized.log");
    std::fs::write(&file, oversized_fixture().join(&b'\n')).expect("write");
    let topic = unique_topic(&format!("oversized-{mode}"));
    let out = Command::new(sawmill_tests::bin("sawmill"))
        .args(["produce", "--bootstrap-servers", &broker, "--topic", &topic])
        .args(["--partitions", "2", "--oversized", mode])
        .arg("--file")
        .arg(&file)
        .output()
        .expect("run sawmill");
    let mut values = consume_all(&broker, &topic);
    values.sort();
    delete_topic(&broker, &topic);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code(), stderr, values)
}

/// The fixture's ordinary lines, sorted.
fn ordinary_lines() -> Vec<Vec<u8>> {
    let mut lines: Vec<Vec<u8>> = oversized_fixture()
        .into_iter()
        .filter(|l| l.len() < 1000)
        .collect();
    lines.sort();
    lines
}

fn assert_names_the_oversized_lines(stderr: &str, done: &str) {
    let expected = format!(
        "3 lines were larger than the 999964 bytes the broker accepts and were {done}: \
         line 4 (2000000 bytes), line 11 (2000000 bytes), line 19 (2000000 bytes)"
    );
    assert!(stderr.contains(&expected), "{stderr}");
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn oversized_lines_fail_by_default_after_the_rest_is_delivered() {
    let (code, stderr, values) = produce_oversized("fail");
    assert_eq!(code, Some(3), "{stderr}");
    assert_names_the_oversized_lines(&stderr, "not sent");
    assert!(
        stderr.contains("read 20 lines, sent 17, acknowledged 17, failed 0"),
        "{stderr}"
    );
    assert!(stderr.contains("--oversized skip"), "{stderr}");
    assert_eq!(values, ordinary_lines());
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn oversized_lines_are_skipped_with_oversized_skip() {
    let (code, stderr, values) = produce_oversized("skip");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("read 20 lines, sent 17, acknowledged 17, failed 0"),
        "{stderr}"
    );
    assert_names_the_oversized_lines(&stderr, "skipped");
    assert_eq!(values, ordinary_lines());
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[test]
fn oversized_lines_are_cut_to_fit_with_oversized_truncate() {
    let (code, stderr, values) = produce_oversized("truncate");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("read 20 lines, sent 20, acknowledged 20, failed 0"),
        "{stderr}"
    );
    assert_names_the_oversized_lines(&stderr, "truncated to their first bytes and sent");
    let mut expected = ordinary_lines();
    expected.extend((0..3).map(|i| vec![b'a' + i; 999_964]));
    expected.sort();
    assert!(values == expected, "the topic's values differ");
}
