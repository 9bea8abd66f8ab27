//! Consistency of a decoded [`Partial`]: every breakdown adds up to the total it splits.
//!
//! Counts read from storage are untrusted. Summing them with checked arithmetic and comparing
//! the sums refuses a crafted or damaged partial as [`Error::Corrupt`](crate::Error::Corrupt)
//! instead of letting a count wrap or panic later.

use super::codec::corrupt;
use super::partial::Partial;
use super::stats::U256;
use crate::error::Result;

/// Sum of counts read from storage, refused when it overflows: no real input reaches 2^64.
fn total(what: &str, counts: impl IntoIterator<Item = u64>) -> Result<u64> {
    counts
        .into_iter()
        .try_fold(0u64, u64::checked_add)
        .ok_or_else(|| corrupt(format!("{what} overflow 64 bits")))
}

fn agree(what: &str, got: u64, expected_what: &str, expected: u64) -> Result<()> {
    if got == expected {
        return Ok(());
    }
    Err(corrupt(format!(
        "totals disagree: {what} {got}, {expected_what} {expected}"
    )))
}

/// Every breakdown must add up to the total it splits, computed without overflow. Besides
/// catching corruption the structure alone would not, this bounds every count of a decoded
/// partial by its record (or reject) total, so later sums (views, tables, merges) cannot
/// overflow either.
pub(super) fn check_totals(p: &Partial) -> Result<()> {
    let records = p.records;
    let statuses = p.status.iter().chain(p.status_other.values()).copied();
    agree(
        "per status",
        total("statuses", statuses)?,
        "records",
        records,
    )?;
    agree("per hour", total("hours", p.hourly)?, "records", records)?;
    let days = total("days", p.days.iter().map(|d| d.requests))?;
    agree("per day", days, "records", records)?;
    let hosts = total("hosts", p.hosts.iter().map(|(_, _, h)| h.count))?;
    agree("per host", hosts, "records", records)?;
    let endpoints = || {
        p.endpoints
            .iter()
            .map(|(_, _, e)| e)
            .chain([&p.null_endpoint])
    };
    let weekdays = total("endpoints", endpoints().flat_map(|e| e.weekday))?;
    agree("per endpoint", weekdays, "records", records)?;
    if let Some(day) = p.days.iter().find(|d| d.requests == 0) {
        return Err(corrupt(format!("day {} without requests", day.date)));
    }

    let rows = p.rows_404.len() as u64;
    agree("404 rows", rows, "status 404", p.status[404])?;
    agree(
        "404s per hour",
        total("hours", p.hourly_404)?,
        "404 rows",
        rows,
    )?;
    let days = total("days", p.days.iter().map(|d| d.c404))?;
    agree("404s per day", days, "404 rows", rows)?;
    let hosts = total("hosts", p.hosts.iter().map(|(_, _, h)| h.c404))?;
    agree("404s per host", hosts, "404 rows", rows)?;
    let endpoints = total("endpoints", endpoints().map(|e| e.c404))?;
    agree("404s per endpoint", endpoints, "404 rows", rows)?;

    let n = &p.nulls;
    for (field, nulls) in [
        ("host", n.host),
        ("method", n.method),
        ("endpoint", n.endpoint),
        ("protocol", n.protocol),
    ] {
        if nulls > records {
            return Err(corrupt(format!(
                "{nulls} missing {field}s of {records} records"
            )));
        }
    }
    let sized = total("sizes", [p.sizes.count, n.content_size])?;
    agree("known and missing sizes", sized, "records", records)?;
    check_sizes(p)?;

    let rejects = total("rejects", p.reject_stats.iter().map(|r| r.count))?;
    agree("per reject reason", rejects, "rejects", p.rejects)?;
    for r in &p.reject_stats {
        let kept = r.examples.len();
        if kept as u64 > r.count || kept > p.cfg.reject_examples || !r.examples.is_sorted() {
            return Err(corrupt(format!(
                "{kept} reject examples of {} rejects, keeping {}, or not in order",
                r.count, p.cfg.reject_examples
            )));
        }
    }
    Ok(())
}

/// Content-size sums within what `count` sizes between `min` and `max` can give.
fn check_sizes(p: &Partial) -> Result<()> {
    let s = &p.sizes;
    let day_bytes = p
        .days
        .iter()
        .try_fold(0u128, |sum, d| sum.checked_add(d.bytes))
        .ok_or_else(|| corrupt("bytes per day overflow 128 bits"))?;
    let count = u128::from(s.count);
    let (min, max) = (u128::from(s.min), u128::from(s.max));
    let consistent = day_bytes == s.sum
        && if s.count == 0 {
            s.sum == 0 && s.sum_sq == U256::ZERO
        } else {
            // count · max² < 2^192: the U256 products cannot wrap.
            min <= max
                && count * min <= s.sum
                && s.sum <= count * max
                && U256::mul_u128(count, min * min) <= s.sum_sq
                && s.sum_sq <= U256::mul_u128(count, max * max)
        };
    if !consistent {
        return Err(corrupt(format!(
            "content sizes inconsistent: {} sizes from {} to {} summing to {} (per day {day_bytes})",
            s.count, s.min, s.max, s.sum
        )));
    }
    Ok(())
}
