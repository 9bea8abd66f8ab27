//! Reads inputs (plain files, gzip, or `-` for stdin) as newline-aligned chunks that carry their
//! first line number, so chunks can be parsed in parallel and still name their shards
//! deterministically.

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
        }
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
            Ok(Box::new(BufReader::with_capacity(
                1 << 20,
                MultiGzDecoder::new(buf),
            )))
        } else {
            Ok(Box::new(buf))
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
    /// Lines in `data`, by the rule of [`sawmill_core::batch::lines`].
    pub lines: u64,
    pub data: Vec<u8>,
}

/// Splits a reader into chunks of about `target` bytes ending on a line end.
pub struct Chunker {
    spec: InputSpec,
    reader: Box<dyn Read + Send>,
    target: usize,
    carry: Vec<u8>,
    next_line: i64,
    eof: bool,
}

impl Chunker {
    pub fn new(spec: InputSpec, target: usize) -> Result<Self> {
        let reader = spec.open()?;
        Ok(Chunker {
            spec,
            reader,
            target: target.max(1024),
            carry: Vec::new(),
            next_line: 0,
            eof: false,
        })
    }

    /// The next chunk, or `None` at the end of the input.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut data = std::mem::take(&mut self.carry);
        data.reserve(self.target.saturating_sub(data.len()) + 64 * 1024);
        loop {
            while !self.eof && data.len() < self.target {
                let start = data.len();
                // Read no further than the target, so chunks are about `target` bytes whatever
                // the reader hands out (the inputs are buffered, so small reads cost a copy).
                data.resize(self.target, 0);
                let n = match self.reader.read(&mut data[start..]) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
                    Err(source) => {
                        return Err(Error::Input {
                            path: self.spec.path.clone(),
                            source,
                        })
                    }
                };
                data.truncate(start + n);
                if n == 0 {
                    self.eof = true;
                }
            }
            if data.is_empty() {
                return Ok(None);
            }
            if self.eof {
                break;
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
            match cut {
                Some(cut) => {
                    self.carry = data.split_off(cut);
                    break;
                }
                // One line longer than the chunk target: keep reading until it ends.
                None => self.target = self.target.saturating_mul(2),
            }
        }
        let lines = count_lines(&data);
        let chunk = Chunk {
            source: self.spec.source.clone(),
            partition: self.spec.partition,
            first_line: self.next_line,
            lines,
            data,
        };
        self.next_line += lines as i64;
        Ok(Some(chunk))
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

    fn chunks_of(content: &[u8], gz: bool, target: usize) -> Vec<Chunk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(if gz { "x.log.gz" } else { "x.log" });
        let mut f = std::fs::File::create(&path).unwrap();
        if gz {
            let mut e = flate2::write::GzEncoder::new(f, flate2::Compression::fast());
            e.write_all(content).unwrap();
            e.finish().unwrap();
        } else {
            f.write_all(content).unwrap();
        }
        let mut c = Chunker::new(InputSpec::new(&path, 0), target).unwrap();
        let mut out = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            out.push(ch);
        }
        out
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
