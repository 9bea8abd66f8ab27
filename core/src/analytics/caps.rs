//! Caps on the tables that grow with distinct keys, and what they fold away.
//!
//! A merged [`Partial`] holds one entry per distinct host, per distinct endpoint, per 404 line
//! and, per calendar date, one id per host seen that day. Left alone, a flood of unique URLs or
//! client addresses grows them without limit. [`AnalyticsConfig`](super::AnalyticsConfig)
//! therefore caps each (`max_distinct_hosts`, `max_distinct_endpoints`, `max_404_rows`), and
//! what goes beyond a cap is *folded*, visibly:
//!
//! - **Merge** ([`Partial::merge`]): a host or endpoint already held is added to exactly; a new
//!   one is admitted while the table is below its cap, and folded into one `(other)` bucket
//!   once it is full (its requests, 404s and per-weekday counts go there). Nothing admitted is
//!   ever evicted. 404 rows beyond `max_404_rows` keep the rows with the smallest input
//!   positions (like reject examples) and drop the rest, whose number stays known
//!   (`status 404` minus rows kept).
//! - **Tables** ([`Partial::tables`]): a partial that holds more than a cap (one built by
//!   `observe` alone) shows its top keys by count and folds the rest the same way.
//!
//! What stays exact once a cap is hit: every total (records, statuses, hours, days, bytes,
//! 404s per day and hour), the sum of each folded table including its `(other)` row, the count
//! of every key that is listed (at the coordinator, which merges uncapped shard partials into
//! one accumulator, a key is listed only if admitted before the table filled, and is then
//! counted exactly from then on and before, since a key is never folded while it is held),
//! and which 404 rows are kept (the smallest positions, whatever the merge order). What
//! becomes a bound: the distinct hosts of a day and overall that include folded hosts are an
//! *upper* bound (a folded host is counted once per merge that folded it), marked `overflow`;
//! which hosts and endpoints are listed depends on the order partials arrived, so merging is
//! then commutative and associative in its totals but not in which keys are listed. Below the
//! caps nothing changes: merge is exact, commutative and associative.

use super::partial::{EndpointStats, Partial, Row404, NONE};

/// The key of the row that holds what a cap folded, in every table and report.
pub const OTHER_KEY: &str = "(other)";

/// Marks a folded host or endpoint in `u32` id slots (404 rows, merge id maps).
pub(super) const OTHER: u32 = u32::MAX - 1;

/// What caps folded away in merges; all zero while every table is below its cap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Folded {
    /// Requests of the folded hosts.
    pub host_requests: u64,
    /// 404 responses of the folded hosts.
    pub host_404: u64,
    /// Folded hosts, counted once per merge that folded them: an upper bound of how many
    /// distinct hosts the `(other)` row stands for.
    pub host_keys: u64,
    /// Per-weekday requests and 404s of the folded endpoints.
    pub endpoints: EndpointStats,
    /// Folded endpoints, counted like `host_keys`.
    pub endpoint_keys: u64,
}

impl Folded {
    pub fn is_empty(&self) -> bool {
        *self == Folded::default()
    }

    pub fn add(&mut self, o: &Folded) {
        self.host_requests = self.host_requests.saturating_add(o.host_requests);
        self.host_404 = self.host_404.saturating_add(o.host_404);
        self.host_keys = self.host_keys.saturating_add(o.host_keys);
        add_endpoint(&mut self.endpoints, &o.endpoints);
        self.endpoint_keys = self.endpoint_keys.saturating_add(o.endpoint_keys);
    }
}

pub(super) fn add_endpoint(mine: &mut EndpointStats, theirs: &EndpointStats) {
    for (m, t) in mine.weekday.iter_mut().zip(theirs.weekday) {
        *m = m.saturating_add(t);
    }
    mine.c404 = mine.c404.saturating_add(theirs.c404);
}

/// Maps an id of a merged-in partial to the receiving one's: [`NONE`] and [`OTHER`] stay.
pub(super) fn remap(map: &[u32], id: u32) -> u32 {
    match id {
        NONE | OTHER => id,
        _ => map[id as usize],
    }
}

impl Partial {
    /// Whether a cap folded anything, in a merge or when the tables are built.
    pub fn overflowed(&self) -> bool {
        self.lost_to_caps()
            || self.hosts.len() > self.cfg.max_distinct_hosts
            || self.endpoints.len() > self.cfg.max_distinct_endpoints
            || self.rows_404.len() > self.cfg.max_404_rows
    }

    /// Whether a merge folded or dropped anything: what an exact encoding has no place for. A
    /// partial that only holds more keys than its caps (built by `observe` alone, as a shard's
    /// is) is still exact; only its tables fold.
    pub fn lost_to_caps(&self) -> bool {
        !self.folded.is_empty()
            || self.rows_404.len() as u64 != self.status[404]
            || self.days.iter().any(|d| d.folded_hosts > 0)
    }

    /// Entries held in the tables that grow with distinct keys: hosts, endpoints, 404 rows and
    /// per-date host ids. What the caps bound; tests count it instead of measuring memory.
    pub fn keyed_entries(&self) -> usize {
        self.hosts.len()
            + self.endpoints.len()
            + self.rows_404.len()
            + self.days.iter().map(|d| d.hosts.len()).sum::<usize>()
    }

    /// Heap bytes held by the tables that grow with distinct keys (see [`Partial::keyed_entries`]),
    /// accounted from capacities (see `Interner::heap_bytes`): what ARCHITECTURE.md quotes per
    /// host, endpoint and 404 row.
    pub fn keyed_heap_bytes(&self) -> usize {
        self.hosts.heap_bytes()
            + self.endpoints.heap_bytes()
            + self.rows_404.capacity() * std::mem::size_of::<Row404>()
            + self
                .days
                .iter()
                .map(|d| d.hosts.capacity() * std::mem::size_of::<u32>())
                .sum::<usize>()
    }

    /// Keeps the `max_404_rows` 404 rows with the smallest positions (output order).
    pub(super) fn cap_404(&mut self) {
        let cap = self.cfg.max_404_rows;
        if self.rows_404.len() <= cap {
            return;
        }
        let mut rows = std::mem::take(&mut self.rows_404);
        if cap > 0 {
            rows.select_nth_unstable_by(cap - 1, |a, b| self.cmp_404(a, b));
        }
        rows.truncate(cap);
        rows.shrink_to_fit();
        self.rows_404 = rows;
    }

    /// Output order of 404 rows: by position, then by content so even duplicate positions (the
    /// same line fed twice) come out the same whatever the merge order.
    pub(super) fn cmp_404(&self, a: &Row404, b: &Row404) -> std::cmp::Ordering {
        (a.pos, a.date, a.hour, self.host_key(a.host))
            .cmp(&(b.pos, b.date, b.hour, self.host_key(b.host)))
            .then_with(|| {
                self.endpoint_key(a.endpoint)
                    .cmp(&self.endpoint_key(b.endpoint))
            })
    }

    pub(super) fn host_key(&self, id: u32) -> &[u8] {
        match id {
            OTHER => OTHER_KEY.as_bytes(),
            _ => self.hosts.key(id),
        }
    }

    /// `None` for a missing endpoint.
    pub(super) fn endpoint_key(&self, id: u32) -> Option<&[u8]> {
        match id {
            NONE => None,
            OTHER => Some(OTHER_KEY.as_bytes()),
            _ => Some(self.endpoints.key(id)),
        }
    }
}
