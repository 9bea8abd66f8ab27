//! Reads inputs (plain files, gzip, or `-` for stdin) as newline-aligned chunks that carry their
//! first line number, so chunks can be parsed in parallel and still name their shards
//! deterministically.
//!
//! Memory stays bounded whatever the input: a line longer than the line bound (`max_line_bytes`,
//! or the chunk size if larger) is never read whole: it is cut off, its first `max_line_bytes`
//! kept, and becomes a `line_too_long` reject like a shorter long line the parser finds (see
//! [`sawmill_core::batch::ShardCaps::line`]). Gzip input may be capped in decompressed size
//! ([`InputSpec::max_decompressed`]).

use crate::error::{Error, Result};
use flate2::read::MultiGzDecoder;
use sawmill_core::batch::count_lines;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One input as given on the command line.
#[derive(Debug, Clone)]
pub struct InputSpec {
    /// `-` for stdin.
    pub path: PathBuf,
    /// Source name stored in every row: the file stem, or `stdin`.
    pub source: Arc<str>,
    /// The input's position in the argument list; plays the role of a Kafka partition.
    pub partition: i32,
    /// Gzip input fails to read once it has decompressed to more than this many bytes.
    pub max_decompressed: Option<u64>,
}

impl InputSpec {
    pub fn new(path: impl Into<PathBuf>, partition: i32) -> Self {
        let path = path.into();
        let source: Arc<str> = if path.as_os_str() == "-" {
            "stdin".into()
        } else {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            let stem = name.strip_suffix(".gz").unwrap_or(&name);
            let stem = stem.strip_suffix(".log").unwrap_or(stem);
            sawmill_core::layout::sanitize(stem).into()
        };
        InputSpec {
            path,
            source,
            partition,
            max_decompressed: None,
        }
    }

    /// Caps gzip input at `max` decompressed bytes (`None`: no cap), against decompression bombs.
    pub fn with_max_decompressed(mut self, max: Option<u64>) -> Self {
        self.max_decompressed = max;
        self
    }

    /// Opens the input, transparently gunzipping when it starts with the gzip magic bytes.
    pub fn open(&self) -> Result<Box<dyn Read + Send>> {
        let err = |source| Error::Input {
            path: self.path.clone(),
            source,
        };
        let raw: Box<dyn Read + Send> = if self.path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            let f = std::fs::File::open(&self.path).map_err(err)?;
            if f.metadata().map_err(err)?.is_dir() {
                return Err(Error::Input {
                    path: self.path.clone(),
                    source: std::io::Error::other("is a directory, expected a log file"),
                });
            }
            Box::new(f)
        };
        let mut buf = BufReader::with_capacity(1 << 20, raw);
        let magic = buf.fill_buf().map_err(err)?;
        if magic.starts_with(&[0x1f, 0x8b]) {
            let gunzip = MultiGzDecoder::new(buf);
            let gunzip: Box<dyn Read + Send> = match self.max_decompressed {
                Some(max) => Box::new(Capped {
                    inner: gunzip,
                    left: max,
                }),
                None => Box::new(gunzip),
            };
            Ok(Box::new(BufReader::with_capacity(1 << 20, gunzip)))
        } else {
            Ok(Box::new(buf))
        }
    }
}

/// Fails a read once more than `left` bytes have come through: a clear error instead of a
/// gzip bomb filling the disk or the memory.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // One byte past the cap is enough to tell the input is larger.
        let want = buf.len().min(
            usize::try_from(self.left)
                .unwrap_or(usize::MAX)
                .saturating_add(1),
        );
        let n = self.inner.read(&mut buf[..want])?;
        match self.left.checked_sub(n as u64) {
            Some(left) => {
                self.left = left;
                Ok(n)
            }
            None => Err(std::io::Error::other(
                "decompresses to more than --max-decompressed-bytes allows; raise the cap if \
                 the file is trusted",
            )),
        }
    }
}

/// A newline-aligned piece of one input.
#[derive(Debug)]
pub struct Chunk {
    pub source: Arc<str>,
    pub partition: i32,
    /// Line number (0-based) of the first line in `data`.
    pub first_line: i64,
    /// Lines in `data`, by the rule of [`sawmill_core::batch::lines`] (1 for a cut-off line).
    pub lines: u64,
    pub data: Vec<u8>,
    /// A line too long to read whole: the chunk holds it alone, with `data` empty.
    pub cut_line: Option<CutLine>,
}

/// A line longer than the line bound: its first `max_line_bytes` bytes and its length.
#[derive(Debug)]
pub struct CutLine {
    pub raw: Vec<u8>,
    /// The whole line's length in bytes, without its line end.
    pub len: u64,
}

/// Splits a reader into chunks of about `target` bytes ending on a line end.
pub struct Chunker {
    spec: InputSpec,
    reader: Box<dyn Read + Send>,
    target: usize,
    /// Longer lines are cut off instead of read whole: `max_line_bytes` or `target`, if larger
    /// (shorter long lines come whole in a chunk, and the parser rejects them).
    max_line: usize,
    /// Bytes of a cut-off line kept: `max_line_bytes`.
    keep: usize,
    carry: Vec<u8>,
    next_line: i64,
    eof: bool,
}

impl Chunker {
    pub fn new(spec: InputSpec, target: usize) -> Result<Self> {
        Chunker::with_max_line(spec, target, sawmill_core::batch::DEFAULT_MAX_LINE_BYTES)
    }

    /// A chunker that cuts off lines longer than `max_line` bytes (or `target`, if larger),
    /// keeping their first `max_line` bytes.
    pub fn with_max_line(spec: InputSpec, target: usize, max_line: usize) -> Result<Self> {
        let reader = spec.open()?;
        let target = target.max(1024);
        Ok(Chunker {
            spec,
            reader,
            target,
            max_line: max_line.max(target),
            keep: max_line.max(1),
            carry: Vec::new(),
            next_line: 0,
            eof: false,
        })
    }

    /// The next chunk, or `None` at the end of the input.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut data = std::mem::take(&mut self.carry);
        // Grows (up to just past the line bound) only while one line fills the whole chunk.
        let mut target = self.target;
        data.reserve(target.saturating_sub(data.len()) + 64 * 1024);
        loop {
            while !self.eof && data.len() < target {
                let start = data.len();
                // Read no further than the target, so chunks are about `target` bytes whatever
                // the reader hands out (the inputs are buffered, so small reads cost a copy).
                data.resize(target, 0);
                let n = self.read(&mut data[start..])?;
                data.truncate(start + n);
                if n == 0 {
                    self.eof = true;
                }
            }
            if data.is_empty() {
                return Ok(None);
            }
            // Cut after the last complete line; a `\r` at the very end may be half of `\r\n`.
            let cut = data[..data.len() - 1]
                .iter()
                .rposition(|&b| b == b'\n' || b == b'\r')
                .map(|i| {
                    if data[i] == b'\r' && data[i + 1] == b'\n' {
                        i + 2
                    } else {
                        i + 1
                    }
                });
            let ends_line = matches!(data.last(), Some(b'\n' | b'\r'));
            if cut.is_none() && data.len() - usize::from(ends_line) > self.max_line {
                return self.cut_off_line(data).map(Some);
            }
            if self.eof {
                break;
            }
            match cut {
                Some(cut) => {
                    self.carry = data.split_off(cut);
                    break;
                }
                // One line longer than the chunk target: keep reading until it ends (or passes
                // the bound; two bytes past it tell a long line from one ending in `\r\n`).
                None => target = target.saturating_mul(2).min(self.max_line + 2),
            }
        }
        Ok(Some(self.chunk(data, None)))
    }

    /// Makes a chunk of `data` (or of a cut-off line) and advances the line count.
    fn chunk(&mut self, data: Vec<u8>, cut_line: Option<CutLine>) -> Chunk {
        let lines = if cut_line.is_some() {
            1
        } else {
            count_lines(&data)
        };
        let chunk = Chunk {
            source: self.spec.source.clone(),
            partition: self.spec.partition,
            first_line: self.next_line,
            lines,
            data,
            cut_line,
        };
        self.next_line += lines as i64;
        chunk
    }

    /// `data` starts a line longer than the bound (and holds nothing after its line end, if it
    /// reaches it): keeps its first bytes, skips the rest of it and returns it as a chunk alone.
    fn cut_off_line(&mut self, mut data: Vec<u8>) -> Result<Chunk> {
        let mut end = data.last().copied().filter(|&b| b == b'\n' || b == b'\r');
        let mut len = (data.len() - usize::from(end.is_some())) as u64;
        data.truncate(self.keep);
        // No more than a chunk: what follows the line end is carried into the next chunk.
        let mut scratch = vec![0u8; self.target];
        while end.is_none() {
            let n = self.read(&mut scratch)?;
            if n == 0 {
                self.eof = true;
                break;
            }
            match scratch[..n].iter().position(|&b| b == b'\n' || b == b'\r') {
                Some(i) => {
                    len += i as u64;
                    end = Some(scratch[i]);
                    self.carry.extend_from_slice(&scratch[i + 1..n]);
                }
                None => len += n as u64,
            }
        }
        if end == Some(b'\r') {
            // `\r\n` is one line end: drop the `\n` if it follows.
            if self.carry.is_empty() && !self.eof {
                let mut next = [0u8; 1];
                match self.read(&mut next)? {
                    0 => self.eof = true,
                    _ => self.carry.push(next[0]),
                }
            }
            if self.carry.first() == Some(&b'\n') {
                self.carry.remove(0);
            }
        }
        tracing::warn!(
            input = %self.spec.path.display(),
            line = self.next_line + 1,
            bytes = len,
            max_line_bytes = self.max_line,
            "line too long: cut off and rejected as line_too_long"
        );
        let cut = CutLine { raw: data, len };
        Ok(self.chunk(Vec::new(), Some(cut)))
    }

    /// One read, retried when interrupted; errors name the input.
    fn read(&mut self, buf: &mut [u8]) -> Result<usize> {
        loop {
            match self.reader.read(buf) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => {
                    return r.map_err(|source| Error::Input {
                        path: self.spec.path.clone(),
                        source,
                    })
                }
            }
        }
    }
}

/// Checks every input can be opened before any work starts, so a typo fails fast.
///
/// Stdin is not checked: opening it peeks at its first bytes (for the gzip magic), and those
/// bytes would be lost to the reader that opens it again for real.
pub fn check_readable(specs: &[InputSpec]) -> Result<()> {
    for s in specs.iter().filter(|s| s.path.as_os_str() != "-") {
        if !Path::new(&s.path).exists() {
            return Err(Error::Input {
                path: s.path.clone(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            });
        }
        drop(s.open()?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_input(dir: &Path, content: &[u8], gz: bool) -> PathBuf {
        let path = dir.join(if gz { "x.log.gz" } else { "x.log" });
        let mut f = std::fs::File::create(&path).unwrap();
        if gz {
            let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            e.write_all(content).unwrap();
            e.finish().unwrap();
        } else {
            f.write_all(content).unwrap();
        }
        path
    }

    fn chunks_with(spec: InputSpec, target: usize, max_line: usize) -> Result<Vec<Chunk>> {
        let mut c = Chunker::with_max_line(spec, target, max_line)?;
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk()? {
            out.push(ch);
        }
        Ok(out)
    }

    fn chunks_of(content: &[u8], gz: bool, target: usize) -> Vec<Chunk> {
        let dir = tempfile::tempdir().unwrap();
        let path = write_input(dir.path(), content, gz);
        chunks_with(InputSpec::new(&path, 0), target, 64 << 20).unwrap()
    }

    #[test]
    fn a_line_past_the_bound_is_cut_off_alone_and_the_rest_is_read_as_usual() {
        let at_bound = vec![b'k'; 4096];
        let mut content = b"first\n".to_vec();
        content.extend(vec![b'x'; 10_000]);
        content.extend_from_slice(b"\r\nsecond\n");
        content.extend_from_slice(&at_bound);
        content.extend_from_slice(b"\n");
        content.extend(vec![b'y'; 3000]);
        content.extend(vec![b'z'; 3000]);
        content.extend_from_slice(b"\rthird\r\n");
        content.extend(vec![b'w'; 50_000]);
        for gz in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = write_input(dir.path(), &content, gz);
            let chunks = chunks_with(InputSpec::new(&path, 0), 1024, 4096).unwrap();
            let mut next = 0;
            let (mut lines, mut cut) = (Vec::new(), Vec::new());
            for c in &chunks {
                assert_eq!(c.first_line, next);
                next += c.lines as i64;
                // Nothing held more than the bound and a line end or two.
                assert!(
                    c.data.len() <= 4096 + 2,
                    "a chunk of {} bytes",
                    c.data.len()
                );
                match &c.cut_line {
                    Some(line) => {
                        assert!(c.data.is_empty());
                        cut.push((c.first_line, line.len, line.raw.clone()));
                    }
                    None => lines.extend(sawmill_core::batch::lines(&c.data).map(<[u8]>::to_vec)),
                }
            }
            assert_eq!(next, 7, "gz {gz}");
            assert_eq!(
                lines,
                [
                    b"first".to_vec(),
                    b"second".to_vec(),
                    at_bound.clone(),
                    b"third".to_vec()
                ]
            );
            assert_eq!(
                cut.iter().map(|(n, len, _)| (*n, *len)).collect::<Vec<_>>(),
                [(1, 10_000), (4, 6000), (6, 50_000)]
            );
            assert_eq!(cut[0].2, vec![b'x'; 4096]);
            assert_eq!(cut[1].2[..3000], vec![b'y'; 3000][..]);
            assert_eq!(cut[2].2.len(), 4096);
        }
    }

    #[test]
    fn gzip_input_past_the_cap_fails_naming_the_file() {
        let content = "a line of a log\n".repeat(10_000);
        let dir = tempfile::tempdir().unwrap();
        let path = write_input(dir.path(), content.as_bytes(), true);
        let spec = |cap| InputSpec::new(&path, 0).with_max_decompressed(Some(cap));
        let err = chunks_with(spec(100_000), 1024, 4096)
            .unwrap_err()
            .to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("--max-decompressed-bytes"), "{err}");
        let whole = chunks_with(spec(content.len() as u64), 1024, 4096).unwrap();
        let lines: u64 = whole.iter().map(|c| c.lines).sum();
        assert_eq!(lines, 10_000);
        // Plain files are not capped: their size is what the disk holds.
        let plain = write_input(dir.path(), content.as_bytes(), false);
        let spec = InputSpec::new(&plain, 0).with_max_decompressed(Some(10));
        let plain_lines: u64 = chunks_with(spec, 1024, 4096)
            .unwrap()
            .iter()
            .map(|c| c.lines)
            .sum();
        assert_eq!(plain_lines, 10_000);
    }

    #[test]
    fn chunks_reassemble_and_number_lines_consistently() {
        let mut content = Vec::new();
        for i in 0..5000 {
            let end: &[u8] = match i % 3 {
                0 => b"\n",
                1 => b"\r\n",
                _ => b"\r",
            };
            content.extend_from_slice(format!("line number {i}").as_bytes());
            content.extend_from_slice(end);
        }
        content.extend_from_slice(b"no final newline");
        for gz in [false, true] {
            let chunks = chunks_of(&content, gz, 1024);
            assert!(chunks.len() > 10);
            let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
            assert_eq!(joined, content);
            let mut next = 0;
            for c in &chunks {
                assert_eq!(c.first_line, next);
                next += c.lines as i64;
            }
            assert_eq!(next, 5001);
            assert_eq!(chunks[0].source.as_ref(), "x");
        }
    }

    #[test]
    fn missing_input_is_a_clear_error() {
        let err = check_readable(&[InputSpec::new("/nonexistent/a.log", 0)])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cannot read input /nonexistent/a.log"),
            "{err}"
        );
    }
}
