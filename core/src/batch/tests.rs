use super::*;
use crate::analytics::{AnalyticsConfig, Partial};

#[test]
fn line_splitting_handles_every_line_end() {
    let buf = b"a\nb\r\nc\rd";
    assert_eq!(
        lines(buf).collect::<Vec<_>>(),
        vec![&b"a"[..], b"b", b"c", b"d"]
    );
    assert_eq!(count_lines(b"a\n\nb\n"), 3);
    assert_eq!(count_lines(b""), 0);
    assert_eq!(count_lines(b"\n"), 1);
    // Blocks full of line ends, across the counter's 255-byte blocks.
    assert_eq!(count_lines(&[b'\n'; 1000]), 1000);
    assert_eq!(count_lines(&[b'x'; 1000]), 1);
    // Every mix of line ends and final lines: the count is what `lines` yields.
    let alphabet: [&[u8]; 4] = [b"x", b"\n", b"\r", b"\r\n"];
    for n in 0..4u32.pow(6) {
        let mut buf = Vec::new();
        let mut k = n;
        for _ in 0..6 {
            buf.extend_from_slice(alphabet[(k % 4) as usize]);
            k /= 4;
        }
        assert_eq!(count_lines(&buf), lines(&buf).count() as u64, "{buf:?}");
    }
}

#[test]
fn chunk_groups_by_wall_clock_date_and_keeps_rejects() {
    let buf = b"h - - [01/Jul/1995:23:30:00 -0400] \"GET /a HTTP/1.0\" 200 1\n\
                garbage\n\
                h - - [02/Jul/1995:00:00:01 -0400] \"GET /b HTTP/1.0\" 404 -\n";
    let mut partial = Partial::new(&AnalyticsConfig::default());
    let mut p = ChunkParser::new("t".into(), 3);
    assert_eq!(p.push_lines(buf, 10, &mut partial).next, 13);
    let out = p.finish().unwrap();
    assert_eq!((out.records, out.rejected), (2, 1));
    let dates: Vec<String> = out
        .by_date
        .keys()
        .map(|d| crate::record::format_date(*d))
        .collect();
    assert_eq!(dates, vec!["1995-07-01", "1995-07-02"]);
    let rej = out.rejects.unwrap();
    assert_eq!(rej.num_rows(), 1);
    let offsets = rej
        .column(2)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    assert_eq!(offsets.value(0), 11);
    assert_eq!(partial.records(), 2);
    assert_eq!(partial.rejects(), 1);
    // The parser is reusable after finish.
    assert_eq!(p.buffered(), 0);
}

fn line(days: i32, n: usize) -> String {
    let (y, m, d) = crate::record::civil_from_days(days);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][usize::from(m) - 1];
    format!("h - - [{d:02}/{month}/{y}:00:00:01 +0000] \"GET /{n} HTTP/1.0\" 200 1")
}

fn offsets(b: &RecordBatch) -> Vec<i64> {
    b.column(2)
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

/// Pushes `buf` through a parser with `caps`, cutting wherever it fills, as `sawmill run`
/// does; returns the shards.
fn cut_all(buf: &[u8], caps: ShardCaps, partial: &mut Partial) -> Vec<ParsedChunk> {
    let mut p = ChunkParser::new("t".into(), 0).with_caps(caps);
    let (mut rest, mut next, mut out) = (buf, 0, Vec::new());
    loop {
        let pushed = p.push_lines(rest, next, partial);
        out.push(p.finish().unwrap());
        rest = &rest[pushed.consumed..];
        next = pushed.next;
        if rest.is_empty() {
            return out;
        }
    }
}

#[test]
fn a_line_past_the_cap_is_a_line_too_long_reject_cut_to_the_cap() {
    let long = format!("{} \"-\" \"{}\"", line(9000, 1), "x".repeat(300));
    let buf = format!("{}\n{long}\r\n{}\n", line(9000, 0), line(9000, 2));
    let caps = ShardCaps {
        line: 100,
        ..ShardCaps::default()
    };
    let mut partial = Partial::new(&AnalyticsConfig::default());
    let mut p = ChunkParser::new("t".into(), 0).with_caps(caps);
    let pushed = p.push_lines(buf.as_bytes(), 0, &mut partial);
    assert_eq!(
        pushed,
        Pushed {
            next: 3,
            consumed: buf.len()
        }
    );
    // Line at a time too (a Kafka message keeps its line end).
    assert_eq!(
        p.push(format!("{long}\n").as_bytes(), 3, &mut partial),
        Push::Taken
    );
    let out = p.finish().unwrap();
    assert_eq!((out.records, out.rejected), (2, 2));
    assert_eq!(
        partial.reject_counts(),
        vec![(RejectReason::LineTooLong, 2)]
    );
    // The summary's reject_count table lists it by name.
    let tables = partial.tables();
    let counts = &tables.iter().find(|(n, _)| *n == "reject_count").unwrap().1;
    let reasons = counts.column_by_name("reason").unwrap();
    let reasons = reasons
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(reasons.value(0), "line_too_long");
    let rej = out.rejects.unwrap();
    let raw = rej.column_by_name("raw").unwrap();
    let raw = raw
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .unwrap();
    let length = rej.column_by_name("length").unwrap();
    let length = length
        .as_any()
        .downcast_ref::<arrow::array::Int64Array>()
        .unwrap();
    for i in 0..2 {
        assert_eq!(raw.value(i), &long.as_bytes()[..100]);
        assert_eq!(length.value(i), long.len() as i64);
    }
    assert_eq!(offsets(&rej), vec![1, 3]);
    // At the cap exactly, a line is parsed as usual; other rejects have no length.
    let at_cap = ChunkParser::new("t".into(), 0).with_caps(ShardCaps {
        line: line(9000, 0).len(),
        ..ShardCaps::default()
    });
    let mut at_cap = at_cap;
    assert_eq!(
        at_cap.push(line(9000, 0).as_bytes(), 0, &mut partial),
        Push::Taken
    );
    assert_eq!(at_cap.push(b"garbage", 1, &mut partial), Push::Taken);
    let out = at_cap.finish().unwrap();
    assert_eq!((out.records, out.rejected), (1, 1));
    assert!(out
        .rejects
        .unwrap()
        .column_by_name("length")
        .unwrap()
        .is_null(0));
}

#[test]
fn a_chunk_over_many_dates_is_cut_at_the_date_cap() {
    // 5,000 lines, each on a day of its own.
    let buf: String = (0..5000)
        .map(|i| line(9000 + i, i as usize) + "\n")
        .collect();
    let caps = ShardCaps {
        dates: 64,
        ..ShardCaps::default()
    };
    let mut partial = Partial::new(&AnalyticsConfig::default());
    let shards = cut_all(buf.as_bytes(), caps, &mut partial);
    assert_eq!(shards.len(), 5000usize.div_ceil(64));
    let mut seen = Vec::new();
    for s in &shards {
        assert!(s.by_date.len() <= 64, "{} dates", s.by_date.len());
        seen.extend(s.by_date.values().flat_map(offsets));
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..5000).collect::<Vec<_>>());
    assert_eq!(partial.records(), 5000, "each line observed once");
    // Rejects carry no date: they never fill the date cap.
    let mut p = ChunkParser::new("t".into(), 0).with_caps(ShardCaps { dates: 1, ..caps });
    assert_eq!(
        p.push(line(9000, 0).as_bytes(), 0, &mut partial),
        Push::Taken
    );
    assert_eq!(p.push(b"garbage", 1, &mut partial), Push::Taken);
    assert_eq!(
        p.push(line(9000, 2).as_bytes(), 2, &mut partial),
        Push::Taken
    );
    assert_eq!(
        p.push(line(9001, 3).as_bytes(), 3, &mut partial),
        Push::Full
    );
    assert_eq!(p.buffered(), 3, "a refused line is not taken");
}

#[test]
fn rows_and_bytes_caps_refuse_the_line_that_would_pass_them() {
    let mut partial = Partial::new(&AnalyticsConfig::default());
    let l = line(9000, 0);
    let rows = ShardCaps {
        rows: 20,
        ..ShardCaps::default()
    };
    let buf: String = (0..4096).map(|_| l.clone() + "\n").collect();
    let shards = cut_all(buf.as_bytes(), rows, &mut partial);
    assert!(shards.iter().all(|s| s.records <= 20));
    assert_eq!(shards.iter().map(|s| s.records).sum::<u64>(), 4096);
    assert_eq!(partial.records(), 4096);

    // Bytes: lines and their line ends; one line alone always goes in.
    let per_line = l.len() as u64 + 1;
    let bytes = ShardCaps {
        bytes: 3 * per_line,
        ..ShardCaps::default()
    };
    let mut p = ChunkParser::new("t".into(), 0).with_caps(bytes);
    for o in 0..3 {
        assert_eq!(p.push(l.as_bytes(), o, &mut partial), Push::Taken);
    }
    assert_eq!(p.buffered_bytes(), 3 * per_line);
    assert_eq!(p.push(l.as_bytes(), 3, &mut partial), Push::Full);
    p.finish().unwrap();
    let mut tiny = ChunkParser::new("t".into(), 0).with_caps(ShardCaps { bytes: 1, ..bytes });
    assert_eq!(tiny.push(l.as_bytes(), 0, &mut partial), Push::Taken);
    // Invalid UTF-8 weighs three times its bytes (U+FFFD is three bytes).
    let bad =
        [b"h - - [01/Aug/1995:00:00:01 -0400] \"GET /\xff HTTP/1.0\" 200 1".as_slice()].concat();
    let mut p = ChunkParser::new("t".into(), 0).with_caps(ShardCaps {
        bytes: 2 * (bad.len() as u64 + 1),
        ..ShardCaps::default()
    });
    assert_eq!(p.push(&bad, 0, &mut partial), Push::Taken);
    assert_eq!(p.buffered_bytes(), 3 * (bad.len() as u64 + 1));
    assert_eq!(p.push(l.as_bytes(), 1, &mut partial), Push::Full);
    // The bytes cap never exceeds what Arrow's columns can hold.
    let huge = ChunkParser::new("t".into(), 0).with_caps(ShardCaps {
        bytes: u64::MAX,
        ..ShardCaps::default()
    });
    assert_eq!(huge.caps().bytes, MAX_SHARD_BYTES);
    assert!(MAX_SHARD_BYTES * 4 / 3 <= i32::MAX as u64 + 1);
}

#[test]
fn a_cut_off_user_agent_is_a_record_marked_truncated_field() {
    let buf = format!(
        "{} \"-\" \"Mozilla/5.0 (cut\n{}\n",
        line(9000, 0),
        line(9000, 1)
    );
    let mut partial = Partial::new(&AnalyticsConfig::default());
    let mut p = ChunkParser::new("t".into(), 0);
    assert_eq!(p.push_lines(buf.as_bytes(), 0, &mut partial).next, 2);
    let out = p.finish().unwrap();
    assert_eq!((out.records, out.rejected), (2, 0));
    let b = out.by_date.values().next().unwrap();
    let col = b
        .column_by_name(crate::schema::col::TRUNCATED_FIELD)
        .unwrap();
    let col = col
        .as_any()
        .downcast_ref::<arrow::array::BooleanArray>()
        .unwrap();
    assert_eq!((col.value(0), col.value(1)), (true, false));
    let agent = b.column_by_name(crate::schema::col::USER_AGENT).unwrap();
    let agent = agent
        .as_any()
        .downcast_ref::<arrow::array::StringArray>()
        .unwrap();
    assert_eq!(agent.value(0), "Mozilla/5.0 (cut");
}

/// `lines` generated NASA-like lines (with rejects and invalid UTF-8) over `days` dates.
fn generated(lines: u64, seed: u64, days: u32) -> Vec<u8> {
    let mut cfg = crate::generate::GenerateConfig::new(lines, seed);
    cfg.days = days;
    let mut buf = Vec::new();
    crate::generate::generate(&cfg, &mut buf).unwrap();
    buf
}

#[test]
fn push_lines_observes_as_pushing_line_by_line_does() {
    let buf = generated(20_000, 7, 3);
    let analytics = crate::analytics::AnalyticsConfig::default();

    let mut batched = Partial::new(&analytics);
    let mut parser = ChunkParser::new("s".into(), 0);
    let pushed = parser.push_lines(&buf, 0, &mut batched);
    assert_eq!(pushed.consumed, buf.len());
    let chunk = parser.finish().unwrap();

    let mut one = Partial::new(&analytics);
    let mut parser = ChunkParser::new("s".into(), 0);
    for (i, line) in lines(&buf).enumerate() {
        assert_eq!(parser.push(line, i as i64, &mut one), Push::Taken);
    }
    let other = parser.finish().unwrap();
    assert_eq!(chunk.records + chunk.rejected, 20_000);
    assert!(chunk.rejected > 0, "the generator writes rejects");
    assert_eq!(
        (chunk.records, chunk.rejected),
        (other.records, other.rejected)
    );
    assert_eq!(batched.to_bytes().unwrap(), one.to_bytes().unwrap());
    // The same columns too: lines borrowed from checked blocks of the buffer, and the lines of
    // blocks holding invalid UTF-8 checked (and replaced) one by one.
    assert!(
        std::str::from_utf8(&buf).is_err(),
        "the input holds invalid UTF-8"
    );
    assert_eq!(chunk.by_date, other.by_date);
    assert_eq!(chunk.rejects, other.rejects);
}

#[test]
fn push_messages_takes_what_fits_and_observes_as_push_does() {
    let buf = generated(3_000, 11, 2);
    // Offsets with gaps, as a compacted topic or transaction markers leave them.
    let messages: Vec<(i64, &[u8])> = lines(&buf)
        .enumerate()
        .map(|(i, l)| (3 * i as i64 + 5, l))
        .collect();
    let analytics = AnalyticsConfig::default();
    let caps = ShardCaps {
        rows: 1_000,
        ..ShardCaps::default()
    };

    let mut batched = Partial::new(&analytics);
    let mut parser = ChunkParser::new("s".into(), 0).with_caps(caps);
    let mut it = messages.iter().copied();
    let mut shards = Vec::new();
    loop {
        let pushed = parser.push_messages(&mut it, &mut batched);
        let Some((offset, line)) = pushed.refused else {
            shards.push(parser.finish().unwrap());
            break;
        };
        assert_eq!(
            pushed.last,
            Some(offset - 3),
            "the one before the refused one"
        );
        shards.push(parser.finish().unwrap());
        assert_eq!(parser.push(line, offset, &mut batched), Push::Taken);
    }
    let rows: Vec<u64> = shards.iter().map(|c| c.records + c.rejected).collect();
    assert_eq!(rows, [1_000, 1_000, 1_000]);

    let mut one = Partial::new(&analytics);
    let mut parser = ChunkParser::new("s".into(), 0);
    for &(offset, line) in &messages {
        assert_eq!(parser.push(line, offset, &mut one), Push::Taken);
    }
    assert_eq!(batched.to_bytes().unwrap(), one.to_bytes().unwrap());
}
