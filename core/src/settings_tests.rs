use super::*;
use clap::{CommandFactory, FromArgMatches, Parser};

#[derive(Debug, Parser)]
struct TestCli {
    #[command(flatten)]
    config: ConfigFlag,
    #[command(flatten)]
    pipeline: PipelineFlags,
}

fn parse(args: &[&str]) -> TestCli {
    let cmd = with_defaults(
        TestCli::command(),
        PIPELINE_HEADING,
        &PipelineSettings::default(),
    );
    let matches = cmd
        .try_get_matches_from(std::iter::once("t").chain(args.iter().copied()))
        .unwrap();
    TestCli::from_arg_matches(&matches).unwrap()
}

#[test]
fn flags_override_the_file_which_overrides_defaults() {
    let file = ConfigFile::parse(
        "[pipeline]\ntopic = \"from-file\"\nshard_max_rows = 5\noutput = \"/file\"\n",
        false,
    )
    .unwrap();
    let cli = parse(&["--output", "/flag", "--compression", "snappy"]);
    let s = file.pipeline(&cli.pipeline).unwrap();
    assert_eq!(s.topic, "from-file");
    assert_eq!(s.shard_max_rows, 5);
    assert_eq!(s.output, "/flag");
    assert_eq!(s.compression, "snappy");
    // Untouched by either: the default.
    assert_eq!(
        s.shard_max_bytes,
        PipelineSettings::default().shard_max_bytes
    );
    assert!(s.missing_size_as_zero);
}

#[test]
fn aliases_and_the_negative_flag() {
    let cli = parse(&["--out", "/x", "--skip-missing-sizes"]);
    let s = ConfigFile::default().pipeline(&cli.pipeline).unwrap();
    assert_eq!(s.output, "/x");
    assert!(!s.missing_size_as_zero);
    let cli = parse(&["--missing-size-as-zero", "false"]);
    let s = ConfigFile::default().pipeline(&cli.pipeline).unwrap();
    assert!(!s.missing_size_as_zero);
}

#[test]
fn unknown_keys_and_tables_are_refused_with_the_name() {
    let file = ConfigFile::parse("[pipeline]\nshard_max_row = 5\n", false).unwrap();
    let err = file
        .pipeline(&PipelineFlags::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("shard_max_row"), "{err}");
    let err = ConfigFile::parse("[pipelin]\ntopic = \"x\"\n", false).unwrap_err();
    assert!(err.contains("unknown table [pipelin]"), "{err}");
    let err = ConfigFile::parse("topic = \"x\"\n", false).unwrap_err();
    assert!(err.contains("unknown table [topic]"), "{err}");
    let err = ConfigFile::parse("pipeline = 3\n", false).unwrap_err();
    assert!(err.contains("[pipeline] must be a table"), "{err}");
    let err = ConfigFile::parse("{\"pipeline\": {\"topic\": 3}}", true)
        .map(|f| f.pipeline(&PipelineFlags::default()));
    assert!(matches!(err, Ok(Err(Error::Config(_)))), "{err:?}");
}

#[test]
fn invalid_settings_are_refused_after_layering() {
    let cli = parse(&["--compression", "brotli"]);
    let err = ConfigFile::default()
        .pipeline(&cli.pipeline)
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown compression"), "{err}");
    let cli = parse(&["--shard-max-rows", "0"]);
    assert!(ConfigFile::default().pipeline(&cli.pipeline).is_err());
}

#[test]
fn help_shows_the_layering_defaults() {
    let mut cmd = with_defaults(
        TestCli::command(),
        PIPELINE_HEADING,
        &PipelineSettings::default(),
    );
    let help = cmd.render_help().to_string();
    assert!(help.contains("Pipeline settings"), "{help}");
    assert!(help.contains("[default: 500000]"), "{help}");
    assert!(help.contains("[default: zstd]"), "{help}");
    assert!(help.contains("[env: SAWMILL_SHARD_MAX_ROWS="), "{help}");
}

#[test]
fn the_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/sawmill.example.toml");
    let file = ConfigFile::load(Some(&path)).unwrap();
    let s = file.pipeline(&PipelineFlags::default()).unwrap();
    assert_eq!(s.topic, "kafka_test");
    assert!(file.table("coordinator").is_some());
}

#[test]
fn analytics_caps_are_settings() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/sawmill.example.toml");
    let s = ConfigFile::load(Some(&path))
        .unwrap()
        .pipeline(&PipelineFlags::default())
        .unwrap();
    assert_eq!(s.max_distinct_endpoints, crate::analytics::DEFAULT_CAP);
    let file = ConfigFile::parse("[pipeline]\nmax_distinct_hosts = 7\n", false).unwrap();
    let flags = PipelineFlags {
        max_404_rows: Some(9),
        ..PipelineFlags::default()
    };
    let a = file.pipeline(&flags).unwrap().analytics();
    assert_eq!(
        (
            a.max_distinct_hosts,
            a.max_distinct_endpoints,
            a.max_404_rows
        ),
        (7, crate::analytics::DEFAULT_CAP, 9)
    );
    let zero = ConfigFile::parse("[pipeline]\nmax_404_rows = 0\n", false).unwrap();
    let err = zero
        .pipeline(&PipelineFlags::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be positive"), "{err}");
}
