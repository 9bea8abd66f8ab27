//! Tests of the chunker: line numbering, long lines, gzip caps, buffer reuse, the tail split.
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

/// The chunks hold `content` in order, and their line numbers follow on to `lines` in all.
fn assert_reassembles(chunks: &[Chunk], content: &[u8], lines: i64) {
    let joined: Vec<u8> = chunks.iter().flat_map(|c| c.data.clone()).collect();
    assert_eq!(joined, content);
    let mut next = 0;
    for c in chunks {
        assert_eq!(c.first_line, next);
        next += c.lines as i64;
    }
    assert_eq!(next, lines);
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
        assert_reassembles(&chunks, &content, 5001);
        assert_eq!(chunks[0].source.as_ref(), "x");
    }
}

#[test]
fn the_end_of_a_plain_file_comes_in_smaller_chunks() {
    let content: Vec<u8> = (0..10_000)
        .flat_map(|i| format!("line {i:>34}\n").into_bytes())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for gz in [false, true] {
        let path = write_input(dir.path(), &content, gz);
        let mut c = Chunker::with_max_line(InputSpec::new(&path, 0), 16 << 10, 4096)
            .unwrap()
            .with_tail_split(4);
        let mut chunks = Vec::new();
        while let Some(ch) = c.next_chunk().unwrap() {
            chunks.push(ch);
        }
        assert_reassembles(&chunks, &content, 10_000);
        let sizes: Vec<usize> = chunks.iter().map(|c| c.data.len()).collect();
        let full = sizes.iter().filter(|&&n| n > 15 << 10).count();
        if gz {
            // Size unknown ahead: every chunk but the last is full size.
            assert_eq!(full, sizes.len() - 1, "{sizes:?}");
        } else {
            // 400,000 bytes: full chunks until 64 KiB are left, then smaller ones down to
            // the floor (1 KiB), never growing again.
            assert!(full <= 400_000 / (16 << 10) - 3, "{sizes:?}");
            let tail = &sizes[full..];
            assert!(tail.len() >= 8, "{sizes:?}");
            assert!(tail.windows(2).all(|w| w[1] <= w[0] + 40), "{sizes:?}");
            assert!(*tail.last().unwrap() <= 1024 + 40, "{sizes:?}");
        }
    }
}

#[test]
fn recycled_buffers_hold_only_the_new_chunk() {
    let content: Vec<u8> = (0..3000)
        .flat_map(|i| format!("l{i}\r\n").into_bytes())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = write_input(dir.path(), &content, false);
    let mut c = Chunker::with_max_line(InputSpec::new(&path, 0), 1024, 4096).unwrap();
    let (mut joined, mut lines) = (Vec::new(), 0);
    // Garbage longer than any chunk, then each chunk's own buffer back, as the pipeline does.
    let mut buf = vec![b'Z'; 10_000];
    while let Some(ch) = c.next_chunk_in(buf).unwrap() {
        assert!(!ch.data.contains(&b'Z'));
        assert_eq!(ch.first_line, lines);
        lines += ch.lines as i64;
        joined.extend_from_slice(&ch.data);
        buf = ch.data;
    }
    assert_eq!((joined, lines), (content, 3000));
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
