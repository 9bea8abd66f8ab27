//! Topic set-up for `sawmill produce`: create, or delete and recreate for `--reset`, wait
//! until every partition has a leader, and read the topic's message size limit.

use super::{client_config, kafka_error, ProduceArgs, TopicSetup};
use crate::CliError;
use indicatif::ProgressBar;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseProducer, Producer};
use std::sync::Mutex;
use std::time::{Duration, Instant};

type Admin = AdminClient<Recorder>;

/// Keeps librdkafka's last client error: an authentication failure reaches the application
/// only through this callback, while the request that fails says "transport failure".
#[derive(Default)]
pub(super) struct Recorder {
    last: Mutex<Option<String>>,
}

/// Whether a client error says why the broker refused us (what the user must fix).
fn telling(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    ["authentication", "sasl", "ssl", "certificate"]
        .iter()
        .any(|w| m.contains(w))
}

impl Recorder {
    fn last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|l| l.clone())
    }

    /// Keeps `message` unless a telling one is kept already ("all brokers down" follows an
    /// authentication failure and says less).
    fn record(&self, message: String) {
        if let Ok(mut last) = self.last.lock() {
            if !last.as_deref().is_some_and(telling) {
                *last = Some(message);
            }
        }
    }
}

impl rdkafka::producer::ProducerContext for Recorder {
    type DeliveryOpaque = ();
    fn delivery(&self, _: &rdkafka::message::DeliveryResult<'_>, _: Self::DeliveryOpaque) {}
}

impl ClientContext for Recorder {
    fn error(&self, error: KafkaError, reason: &str) {
        self.record(format!("{error} ({reason})"));
    }

    // librdkafka states an authentication failure in an error-level log line (`FAIL`).
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, message: &str) {
        use rdkafka::config::RDKafkaLogLevel as L;
        if matches!(level, L::Emerg | L::Alert | L::Critical | L::Error) {
            self.record(message.to_string());
        } else {
            tracing::debug!(facility = fac, "librdkafka: {message}");
        }
    }
}

/// What a fresh client is told by the broker within a few seconds: librdkafka reports an
/// authentication or TLS failure only as an event on its main queue, which the admin client
/// never serves, so a short-lived producer serves it here (failure path only).
fn diagnose(cfg: &ProduceArgs) -> Option<String> {
    let producer: BaseProducer<Recorder> = client_config(cfg)
        .ok()?
        .create_with_context(Recorder::default())
        .ok()?;
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        producer.poll(Duration::from_millis(200));
        if let Some(r) = producer.context().last().filter(|r| telling(r)) {
            return Some(r);
        }
    }
    None
}

/// Why Kafka could not be reached: the failed request, with what the client was told if it
/// says more (authentication, TLS).
fn unreachable(admin: &Admin, cfg: &ProduceArgs, e: &dyn std::fmt::Display) -> CliError {
    let said = admin
        .inner()
        .context()
        .last()
        .filter(|s| telling(s))
        .or_else(|| diagnose(cfg));
    let lower = said.as_deref().unwrap_or("").to_ascii_lowercase();
    let message = if lower.contains("authentication") || lower.contains("sasl") {
        format!(
            "cannot reach Kafka at {}: {e}; authentication failed: {} (check sasl.username, the \
             --kafka-secret sasl.password file and sasl.mechanisms)",
            cfg.bootstrap_servers,
            said.unwrap_or_default()
        )
    } else if lower.contains("ssl") || lower.contains("certificate") {
        format!(
            "cannot reach Kafka at {}: {e}; TLS failed: {} (check security.protocol and \
             ssl.ca.location)",
            cfg.bootstrap_servers,
            said.unwrap_or_default()
        )
    } else {
        format!(
            "cannot reach Kafka at {}: {e} (is the broker running? check --bootstrap-servers)",
            cfg.bootstrap_servers
        )
    };
    CliError::Kafka(message)
}

/// The topic, ready to take messages.
pub(super) struct PreparedTopic {
    pub setup: TopicSetup,
    pub partitions: usize,
    /// The topic's `max.message.bytes`, if the broker told it.
    pub max_message_bytes: Option<usize>,
}

/// Makes sure the topic exists (deleting and recreating it for --reset) and that every partition
/// has a leader; returns what was done, the partition count and the topic's size limit.
pub(super) fn prepare_topic(
    cfg: &ProduceArgs,
    bar: &ProgressBar,
) -> Result<PreparedTopic, CliError> {
    let admin: Admin = client_config(cfg)?
        .create_with_context(Recorder::default())
        .map_err(|e| kafka_error(cfg, "cannot create a Kafka client", e))?;
    let result = setup_topic(&admin, cfg, bar).map(|(setup, partitions)| PreparedTopic {
        setup,
        partitions,
        max_message_bytes: max_message_bytes(&admin, cfg),
    });
    // Dropping an admin client joins its polling thread, which wakes only every 100 ms.
    std::thread::spawn(move || drop(admin));
    result
}

fn setup_topic(
    admin: &Admin,
    cfg: &ProduceArgs,
    bar: &ProgressBar,
) -> Result<(TopicSetup, usize), CliError> {
    let existing = topic_state(admin, cfg).map_err(|e| unreachable(admin, cfg, &e))?;
    let notice = |msg: String| {
        if !cfg.quiet {
            bar.suspend(|| eprintln!("{msg}"));
        }
    };
    let setup = match existing {
        Some((n, _)) if !cfg.reset => return Ok((TopicSetup::Existing, n)),
        Some(_) => {
            notice(format!("deleting topic {}", cfg.topic));
            let opts = admin_options(cfg);
            let results = futures::executor::block_on(admin.delete_topics(&[&cfg.topic], &opts))
                .map_err(|e| kafka_error(cfg, "cannot delete the topic", e))?;
            match results.into_iter().find_map(Result::err) {
                None | Some((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Some((t, code)) => {
                    return Err(CliError::Kafka(format!(
                        "cannot delete topic {t}: {code} (does the broker set delete.topic.enable?)"
                    )))
                }
            }
            // Deletion is asynchronous on the broker: wait until metadata no longer lists it.
            wait_until(
                cfg,
                admin,
                "was deleted but is still listed",
                Option::is_none,
            )?;
            TopicSetup::Recreated
        }
        None if cfg.reset => TopicSetup::Recreated,
        None => {
            notice(format!("topic {} does not exist; creating it", cfg.topic));
            TopicSetup::Created
        }
    };
    notice(format!(
        "creating topic {} with {} partitions, replication factor {}",
        cfg.topic, cfg.partitions, cfg.replication_factor
    ));
    create_topic(admin, cfg)?;
    let unready = "was created but has partitions without a leader";
    let ready = wait_until(cfg, admin, unready, |s| s.is_some_and(|(_, ready)| ready))?;
    Ok((setup, ready.map_or(0, |(n, _)| n)))
}

/// The topic's `max.message.bytes`, best effort: without it the producer's own limit still
/// applies, and the broker's answer names any line it refuses.
fn max_message_bytes(admin: &Admin, cfg: &ProduceArgs) -> Option<usize> {
    let topic = [ResourceSpecifier::Topic(&cfg.topic)];
    let described =
        futures::executor::block_on(admin.describe_configs(&topic, &admin_options(cfg)));
    let value = match described {
        Ok(mut results) => match results.pop() {
            Some(Ok(resource)) => resource
                .get("max.message.bytes")
                .and_then(|entry| entry.value.as_deref()?.parse().ok()),
            _ => None,
        },
        Err(_) => None,
    };
    if value.is_none() {
        tracing::warn!(topic = %cfg.topic, "cannot read the topic's max.message.bytes; using the producer's limit");
    }
    value
}

/// The topic's partition count and whether every partition has a leader, or `None` if the
/// cluster does not have it. Lists all topics: asking for one by name could auto-create it.
fn topic_state(admin: &Admin, cfg: &ProduceArgs) -> Result<Option<(usize, bool)>, KafkaError> {
    let md = admin.inner().fetch_metadata(None, cfg.connect_timeout)?;
    let topic = md
        .topics()
        .iter()
        .find(|t| t.name() == cfg.topic && t.error().is_none());
    Ok(topic.map(|t| {
        let parts = t.partitions();
        let ready =
            !parts.is_empty() && parts.iter().all(|p| p.leader() >= 0 && p.error().is_none());
        (parts.len(), ready)
    }))
}

/// Polls [`topic_state`] until `done` holds, for at most three connect timeouts.
fn wait_until(
    cfg: &ProduceArgs,
    admin: &Admin,
    otherwise: &str,
    done: impl Fn(&Option<(usize, bool)>) -> bool,
) -> Result<Option<(usize, bool)>, CliError> {
    let deadline = Instant::now() + cfg.connect_timeout * 3;
    loop {
        let state =
            topic_state(admin, cfg).map_err(|e| kafka_error(cfg, "cannot read metadata", e))?;
        if done(&state) {
            return Ok(state);
        }
        if Instant::now() >= deadline {
            let secs = (cfg.connect_timeout * 3).as_secs();
            return Err(CliError::Kafka(format!(
                "topic {} {otherwise} after {secs} s; check the broker's health and try again",
                cfg.topic
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn admin_options(cfg: &ProduceArgs) -> AdminOptions {
    AdminOptions::new()
        .request_timeout(Some(cfg.connect_timeout))
        .operation_timeout(Some(cfg.connect_timeout))
}

/// Creates the topic, retrying while a just-deleted one is still being removed.
fn create_topic(admin: &Admin, cfg: &ProduceArgs) -> Result<(), CliError> {
    let replication = TopicReplication::Fixed(cfg.replication_factor);
    let new = NewTopic::new(&cfg.topic, cfg.partitions, replication);
    let deadline = Instant::now() + cfg.connect_timeout * 3;
    loop {
        let results = futures::executor::block_on(admin.create_topics([&new], &admin_options(cfg)))
            .map_err(|e| kafka_error(cfg, "cannot create the topic", e))?;
        match results.into_iter().find_map(Result::err) {
            None => return Ok(()),
            // A topic created concurrently by someone else is fine, unless we are resetting.
            Some((_, RDKafkaErrorCode::TopicAlreadyExists)) if !cfg.reset => return Ok(()),
            Some((_, RDKafkaErrorCode::TopicAlreadyExists)) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(200))
            }
            Some((t, code)) => {
                return Err(CliError::Kafka(format!(
                    "cannot create topic {t} with {} partitions and replication factor {}: {code} \
                     (check --partitions and --replication-factor against the cluster)",
                    cfg.partitions, cfg.replication_factor
                )))
            }
        }
    }
}
