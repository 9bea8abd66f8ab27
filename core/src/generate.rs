//! Realistic synthetic access logs (`sawmill generate`) for scale tests and benchmarks.
//!
//! The output imitates the NASA Kennedy Space Center logs of July/August 1995: Zipf-like host and
//! endpoint popularity, bursts of requests from one host, a daily and weekly traffic cycle, the
//! NASA status and size conventions and a small share of malformed lines. Output is a pure
//! function of the [`GenerateConfig`] for a given Sawmill version (it relies on `rand`'s `StdRng`
//! and the platform's `powf`, so it is not promised to be stable across versions or platforms).

use std::f64::consts::TAU;
use std::io::{BufWriter, Write};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Zipf};
use seq::Seq;

use crate::error::{Error, Result};
use crate::record::{civil_from_days, days_from_civil, spark_dayofweek};

#[path = "generate_vocab.rs"]
mod vocab;
use vocab::*;

/// What to generate. `days == 0` means "derive from `lines`" (see [`GenerateConfig::effective_days`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    pub lines: u64,
    pub seed: u64,
    /// First calendar day (year, month, day) in the log's -0400 wall clock.
    pub start_date: (i32, u8, u8),
    /// Number of days the timestamps spread over; 0 = about `lines / 55_000` rounded up, min 1.
    pub days: u32,
    /// Share of lines in Apache combined format (`"referer" "user agent"` appended).
    pub combined_fraction: f64,
    /// Share of lines that are malformed (truncated, empty, garbage, bad status, no timestamp).
    pub malformed_fraction: f64,
    /// Share of 200/302 responses whose size is written as `-`. 404s and a few other errors add
    /// their own `-` sizes on top, as in NASA's logs.
    pub missing_size_fraction: f64,
    /// Tag every line with a [`seq::Seq`] (`sawmill-seq=<run>.<key>.<n>`): well-formed lines in
    /// their endpoint's query string, malformed ones somewhere in their raw bytes. The rest of
    /// each line is what it would be without tags.
    pub seq: Option<seq::SeqConfig>,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        GenerateConfig {
            lines: 1_000_000,
            seed: 1995,
            start_date: (1995, 7, 1),
            days: 0,
            combined_fraction: 0.0,
            malformed_fraction: 0.001,
            missing_size_fraction: 0.01,
            seq: None,
        }
    }
}

impl GenerateConfig {
    /// The defaults with the given size and seed.
    pub fn new(lines: u64, seed: u64) -> Self {
        GenerateConfig {
            lines,
            seed,
            ..Default::default()
        }
    }

    /// Days actually covered: `days`, or `ceil(lines / 55_000)` (at least 1) when `days == 0`.
    pub fn effective_days(&self) -> u32 {
        match self.days {
            0 => u32::try_from(self.lines.div_ceil(LINES_PER_DAY).max(1)).unwrap_or(u32::MAX),
            days => days,
        }
    }

    /// Checks fractions and dates; returns the first day as days since the epoch.
    fn validate(&self) -> Result<i32> {
        let fractions = [
            self.combined_fraction,
            self.malformed_fraction,
            self.missing_size_fraction,
        ];
        if !fractions.iter().all(|f| (0.0..=1.0).contains(f)) {
            return Err(Error::Config(format!(
                "fractions must be within 0..=1, got {fractions:?}"
            )));
        }
        let (y, m, d) = self.start_date;
        let start = days_from_civil(y, m, d);
        // Four-digit years only, so every timestamp has the same width.
        let last = i64::from(start) + i64::from(self.effective_days()) - 1;
        if y < 1
            || civil_from_days(start) != (y, m, d)
            || last > i64::from(days_from_civil(9999, 12, 31))
        {
            return Err(Error::Config(format!(
                "start date {y}-{m}-{d} plus {} days is not a valid range of dates in years 1..=9999",
                self.effective_days()
            )));
        }
        Ok(start)
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GenerateStats {
    pub lines: u64,
    pub bytes: u64,
    /// Lines deliberately made unparseable.
    pub malformed: u64,
    /// Distinct host strings among the well-formed lines.
    pub distinct_hosts: u64,
}

/// Writes `cfg.lines` newline-terminated log lines to `out` (buffered here; pass the raw writer).
///
/// Fails with [`Error::Config`] for fractions outside 0..=1 or dates outside years 1..=9999, and
/// with [`Error::Write`] when `out` fails.
pub fn generate<W: Write>(cfg: &GenerateConfig, out: W) -> Result<GenerateStats> {
    let start_day = cfg.validate()?;
    let hours = u64::from(cfg.effective_days()) * 24;
    let host_universe = ((cfg.lines as f64 * HOST_UNIVERSE_PER_LINE) as u64).max(256);
    let endpoints: Vec<Endpoint> = (0..(2_000 + cfg.lines / 100).min(60_000))
        .map(endpoint)
        .collect();
    let zipf = |n: f64, s: f64| Zipf::new(n, s).map_err(|e| Error::Config(format!("zipf: {e}")));
    let mut g = LineGen {
        cfg,
        host_zipf: zipf(host_universe as f64, HOST_ZIPF_S)?,
        host_universe,
        endpoint_zipf: zipf(endpoints.len() as f64, ENDPOINT_ZIPF_S)?,
        endpoints,
        recent: Vec::with_capacity(RECENT_HOSTS),
        seen: vec![0; host_universe.div_ceil(64) as usize],
        rng: StdRng::seed_from_u64(cfg.seed),
    };
    let write_err = |source| Error::Write {
        what: "the generated log".into(),
        source,
    };
    let mut out = BufWriter::with_capacity(1 << 20, out);
    let mut stats = GenerateStats::default();
    let mut buf = Vec::with_capacity(512);
    // Hour h ends at round(lines * weight share up to h): an exact total, non-decreasing
    // timestamps, and no per-hour storage however long the span.
    let total: f64 = (0..hours)
        .map(|h| hour_weight(cfg.seed, start_day, h))
        .sum();
    let (mut acc, mut written) = (0.0, 0u64);
    for h in 0..hours {
        acc += hour_weight(cfg.seed, start_day, h);
        let share = if h + 1 < hours { acc / total } else { 1.0 };
        let n = ((cfg.lines as f64 * share).round() as u64)
            .min(cfg.lines)
            .saturating_sub(written);
        if n == 0 {
            continue;
        }
        let (y, m, d) = civil_from_days(start_day + (h / 24) as i32);
        let mon = MONTHS[usize::from(m - 1)];
        let prefix = format!("[{d:02}/{mon}/{y:04}:{:02}:", h % 24);
        // Sorted uniform offsets drawn one at a time: the next of k remaining order statistics.
        let mut u = 0.0f64;
        for k in (1..=n).rev() {
            u += (1.0 - u) * (1.0 - g.rng.random::<f64>().powf(1.0 / k as f64));
            let sec = ((u * 3600.0) as u32).min(3599);
            let tag = cfg.seq.map(|s| s.of_line(written + (n - k)));
            stats.malformed += u64::from(g.line(prefix.as_bytes(), sec, tag, &mut buf));
            out.write_all(&buf).map_err(write_err)?;
            stats.bytes += buf.len() as u64;
        }
        written += n;
    }
    out.flush().map_err(write_err)?;
    stats.lines = written;
    stats.distinct_hosts = g.seen.iter().map(|w| u64::from(w.count_ones())).sum();
    Ok(stats)
}

struct Endpoint {
    path: String,
    size: u64,
    /// CGI output varies per request.
    dynamic: bool,
}

struct LineGen<'a> {
    cfg: &'a GenerateConfig,
    host_zipf: Zipf<f64>,
    host_universe: u64,
    endpoint_zipf: Zipf<f64>,
    endpoints: Vec<Endpoint>,
    /// The hosts of the current bursts (rank, name): names are rendered once per burst.
    recent: Vec<(u64, String)>,
    /// Bitset over the host ranks of well-formed lines.
    seen: Vec<u64>,
    rng: StdRng,
}

impl LineGen<'_> {
    /// Fills `buf` with one line (with its `\n`); returns whether it was made malformed.
    fn line(&mut self, prefix: &[u8], sec: u32, tag: Option<Seq>, buf: &mut Vec<u8>) -> bool {
        buf.clear();
        let rng = &mut self.rng;
        let malformed = rng.random::<f64>() < self.cfg.malformed_fraction;
        // 0..15 empty, 15..30 garbage, 30..65 truncated, 65..85 bad status, 85..100 no timestamp.
        let kind = if malformed {
            rng.random_range(0..100)
        } else {
            100
        };
        if kind < 30 {
            let garbage = usize::from(kind >= 15) * rng.random_range(5..80);
            buf.extend((0..garbage).map(|_| rng.random_range(b' '..=0xFF)));
            if let Some(tag) = tag {
                // An empty line cannot carry a tag: tagged, it is rejected as a truncated one.
                if !buf.is_empty() {
                    buf.push(b' ');
                }
                tag.write(buf);
            }
            buf.push(b'\n');
            return true;
        }
        let slot = rng.random_range(0..RECENT_HOSTS);
        if slot >= self.recent.len() || !rng.random_bool(HOST_REPEAT) {
            // Clamped because float rounding could in theory yield n + 1.
            let rank = (self.host_zipf.sample(rng) as u64).min(self.host_universe) - 1;
            let entry = (rank, host_name(rank));
            match self.recent.get_mut(slot) {
                Some(old) => *old = entry,
                None => self.recent.push(entry),
            }
        }
        let (host, ref name) = self.recent[slot.min(self.recent.len() - 1)];
        buf.extend_from_slice(name.as_bytes());
        buf.extend_from_slice(b" - - ");
        if !(85..100).contains(&kind) {
            buf.extend_from_slice(prefix);
            buf.extend_from_slice(&[two(sec / 60)[0], two(sec / 60)[1], b':']);
            buf.extend_from_slice(&two(sec % 60));
            buf.extend_from_slice(b" -0400] ");
        }
        let ep = self.endpoint_zipf.sample(rng) as usize;
        let ep = &self.endpoints[ep.min(self.endpoints.len()) - 1];
        let status = pick(rng.random(), &STATUSES, 200);
        let method = pick(rng.random(), &METHODS, "GET");
        buf.push(b'"');
        buf.extend_from_slice(method.as_bytes());
        buf.push(b' ');
        // NASA's server redirected directories asked for without their slash.
        let path = ep.path.as_bytes();
        let cut = usize::from(status == 302 && path.len() > 1 && path.ends_with(b"/"));
        buf.extend_from_slice(&path[..path.len() - cut]);
        // Where the tag (with its separator) lies, so a cut never leaves a shorter, wrong tag.
        let tag_span = tag.map(|tag| {
            let at = buf.len();
            buf.push(if path.contains(&b'?') { b'&' } else { b'?' });
            tag.write(buf);
            at..buf.len()
        });
        buf.extend_from_slice(pick(rng.random(), &PROTOCOLS, " HTTP/1.0").as_bytes());
        buf.extend_from_slice(b"\" ");
        let status_at = buf.len();
        match kind {
            65..85 => buf.extend_from_slice(BAD_STATUSES[rng.random_range(0..BAD_STATUSES.len())]),
            _ => push_num(buf, u64::from(status)),
        }
        let size = match status {
            200 | 302 if rng.random::<f64>() < self.cfg.missing_size_fraction => None,
            200 if method == "HEAD" => Some(0),
            200 if ep.dynamic => Some((ep.size as f64 * rng.random_range(0.5..1.5)) as u64),
            // Aborted transfers log what was sent so far.
            200 if rng.random_bool(0.02) => Some(rng.random_range(0..ep.size.max(1))),
            200 => Some(ep.size),
            302 => Some(80 + ep.size % 160),
            304 | 500 => Some(0),
            404 if rng.random_bool(0.15) => Some(0),
            _ => None,
        };
        buf.push(b' ');
        match size {
            Some(s) => push_num(buf, s),
            None => buf.push(b'-'),
        }
        if self.cfg.combined_fraction > 0.0 && rng.random::<f64>() < self.cfg.combined_fraction {
            // About half the referers are "-"; most hosts keep one browser.
            let i = rng.random_range(0..2 * REFERERS.len());
            let referer = REFERERS.get(i).copied().unwrap_or("-");
            let r = rng.random::<u64>();
            let who = if r % 10 > 0 { host } else { r };
            let agent = AGENTS[(mix(who) % AGENTS.len() as u64) as usize];
            for field in [referer, agent] {
                buf.extend_from_slice(b" \"");
                buf.extend_from_slice(field.as_bytes());
                buf.push(b'"');
            }
        }
        if (30..65).contains(&kind) {
            // Cut before the status so the line can never still parse.
            // Drawn as a position in the untagged line (the same draw as without tags), so a
            // cut falls before or after the tag, never inside it.
            let tag_len = tag_span.as_ref().map_or(0, |s| s.len());
            let cut = rng.random_range(1..status_at - tag_len);
            buf.truncate(match &tag_span {
                Some(span) if cut > span.start => cut + tag_len,
                _ => cut,
            });
            if let Some(tag) = tag.filter(|t| Seq::find(buf) != Some(*t)) {
                // After the cut, so the line still cannot parse; never in place of the cut part.
                buf.push(b' ');
                tag.write(buf);
            }
        }
        buf.push(b'\n');
        if !malformed {
            self.seen[(host / 64) as usize] |= 1 << (host % 64);
        }
        malformed
    }
}

/// The value of the first `(cumulative probability, value)` entry above `u`, else `default`.
fn pick<T: Copy>(u: f64, table: &[(f64, T)], default: T) -> T {
    table.iter().find(|e| u < e.0).map_or(default, |e| e.1)
}

fn hour_weight(seed: u64, start_day: i32, h: u64) -> f64 {
    let dow = spark_dayofweek(start_day + (h / 24) as i32);
    let noise = 0.85 + 0.3 * unit(mix(seed ^ h.wrapping_mul(0x2545_F491_4F6C_DD1D)));
    HOURLY[(h % 24) as usize] * WEEKLY[usize::from(dow - 1)] * noise
}

/// SplitMix64's finaliser: a cheap, well-mixed hash of a rank.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// A hash mapped into [0, 1).
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

fn two(v: u32) -> [u8; 2] {
    [b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]
}

fn push_num(buf: &mut Vec<u8>, v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut v = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

/// The host of a popularity rank. Every template embeds the whole rank (IPv4: a bijection of
/// it), so distinct ranks give distinct names and `distinct_hosts` can count ranks.
#[rustfmt::skip] // One template per line reads as the table it is.
fn host_name(rank: u64) -> String {
    if let Some(top) = TOP_HOSTS.get(rank as usize) {
        return top.to_string();
    }
    let h = mix(rank);
    let word = WORDS[(h >> 20) as usize % WORDS.len()];
    let choose = |list: &[&'static str]| list[(h >> 40) as usize % list.len()];
    match h % 1000 {
        0..=3 => format!("{word}{rank}"),
        4..=6 => format!("2001:db8::{:x}:{:x}", rank >> 16, rank & 0xFFFF),
        7..=279 => {
            // Low 24 bits: a bijection of the rank's; the first octet also moves with the high bits.
            let low = rank & 0xFF_FFFF;
            let mut x = low.wrapping_mul(0x2F_6BA5) & 0xFF_FFFF;
            x ^= x >> 11;
            x = x.wrapping_mul(0x1B_8733) & 0xFF_FFFF;
            x ^= x >> 13;
            let first = OCTETS[((mix(low) + (rank >> 24)) % OCTETS.len() as u64) as usize];
            format!("{first}.{}.{}.{}", x >> 16, (x >> 8) & 0xFF, x & 0xFF)
        }
        280..=359 => format!("www-{}{}.proxy.aol.com", char::from(b'a' + (rank % 6) as u8), rank / 6),
        360..=439 => format!("{}{}-{}.ix.netcom.com", choose(&["ix-sj", "ix-nyc", "ix-den"]), 1 + rank % 20, rank / 20),
        440..=499 => format!("dd{:02}-{:03}.compuserve.com", rank / 1000, rank % 1000),
        500..=639 => format!("{}{rank}.{}", choose(&["dialup", "ppp", "slip", "port", "pm", "tty"]), ISPS[(h >> 48) as usize % ISPS.len()]),
        _ => format!("{word}{rank}.{}", DOMAINS[(h >> 48) as usize % DOMAINS.len()]),
    }
}

/// The endpoint of a popularity rank: NASA's real top pages first, then templated NASA-like paths
/// (each embedding the rank, so all distinct) with a size fixed per endpoint.
#[rustfmt::skip] // One template per line reads as the table it is.
fn endpoint(rank: u64) -> Endpoint {
    let h = mix(rank ^ 0x5EED_E4D9);
    let (a, b, c) = (1 + rank % 78, rank / 78, (h >> 8) % 200);
    let word = WORDS[(h >> 20) as usize % WORDS.len()];
    let path = match TOP_ENDPOINTS.get(rank as usize) {
        Some(top) => top.to_string(),
        None => match h % 100 {
            0..=9 => format!("/shuttle/missions/sts-{a}/images/KSC-95EC-{b:04}.gif"),
            10..=17 => format!("/shuttle/missions/sts-{a}/images/KSC-95EC-{b:04}.jpg"),
            18..=27 => format!("/shuttle/missions/sts-{a}/news/sts-{a}-mcc-{b:02}.txt"),
            28..=39 => format!("/history/apollo/apollo-{}/images/{}HC{}.GIF", 1 + rank % 17, 69 + c % 4, rank / 17),
            40..=47 => format!("/history/apollo/apollo-{}/sounds/a{}{word}.wav", 1 + rank % 17, rank / 17),
            48..=55 => format!("/images/{word}-{rank}.gif"),
            56..=61 => format!("/software/winvn/{word}{rank}.gif"),
            62..=69 => format!("/cgi-bin/imagemap/countdown?{},{}", rank % 400, rank / 400),
            70..=73 => format!("/htbin/wais.pl?{}-{rank}", word.to_uppercase()),
            74..=79 => format!("/persons/astronauts/a-to-m/{word}{rank}.txt"),
            80..=85 => format!("/news/sci.space.shuttle/archive/sci-space-shuttle-{}-jul-95-{rank}.txt", 1 + c % 31),
            86..=89 => format!("/elv/{}/{word}{rank}.gif", word.to_uppercase()),
            90..=93 => format!("/shuttle/missions/sts-{a}/movies/sts-{a}-launch-{b}.mpg"),
            94..=97 => format!("/shuttle/missions/sts-{a}/{word}{b}/"),
            // Rare odd requests: spaces and tildes, as real logs have.
            98 if c < 50 => match c % 4 {
                0 => format!("/shuttle/missions/sts-{a}/ sts-{a}-{b}.html"),
                1 => format!("/history/apollo/apollo {a}/{b}.html"),
                2 => format!("/~{word}{rank}/"),
                _ => format!("/%7E{word}{rank}/index.html"),
            },
            _ => format!("/pub/winvn/{word}{rank}.{}", if c == 0 { "iso" } else { "zip" }),
        },
    };
    // Log-normal around a median per kind of file, from two hash-derived uniforms (Box-Muller).
    let z = (-2.0 * unit(mix(h)).max(1e-12).ln()).sqrt() * (TAU * unit(mix(h ^ 1))).cos();
    let dynamic = path.contains('?') || path.starts_with("/htbin") || path.starts_with("/cgi-bin");
    let (median, sigma) = match path.rsplit('.').next() {
        _ if dynamic => (1_500.0, 0.6),
        Some("gif" | "GIF") => (2_500.0, 1.0),
        Some("jpg") => (60_000.0, 0.8),
        Some("mpg" | "wav") => (500_000.0, 0.8),
        Some("zip") => (300_000.0, 1.0),
        // The very rare CD images are past 2^31 bytes, which readers must not truncate to i32.
        Some("iso") => (4.0e9, 0.15),
        _ => (6_000.0, 0.7),
    };
    Endpoint { size: (median * (sigma * z).exp()).max(1.0) as u64, path, dynamic }
}

#[path = "generate_seq.rs"]
pub mod seq;

// The statistical and format checks of whole outputs live in `common/tests/generate.rs`.
#[cfg(test)]
#[path = "generate_tests.rs"]
mod tests;
