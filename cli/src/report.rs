//! `sawmill report`: the EDA report (the original notebook's tables and charts) from the summary
//! tables under an output root, as one self-contained HTML page, terminal tables or JSON.

use crate::CliError;
use sawmill_common::summary;
use sawmill_report::{build, ReportOptions};
use std::io::Write;
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Html,
    Text,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Output root holding `summary/`: a local path or hdfs://host:port/path.
    #[arg(long, env = "SAWMILL_OUTPUT", visible_alias = "from")]
    pub output: String,
    /// Write the HTML report to this file.
    #[arg(long)]
    pub html: Option<PathBuf>,
    /// What to print: text by default, html when --html is given (the page then goes to that
    /// file only; text or json still print on stdout).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Rows shown in each top-N table.
    #[arg(long, default_value_t = 10)]
    pub top: usize,
}

pub fn execute(args: ReportArgs) -> Result<(), CliError> {
    let tables = crate::io_runtime()?.block_on(summary::read_root(&args.output))?;
    let opts = ReportOptions {
        top: args.top,
        source: Some(args.output.clone()),
        ..ReportOptions::default()
    };
    let report = build(&tables, &opts)?;
    if let Some(path) = &args.html {
        std::fs::write(path, report.to_html()).map_err(|source| CliError::Write {
            path: path.display().to_string(),
            source,
        })?;
    }
    let format = args.format.unwrap_or(if args.html.is_some() {
        Format::Html
    } else {
        Format::Text
    });
    match (format, &args.html) {
        // The page is in the file already; say where rather than print it twice.
        (Format::Html, Some(path)) => eprintln!("wrote the report to {}", path.display()),
        (Format::Html, None) => emit(&report.to_html())?,
        (Format::Text, _) => emit(&report.to_text())?,
        // `{:#}` pretty-prints a JSON value (and, unlike `to_string_pretty`, cannot fail).
        (Format::Json, _) => emit(&format!("{:#}\n", report.to_json()))?,
    }
    Ok(())
}

/// Writes to stdout; a closed pipe (`sawmill report ... | head`) is the reader's choice, not an
/// error (`print!` would panic on it).
fn emit(s: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match out.write_all(s.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::Write {
            path: "stdout".into(),
            source: e,
        }),
        _ => Ok(()),
    }
}
