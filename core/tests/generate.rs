//! Whole-output checks of `sawmill generate`, through the public API only: every well-formed line
//! must pass a format check written independently of the generator, and the mix must look like
//! NASA's July/August 1995 logs.

use std::collections::{HashMap, HashSet};

use sawmill_core::generate::{generate, GenerateConfig};
use sawmill_core::record::{civil_from_days, days_from_civil};

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

struct Parsed<'a> {
    host: &'a [u8],
    path: &'a [u8],
    day: i32,
    sec: u32,
    status: u16,
    size: Option<u64>,
    combined: bool,
}

/// `host - - [dd/Mon/yyyy:hh:mm:ss -0400] "METHOD path[ HTTP/x.y]" ddd size[ "referer" "agent"]`
fn check(line: &[u8]) -> Option<Parsed<'_>> {
    let (host, rest) = line.split_at(line.iter().position(|&b| b == b' ')?);
    let rest = rest.strip_prefix(b" - - [")?;
    if host.is_empty() || rest.len() < 30 {
        return None;
    }
    let ts = std::str::from_utf8(&rest[..26]).ok()?;
    let rest = rest[26..].strip_prefix(b"] \"")?;
    let seps = [2, 6, 11, 14, 17].map(|i| ts.as_bytes()[i]);
    if seps != *b"//:::" || &ts[20..] != " -0400" {
        return None;
    }
    let num = |s: &str| s.parse::<u32>().ok();
    let month = MONTHS.iter().position(|m| *m == &ts[3..6])? as u8 + 1;
    let (y, d) = (num(&ts[7..11])? as i32, num(&ts[0..2])? as u8);
    let (hh, mm, ss) = (num(&ts[12..14])?, num(&ts[15..17])?, num(&ts[18..20])?);
    let day = days_from_civil(y, month, d);
    if hh > 23 || mm > 59 || ss > 59 || civil_from_days(day) != (y, month, d) {
        return None;
    }
    // The request ends at the first `" ddd `: paths may hold spaces but never quotes.
    let end = (0..rest.len().saturating_sub(5)).find(|&i| {
        rest[i..i + 2] == *b"\" "
            && rest[i + 5] == b' '
            && rest[i + 2..i + 5].iter().all(u8::is_ascii_digit)
    })?;
    let request = &rest[..end];
    let method = request.split(|&b| b == b' ').next()?;
    let target = request.get(method.len() + 1..)?;
    // HTTP/0.9 requests have no protocol; a target may hold spaces.
    let path = match target.iter().rposition(|&b| b == b' ') {
        Some(i) if matches!(&target[i..], b" HTTP/1.0" | b" HTTP/1.1") => &target[..i],
        _ => target,
    };
    let known = matches!(method, b"GET" | b"HEAD" | b"POST");
    if !known || path.first() != Some(&b'/') || request.contains(&b'"') {
        return None;
    }
    let status: u16 = std::str::from_utf8(&rest[end + 2..end + 5])
        .ok()?
        .parse()
        .ok()?;
    let tail = &rest[end + 6..];
    let size_end = tail.iter().position(|&b| b == b' ').unwrap_or(tail.len());
    let size = match &tail[..size_end] {
        b"-" => None,
        digits => Some(std::str::from_utf8(digits).ok()?.parse().ok()?),
    };
    let extra = &tail[size_end..];
    let quotes = extra.iter().filter(|&&b| b == b'"').count();
    let combined_ok = extra.starts_with(b" \"") && extra.ends_with(b"\"") && quotes == 4;
    if !(100..=599).contains(&status) || !(extra.is_empty() || combined_ok) {
        return None;
    }
    let sec = hh * 3600 + mm * 60 + ss;
    let combined = !extra.is_empty();
    Some(Parsed {
        host,
        path,
        day,
        sec,
        status,
        size,
        combined,
    })
}

#[test]
fn generate_200k_lines_look_like_nasa() {
    let lines = 200_000u64;
    let cfg = GenerateConfig {
        combined_fraction: 0.3,
        malformed_fraction: 0.01,
        ..GenerateConfig::new(lines, 42)
    };
    let mut out = Vec::new();
    let stats = generate(&cfg, &mut out).unwrap();
    assert_eq!((stats.lines, stats.bytes), (lines, out.len() as u64));
    assert_eq!(out.last(), Some(&b'\n'));
    let all: Vec<&[u8]> = out[..out.len() - 1].split(|&b| b == b'\n').collect();
    assert_eq!(all.len() as u64, lines);

    let start = days_from_civil(1995, 7, 1);
    assert_eq!(cfg.effective_days(), 4); // Sat 1 .. Tue 4 July 1995
    let (mut bad, mut last, mut combined, mut dash_200, mut spaced) = (0, (start, 0), 0, 0, 0);
    let (mut statuses, mut per_day, mut per_hour) = (HashMap::new(), [0u64; 4], [0u64; 24]);
    let (mut hosts, mut paths) = (HashSet::new(), HashSet::new());
    for line in &all {
        let Some(p) = check(line) else {
            bad += 1;
            continue;
        };
        let text = String::from_utf8_lossy(line);
        assert!((start..start + 4).contains(&p.day), "out of range: {text}");
        assert!((p.day, p.sec) >= last, "timestamp goes back: {text}");
        last = (p.day, p.sec);
        *statuses.entry(p.status).or_insert(0u64) += 1;
        per_day[(p.day - start) as usize] += 1;
        per_hour[(p.sec / 3600) as usize] += 1;
        combined += u64::from(p.combined);
        dash_200 += u64::from(p.status == 200 && p.size.is_none());
        spaced += u64::from(p.path.contains(&b' '));
        if p.status == 304 {
            assert_eq!(p.size, Some(0), "{text}");
        }
        hosts.insert(p.host);
        paths.insert(p.path);
    }
    let good = lines - bad;
    assert_eq!(bad, stats.malformed);
    assert!((1_800..2_200).contains(&bad), "malformed {bad}");
    let share = |s: u16| *statuses.get(&s).unwrap_or(&0) as f64 / good as f64;
    assert!((0.885..0.91).contains(&share(200)), "200: {}", share(200));
    assert!((0.063..0.077).contains(&share(304)), "304: {}", share(304));
    assert!((0.021..0.029).contains(&share(302)), "302: {}", share(302));
    assert!((0.004..0.009).contains(&share(404)), "404: {}", share(404));
    let rare = share(403) + share(500) + share(501) + share(400);
    assert!(share(403) > 0.0 && rare < 0.002, "rare statuses {rare}");
    let dash = dash_200 as f64 / good as f64 / share(200);
    assert!((0.007..0.013).contains(&dash), "missing sizes {dash}");
    assert!((0.28..0.32).contains(&(combined as f64 / good as f64)));
    // Weekdays (Mon 3, Tue 4) are busier than the weekend, afternoons than before dawn.
    assert!(
        per_day[2] + per_day[3] > (per_day[0] + per_day[1]) * 3 / 2,
        "{per_day:?}"
    );
    assert!(per_hour[14] > per_hour[4] * 3, "{per_hour:?}");
    // NASA had ~140,000 hosts in 3.5M lines: 0.04 per line.
    assert_eq!(hosts.len() as u64, stats.distinct_hosts);
    let ratio = stats.distinct_hosts as f64 / lines as f64;
    assert!(
        (0.036..0.044).contains(&ratio),
        "distinct hosts per line {ratio}"
    );
    let count = |f: fn(&[u8]) -> bool| hosts.iter().filter(|h| f(h)).count();
    let ipv4 = count(|h| h.iter().all(|&b| b == b'.' || b.is_ascii_digit()));
    assert!(
        (0.15..0.45).contains(&(ipv4 as f64 / hosts.len() as f64)),
        "{ipv4} IPv4 hosts"
    );
    assert!(count(|h| h.contains(&b':')) > 0 && count(|h| !h.contains(&b'.')) > 0);
    assert!(
        (1_000..20_000).contains(&paths.len()),
        "{} distinct paths",
        paths.len()
    );
    assert!(spaced > 0);
}

#[test]
fn generate_default_is_pure_common_log_format() {
    let mut out = Vec::new();
    let stats = generate(&GenerateConfig::new(30_000, 3), &mut out).unwrap();
    let well_formed = out.split(|&b| b == b'\n').filter_map(check).count() as u64;
    assert_eq!(well_formed, stats.lines - stats.malformed);
    assert!(stats.malformed < 100);
    assert!(!out
        .split(|&b| b == b'\n')
        .filter_map(check)
        .any(|p| p.combined));
}
