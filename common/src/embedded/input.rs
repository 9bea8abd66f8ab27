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
        self.open_sized().map(|(reader, _)| reader)
    }

    /// [`InputSpec::open`], with the number of bytes the reader will give when that is known
    /// ahead: a plain file's length (not stdin's, not a gzip file's).
    pub fn open_sized(&self) -> Result<(Box<dyn Read + Send>, Option<u64>)> {
        let err = |source| Error::Input {
            path: self.path.clone(),
            source,
        };
        let mut size = None;
        let raw: Box<dyn Read + Send> = if self.path.as_os_str() == "-" {
            Box::new(std::io::stdin())
        } else {
            let f = std::fs::File::open(&self.path).map_err(err)?;
            let meta = f.metadata().map_err(err)?;
            if meta.is_dir() {
                return Err(Error::Input {
                    path: self.path.clone(),
                    source: std::io::Error::other("is a directory, expected a log file"),
                });
            }
            size = meta.is_file().then_some(meta.len());
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
            Ok((Box::new(BufReader::with_capacity(1 << 20, gunzip)), None))
        } else {
            Ok((Box::new(buf), size))
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
    /// Bytes the reader gives in all, when known ahead (see [`Chunker::with_tail_split`]).
    size: Option<u64>,
    /// Bytes read so far.
    read: u64,
    /// Pieces the end of the input is cut into; 0 for none.
    tail_pieces: u64,
}

impl Chunker {
    pub fn new(spec: InputSpec, target: usize) -> Result<Self> {
        Chunker::with_max_line(spec, target, sawmill_core::batch::DEFAULT_MAX_LINE_BYTES)
    }

    /// A chunker that cuts off lines longer than `max_line` bytes (or `target`, if larger),
    /// keeping their first `max_line` bytes.
    pub fn with_max_line(spec: InputSpec, target: usize, max_line: usize) -> Result<Self> {
        let (reader, size) = spec.open_sized()?;
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
            size,
            read: 0,
            tail_pieces: 0,
        })
    }

    /// Cuts the last `pieces` chunks' worth of input into `pieces` smaller chunks each time,
    /// down to a floor, when the input's size is known ahead (plain files). With one chunk per
    /// parser thread at a time, the last full-size chunk kept one thread busy for a whole chunk's
    /// parse time while the others had nothing left (up to a tenth of `sawmill run`'s time on two
    /// cores); smaller last chunks let the threads finish together. Give `2 × threads`.
    pub fn with_tail_split(mut self, pieces: usize) -> Self {
        self.tail_pieces = pieces as u64;
        self
    }

    /// The size of the next chunk: the target, or a piece of what is left near the end.
    fn chunk_target(&self) -> usize {
        // A sixteenth of the target (1 MiB of the default 16): small enough to even the threads
        // out, large enough that the shards it makes are not tiny.
        let floor = (self.target as u64 / 16).max(1024);
        match self.size {
            Some(size) if self.tail_pieces > 0 => {
                let left = size.saturating_sub(self.read) + self.carry.len() as u64;
                let piece = (left / self.tail_pieces).max(floor);
                usize::try_from(piece).map_or(self.target, |p| p.min(self.target))
            }
            _ => self.target,
        }
    }

    /// The next chunk, or `None` at the end of the input.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        self.next_chunk_in(Vec::new())
    }

    /// [`Chunker::next_chunk`] into `buf`, a buffer a finished chunk gave back (its content is
    /// discarded). A reused buffer's pages are mapped and its bytes initialized already, so
    /// reading into it costs neither page faults nor zeroing, which a fresh 16 MiB buffer per
    /// chunk did (about a tenth of `sawmill run`'s CPU).
    pub fn next_chunk_in(&mut self, buf: Vec<u8>) -> Result<Option<Chunk>> {
        let mut data = buf;
        // Grows (up to just past the line bound) only while one line fills the whole chunk.
        let mut target = self.chunk_target();
        // `data[..filled]` is the chunk so far; bytes past it are old content, overwritten by
        // reads. The length only shrinks at the end, so `resize` zeroes just the bytes this
        // buffer never held.
        let mut filled = self.carry.len();
        if data.len() < filled {
            data.resize(filled, 0);
        }
        data[..filled].copy_from_slice(&self.carry);
        self.carry.clear();
        loop {
            while !self.eof && filled < target {
                // Read no further than the target, so chunks are about `target` bytes whatever
                // the reader hands out (the inputs are buffered, so small reads cost a copy).
                if data.len() < target {
                    data.resize(target, 0);
                }
                let n = self.read(&mut data[filled..target])?;
                filled += n;
                if n == 0 {
                    self.eof = true;
                }
            }
            data.truncate(filled);
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
                    self.carry.extend_from_slice(&data[cut..]);
                    data.truncate(cut);
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
                Ok(n) => {
                    self.read += n as u64;
                    return Ok(n);
                }
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
#[path = "input_tests.rs"]
mod tests;
