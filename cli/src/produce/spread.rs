//! Which partition each line goes to.
//!
//! A consumer runs one pipeline per partition, so the largest partition sets the pace of a
//! whole burst: partitions should hold the same number of bytes. librdkafka's default for
//! keyless messages (sticky partitioning: one random partition per batch window) evens out only
//! over many windows; on the generated 2,000,000 lines (a few seconds of producing) it gave
//! splits such as 49 / 27 / 24 % of three partitions, and a worker then waited on the 49 %.
//!
//! [`Spread::Even`] gives every partition a stride of consecutive lines in turn: whole strides
//! keep produce requests as large as sticky partitioning does (the stride is a batch), order
//! is kept within a partition, and at any point of the input the partitions' byte counts
//! differ by at most one stride plus one line.

/// How `sawmill produce` picks a partition for a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpreadMode {
    /// Runs of consecutive lines (about one produce batch, 1 MB, each) per partition in
    /// turn: partitions get equal shares whatever the input's length.
    Even,
    /// librdkafka's own partitioner (sticky for keyless messages; `-X partitioner=...`).
    Sticky,
}

/// Bytes of consecutive lines one partition gets before the next: librdkafka's `batch.size`
/// as `sawmill produce` sets it, so a stride fills one produce batch.
pub const DEFAULT_STRIDE: u64 = 1_000_000;

/// The partition picker of [`SpreadMode::Even`]; `None` leaves the choice to librdkafka.
#[derive(Debug, Clone)]
pub struct Spread {
    /// Bytes given to each partition so far; empty for [`SpreadMode::Sticky`].
    totals: Vec<u64>,
    stride: u64,
    current: usize,
    /// Bytes given to `current` in its present turn.
    turn: u64,
}

impl Spread {
    pub fn new(mode: SpreadMode, partitions: usize, stride: u64) -> Self {
        let totals = match mode {
            SpreadMode::Even => vec![0; partitions],
            SpreadMode::Sticky => Vec::new(),
        };
        Spread {
            totals,
            stride: stride.max(1),
            current: 0,
            turn: 0,
        }
    }

    /// The partition of the next line of `len` bytes (`None`: librdkafka picks). A line goes
    /// whole to one partition. Once a turn holds a stride, the turn passes to the partition
    /// with the fewest bytes (the lowest-numbered of equals): lines of unequal length then do
    /// not pile up on one partition over many turns, so partitions never differ by more than
    /// one stride plus the longest line.
    pub fn next(&mut self, len: usize) -> Option<i32> {
        if self.totals.is_empty() {
            return None;
        }
        if self.turn >= self.stride {
            self.turn = 0;
            self.current = (0..self.totals.len())
                .min_by_key(|&p| self.totals[p])
                .unwrap_or(0);
        }
        let len = len as u64;
        self.turn = self.turn.saturating_add(len);
        self.totals[self.current] = self.totals[self.current].saturating_add(len);
        i32::try_from(self.current).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sticky_leaves_the_choice_to_librdkafka() {
        let mut s = Spread::new(SpreadMode::Sticky, 3, 10);
        assert_eq!(
            (0..100).map(|_| s.next(7)).collect::<Vec<_>>(),
            vec![None; 100]
        );
    }

    #[test]
    fn even_gives_whole_strides_in_turn() {
        let mut s = Spread::new(SpreadMode::Even, 3, 10);
        let got: Vec<_> = (0..12).filter_map(|_| s.next(5)).collect();
        assert_eq!(got, vec![0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2]);
        // A line longer than the stride fills it alone.
        let mut s = Spread::new(SpreadMode::Even, 2, 10);
        let got: Vec<_> = [3, 50, 4, 4, 4].iter().filter_map(|&l| s.next(l)).collect();
        assert_eq!(got, vec![0, 0, 1, 1, 1]);
    }

    #[test]
    fn zero_partitions_or_stride_do_not_panic() {
        assert_eq!(Spread::new(SpreadMode::Even, 0, 10).next(5), None);
        let mut s = Spread::new(SpreadMode::Even, 2, 0);
        assert_eq!(
            (0..4).filter_map(|_| s.next(1)).collect::<Vec<_>>(),
            vec![0, 1, 0, 1]
        );
    }

    proptest! {
        /// After any prefix of any input, partitions' byte counts differ by at most one
        /// stride plus the longest line, and a partition keeps a turn until it holds a stride.
        #[test]
        fn partitions_stay_within_a_stride(
            lens in proptest::collection::vec(0usize..300, 0..2000),
            n in 1usize..8,
            stride in 1u64..2000,
        ) {
            let mut s = Spread::new(SpreadMode::Even, n, stride);
            let mut bytes = vec![0u64; n];
            let longest = lens.iter().copied().max().unwrap_or(0) as u64;
            let (mut last, mut turn) = (0i32, 0u64);
            for &len in &lens {
                let p = s.next(len).expect("even always picks");
                prop_assert!(p < n as i32);
                if p != last {
                    prop_assert!(turn >= stride, "a turn ended before its stride: {turn}");
                    turn = 0;
                }
                last = p;
                turn += len as u64;
                bytes[p as usize] += len as u64;
                let (lo, hi) = (bytes.iter().min().copied(), bytes.iter().max().copied());
                let spread = hi.unwrap_or(0) - lo.unwrap_or(0);
                prop_assert!(spread <= stride + longest, "{bytes:?} stride {stride}");
            }
        }
    }
}
