//! The `drip` binary: parse the command line, load the configuration, start logging, run.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = drip::cli::Cli::parse();
    drip::cli::main(cli)
}
