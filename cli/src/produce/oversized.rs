//! Lines too large for the broker: found before sending, handled as `--oversized` says, and
//! named in the report (line number and size).

use std::fmt::Write as _;

/// librdkafka's default producer `message.max.bytes`.
const DEFAULT_MESSAGE_MAX_BYTES: usize = 1_000_000;
/// librdkafka's worst-case framing of one record (`RD_KAFKAP_MESSAGE_V2_MAX_OVERHEAD`): it refuses
/// a message whose payload plus this exceeds `message.max.bytes`.
const RECORD_OVERHEAD: usize = 36;
/// A record batch's header (v2): the broker checks a batch, header included, against the topic's
/// `max.message.bytes`.
const BATCH_OVERHEAD: usize = 61;
/// Oversized lines named one by one in the report; the rest are only counted.
const NAMED: usize = 5;

/// What `sawmill produce` does with a line larger than the broker accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OversizedMode {
    /// Do not send it; report it and exit successfully.
    Skip,
    /// Send its first bytes, as many as fit; report it and exit successfully.
    Truncate,
    /// Do not send it; deliver the rest of the file, then report it and exit with status 3.
    Fail,
}

/// The largest payload both librdkafka and the topic accept: the producer's `message.max.bytes`
/// (`producer_max`, `None` for librdkafka's default) and the topic's `max.message.bytes` (when it
/// could be read), each less its framing.
pub fn payload_limit(producer_max: Option<&str>, topic_max: Option<usize>) -> usize {
    let producer_max = producer_max
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(DEFAULT_MESSAGE_MAX_BYTES);
    let producer = producer_max.saturating_sub(RECORD_OVERHEAD);
    let topic = topic_max.map_or(usize::MAX, |t| {
        t.saturating_sub(BATCH_OVERHEAD + RECORD_OVERHEAD)
    });
    producer.min(topic).max(1)
}

/// The oversized lines met so far.
#[derive(Debug, Clone)]
pub struct Oversized {
    pub mode: OversizedMode,
    /// The largest payload sent, in bytes.
    pub limit: usize,
    /// How many lines were larger.
    pub count: u64,
    /// The first few: line number (1-based) and size in bytes (without the line end).
    pub first: Vec<(u64, usize)>,
}

impl Oversized {
    pub fn new(mode: OversizedMode, limit: usize) -> Self {
        Oversized {
            mode,
            limit,
            count: 0,
            first: Vec::new(),
        }
    }

    /// Records line `number` (1-based) and returns what to send of it: nothing, or a prefix.
    pub fn handle<'a>(&mut self, number: u64, line: &'a [u8]) -> Option<&'a [u8]> {
        self.count += 1;
        if self.first.len() < NAMED {
            self.first.push((number, line.len()));
        }
        match self.mode {
            OversizedMode::Truncate => Some(&line[..self.limit.min(line.len())]),
            OversizedMode::Skip | OversizedMode::Fail => None,
        }
    }

    /// Lines read but deliberately not sent.
    pub fn unsent(&self) -> u64 {
        match self.mode {
            OversizedMode::Truncate => 0,
            OversizedMode::Skip | OversizedMode::Fail => self.count,
        }
    }

    /// One sentence naming the oversized lines and what was done with them; empty if none.
    pub fn describe(&self) -> String {
        if self.count == 0 {
            return String::new();
        }
        let done = match self.mode {
            OversizedMode::Skip => "skipped",
            OversizedMode::Truncate => "truncated to their first bytes and sent",
            OversizedMode::Fail => "not sent",
        };
        let mut named = String::new();
        for (i, (number, size)) in self.first.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(named, "{sep}line {number} ({size} bytes)");
        }
        if self.count > self.first.len() as u64 {
            let _ = write!(named, ", ...");
        }
        format!(
            "{} lines were larger than the {} bytes the broker accepts and were {done}: {named}",
            self.count, self.limit
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_is_the_smaller_of_producer_and_topic_less_framing() {
        assert_eq!(payload_limit(None, None), 1_000_000 - 36);
        assert_eq!(payload_limit(Some("2000000"), None), 2_000_000 - 36);
        assert_eq!(payload_limit(Some("junk"), Some(1_048_588)), 1_000_000 - 36);
        assert_eq!(
            payload_limit(Some("2000000"), Some(1_048_588)),
            1_048_588 - 97
        );
    }

    #[test]
    fn handling_follows_the_mode_and_names_the_first_few() {
        let line = [b'x'; 100];
        let mut skip = Oversized::new(OversizedMode::Skip, 10);
        for n in 1..=7 {
            assert_eq!(skip.handle(n * 2, &line), None);
        }
        assert_eq!((skip.count, skip.unsent()), (7, 7));
        let text = skip.describe();
        assert!(
            text.starts_with("7 lines were larger than the 10 bytes"),
            "{text}"
        );
        assert!(
            text.contains("skipped: line 2 (100 bytes), line 4"),
            "{text}"
        );
        assert!(text.ends_with("line 10 (100 bytes), ..."), "{text}");

        let mut truncate = Oversized::new(OversizedMode::Truncate, 10);
        assert_eq!(truncate.handle(1, &line), Some(&line[..10]));
        assert_eq!(truncate.unsent(), 0);
        assert!(Oversized::new(OversizedMode::Fail, 10)
            .describe()
            .is_empty());
    }
}
