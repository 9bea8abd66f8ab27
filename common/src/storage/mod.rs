//! The small file-system interface every output goes through: a local directory here, HDFS
//! behind the same trait. Paths are `/`-separated and relative to the output root.
//!
//! The one guarantee the commit protocol needs is [`Storage::rename`]: atomic, and a rename onto
//! an existing final name is treated as "already published" by [`publish`], so a retried write
//! can never leave two copies of the same shard.

pub mod hdfs;

use crate::error::{Error, Result};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use sawmill_core::connection::ConnectionSettings;
use sawmill_core::layout::temp_staging_path;
use sawmill_core::shard::{self, KeyValues};
use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An output root. Every call is async and runs on the caller's runtime; none blocks a thread.
#[async_trait]
pub trait Storage: Send + Sync + Debug {
    /// Human-readable location of the root, for messages (`/data/out`, `hdfs://nn:9000/x`).
    fn root(&self) -> String;
    /// Creates or replaces `path` with `data`, creating parent directories.
    async fn write(&self, path: &str, data: &[u8]) -> Result<()>;
    /// Reads a whole file.
    async fn read(&self, path: &str) -> Result<Vec<u8>>;
    /// Atomically renames `from` to `to`, creating `to`'s parent. Fails if `to` exists.
    async fn rename(&self, from: &str, to: &str) -> Result<()>;
    /// Atomically renames `from` to `to`, *replacing* an existing `to`: a reader sees the old
    /// file or the new one, never neither. `Ok(false)`: this storage cannot, and the caller
    /// must fall back to moving the old file aside first.
    async fn replace(&self, from: &str, to: &str) -> Result<bool> {
        let _ = (from, to);
        Ok(false)
    }
    /// Files (not directories) under `dir`, recursively, as root-relative paths, sorted.
    /// A missing directory lists as empty.
    async fn list(&self, dir: &str) -> Result<Vec<String>>;
    /// Deletes a file; deleting a missing file is not an error.
    async fn delete(&self, path: &str) -> Result<()>;
    async fn exists(&self, path: &str) -> Result<bool>;
}

/// Writes `data` under a unique staging name, then publishes it as `final_path`.
/// Returns `false` when `final_path` already existed (a retry): the staged copy is removed.
pub async fn write_atomic(storage: &dyn Storage, final_path: &str, data: &[u8]) -> Result<bool> {
    let staging = temp_staging_path(final_path);
    storage.write(&staging, data).await?;
    publish(storage, &staging, final_path).await
}

/// Reads a whole Parquet file into batches, with its key-value metadata. Decoding runs on a
/// blocking thread: it is CPU work.
pub async fn read_parquet(
    storage: &dyn Storage,
    path: &str,
) -> Result<(Vec<RecordBatch>, KeyValues)> {
    let bytes = storage.read(path).await?;
    let path = path.to_string();
    off_runtime("decode parquet", move || Ok(shard::decode(bytes, &path)?)).await
}

/// Renames a staged file to its final name unless the final name exists already, in which case
/// the staged file is deleted (final names are deterministic, so the contents are the same rows).
pub async fn publish(storage: &dyn Storage, staging: &str, final_path: &str) -> Result<bool> {
    // Rename first (it refuses an existing destination): one round trip in the common case.
    match storage.rename(staging, final_path).await {
        Ok(()) => Ok(true),
        // Published before (a retry), or a race with another publisher of the same final name:
        // final names are deterministic, so theirs holds the same rows as ours.
        Err(e) => {
            if !storage.exists(final_path).await? {
                return Err(e);
            }
            storage.delete(staging).await?;
            Ok(false)
        }
    }
}

/// Runs CPU work (encoding, decoding) on the runtime's blocking threads, so async threads only
/// ever wait on I/O.
pub(crate) async fn off_runtime<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| Error::Pipeline(format!("{what} task failed: {e}")))?
}

/// Opens an output root: a local path, `file://` URL, or `hdfs://host:port/path` URL. Either
/// way the root is created and checked writable here, so bad configuration fails before any work.
/// HDFS storage lives on the runtime that opened it: see [`hdfs`] for the threading rule.
pub async fn open(root: &str) -> Result<Arc<dyn Storage>> {
    open_with(root, &ConnectionSettings::default()).await
}

/// [`open_with`] for the embedded run's output: a local directory there skips the fsyncs (see
/// [`LocalFs::without_fsync`]); HDFS is the same as for a worker.
pub async fn open_batch_output(root: &str, conn: &ConnectionSettings) -> Result<Arc<dyn Storage>> {
    let local = root.strip_prefix("file://").unwrap_or(root);
    if !local.contains("://") {
        return Ok(Arc::new(LocalFs::create(local)?.without_fsync()));
    }
    open_with(root, conn).await
}

/// [`open`] with this process's connection settings (HDFS Kerberos, Hadoop configuration).
pub async fn open_with(root: &str, conn: &ConnectionSettings) -> Result<Arc<dyn Storage>> {
    if let Some(rest) = root.strip_prefix("file://") {
        return Ok(Arc::new(LocalFs::create(rest)?));
    }
    if root.starts_with("hdfs://") {
        return Ok(Arc::new(hdfs::HdfsStorage::open_with(root, conn).await?));
    }
    if root.starts_with("viewfs://") {
        return Err(Error::Config(format!(
            "viewfs output {root:?} is not supported: use the hdfs://host:port/path URL of the NameNode"
        )));
    }
    if root.contains("://") {
        return Err(Error::Config(format!(
            "unsupported output URL {root:?}: use a local path or an hdfs://host:port/path URL"
        )));
    }
    Ok(Arc::new(LocalFs::create(root)?))
}

/// A local directory. Renames are atomic within one file system, which `_staging/` under the
/// same root guarantees. Each call runs the blocking `std::fs` work on the runtime's blocking
/// threads.
///
/// Durable before it returns: a write fsyncs the file and the directory entries it created, a
/// rename fsyncs the directories it changed, so what a worker staged and published survives a
/// power loss once the etcd commit that names it is made. [`LocalFs::without_fsync`] drops the
/// fsyncs for a writer whose output nothing else refers to (`sawmill run`).
#[derive(Debug, Clone)]
pub struct LocalFs {
    root: PathBuf,
    /// fsync files and directories before a call returns.
    durable: bool,
    /// fsyncs issued (files, directories), shared by the clones each call runs on.
    syncs: Arc<SyncCounts>,
}

#[derive(Debug, Default)]
struct SyncCounts {
    files: std::sync::atomic::AtomicU64,
    dirs: std::sync::atomic::AtomicU64,
}

impl LocalFs {
    /// Creates the root directory if needed and checks it is writable, so a bad `--out` fails
    /// before any work is done. Blocks briefly: call it at start-up.
    pub fn create(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref().to_path_buf();
        let err = |source| Error::Output {
            path: root.display().to_string(),
            source,
        };
        std::fs::create_dir_all(&root).map_err(err)?;
        // One probe name per process: coordinators and workers starting together on one root
        // must not remove each other's probe.
        let probe = root.join(format!(
            ".sawmill-write-probe-{}-{}",
            std::process::id(),
            sawmill_core::layout::staging_nonce()
        ));
        std::fs::write(&probe, b"ok").map_err(err)?;
        std::fs::remove_file(&probe).map_err(err)?;
        Ok(LocalFs {
            root,
            durable: true,
            syncs: Arc::default(),
        })
    }

    /// No fsyncs: for the embedded run, which rewrites its whole output each time and commits
    /// it nowhere (no etcd transaction names its files), so a crash means running it again.
    /// The fsyncs were 8 % of its time on the reference machine (BENCHMARKS.md).
    pub fn without_fsync(mut self) -> Self {
        self.durable = false;
        self
    }

    /// fsyncs issued so far, `(files, directories)`.
    pub fn syncs(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.syncs.files.load(Relaxed),
            self.syncs.dirs.load(Relaxed),
        )
    }

    /// fsyncs directory `dir` (its entries: names created, renamed or removed in it).
    fn sync_dir(&self, dir: &Path, path: &str) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(self.io_err(path))?;
        self.syncs
            .dirs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    /// Creates `dir` and its missing ancestors under the root, fsyncing the parent of each one
    /// created so the new entries are durable too.
    fn create_dirs(&self, dir: &Path, path: &str) -> Result<()> {
        let mut missing = Vec::new();
        let mut d = dir;
        while !d.exists() && d.starts_with(&self.root) && d != self.root {
            missing.push(d);
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
        std::fs::create_dir_all(dir).map_err(self.io_err(path))?;
        for created in missing.iter().rev() {
            if let Some(parent) = created.parent() {
                self.sync_dir(parent, path)?;
            }
        }
        Ok(())
    }

    fn abs(&self, path: &str) -> PathBuf {
        self.root.join(path)
    }

    fn io_err(&self, path: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        let p = self.abs(path).display().to_string();
        move |source| Error::Output { path: p, source }
    }

    /// Runs `op` on a copy of this storage on a blocking thread.
    async fn blocking<T: Send + 'static>(
        &self,
        op: impl FnOnce(&LocalFs) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let fs = self.clone();
        off_runtime("local file system", move || op(&fs)).await
    }

    fn write_now(&self, path: &str, data: &[u8]) -> Result<()> {
        use std::io::Write;
        let abs = self.abs(path);
        let parent = abs.parent().unwrap_or(&self.root).to_path_buf();
        self.create_dirs(&parent, path)?;
        let durable = self.durable;
        let written = std::fs::File::create(&abs).and_then(|mut f| {
            f.write_all(data)?;
            if durable {
                f.sync_all()?;
            }
            Ok(())
        });
        if let Err(e) = written {
            // No empty or partial file left behind for a retry to trip over.
            let _ = std::fs::remove_file(&abs);
            return Err(self.io_err(path)(e));
        }
        if durable {
            self.syncs
                .files
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.sync_dir(&parent, path)
    }

    fn rename_now(&self, from: &str, to: &str) -> Result<()> {
        let dst = self.abs(to);
        if dst.exists() {
            return Err(Error::Storage {
                path: dst.display().to_string(),
                message: "destination exists".into(),
            });
        }
        self.replace_now(from, to)
    }

    /// rename(2), which replaces an existing destination atomically.
    fn replace_now(&self, from: &str, to: &str) -> Result<()> {
        let dst = self.abs(to);
        let src = self.abs(from);
        let parent = dst.parent().unwrap_or(&self.root).to_path_buf();
        self.create_dirs(&parent, to)?;
        std::fs::rename(&src, &dst).map_err(self.io_err(to))?;
        // Both entries changed: the new name must be durable, and the old one gone for good.
        self.sync_dir(&parent, to)?;
        match src.parent() {
            Some(from_dir) if from_dir != parent => self.sync_dir(from_dir, from),
            _ => Ok(()),
        }
    }

    fn list_now(&self, dir: &str) -> Result<Vec<String>> {
        let mut out = Vec::new();
        let base = self.abs(dir);
        if !base.exists() {
            return Ok(out);
        }
        let mut stack = vec![base];
        while let Some(d) = stack.pop() {
            for entry in std::fs::read_dir(&d).map_err(self.io_err(dir))? {
                let entry = entry.map_err(self.io_err(dir))?;
                let p = entry.path();
                if entry.file_type().map_err(self.io_err(dir))?.is_dir() {
                    stack.push(p);
                } else if let Ok(rel) = p.strip_prefix(&self.root) {
                    out.push(rel.to_string_lossy().replace('\\', "/"));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    fn delete_now(&self, path: &str) -> Result<()> {
        match std::fs::remove_file(self.abs(path)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(self.io_err(path)(e)),
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Storage for LocalFs {
    fn root(&self) -> String {
        self.root.display().to_string()
    }

    async fn write(&self, path: &str, data: &[u8]) -> Result<()> {
        let (path, data) = (path.to_string(), data.to_vec());
        self.blocking(move |fs| fs.write_now(&path, &data)).await
    }

    async fn read(&self, path: &str) -> Result<Vec<u8>> {
        let path = path.to_string();
        self.blocking(move |fs| std::fs::read(fs.abs(&path)).map_err(fs.io_err(&path)))
            .await
    }

    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (from, to) = (from.to_string(), to.to_string());
        self.blocking(move |fs| fs.rename_now(&from, &to)).await
    }

    async fn replace(&self, from: &str, to: &str) -> Result<bool> {
        let (from, to) = (from.to_string(), to.to_string());
        self.blocking(move |fs| fs.replace_now(&from, &to)).await?;
        Ok(true)
    }

    async fn list(&self, dir: &str) -> Result<Vec<String>> {
        let dir = dir.to_string();
        self.blocking(move |fs| fs.list_now(&dir)).await
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let path = path.to_string();
        self.blocking(move |fs| fs.delete_now(&path)).await
    }

    async fn exists(&self, path: &str) -> Result<bool> {
        let path = path.to_string();
        self.blocking(move |fs| Ok(fs.abs(&path).exists())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn atomic_write_publishes_once() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::create(dir.path()).unwrap();
        assert!(write_atomic(&fs, "a/b/x.parquet", b"one").await.unwrap());
        // A retry of the same shard does not duplicate or clobber it.
        assert!(!write_atomic(&fs, "a/b/x.parquet", b"one").await.unwrap());
        assert_eq!(fs.read("a/b/x.parquet").await.unwrap(), b"one");
        assert_eq!(
            fs.list("").await.unwrap(),
            vec!["a/b/x.parquet".to_string()]
        );
        assert!(fs
            .list(sawmill_core::layout::STAGING_DIR)
            .await
            .unwrap()
            .is_empty());
        assert!(fs.list("missing").await.unwrap().is_empty());
        fs.delete("nope").await.unwrap();
    }

    #[tokio::test]
    async fn the_batch_output_skips_fsyncs_and_still_writes() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::create(dir.path()).unwrap().without_fsync();
        fs.write("_staging/a/x.tmp", b"one").await.unwrap();
        fs.rename("_staging/a/x.tmp", "records/x.parquet")
            .await
            .unwrap();
        assert_eq!(fs.read("records/x.parquet").await.unwrap(), b"one");
        assert_eq!(fs.syncs(), (0, 0));
    }

    #[tokio::test]
    async fn writes_and_renames_are_fsynced_with_their_directories() {
        let dir = tempfile::tempdir().unwrap();
        let fs = LocalFs::create(dir.path()).unwrap();
        fs.write("_staging/a/x.tmp", b"one").await.unwrap();
        // The file, the directory holding it, and the parents of the two directories created.
        assert_eq!(fs.syncs(), (1, 3));
        fs.write("_staging/a/y.tmp", b"two").await.unwrap();
        assert_eq!(fs.syncs(), (2, 4));
        // A rename into a new directory: the new directory's parent, the destination and the
        // source directory.
        fs.rename("_staging/a/x.tmp", "records/dt=1/x.parquet")
            .await
            .unwrap();
        assert_eq!(fs.syncs(), (2, 4 + 2 + 2));
        assert_eq!(fs.read("records/dt=1/x.parquet").await.unwrap(), b"one");
        // Within one directory, one directory fsync.
        fs.rename("_staging/a/y.tmp", "_staging/a/z.tmp")
            .await
            .unwrap();
        assert_eq!(fs.syncs(), (2, 9));
    }

    #[tokio::test]
    async fn unwritable_root_is_a_clear_error() {
        let err = LocalFs::create("/proc/sawmill-cannot-exist")
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot write output"), "{err}");
        let err = open("s3://bucket/x").await.unwrap_err().to_string();
        assert!(err.contains("unsupported output URL"), "{err}");
    }
}
