//! The `sawmill` command. All behaviour lives in the `sawmill_cli` library.

fn main() -> std::process::ExitCode {
    sawmill_cli::main()
}
