//! The `worker` binary. All behaviour lives in the `sawmill_worker` library.

fn main() -> std::process::ExitCode {
    sawmill_worker::cli::main()
}
