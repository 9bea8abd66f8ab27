//! The one error enum of `sawmill-report`. Each variant says what failed and what to do next.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Some tables exist but not this one: a summary written by another Sawmill version.
    #[error("summary table `{0}` is missing: rewrite the summary with this version (`sawmill run` or `sawmill summarize`)")]
    MissingTable(String),
    #[error("summary table `{table}` has no {expected} column `{column}`: rewrite the summary with this version")]
    Column {
        table: String,
        column: String,
        expected: &'static str,
    },
    #[error("summary table `{table}` has {rows} rows, expected exactly one")]
    NotOneRow { table: String, rows: usize },
    /// plotters failed to lay out or draw a chart (it only writes to a string, so this is a bug).
    #[error("cannot draw chart `{chart}`: {message}")]
    Chart { chart: String, message: String },
    #[error(transparent)]
    Core(#[from] sawmill_core::Error),
}
