//! The `coordinator` binary. All behaviour lives in the `sawmill_coordinator` library.

fn main() -> std::process::ExitCode {
    sawmill_coordinator::cli::main()
}
