//! Which partition each line goes to.
//!
//! A consumer runs one pipeline per partition, so the largest partition sets the pace of a
//! whole burst: partitions should hold the same number of lines. librdkafka's default for
//! keyless messages (sticky partitioning: one random partition per batch window) evens out only
//! over many windows; on the generated 2,000,000 lines (a few seconds of producing) it gave
//! splits such as 49 / 27 / 24 % of three partitions, and a worker then waited on the 49 %.
//!
//! [`SpreadMode::Even`] gives a stride of consecutive lines to one partition at a time, always
//! the one holding the fewest lines, counting what the topic held before the run: whole strides
//! keep produce requests as large as sticky partitioning does (a stride is about one batch),
//! order is kept within a partition, partitions added to a topic are filled first, and once the
//! topic is level its partitions never differ by more than one stride.

/// How `sawmill produce` picks a partition for a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpreadMode {
    /// Runs of consecutive lines (about one produce batch each) to the partition holding the
    /// fewest lines: partitions get equal shares whatever the input's length.
    Even,
    /// librdkafka's own partitioner (sticky for keyless messages; `-X partitioner=...`).
    Sticky,
}

use super::ProduceArgs;
use rdkafka::client::Client;
use rdkafka::ClientContext;

/// Lines one partition gets per turn: about one produce batch (`batch.size` is 1 MB as
/// `sawmill produce` sets it, ~8,000 NASA log lines).
pub const DEFAULT_STRIDE: u64 = 8192;

/// The partition picker of [`SpreadMode::Even`]; `None` leaves the choice to librdkafka.
#[derive(Debug, Clone)]
pub struct Spread {
    /// Lines each partition holds (before the run, plus those given to it since); empty for
    /// [`SpreadMode::Sticky`].
    held: Vec<u64>,
    stride: u64,
    current: usize,
    /// Lines given to `current` in its present turn.
    turn: u64,
}

impl Spread {
    /// `held`: the lines each partition of the topic holds already (one entry per partition).
    /// The first turn goes to the partition holding the fewest, and of equals to the first from
    /// `start` on: `sawmill produce` picks `start` at random, so that small runs into a level
    /// topic do not all begin with partition 0.
    pub fn new(mode: SpreadMode, held: Vec<u64>, stride: u64, start: usize) -> Self {
        let held = match mode {
            SpreadMode::Even => held,
            SpreadMode::Sticky => Vec::new(),
        };
        let mut spread = Spread {
            current: 0,
            held,
            stride: stride.max(1),
            turn: 0,
        };
        spread.current = spread.least_from(start);
        spread
    }

    /// The spread of one run of `sawmill produce` into a topic of `partitions`: for the even
    /// spread, the lines each partition holds already (its offsets' span) are read from the
    /// broker unless the topic was just created, and the first turn of equals starts at random.
    /// A partition whose offsets cannot be read counts as empty: it then gets lines first, which
    /// is never wrong, only less even. One offsets request per partition (a 200-partition topic
    /// took ~30 ms longer to produce into than with `--spread sticky`).
    pub fn for_run<C: ClientContext>(
        client: &Client<C>,
        cfg: &ProduceArgs,
        partitions: usize,
        existing: bool,
    ) -> Self {
        let mut held = vec![0; partitions];
        if cfg.spread == SpreadMode::Even && existing {
            for (p, slot) in held.iter_mut().enumerate() {
                let Ok(partition) = i32::try_from(p) else {
                    break;
                };
                if let Ok((low, high)) =
                    client.fetch_watermarks(&cfg.topic, partition, cfg.connect_timeout)
                {
                    *slot = u64::try_from(high - low).unwrap_or(0);
                }
            }
        }
        let start = usize::try_from(rand::random::<u32>()).unwrap_or(0);
        Spread::new(cfg.spread, held, cfg.spread_stride, start)
    }

    /// The partition holding the fewest lines; of equals, the first from `from` on (cyclically).
    fn least_from(&self, from: usize) -> usize {
        let n = self.held.len();
        (0..n)
            .map(|k| (from.wrapping_add(k)) % n)
            .min_by_key(|&p| self.held[p])
            .unwrap_or(0)
    }

    /// The partition of the next line (`None`: librdkafka picks). Once a turn holds a stride,
    /// the next turn goes to the partition holding the fewest lines, of equals the first after
    /// the current one, so a level topic is filled round in order.
    pub fn next(&mut self) -> Option<i32> {
        if self.held.is_empty() {
            return None;
        }
        if self.turn >= self.stride {
            self.turn = 0;
            self.current = self.least_from(self.current.wrapping_add(1));
        }
        self.turn += 1;
        self.held[self.current] = self.held[self.current].saturating_add(1);
        i32::try_from(self.current).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn take(s: &mut Spread, n: usize) -> Vec<i32> {
        (0..n).filter_map(|_| s.next()).collect()
    }

    #[test]
    fn sticky_leaves_the_choice_to_librdkafka() {
        let mut s = Spread::new(SpreadMode::Sticky, vec![0; 3], 10, 0);
        assert_eq!(
            (0..100).map(|_| s.next()).collect::<Vec<_>>(),
            vec![None; 100]
        );
    }

    #[test]
    fn a_level_topic_gets_whole_strides_round_in_order() {
        let mut s = Spread::new(SpreadMode::Even, vec![0; 3], 2, 0);
        assert_eq!(take(&mut s, 12), vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        let mut s = Spread::new(SpreadMode::Even, vec![5; 3], 2, 7);
        assert_eq!(
            take(&mut s, 8),
            vec![1, 1, 2, 2, 0, 0, 1, 1],
            "starts at 7 mod 3"
        );
    }

    #[test]
    fn the_partitions_holding_fewest_lines_are_filled_first() {
        // Two partitions just added to a topic whose first holds 6 lines.
        let mut s = Spread::new(SpreadMode::Even, vec![6, 0, 0], 2, 0);
        assert_eq!(
            take(&mut s, 18),
            vec![1, 1, 2, 2, 1, 1, 2, 2, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]
        );
    }

    #[test]
    fn zero_partitions_or_stride_do_not_panic() {
        assert_eq!(Spread::new(SpreadMode::Even, vec![], 10, 3).next(), None);
        let mut s = Spread::new(SpreadMode::Even, vec![0; 2], 0, usize::MAX);
        assert_eq!(take(&mut s, 4), vec![1, 0, 1, 0]);
    }

    proptest! {
        /// After any number of lines into a level topic, partitions differ by at most one
        /// stride, and a partition keeps a turn until it holds a stride.
        #[test]
        fn partitions_stay_within_a_stride(
            lines in 0usize..5000,
            n in 1usize..8,
            stride in 1u64..300,
            start in 0usize..100,
        ) {
            let mut s = Spread::new(SpreadMode::Even, vec![0; n], stride, start);
            let mut held = vec![0u64; n];
            let (mut last, mut turn) = ((start % n) as i32, 0u64);
            for _ in 0..lines {
                let p = s.next().expect("even always picks");
                prop_assert!(p < n as i32);
                if p != last {
                    prop_assert_eq!(turn, stride, "a turn ended before its stride");
                    turn = 0;
                }
                last = p;
                turn += 1;
                held[p as usize] += 1;
                let (lo, hi) = (held.iter().min().copied(), held.iter().max().copied());
                prop_assert!(hi.unwrap_or(0) - lo.unwrap_or(0) <= stride, "{held:?}");
            }
        }
    }
}
