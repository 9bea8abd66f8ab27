//! Number and text formatting shared by the HTML, text and chart renderers.

/// `1234567` → `1,234,567`: exact counts in tables stay exact but readable.
pub fn thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    // ASCII digits, so every 3-byte chunk is valid UTF-8.
    let groups: Vec<&str> = digits
        .as_bytes()
        .rchunks(3)
        .rev()
        .map(|g| std::str::from_utf8(g).unwrap_or_default())
        .collect();
    let sign = if v < 0 { "-" } else { "" };
    format!("{sign}{}", groups.join(","))
}

/// Up to three significant digits, trailing zeros dropped: `1.25`, `15`, `150`.
fn short(v: f64) -> String {
    let s = if v.abs() >= 100.0 {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn scaled(v: f64, base: f64, units: &[&str], sep: &str) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let mut x = v;
    let mut unit = 0;
    while x.abs() >= base && unit + 1 < units.len() {
        x /= base;
        unit += 1;
    }
    // Rounding can carry into the next unit (999.96 → "1000k"); step up once more then.
    if short(x).trim_start_matches('-').len() > 3 && x.abs() >= 999.5 && unit + 1 < units.len() {
        x /= base;
        unit += 1;
    }
    format!("{}{sep}{}", short(x), units[unit])
}

/// Axis ticks for counts: `950`, `1.2k`, `3.4M`, `5G`.
pub fn compact(v: f64) -> String {
    scaled(v, 1000.0, &["", "k", "M", "G", "T", "P"], "")
}

/// Byte sizes in decimal units: `512 B`, `1.5 kB`, `3.4 MB`.
pub fn bytes(v: f64) -> String {
    scaled(v, 1000.0, &["B", "kB", "MB", "GB", "TB", "PB"], " ")
}

/// A mean or ratio in a table: two decimals, thousands separated (`16,418.23`).
pub fn decimal(v: f64) -> String {
    if !v.is_finite() {
        return String::new();
    }
    let s = format!("{:.2}", v.abs());
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    let sign = if v < 0.0 && s != "0.00" { "-" } else { "" };
    let grouped = int
        .parse::<i64>()
        .map_or_else(|_| int.to_string(), thousands);
    format!("{sign}{grouped}.{frac}")
}

/// Text from the data with control characters (a terminal escape, a stray `\r`) shown as
/// `\xNN`, so log content can neither break a table's layout nor drive a terminal.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            for b in c.to_string().bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Escapes text for HTML element content and attribute values (control characters as in
/// [`printable`]).
pub fn html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in printable(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Raw bytes as printable ASCII: bytes outside `0x20..=0x7e` become `\xNN` and a backslash
/// becomes `\\`, so the text is unambiguous (a log line that itself contains the four
/// characters `\x16` shows as `\\x16`), as Python's `bytes` repr does.
pub fn escape_bytes(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len());
    for &b in raw {
        match b {
            b'\\' => out.push_str("\\\\"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// [`escape_bytes`] for HTML: printable text HTML-escaped, each `\xNN` in a `<span class="esc">`
/// so escapes stand out from the line's own characters.
pub fn escape_bytes_html(raw: &[u8]) -> String {
    let mut out = String::with_capacity(raw.len() + 16);
    for &b in raw {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'&' => out.push_str("&amp;"),
            b'<' => out.push_str("&lt;"),
            b'>' => out.push_str("&gt;"),
            b'"' => out.push_str("&quot;"),
            b'\'' => out.push_str("&#39;"),
            0x20..=0x7e => out.push(char::from(b)),
            _ => out.push_str(&format!("<span class=\"esc\">\\x{b:02x}</span>")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(-1234), "-1,234");
        assert_eq!(thousands(i64::MIN), "-9,223,372,036,854,775,808");
    }

    #[test]
    fn compact_numbers() {
        assert_eq!(compact(0.0), "0");
        assert_eq!(compact(2.5), "2.5");
        assert_eq!(compact(950.0), "950");
        assert_eq!(compact(1000.0), "1k");
        assert_eq!(compact(1250.0), "1.25k");
        assert_eq!(compact(15_000.0), "15k");
        assert_eq!(compact(3_400_000.0), "3.4M");
        assert_eq!(compact(999_999.0), "1M");
        assert_eq!(compact(2e9), "2G");
        assert_eq!(compact(f64::NAN), "");
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1500.0), "1.5 kB");
        assert_eq!(bytes(3.4e6), "3.4 MB");
        assert_eq!(bytes(7.25e9), "7.25 GB");
    }

    #[test]
    fn escapes_bytes() {
        assert_eq!(escape_bytes(b"GET / \x16\x03\xff"), "GET / \\x16\\x03\\xff");
        assert_eq!(escape_bytes(b"a\\x16"), "a\\\\x16");
        assert_eq!(escape_bytes("é\t".as_bytes()), "\\xc3\\xa9\\x09");
        assert_eq!(
            escape_bytes_html(b"<a href='x'>\x00"),
            "&lt;a href=&#39;x&#39;&gt;<span class=\"esc\">\\x00</span>"
        );
        assert_eq!(html("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
        assert_eq!(html("a\x1b[31m\r"), "a\\x1b[31m\\x0d");
        assert_eq!(printable("/ok"), "/ok");
    }

    #[test]
    fn decimals() {
        assert_eq!(decimal(16418.234), "16,418.23");
        assert_eq!(decimal(0.5), "0.50");
        assert_eq!(decimal(-1234.5), "-1,234.50");
        assert_eq!(decimal(f64::INFINITY), "");
    }
}
