//! HDFS behind the [`Storage`] trait, through the pure-Rust `hdfs-native` client.
//!
//! An output root `hdfs://host:port/base/path` means: talk to the NameNode at `host:port`, and
//! join every root-relative path to `/base/path`.
//!
//! # Threads
//!
//! Every call is a future on the caller's runtime: nothing blocks a thread. The client's
//! background tasks (the NameNode connection's reader, DataNode streams) are spawned on the
//! runtime that ran [`HdfsStorage::open`], so use a storage only while that runtime runs. A
//! plain thread that needs storage blocks on a `Handle` of that (multi-thread) runtime.
//!
//! # Bounded retries
//!
//! Out of the box hdfs-native retries an unreachable NameNode 15 times with back-off up to 15 s
//! (about three minutes), and it puts no timeout on the TCP connect. `CLIENT_CONFIG` caps the
//! retry loop at ~12 s, and every call runs under a timeout so a black-holed address cannot hang
//! a worker either.

use super::Storage;
use crate::error::{Error, Result};
use hdfs_native::{Client, ClientBuilder, HdfsError, WriteOptions};
use sawmill_core::connection::ConnectionSettings;
use std::future::Future;
use std::time::Duration;

/// Settings hdfs-native actually reads (it ignores Hadoop's `ipc.client.connect.*` keys).
const CLIENT_CONFIG: &[(&str, &str)] = &[
    // 4 retries after the first try, sleeping ~1, 2, 4, 4 s (±50% jitter, capped at 4 s): a dead
    // NameNode errors after ~6-12 s, while a NameNode restart of a few seconds is ridden out.
    ("dfs.client.failover.max.attempts", "4"),
    ("dfs.client.failover.sleep.base.millis", "500"),
    ("dfs.client.failover.sleep.max.millis", "4000"),
    // DataNode connect and idle-read timeout (default 60 s): a hung DataNode fails a write sooner.
    ("dfs.client.socket-timeout", "30000"),
];

/// Upper bound on one NameNode call (mkdirs, rename, delete, exists). Above the ~12 s retry
/// loop, so it only fires when a connect hangs (a black-holed address), which hdfs-native
/// does not time out itself.
const META_TIMEOUT: Duration = Duration::from_secs(20);
/// Upper bound on a whole-file read or write, or a listing (many NameNode pages).
const DATA_TIMEOUT: Duration = Duration::from_secs(300);

/// Directory permission for created directories (`rwxr-xr-x`).
const DIR_PERMISSION: u32 = 0o755;

/// Which kind of call: decides the timeout and how a failure is explained.
#[derive(Clone, Copy)]
enum Call {
    /// Talks only to the NameNode.
    Meta,
    /// Also moves data to or from DataNodes, or may take many NameNode round trips.
    Data,
}

/// An HDFS directory as a [`Storage`] root. See the module docs for the threading rule.
#[derive(Debug)]
pub struct HdfsStorage {
    /// `hdfs://host:port`, for messages.
    namenode: String,
    /// Absolute base path without a trailing `/`; empty for the file-system root.
    base: String,
    client: Client,
}

impl HdfsStorage {
    /// Connects to `hdfs://host:port/base/path`, creates the base directory and creates and
    /// deletes an empty probe file, so a bad URL, a dead NameNode or missing permissions fail
    /// before any work is done. (Empty, so no DataNode is involved: closing a file with a block
    /// often waits 500 ms in hdfs-native for the DataNode's block report, which made every
    /// worker start half a second slower. An unreachable DataNode shows at the first write, as
    /// a logged and retried storage error that names it.)
    pub async fn open(url: &str) -> Result<Self> {
        Self::open_with(url, &ConnectionSettings::default()).await
    }

    /// [`Self::open`] as the Kerberos principal of `conn` (keytab or ticket cache), with its
    /// Hadoop configuration directory (else `HADOOP_CONF_DIR`).
    pub async fn open_with(url: &str, conn: &ConnectionSettings) -> Result<Self> {
        let (namenode, base) = parse_url(url)?;
        let mut builder = ClientBuilder::new()
            .with_url(namenode.as_str())
            .with_config(CLIENT_CONFIG.iter().copied())
            // Pin the client's background tasks to the runtime opening the storage, whatever
            // runtime a later call happens to come from (see the module docs).
            .with_io_runtime(tokio::runtime::Handle::current());
        if let Some(dir) = &conn.hadoop_conf_dir {
            builder = builder.with_config_dir(dir.display().to_string());
        }
        if let Some(p) = &conn.hdfs_principal {
            builder = builder.with_kerberos_principal(p.clone());
        }
        if let Some(k) = &conn.hdfs_keytab {
            builder = builder.with_kerberos_keytab(k.display().to_string());
        }
        if let Some(c) = &conn.hdfs_ticket_cache {
            builder = builder.with_kerberos_cache(c.clone());
        }
        let client = builder.build().map_err(|e| {
            Error::Config(format!(
                "cannot use HDFS URL {url:?}: {e} (expected hdfs://host:port/path; for a \
                 Kerberos cluster check --hdfs-principal, --hdfs-keytab and KRB5_CONFIG)"
            ))
        })?;
        let storage = HdfsStorage {
            namenode,
            base,
            client,
        };
        storage.check_writable().await?;
        Ok(storage)
    }

    async fn check_writable(&self) -> Result<()> {
        let base = self.abs("");
        self.run(
            "create the output directory",
            "",
            Call::Meta,
            self.client.mkdirs(&base, DIR_PERMISSION, true),
        )
        .await?;
        // Unique per process and instant: two workers opening the same root at once would
        // otherwise fight over one file's lease.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let probe = format!(".sawmill-write-probe-{}-{nanos}", std::process::id());
        self.write(&probe, b"").await?;
        self.delete(&probe).await
    }

    /// Absolute HDFS path of a root-relative path.
    fn abs(&self, path: &str) -> String {
        let rel = path.trim_matches('/');
        match (self.base.is_empty(), rel.is_empty()) {
            (true, true) => "/".to_string(),
            (false, true) => self.base.clone(),
            _ => format!("{}/{rel}", self.base),
        }
    }

    /// Full URL of a root-relative path, for messages.
    fn url_of(&self, path: &str) -> String {
        format!("{}{}", self.namenode, self.abs(path))
    }

    /// Runs one client call to completion under the call's timeout.
    async fn run<T>(
        &self,
        op: &str,
        path: &str,
        call: Call,
        fut: impl Future<Output = Result<T, HdfsError>>,
    ) -> Result<T> {
        let limit = match call {
            Call::Meta => META_TIMEOUT,
            Call::Data => DATA_TIMEOUT,
        };
        match tokio::time::timeout(limit, fut).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.explain(op, path, call, e)),
            Err(_) => Err(self.error(
                path,
                match call {
                    Call::Meta => self.unreachable(op, &format!("no answer within {}s", limit.as_secs())),
                    Call::Data => format!(
                        "{op} took longer than {}s (check the NameNode and DataNode logs; is a DataNode hung?)",
                        limit.as_secs()
                    ),
                },
            )),
        }
    }

    fn unreachable(&self, op: &str, why: &str) -> String {
        format!(
            "cannot reach HDFS NameNode at {}: {op} failed: {why} (is HDFS running? check the URL)",
            self.namenode
        )
    }

    fn error(&self, path: &str, message: String) -> Error {
        Error::Storage {
            path: self.url_of(path),
            message,
        }
    }

    /// Turns a client error into a message that says what to do next.
    fn explain(&self, op: &str, path: &str, call: Call, e: HdfsError) -> Error {
        let message = match (&e, call) {
            // A NameNode-only call that hit an I/O error never got an answer: connect refused,
            // reset, DNS failure.
            (HdfsError::IOError(_), Call::Meta) => self.unreachable(op, &e.to_string()),
            (HdfsError::IOError(_) | HdfsError::DataTransferError(_), Call::Data) => format!(
                "{op} failed: {e} (is HDFS running? check the URL and that the DataNodes are reachable from here)"
            ),
            (HdfsError::AlreadyExists(_), _) => format!("{op} failed: destination exists"),
            (HdfsError::FileNotFound(_), _) => format!("{op} failed: no such file or directory"),
            (HdfsError::RPCError(class, msg), _) if class.ends_with("FileNotFoundException") => {
                format!("{op} failed: no such file or directory ({msg})")
            }
            (HdfsError::RPCError(class, _), _) if class.ends_with("AccessControlException") => format!(
                "{op} failed: {e} (permission denied: give this user write access to the output directory, or set HADOOP_USER_NAME)"
            ),
            (HdfsError::RPCError(class, _), _) if class.ends_with("SafeModeException") => {
                format!("{op} failed: {e} (the NameNode is in safe mode: wait for it to leave, or check its DataNodes)")
            }
            _ => format!("{op} failed: {e} (check the NameNode and DataNode logs)"),
        };
        self.error(path, message)
    }
}

#[async_trait::async_trait]
impl Storage for HdfsStorage {
    fn root(&self) -> String {
        self.url_of("")
    }

    async fn write(&self, path: &str, data: &[u8]) -> Result<()> {
        let abs = self.abs(path);
        let data = bytes::Bytes::copy_from_slice(data);
        // create_parent is `mkdirs -p` inside the create call itself: one NameNode round trip
        // per file instead of two.
        let options = WriteOptions::default().overwrite(true).create_parent(true);
        self.run("write", path, Call::Data, async {
            let mut writer = self.client.create(&abs, options).await?;
            writer.write_bytes(data).await?;
            // close() returns only after the NameNode has completed the file, i.e. every block
            // reached its minimum replication: from here on the data is durable.
            writer.close().await
        })
        .await
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>> {
        let abs = self.abs(path);
        self.run("read", path, Call::Data, async {
            let reader = self.client.read(&abs).await?;
            let mut buf = vec![0; reader.file_length()];
            reader.read_range_buf(&mut buf, 0).await?;
            Ok(buf)
        })
        .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (src, dst) = (self.abs(from), self.abs(to));
        let parent = parent_dir(&dst);
        self.run("rename", to, Call::Meta, async {
            // HDFS renames do not create the destination's parent.
            self.client.mkdirs(&parent, DIR_PERMISSION, true).await?;
            // overwrite=false: the NameNode refuses atomically if `dst` exists, the no-clobber
            // guarantee `publish` relies on.
            self.client.rename(&src, &dst, false).await
        })
        .await
    }

    async fn replace(&self, from: &str, to: &str) -> Result<bool> {
        let (src, dst) = (self.abs(from), self.abs(to));
        let parent = parent_dir(&dst);
        self.run("replace", to, Call::Meta, async {
            self.client.mkdirs(&parent, DIR_PERMISSION, true).await?;
            // overwrite=true: the NameNode's rename2 with OVERWRITE replaces `dst` in one step.
            self.client.rename(&src, &dst, true).await
        })
        .await?;
        Ok(true)
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>> {
        let abs = self.abs(dir);
        let found = self
            .run("list", dir, Call::Data, async {
                let iter = self.client.list_status_iter(&abs, true);
                let mut files = Vec::new();
                while let Some(next) = iter.next().await {
                    match next {
                        Ok(status) if !status.isdir => files.push(status.path),
                        Ok(_) => {}
                        // The directory, or a subdirectory removed while we walked it, is missing:
                        // a missing directory lists as empty. The walk goes on with its siblings.
                        Err(HdfsError::FileNotFound(_)) => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(files)
            })
            .await?;
        let prefix = format!("{}/", self.base);
        let mut out: Vec<String> = found
            .into_iter()
            .filter_map(|p| p.strip_prefix(&prefix).map(str::to_string))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let abs = self.abs(path);
        // Non-recursive, so a mistaken directory path fails instead of wiping a tree. The
        // NameNode answers `false` for a missing file, which is fine here.
        self.run("delete", path, Call::Meta, self.client.delete(&abs, false))
            .await
            .map(|_| ())
    }

    async fn exists(&self, path: &str) -> Result<bool> {
        let abs = self.abs(path);
        self.run("check", path, Call::Meta, async {
            match self.client.get_file_info(&abs).await {
                Ok(_) => Ok(true),
                Err(HdfsError::FileNotFound(_)) => Ok(false),
                Err(e) => Err(e),
            }
        })
        .await
    }
}

/// Splits `hdfs://host:port/base/path` into the NameNode URL (`hdfs://host:port`) and the base
/// path (`/base/path`, empty for the root).
fn parse_url(url: &str) -> Result<(String, String)> {
    let bad = |why: String| {
        Error::Config(format!(
            "bad HDFS URL {url:?}: {why} (expected hdfs://host:port/path, e.g. hdfs://127.0.0.1:9000/sawmill/out)"
        ))
    };
    let rest = url
        .strip_prefix("hdfs://")
        .ok_or_else(|| bad("it must start with hdfs://".into()))?;
    if rest.contains(['?', '#', '@']) {
        return Err(bad(
            "user names, query strings and fragments are not supported".into(),
        ));
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    // Without a port hdfs-native would look the host up as an HA nameservice in the Hadoop
    // config; Sawmill takes the NameNode address directly.
    let (host, port) = authority.rsplit_once(':').ok_or_else(|| {
        bad(format!(
            "{authority:?} has no port: give the NameNode RPC address as host:port"
        ))
    })?;
    let bracketed_v6 = host.starts_with('[') && host.ends_with(']');
    if host.is_empty() || (host.contains(':') && !bracketed_v6) {
        return Err(bad(format!("{authority:?} has no valid host")));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => {
            return Err(bad(format!(
                "port {port:?} is not a number from 1 to 65535"
            )))
        }
    }
    let mut base = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if segment == "." || segment == ".." {
            return Err(bad("`.` and `..` are not allowed in the path".into()));
        }
        base.push('/');
        base.push_str(segment);
    }
    Ok((format!("hdfs://{authority}"), base))
}

/// The directory an absolute HDFS path is in (`/` for a top-level name): HDFS renames do not
/// create it.
fn parent_dir(path: &str) -> String {
    path.rsplit_once('/')
        .map_or("/", |(p, _)| if p.is_empty() { "/" } else { p })
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::parse_url;

    #[test]
    fn urls() {
        let ok = |u: &str| parse_url(u).unwrap();
        assert_eq!(
            ok("hdfs://127.0.0.1:9000/a/b/"),
            ("hdfs://127.0.0.1:9000".into(), "/a/b".into())
        );
        assert_eq!(
            ok("hdfs://nn:8020"),
            ("hdfs://nn:8020".into(), String::new())
        );
        assert_eq!(
            ok("hdfs://nn:8020//x//y"),
            ("hdfs://nn:8020".into(), "/x/y".into())
        );
        assert_eq!(ok("hdfs://[::1]:9000/x").0, "hdfs://[::1]:9000");
        for (url, want) in [
            ("hdfs://nn/x", "has no port"),
            ("hdfs:///x", "has no port"),
            ("hdfs://:9000/x", "no valid host"),
            ("hdfs://nn:99999/x", "not a number from 1 to 65535"),
            ("hdfs://nn:0/x", "not a number"),
            ("hdfs://nn:abc/x", "not a number"),
            ("hdfs://nn:9000/a/../b", "not allowed"),
            ("hdfs://u@nn:9000/x", "not supported"),
        ] {
            let err = parse_url(url).unwrap_err().to_string();
            assert!(
                err.contains("invalid configuration") && err.contains(want),
                "{url}: {err}"
            );
        }
    }
}
