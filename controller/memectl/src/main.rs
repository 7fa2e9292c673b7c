//! `memectl`: the kubectl-like command line of meme-controller. Everything lives in the
//! library ([`memectl`]); this binary only parses the arguments and maps the result to an exit
//! code.

use std::process::ExitCode;

fn main() -> ExitCode {
    memectl::cli::Cli::parse_and_run()
}
