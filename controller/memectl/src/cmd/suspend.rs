//! `memectl suspend`: stops reconciliation (`POST /api/v1/suspend` with the bearer token);
//! running containers are left as they are until `resume`.

use crate::cli::{Global, Outcome};
use crate::output;

/// The mutation endpoint.
const PATH: &str = "/api/v1/suspend";

/// Flags of `suspend` (only the global ones).
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `suspend`.
///
/// # Errors
/// The token file cannot be read, the controller cannot be reached or refuses (exit 1).
pub async fn run(_args: &Args, global: &Global) -> anyhow::Result<Outcome> {
    let message = global.client()?.with_token(global.token()?).post(PATH).await?;
    output::print(&format!("{message}\n"))?;
    Ok(Outcome::Success)
}
