use super::*;
use crate::manifest::tests::laid_out;
use crate::manifest::{chain_end, plan_recovery, RecoveryAction};
use proptest::prelude::*;
use std::collections::BTreeSet;

/// A chain of shards `first..` with the given lengths (0 = an empty shard).
fn chain(first: i64, lens: &[i64]) -> Vec<ShardManifest> {
    let mut next = first;
    lens.iter()
        .map(|len| {
            let m = laid_out(next, next + len - 1, 4);
            next += len;
            m
        })
        .collect()
}

fn segment_of(previous: Option<&SegmentRef>, folded: &[ShardManifest]) -> (SegmentRef, Vec<u8>) {
    let file = ManifestSegment {
        previous: previous.cloned(),
        manifests: folded.to_vec(),
        partial: b"partial bytes".to_vec(),
    }
    .encode()
    .unwrap();
    (SegmentRef::folding(previous, folded, &file).unwrap(), file)
}

#[test]
fn segments_round_trip_and_chain() {
    let ms = chain(10, &[3, 1, 5, 2]);
    let (first, file) = segment_of(None, &ms[..2]);
    assert_eq!(
        (first.start, first.first, first.last, first.shards),
        (10, 10, 13, 2)
    );
    let decoded = ManifestSegment::decode(&file, &first).unwrap();
    assert_eq!(decoded.manifests, ms[..2]);
    assert_eq!(decoded.partial, b"partial bytes");
    let (second, file2) = segment_of(Some(&first), &ms[2..]);
    assert_eq!(
        (second.start, second.first, second.last, second.shards),
        (10, 14, 20, 4)
    );
    assert_eq!(second.records, 4);
    assert_eq!(
        ManifestSegment::decode(&file2, &second).unwrap().previous,
        Some(first)
    );
    assert!(second.path().starts_with("_manifests/logs/p00003/"));
}

#[test]
fn a_damaged_segment_is_refused() {
    let ms = chain(0, &[2, 2, 2]);
    let (r, file) = segment_of(None, &ms);
    for i in 0..file.len() {
        let mut bad = file.clone();
        bad[i] ^= 0x20;
        assert!(
            ManifestSegment::decode(&bad, &r).is_err(),
            "flipped byte {i} passed"
        );
    }
    for n in 0..file.len() {
        assert!(
            ManifestSegment::decode(&file[..n], &r).is_err(),
            "truncated to {n} passed"
        );
    }
    // A file whose checksum etcd agrees with, but whose chain is not the record's.
    let other = SegmentRef {
        last: 6,
        ..r.clone()
    };
    assert!(ManifestSegment::decode(&file, &other).is_err());
    let newer = SegmentRef {
        format: SEGMENT_FORMAT + 1,
        ..r.clone()
    };
    assert!(ManifestSegment::decode(&file, &newer).is_err());
    // Manifests with a path outside the layout are refused inside a segment too.
    let mut evil = ms.clone();
    evil[1].partial.path = "/etc/passwd".into();
    let (r, file) = segment_of(None, &evil);
    assert!(ManifestSegment::decode(&file, &r).is_err());
}

#[test]
fn plan_fold_is_exhaustively_sound() {
    let live = chain(100, &[2, 3, 1, 4, 2]);
    let seg = SegmentRef::folding(None, &chain(90, &[10]), b"x").unwrap();
    for n in 0..=live.len() {
        for skip in 0..2usize {
            // skip = 1: the live keys do not start where the chain does (a gap after the segment).
            let live = &live[skip.min(n)..n];
            for summarized in [100, 101, 102, 105, 106, 110, 112, 200] {
                for mask in 0u32..32 {
                    let published = |m: &ShardManifest| mask & (1 << ((m.first - 100) % 5)) == 0;
                    for threshold in 0..3 {
                        for max in 1..4 {
                            let plan =
                                plan_fold(Some(&seg), live, summarized, published, threshold, max);
                            let c = plan.count;
                            assert!(c <= max && c <= live.len());
                            if live.len() <= threshold {
                                assert_eq!(c, 0);
                                continue;
                            }
                            let mut next = seg.next_offset();
                            for m in &live[..c] {
                                assert_eq!(m.first, next, "folds only the chain");
                                assert!(m.next_offset() <= summarized && published(m));
                                next = m.next_offset();
                            }
                            // Maximal: the first one left out breaks a rule.
                            if c < max {
                                if let Some(m) = live.get(c) {
                                    assert!(
                                        m.first != next
                                            || m.next_offset() > summarized
                                            || !published(m)
                                    );
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

proptest! {
    /// Folding any prefix of a chain and reading the rest as live keys gives the same chain end
    /// as the unfolded chain; a folded manifest left behind in etcd (a replay) breaks the chain
    /// loudly instead of being counted twice.
    #[test]
    fn chains_continue_at_the_segment_end(
        lens in proptest::collection::vec(0i64..5, 1..30),
        cut in 0usize..30,
        first in 0i64..1000,
    ) {
        let ms = chain(first, &lens);
        let cut = cut.min(ms.len());
        let whole = chain_end(chain_start(None, &ms).unwrap(), &ms).unwrap();
        let seg = (cut > 0).then(|| SegmentRef::folding(None, &ms[..cut], b"x").unwrap());
        let live = &ms[cut..];
        match chain_start(seg.as_ref(), live) {
            Some(start) => prop_assert_eq!(chain_end(start, live).unwrap(), whole),
            None => prop_assert!(seg.is_none() && live.is_empty()),
        }
        if let Some(seg) = &seg {
            prop_assert_eq!(seg.next_offset() + live.iter().map(|m| m.last + 1 - m.first).sum::<i64>(), whole);
            let replayed: Vec<ShardManifest> = std::iter::once(ms[cut - 1].clone()).chain(live.iter().cloned()).collect();
            if ms[cut - 1].last >= ms[cut - 1].first {
                prop_assert!(chain_end(seg.next_offset(), &replayed).is_err());
            }
        }
    }

    /// Recovery after a fold sees only the live manifests: it publishes what they committed and
    /// deletes every leftover staging file of a folded shard (published before it was folded).
    #[test]
    fn recovery_after_a_fold_reads_only_live_keys(
        lens in proptest::collection::vec(1i64..5, 2..12),
        cut in 1usize..12,
        staged_mask in any::<u16>(),
    ) {
        let ms = chain(0, &lens);
        let cut = cut.min(ms.len() - 1);
        let live = &ms[cut..];
        let mut existing = BTreeSet::new();
        let mut staging = Vec::new();
        for (i, m) in ms.iter().enumerate() {
            for f in m.all_files() {
                if i >= cut && staged_mask & (1 << (i % 16)) != 0 {
                    existing.insert(f.staging.clone());
                    staging.push(f.staging.clone());
                } else {
                    existing.insert(f.path.clone());
                    if i < cut && staged_mask & (1 << (i % 16)) != 0 {
                        // a leftover copy of a published, folded shard
                        existing.insert(f.staging.clone());
                        staging.push(f.staging.clone());
                    }
                }
            }
        }
        let actions = plan_recovery(live, &existing, &staging).unwrap();
        for a in &actions {
            match a {
                RecoveryAction::Publish { path, .. } => {
                    prop_assert!(live.iter().any(|m| m.all_files().any(|f| &f.path == path)));
                }
                RecoveryAction::DeleteStaging(s) => {
                    prop_assert!(ms[..cut].iter().any(|m| m.all_files().any(|f| &f.staging == s)));
                }
            }
        }
        let published = actions.iter().filter(|a| matches!(a, RecoveryAction::Publish { .. })).count();
        let expected: usize = live.iter().enumerate()
            .filter(|(i, _)| staged_mask & (1 << ((i + cut) % 16)) != 0)
            .map(|(_, m)| m.all_files().count()).sum();
        prop_assert_eq!(published, expected);
    }
}
