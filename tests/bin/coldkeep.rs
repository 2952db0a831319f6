//! The `coldkeep` command line, built as this crate's own binary so that its tests can run it
//! (`CARGO_BIN_EXE_coldkeep-under-test`): Cargo builds a package's binaries for its
//! integration tests, not those of other packages.

fn main() -> std::process::ExitCode {
    coldkeep_cli::main()
}
