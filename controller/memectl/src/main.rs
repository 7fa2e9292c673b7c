//! `memectl`: the kubectl-like command line of meme-controller. Parsing lives in [`cli`], one
//! file per command under [`cmd`].

mod cli;
mod cmd;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::Cli::parse_and_run()
}
