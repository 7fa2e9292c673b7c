//! `memectl validate [PATH]`: loads a manifests folder offline and prints every diagnostic in
//! compiler style on stderr, or a one-line summary on success.

use std::path::PathBuf;

use anyhow::Context as _;
use meme_api::{Diagnostics, ManifestTree};
use serde::Serialize;

use crate::cli::{Outcome, Output};

/// Flags of `validate`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The manifests folder.
    #[arg(default_value = "manifests")]
    path: PathBuf,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t)]
    output: Output,
}

/// The `-o json` report.
#[derive(Debug, Serialize)]
struct Report<'a> {
    path: String,
    valid: bool,
    stacks: usize,
    deployments: usize,
    errors: usize,
    diagnostics: &'a Diagnostics,
}

/// Runs `validate`.
///
/// # Errors
/// The folder cannot be read.
pub fn run(args: &Args) -> anyhow::Result<Outcome> {
    let tree = ManifestTree::read_dir(&args.path).with_context(|| format!("cannot read {}", args.path.display()))?;
    let (valid, stacks, deployments, diagnostics) = match meme_api::load(&tree) {
        Ok(set) => (true, 1, set.deployments.len(), set.warnings),
        Err(diagnostics) => (false, 0, 0, diagnostics),
    };
    match args.output {
        Output::Json => {
            let report = Report {
                path: tree.root.clone(),
                valid,
                stacks,
                deployments,
                errors: diagnostics.error_count(),
                diagnostics: &diagnostics,
            };
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Output::Table => {
            eprint!("{diagnostics}");
            if valid {
                let plural = if deployments == 1 { "" } else { "s" };
                println!("{}: {stacks} stack, {deployments} deployment{plural}", tree.root);
            } else {
                let n = diagnostics.error_count();
                eprintln!("{}: {n} error{}", tree.root, if n == 1 { "" } else { "s" });
            }
        }
    }
    Ok(if valid { Outcome::Success } else { Outcome::CheckFailed })
}
