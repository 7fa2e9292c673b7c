//! Command-line flags and verbs, and the exit-code policy shared by every command.

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::cmd;

/// Exit codes, documented in `--help`.
const EXIT_CODES: &str = "\
Exit codes:
  0  success (validate: the manifests are valid)
  1  the check failed (validate: errors in the manifests)
  2  usage error, or the command could not run (unreadable files, ...)";

/// kubectl-like control of meme-controller, the GitOps controller for one Docker host.
#[derive(Debug, Parser)]
#[command(name = "memectl", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a manifests folder offline: every error as file:line:col, exit 1 if any.
    Validate(cmd::validate::Args),
}

/// Output format shared by commands that print objects.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Human-readable text.
    #[default]
    Table,
    /// JSON, for machines.
    Json,
}

/// What a command reports back: success, a failed check, or an error it could not get past.
#[derive(Debug)]
pub enum Outcome {
    /// Exit 0.
    Success,
    /// Exit 1: the check ran and failed.
    CheckFailed,
}

impl Cli {
    /// Parses the process arguments and runs the command.
    pub fn parse_and_run() -> ExitCode {
        let cli = Self::parse();
        let result = match cli.command {
            Command::Validate(args) => cmd::validate::run(&args),
        };
        match result {
            Ok(Outcome::Success) => ExitCode::SUCCESS,
            Ok(Outcome::CheckFailed) => ExitCode::from(1),
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(2)
            }
        }
    }
}
