//! Sawmill's EDA report: every table and chart of the original PySpark notebook, built from the
//! summary tables of an output root.
//!
//! The report reads its numbers from the summary tables (`sawmill_common::summary::read_root`
//! reads them from an output root), never from records, so it takes the same time on a sample
//! as on a month of traffic. [`build`] turns the tables into a [`Report`], which renders as one
//! self-contained HTML page ([`Report::to_html`]: inline CSS and SVG, no external URL), terminal
//! tables ([`Report::to_text`]) or JSON ([`Report::to_json`]).
//!
//! Module map:
//!
//! - [`columns`]: typed column access to the summary tables.
//! - `build`: the report's sections from the tables.
//! - [`model`]: the report's content ([`Report`] and its rows), serializable.
//! - [`charts`]: plotters SVG charts from plain `(label, value)` data, reusable by a dashboard.
//! - `report_charts`: which data each of the report's charts shows.
//! - `html`, `text`: the renderers.
//! - [`dashboard`]: the coordinator's live page and the JSON document it polls.
//! - [`mod@format`]: number formatting and escaping.
//! - [`error`]: the crate's one error enum.

mod build;
pub mod charts;
pub mod columns;
pub mod dashboard;
pub mod error;
pub mod format;
mod html;
pub mod model;
mod report_charts;
mod text;

pub use build::{build, WEEKDAY_NAMES};
pub use charts::{render_chart_svg, ChartKind, ChartSpec, ValueFormat};
pub use columns::Tables;
pub use error::{Error, Result};
pub use model::{Report, ReportOptions};
pub use report_charts::{chart_data, CHART_IDS};

impl Report {
    /// All the numbers of the report (charts excluded: their data is in the other fields).
    pub fn to_json(&self) -> serde_json::Value {
        // The model is plain structs, strings and numbers (non-finite floats become null), so
        // serialization cannot fail; `Null` would only mark a bug.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}
