//! The independent reading of a log line: strict regexes written from the format's
//! definition and docs/parsing.md, and the value rules (real dates, zones, statuses), with
//! nothing borrowed from Sawmill's parser.

use regex::bytes::{Captures, Regex};

/// What follows ident and user in every reading below: `[dd/Mon/yyyy:HH:MM:SS ±hhmm]`, the
/// quoted request (`REQ`), a three-digit status, a size or `-`, then optionally
/// `"referer" "agent"` and (the honeypot's) trailing port.
pub const TAIL: &str = r#"\[(?P<dd>\d{2})/(?P<mon>[A-Za-z]{3})/(?P<yyyy>\d{4}):(?P<h>\d{2}):(?P<m>\d{2}):(?P<s>\d{2}) (?P<zone>[+-]\d{4})\] "(?P<req>REQ)" (?P<status>\d{3}) (?P<size>\d+|-)(?: "(?P<ref>QUOTED)" "(?P<ua>QUOTED)"(?: \d+)?)?$"#;

/// A quoted field's contents: no unescaped `"` (Apache writes `\"`).
pub const QUOTED: &str = r#"(?:[^"\\]|\\.)*"#;

/// The strict reading's host, ident and user: exactly three tokens, one space apart (one
/// leading space allowed, as most honeypot lines have it).
pub const STRICT_HEAD: &str = r" ?(?P<host>\S+) \S+ \S+";

/// Documented kinds of line Sawmill accepts and the strict reading does not, as
/// `(kind, head, request)` replacing [`STRICT_HEAD`] and [`QUOTED`] in the reading. A line
/// Sawmill accepts must match the strict reading or one of these, with the same fields.
pub const LENIENT: [(&str, &str, &str); 3] = [
    // docs/parsing.md: "The request's closing quote is the first unescaped `"` followed by
    // whitespace and a three-digit token, so requests containing quotes and spaces parse."
    ("request_with_unescaped_quote", STRICT_HEAD, ".*?"),
    // docs/parsing.md: ident and user are "the one or two tokens between host and `[`"; and
    // data/sample/README.md: a record split by the NASA file's 4 KiB upload defect can leave a
    // second half that parses on its own. Two NASA Aug95 lines are such halves, with `-` as the
    // host and one or no token before `[` (`- - [01/Aug/1995:01:08:29 -0400] "GET ..." 200 1`).
    (
        "fewer_than_two_tokens_before_timestamp",
        r" ?(?P<host>\S+)(?: \S+)?",
        QUOTED,
    ),
    // docs/parsing.md: three tokens between the first one and `[` mean the line starts with a
    // virtual host or server address (the honeypot's nginx `$server_addr $remote_addr - -`:
    // 797 lines); the client, the second token, is the host.
    ("virtual_host_prefix", r"\S+ (?P<host>\S+) \S+ \S+", QUOTED),
];

/// docs/parsing.md: a combined line that ends inside its user agent's quotes is a record with
/// the agent kept as far as it goes (and `truncated_field` set): the strict reading's tail with
/// the agent's closing quote missing.
pub fn cut_off_user_agent() -> Regex {
    let tail = TAIL
        .replace(r#""(?P<ua>QUOTED)"(?: \d+)?)?$"#, r#""(?P<ua>QUOTED))$"#)
        .replace("REQ", QUOTED)
        .replace("QUOTED", QUOTED);
    assert!(
        !tail.contains("(?: \\d+)"),
        "the tail changed: update this reading"
    );
    Regex::new(&format!("(?-u)^{STRICT_HEAD} {tail}")).unwrap()
}

pub fn reading(head: &str, request: &str) -> Regex {
    let tail = TAIL.replace("REQ", request).replace("QUOTED", QUOTED);
    Regex::new(&format!("(?-u)^{head} {tail}")).unwrap()
}

/// Lines by the documented rule (`\n`, `\r\n` or a bare `\r`; a final unterminated line counts),
/// written out here rather than borrowed from Sawmill.
pub fn split_lines(buf: &[u8]) -> Vec<&[u8]> {
    let (mut out, mut start, mut i) = (Vec::new(), 0, 0);
    while i < buf.len() {
        match buf[i] {
            b'\n' | b'\r' => {
                out.push(&buf[start..i]);
                i += if buf[i] == b'\r' && buf.get(i + 1) == Some(&b'\n') {
                    2
                } else {
                    1
                };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < buf.len() {
        out.push(&buf[start..]);
    }
    out
}

/// One line as the independent reading sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Fields {
    pub host: Vec<u8>,
    /// Wall-clock date exactly as written, `YYYY-MM-DD`.
    pub date: String,
    /// UTC seconds since the epoch.
    pub utc: i64,
    pub status: i32,
    pub size: Option<i64>,
    pub referer: Option<String>,
    pub user_agent: Option<String>,
}

pub fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 31,
    }
}

/// Days since 1970-01-01, counted the slow obvious way (years 1970.. only, as in these logs).
pub fn epoch_days(y: i64, m: i64, d: i64) -> i64 {
    let years: i64 = (1970..y)
        .map(|y| 365 + i64::from(days_in_month(y, 2) == 29))
        .sum();
    let months: i64 = (1..m).map(|m| days_in_month(y, m)).sum();
    years + months + d - 1
}

/// Decimal digits (the regexes only capture digits where this is called).
pub fn int(b: &[u8]) -> i64 {
    std::str::from_utf8(b).unwrap().parse().unwrap()
}

/// Reads the captures, applying the contract's value rules (real dates, hour ≤ 23, zone ≤ ±18:59,
/// status not starting with 0, size within 63 bits). `None` when a rule fails.
pub fn fields(c: &Captures) -> Option<Fields> {
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    let mon = String::from_utf8_lossy(&c["mon"]).to_ascii_lowercase();
    let m = MONTHS.iter().position(|x| *x == mon)? as i64 + 1;
    let (y, d) = (int(&c["yyyy"]), int(&c["dd"]));
    let (h, mi, s) = (int(&c["h"]), int(&c["m"]), int(&c["s"]));
    let zone = &c["zone"];
    let (zh, zm) = (int(&zone[1..3]), int(&zone[3..5]));
    if y < 1970 || d < 1 || d > days_in_month(y, m) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    if zh > 18 || zm > 59 || c["status"][0] == b'0' {
        return None;
    }
    let sign = if zone[0] == b'-' { -1 } else { 1 };
    let local = epoch_days(y, m, d) * 86_400 + h * 3600 + mi * 60 + s;
    let size = match &c["size"] {
        b"-" => None,
        digits => Some(std::str::from_utf8(digits).ok()?.parse::<i64>().ok()?),
    };
    let opt = |name: &str| {
        c.name(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .filter(|v| !v.is_empty() && v != "-")
    };
    Some(Fields {
        host: c["host"].to_vec(),
        date: format!("{y:04}-{m:02}-{d:02}"),
        utc: local - sign * (zh * 60 + zm) * 60,
        status: int(&c["status"]) as i32,
        size,
        referer: opt("ref"),
        user_agent: opt("ua"),
    })
}
