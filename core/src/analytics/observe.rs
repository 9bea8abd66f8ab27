//! The hot path: folding parsed records and rejected lines into a [`Partial`].
//!
//! Looking a host or endpoint up in the interners is most of the aggregation's cost, and nearly
//! all of it is waiting for memory: a lookup in tables of tens of thousands of keys misses the
//! cache two or three times (control bytes, the entry, the key). [`Partial::observe_batch`]
//! therefore makes the lookups of a batch of records in loops of their own, before the counting:
//! the lookups are independent of each other, so the processor overlaps their misses instead of
//! waiting for each behind its line's other work. It is the same fold as [`Partial::observe`] on
//! each record in order (the same ids, the same state), only faster.

use super::intern::bounded;
use super::partial::{add, Day, Partial, Row404, NONE};
use super::{MAX_KEY_BYTES, MAX_REJECT_EXAMPLE_BYTES};
use crate::record::{LogRecord, Position, RejectReason};

impl Partial {
    /// Index of `date` in `days`, adding the day if new.
    #[inline]
    pub(super) fn day_slot(&mut self, date: i32) -> u32 {
        if let Some(day) = self.days.get(self.last_day as usize) {
            if day.date == date {
                return self.last_day;
            }
        }
        let days = &mut self.days;
        let slot = *self.day_index.entry(date).or_insert_with(|| {
            days.push(Day::new(date));
            (days.len() - 1) as u32
        });
        self.last_day = slot;
        slot
    }

    #[inline]
    fn host_id(&mut self, host: &[u8]) -> u32 {
        let host = bounded(host, MAX_KEY_BYTES);
        if self.last_host != NONE && self.hosts.key(self.last_host) == &*host {
            return self.last_host;
        }
        let id = self.hosts.intern(&host);
        self.last_host = id;
        id
    }

    #[inline]
    fn endpoint_id(&mut self, endpoint: Option<&[u8]>) -> u32 {
        match endpoint {
            Some(e) => self.endpoints.intern(&bounded(e, MAX_KEY_BYTES)),
            None => NONE,
        }
    }

    #[inline]
    pub(super) fn add_status(&mut self, status: u16, n: u64) {
        match self.status.get_mut(usize::from(status)) {
            Some(c) => add(c, n),
            None => add(self.status_other.entry(status).or_default(), n),
        }
    }

    /// Folds one parsed record in. Allocates only for keys (hosts, endpoints, dates) not seen
    /// before and for 404 rows. Hosts and endpoints longer than [`MAX_KEY_BYTES`] are counted
    /// under their [`bounded`] prefix.
    #[inline]
    pub fn observe(&mut self, rec: &LogRecord<'_>, pos: Position) {
        let host = self.host_id(rec.host);
        let endpoint = self.endpoint_id(rec.endpoint);
        self.fold(rec, pos, host, endpoint);
    }

    /// Folds `records` in, in order: the same as [`Partial::observe`] on each (see the module
    /// docs for why it is faster). Batches of a few dozen to a few hundred records suit it: the
    /// entries a batch touches should still be in the cache when it is counted.
    pub fn observe_batch(&mut self, records: &[(LogRecord<'_>, Position)]) {
        let mut ids = Vec::with_capacity(records.len());
        // Hosts come in runs (a client fetches a page and its images): the previous record's
        // host is compared first, as `host_id`'s cache does.
        let mut prev: Option<(&[u8], u32)> = None;
        for (rec, _) in records {
            let id = match prev {
                Some((host, id)) if host == rec.host => id,
                _ => self.hosts.intern(&bounded(rec.host, MAX_KEY_BYTES)),
            };
            prev = Some((rec.host, id));
            ids.push((id, NONE));
        }
        if let Some((_, id)) = prev {
            self.last_host = id;
        }
        for ((rec, _), slot) in records.iter().zip(&mut ids) {
            slot.1 = self.endpoint_id(rec.endpoint);
        }
        for ((rec, pos), &(host, endpoint)) in records.iter().zip(&ids) {
            self.fold(rec, *pos, host, endpoint);
        }
    }

    /// Everything [`Partial::observe`] does once the host's and endpoint's ids are known.
    #[inline]
    fn fold(&mut self, rec: &LogRecord<'_>, pos: Position, host: u32, endpoint: u32) {
        self.records += 1;
        let n = &mut self.nulls;
        n.host += u64::from(rec.host.is_empty());
        n.method += u64::from(rec.method.is_none());
        n.endpoint += u64::from(rec.endpoint.is_none());
        n.protocol += u64::from(rec.protocol.is_none());
        n.content_size += u64::from(rec.content_size.is_none());

        let date = rec.timestamp.local_date();
        let hour = rec.timestamp.local_hour();
        self.hourly[usize::from(hour)] += 1;
        self.add_status(rec.status, 1);
        let d = self.day_slot(date);

        let hs = self.hosts.val_mut(host);
        hs.count += 1;
        let day = &mut self.days[d as usize];
        day.requests += 1;
        if hs.last_day != d {
            hs.last_day = d;
            day.hosts.push(host);
            if day.hosts.len() > 2 * day.compacted_len + 1024 {
                // Bounds the duplicates hosts that alternate between dates can leave.
                day.compact();
            }
        }
        if let Some(size) = rec.content_size {
            self.sizes.observe(size);
            day.bytes += u128::from(size);
        }
        let es = if endpoint == NONE {
            &mut self.null_endpoint
        } else {
            self.endpoints.val_mut(endpoint)
        };
        es.weekday[usize::from(day.weekday)] += 1;

        if rec.status == 404 {
            es.c404 += 1;
            hs.c404 += 1;
            day.c404 += 1;
            self.hourly_404[usize::from(hour)] += 1;
            self.rows_404.push(Row404 {
                pos,
                host,
                endpoint,
                date,
                hour,
            });
        }
    }

    /// Counts a rejected line and keeps it as an example if its position is among the smallest
    /// (at most [`MAX_REJECT_EXAMPLE_BYTES`] of it, see [`bounded`]).
    pub fn observe_reject(&mut self, reason: RejectReason, raw: &[u8], pos: Position) {
        self.rejects += 1;
        let r = &mut self.reject_stats[reason as usize];
        r.count += 1;
        let raw = bounded(raw, MAX_REJECT_EXAMPLE_BYTES);
        r.offer(pos, &raw, self.cfg.reject_examples);
    }
}

#[cfg(test)]
mod tests {
    use super::super::AnalyticsConfig;
    use super::*;
    use crate::record::{LogFormat, Timestamp};
    use proptest::prelude::*;

    /// A record from small alphabets, so keys repeat, runs of one host occur and every branch
    /// (missing endpoint, 404, another date, a missing size) is taken.
    fn record(
        host: u8,
        endpoint: u8,
        status: u16,
        day: i64,
        size: Option<u64>,
    ) -> LogRecord<'static> {
        const HOSTS: [&str; 5] = ["a.example", "b.example", "10.0.0.1", "", "c.example"];
        const ENDPOINTS: [&str; 4] = ["/", "/images/x.gif", "/a?b", "/history/"];
        let endpoint = ENDPOINTS.get(usize::from(endpoint)).map(|e| e.as_bytes());
        LogRecord {
            format: LogFormat::Common,
            host: HOSTS[usize::from(host) % HOSTS.len()].as_bytes(),
            ident: None,
            user: None,
            timestamp: Timestamp {
                utc_secs: 804_571_200 + day * 86_400 + day * 3_700,
                offset_minutes: -240,
            },
            method: endpoint.map(|_| &b"GET"[..]),
            endpoint,
            protocol: None,
            status,
            content_size: size,
            referer: None,
            user_agent: None,
            truncated_field: false,
        }
    }

    fn records() -> impl Strategy<Value = Vec<(LogRecord<'static>, Position)>> {
        let one = (
            0u8..5,
            0u8..5,
            prop_oneof![Just(200u16), Just(404), Just(304), Just(700)],
            0i64..3,
            proptest::option::of(0u64..10_000),
        );
        proptest::collection::vec(one, 0..300).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (h, e, s, d, z))| {
                    let pos = Position {
                        partition: 1,
                        offset: i as i64,
                    };
                    (record(h, e, s, d, z), pos)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Batched observing is the same fold as observing one by one, whatever the batch cuts:
        /// the same encoding (so the same ids, days, 404 rows and counts).
        #[test]
        fn observe_batch_is_observe_in_order(recs in records(), cuts in proptest::collection::vec(1usize..64, 1..8)) {
            let cfg = AnalyticsConfig::default();
            let mut one = Partial::new(&cfg);
            for (rec, pos) in &recs {
                one.observe(rec, *pos);
            }
            let mut batched = Partial::new(&cfg);
            let mut rest = &recs[..];
            for &cut in cuts.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (batch, tail) = rest.split_at(cut.min(rest.len()));
                batched.observe_batch(batch);
                rest = tail;
            }
            // Mixing both after a batch keeps the host cache right.
            if let Some((rec, pos)) = recs.first() {
                one.observe(rec, *pos);
                batched.observe(rec, *pos);
            }
            prop_assert_eq!(one.to_bytes().unwrap(), batched.to_bytes().unwrap());
        }
    }
}
