//! `memectl completion SHELL`: prints a completion script generated from the clap definition
//! (clap_complete), so it never drifts from the real flags.

use clap::CommandFactory as _;

use crate::cli::{Cli, Outcome};
use crate::output;

/// Flags of `completion`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    shell: clap_complete::Shell,
}

/// Runs `completion`.
///
/// # Errors
/// stdout is closed.
pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "memectl", &mut script);
    output::print(&String::from_utf8_lossy(&script))?;
    Ok(Outcome::Success)
}
