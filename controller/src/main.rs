//! The `meme-controller` daemon: flags in, controller running until SIGTERM.

use std::process::ExitCode;

fn main() -> ExitCode {
    match meme_controller::args::Args::parse_and_run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meme-controller: {}", meme_controller::redact::redact(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
