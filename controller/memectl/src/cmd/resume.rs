//! `memectl resume`: resumes reconciliation after `suspend` (`POST /api/v1/resume` with the
//! bearer token).

use crate::cli::{Global, Outcome};
use crate::output;

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
    let message = global.client()?.with_token(global.token()?).post(PATH).await?;
    output::print(&format!("{message}\n"))?;
    Ok(Outcome::Success)
}
