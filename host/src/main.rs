//! The `weir` binary.

use std::process::ExitCode;

fn main() -> ExitCode {
    weir::cli::main()
}
