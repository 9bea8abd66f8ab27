use super::*;
use crate::layout::ShardRange;
use proptest::prelude::*;

fn file(name: &str) -> ManifestFile {
    ManifestFile {
        staging: format!("_staging/t/p00000/{name}.tmp"),
        path: format!("records/{name}"),
        rows: 1,
        bytes: 1,
    }
}

fn manifest(first: i64, last: i64, names: &[&str]) -> ShardManifest {
    ShardManifest {
        source: "t".into(),
        partition: 0,
        first,
        last,
        epoch: 1,
        worker: "w".into(),
        records: 1,
        rejects: 0,
        files: names.iter().map(|n| file(n)).collect(),
        partial: file(&format!("partial-{first}")),
        committed_at_ms: 0,
    }
}

/// Every combination of stored state over a small domain: the classification is total and
/// fencing always wins.
#[test]
fn classify_is_exhaustively_sound() {
    let epochs = [None, Some(1), Some(2), Some(3)];
    let offsets = [None, Some(0), Some(10), Some(11), Some(20)];
    let manifests = [None, Some((2, 10)), Some((1, 10)), Some((2, 15))];
    let (my_epoch, first, last) = (2u64, 0i64, 10i64);
    for e in epochs {
        for n in offsets {
            for m in manifests {
                let s = StoredState {
                    epoch: e,
                    next_offset: n,
                    manifest_at_first: m,
                };
                let out = classify_failed_commit(my_epoch, first, last, s);
                match out {
                    CommitOutcome::Fenced { current_epoch } => {
                        assert_ne!(e, Some(my_epoch));
                        assert_eq!(current_epoch, e);
                    }
                    CommitOutcome::AlreadyCommitted => {
                        assert_eq!(e, Some(my_epoch));
                        assert_eq!(n, Some(11));
                        assert_eq!(m, Some((2, 10)));
                    }
                    CommitOutcome::OffsetMismatch { stored } => {
                        assert_eq!(e, Some(my_epoch));
                        assert_eq!(stored, n);
                        assert_ne!(n, Some(first));
                    }
                    CommitOutcome::Retry => {
                        assert_eq!((e, n), (Some(my_epoch), Some(first)));
                    }
                    CommitOutcome::Committed => panic!("a failed transaction is never Committed"),
                }
            }
        }
    }
}

#[test]
fn recovery_publishes_committed_and_deletes_orphans() {
    let m = manifest(0, 9, &["a", "b"]);
    let mut existing: BTreeSet<String> = BTreeSet::new();
    existing.insert("records/a".into()); // published
    existing.insert(m.files[1].staging.clone()); // committed, not published
    existing.insert(m.partial.path.clone());
    let orphan = "_staging/t/p00000/zombie.tmp".to_string();
    let staging = vec![m.files[1].staging.clone(), orphan.clone()];
    let actions = plan_recovery(std::slice::from_ref(&m), &existing, &staging).unwrap();
    assert_eq!(
        actions,
        vec![
            RecoveryAction::Publish {
                staging: m.files[1].staging.clone(),
                path: "records/b".into()
            },
            RecoveryAction::DeleteStaging(orphan),
        ]
    );
}

#[test]
fn recovery_reports_lost_files() {
    let m = manifest(0, 9, &["a"]);
    let lost = plan_recovery(&[m], &BTreeSet::new(), &[]).unwrap_err();
    assert_eq!(lost.len(), 2);
    assert_eq!(lost[0].path, "records/a");
}

#[test]
fn chain_detects_gaps_and_overlaps() {
    let ms = vec![
        manifest(10, 19, &[]),
        manifest(0, 9, &[]),
        manifest(20, 20, &[]),
    ];
    assert_eq!(chain_end(0, &ms), Ok(21));
    assert!(chain_end(0, &[manifest(0, 9, &[]), manifest(11, 12, &[])]).is_err());
    assert!(chain_end(0, &[manifest(0, 9, &[]), manifest(5, 12, &[])]).is_err());
    assert_eq!(chain_end(7, &[]), Ok(7));
}

proptest! {
    /// Whatever subset of files exists, recovery either reports lost files or leaves every
    /// committed file published exactly once and no unreferenced staging file behind.
    #[test]
    fn recovery_converges(
        n_shards in 1usize..5,
        published in proptest::collection::vec(any::<bool>(), 20),
        staged in proptest::collection::vec(any::<bool>(), 20),
        orphans in 0usize..4,
    ) {
        let manifests: Vec<ShardManifest> = (0..n_shards)
            .map(|i| manifest(i as i64 * 10, i as i64 * 10 + 9, &[&format!("f{i}a"), &format!("f{i}b")]))
            .collect();
        let files: Vec<&ManifestFile> = manifests.iter().flat_map(|m| m.all_files()).collect();
        let mut existing = BTreeSet::new();
        let mut staging_listing = Vec::new();
        for (i, f) in files.iter().enumerate() {
            if published[i] { existing.insert(f.path.clone()); }
            if staged[i] { existing.insert(f.staging.clone()); staging_listing.push(f.staging.clone()); }
        }
        for o in 0..orphans {
            let s = format!("_staging/t/p00000/orphan{o}.tmp");
            existing.insert(s.clone());
            staging_listing.push(s);
        }
        let should_lose = files.iter().enumerate().any(|(i, _)| !published[i] && !staged[i]);
        match plan_recovery(&manifests, &existing, &staging_listing) {
            Err(lost) => prop_assert!(should_lose && !lost.is_empty()),
            Ok(actions) => {
                prop_assert!(!should_lose);
                for a in &actions {
                    match a {
                        RecoveryAction::Publish { staging, path } => {
                            prop_assert!(existing.remove(staging));
                            prop_assert!(existing.insert(path.clone()));
                        }
                        RecoveryAction::DeleteStaging(s) => { prop_assert!(existing.remove(s)); }
                    }
                }
                for f in &files { prop_assert!(existing.contains(&f.path)); }
                prop_assert!(!existing.iter().any(|p| p.contains("orphan")));
            }
        }
    }
}

pub(crate) fn laid_out(first: i64, last: i64, epoch: u64) -> ShardManifest {
    let range = ShardRange {
        source: "logs".into(),
        partition: 3,
        first,
        last,
    };
    let file = |path: String| ManifestFile {
        staging: range.staging_path(epoch, "00c0ffee00c0ffee", &path),
        path,
        rows: 1,
        bytes: 1,
    };
    ShardManifest {
        source: "logs".into(),
        partition: 3,
        first,
        last,
        epoch,
        worker: "w".into(),
        records: 1,
        rejects: 1,
        files: vec![
            file(range.records_path(9000)),
            file(range.records_path(9001)),
            file(range.rejects_path()),
        ],
        partial: file(range.partial_path()),
        committed_at_ms: 0,
    }
}

#[test]
fn manifests_written_by_the_layout_pass() {
    laid_out(10, 20, 4).check_layout().unwrap();
    laid_out(10, 9, 1).check_layout().unwrap();
    // Written before staging names had a nonce: still in etcd after an upgrade, still exact.
    let mut m = laid_out(10, 20, 4);
    for f in m.files.iter_mut().chain(std::iter::once(&mut m.partial)) {
        f.staging = format!(
            "_staging/logs/p00003/{:020}-{:020}-e4.{}",
            10,
            20,
            f.path.replace('/', "__")
        );
    }
    m.check_layout().unwrap();
}

#[test]
fn a_path_outside_the_layout_is_refused() {
    type Damage = Box<dyn Fn(&mut ShardManifest)>;
    let cases: Vec<(&str, Damage)> = vec![
        (
            "absolute",
            Box::new(|m| m.files[0].path = "/etc/passwd".into()),
        ),
        (
            "dotdot",
            Box::new(|m| {
                m.files[0].path = format!("records/dt=2024-01-01/../../{}", m.range().file_name())
            }),
        ),
        (
            "other range",
            Box::new(|m| m.files[0].path = laid_out(11, 20, 4).files[0].path.clone()),
        ),
        (
            "bad date",
            Box::new(|m| {
                m.files[0].path = format!("records/dt=2024-1-011/{}", m.range().file_name())
            }),
        ),
        (
            "staging dotdot",
            Box::new(|m| m.files[1].staging = "_staging/../records/x.parquet".into()),
        ),
        (
            "staging of another epoch",
            Box::new(|m| m.files[2].staging = laid_out(10, 20, 5).files[2].staging.clone()),
        ),
        (
            "partial elsewhere",
            Box::new(|m| m.partial.path = "summary/host_count.parquet".into()),
        ),
        (
            "rejects twice",
            Box::new(|m| {
                let r = m.files[2].clone();
                m.files.push(r)
            }),
        ),
        ("inverted", Box::new(|m| m.last = m.first - 2)),
        (
            "staging without a nonce, of another epoch",
            Box::new(|m| {
                m.files[0].staging = format!(
                    "_staging/logs/p00003/{:020}-{:020}-e5.{}",
                    m.first,
                    m.last,
                    m.files[0].path.replace('/', "__")
                )
            }),
        ),
        (
            "empty nonce",
            Box::new(|m| m.partial.staging = m.range().staging_path(4, "", &m.partial.path)),
        ),
        (
            "short nonce",
            Box::new(|m| {
                m.partial.staging = m.range().staging_path(4, "00c0ffee", &m.partial.path)
            }),
        ),
        (
            "nonce with a slash",
            Box::new(|m| {
                m.partial.staging = m
                    .range()
                    .staging_path(4, "00c0ffee/0c0ffee", &m.partial.path)
            }),
        ),
        (
            "uppercase nonce",
            Box::new(|m| {
                m.partial.staging = m
                    .range()
                    .staging_path(4, "00C0FFEE00C0FFEE", &m.partial.path)
            }),
        ),
    ];
    for (name, damage) in cases {
        let mut m = laid_out(10, 20, 4);
        damage(&mut m);
        assert!(m.check_layout().is_err(), "{name} passed");
    }
}
