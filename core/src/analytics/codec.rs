//! Lossless binary form of a [`Partial`], for shipping partials between processes and storing
//! them next to shards.
//!
//! The encoding is canonical: keys are written in byte order and ids renumbered to match, days
//! in date order, id lists sorted and deduplicated, 404 rows in output order. Equal partials
//! therefore encode to equal bytes whatever their merge history, which is also how
//! `Partial: PartialEq` is defined. Integers are varints; the layout is versioned.

use super::consistency;
use super::intern::Key;
use super::partial::{
    Day, EndpointStats, HostStats, Partial, RejectStats, Row404, NONE, STATUS_SLOTS,
};
use super::stats::{SizeStats, U256};
use super::AnalyticsConfig;
use crate::error::{Error, Result};
use crate::record::{Position, RejectReason};

const MAGIC: &[u8; 8] = b"SAWPART\0";
/// 2 added the `line_too_long` reject reason (one more reject slot at the end); version 1,
/// otherwise the same, is still read, so partials stored before it merge with new ones.
const VERSION: u32 = 2;
/// Reject slots a version-1 partial holds (the reasons before `line_too_long`).
const V1_REJECT_SLOTS: usize = 8;

struct Writer(Vec<u8>);

/// Integers are LEB128 varints (signed ones zigzag-encoded first): counts are mostly small, and
/// a partial's size is dominated by per-key counters.
impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn uv(&mut self, mut v: u128) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }
    fn u64(&mut self, v: u64) {
        self.uv(u128::from(v));
    }
    fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }
    fn len(&mut self, n: usize) {
        self.u64(n as u64);
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend_from_slice(b);
    }
    fn pos(&mut self, p: Position) {
        self.i64(i64::from(p.partition));
        self.i64(p.offset);
    }
    fn endpoint(&mut self, e: &EndpointStats) {
        for c in e.weekday {
            self.u64(c);
        }
        self.u64(e.c404);
    }
}

/// Ids sorted by key, and the inverse: `rank[old id] = new id`.
fn ranks(order: &[u32]) -> Vec<u32> {
    let mut rank = vec![0; order.len()];
    for (new, &old) in order.iter().enumerate() {
        rank[old as usize] = new as u32;
    }
    rank
}

pub(super) fn encode(p: &Partial) -> Vec<u8> {
    let mut w = Writer(Vec::with_capacity(1024));
    w.0.extend_from_slice(MAGIC);
    w.0.extend_from_slice(&VERSION.to_le_bytes());
    w.u8(u8::from(p.cfg.missing_size_as_zero));
    w.len(p.cfg.reject_examples);
    w.u64(p.records);
    w.u64(p.rejects);
    let n = &p.nulls;
    for v in [n.host, n.method, n.endpoint, n.protocol, n.content_size] {
        w.u64(v);
    }
    let s = &p.sizes;
    w.u64(s.count);
    w.uv(s.sum);
    w.uv(s.sum_sq.hi);
    w.uv(s.sum_sq.lo);
    w.u64(if s.count == 0 { 0 } else { s.min });
    w.u64(if s.count == 0 { 0 } else { s.max });

    let statuses: Vec<(u16, u64)> = (0..STATUS_SLOTS as u16)
        .map(|st| (st, p.status[usize::from(st)]))
        .chain(p.status_other.iter().map(|(&st, &c)| (st, c)))
        .filter(|&(_, c)| c > 0)
        .collect();
    w.len(statuses.len());
    for (st, c) in statuses {
        w.u64(u64::from(st));
        w.u64(c);
    }
    for h in 0..24 {
        w.u64(p.hourly[h]);
        w.u64(p.hourly_404[h]);
    }

    let host_order = p.hosts.ids_by_key();
    let host_rank = ranks(&host_order);
    w.len(host_order.len());
    for &id in &host_order {
        w.bytes(p.hosts.key(id));
        let v = p.hosts.val(id);
        w.u64(v.count);
        w.u64(v.c404);
    }
    let ep_order = p.endpoints.ids_by_key();
    let ep_rank = ranks(&ep_order);
    w.len(ep_order.len());
    for &id in &ep_order {
        w.bytes(p.endpoints.key(id));
        w.endpoint(p.endpoints.val(id));
    }
    w.endpoint(&p.null_endpoint);

    let days = p.sorted_days();
    w.len(days.len());
    for d in days {
        w.i64(i64::from(d.date));
        w.u64(d.requests);
        w.uv(d.bytes);
        w.u64(d.c404);
        let mut ids: Vec<u32> = d.hosts.iter().map(|&h| host_rank[h as usize]).collect();
        ids.sort_unstable();
        ids.dedup();
        w.len(ids.len());
        // Sorted and distinct: gaps are small and at least 1 (after the first id).
        let mut prev = 0;
        for id in ids {
            w.u64(u64::from(id - prev));
            prev = id;
        }
    }

    let rows = p.sorted_404();
    w.len(rows.len());
    for r in rows {
        w.pos(r.pos);
        w.u64(u64::from(host_rank[r.host as usize]));
        // 0 is the missing endpoint, so ids shift by one.
        w.u64(if r.endpoint == NONE {
            0
        } else {
            u64::from(ep_rank[r.endpoint as usize]) + 1
        });
        w.i64(i64::from(r.date));
        w.u8(r.hour);
    }

    for r in &p.reject_stats {
        w.u64(r.count);
        w.len(r.examples.len());
        for (pos, raw) in &r.examples {
            w.pos(*pos);
            w.bytes(raw);
        }
    }
    w.0
}

struct Reader<'a> {
    buf: &'a [u8],
}

pub(super) fn corrupt(message: impl Into<String>) -> Error {
    Error::Corrupt {
        what: "analytics partial".into(),
        message: message.into(),
    }
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.buf.len() {
            return Err(corrupt(format!(
                "truncated: wanted {n} more bytes, {} left",
                self.buf.len()
            )));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn uv(&mut self) -> Result<u128> {
        let mut v = 0u128;
        for shift in (0..128).step_by(7) {
            let b = self.u8()?;
            let bits = u128::from(b & 0x7f);
            if shift == 126 && bits > 0b11 {
                break;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint overflows 128 bits"))
    }
    fn u64(&mut self) -> Result<u64> {
        u64::try_from(self.uv()?).map_err(|_| corrupt("integer overflows 64 bits"))
    }
    fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.u64()?).map_err(|_| corrupt("integer overflows 32 bits"))
    }
    fn i64(&mut self) -> Result<i64> {
        let z = self.u64()?;
        Ok((z >> 1) as i64 ^ -((z & 1) as i64))
    }
    fn i32(&mut self) -> Result<i32> {
        i32::try_from(self.i64()?).map_err(|_| corrupt("integer overflows 32 bits"))
    }
    /// A length, checked against the bytes left so corrupt input cannot trigger huge allocations.
    fn len(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.u64()?;
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_item_bytes.max(1)) <= self.buf.len() => Ok(n),
            _ => Err(corrupt(format!("length {n} exceeds the remaining input"))),
        }
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.len(1)?;
        self.take(n)
    }
    fn pos(&mut self) -> Result<Position> {
        Ok(Position {
            partition: self.i32()?,
            offset: self.i64()?,
        })
    }
    fn endpoint(&mut self) -> Result<EndpointStats> {
        let mut e = EndpointStats::default();
        for c in &mut e.weekday {
            *c = self.u64()?;
        }
        e.c404 = self.u64()?;
        Ok(e)
    }
}

pub(super) fn decode(bytes: &[u8]) -> Result<Partial> {
    let mut r = Reader { buf: bytes };
    if r.take(MAGIC.len())? != MAGIC {
        return Err(corrupt("not a Sawmill analytics partial (bad magic)"));
    }
    let version = u32::from_le_bytes(
        r.take(4)?
            .try_into()
            .expect("take(4) returns exactly four bytes"),
    );
    let reject_slots = match version {
        1 => V1_REJECT_SLOTS,
        VERSION => RejectReason::ALL.len(),
        _ => {
            return Err(corrupt(format!(
                "format version {version}, this build reads 1 to {VERSION}"
            )))
        }
    };
    let cfg = AnalyticsConfig {
        missing_size_as_zero: r.u8()? != 0,
        reject_examples: usize::try_from(r.u64()?)
            .map_err(|_| corrupt("reject_examples out of range"))?,
        // Caps are the merging side's setting, not part of a partial.
        ..Default::default()
    };
    let mut p = Partial::new(&cfg);
    p.records = r.u64()?;
    p.rejects = r.u64()?;
    let n = &mut p.nulls;
    for v in [
        &mut n.host,
        &mut n.method,
        &mut n.endpoint,
        &mut n.protocol,
        &mut n.content_size,
    ] {
        *v = r.u64()?;
    }
    p.sizes = SizeStats {
        count: r.u64()?,
        sum: r.uv()?,
        sum_sq: U256 {
            hi: r.uv()?,
            lo: r.uv()?,
        },
        min: r.u64()?,
        max: r.u64()?,
    };
    let mut previous_status = None;
    for _ in 0..r.len(2)? {
        let status = u16::try_from(r.u64()?).map_err(|_| corrupt("status out of range"))?;
        let n = r.u64()?;
        // As written: ascending, each once, never zero (so counts are never added up here).
        if n == 0 || previous_status.is_some_and(|previous| previous >= status) {
            return Err(corrupt(format!(
                "status {status} repeated, unordered or zero"
            )));
        }
        previous_status = Some(status);
        p.add_status(status, n);
    }
    for h in 0..24 {
        p.hourly[h] = r.u64()?;
        p.hourly_404[h] = r.u64()?;
    }

    for _ in 0..r.len(3)? {
        let key = Key::new(r.bytes()?);
        let stats = HostStats {
            count: r.u64()?,
            c404: r.u64()?,
            ..HostStats::default()
        };
        p.hosts
            .insert_unique(key, stats)
            .ok_or_else(|| corrupt("duplicate host"))?;
    }
    for _ in 0..r.len(9)? {
        let key = Key::new(r.bytes()?);
        let stats = r.endpoint()?;
        p.endpoints
            .insert_unique(key, stats)
            .ok_or_else(|| corrupt("duplicate endpoint"))?;
    }
    p.null_endpoint = r.endpoint()?;

    let hosts = p.hosts.len();
    for _ in 0..r.len(5)? {
        let date = r.i32()?;
        if p.day_index.contains_key(&date) {
            return Err(corrupt(format!("duplicate date {date}")));
        }
        let d = p.day_slot(date) as usize;
        let day: &mut Day = &mut p.days[d];
        day.requests = r.u64()?;
        day.bytes = r.uv()?;
        day.c404 = r.u64()?;
        let ids = r.len(1)?;
        day.hosts.reserve_exact(ids);
        let mut id = 0u32;
        for i in 0..ids {
            let gap = r.u32()?;
            id = match id.checked_add(gap) {
                Some(next) if (gap > 0 || i == 0) && (next as usize) < hosts => next,
                _ => return Err(corrupt("day host ids not ascending or out of range")),
            };
            day.hosts.push(id);
        }
        day.compact();
    }

    for _ in 0..r.len(6)? {
        let pos = r.pos()?;
        let host = r.u32()?;
        let endpoint = match r.u32()? {
            0 => NONE,
            e => e - 1,
        };
        if host as usize >= hosts || (endpoint != NONE && endpoint as usize >= p.endpoints.len()) {
            return Err(corrupt("404 row id out of range"));
        }
        let date = r.i32()?;
        let hour = r.u8()?;
        if hour > 23 {
            return Err(corrupt(format!("hour {hour} out of range")));
        }
        p.rows_404.push(Row404 {
            pos,
            host,
            endpoint,
            date,
            hour,
        });
    }

    for slot in 0..reject_slots {
        let mut stats = RejectStats {
            count: r.u64()?,
            examples: Vec::new(),
        };
        for _ in 0..r.len(3)? {
            let pos = r.pos()?;
            stats.examples.push((pos, Box::from(r.bytes()?)));
        }
        p.reject_stats[slot] = stats;
    }
    if !r.buf.is_empty() {
        return Err(corrupt(format!("{} trailing bytes", r.buf.len())));
    }
    consistency::check_totals(&p)?;
    Ok(p)
}

impl Partial {
    /// Serializes the whole state (canonical bytes; see the module docs of `codec`).
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        // The form has no place for `(other)` buckets: a capped partial is a merged view (the
        // coordinator's, `sawmill run`'s), never shipped, and must not pass for an exact one.
        // A shard's partial holding more keys than the caps is exact and is encoded: the
        // coordinator folds it when it merges.
        if self.lost_to_caps() {
            return Err(Error::Internal(
                "a partial whose caps folded keys into (other) cannot be encoded: raise the caps (max_distinct_hosts, max_distinct_endpoints, max_404_rows) or encode the shard partials".into(),
            ));
        }
        Ok(encode(self))
    }

    /// Reads what [`Partial::to_bytes`] wrote. Fails with [`Error::Corrupt`] on damaged input.
    pub fn from_bytes(bytes: &[u8]) -> Result<Partial> {
        decode(bytes)
    }
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
