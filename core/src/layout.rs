//! Every path under an output root, in one place.
//!
//! ```text
//! records/dt=YYYY-MM-DD/<source>-p<partition>-<first>-<last>.parquet   parsed rows (wall-clock date)
//! rejects/<source>-p<partition>-<first>-<last>.parquet                  rejected lines
//! summary/<table>.parquet                                              merged analytics
//! _partials/<source>/p<partition>/<first>-<last>.partial               each shard's partial aggregates
//! _manifests/<source>/p<partition>/<first>-<last>.segment             folded manifests (compaction)
//! _staging/<source>/p<partition>/<first>-<last>-e<epoch>-<nonce>.<flat name>   staged shard files
//! _staging/<pid>-<seq>.<flat name>.tmp                                 other staged writes
//! ```
//!
//! Names derive only from what a file covers (source, partition, offset range, date, table), so
//! writing the same range twice can only produce the same name. Directories starting with `_` are
//! hidden from dataset readers (Spark, pyarrow, DuckDB skip them).

use crate::record::format_date;

pub const RECORDS_DIR: &str = "records";
pub const REJECTS_DIR: &str = "rejects";
pub const SUMMARY_DIR: &str = "summary";
pub const PARTIALS_DIR: &str = "_partials";
/// Manifest segments: the manifests the coordinator folded out of etcd, with their merged partial.
pub const MANIFESTS_DIR: &str = "_manifests";
/// Files here are invisible to readers of the output until published by rename.
pub const STAGING_DIR: &str = "_staging";

/// Directories an embedded run owns under its root; a new run replaces them.
pub const EMBEDDED_RUN_DIRS: [&str; 4] = [RECORDS_DIR, REJECTS_DIR, SUMMARY_DIR, STAGING_DIR];

/// Keeps names portable: anything but `[A-Za-z0-9._-]` becomes `_`.
pub fn sanitize(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        "_".into()
    } else {
        out
    }
}

/// What a shard covers: `(source, partition, first..=last)` of the input.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShardRange {
    pub source: String,
    pub partition: i32,
    pub first: i64,
    pub last: i64,
}

impl ShardRange {
    /// `<source>-p<partition>-<first>-<last>.parquet`, zero-padded so names sort by offset.
    pub fn file_name(&self) -> String {
        format!(
            "{}-p{:05}-{:020}-{:020}.parquet",
            sanitize(&self.source),
            self.partition,
            self.first,
            self.last
        )
    }

    /// The final path of the shard's records for one wall-clock date.
    pub fn records_path(&self, date: i32) -> String {
        format!(
            "{RECORDS_DIR}/dt={}/{}",
            format_date(date),
            self.file_name()
        )
    }

    pub fn rejects_path(&self) -> String {
        format!("{REJECTS_DIR}/{}", self.file_name())
    }

    /// Final path of the shard's partial aggregates.
    pub fn partial_path(&self) -> String {
        format!(
            "{PARTIALS_DIR}/{}/p{:05}/{:020}-{:020}.partial",
            sanitize(&self.source),
            self.partition,
            self.first,
            self.last
        )
    }

    /// Staging name of one of this shard's files, written under `epoch` by the attempt that drew
    /// `nonce` ([`staging_nonce`]). The epoch keeps two owners' attempts at the same range apart,
    /// the nonce two attempts of one owner (a retry never overwrites a file another attempt may
    /// still commit), the flattened final name keeps it unique.
    pub fn staging_path(&self, epoch: u64, nonce: &str, final_path: &str) -> String {
        format!(
            "{}/{:020}-{:020}-e{epoch}-{nonce}.{}",
            partition_staging_dir(&self.source, self.partition),
            self.first,
            self.last,
            final_path.replace('/', "__")
        )
    }

    /// The nonce of `staging` if it is a well-formed staging name of `final_path` under `epoch`
    /// (nonce exactly [`STAGING_NONCE_LEN`] lowercase hex digits), else `None`. The name
    /// without a nonce that earlier versions wrote (and may still stand in etcd after an
    /// upgrade) is accepted as the empty nonce, recomputed exactly.
    pub fn staging_nonce_of<'a>(
        &self,
        epoch: u64,
        final_path: &str,
        staging: &'a str,
    ) -> Option<&'a str> {
        let legacy = format!(
            "{}/{:020}-{:020}-e{epoch}.{}",
            partition_staging_dir(&self.source, self.partition),
            self.first,
            self.last,
            final_path.replace('/', "__")
        );
        if staging == legacy {
            return Some("");
        }
        let prefix = format!(
            "{}/{:020}-{:020}-e{epoch}-",
            partition_staging_dir(&self.source, self.partition),
            self.first,
            self.last
        );
        let rest = staging.strip_prefix(&prefix)?;
        let nonce = rest.get(..STAGING_NONCE_LEN)?;
        let ok = is_nonce(nonce)
            && rest[STAGING_NONCE_LEN..].strip_prefix('.') == Some(&final_path.replace('/', "__"));
        ok.then_some(nonce)
    }

    /// Path of the manifest segment that folds this range's manifests.
    pub fn segment_path(&self) -> String {
        format!(
            "{MANIFESTS_DIR}/{}/p{:05}/{:020}-{:020}.segment",
            sanitize(&self.source),
            self.partition,
            self.first,
            self.last
        )
    }
}

/// Hex digits in a staging nonce.
pub const STAGING_NONCE_LEN: usize = 16;

fn is_nonce(s: &str) -> bool {
    s.len() == STAGING_NONCE_LEN && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// A fresh random nonce for one staging attempt.
pub fn staging_nonce() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// The first offset and the epoch of a shard staging file, from its name (any file directly in
/// a partition's staging directory); `None` for anything else.
pub fn staging_first_epoch(path: &str) -> Option<(i64, u64)> {
    let name = path.rsplit('/').next()?;
    let (head, _) = name.split_once('.')?;
    // <first:020>-<last:020>-e<epoch>-<nonce>
    let mut parts = head.split('-');
    let (first, last, epoch, nonce) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let numeric = |s: &str| s.len() == 20 && s.bytes().all(|c| c.is_ascii_digit());
    if parts.next().is_some() || !numeric(first) || !numeric(last) || !is_nonce(nonce) {
        return None;
    }
    Some((first.parse().ok()?, epoch.strip_prefix('e')?.parse().ok()?))
}

/// Staging directory of one partition's shards (so recovery lists only its own partition).
pub fn partition_staging_dir(source: &str, partition: i32) -> String {
    format!("{STAGING_DIR}/{}/p{partition:05}", sanitize(source))
}

/// A summary table's path.
pub fn summary_table_path(name: &str) -> String {
    format!("{SUMMARY_DIR}/{name}.parquet")
}

/// The table name of a path under `summary/`, if it is one.
pub fn summary_table_name(path: &str) -> Option<&str> {
    path.strip_prefix(SUMMARY_DIR)?
        .strip_prefix('/')?
        .strip_suffix(".parquet")
}

/// Where the previous version of summary table `name` stands while a new one is renamed in
/// (`common::summary`); readers fall back to it. Not `*.parquet`, so globs skip it.
pub fn summary_aside_path(name: &str) -> String {
    format!("{SUMMARY_DIR}/{name}.parquet.prev")
}

/// The table name of an aside path ([`summary_aside_path`]), if it is one.
pub fn summary_aside_name(path: &str) -> Option<&str> {
    summary_table_name(path.strip_suffix(".prev")?)
}

/// A staging path for `final_path`, unique per process and call (summary tables, embedded runs).
pub fn temp_staging_path(final_path: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let flat = final_path.replace('/', "__");
    format!("{STAGING_DIR}/{}-{seq}.{flat}.tmp", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range() -> ShardRange {
        ShardRange {
            source: "nasa jul/95".into(),
            partition: 2,
            first: 100,
            last: 199,
        }
    }

    #[test]
    fn names_are_deterministic_and_sortable() {
        let r = range();
        assert_eq!(
            r.file_name(),
            "nasa_jul_95-p00002-00000000000000000100-00000000000000000199.parquet"
        );
        let later = ShardRange {
            first: 200,
            last: 1000,
            ..r.clone()
        };
        assert!(later.file_name() > r.file_name());
    }

    #[test]
    fn every_shard_path_is_under_its_directory() {
        let r = range();
        assert!(r
            .records_path(0)
            .starts_with("records/dt=1970-01-01/nasa_jul_95-p00002-"));
        assert!(r.rejects_path().starts_with("rejects/"));
        assert_eq!(
            r.partial_path(),
            "_partials/nasa_jul_95/p00002/00000000000000000100-00000000000000000199.partial"
        );
        let nonce = staging_nonce();
        let s = r.staging_path(7, &nonce, &r.rejects_path());
        assert!(s.starts_with("_staging/nasa_jul_95/p00002/"), "{s}");
        assert!(
            s.ends_with(&format!(
                "-e7-{nonce}.rejects__nasa_jul_95-p00002-00000000000000000100-00000000000000000199.parquet"
            )),
            "{s}"
        );
        assert_eq!(
            r.segment_path(),
            "_manifests/nasa_jul_95/p00002/00000000000000000100-00000000000000000199.segment"
        );
        assert!(temp_staging_path("summary/x.parquet").starts_with("_staging/"));
        assert_eq!(
            summary_table_name(&summary_table_path("host_count")),
            Some("host_count")
        );
        assert_eq!(summary_table_name("summary/x.csv"), None);
    }

    #[test]
    fn staging_names_carry_a_strict_nonce() {
        let r = range();
        let path = r.partial_path();
        let a = staging_nonce();
        assert_ne!(a, staging_nonce(), "two attempts draw different nonces");
        let s = r.staging_path(3, &a, &path);
        assert_eq!(r.staging_nonce_of(3, &path, &s), Some(a.as_str()));
        assert_eq!(staging_first_epoch(&s), Some((100, 3)));
        // Wrong epoch, wrong final name, or a nonce of the wrong length or alphabet: refused.
        assert_eq!(r.staging_nonce_of(4, &path, &s), None);
        assert_eq!(r.staging_nonce_of(3, &r.rejects_path(), &s), None);
        for bad in [
            "",
            "0123",
            "0123456789abcdeF",
            "0123456789abcdef0",
            "../../../../etc/x",
            "0123456789abcde/",
        ] {
            let s = r.staging_path(3, bad, &path);
            assert_eq!(r.staging_nonce_of(3, &path, &s), None, "{s}");
            assert_eq!(staging_first_epoch(&s), None, "{s}");
        }
        assert_eq!(
            staging_first_epoch(&temp_staging_path("summary/x.parquet")),
            None
        );
    }
}
