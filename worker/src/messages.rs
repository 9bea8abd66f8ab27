//! Everything that travels between the worker's parts: batches and credits from the consumer
//! thread to a partition actor, the partition actor's messages, the supervisor's messages, and
//! the events the supervisor hands to its driver (the session or the standalone runner).
//!
//! Kept apart so that `consumer`, `partition` and `supervisor` depend on this module and never
//! on each other.

use ractor::{ActorRef, RpcReplyPort};
use sawmill_core::manifest::ShardManifest;
use std::collections::BTreeMap;
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Batches in flight per partition (the credits).
pub const CREDITS: usize = 4;

/// Messages per batch handed to a partition actor...
pub const BATCH_MESSAGES: usize = 4096;
/// ...or bytes: 4,096 messages of 1 MiB each would hold 4 GiB in one batch and one mailbox.
pub const BATCH_BYTES: usize = 4 << 20;

/// Consecutive messages of one partition, copied into one buffer.
#[derive(Debug, Default)]
pub struct MessageBatch {
    pub partition: i32,
    pub offsets: Vec<i64>,
    /// Where each message ends in `data`. `usize`, not `u32`: a batch past 4 GiB (possible
    /// only from the main queue, see `consumer`) must not wrap around.
    ends: Vec<usize>,
    data: Vec<u8>,
}

impl MessageBatch {
    pub(crate) fn new(partition: i32) -> Self {
        MessageBatch {
            partition,
            ..Default::default()
        }
    }

    /// Empties the batch for another partition's or the same partition's lines, keeping its
    /// buffers.
    fn reset(&mut self, partition: i32) {
        self.partition = partition;
        self.offsets.clear();
        self.ends.clear();
        self.data.clear();
    }

    pub fn push(&mut self, offset: i64, payload: &[u8]) {
        self.offsets.push(offset);
        self.data.extend_from_slice(payload);
        self.ends.push(self.data.len());
    }

    /// Full by messages or by bytes: hand it over before taking more.
    pub fn is_full(&self) -> bool {
        self.len() >= BATCH_MESSAGES || self.bytes() >= BATCH_BYTES
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// `(offset, line)` pairs in offset order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &[u8])> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        self.offsets
            .iter()
            .zip(starts.zip(self.ends.iter().copied()))
            .map(|(&offset, (start, end))| (offset, &self.data[start..end]))
    }
}

/// Wakes the consumer thread (coalesced: one pending wake-up is enough).
#[derive(Clone)]
pub(crate) struct Waker(pub(crate) mpsc::SyncSender<()>);

impl Waker {
    pub(crate) fn wake(&self) {
        let _ = self.0.try_send(());
    }
}

/// Emptied batches of one partition, handed back by its actor for the consumer thread to fill
/// again: a fresh batch grew its buffers by doubling (copying what it held each time) and
/// faulted in new pages for every 4,096 lines. Holds at most [`CREDITS`] batches, each of at
/// most `POOL_KEEP_BYTES` of line data, so a partition keeps at most 4 × 8 MiB beyond what is
/// in flight (in practice 4 × ~0.5 MiB: a batch of 4,096 lines of ~110 bytes).
#[derive(Default)]
pub struct BatchPool(Mutex<Vec<MessageBatch>>);

/// A recycled batch whose line buffer grew past this (a message larger than the batch bound)
/// is dropped rather than kept.
const POOL_KEEP_BYTES: usize = 2 * BATCH_BYTES;

impl BatchPool {
    /// An empty batch for `partition`, recycled when one is free.
    pub(crate) fn take(&self, partition: i32) -> MessageBatch {
        let recycled = self.0.lock().ok().and_then(|mut free| free.pop());
        match recycled {
            Some(mut batch) => {
                batch.reset(partition);
                batch
            }
            None => MessageBatch::new(partition),
        }
    }

    fn give(&self, batch: MessageBatch) {
        if batch.data.capacity() > POOL_KEEP_BYTES {
            return;
        }
        if let Ok(mut free) = self.0.lock() {
            if free.len() < CREDITS {
                free.push(batch);
            }
        }
    }
}

/// A partition's credit for one batch; dropping it frees the credit and wakes the consumer.
pub struct Credit {
    permit: Option<OwnedSemaphorePermit>,
    wake: Waker,
    pool: Arc<BatchPool>,
}

impl Credit {
    pub(crate) fn new(permit: OwnedSemaphorePermit, wake: Waker, pool: Arc<BatchPool>) -> Self {
        Credit {
            permit: Some(permit),
            wake,
            pool,
        }
    }

    /// Frees the credit and hands the parsed batch's buffers back to the consumer thread
    /// (before the wake-up, so the batch it fills next can be this one).
    pub fn recycle(self, batch: MessageBatch) {
        self.pool.give(batch);
    }
}

impl Drop for Credit {
    fn drop(&mut self) {
        // Free first, then wake: the other order could let the thread look, find nothing
        // free and sleep through the release.
        drop(self.permit.take());
        self.wake.wake();
    }
}

/// Where the consumer thread sends a partition's batches.
#[derive(Clone)]
pub struct PartitionSink {
    pub actor: ActorRef<PartitionMsg>,
    pub credits: Arc<Semaphore>,
    /// Batches the actor has parsed, emptied for reuse.
    pub pool: Arc<BatchPool>,
}

impl PartitionSink {
    pub fn new(actor: ActorRef<PartitionMsg>, credits: Arc<Semaphore>) -> Self {
        PartitionSink {
            actor,
            credits,
            pool: Arc::default(),
        }
    }
}

/// The partition actor's messages.
pub enum PartitionMsg {
    /// Sent by the actor to itself from `pre_start`: recover the partition, then start
    /// consuming. Its own message, so that the supervisor's spawn does not wait for it.
    Start,
    /// Lines from Kafka with the credit they hold.
    Batch(MessageBatch, Credit),
    /// Periodic: cut the shard if it is older than the age limit.
    Tick,
    /// Commit the open shard now and reply with the committed next offset (graceful release).
    Drain(RpcReplyPort<i64>),
    /// The commit with this sequence number has finished: act on its outcome (and those of
    /// the commits before it) now, not at the next cut.
    Settle(u64),
    /// The partition's end offset on the broker (`None`: it could not be read), read because
    /// the open shard might hold everything there is: if it does, cut it now (the caught-up
    /// cut, `crate::caught_up`).
    EndOffset(Option<i64>),
    /// The caught-up rule's delayed look (its read interval had not passed).
    Recheck,
}

/// The worker supervisor's messages.
pub enum SupervisorMsg {
    /// Process `partition` as its owner at `epoch` (already bumped in etcd by the caller).
    Own {
        partition: i32,
        epoch: u64,
        /// Commit the open shard as soon as it reaches this offset (exclusive), instead of
        /// waiting for the idle timeout: a run that stops when caught up knows where the end is.
        cut_at: Option<i64>,
    },
    /// Commit the open shard, stop, and reply with the committed next offset.
    Release {
        partition: i32,
        reply: RpcReplyPort<Option<i64>>,
    },
    /// Release everything (graceful shutdown).
    ReleaseAll(RpcReplyPort<BTreeMap<i32, i64>>),
    /// The partitions owned now and their epochs.
    Owned(RpcReplyPort<BTreeMap<i32, u64>>),
    /// From a partition actor: a shard is committed.
    Committed {
        partition: i32,
        manifest: Box<ShardManifest>,
    },
    /// From a partition actor: fenced by a newer epoch.
    Lost { partition: i32, epoch: u64 },
    /// From the supervisor's own timer: start a failed partition again.
    Restart { partition: i32, epoch: u64 },
    /// From a drain task: `partition` at `epoch` is released; reply to the `Release`.
    Drained {
        partition: i32,
        epoch: u64,
        next: Option<i64>,
        reply: RpcReplyPort<Option<i64>>,
    },
    /// From a drain task: every partition of a `ReleaseAll` is released; reply to it.
    DrainedAll {
        drained: Vec<(i32, u64)>,
        next: BTreeMap<i32, i64>,
        reply: RpcReplyPort<BTreeMap<i32, i64>>,
    },
}

/// Why a partition actor failed while starting (recovery, or reading where to resume), as
/// opposed to later; the supervisor counts the two apart and restarts either with backoff.
#[derive(Debug, thiserror::Error)]
#[error("partition {partition} failed to start: {reason}")]
pub struct StartFailed {
    pub partition: i32,
    pub reason: String,
}

/// What the worker tells the outside world (the coordinator session, or the standalone runner).
#[derive(Debug, Clone)]
pub enum WorkerEvent {
    Committed(Box<ShardManifest>),
    /// Fenced: the partition belongs to a newer epoch now.
    Lost {
        partition: i32,
        epoch: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_iterates_lines_with_offsets() {
        let mut batch = MessageBatch::new(2);
        batch.push(10, b"a");
        batch.push(12, b"");
        batch.push(13, b"ccc");
        let got: Vec<(i64, &[u8])> = batch.iter().collect();
        assert_eq!(
            got,
            vec![(10, &b"a"[..]), (12, &b""[..]), (13, &b"ccc"[..])]
        );
        assert_eq!((batch.len(), batch.bytes()), (3, 4));
    }

    #[test]
    fn a_batch_is_full_by_messages_or_by_bytes() {
        let mut batch = MessageBatch::new(0);
        let mib = vec![b'x'; 1 << 20];
        for i in 0..3 {
            batch.push(i, &mib);
            assert!(!batch.is_full(), "{} MiB", i + 1);
        }
        batch.push(3, &mib);
        assert!(batch.is_full(), "4 MiB in 4 messages");
        let ends: Vec<usize> = batch.iter().map(|(_, line)| line.len()).collect();
        assert_eq!(ends, vec![1 << 20; 4]);

        let mut small = MessageBatch::new(0);
        for i in 0..BATCH_MESSAGES as i64 {
            assert!(!small.is_full());
            small.push(i, b"l");
        }
        assert!(small.is_full(), "4,096 one-byte messages");
    }

    /// A batch whose data crosses 4 GiB: with `u32` ends the last message's end wrapped to a
    /// few bytes and slicing it panicked. The first 4 GiB are zeroed pages never touched
    /// (calloc), so the test costs little memory.
    #[cfg(target_pointer_width = "64")]
    #[test]
    fn line_ends_past_4_gib_do_not_wrap() {
        let mut batch = MessageBatch::new(0);
        let before = (1usize << 32) - 3;
        batch.data = vec![0u8; before];
        batch.offsets.push(0);
        batch.ends.push(before);
        batch.push(1, b"abcdef");
        let (offset, line) = batch.iter().last().expect("two messages");
        assert_eq!((offset, line), (1, &b"abcdef"[..]));
        assert_eq!(batch.bytes(), (1 << 32) + 3);
    }

    #[test]
    fn a_recycled_batch_comes_back_empty_with_its_buffers() {
        let pool = Arc::new(BatchPool::default());
        let semaphore = Arc::new(Semaphore::new(CREDITS + 1));
        let (tx, _rx) = mpsc::sync_channel(1);
        let mut batch = pool.take(1);
        batch.push(7, b"a line");
        let capacity = batch.data.capacity();
        let permit = semaphore
            .clone()
            .try_acquire_owned()
            .expect("a free permit");
        Credit::new(permit, Waker(tx.clone()), pool.clone()).recycle(batch);
        assert_eq!(semaphore.available_permits(), CREDITS + 1, "credit freed");
        let again = pool.take(2);
        assert_eq!((again.partition, again.len(), again.bytes()), (2, 0, 0));
        assert_eq!(again.iter().count(), 0);
        assert_eq!(again.data.capacity(), capacity, "buffers kept");
        // Bounded: never more than CREDITS batches, and no oversized buffer.
        for _ in 0..CREDITS + 1 {
            let permit = semaphore
                .clone()
                .try_acquire_owned()
                .expect("a free permit");
            Credit::new(permit, Waker(tx.clone()), pool.clone()).recycle(MessageBatch::new(0));
        }
        assert_eq!(pool.0.lock().expect("pool").len(), CREDITS);
        let mut big = MessageBatch::new(0);
        big.data.reserve(POOL_KEEP_BYTES + 1);
        pool.0.lock().expect("pool").clear();
        pool.give(big);
        assert!(pool.0.lock().expect("pool").is_empty());
    }

    #[test]
    fn dropping_a_credit_frees_it_before_waking() {
        let semaphore = Arc::new(Semaphore::new(1));
        let (tx, rx) = mpsc::sync_channel(1);
        let permit = semaphore
            .clone()
            .try_acquire_owned()
            .expect("a free permit");
        let credit = Credit::new(permit, Waker(tx), Arc::default());
        assert_eq!(semaphore.available_permits(), 0);
        let watcher = {
            let semaphore = semaphore.clone();
            std::thread::spawn(move || {
                rx.recv().expect("a wake-up");
                semaphore.available_permits()
            })
        };
        drop(credit);
        assert_eq!(watcher.join().expect("watcher"), 1);
    }
}
