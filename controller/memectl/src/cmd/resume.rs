//! `memectl resume`: resumes reconciliation after `suspend` (`POST /api/v1/resume` with the
//! bearer token).

use crate::cli::{Global, Outcome};

/// The mutation endpoint.
const PATH: &str = "/api/v1/resume";

/// Flags of `resume` (only the global ones).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `resume`.
///
/// # Errors
/// The token file cannot be read, the controller cannot be reached or refuses (exit 1).
pub async fn run(_args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    super::mutate(PATH, global).await
}
