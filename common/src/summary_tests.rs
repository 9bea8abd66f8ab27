use super::*;
use crate::storage::LocalFs;
use async_trait::async_trait;
use sawmill_core::layout::STAGING_DIR;
use sawmill_core::parse::parse_line;
use sawmill_core::record::Position;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// A local directory whose writes can be made to fail the way HDFS fails them (the file is
/// created, then the data never arrives), and whose renames into `summary/` can fail.
#[derive(Debug)]
struct Flaky {
    inner: LocalFs,
    fail_writes: AtomicBool,
    fail_renames_in: AtomicBool,
    writes: AtomicUsize,
}

impl Flaky {
    fn new(dir: &std::path::Path) -> Self {
        Flaky {
            inner: LocalFs::create(dir).unwrap(),
            fail_writes: AtomicBool::new(false),
            fail_renames_in: AtomicBool::new(false),
            writes: AtomicUsize::new(0),
        }
    }
}

#[async_trait]
impl Storage for Flaky {
    fn root(&self) -> String {
        self.inner.root()
    }
    async fn write(&self, path: &str, data: &[u8]) -> Result<()> {
        if self.fail_writes.load(Ordering::SeqCst) {
            self.inner.write(path, b"").await?;
            return Err(Error::Storage {
                path: path.into(),
                message: "injected: could only be written to 0 nodes".into(),
            });
        }
        self.writes.fetch_add(1, Ordering::SeqCst);
        self.inner.write(path, data).await
    }
    async fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.inner.read(path).await
    }
    async fn rename(&self, from: &str, to: &str) -> Result<()> {
        if self.fail_renames_in.load(Ordering::SeqCst) && from.starts_with(STAGING_DIR) {
            return Err(Error::Storage {
                path: to.into(),
                message: "injected rename failure".into(),
            });
        }
        self.inner.rename(from, to).await
    }
    async fn list(&self, dir: &str) -> Result<Vec<String>> {
        self.inner.list(dir).await
    }
    async fn delete(&self, path: &str) -> Result<()> {
        self.inner.delete(path).await
    }
    async fn exists(&self, path: &str) -> Result<bool> {
        self.inner.exists(path).await
    }
}

fn partial(lines: &[&str]) -> Partial {
    let mut p = Partial::new(&Default::default());
    for (i, l) in lines.iter().enumerate() {
        let pos = Position {
            partition: 0,
            offset: i as i64,
        };
        match parse_line(l.as_bytes()) {
            Ok(rec) => p.observe(&rec, pos),
            Err(reason) => p.observe_reject(reason, l.as_bytes(), pos),
        }
    }
    p
}

/// Tables with rows: those [`read`] returns (Parquet without rows reads as nothing).
fn with_rows(p: &Partial) -> usize {
    p.tables().iter().filter(|(_, b)| b.num_rows() > 0).count()
}

const LINE: &str = r#"a - - [01/Jul/1995:00:00:01 -0400] "GET /x HTTP/1.0" 200 7"#;

async fn write_all(writer: &mut SummaryWriter, fs: &dyn Storage, p: &Partial) -> Result<usize> {
    let tables = encode_changed(p, &ParquetOptions::default(), &writer.written())?;
    writer.write(fs, tables).await
}

#[tokio::test]
async fn only_tables_whose_content_changed_are_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Flaky::new(dir.path());
    let mut writer = SummaryWriter::default();
    let first = partial(&[LINE]);
    let all = write_all(&mut writer, &fs, &first).await.unwrap();
    assert_eq!(all, sawmill_core::analytics::TABLE_NAMES.len());
    // Nothing changed: nothing written.
    assert_eq!(write_all(&mut writer, &fs, &first).await.unwrap(), 0);
    assert_eq!(fs.writes.load(Ordering::SeqCst), all);
    // One more reject: only the tables that show rejects change.
    let second = partial(&[LINE, "garbage"]);
    assert_eq!(write_all(&mut writer, &fs, &second).await.unwrap(), 3);
    let tables = read(&fs).await.unwrap();
    assert_eq!(tables.len(), with_rows(&second));
    assert_eq!(tables["reject_count"].num_rows(), 1);
    assert!(fs.list(STAGING_DIR).await.unwrap().is_empty());
    assert!(!fs
        .list(SUMMARY_DIR)
        .await
        .unwrap()
        .iter()
        .any(|p| p.ends_with(".prev")));
}

#[tokio::test]
async fn a_failed_write_leaves_no_temporary_file_and_the_old_table() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Flaky::new(dir.path());
    let mut writer = SummaryWriter::default();
    write_all(&mut writer, &fs, &partial(&[LINE]))
        .await
        .unwrap();
    let before = read(&fs).await.unwrap();

    let newer = partial(&[LINE, LINE]);
    fs.fail_writes.store(true, Ordering::SeqCst);
    let err = write_all(&mut writer, &fs, &newer).await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    assert_eq!(fs.list(STAGING_DIR).await.unwrap(), Vec::<String>::new());
    assert_eq!(read(&fs).await.unwrap(), before);

    fs.fail_writes.store(false, Ordering::SeqCst);
    fs.fail_renames_in.store(true, Ordering::SeqCst);
    write_all(&mut writer, &fs, &newer).await.unwrap_err();
    assert_eq!(fs.list(STAGING_DIR).await.unwrap(), Vec::<String>::new());
    // The table moved aside for the swap is back under its name.
    assert_eq!(read(&fs).await.unwrap(), before);
    for name in sawmill_core::analytics::TABLE_NAMES {
        assert!(
            fs.exists(&layout::summary_table_path(name)).await.unwrap(),
            "{name}"
        );
    }

    // Recovered: the failed tables are written on the next call.
    fs.fail_renames_in.store(false, Ordering::SeqCst);
    assert!(write_all(&mut writer, &fs, &newer).await.unwrap() > 0);
    assert_eq!(read(&fs).await.unwrap()["totals"], newer.tables()[14].1);
}

#[tokio::test]
async fn a_table_caught_mid_swap_is_read_from_its_aside_copy() {
    let dir = tempfile::tempdir().unwrap();
    let fs = Flaky::new(dir.path());
    let p = partial(&[LINE]);
    write(&fs, encode(&p, &ParquetOptions::default()).unwrap())
        .await
        .unwrap();
    let path = layout::summary_table_path("totals");
    fs.rename(&path, &layout::summary_aside_path("totals"))
        .await
        .unwrap();
    let tables = read(&fs).await.unwrap();
    assert_eq!(tables["totals"], p.tables()[14].1);
    assert_eq!(tables.len(), with_rows(&p));
    // A later write replaces the stale aside copy without complaint.
    write(&fs, encode(&p, &ParquetOptions::default()).unwrap())
        .await
        .unwrap();
    assert!(!fs
        .exists(&layout::summary_aside_path("totals"))
        .await
        .unwrap());
}
