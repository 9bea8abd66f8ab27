//! The parsed form of one access-log line, borrowed from the input bytes.
//!
//! Parsing never allocates: every text field is a slice of the line. Columns are
//! materialised into Arrow arrays by [`crate::batch`], and fed to the analytics by
//! [`crate::analytics::Partial::observe`].

/// Which syntax a line was recognised as. Detected per line, never per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogFormat {
    /// `host ident user [01/Jul/1995:00:00:01 -0400] "GET /x HTTP/1.0" 200 6245`
    Common,
    /// Common plus `"referer" "user agent"` (and tolerated trailing fields).
    Combined,
    /// The original streaming pipeline's `[1995-07-01 00:00:01]` timestamp, no zone (taken as UTC).
    IsoBracketed,
}

impl LogFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            LogFormat::Common => "common",
            LogFormat::Combined => "combined",
            LogFormat::IsoBracketed => "iso",
        }
    }
}

/// A point in time as the log wrote it: the UTC instant plus the zone offset it was written in.
///
/// Analytics use the *wall clock* (`utc + offset`), as the original pipeline did: a NASA request at
/// 23:30 -0400 belongs to that calendar day, not to the next day in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timestamp {
    /// Seconds since the Unix epoch, UTC.
    pub utc_secs: i64,
    /// The zone offset the line was written in, in minutes east of UTC (`-0400` is -240).
    pub offset_minutes: i16,
}

impl Timestamp {
    /// Seconds since the epoch of the wall-clock time (UTC instant shifted by the offset).
    #[inline]
    pub fn local_secs(self) -> i64 {
        self.utc_secs + i64::from(self.offset_minutes) * 60
    }

    /// Wall-clock calendar date as days since 1970-01-01.
    #[inline]
    pub fn local_date(self) -> i32 {
        self.local_secs().div_euclid(86_400) as i32
    }

    /// Wall-clock hour of day, 0..=23.
    #[inline]
    pub fn local_hour(self) -> u8 {
        (self.local_secs().rem_euclid(86_400) / 3600) as u8
    }
}

/// Day of week of a date (days since epoch) as Spark's `dayofweek`: 1 = Sunday ... 7 = Saturday.
#[inline]
pub fn spark_dayofweek(days: i32) -> u8 {
    // 1970-01-01 was a Thursday (Spark value 5).
    ((days as i64 + 4).rem_euclid(7) + 1) as u8
}

/// Civil date (year, month 1..=12, day 1..=31) of a day count since 1970-01-01.
/// Howard Hinnant's `civil_from_days`, valid for the whole `i32` range we produce.
pub fn civil_from_days(days: i32) -> (i32, u8, u8) {
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((y + i64::from(m <= 2)) as i32, m, d)
}

/// Days since 1970-01-01 of a civil date. Inverse of [`civil_from_days`].
pub fn days_from_civil(y: i32, m: u8, d: u8) -> i32 {
    let y = i64::from(y) - i64::from(m <= 2);
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146_097 + doe - 719_468) as i32
}

/// `YYYY-MM-DD` of a day count since the epoch (used for `dt=` partitions and `date` columns).
pub fn format_date(days: i32) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// One successfully parsed line. Text fields borrow from the line.
///
/// `None` means the field was absent or written as `-`; these are the "missing values" the
/// `null_value_count` table counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord<'a> {
    pub format: LogFormat,
    pub host: &'a [u8],
    pub ident: Option<&'a [u8]>,
    pub user: Option<&'a [u8]>,
    pub timestamp: Timestamp,
    /// `None` when the request line was `"-"` or empty.
    pub method: Option<&'a [u8]>,
    /// The request target, which may contain spaces; `None` with `method`.
    pub endpoint: Option<&'a [u8]>,
    /// `None` for HTTP/0.9 requests (`"GET /x"`) and for `"-"` requests.
    pub protocol: Option<&'a [u8]>,
    pub status: u16,
    /// `None` when written as `-`.
    pub content_size: Option<u64>,
    pub referer: Option<&'a [u8]>,
    pub user_agent: Option<&'a [u8]>,
    /// The line ended inside the referer or user agent quotes: that field (and the agent, if
    /// it was the referer) is kept as far as it goes. Such lines are otherwise whole requests
    /// (the elastic log cuts long agents off), so they count in every table like the others.
    pub truncated_field: bool,
}

/// Why a line was rejected. Every rejected line keeps its raw bytes in the rejects output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Nothing but whitespace.
    Empty,
    /// The line ends before the status code (for example a record split in two).
    Truncated,
    /// No `[...]` timestamp where one must be.
    NoTimestamp,
    /// A `[...]` timestamp that is not a valid date and time (or an invalid zone).
    InvalidTimestamp,
    /// The quoted request is missing or unterminated.
    BadRequestLine,
    /// The status is not three digits, or starts with `0` (`2OO`, `099`).
    BadStatus,
    /// The size is neither digits nor `-`, or does not fit in 63 bits.
    BadContentSize,
    /// No host before the first space.
    NoHost,
    /// Longer than `max_line_bytes`: rejected unparsed, its raw bytes cut to the limit and its
    /// original length kept. Last, so partials written before it existed keep their slots.
    LineTooLong,
}

impl RejectReason {
    /// In slot order: a reason's position here is its slot in partials, so reasons are only
    /// ever appended.
    pub const ALL: [RejectReason; 9] = [
        RejectReason::Empty,
        RejectReason::Truncated,
        RejectReason::NoTimestamp,
        RejectReason::InvalidTimestamp,
        RejectReason::BadRequestLine,
        RejectReason::BadStatus,
        RejectReason::BadContentSize,
        RejectReason::NoHost,
        RejectReason::LineTooLong,
    ];

    /// Stable snake_case name used in Parquet, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::Empty => "empty",
            RejectReason::Truncated => "truncated",
            RejectReason::NoTimestamp => "no_timestamp",
            RejectReason::InvalidTimestamp => "invalid_timestamp",
            RejectReason::BadRequestLine => "bad_request_line",
            RejectReason::BadStatus => "bad_status",
            RejectReason::BadContentSize => "bad_content_size",
            RejectReason::NoHost => "no_host",
            RejectReason::LineTooLong => "line_too_long",
        }
    }

    pub fn from_name(name: &str) -> Option<RejectReason> {
        RejectReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl std::fmt::Display for RejectReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a line came from: a source (file stem or Kafka topic), a partition (0 for files) and an
/// offset (Kafka offset, or 0-based line number in a file). `(source, partition, offset)` is unique
/// per input line and is stored in every output row, which is how exactly-once is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub partition: i32,
    pub offset: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip_and_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(format_date(days_from_civil(1995, 7, 1)), "1995-07-01");
        assert_eq!(civil_from_days(days_from_civil(2000, 2, 29)), (2000, 2, 29));
        for d in -800_000..800_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }

    #[test]
    fn spark_dayofweek_matches_calendar() {
        // 1995-07-01 was a Saturday (7), 1995-07-02 a Sunday (1).
        assert_eq!(spark_dayofweek(days_from_civil(1995, 7, 1)), 7);
        assert_eq!(spark_dayofweek(days_from_civil(1995, 7, 2)), 1);
        assert_eq!(spark_dayofweek(days_from_civil(1969, 12, 31)), 4);
    }

    #[test]
    fn wall_clock_ignores_utc_day_change() {
        // 1995-07-01 23:30:00 -0400 is 1995-07-02 03:30 UTC but belongs to July 1st.
        let utc = i64::from(days_from_civil(1995, 7, 2)) * 86_400 + 3 * 3600 + 1800;
        let ts = Timestamp {
            utc_secs: utc,
            offset_minutes: -240,
        };
        assert_eq!(format_date(ts.local_date()), "1995-07-01");
        assert_eq!(ts.local_hour(), 23);
    }
}
