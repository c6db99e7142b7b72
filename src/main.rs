//! The `missedcalld` binary: parse the command line and hand over to the library.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = missedcalld::cli::Cli::parse();
    missedcalld::cli::main(cli)
}
