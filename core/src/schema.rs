//! The Arrow schemas of Sawmill's outputs, defined once. Summary-table schemas live with the
//! tables in [`crate::analytics`].
//!
//! Every record and reject row carries `(source, partition, offset)`: for Kafka input the topic,
//! partition and offset; for files the file's stem, its position in the argument list and the
//! 0-based line number. That triple is unique per input line, which is how exactly-once is
//! checked downstream.

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use std::sync::{Arc, OnceLock};

/// Column names of the records table, in order.
pub mod col {
    pub const SOURCE: &str = "source";
    pub const PARTITION: &str = "partition";
    pub const OFFSET: &str = "offset";
    pub const HOST: &str = "host";
    pub const IDENT: &str = "ident";
    pub const USER: &str = "user";
    pub const TIMESTAMP: &str = "timestamp";
    pub const TZ_OFFSET_MINUTES: &str = "tz_offset_minutes";
    pub const DATE: &str = "date";
    pub const METHOD: &str = "method";
    pub const ENDPOINT: &str = "endpoint";
    pub const PROTOCOL: &str = "protocol";
    pub const STATUS: &str = "status";
    pub const CONTENT_SIZE: &str = "content_size";
    pub const REFERER: &str = "referer";
    pub const USER_AGENT: &str = "user_agent";
    pub const FORMAT: &str = "format";
    pub const REASON: &str = "reason";
    pub const RAW: &str = "raw";
    pub const TRUNCATED_FIELD: &str = "truncated_field";
    pub const LENGTH: &str = "length";
}

/// Parsed rows. `timestamp` is the UTC instant; `tz_offset_minutes` the zone it was written in;
/// `date` the wall-clock calendar date (also the `dt=` partition). `truncated_field` is true when
/// the line ended inside its referer or user agent quotes (kept as far as they go); appended
/// last and nullable so shards written before it existed read as one dataset with the new ones.
pub fn records() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new(col::SOURCE, DataType::Utf8, false),
            Field::new(col::PARTITION, DataType::Int32, false),
            Field::new(col::OFFSET, DataType::Int64, false),
            Field::new(col::HOST, DataType::Utf8, false),
            Field::new(col::IDENT, DataType::Utf8, true),
            Field::new(col::USER, DataType::Utf8, true),
            Field::new(
                col::TIMESTAMP,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new(col::TZ_OFFSET_MINUTES, DataType::Int16, false),
            Field::new(col::DATE, DataType::Date32, false),
            Field::new(col::METHOD, DataType::Utf8, true),
            Field::new(col::ENDPOINT, DataType::Utf8, true),
            Field::new(col::PROTOCOL, DataType::Utf8, true),
            Field::new(col::STATUS, DataType::Int32, false),
            Field::new(col::CONTENT_SIZE, DataType::Int64, true),
            Field::new(col::REFERER, DataType::Utf8, true),
            Field::new(col::USER_AGENT, DataType::Utf8, true),
            Field::new(col::FORMAT, DataType::Utf8, false),
            Field::new(col::TRUNCATED_FIELD, DataType::Boolean, true),
        ]))
    })
    .clone()
}

/// Rejected lines, raw bytes kept exactly as read (line end stripped), except a line longer than
/// `max_line_bytes`: its `raw` is cut to that many bytes and `length` holds its whole length in
/// bytes. `length` is null when `raw` is the whole line.
pub fn rejects() -> SchemaRef {
    static S: OnceLock<SchemaRef> = OnceLock::new();
    S.get_or_init(|| {
        Arc::new(Schema::new(vec![
            Field::new(col::SOURCE, DataType::Utf8, false),
            Field::new(col::PARTITION, DataType::Int32, false),
            Field::new(col::OFFSET, DataType::Int64, false),
            Field::new(col::REASON, DataType::Utf8, false),
            Field::new(col::RAW, DataType::Binary, false),
            Field::new(col::LENGTH, DataType::Int64, true),
        ]))
    })
    .clone()
}
