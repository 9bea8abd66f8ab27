//! `sawmill produce`: streams a log file into a Kafka topic, one message per line — the interface
//! of the original Python producer, tuned for throughput.
//!
//! Messages have no key. By default (`--spread even`, the `spread` module) runs of about one
//! produce batch of consecutive lines go to the partition holding the fewest lines, so
//! partitions hold equal shares however short the input; `--spread sticky` leaves the choice
//! to librdkafka's partitioner instead. Either way batches stay large (few, big produce
//! requests); line order is kept only within a partition, which the cluster does not need
//! (every line carries its own timestamp).
//!
//! A line larger than the broker accepts is found before it is sent and handled as
//! `--oversized` says (see the `oversized` module).

mod oversized;
mod pipeline_state;
mod spread;
mod topic;

pub use oversized::{Oversized, OversizedMode};
use spread::Spread;
pub use spread::SpreadMode;

use crate::CliError;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext, PurgeConfig};
use rdkafka::ClientContext;
use sawmill_common::embedded::input::InputSpec;
use sawmill_core::batch::lines;
use sawmill_core::connection::ConnectionFlags;
use sawmill_core::settings::ConfigFile;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Input is read in blocks this big; the partial last line of a block is carried over.
const BLOCK: usize = 4 << 20;

/// The command line of `sawmill produce`, and the configuration of [`produce`].
#[derive(Debug, Clone, clap::Args)]
pub struct ProduceArgs {
    /// Kafka bootstrap servers, `host:port[,host:port...]`.
    #[arg(
        long,
        env = "SAWMILL_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,
    /// Topic to write to; created (with --partitions) if it does not exist.
    #[arg(long, env = "SAWMILL_TOPIC", default_value = "kafka_test")]
    pub topic: String,
    /// Log file: plain, gzip (detected by its magic bytes), or `-` for stdin.
    #[arg(long, env = "SAWMILL_FILE")]
    pub file: PathBuf,
    /// Send at most this many lines; -1 sends all of them.
    #[arg(long, env = "SAWMILL_LIMIT", default_value_t = -1, allow_negative_numbers = true)]
    pub limit: i64,
    /// Delete the topic first (waiting until it is gone), then recreate it with --partitions.
    #[arg(long, env = "SAWMILL_RESET")]
    pub reset: bool,
    /// With --reset: also delete the etcd state (offsets, epochs, manifests) of the pipeline
    /// reading the topic; without it, a reset of a topic that a pipeline has state for is
    /// refused. Stop the pipeline first.
    #[arg(long, requires = "reset")]
    pub reset_pipeline_state: bool,
    /// etcd endpoints checked by --reset for pipeline state (default http://localhost:2379,
    /// skipped with a notice if nothing answers there).
    #[arg(long, env = "SAWMILL_ETCD")]
    pub etcd: Option<String>,
    /// The pipeline (etcd subtree) reading the topic, checked by --reset (default: the topic).
    #[arg(long, env = "SAWMILL_PIPELINE")]
    pub pipeline: Option<String>,
    /// Partitions of a topic this command creates (an existing topic keeps its own).
    #[arg(long, env = "SAWMILL_PARTITIONS", default_value_t = 3)]
    pub partitions: i32,
    /// Replication factor of a topic this command creates.
    #[arg(long, env = "SAWMILL_REPLICATION_FACTOR", default_value_t = 1)]
    pub replication_factor: i32,
    /// librdkafka properties (`-X linger.ms=50` overrides a tuned default; security:
    /// `--kafka-property security.protocol=SASL_SSL --kafka-secret sasl.password=FILE`).
    #[command(flatten)]
    pub connection: ConnectionFlags,
    /// What to do with a line larger than the broker accepts (librdkafka's message.max.bytes,
    /// 1,000,000 unless set with -X, and the topic's max.message.bytes, less framing): `skip`
    /// it, `truncate` it to what fits (both exit 0), or `fail`: deliver every other line, then
    /// exit with status 3. Either way the first few such lines are named by number and size.
    #[arg(long, env = "SAWMILL_OVERSIZED", value_enum, default_value_t = OversizedMode::Fail)]
    pub oversized: OversizedMode,
    /// How lines are spread over partitions: `even` gives 8,192 consecutive lines at a time to
    /// the partition holding the fewest (equal shares, counting what the topic held, so no
    /// consumer waits on an outsized partition and added partitions fill first); `sticky` uses
    /// librdkafka's partitioner (`-X partitioner=...`; for keyless messages one random
    /// partition per batch window, which evens out only over long runs).
    #[arg(long, env = "SAWMILL_SPREAD", value_enum, default_value_t = SpreadMode::Even)]
    pub spread: SpreadMode,
    /// Lines per turn of `--spread even` (about a produce batch).
    #[arg(skip = spread::DEFAULT_STRIDE)]
    pub spread_stride: u64,
    /// Print nothing but errors.
    #[arg(long, short, env = "SAWMILL_QUIET")]
    pub quiet: bool,
    /// Bound on each metadata and topic-admin step, so an unreachable broker fails promptly.
    #[arg(skip = Duration::from_secs(10))]
    pub connect_timeout: Duration,
    /// Bound on the final flush: how long to wait for the last acknowledgements.
    #[arg(skip = Duration::from_secs(60))]
    pub flush_timeout: Duration,
}

impl ProduceArgs {
    /// The command-line defaults for this broker, topic and file.
    pub fn new(bootstrap_servers: &str, topic: &str, file: impl Into<PathBuf>) -> Self {
        ProduceArgs {
            bootstrap_servers: bootstrap_servers.to_string(),
            topic: topic.to_string(),
            file: file.into(),
            limit: -1,
            reset: false,
            reset_pipeline_state: false,
            etcd: None,
            pipeline: None,
            partitions: 3,
            replication_factor: 1,
            connection: ConnectionFlags::default(),
            oversized: OversizedMode::Fail,
            spread: SpreadMode::Even,
            spread_stride: spread::DEFAULT_STRIDE,
            quiet: false,
            connect_timeout: Duration::from_secs(10),
            flush_timeout: Duration::from_secs(60),
        }
    }
}

/// What happened to the topic before producing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicSetup {
    Existing,
    Created,
    Recreated,
}

/// Outcome of a successful [`produce`]: every line read was sent and acknowledged, except
/// oversized lines skipped by `--oversized skip`.
#[derive(Debug, Clone)]
pub struct ProduceReport {
    pub topic: TopicSetup,
    /// The topic's partition count.
    pub partitions: usize,
    /// Lines taken from the input (at most the limit).
    pub read: u64,
    /// Messages handed to librdkafka.
    pub sent: u64,
    /// Messages the broker acknowledged (acks=all).
    pub acked: u64,
    /// Payload bytes read (without line ends).
    pub bytes: u64,
    /// Lines larger than the broker accepts, and what was done with them.
    pub oversized: Oversized,
    /// From the first send to the end of the flush (topic setup excluded).
    pub elapsed: Duration,
}

impl std::fmt::Display for ProduceReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (read, sent, acked) = (self.read, self.sent, self.acked);
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        let (rate, mbps) = (acked as f64 / secs, self.bytes as f64 / 1e6 / secs);
        write!(
            f,
            "read {read} lines, sent {sent}, acknowledged {acked}, failed 0 in {secs:.2} s"
        )?;
        write!(f, " ({rate:.0} lines/s, {mbps:.1} MB/s)")?;
        if self.oversized.count > 0 {
            write!(f, "; {}", self.oversized.describe())?;
        }
        Ok(())
    }
}

pub fn execute(args: ProduceArgs) -> Result<(), CliError> {
    let bar = ProgressBar::new_spinner();
    if args.quiet {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(100));
    let result = produce(&args, &bar);
    bar.finish_and_clear();
    let r = result?;
    if !args.quiet {
        eprintln!("topic {} ({} partitions): {r}", args.topic, r.partitions);
    } else if r.oversized.count > 0 {
        // Lines left out or cut are worth a word even when asked to be quiet.
        eprintln!("warning: {}", r.oversized.describe());
    }
    Ok(())
}

/// Counts delivery reports; librdkafka calls it from [`BaseProducer::poll`] on our thread.
#[derive(Default)]
struct Deliveries {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Deliveries {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut first) = self.first_error.lock() {
            first.get_or_insert(what);
        }
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => _ = self.acked.fetch_add(1, Ordering::Relaxed),
            Err((e, _)) => self.fail(e.to_string()),
        }
    }
}

/// Sends `cfg.file` to `cfg.topic`, one message per line, and waits for every acknowledgement.
///
/// Returns an error — naming how many lines were read, sent, acknowledged and failed — if the
/// broker cannot be reached, the topic cannot be set up, any delivery failed, or the flush
/// timed out; and [`CliError::Oversized`] (after delivering every other line) if a line was
/// larger than the broker accepts under `--oversized fail`.
pub fn produce(cfg: &ProduceArgs, bar: &ProgressBar) -> Result<ProduceReport, CliError> {
    // Open the input first: a typo in --file should not delete a topic.
    let mut input = InputSpec::new(&cfg.file, 0).open()?;
    pipeline_state::check_before_reset(cfg, |msg| {
        if !cfg.quiet {
            bar.suspend(|| eprintln!("{msg}"));
        }
    })?;
    let prepared = topic::prepare_topic(cfg, bar)?;
    let mut pc = client_config(cfg)?;
    // acks=all plus idempotence: retries after a lost response cannot duplicate lines.
    pc.set("enable.idempotence", "true")
        .set("acks", "all")
        // Throughput: wait up to 25 ms to fill ~1 MB batches, lz4-compressed (cheap, ~4x on
        // logs). batch.size is capped by message.max.bytes (1 MB) in librdkafka anyway.
        .set("linger.ms", "25")
        .set("batch.size", "1000000")
        .set("batch.num.messages", "100000")
        .set("compression.type", "lz4")
        // A deep local queue keeps the reader from stalling on every broker round trip.
        .set("queue.buffering.max.messages", "2000000")
        .set("queue.buffering.max.kbytes", "1048576");
    // The user's properties win over the tuned defaults above.
    for (k, v) in kafka_properties(cfg)? {
        pc.set(k, v);
    }
    let limit_bytes =
        oversized::payload_limit(pc.get("message.max.bytes"), prepared.max_message_bytes);
    let mut oversized = Oversized::new(cfg.oversized, limit_bytes);
    let producer: BaseProducer<Deliveries> = pc
        .create_with_context(Deliveries::default())
        .map_err(|e| kafka_error(cfg, "cannot create a producer (check -X properties)", e))?;
    await_cluster_broker(&producer, cfg);
    let existing = prepared.setup == TopicSetup::Existing;
    let mut spread = Spread::for_run(producer.client(), cfg, prepared.partitions, existing);

    let limit = u64::try_from(cfg.limit).unwrap_or(u64::MAX);
    let start = Instant::now();
    let mut counts = Counts::default();
    let mut last_tick = start;
    let mut buf: Vec<u8> = Vec::with_capacity(BLOCK * 2);
    let mut done = limit == 0;
    while !done {
        let carried = buf.len();
        buf.resize(carried + BLOCK, 0);
        let n = loop {
            match input.read(&mut buf[carried..]) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        let path = cfg.file.clone();
        let n = n.map_err(|source| sawmill_common::Error::Input { path, source })?;
        buf.truncate(carried + n);
        done = n == 0;
        let end = if done {
            buf.len()
        } else {
            complete_prefix(&buf)
        };
        for line in lines(&buf[..end]) {
            if counts.read >= limit {
                done = true;
                break;
            }
            counts.read += 1;
            counts.bytes += line.len() as u64;
            let payload = if line.len() > limit_bytes {
                oversized.handle(counts.read, line)
            } else {
                Some(line)
            };
            if let Some(payload) = payload {
                let partition = spread.next();
                send(&producer, &cfg.topic, payload, partition, &mut counts);
            }
            // Delivery reports only arrive through poll: serve them now and then, cheaply.
            if counts.read % 1024 == 0 {
                producer.poll(Duration::ZERO);
                if last_tick.elapsed() >= Duration::from_millis(100) {
                    last_tick = Instant::now();
                    tick(bar, &producer, &counts, start);
                }
            }
        }
        buf.drain(..end);
    }

    let flushed = flush(&producer, cfg.flush_timeout, bar, &counts, start);
    let d = producer.context();
    let acked = d.acked.load(Ordering::Relaxed);
    let failed = d.failed.load(Ordering::Relaxed);
    let (read, sent) = (counts.read, counts.sent);
    let summary = format!("read {read} lines, sent {sent}, acknowledged {acked}, failed {failed}");
    if !flushed {
        return Err(CliError::Kafka(format!(
            "{} messages were still unacknowledged after {} s ({summary}); is the broker at {} \
             still up? Re-run with --reset to start the topic over",
            sent.saturating_sub(acked),
            cfg.flush_timeout.as_secs(),
            cfg.bootstrap_servers,
        )));
    }
    if failed > 0 || acked != sent || read != sent + oversized.unsent() {
        let first = d.first_error.lock().ok().and_then(|e| e.clone());
        return Err(CliError::Kafka(format!(
            "{} of {read} lines were not delivered ({summary}); first error: {}. Re-run with \
             --reset to start the topic over",
            read - acked.min(read),
            first.as_deref().unwrap_or("none reported"),
        )));
    }
    if cfg.oversized == OversizedMode::Fail && oversized.count > 0 {
        return Err(CliError::Oversized(format!(
            "{} ({summary}); every other line was delivered. Split or shorten those lines, raise \
             the limits (-X message.max.bytes and the topic's max.message.bytes), or re-run \
             with --oversized skip or --oversized truncate",
            oversized.describe()
        )));
    }
    let elapsed = start.elapsed();
    let bytes = counts.bytes;
    Ok(ProduceReport {
        topic: prepared.setup,
        partitions: prepared.partitions,
        read,
        sent,
        acked,
        bytes,
        oversized,
        elapsed,
    })
}

#[derive(Debug, Default)]
struct Counts {
    read: u64,
    sent: u64,
    bytes: u64,
}

/// Enqueues one line, waiting (and serving delivery reports) while the local queue is full.
fn send(
    producer: &BaseProducer<Deliveries>,
    topic: &str,
    line: &[u8],
    partition: Option<i32>,
    counts: &mut Counts,
) {
    let mut record = BaseRecord::<(), [u8]>::to(topic).payload(line);
    record.partition = partition;
    loop {
        match producer.send(record) {
            Ok(()) => return counts.sent += 1,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                record = r;
                producer.poll(Duration::from_millis(5));
            }
            // Counted as a failed delivery (e.g. a line longer than message.max.bytes).
            Err((e, _)) => {
                return producer
                    .context()
                    .fail(format!("line {}: {e}", counts.read))
            }
        }
    }
}

/// Waits up to `timeout` for every acknowledgement, updating the progress bar; false on timeout
/// (the unacknowledged messages are then purged so that dropping the producer is quick).
fn flush(
    producer: &BaseProducer<Deliveries>,
    timeout: Duration,
    bar: &ProgressBar,
    counts: &Counts,
    start: Instant,
) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        tick(bar, producer, counts, start);
        let left = deadline.saturating_duration_since(Instant::now());
        // Short slices: rdkafka's flush polls for the whole slice even once the queue is empty.
        match producer.flush(left.min(Duration::from_millis(5))) {
            Ok(()) => return true,
            Err(_) if left.is_zero() => {
                producer.purge(PurgeConfig::default().queue().inflight());
                producer.poll(Duration::ZERO);
                return false;
            }
            Err(_) => {}
        }
    }
}

/// Waits (bounded, best effort) until a broker learned from metadata, not the bootstrap
/// connection, answers. librdkafka drops the bootstrap connection right after the first metadata;
/// if the idempotent producer asks for its producer ID in that gap it retries only after a fixed
/// 500 ms, stalling every message. A metadata answer from a cluster broker retries it at once.
fn await_cluster_broker(producer: &BaseProducer<Deliveries>, cfg: &ProduceArgs) {
    let start = Instant::now();
    while start.elapsed() < cfg.connect_timeout {
        match producer.client().fetch_metadata(None, cfg.connect_timeout) {
            Ok(md) if md.orig_broker_id() >= 0 => return,
            _ => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn tick(bar: &ProgressBar, producer: &BaseProducer<Deliveries>, counts: &Counts, start: Instant) {
    let acked = producer.context().acked.load(Ordering::Relaxed);
    let rate = acked as f64 / start.elapsed().as_secs_f64().max(1e-3);
    bar.set_message(format!(
        "{} lines read, {acked} acked, {rate:.0} lines/s",
        counts.read
    ));
}

/// Length of the prefix of `buf` that ends with a complete line (0 if none); the rest is
/// carried into the next block. Splitting there gives exactly the lines `lines(buf)` would,
/// including a `\r\n` cut across blocks: a trailing `\r` is held back in case `\n` follows.
pub fn complete_prefix(buf: &[u8]) -> usize {
    let search = match buf.last() {
        Some(b'\r') => &buf[..buf.len() - 1],
        _ => buf,
    };
    // The last line end found here cannot be the `\r` of a `\r\n`: that `\n` would come later.
    search
        .iter()
        .rposition(|&b| b == b'\n' || b == b'\r')
        .map_or(0, |i| i + 1)
}

/// The user's librdkafka properties (`--kafka-property`, `--kafka-secret`, the properties
/// file), secrets read from their files.
fn kafka_properties(cfg: &ProduceArgs) -> Result<Vec<(String, String)>, CliError> {
    let settings = ConfigFile::default().connection(&cfg.connection)?;
    Ok(settings.kafka_client_properties()?)
}

/// Settings shared by the admin client and the producer, with the user's properties (security).
fn client_config(cfg: &ProduceArgs) -> Result<ClientConfig, CliError> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers)
        // Never let a metadata request create the topic with the broker's defaults.
        .set("allow.auto.create.topics", "false")
        .set(
            "socket.connection.setup.timeout.ms",
            cfg.connect_timeout.as_millis().to_string(),
        );
    for (k, v) in kafka_properties(cfg)? {
        c.set(k, v);
    }
    Ok(c)
}

fn kafka_error(cfg: &ProduceArgs, what: &str, e: KafkaError) -> CliError {
    CliError::Kafka(format!("{what} at {}: {e}", cfg.bootstrap_servers))
}
