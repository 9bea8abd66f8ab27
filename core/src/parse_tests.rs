use super::*;
use crate::record::{format_date, RejectReason::*};

fn ok(line: &str) -> LogRecord<'_> {
    parse_line(line.as_bytes()).unwrap_or_else(|e| panic!("{line:?} rejected: {e}"))
}

fn s(b: Option<&[u8]>) -> Option<&str> {
    b.map(|b| std::str::from_utf8(b).unwrap())
}

#[test]
fn nasa_common_line() {
    let r = ok(
        "199.72.81.55 - - [01/Jul/1995:00:00:01 -0400] \"GET /history/apollo/ HTTP/1.0\" 200 6245",
    );
    assert_eq!(r.format, LogFormat::Common);
    assert_eq!(r.host, b"199.72.81.55");
    assert_eq!((r.ident, r.user), (None, None));
    assert_eq!(s(r.method), Some("GET"));
    assert_eq!(s(r.endpoint), Some("/history/apollo/"));
    assert_eq!(s(r.protocol), Some("HTTP/1.0"));
    assert_eq!(r.status, 200);
    assert_eq!(r.content_size, Some(6245));
    assert_eq!(r.timestamp.offset_minutes, -240);
    // 00:00:01 -0400 is 04:00:01 UTC, wall-clock date stays July 1st.
    assert_eq!(r.timestamp.utc_secs % 86_400, 4 * 3600 + 1);
    assert_eq!(format_date(r.timestamp.local_date()), "1995-07-01");
    assert_eq!(r.timestamp.local_hour(), 0);
}

#[test]
fn line_ends_crlf_and_bare_cr() {
    for end in ["\n", "\r\n", "\r", ""] {
        let line = format!("h - - [01/Jul/1995:00:00:01 -0400] \"GET / HTTP/1.0\" 200 1{end}");
        assert_eq!(ok(&line).content_size, Some(1), "{end:?}");
    }
}

#[test]
fn missing_size_is_none_not_zero() {
    let r = ok("h - - [01/Jul/1995:00:00:01 -0400] \"GET /x HTTP/1.0\" 304 -");
    assert_eq!(r.content_size, None);
    assert_eq!(r.status, 304);
}

#[test]
fn combined_keeps_size_referer_and_agent() {
    let r = ok("83.149.9.216 - - [17/May/2015:10:05:03 +0000] \"GET /presentations/logstash-monitorama-2013/images/kibana-search.png HTTP/1.1\" 200 203023 \"http://semicomplete.com/presentations/logstash-monitorama-2013/\" \"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1)\"");
    assert_eq!(r.format, LogFormat::Combined);
    assert_eq!(r.content_size, Some(203_023));
    assert_eq!(
        s(r.referer),
        Some("http://semicomplete.com/presentations/logstash-monitorama-2013/")
    );
    assert_eq!(
        s(r.user_agent),
        Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_9_1)")
    );
}

#[test]
fn honeypot_leading_space_trailing_port_and_binary_request() {
    let r = ok(" 162.243.146.37 - - [01/Apr/2019:08:04:36 +0000] \"\\x16\\x03\\x01\\x00\\x8C\\x01\\x22\" 400 182 \"-\" \"-\" 443");
    assert_eq!(r.host, b"162.243.146.37");
    assert_eq!(r.method, None);
    assert_eq!(s(r.endpoint), Some("\\x16\\x03\\x01\\x00\\x8C\\x01\\x22"));
    assert_eq!(r.protocol, None);
    assert_eq!((r.status, r.content_size), (400, Some(182)));
    assert_eq!((r.referer, r.user_agent), (None, None));
    let r = ok(
        " 218.92.0.208 - - [01/Apr/2019:06:25:09 +0000] \"SSH-2.0-PUTTY\" 400 182 \"-\" \"-\" 22",
    );
    assert_eq!(s(r.endpoint), Some("SSH-2.0-PUTTY"));
}

#[test]
fn dash_request_is_all_missing() {
    let r = ok("1.2.3.4 - - [01/Apr/2019:06:25:09 +0000] \"-\" 408 0 \"-\" \"-\"");
    assert_eq!((r.method, r.endpoint, r.protocol), (None, None, None));
    assert_eq!(r.status, 408);
}

#[test]
fn http09_without_protocol_and_urls_with_spaces() {
    let r =
        ok("sask.usask.ca - - [01/Jun/1995:00:00:59 -0600] \"GET /~scottp/publish.html\" 200 271");
    assert_eq!(s(r.endpoint), Some("/~scottp/publish.html"));
    assert_eq!(r.protocol, None);
    assert_eq!(r.timestamp.offset_minutes, -360);
    let r = ok("h - - [01/Jul/1995:00:00:01 -0400] \"GET /a b c.html HTTP/1.0\" 404 -");
    assert_eq!(s(r.endpoint), Some("/a b c.html"));
    assert_eq!(s(r.protocol), Some("HTTP/1.0"));
    let r = ok("h - - [01/Jul/1995:00:00:01 -0400] \"GET /a b\" 404 -");
    assert_eq!((s(r.endpoint), r.protocol), (Some("/a b"), None));
}

#[test]
fn ipv6_and_dotless_hosts_and_user() {
    let r = ok(
        "2001:db8::1 - frank [10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326",
    );
    assert_eq!(r.host, b"2001:db8::1");
    assert_eq!(s(r.user), Some("frank"));
    assert_eq!(
        ok("localhost - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1").host,
        b"localhost"
    );
}

#[test]
fn big_sizes_and_positive_zones() {
    let r = ok("h - - [01/Jul/2024:10:00:00 +0200] \"GET /iso HTTP/1.1\" 200 5368709120");
    assert_eq!(r.content_size, Some(5_368_709_120));
    assert_eq!(r.timestamp.offset_minutes, 120);
    assert_eq!(r.timestamp.local_hour(), 10);
    assert_eq!(r.timestamp.utc_secs.rem_euclid(86_400), 8 * 3600);
    assert_eq!(
        parse_line(
            b"h - - [01/Jul/2024:10:00:00 +0200] \"GET / HTTP/1.1\" 200 99999999999999999999"
        ),
        Err(BadContentSize)
    );
}

#[test]
fn iso_bracketed_variant() {
    let r = ok("in24.inetnebr.com - - [1995-08-01 00:00:01] \"GET /shuttle/missions/sts-68/news/sts-68-mcc-05.txt HTTP/1.0\" 200 1839");
    assert_eq!(r.format, LogFormat::IsoBracketed);
    assert_eq!(r.timestamp.offset_minutes, 0);
    assert_eq!(format_date(r.timestamp.local_date()), "1995-08-01");
}

#[test]
fn escaped_quotes_inside_request_and_agent() {
    let r = ok(
        r#"h - - [01/Jul/2015:00:00:01 +0000] "GET /q?a=\"x\" HTTP/1.1" 200 5 "-" "curl \"7\"""#,
    );
    assert_eq!(s(r.endpoint), Some(r#"/q?a=\"x\""#));
    assert_eq!(s(r.user_agent), Some(r#"curl \"7\""#));
}

#[test]
fn a_cut_off_referer_or_agent_keeps_the_request_and_is_marked() {
    // The elastic log's line 8899, cut inside the user agent.
    let r = ok("46.118.127.106 - - [20/May/2015:12:05:17 +0000] \"GET /scripts/grok-py-test/configlib.py HTTP/1.1\" 200 235 \"-\" \"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html");
    assert_eq!(r.format, LogFormat::Combined);
    assert_eq!(
        (s(r.method), s(r.endpoint), r.status, r.content_size),
        (
            Some("GET"),
            Some("/scripts/grok-py-test/configlib.py"),
            200,
            Some(235)
        )
    );
    assert_eq!(r.referer, None);
    assert_eq!(
        s(r.user_agent),
        Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html")
    );
    assert!(r.truncated_field);
    // Cut inside the referer: no agent at all.
    let r = ok("h - - [01/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200 1 \"http://x");
    assert_eq!((s(r.referer), r.user_agent), (Some("http://x"), None));
    assert!(r.truncated_field);
    // An escaped quote does not close it; a field cut right after its opening quote is missing.
    let r = ok(r#"h - - [01/Aug/1995:00:00:44 -0400] "GET / HTTP/1.0" 200 1 "-" "curl \"7\""#);
    assert_eq!(s(r.user_agent), Some(r#"curl \"7\""#));
    assert!(r.truncated_field);
    let r = ok(r#"h - - [01/Aug/1995:00:00:44 -0400] "GET / HTTP/1.0" 200 1 "-" ""#);
    assert_eq!((r.user_agent, r.truncated_field), (None, true));
    // Whole fields are not marked.
    let r = ok(r#"h - - [01/Aug/1995:00:00:44 -0400] "GET / HTTP/1.0" 200 1 "-" "a""#);
    assert_eq!((s(r.user_agent), r.truncated_field), (Some("a"), false));
    assert!(!ok("h - - [01/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200 1").truncated_field);
}

#[test]
fn rejects_carry_a_reason() {
    let cases: &[(&str, RejectReason)] = &[
        ("", Empty),
        ("   \r\n", Empty),
        ("miriwo", Truncated),
        (
            "uplherc.upl.com - - [01/Aug/1995:00:00:44 -0400] \"GET /shuttle/missions",
            Truncated,
        ),
        ("ges/x.gif HTTP/1.0\" 200 12859", NoTimestamp),
        ("h - - [01/Aug/1995:00:00:44 -0400", Truncated),
        (
            "h - - [32/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200 1",
            InvalidTimestamp,
        ),
        (
            "h - - [29/Feb/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200 1",
            InvalidTimestamp,
        ),
        (
            "h - - [01/Foo/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200 1",
            InvalidTimestamp,
        ),
        (
            "h - - [01/Aug/1995:24:00:44 -0400] \"GET / HTTP/1.0\" 200 1",
            InvalidTimestamp,
        ),
        (
            "h - - [01/Aug/1995:00:00:44 0400] \"GET / HTTP/1.0\" 200 1",
            InvalidTimestamp,
        ),
        (
            "h - - [01/Aug/1995:00:00:44 -0400] GET / HTTP/1.0 200 1",
            BadRequestLine,
        ),
        (
            "h - - [01/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 2OO 1",
            BadStatus,
        ),
        (
            "h - - [01/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 099 1",
            BadStatus,
        ),
        (
            "h - - [01/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200",
            Truncated,
        ),
        (
            "h - - [01/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\"",
            Truncated,
        ),
        (
            "h - - [01/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200 12a",
            BadContentSize,
        ),
        (
            "[01/Aug/1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200 1",
            NoHost,
        ),
        // A `]` inside the timestamp, with another where the usual 26-byte one would end.
        (
            "h - - [01/Aug]1995:00:00:44 -0400] \"GET / HTTP/1.0\" 200 1",
            InvalidTimestamp,
        ),
        (
            "h - - [1995-08-01 00:00:4] \"GET ]/ HTTP/1.0\" 200 1",
            InvalidTimestamp,
        ),
    ];
    for (line, want) in cases {
        assert_eq!(parse_line(line.as_bytes()).err(), Some(*want), "{line:?}");
    }
}

#[test]
fn iso_timestamp_is_closed_by_its_own_bracket() {
    // The request puts a `]` exactly where a 26-byte common timestamp would close.
    let r = ok("h - - [1995-08-01 00:00:44] \"GET ]/ HTTP/1.0\" 200 1");
    assert_eq!(r.format, LogFormat::IsoBracketed);
    assert_eq!(s(r.endpoint), Some("]/"));
}

#[test]
fn invalid_utf8_is_parsed_not_rejected() {
    let mut line = b"h - - [01/Jul/1995:00:00:01 -0400] \"GET /caf".to_vec();
    line.extend_from_slice(&[0xE9, 0xFF]);
    line.extend_from_slice(b" HTTP/1.0\" 200 10");
    let r = parse_line(&line).unwrap();
    assert_eq!(r.endpoint, Some(&b"/caf\xE9\xFF"[..]));
}

proptest::proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300)) {
        let _ = parse_line(&bytes);
    }

    #[test]
    fn round_trips_generated_common_lines(
        host in "[a-z0-9.-]{1,30}",
        day in 1u32..=28, hour in 0u32..24, min in 0u32..60, sec in 0u32..60,
        zone_h in 0i32..=14, neg in proptest::bool::ANY,
        path in "/[a-zA-Z0-9/._~ -]{0,40}[a-z]",
        status in 100u16..=599,
        size in proptest::option::of(0u64..=i64::MAX as u64),
    ) {
        let zone = format!("{}{:02}00", if neg { '-' } else { '+' }, zone_h);
        let size_s = size.map_or("-".to_string(), |v| v.to_string());
        let line = format!("{host} - - [{day:02}/Aug/1995:{hour:02}:{min:02}:{sec:02} {zone}] \"GET {path} HTTP/1.0\" {status} {size_s}");
        let r = parse_line(line.as_bytes()).unwrap();
        proptest::prop_assert_eq!(r.host, host.as_bytes());
        proptest::prop_assert_eq!(r.endpoint, Some(path.trim().as_bytes()));
        proptest::prop_assert_eq!(r.status, status);
        proptest::prop_assert_eq!(r.content_size, size);
        proptest::prop_assert_eq!(u32::from(r.timestamp.local_hour()), hour);
        let off = if neg { -zone_h * 60 } else { zone_h * 60 };
        proptest::prop_assert_eq!(i32::from(r.timestamp.offset_minutes), off);
    }
}

#[test]
fn virtual_host_prefix_gives_the_client_as_host() {
    let r = ok("54.180.153.215 172.104.92.166 - - [01/Apr/2019:07:23:18 +0000] \"GET / HTTP/1.1\" 403 178 \"-\" \"x\" 8000");
    assert_eq!(r.host, b"172.104.92.166");
    assert_eq!((r.ident, r.user), (None, None));
    let r = ok("www.example.com:443 10.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1");
    assert_eq!((r.host, s(r.user)), (&b"10.0.0.1"[..], Some("frank")));
}
