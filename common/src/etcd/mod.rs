//! Everything Sawmill keeps in etcd: the key layout ([`Keys`]) and every read and transaction —
//! owner epochs, next offsets, shard manifests, the coordinator's generation.
//!
//! Decisions live in `sawmill_core::manifest`; this module only reads and writes. Every write
//! that matters is one transaction guarded by the partition's epoch, so a stale owner can never
//! change a partition's state; every coordinator write is also guarded by the leader's fence
//! (`leader.rs`), so a deposed coordinator can never change anything. No raw client leaves this
//! module.

mod fold;
mod keys;
mod leader;

pub use fold::{StoredManifest, StoredSegment};
pub use keys::{Keys, ETCD_ROOT};
pub use leader::{Campaign, Fence, LeaderInfo, LeaseKeepAlive};

use crate::error::{Error, Result};
use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, GetOptions, Identity, TlsOptions, Txn,
    TxnOp,
};
pub use sawmill_core::connection::EtcdAuth;
use sawmill_core::manifest::{classify_failed_commit, CommitOutcome, ShardManifest, StoredState};
use std::collections::BTreeMap;
use std::time::Duration;

/// A partition's ownership state in etcd.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredPartition {
    pub epoch: Option<u64>,
    pub owner: Option<String>,
    pub next_offset: Option<i64>,
}

#[derive(Clone)]
pub struct Checkpoints {
    client: Client,
    keys: Keys,
    endpoints: String,
    /// Set on a leading coordinator's copy: every write it makes is fenced (`leader.rs`).
    fence: Option<std::sync::Arc<Fence>>,
}

impl std::fmt::Debug for Checkpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpoints")
            .field("endpoints", &self.endpoints)
            .field("keys", &self.keys)
            .finish()
    }
}

fn etcd_err(endpoints: &str, what: &str) -> impl FnOnce(etcd_client::Error) -> Error {
    let endpoints = endpoints.to_string();
    let what = what.to_string();
    move |e| {
        let text = e.to_string();
        let lower = text.to_ascii_lowercase();
        let hint = if lower.contains("permission denied") || lower.contains("authentication") {
            "check --etcd-user/--etcd-password-file and that the user's role may read and write \
             this pipeline's prefix"
        } else if lower.contains("certificate")
            || lower.contains("tls")
            || lower.contains("handshake")
        {
            "check --etcd-ca, --etcd-cert and --etcd-key"
        } else {
            "is etcd running? check --etcd, and its TLS and user settings"
        };
        Error::Etcd(format!("{what} at {endpoints}: {text} ({hint})"))
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &[u8]) -> Result<T> {
    std::str::from_utf8(v)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| Error::Corrupt {
            what: key.to_string(),
            message: format!("not a number: {:?}", String::from_utf8_lossy(v)),
        })
}

/// A manifest from etcd, refused unless every name in it is the layout's for its range.
fn decode_manifest(key: &str, value: &[u8]) -> Result<ShardManifest> {
    let corrupt = |message: String| Error::Corrupt {
        what: key.to_string(),
        message,
    };
    let m: ShardManifest = serde_json::from_slice(value).map_err(|e| corrupt(e.to_string()))?;
    m.check_layout().map_err(corrupt)?;
    Ok(m)
}

impl Checkpoints {
    /// Connects to etcd (`http://host:port`, comma-separated for several) for one pipeline.
    /// Fails within a few seconds when etcd is unreachable.
    pub async fn connect(endpoints: &str, pipeline: &str) -> Result<Self> {
        Self::connect_with(endpoints, pipeline, &EtcdAuth::default()).await
    }

    /// [`Self::connect`] through etcd's security: TLS (server CA, client certificate) and a
    /// user. `https://` endpoints, or any TLS setting, turn TLS on.
    pub async fn connect_with(endpoints: &str, pipeline: &str, auth: &EtcdAuth) -> Result<Self> {
        let tls = auth.tls || endpoints.contains("https://");
        let eps: Vec<String> = endpoints
            .split(',')
            .map(|e| {
                let host = e
                    .trim()
                    .trim_start_matches("http://")
                    .trim_start_matches("https://");
                if tls && !host.is_empty() {
                    format!("https://{host}")
                } else {
                    host.to_string()
                }
            })
            .filter(|e| !e.is_empty())
            .collect();
        if eps.is_empty() {
            return Err(Error::Config(format!(
                "no etcd endpoint in {endpoints:?}: use http://host:2379"
            )));
        }
        let mut opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(5), Duration::from_secs(5));
        if tls {
            let mut t = TlsOptions::new();
            if let Some(ca) = &auth.ca_pem {
                t = t.ca_certificate(Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &auth.identity {
                t = t.identity(Identity::from_pem(cert, key));
            }
            opts = opts.with_tls(t);
        }
        if let Some((user, password)) = &auth.user {
            opts = opts.with_user(user.clone(), password.clone());
        }
        let mut client = Client::connect(&eps, Some(opts))
            .await
            .map_err(etcd_err(endpoints, "cannot connect to etcd"))?;
        // connect() is lazy; one read proves the endpoint answers (and, with RBAC, that this
        // user may read the pipeline's own prefix, the only one it needs).
        let keys = Keys::new(pipeline);
        client
            .get(
                format!("{}/", keys.prefix()),
                Some(GetOptions::new().with_count_only()),
            )
            .await
            .map_err(etcd_err(endpoints, "etcd does not answer"))?;
        Ok(Checkpoints {
            client,
            keys,
            endpoints: endpoints.to_string(),
            fence: None,
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    async fn get_value(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let resp = self
            .client
            .get(key, None)
            .await
            .map_err(etcd_err(&self.endpoints, "etcd read failed"))?;
        Ok(resp.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// The state of one partition.
    pub async fn state(&mut self, partition: i32) -> Result<StoredPartition> {
        // One read of the partition's keys: a consistent snapshot, one round trip.
        let prefix = self.keys.partition_prefix(partition);
        Ok(self
            .read_partitions(&prefix)
            .await?
            .remove(&partition)
            .unwrap_or_default())
    }

    /// Every partition with state in etcd.
    pub async fn partitions(&mut self) -> Result<BTreeMap<i32, StoredPartition>> {
        let prefix = self.keys.partitions_prefix();
        self.read_partitions(&prefix).await
    }

    /// Partition states from every key under `prefix` (a `partitions/` subtree).
    async fn read_partitions(&mut self, prefix: &str) -> Result<BTreeMap<i32, StoredPartition>> {
        let resp = self
            .client
            .get(prefix, Some(GetOptions::new().with_prefix()))
            .await
            .map_err(etcd_err(&self.endpoints, "etcd read failed"))?;
        let mut out: BTreeMap<i32, StoredPartition> = BTreeMap::new();
        for kv in resp.kvs() {
            let key = String::from_utf8_lossy(kv.key()).to_string();
            let Some(p) = self.keys.partition_of(&key) else {
                continue;
            };
            let stored = out.entry(p).or_default();
            if key.ends_with("/epoch") {
                stored.epoch = Some(parse_num(&key, kv.value())?);
            } else if key.ends_with("/next_offset") {
                stored.next_offset = Some(parse_num(&key, kv.value())?);
            } else if key.ends_with("/owner") {
                stored.owner = Some(String::from_utf8_lossy(kv.value()).to_string());
            }
        }
        Ok(out)
    }

    /// Makes `owner` the partition's owner under a new epoch, fencing every earlier owner: from
    /// this transaction on, their commits fail. Returns the new epoch.
    pub async fn bump_epoch(&mut self, partition: i32, owner: &str) -> Result<u64> {
        let key = self.keys.epoch(partition);
        let owner_key = self.keys.owner(partition);
        self.increment(&key, || vec![TxnOp::put(owner_key.as_str(), owner, None)])
            .await?
            .ok_or_else(|| {
                Error::Etcd(format!(
                    "could not bump the epoch of partition {partition}: too much contention"
                ))
            })
    }

    /// Adds one to the number at `key` (a missing key counts as 0) with a compare-and-swap,
    /// applying `also()`'s operations in the same transaction, fenced when this copy carries a
    /// fence. Returns the new value, or `None` when 100 attempts all lost a race.
    async fn increment(&mut self, key: &str, also: impl Fn() -> Vec<TxnOp>) -> Result<Option<u64>> {
        for _ in 0..100 {
            let current = self.get_value(key).await?;
            let next = match &current {
                Some(v) => parse_num::<u64>(key, v)? + 1,
                None => 1,
            };
            let guard = match current {
                Some(v) => Compare::value(key, CompareOp::Equal, v),
                None => Compare::create_revision(key, CompareOp::Equal, 0),
            };
            let mut ops = vec![TxnOp::put(key, next.to_string(), None)];
            ops.extend(also());
            if self.fenced_txn(vec![guard], ops).await? {
                return Ok(Some(next));
            }
        }
        Ok(None)
    }

    /// Sets the next offset if none is stored yet (first owner ever), guarded by the epoch.
    /// Returns the stored next offset afterwards.
    pub async fn init_next_offset(
        &mut self,
        partition: i32,
        epoch: u64,
        offset: i64,
    ) -> Result<i64> {
        let next_key = self.keys.next_offset(partition);
        let txn = Txn::new()
            .when([
                Compare::value(
                    self.keys.epoch(partition),
                    CompareOp::Equal,
                    epoch.to_string(),
                ),
                Compare::create_revision(next_key.as_str(), CompareOp::Equal, 0),
            ])
            .and_then([TxnOp::put(next_key.as_str(), offset.to_string(), None)]);
        self.client
            .txn(txn)
            .await
            .map_err(etcd_err(&self.endpoints, "etcd transaction failed"))?;
        let stored = self.state(partition).await?;
        if stored.epoch != Some(epoch) {
            return Err(Error::Fenced {
                partition,
                epoch,
                current: stored.epoch,
            });
        }
        stored
            .next_offset
            .ok_or_else(|| Error::Etcd(format!("next offset of partition {partition} vanished")))
    }

    /// Step 2 of the commit protocol: one transaction that succeeds only if the partition's epoch
    /// is still `manifest.epoch` and its next offset is `manifest.first`; it stores the new next
    /// offset and the manifest. A lost answer is resolved by [`classify_failed_commit`] on retry.
    pub async fn commit(&mut self, m: &ShardManifest) -> Result<CommitOutcome> {
        let p = m.partition;
        let next_key = self.keys.next_offset(p);
        let manifest_key = self.keys.manifest(p, m.first);
        let body = serde_json::to_string(m)
            .map_err(|e| Error::Pipeline(format!("cannot encode manifest: {e}")))?;
        let txn = Txn::new()
            .when([
                Compare::value(self.keys.epoch(p), CompareOp::Equal, m.epoch.to_string()),
                Compare::value(next_key.as_str(), CompareOp::Equal, m.first.to_string()),
            ])
            .and_then([
                TxnOp::put(next_key.as_str(), m.next_offset().to_string(), None),
                TxnOp::put(manifest_key.as_str(), body, None),
            ]);
        let answer = self.client.txn(txn).await.map_err(|e| e.to_string());
        // The chaos tests lose the answer of a transaction that applied (failpoints builds only).
        let answer = answer.and_then(|resp| {
            crate::failpoints::check(crate::failpoints::COMMIT_ANSWER_LOST)
                .map(|()| resp)
                .map_err(|e| e.to_string())
        });
        match answer {
            Ok(resp) if resp.succeeded() => return Ok(CommitOutcome::Committed),
            Ok(_) => {}
            // The answer is lost, not necessarily the write: read back and classify.
            Err(e) => {
                tracing::warn!(partition = p, first = m.first, error = %e, "commit answer lost, reading back")
            }
        }
        let stored = self.state(p).await?;
        let at_first = self.manifest(p, m.first).await?.map(|x| (x.epoch, x.last));
        Ok(classify_failed_commit(
            m.epoch,
            m.first,
            m.last,
            StoredState {
                epoch: stored.epoch,
                next_offset: stored.next_offset,
                manifest_at_first: at_first,
            },
        ))
    }

    pub async fn manifest(&mut self, partition: i32, first: i64) -> Result<Option<ShardManifest>> {
        let key = self.keys.manifest(partition, first);
        match self.get_value(&key).await? {
            None => Ok(None),
            Some(v) => decode_manifest(&key, &v).map(Some),
        }
    }

    /// Live (not yet folded) manifests of one partition (or all partitions), ordered by
    /// partition and offset. Read in pages, so no single answer grows with a backlog.
    pub async fn manifests(&mut self, partition: Option<i32>) -> Result<Vec<ShardManifest>> {
        let prefix = match partition {
            Some(p) => self.keys.partition_manifests_prefix(p),
            None => self.keys.manifests_prefix(),
        };
        Ok(self
            .manifest_pages(prefix.clone().into_bytes(), &prefix, usize::MAX)
            .await?
            .into_iter()
            .map(|s| s.manifest)
            .collect())
    }

    /// Bumps the coordinator's generation (compare-and-swap) and returns the new value.
    pub async fn next_generation(&mut self) -> Result<u64> {
        let key = self.keys.generation();
        self.increment(&key, Vec::new).await?.ok_or_else(|| {
            Error::Etcd(format!(
                "too much contention on {key}: is another coordinator of this pipeline starting?"
            ))
        })
    }

    /// Deletes every key of the pipeline (tests and `--reset`).
    pub async fn delete_all(&mut self) -> Result<()> {
        let prefix = format!("{}/", self.keys.prefix());
        self.client
            .delete(
                prefix.as_str(),
                Some(etcd_client::DeleteOptions::new().with_prefix()),
            )
            .await
            .map_err(etcd_err(&self.endpoints, "etcd delete failed"))?;
        Ok(())
    }
}
