//! `sawmill generate`: realistic synthetic access logs, deterministic for a seed.

use crate::CliError;
use sawmill_core::generate::{generate, seq::SeqConfig, GenerateConfig};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Number of lines to write.
    #[arg(long, default_value_t = 1_000_000)]
    pub lines: u64,
    /// Random seed; the same seed gives the same file.
    #[arg(long, default_value_t = 1995)]
    pub seed: u64,
    /// Output file, or `-` for stdout.
    #[arg(long)]
    pub out: PathBuf,
    /// Fraction of lines in Apache combined format (with referer and user agent).
    #[arg(long, default_value_t = 0.0)]
    pub combined_fraction: f64,
    /// Fraction of malformed lines.
    #[arg(long)]
    pub malformed_fraction: Option<f64>,
    /// Tag every line with `sawmill-seq=<RUN>.<key>.<n>` (in the endpoint's query string, or in
    /// a malformed line's raw bytes) for `sawmill verify` and the chaos tests.
    #[arg(long, value_name = "RUN")]
    pub seq_run: Option<u64>,
    /// Keys the tagged lines are spread over (line i gets key i % KEYS): each key numbers its
    /// lines 0, 1, 2... without a gap.
    #[arg(long, default_value_t = 1, value_name = "KEYS", requires = "seq_run")]
    pub seq_keys: u32,
}

pub fn execute(args: GenerateArgs) -> Result<(), CliError> {
    let mut cfg = GenerateConfig {
        lines: args.lines,
        seed: args.seed,
        ..GenerateConfig::default()
    };
    cfg.combined_fraction = args.combined_fraction;
    cfg.seq = args.seq_run.map(|run| SeqConfig {
        run,
        keys: args.seq_keys.max(1),
    });
    if let Some(f) = args.malformed_fraction {
        cfg.malformed_fraction = f;
    }
    let path = args.out.display().to_string();
    let werr = |source| CliError::Write {
        path: path.clone(),
        source,
    };
    let stats = if args.out.as_os_str() == "-" {
        generate(&cfg, std::io::stdout().lock())?
    } else {
        generate(&cfg, std::fs::File::create(&args.out).map_err(werr)?)?
    };
    eprintln!(
        "wrote {} lines ({} bytes, {} malformed, {} distinct hosts) to {path}",
        stats.lines, stats.bytes, stats.malformed, stats.distinct_hosts
    );
    Ok(())
}
