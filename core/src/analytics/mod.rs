//! Mergeable partial aggregates of the original PySpark analytics, and the notebook's views.
//!
//! A worker folds every parsed line of its offset range into a [`Partial`]
//! ([`Partial::observe`], [`Partial::observe_reject`]); partials from any split of the input, merged
//! in any order and tree shape ([`Partial::merge`]), give exactly the partial of one pass over the
//! whole input. That is why nothing here is approximate or order dependent:
//!
//! - counts are integers; content-size moments are exact integer power sums (see [`stats`]);
//! - distinct hosts are exact sets (hosts interned to ids, one id list per calendar date);
//! - row-level outputs (`table_404`, reject examples) are ordered by input position
//!   `(partition, offset)`, and reject examples keep the smallest positions, not the first seen.
//!
//! [`Partial::tables`] builds the summary tables (names and leading columns as the original
//! pipeline wrote them), [`Partial::views`] the notebook's derived views, and
//! [`Partial::to_bytes`] / [`Partial::from_bytes`] ship a partial losslessly between processes.
//!
//! Dates are wall-clock calendar dates (the zone the line was written in), as in the original.

mod caps;
mod codec;
mod consistency;
mod intern;
mod observe;
mod partial;
pub mod stats;
mod tables;
#[cfg(test)]
mod tests;
mod views;

pub use caps::OTHER_KEY;
pub use intern::bounded;
pub use partial::Partial;
pub use stats::ContentStats;
pub use tables::{schema, TABLE_NAMES};
pub use views::{DailyCount, DailyRequestsPerHost, EndpointCount, HostCount, Views, WeekdayTop};

/// Longest host or endpoint kept as an analytics key, in bytes: a flood of huge unique URLs must
/// not hold megabytes per key. Longer ones are cut by [`bounded`].
pub const MAX_KEY_BYTES: usize = 2 * 1024;

/// Longest raw line kept as a reject example, in bytes, cut the same way.
pub const MAX_REJECT_EXAMPLE_BYTES: usize = 4 * 1024;

/// The last bytes of a cut key or example, so a cut is visible in every table and report.
pub const TRUNCATED_MARK: &str = "\u{2026}";

/// How partials aggregate. Partials that are merged should share one configuration; a merge
/// keeps the receiving partial's.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AnalyticsConfig {
    /// Count a missing (`-`) content size as 0 in `content_stats`, as the original pipeline did
    /// (it filled nulls with 0 before aggregating). When false, the stats cover known sizes only.
    pub missing_size_as_zero: bool,
    /// Raw lines kept per reject reason: the ones at the smallest `(partition, offset)`.
    pub reject_examples: usize,
    /// Distinct hosts a merge keeps; newer ones are folded into `(other)` (see ARCHITECTURE.md, "Bounded memory").
    pub max_distinct_hosts: usize,
    /// Distinct endpoints a merge keeps; newer ones are folded into `(other)`.
    pub max_distinct_endpoints: usize,
    /// 404 rows kept: those at the smallest positions; the rest are only counted.
    pub max_404_rows: usize,
}

/// Default of each cap: far above the NASA logs (about 137,000 hosts, 45,000 endpoints and
/// 20,000 404 rows per month), so they stay exact, and far below what exhausts memory (see
/// ARCHITECTURE.md for the bytes per entry).
pub const DEFAULT_CAP: usize = 1_000_000;

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            missing_size_as_zero: true,
            reject_examples: 5,
            max_distinct_hosts: DEFAULT_CAP,
            max_distinct_endpoints: DEFAULT_CAP,
            max_404_rows: DEFAULT_CAP,
        }
    }
}
