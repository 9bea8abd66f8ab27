//! Bytes → [`LogRecord`]: one parser for the Common, Combined and bracketed-ISO formats.
//!
//! The exact semantics (what is a missing value, what is rejected and why, and where Sawmill
//! deliberately differs from the original PySpark regexes) are written down in
//! `docs/parsing.md`; keep the two in step.
//!
//! The parser works on bytes, never `&str`: real logs contain invalid UTF-8. It allocates nothing
//! and reads each byte a small constant number of times. Short fields (host, ident, status,
//! size, method) are scanned with plain loops, which beat `memchr`'s call and set-up cost over
//! a few bytes; `memchr` is kept for the long stretches (request, referer, user agent).

use crate::record::{days_from_civil, LogFormat, LogRecord, RejectReason, Timestamp};
use memchr::memchr;

/// Strips a trailing `\n`, `\r\n` or bare `\r` (a line may also arrive without any line end).
#[inline]
pub fn strip_line_end(mut line: &[u8]) -> &[u8] {
    if let [rest @ .., b'\n'] = line {
        line = rest;
    }
    if let [rest @ .., b'\r'] = line {
        line = rest;
    }
    line
}

/// Parses one line (line end optional). See the module docs for the contract.
pub fn parse_line(line: &[u8]) -> Result<LogRecord<'_>, RejectReason> {
    let line = trim(strip_line_end(line));
    if line.is_empty() {
        return Err(RejectReason::Empty);
    }
    // host: up to the first space or tab. IPv6 hosts contain ':' but never spaces.
    let host_end = find_space(line).ok_or(RejectReason::Truncated)?;
    let mut host = &line[..host_end];
    if host.first() == Some(&b'[') {
        return Err(RejectReason::NoHost);
    }
    let rest = &line[host_end..];

    // ident and user sit between the host and the '[' of the timestamp.
    let open = match rest.iter().position(|&b| b == b'[') {
        Some(i) => i,
        None => return Err(RejectReason::NoTimestamp),
    };
    let (client, ident, user) = ident_user(&rest[..open]);
    // Three tokens there: the line starts with a virtual host or server address (Apache's
    // `vhost_combined`, nginx `$server_addr $remote_addr - $remote_user`); the client is next.
    if let Some(client) = client {
        host = client;
    }
    let after_open = &rest[open + 1..];
    // Nearly every timestamp is `dd/Mon/yyyy:HH:MM:SS ±zzzz`, 26 bytes: look there first. With
    // that shape (`/` third), a `]` earlier than 26 makes the timestamp invalid whichever `]`
    // closes it, since every one of the 26 bytes is checked, so the reason stays the same.
    let close = if after_open.get(26) == Some(&b']') && after_open[2] == b'/' {
        26
    } else {
        memchr(b']', after_open).ok_or(RejectReason::Truncated)?
    };
    let (timestamp, iso) = parse_timestamp(&after_open[..close])?;
    let rest = &after_open[close + 1..];

    // the quoted request.
    let rest = skip_spaces(rest);
    if rest.is_empty() {
        return Err(RejectReason::Truncated);
    }
    if rest[0] != b'"' {
        return Err(RejectReason::BadRequestLine);
    }
    let body = &rest[1..];
    let req_end = find_request_end(body)?;
    let request = &body[..req_end];
    let rest = &body[req_end + 1..];
    let Request {
        method,
        endpoint,
        protocol,
    } = split_request(request);

    // status
    let rest = skip_spaces(rest);
    let (status_tok, rest) = next_token(rest);
    if status_tok.is_empty() {
        return Err(RejectReason::Truncated);
    }
    let status = parse_status(status_tok)?;

    // content size
    let rest = skip_spaces(rest);
    let (size_tok, rest) = next_token(rest);
    let content_size = match size_tok {
        [] => return Err(RejectReason::Truncated),
        b"-" => None,
        digits => Some(parse_size(digits)?),
    };

    // optional "referer" "user agent"; anything after them (a forwarded-for field, a port) is
    // tolerated and ignored. A line that ends inside either quoted field (a logger that cut a
    // long agent off) keeps what it has: the request before it is whole.
    let rest = skip_spaces(rest);
    let mut truncated_field = false;
    let (format, referer, user_agent) = if rest.first() == Some(&b'"') {
        let (referer, rest) = quoted_or_cut(&rest[1..], &mut truncated_field);
        let rest = skip_spaces(rest);
        let user_agent = if rest.first() == Some(&b'"') {
            Some(quoted_or_cut(&rest[1..], &mut truncated_field).0)
        } else {
            None
        };
        (
            LogFormat::Combined,
            dash_none(referer),
            user_agent.and_then(dash_none),
        )
    } else if iso {
        (LogFormat::IsoBracketed, None, None)
    } else {
        (LogFormat::Common, None, None)
    };
    let format = if iso { LogFormat::IsoBracketed } else { format };

    Ok(LogRecord {
        format,
        host,
        ident,
        user,
        timestamp,
        method,
        endpoint,
        protocol,
        status,
        content_size,
        referer,
        user_agent,
        truncated_field,
    })
}

#[inline]
fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

#[inline]
fn skip_spaces(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    s
}

/// The first space or tab.
#[inline]
fn find_space(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b' ' || b == b'\t')
}

#[inline]
fn next_token(s: &[u8]) -> (&[u8], &[u8]) {
    match find_space(s) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, &[]),
    }
}

#[inline]
fn dash_none(s: &[u8]) -> Option<&[u8]> {
    if s == b"-" || s.is_empty() {
        None
    } else {
        Some(s)
    }
}

/// The tokens between the first token and `[`: `(client, ident, user)`, where `client` is
/// `Some` only when there are three (the first token was a virtual host).
/// `(client, ident, user)` from the tokens before `[`.
type Heads<'a> = (Option<&'a [u8]>, Option<&'a [u8]>, Option<&'a [u8]>);

fn ident_user(between: &[u8]) -> Heads<'_> {
    // No allocation on the hot path: at most four tokens are looked at.
    let mut toks: [&[u8]; 4] = [&[]; 4];
    let mut n = 0;
    for t in between
        .split(|&b| b == b' ' || b == b'\t')
        .filter(|t| !t.is_empty())
    {
        if n == 4 {
            break;
        }
        toks[n] = t;
        n += 1;
    }
    match n {
        3 => (Some(toks[0]), dash_none(toks[1]), dash_none(toks[2])),
        0 => (None, None, None),
        1 => (None, dash_none(toks[0]), None),
        _ => (None, dash_none(toks[0]), dash_none(toks[1])),
    }
}

/// True when the quote at `i` is escaped by an odd number of backslashes (Apache writes `\"`).
#[inline]
fn escaped(s: &[u8], i: usize) -> bool {
    let mut n = 0;
    while n < i && s[i - 1 - n] == b'\\' {
        n += 1;
    }
    n % 2 == 1
}

/// Finds the quote that closes the request. A request may contain spaces and escaped quotes,
/// so the closing quote is the first unescaped one followed by a space and a status-like token;
/// failing that, the first unescaped quote (the status check then reports what is wrong).
fn find_request_end(body: &[u8]) -> Result<usize, RejectReason> {
    let mut from = 0;
    let mut first_unescaped = None;
    while let Some(j) = memchr(b'"', &body[from..]) {
        let i = from + j;
        from = i + 1;
        if escaped(body, i) {
            continue;
        }
        first_unescaped.get_or_insert(i);
        let after = skip_spaces(&body[i + 1..]);
        if after.len() < body.len() - i - 1 && looks_like_status(after) {
            return Ok(i);
        }
    }
    first_unescaped.ok_or(RejectReason::Truncated)
}

#[inline]
fn looks_like_status(s: &[u8]) -> bool {
    s.len() >= 3
        && s[..3].iter().all(u8::is_ascii_digit)
        && matches!(s.get(3), None | Some(b' ' | b'\t'))
}

/// The three parts of a quoted request; each is `None` when missing (see `docs/parsing.md`).
struct Request<'a> {
    method: Option<&'a [u8]>,
    endpoint: Option<&'a [u8]>,
    protocol: Option<&'a [u8]>,
}

/// Splits `METHOD target PROTOCOL`. The target keeps inner spaces. A request with no
/// method-like first token (TLS hellos, `SSH-2.0-PUTTY`) keeps the whole text as the endpoint.
fn split_request(req: &[u8]) -> Request<'_> {
    let parts = |method, endpoint, protocol| Request {
        method,
        endpoint,
        protocol,
    };
    let req = trim(req);
    if req.is_empty() || req == b"-" {
        return parts(None, None, None);
    }
    let Some(sp) = req.iter().position(|&b| b == b' ') else {
        return if is_method(req) {
            parts(Some(req), None, None)
        } else {
            parts(None, Some(req), None)
        };
    };
    let method = &req[..sp];
    if !is_method(method) {
        return parts(None, Some(req), None);
    }
    let target = skip_spaces(&req[sp + 1..]);
    // The protocol is the last token when it starts with "HTTP/"; otherwise HTTP/0.9.
    if let Some(last_sp) = target.iter().rposition(|&b| b == b' ') {
        let proto = &target[last_sp + 1..];
        if is_http(proto) {
            let endpoint = trim(&target[..last_sp]);
            return parts(Some(method), non_empty(endpoint), Some(proto));
        }
    } else if is_http(target) {
        return parts(Some(method), None, Some(target));
    }
    parts(Some(method), non_empty(target), None)
}

/// Starts with `HTTP/`, in any case (the exact spelling is checked first: it is nearly all).
#[inline]
fn is_http(tok: &[u8]) -> bool {
    tok.len() >= 5 && (tok.starts_with(b"HTTP/") || tok[..5].eq_ignore_ascii_case(b"HTTP/"))
}

#[inline]
fn non_empty(s: &[u8]) -> Option<&[u8]> {
    (!s.is_empty()).then_some(s)
}

#[inline]
fn is_method(tok: &[u8]) -> bool {
    !tok.is_empty()
        && tok.len() <= 24
        && tok
            .iter()
            .all(|&b| b.is_ascii_uppercase() || b == b'_' || b == b'-')
}

fn parse_status(tok: &[u8]) -> Result<u16, RejectReason> {
    if tok.len() != 3 || !tok.iter().all(u8::is_ascii_digit) || tok[0] == b'0' {
        return Err(RejectReason::BadStatus);
    }
    Ok(u16::from(tok[0] - b'0') * 100 + u16::from(tok[1] - b'0') * 10 + u16::from(tok[2] - b'0'))
}

fn parse_size(tok: &[u8]) -> Result<u64, RejectReason> {
    if tok.len() > 19 {
        return Err(RejectReason::BadContentSize);
    }
    let mut v: u64 = 0;
    for &b in tok {
        if !b.is_ascii_digit() {
            return Err(RejectReason::BadContentSize);
        }
        v = v * 10 + u64::from(b - b'0');
    }
    if v > i64::MAX as u64 {
        return Err(RejectReason::BadContentSize);
    }
    Ok(v)
}

/// Parses the inside of `[...]`: `01/Jul/1995:00:00:01 -0400` or `1995-07-01 00:00:01`
/// (the latter has no zone and is taken as UTC). Returns the timestamp and whether it was ISO.
fn parse_timestamp(s: &[u8]) -> Result<(Timestamp, bool), RejectReason> {
    if s.len() >= 19 && s[4] == b'-' {
        return parse_iso(s).map(|t| (t, true));
    }
    // dd/Mon/yyyy:HH:MM:SS +zzzz
    if s.len() != 26 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' || s[20] != b' ' {
        return Err(RejectReason::InvalidTimestamp);
    }
    let day = num2(&s[0..2])?;
    let month = month(&s[3..6])?;
    let year = num4(&s[7..11])?;
    let (h, m, sec) = hms(&s[12..20])?;
    let offset = zone(&s[21..26])?;
    let utc_secs = civil_secs(year, month, day, h, m, sec)? - i64::from(offset) * 60;
    Ok((
        Timestamp {
            utc_secs,
            offset_minutes: offset,
        },
        false,
    ))
}

fn parse_iso(s: &[u8]) -> Result<Timestamp, RejectReason> {
    if s[7] != b'-' || !(s[10] == b' ' || s[10] == b'T') {
        return Err(RejectReason::InvalidTimestamp);
    }
    let year = num4(&s[0..4])?;
    let month = num2(&s[5..7])?;
    let day = num2(&s[8..10])?;
    let (h, m, sec) = hms(&s[11..19])?;
    // Fractional seconds are tolerated and dropped; anything else after the time is an error.
    let tail = &s[19..];
    if !(tail.is_empty() || (tail[0] == b'.' && tail[1..].iter().all(u8::is_ascii_digit))) {
        return Err(RejectReason::InvalidTimestamp);
    }
    let utc_secs = civil_secs(year, month as u8, day, h, m, sec)?;
    Ok(Timestamp {
        utc_secs,
        offset_minutes: 0,
    })
}

fn civil_secs(year: u32, month: u8, day: u32, h: u32, m: u32, s: u32) -> Result<i64, RejectReason> {
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return Err(RejectReason::InvalidTimestamp);
    }
    let days = days_from_civil(year as i32, month, day as u8);
    Ok(i64::from(days) * 86_400 + i64::from(h * 3600 + m * 60 + s))
}

fn days_in_month(year: u32, month: u8) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

fn hms(s: &[u8]) -> Result<(u32, u32, u32), RejectReason> {
    if s[2] != b':' || s[5] != b':' {
        return Err(RejectReason::InvalidTimestamp);
    }
    let (h, m, sec) = (num2(&s[0..2])?, num2(&s[3..5])?, num2(&s[6..8])?);
    // 60 allows a leap second; it is folded into the next minute like most log tools do.
    if h > 23 || m > 59 || sec > 60 {
        return Err(RejectReason::InvalidTimestamp);
    }
    Ok((h, m, sec))
}

fn zone(s: &[u8]) -> Result<i16, RejectReason> {
    let sign = match s[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return Err(RejectReason::InvalidTimestamp),
    };
    let (hh, mm) = (num2(&s[1..3])?, num2(&s[3..5])?);
    if hh > 18 || mm > 59 {
        return Err(RejectReason::InvalidTimestamp);
    }
    Ok(sign * (hh * 60 + mm) as i16)
}

#[inline]
fn digit(b: u8) -> Result<u32, RejectReason> {
    if b.is_ascii_digit() {
        Ok(u32::from(b - b'0'))
    } else {
        Err(RejectReason::InvalidTimestamp)
    }
}

#[inline]
fn num2(s: &[u8]) -> Result<u32, RejectReason> {
    Ok(digit(s[0])? * 10 + digit(s[1])?)
}

#[inline]
fn num4(s: &[u8]) -> Result<u32, RejectReason> {
    Ok(num2(&s[0..2])? * 100 + num2(&s[2..4])?)
}

fn month(s: &[u8]) -> Result<u8, RejectReason> {
    let m = [
        s[0].to_ascii_lowercase(),
        s[1].to_ascii_lowercase(),
        s[2].to_ascii_lowercase(),
    ];
    Ok(match &m {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return Err(RejectReason::InvalidTimestamp),
    })
}

/// Reads a quoted field whose opening quote was already consumed; returns its contents and the
/// rest after the closing quote, or `None` when the line ends inside the quotes.
fn quoted(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut from = 0;
    while let Some(j) = memchr(b'"', &s[from..]) {
        let i = from + j;
        if !escaped(s, i) {
            return Some((&s[..i], &s[i + 1..]));
        }
        from = i + 1;
    }
    None
}

/// [`quoted`], or, when the line ends inside the quotes, everything up to the end (and `cut` set).
fn quoted_or_cut<'a>(s: &'a [u8], cut: &mut bool) -> (&'a [u8], &'a [u8]) {
    quoted(s).unwrap_or_else(|| {
        *cut = true;
        (s, &[])
    })
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
