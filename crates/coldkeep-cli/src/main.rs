//! The `coldkeep` binary: the command line of `coldkeep_cli`.

fn main() -> std::process::ExitCode {
    coldkeep_cli::main()
}
