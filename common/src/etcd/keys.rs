//! The etcd key layout of one pipeline: every key Sawmill reads or writes is named here.

/// Root of every etcd key Sawmill writes.
pub const ETCD_ROOT: &str = "/sawmill";

/// etcd key layout of one pipeline (by default named after its topic). Human-readable with
/// `etcdctl get --prefix /sawmill/`; partitions and offsets are zero-padded so keys sort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(pipeline: &str) -> Self {
        Keys {
            prefix: format!("{ETCD_ROOT}/{}", sawmill_core::layout::sanitize(pipeline)),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Pipeline settings the coordinator publishes (JSON).
    pub fn config(&self) -> String {
        format!("{}/config", self.prefix)
    }

    pub fn partitions_prefix(&self) -> String {
        format!("{}/partitions/", self.prefix)
    }

    /// Every key of one partition (epoch, owner, next offset).
    pub fn partition_prefix(&self, partition: i32) -> String {
        format!("{}/partitions/{partition:05}/", self.prefix)
    }

    /// The owner epoch: bumped before every change of owner, compared by every commit.
    pub fn epoch(&self, partition: i32) -> String {
        format!("{}/partitions/{partition:05}/epoch", self.prefix)
    }

    /// The worker id owning the partition at the current epoch (informative).
    pub fn owner(&self, partition: i32) -> String {
        format!("{}/partitions/{partition:05}/owner", self.prefix)
    }

    /// The first offset not yet committed: the next shard must start exactly here.
    pub fn next_offset(&self, partition: i32) -> String {
        format!("{}/partitions/{partition:05}/next_offset", self.prefix)
    }

    pub fn manifests_prefix(&self) -> String {
        format!("{}/manifest/", self.prefix)
    }

    pub fn partition_manifests_prefix(&self, partition: i32) -> String {
        format!("{}/manifest/{partition:05}/", self.prefix)
    }

    pub fn manifest(&self, partition: i32, first: i64) -> String {
        format!("{}/manifest/{partition:05}/{first:020}", self.prefix)
    }

    pub fn segments_prefix(&self) -> String {
        format!("{}/segment/", self.prefix)
    }

    /// The partition's latest manifest segment (`SegmentRef`, JSON): what compaction folded.
    pub fn segment(&self, partition: i32) -> String {
        format!("{}/segment/{partition:05}", self.prefix)
    }

    /// The merge generation: bumped by each coordinator's merge actor when it starts and
    /// compared by every fold, so a coordinator that another one superseded cannot fold.
    pub fn merge_generation(&self) -> String {
        format!("{}/coordinator/merge_generation", self.prefix)
    }

    /// The coordinator's generation counter: bumped at every start and Join, so a request from
    /// an earlier coordinator's session is recognisably stale.
    pub fn generation(&self) -> String {
        format!("{}/coordinator/generation", self.prefix)
    }

    /// The leader key: the leading coordinator's advertised gRPC address, created only if
    /// absent and attached to its lease; its create revision is the leader's fencing token.
    pub fn leader(&self) -> String {
        format!("{}/coordinator/leader", self.prefix)
    }

    /// Which leader last replaced the summary tables, and how many times (JSON), written under
    /// the fence just before each replacement.
    pub fn summary_writer(&self) -> String {
        format!("{}/coordinator/summary", self.prefix)
    }

    /// Parses `(partition, first)` out of a key under [`Keys::manifests_prefix`].
    pub fn parse_manifest(&self, key: &str) -> Option<(i32, i64)> {
        let mut it = key.strip_prefix(&self.manifests_prefix())?.split('/');
        let p = it.next()?.parse().ok()?;
        let first = it.next()?.parse().ok()?;
        Some((p, first))
    }

    /// Parses the partition number out of a `partitions/<p>/...` key.
    pub fn partition_of(&self, key: &str) -> Option<i32> {
        key.strip_prefix(&self.partitions_prefix())?
            .split('/')
            .next()?
            .parse()
            .ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_readable_and_sorted() {
        let k = Keys::new("nasa logs");
        assert_eq!(k.epoch(3), "/sawmill/nasa_logs/partitions/00003/epoch");
        assert_eq!(
            k.manifest(3, 42),
            "/sawmill/nasa_logs/manifest/00003/00000000000000000042"
        );
        assert!(k.manifest(3, 100) > k.manifest(3, 99));
        assert_eq!(k.partition_of(&k.next_offset(12)), Some(12));
        assert_eq!(
            k.partition_of("/sawmill/other/partitions/00001/epoch"),
            None
        );
        assert_eq!(k.generation(), "/sawmill/nasa_logs/coordinator/generation");
        assert_eq!(k.leader(), "/sawmill/nasa_logs/coordinator/leader");
        assert!(k.summary_writer().starts_with(k.prefix()));
        assert_eq!(k.segment(3), "/sawmill/nasa_logs/segment/00003");
        assert!(k.segment(3).starts_with(&k.segments_prefix()));
        assert_eq!(k.parse_manifest(&k.segment(3)), None);
    }

    #[test]
    fn manifest_keys_parse_back() {
        let k = Keys::new("t");
        assert_eq!(k.parse_manifest(&k.manifest(3, 42)), Some((3, 42)));
        assert_eq!(k.parse_manifest(&k.manifest(0, 0)), Some((0, 0)));
        assert_eq!(k.parse_manifest("/sawmill/t/manifest/x/1"), None);
        assert_eq!(k.parse_manifest("/sawmill/u/manifest/00001/1"), None);
        assert_eq!(k.parse_manifest(&k.epoch(1)), None);
    }
}
