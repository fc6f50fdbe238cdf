//! The `tickflow` binary: parses the command line and hands over to [`tickflow::cli`].

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = tickflow::cli::Cli::parse();
    tickflow::cli::init_tracing(cli.log_format);
    match tickflow::cli::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("tickflow: {err:#}");
            ExitCode::FAILURE
        }
    }
}
