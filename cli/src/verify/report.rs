//! The verdict of `sawmill verify`, as a table for people and as JSON for machines.

use super::check::{PartitionReport, SeqReport};
use super::output::Read;
use super::tables::TableDiff;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug)]
pub struct VerifyReport {
    pub topic: String,
    pub output: String,
    pub partitions: Vec<PartitionReport>,
    /// Rows of another source (topic) under the same root.
    pub other_sources: u64,
    pub read: Read,
    /// Tables the recomputation produced.
    pub tables: usize,
    pub summary_found: bool,
    pub table_diffs: Vec<TableDiff>,
    /// Records and rejects in the recomputation.
    pub records: u64,
    pub rejects: u64,
    /// partition → etcd's committed next offset, when etcd was checked.
    pub etcd: Option<BTreeMap<i32, Option<i64>>>,
    pub seq: Vec<SeqReport>,
    pub untagged: u64,
}

impl VerifyReport {
    fn etcd_behind(&self) -> Vec<(i32, Option<i64>, i64)> {
        let Some(etcd) = &self.etcd else {
            return Vec::new();
        };
        self.partitions
            .iter()
            .filter_map(|p| {
                let next = etcd.get(&p.partition).copied().flatten();
                // An empty partition has nothing to commit.
                let ok = next == Some(p.end) || (next.is_none() && p.messages == 0);
                (!ok).then_some((p.partition, next, p.end))
            })
            .collect()
    }

    /// Problems found: 0 is a pass.
    pub fn failures(&self) -> u64 {
        let rows: u64 = self
            .partitions
            .iter()
            .map(|p| p.lost + p.duplicated + p.out_of_range + p.mismatched)
            .sum();
        rows + self.other_sources + self.table_diffs.len() as u64 + self.etcd_behind().len() as u64
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "sawmill verify: topic {} against {}",
            self.topic, self.output
        );
        let _ = writeln!(
            s,
            "{:>9} {:>23} {:>10} {:>10} {:>8} {:>10} {:>12} {:>12}",
            "partition",
            "topic range",
            "lines",
            "rows",
            "lost",
            "duplicated",
            "out of range",
            "not in topic"
        );
        for p in &self.partitions {
            let _ = writeln!(
                s,
                "{:>9} {:>23} {:>10} {:>10} {:>8} {:>10} {:>12} {:>12}{}",
                p.partition,
                format!("{}..{}", p.low, p.end),
                p.messages,
                p.rows,
                p.lost,
                p.duplicated,
                p.out_of_range,
                p.mismatched,
                if p.passed() { "" } else { "  FAIL" }
            );
        }
        for p in self.partitions.iter().filter(|p| !p.passed()) {
            for (what, ex) in [
                ("lost", &p.lost_examples),
                ("duplicated", &p.duplicated_examples),
                ("out of range", &p.out_of_range_examples),
                ("not in topic", &p.mismatched_examples),
            ] {
                if !ex.is_empty() {
                    let _ = writeln!(s, "  partition {} {what}: offsets {ex:?}...", p.partition);
                }
            }
        }
        let _ = writeln!(
            s,
            "read {} files: {} records, {} rejects (recomputed: {} records, {} rejects)",
            self.read.files, self.read.records, self.read.rejects, self.records, self.rejects
        );
        if self.other_sources > 0 {
            let _ = writeln!(
                s,
                "FAIL: {} rows of another topic under this root",
                self.other_sources
            );
        }
        if !self.summary_found {
            let _ = writeln!(
                s,
                "FAIL: no summary/ tables: wait for the coordinator's next summary (or stop it), or run `sawmill summarize`"
            );
        } else if self.table_diffs.is_empty() {
            let _ = writeln!(
                s,
                "summary: all {} tables equal the recomputation",
                self.tables
            );
        }
        for d in self.table_diffs.iter().filter(|_| self.summary_found) {
            let _ = writeln!(s, "FAIL: summary table {}: {}", d.table, d.problem);
        }
        for (p, next, end) in self.etcd_behind() {
            let next = next.map_or("none".to_string(), |n| n.to_string());
            let _ = writeln!(
                s,
                "FAIL: partition {p}: etcd's committed next offset is {next}, the topic ends at {end} (is the pipeline caught up?)"
            );
        }
        for q in &self.seq {
            let _ = writeln!(
                s,
                "sequence run {} key {}: {} tagged lines, n up to {}, {} gaps, {} duplicated (producer side)",
                q.run, q.key, q.distinct, q.max_n, q.gaps, q.duplicated
            );
        }
        let _ = match self.failures() {
            0 => writeln!(s, "PASS: every line exactly once, summary exact"),
            n => writeln!(s, "FAIL: {n} problem(s)"),
        };
        s
    }

    pub fn json(&self) -> Value {
        json!({
            "topic": self.topic,
            "output": self.output,
            "passed": self.failures() == 0,
            "failures": self.failures(),
            "partitions": self.partitions.iter().map(|p| json!({
                "partition": p.partition,
                "low": p.low,
                "end": p.end,
                "lines": p.messages,
                "rows": p.rows,
                "lost": p.lost,
                "duplicated": p.duplicated,
                "out_of_range": p.out_of_range,
                "not_in_topic": p.mismatched,
                "examples": {
                    "lost": p.lost_examples,
                    "duplicated": p.duplicated_examples,
                    "out_of_range": p.out_of_range_examples,
                    "not_in_topic": p.mismatched_examples,
                },
            })).collect::<Vec<_>>(),
            "other_source_rows": self.other_sources,
            "read": {
                "files": self.read.files,
                "records": self.read.records,
                "rejects": self.read.rejects,
            },
            "recomputed": { "records": self.records, "rejects": self.rejects },
            "summary": {
                "found": self.summary_found,
                "tables": self.tables,
                "diffs": self.table_diffs.iter().map(|d| json!({
                    "table": d.table, "problem": d.problem,
                })).collect::<Vec<_>>(),
            },
            "etcd_behind": self.etcd_behind().iter().map(|(p, next, end)| json!({
                "partition": p, "next_offset": next, "end": end,
            })).collect::<Vec<_>>(),
            "sequences": self.seq.iter().map(|q| json!({
                "run": q.run, "key": q.key, "distinct": q.distinct, "max_n": q.max_n,
                "gaps": q.gaps, "duplicated": q.duplicated,
            })).collect::<Vec<_>>(),
            "untagged_lines": self.untagged,
        })
    }
}
