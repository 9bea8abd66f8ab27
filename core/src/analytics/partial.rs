//! The partial-aggregate state, its hot-path update and its exact merge.

use super::caps::{add_endpoint, remap, Folded, OTHER};
use super::intern::Interner;
use super::stats::SizeStats;
use super::{codec, AnalyticsConfig};
use crate::record::{spark_dayofweek, Position, RejectReason};
use hashbrown::HashMap;
use std::collections::BTreeMap;

/// Marks "no id" in `u32` id slots (null endpoint, empty caches, host not yet seen on any day).
pub(super) const NONE: u32 = u32::MAX;

/// Statuses below this are counted in a flat array; the parser only produces 100..=599.
pub(super) const STATUS_SLOTS: usize = 600;

/// Numbers of records with each field missing (the `null_value_count` row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct NullCounts {
    pub host: u64,
    pub method: u64,
    pub endpoint: u64,
    pub protocol: u64,
    pub content_size: u64,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct HostStats {
    pub count: u64,
    pub c404: u64,
    /// Index of the day this host was last appended to: skips re-appending it to the same day's
    /// id list. Only a shortcut (lists are deduplicated anyway), so it is not part of the state.
    pub last_day: u32,
}

impl Default for HostStats {
    fn default() -> Self {
        HostStats {
            count: 0,
            c404: 0,
            last_day: NONE,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct EndpointStats {
    /// Requests by Spark day of week minus one (0 = Sunday).
    pub weekday: [u64; 7],
    pub c404: u64,
}

#[derive(Clone, Debug)]
pub(super) struct Day {
    /// Wall-clock calendar date, days since 1970-01-01.
    pub date: i32,
    /// Spark day of week minus one (0 = Sunday).
    pub weekday: u8,
    pub requests: u64,
    pub bytes: u128,
    pub c404: u64,
    /// Ids of the hosts seen that day; may hold duplicates until [`Day::compact`].
    pub hosts: Vec<u32>,
    /// Hosts of that day folded by the host cap, counted once per merge that folded them (an
    /// upper bound of the distinct ones; see `super::caps`).
    pub folded_hosts: u64,
    pub(super) compacted_len: usize,
}

impl Day {
    pub fn new(date: i32) -> Day {
        Day {
            date,
            weekday: spark_dayofweek(date) - 1,
            requests: 0,
            bytes: 0,
            c404: 0,
            hosts: Vec::new(),
            folded_hosts: 0,
            compacted_len: 0,
        }
    }

    pub fn compact(&mut self) {
        self.hosts.sort_unstable();
        self.hosts.dedup();
        self.compacted_len = self.hosts.len();
    }

    /// Number of distinct hosts, without mutating (tables and views take `&self`): exact
    /// unless the host cap folded some of that day's hosts, then an upper bound.
    pub fn distinct_hosts(&self) -> u64 {
        let held = if self.hosts.len() == self.compacted_len {
            self.hosts.len()
        } else {
            let mut ids = self.hosts.clone();
            ids.sort_unstable();
            ids.dedup();
            ids.len()
        };
        (held as u64).saturating_add(self.folded_hosts)
    }
}

/// One status-404 record, with ids into the partial's interners.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Row404 {
    pub pos: Position,
    pub host: u32,
    /// [`NONE`] for a missing endpoint.
    pub endpoint: u32,
    pub date: i32,
    pub hour: u8,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct RejectStats {
    pub count: u64,
    /// The smallest `(position, raw)` pairs seen, ascending, at most `reject_examples` of them.
    pub examples: Vec<(Position, Box<[u8]>)>,
}

impl RejectStats {
    pub(super) fn offer(&mut self, pos: Position, raw: &[u8], keep: usize) {
        let fits = self.examples.len() < keep;
        if !fits
            && self
                .examples
                .last()
                .is_none_or(|(p, r)| (pos, raw) >= (*p, &**r))
        {
            return;
        }
        let at = self
            .examples
            .partition_point(|(p, r)| (*p, &**r) < (pos, raw));
        self.examples.insert(at, (pos, Box::from(raw)));
        self.examples.truncate(keep);
    }
}

/// Mergeable aggregates of a set of input lines. See the [module docs](super).
///
/// Equality is semantic: two partials are equal when their canonical serializations are, i.e.
/// when they aggregate the same multiset of lines, whatever the merge order. It costs a full
/// serialization of both sides, so it is meant for tests and verification.
#[derive(Clone)]
pub struct Partial {
    pub(super) cfg: AnalyticsConfig,
    pub(super) records: u64,
    pub(super) rejects: u64,
    pub(super) nulls: NullCounts,
    pub(super) sizes: SizeStats,
    /// Requests per status for statuses below [`STATUS_SLOTS`]; length is always that.
    pub(super) status: Vec<u64>,
    /// Only hand-built records reach here; parsed statuses are 100..=599.
    pub(super) status_other: BTreeMap<u16, u64>,
    pub(super) hourly: [u64; 24],
    pub(super) hourly_404: [u64; 24],
    pub(super) hosts: Interner<HostStats>,
    pub(super) endpoints: Interner<EndpointStats>,
    pub(super) null_endpoint: EndpointStats,
    /// In first-seen order; indices are stable (days are never removed), hosts point at them.
    pub(super) days: Vec<Day>,
    pub(super) day_index: HashMap<i32, u32>,
    pub(super) rows_404: Vec<Row404>,
    pub(super) reject_stats: [RejectStats; RejectReason::ALL.len()],
    /// What the caps folded in merges (see `super::caps`); never encoded.
    pub(super) folded: Folded,
    /// Caches: logs are time ordered and clients fetch pages in bursts.
    pub(super) last_day: u32,
    pub(super) last_host: u32,
}

impl Partial {
    pub fn new(cfg: &AnalyticsConfig) -> Self {
        Partial {
            cfg: cfg.clone(),
            records: 0,
            rejects: 0,
            nulls: NullCounts::default(),
            sizes: SizeStats::default(),
            status: vec![0; STATUS_SLOTS],
            status_other: BTreeMap::new(),
            hourly: [0; 24],
            hourly_404: [0; 24],
            hosts: Interner::default(),
            endpoints: Interner::default(),
            null_endpoint: EndpointStats::default(),
            days: Vec::new(),
            day_index: HashMap::new(),
            rows_404: Vec::new(),
            reject_stats: Default::default(),
            folded: Folded::default(),
            last_day: NONE,
            last_host: NONE,
        }
    }

    pub fn config(&self) -> &AnalyticsConfig {
        &self.cfg
    }

    /// Parsed records aggregated.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Rejected lines aggregated.
    pub fn rejects(&self) -> u64 {
        self.rejects
    }

    /// Rejected lines by reason (reasons that occurred), in `RejectReason::ALL` order.
    pub fn reject_counts(&self) -> Vec<(RejectReason, u64)> {
        RejectReason::ALL
            .iter()
            .zip(&self.reject_stats)
            .filter(|(_, r)| r.count > 0)
            .map(|(reason, r)| (*reason, r.count))
            .collect()
    }

    /// Adds `other` into `self`. Exact, commutative and associative in everything
    /// [`Partial::tables`], [`Partial::views`] and [`Partial::to_bytes`] expose, as long as
    /// `self`'s caps (`max_distinct_hosts`, `max_distinct_endpoints`, `max_404_rows`) are not
    /// reached; beyond them new keys are folded into `(other)`, as `super::caps` documents with
    /// exactly what stays exact. `self`'s configuration (and so its caps) is kept.
    ///
    /// Counts add saturating at their type's maximum instead of wrapping or panicking. A partial
    /// that decoded is consistent (its breakdowns sum to its totals without overflow, see
    /// `codec`), so only a merged total beyond 2^64 lines can saturate: no real input gets
    /// there, and a partial that did would be refused as corrupt when decoded again.
    pub fn merge(&mut self, other: Partial) {
        add(&mut self.records, other.records);
        add(&mut self.rejects, other.rejects);
        let (n, o) = (&mut self.nulls, &other.nulls);
        add(&mut n.host, o.host);
        add(&mut n.method, o.method);
        add(&mut n.endpoint, o.endpoint);
        add(&mut n.protocol, o.protocol);
        add(&mut n.content_size, o.content_size);
        self.sizes.merge(&other.sizes);
        for (mine, &theirs) in self.status.iter_mut().zip(&other.status) {
            add(mine, theirs);
        }
        for (&s, &c) in &other.status_other {
            self.add_status(s, c);
        }
        for h in 0..24 {
            add(&mut self.hourly[h], other.hourly[h]);
            add(&mut self.hourly_404[h], other.hourly_404[h]);
        }

        self.folded.add(&other.folded);
        let (host_cap, endpoint_cap) =
            (self.cfg.max_distinct_hosts, self.cfg.max_distinct_endpoints);
        let folded = &mut self.folded;
        let host_map: Vec<u32> = other
            .hosts
            .into_entries()
            .map(|(key, v)| match self.hosts.intern_capped(key, host_cap) {
                Some(id) => {
                    let s = self.hosts.val_mut(id);
                    add(&mut s.count, v.count);
                    add(&mut s.c404, v.c404);
                    id
                }
                None => {
                    add(&mut folded.host_requests, v.count);
                    add(&mut folded.host_404, v.c404);
                    add(&mut folded.host_keys, 1);
                    OTHER
                }
            })
            .collect();
        let endpoint_map: Vec<u32> = other
            .endpoints
            .into_entries()
            .map(
                |(key, v)| match self.endpoints.intern_capped(key, endpoint_cap) {
                    Some(id) => {
                        add_endpoint(self.endpoints.val_mut(id), &v);
                        id
                    }
                    None => {
                        add_endpoint(&mut folded.endpoints, &v);
                        add(&mut folded.endpoint_keys, 1);
                        OTHER
                    }
                },
            )
            .collect();
        add_endpoint(&mut self.null_endpoint, &other.null_endpoint);

        for mut theirs in other.days {
            let d = self.day_slot(theirs.date) as usize;
            let mine = &mut self.days[d];
            add(&mut mine.requests, theirs.requests);
            mine.bytes = mine.bytes.saturating_add(theirs.bytes);
            add(&mut mine.c404, theirs.c404);
            add(&mut mine.folded_hosts, theirs.folded_hosts);
            // Distinct first, so a folded host counts once for this merge.
            theirs.compact();
            for &h in &theirs.hosts {
                match host_map[h as usize] {
                    OTHER => add(&mut mine.folded_hosts, 1),
                    id => mine.hosts.push(id),
                }
            }
            mine.compact();
        }
        self.rows_404
            .extend(other.rows_404.into_iter().map(|r| Row404 {
                host: remap(&host_map, r.host),
                endpoint: remap(&endpoint_map, r.endpoint),
                ..r
            }));
        self.cap_404();

        let keep = self.cfg.reject_examples;
        for (mine, theirs) in self.reject_stats.iter_mut().zip(other.reject_stats) {
            add(&mut mine.count, theirs.count);
            mine.examples.extend(theirs.examples);
            mine.examples.sort_unstable();
            mine.examples.truncate(keep);
        }
    }

    /// 404 rows in output order (`Partial::cmp_404`).
    pub(super) fn sorted_404(&self) -> Vec<&Row404> {
        let mut rows: Vec<&Row404> = self.rows_404.iter().collect();
        rows.sort_unstable_by(|a, b| self.cmp_404(a, b));
        rows
    }

    /// Days sorted by date.
    pub(super) fn sorted_days(&self) -> Vec<&Day> {
        let mut days: Vec<&Day> = self.days.iter().collect();
        days.sort_unstable_by_key(|d| d.date);
        days
    }

    /// Number of distinct hosts over all dates: exact unless the host cap folded some, then
    /// an upper bound (see `super::caps`).
    pub fn distinct_hosts(&self) -> u64 {
        (self.hosts.len() as u64).saturating_add(self.folded.host_keys)
    }
}

/// Saturating: see [`Partial::merge`].
#[inline]
pub(super) fn add(total: &mut u64, n: u64) {
    *total = total.saturating_add(n);
}

impl PartialEq for Partial {
    fn eq(&self, other: &Partial) -> bool {
        if self.overflowed() || other.overflowed() {
            // No canonical encoding once keys are folded: what is shown must agree.
            return self.folded == other.folded && self.tables() == other.tables();
        }
        codec::encode(self) == codec::encode(other)
    }
}

impl std::fmt::Debug for Partial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Partial")
            .field("cfg", &self.cfg)
            .field("records", &self.records)
            .field("rejects", &self.rejects)
            .field("nulls", &self.nulls)
            .field("sizes", &self.sizes)
            .field("distinct_hosts", &self.hosts.len())
            .field("endpoints", &self.endpoints.len())
            .field("days", &self.days.len())
            .field("rows_404", &self.rows_404.len())
            .field("folded", &self.folded)
            .finish_non_exhaustive()
    }
}
