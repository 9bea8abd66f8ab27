//! What every Sawmill binary does around its main function: logging set-up, the tokio runtime,
//! and waiting for SIGINT or SIGTERM (graceful shutdown).

/// Targets of dependencies whose debug lines carry credentials: hdfs-native logs its SASL
/// exchange whole (Kerberos and block tokens, the negotiated data-transfer keys). They stay at
/// `info` under a general `SAWMILL_LOG=debug`; naming the target in `SAWMILL_LOG` still turns
/// them on, deliberately.
const CREDENTIAL_TARGETS: &[&str] = &["hdfs_native::security"];

/// Logs to stderr, filtered by `SAWMILL_LOG` (an `EnvFilter` directive), else by `default`.
pub fn init_tracing(default: &str) {
    let spec = std::env::var("SAWMILL_LOG").unwrap_or_default();
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("SAWMILL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    for target in CREDENTIAL_TARGETS {
        if !spec.contains(target) {
            if let Ok(directive) = format!("{target}=info").parse() {
                filter = filter.add_directive(directive);
            }
        }
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// A multi-threaded runtime with I/O and timers, or a message saying why there is none.
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// The body of an async binary's `main`: logging, a runtime, `main` run to completion, and an
/// error printed as `error: ...` with a failure exit status.
pub fn run_main<E: std::fmt::Display>(
    default_log: &str,
    main: impl std::future::Future<Output = Result<(), E>>,
) -> std::process::ExitCode {
    init_tracing(default_log);
    let result = match runtime() {
        Ok(rt) => rt.block_on(main).map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Waits for SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
