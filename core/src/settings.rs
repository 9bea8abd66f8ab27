//! Settings, declared once: the serde structs with their defaults and `validate()`, their clap
//! companions (every field optional, so "not given" is visible), and the one layering function
//! every binary uses: defaults → config file → environment (`SAWMILL_*`) → flags.
//!
//! The config file is TOML (or JSON, by extension) with one table per concern, so one file can
//! serve a whole deployment (`deploy/sawmill.example.toml`):
//!
//! ```toml
//! [pipeline]      # PipelineSettings: coordinator serve, worker run, sawmill summarize/run
//! [coordinator]   # the coordinator's own settings (its crate declares them)
//! ```
//!
//! Unknown keys are refused, so a typo fails at start instead of being ignored.

use crate::error::{Error, Result};
use crate::shard::ParquetOptions;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

/// The settings of one pipeline (topic → output), shared by the worker, the coordinator and the
/// `sawmill` command. Serializable, because the coordinator hands them to joining workers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSettings {
    /// Kafka bootstrap servers, `host:port[,host:port]`.
    pub bootstrap_servers: String,
    pub topic: String,
    /// Output root: a local path or `hdfs://host:port/path`.
    pub output: String,
    /// etcd endpoints, `http://host:port[,...]`.
    pub etcd: String,
    /// Name of the pipeline's etcd subtree (`/sawmill/<pipeline>/`); defaults to the topic.
    pub pipeline: Option<String>,
    /// A shard is cut when it holds this many lines...
    pub shard_max_rows: u64,
    /// ...or this many bytes of input...
    pub shard_max_bytes: u64,
    /// ...or has been open this long...
    pub shard_max_age_ms: u64,
    /// ...or has received nothing for this long (a partition gone quiet commits promptly).
    pub shard_idle_ms: u64,
    /// How long a shard may keep failing to stage, commit or publish (retrying transient
    /// errors) before its partition gives up, reports the error and is restarted with backoff.
    pub commit_deadline_ms: u64,
    /// Parquet compression (`zstd`, `snappy`, `lz4`, `none`, `zstd:N`).
    pub compression: String,
    pub row_group_rows: usize,
    /// Count a missing size as 0 in content statistics (the original's meaning).
    pub missing_size_as_zero: bool,
    /// Distinct hosts the merged analytics hold; beyond it they are folded into `(other)`.
    pub max_distinct_hosts: usize,
    /// Distinct endpoints the merged analytics hold; beyond it they are folded into `(other)`.
    pub max_distinct_endpoints: usize,
    /// 404 rows the merged analytics hold (the earliest); beyond it they are only counted.
    pub max_404_rows: usize,
    /// A longer line (in bytes, without its line end) is a `line_too_long` reject cut to this
    /// length, so one runaway message cannot stall or swell a shard.
    pub max_line_bytes: usize,
    /// A shard is cut before a line whose date would make it span more dates than this: each
    /// date is a file and a manifest entry (etcd refuses requests past ~1.5 MiB).
    pub shard_max_dates: usize,
    /// How *this process* reaches Kafka, etcd and HDFS through their security: set by each
    /// process from its own `[connection]` settings and flags, never serialized, so never part
    /// of the settings the coordinator sends to workers.
    #[serde(skip)]
    pub connection: crate::connection::ConnectionSettings,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            bootstrap_servers: "localhost:9092".into(),
            topic: "kafka_test".into(),
            output: "./sawmill-out".into(),
            etcd: "http://localhost:2379".into(),
            pipeline: None,
            shard_max_rows: 500_000,
            shard_max_bytes: 64 << 20,
            shard_max_age_ms: 10_000,
            shard_idle_ms: 1_000,
            commit_deadline_ms: 180_000,
            compression: "zstd".into(),
            row_group_rows: 128 * 1024,
            missing_size_as_zero: true,
            max_distinct_hosts: crate::analytics::DEFAULT_CAP,
            max_distinct_endpoints: crate::analytics::DEFAULT_CAP,
            max_404_rows: crate::analytics::DEFAULT_CAP,
            max_line_bytes: crate::batch::DEFAULT_MAX_LINE_BYTES,
            shard_max_dates: 64,
            connection: Default::default(),
        }
    }
}

impl PipelineSettings {
    pub fn pipeline_name(&self) -> &str {
        self.pipeline.as_deref().unwrap_or(&self.topic)
    }

    pub fn shard_max_age(&self) -> Duration {
        Duration::from_millis(self.shard_max_age_ms.max(1))
    }

    pub fn shard_idle(&self) -> Duration {
        Duration::from_millis(self.shard_idle_ms.clamp(1, self.shard_max_age_ms.max(1)))
    }

    pub fn commit_deadline(&self) -> Duration {
        Duration::from_millis(self.commit_deadline_ms.max(1))
    }

    pub fn parquet(&self) -> Result<ParquetOptions> {
        Ok(ParquetOptions {
            compression: ParquetOptions::parse_compression(&self.compression)?,
            row_group_rows: self.row_group_rows,
        })
    }

    pub fn analytics(&self) -> crate::analytics::AnalyticsConfig {
        crate::analytics::AnalyticsConfig {
            missing_size_as_zero: self.missing_size_as_zero,
            max_distinct_hosts: self.max_distinct_hosts,
            max_distinct_endpoints: self.max_distinct_endpoints,
            max_404_rows: self.max_404_rows,
            ..Default::default()
        }
    }

    /// Where a partition's (or a chunk's) parser cuts the open shard.
    pub fn shard_caps(&self) -> crate::batch::ShardCaps {
        crate::batch::ShardCaps {
            rows: self.shard_max_rows,
            bytes: self.shard_max_bytes,
            dates: self.shard_max_dates,
            line: self.max_line_bytes,
        }
    }

    /// Rejects settings that can never work, with what to change.
    pub fn validate(&self) -> Result<()> {
        if self.topic.trim().is_empty() {
            return Err(Error::Config("the topic is empty: pass --topic".into()));
        }
        if self.bootstrap_servers.trim().is_empty() {
            return Err(Error::Config(
                "no Kafka bootstrap servers: pass --bootstrap-servers host:9092".into(),
            ));
        }
        if self.output.trim().is_empty() {
            return Err(Error::Config(
                "the output root is empty: pass --output PATH or hdfs://host:port/path".into(),
            ));
        }
        if self.shard_max_rows == 0 || self.shard_max_bytes == 0 {
            return Err(Error::Config("shard limits must be positive".into()));
        }
        if self.max_distinct_hosts == 0
            || self.max_distinct_endpoints == 0
            || self.max_404_rows == 0
        {
            return Err(Error::Config(
                "--max-distinct-hosts, --max-distinct-endpoints and --max-404-rows must be positive".into(),
            ));
        }
        let max_bytes = crate::batch::MAX_SHARD_BYTES;
        if self.shard_max_bytes > max_bytes {
            return Err(Error::Config(format!(
                "--shard-max-bytes {} is above {max_bytes} (1.5 GiB): a shard's text columns \
                 could pass Arrow's 2 GiB limit; lower it",
                self.shard_max_bytes
            )));
        }
        if self.max_line_bytes == 0 || self.max_line_bytes as u64 > self.shard_max_bytes {
            return Err(Error::Config(format!(
                "--max-line-bytes {} must be between 1 and --shard-max-bytes ({})",
                self.max_line_bytes, self.shard_max_bytes
            )));
        }
        if self.shard_max_dates == 0 {
            return Err(Error::Config(
                "--shard-max-dates must be positive (64 is the default)".into(),
            ));
        }
        if self.row_group_rows == 0 {
            return Err(Error::Config("--row-group-rows must be positive".into()));
        }
        self.parquet()?;
        Ok(())
    }
}

/// What every command that writes an output root takes: where, how Parquet is encoded, and the
/// bounds on lines and shards that hold for the embedded run as for the workers.
/// Flattened into [`PipelineFlags`] and into `sawmill run`.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
#[command(next_help_heading = PIPELINE_HEADING)]
pub struct OutputFlags {
    /// Output root: a local path or hdfs://host:port/path.
    #[arg(long, env = "SAWMILL_OUTPUT", visible_alias = "out")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Parquet compression: none, snappy, lz4, zstd or zstd:LEVEL.
    #[arg(long, env = "SAWMILL_COMPRESSION")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compression: Option<String>,
    /// Maximum rows per Parquet row group.
    #[arg(long, env = "SAWMILL_ROW_GROUP_ROWS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub row_group_rows: Option<usize>,
    /// Count a missing (`-`) content size as 0 in the content statistics (the original
    /// pipeline's meaning) or leave it out.
    #[arg(long, env = "SAWMILL_MISSING_SIZE_AS_ZERO")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing_size_as_zero: Option<bool>,
    /// Same as --missing-size-as-zero false.
    #[arg(long, conflicts_with = "missing_size_as_zero")]
    #[serde(skip)]
    pub skip_missing_sizes: bool,
    /// Reject longer lines as line_too_long, keeping this many of their bytes.
    #[arg(long, env = "SAWMILL_MAX_LINE_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_line_bytes: Option<usize>,
    /// Cut a shard before a line that would make it span more dates (files) than this.
    #[arg(long, env = "SAWMILL_SHARD_MAX_DATES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_max_dates: Option<usize>,
}

/// The pipeline settings as flags; each also reads `SAWMILL_<NAME>` from the environment.
/// Only values given override the config file.
#[derive(Debug, Clone, Default, Serialize, clap::Args)]
#[command(next_help_heading = PIPELINE_HEADING)]
pub struct PipelineFlags {
    /// Kafka bootstrap servers: host:port, comma-separated.
    #[arg(long, env = "SAWMILL_BOOTSTRAP_SERVERS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bootstrap_servers: Option<String>,
    /// The Kafka topic to consume.
    #[arg(long, env = "SAWMILL_TOPIC")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// etcd endpoints: http://host:port, comma-separated.
    #[arg(long, env = "SAWMILL_ETCD")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<String>,
    /// etcd subtree name (default: the topic).
    #[arg(long, env = "SAWMILL_PIPELINE")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Cut a shard at this many lines.
    #[arg(long, env = "SAWMILL_SHARD_MAX_ROWS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_max_rows: Option<u64>,
    /// Cut a shard at this many bytes of input.
    #[arg(long, env = "SAWMILL_SHARD_MAX_BYTES")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_max_bytes: Option<u64>,
    /// Cut a shard open this long.
    #[arg(long, env = "SAWMILL_SHARD_MAX_AGE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_max_age_ms: Option<u64>,
    /// Cut a shard that received nothing for this long.
    #[arg(long, env = "SAWMILL_SHARD_IDLE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard_idle_ms: Option<u64>,
    /// Distinct hosts kept in the merged analytics; more are folded into one (other) row.
    #[arg(long, env = "SAWMILL_MAX_DISTINCT_HOSTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_distinct_hosts: Option<usize>,
    /// Distinct endpoints kept in the merged analytics; more are folded into one (other) row.
    #[arg(long, env = "SAWMILL_MAX_DISTINCT_ENDPOINTS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_distinct_endpoints: Option<usize>,
    /// 404 rows kept in the merged analytics (the earliest); more are only counted.
    #[arg(long, env = "SAWMILL_MAX_404_ROWS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_404_rows: Option<usize>,
    /// Give up on a shard that keeps failing to stage, commit or publish after this long.
    #[arg(long, env = "SAWMILL_COMMIT_DEADLINE_MS")]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit_deadline_ms: Option<u64>,
    #[command(flatten)]
    #[serde(flatten)]
    pub output: OutputFlags,
}

/// The help heading under which [`with_defaults`] shows [`PipelineSettings`]' defaults.
pub const PIPELINE_HEADING: &str = "Pipeline settings";

/// The `--config FILE` flag, flattened into every command that reads a config file.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConfigFlag {
    /// TOML (or .json) file with `pipeline` and `coordinator` tables, applied before the
    /// environment and flags (see deploy/sawmill.example.toml).
    #[arg(long, env = "SAWMILL_CONFIG")]
    pub config: Option<std::path::PathBuf>,
}

/// A parsed config file: one JSON object per table.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    tables: Map<String, Value>,
}

/// The tables a config file may have; anything else is a typo.
const TABLES: [&str; 3] = ["pipeline", "coordinator", "connection"];

impl ConfigFile {
    /// Reads `path` if given (an absent flag is an empty file).
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let Some(path) = path else {
            return Ok(ConfigFile::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::Config(format!(
                "cannot read config file {}: {e} (check the --config path)",
                path.display()
            ))
        })?;
        let json = path.extension().is_some_and(|e| e == "json");
        Self::parse(&text, json)
            .map_err(|e| Error::Config(format!("config file {}: {e}", path.display())))
    }

    /// Parses TOML (or JSON) text.
    pub fn parse(text: &str, json: bool) -> std::result::Result<Self, String> {
        let value: Value = if json {
            serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?
        } else {
            let table: toml::Table =
                toml::from_str(text).map_err(|e| format!("not valid TOML: {e}"))?;
            serde_json::to_value(table).map_err(|e| e.to_string())?
        };
        let Value::Object(tables) = value else {
            return Err(
                "the file must be a table of tables ([pipeline], [coordinator], [connection])"
                    .into(),
            );
        };
        for (name, table) in &tables {
            if !TABLES.contains(&name.as_str()) {
                return Err(format!(
                    "unknown table [{name}]: use {}",
                    TABLES.map(|t| format!("[{t}]")).join(" or ")
                ));
            }
            if !table.is_object() {
                return Err(format!("[{name}] must be a table of settings"));
            }
        }
        Ok(ConfigFile { tables })
    }

    /// One table, if present.
    pub fn table(&self, name: &str) -> Option<&Value> {
        self.tables.get(name)
    }

    /// This process's connection security: defaults → `[connection]` → environment and
    /// flags, validated (see [`crate::connection`]).
    pub fn connection(
        &self,
        flags: &crate::connection::ConnectionFlags,
    ) -> Result<crate::connection::ConnectionSettings> {
        let settings: crate::connection::ConnectionSettings = layer(
            "connection",
            &Default::default(),
            self.table("connection"),
            &flags.overrides()?,
        )?;
        settings.validate()?;
        Ok(settings)
    }

    /// The pipeline settings: defaults → `[pipeline]` → environment and flags, validated.
    pub fn pipeline(&self, flags: &PipelineFlags) -> Result<PipelineSettings> {
        let settings: PipelineSettings = layer(
            "pipeline",
            &PipelineSettings::default(),
            self.table("pipeline"),
            &flags.overrides(),
        )?;
        settings.validate()?;
        Ok(settings)
    }
}

impl OutputFlags {
    /// The values given, as a JSON object of setting names.
    pub fn overrides(&self) -> Value {
        self.with_negative_flags(serde_json::to_value(self))
    }

    /// `--skip-missing-sizes` is `missing_size_as_zero = false` under another name.
    fn with_negative_flags(&self, flags: serde_json::Result<Value>) -> Value {
        let mut v = flags.unwrap_or_else(|_| Value::Object(Map::new()));
        if self.skip_missing_sizes {
            v["missing_size_as_zero"] = Value::Bool(false);
        }
        v
    }
}

impl PipelineFlags {
    /// The values given, as a JSON object of setting names (the output flags are flattened in).
    pub fn overrides(&self) -> Value {
        self.output.with_negative_flags(serde_json::to_value(self))
    }
}

/// The one layering function: `defaults`, overlaid with the config file's `table` (if any),
/// overlaid with `overrides` (environment and flags as clap resolved them; keys absent or null
/// are not given). Unknown keys in the file are refused by `T`'s `deny_unknown_fields`.
pub fn layer<T: Serialize + DeserializeOwned>(
    what: &str,
    defaults: &T,
    table: Option<&Value>,
    overrides: &Value,
) -> Result<T> {
    let mut merged = match serde_json::to_value(defaults) {
        Ok(Value::Object(m)) => m,
        _ => return Err(Error::Internal(format!("{what} defaults are not a table"))),
    };
    for layer in [table, Some(overrides)].into_iter().flatten() {
        if let Value::Object(m) = layer {
            merged.extend(
                m.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
        }
    }
    serde_json::from_value(Value::Object(merged))
        .map_err(|e| Error::Config(format!("[{what}] settings: {e}")))
}

/// Adds `[default: …]` to the help of every flag under `heading` whose name is a key of
/// `defaults`, in `cmd` and its subcommands: the defaults shown are the ones the layering uses,
/// never a second hand-written table.
pub fn with_defaults(
    cmd: clap::Command,
    heading: &str,
    defaults: &impl Serialize,
) -> clap::Command {
    let Ok(Value::Object(defaults)) = serde_json::to_value(defaults) else {
        return cmd;
    };
    annotate(cmd, heading, &defaults)
}

fn annotate(mut cmd: clap::Command, heading: &str, defaults: &Map<String, Value>) -> clap::Command {
    let ids: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.get_help_heading() == Some(heading))
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        let shown = match defaults.get(&id) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => continue,
            Some(v) => v.to_string(),
        };
        cmd = cmd.mut_arg(id.as_str(), |a| {
            let help = a.get_help().map(|h| h.to_string()).unwrap_or_default();
            a.help(format!("{help} [default: {shown}]"))
        });
    }
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name, |s| annotate(s, heading, defaults));
    }
    cmd
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
