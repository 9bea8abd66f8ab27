//! The worker's consumer thread against a real Kafka broker: credits hold back one partition
//! without stalling the others and without losing or repeating a line when they come back;
//! a restarted partition is read again from the offset it is given; rapid revokes and
//! re-assignments neither abort librdkafka nor lose the partition.

// Test helpers panic on failure: that is how the test using them fails.
#![allow(clippy::unwrap_used)]

use ractor::{Actor, ActorProcessingErr, ActorRef};
use sawmill_tests::*;
use sawmill_worker::consumer::{self, ConsumerHandle};
use sawmill_worker::messages::{Credit, MessageBatch, PartitionMsg, PartitionSink, CREDITS};
use sawmill_worker::metrics::Metrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};

/// Stands in for a partition actor: forwards every batch, with its credit, to the test. With a
/// gate, its `pre_start` first hands out its own address and then waits for the go-ahead (as a
/// real one waits for recovery), so batches can arrive while it is still starting.
struct Sink;

type Delivery = (MessageBatch, Credit);

struct SinkArgs {
    tx: mpsc::UnboundedSender<Delivery>,
    gate: Option<(
        tokio::sync::oneshot::Sender<ActorRef<PartitionMsg>>,
        tokio::sync::oneshot::Receiver<()>,
    )>,
}

impl Actor for Sink {
    type Msg = PartitionMsg;
    type State = mpsc::UnboundedSender<Delivery>;
    type Arguments = SinkArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<PartitionMsg>,
        args: SinkArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        if let Some((me, go)) = args.gate {
            let _ = me.send(myself);
            let _ = go.await;
        }
        Ok(args.tx)
    }

    async fn handle(
        &self,
        _myself: ActorRef<PartitionMsg>,
        msg: PartitionMsg,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let PartitionMsg::Batch(batch, credit) = msg {
            let _ = tx.send((batch, credit));
        }
        Ok(())
    }
}

async fn sink() -> (PartitionSink, mpsc::UnboundedReceiver<Delivery>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let (actor, _) = Actor::spawn(None, Sink, SinkArgs { tx, gate: None })
        .await
        .expect("spawn sink");
    let sink = PartitionSink::new(actor, Arc::new(Semaphore::new(CREDITS)));
    (sink, rx)
}

/// A fresh topic with `per_partition` lines in each of `partitions` partitions.
fn topic_with(
    s: &Services,
    prefix: &str,
    per_partition: i64,
    partitions: i32,
) -> (String, BTreeMap<i32, i64>) {
    use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
    let topic = unique(prefix);
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.log");
    std::fs::write(&empty, "").unwrap();
    // `sawmill produce --reset` creates the topic; the lines go to chosen partitions here.
    produce(s, &topic, &empty, partitions as u32, true);
    let producer: BaseProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &s.kafka)
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for p in 0..partitions {
        for i in 0..per_partition {
            let line = format!("partition {p} line {i}");
            let mut record = BaseRecord::<(), _>::to(&topic).partition(p).payload(&line);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        producer.poll(Duration::from_millis(10));
                        record = r;
                    }
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let ends = end_offsets(s, &topic);
    assert_eq!(ends, (0..partitions).map(|p| (p, per_partition)).collect());
    (topic, ends)
}

/// Receives batches (freeing each credit at once) until `until` offsets have arrived; returns
/// the offsets in arrival order.
async fn collect(rx: &mut mpsc::UnboundedReceiver<Delivery>, first: i64, until: i64) -> Vec<i64> {
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.last().is_none_or(|&l| l + 1 < until) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (batch, credit) = tokio::time::timeout(left, rx.recv())
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "only {} of {} offsets arrived in 60 s",
                    got.len(),
                    until - first
                )
            })
            .expect("sink closed");
        drop(credit);
        got.extend(batch.iter().map(|(o, _)| o));
    }
    got
}

/// Waits (at most 30 s) until every credit is taken.
async fn all_taken(credits: &Semaphore) {
    let t0 = Instant::now();
    while credits.available_permits() > 0 && t0.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_contiguous(got: &[i64], first: i64, end: i64) {
    let want: Vec<i64> = (first..end).collect();
    assert_eq!(got.len(), want.len(), "offsets {first}..{end}: wrong count");
    assert!(
        got == want,
        "offsets {first}..{end}: not each once in order"
    );
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partition_out_of_credits_holds_back_only_itself() {
    let s = services();
    let (topic, ends) = topic_with(&s, "it-credits", 30_000, 2);
    let c: ConsumerHandle =
        consumer::spawn(&s.kafka, &topic, &unique("g"), Metrics::default().health()).unwrap();
    let (free, mut free_rx) = sink().await;
    let (held, mut held_rx) = sink().await;
    c.assign(0, 0, free).unwrap();
    c.assign(1, 0, held.clone()).unwrap();

    // Partition 1's credits are never given back while partition 0 is read to its end.
    let got0 = collect(&mut free_rx, 0, ends[&0]).await;
    assert_contiguous(&got0, 0, ends[&0]);
    all_taken(&held.credits).await;
    // Time for a (wrong) extra batch to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut kept = Vec::new();
    while let Ok(d) = held_rx.try_recv() {
        kept.push(d);
    }
    assert_eq!(
        kept.len(),
        CREDITS,
        "a partition without credits got more batches than credits"
    );
    assert_eq!(held.credits.available_permits(), 0);
    let mut got1: Vec<i64> = kept
        .iter()
        .flat_map(|(b, _)| b.iter().map(|(o, _)| o))
        .collect();
    assert!(
        (got1.len() as i64) < ends[&1],
        "partition 1 should still be held back"
    );

    // Credits back: the rest arrives, nothing lost or repeated across the hold.
    let resume_at = got1.last().map_or(0, |l| l + 1);
    drop(kept);
    got1.extend(collect(&mut held_rx, resume_at, ends[&1]).await);
    assert_contiguous(&got1, 0, ends[&1]);
    c.stop();
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reassignments_seek_and_rapid_revokes_are_safe() {
    let s = services();
    let (topic, ends) = topic_with(&s, "it-reassign", 10_000, 2);
    let c = consumer::spawn(&s.kafka, &topic, &unique("g"), Metrics::default().health()).unwrap();

    // Read partition 0 to its end, then "restart" it at an earlier offset with a new actor.
    let (a, mut a_rx) = sink().await;
    c.assign(0, 0, a.clone()).unwrap();
    assert_contiguous(&collect(&mut a_rx, 0, ends[&0]).await, 0, ends[&0]);
    let (b, mut b_rx) = sink().await;
    c.assign(0, 100, b.clone()).unwrap();
    assert_contiguous(&collect(&mut b_rx, 100, ends[&0]).await, 100, ends[&0]);

    // A late revoke from the replaced actor must not stop the new one.
    c.revoke(0, a.actor.get_id());

    // Quick successive revokes and assignments (librdkafka 2.12 aborted on a full re-assign
    // before earlier stops completed), ending with partition 1 owned from offset 0.
    let mut last = None;
    for round in 0..20 {
        let (x, rx) = sink().await;
        c.assign(1, (round * 7) % ends[&1], x.clone()).unwrap();
        if round % 3 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        c.revoke(1, x.actor.get_id());
        c.revoke(0, b.actor.get_id());
        c.assign(0, 100, b.clone()).unwrap();
        drop(rx);
        last = Some(x);
    }
    assert!(last.is_some());
    let (z, mut z_rx) = sink().await;
    c.assign(1, 0, z).unwrap();
    assert_contiguous(&collect(&mut z_rx, 0, ends[&1]).await, 0, ends[&1]);
    // Partition 0 was re-assigned at 100 with the same sink: it is read from there again.
    let again = collect(&mut b_rx, 100, ends[&0]).await;
    assert_eq!(again.last(), Some(&(ends[&0] - 1)));
    assert!(again.first().is_some_and(|&f| f >= 100));
    c.stop();
}

#[cfg_attr(
    not(feature = "services"),
    ignore = "needs Kafka, HDFS and etcd: scripts/test.sh"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_actor_still_starting_keeps_its_partition() {
    let s = services();
    let (topic, ends) = topic_with(&s, "it-starting", 30_000, 1);
    let c = consumer::spawn(&s.kafka, &topic, &unique("g"), Metrics::default().health()).unwrap();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (me_tx, me_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    let args = SinkArgs {
        tx,
        gate: Some((me_tx, go_rx)),
    };
    let spawned = tokio::spawn(Actor::spawn(None, Sink, args));
    let actor = me_rx.await.unwrap();
    let credits = Arc::new(Semaphore::new(CREDITS));
    c.assign(0, 0, PartitionSink::new(actor, credits.clone()))
        .unwrap();
    // Every credit taken while the actor is still in `pre_start`: more lines are waiting, and
    // the consumer must not take the busy actor for a dead one.
    all_taken(&credits).await;
    assert_eq!(
        credits.available_permits(),
        0,
        "the starting actor got no batches"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    go_tx.send(()).unwrap();
    let _running = spawned.await.unwrap().unwrap();
    assert_contiguous(&collect(&mut rx, 0, ends[&0]).await, 0, ends[&0]);
    c.stop();
}
